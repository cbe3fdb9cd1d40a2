//! Role `h`: the hostile guest. While `a` and `b` exchange verified
//! traffic, it throws bad calls at the hypervisor, each with the answer
//! the ABI promises, and counts them:
//!
//! - garbage and hypervisor pointers in every pointer argument;
//! - frames that are not its own writable RAM (a frame of `b`'s ring that
//!   `b` hands it, frames of Xen or dom0, its own page tables), the same
//!   frame twice in one ring, two rings on the same frames;
//! - ring and message lengths at every boundary, huge iov and notify
//!   entry counts, unknown commands;
//! - `rx_ptr` rewritten by vCPU 1 while vCPU 0 sends into the ring, with
//!   a check that Xen never writes outside the ring;
//! - ring registrations up to the per-domain limit and past it, and a
//!   thousand queued waits;
//! - lying about its source domain, sending to rings reserved for others.
//!
//! As a PVH guest its frame numbers are GFNs, and it adds the attacks of a
//! translated guest: GFNs that are not ordinary RAM (the local APIC and I/O
//! APIC holes, frames above its memory, the shared info page and a grant
//! table frame placed in its physmap), the non-canonical aliases of its own
//! pointers (which Xen's walk of its page tables would otherwise follow),
//! and, once, a registered ring's frame ballooned out and one replaced by
//! a grant table frame: Xen keeps writing the page it pinned, and the page
//! the guest gets at that GFN never shows what Xen wrote.
//!
//! The ring and wait limits are exercised once, first; then rounds of
//! everything else (and the rx_ptr race) repeat, overlapping `a`'s
//! traffic, until `b` says "hostile-stop".

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use v4v_abi::{
    errno, op, Addr, Iov, RingDataEnt, RingDataHeader, DOMID_ANY, MAX_MSG_SIZE, MAX_RING_PAGES,
    MAX_RING_SIZE, PAGE_SIZE, PFN_LIST_MAGIC, PROTO_DGRAM, RING_DATA_MAGIC, RING_RX_PTR_OFFSET,
};

use super::{port, report, Node};
use crate::println;
use crate::smp;
use crate::tests::{non_canonical, rc_name, UNMAPPED, XEN_VA};
use crate::v4v::{self, pfn_list, ring_header, Pages, Ring, RingData};
use crate::xen::{grant, mm, start_info, time};

const EFAULT: i64 = -errno::EFAULT;
const EINVAL: i64 = -errno::EINVAL;
const EPERM: i64 = -errno::EPERM;
const ENOTCONN: i64 = -errno::ENOTCONN;
const ENOSPC: i64 = -errno::ENOSPC;
const ENOSYS: i64 = -errno::ENOSYS;
const EAGAIN: i64 = -errno::EAGAIN;
const ENOBUFS: i64 = -errno::ENOBUFS;

/// Bad pointers: unmapped, non-canonical, Xen's direct map, Xen's text,
/// the very top of the address space.
const BAD_PTRS: [u64; 5] = [
    UNMAPPED,
    0x8000_0000_0000_0000,
    XEN_VA,
    0xffff_82d0_4000_0000,
    0xffff_ffff_ffff_f000,
];

/// Whether `p` lies in the non-canonical hole (the answers to pointers
/// there go on record).
fn non_canonical_range(p: u64) -> bool {
    (0x0000_8000_0000_0000..0xffff_8000_0000_0000).contains(&p)
}

/// Bad calls each run makes at least (rounds go on until then).
const MIN_BAD_CALLS: u64 = 5_000;

/// Per-domain ring limit of the engine.
const RING_LIMIT: usize = 1024;

/// Tally of bad calls and what went wrong.
struct Tally {
    calls: u64,
    wrong: u64,
    failures: Vec<String>,
    /// Print the answers of the checks made with [`Tally::shown`] (the
    /// first round: the record of what Xen answered to each attack).
    show: bool,
}

impl Tally {
    /// As [`Tally::check`], printing Xen's answer when `show` is on.
    fn shown(&mut self, what: &str, got: i64, want: &[i64]) {
        if self.show {
            println!("h: {what}: {}", rc_name(got));
        }
        self.check(what, got, want);
    }

