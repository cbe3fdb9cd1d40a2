//! Several CPUs at once: senders in different domains sharing one ring,
//! senders to different rings, and a send racing with teardown.
use crate::abi::{errno, DOMID_ANY, PROTO_DGRAM};
use crate::sim::client::Host;
use std::sync::atomic::{AtomicBool, Ordering};
use std::vec::Vec;

const B: u16 = 2;
const PER_SENDER: u32 = 3000;

fn message(sender: u16, seq: u32) -> Vec<u8> {
    let len = (seq as usize * 37 + sender as usize) % 700;
    let mut v = seq.to_le_bytes().to_vec();
    v.extend((0..len).map(|i| (i as u32 ^ seq ^ sender as u32) as u8));
    v
}

#[test]
fn two_senders_one_ring_every_message_accounted_for() {
    let h = Host::new(&[1, B, 3], 256);
    let b = h.guest(B, 2);
    let r = b.ring(&h, 80, DOMID_ANY, 16384);
    assert_eq!(r.register(&h), 0);
    let done = AtomicBool::new(false);
    std::thread::scope(|s| {
        let senders: Vec<_> = [1u16, 3]
            .into_iter()
            .map(|dom| {
                let (h, r) = (&h, &r);
                s.spawn(move || {
                    let g = h.guest(dom, 4);
                    let mut again = 0u64;
                    for seq in 0..PER_SENDER {
                        let m = message(dom, seq);
                        loop {
                            let rc = g.send(h, 9, r.addr(), &m, PROTO_DGRAM);
                            if rc == -errno::EAGAIN {
                                again += 1;
                                std::thread::yield_now();
                                continue;
                            }
                            assert_eq!(rc, m.len() as i64);
                            break;
                        }
                    }
                    again
                })
            })
            .collect();
        // The receiver drains, checking per-sender order and content.
        let receiver = s.spawn(|| {
            let g = h.guest(B, 1);
            let mut next = [0u32; 4];
            let mut total = 0;
            while total < 2 * PER_SENDER {
                match r.recv(&h) {
                    Some(m) => {
                        let from = m.source.domain;
                        assert!(from == 1 || from == 3, "source {from}");
                        assert_eq!(
                            m.payload,
                            message(from, next[from as usize]),
                            "from dom{from}"
                        );
                        next[from as usize] += 1;
                        total += 1;
                    }
                    None => {
                        assert_eq!(g.notify_null(&h), 0);
                        std::thread::yield_now();
                    }
                }
            }
            assert_eq!(r.recv(&h), None);
            done.store(true, Ordering::Relaxed);
            next
        });
        for t in senders {
            t.join().expect("sender");
        }
        let next = receiver.join().expect("receiver");
        assert_eq!(next[1], PER_SENDER);
        assert_eq!(next[3], PER_SENDER);
    });
    assert!(done.load(Ordering::Relaxed));
}

#[test]
fn send_racing_teardown_completes_or_fails_cleanly() {
    for round in 0..20 {
        let h = Host::new(&[1, B], 64);
        let b = h.guest(B, 2);
        let r = b.ring(&h, 80, DOMID_ANY, 65536);
        assert_eq!(r.register(&h), 0);
        let delivered = std::thread::scope(|s| {
            let sender = s.spawn(|| {
                let g = h.guest(1, 4);
                let mut ok = Vec::new();
                for seq in 0..500u32 {
                    let rc = g.send(&h, 1, r.addr(), &message(1, seq), PROTO_DGRAM);
                    match rc {
                        n if n >= 0 => ok.push(seq),
                        e if e == -errno::ENOTCONN || e == -errno::EAGAIN => {}
                        e => panic!("unexpected {e}"),
                    }
                }
                ok
            });
            for _ in 0..(round * 50) {
                std::hint::spin_loop();
            }
            h.destroy(B);
            sender.join().expect("sender")
        });
        // Whatever was delivered before teardown is intact and in order.
        for &seq in &delivered {
            assert_eq!(r.recv(&h).map(|m| m.payload), Some(message(1, seq)));
        }
        assert_eq!(r.recv(&h), None, "only successful sends are in the ring");
        assert_eq!(h.sim.pins(B), 0);
        h.destroy(1);
        assert_eq!(h.sim.all_pins(), 0);
    }
}
