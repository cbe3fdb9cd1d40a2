//! `worst` mode (as dom0): the worst case of each V4V operation, timed.
//!
//! Each operation is made at its limits and timed from the guest (Xen's
//! system time, which under QEMU's instruction clock counts instructions;
//! `make worst-case` boots it so). For an operation with no preemption
//! point inside (send, register, unregister, the viptables operations) the
//! call is the longest stretch; for notify, which stops at a preemption
//! point between steps, a call of one step's entries is. Each figure is
//! the slowest of [`REPEAT`] calls, printed as `V4VD figure worst-NAME-us
//! VALUE`; each measurement is also a test (the calls must succeed).
//!
//! Teardown cannot be timed from inside the dying domain; its longest step
//! (one ring unmapped, or 512 frames unpinned) is at most the unregister of
//! a 16 MiB ring, which unmaps the ring and unpins all 4097 frames at once.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

use v4v_abi::{
    Addr, Iov, RingDataEnt, ViptablesRule, DOMID_ANY, MAXENT, MAXIOV, MAX_MSG_SIZE, MAX_RING_SIZE,
};

use crate::cmdline::CmdLine;
use crate::println;
use crate::tests::rc_name;
use crate::v4v::{self, AliasedRing, Pages, RingData};
use crate::xen::time;

/// Calls timed for each figure; the slowest counts.
const REPEAT: usize = 3;
/// Pages the 16 MiB ring's data area cycles over.
const DATA_PAGES: usize = 16;
/// Bytes every iov of a maximal sendv points at.
const IOV_BYTES: usize = 128 * 1024;
/// The viptables limit (the engine's MAX_RULES).
const RULES: u32 = 4096;
/// Entries in one step of notify at 4096 rules (8192 matches a step).
const NOTIFY_STEP_AT_MAX_RULES: usize = 2;

struct Run {
    n: usize,
    failed: usize,
    table: Vec<(String, u64)>,
}

impl Run {
    /// Times `f` REPEAT times (`prep` before each, untimed); `f` returns
    /// the hypercall's result, which must be `want`.
    fn time(
        &mut self,
        name: &str,
        want: i64,
        mut prep: impl FnMut() -> Result<(), String>,
        mut f: impl FnMut() -> i64,
    ) {
        self.n += 1;
        let mut slowest = 0u64;
        let mut err = None;
        for _ in 0..REPEAT {
            if let Err(e) = prep() {
                err = Some(e);
                break;
            }
            let t0 = time::now_ns();
            let rc = f();
            let dt = time::now_ns() - t0;
            if rc != want {
                err = Some(format!("{}, not {}", rc_name(rc), rc_name(want)));
                break;
            }
            slowest = slowest.max(dt);
        }
        match err {
            None => {
                let us = slowest / 1000;
                println!("V4VD figure worst-{name}-us {us}");
                println!("V4VT ok {} worst.{name}", self.n);
                self.table.push((String::from(name), us));
            }
            Some(e) => {
                self.failed += 1;
                println!("V4VT not ok {} worst.{name} # {e}", self.n);
            }
        }
    }
}

/// How many measurements `run` makes (the plan).
const PLAN: usize = 9;

