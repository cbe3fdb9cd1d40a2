//! Multi-domain scenarios: the roles a test domU plays when dom0 starts
//! several of them with `xl create` (`mode=scenario role=a ...`).
//!
//! Every domU learns the domain ids of the others from its command line
//! (`a= b= c= h= b2=`; dom0 creates the domains in a fixed order and checks
//! that Xen handed out the ids it announced). The roles:
//!
//! - `b`: the receiver and the one who paces the run: it owns the rings
//!   under test and tells the others over the control channel when each
//!   phase starts ([`roles::b`]).
//! - `a`: the main sender (2 vCPUs) ([`roles::a`]).
//! - `c`: a second sender (2 vCPUs) and the intruder of the partner test.
//! - `h`: the hostile guest ([`hostile`]).
//! - `b2`: the receiver that replaces `b` after `xl destroy`.
//! - `starve-r`, `starve-h`, `starve-v`, `starve-l`: the starvation
//!   scenario ([`starve`]).
//! - `show-a`, `show-b`, `show-c`: `make run`'s readable exchange
//!   ([`show`]).
//! - `flask-a`, `flask-b`, `flask-c`: the enforcing-FLASK boot, where the
//!   policy lets `a` send to `b` and not `c` ([`flask`]).
//! - `vsock-peer`: speaks the Linux AF_VSOCK transport's wire protocol to
//!   a Linux domU in the vsock boot, correctly and then not ([`vsock`]).
//!
//! Results are printed as `V4VT ok NAME` / `V4VT not ok NAME # WHY` (no
//! number: the harness knows the expected names). Lines starting with
//! `V4VD mark NAME` are progress marks dom0's script waits for before it
//! acts (viptables changes, `xl destroy`).

mod ctrl;
mod flask;
pub mod hostile;
mod roles;
mod show;
mod starve;
pub mod traffic;
mod vsock;

use alloc::format;
use alloc::string::String;

use v4v_abi::{Addr, RingDataEnt, RingDataFlags, VIRQ_V4V};

use crate::cmdline::CmdLine;
use crate::println;
use crate::tests::check_rc;
use crate::v4v::RingData;
use crate::xen::{event, sched, time};

pub use ctrl::Node;

/// Ports of the rings `b` (and `b2`) register; each phase has its own.
pub mod port {
    /// Control channel of every scenario domain.
    pub const CTRL: u32 = 1;
    pub const DGRAM: u32 = 10;
    pub const PARTNER: u32 = 11;
    pub const FLOW: u32 = 12;
    pub const VOLUME: u32 = 13;
    pub const CONCURRENCY: u32 = 14;
    pub const VIPTABLES: u32 = 15;
    pub const TEARDOWN: u32 = 16;
    /// Source port senders use.
    pub const SENDER: u32 = 7000;
}

/// Domain ids of the cast, from the command line.
#[derive(Clone, Copy, Debug, Default)]
pub struct Cast {
    pub a: u16,
    pub b: u16,
    pub c: u16,
    pub h: u16,
    pub b2: u16,
}

impl Cast {
    fn parse(cmd: &CmdLine) -> Result<Cast, String> {
        let id = |k: &str| -> Result<u16, String> {
            let v = cmd
                .get(k)
                .ok_or_else(|| format!("no '{k}=' on the command line"))?;
            v.parse::<u16>()
                .map_err(|_| format!("'{k}={v}' is not a domain id"))
        };
        Ok(Cast {
            a: id("a")?,
            b: id("b")?,
            c: id("c")?,
            h: id("h")?,
            b2: id("b2")?,
        })
    }
}

/// Prints the result line of the named check.
pub fn report(name: &str, r: Result<(), String>) -> bool {
    match r {
        Ok(()) => {
            println!("V4VT ok {name}");
            true
        }
        Err(why) => {
            println!("V4VT not ok {name} # {why}");
            false
        }
    }
}

/// Prints a progress mark for dom0's script.
pub fn mark(name: &str) {
    println!("V4VD mark {name}");
    crate::console::flush();
}

/// One notify entry for `ring` asking for `space` bytes; returns the flags
/// and max_message_size Xen wrote back.
pub fn query(ring: Addr, space: u32) -> Result<(RingDataFlags, u32), String> {
    let mut rd = RingData::new(&[RingDataEnt {
        ring,
        flags: 0,
        space_required: space,
        max_message_size: 0,
    }]);
    let rc = rd.notify();
    check_rc(rc, 0, "notify")?;
    let e = rd.ent(0);
    Ok((RingDataFlags::from_bits_retain(e.flags), e.max_message_size))
}

