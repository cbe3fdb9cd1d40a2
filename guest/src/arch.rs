//! x86_64 entry: the ELF notes the domain builders read, the PV entry, the
//! hypercall page, the boot stack, and exception handlers that print a
//! register dump when the guest takes an exception.
//!
//! Xen starts a PV64 guest at `ENTRY` in ring 3 with paging on, event
//! upcalls masked, `rsi` = virtual address of `start_info` and `rsp` on a
//! small bootstrap stack. The entry switches to the guest's own stack and
//! calls [`crate::start`]. A PVH guest starts at `PHYS32_ENTRY` instead
//! (see `pvh.rs`), which reaches the same [`crate::start`].

use core::arch::global_asm;

use crate::xen::hypercall;
use crate::xen::vcpu::{TrapInfo, FLAT_KERNEL_CS};

/// Bytes of the guest's own stack.
pub const STACK_SIZE: usize = 64 * 1024;

// ELF notes (types from Xen's public elfnote.h; names are "Xen"). Numeric
// notes carry 8-byte values. LOADER "generic" plus XEN_VERSION "xen-3.0" is
// what both Xen's dom0 builder and libxl's loader accept for a non-Linux
// kernel.
global_asm!(
    r#"
    .macro v4v_xen_note_str type, text
        .pushsection .note.Xen, "a", @note
        .balign 4
        .long 4
        .long 5f - 4f
        .long \type
        .asciz "Xen"
        .balign 4
    4:  .asciz "\text"
    5:  .balign 4
        .popsection
    .endm

    .macro v4v_xen_note_quad type, value
        .pushsection .note.Xen, "a", @note
        .balign 4
        .long 4
        .long 8
        .long \type
        .asciz "Xen"
        .balign 4
        .quad \value
        .popsection
    .endm

    v4v_xen_note_str 6, "V4V-test-guest"
    v4v_xen_note_str 7, "0.1"
    v4v_xen_note_str 5, "xen-3.0"
    v4v_xen_note_str 8, "generic"
    v4v_xen_note_quad 3, VIRT_BASE
    v4v_xen_note_quad 4, 0
    v4v_xen_note_quad 2, v4v_hypercall_page
    v4v_xen_note_quad 1, _start
    v4v_xen_note_quad 18, __pvh_entry_phys
    "#,
    options(att_syntax)
);

// Entry point, stack, and the hypercall page Xen fills with one 32-byte
// stub per hypercall number.
global_asm!(
    r#"
    .pushsection .text.entry, "ax"
    .globl _start
    _start:
        lea v4v_stack_top(%rip), %rsp
        xor %ebp, %ebp
        mov %rsi, %rdi
        call {start}
        ud2
    .popsection

    .pushsection .text.hypercall_page, "ax"
    .balign 4096
    .globl v4v_hypercall_page
    v4v_hypercall_page:
        .fill 4096, 1, 0xcc
    .popsection

    .pushsection .bss.v4v_stack, "aw", @nobits
    .balign 4096
    v4v_stack_bottom:
        .skip {stack_size}
    .globl v4v_stack_top
    v4v_stack_top:
    .popsection
    "#,
    start = sym crate::start,
    stack_size = const STACK_SIZE,
    options(att_syntax)
);

// Exception stubs. For a PV64 guest Xen builds this frame on the kernel
// stack (lowest address first): rcx, r11, [error code], rip, cs, rflags,
// rsp, ss. Each stub pushes whether an error code is present and the
// vector; the common path saves the remaining registers and hands the frame
// to `trap_dump`. A PVH guest's IDT points at `v4v_pvh_trap_N`, which
// pushes r11 and rcx over the CPU's frame to make the PV one, then joins.
macro_rules! trap_stubs {
    ($( $vec:literal $err:literal ),* $(,)?) => {
        global_asm!(
            concat!(
                ".pushsection .text.v4v_traps, \"ax\"\n",
                $(
                    ".globl v4v_pvh_trap_", $vec, "\n",
                    "v4v_pvh_trap_", $vec, ":\n",
                    "  push %r11\n",
                    "  push %rcx\n",
                    ".globl v4v_trap_", $vec, "\n",
                    "v4v_trap_", $vec, ":\n",
                    "  push $", $err, "\n",
                    "  push $", $vec, "\n",
                    "  jmp v4v_trap_common\n",
                )*
                r#"
                v4v_trap_common:
                    push %rax
                    push %rbx
                    push %rdx
                    push %rsi
                    push %rdi
                    push %rbp
                    push %r8
                    push %r9
                    push %r10
                    push %r12
                    push %r13
                    push %r14
                    push %r15
                    mov %rsp, %rdi
                    and $-16, %rsp
                    call {dump}
                    ud2
                .popsection
                "#
            ),
            dump = sym trap_dump,
            options(att_syntax)
        );
    };
}

