//! Thin bindings to the Xen PV interfaces the guest needs: hypercalls,
//! `start_info`, page mappings, event channels and scheduling.

pub mod event;
pub mod grant;
pub mod hypercall;
pub mod mm;
pub mod sched;
pub mod start_info;
pub mod time;
pub mod vcpu;

/// Hypercall numbers (Xen public `xen.h`).
pub mod nr {
    pub const MEMORY_OP: u32 = 12;
    pub const UPDATE_VA_MAPPING: u32 = 14;
    pub const XEN_VERSION: u32 = 17;
    pub const CONSOLE_IO: u32 = 18;
    pub const SCHED_OP: u32 = 29;
    pub const EVENT_CHANNEL_OP: u32 = 32;
}

/// Returns Xen's version as (major, minor), from `XENVER_version`.
pub fn version() -> (u32, u32) {
    // SAFETY: XENVER_version (0) takes no buffer; the NULL argument is
    // never dereferenced.
    let v = unsafe { hypercall::hypercall2(nr::XEN_VERSION, 0, 0) };
    ((v >> 16) as u32 & 0xffff, v as u32 & 0xffff)
}
