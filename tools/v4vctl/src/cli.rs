//! The command line: parsing into a [`Command`], and the help texts.
//!
//! Hand-written rather than a parser crate: the grammar is small, and every
//! error message names the argument and what was expected. Arguments arrive
//! as `OsString` so that a message text that is not UTF-8 is sent as the
//! bytes it is, and nothing here can panic on odd input.
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;

use v4v_abi::MAX_MSG_SIZE;

use crate::rule::{parse_number, parse_rule_side, parse_target, parse_target_name, Endpoint, Rule};

/// Which help text to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Topic {
    Main,
    Viptables,
    Send,
    Notify,
}

/// What to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// The bytes of the TEXT argument, as given.
    Text(Vec<u8>),
    /// `N` bytes, byte `i` being `i mod 256`.
    Pattern(u32),
}

/// A parsed command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    Help(Topic),
    Version,
    /// viptables_add at `position` (u32::MAX: append, as "past the end
    /// appends" in the ABI).
    Add {
        rule: Rule,
        position: u32,
    },
    /// viptables_del of the rule at `position` (0..=i32::MAX: the ABI's
    /// position is an i32 whose -1 means "by value").
    DelAt {
        position: u32,
    },
    /// viptables_del of the first rule equal to `rule` (position -1).
    DelRule {
        rule: Rule,
    },
    /// viptables_del with rule NULL and position -1.
    Flush,
    List,
    Send {
        src_port: u32,
        dst: Endpoint,
        payload: Payload,
    },
    /// notify with one entry, or (None) with a NULL ring data pointer.
    Notify(Option<NotifyTarget>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotifyTarget {
    pub ring: Endpoint,
    pub space: u32,
}

/// A usage error: what was wrong, and which help to point at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError {
    pub message: String,
    pub topic: Topic,
}

impl UsageError {
    fn new(topic: Topic, message: impl Into<String>) -> Self {
        UsageError {
            message: message.into(),
            topic,
        }
    }

    /// The command to suggest for more help.
    pub fn help_hint(&self) -> &'static str {
        match self.topic {
            Topic::Main => "v4vctl --help",
            Topic::Viptables => "v4vctl viptables --help",
            Topic::Send => "v4vctl send --help",
            Topic::Notify => "v4vctl notify --help",
        }
    }
}

type Result<T> = core::result::Result<T, UsageError>;

fn is_help(a: &OsStr) -> bool {
    a == "-h" || a == "--help"
}

/// Arguments of one subcommand, consumed left to right.
struct Args {
    topic: Topic,
    args: std::vec::IntoIter<OsString>,
}

impl Args {
    fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(UsageError::new(self.topic, message))
    }

    fn utf8(&self, what: &str, a: &OsStr) -> Result<String> {
        match a.to_str() {
            Some(s) => Ok(s.to_string()),
            None => self.err(format!(
                "{what}: '{}' is not valid UTF-8",
                a.to_string_lossy()
            )),
        }
    }

    /// The value of option `name`: either glued (`--opt=V`, given) or the
    /// next argument.
    fn value(&mut self, name: &str, glued: Option<String>) -> Result<String> {
        if let Some(v) = glued {
            return Ok(v);
        }
        match self.args.next() {
            Some(v) => self.utf8(name, &v),
            None => self.err(format!("option {name} needs a value")),
        }
    }
}

/// An option, split into its canonical long name and an optional glued
/// value (`--source=1:2`). Returns None for something that is not an option.
fn split_option(a: &str) -> Option<(&str, Option<String>)> {
    if let Some(long) = a.strip_prefix("--") {
        if long.is_empty() {
            return None;
        }
        return Some(match long.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (long, None),
        });
    }
    let short = a.strip_prefix('-')?;
    let mut chars = short.chars();
    let c = chars.next()?;
    let rest = chars.as_str();
    // Only a letter is a short option, so "-1" stays a (bad) positional.
    if !c.is_ascii_alphabetic() {
        return None;
    }
    let glued = (!rest.is_empty()).then(|| rest.to_string());
    Some((
        match c {
            's' => "s",
            'd' => "d",
            'j' => "j",
            'p' => "p",
            _ => short,
        },
        glued,
    ))
}

fn set_once<T>(topic: Topic, slot: &mut Option<T>, name: &str, v: T) -> Result<()> {
    if slot.is_some() {
        return Err(UsageError::new(topic, format!("option {name} given twice")));
    }
    *slot = Some(v);
    Ok(())
}