pub fn run(_cmd: &CmdLine) {
    println!("V4VT plan {PLAN}");
    let mut r = Run {
        n: 0,
        failed: 0,
        table: Vec::new(),
    };
    let data = Pages::alloc(DATA_PAGES);
    let src_buf = Pages::alloc(IOV_BYTES / 4096);
    let me = Addr {
        port: 0x7000,
        domain: DOMID_ANY,
    };

    // register and unregister of a 16 MiB ring (4097 frames).
    let ring: RefCell<Option<AliasedRing>> = RefCell::new(None);
    r.time(
        "register-16mib",
        0,
        || {
            ring.replace(None);
            Ok(())
        },
        || match AliasedRing::register(0x7100, MAX_RING_SIZE, &data) {
            Ok(x) => {
                ring.replace(Some(x));
                0
            }
            Err(rc) => rc,
        },
    );
    r.time(
        "unregister-16mib",
        0,
        || {
            if ring.borrow().is_none() {
                let x = AliasedRing::register(0x7100, MAX_RING_SIZE, &data)
                    .map_err(|rc| format!("register: {}", rc_name(rc)))?;
                ring.replace(Some(x));
            }
            Ok(())
        },
        || match ring.take() {
            Some(mut x) => x.unregister(),
            None => -1,
        },
    );

    // A maximal message (16 MiB - 32, 128 iovs) into an empty 16 MiB ring.
    let big = match AliasedRing::register(0x7101, MAX_RING_SIZE, &data) {
        Ok(x) => x,
        Err(rc) => {
            println!(
                "V4VT bail out! registering the 16 MiB ring: {}",
                rc_name(rc)
            );
            return;
        }
    };
    let dst = big.addr();
    let mut iovs = Vec::with_capacity(MAXIOV as usize);
    let mut left = MAX_MSG_SIZE as u64;
    while left > 0 {
        let n = left.min(IOV_BYTES as u64);
        iovs.push(Iov {
            iov_base: src_buf.va(),
            iov_len: n,
        });
        left -= n;
    }
    r.time(
        "sendv-128-iovs-16mib",
        MAX_MSG_SIZE as i64,
        || {
            big.consume();
            Ok(())
        },
        || v4v::sendv(&me, &dst, &iovs, 0),
    );
    // One buffer of the largest size this guest has mapped in one piece.
    r.time(
        "send-128kib",
        IOV_BYTES as i64,
        || {
            big.consume();
            Ok(())
        },
        || v4v::send(&me, &dst, src_buf.bytes(), 0),
    );

    // The viptables at their limit: 4096 rules that match nothing.
    let rule = |i: u32| ViptablesRule {
        src: Addr {
            port: i,
            domain: 0x7ff0,
        },
        dst: Addr {
            port: i,
            domain: 0x7ff0,
        },
        accept: 0,
    };
    let mut fill_err = None;
    for i in 0..RULES - 1 {
        let rc = v4v::viptables_add(&rule(i), u32::MAX);
        if rc != 0 {
            fill_err = Some(format!("adding rule {i}: {}", rc_name(rc)));
            break;
        }
    }
    // The last add, at the front: the whole list moves.
    let mut added = false;
    r.time(
        "viptables-add-front-at-4096",
        0,
        || {
            if let Some(e) = &fill_err {
                return Err(e.clone());
            }
            if added {
                let rc = v4v::viptables_del(None, 0);
                if rc != 0 {
                    return Err(format!("del 0: {}", rc_name(rc)));
                }
            }
            added = true;
            Ok(())
        },
        || v4v::viptables_add(&rule(RULES), 0),
    );
    r.time(
        "viptables-list-at-4096",
        0,
        || Ok(()),
        || v4v::viptables_list(RULES - 8).0,
    );

    // notify: one step's entries at 4096 rules, then all 4096 entries.
    let ents = |n: usize| -> Vec<RingDataEnt> {
        (0..n)
            .map(|i| RingDataEnt {
                ring: Addr {
                    port: 0x7200 + i as u32,
                    domain: 0,
                },
                ..Default::default()
            })
            .collect()
    };
    let mut one_step = RingData::new(&ents(NOTIFY_STEP_AT_MAX_RULES));
    r.time(
        "notify-one-step-at-4096-rules",
        0,
        || Ok(()),
        || one_step.notify(),
    );
    let mut all = RingData::new(&ents(MAXENT as usize));
    r.time(
        "notify-4096-entries-at-4096-rules-whole-call",
        0,
        || Ok(()),
        || all.notify(),
    );

    // Flush of the full list (refilled, untimed, between calls).
    r.time(
        "viptables-flush-at-4096",
        0,
        || {
            let (rc, list) = v4v::viptables_list(0);
            if rc == 0 && list.nb_rules == 8 {
                return Ok(());
            }
            for i in 0..RULES {
                let rc = v4v::viptables_add(&rule(i), u32::MAX);
                if rc != 0 {
                    return Err(format!("refilling rule {i}: {}", rc_name(rc)));
                }
            }
            Ok(())
        },
        || v4v::viptables_del(None, -1),
    );

    println!("worst case of each operation (slowest of {REPEAT} calls, Xen time):");
    for (name, us) in &r.table {
        println!("  {name:<48} {us:>9} us");
    }
    println!("V4V worst: {} measured, {} failed", r.table.len(), r.failed);
    drop(big);
    println!("V4VT done");
}
