#!/usr/bin/env python3
"""Boot Xen with a Linux dom0 and its toolstack under QEMU, judge the run.

dom0 (scripts/dom0-image.sh, dom0/init) starts xenstored and xenconsoled,
runs the scenario script packed into its initramfs, which creates domUs
with ``xl``, and powers off. Results are lines anywhere on Xen's serial
line, from dom0 itself or from a domU (then prefixed ``(dN) `` by Xen, or
``[NAME] `` when dom0 prints a domU's console log)::

    V4VT ok NAME
    V4VT not ok NAME # REASON
    V4VT ok 3 NAME                (the numbered form is accepted too)
    V4VT bail out! REASON         (a guest gave up: a failure)
    V4VD dom0 done rc=N           (dom0's last word; rc must be 0)
    V4VD figure NAME VALUE        (a number for the report, e.g. how many
                                   bad calls the hostile guest made)

``--expect FILE`` lists the names that must report ``ok`` (one a line,
``#`` starts a comment). A run fails for each expected name that is
missing, each name reported ``not ok`` (by anyone), each name reported
twice by the same source, each bail-out, a Xen or Linux panic, a missing
or non-zero ``V4VD dom0 done``, and the watchdog. ``--serial-checks FILE``
adds results judged on Xen's serial line itself (lines ``present NAME
REGEX``: some line matches; ``absent NAME REGEX``: none does), e.g. Xen's
FLASK denials. ``--xen-extra`` appends to Xen's command line, ``--module``
adds a multiboot module after dom0's. The serial log is saved
as ``<results>/<name>.serial``; ``--counts`` gets ``PASSED FAILED``.
Prints one line per test, timings, and ``N passed, M failed``; exits
non-zero on any failure.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu  # noqa: E402
from qemu import PANIC_RE, ROOT, XEN_TROUBLE_RE  # noqa: E402

# `quiet` (loglevel 4: warnings and errors still show) saves about 2 s of
# boot log on the serial line under TCG.
DEFAULT_DOM0_CMDLINE = "console=hvc0 earlyprintk=xen quiet"
# The dom0 kernel of the Xen stack in V4V_XEN_VERSION (the Makefile's
# XEN_VERSION), as scripts/dom0-image.sh builds it.
DEFAULT_VMLINUX = os.path.join(ROOT, "build", "dom0-" + os.environ.get("V4V_XEN_VERSION", "4.20"),
                               "vmlinux")

RESULT_RE = re.compile(
    r"V4VT (?P<res>ok|not ok) (?:(?P<idx>\d+) (?=\S))?(?P<name>\S+)"
    r"(?:\s+#\s*(?P<why>.*?))?\s*$")
BAIL_RE = re.compile(r"V4VT bail out!\s*(?P<why>.*?)\s*$")
DONE_RE = re.compile(r"V4VD dom0 done rc=(?P<rc>-?\d+)")
INIT_RE = re.compile(r"V4VD dom0 init at")
TOOLSTACK_RE = re.compile(r"V4VD dom0 toolstack up")
# A number a scenario wants in the report (e.g. the hostile guest's count
# of bad calls): `V4VD figure NAME VALUE`.
FIGURE_RE = re.compile(r"V4VD figure (?P<name>\S+) (?P<value>\S+)")
# Where a result came from: a domU mirrored by Xen, a domU log printed by
# dom0, or dom0 itself.
# Where a domU's line, mirrored by Xen, starts inside another line.
DOMU_START_RE = re.compile(r"(?<=\S)(?=\(d\d+\) )")
SOURCE_RE = re.compile(r"\(d\d+\)|\[[^\]]+\]")
LINUX_PANIC_RE = re.compile(r"Kernel panic - not syncing")
# Lines worth showing with --echo: results, markers, dom0's scenario
# lines and domU lines as Xen mirrors them (dom0's `[NAME] ` dumps of the
# same lines are left out unless they carry a result).
ECHO_RE = re.compile(r"V4VT|V4VD|^dom0[: ]|^\(d\d+\) ")

GRACE_AFTER_DONE = 15.0
GRACE_AFTER_PANIC = 3.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--vmlinux", default=DEFAULT_VMLINUX,
                   help="dom0 kernel, plain ELF (default build/dom0-$V4V_XEN_VERSION/vmlinux, "
                   "4.20 when unset)")
    p.add_argument("--initrd", required=True,
                   help="dom0 initramfs, uncompressed cpio (scripts/dom0-image.sh pack)")
    p.add_argument("--dom0-cmdline", default=DEFAULT_DOM0_CMDLINE,
                   help="Linux command line (v4v_watchdog=S bounds run.sh)")
    p.add_argument("--expect", help="file of test names that must report ok")
    p.add_argument("--memory", default="2048", help="QEMU -m (MiB)")
    p.add_argument("--serial-checks",
                   help="file of `present NAME REGEX` / `absent NAME REGEX` lines, each a "
                        "result judged on the serial line")
    p.add_argument("--xen-extra", default="", help="appended to Xen's command line")
    p.add_argument("--module", action="append", default=[],
                   help="one more multiboot module after dom0's kernel and initramfs "
                        "(repeatable), e.g. a FLASK policy")
    p.add_argument("--show", action="store_true",
                   help="`make run`: end with the show's own verdict (what was delivered "
                        "and refused) instead of test counts")
    qemu.add_common_args(
        p, name="multi", timeout=600.0, xen_cmdline=qemu.xen_cmdline("512M"),
        echo_help="show result, marker, dom0 and domU lines as they arrive")
    return p.parse_args()


def read_expect(path):
    names = []
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.append(line)
    return names


class Run:
    """What the serial log said."""

    def __init__(self):
        self.reports = {}  # name -> list of (source, ok, why)
        self.order = []
        self.duplicates = []  # (source, name)
        self.bails = []
        self.panic = None
        self.done_rc = None
        self.t_init = None
        self.t_toolstack = None
        self.t_done = None
        self.figures = {}

    def feed(self, line, now):
        # dom0's console output reaches the serial line in small pieces,
        # and Xen may print a domU's whole line between two of them: judge
        # each `(dN) ` line on its own.
        parts = DOMU_START_RE.split(line)
        if len(parts) > 1:
            for part in parts:
                if part.strip():
                    self.feed_one(part, now)
            return
        self.feed_one(line, now)

    def feed_one(self, line, now):
        m = RESULT_RE.search(line)
        if m:
            src = line[:m.start()].strip()
            s = SOURCE_RE.search(src)
            src = s.group(0) if s else "dom0"
            name = m.group("name")
            if name not in self.reports:
                self.reports[name] = []
                self.order.append(name)
            if any(r[0] == src for r in self.reports[name]):
                self.duplicates.append((src, name))
            self.reports[name].append((src, m.group("res") == "ok", m.group("why") or ""))
            return
        m = BAIL_RE.search(line)
        if m:
            self.bails.append(line.strip())
            return
        m = FIGURE_RE.search(line)
        if m:
            self.figures[m.group("name")] = m.group("value")
            return
        m = DONE_RE.search(line)
        if m:
            if self.done_rc is None:
                self.done_rc = int(m.group("rc"))
                self.t_done = now
            return
        if self.t_init is None and INIT_RE.search(line):
            self.t_init = now
        elif self.t_toolstack is None and TOOLSTACK_RE.search(line):
            self.t_toolstack = now
        elif self.panic is None and (PANIC_RE.search(line) or LINUX_PANIC_RE.search(line)):
            self.panic = line.strip()

    def problems(self, rc, timed_out, timeout):
        """What is wrong with the run as a whole (not with one result)."""
        out = [f"duplicate result for {name} from {src}" for src, name in self.duplicates]
        out += [f"bail out: {b}" for b in self.bails]
        if self.panic:
            out.append(f"Xen or dom0 died: {self.panic}")
        if timed_out:
            out.append(f"watchdog: no 'V4VD dom0 done' after {timeout:.0f} s")
        elif self.done_rc is None:
            out.append(f"no 'V4VD dom0 done' line (QEMU exited early, status {rc})")
        elif self.done_rc != 0:
            out.append(f"dom0 done with rc={self.done_rc}")
        return out

    def grace(self):
        """None until dom0 is done or died, then how long QEMU may still run."""
        if self.done_rc is not None:
            return GRACE_AFTER_DONE
        return GRACE_AFTER_PANIC if self.panic else None


def echo(args, line):
    if not (args.echo or args.echo_all):
        return
    if not line.strip():
        return
    if args.echo_all:
        print(line, flush=True)
    elif "Xen version" in line and "(XEN)" in line:
        print(line[line.index("(XEN)"):], flush=True)
    elif (ECHO_RE.search(line) or PANIC_RE.search(line) or LINUX_PANIC_RE.search(line)
          or XEN_TROUBLE_RE.search(line)):
        print(line, flush=True)


class Show:
    """`make run`'s verdict: what the transcript demonstrated, from the
    domUs' own lines as Xen mirrors them (`(dN) a: -> b ... "line 3 from
    a": delivered`, `(dN) b: <- a ...`, `(dN) b: done: ...`): every line a
    sender was told was delivered reached b, and the lines dom0's rule
    refused did not; dom0 said all domUs finished."""

    SENT_RE = re.compile(r'^\(d\d+\) (?P<who>[ac]): -> b \S+ "(?P<text>[^"]*)": (?P<what>.*)$')
    GOT_RE = re.compile(r'^\(d\d+\) b: <- (?P<who>\S+) \S+: "(?P<text>[^"]*)"$')
    RULE_RE = re.compile(r"^dom0: # v4vctl viptables (?P<op>add|flush)")

    def __init__(self):
        self.delivered = []
        self.refused = []
        self.failed = []
        self.received = []
        self.rules = []
        self.finished = False

    def feed(self, line, _now):
        m = self.SENT_RE.match(line)
        if m:
            what = m["what"]
            if what == "delivered":
                self.delivered.append(m["text"])
            elif what.startswith("refused by viptables"):
                self.refused.append(m["text"])
            else:
                self.failed.append(f'{m["text"]}: {what}')
            return
        m = self.GOT_RE.match(line)
        if m:
            self.received.append(m["text"])
            return
        m = self.RULE_RE.match(line)
        if m:
            self.rules.append(m["op"])
        elif line.startswith("dom0: all domUs finished"):
            self.finished = True

    def verdict(self):
        """(ok, lines): the verdict and what supports it."""
        problems = []
        lost = [t for t in self.delivered if t not in self.received]
        leaked = [t for t in self.refused if t in self.received]
        if not self.delivered:
            problems.append("no line was delivered")
        if lost:
            problems.append(f"delivered but never shown by b: {', '.join(lost)}")
        if leaked:
            problems.append(f"refused yet shown by b: {', '.join(leaked)}")
        if self.failed:
            problems.append(f"sends that failed: {'; '.join(self.failed)}")
        if "add" in self.rules and not self.refused:
            problems.append("dom0 added a REJECT rule but no line was refused")
        if not self.finished:
            problems.append("dom0 never said that all domUs finished")
        from_c = sum(t.endswith(" from c") for t in self.received)
        lines = [
            f"make run: {len(self.delivered)} lines delivered and all {len(self.received)} shown "
            f"by b ({len(self.received) - from_c} from a, {from_c} from c)"
            if not lost else f"make run: {len(self.delivered)} lines delivered, "
            f"{len(self.received)} shown by b",
            f"make run: {len(self.refused)} lines from c refused by dom0's viptables rule "
            f"while it stood, none of them shown by b" if not leaked and self.refused
            else f"make run: {len(self.refused)} lines refused",
        ]
        if problems:
            lines += [f"make run: PROBLEM: {p}" for p in problems]
            lines.append("make run: the show went wrong (the serial log has everything)")
        else:
            lines.append("make run: V4V carried every allowed line and the viptables "
                         "stopped every refused one")
        return not problems, lines


class SerialChecks:
    """Results judged on the serial line itself: ``present NAME REGEX``
    passes when some line matches REGEX (Python ``re.search`` on the line
    without escapes), ``absent NAME REGEX`` when none does."""

    def __init__(self, path):
        self.checks = []  # (kind, name, regex, first matching line or None)
        with open(path) as f:
            for n, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("#"):
                    continue
                parts = line.split(None, 2)
                if len(parts) != 3 or parts[0] not in ("present", "absent"):
                    raise ValueError(f"{path}:{n}: not `present|absent NAME REGEX`")
                self.checks.append([parts[0], parts[1], re.compile(parts[2]), None])

    def names(self):
        return [c[1] for c in self.checks]

    def feed(self, line, now):
        for c in self.checks:
            if c[3] is None and c[2].search(line):
                c[3] = line.strip()

    def report(self, run):
        """Each check's verdict, as a result from the source `serial`."""
        for kind, name, regex, hit in self.checks:
            if kind == "present":
                ok, why = hit is not None, "" if hit else f"no serial line matches {regex.pattern!r}"
            else:
                ok, why = hit is None, f"serial line: {hit}" if hit else ""
            if name not in run.reports:
                run.reports[name] = []
                run.order.append(name)
            run.reports[name].append(("serial", ok, why))


