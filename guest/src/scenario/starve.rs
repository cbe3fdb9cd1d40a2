//! The starvation scenario: can guests that keep Xen busy stall work that
//! other domains and the toolstack need?
//!
//! Two hammer domains (`starve-h`, 2 vCPUs each) send maximal messages
//! (`V4V_MAX_MSG_SIZE`, 128 iovs) from every vCPU, as fast as Xen takes
//! them, into four 16 MiB rings of a receiver (`starve-r`), which frees each
//! message as soon as it lands. Meanwhile:
//!
//! - dom0 `xl destroy`s a control domain (`starve-idle`, no V4V state),
//!   then a victim (`starve-v`) that has rings of its own and waits queued
//!   on the receiver's rings, and times both: under TCG only times taken
//!   in one boot compare, and the toolstack's own work on CPUs busy with
//!   copies dominates both;
//! - a looper (`starve-l`), created while the hammers run, times its first
//!   V4V operation (its first registration) and then registers and
//!   unregisters a ring in a loop, timing each call, until dom0 tells it to
//!   stop.
//!
//! Every latency is printed as a figure and checked against a bound. An
//! engine that holds a global lock across a copy, or whose locks let
//! readers starve writers, makes both unbounded: they last until the
//! hammers give up (their time cap).
//!
//! The receiver's rings are 16 MiB each but take few pages: every ring has
//! a header page of its own, and its data area cycles over one shared set
//! of pages (Xen pins and maps a frame as often as a ring lists it).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use v4v_abi::{
    errno, Addr, Iov, RingDataEnt, DOMID_ANY, MAXIOV, MAX_MSG_SIZE, MAX_RING_SIZE, RING_DATA_OFFSET,
};

use super::roles::sleep_ms;
use super::{check_rc, port, report, Node};
use crate::cmdline::CmdLine;
use crate::println;
use crate::smp;
use crate::tests::rc_name;
use crate::v4v::{self, AliasedRing, Pages, RingData};
use crate::xen::{sched, time};

/// The receiver's rings: one per hammer vCPU, at `RING_PORT + 2 * idx + cpu`.
const RING_PORT: u32 = 0x5000;
const NRINGS: u32 = 4;
/// Data pages the 16 MiB rings cycle over.
const DATA_PAGES: usize = 16;
/// The hammers give up after this long whatever happens (the bound on a
/// run against an engine that starves the others).
const HAMMER_CAP_MS: u64 = 150_000;
/// A source buffer the 128 iovs of a maximal message all point at.
const IOV_BYTES: usize = 128 * 1024;
/// Protocol number of the hammers' messages.
const PROTO_HAMMER: u32 = 0x7374_7276;
/// Bound on the looper's first registration and on each later
/// register/unregister (Xen system time, TCG; see the dom0 script for the
/// teardown bound).
const REGISTER_BOUND_MS: u64 = 2_000;
/// The looper's ring (one page).
const LOOP_PORT: u32 = 0x5100;
const LOOP_LEN: u32 = 4096 - RING_DATA_OFFSET as u32 - 4;

/// Domain ids of the starvation cast (`sr= sh1= sh2= sv= sl=`).
#[derive(Clone, Copy)]
struct Cast {
    r: u16,
    h: [u16; 2],
    l: u16,
}

fn cast(cmd: &CmdLine) -> Result<Cast, String> {
    let id = |k: &str| -> Result<u16, String> {
        cmd.get(k)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("no domain id '{k}=' on the command line"))
    };
    Ok(Cast {
        r: id("sr")?,
        h: [id("sh1")?, id("sh2")?],
        l: id("sl")?,
    })
}

pub fn run(n: Node, role: &str, cmd: &CmdLine) {
    let r = cast(cmd).and_then(|c| match role {
        "starve-r" => receiver(n, c),
        "starve-h" => hammer(n, c, cmd),
        "starve-v" => victim(n, c),
        _ => Err(format!("unknown starvation role {role}")),
    });
    if let Err(e) = r {
        println!("V4VT bail out! {role}: {e}");
    }
}

