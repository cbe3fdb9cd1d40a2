//! The engine's locks, each tagged with its level in the lock order.
//!
//! The order itself, and what each lock protects, is stated once in
//! `engine` (module documentation). Here every lock carries its level as a
//! const parameter; in host builds each acquisition asserts that the thread
//! holds no lock of the same or a higher level, so a test that takes locks
//! in the wrong order fails on the spot. Inside Xen the check compiles away.
use core::ops::{Deref, DerefMut};

/// L1: the table of domains.
pub const L_DOMAINS: u8 = 1;
/// L2: one domain's ring table.
pub const L_RINGS: u8 = 2;
/// L3: one ring's writer state.
pub const L_RING: u8 = 3;
/// Leaf: the viptables. Nothing is taken while it is held.
pub const L_VIPTABLES: u8 = 4;

#[cfg(not(target_os = "none"))]
mod order {
    use core::cell::Cell;
    std::thread_local! {
        static HELD: Cell<u8> = const { Cell::new(0) };
    }

    pub fn acquire(level: u8) {
        HELD.with(|h| {
            let held = h.get();
            assert!(
                held >> level == 0,
                "V4V lock order violated: taking level {level} while holding {held:#b}"
            );
            h.set(held | (1 << level));
        });
    }

    pub fn release(level: u8) {
        HELD.with(|h| h.set(h.get() & !(1 << level)));
    }
}

#[cfg(target_os = "none")]
mod order {
    pub fn acquire(_level: u8) {}
    pub fn release(_level: u8) {}
}

/// A reader-writer spin lock at level `L`.
pub struct RwLock<T, const L: u8>(spin::RwLock<T>);

/// A spin lock at level `L`.
pub struct Mutex<T, const L: u8>(spin::Mutex<T>);

pub struct ReadGuard<'a, T, const L: u8>(spin::RwLockReadGuard<'a, T>);
pub struct WriteGuard<'a, T, const L: u8>(spin::RwLockWriteGuard<'a, T>);
pub struct MutexGuard<'a, T, const L: u8>(spin::MutexGuard<'a, T>);

impl<T, const L: u8> RwLock<T, L> {
    pub const fn new(v: T) -> Self {
        RwLock(spin::RwLock::new(v))
    }

    pub fn read(&self) -> ReadGuard<'_, T, L> {
        order::acquire(L);
        ReadGuard(self.0.read())
    }

    pub fn write(&self) -> WriteGuard<'_, T, L> {
        order::acquire(L);
        WriteGuard(self.0.write())
    }

    /// The value, by consuming the lock (no one else can hold it).
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

impl<T, const L: u8> Mutex<T, L> {
    pub const fn new(v: T) -> Self {
        Mutex(spin::Mutex::new(v))
    }

    pub fn lock(&self) -> MutexGuard<'_, T, L> {
        order::acquire(L);
        MutexGuard(self.0.lock())
    }

    /// The value, by consuming the lock (no one else can hold it).
    pub fn into_inner(self) -> T {
        self.0.into_inner()
    }
}

macro_rules! guard {
    ($g:ident, $($mut:ident)?) => {
        impl<T, const L: u8> Deref for $g<'_, T, L> {
            type Target = T;
            fn deref(&self) -> &T {
                &self.0
            }
        }
        $(
            impl<T, const L: u8> DerefMut for $g<'_, T, L> {
                fn $mut(&mut self) -> &mut T {
                    &mut self.0
                }
            }
        )?
        impl<T, const L: u8> Drop for $g<'_, T, L> {
            fn drop(&mut self) {
                order::release(L);
            }
        }
    };
}
guard!(ReadGuard,);
guard!(WriteGuard, deref_mut);
guard!(MutexGuard, deref_mut);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_is_fine() {
        let a: RwLock<u8, L_DOMAINS> = RwLock::new(0);
        let b: Mutex<u8, L_RING> = Mutex::new(0);
        let _ga = a.read();
        let _gb = b.lock();
    }

    #[test]
    #[should_panic(expected = "lock order violated")]
    fn out_of_order_is_caught() {
        let a: RwLock<u8, L_DOMAINS> = RwLock::new(0);
        let b: Mutex<u8, L_RING> = Mutex::new(0);
        let _gb = b.lock();
        let _ga = a.read();
    }

    #[test]
    #[should_panic(expected = "lock order violated")]
    fn two_at_one_level_is_caught() {
        let a: Mutex<u8, L_RING> = Mutex::new(0);
        let b: Mutex<u8, L_RING> = Mutex::new(0);
        let _ga = a.lock();
        let _gb = b.lock();
    }
}