/// Parse the arguments after the program name.
pub fn parse(args: Vec<OsString>) -> Result<Command> {
    let mut it = args.into_iter();
    let Some(first) = it.next() else {
        return Err(UsageError::new(
            Topic::Main,
            "missing command (viptables, send or notify)",
        ));
    };
    let rest: Vec<OsString> = it.collect();
    let (topic, sub): (Topic, fn(&mut Args) -> Result<Command>) = match first.to_str() {
        Some("-h" | "--help" | "help") => return Ok(Command::Help(Topic::Main)),
        Some("-V" | "--version") => {
            return match rest.first() {
                None => Ok(Command::Version),
                Some(a) => Err(UsageError::new(
                    Topic::Main,
                    format!(
                        "unexpected argument '{}' after --version",
                        a.to_string_lossy()
                    ),
                )),
            }
        }
        Some("viptables") => (Topic::Viptables, parse_viptables),
        Some("send") => (Topic::Send, parse_send),
        Some("notify") => (Topic::Notify, parse_notify),
        _ => {
            return Err(UsageError::new(
                Topic::Main,
                format!(
                    "unknown command '{}': expected viptables, send or notify",
                    first.to_string_lossy()
                ),
            ))
        }
    };
    // --help anywhere before a "--" wins over everything else, so that a
    // half-typed command line still gets its help.
    if rest.iter().take_while(|a| *a != "--").any(|a| is_help(a)) {
        return Ok(Command::Help(topic));
    }
    let mut args = Args {
        topic,
        args: rest.into_iter(),
    };
    sub(&mut args)
}

/// The options of `viptables add` and `viptables del`.
#[derive(Default)]
struct RuleOpts {
    position: Option<String>,
    src: Option<Endpoint>,
    dst: Option<Endpoint>,
    accept: Option<u32>,
    positional: Vec<String>,
}

impl RuleOpts {
    fn any_rule_option(&self) -> bool {
        self.src.is_some() || self.dst.is_some() || self.accept.is_some()
    }

    fn rule(&self, a: &Args, verb: &str) -> Result<Rule> {
        let Some(accept) = self.accept else {
            return a.err(format!("viptables {verb}: missing -j ACCEPT|REJECT"));
        };
        Ok(Rule {
            src: self.src.unwrap_or(Endpoint::ANY),
            dst: self.dst.unwrap_or(Endpoint::ANY),
            accept,
        })
    }
}

fn parse_rule_opts(a: &mut Args, verb: &str, allow_position: bool) -> Result<RuleOpts> {
    let mut o = RuleOpts::default();
    let mut only_positional = false;
    while let Some(raw) = a.args.next() {
        let s = a.utf8(&format!("viptables {verb}"), &raw)?;
        if only_positional {
            o.positional.push(s);
            continue;
        }
        if s == "--" {
            only_positional = true;
            continue;
        }
        let Some((name, glued)) = split_option(&s) else {
            o.positional.push(s);
            continue;
        };
        let t = a.topic;
        match name {
            "p" | "position" if allow_position => {
                let v = a.value("-p/--position", glued)?;
                set_once(t, &mut o.position, "-p/--position", v)?;
            }
            "s" | "source" => {
                let v = a.value("-s/--source", glued)?;
                let e = parse_rule_side(&v).or_else(|m| a.err(format!("-s/--source: {m}")))?;
                set_once(t, &mut o.src, "-s/--source", e)?;
            }
            "d" | "destination" => {
                let v = a.value("-d/--destination", glued)?;
                let e = parse_rule_side(&v).or_else(|m| a.err(format!("-d/--destination: {m}")))?;
                set_once(t, &mut o.dst, "-d/--destination", e)?;
            }
            "j" | "jump" => {
                let v = a.value("-j/--jump", glued)?;
                let n = parse_target_name(&v).or_else(|m| a.err(format!("-j/--jump: {m}")))?;
                set_once(t, &mut o.accept, "-j/--jump", n)?;
            }
            _ => return a.err(format!("viptables {verb}: unknown option '{s}'")),
        }
    }
    Ok(o)
}

fn no_more(a: &mut Args, what: &str) -> Result<()> {
    match a.args.next() {
        None => Ok(()),
        Some(x) => a.err(format!(
            "{what}: unexpected argument '{}'",
            x.to_string_lossy()
        )),
    }
}

