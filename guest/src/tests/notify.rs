//! notify: waking queued senders, and the per-ring answers of a
//! `v4v_ring_data` query (flags, max_message_size).

use alloc::vec;

use v4v_abi::{RingDataEnt, RingDataFlags, RingDataHeader, MAXENT, PROTO_DGRAM, RING_DATA_MAGIC};

use super::send::pattern;
use super::{tests, Ctx, Test, TestResult, EAGAIN, EFAULT, EINVAL, UNMAPPED, XEN_VA};
use crate::v4v::{self, Ring, RingData};
use crate::{ensure, ensure_eq, ensure_rc};

pub static TESTS: &[Test] = tests![
    notify_null_ok,
    notify_wakes_queued_sender,
    notify_ring_data_flags,
    notify_never_fits_pending,
    notify_space_after_send,
    notify_restricted_ring_not_exists,
    notify_bad_ring_data,
];

fn ent(ring: v4v_abi::Addr, space_required: u32) -> RingDataEnt {
    RingDataEnt {
        ring,
        flags: 0,
        space_required,
        max_message_size: 0,
    }
}

fn flags_of(e: &RingDataEnt) -> RingDataFlags {
    RingDataFlags::from_bits_retain(e.flags)
}

/// Checks one answered entry: exact flags and, when given, max size.
fn expect_ent(rd: &RingData, i: usize, want: RingDataFlags, max: Option<u32>) -> TestResult {
    let e = rd.ent(i);
    ensure_eq!(flags_of(&e), want, "entry {i} flags");
    if let Some(max) = max {
        let got = e.max_message_size;
        ensure_eq!(got, max, "entry {i} max_message_size");
    }
    Ok(())
}

fn notify_null_ok(_ctx: &mut Ctx) -> TestResult {
    ensure_rc!(v4v::notify_all(), 0, "notify(NULL)");
    Ok(())
}

fn notify_wakes_queued_sender(ctx: &mut Ctx) -> TestResult {
    let mut ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    for i in 0..7 {
        ensure_rc!(
            v4v::send(&src, &dst, &pattern(100, i), PROTO_DGRAM),
            100,
            "fill {i}"
        );
    }
    // Refused now: the sender (we) is queued for 100 bytes.
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(100, 7), PROTO_DGRAM),
        EAGAIN,
        "send to full ring"
    );
    ctx.virq_clear()?;
    ensure_rc!(v4v::notify_all(), 0, "notify with nothing freed");
    ensure!(
        !ctx.virq_take()?,
        "VIRQ_V4V raised though the wait still does not fit"
    );
    // Free one 128-byte slot: now 100 bytes fit.
    ensure!(
        matches!(ring.recv(), Ok(Some(_))),
        "first message unreadable"
    );
    ensure_eq!(ring.rx_ptr(), 128, "rx_ptr after one message");
    let upcalls = crate::pvh::upcalls();
    ensure_rc!(v4v::notify_all(), 0, "notify after freeing space");
    ensure!(
        ctx.virq_take()?,
        "VIRQ_V4V not raised for the queued sender"
    );
    // A PVH guest takes events through the callback vector (interrupts on).
    ensure!(
        !crate::pvh::is_pvh() || crate::pvh::upcalls() > upcalls,
        "VIRQ_V4V pending but no upcall through the callback vector"
    );
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(100, 7), PROTO_DGRAM),
        100,
        "send after wake"
    );
    Ok(())
}

fn notify_ring_data_flags(ctx: &mut Ctx) -> TestResult {
    use RingDataFlags as F;
    let ring = ctx.ring(1024)?;
    let addr = ring.addr();
    let missing = ctx.fresh_addr()?;
    let mut rd = RingData::new(&[ent(addr, 1), ent(addr, 992), ent(missing, 1), ent(addr, 0)]);
    ensure_rc!(rd.notify(), 0, "notify with 4 entries");
    let max = Some(1024 - 32);
    expect_ent(&rd, 0, F::EXISTS | F::EMPTY | F::SUFFICIENT, max)?;
    expect_ent(&rd, 1, F::EXISTS | F::EMPTY | F::SUFFICIENT, max)?;
    let e = rd.ent(2);
    ensure!(
        !flags_of(&e).intersects(F::EXISTS | F::SUFFICIENT | F::EMPTY),
        "missing ring answered with flags {:?}",
        flags_of(&e)
    );
    expect_ent(&rd, 3, F::EXISTS | F::EMPTY | F::SUFFICIENT, max)?;
    Ok(())
}

