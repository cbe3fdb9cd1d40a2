//! Role `a`: the main sender. It follows `b`'s phases, and in the
//! viptables and teardown phases it also paces dom0 with progress marks.

use alloc::format;
use alloc::string::String;
use alloc::vec;

use v4v_abi::{errno, Addr, RingDataFlags, PROTO_DGRAM};

use super::super::traffic::{self, fill, Until};
use super::super::{check_rc, mark, port, query, report, wait_virq, Node};
use super::{concurrency_phase, sleep_ms};
use crate::println;
use crate::tests::rc_name;
use crate::v4v;
use crate::xen::{event, time};

/// Datagrams of the first phase, and their stream id.
pub const DGRAMS: u32 = 64;
pub const DGRAM_STREAM: u32 = 100;
/// Size of datagram `i`: 1 to 1500 bytes.
pub fn dgram_size(i: u32) -> usize {
    1 + (i as usize * 97) % 1500
}

/// Flow-control phase: fixed 1000-byte messages into a 4096-byte ring
/// (each takes 1024 bytes, so three fit and the fourth is refused).
pub const FLOW_RING_LEN: u32 = 4096;
pub const FLOW_MSG: usize = 1000;
pub const FLOW_TOTAL: u32 = 20;
pub const FLOW_STREAM: u32 = 200;

/// The volume phase: at least this many payload bytes.
pub const VOLUME_BYTES: u64 = 64 << 20;
pub const VOLUME_STREAM: u32 = 1;
/// Traffic under the hostile guest's fire.
pub const HOSTILE_BYTES: u64 = 16 << 20;
pub const HOSTILE_STREAM: u32 = 2;
/// Teardown: the stream to the old `b`, then the one to the new.
pub const TEARDOWN_STREAM: u32 = 300;
pub const TEARDOWN_NEW_STREAM: u32 = 301;
pub const TEARDOWN_MAX: usize = 512;

/// One flow-control message: its sequence number, then stream bytes.
pub fn flow_msg(seq: u32) -> vec::Vec<u8> {
    let mut m = vec![0u8; FLOW_MSG];
    fill(FLOW_STREAM, seq, &mut m[4..]);
    m[..4].copy_from_slice(&seq.to_le_bytes());
    m
}

pub fn run(mut n: Node) {
    let b = n.cast.b;
    if let Err(e) = n.hear(b, "ready") {
        println!("V4VT bail out! a: {e}");
        return;
    }
    let src = n.addr(port::SENDER);
    let to = |port| Addr { port, domain: b };

    // Datagrams to a ring that takes anyone.
    report(
        "dgram.a-sent",
        (|| {
            let mut buf = vec![0u8; 1500];
            for i in 0..DGRAMS {
                let m = &mut buf[..dgram_size(i)];
                fill(DGRAM_STREAM, i, m);
                check_rc(
                    v4v::send(&src, &to(port::DGRAM), m, PROTO_DGRAM),
                    m.len() as i64,
                    format_args!("datagram {i}"),
                )?;
            }
            println!("a: {DGRAMS} datagrams sent to dom{b}:{}", port::DGRAM);
            Ok(())
        })(),
    );

    // A ring reserved for us.
    report(
        "partner.a-accepted",
        check_rc(
            v4v::send(&src, &to(port::PARTNER), b"partner", PROTO_DGRAM),
            7,
            "send to the ring whose partner is a",
        ),
    );
    let _ = n.tell(b, "partner-done");

    flow(&mut n);
    volume(&mut n);

    // Concurrency: both vCPUs at once, next to `c`'s two.
    concurrency_phase(&mut n, "a");

    viptables(&mut n);

    // Traffic while the hostile guest does its worst.
    let r = n.hear(b, "hostile-go").and_then(|_| {
        traffic::send_stream(
            n.virq,
            &src,
            &to(port::VOLUME),
            HOSTILE_STREAM,
            Until::Bytes(HOSTILE_BYTES),
            65536,
            600_000,
        )
    });
    report("hostile.a-sent", r.map(|_| ()));

    teardown(&mut n);
}