fn parse_viptables(a: &mut Args) -> Result<Command> {
    let Some(verb) = a.args.next() else {
        return a.err("viptables: missing subcommand (add, del, flush or list)");
    };
    match verb.to_str() {
        Some("add") => {
            let o = parse_rule_opts(a, "add", true)?;
            if let Some(p) = o.positional.first() {
                return a.err(format!(
                    "viptables add: unexpected argument '{p}' (the position goes with -p POS)"
                ));
            }
            let position = match &o.position {
                None => u32::MAX,
                Some(p) => match parse_number(p, u32::MAX.into()) {
                    Some(n) => n as u32,
                    None => {
                        return a.err(format!(
                            "-p/--position: bad position '{p}': expected a number 0..{} \
                             (0 is the first rule)",
                            u32::MAX
                        ))
                    }
                },
            };
            Ok(Command::Add {
                rule: o.rule(a, "add")?,
                position,
            })
        }
        Some("del" | "delete") => {
            let o = parse_rule_opts(a, "del", false)?;
            match (o.positional.as_slice(), o.any_rule_option()) {
                ([], false) => {
                    a.err("viptables del: expected a position (POS) or a rule (-s/-d/-j)")
                }
                ([], true) => Ok(Command::DelRule {
                    rule: o.rule(a, "del")?,
                }),
                ([p], false) => match parse_number(p, i32::MAX as u64) {
                    Some(n) => Ok(Command::DelAt { position: n as u32 }),
                    None => a.err(format!(
                        "viptables del: bad position '{p}': expected a number 0..{} \
                         (as numbered by 'v4vctl viptables list')",
                        i32::MAX
                    )),
                },
                ([_], true) => {
                    a.err("viptables del: give either a position or a rule (-s/-d/-j), not both")
                }
                ([_, extra, ..], _) => {
                    a.err(format!("viptables del: unexpected argument '{extra}'"))
                }
            }
        }
        Some("flush") => no_more(a, "viptables flush").map(|()| Command::Flush),
        Some("list") => no_more(a, "viptables list").map(|()| Command::List),
        _ => a.err(format!(
            "viptables: unknown subcommand '{}': expected add, del, flush or list",
            verb.to_string_lossy()
        )),
    }
}

fn parse_send(a: &mut Args) -> Result<Command> {
    let mut src_port: Option<u32> = None;
    let mut size: Option<u32> = None;
    let mut positional: Vec<OsString> = Vec::new();
    let mut only_positional = false;
    while let Some(raw) = a.args.next() {
        if only_positional {
            positional.push(raw);
            continue;
        }
        if raw == "--" {
            only_positional = true;
            continue;
        }
        // A TEXT need not be UTF-8; only options are looked at as strings.
        let opt = raw
            .to_str()
            .filter(|s| s.starts_with('-') && s.len() > 1)
            .map(str::to_string);
        let Some(s) = opt else {
            positional.push(raw);
            continue;
        };
        let t = a.topic;
        match split_option(&s) {
            Some(("s" | "source-port", glued)) => {
                let v = a.value("-s/--source-port", glued)?;
                let p = match parse_number(&v, u32::MAX.into()) {
                    Some(n) => n as u32,
                    None => {
                        return a.err(format!(
                            "-s/--source-port: bad port '{v}': expected a number 0..{} \
                             (the source domain is always dom0)",
                            u32::MAX
                        ))
                    }
                };
                set_once(t, &mut src_port, "-s/--source-port", p)?;
            }
            Some(("size", glued)) => {
                let v = a.value("--size", glued)?;
                let n = match parse_number(&v, MAX_MSG_SIZE.into()) {
                    Some(n) => n as u32,
                    None => {
                        return a.err(format!(
                            "--size: bad size '{v}': expected a number of bytes \
                             0..{MAX_MSG_SIZE} (V4V_MAX_MSG_SIZE)"
                        ))
                    }
                };
                set_once(t, &mut size, "--size", n)?;
            }
            _ => {
                return a.err(format!(
                    "send: unknown option '{s}' (put -- before a TEXT that starts with '-')"
                ))
            }
        }
    }
    let mut pos = positional.into_iter();
    let Some(dst) = pos.next() else {
        return a.err("send: missing destination DOM:PORT");
    };
    let dst = a.utf8("send: destination", &dst)?;
    let dst = parse_target(&dst).or_else(|m| a.err(format!("send: destination: {m}")))?;
    let payload = match (pos.next(), size) {
        (Some(_), Some(_)) => return a.err("send: give either TEXT or --size N, not both"),
        (None, None) => return a.err("send: missing TEXT or --size N"),
        (Some(text), None) => Payload::Text(text.as_bytes().to_vec()),
        (None, Some(n)) => Payload::Pattern(n),
    };
    if let Some(extra) = pos.next() {
        return a.err(format!(
            "send: unexpected argument '{}' (quote a TEXT that has spaces)",
            extra.to_string_lossy()
        ));
    }
    Ok(Command::Send {
        src_port: src_port.unwrap_or(v4v_abi::PORT_NONE),
        dst,
        payload,
    })
}

