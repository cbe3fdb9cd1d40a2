//! Untrusted input from guests: addresses and the values read through them.
//!
//! A guest hands the hypercall raw numbers. This module is the only place
//! that turns a guest virtual address into bytes: [`GuestAddr::read`] copies
//! a whole ABI structure out of guest memory exactly once, into hypervisor
//! memory, where the guest can no longer change it; every later check looks
//! at that private copy. Values that name something inside a ring (offsets,
//! lengths) are validated by the constructors in [`crate::ring::geometry`],
//! so the rest of the engine can hold only validated ones.
use crate::abi::PAGE_SIZE;
use crate::env::{Env, Fault};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A guest virtual address of the calling vCPU, as the guest passed it.
/// Nothing is known about it: it may be null, unmapped, or point into the
/// hypervisor. `Env` copies fail cleanly for all of those.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GuestAddr(pub u64);

impl GuestAddr {
    pub const fn is_null(self) -> bool {
        self.0 == 0
    }

    /// The address `bytes` further on, or a fault if that wraps around.
    pub fn offset(self, bytes: u64) -> Result<GuestAddr, Fault> {
        self.0.checked_add(bytes).map(GuestAddr).ok_or(Fault)
    }

    /// Read one `T` from guest memory, once.
    pub fn read<E: Env, T: FromBytes + IntoBytes>(self, env: &E) -> Result<T, Fault> {
        let mut v = T::new_zeroed();
        self.read_into(env, core::slice::from_mut(&mut v))?;
        Ok(v)
    }

    /// Fill `out` from guest memory (an array of `T`s at this address), once.
    pub fn read_into<E: Env, T: FromBytes + IntoBytes>(
        self,
        env: &E,
        out: &mut [T],
    ) -> Result<(), Fault> {
        let bytes = out.as_mut_bytes();
        // SAFETY: `bytes` is a private hypervisor buffer valid for writes of
        // its whole length; any bit pattern is a valid `T` (FromBytes).
        unsafe { env.copy_from_guest(bytes.as_mut_ptr(), self.0, bytes.len()) }
    }

    /// Write one `T` to guest memory.
    pub fn write<E: Env, T: IntoBytes + Immutable>(self, env: &E, v: &T) -> Result<(), Fault> {
        self.write_slice(env, core::slice::from_ref(v))
    }

    /// Write an array of `T`s to guest memory at this address.
    pub fn write_slice<E: Env, T: IntoBytes + Immutable>(
        self,
        env: &E,
        v: &[T],
    ) -> Result<(), Fault> {
        let bytes = v.as_bytes();
        // SAFETY: `bytes` is valid for reads of its whole length.
        unsafe { env.copy_to_guest(self.0, bytes.as_ptr(), bytes.len()) }
    }
}

/// The first byte of the guest page after the one `at` is in (`None` past
/// the top of the address space): how a probe walks a buffer page by page.
pub fn next_page(at: u64) -> Option<u64> {
    (at | (PAGE_SIZE as u64 - 1)).checked_add(1)
}
