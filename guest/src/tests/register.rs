//! register_ring / unregister_ring: argument checks and the id write-back.
//!
//! Each negative test starts from a ring and pfn list that would register
//! and breaks exactly one thing, so only the check under test can fail.

use alloc::vec;

use v4v_abi::{
    RingHeader, DOMID_ANY, MAX_RING_PAGES, MAX_RING_SIZE, PAGE_SIZE, PFN_LIST_MAGIC, RING_MAGIC,
};

use super::{tests, Ctx, Test, TestResult, EFAULT, EINVAL, ENOENT, ENOSYS, UNMAPPED, XEN_VA};
use crate::v4v::{self, pfn_list, Ring};
use crate::xen::{self, mm, start_info};
use crate::{ensure, ensure_eq, ensure_rc};

pub static TESTS: &[Test] = tests![
    unknown_op_enosys,
    register_bad_ring_magic,
    register_bad_pfn_list_magic,
    register_len_not_multiple_of_16,
    register_len_below_min,
    register_len_above_max,
    register_ring_unaligned,
    register_ring_unmapped_efault,
    register_ring_in_xen_efault,
    register_pfn_list_unmapped_efault,
    register_pfn_list_in_xen_efault,
    register_npage_too_small,
    register_npage_too_large,
    register_frame_not_owned,
    register_frame_invalid,
    register_frame_page_table,
    register_len_min_ok,
    register_writes_back_id,
    register_replace_and_unregister,
    unregister_unknown_enoent,
    unregister_bad_pointer_efault,
    reregister_keeps_tx_ptr,
];

/// Registers `ring` (any pointer) with `list`; if Xen wrongly accepts it,
/// unregisters again so later tests start clean.
fn register_expect(ring: u64, list: &[u64], want: i64, what: &str) -> TestResult {
    // SAFETY: `ring` is either ours (a heap ring) or invalid on purpose.
    let rc = unsafe { v4v::register_raw(ring, list.as_ptr() as u64) };
    if rc == 0 {
        // SAFETY: as above; undoes the unexpected registration.
        unsafe { v4v::unregister_raw(ring) };
    }
    ensure_rc!(rc, want, "{what}");
    Ok(())
}

/// A ring whose header and pfn list are valid, for breaking one field.
fn good_ring(ctx: &mut Ctx, len: u32) -> Ring {
    Ring::new(ctx.port(), DOMID_ANY, len)
}

fn set_header(ring: &Ring, f: impl FnOnce(&mut RingHeader)) {
    let mut h = ring.header();
    f(&mut h);
    ring.write_header(&h);
}

fn unknown_op_enosys(_ctx: &mut Ctx) -> TestResult {
    for cmd in [0u32, 9, 10, 43, 0x100, 0xffff_ffff] {
        // SAFETY: unknown commands read no argument; all are NULL.
        let rc = unsafe { v4v::raw_op(cmd, 0, 0, 0, 0, 0) };
        ensure_rc!(rc, ENOSYS, "v4v_op cmd {cmd:#x}");
    }
    Ok(())
}

fn register_bad_ring_magic(ctx: &mut Ctx) -> TestResult {
    let ring = good_ring(ctx, 1024);
    set_header(&ring, |h| h.magic = RING_MAGIC ^ 1);
    register_expect(ring.va(), &ring.pfn_list(), EINVAL, "ring magic wrong")
}

fn register_bad_pfn_list_magic(ctx: &mut Ctx) -> TestResult {
    let ring = good_ring(ctx, 1024);
    let mfns = ring.pages().mfns();
    let list = pfn_list(PFN_LIST_MAGIC ^ 0x100, mfns.len() as u32, &mfns);
    register_expect(ring.va(), &list, EINVAL, "pfn list magic wrong")
}

/// Each of `lens` as a ring's length (on pages that would hold it) must
/// be refused with -EINVAL.
fn register_bad_lens(ctx: &mut Ctx, lens: &[u32]) -> TestResult {
    for &len in lens {
        let ring = good_ring(ctx, len);
        register_expect(
            ring.va(),
            &ring.pfn_list(),
            EINVAL,
            &alloc::format!("len {len}"),
        )?;
    }
    Ok(())
}