fn parse_notify(a: &mut Args) -> Result<Command> {
    let mut space: Option<u32> = None;
    let mut positional: Vec<String> = Vec::new();
    while let Some(raw) = a.args.next() {
        let s = a.utf8("notify", &raw)?;
        match split_option(&s) {
            None => positional.push(s),
            Some(("space", glued)) => {
                let v = a.value("--space", glued)?;
                let n = match parse_number(&v, u32::MAX.into()) {
                    Some(n) => n as u32,
                    None => {
                        return a.err(format!(
                            "--space: bad size '{v}': expected a number of bytes 0..{}",
                            u32::MAX
                        ))
                    }
                };
                set_once(a.topic, &mut space, "--space", n)?;
            }
            Some(_) => return a.err(format!("notify: unknown option '{s}'")),
        }
    }
    match positional.as_slice() {
        [] if space.is_some() => a.err("notify: --space needs a ring DOM:PORT"),
        [] => Ok(Command::Notify(None)),
        [t] => {
            let ring = parse_target(t).or_else(|m| a.err(format!("notify: ring: {m}")))?;
            Ok(Command::Notify(Some(NotifyTarget {
                ring,
                space: space.unwrap_or(0),
            })))
        }
        [_, extra, ..] => a.err(format!(
            "notify: unexpected argument '{extra}' (one ring at a time)"
        )),
    }
}

pub const MAIN_HELP: &str = "\
v4vctl: V4V control from dom0 (hypercall 43 through Linux privcmd)

Usage:
  v4vctl viptables add [-p POS] [-s SRC] [-d DST] -j ACCEPT|REJECT
  v4vctl viptables del POS
  v4vctl viptables del [-s SRC] [-d DST] -j ACCEPT|REJECT
  v4vctl viptables flush
  v4vctl viptables list
  v4vctl send [-s SRCPORT] DOM:PORT TEXT
  v4vctl send [-s SRCPORT] DOM:PORT --size N
  v4vctl notify [DOM:PORT [--space N]]
  v4vctl COMMAND --help          more about one command
  v4vctl --version

Commands:
  viptables   show or change the host-wide V4V permission table
  send        send one message from dom0 to a ring
  notify      ask Xen about a ring's space (or just signal)

An address is DOM:PORT: DOM a domain id (0..32767), PORT a V4V port
(0..4294967295), each decimal or 0x-hex. In viptables rules either part may
be '*' (any), and DOM alone means DOM:*.

v4vctl issues the hypercall through /dev/xen/privcmd (or /proc/xen/privcmd):
run it as root in dom0, with the xen-privcmd module loaded (and xenfs
mounted on /proc/xen for the second path).

Exit status: 0 success; 1 the hypercall failed (or privcmd could not be
opened), with the error and what it means on stderr; 2 a usage error.
";

pub const VIPTABLES_HELP: &str = "\
v4vctl viptables: the host-wide V4V permission table (dom0 only)

Usage:
  v4vctl viptables add [-p POS] [-s SRC] [-d DST] -j ACCEPT|REJECT
  v4vctl viptables del POS
  v4vctl viptables del [-s SRC] [-d DST] -j ACCEPT|REJECT
  v4vctl viptables flush
  v4vctl viptables list

Every V4V message is checked against one ordered list of rules. The first
rule whose source and destination both match the message decides: ACCEPT
delivers it, REJECT fails the send with EPERM (and a ring the sender may not
reach reads as not existing in notify). A message no rule matches is
accepted, so an empty table allows everything.

  add     insert a rule at position POS; without -p, append it at the end
          (a POS past the end also appends)
  del     delete the rule at position POS, or the first rule equal to the
          one given by -s/-d/-j (all fields must be equal, wildcards too)
  flush   delete every rule
  list    print the rules in the order they are tried:
              NUM  TARGET  SOURCE  DEST
          NUM is the position that add -p and del take

Positions count from 0 (the first rule), as in the V4V ABI.

Options:
  -p, --position POS       where add inserts (0..4294967295; default: end)
  -s, --source SRC         the sender: DOM:PORT, DOM or * (default *:*)
  -d, --destination DST    the receiving ring: DOM:PORT, DOM or * (default *:*)
  -j, --jump TARGET        ACCEPT or REJECT (required with -s/-d)
  -h, --help               this text

