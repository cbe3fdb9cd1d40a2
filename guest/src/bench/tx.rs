//! The driving side: runs every workload, both transports in turn, and
//! prints the figures.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::hint::black_box;

use v4v_abi::errno;

use super::channel::{kind, Argo, Channel, V4v, DATA, DATA_LEN, PING};
use super::{figure, percentile, wait_message, Params, PATIENCE_MS, SIZES};
use crate::println;
use crate::scenario::{self, Node};
use crate::v4v::Pages;
use crate::xen::time;

/// Bytes a message of `size` takes in either ring (16-byte header, payload
/// rounded up to 16).
fn footprint(size: usize) -> usize {
    16 + size.next_multiple_of(16)
}

/// `bytes` over `ns` in bytes per second.
fn per_second(bytes: u64, ns: u64) -> u64 {
    (bytes as u128 * 1_000_000_000 / ns.max(1) as u128) as u64
}

struct Tx {
    node: Node,
    peer: u16,
    params: Params,
    buf: Vec<u8>,
    reply: Vec<u8>,
}

pub fn run(
    mut node: Node,
    peer: u16,
    v4v_virq: u32,
    argo_virq: u32,
    params: Params,
) -> Result<(), String> {
    // Argo registers a ring for a single partner only while that domain
    // exists: both say hello before either registers.
    node.tell(peer, "hello")?;
    node.hear(peer, "ready")?;
    let mut v = V4v::new(node.me, peer, v4v_virq, false)?;
    let mut a = Argo::new(node.me, peer, argo_virq, false)?;
    let mut tx = Tx {
        node,
        peer,
        params,
        buf: vec![0x5a; 64 * 1024],
        reply: Vec::with_capacity(64 * 1024),
    };
    println!(
        "V4VD bench plan reps={} stream_ms={} pings={} sends={} sizes={}",
        params.reps,
        params.stream_ms,
        params.pings,
        params.sends,
        SIZES.len()
    );
    for rep in 0..params.reps {
        // Which transport goes first flips every repetition.
        let (first, second): (&mut dyn Channel, &mut dyn Channel) = if rep % 2 == 0 {
            (&mut v, &mut a)
        } else {
            (&mut a, &mut v)
        };
        progress(rep, params.reps, "null");
        tx.null(rep, first, second)?;
        progress(rep, params.reps, "memcpy");
        tx.memcpy(rep)?;
        progress(rep, params.reps, "stream");
        for size in SIZES {
            tx.stream(rep, first, size)?;
            tx.stream(rep, second, size)?;
        }
        progress(rep, params.reps, "send");
        for size in SIZES {
            tx.one_way(rep, first, size)?;
            tx.one_way(rep, second, size)?;
        }
        progress(rep, params.reps, "pingpong");
        for size in SIZES {
            tx.ping_pong(rep, first, size)?;
            tx.ping_pong(rep, second, size)?;
        }
    }
    tx.node.tell(peer, "done")?;
    Ok(())
}

fn progress(rep: u32, reps: u32, what: &str) {
    println!("V4VD progress rep {}/{} {what}", rep + 1, reps);
}

impl Tx {
    /// The floor: a hypercall each transport rejects at once, and
    /// `xen_version`, the cheapest hypercall there is.
    fn null(&mut self, rep: u32, a: &mut dyn Channel, b: &mut dyn Channel) -> Result<(), String> {
        const N: u64 = 2000;
        for ch in [&*a, &*b] {
            // Warm up (the first calls of a run are slower under QEMU).
            for _ in 0..N / 10 {
                black_box(ch.null_op());
            }
            let t0 = time::now_ns();
            for _ in 0..N {
                let rc = black_box(ch.null_op());
                if rc >= 0 {
                    return Err(format!("{}: an unknown command returned {rc}", ch.name()));
                }
            }
            figure("null_ns", ch.name(), 0, rep, (time::now_ns() - t0) / N);
        }
        let t0 = time::now_ns();
        for _ in 0..N {
            black_box(crate::xen::version());
        }
        figure("null_ns", "xen", 0, rep, (time::now_ns() - t0) / N);
        // notify with nothing to report: what a receiver pays each time it
        // tells Xen it freed space (this domain has one ring of each).
        for ch in [a as &mut dyn Channel, b] {
            let t0 = time::now_ns();
            for _ in 0..N {
                let rc = ch.notify();
                if rc != 0 {
                    return Err(format!("{}: notify returned {rc}", ch.name()));
                }
            }
            figure("notify_ns", ch.name(), 0, rep, (time::now_ns() - t0) / N);
        }
        Ok(())
    }

    /// The copy limit: the guest copying each size into a 1 MiB buffer,
    /// message after message as a sender fills a ring.
    fn memcpy(&mut self, rep: u32) -> Result<(), String> {
        const TOTAL: usize = 16 * 1024 * 1024;
        let dst = Pages::alloc(DATA_LEN as usize / 4096);
        for size in SIZES {
            let count = TOTAL / size;
            let mut off = 0usize;
            let t0 = time::now_ns();
            for _ in 0..count {
                if off + size > DATA_LEN as usize {
                    off = 0;
                }
                // SAFETY: [off, off + size) lies within the 1 MiB of `dst`
                // and `buf` holds at least `size` bytes; they don't overlap.
                unsafe {
                    core::ptr::copy_nonoverlapping(
                        self.buf.as_ptr(),
                        black_box(dst.as_ptr().add(off)),
                        size,
                    )
                };
                off += footprint(size);
            }
            let ns = time::now_ns() - t0;
            figure(
                "memcpy_Bps",
                "guest",
                size,
                rep,
                per_second((count * size) as u64, ns),
            );
        }
        black_box(&dst);
        Ok(())
    }

