//! PVH entry: everything that differs when the guest boots as a PVH
//! (HVM-container) domain instead of a PV one. The rest of the guest asks
//! [`is_pvh`] where the two kinds part (frame numbers, the window mappings,
//! the GS base, exceptions, secondary vCPUs) and otherwise runs unchanged.
//!
//! Xen (dom0 builder or libxl) starts a PVH guest at the physical address
//! in the `PHYS32_ENTRY` note: 32-bit protected mode, paging off, flat
//! segments, `ebx` = physical address of `hvm_start_info`, no stack. The
//! stub below builds page tables that map the low 4 GiB twice, identity
//! and at `VIRT_BASE` (so image address `va` is guest physical address
//! `va - VIRT_BASE`, the same formula that gives a PV guest its frame
//! numbers), enters long mode, and calls [`pvh_start`] on the guest's stack.
//! There the guest does for itself what the PV builder did for it: the
//! hypercall page (through the MSR Xen names in CPUID), the shared info
//! page (placed into its physmap), an IDT, and a `start_info` for the rest
//! of the guest, then enters the common [`crate::start`].

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::xen::start_info::{StartInfo, MAX_GUEST_CMDLINE};
use crate::xen::{hypercall, mm};

/// Selectors of the guest's own GDT (below).
const KERNEL_CS: u16 = 0x08;

/// The vector Xen raises for event channels (`HVM_PARAM_CALLBACK_IRQ`).
pub const UPCALL_VECTOR: u8 = 0xf3;

static PVH: AtomicBool = AtomicBool::new(false);

/// Whether this guest booted through the PVH entry.
pub fn is_pvh() -> bool {
    PVH.load(Ordering::Relaxed)
}