fn flow(n: &mut Node) {
    let b = n.cast.b;
    if let Err(e) = n.hear(b, "flow-go") {
        report("flow.eagain-when-full", Err(e));
        return;
    }
    let src = n.addr(port::SENDER);
    let dst = Addr {
        port: port::FLOW,
        domain: b,
    };
    let max = FLOW_RING_LEN - 32;
    report(
        "flow.never-fits-enobufs",
        check_rc(
            v4v::send(&src, &dst, &vec![0u8; max as usize + 1], PROTO_DGRAM),
            -errno::ENOBUFS,
            "message one byte over max_message_size",
        ),
    );
    report(
        "flow.missing-ring-flags",
        (|| {
            let (f, _) = query(
                Addr {
                    port: 0x7777,
                    domain: b,
                },
                16,
            )?;
            if f.contains(RingDataFlags::EXISTS) {
                return Err(format!("flags {f:?} for a ring that does not exist"));
            }
            Ok(())
        })(),
    );

    event::test_and_clear(n.virq);
    let mut sent = 0u32;
    let full = (|| {
        loop {
            let rc = v4v::send(&src, &dst, &flow_msg(sent), PROTO_DGRAM);
            if rc == -errno::EAGAIN {
                break;
            }
            check_rc(rc, FLOW_MSG as i64, format_args!("flow message {sent}"))?;
            sent += 1;
            if sent > 16 {
                return Err("the ring never filled".into());
            }
        }
        if sent != 3 {
            return Err(format!("{sent} messages fit, the ABI's space rule says 3"));
        }
        Ok(())
    })();
    let filled = full.is_ok();
    report("flow.eagain-when-full", full);
    if !filled {
        return;
    }
    report(
        "flow.notify-flags-full",
        (|| {
            let (f, mms) = query(dst, FLOW_MSG as u32)?;
            let want = RingDataFlags::EXISTS | RingDataFlags::PENDING;
            if f != want {
                return Err(format!("flags {f:?}, want {want:?}"));
            }
            if mms != max {
                return Err(format!("max_message_size {mms}, want {max}"));
            }
            Ok(())
        })(),
    );
    let _ = n.tell(b, "flow-full");
    // b drains and calls notify: Xen must raise VIRQ_V4V in us.
    let woke = wait_virq(n.virq, time::deadline_ms(60_000));
    report(
        "flow.virq-after-drain",
        if woke {
            Ok(())
        } else {
            Err("no VIRQ_V4V within 60 s of asking b to drain".into())
        },
    );
    report(
        "flow.notify-flags-drained",
        (|| {
            // b took all three messages before its notify.
            let (f, mms) = query(dst, FLOW_MSG as u32)?;
            let want = RingDataFlags::EXISTS | RingDataFlags::SUFFICIENT | RingDataFlags::EMPTY;
            if f != want {
                return Err(format!("flags {f:?}, want {want:?}"));
            }
            if mms != max {
                return Err(format!("max_message_size {mms}, want {max}"));
            }
            Ok(())
        })(),
    );
    report(
        "flow.resumed",
        (|| {
            let deadline = time::deadline_ms(120_000);
            let mut waits = 0;
            while sent < FLOW_TOTAL {
                traffic::send_one(
                    n.virq,
                    &src,
                    &dst,
                    &flow_msg(sent),
                    false,
                    deadline,
                    &mut waits,
                )?;
                sent += 1;
            }
            println!("a: flow control: {FLOW_TOTAL} messages through a 4 KiB ring, {waits} waits for space");
            Ok(())
        })(),
    );
    let _ = n.tell(b, "flow-done");
}

fn volume(n: &mut Node) {
    let b = n.cast.b;
    let r = n.hear(b, "vol-go").and_then(|_| {
        let t0 = time::now_ns();
        let s = traffic::send_stream(
            n.virq,
            &n.addr(port::SENDER),
            &Addr {
                port: port::VOLUME,
                domain: b,
            },
            VOLUME_STREAM,
            Until::Bytes(VOLUME_BYTES),
            65536,
            900_000,
        )?;
        let ms = (time::now_ns() - t0) / 1_000_000;
        println!(
            "a: volume: {} messages, {} bytes in {} ms, {} waits for space",
            s.count, s.bytes, ms, s.eagain
        );
        Ok(())
    });
    report("volume.a-sent", r);
}

/// Sends probes to `dst` every 50 ms until one returns `want` (a negative
/// errno, or >= 0 for success); counts the probes that were delivered.
fn probe_until(
    src: &Addr,
    dst: &Addr,
    want_ok: bool,
    delivered: &mut u32,
    ms: u64,
) -> Result<(), String> {
    let deadline = time::deadline_ms(ms);
    loop {
        let rc = v4v::send(src, dst, b"probe", PROTO_DGRAM);
        if rc == 5 {
            *delivered += 1;
            if want_ok {
                return Ok(());
            }
        } else if rc == -errno::EPERM {
            if !want_ok {
                return Ok(());
            }
        } else {
            return Err(format!("probe: {}", rc_name(rc)));
        }
        if time::passed(deadline) {
            return Err(format!(
                "still {} after {} s",
                if want_ok { "refused" } else { "delivered" },
                ms / 1000
            ));
        }
        sleep_ms(50);
    }
}

