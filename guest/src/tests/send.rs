//! send / sendv to the guest's own rings: delivery, header fields, ring
//! space accounting, wrap-around, and the error paths.
//!
//! Space rule (ABI section 5): with `free = len` for an empty ring, else
//! `(rx_ptr - tx_ptr) mod len`, a payload `m` fits when
//! `16 + ROUNDUP(m) <= free - 16`.

use alloc::vec;
use alloc::vec::Vec;

use v4v_abi::{Addr, Iov, MAXIOV, MAX_MSG_SIZE, PAGE_SIZE, PROTO_DGRAM, PROTO_STREAM};

use super::{
    tests, Ctx, Test, TestResult, EAGAIN, EFAULT, EINVAL, ENOBUFS, ENOTCONN, EPERM, UNMAPPED,
};
use crate::v4v::{self, iov, Message, Pages, Ring};
use crate::{ensure, ensure_eq, ensure_rc};

pub static TESTS: &[Test] = tests![
    send_to_self,
    send_src_domid_any,
    send_empty_payload,
    send_protocol_verbatim,
    sendv_gather_across_pages,
    header_straddles_page_boundary,
    send_wraps_at_ring_end,
    fill_ring_until_eagain,
    send_never_fits_enobufs,
    send_len_over_max_einval,
    send_src_other_domain_eperm,
    send_no_ring_enotconn,
    send_partner_restricted,
    send_prefers_partner_ring,
    register_replace_moves_ring,
    send_bad_pointers_efault,
    non_canonical_pointers_efault,
    sendv_bad_iovs,
    corrupt_rx_ptr_contained,
];

/// A deterministic payload pattern.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Reads the next message and checks its header and payload.
pub fn expect_message(
    ring: &mut Ring,
    src: &Addr,
    real_domid: u16,
    protocol: u32,
    payload: &[u8],
) -> Result<Message, alloc::string::String> {
    let m = ring.recv()?.ok_or("no message in the ring")?;
    let h = m.header;
    let (len, sport, sdom, pad, proto) = (h.len, h.source.port, h.source.domain, h.pad, h.protocol);
    ensure_eq!(len as usize, payload.len() + 16, "header len");
    ensure_eq!(sport, src.port, "header source port");
    ensure_eq!(sdom, real_domid, "header source domain");
    ensure_eq!(pad, 0, "header pad");
    ensure_eq!(proto, protocol, "header protocol");
    ensure!(
        m.payload == payload,
        "payload differs (first difference at byte {:?})",
        m.payload.iter().zip(payload).position(|(a, b)| a != b)
    );
    Ok(m)
}

fn send_to_self(ctx: &mut Ctx) -> TestResult {
    let mut ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let me = ctx.domid()?;
    ctx.virq_clear()?;
    let msg = b"hello V4V";
    ensure_rc!(
        v4v::send(&src, &ring.addr(), msg, PROTO_DGRAM),
        msg.len() as i64,
        "send"
    );
    ensure_eq!(ring.tx_ptr(), 32, "tx_ptr after a 9-byte message");
    ensure!(ctx.virq_take()?, "VIRQ_V4V not pending after delivery");
    expect_message(&mut ring, &src, me, PROTO_DGRAM, msg)?;
    ensure_eq!(ring.rx_ptr(), 32, "rx_ptr after reading");
    ensure!(!ring.has_message(), "ring not empty after reading");
    Ok(())
}

fn send_src_domid_any(ctx: &mut Ctx) -> TestResult {
    let mut ring = ctx.ring(1024)?;
    let me = ctx.domid()?;
    let src = Addr {
        port: ctx.port(),
        domain: v4v_abi::DOMID_ANY,
    };
    let msg = pattern(40, 1);
    ensure_rc!(
        v4v::send(&src, &ring.addr(), &msg, PROTO_DGRAM),
        40,
        "send from DOMID_ANY"
    );
    // The header carries the real sender, never the wildcard.
    expect_message(&mut ring, &src, me, PROTO_DGRAM, &msg)?;
    Ok(())
}

fn send_empty_payload(ctx: &mut Ctx) -> TestResult {
    let mut ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let me = ctx.domid()?;
    ensure_rc!(
        v4v::send(&src, &ring.addr(), &[], PROTO_DGRAM),
        0,
        "send 0 bytes"
    );
    ensure_eq!(ring.tx_ptr(), 16, "tx_ptr after an empty message");
    expect_message(&mut ring, &src, me, PROTO_DGRAM, &[])?;
    Ok(())
}