fn register_len_not_multiple_of_16(ctx: &mut Ctx) -> TestResult {
    register_bad_lens(ctx, &[1000, 1032 + 1, 56])
}

fn register_len_below_min(ctx: &mut Ctx) -> TestResult {
    register_bad_lens(ctx, &[0, 16, 32])
}

fn register_len_above_max(ctx: &mut Ctx) -> TestResult {
    // Too big for any pfn list; the length check must refuse it first.
    for len in [MAX_RING_SIZE + 16, 0x8000_0000, 0xffff_fff0] {
        let ring = good_ring(ctx, 1024);
        set_header(&ring, |h| h.len = len);
        register_expect(
            ring.va(),
            &ring.pfn_list(),
            EINVAL,
            &alloc::format!("len {len:#x}"),
        )?;
    }
    Ok(())
}

fn register_ring_unaligned(ctx: &mut Ctx) -> TestResult {
    // A complete, valid ring header 64 bytes into the first page.
    let ring = good_ring(ctx, 1024);
    let h = ring.header();
    // SAFETY: the ring's pages are ours; 64 + 60 bytes fit in page 0.
    unsafe {
        let dst = ring.pages().as_ptr().add(64);
        for (i, &b) in zerocopy::IntoBytes::as_bytes(&h).iter().enumerate() {
            dst.add(i).write_volatile(b);
        }
    }
    register_expect(
        ring.va() + 64,
        &ring.pfn_list(),
        EINVAL,
        "ring at page + 64",
    )
}

fn register_ring_unmapped_efault(ctx: &mut Ctx) -> TestResult {
    let ring = good_ring(ctx, 1024);
    register_expect(UNMAPPED, &ring.pfn_list(), EFAULT, "ring pointer unmapped")
}

fn register_ring_in_xen_efault(ctx: &mut Ctx) -> TestResult {
    let ring = good_ring(ctx, 1024);
    register_expect(XEN_VA, &ring.pfn_list(), EFAULT, "ring pointer in Xen")?;
    xen_still_answers()
}

fn register_pfn_list_unmapped_efault(ctx: &mut Ctx) -> TestResult {
    let ring = good_ring(ctx, 1024);
    // SAFETY: the ring is ours; the pfn list pointer is invalid on purpose.
    let rc = unsafe { v4v::register_raw(ring.va(), UNMAPPED) };
    ensure_rc!(rc, EFAULT, "pfn list pointer unmapped");
    Ok(())
}

fn register_pfn_list_in_xen_efault(ctx: &mut Ctx) -> TestResult {
    let ring = good_ring(ctx, 1024);
    // SAFETY: the ring is ours; the pfn list pointer is Xen's on purpose.
    let rc = unsafe { v4v::register_raw(ring.va(), XEN_VA) };
    if rc == 0 {
        // SAFETY: undo an unexpected registration of our own ring.
        unsafe { v4v::unregister_raw(ring.va()) };
    }
    ensure_rc!(rc, EFAULT, "pfn list pointer {XEN_VA:#x}");
    xen_still_answers()
}

/// After a hostile pointer: Xen still runs hypercalls, V4V included.
fn xen_still_answers() -> TestResult {
    let (major, _) = xen::version();
    ensure_eq!(major, 4, "xen_version major after the bad pointer");
    // SAFETY: an unknown command reads no argument.
    let rc = unsafe { v4v::raw_op(0x7fff, 0, 0, 0, 0, 0) };
    ensure_rc!(rc, ENOSYS, "v4v_op still dispatches");
    Ok(())
}

