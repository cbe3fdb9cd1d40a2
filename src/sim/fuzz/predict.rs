//! Per-hypercall predictions of the model: for each operation, `plan_*`
//! reads the arguments from guest memory as the engine will and returns the
//! set of results the ABI allows, and `post_*` applies an accepted result to
//! the model and checks what the engine wrote back (ring ids, `tx_ptr`,
//! notify entries, rule listings).
//!
//! The set is exact where the ABI fixes the order of checks and wider where
//! it leaves the order open, so that the harness finds wrong answers without
//! pinning down one implementation.
use super::bytes::{addr_at, e, le16, le32, le64};
use super::env::OpLog;
use super::harness::{Fuzz, VipTodo};
use super::layout::{va, MEM_PAGES, PAGE, RO_PAGE, SLOTS};
use super::model::{
    fits, frames_for, valid_offset, valid_ring_len, Ent, Look, MRing, Msg, NotifyPlan, Payload,
    Plan, RegPlan, SendPlan, VRule,
};
use crate::abi::{
    self, errno, op, Addr, DOMID_ANY, MAXENT, MAXIOV, MAX_MSG_SIZE, MAX_RING_PAGES, PFN_LIST_MAGIC,
    PORT_NONE, RING_DATA_MAGIC, RING_MAGIC,
};
use crate::engine::{MAX_PAGES_PER_DOMAIN, MAX_RINGS_PER_DOMAIN};
use crate::env::DomId;
use crate::sim::{gfn_base, VA_BASE};
use crate::viptables::MAX_RULES;
use std::collections::VecDeque;
use std::vec;
use std::vec::Vec;

/// Every errno the ABI defines: any other negative result is a bug.
pub(super) const ERRNOS: [i64; 10] = errno::ALL;

/// The ABI's order of checks puts "bad guest pointer" among the caller's own
/// arguments, before destination and space, and the engine probes payloads
/// up front. With this false the model would also accept an engine that
/// notices an unreadable payload only while copying.
pub(super) const STRICT_PAYLOAD_FAULT_ORDER: bool = true;
impl Fuzz {
    pub(super) fn plan(
        &mut self,
        d: DomId,
        cmd: u32,
        a: [u64; 3],
        a4: u32,
        a5: u32,
    ) -> (Vec<i64>, Plan) {
        match cmd {
            op::REGISTER_RING => self.plan_register(d, a[0], a[1]),
            op::UNREGISTER_RING => self.plan_unregister(d, a[0]),
            op::SEND => self.plan_send(d, a[0], a[1], Payload::Buffer(a[2], a4), a5),
            op::SENDV => self.plan_send(d, a[0], a[1], Payload::Iovs(a[2], a4), a5),
            op::NOTIFY => self.plan_notify(d, a[0]),
            op::VIPTABLES_ADD => self.plan_vip_add(d, a[0], a4),
            op::VIPTABLES_DEL => self.plan_vip_del(d, a[0], a4 as i32),
            op::VIPTABLES_LIST => self.plan_vip_list(d, a[0]),
            _ => (vec![e(errno::ENOSYS)], Plan::None),
        }
    }

    pub(super) fn pinnable(d: DomId, gfn: u64) -> Option<usize> {
        let p = gfn.checked_sub(gfn_base(d))?;
        (p < MEM_PAGES as u64 && p as usize != RO_PAGE).then_some(p as usize)
    }

