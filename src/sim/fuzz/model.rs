//! The reference model: what the ABI says the state is (registered rings
//! with their messages, `tx_ptr` and waiters, the viptables), and the queries
//! on it (destination lookup, permission, free space).
//!
//! It is kept apart from the engine's own data structures on purpose: the
//! checks compare two independent accounts of the same history. Where the
//! harness cannot know the truth (a guest corrupted a ring, a racing write
//! changed arguments mid-call), the model marks what it lost instead of
//! guessing, and the predictions become correspondingly looser.
use super::bytes::le32;
use super::harness::Fuzz;
use super::layout::{NDOM, PAGE};
use crate::abi::{self, Addr, DOMID_ANY, DOMID_WILDCARD, MAX_RING_SIZE, MIN_RING_SIZE, PORT_ANY};
use crate::env::DomId;
use std::collections::VecDeque;
use std::vec::Vec;

pub(super) fn valid_ring_len(len: u32) -> bool {
    len.is_multiple_of(16) && (MIN_RING_SIZE..=MAX_RING_SIZE).contains(&len)
}

/// Whether the engine can use `rx` as an offset into a ring of `len` bytes.
pub(super) fn valid_offset(len: u32, rx: u32) -> bool {
    rx.is_multiple_of(16) && rx < len
}

pub(super) fn frames_for(len: u32) -> usize {
    (60 + len as usize).div_ceil(PAGE)
}

/// Whether a message with payload `m` fits now (ABI section 5, "Space").
pub(super) fn fits(len: u32, rx: u32, tx: u32, m: u32) -> bool {
    let free = if rx == tx {
        len as u64
    } else {
        (rx as u64 + len as u64 - tx as u64) % len as u64
    };
    16 + abi::roundup(m as u64) + 16 <= free
}

pub(super) fn payload_space(len: u32, rx: u32, tx: u32) -> u32 {
    let free = if rx == tx {
        len
    } else {
        ((rx as u64 + len as u64 - tx as u64) % len as u64) as u32
    };
    free.saturating_sub(32)
}
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Msg {
    pub(super) source: Addr,
    pub(super) protocol: u32,
    pub(super) payload: Vec<u8>,
}

/// A registered ring, as the model knows it.
#[derive(Debug)]
pub(super) struct MRing {
    pub(super) dom: DomId,
    pub(super) port: u32,
    pub(super) partner: DomId,
    pub(super) len: u32,
    /// Frames (pages of `dom`) in ring order.
    pub(super) pages: Vec<usize>,
    /// The receiver never corrupted it: its contents, `rx_ptr` and `tx_ptr`
    /// are known, its pages are its own and laid out contiguously.
    pub(super) trusted: bool,
    /// Xen's `tx_ptr` (when trusted).
    pub(super) tx: u32,
    /// Messages between `rx_ptr` and `tx_ptr` (when trusted).
    pub(super) msgs: VecDeque<Msg>,
    /// Senders queued on it; `None` when the model lost track.
    pub(super) waiters: Option<Vec<(DomId, u32)>>,
}

impl MRing {
    pub(super) fn untrust(&mut self) {
        self.trusted = false;
        self.msgs.clear();
    }

    pub(super) fn hdr(&self) -> usize {
        self.pages[0] * PAGE
    }

    /// Memory offset of data byte `o` (trusted rings: pages contiguous).
    pub(super) fn data(&self, o: u32) -> usize {
        self.pages[0] * PAGE + 60 + o as usize
    }

    pub(super) fn remove_waiter(&mut self, d: DomId) {
        if let Some(ws) = &mut self.waiters {
            ws.retain(|w| w.0 != d);
        }
    }

