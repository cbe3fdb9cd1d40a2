//! Bounded work: notify and teardown in preemptible steps give the same
//! results as at once, every step is bounded, and no lock that other
//! domains need is held across a copy.
use crate::abi::{errno, Addr, RingDataFlags, ViptablesRule, DOMID_ANY, PORT_ANY, PROTO_DGRAM};
use crate::sim::client::Host;
use std::sync::mpsc;
use std::time::Duration;
use std::vec::Vec;

fn addr(domain: u16, port: u32) -> Addr {
    Addr { port, domain }
}

/// What a notify scene gave: the result, each entry's flags and
/// max_message_size, and the simulation's preemption counts.
struct Scene {
    rc: i64,
    answers: Vec<(u16, u32)>,
    continuations: u64,
}

/// dom2 with 40 rings (ports 100..), dom1 asking about each of them and
/// about as many that do not exist; rules hide some rings from dom1.
fn notify_scene(preempt_every: u64) -> Scene {
    let h = Host::new(&[0, 1, 2], 512);
    h.sim.set_preempt_every(preempt_every);
    let b = h.guest(2, 4);
    let rings: Vec<_> = (0..40)
        .map(|i| {
            let r = b.ring(&h, 100 + i, DOMID_ANY, 1024);
            assert_eq!(r.register(&h), 0);
            r
        })
        .collect();
    let dom0 = h.guest(0, 2);
    for i in 0..40u32 {
        if i % 7 == 3 {
            let rule = ViptablesRule {
                src: addr(1, PORT_ANY),
                dst: addr(2, 100 + i),
                accept: 0,
            };
            assert_eq!(dom0.viptables_add(&h, rule, u32::MAX), 0);
        }
    }
    let a = h.guest(1, 8);
    let q: Vec<(Addr, u32)> = (0..200u32)
        .map(|i| (addr(2, 100 + i % 80), 16 * (i % 90)))
        .collect();
    let (rc, ents) = a.notify(&h, &q);
    drop(rings);
    Scene {
        rc,
        answers: ents.iter().map(|e| (e.flags, e.max_message_size)).collect(),
        continuations: h.sim.preemption_counts().1,
    }
}

#[test]
fn notify_in_steps_answers_as_notify_at_once() {
    let at_once = notify_scene(0);
    let in_steps = notify_scene(1);
    assert_eq!((at_once.rc, in_steps.rc), (0, 0));
    assert_eq!(at_once.answers, in_steps.answers);
    assert_eq!(at_once.continuations, 0);
    // 200 entries, at most 32 a step: at least 6 continuations.
    assert!(in_steps.continuations >= 6, "{}", in_steps.continuations);
    // The scene is not trivial: some rings exist, some are hidden.
    let exists = at_once
        .answers
        .iter()
        .filter(|(f, _)| f & RingDataFlags::EXISTS.bits() != 0)
        .count();
    // Ports 100..140 each asked three times, 6 of them hidden by a rule.
    assert_eq!(exists, (40 - 6) * 3);
}

#[test]
fn notify_with_many_rules_takes_few_entries_a_step() {
    let h = Host::new(&[0, 1, 2], 256);
    let dom0 = h.guest(0, 2);
    // 4096 rules, none of which matches.
    for i in 0..4096u32 {
        let rule = ViptablesRule {
            src: addr(7, i),
            dst: addr(7, i),
            accept: 0,
        };
        assert_eq!(dom0.viptables_add(&h, rule, u32::MAX), 0);
    }
    h.sim.set_preempt_every(1);
    let a = h.guest(1, 8);
    let q: Vec<(Addr, u32)> = (0..64u32).map(|i| (addr(2, i), 0)).collect();
    let (rc, ents) = a.notify(&h, &q);
    assert_eq!(rc, 0);
    assert!(ents.iter().all(|e| e.flags == 0));
    // 8192 matches a step at 4096 rules: two entries a step.
    let (_, conts, _) = h.sim.preemption_counts();
    assert!(conts >= 31, "{conts} continuations for 64 entries");
}