// The 32-bit entry and the long-mode trampolines. The `__pvh_*_phys`
// symbols are the physical addresses of the labels (see linker/guest.ld):
// until paging is on, the code runs at its load address.
global_asm!(
    r#"
    .pushsection .text.v4v_pvh, "ax"
    .code32
    .globl v4v_pvh_entry
    v4v_pvh_entry:
        cli
        cld
        mov %ebx, %esi
        /* 2048 page-directory entries of 2 MiB: the low 4 GiB. */
        mov $__pvh_pd_phys, %edi
        xor %ecx, %ecx
    1:  mov %ecx, %eax
        shl $21, %eax
        or $0x83, %eax              /* present, writable, 2 MiB */
        mov %eax, (%edi,%ecx,8)
        inc %ecx
        cmp $2048, %ecx
        jb 1b
        /* Identity: PML4[0] -> PDPT_lo, its 4 entries the 4 directories. */
        mov $__pvh_pdpt_lo_phys, %edi
        mov $(__pvh_pd_phys + 3), %eax
        mov %eax, (%edi)
        add $4096, %eax
        mov %eax, 8(%edi)
        add $4096, %eax
        mov %eax, 16(%edi)
        add $4096, %eax
        mov %eax, 24(%edi)
        /* VIRT_BASE: PML4[511] -> PDPT_hi, entries 510 and 511 the low 2 GiB. */
        mov $__pvh_pdpt_hi_phys, %edi
        mov $(__pvh_pd_phys + 3), %eax
        mov %eax, 4080(%edi)
        add $4096, %eax
        mov %eax, 4088(%edi)
        mov $__pvh_pml4_phys, %edi
        mov $(__pvh_pdpt_lo_phys + 3), %eax
        mov %eax, (%edi)
        mov $(__pvh_pdpt_hi_phys + 3), %eax
        mov %eax, 4088(%edi)
        mov %edi, %cr3
        mov %cr4, %eax
        or $0x20, %eax              /* PAE */
        mov %eax, %cr4
        mov $0xc0000080, %ecx       /* EFER: LME, NXE */
        rdmsr
        or $0x900, %eax
        wrmsr
        mov %cr0, %eax
        or $0x80010001, %eax        /* PG, WP, PE */
        mov %eax, %cr0
        lgdt __pvh_gdt_desc_phys
        ljmp $0x08, $__pvh_long_phys

    .code64
    .globl v4v_pvh_long
    v4v_pvh_long:
        mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %eax, %eax
        mov %eax, %fs
        mov %eax, %gs
        movabs $2f, %rax
        jmp *%rax
    2:  lea v4v_stack_top(%rip), %rsp
        xor %ebp, %ebp
        mov %esi, %edi              /* hvm_start_info, zero-extended */
        call {start}
        ud2

    /* A secondary vCPU: long mode on our page tables (Xen's 64-bit vCPU
       context), null selectors; rdi = vCPU number, rsi = its GS base. */
    .globl v4v_pvh_ap_entry
    v4v_pvh_ap_entry:
        lgdt v4v_gdt_desc(%rip)
        pushq $0x08
        lea 3f(%rip), %rax
        pushq %rax
        lretq
    3:  mov $0x10, %eax
        mov %eax, %ds
        mov %eax, %es
        mov %eax, %ss
        xor %ebp, %ebp
        call {ap}
        ud2

    /* Event channel upcall: clear this vCPU's evtchn_upcall_pending (the
       guest polls the pending bits itself) and count the upcall. */
    .globl v4v_pvh_upcall
    v4v_pvh_upcall:
        push %rax
        push %rcx
        mov %gs:0, %eax
        shl $6, %rax
        mov {shared}(%rip), %rcx
        test %rcx, %rcx
        jz 4f
        movb $0, (%rcx,%rax)
    4:  lock incq {upcalls}(%rip)
        pop %rcx
        pop %rax
        iretq

    /* A hypercall from 32-bit (compatibility) mode: rdi = physical address
       of the hypercall stub, rsi = top of a stack below 4 GiB (identity
       mapped), edx = first argument (ebx in the 32-bit convention). The
       result comes back sign-extended. Interrupts stay off throughout. */
    .globl v4v_pvh_call32
    v4v_pvh_call32:
        push %rbx
        push %rbp
        push %r12
        push %r13
        push %r14
        push %r15
        pushfq
        cli
        mov %rsp, v4v_pvh_saved_rsp(%rip)
        mov %rdi, %rbp
        mov %edx, %ebx
        mov %esi, %esp
        xor %ecx, %ecx
        xor %edx, %edx
        xor %esi, %esi
        xor %edi, %edi
        pushq $0x18
        pushq $__pvh_compat_phys
        lretq
    .code32
    .globl v4v_pvh_compat
    v4v_pvh_compat:
        call *%ebp
        ljmp $0x08, $__pvh_back_phys
    .code64
    .globl v4v_pvh_back
    v4v_pvh_back:
        movabs $6f, %rcx
        jmp *%rcx
    6:  mov v4v_pvh_saved_rsp(%rip), %rsp
        cltq
        popfq
        pop %r15
        pop %r14
        pop %r13
        pop %r12
        pop %rbp
        pop %rbx
        ret
    .popsection

    .pushsection .bss.v4v_pvh_saved_rsp, "aw", @nobits
    .balign 8
    v4v_pvh_saved_rsp: .quad 0
    .popsection

    .pushsection .data.v4v_gdt, "aw"
    .balign 16
    .globl v4v_gdt
    v4v_gdt:
        .quad 0
        .quad 0x00af9a000000ffff    /* 0x08: 64-bit code */
        .quad 0x00cf92000000ffff    /* 0x10: data */
        .quad 0x00cf9a000000ffff    /* 0x18: 32-bit code */
    v4v_gdt_end:
    .balign 8
    .globl v4v_gdt_desc
    v4v_gdt_desc:
        .word v4v_gdt_end - v4v_gdt - 1
        .quad __pvh_gdt_phys
    .popsection

    .pushsection .bss.v4v_pvh_pt, "aw", @nobits
    .balign 4096
    .globl v4v_pvh_pml4, v4v_pvh_pdpt_lo, v4v_pvh_pdpt_hi, v4v_pvh_pd
    v4v_pvh_pml4: .skip 4096
    v4v_pvh_pdpt_lo: .skip 4096
    v4v_pvh_pdpt_hi: .skip 4096
    v4v_pvh_pd: .skip 4 * 4096
    .popsection
    "#,
    start = sym pvh_start,
    ap = sym ap_start,
    shared = sym crate::xen::event::SHARED_INFO,
    upcalls = sym UPCALLS,
    options(att_syntax)
);

