//! A registered receive ring: its key, its memory and its writer state.
pub mod geometry;
pub mod mem;

use crate::env::{DomId, Env};
use crate::error::{Error, Result};
use crate::lock::{Mutex, L_RING};
use alloc::vec::Vec;
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

/// A sender queued on a ring until `space` bytes of payload fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Waiter {
    pub dom: DomId,
    pub space: u32,
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

    /// Record that `dom` waits for `space` bytes (updating its wait if it
    /// has one). Quota accounting is `DomainState::wait_on`'s.
    pub fn add_waiter(&mut self, dom: DomId, space: u32) -> Result<()> {
        if let Some(i) = self.waiter(dom) {
            self.waiters[i].space = space;
            return Ok(());
        }
        self.waiters.try_reserve(1).map_err(|_| Error::NoMem)?;
        self.waiters.push(Waiter { dom, space });
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
    pub state: Mutex<RingState, L_RING>,
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