// (vector, 1 if the CPU pushes an error code)
trap_stubs!(
    0 0, 1 0, 3 0, 4 0, 5 0, 6 0, 7 0, 10 1, 11 1, 12 1, 13 1, 14 1, 16 0, 17 1, 19 0,
);

unsafe extern "C" {
    static v4v_trap_0: u8;
    static v4v_trap_1: u8;
    static v4v_trap_3: u8;
    static v4v_trap_4: u8;
    static v4v_trap_5: u8;
    static v4v_trap_6: u8;
    static v4v_trap_7: u8;
    static v4v_trap_10: u8;
    static v4v_trap_11: u8;
    static v4v_trap_12: u8;
    static v4v_trap_13: u8;
    static v4v_trap_14: u8;
    static v4v_trap_16: u8;
    static v4v_trap_17: u8;
    static v4v_trap_19: u8;
    static v4v_pvh_trap_0: u8;
    static v4v_pvh_trap_1: u8;
    static v4v_pvh_trap_3: u8;
    static v4v_pvh_trap_4: u8;
    static v4v_pvh_trap_5: u8;
    static v4v_pvh_trap_6: u8;
    static v4v_pvh_trap_7: u8;
    static v4v_pvh_trap_10: u8;
    static v4v_pvh_trap_11: u8;
    static v4v_pvh_trap_12: u8;
    static v4v_pvh_trap_13: u8;
    static v4v_pvh_trap_14: u8;
    static v4v_pvh_trap_16: u8;
    static v4v_pvh_trap_17: u8;
    static v4v_pvh_trap_19: u8;
}

/// Number of exception vectors the guest handles.
pub const NR_TRAPS: usize = 15;

/// The guest's exception handlers as `trap_info` entries, for
/// `set_trap_table` on the boot vCPU and for the `trap_ctxt` of vCPUs
/// started later (see `smp.rs`).
pub fn trap_entries() -> [TrapInfo; NR_TRAPS] {
    let handlers: [(u8, *const u8); NR_TRAPS] = [
        (0, &raw const v4v_trap_0),
        (1, &raw const v4v_trap_1),
        (3, &raw const v4v_trap_3),
        (4, &raw const v4v_trap_4),
        (5, &raw const v4v_trap_5),
        (6, &raw const v4v_trap_6),
        (7, &raw const v4v_trap_7),
        (10, &raw const v4v_trap_10),
        (11, &raw const v4v_trap_11),
        (12, &raw const v4v_trap_12),
        (13, &raw const v4v_trap_13),
        (14, &raw const v4v_trap_14),
        (16, &raw const v4v_trap_16),
        (17, &raw const v4v_trap_17),
        (19, &raw const v4v_trap_19),
    ];
    handlers.map(|(vector, addr)| TrapInfo {
        vector,
        // Privilege level 3 for #BP/#OF so `int3` reaches the handler.
        flags: if vector == 3 || vector == 4 { 3 } else { 0 },
        cs: FLAT_KERNEL_CS,
        address: addr as u64,
    })
}

