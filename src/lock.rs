//! The engine's locks: the hypervisor's own locks, each tagged with its
//! level in the lock order.
//!
//! The engine does not implement locking. Each lock wraps a raw lock the
//! [`Env`](crate::env::Env) provides ([`RawMutex`], [`RawRwLock`]): inside
//! Xen those are Xen's `spinlock_t` (a fair ticket lock) and `rwlock_t` (a
//! queued lock: once a writer waits, new readers queue behind it), so they
//! take Xen's preempt count, and Xen's `in_atomic()` checks and lock
//! debugging see them; the host simulation has fair locks of its own. The
//! order itself, and what each lock protects, is stated once in `engine`
//! (module documentation). Every lock carries its level as a const
//! parameter, and each acquisition asserts that no lock of the same or a
//! higher level is held: per thread in host builds, per physical CPU in a
//! hypervisor built with debug assertions (Xen never preempts hypervisor
//! code that holds a lock, so what a CPU holds is what its operation
//! holds). A release build of the hypervisor compiles the check away.
use core::cell::UnsafeCell;
use core::ops::{Deref, DerefMut};

/// L1: the table of domains.
pub const L_DOMAINS: u8 = 1;
/// L2: one domain's ring table.
pub const L_RINGS: u8 = 2;
/// L3: one ring's writer state.
pub const L_RING: u8 = 3;
/// Leaf: the viptables. Nothing is taken while it is held.
pub const L_VIPTABLES: u8 = 4;
/// Leaf: the domains being torn down. Nothing is taken while it is held.
pub const L_DYING: u8 = 5;
/// Leaf: one domain's records of preempted notify calls.
pub const L_RESUME: u8 = 6;

/// A mutual-exclusion lock of the hypervisor (Xen: `spinlock_t`).
///
/// # Safety
/// `lock` must not return while another caller holds the lock, and must
/// order the holder's accesses after the previous holder's (acquire and
/// release semantics).
pub unsafe trait RawMutex: Send + Sync + Sized {
    /// A new, unlocked lock; `None` when out of memory.
    fn try_new() -> Option<Self>;
    fn lock(&self);
    /// # Safety
    /// The caller holds the lock.
    unsafe fn unlock(&self);
}

/// A reader-writer lock of the hypervisor (Xen: `rwlock_t`).
///
/// # Safety
/// As [`RawMutex`] for writers; readers exclude writers only. Implementors
/// must not let a stream of readers starve a waiting writer.
pub unsafe trait RawRwLock: Send + Sync + Sized {
    /// A new, unlocked lock; `None` when out of memory.
    fn try_new() -> Option<Self>;
    fn read(&self);
    /// # Safety
    /// The caller holds the lock for reading.
    unsafe fn read_unlock(&self);
    fn write(&self);
    /// # Safety
    /// The caller holds the lock for writing.
    unsafe fn write_unlock(&self);
}

/// Out of memory for a lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoLockMem;

#[cfg(not(target_os = "none"))]
mod order {
    use core::cell::Cell;
    std::thread_local! {
        static HELD: Cell<u32> = const { Cell::new(0) };
    }

    pub fn acquire(level: u8) {
        HELD.with(|h| h.set(super::check(h.get(), level)));
    }

    pub fn release(level: u8) {
        HELD.with(|h| h.set(h.get() & !(1 << level)));
    }
}

#[cfg(all(target_os = "none", debug_assertions))]
mod order {
    pub fn acquire(level: u8) {
        let held = crate::xen::lock_levels();
        // SAFETY: this CPU's word, touched only by the CPU itself, which
        // runs one operation at a time.
        unsafe { *held = super::check(*held, level) };
    }

    pub fn release(level: u8) {
        let held = crate::xen::lock_levels();
        // SAFETY: as in `acquire`.
        unsafe { *held &= !(1 << level) };
    }
}

#[cfg(all(target_os = "none", not(debug_assertions)))]
mod order {
    pub fn acquire(_level: u8) {}
    pub fn release(_level: u8) {}
}

/// The set of held levels after taking `level`, or a panic if that breaks
/// the order.
#[cfg(any(not(target_os = "none"), debug_assertions))]
fn check(held: u32, level: u8) -> u32 {
    assert!(
        held >> level == 0,
        "V4V lock order violated: taking level {level} while holding {held:#b}"
    );
    held | (1 << level)
}

/// A reader-writer lock at level `L` over the raw lock `R`.
pub struct RwLock<T, const L: u8, R: RawRwLock> {
    raw: R,
    data: UnsafeCell<T>,
}

/// A mutual-exclusion lock at level `L` over the raw lock `R`.
pub struct Mutex<T, const L: u8, R: RawMutex> {
    raw: R,
    data: UnsafeCell<T>,
}

