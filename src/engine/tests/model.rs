//! Model-based property test: random sequences of operations from several
//! domains, checked step by step against a plain reference model of what the
//! ABI promises. Every return code is predicted exactly; every message is
//! delivered once, in order, intact, to the right ring, with the right
//! source; nothing is delivered that viptables rejects or a partner ring
//! does not accept; teardown leaves no frame pinned.
use crate::abi::{errno, Addr, RingDataFlags, ViptablesRule, DOMID_ANY, PORT_ANY, PROTO_DGRAM};
use crate::sim::client::{Guest, GuestRing, Host, Msg};
use proptest::prelude::*;
use std::collections::VecDeque;
use std::vec::Vec;

const DOMS: [u16; 4] = [0, 1, 2, 3];
const PORTS: [u32; 2] = [10, 11];
const LENS: [u32; 4] = [48, 256, 4096, 12288];

#[derive(Clone, Debug)]
enum Op {
    Register {
        dom: usize,
        slot: usize,
        partner: Option<usize>,
        len: usize,
    },
    Unregister {
        dom: usize,
        slot: usize,
    },
    Send {
        from: usize,
        to: usize,
        port: usize,
        src_port: u32,
        len: usize,
        lie: bool,
    },
    Sendv {
        from: usize,
        to: usize,
        port: usize,
        parts: Vec<usize>,
    },
    Recv {
        dom: usize,
        slot: usize,
        n: usize,
    },
    Notify {
        from: usize,
        to: usize,
        port: usize,
        space: u32,
    },
    Destroy {
        dom: usize,
    },
    Reject {
        src: usize,
        dst: usize,
    },
    Unreject,
}

fn op() -> impl Strategy<Value = Op> {
    let d = 0..DOMS.len();
    prop_oneof![
        3 => (d.clone(), 0..2usize, proptest::option::of(0..DOMS.len()), 0..LENS.len())
            .prop_map(|(dom, slot, partner, len)| Op::Register { dom, slot, partner, len }),
        1 => (d.clone(), 0..2usize).prop_map(|(dom, slot)| Op::Unregister { dom, slot }),
        8 => (d.clone(), d.clone(), 0..2usize, 0..4u32, prop_oneof![0..40usize, 0..5000usize], proptest::bool::weighted(0.05))
            .prop_map(|(from, to, port, src_port, len, lie)| Op::Send { from, to, port, src_port, len, lie }),
        3 => (d.clone(), d.clone(), 0..2usize, proptest::collection::vec(0..1500usize, 0..5))
            .prop_map(|(from, to, port, parts)| Op::Sendv { from, to, port, parts }),
        6 => (d.clone(), 0..2usize, 1..6usize).prop_map(|(dom, slot, n)| Op::Recv { dom, slot, n }),
        2 => (d.clone(), d.clone(), 0..2usize, prop_oneof![0..64u32, 0..13000u32])
            .prop_map(|(from, to, port, space)| Op::Notify { from, to, port, space }),
        1 => (1..DOMS.len()).prop_map(|dom| Op::Destroy { dom }),
        1 => (d.clone(), d).prop_map(|(src, dst)| Op::Reject { src, dst }),
        1 => Just(Op::Unreject),
    ]
}

/// The model of one ring slot of a domain.
struct RingModel {
    ring: GuestRing,
    registered: bool,
    /// Messages written and not yet read, in order.
    queue: VecDeque<Msg>,
}

impl RingModel {
    fn used(&self) -> u64 {
        self.queue
            .iter()
            .map(|m| 16 + crate::abi::roundup(m.payload.len() as u64))
            .sum()
    }

    fn fits(&self, payload: usize) -> bool {
        let free = self.ring.len as u64 - self.used();
        16 + crate::abi::roundup(payload as u64) + 16 <= free
    }
}

struct Model {
    host: Host,
    guests: Vec<Guest>,
    rings: Vec<[Option<RingModel>; 2]>,
    /// (src dom, dst dom) reject rules, in table order.
    rejects: Vec<(u16, u16)>,
    /// Whether the engine holds state for each domain (it registered, sent
    /// or asked notify about rings since its last destruction): only such a
    /// domain can be a destination.
    known: [bool; 4],
    seq: u32,
}

fn payload(seq: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seq as usize * 7 + i * 13) as u8)
        .collect()
}

impl Model {
    fn new() -> Model {
        let host = Host::new(&DOMS, 3000);
        let guests = DOMS.iter().map(|&d| host.guest(d, 8)).collect();
        Model {
            host,
            guests,
            rings: (0..DOMS.len()).map(|_| [None, None]).collect(),
            rejects: Vec::new(),
            known: [false; 4],
            seq: 0,
        }
    }

