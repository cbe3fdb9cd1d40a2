//! More than one vCPU: starting secondary vCPUs, per-vCPU identity, and
//! waiting for the work they were given.
//!
//! **vCPU id.** Each vCPU's kernel GS base points at its [`PerCpu`] slot,
//! whose first field is the vCPU number, so [`cpu_id`] is one
//! `mov %gs:0`. The boot vCPU sets its GS base in [`init`] with
//! `set_segment_base(SEGBASE_GS_KERNEL)`; a started vCPU gets it from
//! `gs_base_kernel` in its initial context. Xen saves and restores the
//! base across its context switches. Until [`init`] has run only vCPU 0
//! exists and `cpu_id` answers 0 without touching GS.
//!
//! **Life of a secondary vCPU.** [`start`] hands it a function. The first
//! time, the vCPU is loaded with `VCPUOP_initialise` (same page table and
//! trap table as the boot vCPU, a fresh 64 KiB stack from the heap, upcalls
//! masked in its `vcpu_info`) and released with `VCPUOP_up`. It runs the
//! function on [`secondary_main`], marks it finished, and takes itself
//! down with `VCPUOP_down`. A later [`start`] stores the next function and
//! issues `VCPUOP_up` again: the vCPU resumes after its `VCPUOP_down` and
//! loops to the new function (Xen refuses a second `VCPUOP_initialise`
//! with -EEXIST). A down vCPU costs the host nothing, unlike one that
//! loops in SCHEDOP_yield.
//!
//! Event channels stay bound to vCPU 0; secondary vCPUs never handle
//! events (their upcalls are masked and nothing is bound to them).

use core::alloc::Layout;
use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, Ordering};

use crate::xen::{event, mm, sched, start_info, vcpu};

/// vCPUs this guest can drive (ids 0..MAX_CPUS).
pub const MAX_CPUS: usize = 4;

/// Stack of a secondary vCPU (same as the boot stack).
const STACK_SIZE: usize = crate::arch::STACK_SIZE;

/// Highest vCPU id [`nr_vcpus`] probes.
const PROBE_LIMIT: u32 = 128;

const EINVAL: i64 = -22;
const EBUSY: i64 = -16;
const ENOMEM: i64 = -12;

/// rflags a vCPU starts with: IF (Xen forces it on anyway for a PV guest,
/// and takes IOPL from here as the virtual IOPL: 0) and the always-one bit.
const START_RFLAGS: u64 = (1 << 9) | (1 << 1);

/// One vCPU's slot; the kernel GS base of that vCPU points here.
#[repr(C)]
struct PerCpu {
    /// Must stay first: [`cpu_id`] reads it at `%gs:0`.
    id: u32,
    /// `VCPUOP_initialise` succeeded; later starts only need `VCPUOP_up`.
    initialised: AtomicBool,
    /// The function given to the vCPU has returned (true while idle).
    finished: AtomicBool,
    /// What the vCPU runs next.
    entry: spin::Mutex<Option<fn()>>,
}

static PERCPU: [PerCpu; MAX_CPUS] = {
    let mut slots = [const {
        PerCpu {
            id: 0,
            initialised: AtomicBool::new(false),
            finished: AtomicBool::new(true),
            entry: spin::Mutex::new(None),
        }
    }; MAX_CPUS];
    let mut i = 0;
    while i < MAX_CPUS {
        slots[i].id = i as u32;
        i += 1;
    }
    slots
};

/// The boot vCPU's GS base is set: `%gs:0` is valid on every vCPU.
static GS_READY: AtomicBool = AtomicBool::new(false);

/// Serialises [`start`] callers.
static START_LOCK: spin::Mutex<()> = spin::Mutex::new(());

/// Points the boot vCPU's GS base at its slot. Called once, first thing
/// at boot. Returns Xen's result (0 on success).
pub fn init() -> i64 {
    let base = &raw const PERCPU[0] as u64;
    // SAFETY: `base` is vCPU 0's PerCpu slot, a static whose first field
    // is the id `cpu_id` reads.
    let rc = if crate::pvh::is_pvh() {
        crate::pvh::set_gs_base(base)
    } else {
        unsafe { vcpu::set_gs_base_kernel(base) }
    };
    if rc == 0 {
        GS_READY.store(true, Ordering::Release);
    }
    rc
}

/// The number of the vCPU this runs on.
pub fn cpu_id() -> u32 {
    if !GS_READY.load(Ordering::Acquire) {
        // Before `init` only the boot vCPU runs.
        return 0;
    }
    let id: u32;
    // SAFETY: every vCPU's kernel GS base points at its PerCpu slot (set
    // in `init` or in the vCPU's initial context), whose first field is
    // the id; the read has no other effect.
    unsafe {
        asm!("mov {0:e}, dword ptr gs:[0]", out(reg) id, options(nostack, readonly, preserves_flags));
    }
    id
}

/// How many vCPUs the domain has (up or down): `VCPUOP_is_up` answers
/// -ENOENT past the last one.
pub fn nr_vcpus() -> u32 {
    (0..PROBE_LIMIT)
        .find(|&cpu| vcpu::is_up(cpu) < 0)
        .unwrap_or(PROBE_LIMIT)
}