/// The PVH entry points of the same handlers, as (vector, address), for
/// the IDT (see `pvh.rs`).
pub fn pvh_trap_handlers() -> impl Iterator<Item = (u8, u64)> {
    let pvh: [u64; NR_TRAPS] = [
        (&raw const v4v_pvh_trap_0) as u64,
        (&raw const v4v_pvh_trap_1) as u64,
        (&raw const v4v_pvh_trap_3) as u64,
        (&raw const v4v_pvh_trap_4) as u64,
        (&raw const v4v_pvh_trap_5) as u64,
        (&raw const v4v_pvh_trap_6) as u64,
        (&raw const v4v_pvh_trap_7) as u64,
        (&raw const v4v_pvh_trap_10) as u64,
        (&raw const v4v_pvh_trap_11) as u64,
        (&raw const v4v_pvh_trap_12) as u64,
        (&raw const v4v_pvh_trap_13) as u64,
        (&raw const v4v_pvh_trap_14) as u64,
        (&raw const v4v_pvh_trap_16) as u64,
        (&raw const v4v_pvh_trap_17) as u64,
        (&raw const v4v_pvh_trap_19) as u64,
    ];
    trap_entries()
        .into_iter()
        .zip(pvh)
        .map(|(t, addr)| (t.vector, addr))
}

const HYPERVISOR_SET_TRAP_TABLE: u32 = 0;

/// Installs the exception handlers (PV: `set_trap_table`; PVH: the IDT is
/// loaded at entry, and event upcalls are switched on here, once the
/// shared info page and the GS base they use are in place). Returns Xen's
/// result (0 on success).
pub fn install_trap_table() -> i64 {
    if crate::pvh::is_pvh() {
        return crate::pvh::enable_events();
    }
    let mut table = [TrapInfo::default(); NR_TRAPS + 1];
    table[..NR_TRAPS].copy_from_slice(&trap_entries());
    // The last entry stays all-zero: it ends the table.
    // SAFETY: set_trap_table reads the zero-terminated array, which lives
    // on this stack for the whole call.
    unsafe { hypercall::hypercall1(HYPERVISOR_SET_TRAP_TABLE, table.as_ptr() as u64) }
}

const VECTOR_NAMES: [&str; 20] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS",
    "#GP", "#PF", "RSV", "#MF", "#AC", "#MC", "#XM",
];

/// Prints the exception frame and crashes the domain.
///
/// `frame` points at the saved registers r15, r14, r13, r12, r10, r9, r8,
/// rbp, rdi, rsi, rdx, rbx, rax, then the vector, the error-code flag, and
/// Xen's frame: rcx, r11, [error code], rip, cs, rflags, rsp, ss.
extern "C" fn trap_dump(frame: *const u64) -> ! {
    const SAVED: [&str; 13] = [
        "r15", "r14", "r13", "r12", "r10", "r9", "r8", "rbp", "rdi", "rsi", "rdx", "rbx", "rax",
    ];
    const XEN: [&str; 8] = ["rcx", "r11", "error", "rip", "cs", "rflags", "rsp", "ss"];
    // SAFETY: the stub and the common path built at least 22 quadwords at
    // `frame` on the current stack (23 with an error code).
    let word = |i: usize| unsafe { frame.add(i).read() };
    let vector = word(13) as usize;
    let has_err = word(14) != 0;
    let mut regs = [0u64; 21];
    for (i, r) in regs.iter_mut().take(13).enumerate() {
        *r = word(i);
    }
    // rcx, r11
    regs[13] = word(15);
    regs[14] = word(16);
    let rest = if has_err { 17 } else { 16 };
    regs[15] = if has_err { word(17) } else { 0 };
    for i in 0..5 {
        regs[16 + i] = word(rest + 1 + i);
    }
    let name = VECTOR_NAMES.get(vector).copied().unwrap_or("?");
    if !crate::console::release_for_panic() {
        crate::xen::sched::shutdown(crate::xen::sched::Reason::Crash);
    }
    let cpu = crate::smp::cpu_id();
    crate::println!(
        "V4V guest: exception {} ({}) on vCPU {} -- register dump:",
        vector,
        name,
        cpu
    );
    for (n, v) in SAVED.iter().chain(XEN.iter()).zip(regs.iter()) {
        crate::println!("  {:>6} = {:#018x}", n, v);
    }
    if vector == 14 {
        let cr2 = if crate::pvh::is_pvh() {
            Some(crate::pvh::fault_address())
        } else {
            crate::xen::event::fault_address(cpu)
        };
        if let Some(cr2) = cr2 {
            crate::println!("  {:>6} = {:#018x}", "cr2", cr2);
        }
    }
    crate::println!("V4VT bail out! exception {} at {:#x}", name, regs[16]);
    crate::xen::sched::crash()
}