def boot(args, run, serial, extra_qemu=(), also=None):
    """Boots Xen and dom0, feeding every serial line to ``run`` (and to
    ``also(line, now)``, if given); ``extra_qemu`` goes on QEMU's command
    line."""
    cmd = qemu.qemu_cmd(args.qemu, "qemu64,+rdrand", args.memory, args.xen,
                        f"{args.xen_cmdline} {args.xen_extra}".strip(),
                        [f"{args.vmlinux} {args.dom0_cmdline}", args.initrd] + args.module,
                        smp=args.smp)
    cmd += list(extra_qemu)

    def on_line(line, now):
        line = qemu.clean(line)
        run.feed(line, now)
        if also:
            also(line, now)
        echo(args, line)
    return qemu.run(cmd, serial, args.timeout, on_line, run.grace)


def main():
    args = parse_args()
    expected = []
    problems = []
    if args.expect:
        try:
            expected = read_expect(args.expect)
        except OSError as e:
            problems.append(f"cannot read the expect file: {e}")
        dup = sorted({n for n in expected if expected.count(n) > 1})
        if dup:
            problems.append(f"expect file lists names twice: {' '.join(dup)}")
    checks = None
    if args.serial_checks:
        try:
            checks = SerialChecks(args.serial_checks)
        except (OSError, ValueError, re.error) as e:
            print(f"multi: --serial-checks: {e}", file=sys.stderr)
            return qemu.finish(args.counts, 0, 1)
        expected += [n for n in checks.names() if n not in expected]
    if not qemu.check_inputs("multi", ((args.xen, "Xen image"), (args.vmlinux, "dom0 kernel"),
                                       (args.initrd, "dom0 initramfs"))
                             + tuple((m.split()[0], "module") for m in args.module)):
        return qemu.finish(args.counts, 0, 1)
    serial = qemu.serial_path(args.results, args.name)
    run = Run()
    show = Show() if args.show else None
    also = show.feed if show else (checks.feed if checks else None)
    rc, elapsed, timed_out, exited = boot(args, run, serial, also=also)
    if checks:
        checks.report(run)
    if show:
        ok, lines = show.verdict()
        problems = run.problems(rc, timed_out, args.timeout)
        for p in problems:
            print(f"make run: PROBLEM: {p}")
        for line in lines:
            print(line)
        print(f"make run: serial log {serial}")
        return 0 if ok and not problems else 1

    passed = failed = 0
    lines = []
    names = list(expected) + [n for n in run.order if n not in expected]
    for name in names:
        reports = run.reports.get(name, [])
        if not reports:
            ok, why = False, "no result line"
        else:
            bad = [r for r in reports if not r[1]]
            ok = not bad
            why = "; ".join(f"{src}: {w}" if w else src for src, _, w in bad)
        if name not in expected and expected:
            why = (why + " " if why else "") + "(not in the expect file)"
        passed += ok
        failed += not ok
        lines.append(f"{'PASS' if ok else 'FAIL'} {name}" + (f"  # {why}" if why else ""))
    problems += run.problems(rc, timed_out, args.timeout)
    failed += len(problems)

    for line in lines:
        print(line)
    for p in problems:
        print(f"FAIL {p}")

    for name, value in run.figures.items():
        print(f"multi: {name} = {value}")

    def at(t):
        return f"{t:.1f} s" if t is not None else "never"
    how = "QEMU exited" if exited else "QEMU killed"
    print(f"multi: dom0 /init at {at(run.t_init)}, toolstack up at {at(run.t_toolstack)}, "
          f"dom0 done at {at(run.t_done)}, total {elapsed:.1f} s ({how}); "
          f"serial log {serial}")
    return qemu.finish(args.counts, passed, failed)


if __name__ == "__main__":
    sys.exit(main())
