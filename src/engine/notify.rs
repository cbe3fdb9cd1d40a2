//! notify: wake senders that now fit, and answer questions about rings.
use super::domain::{wake_waiter, DomainState};
use super::{find, Engine};
use crate::abi::{
    Addr, RingDataEnt, RingDataFlags, RingDataHeader, MAXENT, PORT_NONE, RING_DATA_ENT_OFFSET,
    RING_DATA_MAGIC,
};
use crate::env::{DomId, Env};
use crate::error::{Error, Result};
use crate::guest::GuestAddr;

const ENT_SIZE: u64 = core::mem::size_of::<RingDataEnt>() as u64;

impl<E: Env> Engine<E> {
    pub(super) fn notify(&self, env: &E, rd: GuestAddr) -> Result<()> {
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
        if nent > 0 {
            self.ensure_domain(caller)?;
        }
        let domains = self.domains.read();
        if let Some(me) = find(&domains, caller) {
            wake_fitting(env, &domains, me);
        }
        for i in 0..nent {
            let at = rd.offset(RING_DATA_ENT_OFFSET as u64 + ENT_SIZE * i as u64)?;
            let mut ent: RingDataEnt = at.read(env)?;
            self.query(&domains, caller, &mut ent)?;
            at.write(env, &ent)?;
        }
        Ok(())
    }

    /// Fill in one entry: find the ring as send would, report its state and
    /// queue or drop the caller's wait on it.
    fn query(
        &self,
        domains: &[DomainState<E>],
        caller: DomId,
        ent: &mut RingDataEnt,
    ) -> Result<()> {
        ent.flags = 0;
        ent.max_message_size = 0;
        let dst = ent.ring;
        let Some(dest) = find(domains, dst.domain) else {
            return Ok(());
        };
        // A ring the caller may not send to reads as not existing. notify has
        // no source port; rules are matched with PORT_NONE.
        if !self.viptables.read().allows(
            Addr {
                port: PORT_NONE,
                domain: caller,
            },
            dst,
        ) {
            return Ok(());
        }
        let table = dest.rings.read();
        let Some(ring) = table.lookup(dst.port, caller) else {
            return Ok(());
        };
        let me = find(domains, caller).ok_or(Error::NoMem)?;
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

/// For every ring of `me`, wake (and dequeue) the senders whose message now
/// fits.
fn wake_fitting<E: Env>(env: &E, domains: &[DomainState<E>], me: &DomainState<E>) {
    let table = me.rings.read();
    for ring in &table.rings {
        let mut st = ring.state.lock();
        if st.waiters.is_empty() {
            continue;
        }
        let rx = ring.rx();
        let (len, tx) = (ring.len(), st.tx);
        let mut i = 0;
        while i < st.waiters.len() {
            let w = st.waiters[i];
            if len.fits(rx, tx, w.space) {
                st.waiters.swap_remove(i);
                wake_waiter(env, domains, w.dom);
            } else {
                i += 1;
            }
        }
    }
}