    /// Records one call whose result must be one of `want`.
    fn check(&mut self, what: &str, got: i64, want: &[i64]) {
        self.calls += 1;
        if !want.contains(&got) {
            self.wrong += 1;
        }
        if !want.contains(&got) && self.failures.len() < 8 {
            let w: Vec<String> = want.iter().map(|&r| rc_name(r)).collect();
            self.failures.push(format!(
                "{what}: got {}, want {}",
                rc_name(got),
                w.join(" or ")
            ));
        }
    }

    fn fail(&mut self, what: String) {
        self.wrong += 1;
        if self.failures.len() < 8 {
            self.failures.push(what);
        }
    }
}

fn op6(cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
    // SAFETY: every pointer passed here is either invalid on purpose or
    // points to memory of this module that Xen may read or write (rings,
    // ring data and lists built below).
    unsafe { v4v::raw_op(cmd, a1, a2, a3, a4, a5) }
}

/// Registers `len` on `pages` with the given frame list (raw).
fn register_with(pages: &Pages, port: u32, len: u32, frames: &[u64], npage: u32) -> i64 {
    pages.write_ring_header(&ring_header(port, DOMID_ANY, len));
    let list = pfn_list(PFN_LIST_MAGIC, npage, frames);
    op6(op::REGISTER_RING, pages.va(), list.as_ptr() as u64, 0, 0, 0)
}

fn unregister_port(pages: &Pages, port: u32, len: u32) -> i64 {
    pages.write_ring_header(&ring_header(port, DOMID_ANY, len));
    op6(op::UNREGISTER_RING, pages.va(), 0, 0, 0, 0)
}

