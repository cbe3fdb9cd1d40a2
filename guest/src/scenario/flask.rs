//! The enforcing-FLASK boot (`make flask-test`, dom0/flask): three domUs
//! labelled with types of the test policy (xen-patches/flask/v4v_test.te),
//! where `a` may send to `b` and `c` may not.
//!
//! - `flask-b` (`v4v_b_t`, may register rings open to any sender):
//!   registers [`FLASK_PORT`] for any sender, marks `flask-b-ready`, and
//!   takes what arrives until `a`'s messages and dom0's are all there;
//!   nothing of `c`'s may be among them.
//! - `flask-c` (`v4v_c_t`, may use V4V and register a ring for replies
//!   from `b`, but not send to `b` nor open rings to any sender): its send
//!   and sendv to `b` get -EPERM (ABI section 6: an XSM denial of a send),
//!   notify shows `b`'s ring as not existing, its any-sender ring is
//!   refused with -EPERM while a ring for partner `b` is accepted, and its
//!   viptables calls get -EPERM. Marks `flask-c-done`.
//! - `flask-a` (`v4v_a_t`, may send to `b`): sees `b`'s ring in notify and
//!   sends [`A_MESSAGES`] messages that arrive.
//!
//! These roles make no control ring (a ring open to any sender is what
//! `c` may not have); dom0 orders them with the marks: `b`, then `c`, then
//! `a`, so anything of `c`'s that got through would reach `b` before `a`'s
//! last message. Xen's AVC lines for `c`'s refused operations are checked
//! on the serial line by the harness (dom0/flask/serial-checks).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use v4v_abi::{errno, Addr, RingDataFlags, DOMID_ANY, PROTO_DGRAM};

use super::{check_rc, mark, query, report, viptables_denied, wait_virq, Cast};
use crate::println;
use crate::tests::rc_name;
use crate::v4v::{self, Ring};
use crate::xen::time;

/// `b`'s ring, open to any sender.
pub const FLASK_PORT: u32 = 30;
/// `c`'s ring for partner `b` (a permission `c` has).
const C_PORT: u32 = 31;
/// `c`'s attempted ring for any sender (a permission `c` lacks).
const C_ANY_PORT: u32 = 32;
const RING_LEN: u32 = 16 * 1024;
/// Messages `a` sends to `b`.
pub const A_MESSAGES: u32 = 3;
/// What dom0 sends to `b` with v4vctl (dom0/flask/etc/v4v/run.sh).
const DOM0_TEXT: &[u8] = b"flask: hello from dom0";
const SENDER_PORT: u32 = 7000;

fn a_text(i: u32) -> String {
    format!("flask: message {i} from a")
}

pub fn run(cast: Cast, virq: u32, role: &str) {
    match role {
        "flask-b" => receiver(cast, virq),
        "flask-a" => sender_a(cast),
        "flask-c" => sender_c(cast),
        other => println!("V4VT bail out! unknown role '{other}'"),
    }
}

fn b_ring(cast: &Cast) -> Addr {
    Addr {
        port: FLASK_PORT,
        domain: cast.b,
    }
}

fn receiver(cast: Cast, virq: u32) {
    let mut ring = Ring::new(FLASK_PORT, DOMID_ANY, RING_LEN);
    let rc = ring.register();
    if !report(
        "flask.b-any-ring-registered",
        check_rc(rc, 0, "b registering a ring open to any sender"),
    ) {
        return;
    }
    mark("flask-b-ready");
    // Everything that arrives, in order: (source domain, payload).
    let mut got: Vec<(u16, Vec<u8>)> = Vec::new();
    let deadline = time::deadline_ms(240_000);
    let complete = |got: &Vec<(u16, Vec<u8>)>| {
        got.iter().filter(|(d, _)| *d == cast.a).count() >= A_MESSAGES as usize
            && got.iter().any(|(d, _)| *d == 0)
    };
    while !complete(&got) && !time::passed(deadline) {
        loop {
            match ring.recv() {
                Ok(Some(m)) => {
                    let src = m.header.source;
                    println!(
                        "flask-b: <- dom{}:{} {:?}",
                        { src.domain },
                        { src.port },
                        String::from_utf8_lossy(&m.payload)
                    );
                    got.push((src.domain, m.payload));
                }
                Ok(None) => break,
                Err(e) => {
                    report("flask.b-got-a-and-dom0-only", Err(e));
                    return;
                }
            }
        }
        wait_virq(virq, time::deadline_ms(100));
    }
    report("flask.b-got-a-and-dom0-only", judge(&cast, &got));
}