fn viptables(n: &mut Node) {
    let b = n.cast.b;
    if let Err(e) = n.hear(b, "vip-go") {
        report("viptables.reject-gives-eperm", Err(e));
        return;
    }
    let src = n.addr(port::SENDER);
    let dst = Addr {
        port: port::VIPTABLES,
        domain: b,
    };
    let mut delivered = 0u32;
    report(
        "viptables.baseline-delivery",
        probe_until(&src, &dst, true, &mut delivered, 5_000),
    );
    // dom0 now adds `-s a:* -d b:15 -j REJECT`.
    mark("vip-a-ready");
    report(
        "viptables.reject-gives-eperm",
        probe_until(&src, &dst, false, &mut delivered, 120_000),
    );
    report(
        "viptables.rejected-ring-hidden",
        (|| {
            let (f, _) = query(dst, 16)?;
            if f.contains(RingDataFlags::EXISTS) {
                return Err(format!("notify says {f:?} for a ring we may not send to"));
            }
            Ok(())
        })(),
    );
    report(
        "viptables.rule-is-specific",
        check_rc(
            v4v::send(
                &src,
                &Addr {
                    port: port::DGRAM,
                    domain: b,
                },
                b"other port",
                PROTO_DGRAM,
            ),
            10,
            "send to another ring of b under the rule",
        ),
    );
    // dom0 now deletes the rule.
    mark("vip-a-rejected");
    report(
        "viptables.delete-restores",
        probe_until(&src, &dst, true, &mut delivered, 120_000),
    );
    println!("a: viptables: {delivered} probes delivered in all");
    let _ = n.tell(b, &format!("vip-done {delivered}"));
}

fn teardown(n: &mut Node) {
    let b = n.cast.b;
    if let Err(e) = n.hear(b, "teardown-go") {
        report("teardown.enotconn-after-destroy", Err(e));
        return;
    }
    let src = n.addr(port::SENDER);
    let old = Addr {
        port: port::TEARDOWN,
        domain: b,
    };
    // Send until b is gone; b stops reading, so we are mostly queued on
    // its full ring when dom0 destroys it.
    let r = (|| {
        let deadline = time::deadline_ms(600_000);
        let mut buf = vec::Vec::new();
        let mut seq = 0u32;
        loop {
            traffic::build(TEARDOWN_STREAM, seq, TEARDOWN_MAX, &mut buf);
            let rc = v4v::send(&src, &old, &buf, PROTO_DGRAM);
            if rc == -errno::ENOTCONN {
                break;
            } else if rc == -errno::EAGAIN {
                wait_virq(n.virq, time::deadline_ms(100));
            } else if rc == buf.len() as i64 {
                seq += 1;
            } else {
                return Err(format!("send {seq} to b: {}", rc_name(rc)));
            }
            if time::passed(deadline) {
                return Err("b was never destroyed".into());
            }
        }
        println!("a: teardown: dom{b} gone after {seq} messages");
        // From now on every send must say ENOTCONN.
        let until = time::deadline_ms(1_000);
        let mut tries = 0;
        while !time::passed(until) {
            let rc = v4v::send(&src, &old, b"after", PROTO_DGRAM);
            check_rc(rc, -errno::ENOTCONN, "send to the destroyed domain")?;
            tries += 1;
            sleep_ms(10);
        }
        println!("a: teardown: {tries} more sends, all -ENOTCONN");
        Ok(())
    })();
    report("teardown.enotconn-after-destroy", r);
    report(
        "teardown.ring-gone-in-notify",
        (|| {
            let (f, _) = query(old, 16)?;
            if !f.is_empty() {
                return Err(format!("flags {f:?} for a destroyed domain's ring"));
            }
            Ok(())
        })(),
    );
    // dom0 checks Xen's state, then starts the new b.
    mark("teardown-a-saw-enotconn");
    let new = Addr {
        port: port::TEARDOWN,
        domain: n.cast.b2,
    };
    let r = (|| {
        let deadline = time::deadline_ms(300_000);
        while !query(new, 0)?.0.contains(RingDataFlags::EXISTS) {
            if time::passed(deadline) {
                return Err("the new b's ring never appeared".into());
            }
            sleep_ms(100);
        }
        let s = traffic::send_stream(
            n.virq,
            &src,
            &new,
            TEARDOWN_NEW_STREAM,
            Until::Bytes(1 << 20),
            TEARDOWN_MAX,
            300_000,
        )?;
        n.hear(n.cast.b2, "b2-ok")?;
        println!(
            "a: teardown: {} messages to the new b (dom{})",
            s.count, n.cast.b2
        );
        Ok(())
    })();
    report("teardown.a-reaches-new-b", r);
}
