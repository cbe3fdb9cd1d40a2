//! Frame numbers of the guest's own pages, and mapping frames (shared
//! info, console ring) into a reserved window.
//!
//! Both kinds of guest see the image from `VIRT_BASE` onwards one guest
//! frame per page: pfn = (va - VIRT_BASE) >> 12 (PV: the builder's
//! mapping; PVH: the guest's own page tables, see `pvh.rs`). The frame
//! numbers V4V takes are machine frames for a PV guest
//! (`start_info.mfn_list` gives the one of each pfn) and these guest frames
//! (GFNs) for a PVH guest, which Xen translates through its p2m.

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

/// The frame number V4V takes for a virtual address inside the image: the
/// machine frame (PV) or the guest frame (PVH).
pub fn mfn_of(va: u64) -> Option<u64> {
    let pfn = pfn_of(va)?;
    if crate::pvh::is_pvh() {
        return Some(pfn);
    }
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
    if crate::pvh::is_pvh() {
        // The PVH guest's page tables are in the image.
        return pfn_of(va);
    }
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

/// Window pages: 0 shared info, 1 console ring, 2 grant table, 3 free.
const WINDOW_PAGES: usize = 4;

#[unsafe(link_section = ".bss.v4v_window")]
static mut WINDOW: [Page; WINDOW_PAGES] = [const { Page([0; PAGE_SIZE]) }; WINDOW_PAGES];

/// Window slot for the shared info page.
pub const SLOT_SHARED_INFO: usize = 0;
/// Window slot for the PV console ring.
pub const SLOT_CONSOLE: usize = 1;
/// Window slot for the first frame of our grant table (`grant.rs`).
pub const SLOT_GRANT: usize = 2;

/// The guest frame of window slot `slot` (a PVH guest has Xen place the
/// shared info page there).
pub fn window_frame(slot: usize) -> Option<u64> {
    if slot >= WINDOW_PAGES {
        return None;
    }
    pfn_of((&raw mut WINDOW) as u64 + (slot * PAGE_SIZE) as u64)
}

/// Maps `mfn` into window slot `slot` and returns its virtual address.
///
/// A PVH guest maps nothing: a frame already placed at the slot's own guest
/// frame is used there, any other guest frame below 4 GiB through the
/// identity map (the console ring in Xen's special pages).
///
/// # Safety
/// Each slot is mapped at most once, by the module that owns it.
pub unsafe fn map_window(slot: usize, mfn: u64) -> Result<*mut u8, i64> {
    assert!(slot < WINDOW_PAGES);
    let va = (&raw mut WINDOW) as u64 + (slot * PAGE_SIZE) as u64;
    if crate::pvh::is_pvh() {
        return match mfn {
            0 => Err(-22),
            f if Some(f) == window_frame(slot) => Ok(va as *mut u8),
            f if f < 1 << 20 => Ok((f << 12) as *mut u8),
            _ => Err(-22),
        };
    }
    // SAFETY: the window is a reserved, page-aligned static that no Rust
    // reference ever points into; the caller maps each slot once.
    let rc = unsafe { map_frame(va, mfn) };
    if rc == 0 {
        Ok(va as *mut u8)
    } else {
        Err(rc)
    }
}

const XENMEM_DECREASE_RESERVATION: u64 = 1;
const XENMEM_POPULATE_PHYSMAP: u64 = 6;
const XENMEM_ADD_TO_PHYSMAP: u64 = 7;
const XENMEM_REMOVE_FROM_PHYSMAP: u64 = 15;
/// `DOMID_SELF`: the calling domain, in memory and grant operations.
pub const DOMID_SELF: u16 = 0x7ff0;

/// `XENMAPSPACE_shared_info`: the shared info page.
pub const XENMAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`: a frame of the domain's grant table.
pub const XENMAPSPACE_GRANT_TABLE: u32 = 1;

/// `XENMEM_add_to_physmap` for this (translated) domain: puts frame `idx`
/// of `space` at guest frame `gfn`; whatever was there leaves the physmap.
/// Returns Xen's result.
pub fn add_to_physmap(space: u32, idx: u64, gfn: u64) -> i64 {
    #[repr(C)]
    struct AddToPhysmap {
        domid: u16,
        size: u16,
        space: u32,
        idx: u64,
        gpfn: u64,
    }
    let op = AddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn: gfn,
    };
    // SAFETY: Xen reads the structure on this stack.
    unsafe { hypercall::hypercall2(nr::MEMORY_OP, XENMEM_ADD_TO_PHYSMAP, &raw const op as u64) }
}

/// `struct xen_memory_reservation` for single pages of this domain.
fn reservation(cmd: u64, frames: &mut [u64]) -> i64 {
    #[repr(C)]
    struct Reservation {
        extent_start: u64,
        nr_extents: u64,
        extent_order: u32,
        mem_flags: u32,
        domid: u16,
    }
    let r = Reservation {
        extent_start: frames.as_mut_ptr() as u64,
        nr_extents: frames.len() as u64,
        extent_order: 0,
        mem_flags: 0,
        domid: DOMID_SELF,
    };
    // SAFETY: Xen reads the structure and reads (and for populate writes)
    // the frame array, both alive for the call.
    unsafe { hypercall::hypercall2(nr::MEMORY_OP, cmd, &raw const r as u64) }
}

/// Gives guest frames back to Xen (a balloon driver's inflate): the pages
/// leave the physmap. Returns how many went, or Xen's error.
pub fn decrease_reservation(gfns: &mut [u64]) -> i64 {
    reservation(XENMEM_DECREASE_RESERVATION, gfns)
}

/// Puts fresh pages at guest frames (a translated guest names the frames).
/// Returns how many were populated, or Xen's error.
pub fn populate_physmap(gfns: &mut [u64]) -> i64 {
    reservation(XENMEM_POPULATE_PHYSMAP, gfns)
}

/// `XENMEM_remove_from_physmap`: takes whatever is at guest frame `gfn`
/// out of this (translated) domain's physmap. Returns Xen's result.
pub fn remove_from_physmap(gfn: u64) -> i64 {
    #[repr(C)]
    struct Remove {
        domid: u16,
        gpfn: u64,
    }
    let op = Remove {
        domid: DOMID_SELF,
        gpfn: gfn,
    };
    // SAFETY: Xen reads the structure on this stack.
    unsafe {
        hypercall::hypercall2(
            nr::MEMORY_OP,
            XENMEM_REMOVE_FROM_PHYSMAP,
            &raw const op as u64,
        )
    }
}
