//! The scripts of the scenario roles, phase by phase. `b` paces the run:
//! each phase starts when `b` tells the senders its tag, and ends when the
//! senders tell `b` theirs.

pub mod a;
pub mod b;
pub mod c;

use alloc::format;
use alloc::string::String;
use core::sync::atomic::{AtomicU32, Ordering};

use v4v_abi::{Addr, DOMID_ANY};

use super::port;
use super::traffic::{self, Sent, Until};
use super::Node;
use crate::println;
use crate::smp;
use crate::xen::{sched, time};

/// Messages each vCPU sends in the concurrency phase.
pub const CONC_MESSAGES: u32 = 1500;
/// Largest payload of the concurrency phase.
pub const CONC_MAX: usize = 2048;

/// The byte b fills the page it grants the hostile guest with.
pub const GRANT_MARK: u8 = 0x6b;

/// Stream id of vCPU `cpu` of domain `dom` in the concurrency phase.
pub fn conc_stream(dom: u16, cpu: u32) -> u32 {
    ((dom as u32) << 8) | cpu
}

/// Sleeps for `ms` milliseconds (blocked in Xen, not spinning).
pub fn sleep_ms(ms: u64) {
    let deadline = time::deadline_ms(ms);
    while !time::passed(deadline) {
        sched::poll(&[], deadline);
    }
}

// Parameters of the vCPU-1 sender: `smp::start` runs a plain `fn()`.
static CONC_DST: AtomicU32 = AtomicU32::new(0);
static CONC_ME: AtomicU32 = AtomicU32::new(0);
static CONC_VIRQ: AtomicU32 = AtomicU32::new(0);
static CONC_RESULT: spin::Mutex<Option<Result<Sent, String>>> = spin::Mutex::new(None);

/// What vCPU `cpu` sends in the concurrency phase: its own stream, from
/// its own source port, to `dst`'s concurrency ring.
fn conc_send(cpu: u32) -> Result<Sent, String> {
    let me = CONC_ME.load(Ordering::Acquire) as u16;
    let dst = Addr {
        port: port::CONCURRENCY,
        domain: CONC_DST.load(Ordering::Acquire) as u16,
    };
    let src = Addr {
        port: port::SENDER + cpu,
        domain: DOMID_ANY,
    };
    traffic::send_stream(
        CONC_VIRQ.load(Ordering::Acquire),
        &src,
        &dst,
        conc_stream(me, cpu),
        Until::Messages(CONC_MESSAGES),
        CONC_MAX,
        300_000,
    )
    .map_err(|e| format!("vCPU {cpu}: {e}"))
}

fn conc_vcpu1() {
    let r = conc_send(1);
    *CONC_RESULT.lock() = Some(r);
}

/// Sends the concurrency phase's two streams at once, one per vCPU.
pub fn send_on_both_vcpus(me: u16, dst: u16, virq: u32) -> Result<(Sent, Sent), String> {
    CONC_DST.store(dst as u32, Ordering::Release);
    CONC_ME.store(me as u32, Ordering::Release);
    CONC_VIRQ.store(virq, Ordering::Release);
    *CONC_RESULT.lock() = None;
    smp::start(1, conc_vcpu1).map_err(|rc| format!("starting vCPU 1: {rc}"))?;
    let mine = conc_send(0);
    smp::join(1);
    let other = CONC_RESULT
        .lock()
        .take()
        .unwrap_or_else(|| Err("vCPU 1 left no result".into()));
    Ok((mine?, other?))
}

/// The concurrency phase for a sender: on `b`'s word, both vCPUs send
/// their streams at once; reported as `concurrency.<who>-sent`.
pub fn concurrency_phase(n: &mut Node, who: &str) {
    let b = n.cast.b;
    let r = n
        .hear(b, "conc-go")
        .and_then(|_| send_on_both_vcpus(n.me, b, n.virq));
    if let Ok((x, y)) = &r {
        println!(
            "{who}: concurrency: vCPU 0 sent {} ({} waits), vCPU 1 sent {} ({} waits)",
            x.count, x.eagain, y.count, y.eagain
        );
    }
    super::report(&format!("concurrency.{who}-sent"), r.map(|_| ()));
}
