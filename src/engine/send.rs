//! send and sendv.
use super::{find, Engine};
use crate::abi::{Addr, DOMID_ANY};
use crate::copy::{real_source, write_message, Payload};
use crate::env::{DomId, Env, SendAccess};
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
    ///
    /// A payload the caller cannot read is its own bad argument (-EFAULT)
    /// whatever else is wrong. Only the pages past the one it starts in are
    /// probed up front; the first page is probed only when the message is
    /// not copied, since on the way in the copy reads it before writing
    /// anything. A small successful send thus reads its payload once.
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
        payload.probe_tail(env)?;
        match self.deliver(env, caller, src, dst, &payload, protocol) {
            // -EAGAIN probed before it queued its wait.
            Err(e) if e != Error::Fault && e != Error::Again => {
                payload.probe_head(env)?;
                Err(e)
            }
            r => r,
        }
    }

    /// Everything after the caller's arguments: permission (`src.domain`,
    /// XSM's use on the caller's first operation), destination (domain,
    /// viptables and XSM's send, ring), space, the copy.
    fn deliver(
        &self,
        env: &E,
        caller: DomId,
        src: Addr,
        dst: Addr,
        payload: &Payload,
        protocol: u32,
    ) -> Result<u32> {
        if src.domain != caller && src.domain != DOMID_ANY {
            return Err(Error::Perm);
        }
        let source = real_source(caller, src.port);

        // L1 only to find the two domains and take a reference to each. The
        // sender needs a state to count a wait it may queue; its first send
        // makes one.
        let (me, dest) = {
            let domains = self.domains.read();
            (
                find(&domains, caller).cloned(),
                find(&domains, dst.domain).cloned(),
            )
        };
        let me = match me {
            Some(me) => me,
            None => self.ensure_domain(env, caller)?,
        };
        // A message to itself: the state just made.
        let dest = match dest {
            Some(d) => d,
            None if dst.domain == caller => me.clone(),
            None => return Err(Error::NotConn),
        };

        // The destination: viptables and XSM (both must allow; the same
        // -EPERM at the same point), ring. A domain being torn down has no
        // rings (`dead`).
        if !self.viptables_allow(source, dst) {
            return Err(Error::Perm);
        }
        match env.xsm_send(dst.domain) {
            SendAccess::Allowed => {}
            SendAccess::Denied => return Err(Error::Perm),
            SendAccess::NoDomain => return Err(Error::NotConn),
        }
        let table = dest.rings.read();
        if table.dead {
            return Err(Error::NotConn);
        }
        let ring = table.lookup(dst.port, caller).ok_or(Error::NotConn)?;

        // Then space.
        let len = ring.len();
        if !len.can_ever_fit(payload.len()) {
            return Err(Error::NoBufs);
        }
        let mut st = ring.state.lock();
        if !len.fits(ring.rx(), st.tx, payload.len()) {
            // No wait is queued for a message that could never be copied.
            payload.probe_head(env)?;
            me.wait_on(&mut st, payload.len())?;
            return Err(Error::Again);
        }
        st.tx = write_message(env, &ring.mem, st.tx, source, protocol, payload)?;
        me.stop_waiting(&mut st);
        drop(st);
        drop(table);
        env.raise_virq(dst.domain);
        Ok(payload.len())
    }
}
