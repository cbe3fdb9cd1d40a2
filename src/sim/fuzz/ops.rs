//! The operations an input is made of ([`Fuzz::step`]): what a guest (or
//! a hostile one) writes into its memory before each hypercall, the
//! receivers that read their rings back, and domain teardown.
//!
//! Each operation lays out its arguments in the domain's argument pages and
//! goes through [`Fuzz::call`]; the checks are all there.
use super::bytes::{addr_at, addr_bytes, le16, le32};
use super::decode::Input;
use super::harness::{Fuzz, Last};
use super::layout::{va, ARGS_LEN, GUARDS, MEM_PAGES, NDOM, PAGE, RO_PAGE, SLOTS};
use super::model::{frames_for, valid_ring_len, MRing};
use crate::abi::{
    self, op, Addr, DOMID_ANY, MAXENT, MAXIOV, MAX_MSG_SIZE, MAX_RING_PAGES, MAX_RING_SIZE,
    PFN_LIST_MAGIC, RING_DATA_MAGIC, RING_MAGIC,
};
use crate::env::DomId;
use crate::sim::Sim;
use std::vec::Vec;

impl Fuzz {
    pub(super) fn fill(&mut self, d: DomId, off: usize, n: usize, seed: u8) {
        // A fixed pattern, entered at a seed-chosen point (built once: byte
        // loops are slow under the fuzzer's instrumentation).
        std::thread_local! {
            static PATTERN: Vec<u8> = (0..ARGS_LEN + 256)
                .map(|i| (i as u8).wrapping_mul(37) ^ (i >> 8) as u8 ^ (i >> 13) as u8)
                .collect();
        }
        let n = n.min(ARGS_LEN - off);
        let bytes = PATTERN.with(|p| p[seed as usize..][..n].to_vec());
        self.gw(d, off, &bytes);
    }

    pub(super) fn slot_ring(&self, d: DomId, s: usize) -> Option<usize> {
        let first = SLOTS[s].ring;
        let at_slot = |r: &MRing| r.dom == d && r.pages[0] == first;
        self.rings
            .iter()
            .position(|r| at_slot(r) && r.trusted)
            .or_else(|| self.rings.iter().position(at_slot))
    }

    pub(super) fn step(&mut self, inp: &mut Input) {
        match inp.u8() % 17 {
            0 | 1 => self.op_register(inp),
            2 => self.op_unregister(inp),
            3 | 4 => self.op_send(inp, false),
            5 => self.op_sendv(inp),
            6 => self.op_notify(inp),
            7 | 8 => self.op_recv(inp),
            9 => {
                let d = Self::dom(inp);
                let s = Self::scribble(inp, d);
                self.gw(s.dom, s.off, &s.bytes);
            }
            10 => self.op_set_rx(inp),
            11 => {
                let d = if inp.u8() % 8 == 7 { 7 } else { Self::dom(inp) };
                self.destroy(d);
            }
            12 => self.op_vip_add(inp),
            13 => self.op_vip_del_or_list(inp),
            14 => self.op_raw(inp),
            15 => self.op_send(inp, true),
            _ => self.op_pump(inp),
        }
    }

