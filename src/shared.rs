//! [`Shared`]: a reference-counted pointer whose allocation may fail.
//!
//! `alloc::sync::Arc` aborts when it cannot allocate, and its fallible
//! constructor is not stable; every allocation a guest can cause must fail
//! cleanly instead (-ENOMEM). The engine needs shared ownership for one
//! thing: an operation that found a domain's state in the domain table
//! keeps it alive after it has let go of the table's lock, so that no
//! global lock is held across a copy, and teardown can take the state out
//! of the table while such operations finish with it.
use alloc::alloc::{alloc, dealloc, Layout};
use core::ops::Deref;
use core::ptr::{self, NonNull};
use core::sync::atomic::{fence, AtomicUsize, Ordering};

struct Inner<T> {
    count: AtomicUsize,
    value: T,
}

/// Shared ownership of a `T` on the heap; the last owner drops it.
pub struct Shared<T> {
    ptr: NonNull<Inner<T>>,
}

// SAFETY: like `Arc<T>`: the value is reached from several threads (Sync)
// and dropped on whichever holds the last reference (Send).
unsafe impl<T: Send + Sync> Send for Shared<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Moves `value` to the heap; gives it back when there is no memory.
    pub fn try_new(value: T) -> Result<Shared<T>, T> {
        let layout = Layout::new::<Inner<T>>();
        // SAFETY: `Inner` holds an AtomicUsize, so the layout is not zero-sized.
        let raw = unsafe { alloc(layout) }.cast::<Inner<T>>();
        let Some(ptr) = NonNull::new(raw) else {
            return Err(value);
        };
        // SAFETY: `ptr` is a fresh allocation of the right layout.
        unsafe {
            ptr.as_ptr().write(Inner {
                count: AtomicUsize::new(1),
                value,
            })
        };
        Ok(Shared { ptr })
    }

    fn inner(&self) -> &Inner<T> {
        // SAFETY: the allocation lives while any `Shared` of it does, and
        // only shared references to it are ever formed.
        unsafe { self.ptr.as_ref() }
    }

    /// How many `Shared` point at this value now (for assertions).
    pub fn owners(this: &Shared<T>) -> usize {
        this.inner().count.load(Ordering::Acquire)
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        // Relaxed, as Arc: the new owner was handed a reference by an
        // existing one, which orders everything before.
        let old = self.inner().count.fetch_add(1, Ordering::Relaxed);
        // Each owner is an operation in flight on some CPU or the domain
        // table: nowhere near the limit. Stop rather than wrap.
        assert!(
            old < isize::MAX as usize,
            "Shared: reference count overflow"
        );
        Shared { ptr: self.ptr }
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

impl<T> Drop for Shared<T> {
    fn drop(&mut self) {
        if self.inner().count.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        // Every other owner's use of the value happens before its drop.
        fence(Ordering::Acquire);
        // SAFETY: this was the last reference: nothing else can reach the
        // allocation, which `try_new` made with this layout.
        unsafe {
            ptr::drop_in_place(self.ptr.as_ptr());
            dealloc(self.ptr.as_ptr().cast(), Layout::new::<Inner<T>>());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    struct Counted<'a>(&'a AtomicU32);
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn last_owner_drops() {
        let drops = AtomicU32::new(0);
        let a = Shared::try_new(Counted(&drops)).ok().unwrap();
        let b = a.clone();
        assert_eq!(Shared::owners(&a), 2);
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn owners_on_many_threads() {
        let drops = AtomicU32::new(0);
        let a = Shared::try_new(Counted(&drops)).ok().unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                let mine = a.clone();
                s.spawn(move || {
                    for _ in 0..1000 {
                        drop(mine.clone());
                    }
                    drop(mine);
                });
            }
        });
        assert_eq!(Shared::owners(&a), 1);
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
