//! v4vctl: the dom0 command-line tool for V4V.
//!
//! The library holds everything that can be tested on a host: the command
//! line ([`cli`]), addresses and rules ([`rule`]), what each errno means
//! ([`errmsg`]) and the runner ([`run`]), which issues the V4V operations
//! through the [`Hypervisor`] trait. The binary plugs in [`privcmd`], the
//! Linux privcmd device; the tests plug in a fake hypervisor that keeps a
//! rule list with the ABI's semantics.
use std::ffi::OsString;
use std::io::Write;

use v4v_abi::{
    op, RingDataEnt, RingDataFlags, RingDataHeader, ViptablesList, ViptablesRule, PROTO_DGRAM,
    RING_DATA_MAGIC, VIPTABLES_LIST_SIZE,
};

pub mod cli;
pub mod errmsg;
#[cfg(target_os = "linux")]
pub mod privcmd;
pub mod rule;

#[cfg(test)]
mod fake;

use cli::{Command, NotifyTarget, Payload};
use rule::{Endpoint, Rule, RuleSide};

/// Exit status: success.
pub const EXIT_OK: i32 = 0;
/// Exit status: the hypercall failed, or the hypervisor could not be reached.
pub const EXIT_HYPERCALL: i32 = 1;
/// Exit status: bad command line.
pub const EXIT_USAGE: i32 = 2;

/// Stop listing after this many rules: the hypervisor keeps at most 4096,
/// so more means it keeps answering full pages and the loop would not end.
const LIST_LIMIT: u32 = 1 << 16;

/// The V4V hypercall, `v4v_op(cmd, arg1, .., arg5)`.
///
/// Pointer arguments are addresses in this process; the implementation
/// must let the hypervisor read and write the memory behind them for the
/// duration of the call. The return is the hypercall's: `>= 0` success,
/// `< 0` a negative Xen errno.
pub trait Hypervisor {
    fn op(&mut self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64;
}

/// So that a caller can lend its hypervisor to [`main_with`] and look at
/// it afterwards.
impl<H: Hypervisor + ?Sized> Hypervisor for &mut H {
    fn op(&mut self, cmd: u32, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
        (**self).op(cmd, a1, a2, a3, a4, a5)
    }
}

/// The address of a buffer, as a hypercall argument. Derived from a
/// mutable reference so that the hypervisor may write through it.
fn addr_of<T: ?Sized>(x: &mut T) -> u64 {
    (x as *mut T).cast::<u8>() as usize as u64
}

/// The operation that failed, for the error line.
fn op_label(cmd: u32) -> &'static str {
    match cmd {
        op::VIPTABLES_ADD => "viptables add",
        op::VIPTABLES_DEL => "viptables del",
        op::VIPTABLES_LIST => "viptables list",
        op::SEND => "send",
        op::NOTIFY => "notify",
        _ => "v4v_op",
    }
}

/// A failed operation: which one and its (positive) errno.
struct OpError {
    cmd: u32,
    errno: i64,
}

type OpResult<T> = Result<T, OpError>;

fn check(cmd: u32, ret: i64) -> OpResult<i64> {
    if ret < 0 {
        Err(OpError {
            cmd,
            errno: ret.checked_neg().unwrap_or(i64::MAX),
        })
    } else {
        Ok(ret)
    }
}

/// Run a hypercall command (not Help/Version) and print its result.
/// Returns the exit status.
pub fn run<H: Hypervisor>(
    cmd: &Command,
    hv: &mut H,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let r = match cmd {
        Command::Help(t) => {
            let _ = out.write_all(cli::help(*t).as_bytes());
            Ok(())
        }
        Command::Version => {
            let _ = writeln!(out, "{}", version());
            Ok(())
        }
        Command::Add { rule, position } => viptables_add(hv, rule, *position),
        Command::DelAt { position } => viptables_del(hv, None, *position as i32),
        Command::DelRule { rule } => viptables_del(hv, Some(rule), -1),
        Command::Flush => viptables_del(hv, None, -1),
        Command::List => list_rules(hv).map(|rules| print_rules(out, &rules)),
        Command::Send {
            src_port,
            dst,
            payload,
        } => send(hv, *src_port, *dst, payload).map(|n| {
            let _ = writeln!(out, "sent {n} bytes to {dst}");
        }),
        Command::Notify(None) => check(op::NOTIFY, hv.op(op::NOTIFY, 0, 0, 0, 0, 0)).map(|_| ()),
        Command::Notify(Some(t)) => notify(hv, t).map(|ent| print_notify(out, t, &ent)),
    };
    match r {
        Ok(()) => EXIT_OK,
        Err(OpError { cmd, errno }) => {
            let _ = writeln!(
                err,
                "v4vctl: {} failed: {}",
                op_label(cmd),
                errmsg::describe(cmd, errno)
            );
            EXIT_HYPERCALL
        }
    }
}

