//! Xen's own locks for the engine: `spinlock_t` (a ticket lock) and
//! `rwlock_t` (a queued reader-writer lock that lets no stream of readers
//! starve a writer), allocated and initialised by the shim so that their
//! layout (which differs between Xen versions and with lock debugging) is
//! the C compiler's business alone. Taking one takes Xen's preempt count,
//! so `in_atomic()` and Xen's lock debugging see it.
use super::ffi;
use crate::lock::{RawMutex, RawRwLock};
use core::ffi::c_void;
use core::ptr::NonNull;

/// A `spinlock_t` from `v4v_shim_spin_alloc`.
pub struct XenSpinlock(NonNull<c_void>);

/// An `rwlock_t` from `v4v_shim_rw_alloc`.
pub struct XenRwLock(NonNull<c_void>);

// SAFETY: Xen's locks are made to be taken on any physical CPU; the
// pointer is owned by this value and freed once, in Drop.
unsafe impl Send for XenSpinlock {}
// SAFETY: as above; every operation on the lock is Xen's own, atomic.
unsafe impl Sync for XenSpinlock {}
// SAFETY: as for XenSpinlock.
unsafe impl Send for XenRwLock {}
// SAFETY: as for XenSpinlock.
unsafe impl Sync for XenRwLock {}

// SAFETY: spin_lock/spin_unlock are a fair ticket lock with acquire and
// release semantics.
unsafe impl RawMutex for XenSpinlock {
    fn try_new() -> Option<Self> {
        NonNull::new(ffi::v4v_shim_spin_alloc()).map(XenSpinlock)
    }

    fn lock(&self) {
        // SAFETY: a live lock from v4v_shim_spin_alloc.
        unsafe { ffi::v4v_shim_spin_lock(self.0.as_ptr()) }
    }

    unsafe fn unlock(&self) {
        // SAFETY: a live lock the caller holds.
        unsafe { ffi::v4v_shim_spin_unlock(self.0.as_ptr()) }
    }
}

impl Drop for XenSpinlock {
    fn drop(&mut self) {
        // SAFETY: allocated by v4v_shim_spin_alloc, not held (a guard
        // borrows the lock, so none outlives it), freed once.
        unsafe { ffi::v4v_shim_spin_free(self.0.as_ptr()) }
    }
}

// SAFETY: Xen's rwlock_t: readers share, a writer excludes all, with
// acquire and release semantics; a waiting writer makes new readers queue.
unsafe impl RawRwLock for XenRwLock {
    fn try_new() -> Option<Self> {
        NonNull::new(ffi::v4v_shim_rw_alloc()).map(XenRwLock)
    }

    fn read(&self) {
        // SAFETY: a live lock from v4v_shim_rw_alloc.
        unsafe { ffi::v4v_shim_read_lock(self.0.as_ptr()) }
    }

    unsafe fn read_unlock(&self) {
        // SAFETY: a live lock the caller holds for reading.
        unsafe { ffi::v4v_shim_read_unlock(self.0.as_ptr()) }
    }

    fn write(&self) {
        // SAFETY: a live lock from v4v_shim_rw_alloc.
        unsafe { ffi::v4v_shim_write_lock(self.0.as_ptr()) }
    }

    unsafe fn write_unlock(&self) {
        // SAFETY: a live lock the caller holds for writing.
        unsafe { ffi::v4v_shim_write_unlock(self.0.as_ptr()) }
    }
}

impl Drop for XenRwLock {
    fn drop(&mut self) {
        // SAFETY: allocated by v4v_shim_rw_alloc, not held, freed once.
        unsafe { ffi::v4v_shim_rw_free(self.0.as_ptr()) }
    }
}