    /// The ring model a message from `from` to (dom, port) goes to.
    fn dest(&self, from: u16, to: usize, port: u32) -> Option<(usize, usize)> {
        let cands: Vec<usize> = (0..2)
            .filter(|&s| {
                self.rings[to][s]
                    .as_ref()
                    .is_some_and(|r| r.registered && { r.ring.id.addr.port } == port)
            })
            .collect();
        let partner = |s: usize| {
            self.rings[to][s]
                .as_ref()
                .map(|r| r.ring.id.partner)
                .unwrap_or(0)
        };
        cands
            .iter()
            .copied()
            .find(|&s| partner(s) == from)
            .or_else(|| cands.iter().copied().find(|&s| partner(s) == DOMID_ANY))
            .map(|s| (to, s))
    }

    fn rejected(&self, from: u16, to: u16) -> bool {
        self.rejects.iter().any(|&(s, d)| s == from && d == to)
    }

    /// Predicted outcome of a message of `len` bytes; Ok(ring) when delivered.
    fn predict(&self, from: u16, to: usize, port: u32, len: usize) -> Result<(usize, usize), i64> {
        if self.rejected(from, DOMS[to]) {
            // viptables is checked before the ring lookup, after the domain
            if self.domain_known(to) {
                return Err(-errno::EPERM);
            }
        }
        if !self.domain_known(to) {
            return Err(-errno::ENOTCONN);
        }
        let (d, s) = self.dest(from, to, port).ok_or(-errno::ENOTCONN)?;
        let r = self.rings[d][s].as_ref().unwrap();
        if len as u64 > r.ring.len as u64 - 32 {
            return Err(-errno::ENOBUFS);
        }
        if !r.fits(len) {
            return Err(-errno::EAGAIN);
        }
        Ok((d, s))
    }

    /// Whether the engine has state for domain `to` (it registered a ring
    /// since its last destruction, or sent, or notified).
    fn domain_known(&self, to: usize) -> bool {
        self.known[to]
    }
}

