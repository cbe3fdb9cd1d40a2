//! Grant tables (version 1), as far as the scenarios need them: granting
//! another domain access to one of our pages, and mapping a page another
//! domain granted us into a translated guest's physmap.
//!
//! The first frame of our grant table is mapped into the window (PV:
//! `GNTTABOP_setup_table` names its machine frame; PVH: the guest places
//! it at the window slot's own frame with `XENMEM_add_to_physmap`).

use core::sync::atomic::{AtomicPtr, Ordering};

use super::{hypercall, mm};

const GRANT_TABLE_OP: u32 = 20;
const GNTTABOP_MAP_GRANT_REF: u64 = 0;
const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
const GNTTABOP_SETUP_TABLE: u64 = 2;

/// `GTF_permit_access`: the grantee may map the frame.
const GTF_PERMIT_ACCESS: u16 = 1;
/// `GTF_reading | GTF_writing`: Xen's marks that the grant is in use.
const GTF_IN_USE: u16 = (1 << 3) | (1 << 4);
/// `GNTMAP_host_map`: map at `host_addr` (a GFN's address for a translated
/// guest).
const GNTMAP_HOST_MAP: u32 = 1 << 1;

/// Entries 0-7 are the toolstack's (console, xenstore); ours start here.
const FIRST_REF: u32 = 8;
/// Entries of 8 bytes in the one frame we map.
const REFS_PER_FRAME: u32 = 512;

static TABLE: AtomicPtr<u8> = AtomicPtr::new(core::ptr::null_mut());

/// The first frame of our grant table, mapped into the window once.
fn table() -> Result<*mut u8, i64> {
    let t = TABLE.load(Ordering::Acquire);
    if !t.is_null() {
        return Ok(t);
    }
    let frame = if crate::pvh::is_pvh() {
        let gfn = mm::window_frame(mm::SLOT_GRANT).ok_or(-22i64)?;
        match mm::add_to_physmap(mm::XENMAPSPACE_GRANT_TABLE, 0, gfn) {
            0 => gfn,
            rc => return Err(rc),
        }
    } else {
        #[repr(C)]
        struct SetupTable {
            dom: u16,
            nr_frames: u32,
            status: i16,
            frame_list: u64,
        }
        let mut mfn: u64 = 0;
        let mut op = SetupTable {
            dom: mm::DOMID_SELF,
            nr_frames: 1,
            status: 0,
            frame_list: &raw mut mfn as u64,
        };
        // SAFETY: Xen reads the structure and writes one frame number into
        // `mfn`, both on this stack.
        let rc = unsafe {
            hypercall::hypercall3(GRANT_TABLE_OP, GNTTABOP_SETUP_TABLE, &raw mut op as u64, 1)
        };
        if rc != 0 || op.status != 0 {
            return Err(if rc != 0 { rc } else { op.status as i64 });
        }
        mfn
    };
    // SAFETY: the grant slot of the window is mapped only here; the
    // compare-exchange below keeps a second mapping from being published.
    let va = unsafe { mm::map_window(mm::SLOT_GRANT, frame)? };
    match TABLE.compare_exchange(
        core::ptr::null_mut(),
        va,
        Ordering::AcqRel,
        Ordering::Acquire,
    ) {
        Ok(_) => Ok(va),
        Err(first) => Ok(first),
    }
}

/// A grant of one of our frames to another domain, revoked on drop when
/// the grantee no longer uses it.
pub struct Grant {
    gref: u32,
}

impl Grant {
    /// Lets `domid` map frame `frame` (our MFN as PV, GFN as PVH) with
    /// grant reference `FIRST_REF + slot`.
    pub fn new(domid: u16, frame: u64, slot: u32) -> Result<Grant, i64> {
        if slot >= REFS_PER_FRAME - FIRST_REF || frame > u32::MAX as u64 {
            return Err(-22);
        }
        let gref = FIRST_REF + slot;
        let entry = Self::entry(table()?, gref);
        // SAFETY: `entry` is entry `gref` of our mapped grant frame; the
        // frame and domain are written before the flag that publishes
        // them, each with a volatile store (Xen reads the entry).
        unsafe {
            entry.add(4).cast::<u32>().write_volatile(frame as u32);
            entry.add(2).cast::<u16>().write_volatile(domid);
            core::sync::atomic::fence(Ordering::Release);
            entry.cast::<u16>().write_volatile(GTF_PERMIT_ACCESS);
        }
        Ok(Grant { gref })
    }

    pub fn gref(&self) -> u32 {
        self.gref
    }

    fn entry(table: *mut u8, gref: u32) -> *mut u8 {
        // SAFETY (of the callers' use): gref < REFS_PER_FRAME, inside the
        // one mapped frame.
        table.wrapping_add(gref as usize * 8)
    }

    /// Revokes the grant; false (the grant left in place) while the
    /// grantee still has it mapped.
    pub fn revoke(&self) -> bool {
        let Some(t) = core::ptr::NonNull::new(TABLE.load(Ordering::Acquire)) else {
            return false;
        };
        let flags = Self::entry(t.as_ptr(), self.gref).cast::<u16>();
        // SAFETY: entry of our mapped grant frame; the flags are read and
        // cleared with an atomic compare-exchange, as Xen updates them.
        let flags = unsafe { core::sync::atomic::AtomicU16::from_ptr(flags) };
        flags
            .compare_exchange(GTF_PERMIT_ACCESS, 0, Ordering::AcqRel, Ordering::Acquire)
            .is_ok_and(|f| f & GTF_IN_USE == 0)
    }
}

/// Maps domain `dom`'s grant `gref` at guest physical address `gpa` (a
/// translated guest's GFN, which must be empty). Returns the handle, or
/// the failing status or hypercall result.
pub fn map(dom: u16, gref: u32, gpa: u64) -> Result<u32, i64> {
    #[repr(C)]
    struct MapGrantRef {
        host_addr: u64,
        flags: u32,
        gref: u32,
        dom: u16,
        status: i16,
        handle: u32,
        dev_bus_addr: u64,
    }
    let mut op = MapGrantRef {
        host_addr: gpa,
        flags: GNTMAP_HOST_MAP,
        gref,
        dom,
        status: 0,
        handle: 0,
        dev_bus_addr: 0,
    };
    // SAFETY: Xen reads and writes the structure on this stack.
    let rc = unsafe {
        hypercall::hypercall3(
            GRANT_TABLE_OP,
            GNTTABOP_MAP_GRANT_REF,
            &raw mut op as u64,
            1,
        )
    };
    match (rc, op.status) {
        (0, 0) => Ok(op.handle),
        (0, st) => Err(st as i64),
        (rc, _) => Err(rc),
    }
}

/// Undoes [`map`]. Returns the status (0 on success) or hypercall result.
pub fn unmap(gpa: u64, handle: u32) -> i64 {
    #[repr(C)]
    struct UnmapGrantRef {
        host_addr: u64,
        dev_bus_addr: u64,
        handle: u32,
        status: i16,
    }
    let mut op = UnmapGrantRef {
        host_addr: gpa,
        dev_bus_addr: 0,
        handle,
        status: 0,
    };
    // SAFETY: Xen reads and writes the structure on this stack.
    let rc = unsafe {
        hypercall::hypercall3(
            GRANT_TABLE_OP,
            GNTTABOP_UNMAP_GRANT_REF,
            &raw mut op as u64,
            1,
        )
    };
    if rc != 0 {
        rc
    } else {
        op.status as i64
    }
}