    /// Sends `buf[..size]` to `port`, waiting on the VIRQ while the ring
    /// is full; how many times it had to wait.
    fn send_waiting(
        &mut self,
        ch: &mut dyn Channel,
        port: u32,
        size: usize,
        kind: u32,
    ) -> Result<u64, String> {
        let deadline = time::deadline_ms(PATIENCE_MS);
        let mut waits = 0;
        loop {
            let rc = ch.send(port, &self.buf[..size], kind);
            if rc == size as i64 {
                return Ok(waits);
            }
            waits += 1;
            if rc != -errno::EAGAIN {
                return Err(format!("{} send of {size} B: {rc}", ch.name()));
            }
            if !scenario::wait_virq(ch.virq(), deadline) {
                return Err(format!("{}: ring full for {PATIENCE_MS} ms", ch.name()));
            }
        }
    }

    /// Streaming: send `size`-byte messages as fast as the ring takes
    /// them for `stream_ms`, then an END carrying the count. The receiver
    /// checks every sequence number and says when the last one arrived.
    fn stream(&mut self, rep: u32, ch: &mut dyn Channel, size: usize) -> Result<(), String> {
        let name = ch.name();
        self.node
            .tell(self.peer, &format!("stream {name} {size}"))?;
        let (mut sent, mut waits) = (0u64, 0u64);
        let t0 = time::now_ns();
        let end = t0 + self.params.stream_ms * 1_000_000;
        while time::now_ns() < end {
            self.buf[..8].copy_from_slice(&sent.to_le_bytes());
            waits += self.send_waiting(ch, DATA, size, kind::DATA)?;
            sent += 1;
        }
        self.buf[..8].copy_from_slice(&sent.to_le_bytes());
        self.send_waiting(ch, DATA, 8, kind::END)?;
        let reply = self.node.hear(self.peer, "streamed")?;
        let nums: Vec<u64> = reply.split(' ').filter_map(|w| w.parse().ok()).collect();
        let [got, t_last, notifies, sleeps] = nums[..] else {
            return Err(format!("bad 'streamed {reply}'"));
        };
        if got != sent {
            return Err(format!(
                "{name} stream of {size} B: sent {sent}, received {got}"
            ));
        }
        let ns = t_last.saturating_sub(t0);
        figure(
            "stream_Bps",
            name,
            size,
            rep,
            per_second(sent * size as u64, ns),
        );
        figure("stream_msgps", name, size, rep, per_second(sent, ns));
        // How the two sides took turns, per million messages: full-ring waits
        // of the sender, notifies of the receiver, and how often the
        // receiver found the ring empty and slept until the next VIRQ.
        figure(
            "stream_waits_ppm",
            name,
            size,
            rep,
            waits * 1_000_000 / sent.max(1),
        );
        figure(
            "stream_notifies_ppm",
            name,
            size,
            rep,
            notifies * 1_000_000 / sent.max(1),
        );
        figure(
            "stream_sleeps_ppm",
            name,
            size,
            rep,
            sleeps * 1_000_000 / sent.max(1),
        );
        Ok(())
    }

    /// One-way send cost: batches of sends into a ring with room (the
    /// receiver empties it between batches, untimed).
    fn one_way(&mut self, rep: u32, ch: &mut dyn Channel, size: usize) -> Result<(), String> {
        let name = ch.name();
        let fit = (DATA_LEN as usize - 32) / footprint(size);
        let batch = fit.saturating_sub(1).clamp(1, 32) as u64;
        let total = self.params.sends as u64;
        let (mut done, mut ns) = (0u64, 0u64);
        while done < total {
            let k = batch.min(total - done);
            let t0 = time::now_ns();
            for _ in 0..k {
                let rc = ch.send(DATA, &self.buf[..size], kind::DATA);
                if rc != size as i64 {
                    return Err(format!("{name} one-way send of {size} B: {rc}"));
                }
            }
            ns += time::now_ns() - t0;
            done += k;
            self.node
                .tell(self.peer, &format!("drain {name} {size} {k}"))?;
            self.node.hear(self.peer, "drained")?;
        }
        figure("send_ns", name, size, rep, ns / total);
        Ok(())
    }

    /// Ping-pong: send, the receiver is woken by the VIRQ and replies with
    /// the same bytes; each round trip timed.
    fn ping_pong(&mut self, rep: u32, ch: &mut dyn Channel, size: usize) -> Result<(), String> {
        let name = ch.name();
        let n = self.params.pings;
        self.node
            .tell(self.peer, &format!("ping {name} {size} {n}"))?;
        let mut rtt = Vec::with_capacity(n as usize);
        for i in 0..n as u64 {
            self.buf[..8].copy_from_slice(&i.to_le_bytes());
            let t0 = time::now_ns();
            self.send_waiting(ch, PING, size, kind::PING)?;
            let mut reply = core::mem::take(&mut self.reply);
            let k = wait_message(ch, PING, &mut reply);
            let t1 = time::now_ns();
            let ok =
                matches!(k, Ok(kind::PING)) && reply.len() == size && reply[..8] == i.to_le_bytes();
            self.reply = reply;
            if !ok {
                return Err(format!("{name} ping {i} of {size} B: bad reply ({k:?})"));
            }
            rtt.push(t1 - t0);
        }
        figure("rtt_p50_ns", name, size, rep, percentile(&mut rtt, 50));
        figure("rtt_p99_ns", name, size, rep, percentile(&mut rtt, 99));
        Ok(())
    }
}