/// Runs `entry` on vCPU `cpu` (not the calling one); returns at once.
/// The vCPU runs with event upcalls masked and goes down when `entry`
/// returns; [`join`] waits for that. Errors: -EINVAL for a bad id or the
/// caller's own vCPU, -EBUSY while the previous function still runs,
/// -ENOMEM without heap for its stack, or Xen's answer to
/// `VCPUOP_initialise` / `VCPUOP_up` (-ENOENT: no such vCPU).
pub fn start(cpu: u32, entry: fn()) -> Result<(), i64> {
    if cpu as usize >= MAX_CPUS || cpu == cpu_id() || !GS_READY.load(Ordering::Acquire) {
        return Err(EINVAL);
    }
    let _serial = START_LOCK.lock();
    let slot = &PERCPU[cpu as usize];
    if !slot.finished.load(Ordering::Acquire) {
        return Err(EBUSY);
    }
    if slot.initialised.load(Ordering::Acquire) {
        // It set `finished` just before VCPUOP_down: an up that came
        // before that down would be lost, so wait until it is down.
        while vcpu::is_up(cpu) > 0 {
            sched::yield_now();
        }
    }
    *slot.entry.lock() = Some(entry);
    slot.finished.store(false, Ordering::Release);
    let rc = if slot.initialised.load(Ordering::Acquire) {
        0
    } else {
        first_initialise(cpu)
    };
    let rc = if rc == 0 { vcpu::up(cpu) } else { rc };
    if rc != 0 {
        *slot.entry.lock() = None;
        slot.finished.store(true, Ordering::Release);
        return Err(rc);
    }
    Ok(())
}

/// Whether vCPU `cpu`'s last function has returned (true if it never
/// ran one).
pub fn finished(cpu: u32) -> bool {
    PERCPU
        .get(cpu as usize)
        .is_none_or(|s| s.finished.load(Ordering::Acquire))
}

/// Waits (yielding) until vCPU `cpu`'s last function has returned.
pub fn join(cpu: u32) {
    while !finished(cpu) {
        sched::yield_now();
    }
}

/// As [`join`], giving up after `max_yields` yields; true if finished.
pub fn join_for(cpu: u32, max_yields: u64) -> bool {
    for _ in 0..max_yields {
        if finished(cpu) {
            return true;
        }
        sched::yield_now();
    }
    finished(cpu)
}

/// Builds vCPU `cpu`'s first context and loads it with
/// `VCPUOP_initialise` (the vCPU stays down). Returns Xen's result.
fn first_initialise(cpu: u32) -> i64 {
    let layout = Layout::from_size_align(STACK_SIZE, 4096).expect("stack layout");
    // SAFETY: the layout has a non-zero size.
    let stack = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if stack.is_null() {
        return ENOMEM;
    }
    // The stack is never freed: the vCPU keeps running on it after each
    // down/up. Its top is 16-byte aligned, as the trampoline needs.
    let top = stack as u64 + STACK_SIZE as u64;
    let gs = &raw const PERCPU[cpu as usize] as u64;
    let rc = if crate::pvh::is_pvh() {
        crate::pvh::initialise_vcpu(cpu, top, gs)
    } else {
        pv_initialise(cpu, top, gs)
    };
    if rc == 0 {
        PERCPU[cpu as usize]
            .initialised
            .store(true, Ordering::Release);
    } else {
        // SAFETY: allocated above with this layout; Xen refused the
        // context, so no vCPU uses the stack.
        unsafe { alloc::alloc::dealloc(stack, layout) };
    }
    rc
}

/// A PV vCPU's first context: at the trampoline below on stack `top`, the
/// boot vCPU's page tables and trap handlers, GS base `gs`.
fn pv_initialise(cpu: u32, top: u64, gs: u64) -> i64 {
    let si = start_info::get();
    let Some(l4_mfn) = mm::bootstrap_mfn(si.pt_base) else {
        return EINVAL;
    };
    if !event::mask_upcalls(cpu) {
        return EINVAL;
    }
    let mut ctx = alloc::boxed::Box::new(vcpu::VcpuGuestContext::zeroed());
    ctx.flags = vcpu::VGCF_IN_KERNEL;
    let r = &mut ctx.user_regs;
    r.rip = (&raw const v4v_smp_entry) as u64;
    r.rsp = top;
    r.rdi = cpu as u64;
    r.cs = vcpu::FLAT_KERNEL_CS;
    r.ss = vcpu::FLAT_KERNEL_SS;
    r.ds = vcpu::FLAT_KERNEL_DS;
    r.es = vcpu::FLAT_KERNEL_DS;
    r.fs = vcpu::FLAT_KERNEL_DS;
    r.gs = vcpu::FLAT_KERNEL_DS;
    r.rflags = START_RFLAGS;
    for t in crate::arch::trap_entries() {
        ctx.trap_ctxt[t.vector as usize] = t;
    }
    ctx.kernel_ss = vcpu::FLAT_KERNEL_SS as u64;
    ctx.kernel_sp = top;
    ctx.ctrlreg[3] = vcpu::pfn_to_cr3(l4_mfn);
    ctx.gs_base_kernel = gs;
    // SAFETY: rip is the trampoline below, rsp a stack owned by this vCPU
    // for the rest of the domain's life, cr3 the page table every vCPU
    // shares (never replaced), the trap handlers are the boot vCPU's, and
    // GS points at the vCPU's static slot.
    unsafe { vcpu::initialise(cpu, &ctx) }
}

// A started vCPU begins here: rsp = top of its stack, rdi = its number.
global_asm!(
    r#"
    .pushsection .text.v4v_smp, "ax"
    .globl v4v_smp_entry
    v4v_smp_entry:
        xor %ebp, %ebp
        call {main}
        ud2
    .popsection
    "#,
    main = sym secondary_main,
    options(att_syntax)
);

unsafe extern "C" {
    static v4v_smp_entry: u8;
}

/// The secondary vCPU's loop: run the given function, report it finished,
/// go down until the next [`start`].
pub(crate) extern "C" fn secondary_main(cpu: u32) -> ! {
    let slot = &PERCPU[cpu as usize];
    loop {
        let entry = slot.entry.lock().take();
        if let Some(f) = entry {
            f();
        }
        slot.finished.store(true, Ordering::Release);
        vcpu::down(cpu);
    }
}
