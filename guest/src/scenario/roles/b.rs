//! Roles `b` and `b2`: the receivers. `b` registers one ring per phase,
//! tells the senders when each phase starts and checks what arrives.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use v4v_abi::{MessageHeader, DOMID_ANY, PROTO_DGRAM};

use super::super::traffic::{self, fill, verify, PROTO_END};
use super::super::{mark, poll_until, port, report, wait_virq, Node};
use super::a::{
    dgram_size, flow_msg, DGRAMS, DGRAM_STREAM, FLOW_MSG, FLOW_RING_LEN, FLOW_TOTAL,
    HOSTILE_STREAM, TEARDOWN_MAX, TEARDOWN_NEW_STREAM, TEARDOWN_STREAM, VOLUME_BYTES,
    VOLUME_STREAM,
};
use super::{conc_stream, sleep_ms, CONC_MAX, CONC_MESSAGES, GRANT_MARK};
use crate::println;
use crate::v4v::{self, Ring};
use crate::xen::grant::Grant;
use crate::xen::time;

/// A registered ring, or the reason it is not.
fn ring(port: u32, partner: u16, len: u32) -> Result<Ring, String> {
    let mut r = Ring::new(port, partner, len);
    super::super::check_rc(r.register(), 0, format_args!("register ring {port}"))?;
    Ok(r)
}

/// Waits up to `ms` for the next message on `ring`.
fn next(
    n: &Node,
    ring: &mut Ring,
    buf: &mut Vec<u8>,
    ms: u64,
) -> Result<v4v_abi::MessageHeader, String> {
    poll_until(n.virq, ms, || {
        let h = ring.recv_into(buf)?;
        if h.is_some() {
            // Wake a sender queued for the space just freed.
            v4v::notify_all();
        }
        Ok(h)
    })?
    .ok_or_else(|| format!("no message within {} s", ms / 1000))
}

struct Rings {
    dgram: Ring,
    partner: Ring,
    flow: Ring,
    volume: Ring,
    conc: Ring,
    vip: Ring,
}

