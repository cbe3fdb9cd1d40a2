//! Per-domain state: the rings a domain registered and its quotas.
use super::{MAX_PAGES_PER_DOMAIN, MAX_RINGS_PER_DOMAIN, MAX_WAITS_PER_DOMAIN};
use crate::abi::DOMID_ANY;
use crate::env::{DomId, Env};
use crate::error::{Error, Result};
use crate::lock::{Mutex, RwLock, L_RESUME, L_RINGS};
use crate::ring::{Ring, RingKey, RingState, WaitQuota, Waiter};
use crate::shared::Shared;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

/// Rings the debug dump prints between two looks for pending work.
const DUMP_RINGS_PER_STEP: usize = 16;

/// A domain's rings, behind its L2 lock.
pub struct RingTable<E: Env> {
    /// Sorted by key.
    pub rings: Vec<Ring<E>>,
    /// Frames pinned for all of them.
    pub pages: usize,
    /// The domain is being torn down: its rings are gone or going, and no
    /// ring may be added.
    pub dead: bool,
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

/// Where a preempted notify goes on: the call (its vCPU and ring data
/// address) and its progress (see `notify`).
struct Resume {
    vcpu: u32,
    rd: u64,
    progress: u32,
}

/// Everything V4V holds for one domain.
pub struct DomainState<E: Env> {
    pub id: DomId,
    /// L2.
    pub rings: RwLock<RingTable<E>, L_RINGS, E::RwLock>,
    /// Waits this domain has queued on rings, against `MAX_WAITS_PER_DOMAIN`.
    waits: Shared<WaitQuota>,
    /// Preempted notify calls, at most one a vCPU (a leaf lock); `resuming`
    /// counts them, so that a notify skips the lock when there are none.
    resumes: Mutex<Vec<Resume>, L_RESUME, E::Mutex>,
    resuming: AtomicUsize,
}

impl<E: Env> DomainState<E> {
    pub fn try_new(id: DomId) -> Result<Self> {
        let table = RingTable {
            rings: Vec::new(),
            pages: 0,
            dead: false,
        };
        Ok(DomainState {
            id,
            rings: RwLock::try_new(table).map_err(|_| Error::NoMem)?,
            waits: Shared::try_new(WaitQuota::new(MAX_WAITS_PER_DOMAIN))
                .map_err(|_| Error::NoMem)?,
            resumes: Mutex::try_new(Vec::new()).map_err(|_| Error::NoMem)?,
            resuming: AtomicUsize::new(0),
        })
    }

    /// The progress a preempted notify of `vcpu` with ring data `rd`
    /// recorded, taken (0 for a fresh call). A record of that vCPU for
    /// another call is dropped: the vCPU made another call meanwhile, and
    /// the preempted one starts over when it comes back.
    pub fn take_resume(&self, vcpu: u32, rd: u64) -> u32 {
        if self.resuming.load(Ordering::Acquire) == 0 {
            return 0;
        }
        let mut resumes = self.resumes.lock();
        let Some(i) = resumes.iter().position(|r| r.vcpu == vcpu) else {
            return 0;
        };
        let r = resumes.swap_remove(i);
        self.resuming.store(resumes.len(), Ordering::Release);
        if r.rd == rd {
            r.progress
        } else {
            0
        }
    }

    /// Record where a preempted notify of `vcpu` goes on; false when there
    /// is no memory for the record (the call then goes on without
    /// stopping).
    pub fn save_resume(&self, vcpu: u32, rd: u64, progress: u32) -> bool {
        let mut resumes = self.resumes.lock();
        if let Some(r) = resumes.iter_mut().find(|r| r.vcpu == vcpu) {
            *r = Resume { vcpu, rd, progress };
            return true;
        }
        if resumes.try_reserve(1).is_err() {
            return false;
        }
        resumes.push(Resume { vcpu, rd, progress });
        self.resuming.store(resumes.len(), Ordering::Release);
        true
    }

    /// Queue this domain's wait for `space` bytes on a ring (or update the
    /// one it has there), counted against its quota.
    pub fn wait_on(&self, ring: &mut RingState, space: u32) -> Result<()> {
        ring.add_waiter(self.id, space, &self.waits)
    }

    /// Drop this domain's wait on a ring, if it has one.
    pub fn stop_waiting(&self, ring: &mut RingState) {
        ring.remove_waiter(self.id);
    }

    pub fn waits(&self) -> u32 {
        self.waits.queued()
    }

    /// Print this domain's rings, every few of them letting the CPU do
    /// pending work with no lock held (the ring table may change in
    /// between; the dump goes on after the last key it printed).
    pub fn dump(&self, env: &E, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        {
            let table = self.rings.read();
            writeln!(
                out,
                "  dom{}: {} ring(s), {} frame(s) pinned, {} wait(s) queued",
                self.id,
                table.rings.len(),
                table.pages,
                self.waits()
            )?;
        }
        let mut after: Option<RingKey> = None;
        loop {
            let table = self.rings.read();
            let start = match after {
                None => 0,
                Some(k) => table.index(k).map_or_else(|i| i, |i| i + 1),
            };
            let step = table.rings.get(start..).unwrap_or(&[]);
            if step.is_empty() {
                return Ok(());
            }
            for r in step.iter().take(DUMP_RINGS_PER_STEP) {
                dump_ring(r, out)?;
                after = Some(r.key);
            }
            drop(table);
            env.process_softirqs();
        }
    }
}

fn dump_ring<E: Env>(r: &Ring<E>, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
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
    writeln!(out)
}

/// Unmap and unpin a ring's frames at once, and tell each domain that
/// waited on it (register's replace and error paths, unregister: at most
/// one ring's worth of frames).
pub fn release_ring<E: Env>(env: &E, ring: Ring<E>) {
    wake_all(env, ring.state.into_inner());
    unpin_all(env, ring.mem.release(env));
}

/// The ring is gone: each domain that waited on it gets VIRQ_V4V and will
/// find it gone (its wait's quota goes back as the wait is dropped).
pub fn wake_all<E: Env>(env: &E, state: RingState) {
    for w in state.waiters {
        wake(env, w);
    }
}

/// A wait is over (the space came, or the ring went): it gives its place
/// in its domain's quota back, and VIRQ_V4V tells the domain to look again.
pub fn wake<E: Env>(env: &E, w: Waiter) {
    let dom = w.dom;
    drop(w);
    env.raise_virq(dom);
}

pub fn unpin_all<E: Env>(env: &E, frames: Vec<E::Frame>) {
    for f in frames {
        env.unpin_frame(f);
    }
}
