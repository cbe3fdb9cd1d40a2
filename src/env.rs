//! The narrow interface between the engine and the hypervisor.
//!
//! Everything the engine needs from Xen goes through [`Env`]: who is calling
//! and what Xen's security policy (XSM) lets it do, copies to and from the calling vCPU's guest memory, pinning the frames of
//! a ring and mapping them contiguously, raising `VIRQ_V4V`, the
//! hypervisor's own locks, and its preemption: whether work is waiting for
//! this CPU, and continuing a hypercall later. Inside Xen
//! it is implemented over the C shim (`crate::xen`); in host tests by a simulated hypervisor
//! (`crate::sim`) with many domains whose memory tests can read, corrupt and
//! race. Allocation is not part of the trait: the engine uses the `alloc`
//! crate, always fallibly, and Xen's global allocator is set up in
//! `crate::xen`.

use crate::guest::GuestRange;
use crate::lock::{RawMutex, RawRwLock};
use core::ptr::NonNull;

/// A Xen domain id.
pub type DomId = u16;

/// A guest memory access failed (bad or unmapped guest address).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault;

/// Why a frame could not be pinned for a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PinError {
    /// Not a writable RAM page of the calling domain.
    Invalid,
    /// The hypervisor is out of memory (mapping space).
    NoMem,
}

/// What XSM answers for a send from the calling domain to another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendAccess {
    Allowed,
    /// The policy denies it.
    Denied,
    /// The hypervisor knows no domain with that id (it went away after the
    /// engine found its state): the send finds no ring.
    NoDomain,
}

/// Services the hypervisor provides to the engine.
///
/// All guest addresses are virtual addresses of the calling vCPU, as the
/// hypercall received them. Implementations must be safe to call from
/// several physical CPUs at once.
pub trait Env: Sync {
    /// A frame of a guest, pinned as a writable RAM page until given back
    /// to [`Env::unpin_frame`].
    type Frame: Send + Sync;
    /// The hypervisor's spin lock (Xen: `spinlock_t`).
    type Mutex: RawMutex;
    /// The hypervisor's reader-writer lock (Xen: `rwlock_t`).
    type RwLock: RawRwLock;

    /// The domain making the current hypercall.
    fn current_domain(&self) -> DomId;

    /// The calling vCPU's number within its domain.
    fn current_vcpu(&self) -> u32;

    /// XSM: whether the calling domain may use V4V at all. Asked when the
    /// engine would make the domain's state (its first register, send, or
    /// notify with entries); a domain that has state was allowed. Xen:
    /// `xsm_v4v_use`; the dummy module allows every domain.
    fn xsm_use(&self) -> bool;

    /// XSM: whether the calling domain may register a ring for `partner`
    /// (`DOMID_ANY`: a ring open to any sender). Xen:
    /// `xsm_v4v_register_single_source`, or `..._any_source` for
    /// `DOMID_ANY` and for an id that names no domain now (whichever domain
    /// gets that id later could send to the ring); the dummy module allows
    /// both.
    fn xsm_register(&self, partner: DomId) -> bool;

    /// XSM: whether the calling domain may send to domain `dst` (and see
    /// its rings in notify). Xen: `xsm_v4v_send`; the dummy module allows
    /// every pair.
    fn xsm_send(&self, dst: DomId) -> SendAccess;

    /// XSM: whether the calling domain may list and change the viptables.
    /// Xen: `xsm_v4v_viptables`, whose dummy answer is Xen's usual one for
    /// a privileged operation: the control domain (dom0) only.
    fn xsm_viptables(&self) -> bool;

    /// Copy the caller's guest range `src` to `dst`.
    ///
    /// # Safety
    /// `dst` must be valid for writes of `src.len()` bytes. It may be memory
    /// that a guest can write concurrently (a mapped ring frame):
    /// implementations copy with raw byte copies and never form references
    /// to it.
    unsafe fn copy_from_guest(&self, dst: *mut u8, src: GuestRange) -> Result<(), Fault>;

    /// Whether one byte of every page of the caller's guest range can be
    /// read now (an empty range: yes). The default reads them one
    /// [`Env::copy_from_guest`] at a time; Xen's does the whole range in one
    /// call.
    fn probe_guest(&self, range: GuestRange) -> Result<(), Fault> {
        for at in range.page_starts() {
            let mut byte = 0u8;
            let one = GuestRange::new(at, 1)?;
            // SAFETY: `byte` is a private one-byte buffer.
            unsafe { self.copy_from_guest(&mut byte, one)? };
        }
        Ok(())
    }

    /// Copy `dst.len()` bytes from `src` to the caller's guest range `dst`.
    ///
    /// # Safety
    /// `src` must be valid for reads of `dst.len()` bytes.
    unsafe fn copy_to_guest(&self, dst: GuestRange, src: *const u8) -> Result<(), Fault>;

    /// Pin frame `gfn` of the calling domain as a writable RAM page. It
    /// stays pinned until [`Env::unpin_frame`], even if the domain dies in
    /// between.
    fn pin_frame(&self, gfn: u64) -> Result<Self::Frame, PinError>;

    /// Map pinned frames, in order, at one contiguous range of the
    /// hypervisor's address space (`frames.len() * 4096` bytes), so that a
    /// ring is mapped once at register and a message is copied in at most
    /// two pieces (one more at the wrap). A guest may write the mapped
    /// memory at any time. `Err(PinError::NoMem)` when there is no room.
    fn map_frames(&self, frames: &[Self::Frame]) -> Result<NonNull<u8>, PinError>;

    /// Undo [`Env::map_frames`] (`count` frames at `va`), before the frames
    /// are unpinned.
    fn unmap_frames(&self, va: NonNull<u8>, count: usize);

    /// Unpin a frame obtained from [`Env::pin_frame`] (no longer mapped).
    fn unpin_frame(&self, frame: Self::Frame);

    /// Raise `VIRQ_V4V` in domain `dom`, if it still exists.
    fn raise_virq(&self, dom: DomId);

    /// Whether the current operation should stop at its next preemption
    /// point because the CPU has other work (Xen: `hypercall_preempt_check`).
    /// Only called with no lock held.
    fn preempt_check(&self) -> bool;

    /// Arrange for the current hypercall to be made again, by the same vCPU,
    /// with these arguments, and return the value to return from this one
    /// (Xen: `hypercall_create_continuation`). The engine keeps the
    /// progress itself: the guest sees no change in its arguments.
    fn continuation(&self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64;

    /// Let the CPU do pending work (Xen: `process_pending_softirqs`), in
    /// long loops that are not hypercalls (the debug dump). Only called
    /// with no lock held.
    fn process_softirqs(&self);
}