#[test]
fn continuations_leave_the_guest_arguments_alone() {
    let h = Host::new(&[0, 1, 2], 256);
    let b = h.guest(2, 4);
    let _rings: Vec<_> = (0..16u32)
        .map(|i| {
            let r = b.ring(&h, 100 + i, DOMID_ANY, 1024);
            assert_eq!(r.register(&h), 0);
            r
        })
        .collect();
    // The upper bits of cmd are no progress: an unknown command.
    let a = h.guest(1, 8);
    let rd = a.ring_data(&h, &[(addr(2, 100), 0)]);
    let cmd = crate::abi::op::NOTIFY | (0x1001 << 8);
    assert_eq!(h.call(1, cmd, rd, 0, 0, 0, 0), -errno::ENOSYS);

    // vCPU 0's notify of 96 entries stops after its first step.
    h.sim.set_preempt_every(1);
    let q: Vec<(Addr, u32)> = (0..96u32).map(|i| (addr(2, 100 + i % 16), 0)).collect();
    let rd0 = a.ring_data(&h, &q);
    let call = |rd: u64| {
        h.sim.as_dom(1, || {
            h.engine
                .hypercall(&h.sim, crate::abi::op::NOTIFY, rd, 0, 0, 0, 0)
        })
    };
    assert_eq!(call(rd0), crate::sim::CONTINUED);
    let cont = crate::sim::take_continuation().expect("a continuation");
    assert_eq!(cont, (crate::abi::op::NOTIFY, rd0, 0, 0, 0, 0));
    // Meanwhile vCPU 1 of the same domain makes a notify of its own.
    let other = h.guest(1, 8);
    let rd1 = other.ring_data(&h, &[(addr(2, 101), 0), (addr(2, 999), 0)]);
    let r1 = std::thread::scope(|s| {
        s.spawn(|| {
            crate::sim::set_current_vcpu(1);
            h.sim.as_dom(1, || {
                crate::sim::with_continuations((crate::abi::op::NOTIFY, rd1, 0, 0, 0, 0), |c| {
                    h.engine.hypercall(&h.sim, c.0, c.1, c.2, c.3, c.4, c.5)
                })
            })
        })
        .join()
        .unwrap()
    });
    assert_eq!(r1, 0);
    // vCPU 0 comes back with the same arguments and finishes: every entry
    // is answered, the first step's ones not twice.
    let (_, conts_before, _) = h.sim.preemption_counts();
    let r0 = h.sim.as_dom(1, || {
        crate::sim::with_continuations(cont, |c| {
            h.engine.hypercall(&h.sim, c.0, c.1, c.2, c.3, c.4, c.5)
        })
    });
    assert_eq!(r0, 0);
    let (_, conts_after, _) = h.sim.preemption_counts();
    // 96 entries, 32 a step, the first step done: two more steps, one
    // continuation between them.
    assert_eq!(conts_after - conts_before, 1);
    for i in 0..96u64 {
        let e: crate::abi::RingDataEnt =
            a.get(&h, rd0 + crate::abi::RING_DATA_ENT_OFFSET as u64 + 16 * i);
        assert!(e.flags & RingDataFlags::EXISTS.bits() != 0, "entry {i}");
    }
}

#[test]
fn teardown_in_steps_releases_everything() {
    let h = Host::new(&[0, 1, 2, 3], 1024);
    let b = h.guest(2, 4);
    let c = h.guest(3, 4);
    // dom2: 30 rings of 5 frames; dom3 waits on each of them, and dom2
    // waits on a ring of dom3.
    let rings: Vec<_> = (0..30u32)
        .map(|i| {
            let r = b.ring(&h, 10 + i, DOMID_ANY, 16384);
            assert_eq!(r.register(&h), 0);
            r
        })
        .collect();
    let cr = c.ring(&h, 5, DOMID_ANY, 1024);
    assert_eq!(cr.register(&h), 0);
    let q: Vec<(Addr, u32)> = rings.iter().map(|r| (r.addr(), 100_000)).collect();
    let (rc, _) = c.notify(&h, &q);
    assert_eq!(rc, 0);
    let (rc, _) = b.notify(&h, &[(cr.addr(), 100_000)]);
    assert_eq!(rc, 0);
    assert!(h.dump().contains("30 wait(s) queued"), "{}", h.dump());
    let pins = h.sim.pins(2);
    assert!(pins >= 150, "{pins} frames pinned");
    let virqs3 = h.sim.virqs(3);

    h.sim.set_preempt_every(1);
    h.engine.domain_detach(&h.sim, 2);
    // Detached: sends and notify see no dom2 at once, frames still pinned.
    let a = h.guest(1, 4);
    assert_eq!(
        a.send(&h, 9, rings[0].addr(), b"late", PROTO_DGRAM),
        -errno::ENOTCONN
    );
    let mut steps = 0;
    while h.engine.domain_relinquish(&h.sim, 2).is_err() {
        steps += 1;
        assert!(steps < 10_000);
    }
    // A step per ring at least (each ring is one step with preemption on
    // every check), and nothing left.
    assert!(steps >= 30, "{steps} steps");
    assert_eq!(h.sim.pins(2), 0);
    let dump = h.dump();
    assert!(!dump.contains("dom2:"), "{dump}");
    assert!(!dump.contains("wait(dom2"), "{dump}");
    // dom3's 30 waits went with the rings, each woke it.
    assert!(
        dump.contains("dom3: 1 ring(s), 1 frame(s) pinned, 0 wait(s)"),
        "{dump}"
    );
    assert_eq!(h.sim.virqs(3) - virqs3, 30);
    // Done means done: another call finds nothing.
    assert_eq!(h.engine.domain_relinquish(&h.sim, 2), Ok(()));
}

