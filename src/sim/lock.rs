//! The simulated hypervisor's locks: a ticket lock and a queued
//! reader-writer lock, fair in the same way as Xen's `spinlock_t` and
//! `rwlock_t` (first come, first served among lockers; once a writer waits,
//! new readers queue behind it), so host tests see the fairness the engine
//! relies on. They spin, yielding the thread after a while: host tests run
//! more threads than the machine has cores.
use crate::lock::{RawMutex, RawRwLock};
use core::sync::atomic::{AtomicU32, Ordering};

fn relax(spins: &mut u32) {
    *spins += 1;
    if *spins < 64 {
        core::hint::spin_loop();
    } else {
        std::thread::yield_now();
    }
}

/// A ticket lock: each locker takes a number and waits for its turn.
#[derive(Default)]
pub struct SimMutex {
    next: AtomicU32,
    serving: AtomicU32,
}

// SAFETY: a ticket is held by exactly one locker, and only the holder
// advances `serving` (Release), which the next holder reads (Acquire).
unsafe impl RawMutex for SimMutex {
    fn try_new() -> Option<Self> {
        Some(SimMutex::default())
    }

    fn lock(&self) {
        let me = self.next.fetch_add(1, Ordering::Relaxed);
        let mut spins = 0;
        while self.serving.load(Ordering::Acquire) != me {
            relax(&mut spins);
        }
    }

    unsafe fn unlock(&self) {
        self.serving.fetch_add(1, Ordering::Release);
    }
}

/// Reader count in the low bits; the writer bits above them.
const WRITER_WAITING: u32 = 1 << 30;
const WRITER_LOCKED: u32 = 1 << 31;
const WRITER: u32 = WRITER_WAITING | WRITER_LOCKED;

/// A queued reader-writer lock (the shape of Xen's and Linux's qrwlock):
/// readers get in at once while no writer waits or holds; otherwise
/// everyone queues on a ticket lock, in order.
#[derive(Default)]
pub struct SimRwLock {
    state: AtomicU32,
    queue: SimMutex,
}

// SAFETY: a writer holds WRITER_LOCKED only while the reader count is 0
// and sets it with Acquire after seeing the last reader's Release; readers
// count themselves in only while no writer bit is set, or with the queue
// held after the writer released (Release/Acquire on `state`).
unsafe impl RawRwLock for SimRwLock {
    fn try_new() -> Option<Self> {
        Some(SimRwLock::default())
    }

    fn read(&self) {
        if self.state.fetch_add(1, Ordering::Acquire) & WRITER == 0 {
            return;
        }
        self.state.fetch_sub(1, Ordering::Relaxed);
        self.queue.lock();
        // The queue is ours: the writer ahead of us (if any) has the lock
        // or is waiting for readers that were in before it; wait until it
        // is done, then count ourselves in.
        let mut spins = 0;
        while self.state.load(Ordering::Relaxed) & WRITER != 0 {
            relax(&mut spins);
        }
        self.state.fetch_add(1, Ordering::Acquire);
        // SAFETY: taken above.
        unsafe { self.queue.unlock() };
    }

    unsafe fn read_unlock(&self) {
        self.state.fetch_sub(1, Ordering::Release);
    }

    fn write(&self) {
        self.queue.lock();
        // No new reader gets in from here; wait for the ones inside.
        self.state.fetch_or(WRITER_WAITING, Ordering::Relaxed);
        let mut spins = 0;
        while self
            .state
            .compare_exchange_weak(
                WRITER_WAITING,
                WRITER_LOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
        {
            relax(&mut spins);
        }
        // SAFETY: taken above; readers that queue behind us wait for
        // WRITER_LOCKED to clear.
        unsafe { self.queue.unlock() };
    }

    unsafe fn write_unlock(&self) {
        self.state.fetch_and(!WRITER_LOCKED, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[test]
    fn mutex_excludes() {
        let m = Arc::new((SimMutex::default(), AtomicU32::new(0)));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let m = &m;
                s.spawn(move || {
                    for _ in 0..2000 {
                        m.0.lock();
                        let v = m.1.load(Ordering::Relaxed);
                        m.1.store(v + 1, Ordering::Relaxed);
                        // SAFETY: locked above.
                        unsafe { m.0.unlock() };
                    }
                });
            }
        });
        assert_eq!(m.1.load(Ordering::Relaxed), 8000);
    }

    /// The property the engine's teardown relies on: readers that keep
    /// overlapping do not keep a writer out.
    #[test]
    fn readers_do_not_starve_a_writer() {
        let l = SimRwLock::default();
        let stop = AtomicBool::new(false);
        let waited = std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        l.read();
                        std::thread::sleep(Duration::from_micros(200));
                        // SAFETY: read-locked above.
                        unsafe { l.read_unlock() };
                    }
                });
            }
            std::thread::sleep(Duration::from_millis(20));
            let t0 = Instant::now();
            l.write();
            let waited = t0.elapsed();
            // SAFETY: write-locked above.
            unsafe { l.write_unlock() };
            stop.store(true, Ordering::Relaxed);
            waited
        });
        assert!(waited < Duration::from_secs(2), "writer waited {waited:?}");
    }

    #[test]
    fn writer_excludes_readers() {
        let l = SimRwLock::default();
        let inside = AtomicU32::new(0);
        std::thread::scope(|s| {
            for i in 0..4 {
                let (l, inside) = (&l, &inside);
                s.spawn(move || {
                    for _ in 0..500 {
                        if i == 0 {
                            l.write();
                            assert_eq!(inside.fetch_add(1000, Ordering::SeqCst), 0);
                            inside.fetch_sub(1000, Ordering::SeqCst);
                            // SAFETY: write-locked above.
                            unsafe { l.write_unlock() };
                        } else {
                            l.read();
                            assert!(inside.fetch_add(1, Ordering::SeqCst) < 1000);
                            inside.fetch_sub(1, Ordering::SeqCst);
                            // SAFETY: read-locked above.
                            unsafe { l.read_unlock() };
                        }
                    }
                });
            }
        });
    }
}