fn send_protocol_verbatim(ctx: &mut Ctx) -> TestResult {
    let mut ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let me = ctx.domid()?;
    for (i, proto) in [PROTO_STREAM, 0x1234_5678, 0, u32::MAX]
        .into_iter()
        .enumerate()
    {
        let msg = pattern(17 + i, i as u8);
        ensure_rc!(
            v4v::send(&src, &ring.addr(), &msg, proto),
            msg.len() as i64,
            "send proto {proto:#x}"
        );
        expect_message(&mut ring, &src, me, proto, &msg)?;
    }
    Ok(())
}

fn sendv_gather_across_pages(ctx: &mut Ctx) -> TestResult {
    // Two-page ring: ring[] offset 4036 is the page boundary.
    let mut ring = ctx.ring(8128)?;
    let src = ctx.fresh_addr()?;
    let me = ctx.domid()?;
    // A source buffer that straddles a page boundary of our own memory.
    let mut two = Pages::alloc(2);
    two.bytes_mut()[PAGE_SIZE - 1000..PAGE_SIZE + 2000].copy_from_slice(&pattern(3000, 7));
    let a = b"sendv-part-1|".to_vec();
    let b = pattern(1500, 9);
    let c = b"|tail!!".to_vec();
    let pieces: [&[u8]; 5] = [
        &a,
        &[],
        &two.bytes()[PAGE_SIZE - 1000..PAGE_SIZE + 2000],
        &b,
        &c,
    ];
    let iovs: Vec<Iov> = pieces.iter().map(|p| iov(p)).collect();
    let whole: Vec<u8> = pieces.concat();
    ensure_eq!(whole.len(), 4520, "test payload size");
    ensure_rc!(
        v4v::sendv(&src, &ring.addr(), &iovs, PROTO_DGRAM),
        4520,
        "sendv of 5 iovs"
    );
    // The message spans ring[16 .. 4536]: across the page boundary.
    let m = expect_message(&mut ring, &src, me, PROTO_DGRAM, &whole)?;
    ensure_eq!(m.offset, 0, "first message offset");
    ensure_eq!(ring.tx_ptr(), 16 + 4528, "tx_ptr after 4520 bytes");
    // Next header starts past the boundary; a plain send follows it.
    let tail = pattern(3000, 3);
    ensure_rc!(
        v4v::send(&src, &ring.addr(), &tail, PROTO_DGRAM),
        3000,
        "send 3000"
    );
    let m = expect_message(&mut ring, &src, me, PROTO_DGRAM, &tail)?;
    ensure_eq!(m.offset, 4544, "second message offset");
    Ok(())
}

fn send_wraps_at_ring_end(ctx: &mut Ctx) -> TestResult {
    let mut ring = ctx.ring(256)?;
    let src = ctx.fresh_addr()?;
    let me = ctx.domid()?;
    let first = pattern(100, 1);
    ensure_rc!(
        v4v::send(&src, &ring.addr(), &first, PROTO_DGRAM),
        100,
        "send 100"
    );
    expect_message(&mut ring, &src, me, PROTO_DGRAM, &first)?;
    ensure_eq!(
        (ring.rx_ptr(), ring.tx_ptr()),
        (128, 128),
        "(rx, tx) after one message"
    );
    // Header at 128, payload 144..256 then 0..38.
    let second = pattern(150, 2);
    ensure_rc!(
        v4v::send(&src, &ring.addr(), &second, PROTO_DGRAM),
        150,
        "send 150 (wraps)"
    );
    ensure_eq!(ring.tx_ptr(), 48, "tx_ptr after wrapping");
    let m = expect_message(&mut ring, &src, me, PROTO_DGRAM, &second)?;
    ensure_eq!(m.offset, 128, "offset of the wrapped message");
    ensure_eq!(ring.rx_ptr(), 48, "rx_ptr after the wrapped message");
    Ok(())
}

