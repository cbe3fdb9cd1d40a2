//! `demo` mode: register a ring, send it a few messages with send and
//! sendv, read them back and print a transcript such as
//!
//! ```text
//! dom0:1000 -> dom0:2000  "hello over V4V" (14 bytes, proto DGRAM)
//! ```
//!
//! Each step is also reported as a `V4VT` line so the harness can judge
//! the run.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use v4v_abi::{Addr, DOMID_ANY, PROTO_DGRAM, PROTO_STREAM};

use crate::cmdline::CmdLine;
use crate::println;
use crate::tests::rc_name;
use crate::v4v::{self, iov, Message, Ring};

const RX_PORT: u32 = 2000;
const TX_PORT: u32 = 1000;

fn proto_name(p: u32) -> String {
    match p {
        PROTO_DGRAM => "DGRAM".into(),
        PROTO_STREAM => "STREAM".into(),
        other => format!("{other:#x}"),
    }
}

fn show(a: Addr) -> String {
    let (d, p) = (a.domain, a.port);
    format!("dom{d}:{p}")
}

fn printable(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) && b != b'"' {
                b as char
            } else {
                '.'
            }
        })
        .collect()
}

struct Steps {
    n: usize,
    failed: usize,
}

impl Steps {
    fn report(&mut self, name: &str, result: Result<(), String>) -> bool {
        self.n += 1;
        match result {
            Ok(()) => println!("V4VT ok {} {}", self.n, name),
            Err(why) => {
                self.failed += 1;
                println!("V4VT not ok {} {} # {}", self.n, name, why)
            }
        }
        self.failed == 0
    }
}

fn transcript(to: Addr, m: &Message) {
    let h = m.header;
    let (src, proto) = (h.source, h.protocol);
    println!(
        "{} -> {}  \"{}\" ({} bytes, proto {})",
        show(src),
        show(to),
        printable(&m.payload),
        m.payload.len(),
        proto_name(proto)
    );
}

/// Runs the demo; prints `V4VT plan`, one line per step, `V4VT done`.
pub fn run(_cmd: &CmdLine) {
    let sends: [(&str, &[&[u8]], u32); 4] = [
        ("send", &[b"hello over V4V"], PROTO_DGRAM),
        (
            "sendv",
            &[b"sendv ", b"gathers ", b"three pieces"],
            PROTO_DGRAM,
        ),
        ("send", &[b"a stream-protocol message"], PROTO_STREAM),
        ("sendv", &[b"goodbye", b" from ", b"the demo"], PROTO_DGRAM),
    ];
    // register, each send, read back, unregister
    println!("V4VT plan {}", sends.len() + 3);
    let mut steps = Steps { n: 0, failed: 0 };

    let mut ring = Ring::new(RX_PORT, DOMID_ANY, 4096);
    let rc = ring.register();
    let registered = rc == 0;
    steps.report(
        "register_ring",
        if registered {
            Ok(())
        } else {
            Err(format!("register_ring: {}", rc_name(rc)))
        },
    );
    let me = ring.addr().domain;
    let dst = ring.addr();
    let src = Addr {
        port: TX_PORT,
        domain: if registered { me } else { DOMID_ANY },
    };
    if registered {
        println!(
            "ring {} registered: {} bytes on {} page(s)",
            show(dst),
            ring.len(),
            ring.pages().count()
        );
    }

    let mut expected: Vec<(Vec<u8>, u32)> = Vec::new();
    for (i, (how, pieces, proto)) in sends.into_iter().enumerate() {
        let rc = if how == "send" {
            v4v::send(&src, &dst, pieces[0], proto)
        } else {
            let iovs: Vec<_> = pieces.iter().map(|p| iov(p)).collect();
            v4v::sendv(&src, &dst, &iovs, proto)
        };
        let whole = pieces.concat();
        let r = if rc == whole.len() as i64 {
            expected.push((whole, proto));
            Ok(())
        } else {
            Err(format!("{how}: {}, want {}", rc_name(rc), whole.len()))
        };
        steps.report(&format!("{how}_{}", i + 1), r);
    }

    let mut got = Vec::new();
    let read = loop {
        match ring.recv() {
            Ok(Some(m)) => {
                transcript(dst, &m);
                got.push(m);
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let check = read.and_then(|()| {
        if got.len() != sends.len() {
            return Err(format!("read {} messages, want {}", got.len(), sends.len()));
        }
        for (m, (payload, proto)) in got.iter().zip(&expected) {
            let (hp, hs) = (m.header.protocol, m.header.source);
            if &m.payload != payload || hp != *proto || hs != src {
                return Err(format!(
                    "message at {} differs from what was sent",
                    m.offset
                ));
            }
        }
        Ok(())
    });
    steps.report("read_back", check);

    let rc = if registered { ring.unregister() } else { rc };
    steps.report(
        "unregister_ring",
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("unregister_ring: {}", rc_name(rc)))
        },
    );
    println!("V4VT done");
}