/// The cheap items, run every round.
fn battery(t: &mut Tally, n: &Node, own: &Ring, bad_frames: &[u64]) {
    let me = n.me;
    let src = n.addr(port::SENDER);
    let dst_own = own.addr();
    let b = n.cast.b;
    let msg = [0x5au8; 64];
    let srcp = &src as *const Addr as u64;
    let dstp = &dst_own as *const Addr as u64;
    let own_list = own.pfn_list();
    // The fixed bad pointers, and the non-canonical aliases of good ones.
    let mut bad_ptrs = BAD_PTRS.to_vec();
    bad_ptrs.extend([non_canonical(own.va()), non_canonical(srcp)]);

    for &bad in &bad_ptrs {
        // The aliases' answers go on record (t.shown) in the first round.
        let show = t.show;
        t.show = show && non_canonical_range(bad);
        t.shown(
            &format!("register: ring pointer {bad:#x}"),
            op6(op::REGISTER_RING, bad, own_list.as_ptr() as u64, 0, 0, 0),
            &[EFAULT, EINVAL],
        );
        t.shown(
            &format!("unregister: ring pointer {bad:#x}"),
            op6(op::UNREGISTER_RING, bad, 0, 0, 0, 0),
            &[EFAULT, EINVAL],
        );
        t.shown(
            &format!("send: src pointer {bad:#x}"),
            op6(op::SEND, bad, dstp, msg.as_ptr() as u64, 64, PROTO_DGRAM),
            &[EFAULT],
        );
        t.shown(
            &format!("send: dst pointer {bad:#x}"),
            op6(op::SEND, srcp, bad, msg.as_ptr() as u64, 64, PROTO_DGRAM),
            &[EFAULT],
        );
        t.shown(
            &format!("send: payload pointer {bad:#x}"),
            op6(op::SEND, srcp, dstp, bad, 64, PROTO_DGRAM),
            &[EFAULT],
        );
        t.shown(
            &format!("sendv: iov array {bad:#x}"),
            op6(op::SENDV, srcp, dstp, bad, 2, PROTO_DGRAM),
            &[EFAULT],
        );
        let iovs = [
            Iov {
                iov_base: msg.as_ptr() as u64,
                iov_len: 8,
            },
            Iov {
                iov_base: bad,
                iov_len: 64,
            },
        ];
        t.shown(
            &format!("sendv: iov base {bad:#x}"),
            op6(op::SENDV, srcp, dstp, iovs.as_ptr() as u64, 2, PROTO_DGRAM),
            &[EFAULT],
        );
        t.shown(
            &format!("notify: ring data {bad:#x}"),
            op6(op::NOTIFY, bad, 0, 0, 0, 0),
            &[EFAULT],
        );
        t.shown(
            &format!("viptables_add: rule {bad:#x}"),
            op6(op::VIPTABLES_ADD, bad, 0, 0, 0, 0),
            &[EPERM, EFAULT],
        );
        t.shown(
            &format!("viptables_list: list {bad:#x}"),
            op6(op::VIPTABLES_LIST, bad, 0, 0, 0, 0),
            &[EPERM, EFAULT],
        );
        t.show = show;
    }
    // A pfn list pointer that is bad.
    let p = Pages::alloc(1);
    p.write_ring_header(&ring_header(0x9000, DOMID_ANY, 256));
    for &bad in &bad_ptrs {
        let show = t.show;
        t.show = show && non_canonical_range(bad);
        t.shown(
            &format!("register: pfn list pointer {bad:#x}"),
            op6(op::REGISTER_RING, p.va(), bad, 0, 0, 0),
            &[EFAULT],
        );
        t.show = show;
    }
    t.check(
        "register: misaligned ring",
        op6(
            op::REGISTER_RING,
            p.va() + 8,
            own_list.as_ptr() as u64,
            0,
            0,
            0,
        ),
        &[EINVAL],
    );

    for &f in bad_frames {
        t.shown(
            &format!("register: frame {f:#x} that is not our writable RAM"),
            register_with(&p, 0x9000, 256, &[f], 1),
            &[EINVAL],
        );
    }
    // Lengths at every boundary.
    let mine = p.mfns();
    for len in [
        0u32,
        16,
        32,
        47,
        49,
        50,
        4008,
        MAX_RING_SIZE + 16,
        u32::MAX,
        0x8000_0000,
    ] {
        t.check(
            &format!("register: bad length {len}"),
            register_with(&p, 0x9000, len, &mine, 1),
            &[EINVAL],
        );
    }
    for (len, want) in [(48u32, 0i64), (64, 0), (4032, 0)] {
        t.check(
            &format!("register: boundary length {len}"),
            register_with(&p, 0x9000, len, &mine, 1),
            &[want],
        );
        t.check("unregister", unregister_port(&p, 0x9000, len), &[0]);
    }
    t.check(
        "register: one page short",
        register_with(&p, 0x9000, 4048, &mine, 1),
        &[EINVAL],
    );
    t.check(
        "register: npage 0",
        register_with(&p, 0x9000, 256, &[], 0),
        &[EINVAL],
    );
    t.check(
        "register: npage over the limit",
        register_with(&p, 0x9000, 256, &mine, MAX_RING_PAGES + 1),
        &[EINVAL, EFAULT],
    );
    t.check(
        "register: npage u32::MAX",
        register_with(&p, 0x9000, 256, &mine, u32::MAX),
        &[EINVAL, EFAULT],
    );
    let list = pfn_list(PFN_LIST_MAGIC ^ 1, 1, &mine);
    t.check(
        "register: bad pfn list magic",
        op6(op::REGISTER_RING, p.va(), list.as_ptr() as u64, 0, 0, 0),
        &[EINVAL],
    );
    t.check(
        "unregister: unknown ring",
        unregister_port(&p, 0x9001, 256),
        &[-errno::ENOENT],
    );

    // Message lengths.
    let big = Pages::alloc(2);
    t.check(
        "send: empty message",
        v4v::send(&src, &dst_own, &[], PROTO_DGRAM),
        &[0, EAGAIN],
    );
    for len in [MAX_MSG_SIZE + 1, u32::MAX, 0x8000_0000] {
        t.check(
            &format!("send: length {len} over the maximum"),
            op6(op::SEND, srcp, dstp, big.va(), len, PROTO_DGRAM),
            &[EINVAL],
        );
    }
    t.check(
        "send: never fits",
        op6(op::SEND, srcp, dstp, big.va(), own.len(), PROTO_DGRAM),
        &[ENOBUFS],
    );
    t.check(
        "send: max size from a short buffer",
        op6(op::SEND, srcp, dstp, big.va(), MAX_MSG_SIZE, PROTO_DGRAM),
        &[EFAULT, ENOBUFS],
    );
    let iovs = vec![v4v::iov(&msg); 129];
    t.check(
        "sendv: 129 iovs",
        op6(
            op::SENDV,
            srcp,
            dstp,
            iovs.as_ptr() as u64,
            129,
            PROTO_DGRAM,
        ),
        &[EINVAL],
    );
    t.check(
        "sendv: u32::MAX iovs",
        op6(
            op::SENDV,
            srcp,
            dstp,
            iovs.as_ptr() as u64,
            u32::MAX,
            PROTO_DGRAM,
        ),
        &[EINVAL],
    );
    let huge = [
        Iov {
            iov_base: big.va(),
            iov_len: u64::MAX / 2 + 1,
        },
        Iov {
            iov_base: big.va(),
            iov_len: u64::MAX / 2 + 1,
        },
    ];
    t.check(
        "sendv: lengths that overflow",
        op6(op::SENDV, srcp, dstp, huge.as_ptr() as u64, 2, PROTO_DGRAM),
        &[EINVAL],
    );
    let over = [Iov {
        iov_base: big.va(),
        iov_len: MAX_MSG_SIZE as u64 + 1,
    }];
    t.check(
        "sendv: one iov over the maximum",
        op6(op::SENDV, srcp, dstp, over.as_ptr() as u64, 1, PROTO_DGRAM),
        &[EINVAL],
    );

    // notify with bad headers and counts.
    let e = RingDataEnt {
        ring: dst_own,
        ..Default::default()
    };
    for (magic, nent) in [
        (RING_DATA_MAGIC ^ 1, 1u32),
        (RING_DATA_MAGIC, 4097),
        (RING_DATA_MAGIC, u32::MAX),
    ] {
        let mut rd = RingData::with_header(
            RingDataHeader {
                magic,
                nent,
                ..Default::default()
            },
            &[e],
        );
        t.check(
            "notify: bad magic or entry count",
            rd.notify(),
            &[EINVAL, EFAULT],
        );
    }

    // Lies and other people's rings.
    let to_b = Addr {
        port: port::DGRAM,
        domain: b,
    };
    for fake in [b, 0, n.cast.a, me.wrapping_add(1) & 0x7fef] {
        if fake == me {
            continue;
        }
        let lie = Addr {
            port: port::SENDER,
            domain: fake,
        };
        t.check(
            &format!("send: posing as dom{fake}"),
            v4v::send(&lie, &to_b, &msg, PROTO_DGRAM),
            &[EPERM],
        );
    }
    let reserved = Addr {
        port: port::PARTNER,
        domain: b,
    };
    t.check(
        "send: ring reserved for a",
        v4v::send(&src, &reserved, &msg, PROTO_DGRAM),
        &[ENOTCONN],
    );
    for d in [0x7ff0u16, DOMID_ANY, 0x7ff4, 0xffff] {
        t.check(
            &format!("send: to no such domain {d:#x}"),
            v4v::send(&src, &Addr { port: 1, domain: d }, &msg, PROTO_DGRAM),
            &[ENOTCONN],
        );
    }
    for cmd in [0u32, 9, 42, u32::MAX] {
        t.check(
            &format!("unknown command {cmd}"),
            op6(cmd, 0, 0, 0, 0, 0),
            &[ENOSYS],
        );
    }
    let rule = v4v_abi::ViptablesRule::default();
    t.check(
        "viptables_add from a domU",
        v4v::viptables_add(&rule, 0),
        &[EPERM],
    );
    t.check(
        "viptables flush from a domU",
        v4v::viptables_del(None, -1),
        &[EPERM],
    );
}