fn fill_ring_until_eagain(ctx: &mut Ctx) -> TestResult {
    // len 1024; a 100-byte message takes 128 bytes; 7 fit (the 8th would
    // leave less than one free slot).
    let mut ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let me = ctx.domid()?;
    let dst = ring.addr();
    for i in 0..7 {
        ensure_rc!(
            v4v::send(&src, &dst, &pattern(100, i), PROTO_DGRAM),
            100,
            "message {i}"
        );
    }
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(100, 7), PROTO_DGRAM),
        EAGAIN,
        "message 7"
    );
    ensure_eq!(ring.tx_ptr(), 896, "tx_ptr of the full ring");
    // free = 128: a 96-byte payload (112 bytes) still fits exactly...
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(96, 8), PROTO_DGRAM),
        96,
        "96 into 128 free"
    );
    // ...then free = 16 and not even an empty message fits.
    ensure_rc!(
        v4v::send(&src, &dst, &[], PROTO_DGRAM),
        EAGAIN,
        "empty message into 16 free"
    );
    for i in 0..7 {
        expect_message(&mut ring, &src, me, PROTO_DGRAM, &pattern(100, i))?;
    }
    expect_message(&mut ring, &src, me, PROTO_DGRAM, &pattern(96, 8))?;
    ensure!(!ring.has_message(), "ring not empty after reading all");
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(100, 9), PROTO_DGRAM),
        100,
        "send after draining"
    );
    Ok(())
}

fn send_never_fits_enobufs(ctx: &mut Ctx) -> TestResult {
    let ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    // max_message_size = len - 32 = 992.
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(993, 0), PROTO_DGRAM),
        ENOBUFS,
        "993 into empty 1024"
    );
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(992, 0), PROTO_DGRAM),
        992,
        "992 into empty 1024"
    );
    // Now nearly full: too big stays -ENOBUFS, a small one is -EAGAIN.
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(993, 0), PROTO_DGRAM),
        ENOBUFS,
        "993 into full 1024"
    );
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(1, 0), PROTO_DGRAM),
        EAGAIN,
        "1 into full 1024"
    );
    let big = vec![0u8; 4096];
    ensure_rc!(
        v4v::send(&src, &dst, &big, PROTO_DGRAM),
        ENOBUFS,
        "4096 into 1024"
    );
    Ok(())
}

fn send_len_over_max_einval(ctx: &mut Ctx) -> TestResult {
    let ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    let buf = [0u8; 64];
    for len in [MAX_MSG_SIZE + 1, u32::MAX] {
        // SAFETY: Xen must refuse the length before reading the buffer.
        let rc = unsafe {
            v4v::raw_op(
                v4v_abi::op::SEND,
                &src as *const Addr as u64,
                &dst as *const Addr as u64,
                buf.as_ptr() as u64,
                len,
                PROTO_DGRAM,
            )
        };
        ensure_rc!(rc, EINVAL, "send len {len:#x}");
    }
    Ok(())
}

fn send_src_other_domain_eperm(ctx: &mut Ctx) -> TestResult {
    let ring = ctx.ring(1024)?;
    let other = ctx.other_domid()?;
    let src = Addr {
        port: ctx.port(),
        domain: other,
    };
    ensure_rc!(
        v4v::send(&src, &ring.addr(), b"spoof", PROTO_DGRAM),
        EPERM,
        "send as dom{other}"
    );
    let iovs = [iov(b"spoof")];
    ensure_rc!(
        v4v::sendv(&src, &ring.addr(), &iovs, PROTO_DGRAM),
        EPERM,
        "sendv as dom{other}"
    );
    ensure!(!ring.has_message(), "a spoofed message was delivered");
    Ok(())
}

fn send_no_ring_enotconn(ctx: &mut Ctx) -> TestResult {
    let src = ctx.fresh_addr()?;
    let nowhere = ctx.fresh_addr()?;
    ensure_rc!(
        v4v::send(&src, &nowhere, b"x", PROTO_DGRAM),
        ENOTCONN,
        "send to an unused port"
    );
    let no_domain = Addr {
        port: 1,
        domain: 0x7000,
    };
    ensure_rc!(
        v4v::send(&src, &no_domain, b"x", PROTO_DGRAM),
        ENOTCONN,
        "send to dom0x7000"
    );
    let iovs = [iov(b"x")];
    ensure_rc!(
        v4v::sendv(&src, &nowhere, &iovs, PROTO_DGRAM),
        ENOTCONN,
        "sendv to an unused port"
    );
    Ok(())
}

fn header_straddles_page_boundary(ctx: &mut Ctx) -> TestResult {
    // ring[] starts at byte 60, so ring offset 4036 is the page boundary;
    // a 4016-byte payload takes 4032 bytes and puts the next header at
    // 4032..4048, across it.
    let mut ring = ctx.ring(8128)?;
    let src = ctx.fresh_addr()?;
    let me = ctx.domid()?;
    let first = pattern(4016, 4);
    ensure_rc!(
        v4v::send(&src, &ring.addr(), &first, PROTO_DGRAM),
        4016,
        "send 4016"
    );
    expect_message(&mut ring, &src, me, PROTO_DGRAM, &first)?;
    ensure_eq!(ring.rx_ptr(), 4032, "rx_ptr after the first message");
    let second = pattern(50, 5);
    ensure_rc!(
        v4v::send(&src, &ring.addr(), &second, PROTO_DGRAM),
        50,
        "send 50"
    );
    let m = expect_message(&mut ring, &src, me, PROTO_DGRAM, &second)?;
    ensure_eq!(m.offset, 4032, "offset of the straddling header");
    Ok(())
}