/// Waits for VIRQ_V4V on `port` until `deadline` (Xen system time);
/// Every viptables operation from this domain (add, flush, list) gets
/// -EPERM; `who` names the caller in the failure text.
pub fn viptables_denied(who: &str) -> Result<(), String> {
    use v4v_abi::{ViptablesRule, DOMID_ANY, PORT_ANY};
    let any = Addr {
        port: PORT_ANY,
        domain: DOMID_ANY,
    };
    let rule = ViptablesRule {
        src: any,
        dst: any,
        accept: 1,
    };
    let eperm = -v4v_abi::errno::EPERM;
    check_rc(
        crate::v4v::viptables_add(&rule, 0),
        eperm,
        format!("viptables_add from {who}"),
    )?;
    check_rc(
        crate::v4v::viptables_del(None, -1),
        eperm,
        format!("viptables flush from {who}"),
    )?;
    check_rc(
        crate::v4v::viptables_list(0).0,
        eperm,
        format!("viptables_list from {who}"),
    )
}

/// returns whether it came.
pub fn wait_virq(port: u32, deadline: u64) -> bool {
    loop {
        if event::test_and_clear(port) {
            return true;
        }
        if time::passed(deadline) {
            return false;
        }
        sched::poll(&[port], deadline);
    }
}

/// Asks `f` until it has a value, for up to `ms`, sleeping on VIRQ_V4V
/// in between (50 ms at most at a time: the event is shared by all of a
/// domain's rings, so a lost one only delays the next look). `Ok(None)`
/// when time ran out.
pub fn poll_until<T>(
    virq: u32,
    ms: u64,
    mut f: impl FnMut() -> Result<Option<T>, String>,
) -> Result<Option<T>, String> {
    let deadline = time::deadline_ms(ms);
    loop {
        if let Some(v) = f()? {
            return Ok(Some(v));
        }
        if time::passed(deadline) {
            return Ok(None);
        }
        wait_virq(virq, time::deadline_ms(50).min(deadline));
    }
}

/// The scenario entry: runs the role named on the command line.
pub fn run(cmd: &CmdLine) {
    let role = cmd.get("role").unwrap_or("");
    let cast = match Cast::parse(cmd) {
        Ok(c) => c,
        Err(e) => {
            println!("V4VT bail out! scenario: {e}");
            return;
        }
    };
    let virq = match event::bind_virq(VIRQ_V4V, 0) {
        Ok(p) => p,
        Err(rc) => {
            println!("V4VT bail out! binding VIRQ_V4V failed: {rc}");
            return;
        }
    };
    // The looper of the starvation scenario times its first V4V call,
    // which is the control ring's registration.
    if role == "starve-l" {
        starve::run_looper(cast, virq, cmd);
        println!("scenario: role {role} finished");
        return;
    }
    // The FLASK roles make no control ring: `c` may not open a ring to
    // any sender.
    if role.starts_with("flask-") {
        flask::run(cast, virq, role);
        println!("scenario: role {role} finished");
        return;
    }
    // The control domain of the starvation scenario makes no V4V call.
    if role == "starve-idle" {
        starve::idle();
    }
    let node = match Node::new(role, cast, virq) {
        Ok(n) => n,
        Err(e) => {
            println!("V4VT bail out! {role}: {e}");
            return;
        }
    };
    println!(
        "scenario: role {role} in domain {}; cast a={} b={} c={} h={} b2={}",
        node.me, cast.a, cast.b, cast.c, cast.h, cast.b2
    );
    match role {
        "a" => roles::a::run(node),
        "b" => roles::b::run(node),
        "b2" => roles::b::run_b2(node),
        "c" => roles::c::run(node),
        "h" => hostile::run(node),
        "starve-r" | "starve-h" | "starve-v" => starve::run(node, role, cmd),
        "show-a" | "show-b" | "show-c" => show::run(node, role),
        "vsock-peer" => vsock::run(node),
        other => println!("V4VT bail out! unknown role '{other}'"),
    }
    println!("scenario: role {role} finished");
}
