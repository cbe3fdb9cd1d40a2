//! Hostile guests: a receiver that rewrites its ring header and `rx_ptr`
//! with garbage between and during operations. The engine must never panic
//! and never write outside the ring's data area and its `tx_ptr` word.
use crate::abi::{errno, PAGE_SIZE, PROTO_DGRAM, RING_DATA_OFFSET, RING_TX_PTR_OFFSET};
use crate::sim::client::Host;
use crate::sim::Sim;
use std::vec;
use std::vec::Vec;

const A: u16 = 1;
const B: u16 = 2;

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn check_rc(rc: i64) {
    assert!(
        rc >= 0 || errno::ALL.contains(&-rc),
        "unexpected return {rc}"
    );
}

#[test]
fn garbage_rx_ptr_never_causes_writes_outside_the_ring() {
    let h = Host::new(&[A, B], 128);
    let b = h.guest(B, 2);
    // guard page, ring (2 pages + 1 guard after), guard page
    let guard_before = h.sim.alloc_pages(B, 1);
    let len = 4096u32;
    let r = b.ring(&h, 80, crate::abi::DOMID_ANY, len);
    let guard_after = h.sim.alloc_pages(B, 1);
    assert_eq!(r.register(&h), 0);
    let span_start = Sim::va(guard_before);
    let span_len = (guard_after + 1 - guard_before) * PAGE_SIZE;
    let snapshot = || {
        let mut v = vec![0u8; span_len];
        h.sim.read(B, span_start, &mut v);
        v
    };
    // bytes the engine may write: tx_ptr and ring data
    let ring_off = (r.va - span_start) as usize;
    let writable = |i: usize| {
        let rel = i.wrapping_sub(ring_off);
        (RING_TX_PTR_OFFSET..RING_TX_PTR_OFFSET + 4).contains(&rel)
            || (RING_DATA_OFFSET..RING_DATA_OFFSET + len as usize).contains(&rel)
    };
    let a = h.guest(A, 4);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..3000 {
        // The guest scribbles over its header: rx_ptr mostly, sometimes
        // everything else too (magic, len, tx_ptr, reserved).
        match rng.below(4) {
            0 => r.set_rx(&h, rng.next() as u32),
            1 => r.set_rx(&h, (rng.below(len as u64 / 16) * 16) as u32),
            2 => {
                let junk: Vec<u8> = (0..60).map(|_| rng.next() as u8).collect();
                h.sim.write(B, r.va, &junk);
            }
            _ => {}
        }
        let before = snapshot();
        let plen = rng.below(5000) as usize;
        let rc = a.send(&h, i, r.addr(), &vec![0xab; plen], PROTO_DGRAM);
        check_rc(rc);
        let (rc2, _) = a.notify(&h, &[(r.addr(), rng.below(8000) as u32)]);
        check_rc(rc2);
        check_rc(b.notify_null(&h));
        let after = snapshot();
        for (j, (x, y)) in before.iter().zip(&after).enumerate() {
            assert!(
                x == y || writable(j),
                "step {i}: byte {j} outside the ring changed"
            );
        }
    }
    h.destroy(B);
    h.destroy(A);
    assert_eq!(h.sim.all_pins(), 0);
}

#[test]
fn racing_scribbler_and_senders() {
    // A receiver thread scribbles over its ring header and data while a
    // sender sends and another domain notifies; nothing panics, every
    // return code is one of the ABI's, and teardown leaves nothing pinned.
    let h = Host::new(&[A, B, 3], 256);
    let b = h.guest(B, 2);
    let r = b.ring(&h, 80, crate::abi::DOMID_ANY, 8192);
    let guard = h.sim.alloc_pages(B, 1);
    h.sim.write(B, Sim::va(guard), &[0x5a; PAGE_SIZE]);
    assert_eq!(r.register(&h), 0);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut rng = Rng(12345);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let off = rng.below(60 + 8192);
                let junk: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
                let end = (off + junk.len() as u64).min(60 + 8192);
                h.sim.write(B, r.va + off, &junk[..(end - off) as usize]);
            }
        });
        for dom in [A, 3] {
            let h = &h;
            let r = &r;
            s.spawn(move || {
                let g = h.guest(dom, 4);
                let mut rng = Rng(dom as u64 * 7777);
                for i in 0..4000 {
                    let rc = g.send(
                        h,
                        i,
                        r.addr(),
                        &vec![1; rng.below(3000) as usize],
                        PROTO_DGRAM,
                    );
                    check_rc(rc);
                    check_rc(g.notify(h, &[(r.addr(), rng.below(9000) as u32)]).0);
                }
            });
        }
        s.spawn(|| {
            let g = h.guest(B, 1);
            for _ in 0..4000 {
                check_rc(g.notify_null(&h));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    });
    let mut g = vec![0u8; PAGE_SIZE];
    h.sim.read(B, Sim::va(guard), &mut g);
    assert!(
        g.iter().all(|&x| x == 0x5a),
        "guard page after the ring was written"
    );
    for d in [A, B, 3] {
        h.destroy(d);
    }
    assert_eq!(h.sim.all_pins(), 0);
    assert_eq!(h.sim.pins(B), 0);
}