    pub(super) fn add_waiter(&mut self, d: DomId, space: u32) {
        if let Some(ws) = &mut self.waiters {
            match ws.iter_mut().find(|w| w.0 == d) {
                Some(w) => w.1 = space,
                None => ws.push((d, space)),
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct VRule {
    pub(super) src: Addr,
    pub(super) dst: Addr,
    pub(super) accept: bool,
}

pub(super) fn dom_matches(p: DomId, d: DomId) -> bool {
    p == d || p == DOMID_ANY || p == DOMID_WILDCARD
}

pub(super) fn addr_matches(p: Addr, a: Addr) -> bool {
    dom_matches(p.domain, a.domain) && ({ p.port } == { a.port } || { p.port } == PORT_ANY)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// The destination domain's ring table is not known to the model.
    Unknown,
    None,
    Ring(usize),
}

pub(super) struct RegPlan {
    pub(super) ring_va: u64,
    pub(super) port: u32,
    pub(super) partner: DomId,
    pub(super) rx: u32,
    pub(super) len: u32,
    pub(super) pfns: Vec<usize>,
    pub(super) expect_tx: u32,
}

pub(super) struct SendPlan {
    pub(super) dst: Addr,
    pub(super) source: Addr,
    pub(super) protocol: u32,
    pub(super) parts: Vec<(u64, u64)>,
    pub(super) total: u32,
    pub(super) look: Look,
}

pub(super) struct Ent {
    pub(super) off: usize,
    pub(super) ring: Addr,
    pub(super) req: u32,
    pub(super) look: Look,
    /// Flags that must be set / clear (mask, value) and max_message_size.
    pub(super) expect: Option<(u16, u16, u32)>,
}

pub(super) struct NotifyPlan {
    pub(super) header_ok: bool,
    pub(super) wake: Vec<(usize, DomId)>,
    pub(super) lost: Vec<usize>,
    pub(super) ents: Vec<Ent>,
    pub(super) lenient: bool,
}

pub(super) enum Plan {
    None,
    Register(Option<RegPlan>),
    Unregister(Option<(u32, DomId)>),
    Send(Option<SendPlan>),
    Notify(NotifyPlan),
    VipAdd(Option<(VRule, u32)>),
    VipDel(Option<i64>, Option<VRule>),
    VipList(Option<(usize, u32)>),
}

/// Payload arguments of send (buffer, length) or sendv (iovs, count).
pub(super) enum Payload {
    Buffer(u64, u32),
    Iovs(u64, u32),
}
impl Fuzz {
    pub(super) fn mem_u32(&self, d: DomId, off: usize) -> u32 {
        le32(&self.shadow[d as usize], off)
    }

    pub(super) fn ring_rx(&self, r: &MRing) -> u32 {
        self.mem_u32(r.dom, r.hdr() + 20)
    }
    // -- the model --

    pub(super) fn lookup(&self, dst: Addr, sender: DomId) -> Look {
        let dd = dst.domain;
        if (dd as usize) < NDOM && !self.known[dd as usize] {
            return Look::Unknown;
        }
        let find = |partner: DomId| {
            self.rings
                .iter()
                .position(|r| r.dom == dd && r.port == { dst.port } && r.partner == partner)
        };
        match find(sender).or_else(|| find(DOMID_ANY)) {
            Some(i) => Look::Ring(i),
            None => Look::None,
        }
    }

    pub(super) fn allows(&self, src: Addr, dst: Addr) -> bool {
        self.vip
            .iter()
            .find(|r| addr_matches(r.src, src) && addr_matches(r.dst, dst))
            .is_none_or(|r| r.accept)
    }

    pub(super) fn forget_domain(&mut self, d: DomId) {
        self.known[d as usize] = false;
        for r in self.rings.iter_mut().filter(|r| r.dom == d) {
            r.untrust();
            r.waiters = None;
        }
    }

    pub(super) fn lose_rings_reachable_by(&mut self, d: DomId, content: bool) {
        for r in self
            .rings
            .iter_mut()
            .filter(|r| r.partner == d || r.partner == DOMID_ANY || r.dom == d)
        {
            if content {
                r.untrust();
            }
            r.waiters = None;
        }
    }
}
