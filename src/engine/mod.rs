//! The engine: every V4V operation, over an [`Env`].
//!
//! # Locks
//!
//! The locks are the hypervisor's own (`crate::lock`: Xen's ticket
//! `spinlock_t` and queued `rwlock_t`, both fair), always taken in this
//! order: a lock may only be taken while every lock held is of a lower
//! level, which host builds and debug builds of the hypervisor assert on
//! every acquisition.
//!
//! | level | lock | protects |
//! |---|---|---|
//! | L1 | `Engine::domains` (rw) | the table of domains with V4V state (shared pointers to each domain's state). Held only to look a domain up and take a reference, or (write) to add or remove one: never across a copy or any other work |
//! | L2 | `DomainState::rings` (rw, one per domain) | that domain's ring table, its pinned-page count and whether it is being torn down (`dead`): read to find a ring and held while a message is copied into it, written by register/unregister and teardown |
//! | L3 | `Ring::state` (one per ring) | the ring's `tx_ptr` and its queue of waiting senders; held while a message is copied in, so writers to one ring are serialised and writers to different rings are not |
//! | leaf | `Engine::viptables` (rw) | the rule list; no other lock is ever taken while it is held. `Engine::vip_rules` mirrors its length (stored under the write lock), so that a send skips the lock while there are no rules |
//! | leaf | `Engine::dying` | the domains being torn down, with how far their teardown got; no other lock is taken while it is held |
//! | leaf | `DomainState::resumes` (one per domain) | where that domain's preempted notify calls go on, one record a vCPU; no other lock is taken while it is held |
//!
//! **Lifetime of a domain's state.** An operation finds a domain under L1,
//! takes a reference to its state ([`Shared`]) and lets go of L1; the
//! state lives while any operation holds it. Teardown ([`Engine::domain_detach`])
//! removes the state from the table under L1 (after which no operation can
//! find the domain), then [`Engine::domain_relinquish`] takes its L2 for
//! writing, marks it `dead` and takes its rings out: every sender still
//! copying into one of them holds L2 for reading, so it finishes first, and
//! every later one sees `dead` (-ENOTCONN). Only then are the rings' frames
//! unmapped and unpinned, so a ring is never written after its teardown.
//!
//! **Bounded work.** Nothing holds a lock while it waits for a guest or
//! does work that grows with another domain's state, except the copy of one
//! message (at most `V4V_MAX_MSG_SIZE`, atomic by the ABI). Work that grows
//! (notify's entries, teardown's rings and frames, the debug dump) checks
//! for preemption between bounded steps, with no lock held, and continues
//! in a hypercall continuation (the engine keeps the progress, per vCPU) or
//! a later call of the preemptible teardown.
//!
//! A ring's memory (its pinned frames) is fixed from register to
//! unregister, so it is read under L2 without L3; the words a guest owns in
//! it (`rx_ptr`, data already consumed) may change at any time and are
//! handled by `ring::mem`.
//!
//! Per-domain counters of queued waits are atomics, changed under L3 of the
//! ring the wait sits on; the counting domain's state is held by reference.
//!
//! **XSM.** The hooks of [`Env`] that ask Xen's security policy (`xsm_*`)
//! are called with no V4V lock held: FLASK's access vector cache may
//! allocate and print (audit) on a miss.
mod domain;
mod notify;
mod register;
mod send;
mod teardown;
mod viptables_ops;

use crate::abi::{op, Addr};
use crate::env::{DomId, Env};
use crate::error::{Error, Result};
use crate::guest::GuestAddr;
use crate::lock::{Mutex, RwLock, L_DOMAINS, L_DYING, L_VIPTABLES};
use crate::shared::Shared;
use crate::viptables::Viptables;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use domain::DomainState;
use teardown::Dying;

/// Most rings one domain may register.
pub const MAX_RINGS_PER_DOMAIN: usize = 1024;
/// Most frames one domain may have pinned for its rings (256 MiB).
pub const MAX_PAGES_PER_DOMAIN: usize = 65536;
/// Most waits one domain may have queued on rings (its own or others').
pub const MAX_WAITS_PER_DOMAIN: u32 = 4096;

type DomainTable<E> = RwLock<Vec<Shared<DomainState<E>>>, L_DOMAINS, <E as Env>::RwLock>;

/// All V4V state of the host: domains' rings and the viptables.
pub struct Engine<E: Env> {
    /// L1. Sorted by domain id.
    domains: DomainTable<E>,
    viptables: RwLock<Viptables, L_VIPTABLES, E::RwLock>,
    /// How many rules `viptables` holds, stored by every change while its
    /// write lock is held. A send that reads 0 goes ahead without the lock:
    /// it is ordered before the change that adds the first rule.
    vip_rules: AtomicUsize,
    /// Domains whose teardown has begun and not finished.
    dying: Mutex<Vec<Dying<E>>, L_DYING, E::Mutex>,
}

/// An operation stopped at a preemption point; calling it again goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preempted;

/// What an operation that may be preempted returns: done, or stopped at a
/// preemption point (its progress recorded) to go on in a continuation.
enum Step<T> {
    Done(T),
    Continue,
}

impl<E: Env> Engine<E> {
    /// An engine with no rings and an empty viptables; `None` when the
    /// hypervisor has no memory for its locks.
    pub fn try_new() -> Option<Self> {
        Some(Engine {
            domains: RwLock::try_new(Vec::new()).ok()?,
            viptables: RwLock::try_new(Viptables::new()).ok()?,
            vip_rules: AtomicUsize::new(0),
            dying: Mutex::try_new(Vec::new()).ok()?,
        })
    }

