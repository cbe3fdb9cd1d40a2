//! `sched_op`: yield and shutdown.

use super::{hypercall, nr};

const SCHEDOP_YIELD: u64 = 0;
const SCHEDOP_SHUTDOWN: u64 = 2;

/// `SHUTDOWN_*` reasons.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    Poweroff = 0,
    Reboot = 1,
    Crash = 3,
}

/// Gives up the CPU for a moment.
pub fn yield_now() {
    // SAFETY: SCHEDOP_yield takes no argument.
    unsafe {
        hypercall::hypercall2(nr::SCHED_OP, SCHEDOP_YIELD, 0);
    }
}

/// Shuts the domain down; does not return.
pub fn shutdown(reason: Reason) -> ! {
    let arg: u32 = reason as u32;
    loop {
        // SAFETY: `arg` is a `struct sched_shutdown` (one u32) that lives
        // across the call.
        unsafe {
            hypercall::hypercall2(nr::SCHED_OP, SCHEDOP_SHUTDOWN, &raw const arg as u64);
        }
    }
}

/// Ends the domain as crashed (after a fatal error).
pub fn crash() -> ! {
    crate::console::flush();
    shutdown(Reason::Crash)
}

const SCHEDOP_POLL: u64 = 3;

/// Blocks until one of `ports` is pending or Xen system time reaches
/// `deadline_ns` (0: no deadline). Works with upcalls masked, which is
/// how this guest runs. Returns Xen's result (0, or a negative errno).
pub fn poll(ports: &[u32], deadline_ns: u64) -> i64 {
    #[repr(C)]
    struct SchedPoll {
        ports: u64,
        nr_ports: u32,
        timeout: u64,
    }
    let arg = SchedPoll {
        ports: ports.as_ptr() as u64,
        nr_ports: ports.len() as u32,
        timeout: deadline_ns,
    };
    // SAFETY: `arg` is a live `struct sched_poll` whose port array lives
    // across the call; Xen only reads both.
    unsafe { hypercall::hypercall2(nr::SCHED_OP, SCHEDOP_POLL, &raw const arg as u64) }
}
