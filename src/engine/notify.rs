//! notify: wake senders that now fit, and answer questions about rings.
//!
//! A notify can be long: up to `V4V_MAXENT` entries, each checked against
//! every viptables rule, after a pass over all of the caller's rings and
//! their waiters. It is done in bounded steps, with a look for pending work
//! between them (no lock held); when the CPU has other work the hypercall
//! continues later: Xen makes the same call again from the same vCPU (a
//! continuation), and the engine keeps where it got to in the caller's
//! state, for that vCPU and ring data address, so that the guest's
//! arguments never change:
//!
//! | progress | where the call goes on |
//! |---|---|
//! | `0 ..= 0xfff` | waking: at the caller's ring of that index (0: a fresh call) |
//! | `0x1000 + e` | the entries: at entry `e` |
use super::domain::{wake, DomainState};
use super::{Engine, Step};
use crate::abi::{
    Addr, RingDataEnt, RingDataFlags, RingDataHeader, MAXENT, PORT_NONE, RING_DATA_ENT_OFFSET,
    RING_DATA_MAGIC,
};
use crate::env::{Env, SendAccess};
use crate::error::{Error, Result};
use crate::guest::GuestAddr;
use core::sync::atomic::Ordering;

const ENT_SIZE: u64 = core::mem::size_of::<RingDataEnt>() as u64;

/// Progress values at and above this are entry indexes (plus it).
const ENTRIES: u32 = 0x1000;
/// Most entries read, answered and written back in one step.
const ENTRIES_PER_STEP: usize = 32;
/// Rule matches a step may make: with many rules a step takes fewer
/// entries (at least one).
const MATCHES_PER_STEP: usize = 8192;
/// Rings plus waiters the waking pass looks at in one step.
const WAKE_WORK_PER_STEP: usize = 256;

impl<E: Env> Engine<E> {
    /// notify, from where a preempted call of this vCPU got to, if any.
    pub(super) fn notify(&self, env: &E, rd: GuestAddr) -> Result<Step<()>> {
        let caller = env.current_domain();
        let nent = if rd.is_null() {
            0
        } else {
            let hdr: RingDataHeader = rd.read(env)?;
            if hdr.magic != RING_DATA_MAGIC || hdr.pad != 0 || hdr.nent > MAXENT {
                return Err(Error::Inval);
            }
            hdr.nent
        };
        let me = if nent > 0 {
            Some(self.ensure_domain(env, caller)?)
        } else {
            self.domain(caller)
        };
        let Some(me) = me else {
            return Ok(Step::Done(()));
        };
        let vcpu = env.current_vcpu();
        let progress = me.take_resume(vcpu, rd.0);
        // Stop here if the CPU has other work and the progress could be kept.
        let mut stop = |progress: u32| env.preempt_check() && me.save_resume(vcpu, rd.0, progress);
        let mut first_ent = 0;
        if progress < ENTRIES {
            if wake_fitting(env, &me, progress as usize, &mut stop) {
                return Ok(Step::Continue);
            }
        } else {
            // The guest may have changed the count meanwhile.
            first_ent = (progress - ENTRIES).min(nent);
        }
        let mut at = first_ent as usize;
        let nent = nent as usize;
        while at < nent {
            if at > first_ent as usize && stop(ENTRIES + at as u32) {
                return Ok(Step::Continue);
            }
            at += self.answer_step(env, rd, &me, at, nent - at)?;
        }
        Ok(Step::Done(()))
    }