    pub(super) fn op_register(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = SLOTS[inp.below(4)];
        const LENS: [u32; 24] = [
            48,
            64,
            80,
            96,
            128,
            256,
            512,
            1008,
            2048,
            4032,
            4036,
            4048,
            4096,
            8128,
            8144,
            12224,
            12240,
            MAX_RING_SIZE,
            MAX_RING_SIZE + 16,
            0,
            32,
            47,
            49,
            u32::MAX,
        ];
        let len = match inp.u8() {
            0..=199 => LENS[inp.below(LENS.len())],
            200..=229 => 16 * (inp.u16() as u32 % 800 + 3),
            _ => inp.u32(),
        };
        let port = Self::port(inp);
        let partner = match inp.u8() % 10 {
            0..=4 => DOMID_ANY,
            5..=8 => Self::dom(inp),
            _ => inp.u16(),
        };
        let flags = inp.u8();
        let fresh = flags & 1 != 0;
        let id_dom = if flags & 2 != 0 { inp.u16() } else { d };
        let magic = if flags & 0x7c == 0x7c {
            RING_MAGIC ^ 1
        } else {
            RING_MAGIC
        };
        let mut h = Vec::with_capacity(60);
        h.extend_from_slice(&magic.to_le_bytes());
        h.extend_from_slice(&port.to_le_bytes());
        h.extend_from_slice(&id_dom.to_le_bytes());
        h.extend_from_slice(&partner.to_le_bytes());
        h.extend_from_slice(&len.to_le_bytes());
        if fresh {
            h.resize(60, 0);
        }
        self.gw(d, s.ring * PAGE, &h);

        let needed = if valid_ring_len(len) {
            frames_for(len)
        } else {
            1 + (len as usize % 4)
        };
        let npage = match inp.u8() % 32 {
            0..=27 => needed as u32,
            28 => needed as u32 - 1,
            29 => needed as u32 + 1,
            30 => MAX_RING_PAGES + inp.below(2) as u32,
            _ => inp.u32(),
        };
        let pad = if inp.one_in(16) { inp.u32() } else { 0 };
        let list_magic = if inp.one_in(32) {
            inp.u64()
        } else {
            PFN_LIST_MAGIC
        };
        let room = (s.list_pages * PAGE - 40) / 8;
        let n = (npage as usize).min(needed + 1).min(room);
        let mut l = Vec::with_capacity(40 + 8 * n);
        l.extend_from_slice(&list_magic.to_le_bytes());
        l.extend_from_slice(&npage.to_le_bytes());
        l.extend_from_slice(&pad.to_le_bytes());
        l.resize(40, 0);
        let mut ents: Vec<u64> = (0..n).map(|i| Sim::gfn(d, s.ring + i % s.cap)).collect();
        if n > 0 && inp.one_in(16) {
            let j = inp.u16() as usize % n;
            ents[j] = match inp.u8() % 8 {
                0 => Sim::gfn(d, RO_PAGE),
                1 => Sim::gfn((d + 1) % NDOM as DomId, s.ring),
                2 => Sim::gfn(d, MEM_PAGES),
                3 => u64::MAX,
                4 => Sim::gfn(d, 0),
                5 => Sim::gfn(d, SLOTS[inp.below(4)].ring),
                6 => Sim::gfn(d, GUARDS[inp.below(8)]),
                _ => inp.u64(),
            };
        }
        for g in ents {
            l.extend_from_slice(&g.to_le_bytes());
        }
        self.gw(d, s.list * PAGE, &l);
        let hook = Self::hook(inp, d);
        let a1 = Self::ptr(inp, va(s.ring * PAGE));
        let a2 = Self::ptr(inp, va(s.list * PAGE));
        self.call(d, op::REGISTER_RING, [a1, a2, 0], 0, 0, hook);
    }

    pub(super) fn op_unregister(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = SLOTS[inp.below(4)];
        let hook = Self::hook(inp, d);
        let a1 = Self::ptr(inp, va(s.ring * PAGE));
        self.call(d, op::UNREGISTER_RING, [a1, 0, 0], 0, 0, hook);
    }

    pub(super) fn op_send(&mut self, inp: &mut Input, burst: bool) {
        let d = Self::dom(inp);
        let hook = if burst { None } else { Self::hook(inp, d) };
        let src = Self::pick_src(inp, d);
        let dst = self.pick_dst(inp);
        let len = self.pick_len(inp, self.lookup(dst, d));
        let proto = Self::protocol(inp);
        let seed = inp.u8();
        self.gw(d, 0, &addr_bytes(src));
        self.gw(d, 16, &addr_bytes(dst));
        self.fill(d, 64, len as usize, seed);
        if burst {
            let n = 1 + inp.below(48);
            for _ in 0..n {
                let rv = self.call(d, op::SEND, [va(0), va(16), va(64)], len, proto, None);
                if rv < 0 {
                    break;
                }
            }
            return;
        }
        let a1 = Self::ptr(inp, va(0));
        let a2 = Self::ptr(inp, va(16));
        let a3 = Self::ptr(inp, va(64));
        self.call(d, op::SEND, [a1, a2, a3], len, proto, hook);
    }

