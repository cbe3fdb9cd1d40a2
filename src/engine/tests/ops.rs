//! Host tests of every operation against the simulated hypervisor: each row
//! of the ABI's error table, the ring arithmetic, and teardown.
use crate::abi::{
    errno, op, Addr, Iov, RingDataFlags, ViptablesRule, DOMID_ANY, DOMID_WILDCARD, MAXENT, MAXIOV,
    MAX_MSG_SIZE, MAX_RING_SIZE, PORT_ANY, PROTO_DGRAM, PROTO_STREAM, RING_DATA_MAGIC, RING_MAGIC,
};
use crate::engine::{MAX_RINGS_PER_DOMAIN, MAX_WAITS_PER_DOMAIN};
use crate::sim::client::{Guest, GuestRing, Host, Msg};
use crate::sim::Sim;
use std::vec;
use std::vec::Vec;

const A: u16 = 1;
const B: u16 = 2;
const C: u16 = 3;

fn host() -> Host {
    Host::new(&[0, A, B, C], 256)
}

fn e(x: i64) -> i64 {
    -x
}

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// B registers a ring (partner ANY) of `len` bytes on port 80.
fn b_ring(h: &Host, len: u32) -> (Guest, GuestRing) {
    let b = h.guest(B, 4);
    let r = b.ring(h, 80, DOMID_ANY, len);
    assert_eq!(r.register(h), 0);
    (b, r)
}

fn dst(port: u32, dom: u16) -> Addr {
    Addr { port, domain: dom }
}

// ---- dispatch --------------------------------------------------------------

#[test]
fn unknown_cmd_is_enosys() {
    let h = host();
    for cmd in [0, 9, 43, 0xffff_ffff] {
        assert_eq!(h.call(A, cmd, 0, 0, 0, 0, 0), e(errno::ENOSYS));
    }
}

// ---- register / unregister --------------------------------------------------

#[test]
fn register_writes_back_real_domain_and_tx() {
    let h = host();
    let b = h.guest(B, 4);
    let r = b.ring(&h, 80, A, 4096);
    // The guest claims another domain in its id: Xen overwrites it.
    let mut id = r.id;
    id.addr.domain = 7;
    h.sim.write(B, r.va + 8, zerocopy::IntoBytes::as_bytes(&id));
    assert_eq!(r.register(&h), 0);
    let hdr = r.header(&h);
    assert_eq!({ hdr.id.addr.domain }, B);
    assert_eq!({ hdr.id.partner }, A);
    assert_eq!({ hdr.tx_ptr }, 0);
    assert_eq!(h.sim.pins(B), r.npages as u32);
}

#[test]
fn register_rejects_bad_arguments() {
    let h = host();
    let b = h.guest(B, 4);
    let r = b.ring(&h, 80, DOMID_ANY, 4096);
    let reg = |ring: u64, list: u64| h.call(B, op::REGISTER_RING, ring, list, 0, 0, 0);
    // unaligned ring pointer
    assert_eq!(reg(r.va + 8, r.list_va), e(errno::EINVAL));
    // bad pointers: null, unmapped, hypervisor space
    assert_eq!(reg(0, r.list_va), e(errno::EFAULT));
    assert_eq!(reg(0x7000_0000_0000, r.list_va), e(errno::EFAULT));
    assert_eq!(reg(0xffff_8300_0000_0000, r.list_va), e(errno::EFAULT));
    assert_eq!(reg(r.va, 0xffff_8300_0000_0000), e(errno::EFAULT));
    assert_eq!(reg(r.va, 0), e(errno::EFAULT));
    // bad magic
    r.write_header(&h, RING_MAGIC ^ 1, 4096, 0, 0);
    assert_eq!(r.register(&h), e(errno::EINVAL));
    // bad lengths
    for len in [0, 32, 47, 4095, MAX_RING_SIZE + 16, u32::MAX] {
        r.write_header(&h, RING_MAGIC, len, 0, 0);
        assert_eq!(r.register(&h), e(errno::EINVAL), "len {len}");
    }
    // npage too small for 60 + len
    let two_pages = b.ring(&h, 81, DOMID_ANY, 4096 - 48);
    assert_eq!(two_pages.npages, 2);
    h.sim.write_u32(B, two_pages.list_va + 8, 1);
    assert_eq!(two_pages.register(&h), e(errno::EINVAL));
    // a list longer than needed is fine (only the needed frames are pinned)
    r.write_header(&h, RING_MAGIC, 4096 - 64, 0, 0);
    assert_eq!(r.register(&h), 0);
    assert_eq!(h.sim.pins(B), 1);
    r.write_header(&h, RING_MAGIC, 4096, 0, 0);
    assert_eq!(r.register(&h), 0);
    // bad pfn list magic / pad
    let r2 = b.ring(&h, 82, DOMID_ANY, 256);
    h.sim.write(B, r2.list_va, &[0u8; 8]);
    assert_eq!(r2.register(&h), e(errno::EINVAL));
    let r3 = b.ring(&h, 83, DOMID_ANY, 256);
    h.sim.write_u32(B, r3.list_va + 12, 1);
    assert_eq!(r3.register(&h), e(errno::EINVAL));
    // too many pages listed
    let r4 = b.ring(&h, 84, DOMID_ANY, 256);
    h.sim.write_u32(B, r4.list_va + 8, 4098);
    assert_eq!(r4.register(&h), e(errno::EINVAL));
    // nothing left pinned by the failures (only r's 2 pages)
    assert_eq!(h.sim.pins(B), 2);
}