    /// Answer the entries from `first` on (at most `left`, as many as one
    /// step takes): read them once, check the viptables for all of them
    /// under one lock, look each ring up, write them back. Returns how many
    /// were answered.
    fn answer_step(
        &self,
        env: &E,
        rd: GuestAddr,
        me: &DomainState<E>,
        first: usize,
        left: usize,
    ) -> Result<usize> {
        let rules = self.vip_rules.load(Ordering::Acquire);
        let n = left
            .min(ENTRIES_PER_STEP)
            .min((MATCHES_PER_STEP / rules.max(1)).max(1));
        let at = rd.offset(RING_DATA_ENT_OFFSET as u64 + ENT_SIZE * first as u64)?;
        let mut ents = [RingDataEnt::default(); ENTRIES_PER_STEP];
        let ents = &mut ents[..n];
        at.read_into(env, ents)?;
        // A ring the caller may not send to reads as not existing. notify
        // has no source port; rules are matched with PORT_NONE.
        let mut allowed = [true; ENTRIES_PER_STEP];
        if rules > 0 {
            let table = self.viptables.read();
            let src = Addr {
                port: PORT_NONE,
                domain: me.id,
            };
            for (ok, ent) in allowed.iter_mut().zip(ents.iter()) {
                *ok = table.allows(src, ent.ring);
            }
        }
        for i in 0..n {
            let r = self.query(env, me, allowed[i], &mut ents[i]);
            if let Err(e) = r {
                // The entries answered so far go back, as they would have
                // one by one.
                at.write_slice(env, &ents[..i])?;
                return Err(e);
            }
        }
        at.write_slice(env, ents)?;
        Ok(n)
    }

    /// Fill in one entry: find the ring as send would, report its state and
    /// queue or drop the caller's wait on it. A ring of a domain that XSM
    /// does not let the caller send to reads as not existing, as one the
    /// viptables reject does (`allowed`).
    fn query(
        &self,
        env: &E,
        me: &DomainState<E>,
        allowed: bool,
        ent: &mut RingDataEnt,
    ) -> Result<()> {
        ent.flags = 0;
        ent.max_message_size = 0;
        let dst = ent.ring;
        if !allowed {
            return Ok(());
        }
        let Some(dest) = self.domain(dst.domain) else {
            return Ok(());
        };
        if env.xsm_send(dst.domain) != SendAccess::Allowed {
            return Ok(());
        }
        let table = dest.rings.read();
        let Some(ring) = table.lookup(dst.port, me.id).filter(|_| !table.dead) else {
            return Ok(());
        };
        let len = ring.len();
        let required = ent.space_required;
        let mut flags = RingDataFlags::EXISTS;
        let mut st = ring.state.lock();
        let rx = ring.rx();
        if rx == Some(st.tx) {
            flags |= RingDataFlags::EMPTY;
        }
        if len.fits(rx, st.tx, required) {
            flags |= RingDataFlags::SUFFICIENT;
            me.stop_waiting(&mut st);
        } else {
            // As the ABI says, even a request that can never fit this ring
            // is queued (it counts against the caller's wait quota and goes
            // with the ring).
            me.wait_on(&mut st, required)?;
            flags |= RingDataFlags::PENDING;
        }
        ent.flags = flags.bits();
        ent.max_message_size = len.max_message_size();
        Ok(())
    }
}

/// For every ring of `me` from index `first` on, wake (and dequeue) the
/// senders whose message now fits, asking `stop` (with the index to go on
/// at) between steps; true when it stopped.
fn wake_fitting<E: Env>(
    env: &E,
    me: &DomainState<E>,
    first: usize,
    stop: &mut impl FnMut(u32) -> bool,
) -> bool {
    let mut at = first;
    loop {
        let mut work = 0;
        {
            let table = me.rings.read();
            while work < WAKE_WORK_PER_STEP {
                let Some(ring) = table.rings.get(at) else {
                    return false;
                };
                at += 1;
                work += 1 + wake_ring(env, ring);
            }
        }
        // Ring indexes are below MAX_RINGS_PER_DOMAIN, far below ENTRIES.
        if stop(at as u32) {
            return true;
        }
    }
}

/// Wake the senders of one ring whose message now fits; returns how many
/// waiters it looked at.
fn wake_ring<E: Env>(env: &E, ring: &crate::ring::Ring<E>) -> usize {
    let mut st = ring.state.lock();
    let n = st.waiters.len();
    if n == 0 {
        return 0;
    }
    let rx = ring.rx();
    let (len, tx) = (ring.len(), st.tx);
    let mut i = 0;
    while i < st.waiters.len() {
        if len.fits(rx, tx, st.waiters[i].space) {
            wake(env, st.waiters.swap_remove(i));
        } else {
            i += 1;
        }
    }
    n
}