/// The same frame twice in one ring, and two rings on the same frames:
/// Xen may accept them, but must stay inside the frames.
fn overlaps(t: &mut Tally, n: &Node) {
    let src = n.addr(port::SENDER);
    let p = Pages::alloc(2);
    let f = p.mfn(0);
    let len = 4096u32;
    let rc = register_with(&p, 0x9100, len, &[f, f], 2);
    t.check("register: one frame twice", rc, &[0, EINVAL]);
    if rc == 0 {
        let dst = Addr {
            port: 0x9100,
            domain: n.me,
        };
        for i in 0..40 {
            t.check(
                "send into an aliased ring",
                v4v::send(&src, &dst, &[i as u8; 200], PROTO_DGRAM),
                &[200, EAGAIN],
            );
        }
        t.check(
            "unregister the aliased ring",
            unregister_port(&p, 0x9100, len),
            &[0, -errno::ENOENT],
        );
        // The header may have been overwritten by the alias: try by id.
        let _ = unregister_port(&p, 0x9100, len);
    }
    let q = Pages::alloc(1);
    let mine = q.mfns();
    t.check(
        "register: first ring on a frame",
        register_with(&q, 0x9200, 1024, &mine, 1),
        &[0],
    );
    t.check(
        "register: second ring on the same frame",
        register_with(&q, 0x9201, 1024, &mine, 1),
        &[0, EINVAL],
    );
    for port in [0x9200u32, 0x9201] {
        let dst = Addr { port, domain: n.me };
        t.check(
            "send into a shared frame",
            v4v::send(&src, &dst, &[1u8; 100], PROTO_DGRAM),
            &[100, EAGAIN, ENOTCONN],
        );
    }
    for port in [0x9200u32, 0x9201] {
        t.check(
            "unregister a ring on a shared frame",
            unregister_port(&q, port, 1024),
            &[0, -errno::ENOENT],
        );
    }
    if register_with(&q, 0x9200, 1024, &mine, 1) == 0 {
        let _ = unregister_port(&q, 0x9200, 1024);
    }
}