#[test]
fn register_rejects_foreign_and_readonly_frames() {
    let h = host();
    let b = h.guest(B, 4);
    let r = b.ring(&h, 80, DOMID_ANY, 8192);
    // a frame of domain A in B's list
    h.sim
        .write(B, r.list_va + 40 + 8, &Sim::gfn(A, 0).to_le_bytes());
    assert_eq!(r.register(&h), e(errno::EINVAL));
    // a frame number beyond B's memory
    h.sim.write(B, r.list_va + 40 + 8, &u64::MAX.to_le_bytes());
    assert_eq!(r.register(&h), e(errno::EINVAL));
    // a read-only frame
    h.sim.write(
        B,
        r.list_va + 40 + 8,
        &Sim::gfn(B, r.first_pfn + 1).to_le_bytes(),
    );
    h.sim.set_readonly(B, r.first_pfn + 2, true);
    assert_eq!(r.register(&h), e(errno::EINVAL));
    assert_eq!(h.sim.pins(B), 0, "failed registers unpin what they pinned");
    h.sim.set_readonly(B, r.first_pfn + 2, false);
    assert_eq!(r.register(&h), 0);
}

#[test]
fn register_out_of_memory_is_enomem_and_leaks_nothing() {
    let h = host();
    let b = h.guest(B, 4);
    let r = b.ring(&h, 80, DOMID_ANY, 16384);
    h.sim.limit_pins(2);
    assert_eq!(r.register(&h), e(errno::ENOMEM));
    assert_eq!(h.sim.pins(B), 0);
    h.sim.limit_pins(u64::MAX);
    assert_eq!(r.register(&h), 0);
}

