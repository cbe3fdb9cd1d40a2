//! `vsock-peer`: a Rust test domU that speaks the wire protocol of the
//! Linux AF_VSOCK transport (`vsock-v4v/README.md`, "Wire format") to a
//! Linux domU's stream ring, first as a correct peer, then as a hostile
//! one. The cast: `a` is the Linux domU with the socat servers (echo on
//! 5000, sink on 5002, nothing on 5999), `b` the Linux client, paced by
//! datagrams (we send to its port 21, it answers on our port 22).
//!
//! What it shows, each a named result:
//! - a connection made by hand (SYN, SYN|ACK, DATA, echoed DATA, close)
//!   to socat's echo server: the two implementations agree on the format;
//! - RST for a SYN to a port nobody listens on, and for data of a
//!   connection that does not exist;
//! - data beyond the credit the receiver gave resets the connection;
//! - thousands of malformed messages (short, lengths that disagree,
//!   stray flags, other protocols) leave the module serving;
//! - a peer that stops draining its ring while asking for credit over and
//!   over: the Linux side queues one credit update for it, not one a
//!   request, and its connections with `b` go on meanwhile (`b` checks).

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use v4v_abi::{errno, Addr, DOMID_ANY, PROTO_DGRAM, PROTO_STREAM};

use super::traffic::mix;
use super::{poll_until, report, wait_virq, Node};
use crate::println;
use crate::tests::rc_name;
use crate::v4v::{self, iov, Ring};
use crate::xen::time;

/// V4V port of every domain's stream ring ("vsoc").
const STREAM_PORT: u32 = 0x7673_6f63;
/// Wire flags.
const SYN: u32 = 0x01;
const ACK: u32 = 0x02;
const RST: u32 = 0x04;
const SHUT_RD: u32 = 0x10;
const SHUT_WR: u32 = 0x20;
const CREDIT_REQ: u32 = 0x40;
const DATA: u32 = 0x80;
/// Wire header size.
const HDR: usize = 24;
/// The socat servers in `a`.
const ECHO: u32 = 5000;
const SINK: u32 = 5002;
const NOBODY: u32 = 5999;
/// Pacing datagram ports: `b`'s, ours.
const B_PORT: u32 = 21;
const OUR_PORT: u32 = 22;
/// Our stream ring: small, so that it fills when we stop draining it.
const RING_LEN: u32 = 8 * 1024;
/// Bytes a bare control message takes in a ring (V4V header + ours, rounded).
const CTL_SLOT: u32 = 48;
/// Receive buffer we advertise.
const OUR_BUF: u32 = 64 * 1024;

/// One wire header.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Hdr {
    flags: u32,
    src_port: u32,
    dst_port: u32,
    buf_alloc: u32,
    fwd_cnt: u32,
    len: u32,
}

impl Hdr {
    fn new(flags: u32, src_port: u32, dst_port: u32, len: u32) -> Hdr {
        Hdr {
            flags,
            src_port,
            dst_port,
            buf_alloc: OUR_BUF,
            fwd_cnt: 0,
            len,
        }
    }

    fn bytes(&self) -> [u8; HDR] {
        let mut b = [0u8; HDR];
        let f = [
            self.flags,
            self.src_port,
            self.dst_port,
            self.buf_alloc,
            self.fwd_cnt,
            self.len,
        ];
        for (chunk, v) in b.chunks_exact_mut(4).zip(f) {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    fn parse(b: &[u8]) -> Option<Hdr> {
        let w = |i: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                b.get(i * 4..i * 4 + 4)?.try_into().ok()?,
            ))
        };
        Some(Hdr {
            flags: w(0)?,
            src_port: w(1)?,
            dst_port: w(2)?,
            buf_alloc: w(3)?,
            fwd_cnt: w(4)?,
            len: w(5)?,
        })
    }

    /// Whether this came from `their` port to `ours`.
    fn on(&self, ours: u32, their: u32) -> bool {
        self.src_port == their && self.dst_port == ours
    }
}

/// A stream message from the Linux domU: header and payload.
type Msg = (Hdr, Vec<u8>);

struct Peer {
    n: Node,
    ring: Ring,
    target: u16,
    /// Messages from the target not yet asked for.
    backlog: Vec<Msg>,
}

impl Peer {
    fn src(&self) -> Addr {
        self.n.addr(STREAM_PORT)
    }

