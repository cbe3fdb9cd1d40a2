//! Role `c`: the second sender. It is the stranger of the partner test
//! (a ring reserved for `a` must refuse it, even when it lies about who
//! it is), checks that a domU may not touch viptables, and sends with
//! both vCPUs in the concurrency phase.

use v4v_abi::{errno, Addr, DOMID_ANY, PROTO_DGRAM};

use super::super::{check_rc, port, report, viptables_denied, Node};
use super::concurrency_phase;
use crate::println;
use crate::v4v;

pub fn run(mut n: Node) {
    let (a, b) = (n.cast.a, n.cast.b);
    if let Err(e) = n.hear(b, "ready") {
        println!("V4VT bail out! c: {e}");
        return;
    }
    let dst = Addr {
        port: port::PARTNER,
        domain: b,
    };
    report(
        "partner.c-refused",
        check_rc(
            v4v::send(&n.addr(port::SENDER), &dst, b"intruder", PROTO_DGRAM),
            -errno::ENOTCONN,
            "c sending to the ring reserved for a",
        )
        .and_then(|_| {
            check_rc(
                v4v::send(
                    &Addr {
                        port: port::SENDER,
                        domain: DOMID_ANY,
                    },
                    &dst,
                    b"intruder",
                    PROTO_DGRAM,
                ),
                -errno::ENOTCONN,
                "the same with src.domain = ANY",
            )
        }),
    );
    report(
        "partner.c-cannot-pose-as-a",
        check_rc(
            v4v::send(
                &Addr {
                    port: port::SENDER,
                    domain: a,
                },
                &dst,
                b"i am a",
                PROTO_DGRAM,
            ),
            -errno::EPERM,
            "c sending with src.domain = a",
        ),
    );
    let _ = n.tell(b, "partner-done");

    report("viptables.domu-denied", viptables_denied("a domU"));

    concurrency_phase(&mut n, "c");
}
