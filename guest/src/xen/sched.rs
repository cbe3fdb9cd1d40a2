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
