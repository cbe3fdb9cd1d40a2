//! Two vCPUs: starting vCPU 1, heap and console used from both at once,
//! and both vCPUs sending to one ring at the same time.
//!
//! These need a domain with at least two vCPUs (the boot test gives dom0
//! `dom0_max_vcpus=2`); with one they fail saying so (skip them with
//! `skip=smp_`). vCPU 1 gets its work through statics, since
//! `smp::start` takes a plain `fn()`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use v4v_abi::{Addr, PROTO_DGRAM};

use super::{rc_name, tests, Ctx, Test, TestResult, EAGAIN};
use crate::smp::{self, cpu_id};
use crate::v4v::{self, Ring};
use crate::xen::{sched, vcpu};
use crate::{ensure, ensure_eq, println};

pub static TESTS: &[Test] = tests![
    smp_vcpu1_runs,
    smp_heap_console_concurrent,
    smp_concurrent_sends_one_ring,
];

/// Yields vCPU 0 waits for vCPU 1 to finish before failing.
const JOIN_YIELDS: u64 = 2_000_000;

/// The result vCPU 1's function leaves for vCPU 0.
static REMOTE: spin::Mutex<Option<TestResult>> = spin::Mutex::new(None);

fn need_two_vcpus() -> TestResult {
    let n = smp::nr_vcpus();
    ensure!(
        n >= 2,
        "the domain has {n} vCPU(s); the SMP tests need 2 (dom0_max_vcpus=2, or skip=smp_)"
    );
    Ok(())
}

/// Runs `f` on vCPU 1, waits for it (with a bound, or `blocking` with
/// the plain join) and returns what it left in REMOTE.
fn run_on_vcpu1(f: fn(), blocking: bool) -> TestResult {
    *REMOTE.lock() = None;
    smp::start(1, f).map_err(|rc| format!("start vCPU 1: {}", rc_name(rc)))?;
    if blocking {
        smp::join(1);
    }
    finish_together()
}

/// Starts `f` on vCPU 1 and returns once it waits at its start line
/// ([`arrive`]); [`go`] lets it run, so both vCPUs work together.
fn start_parked(f: fn()) -> TestResult {
    ARRIVED.store(false, Ordering::SeqCst);
    GO.store(false, Ordering::SeqCst);
    *REMOTE.lock() = None;
    smp::start(1, f).map_err(|rc| format!("start vCPU 1: {}", rc_name(rc)))?;
    for _ in 0..JOIN_YIELDS {
        if ARRIVED.load(Ordering::SeqCst) {
            return Ok(());
        }
        sched::yield_now();
    }
    Err("vCPU 1 never reached the start line".into())
}

static ARRIVED: AtomicBool = AtomicBool::new(false);
static GO: AtomicBool = AtomicBool::new(false);

fn go() {
    GO.store(true, Ordering::SeqCst);
}

/// vCPU 1's side of [`start_parked`].
fn arrive() {
    ARRIVED.store(true, Ordering::SeqCst);
    while !GO.load(Ordering::SeqCst) {
        core::hint::spin_loop();
    }
}

/// Waits for vCPU 1 and takes its result.
fn finish_together() -> TestResult {
    ensure!(
        smp::join_for(1, JOIN_YIELDS),
        "vCPU 1 did not finish in time"
    );
    REMOTE
        .lock()
        .take()
        .unwrap_or_else(|| Err("vCPU 1 left no result".into()))
}

// --- 1: vCPU 1 comes up -------------------------------------------------

static SEEN_ID: AtomicU32 = AtomicU32::new(u32::MAX);
static HEAP_SUM: AtomicU64 = AtomicU64::new(0);

fn hello_from_vcpu1() {
    SEEN_ID.store(cpu_id(), Ordering::SeqCst);
    let v: Vec<u64> = (1..=1000).collect();
    let b = Box::new(v.iter().sum::<u64>());
    HEAP_SUM.store(*b, Ordering::SeqCst);
    *REMOTE.lock() = Some(Ok(()));
}