    fn dst(&self) -> Addr {
        Addr {
            port: STREAM_PORT,
            domain: self.target,
        }
    }

    /// One V4V message to the target's stream ring, waiting while the ring
    /// is full (5 s at most). Returns the hypercall's result.
    fn send_raw(&mut self, parts: &[&[u8]], protocol: u32) -> i64 {
        let iovs: Vec<_> = parts.iter().map(|p| iov(p)).collect();
        let total: usize = parts.iter().map(|p| p.len()).sum();
        let deadline = time::deadline_ms(5000);
        loop {
            let rc = v4v::sendv(&self.src(), &self.dst(), &iovs, protocol);
            if rc != -errno::EAGAIN || time::passed(deadline) {
                if rc >= 0 && rc != total as i64 {
                    println!("vsock-peer: sendv took {rc} of {total} bytes");
                }
                return rc;
            }
            wait_virq(self.n.virq, time::deadline_ms(50).min(deadline));
        }
    }

    fn send(&mut self, h: Hdr, payload: &[u8]) -> Result<(), String> {
        let rc = self.send_raw(&[&h.bytes(), payload], PROTO_STREAM);
        if rc < 0 {
            return Err(format!("sending flags {:#x}: {}", h.flags, rc_name(rc)));
        }
        Ok(())
    }

    /// Moves every message in our stream ring into the backlog (those from
    /// the target with a whole header); returns how many there were.
    fn drain(&mut self) -> Result<usize, String> {
        let mut count = 0;
        while let Some(m) = self.ring.recv()? {
            count += 1;
            if m.header.source.domain != self.target
                || m.header.protocol != PROTO_STREAM
                || m.payload.len() < HDR
            {
                continue;
            }
            if let Some(h) = Hdr::parse(&m.payload) {
                self.backlog.push((h, m.payload[HDR..].to_vec()));
            }
        }
        if count > 0 {
            v4v::notify_all();
        }
        Ok(count)
    }

    /// The first message (in arrival order) `want` accepts, waiting up to
    /// `ms` for it.
    fn expect(&mut self, ms: u64, what: &str, want: impl Fn(&Hdr) -> bool) -> Result<Msg, String> {
        let virq = self.n.virq;
        poll_until(virq, ms, || {
            self.drain()?;
            Ok(self
                .backlog
                .iter()
                .position(|(h, _)| want(h))
                .map(|i| self.backlog.remove(i)))
        })?
        .ok_or_else(|| {
            format!(
                "no {what} within {} ms; backlog {:?}",
                ms,
                self.backlog.iter().map(|(h, _)| *h).collect::<Vec<_>>()
            )
        })
    }

    /// Empties ring and backlog (before a check that waits for one reply).
    fn forget(&mut self) -> Result<(), String> {
        self.drain()?;
        self.backlog.clear();
        Ok(())
    }

    /// SYN from `ours` to `port`; the SYN|ACK's header.
    fn connect(&mut self, ours: u32, port: u32) -> Result<Hdr, String> {
        self.send(Hdr::new(SYN, ours, port, 0), &[])?;
        let (h, _) = self.expect(10_000, "SYN|ACK or RST", |h| h.on(ours, port))?;
        if h.flags & (SYN | ACK) != SYN | ACK {
            return Err(format!("connect {ours}->{port}: answer {h:?}"));
        }
        Ok(h)
    }

    /// A connection to the echo server: one line out, the same line back,
    /// then a close; checks the credit fields on the way.
    fn echo(&mut self, ours: u32) -> Result<(), String> {
        self.forget()?;
        let synack = self.connect(ours, ECHO)?;
        if synack.buf_alloc == 0 {
            return Err(format!("SYN|ACK gives no credit: {synack:?}"));
        }
        let line = format!("hello from Rust domain {} on port {ours}\n", self.n.me);
        self.send(
            Hdr::new(DATA, ours, ECHO, line.len() as u32),
            line.as_bytes(),
        )?;
        let mut back = Vec::new();
        while back.len() < line.len() {
            let (h, p) = self.expect(10_000, "the echo", |h| h.on(ours, ECHO))?;
            if h.flags & RST != 0 {
                return Err(format!("RST after {} bytes of echo", back.len()));
            }
            if h.flags & DATA != 0 {
                if h.len as usize != p.len() {
                    return Err(format!("DATA header len {} but {} bytes", h.len, p.len()));
                }
                back.extend_from_slice(&p);
            }
        }
        if back != line.as_bytes() {
            return Err(format!(
                "sent {line:?}, got {:?}",
                String::from_utf8_lossy(&back)
            ));
        }
        let mut bye = Hdr::new(SHUT_RD | SHUT_WR, ours, ECHO, 0);
        bye.fwd_cnt = back.len() as u32;
        self.send(bye, &[])
    }