/// `b` got exactly dom0's message and `a`'s, in `a`'s order, and nothing
/// from anyone else (`c` above all).
fn judge(cast: &Cast, got: &[(u16, Vec<u8>)]) -> Result<(), String> {
    let from_a: Vec<&Vec<u8>> = got
        .iter()
        .filter(|(d, _)| *d == cast.a)
        .map(|(_, p)| p)
        .collect();
    let from_dom0: Vec<&Vec<u8>> = got
        .iter()
        .filter(|(d, _)| *d == 0)
        .map(|(_, p)| p)
        .collect();
    if let Some((d, _)) = got.iter().find(|(d, _)| *d != cast.a && *d != 0) {
        return Err(format!(
            "a message from dom{d} (c is dom{}) reached b",
            cast.c
        ));
    }
    if from_a.len() != A_MESSAGES as usize {
        return Err(format!(
            "{} messages from a, want {A_MESSAGES}",
            from_a.len()
        ));
    }
    for (i, p) in from_a.iter().enumerate() {
        if p.as_slice() != a_text(i as u32 + 1).as_bytes() {
            return Err(format!(
                "a's message {} is {:?}",
                i + 1,
                String::from_utf8_lossy(p)
            ));
        }
    }
    if from_dom0.len() != 1 || from_dom0[0].as_slice() != DOM0_TEXT {
        return Err(format!(
            "from dom0: {} message(s), want one",
            from_dom0.len()
        ));
    }
    Ok(())
}

fn sender_a(cast: Cast) {
    let dst = b_ring(&cast);
    report(
        "flask.a-notify-sees-ring",
        query(dst, 64).and_then(|(flags, max)| {
            if flags.contains(RingDataFlags::EXISTS) && max == RING_LEN - 32 {
                Ok(())
            } else {
                Err(format!(
                    "b's ring: flags {:#x}, max_message_size {max}, want EXISTS and {}",
                    flags.bits(),
                    RING_LEN - 32
                ))
            }
        }),
    );
    let src = Addr {
        port: SENDER_PORT,
        domain: DOMID_ANY,
    };
    let mut r = Ok(());
    for i in 1..=A_MESSAGES {
        let text = a_text(i);
        // The second one as a sendv of two pieces.
        let rc = if i == 2 {
            let (x, y) = text.as_bytes().split_at(5);
            v4v::sendv(&src, &dst, &[v4v::iov(x), v4v::iov(y)], PROTO_DGRAM)
        } else {
            v4v::send(&src, &dst, text.as_bytes(), PROTO_DGRAM)
        };
        println!("flask-a: -> b message {i}: {}", rc_name(rc));
        if let Err(e) = check_rc(rc, text.len() as i64, format!("a's message {i} to b")) {
            r = Err(e);
            break;
        }
    }
    report("flask.a-send-delivered", r);
    mark("flask-a-done");
}

fn sender_c(cast: Cast) {
    let dst = b_ring(&cast);
    let src = Addr {
        port: SENDER_PORT,
        domain: DOMID_ANY,
    };
    let text = b"flask: c must not get through";
    let (x, y) = text.split_at(7);
    report(
        "flask.c-send-eperm",
        check_rc(
            v4v::send(&src, &dst, text, PROTO_DGRAM),
            -errno::EPERM,
            "c's send to b",
        )
        .and_then(|_| {
            check_rc(
                v4v::sendv(&src, &dst, &[v4v::iov(x), v4v::iov(y)], PROTO_DGRAM),
                -errno::EPERM,
                "c's sendv to b",
            )
        }),
    );
    report(
        "flask.c-notify-hides-ring",
        query(dst, 64).and_then(|(flags, max)| {
            if flags.is_empty() && max == 0 {
                Ok(())
            } else {
                Err(format!(
                    "b's ring seen by c: flags {:#x}, max_message_size {max}, want 0 and 0",
                    flags.bits()
                ))
            }
        }),
    );
    let mut any = Ring::new(C_ANY_PORT, DOMID_ANY, RING_LEN);
    report(
        "flask.c-any-ring-refused",
        check_rc(
            any.register(),
            -errno::EPERM,
            "c registering a ring open to any sender",
        ),
    );
    let mut single = Ring::new(C_PORT, cast.b, RING_LEN);
    report(
        "flask.c-ring-for-b-accepted",
        check_rc(single.register(), 0, "c registering a ring for partner b")
            .and_then(|_| check_rc(single.unregister(), 0, "c unregistering it")),
    );
    report("flask.c-viptables-denied", viptables_denied("c"));
    mark("flask-c-done");
}
