//! `vcpu_op` (bringing vCPUs up and down), `set_segment_base`, and the
//! x86_64 PV `struct vcpu_guest_context` that `VCPUOP_initialise` takes.
//!
//! Layouts from Xen's public `arch-x86/xen.h` and `arch-x86/xen-x86_64.h`;
//! the sizes and offsets asserted below were measured with gcc on those
//! headers (`sizeof(struct vcpu_guest_context)` is 5168).

use super::hypercall;

const HYPERVISOR_SET_SEGMENT_BASE: u32 = 25;
const HYPERVISOR_VCPU_OP: u32 = 24;

const VCPUOP_INITIALISE: u64 = 0;
const VCPUOP_UP: u64 = 1;
const VCPUOP_DOWN: u64 = 2;
const VCPUOP_IS_UP: u64 = 3;

const SEGBASE_GS_KERNEL: u64 = 2;

/// `vcpu_guest_context.flags`: the vCPU starts in guest kernel mode.
pub const VGCF_IN_KERNEL: u64 = 1 << 2;

/// Kernel code selector of a 64-bit PV guest (FLAT_KERNEL_CS64).
pub const FLAT_KERNEL_CS: u16 = 0xe033;
/// Kernel stack and data selector (FLAT_KERNEL_SS64 = FLAT_KERNEL_DS64).
pub const FLAT_KERNEL_SS: u16 = 0xe02b;
/// The data selector Xen's dom0 builder loads into ds/es/fs/gs.
pub const FLAT_KERNEL_DS: u16 = 0xe02b;

/// `struct trap_info`: one virtual IDT entry.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct TrapInfo {
    pub vector: u8,
    /// Bits 0-1: the privilege level that may raise it with `int`.
    pub flags: u8,
    pub cs: u16,
    pub address: u64,
}

/// `struct cpu_user_regs` (x86_64).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct CpuUserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub error_code: u32,
    pub entry_vector: u32,
    pub rip: u64,
    pub cs: u16,
    pub _pad0: u16,
    pub saved_upcall_mask: u8,
    pub _pad1: [u8; 3],
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u16,
    pub _pad2: [u16; 3],
    pub es: u16,
    pub _pad3: [u16; 3],
    pub ds: u16,
    pub _pad4: [u16; 3],
    pub fs: u16,
    pub _pad5: [u16; 3],
    pub gs: u16,
    pub _pad6: [u16; 3],
}

/// `struct vcpu_guest_context` (x86_64, as a guest sees it).
#[repr(C)]
pub struct VcpuGuestContext {
    pub fpu_ctxt: [u8; 512],
    pub flags: u64,
    pub user_regs: CpuUserRegs,
    /// Indexed by vector.
    pub trap_ctxt: [TrapInfo; 256],
    pub ldt_base: u64,
    pub ldt_ents: u64,
    pub gdt_frames: [u64; 16],
    pub gdt_ents: u64,
    pub kernel_ss: u64,
    pub kernel_sp: u64,
    /// ctrlreg[3]: `xen_pfn_to_cr3(mfn)` of the top-level page table;
    /// ctrlreg[1]: the user one (0: none, allowed in kernel mode).
    pub ctrlreg: [u64; 8],
    pub debugreg: [u64; 8],
    pub event_callback_eip: u64,
    pub failsafe_callback_eip: u64,
    pub syscall_callback_eip: u64,
    pub vm_assist: u64,
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
}

