//! Frame numbers of the guest's own pages, and mapping machine frames
//! (shared info, console ring) into a reserved window.
//!
//! The domain builder maps the image from `VIRT_BASE` onwards, one guest
//! frame per page: pfn = (va - VIRT_BASE) >> 12, and `start_info.mfn_list`
//! gives the machine frame of each pfn (for a PV guest the frame numbers
//! V4V takes are these machine frames).

use super::{hypercall, nr, start_info};
use v4v_abi::PAGE_SIZE;

/// Virtual base of the image: guest frame = (va - VIRT_BASE) >> 12 (see
/// `linker/guest.ld` and the ELF notes; the image itself starts 2 MiB above).
pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;

const PTE_PRESENT: u64 = 1 << 0;
const PTE_RW: u64 = 1 << 1;
const PTE_USER: u64 = 1 << 2;
const PTE_ACCESSED: u64 = 1 << 5;
const PTE_DIRTY: u64 = 1 << 6;
const PTE_NX: u64 = 1 << 63;

const UVMF_INVLPG: u64 = 2;

unsafe extern "C" {
    static __image_end: u8;
}

/// Guest frame number of a virtual address inside the image (incl. heap).
pub fn pfn_of(va: u64) -> Option<u64> {
    let end = (&raw const __image_end) as u64;
    (VIRT_BASE..end)
        .contains(&va)
        .then(|| (va - VIRT_BASE) >> 12)
}

/// Machine frame behind a virtual address inside the image.
pub fn mfn_of(va: u64) -> Option<u64> {
    let pfn = pfn_of(va)?;
    let si = start_info::get();
    if pfn >= si.nr_pages {
        return None;
    }
    let list = si.mfn_list as *const u64;
    // SAFETY: the builder maps the p2m list (nr_pages entries) for the
    // guest; pfn < nr_pages.
    Some(unsafe { list.add(pfn as usize).read_volatile() })
}

/// Machine frame of a page the builder mapped for us at `va` inside the
/// bootstrap region (page tables, start info), which may lie past the
/// image.
pub fn bootstrap_mfn(va: u64) -> Option<u64> {
    let pfn = va.checked_sub(VIRT_BASE)? >> 12;
    let si = start_info::get();
    if pfn >= si.nr_pages {
        return None;
    }
    let list = si.mfn_list as *const u64;
    // SAFETY: as in `mfn_of`; pfn < nr_pages.
    Some(unsafe { list.add(pfn as usize).read_volatile() })
}

/// Maps machine frame `mfn` writable at `va` (a page of the guest's own
/// address space whose page table exists). Returns Xen's result.
///
/// # Safety
/// Whatever was mapped at `va` is gone afterwards; the caller owns that
/// page and never uses its old contents again.
pub unsafe fn map_frame(va: u64, mfn: u64) -> i64 {
    let pte = (mfn << 12) | PTE_PRESENT | PTE_RW | PTE_USER | PTE_ACCESSED | PTE_DIRTY | PTE_NX;
    // SAFETY: forwarded to the caller's contract.
    unsafe { hypercall::hypercall3(nr::UPDATE_VA_MAPPING, va, pte, UVMF_INVLPG) }
}

/// A page-sized, page-aligned slot whose frame is given up to map another.
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

/// Window pages: 0 shared info, 1 console ring, 2-3 free (xenstore later).
const WINDOW_PAGES: usize = 4;

#[unsafe(link_section = ".bss.v4v_window")]
static mut WINDOW: [Page; WINDOW_PAGES] = [const { Page([0; PAGE_SIZE]) }; WINDOW_PAGES];

/// Window slot for the shared info page.
pub const SLOT_SHARED_INFO: usize = 0;
/// Window slot for the PV console ring.
pub const SLOT_CONSOLE: usize = 1;

/// Maps `mfn` into window slot `slot` and returns its virtual address.
///
/// # Safety
/// Each slot is mapped at most once, by the module that owns it.
pub unsafe fn map_window(slot: usize, mfn: u64) -> Result<*mut u8, i64> {
    assert!(slot < WINDOW_PAGES);
    let va = (&raw mut WINDOW) as u64 + (slot * PAGE_SIZE) as u64;
    // SAFETY: the window is a reserved, page-aligned static that no Rust
    // reference ever points into; the caller maps each slot once.
    let rc = unsafe { map_frame(va, mfn) };
    if rc == 0 {
        Ok(va as *mut u8)
    } else {
        Err(rc)
    }
}