    /// Entry point of hypercall `v4v_op`: `cmd` and the five arguments as
    /// the ABI numbers them. Returns `>= 0` on success, `-errno` on failure,
    /// or what [`Env::continuation`] returned when the operation was
    /// preempted.
    #[allow(clippy::too_many_arguments)]
    pub fn hypercall(&self, env: &E, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
        let (p1, p2, p3) = (GuestAddr(a1), GuestAddr(a2), GuestAddr(a3));
        let r = match cmd {
            op::NOTIFY => match self.notify(env, p1) {
                // The same call again; the engine kept its progress.
                Ok(Step::Continue) => return env.continuation(cmd, a1, a2, a3, a4, a5),
                Ok(Step::Done(())) => Ok(0),
                Err(e) => Err(e),
            },
            op::REGISTER_RING => self.register_ring(env, p1, p2).map(|()| 0),
            op::UNREGISTER_RING => self.unregister_ring(env, p1).map(|()| 0),
            op::SEND => self.send(env, p1, p2, send::PayloadArg::Buffer(p3, a4), a5),
            op::SENDV => self.send(env, p1, p2, send::PayloadArg::Iovs(p3, a4), a5),
            op::VIPTABLES_ADD => self.viptables_add(env, p1, a4).map(|()| 0),
            op::VIPTABLES_DEL => self.viptables_del(env, p1, a4 as i32).map(|()| 0),
            op::VIPTABLES_LIST => self.viptables_list(env, p1).map(|()| 0),
            _ => Err(Error::NoSys),
        };
        match r {
            Ok(v) => v as i64,
            Err(e) => e.errno(),
        }
    }

    /// Domain `dom` is being destroyed: all of its teardown, at once. For
    /// callers that cannot be preempted; the hypervisor uses
    /// [`Engine::domain_detach`] and [`Engine::domain_relinquish`].
    pub fn domain_destroy(&self, env: &E, dom: DomId) {
        self.domain_detach(env, dom);
        while self.domain_relinquish(env, dom).is_err() {}
    }

    /// Human-readable dump of every domain's rings, pointers and waiters
    /// (Xen debug key). Lets the CPU do pending work between domains and
    /// every few rings, with no lock held.
    pub fn dump(&self, env: &E, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let (ndom, nrules) = (self.domains.read().len(), self.viptables.read().len());
        writeln!(
            out,
            "V4V: {ndom} domain(s) with state, {nrules} viptables rule(s)"
        )?;
        let mut after = None;
        while let Some(d) = self.next_domain(after) {
            after = Some(d.id);
            d.dump(env, out)?;
            env.process_softirqs();
        }
        Ok(())
    }

    /// The first domain with state whose id is above `after` (the first
    /// of all for `None`), by reference: a cursor over the table that holds
    /// L1 only while it looks.
    fn next_domain(&self, after: Option<DomId>) -> Option<Shared<DomainState<E>>> {
        let domains = self.domains.read();
        let i = match after {
            None => 0,
            Some(id) => match domains.binary_search_by_key(&id, |d| d.id) {
                Ok(i) => i + 1,
                Err(i) => i,
            },
        };
        domains.get(i).cloned()
    }

    /// Whether the viptables let a message from `src` to `dst` through.
    fn viptables_allow(&self, src: Addr, dst: Addr) -> bool {
        self.vip_rules.load(Ordering::Acquire) == 0 || self.viptables.read().allows(src, dst)
    }

    /// Changes the viptables under their write lock, then publishes the
    /// new rule count for [`Engine::viptables_allow`].
    fn change_viptables<T>(&self, f: impl FnOnce(&mut Viptables) -> T) -> T {
        let mut table = self.viptables.write();
        let r = f(&mut table);
        self.vip_rules.store(table.len(), Ordering::Release);
        r
    }

    /// The state of `dom`, by reference, if it has any.
    fn domain(&self, dom: DomId) -> Option<Shared<DomainState<E>>> {
        find(&self.domains.read(), dom).cloned()
    }

    /// The state of the calling domain `dom`, made if it has none yet (the
    /// domain's first operation: XSM's "use" is asked then, and a domain it
    /// denies gets -EPERM and no state). Only a domain itself makes its
    /// state, so a dying domain (whose vCPUs are paused) never gets a new
    /// one.
    fn ensure_domain(&self, env: &E, dom: DomId) -> Result<Shared<DomainState<E>>> {
        if let Some(d) = self.domain(dom) {
            return Ok(d);
        }
        if !env.xsm_use() {
            return Err(Error::Perm);
        }
        // Allocated outside L1.
        let fresh = DomainState::try_new(dom)?;
        let fresh = Shared::try_new(fresh).map_err(|_| Error::NoMem)?;
        let mut domains = self.domains.write();
        match domains.binary_search_by_key(&dom, |d| d.id) {
            Ok(i) => Ok(domains[i].clone()),
            Err(i) => {
                domains.try_reserve(1)?;
                // A place in the dying list for when it goes, so that its
                // teardown never allocates.
                self.dying.lock().try_reserve(domains.len() + 1)?;
                domains.insert(i, fresh.clone());
                Ok(fresh)
            }
        }
    }
}

/// The state of `dom` in a (locked) domain table.
fn find<E: Env>(domains: &[Shared<DomainState<E>>], dom: DomId) -> Option<&Shared<DomainState<E>>> {
    domains
        .binary_search_by_key(&dom, |d| d.id)
        .ok()
        .map(|i| &domains[i])
}

#[cfg(test)]
mod tests;