    pub(super) fn op_sendv(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let hook = Self::hook(inp, d);
        let src = Self::pick_src(inp, d);
        let dst = self.pick_dst(inp);
        let proto = Self::protocol(inp);
        let niov = match inp.u8() % 16 {
            0 => 0,
            x @ 1..=8 => (x as u32 - 1) % 4 + 1,
            9 => MAXIOV,
            10 => MAXIOV + 1,
            11 => inp.u32(),
            _ => 1 + inp.below(16) as u32,
        };
        let seed = inp.u8();
        self.gw(d, 0, &addr_bytes(src));
        self.gw(d, 16, &addr_bytes(dst));
        self.fill(d, 512, 8192, seed);
        let mut iovs = Vec::new();
        for _ in 0..niov.min(16) {
            let at = 512 + inp.u16() as usize % 8192;
            let base = Self::ptr(inp, va(at));
            let len: u64 = match inp.u8() % 32 {
                0..=3 => 0,
                4..=11 => inp.u8() as u64,
                12..=15 => inp.u16() as u64 % 4096,
                16..=19 => 16,
                20..=23 => 1,
                24 => inp.u64(),
                25 => MAX_MSG_SIZE as u64 / 2 + 1,
                _ => inp.u8() as u64 % 64,
            };
            iovs.extend_from_slice(&base.to_le_bytes());
            iovs.extend_from_slice(&len.to_le_bytes());
        }
        self.gw(d, 32, &iovs);
        let a1 = Self::ptr(inp, va(0));
        let a2 = Self::ptr(inp, va(16));
        let a3 = Self::ptr(inp, va(32));
        self.call(d, op::SENDV, [a1, a2, a3], niov, proto, hook);
    }

    pub(super) fn op_notify(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let hook = Self::hook(inp, d);
        let null = inp.one_in(8);
        let nent = match inp.u8() % 16 {
            0 => 0,
            x @ 1..=10 => (x as u32 - 1) % 4 + 1,
            11 => MAXENT,
            12 => MAXENT + 1,
            13 => inp.u32(),
            _ => inp.below(32) as u32,
        };
        let magic = if inp.one_in(32) {
            inp.u64()
        } else {
            RING_DATA_MAGIC
        };
        let pad = if inp.one_in(32) { inp.u32() } else { 0 };
        let mut b = Vec::new();
        b.extend_from_slice(&magic.to_le_bytes());
        b.extend_from_slice(&nent.to_le_bytes());
        b.extend_from_slice(&pad.to_le_bytes());
        b.resize(48, 0);
        for _ in 0..nent.min(32) {
            let ring = self.pick_dst(inp);
            let req = self.pick_len(inp, self.lookup(ring, d));
            b.extend_from_slice(&addr_bytes(ring));
            b.extend_from_slice(&inp.u16().to_le_bytes());
            b.extend_from_slice(&req.to_le_bytes());
            b.extend_from_slice(&inp.u32().to_le_bytes());
        }
        self.gw(d, 0, &b);
        let a1 = if null { 0 } else { Self::ptr(inp, va(0)) };
        self.call(d, op::NOTIFY, [a1, 0, 0], 0, 0, hook);
    }

    /// The receiver takes messages (checked against the model) or drains.
    pub(super) fn op_recv(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = inp.below(4);
        let mode = inp.u8();
        let Some(i) = self.slot_ring(d, s) else {
            return;
        };
        let count = if mode >= 224 {
            None
        } else {
            Some(1 + mode % 8)
        };
        self.recv(i, count);
    }

