//! Host tests of the XSM hooks: each hook's effect under a policy of the
//! test's own (as FLASK would answer), where it sits in the order of
//! checks (ABI sections 5 and 6), and that the dummy module's answers are
//! the behaviour without XSM.
use crate::abi::{
    errno, op, Addr, RingDataFlags, ViptablesRule, DOMID_ANY, PORT_ANY, PROTO_DGRAM, RING_MAGIC,
};
use crate::sim::client::{Guest, GuestRing, Host};
use crate::sim::XsmCheck::{self, RegisterAny, RegisterSingle, Send, Use, Viptables};
use std::vec;
use std::vec::Vec;

const A: u16 = 1;
const B: u16 = 2;
const C: u16 = 3;
/// A domain id the simulated host does not have.
const NOBODY: u16 = 9;

fn host() -> Host {
    Host::new(&[0, A, B, C], 256)
}

fn e(x: i64) -> i64 {
    -x
}

fn at(port: u32, domain: u16) -> Addr {
    Addr { port, domain }
}

/// A policy that allows what the dummy module allows, except `denied`.
fn deny(h: &Host, denied: &'static [XsmCheck]) {
    h.sim.set_policy(move |c| c.dummy() && !denied.contains(&c));
}

/// B's ring on `port` for `partner`, registered.
fn b_ring(h: &Host, b: &Guest, port: u32, partner: u16) -> GuestRing {
    let r = b.ring(h, port, partner, 4096);
    assert_eq!(r.register(h), 0);
    r
}

// ---- the dummy module -------------------------------------------------------

#[test]
fn dummy_answers_are_the_behaviour_without_xsm() {
    // The same script without a policy and with the dummy one as a
    // policy: the same results, and the checks are the ones expected.
    let run = |h: &Host| -> Vec<i64> {
        let (a, b, d0) = (h.guest(A, 4), h.guest(B, 4), h.guest(0, 4));
        let any = b.ring(h, 80, DOMID_ANY, 4096);
        let one = b.ring(h, 81, A, 4096);
        let rule = ViptablesRule {
            src: at(PORT_ANY, C),
            dst: at(PORT_ANY, B),
            accept: 0,
        };
        vec![
            any.register(h),
            one.register(h),
            a.send(h, 1, any.addr(), b"x", PROTO_DGRAM),
            a.send(h, 1, one.addr(), b"y", PROTO_DGRAM),
            a.notify(h, &[(any.addr(), 8)]).1[0].flags as i64,
            a.viptables_add(h, rule, 0),
            a.viptables_list(h, 0).0,
            d0.viptables_add(h, rule, 0),
            d0.viptables_list(h, 0).0,
            d0.viptables_del(h, None, -1),
        ]
    };
    let plain = run(&host());
    let h = host();
    h.sim.set_policy(XsmCheck::dummy);
    assert_eq!(run(&h), plain);
    assert_eq!(
        plain,
        vec![
            0,
            0,
            1,
            1,
            (RingDataFlags::EXISTS | RingDataFlags::SUFFICIENT).bits() as i64,
            e(errno::EPERM),
            e(errno::EPERM),
            0,
            0,
            0
        ]
    );
    let checks: Vec<XsmCheck> = h.sim.take_xsm_log().into_iter().map(|(c, _)| c).collect();
    assert_eq!(
        checks,
        vec![
            RegisterAny(B),
            Use(B),
            RegisterSingle(B, A),
            Use(A),
            Send(A, B),
            Send(A, B),
            Send(A, B),
            Viptables(A),
            Viptables(A),
            Viptables(0),
            Viptables(0),
            Viptables(0),
        ]
    );
}

// ---- use ----------------------------------------------------------------------

