//! Hypercalls through the hypercall page.
//!
//! Xen writes a 32-byte stub per hypercall number into the page the
//! `HYPERCALL_PAGE` ELF note names. Arguments go in rdi, rsi, rdx, r10, r8,
//! r9; the result comes back in rax. Every argument register is declared
//! clobbered, since a debug hypervisor scribbles over the ones a call does
//! not use.

use core::arch::asm;

unsafe extern "C" {
    /// Filled by Xen at domain build (see `arch.rs`).
    static v4v_hypercall_page: [u8; 4096];
}

/// Virtual address of the hypercall page (a PVH guest hands Xen its
/// physical address to fill it).
pub fn page_address() -> u64 {
    (&raw const v4v_hypercall_page) as u64
}

fn stub(nr: u32) -> usize {
    debug_assert!(nr < 128);
    (&raw const v4v_hypercall_page) as usize + nr as usize * 32
}

/// Issues hypercall `nr` with one argument.
///
/// # Safety
/// The caller guarantees that any pointer argument is valid for what the
/// hypercall does with it.
pub unsafe fn hypercall1(nr: u32, a1: u64) -> i64 {
    // SAFETY: forwarded to the caller's contract.
    unsafe { hypercall6(nr, a1, 0, 0, 0, 0, 0) }
}

/// Issues hypercall `nr` with two arguments.
///
/// # Safety
/// As for [`hypercall1`].
pub unsafe fn hypercall2(nr: u32, a1: u64, a2: u64) -> i64 {
    // SAFETY: forwarded to the caller's contract.
    unsafe { hypercall6(nr, a1, a2, 0, 0, 0, 0) }
}

/// Issues hypercall `nr` with three arguments.
///
/// # Safety
/// As for [`hypercall1`].
pub unsafe fn hypercall3(nr: u32, a1: u64, a2: u64, a3: u64) -> i64 {
    // SAFETY: forwarded to the caller's contract.
    unsafe { hypercall6(nr, a1, a2, a3, 0, 0, 0) }
}

/// Issues hypercall `nr` with all six argument registers set.
///
/// # Safety
/// As for [`hypercall1`].
pub unsafe fn hypercall6(nr: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64, a6: u64) -> i64 {
    let ret: i64;
    // SAFETY: the stub is Xen's hypercall trampoline (push rcx/r11, mov
    // eax, syscall, pop, ret); it uses a few bytes of the current stack,
    // which has no red zone on this target. Memory is not marked
    // untouched: Xen may write through pointer arguments.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) stub(nr),
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            inlateout("r10") a4 => _,
            inlateout("r8") a5 => _,
            inlateout("r9") a6 => _,
            lateout("rax") ret,
            lateout("rcx") _,
            lateout("r11") _,
        );
    }
    ret
}
