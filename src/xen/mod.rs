//! The engine inside Xen.
//!
//! Xen's C shim (`xen/common/v4v.c`, added by `xen-patches/`) makes the
//! engine at boot ([`v4v_rs_init`]), turns hypercall 43 into a call of
//! [`v4v_rs_op`], domain teardown into [`v4v_rs_domain_detach`] and
//! [`v4v_rs_domain_relinquish`] (preemptible), and the V4V debug key into
//! [`v4v_rs_dump`].
//! In the other direction [`XenEnv`] implements [`Env`] over the shim's
//! services ([`ffi`]), and [`rt`] gives the crate the allocator, panic
//! handler and console writer that `core` and `alloc` need.
//!
//! The shim calls these entry points directly, never through a function
//! pointer, and only from hypercall, domctl or debug-key context, with
//! interrupts enabled.
use crate::engine::Engine;
use crate::env::{DomId, Env, Fault, PinError, SendAccess};
use crate::guest::GuestRange;
use core::ffi::c_void;
use core::ptr::{self, NonNull};

mod ffi;
mod lock;
mod rt;

/// `-ESRCH` (Xen's errno 3): `v4v_shim_xsm_send` found no such domain.
const ESRCH_NEG: i32 = -3;

/// All V4V state of the host, made once at boot.
static ENGINE: spin::Once<Engine<XenEnv>> = spin::Once::new();

/// This physical CPU's word of held lock levels (the lock-order check of
/// debug builds).
#[cfg(debug_assertions)]
pub(crate) fn lock_levels() -> *mut u32 {
    ffi::v4v_shim_lock_levels()
}

/// [`Env`] over the C shim: the hypervisor as seen from the current
/// hypercall.
pub struct XenEnv;

/// A frame pinned writable (`get_page_type(PGT_writable_page)` plus a
/// general reference): its `struct page_info *`. `repr(transparent)`, so a
/// slice of frames is the array of `void *` that `v4v_shim_map_frames` takes.
#[repr(transparent)]
pub struct XenFrame(NonNull<c_void>);

// SAFETY: a XenFrame only carries the page_info pointer of a pinned frame,
// valid on every physical CPU until v4v_shim_unpin_frame, which the Env
// contract lets happen only once, when the frame is given back by value.
unsafe impl Send for XenFrame {}
// SAFETY: as for Send: nothing mutates a XenFrame or its page through it.
unsafe impl Sync for XenFrame {}

impl Env for XenEnv {
    type Frame = XenFrame;
    type Mutex = lock::XenSpinlock;
    type RwLock = lock::XenRwLock;

    fn current_vcpu(&self) -> u32 {
        ffi::v4v_shim_current_vcpu()
    }

    fn preempt_check(&self) -> bool {
        ffi::v4v_shim_preempt_check()
    }

    fn continuation(&self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
        ffi::v4v_shim_continuation(cmd, a1, a2, a3, a4, a5)
    }

    fn process_softirqs(&self) {
        ffi::v4v_shim_process_softirqs()
    }

    fn current_domain(&self) -> DomId {
        ffi::v4v_shim_current_domid()
    }

    fn xsm_use(&self) -> bool {
        ffi::v4v_shim_xsm_use() == 0
    }

    fn xsm_register(&self, partner: DomId) -> bool {
        ffi::v4v_shim_xsm_register(partner) == 0
    }

    fn xsm_send(&self, dst: DomId) -> SendAccess {
        match ffi::v4v_shim_xsm_send(dst) {
            0 => SendAccess::Allowed,
            ESRCH_NEG => SendAccess::NoDomain,
            _ => SendAccess::Denied,
        }
    }

    fn xsm_viptables(&self) -> bool {
        ffi::v4v_shim_xsm_viptables() == 0
    }