/// Registers rings until the per-domain limit, one past it, queues a
/// wait on each, then takes them all down.
fn limits(t: &mut Tally, n: &Node, already: usize) {
    let p = Pages::alloc(1);
    let mine = p.mfns();
    let base = 0x10_0000u32;
    let mut ok = 0usize;
    let want_ok = RING_LIMIT - already;
    for i in 0..want_ok + 50 {
        let rc = register_with(&p, base + i as u32, 64, &mine, 1);
        let want = if i < want_ok { 0 } else { ENOSPC };
        t.check("register up to the ring limit", rc, &[want]);
        if rc == 0 {
            ok += 1;
        }
    }
    // A wait on each of them (64-byte rings never have 100 bytes free).
    let ents: Vec<RingDataEnt> = (0..ok)
        .map(|i| RingDataEnt {
            ring: Addr {
                port: base + i as u32,
                domain: n.me,
            },
            space_required: 100,
            ..Default::default()
        })
        .collect();
    let mut rd = RingData::new(&ents);
    t.check("notify: a wait on every ring", rd.notify(), &[0, ENOSPC]);
    let pending = (0..ents.len())
        .filter(|&i| rd.ent(i).flags & v4v_abi::RingDataFlags::PENDING.bits() != 0)
        .count();
    println!(
        "h: {ok} rings registered (the limit is {RING_LIMIT} a domain), {pending} waits queued"
    );
    if pending < 1000 {
        t.fail(format!("only {pending} waits queued"));
    }
    for i in 0..ok {
        t.check("unregister", unregister_port(&p, base + i as u32, 64), &[0]);
    }
}

static SCRIBBLE_AT: AtomicU64 = AtomicU64::new(0);
static SCRIBBLE_STOP: AtomicBool = AtomicBool::new(false);
static SCRIBBLES: AtomicU64 = AtomicU64::new(0);