unsafe extern "C" {
    fn v4v_pvh_call32(stub_pa: u64, stack_pa: u64, arg1: u64) -> i64;
    static v4v_pvh_pml4: u8;
    static v4v_pvh_ap_entry: u8;
    static v4v_pvh_upcall: u8;
    static v4v_gdt_desc: u8;
}

/// Event upcalls taken (all vCPUs).
static UPCALLS: AtomicU64 = AtomicU64::new(0);

/// How many event channel upcalls the callback vector delivered so far.
pub fn upcalls() -> u64 {
    UPCALLS.load(Ordering::Relaxed)
}

/// `struct hvm_start_info` (public `arch-x86/hvm/start_info.h`), version 0
/// part.
#[repr(C)]
struct HvmStartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
}

const HVM_START_MAGIC: u32 = 0x336e_c578;

/// The `start_info` the rest of the guest reads, made from PVH's.
static mut START_INFO: StartInfo = StartInfo {
    magic: [0; 32],
    nr_pages: 0,
    shared_info: 0,
    flags: 0,
    store_mfn: 0,
    store_evtchn: 0,
    console_mfn: 0,
    console_evtchn: 0,
    pt_base: 0,
    nr_pt_frames: 0,
    mfn_list: 0,
    mod_start: 0,
    mod_len: 0,
    cmd_line: [0; MAX_GUEST_CMDLINE],
    first_p2m_pfn: 0,
    nr_p2m_frames: 0,
};

/// A physical address below 4 GiB as a pointer (the identity map).
fn phys<T>(pa: u64) -> *const T {
    pa as *const T
}

/// Rust side of the PVH entry, on the boot stack in long mode.
extern "C" fn pvh_start(info_pa: u64) -> ! {
    PVH.store(true, Ordering::Relaxed);
    install_idt();
    // Without hypercalls there is no console: not running on Xen, the
    // guest can only stop (halting with interrupts off takes an HVM vCPU
    // down, and the domain with its last vCPU).
    if init_hypercall_page().is_err() {
        loop {
            // SAFETY: stops this vCPU; nothing else runs.
            unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
        }
    }
    // SAFETY: Xen passed the physical address of hvm_start_info, which the
    // identity map covers; it is read once, here.
    let info = unsafe { phys::<HvmStartInfo>(info_pa).read_volatile() };
    let si = &raw mut START_INFO;
    // SAFETY: single-threaded boot; no other reference to START_INFO
    // exists until `crate::start` publishes it read-only.
    let si = unsafe { &mut *si };
    let magic = b"xen-3.0-x86_64-pvh";
    si.magic[..magic.len()].copy_from_slice(magic);
    if info.magic == HVM_START_MAGIC {
        // SIF_PRIVILEGED and SIF_INITDOMAIN have the same bits as in PV.
        si.flags = info.flags & 3;
        copy_cmdline(info.cmdline_paddr, &mut si.cmd_line);
    }
    si.nr_pages = current_reservation();
    si.pt_base = (&raw const v4v_pvh_pml4) as u64;
    si.shared_info = map_shared_info().unwrap_or(0);
    if si.flags & 2 == 0 {
        // A domU's console ring and xenstore, from its HVM parameters.
        si.console_mfn = get_param(PARAM_CONSOLE_PFN).unwrap_or(0);
        si.console_evtchn = get_param(PARAM_CONSOLE_EVTCHN).unwrap_or(0) as u32;
        si.store_mfn = get_param(PARAM_STORE_PFN).unwrap_or(0);
        si.store_evtchn = get_param(PARAM_STORE_EVTCHN).unwrap_or(0) as u32;
    }
    crate::start(&raw const START_INFO)
}

