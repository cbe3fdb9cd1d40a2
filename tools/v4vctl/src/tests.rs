//! The whole tool against the fake hypervisor: command line in, hypercalls,
//! output and exit status out.
use super::*;
use crate::fake::{Fake, FakeRing, Sent};
use v4v_abi::{errno as e, Addr, DOMID_ANY, DOMID_WILDCARD, PORT_ANY};

struct Outcome {
    code: i32,
    out: String,
    err: String,
    opened: bool,
}

fn exec(fake: &mut Fake, args: &[&str]) -> Outcome {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let mut opened = false;
    let code = main_with(
        args.iter().map(OsString::from).collect(),
        || {
            opened = true;
            Ok(&mut *fake)
        },
        &mut out,
        &mut err,
    );
    Outcome {
        code,
        out: String::from_utf8(out).unwrap(),
        err: String::from_utf8(err).unwrap(),
        opened,
    }
}

fn ok(fake: &mut Fake, args: &[&str]) -> String {
    let o = exec(fake, args);
    assert_eq!(o.code, EXIT_OK, "{args:?}: {}", o.err);
    assert_eq!(o.err, "");
    o.out
}

fn addr(domain: u16, port: u32) -> Addr {
    Addr { port, domain }
}

fn rule(src: Addr, dst: Addr, accept: u32) -> ViptablesRule {
    ViptablesRule { src, dst, accept }
}

const ANY: Addr = Addr {
    port: PORT_ANY,
    domain: DOMID_ANY,
};

#[test]
fn add_list_del_flush() {
    let mut f = Fake::default();
    assert_eq!(
        ok(
            &mut f,
            &[
                "viptables",
                "add",
                "-s",
                "1",
                "-d",
                "2:5000",
                "-j",
                "REJECT"
            ]
        ),
        ""
    );
    ok(
        &mut f,
        &[
            "viptables",
            "add",
            "-p",
            "0",
            "-s",
            "1:7",
            "-d",
            "2:5000",
            "-j",
            "ACCEPT",
        ],
    );
    ok(&mut f, &["viptables", "add", "-d", "3", "-j", "REJECT"]);
    ok(&mut f, &["viptables", "add", "-p", "99", "-j", "ACCEPT"]); // past the end appends
    assert_eq!(
        f.rules,
        vec![
            rule(addr(1, 7), addr(2, 5000), 1),
            rule(addr(1, PORT_ANY), addr(2, 5000), 0),
            rule(ANY, addr(3, PORT_ANY), 0),
            rule(ANY, ANY, 1),
        ]
    );
    assert_eq!(
        ok(&mut f, &["viptables", "list"]),
        "\
NUM   TARGET  SOURCE             DEST
0     ACCEPT  1:7                2:5000
1     REJECT  1:*                2:5000
2     REJECT  *:*                3:*
3     ACCEPT  *:*                *:*
"
    );
    ok(&mut f, &["viptables", "del", "1"]);
    ok(&mut f, &["viptables", "del", "-d", "3", "-j", "REJECT"]);
    assert_eq!(
        f.rules,
        vec![rule(addr(1, 7), addr(2, 5000), 1), rule(ANY, ANY, 1)]
    );
    ok(&mut f, &["viptables", "flush"]);
    assert!(f.rules.is_empty());
    assert_eq!(
        ok(&mut f, &["viptables", "list"]),
        "NUM   TARGET  SOURCE             DEST\n(no rules: every message is accepted)\n"
    );
}

/// The hypercall arguments of each viptables form, as the ABI wants them.
#[test]
fn viptables_arguments() {
    let mut f = Fake::with_rules(3);
    ok(&mut f, &["viptables", "add", "-j", "ACCEPT"]);
    let (cmd, a) = f.calls[0];
    assert_eq!(cmd, op::VIPTABLES_ADD);
    assert_ne!(a[0], 0);
    assert_eq!(a[3], 0xffff_ffff, "default position appends (u32::MAX)");

    ok(&mut f, &["viptables", "del", "2"]);
    assert_eq!(f.calls[1], (op::VIPTABLES_DEL, [0, 0, 0, 2, 0]));

    ok(&mut f, &["viptables", "del", "-j", "ACCEPT"]);
    let (cmd, a) = f.calls[2];
    assert_eq!(cmd, op::VIPTABLES_DEL);
    assert_ne!(a[0], 0, "rule pointer");
    assert_eq!(a[3] as u32 as i32, -1);

    ok(&mut f, &["viptables", "flush"]);
    assert_eq!(f.calls[3], (op::VIPTABLES_DEL, [0, 0, 0, 0xffff_ffff, 0]));
}