/// vCPU 1: rewrites the ring's rx_ptr as fast as it can with values good
/// and bad (unaligned, past the end, huge).
fn scribbler() {
    let at = SCRIBBLE_AT.load(Ordering::Acquire) as *mut u32;
    let mut x: u32 = 0x1234_5678;
    let mut n = 0u64;
    while !SCRIBBLE_STOP.load(Ordering::Acquire) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let v = match n % 4 {
            0 => (x % 8192) & !15,
            1 => x % 8192,
            2 => x,
            _ => 4096 + (x % 64) * 16,
        };
        // SAFETY: `at` is the rx_ptr field of a ring that vCPU 0 keeps
        // allocated until this loop has stopped (it joins vCPU 1 first).
        unsafe { at.write_volatile(v) };
        n += 1;
    }
    SCRIBBLES.store(n, Ordering::Release);
}

/// vCPU 0 sends into a ring of our own while vCPU 1 scribbles over its
/// rx_ptr; Xen must never write outside ring[] nor publish a bad tx_ptr.
fn rx_race(t: &mut Tally, n: &Node, verbose: bool) {
    let len = 4096u32;
    // Three pages: the ring needs two; the third must stay untouched.
    let mut ring = Ring::with_pages(0x9300, n.me, len, 3);
    let rc = ring.register();
    t.check("register the race ring", rc, &[0]);
    if rc != 0 {
        return;
    }
    let guard_from = 60 + len as usize;
    SCRIBBLE_AT.store(ring.va() + RING_RX_PTR_OFFSET as u64, Ordering::Release);
    SCRIBBLE_STOP.store(false, Ordering::Release);
    if let Err(rc) = smp::start(1, scribbler) {
        t.fail(format!("starting vCPU 1: {rc}"));
        return;
    }
    let src = n.addr(port::SENDER);
    let dst = ring.addr();
    let mut delivered = 0;
    let mut bad_tx = 0;
    for i in 0..3000u32 {
        let size = 1 + (i as usize * 131) % 900;
        let rc = v4v::send(&src, &dst, &vec![0xa5u8; size], PROTO_DGRAM);
        t.check("send while rx_ptr is rewritten", rc, &[size as i64, EAGAIN]);
        if rc > 0 {
            delivered += 1;
        }
        let tx = ring.tx_ptr();
        if tx >= len || !tx.is_multiple_of(16) {
            bad_tx += 1;
        }
    }
    SCRIBBLE_STOP.store(true, Ordering::Release);
    smp::join(1);
    if bad_tx > 0 {
        t.fail(format!("Xen published a bad tx_ptr {bad_tx} times"));
    }
    // SAFETY: the ring spans three pages of ours; bytes past ring[] are
    // never Xen's to write.
    let outside = (guard_from..3 * PAGE_SIZE)
        .filter(|&i| unsafe { ring.pages().as_ptr().add(i).read_volatile() } != 0)
        .count();
    if outside > 0 {
        t.fail(format!("{outside} bytes written past the end of the ring"));
    }
    if verbose {
        println!(
        "h: rx_ptr race: {delivered} of 3000 sends delivered while vCPU 1 rewrote rx_ptr {} times; nothing written outside the ring",
        SCRIBBLES.load(Ordering::Acquire)
    );
    }
    ring.set_rx_ptr(0);
    let _ = ring.unregister();
}

/// Frames a PV guest must not get as ring frames: b's ring frame (another
/// live domain's), low frames of Xen or dom0, frames beyond RAM, our own
/// top-level page table (Xen owns its type: it can never be writable).
fn pv_bad_frames(foreign: u64) -> Vec<u64> {
    let si = start_info::get();
    let pt = mm::bootstrap_mfn(si.pt_base).unwrap_or(0);
    vec![foreign, 0, 1, 0x100, 0xf_ffff_ffff, u64::MAX, pt]
}