/// ABI section 5, notify: "set SUFFICIENT ... if space >= space_required,
/// else queue a wait and set PENDING" -- with no exception for a size the
/// ring can never hold.
fn notify_never_fits_pending(ctx: &mut Ctx) -> TestResult {
    use RingDataFlags as F;
    let ring = ctx.ring(1024)?;
    let mut rd = RingData::new(&[ent(ring.addr(), 993), ent(ring.addr(), 5000)]);
    ensure_rc!(rd.notify(), 0, "notify");
    let max = Some(1024 - 32);
    expect_ent(&rd, 0, F::EXISTS | F::EMPTY | F::PENDING, max)?;
    expect_ent(&rd, 1, F::EXISTS | F::EMPTY | F::PENDING, max)?;
    Ok(())
}

fn notify_space_after_send(ctx: &mut Ctx) -> TestResult {
    use RingDataFlags as F;
    let mut ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let addr = ring.addr();
    ensure_rc!(
        v4v::send(&src, &addr, &pattern(100, 0), PROTO_DGRAM),
        100,
        "send 100"
    );
    // free = 1024 - 128 = 896, payload space 864.
    let mut rd = RingData::new(&[ent(addr, 1), ent(addr, 864), ent(addr, 865)]);
    ensure_rc!(rd.notify(), 0, "notify");
    let max = Some(992);
    expect_ent(&rd, 0, F::EXISTS | F::SUFFICIENT, max)?;
    expect_ent(&rd, 1, F::EXISTS | F::SUFFICIENT, max)?;
    expect_ent(&rd, 2, F::EXISTS | F::PENDING, max)?;
    // Reading the message empties the ring again.
    ensure!(matches!(ring.recv(), Ok(Some(_))), "message unreadable");
    let mut rd = RingData::new(&[ent(addr, 992)]);
    ensure_rc!(rd.notify(), 0, "notify after reading");
    expect_ent(&rd, 0, F::EXISTS | F::EMPTY | F::SUFFICIENT, max)?;
    Ok(())
}

fn notify_restricted_ring_not_exists(ctx: &mut Ctx) -> TestResult {
    let other = ctx.other_domid()?;
    let mut ring = Ring::new(ctx.port(), other, 1024);
    ensure_rc!(ring.register(), 0, "register with partner dom{other}");
    let mut rd = RingData::new(&[ent(ring.addr(), 1)]);
    ensure_rc!(rd.notify(), 0, "notify");
    let f = flags_of(&rd.ent(0));
    ensure!(
        !f.contains(RingDataFlags::EXISTS),
        "a ring reserved for dom{other} reads as existing ({f:?})"
    );
    Ok(())
}

fn notify_bad_ring_data(ctx: &mut Ctx) -> TestResult {
    let ring = ctx.ring(1024)?;
    let one = [ent(ring.addr(), 1)];
    let header = |magic, nent| RingDataHeader {
        magic,
        nent,
        ..Default::default()
    };
    let mut rd = RingData::with_header(header(RING_DATA_MAGIC ^ 1, 1), &one);
    ensure_rc!(rd.notify(), EINVAL, "ring data magic wrong");
    let many = vec![ent(ring.addr(), 1); MAXENT as usize + 1];
    let mut rd = RingData::with_header(header(RING_DATA_MAGIC, MAXENT + 1), &many);
    ensure_rc!(rd.notify(), EINVAL, "nent {}", MAXENT + 1);
    let mut rd = RingData::with_header(header(RING_DATA_MAGIC, 0), &[]);
    ensure_rc!(rd.notify(), 0, "nent 0");
    for bad in [UNMAPPED, XEN_VA] {
        // SAFETY: invalid pointers on purpose.
        let rc = unsafe { v4v::raw_op(v4v_abi::op::NOTIFY, bad, 0, 0, 0, 0) };
        ensure_rc!(rc, EFAULT, "ring data at {bad:#x}");
    }
    Ok(())
}
