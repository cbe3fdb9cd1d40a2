//! The in-guest test runner.
//!
//! Output, one line each, prefixed so the harness can find them among
//! Xen's serial output:
//!
//! ```text
//! V4VT plan N
//! V4VT ok I NAME
//! V4VT not ok I NAME # REASON
//! V4VT done
//! ```
//!
//! Tests run in list order. On the command line, `filter=A,B` keeps only
//! the tests whose name contains one of the substrings, and `skip=C,D`
//! drops those whose name contains one of them. Each test cleans up after
//! itself (rings unregister on drop, viptables rules are removed).

mod notify;
mod pvh;
mod register;
mod send;
mod smp;
mod viptables;

use alloc::format;
use alloc::string::String;

use v4v_abi::{errno, Addr, DOMID_ANY, VIRQ_V4V};

use crate::cmdline::CmdLine;
use crate::println;
use crate::v4v::Ring;
use crate::xen::{event, start_info};

pub type TestResult = Result<(), String>;

/// A named test.
pub struct Test {
    pub name: &'static str,
    pub run: fn(&mut Ctx) -> TestResult,
}

/// A `[Test]` list from test functions, each named after its function.
macro_rules! tests {
    ($($f:ident),* $(,)?) => {
        &[$(Test { name: stringify!($f), run: $f }),*]
    };
}
pub(crate) use tests;

/// What tests know about the domain they run in.
pub struct Ctx {
    pub dom0: bool,
    domid: Option<u16>,
    /// Local port bound to VIRQ_V4V, or Xen's error.
    pub virq: Result<u32, i64>,
    next_port: u32,
}

/// Negative errno values as `v4v_op` returns them.
pub const EPERM: i64 = -errno::EPERM;
pub const ENOENT: i64 = -errno::ENOENT;
pub const EAGAIN: i64 = -errno::EAGAIN;
pub const EFAULT: i64 = -errno::EFAULT;
pub const EINVAL: i64 = -errno::EINVAL;
pub const ENOSYS: i64 = -errno::ENOSYS;
pub const ENOBUFS: i64 = -errno::ENOBUFS;
pub const ENOTCONN: i64 = -errno::ENOTCONN;

/// An address no one maps in a PV guest (low canonical half).
pub const UNMAPPED: u64 = 0x0000_7e00_0000_0000;
/// A hypervisor address (Xen's direct map).
pub const XEN_VA: u64 = 0xffff_8300_0000_0000;

/// The non-canonical alias of one of our (upper-half) addresses: the same
/// low 48 bits with bits 63..48 clear. A page walk that looks only at bits
/// 47..0 reaches our own page there; the CPU and Xen must refuse it.
pub fn non_canonical(va: u64) -> u64 {
    va & 0x0000_ffff_ffff_ffff
}

/// Readable name of a `v4v_op` result.
pub fn rc_name(rc: i64) -> String {
    let name = match -rc {
        errno::EPERM => "EPERM",
        errno::ENOENT => "ENOENT",
        errno::EAGAIN => "EAGAIN",
        errno::ENOMEM => "ENOMEM",
        errno::EFAULT => "EFAULT",
        errno::EINVAL => "EINVAL",
        errno::ENOSPC => "ENOSPC",
        errno::ENOSYS => "ENOSYS",
        errno::ENOBUFS => "ENOBUFS",
        errno::ENOTCONN => "ENOTCONN",
        _ => return format!("{rc}"),
    };
    if rc < 0 {
        format!("-{name}")
    } else {
        format!("{rc}")
    }
}

/// Fails the test unless `$got == $want` (values compared by copy).
#[macro_export]
macro_rules! ensure_eq {
    ($got:expr, $want:expr, $($what:tt)+) => {{
        let got = $got;
        let want = $want;
        if got != want {
            return Err(alloc::format!(
                "{}: got {:?}, want {:?}",
                format_args!($($what)+),
                got,
                want
            ));
        }
    }};
}

/// Fails the test unless the hypercall result `$got` is `$want`.
#[macro_export]
macro_rules! ensure_rc {
    ($got:expr, $want:expr, $($what:tt)+) => {
        $crate::tests::check_rc($got, $want, format_args!($($what)+))?
    };
}

/// `Ok` if the hypercall result `got` is `want`; else says what `what`
/// returned and what it should have (the text is built only then).
pub fn check_rc(got: i64, want: i64, what: impl core::fmt::Display) -> TestResult {
    if got == want {
        Ok(())
    } else {
        Err(format!(
            "{what}: got {}, want {}",
            rc_name(got),
            rc_name(want)
        ))
    }
}

