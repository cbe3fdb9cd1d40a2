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
import select
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

DEFAULT_XEN_CMDLINE = (
    "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all "
    "dom0_mem=64M,max:64M dom0_max_vcpus=2"
)

LINE_RE = re.compile(
    r"V4VT (?:(?P<plan>plan) (?P<n>\d+)"
    r"|(?P<result>ok|not ok) (?P<idx>\d+) (?P<name>\S+)(?: # (?P<why>.*))?"
    r"|(?P<bail>bail out!)(?P<bailwhy>.*)"
    r"|(?P<done>done))\s*$"
)
# Xen's own words for a dead hypervisor, and for a dom0 it killed.
PANIC_RE = re.compile(r"Panic on CPU|\bFATAL\b|Dom0 crashed")

# Xen lines worth showing with the guest's when echoing.
XEN_TROUBLE_RE = re.compile(r"\*\*\*|RIP:|Hardware Dom0")

# Terminal control sequences (firmware output) are not echoed.
ESCAPE_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-~])")

# After the verdict is out, give Xen this long to reset the machine.
GRACE_AFTER_DONE = 10.0
GRACE_AFTER_PANIC = 3.0


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--xen", default=os.path.join(ROOT, "build/xen/xen/xen"),
                   help="multiboot Xen image (default build/xen/xen/xen)")
    p.add_argument("--guest", default=os.path.join(
        ROOT, "build/target-guest/x86_64-unknown-none/release/v4v-test-guest"),
        help="guest ELF")
    p.add_argument("--mode", default="tests", help="guest mode: tests or demo")
    p.add_argument("--guest-args", default="",
                   help="extra guest arguments, e.g. 'filter=send'")
    p.add_argument("--xen-cmdline", default=DEFAULT_XEN_CMDLINE)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--timeout", type=float, default=120.0,
                   help="hard watchdog in seconds")
    p.add_argument("--results", default=os.path.join(ROOT, "build/results"))
    p.add_argument("--name", default="boot-dom0",
                   help="log name: <results>/<name>.serial")
    p.add_argument("--counts", help="write 'PASSED FAILED' to this file")
    p.add_argument("--echo", action="store_true",
                   help="show the guest's lines (and Xen's banner) as they arrive")
    p.add_argument("--echo-all", action="store_true",
                   help="show the whole serial output as it arrives")
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

    def feed(self, line, now):
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


def echo(args, line):
    """Shows a serial line on stdout if asked to."""
    if not (args.echo or args.echo_all):
        return
    line = ESCAPE_RE.sub("", line).replace("\r", "")
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


def boot(args, run, log):
    guest_arg = " ".join(x for x in (args.mode, args.guest_args) if x)
    cmd = [
        args.qemu, "-machine", "q35,accel=tcg", "-cpu", "qemu64", "-m", "512",
        "-smp", "2", "-nographic", "-no-reboot",
        "-kernel", args.xen, "-append", args.xen_cmdline,
        # QEMU separates multiboot modules with ',' ("',,'" is a comma).
        "-initrd", f"{args.guest} {guest_arg}".replace(",", ",,"),
    ]
    log.write(("# " + shlex.join(cmd) + "\n").encode())
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    fd = proc.stdout.fileno()
    pending = b""
    deadline = t0 + args.timeout
    verdict_deadline = None
    timed_out = False
    while True:
        now = time.monotonic()
        limit = deadline if verdict_deadline is None else min(deadline, verdict_deadline)
        if now >= limit:
            timed_out = verdict_deadline is None or now >= deadline
            break
        ready, _, _ = select.select([fd], [], [], min(0.5, limit - now))
        if not ready:
            if proc.poll() is not None:
                break
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        log.write(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip("\r")
            run.feed(line, time.monotonic() - t0)
            echo(args, line)
        if verdict_deadline is None:
            if run.done or run.bail:
                verdict_deadline = time.monotonic() + GRACE_AFTER_DONE
            elif run.panic:
                verdict_deadline = time.monotonic() + GRACE_AFTER_PANIC
    if pending:
        run.feed(pending.decode("utf-8", "replace").rstrip("\r"), time.monotonic() - t0)
    try:
        # After EOF on its output QEMU is on its way out; give it a moment.
        proc.wait(timeout=2 if run.done or run.bail or run.panic or not timed_out else 0.1)
    except subprocess.TimeoutExpired:
        pass
    exited = proc.poll() is not None
    if not exited:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    elapsed = time.monotonic() - t0
    # Hitting the watchdog is a failure only if the verdict never came.
    timed_out = timed_out and not (run.done or run.bail or run.panic)
    return proc.returncode, elapsed, timed_out, exited


def main():
    args = parse_args()
    for path, what in ((args.xen, "Xen image"), (args.guest, "guest ELF")):
        if not os.path.isfile(path):
            print(f"boot: {what} {path} not found", file=sys.stderr)
            return finish(args, 0, 1)
    os.makedirs(args.results, exist_ok=True)
    serial = os.path.join(args.results, f"{args.name}.serial")
    run = Run()
    with open(serial, "wb") as log:
        rc, elapsed, timed_out, exited = boot(args, run, log)

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
    return finish(args, passed, failed)


def finish(args, passed, failed):
    if args.counts:
        os.makedirs(os.path.dirname(os.path.abspath(args.counts)), exist_ok=True)
        with open(args.counts, "w") as f:
            f.write(f"{passed} {failed}\n")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