/// GFNs a PVH guest must not get as ring frames: the local APIC and I/O
/// APIC pages (emulated or absent, never RAM), frames above its memory and
/// beyond any p2m, the shared info page and a grant table frame it placed
/// in its physmap (Xen's pages). (b's frame number means nothing here: in
/// our physmap it is a GFN of our own.)
fn pvh_bad_frames(t: &mut Tally) -> Vec<u64> {
    let si = start_info::get();
    let mut frames = vec![
        0xfee00,
        0xfec00,
        si.nr_pages + 0x100,
        0xf_ffff_ffff,
        u64::MAX,
    ];
    if let Some(gfn) = mm::window_frame(mm::SLOT_SHARED_INFO) {
        frames.push(gfn);
    }
    // Grant table frame 0 at a heap page's GFN; the page stays Xen's.
    let page = Pages::alloc(1);
    let gfn = mm::mfn_of(page.va()).unwrap_or(0);
    let rc = mm::add_to_physmap(mm::XENMAPSPACE_GRANT_TABLE, 0, gfn);
    t.shown("add_to_physmap: grant frame 0 at a heap GFN", rc, &[0]);
    if rc == 0 {
        core::mem::forget(page);
        frames.push(gfn);
    }
    frames
}

/// Whether `page` holds a run of 32 bytes of `byte`.
fn shows(page: *const u8, byte: u8) -> bool {
    let mut run = 0;
    for i in 0..PAGE_SIZE {
        // SAFETY: `page` is a mapped page of ours, read byte by byte.
        if unsafe { page.add(i).read_volatile() } == byte {
            run += 1;
            if run == 32 {
                return true;
            }
        } else {
            run = 0;
        }
    }
    false
}

/// A registered ring's only frame leaves our physmap (ballooned out, or
/// replaced by grant table frame 1) while the ring stays registered. Xen
/// must keep the page it pinned: sends into the ring still succeed, and the
/// page we then find at that GFN (a fresh one, or the grant frame) never
/// shows what Xen wrote into the ring. Unregistering lets the page go.
fn physmap_under_ring(t: &mut Tally, n: &Node) {
    let src = n.addr(port::SENDER);
    for (round, how) in ["ballooned out", "replaced by a grant frame"]
        .into_iter()
        .enumerate()
    {
        let ring_port = 0x9600 + round as u32;
        let mut ring = Ring::new(ring_port, n.me, 1024);
        t.shown("register a ring to pull out", ring.register(), &[0]);
        let Some(gfn) = mm::mfn_of(ring.va()) else {
            t.fail("ring page without a frame".into());
            return;
        };
        let dst = ring.addr();
        let gone = if round == 0 {
            mm::decrease_reservation(&mut [gfn]) == 1
        } else {
            mm::add_to_physmap(mm::XENMAPSPACE_GRANT_TABLE, 1, gfn) == 0
        };
        if !gone {
            t.fail(format!("ring frame {gfn:#x} could not be {how}"));
            return;
        }
        let byte = 0xc3 ^ round as u8;
        let payload = [byte; 200];
        for _ in 0..4 {
            t.shown(
                &format!("send into a ring whose frame was {how}"),
                v4v::send(&src, &dst, &payload, PROTO_DGRAM),
                &[200],
            );
        }
        if round == 1 {
            // SAFETY: the ring's VA maps GFN `gfn`, now grant frame 1.
            if shows(ring.va() as *const u8, byte) {
                t.fail("the grant frame at the ring's GFN shows the ring's messages".into());
            }
            let rc = mm::remove_from_physmap(gfn);
            t.shown("remove_from_physmap: the grant frame", rc, &[0]);
        }
        t.shown(
            &format!("populate the GFN of a ring frame {how}"),
            mm::populate_physmap(&mut [gfn]),
            &[1],
        );
        if shows(ring.va() as *const u8, byte) {
            t.fail(format!(
                "the page now at GFN {gfn:#x} shows the ring's messages"
            ));
        }
        // The fresh page has no header: unregister names the ring by it.
        ring.pages()
            .write_ring_header(&ring_header(ring_port, n.me, 1024));
        t.shown(
            &format!("unregister a ring whose frame was {how}"),
            ring.unregister(),
            &[0],
        );
    }
}

