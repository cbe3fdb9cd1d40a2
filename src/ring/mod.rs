//! A registered receive ring: its key, its memory and its writer state.
pub mod geometry;
pub mod mem;

use crate::env::{DomId, Env};
use crate::error::{Error, Result};
use crate::lock::{Mutex, L_RING};
use crate::shared::Shared;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};
use geometry::{RingLen, RingOffset};
use mem::RingMem;

/// What identifies a ring inside its owner's table: the owner's domain is
/// implied by the table it sits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct RingKey {
    pub port: u32,
    /// The only domain allowed to send, or `DOMID_ANY`.
    pub partner: DomId,
}

/// How many waits a domain has queued on rings, against its quota. Shared
/// by the domain's state and each of its waits, so that a wait gives its
/// place back when it goes, whoever removes it and whether or not its
/// domain still has state.
pub struct WaitQuota {
    queued: AtomicU32,
    limit: u32,
}

impl WaitQuota {
    pub const fn new(limit: u32) -> Self {
        WaitQuota {
            queued: AtomicU32::new(0),
            limit,
        }
    }

    pub fn queued(&self) -> u32 {
        self.queued.load(Ordering::Acquire)
    }

    /// One more wait, or -ENOSPC at the limit.
    fn take(&self) -> Result<()> {
        self.queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < self.limit).then_some(w + 1)
            })
            .map(|_| ())
            .map_err(|_| Error::NoSpc)
    }

    fn give_back(&self) {
        let r = self
            .queued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| w.checked_sub(1));
        debug_assert!(r.is_ok(), "wait quota underflow");
    }
}

/// A sender queued on a ring until `space` bytes of payload fit. It holds
/// a place in its domain's quota until it is dropped.
pub struct Waiter {
    pub dom: DomId,
    pub space: u32,
    quota: Shared<WaitQuota>,
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.quota.give_back();
    }
}

/// The mutable part of a ring, behind the per-ring lock (L3).
pub struct RingState {
    /// Where the next message goes. Xen's own copy: the `tx_ptr` in guest
    /// memory is only ever written from this, never read back.
    pub tx: RingOffset,
    /// Senders waiting for space, at most one entry per domain.
    pub waiters: Vec<Waiter>,
}

impl RingState {
    pub fn waiter(&self, dom: DomId) -> Option<usize> {
        self.waiters.iter().position(|w| w.dom == dom)
    }

    /// Record that `dom` waits for `space` bytes, updating its wait if it
    /// has one, else taking a place in its `quota` (-ENOSPC when full).
    pub fn add_waiter(&mut self, dom: DomId, space: u32, quota: &Shared<WaitQuota>) -> Result<()> {
        if let Some(i) = self.waiter(dom) {
            self.waiters[i].space = space;
            return Ok(());
        }
        self.waiters.try_reserve(1).map_err(|_| Error::NoMem)?;
        quota.take()?;
        self.waiters.push(Waiter {
            dom,
            space,
            quota: quota.clone(),
        });
        Ok(())
    }

    /// Drop `dom`'s wait, if any; true when one was dropped.
    pub fn remove_waiter(&mut self, dom: DomId) -> bool {
        match self.waiter(dom) {
            Some(i) => {
                self.waiters.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

/// A registered ring.
pub struct Ring<E: Env> {
    pub key: RingKey,
    pub mem: RingMem<E::Frame>,
    pub state: Mutex<RingState, L_RING, E::Mutex>,
}

impl<E: Env> Ring<E> {
    pub fn len(&self) -> RingLen {
        self.mem.len()
    }

    /// The receiver's read position, read once from guest memory and
    /// validated; `None` if the guest wrote something unusable.
    pub fn rx(&self) -> Option<RingOffset> {
        self.len().offset(self.mem.read_rx_ptr())
    }
}