/// Paging: one list call per full page of 8 plus the short (maybe empty)
/// last one, and every rule printed once, in order.
#[test]
fn list_pagination() {
    for n in [0usize, 1, 7, 8, 9, 15, 16, 17, 33, 4096] {
        let mut f = Fake::with_rules(n);
        let out = ok(&mut f, &["viptables", "list"]);
        assert_eq!(f.list_calls(), n / 8 + 1, "{n} rules");
        let rows: Vec<&str> = out.lines().skip(1).collect();
        if n == 0 {
            assert_eq!(rows, ["(no rules: every message is accepted)"]);
            continue;
        }
        assert_eq!(rows.len(), n);
        for (i, row) in rows.iter().enumerate() {
            let want = format!(
                "{:<5} {:<7} {:<18} {}",
                i,
                if i % 2 == 1 { "ACCEPT" } else { "REJECT" },
                format!("1:{i}"),
                "2:*"
            );
            assert_eq!(*row, want);
        }
        // each call started where the previous page ended
        let starts: Vec<u32> = (0..=n / 8).map(|k| 8 * k as u32).collect();
        assert_eq!(f.list_starts, starts);
    }
}

/// A hypervisor that never returns a short page does not hang the tool.
#[test]
fn list_stops_on_an_endless_hypervisor() {
    let mut f = Fake {
        endless_list: true,
        ..Default::default()
    };
    let o = exec(&mut f, &["viptables", "list"]);
    assert_eq!(o.code, EXIT_OK);
    assert_eq!(f.list_calls(), (LIST_LIMIT as usize) / 8);
}

#[test]
fn wildcards_print_as_star() {
    let mut f = Fake {
        rules: vec![
            rule(addr(DOMID_WILDCARD, PORT_ANY), addr(DOMID_WILDCARD, 80), 1),
            rule(addr(0, 0), addr(DOMID_ANY, 4_294_967_294), 0),
            rule(addr(5, 6), addr(7, 8), 2),
        ],
        ..Default::default()
    };
    assert_eq!(
        ok(&mut f, &["viptables", "list"]),
        "\
NUM   TARGET  SOURCE             DEST
0     ACCEPT  *:*                *:80
1     REJECT  0:0                *:4294967294
2     accept=2 5:6                7:8
"
    );
}

#[test]
fn viptables_errors() {
    let mut f = Fake::with_rules(2);
    let o = exec(&mut f, &["viptables", "del", "5"]);
    assert_eq!(o.code, EXIT_HYPERCALL);
    assert_eq!(o.out, "");
    assert!(
        o.err
            .starts_with("v4vctl: viptables del failed: ENOENT (-2): no such rule"),
        "{}",
        o.err
    );

    let o = exec(&mut f, &["viptables", "del", "-s", "9", "-j", "ACCEPT"]);
    assert_eq!(o.code, EXIT_HYPERCALL);
    assert!(o.err.contains("ENOENT"));
    assert_eq!(f.rules.len(), 2);

    let mut f = Fake {
        unprivileged: true,
        ..Default::default()
    };
    for args in [
        &["viptables", "add", "-j", "ACCEPT"][..],
        &["viptables", "del", "0"],
        &["viptables", "flush"],
        &["viptables", "list"],
    ] {
        let o = exec(&mut f, args);
        assert_eq!(o.code, EXIT_HYPERCALL);
        assert!(
            o.err.contains(
                "EPERM (-1): only a privileged domain (dom0) may read or change viptables"
            ),
            "{}",
            o.err
        );
    }
}

#[test]
fn no_v4v_in_this_hypervisor() {
    let mut f = Fake {
        no_v4v: true,
        ..Default::default()
    };
    for args in [
        &["viptables", "list"][..],
        &["send", "1:2", "x"],
        &["notify"],
        &["notify", "1:2"],
    ] {
        let o = exec(&mut f, args);
        assert_eq!(o.code, EXIT_HYPERCALL, "{args:?}");
        assert!(o
            .err
            .contains("ENOSYS (-38): this hypervisor has no V4V (hypercall 43 unknown)"));
        assert!(o.err.contains("v4v=0"));
    }
}

