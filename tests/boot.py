#!/usr/bin/env python3
"""Boot Xen with the V4V test guest as dom0 under QEMU and judge the run.

The guest prints TAP-like lines with the prefix ``V4VT`` on Xen's serial
line::

    V4VT plan N
    V4VT ok I NAME
    V4VT not ok I NAME # REASON
    V4VT bail out! REASON
    V4VT done

A run passes when the plan is there, every planned test reports ``ok``,
``done`` is there, nothing bailed out, Xen did not panic and QEMU did not
hit the watchdog. The whole serial log is saved as
``<results>/<name>.serial``; with ``--counts`` the file gets
``PASSED FAILED``. Prints one line per test and ends with
``N passed, M failed``; exits non-zero on any failure.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import qemu  # noqa: E402
from qemu import PANIC_RE, ROOT, XEN_TROUBLE_RE  # noqa: E402

LINE_RE = re.compile(
    r"V4VT (?:(?P<plan>plan) (?P<n>\d+)"
    r"|(?P<result>ok|not ok) (?P<idx>\d+) (?P<name>\S+)(?: # (?P<why>.*))?"
    r"|(?P<bail>bail out!)(?P<bailwhy>.*)"
    r"|(?P<done>done))\s*$"
)
# After the verdict is out, give Xen this long to reset the machine.
# The guest's banner: "V4V test guest: dom0 (privileged) on Xen 4.20
# (xen-3.0-x86_64), ...", the part in parentheses after the version.
KIND_RE = re.compile(r"V4V test guest: .*? on Xen \S+ \(([^)]*)\)")
GRACE_AFTER_DONE = 10.0
GRACE_AFTER_PANIC = 3.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--guest", default=os.path.join(
        ROOT, "build/target-guest/x86_64-unknown-none/release/v4v-test-guest"),
        help="guest ELF")
    p.add_argument("--mode", default="tests", help="guest mode: tests, demo or worst")
    p.add_argument("--icount", metavar="SHIFT",
                   help="run QEMU with -icount shift=SHIFT,sleep=off: guest time counts "
                        "instructions")
    p.add_argument("--guest-args", default="",
                   help="extra guest arguments, e.g. 'filter=send'")
    p.add_argument("--pvh", action="store_true",
                   help="boot the guest as a PVH dom0 (dom0=pvh dom0-iommu=none) and "
                        "require that it ran as one")
    qemu.add_common_args(
        p, name="boot-dom0", timeout=120.0, xen_cmdline=qemu.xen_cmdline("64M"),
        echo_help="show the guest's lines (and Xen's banner) as they arrive")
    return p.parse_args()


class Run:
    """What the serial log said."""

    def __init__(self):
        self.plan = None
        self.results = {}  # idx -> (ok, name, why)
        self.duplicates = []
        self.done = False
        self.bail = None
        self.panic = None
        self.first_v4vt = None
        self.kind = None  # the start_info magic the guest reported


    def feed(self, line, now):
        k = KIND_RE.search(line)
        if k and self.kind is None:
            self.kind = k.group(1)
        m = LINE_RE.search(line)
        if m:
            if self.first_v4vt is None:
                self.first_v4vt = now
            if m.group("plan"):
                if self.plan is None:
                    self.plan = int(m.group("n"))
            elif m.group("result"):
                idx = int(m.group("idx"))
                entry = (m.group("result") == "ok", m.group("name"), m.group("why") or "")
                if idx in self.results:
                    self.duplicates.append(idx)
                self.results[idx] = entry
            elif m.group("bail"):
                self.bail = m.group("bailwhy").strip() or "bail out"
            elif m.group("done"):
                self.done = True
        elif self.panic is None and PANIC_RE.search(line):
            self.panic = line.strip()

    def grace(self):
        """None until the verdict is out, then how long Xen gets to reset."""
        if self.done or self.bail:
            return GRACE_AFTER_DONE
        return GRACE_AFTER_PANIC if self.panic else None


def echo(args, line):
    """Shows a serial line on stdout if asked to."""
    if not (args.echo or args.echo_all):
        return
    line = qemu.clean(line)
    if not line.strip():
        return
    if args.echo_all:
        print(line, flush=True)
    elif "Xen version" in line:
        # Firmware output before Xen's banner is not worth showing.
        echo.seen_xen = True
        print(line[line.index("(XEN)"):] if "(XEN)" in line else line, flush=True)
    elif getattr(echo, "seen_xen", False) and (
            not line.startswith("(XEN)") or PANIC_RE.search(line) or XEN_TROUBLE_RE.search(line)):
        print(line, flush=True)


def boot(args, run, serial):
    guest_arg = " ".join(x for x in (args.mode, args.guest_args) if x)
    cmdline = args.xen_cmdline + (" dom0=pvh dom0-iommu=none" if args.pvh else "")
    cmd = qemu.qemu_cmd(args.qemu, "qemu64", 512, args.xen, cmdline,
                        [f"{args.guest} {guest_arg}"], smp=args.smp)
    if args.icount is not None:
        cmd += ["-icount", f"shift={args.icount},sleep=off"]

    def on_line(line, now):
        run.feed(line, now)
        echo(args, line)
    return qemu.run(cmd, serial, args.timeout, on_line, run.grace)


def main():
    args = parse_args()
    if not qemu.check_inputs("boot", ((args.xen, "Xen image"), (args.guest, "guest ELF"))):
        return qemu.finish(args.counts, 0, 1)
    serial = qemu.serial_path(args.results, args.name)
    run = Run()
    rc, elapsed, timed_out, exited = boot(args, run, serial)

    passed = failed = 0
    lines = []
    plan = run.plan or 0
    for idx in range(1, max([plan] + list(run.results)) + 1):
        if idx in run.results:
            ok, name, why = run.results[idx]
            if idx > plan:
                ok, why = False, "not in the plan " + why
        else:
            ok, name, why = False, f"test-{idx}", "no result line"
        passed += ok
        failed += not ok
        lines.append(f"{'PASS' if ok else 'FAIL'} {idx:3d} {name}" + (f"  # {why}" if why else ""))
    problems = []
    if run.plan is None:
        problems.append("no plan line")
    if run.duplicates:
        problems.append(f"duplicate results for tests {sorted(set(run.duplicates))}")
    if run.bail:
        problems.append(f"guest bailed out: {run.bail}")
    if run.panic:
        problems.append(f"Xen or dom0 died: {run.panic}")
    # The guest's banner names the start info it got: a PV one
    # ("xen-3.0-x86_64") or the one its PVH entry made ("...-pvh").
    want_kind = "xen-3.0-x86_64-pvh" if args.pvh else "xen-3.0-x86_64"
    if run.kind != want_kind:
        problems.append(f"guest booted as {run.kind or 'nothing'}, not {want_kind}")
    if timed_out:
        problems.append(f"watchdog: no verdict after {args.timeout:.0f} s")
    elif not run.done and not run.bail:
        problems.append("no done line (guest died or QEMU exited early"
                        f", QEMU exit status {rc})")
    failed += len(problems)

    for line in lines:
        print(line)
    for p in problems:
        print(f"FAIL     {p}")
    first = f", first V4VT line at {run.first_v4vt:.1f} s" if run.first_v4vt is not None else ""
    how = "QEMU exited" if exited else "QEMU killed"
    print(f"boot: {args.mode} run {elapsed:.1f} s ({how}{first}); serial log {serial}")
    return qemu.finish(args.counts, passed, failed)


if __name__ == "__main__":
    sys.exit(main())