    unsafe fn copy_from_guest(&self, dst: *mut u8, src: GuestRange) -> Result<(), Fault> {
        // SAFETY: the caller guarantees dst is valid for writes of the
        // range's length (Env::copy_from_guest). The shim checks that the
        // range is guest memory, copies with a fault-tolerant raw copy and
        // forms no C object over dst, so a concurrently written guest frame
        // is fine.
        let rc = unsafe { ffi::v4v_shim_copy_from_guest(dst, src.start(), src.len() as usize) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Fault)
        }
    }

    fn probe_guest(&self, range: GuestRange) -> Result<(), Fault> {
        if range.is_empty() || ffi::v4v_shim_probe_guest(range.start(), range.len()) == 0 {
            Ok(())
        } else {
            Err(Fault)
        }
    }

    unsafe fn copy_to_guest(&self, dst: GuestRange, src: *const u8) -> Result<(), Fault> {
        // SAFETY: the caller guarantees src is valid for reads of the
        // range's length (Env::copy_to_guest); the shim checks and
        // faults-in the guest side.
        let rc = unsafe { ffi::v4v_shim_copy_to_guest(dst.start(), src, dst.len() as usize) };
        if rc == 0 {
            Ok(())
        } else {
            Err(Fault)
        }
    }

    fn pin_frame(&self, gfn: u64) -> Result<XenFrame, PinError> {
        let mut page: *mut c_void = ptr::null_mut();
        // SAFETY: the out-pointer points to a live local; the shim writes it
        // only when it returns 0.
        let rc = unsafe { ffi::v4v_shim_pin_frame(gfn, &mut page) };
        match (rc, NonNull::new(page)) {
            (0, Some(page)) => Ok(XenFrame(page)),
            // rc 0 with no page is not produced by the shim; refuse rather
            // than keep a frame we could not unpin.
            _ => Err(PinError::Invalid),
        }
    }

    fn map_frames(&self, frames: &[XenFrame]) -> Result<NonNull<u8>, PinError> {
        // SAFETY: `frames` is an array of `frames.len()` page pointers
        // (XenFrame is a transparent NonNull<c_void>), each pinned; the shim
        // only reads it.
        let va = unsafe { ffi::v4v_shim_map_frames(frames.as_ptr().cast(), frames.len()) };
        NonNull::new(va.cast::<u8>()).ok_or(PinError::NoMem)
    }

    fn unmap_frames(&self, va: NonNull<u8>, _count: usize) {
        // SAFETY: `va` came from v4v_shim_map_frames and the engine no longer
        // uses it (Env contract); vunmap knows the mapping's size.
        unsafe { ffi::v4v_shim_unmap_frames(va.as_ptr().cast()) }
    }

    fn unpin_frame(&self, frame: XenFrame) {
        // SAFETY: frame came from a successful v4v_shim_pin_frame, is no
        // longer mapped, and is consumed here: each pin is undone once.
        unsafe { ffi::v4v_shim_unpin_frame(frame.0.as_ptr()) }
    }

    fn raise_virq(&self, dom: DomId) {
        ffi::v4v_shim_raise_virq(dom)
    }
}

/// Make the engine (at boot, from an initcall): 0, or -ENOMEM.
#[unsafe(no_mangle)]
pub extern "C" fn v4v_rs_init() -> i32 {
    match ENGINE.try_call_once(|| Engine::try_new().ok_or(())) {
        Ok(_) => 0,
        Err(()) => -(crate::abi::errno::ENOMEM as i32),
    }
}

/// Hypercall `v4v_op`: `cmd` and its five arguments, as the guest passed
/// them (the shim has fetched the fifth from r9). Returns `>= 0`, `-errno`,
/// or the value of a continuation it made.
#[unsafe(no_mangle)]
pub extern "C" fn v4v_rs_op(cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
    match ENGINE.get() {
        Some(e) => e.hypercall(&XenEnv, cmd, a1, a2, a3, a4, a5),
        None => -(crate::abi::errno::ENOSYS as i64),
    }
}

/// Domain `domid` is being killed (`domain_kill`, once per domain) or soft
/// reset: from now on no operation finds it. Bounded; cannot fail.
#[unsafe(no_mangle)]
pub extern "C" fn v4v_rs_domain_detach(domid: u16) {
    if let Some(e) = ENGINE.get() {
        e.domain_detach(&XenEnv, domid)
    }
}

/// Go on releasing what domain `domid` had (after
/// [`v4v_rs_domain_detach`]): true when done, false when preempted (the
/// caller returns -ERESTART and is called again).
#[unsafe(no_mangle)]
pub extern "C" fn v4v_rs_domain_relinquish(domid: u16) -> bool {
    match ENGINE.get() {
        Some(e) => e.domain_relinquish(&XenEnv, domid).is_ok(),
        None => true,
    }
}

/// The V4V debug key: print every domain's rings and waiters.
#[unsafe(no_mangle)]
pub extern "C" fn v4v_rs_dump() {
    let Some(engine) = ENGINE.get() else {
        return;
    };
    let mut out = rt::Console::new();
    // Runs on whatever vCPU handles the key (often idle): the engine only
    // reads mapped ring frames through the Env here, never the current
    // domain's memory.
    if engine.dump(&XenEnv, &mut out).is_err() {
        out.flush();
        rt::print(b"V4V: dump failed\n");
    }
    out.flush();
}