fn smp_vcpu1_runs(_ctx: &mut Ctx) -> TestResult {
    need_two_vcpus()?;
    ensure_eq!(cpu_id(), 0, "cpu_id on the boot vCPU");
    // Twice: the first start initialises vCPU 1, the second brings the
    // downed vCPU up again (and waits with the unbounded join).
    for round in 0..2 {
        SEEN_ID.store(u32::MAX, Ordering::SeqCst);
        HEAP_SUM.store(0, Ordering::SeqCst);
        run_on_vcpu1(hello_from_vcpu1, round == 1).map_err(|e| format!("round {round}: {e}"))?;
        ensure_eq!(
            SEEN_ID.load(Ordering::SeqCst),
            1,
            "round {round}: cpu_id on vCPU 1"
        );
        ensure_eq!(
            HEAP_SUM.load(Ordering::SeqCst),
            500_500,
            "round {round}: sum of a heap vector built on vCPU 1"
        );
        // It marks itself finished just before VCPUOP_down.
        let mut down = false;
        for _ in 0..JOIN_YIELDS {
            if vcpu::is_up(1) == 0 {
                down = true;
                break;
            }
            sched::yield_now();
        }
        ensure!(down, "round {round}: vCPU 1 still up after its function");
    }
    ensure_eq!(cpu_id(), 0, "cpu_id on the boot vCPU afterwards");
    Ok(())
}

// --- 2: heap and console from both vCPUs ----------------------------------

const CHURN_ITERS: u32 = 3000;
const CHURN_WINDOW: usize = 8;
const CHURN_PRINT_EVERY: u32 = 200;
/// Every this many iterations a vCPU waits until the other has caught up,
/// so their work interleaves however the host schedules them.
const CHURN_STEP: u32 = 100;

/// Iterations done, per vCPU.
static PROGRESS: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];
/// Iterations of vCPU 0 during which vCPU 1 made progress too.
static OVERLAPS: AtomicU32 = AtomicU32::new(0);
/// A vCPU gave up: the other stops waiting for it.
static CHURN_FAILED: AtomicBool = AtomicBool::new(false);

fn churn_len(cpu: u32, i: u32) -> usize {
    1 + ((i * 37 + cpu * 101) % 700) as usize
}

fn churn_seed(cpu: u32, i: u32) -> u8 {
    (i as u8) ^ (cpu as u8).wrapping_mul(0x5b)
}

fn churn_byte(seed: u8, k: usize) -> u8 {
    seed.wrapping_add((k as u8).wrapping_mul(7))
}

/// Checksum of one block, without touching the heap.
fn churn_expected(cpu: u32, i: u32) -> u64 {
    let seed = churn_seed(cpu, i);
    (0..churn_len(cpu, i))
        .map(|k| churn_byte(seed, k) as u64 * (k as u64 + 1))
        .sum::<u64>()
        .wrapping_mul(i as u64 + 1)
}

/// Allocates blocks with a per-vCPU pattern, keeps a few alive, checks
/// and frees them; returns (checksum of what was read back, expected).
fn churn() -> Result<(u64, u64), String> {
    let r = churn_inner();
    if r.is_err() {
        CHURN_FAILED.store(true, Ordering::SeqCst);
    }
    r
}