#[test]
fn use_denied_at_the_first_operation_changes_nothing() {
    let h = host();
    let (a, b) = (h.guest(A, 8), h.guest(B, 4));
    let rb = b_ring(&h, &b, 80, DOMID_ANY);
    deny(&h, &[Use(A)]);
    let ra = a.ring(&h, 90, DOMID_ANY, 4096);
    assert_eq!(ra.register(&h), e(errno::EPERM));
    assert_eq!(a.send(&h, 1, rb.addr(), b"x", PROTO_DGRAM), e(errno::EPERM));
    // Privilege comes before the destination: no such domain, still -EPERM.
    assert_eq!(
        a.send(&h, 1, at(80, NOBODY), b"x", PROTO_DGRAM),
        e(errno::EPERM)
    );
    assert_eq!(a.notify(&h, &[(rb.addr(), 8)]).0, e(errno::EPERM));
    // Nothing to do, nothing asked.
    assert_eq!(a.notify_null(&h), 0);
    // The caller's arguments come first.
    ra.write_header(&h, RING_MAGIC + 1, 4096, 0, 0);
    assert_eq!(ra.register(&h), e(errno::EINVAL));
    assert_eq!(
        h.call(A, op::SEND, 0, 0, 0, 0, 0),
        e(errno::EFAULT),
        "bad src pointer"
    );
    // Nothing of A anywhere: no pins, no state, B's ring untouched.
    assert_eq!(h.sim.pins(A), 0);
    assert!(!h.dump().contains("dom1:"), "{}", h.dump());
    assert_eq!(rb.tx(&h), 0);
    // B is not affected.
    assert_eq!(b.send(&h, 2, rb.addr(), b"self", PROTO_DGRAM), 4);
    let asked: Vec<XsmCheck> = h.sim.take_xsm_log().into_iter().map(|(c, _)| c).collect();
    assert!(asked.iter().all(|c| *c != Send(A, B)), "{asked:?}");
    // register, the two sends, notify: each asked, each denied.
    assert_eq!(asked.iter().filter(|c| **c == Use(A)).count(), 4);
}

#[test]
fn use_is_asked_once_per_domain_state() {
    // A domain that has state was allowed: later operations do not ask
    // use again (send, register and notify have hooks of their own).
    let h = host();
    let (a, b) = (h.guest(A, 8), h.guest(B, 4));
    let rb = b_ring(&h, &b, 80, DOMID_ANY);
    h.sim.set_policy(XsmCheck::dummy);
    assert_eq!(a.send(&h, 1, rb.addr(), b"1", PROTO_DGRAM), 1);
    assert_eq!(a.send(&h, 1, rb.addr(), b"2", PROTO_DGRAM), 1);
    let asked: Vec<XsmCheck> = h.sim.take_xsm_log().into_iter().map(|(c, _)| c).collect();
    assert_eq!(asked, vec![Use(A), Send(A, B), Send(A, B)]);
    // After teardown the next state is a first operation again.
    h.destroy(A);
    deny(&h, &[Use(A)]);
    assert_eq!(a.send(&h, 1, rb.addr(), b"3", PROTO_DGRAM), e(errno::EPERM));
}

// ---- register ---------------------------------------------------------------