fn copy_cmdline(pa: u64, out: &mut [u8; MAX_GUEST_CMDLINE]) {
    if pa == 0 || pa >= 1 << 32 {
        return;
    }
    let src = phys::<u8>(pa);
    for (i, b) in out.iter_mut().take(MAX_GUEST_CMDLINE - 1).enumerate() {
        // SAFETY: the command line is NUL-terminated guest memory below
        // 4 GiB (identity-mapped); reading stops at its NUL.
        let c = unsafe { src.add(i).read_volatile() };
        if c == 0 {
            break;
        }
        *b = c;
    }
}

fn cpuid(leaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid(leaf);
    (r.eax, r.ebx, r.ecx, r.edx)
}

/// # Safety
/// Writing an MSR changes CPU state; the caller knows this one's meaning.
unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: forwarded to the caller.
    unsafe {
        asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32,
             options(nostack, preserves_flags));
    }
}

/// Asks Xen to fill the hypercall page: the MSR named by the hypervisor's
/// CPUID leaf base + 2 takes the page's physical address.
fn init_hypercall_page() -> Result<(), ()> {
    let base = (0x4000_0000u32..0x4001_0000)
        .step_by(0x100)
        .find(|&leaf| {
            let (_, b, c, d) = cpuid(leaf);
            (b, c, d) == (0x566e_6558, 0x65584d4d, 0x4d4d566e) // "XenVMMXenVMM"
        })
        .ok_or(())?;
    let (_, msr, _, _) = cpuid(base + 2);
    let pa = hypercall::page_address() - mm::VIRT_BASE;
    // SAFETY: Xen's hypercall-page MSR; the page is ours, reserved for this.
    unsafe { wrmsr(msr, pa) };
    Ok(())
}

const HVM_OP: u32 = 34;
const XENMEM_CURRENT_RESERVATION: u64 = 3;
const HVMOP_SET_PARAM: u64 = 0;
const HVMOP_GET_PARAM: u64 = 1;
const PARAM_CALLBACK_IRQ: u32 = 0;
const PARAM_STORE_PFN: u32 = 1;
const PARAM_STORE_EVTCHN: u32 = 2;
const PARAM_CONSOLE_PFN: u32 = 17;
const PARAM_CONSOLE_EVTCHN: u32 = 18;

fn current_reservation() -> u64 {
    let domid = mm::DOMID_SELF;
    // SAFETY: reads the domid_t on this stack.
    let rc = unsafe {
        hypercall::hypercall2(
            crate::xen::nr::MEMORY_OP,
            XENMEM_CURRENT_RESERVATION,
            &raw const domid as u64,
        )
    };
    rc.max(0) as u64
}

/// Places the shared info page at the frame of the window's shared-info
/// slot (the RAM page there goes back to Xen). Returns its guest physical
/// address.
fn map_shared_info() -> Result<u64, i64> {
    let gfn = mm::window_frame(mm::SLOT_SHARED_INFO).ok_or(-22i64)?;
    match mm::add_to_physmap(mm::XENMAPSPACE_SHARED_INFO, 0, gfn) {
        0 => Ok(gfn << 12),
        rc => Err(rc),
    }
}

#[repr(C)]
struct HvmParam {
    domid: u16,
    index: u32,
    value: u64,
}