fn send_partner_restricted(ctx: &mut Ctx) -> TestResult {
    // A ring reserved for another domain: we may not reach it, not even by
    // claiming to be that domain.
    let other = ctx.other_domid()?;
    let mut ring = Ring::new(ctx.port(), other, 1024);
    ensure_rc!(ring.register(), 0, "register with partner dom{other}");
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    ensure_rc!(
        v4v::send(&src, &dst, b"x", PROTO_DGRAM),
        ENOTCONN,
        "send to a ring for dom{other}"
    );
    let spoof = Addr {
        port: src.port,
        domain: other,
    };
    ensure_rc!(
        v4v::send(&spoof, &dst, b"x", PROTO_DGRAM),
        EPERM,
        "send claiming to be dom{other}"
    );
    ensure!(!ring.has_message(), "a message reached the restricted ring");
    // A ring for us (partner = our id) is reachable.
    let me = ctx.domid()?;
    let mut mine = Ring::new(ctx.port(), me, 1024);
    ensure_rc!(mine.register(), 0, "register with partner = self");
    ensure_rc!(
        v4v::send(&src, &mine.addr(), b"ok", PROTO_DGRAM),
        2,
        "send to a ring for us"
    );
    expect_message(&mut mine, &src, me, PROTO_DGRAM, b"ok")?;
    Ok(())
}

fn send_prefers_partner_ring(ctx: &mut Ctx) -> TestResult {
    // Two rings on one port: partner = us wins over partner = ANY.
    let me = ctx.domid()?;
    let port = ctx.port();
    let mut any = Ring::new(port, v4v_abi::DOMID_ANY, 1024);
    ensure_rc!(any.register(), 0, "register partner ANY");
    let mut mine = Ring::new(port, me, 1024);
    ensure_rc!(
        mine.register(),
        0,
        "register partner = self on the same port"
    );
    let src = ctx.fresh_addr()?;
    let dst = any.addr();
    ensure_rc!(v4v::send(&src, &dst, b"to mine", PROTO_DGRAM), 7, "send");
    ensure!(!any.has_message(), "message went to the partner-ANY ring");
    expect_message(&mut mine, &src, me, PROTO_DGRAM, b"to mine")?;
    ensure_rc!(mine.unregister(), 0, "unregister the partner ring");
    ensure_rc!(
        v4v::send(&src, &dst, b"to any", PROTO_DGRAM),
        6,
        "send again"
    );
    expect_message(&mut any, &src, me, PROTO_DGRAM, b"to any")?;
    Ok(())
}

fn register_replace_moves_ring(ctx: &mut Ctx) -> TestResult {
    // Registering an existing id on other pages replaces the ring.
    let port = ctx.port();
    let mut old = Ring::new(port, v4v_abi::DOMID_ANY, 1024);
    ensure_rc!(old.register(), 0, "register on the first pages");
    let mut new = Ring::new(port, v4v_abi::DOMID_ANY, 2048);
    ensure_rc!(new.register(), 0, "register the same id on other pages");
    let me = ctx.domid()?;
    let src = ctx.fresh_addr()?;
    let msg = pattern(1500, 8);
    ensure_rc!(
        v4v::send(&src, &new.addr(), &msg, PROTO_DGRAM),
        1500,
        "send 1500"
    );
    ensure!(!old.has_message(), "message went to the replaced ring");
    expect_message(&mut new, &src, me, PROTO_DGRAM, &msg)?;
    // Both Ring values name the same id: one unregister removes it.
    ensure_rc!(new.unregister(), 0, "unregister");
    ensure_rc!(
        old.unregister(),
        super::ENOENT,
        "unregister the replaced ring"
    );
    Ok(())
}