pub fn run(mut n: Node) {
    let a = n.cast.a;
    let rings = (|| {
        Ok::<_, String>(Rings {
            dgram: ring(port::DGRAM, DOMID_ANY, 128 * 1024)?,
            partner: ring(port::PARTNER, a, 4096)?,
            flow: ring(port::FLOW, a, FLOW_RING_LEN)?,
            volume: ring(port::VOLUME, a, 256 * 1024)?,
            conc: ring(port::CONCURRENCY, DOMID_ANY, 1024 * 1024)?,
            vip: ring(port::VIPTABLES, DOMID_ANY, 16 * 1024)?,
        })
    })();
    let mut r = match rings {
        Ok(r) => r,
        Err(e) => {
            println!("V4VT bail out! b: {e}");
            return;
        }
    };
    for peer in [a, n.cast.c] {
        if let Err(e) = n.tell(peer, "ready") {
            println!("V4VT bail out! b: {e}");
            return;
        }
    }

    let mut buf = Vec::new();
    report(
        "dgram.a-to-b",
        (|| {
            for i in 0..DGRAMS {
                let h = next(&n, &mut r.dgram, &mut buf, 60_000)?;
                let (src, proto) = (h.source, h.protocol);
                if src.domain != a || src.port != port::SENDER {
                    return Err(format!("datagram {i} from dom{}:{}", { src.domain }, {
                        src.port
                    }));
                }
                if proto != PROTO_DGRAM {
                    return Err(format!("datagram {i} protocol {proto:#x}"));
                }
                let mut want = alloc::vec![0u8; dgram_size(i)];
                fill(DGRAM_STREAM, i, &mut want);
                if buf != want {
                    return Err(format!(
                        "datagram {i}: {} bytes, not what a sent",
                        buf.len()
                    ));
                }
            }
            println!("b: {DGRAMS} datagrams from dom{a} checked (payload, source, protocol)");
            Ok(())
        })(),
    );

    report(
        "partner.only-a-delivered",
        (|| {
            n.hear(a, "partner-done")?;
            n.hear(n.cast.c, "partner-done")?;
            let mut from = Vec::new();
            while let Some(m) = r.partner.recv()? {
                from.push((m.header.source.domain, m.payload));
            }
            if from.len() != 1 || from[0].0 != a || from[0].1 != b"partner" {
                let who: Vec<u16> = from.iter().map(|f| f.0).collect();
                return Err(format!(
                    "ring reserved for dom{a} holds messages from {who:?}"
                ));
            }
            Ok(())
        })(),
    );

    flow(&mut n, &mut r.flow, &mut buf);

    report(
        "volume.64mib-intact",
        (|| {
            n.tell(a, "vol-go")?;
            let t0 = time::now_ns();
            let got = traffic::recv_stream(&n, &mut r.volume, a, VOLUME_STREAM, 65536, 900_000)?;
            let ms = (time::now_ns() - t0) / 1_000_000;
            println!(
            "b: volume: {} messages, {} bytes, {} times round the ring, in {} ms: none lost, duplicated, reordered or corrupt",
            got.count, got.bytes, got.wraps, ms
        );
            if got.bytes < VOLUME_BYTES {
                return Err(format!("only {} bytes", got.bytes));
            }
            Ok(())
        })(),
    );

    report(
        "concurrency.all-accounted",
        concurrency(&mut n, &mut r.conc),
    );

    viptables(&mut n, &mut r.vip);

    report(
        "hostile.ab-traffic-intact",
        (|| {
            // The hostile guest first does its heavy items, then keeps
            // making bad calls in rounds for as long as a's traffic runs.
            // It gets one of our ring frames, to try to register as its own,
            // and a grant of a marked page of ours, to map into its physmap
            // (as a PVH guest) and try to register there.
            let frame = r.volume.pages().mfn(0);
            let marked = crate::v4v::Pages::alloc(1);
            // SAFETY: a page of ours, written before it is granted.
            unsafe {
                core::ptr::write_bytes(marked.va() as *mut u8, GRANT_MARK, v4v_abi::PAGE_SIZE)
            };
            let grant = Grant::new(n.cast.h, marked.mfn(0), 0);
            let gref = match &grant {
                Ok(g) => format!("{}", g.gref()),
                Err(rc) => {
                    println!("b: no grant for h: {rc}");
                    "none".into()
                }
            };
            n.tell(n.cast.h, &format!("hostile-go {frame} {gref}"))?;
            n.hear_within(n.cast.h, "hostile-running", 300_000)?;
            n.tell(a, "hostile-go")?;
            let got = traffic::recv_stream(&n, &mut r.volume, a, HOSTILE_STREAM, 65536, 600_000)?;
            println!(
                "b: under fire: {} messages, {} bytes from dom{a}, all intact",
                got.count, got.bytes
            );
            n.tell(n.cast.h, "hostile-stop")?;
            n.hear_within(n.cast.h, "hostile-done", 300_000)?;
            // h unmapped the page; if the grant is still in use, the page
            // must never go back to the heap.
            if !grant.is_ok_and(|g| g.revoke()) {
                core::mem::forget(marked);
            }
            Ok(())
        })(),
    );

    // Teardown: take some of a's stream, then stop reading so that a is
    // queued on our full ring, and wait for dom0 to destroy us.
    let r = (|| {
        let mut ring = ring(port::TEARDOWN, a, 16 * 1024)?;
        n.tell(a, "teardown-go")?;
        let mut scratch = Vec::new();
        for seq in 0..200 {
            let h = next(&n, &mut ring, &mut buf, 60_000)?;
            if { h.source }.domain != a {
                return Err("teardown message from a stranger".into());
            }
            verify(TEARDOWN_STREAM, seq, TEARDOWN_MAX, &buf, &mut scratch)?;
        }
        Ok(ring)
    })();
    let ok = r.is_ok();
    report(
        "teardown.b-received-before-destroy",
        r.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    if ok {
        println!("b: 200 messages in; no longer reading: waiting to be destroyed");
        mark("teardown-ready");
        loop {
            sleep_ms(1000);
        }
    }
}

fn flow(n: &mut Node, ring: &mut Ring, buf: &mut Vec<u8>) {
    let a = n.cast.a;
    report(
        "flow.receiver-in-order",
        (|| {
            n.tell(a, "flow-go")?;
            n.hear(a, "flow-full")?;
            // a filled the ring (three messages) and is queued. Take all
            // three before the one notify that must wake it, so that it
            // finds the ring EMPTY; after that, notify after each message.
            let check = |seq: u32, h: MessageHeader, buf: &Vec<u8>| {
                if { h.source }.domain != a || buf.len() != FLOW_MSG || *buf != flow_msg(seq) {
                    return Err(format!("flow message {seq} is not a's message {seq}"));
                }
                Ok(())
            };
            for seq in 0..3 {
                let h = ring
                    .recv_into(buf)?
                    .ok_or_else(|| format!("flow message {seq} missing from the full ring"))?;
                check(seq, h, buf)?;
            }
            v4v::notify_all();
            for seq in 3..FLOW_TOTAL {
                let h = next(n, ring, buf, 60_000)?;
                check(seq, h, buf)?;
            }
            n.hear(a, "flow-done")?;
            println!("b: flow control: {FLOW_TOTAL} messages in order");
            Ok(())
        })(),
    );
}

/// Receives the four concurrency streams (a's and c's two vCPUs each),
/// interleaved on one ring, each in its own order.
fn concurrency(n: &mut Node, ring: &mut Ring) -> Result<(), String> {
    let (a, c) = (n.cast.a, n.cast.c);
    n.tell(a, "conc-go")?;
    n.tell(c, "conc-go")?;
    // (domain, vCPU) -> (next seq, ended)
    let mut streams: BTreeMap<(u16, u32), (u32, bool)> = BTreeMap::new();
    for d in [a, c] {
        for cpu in 0..2 {
            streams.insert((d, cpu), (0, false));
        }
    }
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    let mut total = 0u32;
    let mut switches = 0u32;
    let mut last = (0u16, 0u32);
    while streams.values().any(|s| !s.1) {
        let h = next(n, ring, &mut buf, 120_000)?;
        let src = h.source;
        let key = (src.domain, src.port.wrapping_sub(port::SENDER));
        let Some(st) = streams.get_mut(&key) else {
            return Err(format!("message from unexpected dom{}:{}", key.0, {
                src.port
            }));
        };
        if st.1 {
            return Err(format!(
                "message from dom{} vCPU {} after its end",
                key.0, key.1
            ));
        }
        if key != last {
            switches += 1;
            last = key;
        }
        if h.protocol == PROTO_END {
            let count = u32::from_le_bytes(buf[0..4].try_into().unwrap_or_default());
            if count != st.0 || count != CONC_MESSAGES {
                return Err(format!(
                    "dom{} vCPU {}: sender says {count}, received {}",
                    key.0, key.1, st.0
                ));
            }
            st.1 = true;
            continue;
        }
        verify(
            conc_stream(key.0, key.1),
            st.0,
            CONC_MAX,
            &buf,
            &mut scratch,
        )
        .map_err(|e| format!("dom{} vCPU {}: {e}", key.0, key.1))?;
        st.0 += 1;
        total += 1;
    }
    println!(
        "b: concurrency: {total} messages from 2 domains x 2 vCPUs, each stream complete and in order ({switches} switches between streams)"
    );
    if switches < 8 {
        return Err(format!(
            "only {switches} switches between streams: the senders did not overlap"
        ));
    }
    Ok(())
}

fn viptables(n: &mut Node, ring: &mut Ring) {
    let a = n.cast.a;
    let mut from_a = 0u32;
    let mut dom0 = None;
    let r = (|| {
        n.tell(a, "vip-go")?;
        let deadline = time::deadline_ms(300_000);
        let mut expected = None;
        loop {
            while let Some(m) = ring.recv()? {
                let from = { m.header.source }.domain;
                match from {
                    d if d == a => from_a += 1,
                    0 => dom0 = Some(m.payload),
                    d => return Err(format!("message from dom{d}")),
                }
            }
            v4v::notify_all();
            if expected.is_none() {
                if let Some(rest) = n.heard(a, "vip-done") {
                    expected = Some(rest.parse::<u32>().map_err(|_| "bad vip-done")?);
                }
            }
            if let Some(e) = expected {
                if from_a == e && dom0.is_some() {
                    return Ok(e);
                }
            }
            if time::passed(deadline) {
                return Err(format!(
                    "after 300 s: {from_a} messages from a (it says {expected:?}), dom0's message {}",
                    if dom0.is_some() { "in" } else { "missing" }
                ));
            }
            wait_virq(n.virq, time::deadline_ms(50));
        }
    })();
    let count = r.as_ref().map(|e| *e);
    report(
        "viptables.b-got-exactly-the-accepted",
        count.map(|_| ()).map_err(|e| e.clone()),
    );
    report(
        "v4vctl.dom0-send-arrives",
        match &dom0 {
            Some(p) if p.starts_with(b"hello from dom0") => Ok(()),
            Some(p) => Err(format!(
                "dom0's message reads {:?}",
                String::from_utf8_lossy(p)
            )),
            None => Err("no message from dom0".into()),
        },
    );
}

/// Role `b2`: the new `b` after the old one was destroyed. Registers the
/// teardown ring under the same port and partner, and takes a's stream.
pub fn run_b2(mut n: Node) {
    let a = n.cast.a;
    let r = (|| {
        let mut ring = ring(port::TEARDOWN, a, 16 * 1024)?;
        let got =
            traffic::recv_stream(&n, &mut ring, a, TEARDOWN_NEW_STREAM, TEARDOWN_MAX, 300_000)?;
        println!(
            "b2: {} messages, {} bytes from dom{a}, all intact",
            got.count, got.bytes
        );
        n.tell(a, "b2-ok")?;
        Ok(())
    })();
    report("teardown.new-b-receives", r);
}