    /// Ring `i`'s receiver takes up to `count` messages, checking each
    /// against the model, or (`None`) drains the ring by moving rx_ptr.
    pub(super) fn recv(&mut self, i: usize, count: Option<u8>) {
        let r = &self.rings[i];
        let d = r.dom;
        self.last = Last::Recv(d, r.port);
        let hdr = r.hdr();
        if !r.trusted {
            // A confused receiver: take tx_ptr as its new rx_ptr.
            let tx = self.mem_u32(d, hdr + 24);
            self.gw(d, hdr + 20, &tx.to_le_bytes());
            return;
        }
        let mut rx = self.ring_rx(r);
        let Some(count) = count else {
            let tx = r.tx;
            self.rings[i].msgs.clear();
            self.gw_legit(d, hdr + 20, &tx.to_le_bytes());
            return;
        };
        let (len, tx) = (r.len, r.tx);
        let read = |this: &Self, o: u32, n: usize| -> Vec<u8> {
            let r = &this.rings[i];
            let mem = &this.shadow[d as usize];
            let first = n.min((len - o) as usize);
            let mut v = mem[r.data(o)..][..first].to_vec();
            v.extend_from_slice(&mem[r.data(0)..][..n - first]);
            v
        };
        for _ in 0..count {
            if rx == tx {
                assert!(
                    self.rings[i].msgs.is_empty(),
                    "{}: ring empty (rx {rx} = tx) but {} message(s) were sent to it",
                    self.last,
                    self.rings[i].msgs.len()
                );
                break;
            }
            let Some(m) = self.rings[i].msgs.pop_front() else {
                panic!(
                    "{}: ring holds data (rx {rx}, tx {tx}) that no send put there",
                    self.last
                );
            };
            let h = read(self, rx, 16);
            let got_len = le32(&h, 0);
            assert_eq!(
                (got_len, addr_at(&h, 4), le16(&h, 10), le32(&h, 12)),
                (16 + m.payload.len() as u32, m.source, 0, m.protocol),
                "{}: message header at {rx}",
                self.last
            );
            let payload = read(self, (rx + 16) % len, m.payload.len());
            assert!(payload == m.payload, "{}: payload at {rx}", self.last);
            rx = ((rx as u64 + 16 + abi::roundup(m.payload.len() as u64)) % len as u64) as u32;
        }
        self.gw_legit(d, hdr + 20, &rx.to_le_bytes());
    }

    /// Traffic through one well-behaved ring: rounds of sends, each
    /// followed by the receiver taking everything, so that messages wrap
    /// around the ring's end and straddle its pages.
    pub(super) fn op_pump(&mut self, inp: &mut Input) {
        let trusted: Vec<usize> = (0..self.rings.len())
            .filter(|&i| self.rings[i].trusted)
            .collect();
        if trusted.is_empty() {
            return;
        }
        let i = trusted[inp.below(trusted.len())];
        let r = &self.rings[i];
        let dst = Addr {
            port: r.port,
            domain: r.dom,
        };
        let d = if (r.partner as usize) < NDOM {
            r.partner
        } else {
            Self::dom(inp)
        };
        let len = inp.u16() as u32 % (r.len / 2);
        let (rounds, per) = (1 + inp.below(8), 1 + inp.below(8));
        let proto = Self::protocol(inp);
        let seed = inp.u8();
        self.gw(d, 0, &addr_bytes(Addr { port: 7, domain: d }));
        self.gw(d, 16, &addr_bytes(dst));
        self.fill(d, 64, len as usize, seed);
        for _ in 0..rounds {
            for _ in 0..per {
                let rv = self.call(d, op::SEND, [va(0), va(16), va(64)], len, proto, None);
                if rv < 0 {
                    break;
                }
            }
            // The ring may have gone (nothing here unregisters it, but a
            // failed check would have panicked already): take everything.
            if self.rings.get(i).is_some_and(|r| r.trusted) {
                self.recv(i, Some(u8::MAX));
            }
        }
    }

    /// The receiver writes something else into its rx_ptr.
    pub(super) fn op_set_rx(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let s = inp.below(4);
        let Some(i) = self.slot_ring(d, s) else {
            return;
        };
        let r = &self.rings[i];
        let (len, tx, hdr) = (r.len, self.mem_u32(d, r.hdr() + 24), r.hdr());
        let v = match inp.u8() % 9 {
            0 => 0,
            1 => len,
            2 => len - 16,
            3 => tx.wrapping_add(16),
            4 => tx.wrapping_add(8),
            5 => u32::MAX,
            6 => 16 * (inp.u16() as u32 % (len / 16 + 2)),
            7 => tx.wrapping_sub(16),
            _ => inp.u32(),
        };
        self.gw(d, hdr + 20, &v.to_le_bytes());
    }

