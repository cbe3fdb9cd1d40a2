//! The copy engine: gathers a message from the sender's guest memory and
//! scatters it into the destination ring.
//!
//! One pass, no bounce buffer: each piece is copied straight from the
//! sender's virtual address into the mapped ring frame, split only where the
//! ring wraps or a frame ends. The header goes in first, `tx_ptr` last after
//! a write barrier, so the receiver sees a whole message or nothing; a fault
//! halfway returns before `tx_ptr` moves and leaves the ring as it was.
use crate::abi::{Addr, Iov, MessageHeader, MAXIOV, MAX_MSG_SIZE, MESSAGE_HEADER_SIZE};
use crate::env::{DomId, Env, Fault};
use crate::error::{Error, Result};
use crate::guest::{GuestAddr, GuestRange};
use crate::ring::geometry::{RingLen, RingOffset};
use crate::ring::mem::RingMem;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};

/// Where a message's payload comes from, validated: a single guest range,
/// or at most `MAXIOV` of them, whose lengths add up to at most
/// `MAX_MSG_SIZE`.
///
/// The iov array lives on the heap: Xen's hypercall stack is small (a few
/// KiB), and 128 iovs take 2 KiB.
pub struct Payload {
    parts: Parts,
    len: u32,
}

enum Parts {
    Buffer(GuestRange),
    Iovs(Vec<GuestRange>),
}

impl Payload {
    /// A single buffer (`send`).
    pub fn buffer(addr: GuestAddr, len: u32) -> Result<Payload> {
        if len > MAX_MSG_SIZE {
            return Err(Error::Inval);
        }
        Ok(Payload {
            parts: Parts::Buffer(addr.range(len as u64)?),
            len,
        })
    }

    /// An iov array in guest memory (`sendv`), read once.
    pub fn iovs<E: Env>(env: &E, iov: GuestAddr, niov: u32) -> Result<Payload> {
        if niov > MAXIOV {
            return Err(Error::Inval);
        }
        let mut parts: Vec<Iov> = Vec::new();
        parts.try_reserve_exact(niov as usize)?;
        parts.resize(niov as usize, Iov::default());
        iov.read_into(env, &mut parts)?;
        let total = parts.iter().fold(0u64, |t, p| t.saturating_add(p.iov_len));
        if total > MAX_MSG_SIZE as u64 {
            return Err(Error::Inval);
        }
        let mut ranges: Vec<GuestRange> = Vec::new();
        ranges.try_reserve_exact(parts.len())?;
        for p in &parts {
            ranges.push(GuestRange::new(p.iov_base, p.iov_len)?);
        }
        Ok(Payload {
            parts: Parts::Iovs(ranges),
            len: total as u32,
        })
    }

    // A payload the caller cannot read is its own bad argument (-EFAULT),
    // whatever else is wrong with the send, and no wait is queued for a
    // message that could never be sent. The two probes below together read
    // one byte of each page (the unit in which guest memory is mapped or
    // not); a page unmapped between a probe and the copy still faults then,
    // and the destination only sees bytes in its free space, never a
    // published message.

    /// Probe every page of the payload but the one it starts in. The copy
    /// reads that page first, before it writes anything, so a fault there
    /// leaves the destination ring as it was; with this probe done up front,
    /// a failed send never writes into the ring at all, and a payload within
    /// one page (every small message) costs no probe.
    pub fn probe_tail<E: Env>(&self, env: &E) -> core::result::Result<(), Fault> {
        let mut first = true;
        for &p in self.parts().iter().filter(|p| !p.is_empty()) {
            let rest = if core::mem::take(&mut first) {
                match p.after_first_page() {
                    Some(r) => r,
                    None => continue,
                }
            } else {
                p
            };
            env.probe_guest(rest)?;
        }
        Ok(())
    }

    /// Probe the page the payload starts in, which [`Payload::probe_tail`]
    /// leaves to the copy: for a send that will not copy (an error, or a
    /// full ring), after `probe_tail`, so that the whole payload is checked.
    pub fn probe_head<E: Env>(&self, env: &E) -> core::result::Result<(), Fault> {
        match self.parts().iter().find_map(|p| p.first_byte()) {
            Some(b) => env.probe_guest(b),
            None => Ok(()),
        }
    }

    fn parts(&self) -> &[GuestRange] {
        match &self.parts {
            Parts::Buffer(b) => core::slice::from_ref(b),
            Parts::Iovs(v) => v,
        }
    }

    /// Payload length in bytes.
    pub fn len(&self) -> u32 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Write one message at `tx` and publish it; returns the new `tx_ptr`.
///
/// The caller holds the ring's lock and has checked that the message fits.
pub fn write_message<E: Env>(
    env: &E,
    mem: &RingMem<E::Frame>,
    tx: RingOffset,
    source: Addr,
    protocol: u32,
    payload: &Payload,
) -> core::result::Result<RingOffset, Fault> {
    let len: RingLen = mem.len();
    let header = MessageHeader {
        len: payload.len + MESSAGE_HEADER_SIZE as u32,
        source,
        pad: 0,
        protocol,
    };
    // Payload first, then the header: neither is visible before tx_ptr.
    let mut skip = MESSAGE_HEADER_SIZE;
    for &p in payload.parts().iter().filter(|p| !p.is_empty()) {
        mem.write_from_guest(env, tx, skip, p)?;
        // Each part is at most MAX_MSG_SIZE (checked in `iovs`), so the
        // conversion cannot truncate.
        skip += p.len() as usize;
    }
    mem.write_header(tx, &header);
    let new_tx = len.advance(tx, RingLen::slot_bytes(payload.len) as u32);
    // Everything written above must be visible before the new tx_ptr.
    fence(Ordering::Release);
    mem.write_tx_ptr(new_tx);
    Ok(new_tx)
}

/// The source address a message carries: the caller's real domain.
pub const fn real_source(caller: DomId, port: u32) -> Addr {
    Addr {
        port,
        domain: caller,
    }
}