impl Model {
    fn apply(&mut self, op: &Op) {
        let h = &self.host;
        match *op {
            Op::Register {
                dom,
                slot,
                partner,
                len,
            } => {
                let partner = partner.map_or(DOMID_ANY, |p| DOMS[p]);
                let len = LENS[len];
                let same = self.rings[dom][slot]
                    .as_ref()
                    .is_some_and(|r| r.ring.len == len && r.ring.id.partner == partner);
                if !same {
                    if let Some(old) = self.rings[dom][slot].take() {
                        if old.registered {
                            assert_eq!(old.ring.unregister(h), 0);
                        }
                    }
                    let ring = self.guests[dom].ring(h, PORTS[slot], partner, len);
                    self.rings[dom][slot] = Some(RingModel {
                        ring,
                        registered: false,
                        queue: VecDeque::new(),
                    });
                }
                let r = self.rings[dom][slot].as_mut().unwrap();
                assert_eq!(r.ring.register(h), 0, "{op:?}");
                r.registered = true;
                self.known[dom] = true;
            }
            Op::Unregister { dom, slot } => {
                let Some(r) = self.rings[dom][slot].as_mut() else {
                    return;
                };
                let expect = if r.registered { 0 } else { -errno::ENOENT };
                assert_eq!(r.ring.unregister(h), expect, "{op:?}");
                r.registered = false;
            }
            Op::Send {
                from,
                to,
                port,
                src_port,
                len,
                lie,
            } => {
                self.seq += 1;
                let p = payload(self.seq, len);
                let g = &self.guests[from];
                let dst = Addr {
                    port: PORTS[port],
                    domain: DOMS[to],
                };
                if lie {
                    let other = DOMS[(from + 1) % DOMS.len()];
                    let src = Addr {
                        port: src_port,
                        domain: other,
                    };
                    assert_eq!(g.send_from(h, src, dst, &p, PROTO_DGRAM), -errno::EPERM);
                    return;
                }
                self.known[from] = true;
                let predicted = self.predict(DOMS[from], to, PORTS[port], len);
                let virqs = h.sim.virqs(DOMS[to]);
                let rc = g.send(h, src_port, dst, &p, PROTO_DGRAM);
                self.deliver(
                    op,
                    predicted,
                    rc,
                    virqs,
                    Msg {
                        source: g.addr(src_port),
                        protocol: PROTO_DGRAM,
                        payload: p,
                    },
                );
            }
            Op::Sendv {
                from,
                to,
                port,
                ref parts,
            } => {
                self.seq += 1;
                let bufs: Vec<Vec<u8>> = parts
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| payload(self.seq + i as u32, n))
                    .collect();
                let refs: Vec<&[u8]> = bufs.iter().map(|b| b.as_slice()).collect();
                let whole = bufs.concat();
                let g = &self.guests[from];
                self.known[from] = true;
                let predicted = self.predict(DOMS[from], to, PORTS[port], whole.len());
                let dst = Addr {
                    port: PORTS[port],
                    domain: DOMS[to],
                };
                let virqs = h.sim.virqs(DOMS[to]);
                let rc = g.sendv(h, 5, dst, &refs, 0x1234);
                self.deliver(
                    op,
                    predicted,
                    rc,
                    virqs,
                    Msg {
                        source: g.addr(5),
                        protocol: 0x1234,
                        payload: whole,
                    },
                );
            }
            Op::Recv { dom, slot, n } => {
                let Some(r) = self.rings[dom][slot].as_mut() else {
                    return;
                };
                for _ in 0..n {
                    let got = r.ring.recv(h);
                    assert_eq!(got, r.queue.pop_front(), "{op:?}");
                }
            }
            Op::Notify {
                from,
                to,
                port,
                space,
            } => {
                let dst = Addr {
                    port: PORTS[port],
                    domain: DOMS[to],
                };
                let (rc, ents) = self.guests[from].notify(h, &[(dst, space)]);
                self.known[from] = true;
                assert_eq!(rc, 0, "{op:?}");
                let mut flags = RingDataFlags::empty();
                let mut mms = 0;
                if self.known[to] && !self.rejected(DOMS[from], DOMS[to]) {
                    if let Some((d, s)) = self.dest(DOMS[from], to, PORTS[port]) {
                        let r = self.rings[d][s].as_ref().unwrap();
                        flags |= RingDataFlags::EXISTS;
                        if r.queue.is_empty() {
                            flags |= RingDataFlags::EMPTY;
                        }
                        mms = r.ring.len - 32;
                        if r.fits(space as usize) {
                            flags |= RingDataFlags::SUFFICIENT;
                        } else {
                            flags |= RingDataFlags::PENDING;
                        }
                    }
                }
                assert_eq!(
                    RingDataFlags::from_bits_retain(ents[0].flags),
                    flags,
                    "{op:?}"
                );
                assert_eq!({ ents[0].max_message_size }, mms, "{op:?}");
            }
            Op::Destroy { dom } => {
                h.destroy(DOMS[dom]);
                self.rings[dom] = [None, None];
                self.known[dom] = false;
                assert_eq!(h.sim.pins(DOMS[dom]), 0);
            }
            Op::Reject { src, dst } => {
                let rule = ViptablesRule {
                    src: Addr {
                        port: PORT_ANY,
                        domain: DOMS[src],
                    },
                    dst: Addr {
                        port: PORT_ANY,
                        domain: DOMS[dst],
                    },
                    accept: 0,
                };
                assert_eq!(self.guests[0].viptables_add(h, rule, 0), 0);
                self.rejects.insert(0, (DOMS[src], DOMS[dst]));
            }
            Op::Unreject => {
                let expect = if self.rejects.is_empty() {
                    -errno::ENOENT
                } else {
                    0
                };
                assert_eq!(self.guests[0].viptables_del(h, None, 0), expect);
                if !self.rejects.is_empty() {
                    self.rejects.remove(0);
                }
            }
        }
    }

    fn deliver(
        &mut self,
        op: &Op,
        predicted: Result<(usize, usize), i64>,
        rc: i64,
        virqs: u64,
        msg: Msg,
    ) {
        match predicted {
            Ok((d, s)) => {
                assert_eq!(rc, msg.payload.len() as i64, "{op:?}");
                assert_eq!(self.host.sim.virqs(DOMS[d]), virqs + 1, "{op:?}");
                self.rings[d][s].as_mut().unwrap().queue.push_back(msg);
            }
            Err(e) => assert_eq!(rc, e, "{op:?}"),
        }
    }

    fn finish(self) {
        for d in DOMS {
            self.host.destroy(d);
        }
        assert_eq!(self.host.sim.all_pins(), 0);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..160)) {
        let mut m = Model::new();
        for op in &ops {
            m.apply(op);
        }
        // Everything still queued is still readable, intact and in order.
        for d in 0..DOMS.len() {
            for s in 0..2 {
                if let Some(r) = m.rings[d][s].as_mut() {
                    while let Some(want) = r.queue.pop_front() {
                        assert_eq!(r.ring.recv(&m.host), Some(want));
                    }
                    assert_eq!(r.ring.recv(&m.host), None);
                }
            }
        }
        m.finish();
    }
}
