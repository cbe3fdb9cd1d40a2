//! `make run`'s cast: a readable exchange between three domUs. `b`
//! prints every message that reaches its ring; `a` and `c` send a line
//! every second and say what happened to it. dom0 blocks `c` with a
//! viptables rule for a while (after `c`'s mark `show-c-2`, until its
//! mark `show-c-4`), so the transcript shows a rule changing what gets
//! through.

use alloc::format;
use alloc::string::String;

use v4v_abi::{errno, Addr, DOMID_ANY, PROTO_DGRAM};

use super::{mark, port, Node};
use crate::println;
use crate::tests::rc_name;
use crate::v4v::{self, Ring};
use crate::xen::time;

/// The ring `b` shows.
const SHOW_PORT: u32 = 20;
/// Lines each sender sends.
const LINES: u32 = 6;

fn name_of(n: &Node, dom: u16) -> &'static str {
    match dom {
        d if d == n.cast.a => "a",
        d if d == n.cast.c => "c",
        0 => "dom0",
        _ => "?",
    }
}

pub fn run(n: Node, role: &str) {
    match role {
        "show-b" => receiver(n),
        "show-a" => sender(n, "a"),
        "show-c" => sender(n, "c"),
        other => println!("V4VT bail out! unknown role '{other}'"),
    }
}

fn receiver(mut n: Node) {
    let mut ring = Ring::new(SHOW_PORT, DOMID_ANY, 16 * 1024);
    if ring.register() != 0 {
        println!("b: cannot register ring {SHOW_PORT}");
        return;
    }
    println!(
        "b: ring {SHOW_PORT} registered in domain {} (any sender), waiting for messages",
        n.me
    );
    for d in [n.cast.a, n.cast.c] {
        let _ = n.tell(d, "ready");
    }
    let mut bye = [false; 2];
    let mut count = [0u32; 3];
    let deadline = time::deadline_ms(300_000);
    while bye.contains(&false) && !time::passed(deadline) {
        while let Ok(Some(m)) = ring.recv() {
            let src = m.header.source;
            let who = name_of(&n, src.domain);
            println!(
                "b: <- {who} (dom{}:{}): \"{}\"",
                { src.domain },
                { src.port },
                String::from_utf8_lossy(&m.payload)
            );
            count[match who {
                "a" => 0,
                "c" => 1,
                _ => 2,
            }] += 1;
        }
        v4v::notify_all();
        bye[0] |= n.heard(n.cast.a, "bye").is_some();
        bye[1] |= n.heard(n.cast.c, "bye").is_some();
        super::wait_virq(n.virq, time::deadline_ms(100));
    }
    println!(
        "b: done: {} messages from a, {} from c, {} from others",
        count[0], count[1], count[2]
    );
}

fn sender(mut n: Node, me: &str) {
    let b = n.cast.b;
    if n.hear(b, "ready").is_err() {
        println!("{me}: b never got ready");
        return;
    }
    let src = n.addr(port::SENDER);
    let dst = Addr {
        port: SHOW_PORT,
        domain: b,
    };
    // Stagger the two senders so the transcript alternates.
    if me == "c" {
        super::roles::sleep_ms(500);
    }
    for i in 1..=LINES {
        let text = format!("line {i} from {me}");
        let rc = v4v::send(&src, &dst, text.as_bytes(), PROTO_DGRAM);
        let what = if rc == text.len() as i64 {
            String::from("delivered")
        } else if rc == -errno::EPERM {
            String::from("refused by viptables (-EPERM)")
        } else {
            format!("failed: {}", rc_name(rc))
        };
        println!("{me}: -> b (dom{b}:{SHOW_PORT}) \"{text}\": {what}");
        if me == "c" && (i == 2 || i == 4) {
            mark(&format!("show-c-{i}"));
            // Give dom0 time to act on the mark.
            super::roles::sleep_ms(2500);
        } else {
            super::roles::sleep_ms(1000);
        }
    }
    let _ = n.tell(b, "bye");
}