/// `starve-r`: registers the rings, starts the hammers, frees every
/// message as it lands, and checks that it saw as many as were sent.
fn receiver(mut n: Node, c: Cast) -> Result<(), String> {
    let data = Pages::alloc(DATA_PAGES);
    let rings = (0..NRINGS)
        .map(|i| {
            AliasedRing::register(RING_PORT + i, MAX_RING_SIZE, &data).map_err(|rc| {
                format!(
                    "registering 16 MiB ring {:#x}: {}",
                    RING_PORT + i,
                    rc_name(rc)
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for h in c.h {
        n.tell(h, "starve-go")?;
    }
    println!("starve-r: {NRINGS} rings of 16 MiB registered, hammers started");
    let mut seen = 0u64;
    let mut sent = [None::<u64>; 2];
    let deadline = time::deadline_ms(HAMMER_CAP_MS + 120_000);
    while sent.iter().any(Option::is_none) {
        let mut any = false;
        for r in &rings {
            if r.consume() {
                seen += 1;
                any = true;
            }
        }
        if any {
            v4v::notify_all();
        } else {
            // A maximal copy takes tens of milliseconds under TCG: look
            // again in a millisecond, leaving the CPU to the hammers.
            sched::poll(&[n.virq], time::now_ns() + 1_000_000);
        }
        for (i, h) in c.h.iter().enumerate() {
            if sent[i].is_none() {
                if let Some(t) = n.heard(*h, "starve-sent") {
                    sent[i] = Some(t.parse().map_err(|_| format!("bad count '{t}'"))?);
                }
            }
        }
        if time::passed(deadline) {
            return Err("the hammers never said how much they sent".into());
        }
    }
    // A message still in a ring when the hammers stopped.
    for r in &rings {
        if r.consume() {
            seen += 1;
        }
    }
    let total: u64 = sent.iter().flatten().sum();
    println!("starve-r: {seen} maximal messages freed, the hammers sent {total}");
    report(
        "starve.r-received-all",
        if seen == total && total > 0 {
            Ok(())
        } else {
            Err(format!("freed {seen} messages, hammers sent {total}"))
        },
    );
    Ok(())
}

// The hammer's shared state (`smp::start` runs a plain `fn()`).
static STOP: AtomicBool = AtomicBool::new(false);
static DST: AtomicU32 = AtomicU32::new(0);
static FIRST_PORT: AtomicU32 = AtomicU32::new(0);
static SRC_BUF: AtomicU64 = AtomicU64::new(0);
static SENT: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static FAILED: spin::Mutex<Option<String>> = spin::Mutex::new(None);

/// One vCPU of a hammer: maximal messages into its own ring until `STOP`
/// or `stop()`; a full ring is retried at once (that is the point).
fn hammer_loop(cpu: usize, mut stop: impl FnMut() -> bool) {
    let base = SRC_BUF.load(Ordering::Acquire);
    let mut iovs = [Iov::default(); MAXIOV as usize];
    let mut left = MAX_MSG_SIZE as u64;
    for iov in iovs.iter_mut() {
        let n = left.min(IOV_BYTES as u64);
        *iov = Iov {
            iov_base: base,
            iov_len: n,
        };
        left -= n;
    }
    let src = Addr {
        port: port::SENDER + cpu as u32,
        domain: DOMID_ANY,
    };
    let dst = Addr {
        port: FIRST_PORT.load(Ordering::Acquire) + cpu as u32,
        domain: DST.load(Ordering::Acquire) as u16,
    };
    while !STOP.load(Ordering::Acquire) && !stop() {
        let rc = v4v::sendv(&src, &dst, &iovs, PROTO_HAMMER);
        if rc == MAX_MSG_SIZE as i64 {
            SENT[cpu].fetch_add(1, Ordering::AcqRel);
        } else if rc != -errno::EAGAIN {
            *FAILED.lock() = Some(format!("vCPU {cpu}: sendv: {}", rc_name(rc)));
            break;
        }
    }
    STOP.store(true, Ordering::Release);
}

fn hammer_vcpu1() {
    hammer_loop(1, || false);
}

/// `starve-h idx=0|1`: both vCPUs hammer until the looper says stop (or
/// the cap), then tell the receiver how many messages went through.
fn hammer(mut n: Node, c: Cast, cmd: &CmdLine) -> Result<(), String> {
    let idx: u32 = cmd
        .get("idx")
        .and_then(|v| v.parse().ok())
        .filter(|i| *i < 2)
        .ok_or("no 'idx=0|1' on the command line")?;
    let buf = Pages::alloc(IOV_BYTES / 4096);
    SRC_BUF.store(buf.va(), Ordering::Release);
    DST.store(c.r as u32, Ordering::Release);
    FIRST_PORT.store(RING_PORT + 2 * idx, Ordering::Release);
    n.hear(c.r, "starve-go")?;
    smp::start(1, hammer_vcpu1).map_err(|rc| format!("starting vCPU 1: {rc}"))?;
    super::mark("starve-hammering");
    let t0 = time::now_ns();
    // vCPU 0 hammers too, looking at its control ring between sends.
    let deadline = time::deadline_ms(HAMMER_CAP_MS);
    let mut stopped_by = "the time cap";
    hammer_loop(0, || {
        if n.heard(c.l, "starve-stop").is_some() {
            stopped_by = "the looper";
            return true;
        }
        time::passed(deadline)
    });
    STOP.store(true, Ordering::Release);
    smp::join(1);
    let secs = (time::now_ns() - t0) as f64 / 1e9;
    let (s0, s1) = (
        SENT[0].load(Ordering::Acquire),
        SENT[1].load(Ordering::Acquire),
    );
    println!(
        "starve-h: stopped by {stopped_by} after {secs:.1} s: {s0} + {s1} maximal messages ({} MiB)",
        ((s0 + s1) * MAX_MSG_SIZE as u64) >> 20
    );
    n.tell(c.r, &format!("starve-sent {}", s0 + s1))?;
    let failed = FAILED.lock().take();
    report(
        &format!("starve.h{}-hammered", idx + 1),
        match failed {
            Some(e) => Err(e),
            None if s0 == 0 || s1 == 0 => Err(format!("a vCPU sent nothing ({s0}, {s1})")),
            None => Ok(()),
        },
    );
    Ok(())
}

/// `starve-idle`: the control domain: no V4V state at all, nothing to do
/// until dom0 destroys it (for the teardown time to compare with).
pub fn idle() -> ! {
    println!("starve-idle: no V4V calls; waiting to be destroyed");
    super::mark("starve-idle-ready");
    loop {
        sched::poll(&[], time::deadline_ms(1000));
    }
}

/// `starve-v`: rings of its own and waits on the receiver's rings, then
/// nothing: dom0 destroys it while the hammers run.
fn victim(n: Node, c: Cast) -> Result<(), String> {
    let mut mine = Vec::new();
    for i in 0..32 {
        let mut r = v4v::Ring::new(0x5200 + i, DOMID_ANY, LOOP_LEN);
        check_rc(r.register(), 0, "victim: register")?;
        mine.push(r);
    }
    // A wait on each of the receiver's rings: a maximal message fits
    // only an empty ring, and the hammers keep them busy.
    let ents: Vec<RingDataEnt> = (0..NRINGS)
        .map(|i| RingDataEnt {
            ring: Addr {
                port: RING_PORT + i,
                domain: c.r,
            },
            flags: 0,
            space_required: MAX_MSG_SIZE,
            max_message_size: 0,
        })
        .collect();
    let mut rd = RingData::new(&ents);
    check_rc(rd.notify(), 0, "victim: notify")?;
    println!(
        "starve-v: domain {} has {} rings and queued its waits",
        n.me,
        mine.len()
    );
    super::mark("starve-v-ready");
    loop {
        sched::poll(&[], time::deadline_ms(1000));
    }
}

/// Entry of `starve-l`, before any V4V call: the Node (whose control ring
/// is the domain's first registration) is made here, timed.
pub fn run_looper(cast: super::Cast, virq: u32, cmd: &CmdLine) {
    let c = match self::cast(cmd) {
        Ok(c) => c,
        Err(e) => {
            println!("V4VT bail out! starve-l: {e}");
            return;
        }
    };
    let t0 = time::now_ns();
    let n = Node::new("starve-l", cast, virq);
    let first_ms = (time::now_ns() - t0) / 1_000_000;
    let n = match n {
        Ok(n) => n,
        Err(e) => {
            println!("V4VT bail out! starve-l: {e}");
            return;
        }
    };
    println!("starve-l: first registration (the domain's first V4V call) took {first_ms} ms");
    if let Err(e) = loop_register(n, c, first_ms) {
        println!("V4VT bail out! starve-l: {e}");
    }
}

fn loop_register(mut n: Node, c: Cast, first_ms: u64) -> Result<(), String> {
    super::mark("starve-l-looping");
    let mut ring = v4v::Ring::new(LOOP_PORT, DOMID_ANY, LOOP_LEN);
    let mut times: Vec<u64> = Vec::new();
    let deadline = time::deadline_ms(HAMMER_CAP_MS + 60_000);
    let mut err = None;
    while n.heard(0, "stop").is_none() {
        if time::passed(deadline) {
            err = Some("dom0 never said stop".into());
            break;
        }
        let t0 = time::now_ns();
        let rc = ring.register();
        let t1 = time::now_ns();
        if let Err(e) = check_rc(rc, 0, "register") {
            err = Some(e);
            break;
        }
        let rc = ring.unregister();
        let t2 = time::now_ns();
        if let Err(e) = check_rc(rc, 0, "unregister") {
            err = Some(e);
            break;
        }
        times.push(t1 - t0);
        times.push(t2 - t1);
        sleep_ms(5);
    }
    // A hammer that reached its time cap is gone already.
    for h in c.h {
        if let Err(e) = n.tell_within(h, "starve-stop", 5_000) {
            println!("starve-l: {e}");
        }
    }
    times.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let max = times.last().copied().unwrap_or(0);
    let median = times.get(times.len() / 2).copied().unwrap_or(0);
    println!(
        "starve-l: first registration {first_ms} ms; {} register/unregister calls, slowest {:.1} ms, median {:.2} ms",
        times.len(),
        ms(max),
        ms(median)
    );
    println!("V4VD figure starve-first-register-ms {first_ms}");
    println!("V4VD figure starve-register-max-ms {:.1}", ms(max));
    println!("V4VD figure starve-register-median-ms {:.2}", ms(median));
    report(
        "starve.first-registration-bounded",
        if first_ms <= REGISTER_BOUND_MS {
            Ok(())
        } else {
            Err(format!("{first_ms} ms > {REGISTER_BOUND_MS} ms"))
        },
    );
    report(
        "starve.register-loop-bounded",
        match err {
            Some(e) => Err(e),
            None if times.len() < 20 => Err(format!("only {} calls", times.len())),
            None if max / 1_000_000 > REGISTER_BOUND_MS => Err(format!(
                "slowest call {:.1} ms > {REGISTER_BOUND_MS} ms",
                ms(max)
            )),
            None => Ok(()),
        },
    );
    super::mark("starve-l-done");
    Ok(())
}