fn register_npage_too_small(ctx: &mut Ctx) -> TestResult {
    // 60 + 4096 bytes need two pages; list only the first.
    let ring = good_ring(ctx, 4096);
    ensure_eq!(ring.pages().count(), 2, "pages of a 4096-byte ring");
    let list = pfn_list(PFN_LIST_MAGIC, 1, &[ring.pages().mfn(0)]);
    register_expect(ring.va(), &list, EINVAL, "npage 1 for 60 + 4096 bytes")?;
    // Exactly full: len 4036 fits one page, 4052 does not.
    let ring = good_ring(ctx, 4052);
    let list = pfn_list(PFN_LIST_MAGIC, 1, &[ring.pages().mfn(0)]);
    register_expect(ring.va(), &list, EINVAL, "npage 1 for 60 + 4052 bytes")
}

fn register_npage_too_large(ctx: &mut Ctx) -> TestResult {
    let ring = good_ring(ctx, 1024);
    let n = MAX_RING_PAGES as usize + 1;
    let list = pfn_list(PFN_LIST_MAGIC, n as u32, &vec![ring.pages().mfn(0); n]);
    register_expect(ring.va(), &list, EINVAL, &alloc::format!("npage {n}"))
}

/// A two-page ring whose second frame is replaced by `mfn`.
fn register_with_second_frame(ctx: &mut Ctx, mfn: u64, what: &str) -> TestResult {
    let ring = good_ring(ctx, 2 * PAGE_SIZE as u32 - 64);
    ensure_eq!(ring.pages().count(), 2, "ring pages");
    let list = pfn_list(PFN_LIST_MAGIC, 2, &[ring.pages().mfn(0), mfn]);
    register_expect(ring.va(), &list, EINVAL, what)
}

fn register_frame_not_owned(ctx: &mut Ctx) -> TestResult {
    if crate::pvh::is_pvh() {
        // Guest frames that are not RAM: the legacy VGA hole (a PVH dom0
        // has it mapped to the device), the local APIC page.
        register_with_second_frame(ctx, 0xa0, "frame 0xa0 (VGA hole)")?;
        return register_with_second_frame(ctx, 0xfee00, "frame 0xfee00 (local APIC)");
    }
    // Frames below 1 MiB belong to Xen's dom_io, never to a guest.
    register_with_second_frame(ctx, 0x1, "frame 0x1 (not ours)")?;
    register_with_second_frame(ctx, 0x9f, "frame 0x9f (not ours)")
}

fn register_frame_invalid(ctx: &mut Ctx) -> TestResult {
    register_with_second_frame(ctx, 0xfff_ffff, "frame 0xfffffff (no RAM)")?;
    register_with_second_frame(ctx, u64::MAX >> 12, "frame 2^52-1")
}

fn register_frame_page_table(ctx: &mut Ctx) -> TestResult {
    if crate::pvh::is_pvh() {
        // A translated guest's page tables are ordinary RAM to Xen; the
        // frame that is ours to map but never Xen's to hand out as a ring
        // is the shared info page placed in our physmap (a Xen heap page).
        let Some(gfn) = mm::window_frame(mm::SLOT_SHARED_INFO) else {
            return Err("no frame for the shared info slot".into());
        };
        return register_with_second_frame(ctx, gfn, "frame of the shared info page");
    }
    // Our own L4 page table: ours, but not a writable page.
    let pt = start_info::get().pt_base;
    let Some(mfn) = mm::bootstrap_mfn(pt) else {
        return Err(alloc::format!("no frame for pt_base {pt:#x}"));
    };
    register_with_second_frame(ctx, mfn, "frame of our L4 page table")
}

fn register_len_min_ok(ctx: &mut Ctx) -> TestResult {
    let mut ring = good_ring(ctx, 48);
    ensure_rc!(ring.register(), 0, "register len 48");
    ensure_rc!(ring.unregister(), 0, "unregister");
    Ok(())
}