fn churn_inner() -> Result<(u64, u64), String> {
    let cpu = cpu_id();
    let other = 1 - cpu as usize;
    let mut live: Vec<(u32, Vec<u8>)> = Vec::with_capacity(CHURN_WINDOW + 1);
    let mut seen = 0;
    let (mut got, mut want) = (0u64, 0u64);
    let mut check = |i: u32, block: Vec<u8>| -> Result<(), String> {
        let seed = churn_seed(cpu, i);
        ensure_eq!(
            block.len(),
            churn_len(cpu, i),
            "vCPU {cpu} block {i} length"
        );
        if let Some(k) = block
            .iter()
            .enumerate()
            .position(|(k, &b)| b != churn_byte(seed, k))
        {
            return Err(format!("vCPU {cpu} block {i} corrupted at byte {k}"));
        }
        got = got.wrapping_add(
            block
                .iter()
                .enumerate()
                .map(|(k, &b)| b as u64 * (k as u64 + 1))
                .sum::<u64>()
                .wrapping_mul(i as u64 + 1),
        );
        want = want.wrapping_add(churn_expected(cpu, i));
        Ok(())
    };
    for i in 0..CHURN_ITERS {
        let seed = churn_seed(cpu, i);
        let block: Vec<u8> = (0..churn_len(cpu, i))
            .map(|k| churn_byte(seed, k))
            .collect();
        live.push((i, block));
        if live.len() > CHURN_WINDOW {
            let (j, old) = live.remove(0);
            check(j, old)?;
        }
        if i % CHURN_PRINT_EVERY == 0 {
            println!("V4V smp: vCPU {cpu} churn {i}/{CHURN_ITERS}");
        }
        PROGRESS[cpu as usize].store(i + 1, Ordering::SeqCst);
        let theirs = PROGRESS[other].load(Ordering::SeqCst);
        if cpu == 0 && theirs != seen {
            OVERLAPS.fetch_add(1, Ordering::Relaxed);
        }
        seen = theirs;
        if (i + 1) % CHURN_STEP == 0 {
            let caught_up = (0..JOIN_YIELDS).any(|_| {
                let done = PROGRESS[other].load(Ordering::SeqCst) > i
                    || CHURN_FAILED.load(Ordering::SeqCst);
                if !done {
                    sched::yield_now();
                }
                done
            });
            ensure!(caught_up, "vCPU {cpu}: vCPU {other} stalled near {i}");
            seen = PROGRESS[other].load(Ordering::SeqCst);
        }
    }
    for (j, old) in live.drain(..) {
        check(j, old)?;
    }
    Ok((got, want))
}

fn churn_on_vcpu1() {
    arrive();
    let r = churn().and_then(|(got, want)| {
        ensure_eq!(got, want, "vCPU 1 checksum");
        Ok(())
    });
    *REMOTE.lock() = Some(r);
}

fn smp_heap_console_concurrent(_ctx: &mut Ctx) -> TestResult {
    need_two_vcpus()?;
    for p in &PROGRESS {
        p.store(0, Ordering::SeqCst);
    }
    OVERLAPS.store(0, Ordering::SeqCst);
    CHURN_FAILED.store(false, Ordering::SeqCst);
    start_parked(churn_on_vcpu1)?;
    // After vCPU 1's stack exists and before either side allocates.
    let free_before = crate::heap::free();
    go();
    let mine = churn();
    let theirs = finish_together();
    println!(
        "V4V smp: vCPU 1 moved during {} of vCPU 0's {} iterations",
        OVERLAPS.load(Ordering::SeqCst),
        CHURN_ITERS
    );
    let (got, want) = mine?;
    theirs?;
    ensure_eq!(got, want, "vCPU 0 checksum");
    ensure_eq!(
        crate::heap::free(),
        free_before,
        "heap free bytes afterwards"
    );
    Ok(())
}

// --- 3: both vCPUs send to one ring ---------------------------------------

const SENDS_PER_VCPU: u32 = 300;
/// EAGAIN retries a sender allows itself per message.
const MAX_RETRIES: u32 = 1_000_000;
const RING_LEN: u32 = 2048;

/// (source, destination) for vCPU 1's sends.
static ROUTE: spin::Mutex<Option<(Addr, Addr)>> = spin::Mutex::new(None);
/// EAGAIN answers each vCPU got.
static EAGAINS: [AtomicU32; 2] = [AtomicU32::new(0), AtomicU32::new(0)];

/// Payload: sender vCPU and sequence (u32 LE each), then a filler that
/// depends on both.
fn message(cpu: u32, seq: u32) -> Vec<u8> {
    let filler = ((seq * 13 + cpu * 7) % 97) as usize;
    let mut m = Vec::with_capacity(8 + filler);
    m.extend_from_slice(&cpu.to_le_bytes());
    m.extend_from_slice(&seq.to_le_bytes());
    m.extend((0..filler).map(|k| (k as u8) ^ (seq as u8) ^ (cpu as u8 * 0x80)));
    m
}

/// One message, retrying while the ring is full. `drain` runs between
/// retries (vCPU 0 empties the ring; vCPU 1 just waits).
fn send_one(src: &Addr, dst: &Addr, seq: u32, mut drain: impl FnMut() -> TestResult) -> TestResult {
    let cpu = cpu_id();
    let m = message(cpu, seq);
    for _ in 0..MAX_RETRIES {
        let rc = v4v::send(src, dst, &m, PROTO_DGRAM);
        if rc == m.len() as i64 {
            return Ok(());
        }
        if rc != EAGAIN {
            return Err(format!("vCPU {cpu} send {seq}: {}", rc_name(rc)));
        }
        EAGAINS[cpu as usize].fetch_add(1, Ordering::Relaxed);
        drain()?;
    }
    Err(format!("vCPU {cpu} send {seq}: ring never had room"))
}

