//! send and sendv.
use super::{find, Engine};
use crate::abi::{Addr, DOMID_ANY};
use crate::copy::{real_source, write_message, Payload};
use crate::env::Env;
use crate::error::{Error, Result};
use crate::guest::GuestAddr;

/// The payload arguments as the hypercall passed them.
pub enum PayloadArg {
    /// `send`: buffer and length.
    Buffer(GuestAddr, u32),
    /// `sendv`: iov array and count.
    Iovs(GuestAddr, u32),
}

impl<E: Env> Engine<E> {
    /// Deliver one message; returns the payload length.
    pub(super) fn send(
        &self,
        env: &E,
        src_p: GuestAddr,
        dst_p: GuestAddr,
        payload: PayloadArg,
        protocol: u32,
    ) -> Result<u32> {
        let caller = env.current_domain();
        // The caller's own arguments first.
        let src: Addr = src_p.read(env)?;
        let dst: Addr = dst_p.read(env)?;
        let payload = match payload {
            PayloadArg::Buffer(buf, len) => Payload::buffer(buf, len)?,
            PayloadArg::Iovs(iov, niov) => Payload::iovs(env, iov, niov)?,
        };
        payload.probe(env)?;
        if src.domain != caller && src.domain != DOMID_ANY {
            return Err(Error::Perm);
        }
        let source = real_source(caller, src.port);
        // The sender needs a state entry to count the wait it may queue.
        self.ensure_domain(caller)?;

        // Then the destination: domain, viptables, ring.
        let domains = self.domains.read();
        let dest = find(&domains, dst.domain).ok_or(Error::NotConn)?;
        if !self.viptables.read().allows(source, dst) {
            return Err(Error::Perm);
        }
        let table = dest.rings.read();
        let ring = table.lookup(dst.port, caller).ok_or(Error::NotConn)?;

        // Then space.
        let len = ring.len();
        if !len.can_ever_fit(payload.len()) {
            return Err(Error::NoBufs);
        }
        let me = find(&domains, caller).ok_or(Error::NoMem)?;
        let mut st = ring.state.lock();
        if !len.fits(ring.rx(), st.tx, payload.len()) {
            me.wait_on(&mut st, payload.len())?;
            return Err(Error::Again);
        }
        st.tx = write_message(env, &ring.mem, st.tx, source, protocol, &payload)?;
        me.stop_waiting(&mut st);
        drop(st);
        drop(table);
        env.raise_virq(dst.domain);
        Ok(payload.len())
    }
}