    pub(super) fn plan_register(&mut self, d: DomId, ring_p: u64, list_p: u64) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if !ring_p.is_multiple_of(PAGE as u64) {
            errs.push(e(errno::EINVAL));
        }
        let hdr = self.peek(d, ring_p, 60).map(|h| h.to_vec());
        let list = self.peek(d, list_p, 40).map(|l| l.to_vec());
        let mut len = None;
        match &hdr {
            None => errs.push(e(errno::EFAULT)),
            Some(h) => {
                if le64(h, 0) != RING_MAGIC || !valid_ring_len(le32(h, 16)) {
                    errs.push(e(errno::EINVAL));
                } else {
                    len = Some(le32(h, 16));
                }
            }
        }
        match &list {
            None => errs.push(e(errno::EFAULT)),
            Some(l) if le64(l, 0) != PFN_LIST_MAGIC || le32(l, 12) != 0 => {
                errs.push(e(errno::EINVAL))
            }
            Some(_) => {}
        }
        let mut pfns = Vec::new();
        let mut needed = 0;
        if let (Some(l), Some(len)) = (&list, len) {
            needed = frames_for(len);
            let npage = le32(l, 8);
            if (npage as usize) < needed || npage > MAX_RING_PAGES {
                errs.push(e(errno::EINVAL));
            } else {
                match list_p
                    .checked_add(40)
                    .and_then(|at| self.peek(d, at, 8 * needed))
                {
                    None => errs.push(e(errno::EFAULT)),
                    Some(ents) => {
                        for i in 0..needed {
                            match Self::pinnable(d, le64(ents, 8 * i)) {
                                Some(p) => pfns.push(p),
                                None => {
                                    errs.push(e(errno::EINVAL));
                                    break;
                                }
                            }
                        }
                    }
                }
            }
        }
        // Per-domain quotas (the engine's, not the ABI's numbers).
        let over = match (&hdr, self.known[d as usize]) {
            (Some(h), true) => {
                let (port, partner) = (le32(h, 8), le16(h, 14));
                let mine = self.rings.iter().filter(|r| r.dom == d);
                let count = mine.clone().count();
                let pages: usize = mine.clone().map(|r| r.pages.len()).sum();
                let old = mine
                    .clone()
                    .find(|r| r.port == port && r.partner == partner);
                let replaced = old.map_or(0, |r| r.pages.len());
                (old.is_none() && count >= MAX_RINGS_PER_DOMAIN)
                    || pages - replaced + needed > MAX_PAGES_PER_DOMAIN
            }
            _ => true,
        };
        let mut allowed = if errs.is_empty() { vec![0] } else { errs };
        if over {
            allowed.push(e(errno::ENOSPC));
        }
        let plan = hdr.filter(|_| allowed.contains(&0)).map(|h| {
            let (rx, tx) = (le32(&h, 20), le32(&h, 24));
            let len = le32(&h, 16);
            let expect_tx = if tx.is_multiple_of(16) && tx < len {
                tx
            } else if abi::roundup(rx as u64) < len as u64 {
                abi::roundup(rx as u64) as u32
            } else {
                0
            };
            RegPlan {
                ring_va: ring_p,
                port: le32(&h, 8),
                partner: le16(&h, 14),
                rx,
                len,
                pfns,
                expect_tx,
            }
        });
        (allowed, Plan::Register(plan))
    }

    pub(super) fn post_register(&mut self, d: DomId, p: RegPlan, log: &OpLog) {
        let pinned: Vec<usize> = log.pinned.iter().map(|&(_, pfn)| pfn).collect();
        assert!(
            log.pinned.iter().all(|&(dd, _)| dd == d) && pinned == p.pfns,
            "{}: pinned {:?}, the pfn list names {:?}",
            self.last,
            log.pinned,
            p.pfns
        );
        // The id goes back with the caller's real domain.
        let mut id = [0u8; 8];
        self.env.sim.read(d, p.ring_va + 8, &mut id);
        assert_eq!(
            (le32(&id, 0), le16(&id, 4), le16(&id, 6)),
            (p.port, d, p.partner),
            "{}: ring id written back",
            self.last
        );
        let tx = self.env.sim.read_u32(d, va(p.pfns[0] * PAGE + 24));
        assert_eq!(tx, p.expect_tx, "{}: tx_ptr after register", self.last);

        let old = self
            .rings
            .iter()
            .position(|r| r.dom == d && r.port == p.port && r.partner == p.partner)
            .map(|i| self.rings.remove(i));
        let n = p.pfns.len();
        let contiguous = SLOTS
            .iter()
            .any(|s| n <= s.cap && p.pfns.iter().enumerate().all(|(i, &pf)| pf == s.ring + i));
        // Each distinct page once (a ring may list thousands of frames).
        let listed = p.pfns.iter().fold(0u64, |m, &pf| m | 1 << pf);
        let pages = || (0..MEM_PAGES).filter(move |&pf| listed & 1 << pf != 0);
        let exclusive = pages().all(|pf| self.env.pin_count(d as usize, pf) == 1);
        let laid_out =
            contiguous && exclusive && self.known[d as usize] && p.ring_va == va(p.pfns[0] * PAGE);
        let mut msgs = VecDeque::new();
        let trusted = if !laid_out {
            false
        } else if p.rx == p.expect_tx {
            true
        } else if let Some(o) = old
            .as_ref()
            .filter(|o| o.trusted && o.pages == p.pfns && o.len == p.len && o.tx == p.expect_tx)
        {
            msgs = o.msgs.clone();
            true
        } else {
            false
        };
        let waiters = match &old {
            Some(o) => o.waiters.clone(),
            None => Some(Vec::new()),
        };
        self.rings.push(MRing {
            dom: d,
            port: p.port,
            partner: p.partner,
            len: p.len,
            pages: p.pfns.clone(),
            trusted,
            tx: p.expect_tx,
            msgs,
            waiters,
        });
        // Frames shared between rings (or listed twice): the rings write
        // over each other, so none of them can be checked.
        for pf in pages() {
            if self.env.pin_count(d as usize, pf) > 1 {
                for r in self.rings.iter_mut().filter(|r| r.dom == d) {
                    if r.pages.contains(&pf) {
                        r.untrust();
                    }
                }
            }
        }
    }

    pub(super) fn plan_unregister(&mut self, d: DomId, ring_p: u64) -> (Vec<i64>, Plan) {
        let Some(h) = self.peek(d, ring_p, 60) else {
            return (vec![e(errno::EFAULT)], Plan::Unregister(None));
        };
        if le64(h, 0) != RING_MAGIC {
            return (vec![e(errno::EINVAL)], Plan::Unregister(None));
        }
        let key = (le32(h, 8), le16(h, 14));
        let exists = self
            .rings
            .iter()
            .any(|r| r.dom == d && r.port == key.0 && r.partner == key.1);
        let allowed = if !self.known[d as usize] {
            vec![0, e(errno::ENOENT)]
        } else if exists {
            vec![0]
        } else {
            vec![e(errno::ENOENT)]
        };
        (allowed, Plan::Unregister(Some(key)))
    }

    pub(super) fn plan_send(
        &mut self,
        d: DomId,
        src_p: u64,
        dst_p: u64,
        payload: Payload,
        protocol: u32,
    ) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        let src = self.peek(d, src_p, 6).map(|b| addr_at(b, 0));
        let dst = self.peek(d, dst_p, 6).map(|b| addr_at(b, 0));
        if src.is_none() || dst.is_none() {
            errs.push(e(errno::EFAULT));
        }
        let mut parts = Vec::new();
        match payload {
            Payload::Buffer(buf, len) => {
                if len > MAX_MSG_SIZE {
                    errs.push(e(errno::EINVAL));
                }
                parts.push((buf, len as u64));
            }
            Payload::Iovs(iov, niov) => {
                if niov > MAXIOV {
                    errs.push(e(errno::EINVAL));
                } else {
                    match self.peek(d, iov, 16 * niov as usize) {
                        None => errs.push(e(errno::EFAULT)),
                        Some(b) => {
                            for i in 0..niov as usize {
                                parts.push((le64(b, 16 * i), le64(b, 16 * i + 8)));
                            }
                        }
                    }
                    let total = parts.iter().fold(0u64, |t, p| t.saturating_add(p.1));
                    if total > MAX_MSG_SIZE as u64 {
                        errs.push(e(errno::EINVAL));
                    }
                }
            }
        }
        let total = parts.iter().fold(0u64, |t, p| t.saturating_add(p.1));
        let readable = parts.iter().all(|&(b, l)| Self::readable(b, l));
        if let Some(s) = src {
            if s.domain != d && s.domain != DOMID_ANY {
                errs.push(e(errno::EPERM));
            }
        }
        // An unreadable payload is a bad caller argument (ABI section 6);
        // unless strict, the model also accepts finding it only when copying.
        if !readable && (STRICT_PAYLOAD_FAULT_ORDER || !errs.is_empty()) {
            errs.push(e(errno::EFAULT));
        }
        if !errs.is_empty() {
            return (errs, Plan::Send(None));
        }
        let (src, dst) = (src.unwrap(), dst.unwrap());
        let total = total as u32;
        let source = Addr {
            port: src.port,
            domain: d,
        };
        let look = self.lookup(dst, d);
        let vip = self.allows(source, dst);
        let ok_or_fault = if readable {
            total as i64
        } else {
            e(errno::EFAULT)
        };
        let mut allowed = match look {
            Look::Unknown => vec![
                e(errno::ENOTCONN),
                e(errno::EPERM),
                e(errno::EAGAIN),
                e(errno::ENOBUFS),
                e(errno::ENOSPC),
                ok_or_fault,
            ],
            Look::None if vip => vec![e(errno::ENOTCONN)],
            // Rejected: -EPERM, unless the domain has no V4V state at all.
            Look::None => vec![e(errno::ENOTCONN), e(errno::EPERM)],
            Look::Ring(_) if !vip => vec![e(errno::EPERM)],
            Look::Ring(i) => {
                let r = &self.rings[i];
                if total > r.len - 32 {
                    vec![e(errno::ENOBUFS)]
                } else if r.trusted && fits(r.len, self.ring_rx(r), r.tx, total) {
                    vec![ok_or_fault]
                } else if r.trusted || !valid_offset(r.len, self.ring_rx(r)) {
                    // A corrupt rx_ptr means no space (ABI section 5).
                    vec![e(errno::EAGAIN), e(errno::ENOSPC)]
                } else {
                    vec![e(errno::EAGAIN), e(errno::ENOSPC), ok_or_fault]
                }
            }
        };
        if !readable {
            allowed.push(e(errno::EFAULT));
        }
        let plan = SendPlan {
            dst,
            source,
            protocol,
            parts,
            total,
            look,
        };
        (allowed, Plan::Send(Some(plan)))
    }

    pub(super) fn post_send(&mut self, d: DomId, p: SendPlan, rv: i64) {
        if rv >= 0 {
            self.expect_virq.push(p.dst.domain);
        }
        let Look::Ring(i) = p.look else { return };
        if rv == p.total as i64 {
            self.rings[i].remove_waiter(d);
        } else if rv == e(errno::EAGAIN) {
            self.rings[i].add_waiter(d, p.total);
        }
        let r = &self.rings[i];
        if !r.trusted || !(rv >= 0 || rv == e(errno::EFAULT)) {
            return;
        }
        // The message's slot is the only part of the ring it may write
        // (on -EFAULT a part of it may be written, tx_ptr stays).
        let slot = 16 + abi::roundup(p.total as u64) as usize;
        let first = slot.min((r.len - r.tx) as usize);
        self.allowed.push((r.dom, r.data(r.tx), first));
        if slot > first {
            self.allowed.push((r.dom, r.data(0), slot - first));
        }
        if rv < 0 {
            return;
        }
        // A payload read out of the destination ring itself changes as the
        // message is written: its content is not predictable.
        let own = r.pages[0] * PAGE..(r.pages[r.pages.len() - 1] + 1) * PAGE;
        let overlaps = r.dom == d
            && p.parts.iter().any(|&(b, l)| {
                let o = b.wrapping_sub(VA_BASE) as usize;
                l > 0 && o < own.end && o + l as usize > own.start
            });
        if overlaps {
            self.rings[i].untrust();
            return;
        }
        let mut payload = Vec::with_capacity(p.total as usize);
        for &(b, l) in &p.parts {
            if l > 0 {
                payload.extend_from_slice(self.peek(d, b, l as usize).unwrap());
            }
        }
        let r = &mut self.rings[i];
        r.msgs.push_back(Msg {
            source: p.source,
            protocol: p.protocol,
            payload,
        });
        r.tx = ((r.tx as u64 + slot as u64) % r.len as u64) as u32;
    }

    pub(super) fn plan_notify(&mut self, d: DomId, rd: u64) -> (Vec<i64>, Plan) {
        let mut plan = NotifyPlan {
            header_ok: false,
            wake: Vec::new(),
            lost: Vec::new(),
            ents: Vec::new(),
            lenient: false,
        };
        let nent = if rd == 0 {
            0
        } else {
            let Some(h) = self.peek(d, rd, 48) else {
                return (vec![e(errno::EFAULT)], Plan::Notify(plan));
            };
            if le64(h, 0) != RING_DATA_MAGIC || le32(h, 12) != 0 || le32(h, 8) > MAXENT {
                return (vec![e(errno::EINVAL)], Plan::Notify(plan));
            }
            le32(h, 8)
        };
        plan.header_ok = true;
        // Senders queued on the caller's rings whose message now fits.
        for (i, r) in self.rings.iter().enumerate().filter(|(_, r)| r.dom == d) {
            match &r.waiters {
                Some(ws) if r.trusted => {
                    let rx = self.ring_rx(r);
                    for &(w, space) in ws {
                        if fits(r.len, rx, r.tx, space) {
                            plan.wake.push((i, w));
                        }
                    }
                }
                Some(ws) if !ws.is_empty() => plan.lost.push(i),
                _ => {}
            }
        }
        let mut fault = false;
        for k in 0..nent as u64 {
            let Some(at) = rd.checked_add(48 + 16 * k) else {
                fault = true;
                break;
            };
            let Some(b) = self.peek(d, at, 16) else {
                fault = true;
                break;
            };
            let (ring, req) = (addr_at(b, 0), le32(b, 8));
            let look = self.lookup(ring, d);
            let vip = self.allows(
                Addr {
                    port: PORT_NONE,
                    domain: d,
                },
                ring,
            );
            let expect = match look {
                Look::Unknown => None,
                Look::None => Some((0xffff, 0, 0)),
                Look::Ring(_) if !vip => Some((0xffff, 0, 0)),
                Look::Ring(i) => {
                    let r = &self.rings[i];
                    if r.trusted {
                        let rx = self.ring_rx(r);
                        let mut f = 2; // EXISTS
                        if rx == r.tx {
                            f |= 1; // EMPTY
                        }
                        // "else queue a wait and set PENDING", even for a
                        // size the ring can never take.
                        if fits(r.len, rx, r.tx, req) {
                            f |= 8; // SUFFICIENT
                        } else {
                            f |= 4; // PENDING
                        }
                        Some((0xffff, f, r.len - 32))
                    } else if !valid_offset(r.len, self.ring_rx(r)) {
                        // Corrupt rx_ptr: no space, not empty, a wait queued.
                        Some((0xf, 2 | 4, r.len - 32))
                    } else {
                        Some((2, 2, r.len - 32))
                    }
                }
            };
            plan.ents.push(Ent {
                off: (at - VA_BASE) as usize,
                ring,
                req,
                look,
                expect,
            });
        }
        // Entries written back over ring pages change what later entries
        // see: then only the form of the answers is checked.
        if let (Some(f), Some(l)) = (plan.ents.first(), plan.ents.last()) {
            let (p0, p1) = (f.off / PAGE, (l.off + 15) / PAGE);
            plan.lenient = (p0..=p1).any(|p| self.env.pin_count(d as usize, p) > 0);
        }
        let rv = if fault { e(errno::EFAULT) } else { 0 };
        (vec![rv], Plan::Notify(plan))
    }

    pub(super) fn post_notify(&mut self, d: DomId, p: NotifyPlan) {
        if !p.header_ok {
            return;
        }
        for (i, w) in p.wake {
            self.rings[i].remove_waiter(w);
            self.expect_virq.push(w);
        }
        for i in p.lost {
            self.rings[i].waiters = None;
        }
        for ent in &p.ents {
            let mut b = [0u8; 16];
            self.env.sim.read(d, va(ent.off), &mut b);
            let (flags, mms) = (le16(&b, 6), le32(&b, 12));
            if !p.lenient {
                assert!(
                    addr_at(&b, 0) == ent.ring && le32(&b, 8) == ent.req,
                    "{}: notify changed an entry's ring or space_required",
                    self.last
                );
                if let Some((mask, want, want_mms)) = ent.expect {
                    assert!(
                        flags & mask == want && mms == want_mms,
                        "{}: entry {:?} req {}: flags {flags:#x} mms {mms}, \
                         expected flags {want:#x} (mask {mask:#x}) mms {want_mms}",
                        self.last,
                        ent.ring,
                        ent.req
                    );
                }
                assert!(
                    flags & 12 != 12,
                    "{}: both SUFFICIENT and PENDING",
                    self.last
                );
            }
            if let Look::Ring(i) = ent.look {
                if p.lenient {
                    self.rings[i].waiters = None;
                } else if flags & 8 != 0 {
                    self.rings[i].remove_waiter(d);
                } else if flags & 4 != 0 {
                    self.rings[i].add_waiter(d, ent.req);
                }
            }
        }
    }

    pub(super) fn read_rule(&self, d: DomId, at: u64) -> Option<Result<VRule, ()>> {
        let b = self.peek(d, at, 16)?;
        Some(match le32(b, 12) {
            a @ (0 | 1) => Ok(VRule {
                src: addr_at(b, 0),
                dst: addr_at(b, 6),
                accept: a == 1,
            }),
            _ => Err(()),
        })
    }

    pub(super) fn plan_vip_add(&mut self, d: DomId, rule_p: u64, pos: u32) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if d != 0 {
            errs.push(e(errno::EPERM));
        }
        let rule = match self.read_rule(d, rule_p) {
            None => {
                errs.push(e(errno::EFAULT));
                None
            }
            Some(Err(())) => {
                errs.push(e(errno::EINVAL));
                None
            }
            Some(Ok(r)) => Some(r),
        };
        if !errs.is_empty() {
            return (errs, Plan::VipAdd(None));
        }
        if self.vip.len() >= MAX_RULES {
            return (vec![e(errno::ENOSPC)], Plan::VipAdd(None));
        }
        (vec![0], Plan::VipAdd(rule.map(|r| (r, pos))))
    }

    pub(super) fn plan_vip_del(&mut self, d: DomId, rule_p: u64, pos: i32) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if d != 0 {
            errs.push(e(errno::EPERM));
        }
        let mut rule = None;
        if pos == -1 && rule_p != 0 {
            match self.read_rule(d, rule_p) {
                None => errs.push(e(errno::EFAULT)),
                Some(Err(())) => errs.push(e(errno::EINVAL)),
                Some(Ok(r)) => rule = Some(r),
            }
        }
        if pos < -1 {
            // A negative position other than -1: invalid, or "names none"
            // (-ENOENT); the ABI can be read either way.
            errs.push(e(errno::EINVAL));
            errs.push(e(errno::ENOENT));
        }
        if !errs.is_empty() {
            return (errs, Plan::VipDel(None, None));
        }
        let allowed = if pos >= 0 {
            if (pos as usize) < self.vip.len() {
                vec![0]
            } else {
                vec![e(errno::ENOENT)]
            }
        } else if let Some(r) = rule {
            if self.vip.contains(&r) {
                vec![0]
            } else {
                vec![e(errno::ENOENT)]
            }
        } else if self.vip.is_empty() {
            // Flushing an empty list: the ABI does not say.
            vec![0, e(errno::ENOENT)]
        } else {
            vec![0]
        };
        (allowed, Plan::VipDel(Some(pos as i64), rule))
    }

    pub(super) fn plan_vip_list(&mut self, d: DomId, list_p: u64) -> (Vec<i64>, Plan) {
        let mut errs = Vec::new();
        if d != 0 {
            errs.push(e(errno::EPERM));
        }
        let start = match self.peek(d, list_p, 132) {
            None => {
                errs.push(e(errno::EFAULT));
                None
            }
            Some(b) => Some(le32(b, 128)),
        };
        if !errs.is_empty() {
            return (errs, Plan::VipList(None));
        }
        let off = (list_p - VA_BASE) as usize;
        (vec![0], Plan::VipList(start.map(|s| (off, s))))
    }

    pub(super) fn post(
        &mut self,
        d: DomId,
        _cmd: u32,
        _a: [u64; 3],
        plan: Plan,
        rv: i64,
        log: &OpLog,
    ) {
        match plan {
            Plan::None => {}
            Plan::Register(p) => {
                if let (0, Some(p)) = (rv, p) {
                    self.post_register(d, p, log);
                }
            }
            Plan::Unregister(Some((port, partner))) if rv == 0 => {
                if let Some(i) = self
                    .rings
                    .iter()
                    .position(|r| r.dom == d && r.port == port && r.partner == partner)
                {
                    let r = self.rings.remove(i);
                    for (w, _) in r.waiters.unwrap_or_default() {
                        self.expect_virq.push(w);
                    }
                }
            }
            Plan::Unregister(_) => {}
            Plan::Send(p) => {
                if let Some(p) = p {
                    self.post_send(d, p, rv);
                }
            }
            Plan::Notify(p) => self.post_notify(d, p),
            Plan::VipAdd(Some((r, pos))) if rv == 0 => {
                let at = (pos as usize).min(self.vip.len());
                self.vip.insert(at, r);
                self.vip_todo = VipTodo::Verify;
            }
            Plan::VipAdd(_) => {}
            Plan::VipDel(Some(pos), rule) if rv == 0 => {
                if pos >= 0 {
                    self.vip.remove(pos as usize);
                } else if let Some(r) = rule {
                    let i = self.vip.iter().position(|x| *x == r).unwrap();
                    self.vip.remove(i);
                } else {
                    self.vip.clear();
                }
                self.vip_todo = VipTodo::Verify;
            }
            Plan::VipDel(..) => {}
            Plan::VipList(Some((off, start))) if rv == 0 => {
                let mut b = [0u8; 132];
                self.env.sim.read(d, va(off), &mut b);
                let n = le32(&b, 128) as usize;
                let want: Vec<VRule> = self
                    .vip
                    .iter()
                    .skip(start as usize)
                    .take(8)
                    .copied()
                    .collect();
                assert_eq!(n, want.len(), "{}: nb_rules", self.last);
                for (k, w) in want.iter().enumerate() {
                    let got = VRule {
                        src: addr_at(&b, 16 * k),
                        dst: addr_at(&b, 16 * k + 6),
                        accept: le32(&b, 16 * k + 12) == 1,
                    };
                    assert_eq!(got, *w, "{}: rule {k} listed", self.last);
                }
            }
            Plan::VipList(_) => {}
        }
    }
}