    pub(super) fn op_vip_add(&mut self, inp: &mut Input) {
        let d = Self::vip_caller(inp);
        let hook = Self::hook(inp, d);
        let rule = Self::rule(inp);
        let pos = match inp.u8() % 8 {
            0..=3 => 0,
            4 => u32::MAX,
            5 => self.vip.len() as u32,
            6 => 1,
            _ => inp.u32(),
        };
        self.gw(d, 0, &rule);
        let a1 = Self::ptr(inp, va(0));
        self.call(d, op::VIPTABLES_ADD, [a1, 0, 0], pos, 0, hook);
    }

    pub(super) fn op_vip_del_or_list(&mut self, inp: &mut Input) {
        let d = Self::vip_caller(inp);
        let hook = Self::hook(inp, d);
        if inp.one_in(2) {
            let start = match inp.u8() % 8 {
                0..=3 => 0,
                4 => 8,
                5 => self.vip.len() as u32,
                6 => u32::MAX,
                _ => inp.u32(),
            };
            let mut b = [0u8; 132];
            b[128..].copy_from_slice(&start.to_le_bytes());
            self.gw(d, 0, &b);
            let a1 = Self::ptr(inp, va(0));
            self.call(d, op::VIPTABLES_LIST, [a1, 0, 0], 0, 0, hook);
            return;
        }
        let (null, pos) = match inp.u8() % 8 {
            0 => (true, -1),
            1 | 2 => (false, -1),
            3 | 4 => (false, 0),
            5 => (false, self.vip.len() as i32),
            6 => (false, -2),
            _ => (inp.one_in(2), inp.u32() as i32),
        };
        let rule = match self.vip.first() {
            Some(r) if inp.one_in(2) => {
                let mut b = [0u8; 16];
                b[..6].copy_from_slice(&addr_bytes(r.src));
                b[6..12].copy_from_slice(&addr_bytes(r.dst));
                b[12..].copy_from_slice(&(r.accept as u32).to_le_bytes());
                b
            }
            _ => Self::rule(inp),
        };
        self.gw(d, 0, &rule);
        let a1 = if null { 0 } else { Self::ptr(inp, va(0)) };
        self.call(d, op::VIPTABLES_DEL, [a1, 0, 0], pos as u32, 0, hook);
    }

    /// A hypercall with arbitrary command and arguments over arbitrary bytes.
    pub(super) fn op_raw(&mut self, inp: &mut Input) {
        let d = Self::dom(inp);
        let hook = Self::hook(inp, d);
        let cmd = match inp.u8() % 16 {
            x @ 0..=7 => x as u32 + 1,
            8 => 0,
            9 => 9,
            10 => 43,
            11 => inp.u32(),
            _ => 1 + inp.below(8) as u32,
        };
        let n = inp.u8() as usize;
        let bytes: Vec<u8> = (0..n).map(|_| inp.u8()).collect();
        self.gw(d, 0, &bytes);
        let arg = |inp: &mut Input| match inp.u8() % 4 {
            0 => Self::ptr(inp, va(0)),
            1 => {
                let at = inp.u16() as usize % ARGS_LEN;
                Self::ptr(inp, va(at))
            }
            2 => va(SLOTS[inp.below(4)].ring * PAGE),
            _ => inp.u64(),
        };
        let a = [arg(inp), arg(inp), arg(inp)];
        let num = |inp: &mut Input| match inp.u8() % 8 {
            0 => 0,
            1 => 1,
            2 => 8,
            3 => MAXIOV + inp.below(2) as u32,
            4 => MAXENT + inp.below(2) as u32,
            5 => u32::MAX,
            _ => inp.u32(),
        };
        let (a4, a5) = (num(inp), num(inp));
        self.call(d, cmd, a, a4, a5, hook);
    }
}