const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<TrapInfo>() == 16);
    assert!(size_of::<CpuUserRegs>() == 200);
    assert!(offset_of!(CpuUserRegs, rip) == 128);
    assert!(offset_of!(CpuUserRegs, rflags) == 144);
    assert!(offset_of!(CpuUserRegs, gs) == 192);
    assert!(offset_of!(VcpuGuestContext, flags) == 512);
    assert!(offset_of!(VcpuGuestContext, user_regs) == 520);
    assert!(offset_of!(VcpuGuestContext, trap_ctxt) == 720);
    assert!(offset_of!(VcpuGuestContext, ldt_base) == 4816);
    assert!(offset_of!(VcpuGuestContext, gdt_frames) == 4832);
    assert!(offset_of!(VcpuGuestContext, gdt_ents) == 4960);
    assert!(offset_of!(VcpuGuestContext, kernel_ss) == 4968);
    assert!(offset_of!(VcpuGuestContext, ctrlreg) == 4984);
    assert!(offset_of!(VcpuGuestContext, event_callback_eip) == 5112);
    assert!(offset_of!(VcpuGuestContext, vm_assist) == 5136);
    assert!(offset_of!(VcpuGuestContext, gs_base_kernel) == 5152);
    assert!(size_of::<VcpuGuestContext>() == 5168);
};

impl VcpuGuestContext {
    /// An all-zero context.
    pub fn zeroed() -> VcpuGuestContext {
        VcpuGuestContext {
            fpu_ctxt: [0; 512],
            flags: 0,
            user_regs: CpuUserRegs::default(),
            trap_ctxt: [TrapInfo::default(); 256],
            ldt_base: 0,
            ldt_ents: 0,
            gdt_frames: [0; 16],
            gdt_ents: 0,
            kernel_ss: 0,
            kernel_sp: 0,
            ctrlreg: [0; 8],
            debugreg: [0; 8],
            event_callback_eip: 0,
            failsafe_callback_eip: 0,
            syscall_callback_eip: 0,
            vm_assist: 0,
            fs_base: 0,
            gs_base_kernel: 0,
            gs_base_user: 0,
        }
    }
}

/// `xen_pfn_to_cr3` for x86_64.
pub fn pfn_to_cr3(mfn: u64) -> u64 {
    mfn << 12
}

fn vcpu_op(cmd: u64, cpu: u32, arg: u64) -> i64 {
    // SAFETY: the callers pass either no argument (0) or, for
    // VCPUOP_initialise, a live context that Xen only reads.
    unsafe { hypercall::hypercall3(HYPERVISOR_VCPU_OP, cmd, cpu as u64, arg) }
}

/// `VCPUOP_initialise`: loads `ctx` into vCPU `cpu`, which stays down.
/// Xen answers -EEXIST for a vCPU that was initialised before.
///
/// # Safety
/// `ctx` must describe a state the guest can run from: its rip, rsp,
/// page table, trap table and GS base stay valid for as long as the
/// vCPU runs.
pub unsafe fn initialise(cpu: u32, ctx: &VcpuGuestContext) -> i64 {
    vcpu_op(
        VCPUOP_INITIALISE,
        cpu,
        ctx as *const VcpuGuestContext as u64,
    )
}

/// `VCPUOP_up`: lets an initialised vCPU run (from where it stopped).
pub fn up(cpu: u32) -> i64 {
    vcpu_op(VCPUOP_UP, cpu, 0)
}

/// `VCPUOP_down`: stops vCPU `cpu` (on itself: the call returns when
/// another vCPU brings it up again).
pub fn down(cpu: u32) -> i64 {
    vcpu_op(VCPUOP_DOWN, cpu, 0)
}

/// `VCPUOP_is_up`: 1 when running, 0 when down, -ENOENT past the last.
pub fn is_up(cpu: u32) -> i64 {
    vcpu_op(VCPUOP_IS_UP, cpu, 0)
}

/// `set_segment_base(SEGBASE_GS_KERNEL, base)`: the GS base this vCPU
/// uses in guest kernel mode.
///
/// # Safety
/// Code that reads through `%gs` (see `smp::cpu_id`) must find what it
/// expects at `base`.
pub unsafe fn set_gs_base_kernel(base: u64) -> i64 {
    // SAFETY: no pointer argument; the caller vouches for `base`.
    unsafe { hypercall::hypercall2(HYPERVISOR_SET_SEGMENT_BASE, SEGBASE_GS_KERNEL, base) }
}