The source of a message is the sender's real domain id (Xen fills it in,
whatever the sender claims) with the source port the sender chose; the
destination is the ring's domain and port. '*' is stored as domain 32767
(V4V_DOMID_ANY) and port 4294967295; list also prints domain 32756 (0x7ff4,
which Xen treats as a wildcard too) as '*'.

Only dom0 may use these commands (others get EPERM).

Examples:
  v4vctl viptables add -s 1 -d 2:5000 -j REJECT
        domain 1 may not send to port 5000 of domain 2
  v4vctl viptables add -p 0 -s 1:7 -d 2:5000 -j ACCEPT
        ...except from its source port 7 (tried first)
  v4vctl viptables add -d 3 -j REJECT
        nobody may send to domain 3
  v4vctl viptables list
  v4vctl viptables del 0
  v4vctl viptables del -d 3 -j REJECT
  v4vctl viptables flush
";

pub const SEND_HELP: &str = "\
v4vctl send: send one V4V message from dom0

Usage:
  v4vctl send [-s SRCPORT] DOM:PORT TEXT
  v4vctl send [-s SRCPORT] DOM:PORT --size N

Sends one message to the ring at port PORT of domain DOM and prints the
number of bytes sent. The payload is the bytes of TEXT as given (no newline
is added; put -- before a TEXT that starts with '-'), or N bytes where byte
i is i mod 256.

Xen delivers to the ring at DOM:PORT that is reserved for dom0, else to the
one that accepts any sender, if the viptables allow it. A message is
delivered whole or not at all, and the ring's owner gets VIRQ_V4V.

Options:
  -s, --source-port SRCPORT  the source port the receiver sees (default 0);
                             the source domain is always dom0
      --size N               send N bytes (0..16777184, V4V_MAX_MSG_SIZE)
  -h, --help                 this text

Limitation: the protocol field of the message (the hypercall's sixth
argument, register r9) cannot be chosen. Linux's privcmd passes only five
hypercall arguments, so the protocol is whatever value the dom0 kernel left
in r9: arbitrary, and not V4V_PROTO_DGRAM or V4V_PROTO_STREAM unless by
chance. A receiver that checks the protocol may drop these messages.

Common errors: ENOTCONN (no such domain or ring), EPERM (viptables reject),
EAGAIN (ring full now: retry), ENOBUFS (larger than the ring can ever take).

Examples:
  v4vctl send 1:5000 'hello over V4V'
  v4vctl send -s 1000 1:5000 --size 4096
";

pub const NOTIFY_HELP: &str = "\
v4vctl notify: ask Xen about a ring's space, or just signal

Usage:
  v4vctl notify
  v4vctl notify DOM:PORT [--space N]

Without a ring: the plain notify. Xen wakes the senders queued on dom0's own
rings whose messages now fit; it prints nothing else.

With a ring: Xen finds the ring DOM:PORT as a send from dom0 would, and
v4vctl prints its flags and max_message_size:
  EXISTS       the ring exists and the viptables let dom0 send to it
  EMPTY        the ring holds no message
  SUFFICIENT   a message of N payload bytes fits now
  PENDING      it does not fit now: Xen queued dom0 and raises VIRQ_V4V in
               dom0 when it does
  max_message_size   the largest message the ring can take when empty
No flag at all means there is no such ring (or dom0 may not reach it).

Options:
      --space N    payload bytes to ask for (0..4294967295, default 0)
  -h, --help       this text

Example:
  v4vctl notify 1:5000 --space 1024
";