/// The whole program after `main` collected its arguments: parse, then
/// open the hypervisor (only for commands that need it) and run.
pub fn main_with<H: Hypervisor>(
    args: Vec<OsString>,
    open: impl FnOnce() -> Result<H, String>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let cmd = match cli::parse(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "v4vctl: {}\nTry '{}'.", e.message, e.help_hint());
            return EXIT_USAGE;
        }
    };
    if matches!(cmd, Command::Help(_) | Command::Version) {
        return run(&cmd, &mut NoHypervisor, out, err);
    }
    match open() {
        Ok(mut hv) => run(&cmd, &mut hv, out, err),
        Err(m) => {
            let _ = writeln!(err, "v4vctl: {m}");
            EXIT_HYPERCALL
        }
    }
}

/// Stands in for the hypervisor where none is needed (help, version).
struct NoHypervisor;

impl Hypervisor for NoHypervisor {
    fn op(&mut self, _: u32, _: u64, _: u64, _: u64, _: u64, _: u64) -> i64 {
        -v4v_abi::errno::ENOSYS
    }
}

pub fn version() -> String {
    format!(
        "v4vctl {} (V4V hypercall {})",
        env!("CARGO_PKG_VERSION"),
        v4v_abi::HYPERVISOR_V4V_OP
    )
}

fn viptables_add<H: Hypervisor>(hv: &mut H, rule: &Rule, position: u32) -> OpResult<()> {
    let mut r = rule.to_abi();
    let ret = hv.op(op::VIPTABLES_ADD, addr_of(&mut r), 0, 0, position.into(), 0);
    check(op::VIPTABLES_ADD, ret).map(|_| ())
}

/// `position` is the ABI's i32, passed in the low 32 bits of arg4 as a C
/// caller would (the hypervisor reads it as `int`).
fn viptables_del<H: Hypervisor>(hv: &mut H, rule: Option<&Rule>, position: i32) -> OpResult<()> {
    let mut r: Option<ViptablesRule> = rule.map(|r| r.to_abi());
    let p = r.as_mut().map_or(0, addr_of);
    let ret = hv.op(op::VIPTABLES_DEL, p, 0, 0, u64::from(position as u32), 0);
    check(op::VIPTABLES_DEL, ret).map(|_| ())
}

/// Every rule, paging through the list op until a page comes back short.
fn list_rules<H: Hypervisor>(hv: &mut H) -> OpResult<Vec<Rule>> {
    let mut rules = Vec::new();
    loop {
        let mut page = ViptablesList {
            nb_rules: rules.len() as u32,
            ..Default::default()
        };
        check(
            op::VIPTABLES_LIST,
            hv.op(op::VIPTABLES_LIST, addr_of(&mut page), 0, 0, 0, 0),
        )?;
        let got = page.nb_rules as usize;
        let copied = got.min(VIPTABLES_LIST_SIZE);
        let list_rules = page.rules;
        rules.extend(list_rules[..copied].iter().map(Rule::from_abi));
        // A page of fewer than 8 is the last; more than 8 cannot be and is
        // taken as 8 (only 8 fit the structure).
        if got < VIPTABLES_LIST_SIZE || rules.len() as u32 >= LIST_LIMIT {
            return Ok(rules);
        }
    }
}

