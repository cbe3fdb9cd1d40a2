//! Teardown of a dying domain's V4V state, in bounded steps.
//!
//! [`Engine::domain_detach`] is quick and cannot fail: it takes the domain
//! out of the table (so that no operation finds it any more) and records
//! it as dying. [`Engine::domain_relinquish`] then does the work, which
//! grows with what the domain had (up to 1024 rings and 65,536 pinned
//! frames, and its waits on every other domain's rings), in steps of at
//! most [`UNPIN_PER_STEP`] frames or [`RINGS_PER_STEP`] rings, looking for
//! pending work between steps with no lock held. When there is some, it
//! stops and says so ([`Preempted`]); Xen calls it again from the
//! domain's relinquish path (a continuation of the destroy domctl), and it
//! goes on where it stopped.
use super::domain::{wake_all, DomainState};
use super::{Engine, Preempted};
use crate::env::{DomId, Env};
use crate::ring::Ring;
use crate::shared::Shared;
use alloc::vec::Vec;

/// Frames unpinned between two looks for pending work.
pub const UNPIN_PER_STEP: usize = 128;
/// Rings of other domains searched for the dying domain's waits between
/// two looks for pending work.
pub const RINGS_PER_STEP: usize = 256;

/// A domain whose teardown has begun.
pub struct Dying<E: Env> {
    id: DomId,
    /// How far it got; `None` while a CPU is working on it.
    work: Option<Work<E>>,
}

struct Work<E: Env> {
    state: Shared<DomainState<E>>,
    stage: Stage<E>,
}

enum Stage<E: Env> {
    /// Its rings are still in its table.
    Start,
    /// Its rings, taken out of the table, released one after the other;
    /// `frames` are the current ring's, unmapped and still pinned.
    Rings {
        rings: Vec<Ring<E>>,
        frames: Vec<E::Frame>,
    },
    /// Its waits on other domains' rings, dropped domain by domain: the
    /// last domain finished and the next ring index in the one after it.
    Waits { after: Option<DomId>, ring: usize },
}

impl<E: Env> Engine<E> {
    /// Domain `dom` is dying: no operation finds it from now on. Bounded
    /// (a removal from the domain table); never allocates, so it cannot
    /// fail. Its vCPUs are paused, so it makes no calls of its own any more.
    pub fn domain_detach(&self, env: &E, dom: DomId) {
        // Most domains never use V4V: their teardown takes no write lock.
        // (A dying domain makes no calls, so it cannot gain state now.)
        if self.domain(dom).is_none() {
            return;
        }
        let state = {
            let mut domains = self.domains.write();
            match domains.binary_search_by_key(&dom, |d| d.id) {
                Ok(i) => domains.remove(i),
                Err(_) => return,
            }
        };
        let mut work = Work {
            state,
            stage: Stage::Start,
        };
        let mut dying = self.dying.lock();
        // `ensure_domain` reserved a place for every domain with state.
        if dying.len() < dying.capacity() {
            dying.push(Dying {
                id: dom,
                work: Some(work),
            });
            return;
        }
        drop(dying);
        // Unreachable (ensure_domain keeps a place for every domain with
        // state); should it happen, the whole teardown is done now.
        debug_assert!(false, "no place reserved for a dying domain");
        while self.advance(&mut work, env).is_err() {}
    }

    /// Go on with the teardown of `dom`: `Ok` when nothing of it is left
    /// (or it had nothing), `Err(Preempted)` when the CPU has other work
    /// first; call again then.
    pub fn domain_relinquish(&self, env: &E, dom: DomId) -> Result<(), Preempted> {
        let work = {
            let mut dying = self.dying.lock();
            let Some(d) = dying.iter_mut().find(|d| d.id == dom) else {
                return Ok(());
            };
            match d.work.take() {
                Some(w) => w,
                // Another CPU is at it: done when it is.
                None => return Err(Preempted),
            }
        };
        let mut work = work;
        let r = self.advance(&mut work, env);
        let mut dying = self.dying.lock();
        if let Some(i) = dying.iter().position(|d| d.id == dom) {
            if r.is_ok() {
                // Nothing allocates or frees here: the place stays reserved.
                dying.swap_remove(i);
            } else {
                dying[i].work = Some(work);
            }
        }
        r
    }

    /// One or more steps of a teardown, until it is done or preempted.
    fn advance(&self, work: &mut Work<E>, env: &E) -> Result<(), Preempted> {
        let dom = work.state.id;
        loop {
            match &mut work.stage {
                Stage::Start => {
                    // Senders still copying into one of its rings hold L2
                    // for reading: they finish before this; later ones see
                    // `dead`.
                    let mut table = work.state.rings.write();
                    table.dead = true;
                    table.pages = 0;
                    let rings = core::mem::take(&mut table.rings);
                    drop(table);
                    work.stage = Stage::Rings {
                        rings,
                        frames: Vec::new(),
                    };
                }
                Stage::Rings { rings, frames } => {
                    if !frames.is_empty() {
                        for f in frames.drain(frames.len().saturating_sub(UNPIN_PER_STEP)..) {
                            env.unpin_frame(f);
                        }
                    } else if let Some(ring) = rings.pop() {
                        // Its waiters learn that it is gone.
                        wake_all(env, ring.state.into_inner());
                        *frames = ring.mem.release(env);
                        continue;
                    } else {
                        work.stage = Stage::Waits {
                            after: None,
                            ring: 0,
                        };
                        continue;
                    }
                    if env.preempt_check() {
                        return Err(Preempted);
                    }
                }
                Stage::Waits { after, ring } => {
                    // Every wait gives its place back when it goes, so the
                    // count says when none is left anywhere.
                    if work.state.waits() == 0 {
                        return Ok(());
                    }
                    // Waits left when every domain is searched sit on rings
                    // of another dying domain, out of its table and not yet
                    // released: they go (and give their place back) when
                    // that domain's teardown releases those rings.
                    let Some(other) = self.next_domain(*after) else {
                        return Ok(());
                    };
                    let table = other.rings.read();
                    let end = table.rings.len().min(*ring + RINGS_PER_STEP);
                    for r in table.rings.get(*ring..end).unwrap_or(&[]) {
                        r.state.lock().remove_waiter(dom);
                    }
                    if end >= table.rings.len() {
                        *after = Some(other.id);
                        *ring = 0;
                    } else {
                        *ring = end;
                    }
                    drop(table);
                    if env.preempt_check() {
                        return Err(Preempted);
                    }
                }
            }
        }
    }
}
