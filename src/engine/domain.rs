//! Per-domain state: the rings a domain registered and its quotas.
use super::{MAX_PAGES_PER_DOMAIN, MAX_RINGS_PER_DOMAIN, MAX_WAITS_PER_DOMAIN};
use crate::abi::DOMID_ANY;
use crate::env::{DomId, Env};
use crate::error::{Error, Result};
use crate::lock::{RwLock, L_RINGS};
use crate::ring::{Ring, RingKey, RingState};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, Ordering};

/// A domain's rings, behind its L2 lock.
pub struct RingTable<E: Env> {
    /// Sorted by key.
    pub rings: Vec<Ring<E>>,
    /// Frames pinned for all of them.
    pub pages: usize,
}

impl<E: Env> RingTable<E> {
    pub fn index(&self, key: RingKey) -> core::result::Result<usize, usize> {
        self.rings.binary_search_by_key(&key, |r| r.key)
    }

    /// Whether a ring `key` of `needed` frames may be added (or replace the
    /// ring with that key): -ENOSPC past the per-domain limits.
    pub fn quota_allows(&self, key: RingKey, needed: usize) -> Result<()> {
        let (replaced_pages, new_ring) = match self.index(key) {
            Ok(i) => (self.rings[i].mem.frame_count(), false),
            Err(_) => (0, true),
        };
        if new_ring && self.rings.len() >= MAX_RINGS_PER_DOMAIN {
            return Err(Error::NoSpc);
        }
        if self.pages - replaced_pages + needed > MAX_PAGES_PER_DOMAIN {
            return Err(Error::NoSpc);
        }
        Ok(())
    }

    /// The ring a message from `sender` to `port` goes to: the one reserved
    /// for `sender`, else the one open to any sender.
    pub fn lookup(&self, port: u32, sender: DomId) -> Option<&Ring<E>> {
        let exact = self.index(RingKey {
            port,
            partner: sender,
        });
        let i = exact
            .or_else(|_| {
                self.index(RingKey {
                    port,
                    partner: DOMID_ANY,
                })
            })
            .ok()?;
        Some(&self.rings[i])
    }
}

/// Everything V4V holds for one domain.
pub struct DomainState<E: Env> {
    pub id: DomId,
    /// L2.
    pub rings: RwLock<RingTable<E>, L_RINGS>,
    /// Waits this domain has queued on rings, against `MAX_WAITS_PER_DOMAIN`.
    waits: AtomicU32,
}

impl<E: Env> DomainState<E> {
    pub fn new(id: DomId) -> Self {
        DomainState {
            id,
            rings: RwLock::new(RingTable {
                rings: Vec::new(),
                pages: 0,
            }),
            waits: AtomicU32::new(0),
        }
    }

    /// Count one more queued wait, or -ENOSPC at the quota.
    fn count_wait(&self) -> Result<()> {
        self.waits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < MAX_WAITS_PER_DOMAIN).then_some(w + 1)
            })
            .map(|_| ())
            .map_err(|_| Error::NoSpc)
    }

    fn uncount_wait(&self) {
        let r = self
            .waits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| w.checked_sub(1));
        debug_assert!(r.is_ok(), "wait counter underflow");
    }

    /// Queue this domain's wait for `space` bytes on a ring (or update the
    /// one it has there), counted against its quota.
    pub fn wait_on(&self, ring: &mut RingState, space: u32) -> Result<()> {
        if ring.waiter(self.id).is_some() {
            ring.add_waiter(self.id, space)
        } else {
            self.count_wait()?;
            ring.add_waiter(self.id, space)
                .inspect_err(|_| self.uncount_wait())
        }
    }

    /// Drop this domain's wait on a ring, if it has one.
    pub fn stop_waiting(&self, ring: &mut RingState) {
        if ring.remove_waiter(self.id) {
            self.uncount_wait();
        }
    }

    pub fn waits(&self) -> u32 {
        self.waits.load(Ordering::Acquire)
    }

    /// Drop every wait `dom` queued on this domain's rings (teardown of
    /// `dom`, whose counter is gone with it).
    pub fn drop_waits_of(&self, dom: DomId) {
        let table = self.rings.read();
        for r in &table.rings {
            r.state.lock().remove_waiter(dom);
        }
    }

    /// Release every ring (teardown of this domain): unpin all frames and
    /// report each domain that was waiting on one of them.
    pub fn release_all(self, env: &E, mut on_waiter: impl FnMut(DomId)) {
        let table = self.rings.into_inner();
        for ring in table.rings {
            release_ring(env, ring, &mut on_waiter);
        }
    }

    pub fn dump(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let table = self.rings.read();
        writeln!(
            out,
            "  dom{}: {} ring(s), {} frame(s) pinned, {} wait(s) queued",
            self.id,
            table.rings.len(),
            table.pages,
            self.waits()
        )?;
        for r in &table.rings {
            let st = r.state.lock();
            write!(
                out,
                "    port {:#x} partner {}: len {} tx {} rx {} frames {}",
                r.key.port,
                r.key.partner,
                r.len().get(),
                st.tx.get(),
                r.mem.read_rx_ptr(),
                r.mem.frame_count()
            )?;
            for w in &st.waiters {
                write!(out, " wait(dom{} {}B)", w.dom, w.space)?;
            }
            writeln!(out)?;
        }
        Ok(())
    }
}

/// Unmap and unpin a ring's frames and report each domain that waited on it.
pub fn release_ring<E: Env>(env: &E, ring: Ring<E>, on_waiter: &mut impl FnMut(DomId)) {
    let state = ring.state.into_inner();
    for w in &state.waiters {
        on_waiter(w.dom);
    }
    unpin_all(env, ring.mem.release(env));
}

pub fn unpin_all<E: Env>(env: &E, frames: Vec<E::Frame>) {
    for f in frames {
        env.unpin_frame(f);
    }
}

/// A wait of `dom` has been taken off its ring (the space came, or the ring
/// went): give back its quota, if it is still in `domains`, and raise
/// VIRQ_V4V in it so that it looks again.
pub fn wake_waiter<E: Env>(env: &E, domains: &[DomainState<E>], dom: DomId) {
    if let Some(d) = super::find(domains, dom) {
        d.uncount_wait();
    }
    env.raise_virq(dom);
}