// SAFETY: the raw lock hands out `&T` only to readers together and `&mut T`
// only to one holder, as std's RwLock and Mutex do.
unsafe impl<T: Send, const L: u8, R: RawRwLock> Send for RwLock<T, L, R> {}
// SAFETY: as above (readers share `&T`, so `T: Sync` too).
unsafe impl<T: Send + Sync, const L: u8, R: RawRwLock> Sync for RwLock<T, L, R> {}
// SAFETY: as above.
unsafe impl<T: Send, const L: u8, R: RawMutex> Send for Mutex<T, L, R> {}
// SAFETY: one holder at a time.
unsafe impl<T: Send, const L: u8, R: RawMutex> Sync for Mutex<T, L, R> {}

pub struct ReadGuard<'a, T, const L: u8, R: RawRwLock>(&'a RwLock<T, L, R>);
pub struct WriteGuard<'a, T, const L: u8, R: RawRwLock>(&'a RwLock<T, L, R>);
pub struct MutexGuard<'a, T, const L: u8, R: RawMutex>(&'a Mutex<T, L, R>);

impl<T, const L: u8, R: RawRwLock> RwLock<T, L, R> {
    pub fn try_new(v: T) -> Result<Self, NoLockMem> {
        Ok(RwLock {
            raw: R::try_new().ok_or(NoLockMem)?,
            data: UnsafeCell::new(v),
        })
    }

    pub fn read(&self) -> ReadGuard<'_, T, L, R> {
        order::acquire(L);
        self.raw.read();
        ReadGuard(self)
    }

    pub fn write(&self) -> WriteGuard<'_, T, L, R> {
        order::acquire(L);
        self.raw.write();
        WriteGuard(self)
    }

    /// The value, by consuming the lock (no one else can hold it).
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T, const L: u8, R: RawMutex> Mutex<T, L, R> {
    pub fn try_new(v: T) -> Result<Self, NoLockMem> {
        Ok(Mutex {
            raw: R::try_new().ok_or(NoLockMem)?,
            data: UnsafeCell::new(v),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, T, L, R> {
        order::acquire(L);
        self.raw.lock();
        MutexGuard(self)
    }

    /// The value, by consuming the lock (no one else can hold it).
    pub fn into_inner(self) -> T {
        self.data.into_inner()
    }
}

impl<T, const L: u8, R: RawRwLock> Deref for ReadGuard<'_, T, L, R> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: held for reading: no writer until the guard drops.
        unsafe { &*self.0.data.get() }
    }
}

impl<T, const L: u8, R: RawRwLock> Drop for ReadGuard<'_, T, L, R> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock for reading.
        unsafe { self.0.raw.read_unlock() };
        order::release(L);
    }
}

impl<T, const L: u8, R: RawRwLock> Deref for WriteGuard<'_, T, L, R> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: held for writing: this guard is the only access.
        unsafe { &*self.0.data.get() }
    }
}

impl<T, const L: u8, R: RawRwLock> DerefMut for WriteGuard<'_, T, L, R> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`.
        unsafe { &mut *self.0.data.get() }
    }
}

impl<T, const L: u8, R: RawRwLock> Drop for WriteGuard<'_, T, L, R> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock for writing.
        unsafe { self.0.raw.write_unlock() };
        order::release(L);
    }
}

impl<T, const L: u8, R: RawMutex> Deref for MutexGuard<'_, T, L, R> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: held: this guard is the only access.
        unsafe { &*self.0.data.get() }
    }
}

impl<T, const L: u8, R: RawMutex> DerefMut for MutexGuard<'_, T, L, R> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`.
        unsafe { &mut *self.0.data.get() }
    }
}

impl<T, const L: u8, R: RawMutex> Drop for MutexGuard<'_, T, L, R> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock.
        unsafe { self.0.raw.unlock() };
        order::release(L);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::lock::{SimMutex, SimRwLock};

    type Rw<const L: u8> = RwLock<u8, L, SimRwLock>;
    type Mx<const L: u8> = Mutex<u8, L, SimMutex>;

    #[test]
    fn in_order_is_fine() {
        let a: Rw<L_DOMAINS> = RwLock::try_new(0).unwrap();
        let b: Mx<L_RING> = Mutex::try_new(0).unwrap();
        let _ga = a.read();
        let _gb = b.lock();
    }

    #[test]
    #[should_panic(expected = "lock order violated")]
    fn out_of_order_is_caught() {
        let a: Rw<L_DOMAINS> = RwLock::try_new(0).unwrap();
        let b: Mx<L_RING> = Mutex::try_new(0).unwrap();
        let _gb = b.lock();
        let _ga = a.read();
    }

    #[test]
    #[should_panic(expected = "lock order violated")]
    fn two_at_one_level_is_caught() {
        let a: Mx<L_RING> = Mutex::try_new(0).unwrap();
        let b: Mx<L_RING> = Mutex::try_new(0).unwrap();
        let _ga = a.lock();
        let _gb = b.lock();
    }

    #[test]
    fn release_forgets_the_level() {
        let a: Mx<L_RING> = Mutex::try_new(0).unwrap();
        drop(a.lock());
        let _again = a.lock();
    }
}