/// Every errno the ABI lists, from every command: exit 1, its name and its
/// explanation for that operation on stderr, nothing on stdout.
#[test]
fn every_errno_from_every_command() {
    let cases: [(&[&str], u32); 7] = [
        (&["viptables", "add", "-j", "ACCEPT"], op::VIPTABLES_ADD),
        (&["viptables", "del", "0"], op::VIPTABLES_DEL),
        (&["viptables", "flush"], op::VIPTABLES_DEL),
        (&["viptables", "list"], op::VIPTABLES_LIST),
        (&["send", "1:2", "x"], op::SEND),
        (&["notify"], op::NOTIFY),
        (&["notify", "1:2"], op::NOTIFY),
    ];
    for errno in e::ALL {
        for (args, cmd) in cases {
            let mut f = Fake {
                force: Some(-errno),
                ..Default::default()
            };
            let o = exec(&mut f, args);
            assert_eq!(o.code, EXIT_HYPERCALL);
            assert_eq!(o.out, "");
            let want = format!(
                "v4vctl: {} failed: {}\n",
                op_label(cmd),
                errmsg::describe(cmd, errno)
            );
            assert_eq!(o.err, want);
        }
    }
}

fn ring(domain: u16, port: u32, max: u32, space: u32, empty: bool) -> FakeRing {
    FakeRing {
        addr: addr(domain, port),
        max_message_size: max,
        space,
        empty,
    }
}

#[test]
fn send_text_and_pattern() {
    let mut f = Fake {
        rings: vec![ring(1, 5000, 4064, 4064, true)],
        ..Default::default()
    };
    assert_eq!(
        ok(&mut f, &["send", "1:5000", "hello"]),
        "sent 5 bytes to 1:5000\n"
    );
    assert_eq!(
        f.sent[0],
        Sent {
            src: addr(DOMID_ANY, 0),
            dst: addr(1, 5000),
            payload: b"hello".to_vec(),
            protocol: v4v_abi::PROTO_DGRAM,
        }
    );
    assert_eq!(
        ok(&mut f, &["send", "-s", "1000", "1:5000", "--size", "300"]),
        "sent 300 bytes to 1:5000\n"
    );
    let want: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
    assert_eq!(f.sent[1].payload, want);
    assert_eq!({ f.sent[1].src.port }, 1000);
    assert_eq!(
        ok(&mut f, &["send", "1:5000", ""]),
        "sent 0 bytes to 1:5000\n"
    );
    assert_eq!(f.sent[2].payload, b"");
    let (_, a) = f.calls[0];
    assert_eq!(a[3], 5, "arg4 is the length");
}

#[test]
fn send_errors() {
    let mut f = Fake {
        rings: vec![ring(1, 5000, 100, 40, false)],
        ..Default::default()
    };
    let o = exec(&mut f, &["send", "2:5000", "x"]);
    assert_eq!(o.code, EXIT_HYPERCALL);
    assert!(o
        .err
        .contains("send failed: ENOTCONN (-107): no such destination domain or ring"));

    let o = exec(&mut f, &["send", "1:5000", "--size", "101"]);
    assert!(
        o.err.contains("ENOBUFS (-105): the message can never fit"),
        "{}",
        o.err
    );

    let o = exec(&mut f, &["send", "1:5000", "--size", "41"]);
    assert!(o
        .err
        .contains("EAGAIN (-11): the destination ring is full right now"));

    f.rules = vec![rule(addr(0, 7), addr(1, PORT_ANY), 0)];
    let o = exec(&mut f, &["send", "-s", "7", "1:5000", "x"]);
    assert!(
        o.err
            .contains("EPERM (-1): the viptables reject this message"),
        "{}",
        o.err
    );
    // another source port is not matched by the rule
    ok(&mut f, &["send", "-s", "8", "1:5000", "x"]);
    assert_eq!(f.sent.len(), 1);
}

#[test]
fn notify_one_ring() {
    let mut f = Fake {
        rings: vec![ring(1, 5000, 4064, 1000, true), ring(2, 1, 16, 0, false)],
        ..Default::default()
    };
    assert_eq!(
        ok(&mut f, &["notify", "1:5000"]),
        "ring 1:5000: flags EMPTY,EXISTS,SUFFICIENT max_message_size 4064 (space asked 0)\n"
    );
    assert_eq!(
        ok(&mut f, &["notify", "1:5000", "--space", "2000"]),
        "ring 1:5000: flags EMPTY,EXISTS,PENDING max_message_size 4064 (space asked 2000)\n"
    );
    assert_eq!(
        ok(&mut f, &["notify", "2:1", "--space", "1"]),
        "ring 2:1: flags EXISTS,PENDING max_message_size 16 (space asked 1)\n"
    );
    assert_eq!(
        ok(&mut f, &["notify", "3:3"]),
        "ring 3:3: flags none max_message_size 0 (space asked 0)\n\
         no such ring, or the viptables do not let dom0 send to it\n"
    );
    // a ring the viptables hide reads as not existing
    f.rules = vec![rule(ANY, addr(1, 5000), 0)];
    assert!(ok(&mut f, &["notify", "1:5000"]).contains("flags none"));
    assert_eq!(f.plain_notifies, 0);
}