/// The help text of a topic.
pub fn help(topic: Topic) -> &'static str {
    match topic {
        Topic::Main => MAIN_HELP,
        Topic::Viptables => VIPTABLES_HELP,
        Topic::Send => SEND_HELP,
        Topic::Notify => NOTIFY_HELP,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::Endpoint;
    use std::os::unix::ffi::OsStringExt;
    use v4v_abi::{DOMID_ANY, PORT_ANY};

    fn p(args: &[&str]) -> Result<Command> {
        parse(args.iter().map(OsString::from).collect())
    }

    fn ep(domain: u16, port: u32) -> Endpoint {
        Endpoint { domain, port }
    }

    /// The usage error's message, checking its topic.
    fn err(args: &[&str], topic: Topic) -> String {
        let e = p(args).unwrap_err();
        assert_eq!(e.topic, topic, "{args:?}: {}", e.message);
        e.message
    }

    fn rule(src: Endpoint, dst: Endpoint, accept: u32) -> Rule {
        Rule { src, dst, accept }
    }

    #[test]
    fn top_level() {
        assert_eq!(p(&["--help"]), Ok(Command::Help(Topic::Main)));
        assert_eq!(p(&["-h"]), Ok(Command::Help(Topic::Main)));
        assert_eq!(p(&["help"]), Ok(Command::Help(Topic::Main)));
        assert_eq!(p(&["--version"]), Ok(Command::Version));
        assert_eq!(p(&["-V"]), Ok(Command::Version));
        assert!(err(&["--version", "x"], Topic::Main).contains("unexpected argument 'x'"));
        assert!(err(&[], Topic::Main).contains("missing command"));
        let m = err(&["frob"], Topic::Main);
        assert!(m.contains("unknown command 'frob'") && m.contains("viptables, send or notify"));
        assert!(err(&["--bogus"], Topic::Main).contains("unknown command '--bogus'"));
    }

    #[test]
    fn help_everywhere() {
        for (args, t) in [
            (&["viptables", "-h"][..], Topic::Viptables),
            (&["viptables", "add", "--help"], Topic::Viptables),
            (&["viptables", "add", "-s", "bad", "-h"], Topic::Viptables),
            (&["viptables", "del", "-h"], Topic::Viptables),
            (&["viptables", "list", "--help"], Topic::Viptables),
            (&["send", "--help"], Topic::Send),
            (&["send", "1:2", "-h"], Topic::Send),
            (&["notify", "-h"], Topic::Notify),
            (&["notify", "1:2", "--help"], Topic::Notify),
        ] {
            assert_eq!(p(args), Ok(Command::Help(t)), "{args:?}");
        }
        // after "--", -h is a TEXT
        assert_eq!(
            p(&["send", "1:2", "--", "-h"]),
            Ok(Command::Send {
                src_port: 0,
                dst: ep(1, 2),
                payload: Payload::Text(b"-h".to_vec())
            })
        );
    }

    #[test]
    fn viptables_add_forms() {
        let any = Endpoint::ANY;
        assert_eq!(
            p(&["viptables", "add", "-j", "ACCEPT"]),
            Ok(Command::Add {
                rule: rule(any, any, 1),
                position: u32::MAX
            })
        );
        assert_eq!(
            p(&[
                "viptables",
                "add",
                "-p",
                "3",
                "-s",
                "1:7",
                "-d",
                "2:5000",
                "-j",
                "REJECT"
            ]),
            Ok(Command::Add {
                rule: rule(ep(1, 7), ep(2, 5000), 0),
                position: 3
            })
        );
        assert_eq!(
            p(&[
                "viptables",
                "add",
                "--position=0",
                "--source=*:9",
                "--destination",
                "4",
                "--jump=accept"
            ]),
            Ok(Command::Add {
                rule: rule(ep(DOMID_ANY, 9), ep(4, PORT_ANY), 1),
                position: 0
            })
        );
        // glued short options, iptables style order
        assert_eq!(
            p(&[
                "viptables",
                "add",
                "-jREJECT",
                "-d3",
                "-s*",
                "--position",
                "4294967295"
            ]),
            Ok(Command::Add {
                rule: rule(any, ep(3, PORT_ANY), 0),
                position: u32::MAX
            })
        );
    }

    #[test]
    fn viptables_add_errors() {
        let t = Topic::Viptables;
        assert!(err(&["viptables"], t).contains("missing subcommand"));
        assert!(err(&["viptables", "insert"], t).contains("unknown subcommand 'insert'"));
        assert!(err(&["viptables", "add"], t).contains("missing -j ACCEPT|REJECT"));
        assert!(err(&["viptables", "add", "-s", "1"], t).contains("missing -j"));
        assert!(
            err(&["viptables", "add", "-j", "DROP"], t).contains("-j/--jump: bad target 'DROP'")
        );
        assert!(err(&["viptables", "add", "-j"], t).contains("option -j/--jump needs a value"));
        assert!(err(&["viptables", "add", "-j", "ACCEPT", "-s"], t)
            .contains("-s/--source needs a value"));
        let m = err(&["viptables", "add", "-s", "x:1", "-j", "ACCEPT"], t);
        assert!(m.contains("-s/--source: bad domain 'x'"), "{m}");
        let m = err(&["viptables", "add", "-d", "1:y", "-j", "ACCEPT"], t);
        assert!(m.contains("-d/--destination: bad port 'y'"), "{m}");
        let m = err(&["viptables", "add", "-p", "-1", "-j", "ACCEPT"], t);
        assert!(m.contains("-p/--position: bad position '-1'"), "{m}");
        assert!(
            err(&["viptables", "add", "-p", "4294967296", "-j", "ACCEPT"], t)
                .contains("bad position")
        );
        assert!(err(
            &["viptables", "add", "-s", "1", "-s", "2", "-j", "ACCEPT"],
            t
        )
        .contains("-s/--source given twice"));
        assert!(
            err(&["viptables", "add", "-j", "ACCEPT", "-j", "REJECT"], t).contains("given twice")
        );
        assert!(err(
            &["viptables", "add", "-p", "1", "-p", "2", "-j", "ACCEPT"],
            t
        )
        .contains("given twice"));
        assert!(err(&["viptables", "add", "-x", "-j", "ACCEPT"], t).contains("unknown option '-x'"));
        assert!(err(&["viptables", "add", "--frob", "-j", "ACCEPT"], t)
            .contains("unknown option '--frob'"));
        let m = err(&["viptables", "add", "3", "-j", "ACCEPT"], t);
        assert!(
            m.contains("unexpected argument '3'") && m.contains("-p POS"),
            "{m}"
        );
    }

    #[test]
    fn viptables_del_flush_list() {
        assert_eq!(
            p(&["viptables", "del", "0"]),
            Ok(Command::DelAt { position: 0 })
        );
        assert_eq!(
            p(&["viptables", "delete", "0x10"]),
            Ok(Command::DelAt { position: 16 })
        );
        assert_eq!(
            p(&["viptables", "del", "2147483647"]),
            Ok(Command::DelAt {
                position: i32::MAX as u32
            })
        );
        assert_eq!(
            p(&["viptables", "del", "-d", "3", "-j", "REJECT"]),
            Ok(Command::DelRule {
                rule: rule(Endpoint::ANY, ep(3, PORT_ANY), 0)
            })
        );
        assert_eq!(
            p(&["viptables", "del", "-s", "1:2", "-j", "ACCEPT"]),
            Ok(Command::DelRule {
                rule: rule(ep(1, 2), Endpoint::ANY, 1)
            })
        );
        assert_eq!(p(&["viptables", "flush"]), Ok(Command::Flush));
        assert_eq!(p(&["viptables", "list"]), Ok(Command::List));

        let t = Topic::Viptables;
        assert!(err(&["viptables", "del"], t).contains("expected a position (POS) or a rule"));
        assert!(err(&["viptables", "del", "2147483648"], t).contains("bad position '2147483648'"));
        assert!(err(&["viptables", "del", "x"], t).contains("bad position 'x'"));
        assert!(err(&["viptables", "del", "--", "-1"], t).contains("bad position '-1'"));
        assert!(err(&["viptables", "del", "-1"], t).contains("bad position '-1'"));
        assert!(err(&["viptables", "del", "1", "2"], t).contains("unexpected argument '2'"));
        assert!(err(&["viptables", "del", "1", "-j", "ACCEPT"], t).contains("not both"));
        assert!(err(&["viptables", "del", "-s", "1"], t).contains("missing -j"));
        assert!(err(&["viptables", "del", "-p", "1"], t).contains("unknown option '-p'"));
        assert!(err(&["viptables", "flush", "now"], t)
            .contains("viptables flush: unexpected argument 'now'"));
        assert!(err(&["viptables", "list", "-n"], t)
            .contains("viptables list: unexpected argument '-n'"));
    }

    #[test]
    fn send_forms() {
        assert_eq!(
            p(&["send", "1:5000", "hello there"]),
            Ok(Command::Send {
                src_port: 0,
                dst: ep(1, 5000),
                payload: Payload::Text(b"hello there".to_vec())
            })
        );
        assert_eq!(
            p(&["send", "-s", "1000", "0:2000", "--size", "4096"]),
            Ok(Command::Send {
                src_port: 1000,
                dst: ep(0, 2000),
                payload: Payload::Pattern(4096)
            })
        );
        assert_eq!(
            p(&["send", "--size=16777184", "--source-port=7", "2:1"]),
            Ok(Command::Send {
                src_port: 7,
                dst: ep(2, 1),
                payload: Payload::Pattern(16_777_184)
            })
        );
        assert_eq!(
            p(&["send", "2:1", ""]),
            Ok(Command::Send {
                src_port: 0,
                dst: ep(2, 1),
                payload: Payload::Text(Vec::new())
            })
        );
        // "-" alone is a TEXT, not an option
        assert_eq!(
            p(&["send", "2:1", "-"]),
            Ok(Command::Send {
                src_port: 0,
                dst: ep(2, 1),
                payload: Payload::Text(b"-".to_vec())
            })
        );
        // a TEXT that is not UTF-8 is sent as its bytes
        let args = vec![
            OsString::from("send"),
            OsString::from("3:4"),
            OsString::from_vec(vec![0xff, 0x00, 0x80]),
        ];
        assert_eq!(
            parse(args),
            Ok(Command::Send {
                src_port: 0,
                dst: ep(3, 4),
                payload: Payload::Text(vec![0xff, 0x00, 0x80])
            })
        );
    }

    #[test]
    fn send_errors() {
        let t = Topic::Send;
        assert!(err(&["send"], t).contains("missing destination DOM:PORT"));
        assert!(err(&["send", "1:2"], t).contains("missing TEXT or --size N"));
        assert!(err(&["send", "1:2", "x", "--size", "3"], t).contains("not both"));
        assert!(err(&["send", "1:2", "a", "b"], t).contains("unexpected argument 'b'"));
        assert!(err(&["send", "1", "x"], t).contains("send: destination: '1': expected DOM:PORT"));
        assert!(err(&["send", "*:1", "x"], t).contains("not '*'"));
        assert!(err(&["send", "1:*", "x"], t).contains("not '*'"));
        assert!(
            err(&["send", "1:2", "--size", "16777185"], t).contains("--size: bad size '16777185'")
        );
        assert!(err(&["send", "1:2", "--size", "-1"], t).contains("bad size '-1'"));
        assert!(err(&["send", "1:2", "--size"], t).contains("--size needs a value"));
        assert!(err(&["send", "1:2", "--size", "1", "--size", "2"], t).contains("given twice"));
        let m = err(&["send", "-s", "0:1000", "1:2", "x"], t);
        assert!(
            m.contains("-s/--source-port: bad port '0:1000'") && m.contains("always dom0"),
            "{m}"
        );
        assert!(err(&["send", "-s", "1", "-s", "2", "1:2", "x"], t).contains("given twice"));
        let m = err(&["send", "1:2", "-x"], t);
        assert!(
            m.contains("unknown option '-x'") && m.contains("put --"),
            "{m}"
        );
        let bad = vec![
            OsString::from("send"),
            OsString::from_vec(vec![b'1', b':', 0xff]),
            OsString::from("x"),
        ];
        assert!(parse(bad).unwrap_err().message.contains("not valid UTF-8"));
    }

    #[test]
    fn notify_forms_and_errors() {
        assert_eq!(p(&["notify"]), Ok(Command::Notify(None)));
        assert_eq!(
            p(&["notify", "1:5000"]),
            Ok(Command::Notify(Some(NotifyTarget {
                ring: ep(1, 5000),
                space: 0
            })))
        );
        assert_eq!(
            p(&["notify", "--space", "1024", "1:5000"]),
            Ok(Command::Notify(Some(NotifyTarget {
                ring: ep(1, 5000),
                space: 1024
            })))
        );
        assert_eq!(
            p(&["notify", "0:1", "--space=4294967295"]),
            Ok(Command::Notify(Some(NotifyTarget {
                ring: ep(0, 1),
                space: u32::MAX
            })))
        );
        let t = Topic::Notify;
        assert!(err(&["notify", "--space", "5"], t).contains("--space needs a ring DOM:PORT"));
        assert!(err(&["notify", "1:2", "--space", "x"], t).contains("--space: bad size 'x'"));
        assert!(err(&["notify", "1:2", "--space"], t).contains("--space needs a value"));
        assert!(err(&["notify", "1:2", "--space", "1", "--space", "2"], t).contains("given twice"));
        assert!(err(&["notify", "1:2", "3:4"], t).contains("unexpected argument '3:4'"));
        assert!(err(&["notify", "1"], t).contains("notify: ring: '1': expected DOM:PORT"));
        assert!(err(&["notify", "1:2", "-q"], t).contains("unknown option '-q'"));
    }

    #[test]
    fn help_texts_cover_the_syntax() {
        for topic in [Topic::Main, Topic::Viptables, Topic::Send, Topic::Notify] {
            let h = help(topic);
            assert!(h.contains("Usage:"));
            assert!(
                h.lines().all(|l| l.len() <= 80),
                "{topic:?} has a line over 80 columns"
            );
        }
        assert!(SEND_HELP.contains("r9") && SEND_HELP.contains("protocol"));
        assert!(VIPTABLES_HELP.contains("Positions count from 0"));
        for flag in ["EXISTS", "EMPTY", "SUFFICIENT", "PENDING"] {
            assert!(NOTIFY_HELP.contains(flag));
        }
        let e = UsageError::new(Topic::Send, "x");
        assert_eq!(e.help_hint(), "v4vctl send --help");
    }
}