fn hvm_param(op: u64, index: u32, value: u64) -> Result<u64, i64> {
    let mut p = HvmParam {
        domid: mm::DOMID_SELF,
        index,
        value,
    };
    // SAFETY: Xen reads and writes the structure on this stack.
    match unsafe { hypercall::hypercall2(HVM_OP, op, &raw mut p as u64) } {
        0 => Ok(p.value),
        rc => Err(rc),
    }
}

fn get_param(index: u32) -> Result<u64, i64> {
    hvm_param(HVMOP_GET_PARAM, index, 0)
}

/// Has Xen deliver event channel upcalls through [`UPCALL_VECTOR`] and
/// enables interrupts on this vCPU. Returns Xen's result.
pub fn enable_events() -> i64 {
    const CALLBACK_TYPE_VECTOR: u64 = 2;
    match hvm_param(
        HVMOP_SET_PARAM,
        PARAM_CALLBACK_IRQ,
        (CALLBACK_TYPE_VECTOR << 56) | UPCALL_VECTOR as u64,
    ) {
        Ok(_) => {
            // SAFETY: the IDT is loaded and the upcall handler saves what
            // it uses.
            unsafe { asm!("sti", options(nomem, nostack)) };
            0
        }
        Err(rc) => rc,
    }
}

/// An IDT gate (64-bit interrupt gate).
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_lo: u16,
    selector: u16,
    ist: u8,
    attr: u8,
    offset_mid: u16,
    offset_hi: u32,
    _reserved: u32,
}

impl Gate {
    const EMPTY: Gate = Gate {
        offset_lo: 0,
        selector: 0,
        ist: 0,
        attr: 0,
        offset_mid: 0,
        offset_hi: 0,
        _reserved: 0,
    };

    fn new(handler: u64) -> Gate {
        Gate {
            offset_lo: handler as u16,
            selector: KERNEL_CS,
            ist: 0,
            attr: 0x8e, // present, DPL 0, interrupt gate
            offset_mid: (handler >> 16) as u16,
            offset_hi: (handler >> 32) as u32,
            _reserved: 0,
        }
    }
}

static mut IDT: [Gate; 256] = [Gate::EMPTY; 256];
static IDT_READY: AtomicBool = AtomicBool::new(false);

/// Fills the IDT (once) and loads it on this vCPU.
fn install_idt() {
    if !IDT_READY.load(Ordering::Acquire) {
        let idt = &raw mut IDT;
        // SAFETY: only the boot vCPU gets here before IDT_READY is set;
        // this is the only reference ever made into the IDT.
        let idt = unsafe { &mut *idt };
        for (vector, handler) in crate::arch::pvh_trap_handlers() {
            idt[vector as usize] = Gate::new(handler);
        }
        idt[UPCALL_VECTOR as usize] = Gate::new((&raw const v4v_pvh_upcall) as u64);
        IDT_READY.store(true, Ordering::Release);
    }
    #[repr(C, packed)]
    struct Idtr {
        limit: u16,
        base: u64,
    }
    let idtr = Idtr {
        limit: (core::mem::size_of::<[Gate; 256]>() - 1) as u16,
        base: (&raw const IDT) as u64,
    };
    // SAFETY: the IDT is a static that lives forever, filled above.
    unsafe { asm!("lidt [{}]", in(reg) &raw const idtr, options(readonly, nostack)) };
}

/// The faulting address of the last page fault on this vCPU.
pub fn fault_address() -> u64 {
    let cr2: u64;
    // SAFETY: reading CR2 has no side effect.
    unsafe { asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) };
    cr2
}

/// Sets this vCPU's GS base (the per-vCPU block; see `smp.rs`).
pub fn set_gs_base(base: u64) -> i64 {
    // SAFETY: IA32_GS_BASE; the guest keeps its per-vCPU data at GS.
    unsafe { wrmsr(0xc000_0101, base) };
    0
}

