//! Xen system time: nanoseconds since the host booted, from vCPU 0's
//! `vcpu_time_info` in the shared info page and the TSC.
//!
//! Xen publishes `(tsc_timestamp, system_time, tsc_to_system_mul,
//! tsc_shift)` under a version counter that is odd while it is updating;
//! the reader retries until it sees the same even version before and
//! after. The TSC is the same on every vCPU under QEMU and on hosts with
//! an invariant TSC, so vCPU 0's record serves both vCPUs.
//!
//! `vcpu_time_info` (32 bytes at byte 32 of `vcpu_info`): u32 version @0,
//! u64 tsc_timestamp @8, u64 system_time @16, u32 tsc_to_system_mul @24,
//! i8 tsc_shift @28.

use core::arch::x86_64::_rdtsc;
use core::sync::atomic::{fence, Ordering};

use super::event;

const TIME_INFO: usize = 32;

/// Nanoseconds of Xen system time, or 0 before shared info is mapped.
pub fn now_ns() -> u64 {
    let Some(base) = event::shared_info() else {
        return 0;
    };
    // SAFETY: the shared info page stays mapped for the domain's life;
    // vcpu_info[0].time is 32 bytes at byte 32, every field naturally
    // aligned; Xen rewrites it concurrently, which the version protocol
    // and volatile reads tolerate.
    let t = unsafe { base.add(TIME_INFO) };
    loop {
        // SAFETY: see above; each read is of an aligned field of `t`.
        let (v0, stamp, sys, mul, shift, v1) = unsafe {
            let v0 = t.cast::<u32>().read_volatile();
            fence(Ordering::Acquire);
            let stamp = t.add(8).cast::<u64>().read_volatile();
            let sys = t.add(16).cast::<u64>().read_volatile();
            let mul = t.add(24).cast::<u32>().read_volatile();
            let shift = t.add(28).cast::<i8>().read_volatile();
            fence(Ordering::Acquire);
            (v0, stamp, sys, mul, shift, t.cast::<u32>().read_volatile())
        };
        if v0 & 1 != 0 || v0 != v1 {
            core::hint::spin_loop();
            continue;
        }
        // SAFETY: rdtsc has no memory effects; PV guests may use it.
        let tsc = unsafe { _rdtsc() };
        let mut delta = tsc.wrapping_sub(stamp);
        if shift >= 0 {
            delta <<= shift;
        } else {
            delta >>= -shift;
        }
        return sys.wrapping_add(((delta as u128 * mul as u128) >> 32) as u64);
    }
}

/// A point `ms` milliseconds from now.
pub fn deadline_ms(ms: u64) -> u64 {
    now_ns().saturating_add(ms * 1_000_000)
}

/// Whether `deadline` (from [`deadline_ms`]) has passed.
pub fn passed(deadline: u64) -> bool {
    now_ns() >= deadline
}