fn register_writes_back_id(ctx: &mut Ctx) -> TestResult {
    let port = ctx.port();
    let mut ring = Ring::new(port, DOMID_ANY, 1024);
    set_header(&ring, |h| h.id.addr.domain = 0x1234);
    ensure_rc!(ring.register(), 0, "register");
    let h = ring.header();
    let (domain, rport, partner) = (h.id.addr.domain, h.id.addr.port, h.id.partner);
    let (magic, len, rx, tx) = (h.magic, h.len, h.rx_ptr, h.tx_ptr);
    ensure!(
        domain != 0x1234,
        "id.addr.domain not overwritten (still 0x1234)"
    );
    ensure!(
        domain < 0x7ff0,
        "id.addr.domain {domain:#x} is not a domain id"
    );
    if ctx.dom0 {
        ensure_eq!(domain, 0, "id.addr.domain written back for dom0");
    }
    ensure_eq!(rport, port, "id.addr.port");
    ensure_eq!(partner, DOMID_ANY, "id.partner");
    ensure_eq!(magic, RING_MAGIC, "magic");
    ensure_eq!(len, 1024, "len");
    ensure_eq!((rx, tx), (0, 0), "(rx_ptr, tx_ptr) of a new ring");
    ensure_rc!(ring.unregister(), 0, "unregister");
    Ok(())
}

fn register_replace_and_unregister(ctx: &mut Ctx) -> TestResult {
    let mut ring = good_ring(ctx, 1024);
    ensure_rc!(ring.register(), 0, "register");
    ensure_rc!(ring.register(), 0, "register the same id again (replace)");
    ensure_rc!(ring.unregister(), 0, "unregister");
    ensure_rc!(ring.unregister(), ENOENT, "unregister again");
    Ok(())
}

fn unregister_unknown_enoent(ctx: &mut Ctx) -> TestResult {
    let mut ring = good_ring(ctx, 1024);
    ensure_rc!(
        ring.unregister(),
        ENOENT,
        "unregister a ring never registered"
    );
    Ok(())
}

fn unregister_bad_pointer_efault(_ctx: &mut Ctx) -> TestResult {
    // SAFETY: invalid pointers on purpose; Xen must only fail.
    let rc = unsafe { v4v::unregister_raw(UNMAPPED) };
    ensure_rc!(rc, EFAULT, "unregister unmapped ring pointer");
    // SAFETY: as above.
    let rc = unsafe { v4v::unregister_raw(XEN_VA) };
    ensure_rc!(rc, EFAULT, "unregister ring pointer in Xen");
    Ok(())
}

fn reregister_keeps_tx_ptr(ctx: &mut Ctx) -> TestResult {
    let mut ring = ctx.ring(1024)?;
    let me = ctx.fresh_addr()?;
    let dst = ring.addr();
    ensure_rc!(
        v4v::send(&me, &dst, &[7; 100], v4v_abi::PROTO_DGRAM),
        100,
        "send 100"
    );
    ensure_eq!(ring.tx_ptr(), 128, "tx_ptr after one 100-byte message");
    ensure!(matches!(ring.recv(), Ok(Some(_))), "message not readable");
    ensure_rc!(ring.register(), 0, "re-register");
    ensure_eq!(ring.tx_ptr(), 128, "tx_ptr kept across re-register");
    ensure_rc!(
        v4v::send(&me, &dst, &[8; 10], v4v_abi::PROTO_DGRAM),
        10,
        "send 10"
    );
    let m = ring.recv()?.ok_or("no message after re-register")?;
    ensure_eq!(m.offset, 128, "offset of the message after re-register");
    ensure_eq!(ring.rx_ptr(), 160, "rx_ptr after reading it");
    // An invalid tx_ptr restarts at ROUNDUP(rx_ptr).
    for bad in [2000u32, 1024, 8] {
        ring.set_tx_ptr(bad);
        ensure_rc!(ring.register(), 0, "re-register with tx_ptr {bad}");
        ensure_eq!(
            ring.tx_ptr(),
            160,
            "tx_ptr after re-register with tx_ptr {bad}"
        );
    }
    ensure_rc!(
        v4v::send(&me, &dst, &[9; 1], v4v_abi::PROTO_DGRAM),
        1,
        "send 1"
    );
    let m = ring
        .recv()?
        .ok_or("no message after the repaired re-register")?;
    ensure_eq!(m.offset, 160, "offset after the repaired re-register");
    Ok(())
}