/// `struct vcpu_hvm_context` in 64-bit mode.
#[repr(C)]
struct VcpuHvmContext {
    mode: u32,
    pad: u32,
    rax: u64,
    rcx: u64,
    rdx: u64,
    rbx: u64,
    rsp: u64,
    rbp: u64,
    rsi: u64,
    rdi: u64,
    rip: u64,
    rflags: u64,
    cr0: u64,
    cr3: u64,
    cr4: u64,
    efer: u64,
}

const VCPUOP_INITIALISE: u64 = 0;
const VCPU_OP: u32 = 24;

/// Loads vCPU `cpu`'s first context (long mode on the boot vCPU's page
/// tables, at the secondary trampoline with `rsp`, and GS base `gs`); the
/// vCPU stays down. Returns Xen's result.
pub fn initialise_vcpu(cpu: u32, rsp: u64, gs: u64) -> i64 {
    let cr3: u64;
    // SAFETY: reading CR3 has no side effect.
    unsafe { asm!("mov {}, cr3", out(reg) cr3, options(nomem, nostack)) };
    let ctx = VcpuHvmContext {
        mode: 1, // VCPU_HVM_MODE_64B
        pad: 0,
        rax: 0,
        rcx: 0,
        rdx: 0,
        rbx: 0,
        rsp,
        rbp: 0,
        rsi: gs,
        rdi: cpu as u64,
        rip: (&raw const v4v_pvh_ap_entry) as u64,
        rflags: 2,
        cr0: 0x8001_0011, // PG, WP, ET, PE
        cr3,
        cr4: 0x20,   // PAE
        efer: 0x900, // LME, NXE (Xen adds LMA)
    };
    // SAFETY: Xen reads the context on this stack; rip, rsp and cr3 are
    // the trampoline, a stack the vCPU owns and the shared page tables.
    unsafe {
        hypercall::hypercall3(
            VCPU_OP,
            VCPUOP_INITIALISE,
            cpu as u64,
            &raw const ctx as u64,
        )
    }
}

/// Rust side of a secondary vCPU's start: IDT, GS base, events, then the
/// common secondary loop.
extern "C" fn ap_start(cpu: u32, gs: u64) -> ! {
    // The GDT was loaded by the trampoline (v4v_gdt_desc).
    let _ = &raw const v4v_gdt_desc;
    install_idt();
    set_gs_base(gs);
    // SAFETY: the IDT is loaded and the upcall handler saves what it uses.
    unsafe { asm!("sti", options(nomem, nostack)) };
    crate::smp::secondary_main(cpu)
}

/// A page of stack below 4 GiB for [`hypercall32`].
#[repr(C, align(16))]
struct CompatStack([u8; 4096]);
static mut COMPAT_STACK: CompatStack = CompatStack([0; 4096]);
static COMPAT_BUSY: AtomicBool = AtomicBool::new(false);

/// Issues hypercall `nr` with one argument from 32-bit compatibility mode
/// (a 32-bit code segment while in long mode): how a 32-bit PVH guest
/// calls Xen, whose HVM dispatcher then uses its 32-bit table. `None`
/// unless this is a PVH guest and no other vCPU is in such a call.
pub fn hypercall32(nr: u32, arg1: u32) -> Option<i64> {
    if !is_pvh() || COMPAT_BUSY.swap(true, Ordering::Acquire) {
        return None;
    }
    let stub = hypercall::page_address() + nr as u64 * 32 - mm::VIRT_BASE;
    let stack = (&raw mut COMPAT_STACK) as u64 + 4096 - mm::VIRT_BASE;
    // SAFETY: the stub and the stack are identity mapped (the image lies
    // below 4 GiB), the stack is ours alone (COMPAT_BUSY), and the
    // trampoline restores the 64-bit stack, callee-saved registers and
    // flags. Xen only reads the one integer argument.
    let rc = unsafe { v4v_pvh_call32(stub, stack, arg1 as u64) };
    COMPAT_BUSY.store(false, Ordering::Release);
    Some(rc)
}