    /// One message that must be answered by RST from `port` to `ours`.
    fn wants_rst(&mut self, h: Hdr, payload: &[u8]) -> Result<(), String> {
        self.forget()?;
        self.send(h, payload)?;
        let (r, _) = self.expect(10_000, "RST", |r| r.on(h.src_port, h.dst_port))?;
        if r.flags & RST == 0 {
            return Err(format!("answer {r:?}, not RST"));
        }
        Ok(())
    }

    /// More data than the credit the sink's SYN|ACK gave, in one message.
    fn over_credit(&mut self, ours: u32) -> Result<(), String> {
        self.forget()?;
        let synack = self.connect(ours, SINK)?;
        let n = synack.buf_alloc as usize + 1;
        if n + HDR + 16 >= 1024 * 1024 - 64 {
            return Err(format!(
                "credit {} too big for one message",
                synack.buf_alloc
            ));
        }
        let payload = vec![0x5a; n];
        self.send(Hdr::new(DATA, ours, SINK, n as u32), &payload)?;
        let (r, _) = self.expect(10_000, "RST", |r| r.on(ours, SINK))?;
        if r.flags & RST == 0 {
            return Err(format!("answer {r:?}, not RST"));
        }
        Ok(())
    }

    /// `count` malformed messages; every one must be taken by Xen (the
    /// ring exists and has room), none may stop the module.
    fn garbage(&mut self, count: u64) -> Result<(), String> {
        let ports = [ECHO, SINK, NOBODY, 5001, 5003, 7, 0, u32::MAX];
        let mut kinds = [0u32; 4];
        for i in 0..count {
            let r = mix(0x7673_6f63_0000_0000 ^ i);
            let r2 = mix(r);
            let kind = (r % 4) as usize;
            kinds[kind] += 1;
            let port = ports[(r2 % ports.len() as u64) as usize];
            // No SYN to a listening port: each would be a socat child.
            let flags = (r2 >> 8) as u32 & !SYN;
            let plen = ((r >> 16) % 64) as usize;
            let junk: Vec<u8> = (0..plen).map(|k| mix(r ^ k as u64) as u8).collect();
            let mut h = Hdr::new(flags, 0x5000 + (r2 >> 40) as u32 % 64, port, plen as u32);
            h.buf_alloc = (r >> 24) as u32;
            h.fwd_cnt = (r >> 40) as u32;
            let rc = match kind {
                // Shorter than a header.
                0 => self.send_raw(&[&junk[..plen % HDR]], PROTO_STREAM),
                // A header whose len disagrees with the payload.
                1 => {
                    h.len = plen as u32 + 1 + (r2 >> 48) as u32;
                    self.send_raw(&[&h.bytes(), &junk], PROTO_STREAM)
                }
                // Well formed, stray flags and ports.
                2 => self.send_raw(&[&h.bytes(), &junk], PROTO_STREAM),
                // Another protocol.
                _ => self.send_raw(&[&h.bytes(), &junk], (r2 >> 32) as u32 | 1),
            };
            if rc < 0 {
                return Err(format!("message {i} (kind {kind}): {}", rc_name(rc)));
            }
            // Drain now and then, not always: RSTs for strays may find the
            // ring full, and are dropped by the module, not queued.
            if i % 256 == 255 {
                self.forget()?;
            }
        }
        println!(
            "vsock-peer: {count} malformed messages sent (short {}, bad len {}, stray {}, other protocol {})",
            kinds[0], kinds[1], kinds[2], kinds[3]
        );
        Ok(())
    }

    /// Opens a connection to the echo server, stops draining, and asks for
    /// credit `asks` times: every ask wants an ACK, and the ring takes only
    /// RING_LEN / CTL_SLOT of them.
    fn stall(&mut self, ours: u32, asks: u32) -> Result<(), String> {
        self.forget()?;
        self.connect(ours, ECHO)?;
        for _ in 0..asks {
            self.send(Hdr::new(CREDIT_REQ, ours, ECHO, 0), &[])?;
        }
        Ok(())
    }

