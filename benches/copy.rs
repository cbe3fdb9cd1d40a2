//! Host benchmark of the copy engine: one `send` through the whole engine
//! (argument reads, lookup, viptables, space check, gather/scatter copy,
//! tx_ptr publication) into a 1 MiB ring of the simulated hypervisor, against
//! a plain `copy_from_slice` of the same size, for payloads of 16 B to 64 KiB.
//!
//! `cargo +1.95.0 bench --bench copy` (or `make bench-host`). Only
//! `std::time::Instant`: each sample times a batch of messages (as many as
//! the ring holds, at most `MAX_BATCH`) and divides; the receiver drains the
//! ring (rx_ptr := tx_ptr) between samples, outside the timed part. Messages
//! start wherever the previous batch ended, so some wrap around the ring.
//!
//! Reported per size: median time per message and the spread of the
//! samples (min..max), throughput in MB/s (10^6 bytes of payload per
//! second), and engine throughput / memcpy throughput. The goal is 64 KiB
//! messages at 80% of memcpy or better. The last two columns are memcpy
//! with the ring's cache footprint (the destination walks a 1 MiB buffer
//! slot by slot, as a ring's does) and the engine's ratio to that: what the
//! engine costs beyond the copy itself.
//!
//! Environment: V4V_BENCH_SAMPLES (default 41), V4V_BENCH_SIZES (a comma
//! separated subset of the sizes, e.g. for profiling).
use std::hint::black_box;
use std::time::Instant;
use v4v::abi::{op, Addr, DOMID_ANY, PAGE_SIZE, PROTO_DGRAM};
use v4v::sim::client::Host;

const RING_LEN: u32 = 1 << 20;
const SIZES: [usize; 7] = [16, 64, 256, 1024, 4096, 16384, 65536];
const MAX_BATCH: usize = 512;
const WARMUP: usize = 3;
const SENDER: u16 = 1;
const RECEIVER: u16 = 2;

struct Stats {
    median: f64,
    min: f64,
    max: f64,
}

fn stats(mut ns: Vec<f64>) -> Stats {
    ns.sort_by(|a, b| a.total_cmp(b));
    Stats {
        median: ns[ns.len() / 2],
        min: ns[0],
        max: ns[ns.len() - 1],
    }
}

fn mbps(size: usize, ns: f64) -> f64 {
    size as f64 / ns * 1e3
}

