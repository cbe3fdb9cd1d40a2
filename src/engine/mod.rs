//! The engine: every V4V operation, over an [`Env`].
//!
//! (Skeleton: the operations are being filled in; until then every command
//! returns -ENOSYS.)
use crate::abi::errno;
use crate::env::{DomId, Env};
use core::marker::PhantomData;

/// All V4V state of the host: domains' rings and the viptables.
pub struct Engine<E: Env> {
    _env: PhantomData<fn(&E)>,
}

impl<E: Env> Default for Engine<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Env> Engine<E> {
    /// An engine with no rings and an empty viptables (usable in a `static`).
    pub const fn new() -> Self {
        Engine { _env: PhantomData }
    }

    /// Entry point of hypercall `v4v_op`: `cmd` and the five arguments as
    /// the ABI numbers them. Returns `>= 0` on success, `-errno` on failure.
    #[allow(clippy::too_many_arguments)]
    pub fn hypercall(&self, _env: &E, _cmd: u32, _a1: u64, _a2: u64, _a3: u64, _a4: u32, _a5: u32) -> i64 {
        -errno::ENOSYS
    }

    /// Domain `dom` is being destroyed: release everything that refers to it.
    pub fn domain_destroy(&self, _env: &E, _dom: DomId) {}

    /// Human-readable dump of every domain's rings, pointers and waiters
    /// (Xen debug key).
    pub fn dump(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        writeln!(out, "V4V: no rings")
    }
}
