//! Event channels, polled through the shared info page (upcalls stay
//! masked; the guest never takes an event callback).
//!
//! Shared info layout (x86_64): 32 `vcpu_info` of 64 bytes, then
//! `evtchn_pending[64]` at byte 2048 and `evtchn_mask[64]` at 2560. In
//! `vcpu_info`: `evtchn_upcall_pending` @0, `evtchn_upcall_mask` @1,
//! `evtchn_pending_sel` @8, `arch.cr2` @16.

use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering};

use super::{hypercall, mm, nr, start_info};

const EVTCHNOP_BIND_VIRQ: u64 = 1;
const EVTCHNOP_SEND: u64 = 4;

const PENDING_OFFSET: usize = 2048;
const NR_PORTS_2L: u32 = 64 * 64;

pub(crate) static SHARED_INFO: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// Maps the shared info page (start_info gives its machine address).
pub fn map_shared_info() -> Result<(), i64> {
    let mfn = start_info::get().shared_info >> 12;
    // SAFETY: slot SLOT_SHARED_INFO is mapped only here, once at boot.
    let va = unsafe { mm::map_window(mm::SLOT_SHARED_INFO, mfn)? };
    SHARED_INFO.store(va, Ordering::Release);
    Ok(())
}

/// The mapped shared info page, once [`map_shared_info`] has run.
pub fn shared_info() -> Option<*mut u8> {
    let p = SHARED_INFO.load(Ordering::Acquire);
    (!p.is_null()).then_some(p)
}

fn pending_word(port: u32) -> Option<&'static AtomicU64> {
    if port >= NR_PORTS_2L {
        return None;
    }
    let base = shared_info()?;
    // SAFETY: the shared info page is mapped for the domain's life; the
    // pending bitmap is 64 aligned u64 words at byte 2048, which Xen
    // updates with atomic operations as well.
    Some(unsafe {
        AtomicU64::from_ptr(
            base.add(PENDING_OFFSET + (port as usize / 64) * 8)
                .cast::<u64>(),
        )
    })
}

/// Clears the pending bit of `port`; returns whether it was set.
pub fn test_and_clear(port: u32) -> bool {
    let Some(w) = pending_word(port) else {
        return false;
    };
    let bit = 1u64 << (port % 64);
    let was = w.fetch_and(!bit, Ordering::SeqCst) & bit != 0;
    clear_vcpu0_summary();
    was
}

/// Clears vCPU 0's upcall-pending flag and selector (nobody consumes them:
/// upcalls stay masked). Ports are only bound to vCPU 0; other vCPUs may
/// call this too (the stores are atomic and idempotent).
fn clear_vcpu0_summary() {
    let Some(base) = shared_info() else {
        return;
    };
    // SAFETY: vcpu_info[0] sits at the start of the mapped shared info
    // page; both fields are naturally aligned and updated atomically.
    unsafe {
        AtomicU8::from_ptr(base).store(0, Ordering::SeqCst);
        AtomicU64::from_ptr(base.add(8).cast::<u64>()).store(0, Ordering::SeqCst);
    }
}

/// Number of `vcpu_info` slots in the shared info page.
const SHARED_VCPU_INFOS: u32 = 32;
const VCPU_INFO_SIZE: usize = 64;

/// vCPU `cpu`'s `vcpu_info` in the shared info page, once it is mapped.
fn vcpu_info(cpu: u32) -> Option<*mut u8> {
    if cpu >= SHARED_VCPU_INFOS {
        return None;
    }
    // SAFETY: cpu < 32, so the slot lies inside the mapped page.
    Some(unsafe { shared_info()?.add(cpu as usize * VCPU_INFO_SIZE) })
}

/// vCPU `cpu`'s last page-fault address (`arch.cr2`), once shared info
/// is mapped.
pub fn fault_address(cpu: u32) -> Option<u64> {
    let info = vcpu_info(cpu)?;
    // SAFETY: arch.cr2 of a vcpu_info is an aligned u64 at byte 16.
    Some(unsafe { info.add(16).cast::<u64>().read_volatile() })
}

/// Sets vCPU `cpu`'s `evtchn_upcall_mask` (for a vCPU about to start:
/// the guest has no event callback). False if it has no slot here.
pub fn mask_upcalls(cpu: u32) -> bool {
    let Some(info) = vcpu_info(cpu) else {
        return false;
    };
    // SAFETY: evtchn_upcall_mask is byte 1 of the vcpu_info; Xen reads
    // and writes it as a byte too.
    unsafe { AtomicU8::from_ptr(info.add(1)).store(1, Ordering::SeqCst) };
    true
}

/// `EVTCHNOP_bind_virq` on `vcpu`: returns the local port.
pub fn bind_virq(virq: u32, vcpu: u32) -> Result<u32, i64> {
    #[repr(C)]
    struct BindVirq {
        virq: u32,
        vcpu: u32,
        port: u32,
    }
    let mut op = BindVirq {
        virq,
        vcpu,
        port: 0,
    };
    // SAFETY: `op` is a live `struct evtchn_bind_virq`; Xen writes `port`.
    let rc = unsafe {
        hypercall::hypercall2(nr::EVENT_CHANNEL_OP, EVTCHNOP_BIND_VIRQ, &raw mut op as u64)
    };
    if rc == 0 {
        Ok(op.port)
    } else {
        Err(rc)
    }
}

/// `EVTCHNOP_send`: notifies the other end of `port`.
pub fn send(port: u32) -> i64 {
    let op: u32 = port;
    // SAFETY: `op` is a live `struct evtchn_send` (one u32).
    unsafe { hypercall::hypercall2(nr::EVENT_CHANNEL_OP, EVTCHNOP_SEND, &raw const op as u64) }
}