/// Fails the test unless `$cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($what:tt)+) => {{
        if !$cond {
            return Err(alloc::format!($($what)+));
        }
    }};
}

impl Ctx {
    fn new() -> Ctx {
        let si = start_info::get();
        let dom0 = si.is_dom0();
        Ctx {
            dom0,
            // The initial domain is domain 0; a domU learns its id from the
            // ring id Xen writes back at register.
            domid: dom0.then_some(0),
            virq: event::bind_virq(VIRQ_V4V, 0),
            next_port: 0x4000,
        }
    }

    /// A port no other test in this run uses.
    pub fn port(&mut self) -> u32 {
        self.next_port += 1;
        self.next_port
    }

    /// This domain's id.
    pub fn domid(&mut self) -> Result<u16, String> {
        if let Some(d) = self.domid {
            return Ok(d);
        }
        let mut ring = Ring::new(self.port(), DOMID_ANY, 256);
        let rc = ring.register();
        if rc != 0 {
            return Err(format!(
                "own domain id unknown: probe register gave {}",
                rc_name(rc)
            ));
        }
        let d = ring.addr().domain;
        self.domid = Some(d);
        Ok(d)
    }

    /// A domain id that is neither ours nor a wildcard.
    pub fn other_domid(&mut self) -> Result<u16, String> {
        Ok(if self.domid()? == 1 { 2 } else { 1 })
    }

    /// Our address at `port`.
    pub fn addr(&mut self, port: u32) -> Result<Addr, String> {
        Ok(Addr {
            port,
            domain: self.domid()?,
        })
    }

    /// Our address at a port no other test uses.
    pub fn fresh_addr(&mut self) -> Result<Addr, String> {
        let port = self.port();
        self.addr(port)
    }

    /// A registered ring of `len` bytes on a fresh port, accepting any
    /// sender.
    pub fn ring(&mut self, len: u32) -> Result<Ring, String> {
        let mut ring = Ring::new(self.port(), DOMID_ANY, len);
        ensure_rc!(ring.register(), 0, "register_ring(len {len})");
        if self.domid.is_none() {
            self.domid = Some(ring.addr().domain);
        }
        Ok(ring)
    }

    fn virq_port(&self) -> Result<u32, String> {
        self.virq
            .map_err(|rc| format!("VIRQ_V4V not bound: {}", rc_name(rc)))
    }

    /// Clears VIRQ_V4V's pending bit.
    pub fn virq_clear(&self) -> TestResult {
        event::test_and_clear(self.virq_port()?);
        Ok(())
    }

    /// Whether VIRQ_V4V is pending; clears it.
    pub fn virq_take(&self) -> Result<bool, String> {
        Ok(event::test_and_clear(self.virq_port()?))
    }
}

fn all_tests() -> impl Iterator<Item = &'static Test> {
    register::TESTS
        .iter()
        .chain(send::TESTS)
        .chain(notify::TESTS)
        .chain(viptables::TESTS)
        .chain(smp::TESTS)
        .chain(pvh::TESTS)
        .filter(|t| !t.name.starts_with("pvh_") || crate::pvh::is_pvh())
}

/// Runs the selected tests and prints the plan, one line per test, and
/// the end marker.
pub fn run(cmd: &CmdLine) {
    let any_of = |list: Option<&str>, name: &str| {
        list.is_some_and(|l| {
            l.split(',')
                .any(|pat| !pat.is_empty() && name.contains(pat))
        })
    };
    let filter = cmd.get("filter");
    let skip = cmd.get("skip");
    let mut ctx = Ctx::new();
    match ctx.virq {
        Ok(port) => println!("V4V test guest: VIRQ_V4V bound to port {}", port),
        Err(rc) => println!("V4V test guest: binding VIRQ_V4V failed: {}", rc_name(rc)),
    }
    let selected = || {
        all_tests()
            .filter(|t| filter.is_none() || any_of(filter, t.name))
            .filter(|t| !any_of(skip, t.name))
    };
    println!("V4VT plan {}", selected().count());
    let (mut passed, mut failed) = (0, 0);
    for (i, t) in selected().enumerate() {
        match (t.run)(&mut ctx) {
            Ok(()) => {
                passed += 1;
                println!("V4VT ok {} {}", i + 1, t.name);
            }
            Err(why) => {
                failed += 1;
                println!("V4VT not ok {} {} # {}", i + 1, t.name, why);
            }
        }
    }
    println!(
        "V4V test guest: {} ok, {} not ok, heap free {} bytes",
        passed,
        failed,
        crate::heap::free()
    );
    println!("V4VT done");
}
