//! Host tests of the fuzz target: deterministic random inputs, the
//! regression inputs of `fuzz/regressions/`, and the open findings.
use super::run;
use std::path::Path;
use std::vec::Vec;

fn inputs(seed: u64, n: usize, max_len: usize) -> Vec<Vec<u8>> {
    let mut s = seed;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        s
    };
    (0..n)
        .map(|_| {
            let len = 16 + (next() as usize % max_len);
            (0..len).map(|_| next() as u8).collect()
        })
        .collect()
}

/// The fuzz target on deterministic pseudo-random inputs (so it cannot
/// rot between fuzzing runs).
#[test]
fn fuzz_target_on_random_inputs() {
    for data in inputs(0x5eed_f00d_0004_0004, 300, 600) {
        run(&data);
    }
}

fn regressions(dir: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_file() {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Inputs that once failed (fixed since): `fuzz/regressions/`.
#[test]
fn fuzz_regressions() {
    // V4V_FUZZ_INPUT=<file> runs that input too (e.g. a crash artifact).
    let extra = std::env::var_os("V4V_FUZZ_INPUT").map(|p| {
        let p = std::path::PathBuf::from(p);
        let data = std::fs::read(&p).unwrap();
        (p, data)
    });
    for (p, data) in extra.into_iter().chain(regressions("fuzz/regressions")) {
        std::eprintln!("regression {}", p.display());
        run(&data);
    }
}

/// Found by the fuzz model (fixed): an unreadable payload buffer was
/// only noticed while copying, after the destination and space checks,
/// so a NULL buffer got -ENOTCONN (no such ring) or -EAGAIN (ring full,
/// and a wait was queued for a message that could never be sent)
/// instead of -EFAULT, which ABI section 6 orders first.
#[test]
fn bad_payload_pointer_is_efault_before_destination_and_space() {
    use crate::abi::{errno, op, Addr, DOMID_ANY, PROTO_DGRAM};
    use crate::sim::client::Host;
    let h = Host::new(&[1, 2], 64);
    let b = h.guest(2, 1);
    let ring = b.ring(&h, 80, DOMID_ANY, 64);
    assert_eq!(ring.register(&h), 0);
    let a = h.guest(1, 1);
    let src = a.put(&h, &a.addr(1));
    let nowhere = a.put(
        &h,
        &Addr {
            port: 81,
            domain: 2,
        },
    );
    // No such ring, NULL buffer.
    let missing = h.call(1, op::SEND, src, nowhere, 0, 8, PROTO_DGRAM);
    // Fill the ring (64 bytes: one 16-byte message leaves it full).
    assert_eq!(a.send(&h, 1, ring.addr(), &[7; 16], PROTO_DGRAM), 16);
    let src = a.put(&h, &a.addr(1));
    let dst = a.put(&h, &ring.addr());
    let full = h.call(1, op::SEND, src, dst, 0, 8, PROTO_DGRAM);
    assert_eq!(
        (missing, full),
        (-errno::EFAULT, -errno::EFAULT),
        "NULL buffer to a missing ring, to a full ring"
    );
}

/// FINDINGS NOT FIXED YET: inputs in `fuzz/regressions/open/` fail until
/// the engine is fixed (see fuzz/regressions/README.md). Ignored so that
/// the host tests stay green; run with `-- --ignored`.
#[test]
#[ignore = "open fuzz findings for the engine owner: fuzz/regressions/open/"]
fn open_findings() {
    let open = regressions("fuzz/regressions/open");
    let mut failed = Vec::new();
    for (p, data) in open {
        if std::panic::catch_unwind(|| run(&data)).is_err() {
            failed.push(p);
        }
    }
    assert!(failed.is_empty(), "failing: {failed:?}");
}