/// b's marked page, granted to us, mapped at an emptied GFN of ours (a
/// balloon driver's way): we must see b's page there, and Xen must refuse
/// that GFN as a ring frame (a grant mapping is not our RAM).
fn granted_page(t: &mut Tally, b: u16, gref: u32) {
    let page = Pages::alloc(1);
    let gfn = page.mfn(0);
    let hdr = Pages::alloc(1);
    t.shown(
        "decrease_reservation: a page to map a grant at",
        mm::decrease_reservation(&mut [gfn]),
        &[1],
    );
    match grant::map(b, gref, gfn << 12) {
        Ok(handle) => {
            t.shown("map b's grant into our physmap", 0, &[0]);
            if !shows(page.va() as *const u8, super::roles::GRANT_MARK) {
                t.fail("b's granted page is not what we see at its GFN".into());
            }
            t.shown(
                &format!("register: granted frame at GFN {gfn:#x}"),
                register_with(&hdr, 0x9700, 256, &[gfn], 1),
                &[EINVAL],
            );
            t.shown("unmap b's grant", grant::unmap(gfn << 12, handle), &[0]);
        }
        Err(rc) => t.shown("map b's grant into our physmap", rc, &[0]),
    }
    t.shown(
        "populate the GFN the grant was mapped at",
        mm::populate_physmap(&mut [gfn]),
        &[1],
    );
}

pub fn run(mut n: Node) {
    let b = n.cast.b;
    // b sends one of its ring frames along (a frame of another live
    // domain) and the reference of a page it grants us.
    let (foreign, gref) = match n.hear_within(b, "hostile-go", 1_200_000) {
        Ok(rest) => {
            let mut words = rest.split_whitespace();
            let foreign = words
                .next()
                .and_then(|w| w.parse::<u64>().ok())
                .unwrap_or(0);
            (foreign, words.next().and_then(|w| w.parse::<u32>().ok()))
        }
        Err(e) => {
            println!("V4VT bail out! h: {e}");
            return;
        }
    };
    let t0 = time::now_ns();
    let mut t = Tally {
        calls: 0,
        wrong: 0,
        failures: Vec::new(),
        show: true,
    };
    // A ring of our own (partner: us) to aim the calls at.
    let mut own = Ring::new(0x9400, n.me, 1024);
    t.check("register our target ring", own.register(), &[0]);
    let bad_frames = if crate::pvh::is_pvh() {
        pvh_bad_frames(&mut t)
    } else {
        pv_bad_frames(foreign)
    };
    // The heavy items first: the control ring and the target ring
    // already count towards the ring limit.
    limits(&mut t, &n, 2);
    if crate::pvh::is_pvh() {
        physmap_under_ring(&mut t, &n);
        match gref {
            Some(gref) => granted_page(&mut t, b, gref),
            None => t.fail("b granted no page".into()),
        }
    }
    // Now b lets a's traffic start, and every round overlaps it.
    let _ = n.tell(b, "hostile-running");
    let mut rounds = 0u32;
    let mut stop = false;
    loop {
        rounds += 1;
        battery(&mut t, &n, &own, &bad_frames);
        t.show = false;
        overlaps(&mut t, &n);
        rx_race(&mut t, &n, rounds == 1);
        // Keep the target ring drained so that sends keep hitting checks.
        own.set_rx_ptr(own.tx_ptr());
        v4v::notify_all();
        stop = stop || n.heard(b, "hostile-stop").is_some();
        if stop && t.calls >= MIN_BAD_CALLS {
            break;
        }
        if time::passed(t0 + 900_000_000_000) {
            t.fail("b never said stop".into());
            break;
        }
    }
    let ms = (time::now_ns() - t0) / 1_000_000;
    println!(
        "h: {} bad calls in {rounds} rounds over {ms} ms, {} answered otherwise than the ABI says",
        t.calls, t.wrong
    );
    println!("V4VD figure hostile-bad-calls {}", t.calls);
    if t.calls < MIN_BAD_CALLS {
        t.fail(format!(
            "only {} bad calls (at least {MIN_BAD_CALLS})",
            t.calls
        ));
    }
    report(
        "hostile.bad-calls-refused",
        if t.failures.is_empty() {
            Ok(())
        } else {
            Err(t.failures.join("; "))
        },
    );
    let _ = n.tell(b, "hostile-done");
}