    /// After the stall: drain, let the module flush what it queued, and
    /// count its ACKs for the connection.
    fn unstall(&mut self, ours: u32, asks: u32) -> Result<(), String> {
        let mut acks = 0u32;
        let deadline = time::deadline_ms(3000);
        while !time::passed(deadline) {
            self.drain()?;
            acks += self
                .backlog
                .iter()
                .filter(|(h, _)| h.on(ours, ECHO) && h.flags == ACK)
                .count() as u32;
            self.backlog.clear();
            wait_virq(self.n.virq, time::deadline_ms(100).min(deadline));
        }
        self.send(Hdr::new(SHUT_RD | SHUT_WR, ours, ECHO, 0), &[])?;
        let room = RING_LEN / CTL_SLOT;
        println!("vsock-peer: {asks} credit requests with the ring full after about {room}: {acks} ACKs came");
        if acks == 0 {
            return Err(String::from("no ACK at all"));
        }
        // What fitted before the ring filled, plus the queued one, plus a
        // few answered while we were draining.
        if acks > room + 8 {
            return Err(format!(
                "{acks} ACKs for {asks} requests: queued one a request (ring holds {room})"
            ));
        }
        Ok(())
    }
}

/// A pacing datagram to `b`.
fn tell_b(n: &Node, text: &str) -> Result<(), String> {
    let src = n.addr(B_PORT);
    let dst = Addr {
        port: B_PORT,
        domain: n.cast.b,
    };
    let deadline = time::deadline_ms(60_000);
    loop {
        let rc = v4v::send(&src, &dst, text.as_bytes(), PROTO_DGRAM);
        if rc >= 0 {
            return Ok(());
        }
        if time::passed(deadline) {
            return Err(format!("telling b '{text}': {}", rc_name(rc)));
        }
        wait_virq(n.virq, time::deadline_ms(100));
    }
}

pub fn run(n: Node) {
    let target = n.cast.a;
    let b = n.cast.b;
    let mut ring = Ring::new(STREAM_PORT, DOMID_ANY, RING_LEN);
    let rc = ring.register();
    if rc != 0 {
        println!("V4VT bail out! vsock-peer: stream ring: {}", rc_name(rc));
        return;
    }
    let mut go = Ring::new(OUR_PORT, b, 4096);
    let rc = go.register();
    if rc != 0 {
        println!(
            "V4VT bail out! vsock-peer: port {OUR_PORT}: {}",
            rc_name(rc)
        );
        return;
    }
    println!(
        "vsock-peer: domain {} speaking to the Linux stream ring of domain {target}",
        n.me
    );
    let mut p = Peer {
        n,
        ring,
        target,
        backlog: Vec::new(),
    };
    report("vsock.rust-peer-echo", p.echo(0x4000));
    report(
        "vsock.rust-peer-refused",
        p.wants_rst(Hdr::new(SYN, 0x4001, NOBODY, 0), &[]),
    );
    report(
        "vsock.rust-peer-stray-rst",
        p.wants_rst(Hdr::new(DATA, 0x4002, ECHO, 5), b"stray"),
    );
    report("vsock.rust-peer-over-credit", p.over_credit(0x4003));
    report("vsock.rust-peer-garbage", p.garbage(3000));
    report("vsock.rust-peer-survived", p.echo(0x4004));

    const ASKS: u32 = 2000;
    let stalled = p.stall(0x4005, ASKS).and_then(|()| tell_b(&p.n, "stalled"));
    let ok = report("vsock.rust-peer-stalled", stalled);
    if ok {
        // b talks to a meanwhile; it says "go" when done (5 min at most).
        let virq = p.n.virq;
        let heard = poll_until(virq, 300_000, || {
            Ok(go
                .recv()?
                .filter(|m| m.payload.starts_with(b"go"))
                .map(|_| ()))
        });
        if !matches!(heard, Ok(Some(()))) {
            println!("vsock-peer: no 'go' from b: {heard:?}");
        }
        report("vsock.rust-peer-credit-coalesced", p.unstall(0x4005, ASKS));
        report("vsock.rust-peer-after-stall", p.echo(0x4006));
    }
    if let Err(e) = tell_b(&p.n, "done") {
        println!("vsock-peer: {e}");
    }
}