fn sender_on_vcpu1() {
    let route = *ROUTE.lock();
    arrive();
    let r = match route {
        None => Err("no route for vCPU 1".into()),
        Some((src, dst)) => (0..SENDS_PER_VCPU).try_for_each(|seq| {
            send_one(&src, &dst, seq, || {
                core::hint::spin_loop();
                Ok(())
            })
        }),
    };
    *REMOTE.lock() = Some(r);
}

/// vCPU 0's reader: every message in order per sender, none twice.
struct Tally {
    ports: [u32; 2],
    next: [u32; 2],
}

impl Tally {
    fn drain(&mut self, ring: &mut Ring) -> TestResult {
        while let Some(m) = ring.recv()? {
            let (port, len) = (m.header.source.port, m.header.len);
            let from = self
                .ports
                .iter()
                .position(|&p| p == port)
                .ok_or_else(|| format!("message from unknown port {port:#x}"))?;
            ensure!(m.payload.len() >= 8, "short message ({len} bytes)");
            let cpu = u32::from_le_bytes(m.payload[0..4].try_into().expect("4 bytes"));
            let seq = u32::from_le_bytes(m.payload[4..8].try_into().expect("4 bytes"));
            ensure_eq!(cpu as usize, from, "sender vCPU in the payload");
            let want = self.next[from];
            if seq != want {
                return Err(format!(
                    "vCPU {from}: got seq {seq}, want {want} ({})",
                    if seq < want { "duplicate" } else { "lost" }
                ));
            }
            ensure!(
                m.payload == message(cpu, seq),
                "vCPU {from} message {seq}: payload differs"
            );
            self.next[from] += 1;
        }
        Ok(())
    }
}

fn smp_concurrent_sends_one_ring(ctx: &mut Ctx) -> TestResult {
    need_two_vcpus()?;
    let mut ring = ctx.ring(RING_LEN)?;
    let dst = ring.addr();
    let src0 = ctx.fresh_addr()?;
    let src1 = ctx.fresh_addr()?;
    *ROUTE.lock() = Some((src1, dst));
    for e in &EAGAINS {
        e.store(0, Ordering::SeqCst);
    }
    let mut tally = Tally {
        ports: [src0.port, src1.port],
        next: [0, 0],
    };
    start_parked(sender_on_vcpu1)?;
    go();
    // vCPU 0 reads only when its own send finds the ring full, so both
    // senders meet -EAGAIN (the ring holds a few dozen messages).
    let mut mine = (0..SENDS_PER_VCPU)
        .try_for_each(|seq| send_one(&src0, &dst, seq, || tally.drain(&mut ring)));
    // Keep reading until vCPU 1 is done, so it never waits for room in
    // vain.
    // After an error, stop reading: vCPU 1 then runs out of retries.
    for _ in 0..JOIN_YIELDS {
        if smp::finished(1) {
            break;
        }
        if mine.is_ok() {
            mine = tally.drain(&mut ring);
        }
        sched::yield_now();
    }
    let theirs = finish_together();
    if mine.is_ok() {
        mine = tally.drain(&mut ring);
    }
    *ROUTE.lock() = None;
    println!(
        "V4V smp: {} + {} messages, EAGAIN {} on vCPU 0, {} on vCPU 1",
        tally.next[0],
        tally.next[1],
        EAGAINS[0].load(Ordering::SeqCst),
        EAGAINS[1].load(Ordering::SeqCst)
    );
    mine?;
    theirs?;
    ensure!(
        EAGAINS[0].load(Ordering::SeqCst) > 0,
        "vCPU 0 never found the ring full"
    );
    ensure_eq!(tally.next, [SENDS_PER_VCPU; 2], "messages read per vCPU");
    ensure!(!ring.has_message(), "ring not empty at the end");
    ctx.virq_clear()?;
    Ok(())
}