fn main() {
    let samples: usize = std::env::var("V4V_BENCH_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(41)
        .max(1);
    let max = *SIZES.iter().max().unwrap();
    let ring_pages = (60 + RING_LEN as usize).div_ceil(PAGE_SIZE);
    let host = Host::new(&[SENDER, RECEIVER], ring_pages + max / PAGE_SIZE + 16);

    let rx_guest = host.guest(RECEIVER, 1);
    let ring = rx_guest.ring(&host, 80, DOMID_ANY, RING_LEN);
    assert_eq!(ring.register(&host), 0, "register the 1 MiB ring");

    // The sender's arguments are placed once; only the hypercall is timed.
    let tx_guest = host.guest(SENDER, max / PAGE_SIZE + 2);
    let src = tx_guest.put(
        &host,
        &Addr {
            port: 1,
            domain: SENDER,
        },
    );
    let dst = tx_guest.put(&host, &ring.addr());
    let payload: Vec<u8> = (0..max).map(|i| (i * 7 + 3) as u8).collect();
    let buf = tx_guest.put_bytes(&host, &payload);

    println!(
        "V4V copy engine: send into a {} KiB ring vs memcpy ({} samples per size)",
        RING_LEN >> 10,
        samples
    );
    println!(
        "{:>7} {:>6} | {:>10} {:>21} {:>9} | {:>10} {:>21} {:>9} | {:>6} | {:>9} {:>6}",
        "size",
        "batch",
        "engine ns",
        "(min..max)",
        "MB/s",
        "memcpy ns",
        "(min..max)",
        "MB/s",
        "ratio",
        "ring MB/s",
        "ratio"
    );
    // V4V_BENCH_SIZES=65536,16 runs only those sizes (for profiling).
    let only: Option<Vec<usize>> = std::env::var("V4V_BENCH_SIZES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.trim().parse().ok()).collect());
    let mut goal = None;
    for &size in SIZES
        .iter()
        .filter(|s| only.as_ref().is_none_or(|o| o.contains(s)))
    {
        let slot = 16 + size.next_multiple_of(16);
        // Leave one slot free (and one for the "never full" rule).
        let batch = ((RING_LEN as usize - 32) / slot - 1).min(MAX_BATCH);

        let mut engine_ns = Vec::with_capacity(samples);
        for i in 0..WARMUP + samples {
            ring.set_rx(&host, ring.tx(&host));
            let t = Instant::now();
            for _ in 0..batch {
                let rc = host.call(
                    SENDER,
                    op::SEND,
                    black_box(src),
                    black_box(dst),
                    black_box(buf),
                    size as u32,
                    PROTO_DGRAM,
                );
                debug_assert_eq!(rc, size as i64);
                black_box(rc);
            }
            let el = t.elapsed().as_nanos() as f64 / batch as f64;
            if i >= WARMUP {
                engine_ns.push(el);
            }
        }
        // Every send above succeeded (checked once per size, untimed).
        let rx = ring.rx(&host);
        let tx = ring.tx(&host);
        let used = (tx as u64 + RING_LEN as u64 - rx as u64) % RING_LEN as u64;
        assert_eq!(used, (batch * slot) as u64, "size {size}: sends failed");
        let msg = ring.recv(&host).expect("a message");
        assert_eq!(msg.payload, payload[..size], "size {size}: payload");

        // Source and destination in one allocation, 2 KiB apart modulo 4 KiB:
        // two separate page-aligned buffers of 4 KiB or more make this CPU's
        // memcpy (rep movsb) run at a fraction of its speed (4 KiB aliasing),
        // which would flatter the engine.
        let mut area = vec![0u8; 2 * size + 2048];
        area[..size].copy_from_slice(&payload[..size]);
        let (from, to) = area.split_at_mut(size + 2048);
        let from = &from[..size];
        let mut memcpy_ns = Vec::with_capacity(samples);
        for i in 0..WARMUP + samples {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(&mut *to).copy_from_slice(black_box(from));
            }
            let el = t.elapsed().as_nanos() as f64 / batch as f64;
            if i >= WARMUP {
                memcpy_ns.push(el);
            }
        }
        assert_eq!(&to[..], from);

        // The same copies with the ring's cache footprint: the destination
        // moves through a 1 MiB buffer slot by slot, as the ring's does.
        let mut big = vec![0u8; RING_LEN as usize + slot];
        let mut at = 0;
        let mut spread_ns = Vec::with_capacity(samples);
        for i in 0..WARMUP + samples {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(&mut big[at..at + size]).copy_from_slice(black_box(from));
                at = (at + slot) % RING_LEN as usize;
            }
            let el = t.elapsed().as_nanos() as f64 / batch as f64;
            if i >= WARMUP {
                spread_ns.push(el);
            }
        }
        black_box(&big);

        let (e, m, w) = (stats(engine_ns), stats(memcpy_ns), stats(spread_ns));
        let ratio_ring = mbps(size, e.median) / mbps(size, w.median);
        let ratio = mbps(size, e.median) / mbps(size, m.median);
        if size == 65536 {
            goal = Some(ratio);
        }
        let label = if size >= 1024 {
            format!("{} KiB", size >> 10)
        } else {
            format!("{size} B")
        };
        println!(
            "{:>7} {:>6} | {:>10.1} {:>21} {:>9.0} | {:>10.1} {:>21} {:>9.0} | {:>6.2} | {:>9.0} {:>6.2}",
            label,
            batch,
            e.median,
            format!("({:.1}..{:.1})", e.min, e.max),
            mbps(size, e.median),
            m.median,
            format!("({:.1}..{:.1})", m.min, m.max),
            mbps(size, m.median),
            ratio,
            mbps(size, w.median),
            ratio_ring
        );
    }
    if let Some(r) = goal {
        println!(
            "goal (64 KiB at >= 0.80 of memcpy): {} (ratio {:.2})",
            if r >= 0.8 { "met" } else { "NOT met" },
            r
        );
    }
}