fn print_rules(out: &mut dyn Write, rules: &[Rule]) {
    let mut s = format!("{:<5} {:<7} {:<18} {}\n", "NUM", "TARGET", "SOURCE", "DEST");
    for (i, r) in rules.iter().enumerate() {
        s += &format!(
            "{:<5} {:<7} {:<18} {}\n",
            i,
            r.target(),
            RuleSide(r.src),
            RuleSide(r.dst)
        );
    }
    if rules.is_empty() {
        s += "(no rules: every message is accepted)\n";
    }
    let _ = out.write_all(s.as_bytes());
}

fn send<H: Hypervisor>(
    hv: &mut H,
    src_port: u32,
    dst: Endpoint,
    payload: &Payload,
) -> OpResult<i64> {
    // The source domain is V4V_DOMID_ANY ("the caller"): Xen fills in dom0.
    let mut src = Endpoint {
        domain: v4v_abi::DOMID_ANY,
        port: src_port,
    }
    .to_abi();
    let mut dst = dst.to_abi();
    // Every byte is written here before the call, so every page is mapped
    // and writable when Xen reads it (a freshly allocated, untouched page
    // may not be mapped at all, and Xen does not fault it in for us).
    let mut buf: Vec<u8> = match payload {
        Payload::Text(t) => t.clone(),
        Payload::Pattern(n) => (0..*n).map(|i| i as u8).collect(),
    };
    let len = buf.len() as u64;
    let ret = hv.op(
        op::SEND,
        addr_of(&mut src),
        addr_of(&mut dst),
        addr_of(buf.as_mut_slice()),
        len,
        // Dropped by privcmd (five arguments only); see SEND_HELP.
        PROTO_DGRAM.into(),
    );
    check(op::SEND, ret)
}

/// `v4v_ring_data` with exactly one entry, contiguous as the ABI wants.
#[derive(Clone, Copy, Default)]
#[repr(C, packed)]
struct RingDataOne {
    /// Magic and `nent = 1`; the entry follows at byte 48 (the ABI's
    /// `RING_DATA_ENT_OFFSET`, asserted below).
    hdr: RingDataHeader,
    ent: RingDataEnt,
}

const _: () = assert!(core::mem::offset_of!(RingDataOne, ent) == v4v_abi::RING_DATA_ENT_OFFSET);

fn notify<H: Hypervisor>(hv: &mut H, t: &NotifyTarget) -> OpResult<RingDataEnt> {
    let mut rd = RingDataOne {
        hdr: RingDataHeader {
            magic: RING_DATA_MAGIC,
            nent: 1,
            ..Default::default()
        },
        ent: RingDataEnt {
            ring: t.ring.to_abi(),
            space_required: t.space,
            ..Default::default()
        },
    };
    check(op::NOTIFY, hv.op(op::NOTIFY, addr_of(&mut rd), 0, 0, 0, 0))?;
    Ok(rd.ent)
}

/// The flag names, in the ABI's bit order, plus any unknown bits in hex.
pub fn flag_names(bits: u16) -> String {
    let mut names: Vec<String> = [
        (RingDataFlags::EMPTY, "EMPTY"),
        (RingDataFlags::EXISTS, "EXISTS"),
        (RingDataFlags::PENDING, "PENDING"),
        (RingDataFlags::SUFFICIENT, "SUFFICIENT"),
    ]
    .iter()
    .filter(|(f, _)| bits & f.bits() != 0)
    .map(|(_, n)| n.to_string())
    .collect();
    let unknown = bits & !RingDataFlags::all().bits();
    if unknown != 0 {
        names.push(format!("{unknown:#x}"));
    }
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(",")
    }
}

fn print_notify(out: &mut dyn Write, t: &NotifyTarget, ent: &RingDataEnt) {
    let (flags, max) = (ent.flags, ent.max_message_size);
    let mut s = format!(
        "ring {}: flags {} max_message_size {max} (space asked {})\n",
        t.ring,
        flag_names(flags),
        t.space
    );
    if flags & RingDataFlags::EXISTS.bits() == 0 {
        s += "no such ring, or the viptables do not let dom0 send to it\n";
    }
    let _ = out.write_all(s.as_bytes());
}

#[cfg(test)]
mod tests;