fn send_bad_pointers_efault(ctx: &mut Ctx) -> TestResult {
    let ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    let buf = [1u8; 16];
    let call = |s: u64, d: u64, b: u64| {
        // SAFETY: Xen only reads these; the bad ones are bad on purpose.
        unsafe { v4v::raw_op(v4v_abi::op::SEND, s, d, b, 16, PROTO_DGRAM) }
    };
    let (s, d, b) = (
        &src as *const Addr as u64,
        &dst as *const Addr as u64,
        buf.as_ptr() as u64,
    );
    ensure_rc!(call(UNMAPPED, d, b), EFAULT, "src unmapped");
    ensure_rc!(call(s, UNMAPPED, b), EFAULT, "dst unmapped");
    ensure_rc!(call(s, d, UNMAPPED), EFAULT, "buf unmapped");
    ensure_rc!(call(s, d, super::XEN_VA), EFAULT, "buf in Xen");
    ensure!(
        !ring.has_message(),
        "a message was delivered from a bad buffer"
    );
    Ok(())
}

/// Every pointer argument of every operation at the non-canonical alias of
/// a valid one (and at the first non-canonical address of each half): Xen
/// must answer -EFAULT and deliver or register nothing, whatever kind of
/// guest we are (an HVM guest's addresses are walked through its own page
/// tables, where bits 63..48 play no part).
fn non_canonical_pointers_efault(ctx: &mut Ctx) -> TestResult {
    use super::non_canonical as nc;
    let mut ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    let buf = [7u8; 16];
    let (s, d, b) = (
        &src as *const Addr as u64,
        &dst as *const Addr as u64,
        buf.as_ptr() as u64,
    );
    let send = |s: u64, d: u64, b: u64| {
        // SAFETY: Xen only reads these; the bad ones are bad on purpose.
        unsafe { v4v::raw_op(v4v_abi::op::SEND, s, d, b, 16, PROTO_DGRAM) }
    };
    for bad in [0x0000_8000_0000_0000, 0xffff_7fff_ffff_f000, nc(b)] {
        ensure_rc!(send(s, d, bad), EFAULT, "send buf {bad:#x}");
    }
    ensure_rc!(send(nc(s), d, b), EFAULT, "send src {:#x}", nc(s));
    ensure_rc!(send(s, nc(d), b), EFAULT, "send dst {:#x}", nc(d));
    let iovs = [iov(&buf), iov(&buf)];
    let bad_base = [
        iov(&buf),
        Iov {
            iov_base: nc(b),
            iov_len: 16,
        },
    ];
    ensure_rc!(
        v4v::sendv(&src, &dst, &bad_base, PROTO_DGRAM),
        EFAULT,
        "iov base {:#x}",
        nc(b)
    );
    // SAFETY: the iov array pointer is bad on purpose.
    let rc = unsafe {
        v4v::raw_op(
            v4v_abi::op::SENDV,
            s,
            d,
            nc(iovs.as_ptr() as u64),
            2,
            PROTO_DGRAM,
        )
    };
    ensure_rc!(rc, EFAULT, "iov array {:#x}", nc(iovs.as_ptr() as u64));
    ensure!(
        !ring.has_message(),
        "a message was delivered through a non-canonical pointer"
    );
    // SAFETY: ring data pointer bad on purpose.
    let rc = unsafe { v4v::raw_op(v4v_abi::op::NOTIFY, nc(b), 0, 0, 0, 0) };
    ensure_rc!(rc, EFAULT, "notify ring data {:#x}", nc(b));

    // Registering through the alias of a ring that is not registered, and
    // the real ring's pfn list through its alias.
    let other = Ring::new(ctx.port(), v4v_abi::DOMID_ANY, 1024);
    let list = other.pfn_list();
    // SAFETY: bad ring pointer on purpose; our own pfn list.
    let rc = unsafe { v4v::register_raw(nc(other.va()), list.as_ptr() as u64) };
    if rc == 0 {
        // SAFETY: undoes the registration Xen should have refused.
        unsafe { v4v::unregister_raw(nc(other.va())) };
    }
    ensure_rc!(rc, EFAULT, "register ring {:#x}", nc(other.va()));
    // SAFETY: our own ring; bad pfn list pointer on purpose.
    let rc = unsafe { v4v::register_raw(other.va(), nc(list.as_ptr() as u64)) };
    if rc == 0 {
        // SAFETY: as above.
        unsafe { v4v::unregister_raw(other.va()) };
    }
    ensure_rc!(rc, EFAULT, "pfn list {:#x}", nc(list.as_ptr() as u64));
    // SAFETY: the alias of a registered ring; Xen must not find it there.
    let rc = unsafe { v4v::unregister_raw(nc(ring.va())) };
    ensure_rc!(rc, EFAULT, "unregister ring {:#x}", nc(ring.va()));
    ensure_rc!(ring.unregister(), 0, "unregister the real ring");
    Ok(())
}