#[test]
fn unregister() {
    let h = host();
    let (_b, r) = b_ring(&h, 4096);
    let a = h.guest(A, 4);
    assert_eq!(r.unregister(&h), 0);
    assert_eq!(h.sim.pins(B), 0);
    assert_eq!(r.unregister(&h), e(errno::ENOENT));
    assert_eq!(
        a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    // bad pointer and bad magic
    assert_eq!(
        h.call(B, op::UNREGISTER_RING, 0, 0, 0, 0, 0),
        e(errno::EFAULT)
    );
    r.write_header(&h, 0, 4096, 0, 0);
    assert_eq!(r.unregister(&h), e(errno::EINVAL));
    // A cannot unregister B's ring: the id names a ring of A's own, which
    // A does not have, whatever domain the header claims.
    r.write_header(&h, RING_MAGIC, 4096, 0, 0);
    assert_eq!(r.register(&h), 0);
    let copy = a.put(&h, &r.header(&h));
    assert_eq!(
        h.call(A, op::UNREGISTER_RING, copy, 0, 0, 0, 0),
        e(errno::ENOENT)
    );
    assert_eq!(h.sim.pins(B), r.npages as u32);
}

#[test]
fn reregister_replaces_and_keeps_tx() {
    let h = host();
    let (_b, r) = b_ring(&h, 4096);
    let a = h.guest(A, 4);
    assert_eq!(a.send(&h, 1, r.addr(), b"one", PROTO_DGRAM), 3);
    let tx = r.tx(&h);
    assert_eq!(tx, 32);
    assert_eq!(r.register(&h), 0);
    assert_eq!(r.tx(&h), tx, "valid tx_ptr kept");
    assert_eq!(h.sim.pins(B), r.npages as u32, "old frames unpinned");
    // an invalid tx_ptr restarts at ROUNDUP(rx_ptr)
    r.write_header(&h, RING_MAGIC, 4096, 33, 7);
    assert_eq!(r.register(&h), 0);
    assert_eq!(r.tx(&h), 48);
    r.write_header(&h, RING_MAGIC, 4096, 5000, 4096);
    assert_eq!(r.register(&h), 0);
    assert_eq!(r.tx(&h), 0);
}

#[test]
fn ring_count_limit_is_enospc() {
    let h = Host::new(&[B], 4200);
    let b = h.guest(B, 2);
    let rings: Vec<GuestRing> = (0..MAX_RINGS_PER_DOMAIN as u32 + 1)
        .map(|p| b.ring(&h, p, DOMID_ANY, 48))
        .collect();
    for r in &rings[..MAX_RINGS_PER_DOMAIN] {
        assert_eq!(r.register(&h), 0);
    }
    assert_eq!(rings[MAX_RINGS_PER_DOMAIN].register(&h), e(errno::ENOSPC));
    // re-registering an existing one is still fine
    assert_eq!(rings[0].register(&h), 0);
}

// ---- send -------------------------------------------------------------------

#[test]
fn send_delivers_with_real_source() {
    let h = host();
    let (_b, r) = b_ring(&h, 4096);
    let a = h.guest(A, 4);
    let before = h.sim.virqs(B);
    assert_eq!(a.send(&h, 7, r.addr(), b"hello", PROTO_DGRAM), 5);
    // src.domain = ANY is allowed and replaced by the real domain
    assert_eq!(
        a.send_from(&h, dst(8, DOMID_ANY), r.addr(), b"", PROTO_STREAM),
        0
    );
    assert_eq!(h.sim.virqs(B), before + 2);
    assert_eq!(
        r.recv(&h),
        Some(Msg {
            source: dst(7, A),
            protocol: PROTO_DGRAM,
            payload: b"hello".to_vec()
        })
    );
    assert_eq!(
        r.recv(&h),
        Some(Msg {
            source: dst(8, A),
            protocol: PROTO_STREAM,
            payload: vec![]
        })
    );
    assert_eq!(r.recv(&h), None);
    // header layout in the ring: len = payload + 16, pad zero
    assert_eq!(r.read_data(&h, 0, 4), 21u32.to_le_bytes());
    assert_eq!(r.read_data(&h, 10, 2), [0, 0]);
}

#[test]
fn send_argument_errors() {
    let h = host();
    let (_b, r) = b_ring(&h, 4096);
    let a = h.guest(A, 4);
    let s = a.put(&h, &a.addr(1));
    let d = a.put(&h, &r.addr());
    let buf = a.put_bytes(&h, b"abc");
    let send = |s, d, b, len| h.call(A, op::SEND, s, d, b, len, PROTO_DGRAM);
    assert_eq!(send(0, d, buf, 3), e(errno::EFAULT));
    assert_eq!(send(s, 0xffff_8000_0000_0000, buf, 3), e(errno::EFAULT));
    assert_eq!(send(s, d, 0, 3), e(errno::EFAULT));
    assert_eq!(send(s, d, 0xffff_ffff_ffff_fff0, 3), e(errno::EFAULT));
    assert_eq!(send(s, d, buf, MAX_MSG_SIZE + 1), e(errno::EINVAL));
    assert_eq!(r.recv(&h), None, "failed sends deliver nothing");
    assert_eq!(r.tx(&h), 0);
}

#[test]
fn lying_about_source_is_eperm() {
    let h = host();
    let b = h.guest(B, 4);
    let r = b.ring(&h, 80, A, 4096);
    assert_eq!(r.register(&h), 0);
    let c = h.guest(C, 4);
    // C claims to be A: refused before any lookup
    assert_eq!(
        c.send_from(&h, dst(1, A), r.addr(), b"x", PROTO_DGRAM),
        e(errno::EPERM)
    );
    // C as itself: the ring is reserved for A
    assert_eq!(
        c.send(&h, 1, r.addr(), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    let a = h.guest(A, 4);
    assert_eq!(a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM), 1);
}

#[test]
fn partner_ring_wins_over_any_ring() {
    let h = host();
    let b = h.guest(B, 4);
    let any = b.ring(&h, 80, DOMID_ANY, 4096);
    let for_a = b.ring(&h, 80, A, 4096);
    assert_eq!(any.register(&h), 0);
    assert_eq!(for_a.register(&h), 0);
    let a = h.guest(A, 4);
    let c = h.guest(C, 4);
    assert_eq!(a.send(&h, 1, dst(80, B), b"a", PROTO_DGRAM), 1);
    assert_eq!(c.send(&h, 1, dst(80, B), b"c", PROTO_DGRAM), 1);
    assert_eq!(for_a.recv(&h).unwrap().payload, b"a");
    assert_eq!(any.recv(&h).unwrap().payload, b"c");
    assert_eq!(for_a.recv(&h), None);
}

#[test]
fn no_destination_is_enotconn() {
    let h = host();
    let a = h.guest(A, 4);
    assert_eq!(
        a.send(&h, 1, dst(80, B), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    assert_eq!(
        a.send(&h, 1, dst(80, 999), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    let (_b, _r) = b_ring(&h, 4096);
    assert_eq!(
        a.send(&h, 1, dst(81, B), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
}

#[test]
fn sendv_gathers_iovs() {
    let h = host();
    let (_b, r) = b_ring(&h, 8192);
    let a = h.guest(A, 8);
    let p1 = pattern(5000, 1);
    let p2 = pattern(1, 2);
    let p3 = pattern(3000, 3);
    let rc = a.sendv(&h, 9, r.addr(), &[&p1, &[], &p2, &p3], PROTO_DGRAM);
    assert_eq!(rc, 8001);
    let m = r.recv(&h).unwrap();
    assert_eq!(m.payload, [p1, p2, p3].concat());
    assert_eq!(m.source, dst(9, A));
}

#[test]
fn sendv_argument_errors() {
    let h = host();
    let (_b, r) = b_ring(&h, 8192);
    let a = h.guest(A, 8);
    let many = vec![
        Iov {
            iov_base: 0,
            iov_len: 0
        };
        MAXIOV as usize + 1
    ];
    assert_eq!(
        a.sendv_raw(&h, 1, r.addr(), &many, PROTO_DGRAM),
        e(errno::EINVAL)
    );
    // MAXIOV empty iovs is fine
    assert_eq!(
        a.sendv_raw(&h, 1, r.addr(), &many[..MAXIOV as usize], PROTO_DGRAM),
        0
    );
    // total beyond V4V_MAX_MSG_SIZE, also by overflow
    let big = [
        Iov {
            iov_base: 0,
            iov_len: MAX_MSG_SIZE as u64,
        },
        Iov {
            iov_base: 0,
            iov_len: 1,
        },
    ];
    assert_eq!(
        a.sendv_raw(&h, 1, r.addr(), &big, PROTO_DGRAM),
        e(errno::EINVAL)
    );
    let wrap = [
        Iov {
            iov_base: 0,
            iov_len: u64::MAX,
        },
        Iov {
            iov_base: 0,
            iov_len: 2,
        },
    ];
    assert_eq!(
        a.sendv_raw(&h, 1, r.addr(), &wrap, PROTO_DGRAM),
        e(errno::EINVAL)
    );
    // iov array pointer bad
    let s = a.put(&h, &a.addr(1));
    let d = a.put(&h, &r.addr());
    assert_eq!(
        h.call(A, op::SENDV, s, d, 0xffff_8300_0000_0000, 1, 0),
        e(errno::EFAULT)
    );
}

#[test]
fn fault_midway_leaves_ring_unchanged() {
    let h = host();
    let (_b, r) = b_ring(&h, 8192);
    let a = h.guest(A, 8);
    let good = a.put_bytes(&h, &pattern(3000, 5));
    let iovs = [
        Iov {
            iov_base: good,
            iov_len: 3000,
        },
        Iov {
            iov_base: 0xdead_0000,
            iov_len: 100,
        },
    ];
    let virqs = h.sim.virqs(B);
    assert_eq!(
        a.sendv_raw(&h, 1, r.addr(), &iovs, PROTO_DGRAM),
        e(errno::EFAULT)
    );
    assert_eq!(r.tx(&h), 0);
    assert_eq!(r.recv(&h), None);
    assert_eq!(
        h.sim.virqs(B),
        virqs,
        "no event for a message not delivered"
    );
    assert_eq!(a.send(&h, 1, r.addr(), b"after", PROTO_DGRAM), 5);
    assert_eq!(r.recv(&h).unwrap().payload, b"after");
}

#[test]
fn full_ring_eagain_then_enobufs() {
    let h = host();
    let (_b, r) = b_ring(&h, 256);
    let a = h.guest(A, 4);
    // never fits: more than len - 32
    assert_eq!(
        a.send(&h, 1, r.addr(), &[0; 225], PROTO_DGRAM),
        e(errno::ENOBUFS)
    );
    // exactly max_message_size fits in an empty ring
    assert_eq!(a.send(&h, 1, r.addr(), &[1; 224], PROTO_DGRAM), 224);
    assert_eq!(a.send(&h, 1, r.addr(), &[], PROTO_DGRAM), e(errno::EAGAIN));
    assert_eq!(r.recv(&h).unwrap().payload, [1; 224]);
    // fill with 16-byte payloads (32 bytes each): 7 fit in 256 (one slot free)
    let mut n = 0;
    while a.send(&h, 1, r.addr(), &[n as u8; 16], PROTO_DGRAM) == 16 {
        n += 1;
    }
    assert_eq!(n, 7);
    assert_eq!(
        a.send(&h, 1, r.addr(), &[0; 16], PROTO_DGRAM),
        e(errno::EAGAIN)
    );
    for i in 0..n {
        assert_eq!(r.recv(&h).unwrap().payload, [i as u8; 16]);
    }
}

#[test]
fn corrupt_rx_ptr_reads_as_full_and_writes_nothing() {
    let h = host();
    let (_b, r) = b_ring(&h, 256);
    let a = h.guest(A, 4);
    for bad in [8, 256, 1000, u32::MAX] {
        r.set_rx(&h, bad);
        let before = r.read_data(&h, 0, 256);
        assert_eq!(
            a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM),
            e(errno::EAGAIN),
            "rx {bad}"
        );
        assert_eq!(r.read_data(&h, 0, 256), before);
        let (rc, ents) = a.notify(&h, &[(r.addr(), 0)]);
        assert_eq!(rc, 0);
        assert_eq!(
            { ents[0].flags },
            (RingDataFlags::EXISTS | RingDataFlags::PENDING).bits()
        );
    }
    r.set_rx(&h, 0);
    assert_eq!(a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM), 1);
}

#[test]
fn wraparound_at_every_offset() {
    // For every 16-byte start position in a small ring, messages of several
    // sizes wrap correctly (header and payload split at the ring's end).
    for start in (0..320).step_by(16) {
        for plen in [0usize, 1, 15, 16, 17, 100, 250, 288] {
            let h = Host::new(&[A, B], 64);
            let b = h.guest(B, 2);
            let r = b.ring(&h, 80, DOMID_ANY, 320);
            r.write_header(&h, RING_MAGIC, 320, start, start);
            assert_eq!(r.register(&h), 0);
            assert_eq!(r.tx(&h), start);
            let a = h.guest(A, 4);
            let p = pattern(plen, start as u8);
            assert_eq!(
                a.send(&h, 3, r.addr(), &p, PROTO_DGRAM),
                plen as i64,
                "start {start} len {plen}"
            );
            let m = r.recv(&h).unwrap();
            assert_eq!(m.payload, p, "start {start} len {plen}");
            let expect_tx = (start as u64 + 16 + crate::abi::roundup(plen as u64)) % 320;
            assert_eq!(r.tx(&h) as u64, expect_tx);
            assert_eq!(r.rx(&h), r.tx(&h));
        }
    }
}

#[test]
fn messages_straddle_pages_and_the_wrap() {
    // A ring of 3 pages: data starts at byte 60 of the first page, so
    // messages cross page boundaries at unaligned ring offsets.
    let h = Host::new(&[A, B], 256);
    let (_b, r) = {
        let b = h.guest(B, 2);
        let r = b.ring(&h, 80, DOMID_ANY, 12000);
        assert_eq!(r.register(&h), 0);
        (b, r)
    };
    let a = h.guest(A, 8);
    let mut sent = Vec::new();
    for i in 0..200usize {
        let p = pattern(1 + (i * 977) % 5000, i as u8);
        loop {
            let rc = a.send(&h, i as u32, r.addr(), &p, PROTO_DGRAM);
            if rc == e(errno::EAGAIN) {
                let m = r.recv(&h).unwrap();
                assert_eq!(m.payload, sent.remove(0));
                continue;
            }
            assert_eq!(rc, p.len() as i64);
            break;
        }
        sent.push(p);
    }
    while let Some(m) = r.recv(&h) {
        assert_eq!(m.payload, sent.remove(0));
    }
    assert!(sent.is_empty());
}

// ---- notify -----------------------------------------------------------------

#[test]
fn notify_reports_flags_and_max_message_size() {
    let h = host();
    let (_b, r) = b_ring(&h, 256);
    let a = h.guest(A, 4);
    let (rc, ents) = a.notify(&h, &[(r.addr(), 100), (dst(81, B), 0), (dst(80, 77), 0)]);
    assert_eq!(rc, 0);
    let f = |x: u16| RingDataFlags::from_bits_truncate(x);
    assert_eq!(
        f(ents[0].flags),
        RingDataFlags::EXISTS | RingDataFlags::EMPTY | RingDataFlags::SUFFICIENT
    );
    assert_eq!({ ents[0].max_message_size }, 224);
    assert_eq!({ ents[1].flags }, 0);
    assert_eq!({ ents[1].max_message_size }, 0);
    assert_eq!({ ents[2].flags }, 0);
    // non-empty, then not enough space: PENDING, and later woken
    assert_eq!(a.send(&h, 1, r.addr(), &[0; 150], PROTO_DGRAM), 150);
    // a request that can never fit is still queued, as the ABI says
    let (_, ents) = a.notify(&h, &[(r.addr(), 225)]);
    assert_eq!(
        f(ents[0].flags),
        RingDataFlags::EXISTS | RingDataFlags::PENDING
    );
    assert!(h.dump().contains("wait(dom1 225B)"));
    // asking again replaces the wait's size
    let (_, ents) = a.notify(&h, &[(r.addr(), 100)]);
    assert_eq!(
        f(ents[0].flags),
        RingDataFlags::EXISTS | RingDataFlags::PENDING
    );
    assert!(h.dump().contains("wait(dom1 100B)"));
    // B drains and notifies: A is woken
    let virqs = h.sim.virqs(A);
    r.recv(&h).unwrap();
    assert_eq!(h.guest(B, 1).notify_null(&h), 0);
    assert_eq!(h.sim.virqs(A), virqs + 1);
    // the wait is gone: a second notify wakes nobody
    assert_eq!(h.guest(B, 1).notify_null(&h), 0);
    assert_eq!(h.sim.virqs(A), virqs + 1);
}

#[test]
fn notify_space_agrees_with_send() {
    // Whatever notify calls SUFFICIENT, send accepts; whatever it does not, send refuses.
    let h = host();
    let (_b, r) = b_ring(&h, 512);
    let a = h.guest(A, 4);
    for fill in 0..14usize {
        for _ in 0..fill {
            if a.send(&h, 1, r.addr(), &[7; 8], PROTO_DGRAM) < 0 {
                break;
            }
        }
        for want in [0u32, 1, 16, 17, 100, 200, 480] {
            let (_, ents) = a.notify(&h, &[(r.addr(), want)]);
            let sufficient = ents[0].flags & RingDataFlags::SUFFICIENT.bits() != 0;
            let rc = a.send(&h, 1, r.addr(), &vec![1; want as usize], PROTO_DGRAM);
            assert_eq!(sufficient, rc >= 0, "fill {fill} want {want} rc {rc}");
        }
        while r.recv(&h).is_some() {}
    }
}

#[test]
fn send_eagain_queues_and_notify_wakes() {
    let h = host();
    let (b, r) = b_ring(&h, 256);
    let a = h.guest(A, 4);
    assert_eq!(a.send(&h, 1, r.addr(), &[0; 200], PROTO_DGRAM), 200);
    assert_eq!(
        a.send(&h, 1, r.addr(), &[0; 100], PROTO_DGRAM),
        e(errno::EAGAIN)
    );
    let virqs = h.sim.virqs(A);
    // notify before draining wakes nobody
    assert_eq!(b.notify_null(&h), 0);
    assert_eq!(h.sim.virqs(A), virqs);
    r.recv(&h).unwrap();
    assert_eq!(b.notify_null(&h), 0);
    assert_eq!(h.sim.virqs(A), virqs + 1);
    assert!(h.dump().contains("0 wait(s)"));
}

#[test]
fn notify_argument_errors() {
    let h = host();
    let a = h.guest(A, 4);
    let hdr = |magic: u64, nent: u32, pad: u32| {
        let mut b = magic.to_le_bytes().to_vec();
        b.extend_from_slice(&nent.to_le_bytes());
        b.extend_from_slice(&pad.to_le_bytes());
        b.extend_from_slice(&[0; 32]);
        a.put_bytes(&h, &b)
    };
    let n = |p: u64| h.call(A, op::NOTIFY, p, 0, 0, 0, 0);
    assert_eq!(n(0xffff_8000_0000_0000), e(errno::EFAULT));
    assert_eq!(n(hdr(RING_DATA_MAGIC ^ 1, 0, 0)), e(errno::EINVAL));
    assert_eq!(n(hdr(RING_DATA_MAGIC, MAXENT + 1, 0)), e(errno::EINVAL));
    assert_eq!(n(hdr(RING_DATA_MAGIC, 0, 1)), e(errno::EINVAL));
    assert_eq!(n(hdr(RING_DATA_MAGIC, 0, 0)), 0);
    // entries beyond the guest's memory
    let end = Sim::va(256) - 48;
    h.sim.write(A, end, &RING_DATA_MAGIC.to_le_bytes());
    h.sim.write_u32(A, end + 8, 1);
    assert_eq!(n(end), e(errno::EFAULT));
}

#[test]
fn wait_limit_is_enospc() {
    // A domain can queue at most MAX_WAITS_PER_DOMAIN waits (one per ring).
    // Five domains offer 1024 full rings each; A tries to wait on all of them.
    let h = Host::new(&[A, B, C, 4, 5, 6], 2100);
    let mut addrs = Vec::new();
    for dom in [B, C, 4, 5, 6] {
        let g = h.guest(dom, 2);
        for p in 0..MAX_RINGS_PER_DOMAIN as u32 {
            let r = g.ring(&h, p, DOMID_ANY, 48);
            assert_eq!(r.register(&h), 0);
            addrs.push(r.addr());
        }
    }
    let a = h.guest(A, 80);
    // A 48-byte ring holds one 16-byte message; then nothing fits.
    for &x in &addrs {
        assert_eq!(a.send(&h, 1, x, &[0; 16], PROTO_DGRAM), 16);
    }
    let q: Vec<(Addr, u32)> = addrs.iter().map(|&x| (x, 0)).collect();
    let quota = MAX_WAITS_PER_DOMAIN as usize;
    assert_eq!(a.notify(&h, &q[..quota - 1]).0, 0);
    // asking again about the same rings updates waits, it adds none
    assert_eq!(a.notify(&h, &q[..quota - 1]).0, 0);
    assert_eq!(
        a.send(&h, 1, q[quota - 1].0, &[], PROTO_DGRAM),
        e(errno::EAGAIN)
    );
    assert_eq!(
        a.send(&h, 1, q[quota].0, &[], PROTO_DGRAM),
        e(errno::ENOSPC)
    );
    assert_eq!(a.notify(&h, &q[quota..quota + 1]).0, e(errno::ENOSPC));
    // another domain's quota is its own
    let c = h.guest(C, 2);
    assert_eq!(c.send(&h, 1, q[0].0, &[], PROTO_DGRAM), e(errno::EAGAIN));
}

// ---- viptables --------------------------------------------------------------

fn rule(src: Addr, dst: Addr, accept: bool) -> ViptablesRule {
    ViptablesRule {
        src,
        dst,
        accept: accept as u32,
    }
}

#[test]
fn viptables_reject_and_restore() {
    let h = host();
    let (_b, r) = b_ring(&h, 4096);
    let a = h.guest(A, 4);
    let d0 = h.guest(0, 4);
    let rej = rule(dst(PORT_ANY, A), dst(PORT_ANY, B), false);
    assert_eq!(d0.viptables_add(&h, rej, 0), 0);
    assert_eq!(a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM), e(errno::EPERM));
    // A cannot get round it by claiming ANY as its source domain
    assert_eq!(
        a.send_from(&h, dst(1, DOMID_ANY), r.addr(), b"x", PROTO_DGRAM),
        e(errno::EPERM)
    );
    // the ring reads as not existing in A's notify
    let (_, ents) = a.notify(&h, &[(r.addr(), 0)]);
    assert_eq!({ ents[0].flags }, 0);
    // C is unaffected
    let c = h.guest(C, 4);
    assert_eq!(c.send(&h, 1, r.addr(), b"c", PROTO_DGRAM), 1);
    assert_eq!(d0.viptables_del(&h, Some(rej), -1), 0);
    assert_eq!(a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM), 1);
}

#[test]
fn viptables_first_match_wildcards_and_ports() {
    let h = host();
    let (_b, r) = b_ring(&h, 4096);
    let a = h.guest(A, 4);
    let d0 = h.guest(0, 4);
    assert_eq!(
        d0.viptables_add(&h, rule(dst(5, A), dst(80, B), true), 0),
        0
    );
    assert_eq!(
        d0.viptables_add(
            &h,
            rule(dst(PORT_ANY, DOMID_WILDCARD), dst(80, DOMID_ANY), false),
            1
        ),
        0
    );
    assert_eq!(a.send(&h, 5, r.addr(), b"ok", PROTO_DGRAM), 2);
    assert_eq!(a.send(&h, 6, r.addr(), b"no", PROTO_DGRAM), e(errno::EPERM));
}

#[test]
fn viptables_ops_and_errors() {
    let h = host();
    let d0 = h.guest(0, 4);
    let a = h.guest(A, 4);
    let r = |i: u32| rule(dst(i, A), dst(i, B), i.is_multiple_of(2));
    // privilege
    assert_eq!(a.viptables_add(&h, r(1), 0), e(errno::EPERM));
    assert_eq!(a.viptables_del(&h, None, -1), e(errno::EPERM));
    assert_eq!(a.viptables_list(&h, 0).0, e(errno::EPERM));
    // bad pointer, bad accept value
    assert_eq!(
        h.call(0, op::VIPTABLES_ADD, 0xffff_8000_0000_0000, 0, 0, 0, 0),
        e(errno::EFAULT)
    );
    let mut bad = r(1);
    bad.accept = 3;
    assert_eq!(d0.viptables_add(&h, bad, 0), e(errno::EINVAL));
    // add at positions, list in windows of 8
    for i in 0..10 {
        assert_eq!(d0.viptables_add(&h, r(i), u32::MAX), 0);
    }
    assert_eq!(d0.viptables_add(&h, r(100), 0), 0);
    let (rc, l) = d0.viptables_list(&h, 0);
    assert_eq!(rc, 0);
    assert_eq!(l.len(), 8);
    assert_eq!(l[0], r(100));
    assert_eq!(l[1], r(0));
    let (_, l) = d0.viptables_list(&h, 8);
    assert_eq!(l, vec![r(7), r(8), r(9)]);
    assert_eq!(d0.viptables_list(&h, 11).1.len(), 0);
    assert_eq!(
        h.call(0, op::VIPTABLES_LIST, 0, 0, 0, 0, 0),
        e(errno::EFAULT)
    );
    // delete by position, by rule, misses
    assert_eq!(d0.viptables_del(&h, None, 0), 0);
    assert_eq!(d0.viptables_del(&h, None, 10), e(errno::ENOENT));
    assert_eq!(d0.viptables_del(&h, Some(r(100)), -1), e(errno::ENOENT));
    assert_eq!(d0.viptables_del(&h, Some(r(3)), -1), 0);
    assert_eq!(d0.viptables_del(&h, None, -2), e(errno::EINVAL));
    assert_eq!(d0.viptables_list(&h, 0).1.len(), 8);
    // flush
    assert_eq!(d0.viptables_del(&h, None, -1), 0);
    assert_eq!(d0.viptables_list(&h, 0).1.len(), 0);
}

// ---- teardown ---------------------------------------------------------------

#[test]
fn destroy_releases_everything() {
    let h = host();
    let (_b, r) = b_ring(&h, 256);
    let a = h.guest(A, 4);
    let ar = a.ring(&h, 5, DOMID_ANY, 4096);
    assert_eq!(ar.register(&h), 0);
    // A waits on B's ring, B waits on A's ring... then B dies
    assert_eq!(a.send(&h, 1, r.addr(), &[0; 200], PROTO_DGRAM), 200);
    assert_eq!(
        a.send(&h, 1, r.addr(), &[0; 200], PROTO_DGRAM),
        e(errno::EAGAIN)
    );
    let b = h.guest(B, 2);
    assert_eq!(b.send(&h, 1, ar.addr(), &[0; 4000], PROTO_DGRAM), 4000);
    assert_eq!(
        b.send(&h, 1, ar.addr(), &[0; 100], PROTO_DGRAM),
        e(errno::EAGAIN)
    );
    let virqs = h.sim.virqs(A);
    h.destroy(B);
    assert_eq!(h.sim.pins(B), 0);
    assert_eq!(
        h.sim.virqs(A),
        virqs + 1,
        "A learns that the ring it waited on is gone"
    );
    assert_eq!(
        a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    let dump = h.dump();
    assert!(!dump.contains("dom2"), "{dump}");
    assert!(!dump.contains("wait(dom2"), "{dump}");
    assert!(
        dump.contains("dom1: 1 ring(s), 2 frame(s) pinned, 0 wait(s)"),
        "{dump}"
    );
    // a new B registers the same ring and receives again
    let b2 = h.guest(B, 2);
    let r2 = b2.ring(&h, 80, DOMID_ANY, 256);
    assert_eq!(r2.register(&h), 0);
    assert_eq!(a.send(&h, 1, r2.addr(), b"again", PROTO_DGRAM), 5);
    assert_eq!(r2.recv(&h).unwrap().payload, b"again");
    h.destroy(A);
    h.destroy(B);
    assert_eq!(h.sim.all_pins(), 0);
    // destroying an unknown domain is harmless
    h.destroy(C);
}

#[test]
fn dump_shows_rings_and_waiters() {
    let h = host();
    let (_b, r) = b_ring(&h, 256);
    let a = h.guest(A, 4);
    assert_eq!(a.send(&h, 1, r.addr(), &[0; 200], PROTO_DGRAM), 200);
    assert_eq!(
        a.send(&h, 1, r.addr(), &[0; 100], PROTO_DGRAM),
        e(errno::EAGAIN)
    );
    let d = h.dump();
    assert!(
        d.contains("port 0x50 partner 32767: len 256 tx 224 rx 0"),
        "{d}"
    );
    assert!(d.contains("wait(dom1 100B)"), "{d}");
}

#[test]
fn bad_payload_is_efault_before_destination_and_space() {
    // The payload buffer is one of the caller's own arguments: a bad one is
    // reported before the destination (no such ring) and space (full ring)
    // are looked at, and no wait is queued for it.
    let h = host();
    let (_b, r) = b_ring(&h, 64);
    let a = h.guest(A, 4);
    let src = a.put(&h, &a.addr(1));
    let nowhere = a.put(&h, &dst(81, B));
    assert_eq!(
        h.call(A, op::SEND, src, nowhere, 0, 8, PROTO_DGRAM),
        e(errno::EFAULT)
    );
    assert_eq!(a.send(&h, 1, r.addr(), &[7; 16], PROTO_DGRAM), 16);
    // (a.send reused the scratch area: place the arguments again)
    let src = a.put(&h, &a.addr(1));
    let to = a.put(&h, &r.addr());
    let nowhere = a.put(&h, &dst(81, B));
    assert_eq!(
        h.call(A, op::SEND, src, to, 0, 8, PROTO_DGRAM),
        e(errno::EFAULT)
    );
    assert!(h.dump().contains("0 wait(s)"), "{}", h.dump());
    // A buffer whose last page is unmapped: the fault is found up front.
    let end = Sim::va(256);
    let buf = end - 100;
    assert_eq!(
        h.call(A, op::SEND, src, to, buf, 4096, PROTO_DGRAM),
        e(errno::EFAULT)
    );
    assert_eq!(
        h.call(A, op::SEND, src, nowhere, buf, 101, PROTO_DGRAM),
        e(errno::EFAULT)
    );
    assert_eq!(
        h.call(A, op::SEND, src, nowhere, buf, 100, PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    // The same for sendv: the second iov is bad.
    let good = a.put_bytes(&h, &[1; 8]);
    let iovs = [
        Iov {
            iov_base: good,
            iov_len: 8,
        },
        Iov {
            iov_base: 0xffff_8000_0000_0000,
            iov_len: 8,
        },
    ];
    assert_eq!(
        a.sendv_raw(&h, 1, dst(81, B), &iovs, PROTO_DGRAM),
        e(errno::EFAULT)
    );
    // ...and a buffer ending exactly at the end of memory is fine.
    r.recv(&h).unwrap();
    let src = a.put(&h, &a.addr(1));
    let to = a.put(&h, &r.addr());
    assert_eq!(h.call(A, op::SEND, src, to, end - 16, 16, PROTO_DGRAM), 16);
}

#[test]
fn ring_frames_in_any_order_are_mapped_in_list_order() {
    // The pfn list, not the guest's virtual layout, decides where each part
    // of the ring lives: list the ring's 3 pages as [p0, p2, p1].
    let h = host();
    let b = h.guest(B, 2);
    let r = b.ring(&h, 80, DOMID_ANY, 8192);
    assert_eq!(r.npages, 3);
    let p = r.first_pfn;
    let list: Vec<u8> = [p, p + 2, p + 1]
        .iter()
        .flat_map(|&q| Sim::gfn(B, q).to_le_bytes())
        .collect();
    h.sim.write(B, r.list_va + 40, &list);
    assert_eq!(r.register(&h), 0);
    assert_eq!(h.sim.live_aliases(), 1);
    let a = h.guest(A, 4);
    // 5000 bytes starting at ring offset 16 (byte 76 of the first page):
    // the payload runs into the second listed frame, which is page p + 2.
    let msg = pattern(5000, 9);
    assert_eq!(a.send(&h, 1, r.addr(), &msg, PROTO_DGRAM), 5000);
    let mut second = vec![0u8; 4096];
    h.sim.read(B, Sim::va(p + 2), &mut second);
    let first_part = 4096 - 60 - 16;
    assert_eq!(second[..5000 - first_part], msg[first_part..]);
    let mut untouched = vec![0u8; 4096];
    h.sim.read(B, Sim::va(p + 1), &mut untouched);
    assert!(
        untouched.iter().all(|&x| x == 0),
        "page p+1 is the third frame, not yet written"
    );
    assert_eq!(r.unregister(&h), 0);
    assert_eq!(h.sim.live_aliases(), 0);
    assert_eq!(h.sim.pins(B), 0);
}