#[test]
fn plain_notify() {
    let mut f = Fake::default();
    assert_eq!(ok(&mut f, &["notify"]), "");
    assert_eq!(f.plain_notifies, 1);
    assert_eq!(f.calls, vec![(op::NOTIFY, [0; 5])]);
}

#[test]
fn flag_name_list() {
    assert_eq!(flag_names(0), "none");
    assert_eq!(flag_names(15), "EMPTY,EXISTS,PENDING,SUFFICIENT");
    assert_eq!(flag_names(8), "SUFFICIENT");
    assert_eq!(flag_names(0x12), "EXISTS,0x10");
}

/// Usage errors: exit 2, the problem and where to read more, and the
/// hypervisor is not even opened.
#[test]
fn usage_errors_do_not_touch_the_hypervisor() {
    for (args, hint) in [
        (&[][..], "v4vctl --help"),
        (&["bogus"], "v4vctl --help"),
        (&["viptables", "add"], "v4vctl viptables --help"),
        (&["send", "1:2"], "v4vctl send --help"),
        (&["notify", "x"], "v4vctl notify --help"),
    ] {
        let mut f = Fake::default();
        let o = exec(&mut f, args);
        assert_eq!(o.code, EXIT_USAGE, "{args:?}");
        assert!(!o.opened);
        assert!(f.calls.is_empty());
        assert_eq!(o.out, "");
        assert!(o.err.starts_with("v4vctl: "));
        assert!(o.err.ends_with(&format!("\nTry '{hint}'.\n")), "{}", o.err);
    }
}

#[test]
fn help_and_version_need_no_hypervisor() {
    let mut f = Fake::default();
    for (args, text) in [
        (&["--help"][..], cli::MAIN_HELP),
        (&["viptables", "add", "-h"], cli::VIPTABLES_HELP),
        (&["send", "--help"], cli::SEND_HELP),
        (&["notify", "-h"], cli::NOTIFY_HELP),
    ] {
        let o = exec(&mut f, args);
        assert_eq!((o.code, o.opened), (EXIT_OK, false));
        assert_eq!(o.out, text);
    }
    let o = exec(&mut f, &["--version"]);
    assert_eq!(o.out, "v4vctl 0.1.0 (V4V hypercall 43)\n");
    assert!(f.calls.is_empty());
}

#[test]
fn cannot_open_privcmd() {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = main_with::<Fake>(
        vec!["notify".into()],
        || Err("cannot open privcmd (x)".into()),
        &mut out,
        &mut err,
    );
    assert_eq!(code, EXIT_HYPERCALL);
    assert_eq!(
        String::from_utf8(err).unwrap(),
        "v4vctl: cannot open privcmd (x)\n"
    );
}

/// No command line makes the tool panic: every combination of up to four
/// tokens from a set of plausible and hostile ones ends in 0, 1 or 2.
#[test]
fn no_panic_on_any_short_command_line() {
    const TOKENS: [&str; 18] = [
        "viptables",
        "add",
        "del",
        "list",
        "flush",
        "send",
        "notify",
        "-s",
        "-d",
        "-j",
        "-p",
        "ACCEPT",
        "1:2",
        "*",
        "--size",
        "--space",
        "--",
        "4294967296",
    ];
    let mut line = Vec::new();
    fn walk(line: &mut Vec<&'static str>, depth: usize) {
        let mut f = Fake {
            rings: vec![ring(1, 2, 64, 64, true)],
            ..Default::default()
        };
        let o = exec(&mut f, line);
        assert!(
            matches!(o.code, EXIT_OK | EXIT_HYPERCALL | EXIT_USAGE),
            "{line:?}"
        );
        if depth == 4 {
            return;
        }
        for t in TOKENS {
            line.push(t);
            walk(line, depth + 1);
            line.pop();
        }
    }
    walk(&mut line, 0);
}