#[test]
fn no_global_lock_is_held_across_a_copy() {
    let h = Host::new(&[0, 1, 2, 3, 4], 256);
    let b = h.guest(2, 4);
    let r = b.ring(&h, 80, DOMID_ANY, 128 * 1024);
    assert_eq!(r.register(&h), 0);
    let d = h.guest(4, 4);
    let dr = d.ring(&h, 81, DOMID_ANY, 4096);
    assert_eq!(dr.register(&h), 0);
    let payload = std::vec![0x5a; 64 * 1024];

    let (in_copy_tx, in_copy_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    h.sim.set_copy_hook(
        64 * 1024,
        std::boxed::Box::new(move || {
            in_copy_tx.send(()).unwrap();
            let _ = go_rx.recv_timeout(Duration::from_secs(20));
        }),
    );
    std::thread::scope(|s| {
        let (h, r, payload) = (&h, &r, &payload);
        let sender = s.spawn(move || {
            let a = h.guest(1, 40);
            a.send(h, 9, r.addr(), payload, PROTO_DGRAM)
        });
        in_copy_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the copy began");
        // dom1 is inside its copy into dom2's ring. Another domain's
        // teardown and another domain's first registration go ahead.
        let (done_tx, done_rx) = mpsc::channel();
        s.spawn(move || {
            h.destroy(4);
            let c = h.guest(3, 4);
            let cr = c.ring(h, 82, DOMID_ANY, 4096);
            done_tx.send(cr.register(h)).unwrap();
        });
        let other = done_rx.recv_timeout(Duration::from_secs(5));
        go_tx.send(()).unwrap();
        assert_eq!(sender.join().unwrap(), 64 * 1024);
        assert_eq!(
            other,
            Ok(0),
            "a teardown and a first registration waited for another domain's copy"
        );
    });
    assert_eq!(h.sim.pins(4), 0);
    assert_eq!(r.recv(&h).map(|m| m.payload.len()), Some(64 * 1024));
}

#[test]
fn dump_lets_the_cpu_work_between_rings() {
    let h = Host::new(&[0, 1, 2], 512);
    let b = h.guest(2, 4);
    let _rings: Vec<_> = (0..50u32)
        .map(|i| {
            let r = b.ring(&h, 10 + i, DOMID_ANY, 1024);
            assert_eq!(r.register(&h), 0);
            r
        })
        .collect();
    let dump = h.dump();
    assert_eq!(dump.matches("    port ").count(), 50);
    let (_, _, passes) = h.sim.preemption_counts();
    // 50 rings, 16 a step, then one pass per domain.
    assert!(passes >= 4, "{passes} softirq passes");
}

#[test]
fn two_dying_domains_waiting_on_each_other() {
    let h = Host::new(&[0, 1, 2, 3], 512);
    let b = h.guest(2, 4);
    let c = h.guest(3, 4);
    let br = b.ring(&h, 10, DOMID_ANY, 1024);
    let cr = c.ring(&h, 11, DOMID_ANY, 1024);
    // Released first (the last in key order): dom2's wait is not on it.
    let cr2 = c.ring(&h, 12, DOMID_ANY, 1024);
    assert_eq!(br.register(&h), 0);
    assert_eq!(cr.register(&h), 0);
    assert_eq!(cr2.register(&h), 0);
    assert_eq!(b.notify(&h, &[(cr.addr(), 100_000)]).0, 0);
    assert_eq!(c.notify(&h, &[(br.addr(), 100_000)]).0, 0);
    h.sim.set_preempt_every(1);
    h.engine.domain_detach(&h.sim, 2);
    h.engine.domain_detach(&h.sim, 3);
    // dom3's teardown has taken its rings (dom2's wait among them) out of
    // its table, and stops before releasing them.
    assert!(h.engine.domain_relinquish(&h.sim, 3).is_err());
    // dom2's teardown finds its wait nowhere in a table: it is done all
    // the same, and the wait goes with dom3's ring.
    while h.engine.domain_relinquish(&h.sim, 2).is_err() {}
    while h.engine.domain_relinquish(&h.sim, 3).is_err() {}
    assert_eq!((h.sim.pins(2), h.sim.pins(3)), (0, 0));
    assert!(!h.dump().contains("dom2:") && !h.dump().contains("dom3:"));
}