fn sendv_bad_iovs(ctx: &mut Ctx) -> TestResult {
    let ring = ctx.ring(1024)?;
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    let byte = [0u8; 1];
    let many = vec![iov(&byte); MAXIOV as usize + 1];
    ensure_rc!(
        v4v::sendv(&src, &dst, &many, PROTO_DGRAM),
        EINVAL,
        "niov 129"
    );
    ensure_rc!(
        v4v::sendv(&src, &dst, &many[..MAXIOV as usize], PROTO_DGRAM),
        MAXIOV as i64,
        "niov 128"
    );
    let mut ring = ring;
    while ring.recv()?.is_some() {}
    let bad = [
        iov(&byte),
        Iov {
            iov_base: UNMAPPED,
            iov_len: 8,
        },
    ];
    ensure_rc!(
        v4v::sendv(&src, &dst, &bad, PROTO_DGRAM),
        EFAULT,
        "iov base unmapped"
    );
    // SAFETY: the iov array pointer is invalid on purpose.
    let rc = unsafe {
        v4v::raw_op(
            v4v_abi::op::SENDV,
            &src as *const Addr as u64,
            &dst as *const Addr as u64,
            UNMAPPED,
            2,
            PROTO_DGRAM,
        )
    };
    ensure_rc!(rc, EFAULT, "iov array unmapped");
    let huge = [
        Iov {
            iov_base: byte.as_ptr() as u64,
            iov_len: MAX_MSG_SIZE as u64,
        },
        Iov {
            iov_base: byte.as_ptr() as u64,
            iov_len: 1,
        },
    ];
    ensure_rc!(
        v4v::sendv(&src, &dst, &huge, PROTO_DGRAM),
        EINVAL,
        "total MAX_MSG_SIZE + 1"
    );
    let wrap = [
        Iov {
            iov_base: byte.as_ptr() as u64,
            iov_len: u64::MAX,
        },
        Iov {
            iov_base: byte.as_ptr() as u64,
            iov_len: 2,
        },
    ];
    ensure_rc!(
        v4v::sendv(&src, &dst, &wrap, PROTO_DGRAM),
        EINVAL,
        "total wraps u64"
    );
    ensure!(!ring.has_message(), "a message was delivered from bad iovs");
    Ok(())
}

fn corrupt_rx_ptr_contained(ctx: &mut Ctx) -> TestResult {
    // One page: ring[] ends at 60 + 256; the rest of the page is a canary.
    let mut ring = Ring::new(ctx.port(), v4v_abi::DOMID_ANY, 256);
    let (slack, slack_len) = ring.slack();
    // SAFETY: the slack is ours: past ring[] in the ring's last page.
    unsafe { core::ptr::write_bytes(slack, 0xa5, slack_len) };
    ensure_rc!(ring.register(), 0, "register");
    let before = ring.header();
    let src = ctx.fresh_addr()?;
    let dst = ring.addr();
    for bad in [8u32, 7, 256, 4096, 0xffff_fff0] {
        ring.set_rx_ptr(bad);
        for _ in 0..4 {
            // Whatever Xen answers, it must stay inside ring[].
            let _ = v4v::send(&src, &dst, &pattern(40, 5), PROTO_DGRAM);
        }
        let tx = ring.tx_ptr();
        ensure!(
            tx < 256 && tx.is_multiple_of(16),
            "tx_ptr {tx} after rx_ptr {bad}"
        );
    }
    // SAFETY: as above.
    let canary = unsafe { core::slice::from_raw_parts(slack, slack_len) };
    ensure!(
        canary.iter().all(|&b| b == 0xa5),
        "Xen wrote past ring[] (byte {:?} of the slack)",
        canary.iter().position(|&b| b != 0xa5)
    );
    let after = ring.header();
    let (m0, m1, l0, l1) = (before.magic, after.magic, before.len, after.len);
    ensure_eq!((m1, l1), (m0, l0), "ring header (magic, len)");
    ensure_eq!(after.id, before.id, "ring id");
    // A sane rx_ptr makes the ring usable again.
    ring.set_rx_ptr(ring.tx_ptr());
    ensure_rc!(
        v4v::send(&src, &dst, &pattern(40, 6), PROTO_DGRAM),
        40,
        "send after repair"
    );
    let me = ctx.domid()?;
    expect_message(&mut ring, &src, me, PROTO_DGRAM, &pattern(40, 6))?;
    Ok(())
}