#[test]
fn register_any_and_single_source() {
    let h = host();
    let (a, b, c) = (h.guest(A, 4), h.guest(B, 16), h.guest(C, 4));
    deny(&h, &[RegisterAny(B), RegisterSingle(B, C)]);
    let any = b.ring(&h, 80, DOMID_ANY, 4096);
    assert_eq!(any.register(&h), e(errno::EPERM));
    assert_eq!(h.sim.pins(B), 0);
    // Denied before use is asked: B still has no state.
    assert!(!h.dump().contains("dom2:"), "{}", h.dump());
    assert_eq!(
        a.send(&h, 1, any.addr(), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    // A ring for a domain id that names no domain is asked as any sender.
    let nobody = b.ring(&h, 82, NOBODY, 4096);
    assert_eq!(nobody.register(&h), e(errno::EPERM));
    // One partner: A yes, C no.
    let for_c = b.ring(&h, 81, C, 4096);
    assert_eq!(for_c.register(&h), e(errno::EPERM));
    assert_eq!(
        c.send(&h, 1, for_c.addr(), b"x", PROTO_DGRAM),
        e(errno::ENOTCONN)
    );
    let for_a = b_ring(&h, &b, 81, A);
    assert_eq!(a.send(&h, 1, for_a.addr(), b"hi", PROTO_DGRAM), 2);
    assert_eq!(h.sim.pins(B), for_a.npages as u32);
    let asked: Vec<XsmCheck> = h
        .sim
        .take_xsm_log()
        .into_iter()
        .map(|(c, _)| c)
        .filter(|c| matches!(c, RegisterAny(B) | RegisterSingle(B, _) | Use(B)))
        .collect();
    assert_eq!(
        asked,
        vec![
            RegisterAny(B),
            RegisterAny(B),
            RegisterSingle(B, C),
            RegisterSingle(B, A),
            Use(B)
        ]
    );
}

#[test]
fn denied_reregister_keeps_the_old_ring() {
    let h = host();
    let (a, b) = (h.guest(A, 4), h.guest(B, 16));
    let r = b_ring(&h, &b, 80, DOMID_ANY);
    assert_eq!(a.send(&h, 1, r.addr(), b"one", PROTO_DGRAM), 3);
    let pins = h.sim.pins(B);
    deny(&h, &[RegisterAny(B)]);
    // The same id again, even with a good header: refused, nothing changes.
    assert_eq!(r.register(&h), e(errno::EPERM));
    assert_eq!(h.sim.pins(B), pins);
    assert_eq!(a.send(&h, 1, r.addr(), b"two", PROTO_DGRAM), 3);
    assert_eq!(r.recv(&h).unwrap().payload, b"one");
    assert_eq!(r.recv(&h).unwrap().payload, b"two");
    // Unregister is not a register: allowed.
    assert_eq!(r.unregister(&h), 0);
    assert_eq!(h.sim.pins(B), 0);
}

// ---- send -------------------------------------------------------------------

/// Sends from A that explore the order of checks, for one way of denying
/// A -> B (`setup`): every answer.
fn send_script(setup: impl FnOnce(&Host)) -> Vec<i64> {
    let h = host();
    let (a, b) = (h.guest(A, 8), h.guest(B, 8));
    let r = b_ring(&h, &b, 80, DOMID_ANY);
    let small = b.ring(&h, 81, DOMID_ANY, 64);
    assert_eq!(small.register(&h), 0);
    setup(&h);
    let virqs = h.sim.virqs(B);
    let answers = vec![
        // existing ring
        a.send(&h, 1, r.addr(), b"x", PROTO_DGRAM),
        a.sendv(&h, 1, r.addr(), &[b"x", b"y"], PROTO_DGRAM),
        // no such port on B (the destination domain has state)
        a.send(&h, 1, at(99, B), b"x", PROTO_DGRAM),
        // no such domain (no V4V state): -ENOTCONN before the policy
        a.send(&h, 1, at(80, NOBODY), b"x", PROTO_DGRAM),
        a.send(&h, 1, at(80, C), b"x", PROTO_DGRAM),
        // the caller's own arguments first: a lie about src.domain, a bad
        // payload pointer
        a.send_from(&h, at(1, C), r.addr(), b"x", PROTO_DGRAM),
        h.call(
            A,
            op::SEND,
            a.put(&h, &at(1, A)),
            a.put(&h, &r.addr()),
            0xdead_0000,
            8,
            0,
        ),
        // the destination before space: a message that can never fit
        a.send(&h, 1, small.addr(), &[0u8; 100], PROTO_DGRAM),
        // the other direction and other senders are not affected
        b.send(&h, 1, at(80, B), b"b", PROTO_DGRAM),
    ];
    assert_eq!(r.tx(&h), 32, "only B's own message is in the ring");
    assert_eq!(h.sim.virqs(B), virqs + 1);
    answers
}

#[test]
fn denied_send_is_eperm_where_a_viptables_reject_is() {
    let xsm = send_script(|h| deny(h, &[Send(A, B)]));
    let vip = send_script(|h| {
        let d0 = h.guest(0, 4);
        let rule = ViptablesRule {
            src: at(PORT_ANY, A),
            dst: at(PORT_ANY, B),
            accept: 0,
        };
        assert_eq!(d0.viptables_add(h, rule, 0), 0);
    });
    let eperm = e(errno::EPERM);
    let expected = vec![
        eperm,
        eperm,
        eperm,
        e(errno::ENOTCONN),
        e(errno::ENOTCONN),
        eperm,
        e(errno::EFAULT),
        eperm,
        1,
    ];
    assert_eq!(xsm, expected);
    assert_eq!(vip, expected);
}

#[test]
fn denied_send_is_one_direction_and_one_pair() {
    let h = host();
    let (a, b, c) = (h.guest(A, 4), h.guest(B, 4), h.guest(C, 4));
    let rb = b_ring(&h, &b, 80, DOMID_ANY);
    let ra = a.ring(&h, 80, DOMID_ANY, 4096);
    assert_eq!(ra.register(&h), 0);
    deny(&h, &[Send(A, B)]);
    assert_eq!(a.send(&h, 1, rb.addr(), b"x", PROTO_DGRAM), e(errno::EPERM));
    assert_eq!(c.send(&h, 1, rb.addr(), b"c", PROTO_DGRAM), 1);
    assert_eq!(b.send(&h, 1, ra.addr(), b"b", PROTO_DGRAM), 1);
    // The caller's real domain is what is asked, whatever src.domain says.
    assert_eq!(
        a.send_from(&h, at(1, DOMID_ANY), rb.addr(), b"x", PROTO_DGRAM),
        e(errno::EPERM)
    );
    // Allowed again: delivered.
    h.sim.clear_policy();
    assert_eq!(a.send(&h, 1, rb.addr(), b"ok", PROTO_DGRAM), 2);
    assert_eq!(rb.recv(&h).unwrap().payload, b"c");
    assert_eq!(rb.recv(&h).unwrap().payload, b"ok");
}

// ---- notify -----------------------------------------------------------------

#[test]
fn notify_hides_rings_the_caller_may_not_send_to() {
    let h = host();
    let (a, b, c) = (h.guest(A, 8), h.guest(B, 4), h.guest(C, 8));
    let rb = b_ring(&h, &b, 80, DOMID_ANY);
    let ra = a.ring(&h, 80, DOMID_ANY, 4096);
    assert_eq!(ra.register(&h), 0);
    deny(&h, &[Send(A, B)]);
    // A asks for more space than there is: a visible ring would queue a wait.
    let (rv, ents) = a.notify(&h, &[(rb.addr(), 8000), (ra.addr(), 8), (at(80, C), 8)]);
    assert_eq!(rv, 0);
    assert_eq!({ ents[0].flags }, 0, "B's ring reads as not existing");
    assert_eq!({ ents[0].max_message_size }, 0);
    assert_eq!(
        { ents[1].flags },
        (RingDataFlags::EXISTS | RingDataFlags::SUFFICIENT | RingDataFlags::EMPTY).bits()
    );
    assert_eq!({ ents[2].flags }, 0);
    assert!(
        !h.dump().contains("wait(dom1"),
        "no wait queued: {}",
        h.dump()
    );
    // C sees it, and its wait is queued.
    let (rv, ents) = c.notify(&h, &[(rb.addr(), 8000)]);
    assert_eq!(rv, 0);
    assert_eq!(
        { ents[0].flags },
        (RingDataFlags::EXISTS | RingDataFlags::PENDING | RingDataFlags::EMPTY).bits()
    );
    // Only domains with V4V state are asked about (C has none: no check).
    let asked: Vec<XsmCheck> = h.sim.take_xsm_log().into_iter().map(|(c, _)| c).collect();
    assert_eq!(asked, vec![Send(A, B), Send(A, A), Use(C), Send(C, B)]);
}

// ---- viptables --------------------------------------------------------------

#[test]
fn viptables_decided_by_the_policy() {
    let h = host();
    let (a, b, d0) = (h.guest(A, 4), h.guest(B, 4), h.guest(0, 4));
    let rb = b_ring(&h, &b, 80, DOMID_ANY);
    // A toolstack domain A manages the viptables; dom0 may not.
    h.sim.set_policy(|c| match c {
        Viptables(d) => d == A,
        c => c.dummy(),
    });
    let rule = ViptablesRule {
        src: at(PORT_ANY, C),
        dst: at(PORT_ANY, B),
        accept: 0,
    };
    assert_eq!(d0.viptables_add(&h, rule, 0), e(errno::EPERM));
    assert_eq!(d0.viptables_list(&h, 0).0, e(errno::EPERM));
    assert_eq!(d0.viptables_del(&h, None, -1), e(errno::EPERM));
    // Asked before anything is read: a bad pointer is still -EPERM.
    assert_eq!(
        h.call(0, op::VIPTABLES_ADD, 0xdead_0000, 0, 0, 0, 0),
        e(errno::EPERM)
    );
    assert_eq!(a.viptables_add(&h, rule, 0), 0);
    let (rv, rules) = a.viptables_list(&h, 0);
    assert_eq!((rv, rules), (0, vec![rule]));
    let c = h.guest(C, 4);
    assert_eq!(c.send(&h, 1, rb.addr(), b"x", PROTO_DGRAM), e(errno::EPERM));
    assert_eq!(a.viptables_del(&h, Some(rule), -1), 0);
    assert_eq!(c.send(&h, 1, rb.addr(), b"x", PROTO_DGRAM), 1);
    assert_eq!(
        h.call(A, op::VIPTABLES_ADD, 0xdead_0000, 0, 0, 0, 0),
        e(errno::EFAULT)
    );
}
