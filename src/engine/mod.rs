//! The engine: every V4V operation, over an [`Env`].
//!
//! # Locks
//!
//! Four locks, always taken in this order (a lock may only be taken while
//! every lock held is of a lower level; `crate::lock` asserts it in host
//! builds):
//!
//! | level | lock | protects |
//! |---|---|---|
//! | L1 | `Engine::domains` (rw) | the set of domains with V4V state: read by every operation, written only to add a domain's state and at teardown |
//! | L2 | `DomainState::rings` (rw, one per domain) | that domain's ring table and its pinned-page count: read to find a ring, written by register/unregister and teardown |
//! | L3 | `Ring::state` (one per ring) | the ring's `tx_ptr` and its queue of waiting senders; held while a message is copied in, so writers to one ring are serialised and writers to different rings are not |
//! | leaf | `Engine::viptables` (rw) | the rule list; no other lock is ever taken while it is held. `Engine::vip_rules` mirrors its length (stored under the write lock), so that a send skips the lock while there are no rules |
//!
//! A ring's memory (its pinned frames) is fixed from register to
//! unregister, so it is read under L2 without L3; the words a guest owns in
//! it (`rx_ptr`, data already consumed) may change at any time and are
//! handled by `ring::mem`. Teardown takes L1 for writing, which waits for
//! every operation in flight: a send racing with a domain's destruction
//! either completes before it or finds the domain gone (-ENOTCONN).
//!
//! Per-domain counters of queued waits are atomics, changed under L3 of the
//! ring the wait sits on (and L1 read, which keeps the counting domain alive).
mod domain;
mod notify;
mod register;
mod send;
mod viptables_ops;

use crate::abi::{op, Addr};
use crate::env::{DomId, Env};
use crate::error::{Error, Result};
use crate::guest::GuestAddr;
use crate::lock::{RwLock, L_DOMAINS, L_VIPTABLES};
use crate::viptables::Viptables;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use domain::DomainState;

/// Most rings one domain may register.
pub const MAX_RINGS_PER_DOMAIN: usize = 1024;
/// Most frames one domain may have pinned for its rings (256 MiB).
pub const MAX_PAGES_PER_DOMAIN: usize = 65536;
/// Most waits one domain may have queued on rings (its own or others').
pub const MAX_WAITS_PER_DOMAIN: u32 = 4096;

/// All V4V state of the host: domains' rings and the viptables.
pub struct Engine<E: Env> {
    /// L1. Sorted by domain id.
    domains: RwLock<Vec<DomainState<E>>, L_DOMAINS>,
    viptables: RwLock<Viptables, L_VIPTABLES>,
    /// How many rules `viptables` holds, stored by every change while its
    /// write lock is held. A send that reads 0 goes ahead without the lock:
    /// it is ordered before the change that adds the first rule.
    vip_rules: AtomicUsize,
}

impl<E: Env> Default for Engine<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Env> Engine<E> {
    /// An engine with no rings and an empty viptables (usable in a `static`).
    pub const fn new() -> Self {
        Engine {
            domains: RwLock::new(Vec::new()),
            viptables: RwLock::new(Viptables::new()),
            vip_rules: AtomicUsize::new(0),
        }
    }

    /// Entry point of hypercall `v4v_op`: `cmd` and the five arguments as
    /// the ABI numbers them. Returns `>= 0` on success, `-errno` on failure.
    #[allow(clippy::too_many_arguments)]
    pub fn hypercall(&self, env: &E, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
        let (p1, p2, p3) = (GuestAddr(a1), GuestAddr(a2), GuestAddr(a3));
        let r = match cmd {
            op::REGISTER_RING => self.register_ring(env, p1, p2).map(|()| 0),
            op::UNREGISTER_RING => self.unregister_ring(env, p1).map(|()| 0),
            op::SEND => self.send(env, p1, p2, send::PayloadArg::Buffer(p3, a4), a5),
            op::NOTIFY => self.notify(env, p1).map(|()| 0),
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

    /// Domain `dom` is being destroyed: release its rings (unpinning their
    /// frames), drop its waits on other domains' rings, and tell the senders
    /// that waited on its rings (they will find them gone).
    pub fn domain_destroy(&self, env: &E, dom: DomId) {
        let mut domains = self.domains.write();
        if let Ok(i) = domains.binary_search_by_key(&dom, |d| d.id) {
            let state = domains.remove(i);
            state.release_all(env, |waiter| domain::wake_waiter(env, &domains, waiter));
        }
        for d in domains.iter() {
            d.drop_waits_of(dom);
        }
    }

    /// Human-readable dump of every domain's rings, pointers and waiters
    /// (Xen debug key).
    pub fn dump(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let domains = self.domains.read();
        writeln!(
            out,
            "V4V: {} domain(s) with state, {} viptables rule(s)",
            domains.len(),
            self.viptables.read().len()
        )?;
        for d in domains.iter() {
            d.dump(out)?;
        }
        Ok(())
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

    /// Make sure `dom` has a state entry (rings table, wait counter).
    fn ensure_domain(&self, dom: DomId) -> Result<()> {
        if find(&self.domains.read(), dom).is_some() {
            return Ok(());
        }
        let mut domains = self.domains.write();
        if let Err(i) = domains.binary_search_by_key(&dom, |d| d.id) {
            domains.try_reserve(1)?;
            domains.insert(i, DomainState::new(dom));
        }
        Ok(())
    }
}

/// The state of `dom` in a (locked) domain table.
fn find<E: Env>(domains: &[DomainState<E>], dom: DomId) -> Option<&DomainState<E>> {
    domains
        .binary_search_by_key(&dom, |d| d.id)
        .ok()
        .map(|i| &domains[i])
}

#[cfg(test)]
mod tests;
