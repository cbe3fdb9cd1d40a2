#!/usr/bin/env python3
"""`make bench`: V4V against Argo in one boot of one hypervisor.

Boots Xen (with V4V and Argo, `argo=1,mac-permissive=1`) and the Linux
dom0, whose script (dom0/bench) starts two test domUs in `bench` mode
(guest/src/bench). The driving domU prints one line per figure and
repetition::

    V4VB METRIC TRANSPORT SIZE REP VALUE

This script shows a progress line while they run, then takes the median
of the repetitions of every figure (with the spread: min and max) and
writes, in --out:

- ``bench.txt``: the table printed on the terminal (V4V, Argo, speedup);
- ``bench.csv``: one row per metric and size, medians, mins and maxes;
- ``bench.svg``: throughput against message size, both transports and
  the in-guest memcpy;
- ``bench.serial`` (in --results): the whole serial log.

The run is judged like a multi-domain test (dom0/bench/expect): a bench
whose domUs failed prints no table and exits non-zero.
"""

import argparse
import csv
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import multi  # noqa: E402
import qemu  # noqa: E402
from qemu import ROOT  # noqa: E402

FIGURE_RE = re.compile(r"V4VB (?P<metric>\S+) (?P<transport>\S+) (?P<size>\d+) "
                       r"(?P<rep>\d+) (?P<value>\d+)")
PROGRESS_RE = re.compile(r"V4VD progress (?P<what>.*)$")
PLAN_RE = re.compile(r"V4VD bench plan (?P<what>.*)$")
ICOUNT_RE = re.compile(r"-icount shift=(\d+)")

SIZES = [16, 64, 256, 1024, 4096, 16384, 65536]

# (metric, label, unit, scale, higher_is_better)
ROWS = [
    ("stream_Bps", "stream throughput", "MB/s", 1e-6, True),
    ("stream_msgps", "stream messages", "k msg/s", 1e-3, True),
    ("send_ns", "one-way send", "us", 1e-3, False),
    ("rtt_p50_ns", "ping-pong median", "us", 1e-3, False),
    ("rtt_p99_ns", "ping-pong p99", "us", 1e-3, False),
    # How the two sides of a stream took turns (no better or worse: the
    # explanation of the stream rows).
    ("stream_waits_ppm", "sender waits", "/1000 msg", 1e-3, None),
    ("stream_notifies_ppm", "receiver notifies", "/1000 msg", 1e-3, None),
    ("stream_sleeps_ppm", "receiver sleeps", "/1000 msg", 1e-3, None),
]


def report_args(p, scripts, out, files):
    """The options every benchmark report takes: a dom0 image whose
    scripts are dom0/SCRIPTS, the expect file there, where the FILES go."""
    p.add_argument("--vmlinux", default=multi.DEFAULT_VMLINUX)
    p.add_argument("--initrd", help=f"dom0 initramfs with dom0/{scripts} (required to boot)")
    p.add_argument("--dom0-cmdline", default=multi.DEFAULT_DOM0_CMDLINE)
    p.add_argument("--expect", default=os.path.join(ROOT, f"dom0/{scripts}/expect"))
    p.add_argument("--memory", default="2048", help="QEMU -m (MiB)")
    p.add_argument("--out", default=os.path.join(ROOT, out), help=f"where {files} go")
    p.add_argument("--from-serial", metavar="FILE",
                   help="no boot: make the report from a saved serial log")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    report_args(p, "bench", "build/results/bench", "bench.txt, bench.csv and bench.svg")
    p.add_argument("--icount", metavar="SHIFT",
                   help="run QEMU with -icount shift=SHIFT,sleep=off: guest time counts "
                        "instructions (2^SHIFT ns each), not host seconds; one host "
                        "thread for both vCPUs")
    qemu.add_common_args(
        p, name="bench", timeout=1800.0,
        xen_cmdline=qemu.xen_cmdline("512M") + " argo=1,mac-permissive=1",
        echo_help="show result, marker, dom0 and domU lines as they arrive")
    return p.parse_args()


# Xen's banner: "(XEN) Xen version 4.20.4 (root@...)".
XEN_VERSION_RE = re.compile(r"\(XEN\) Xen version (\S+)")


class Collector:
    """The figures, and a one-line progress display."""

    def __init__(self, tty, quiet=False):
        self.samples = {}  # (metric, transport, size) -> [values]
        self.tty = tty
        self.quiet = quiet
        self.plan = None
        self.icount = None  # the shift, from QEMU's command line in the log
        self.xen = "Xen"  # "Xen 4.20.4", from its banner
        self.last = ""

    def feed(self, line, now):
        if self.icount is None and line.startswith("# ") and "-icount" in line:
            m = ICOUNT_RE.search(line)
            self.icount = m.group(1) if m else "?"
        if self.xen == "Xen":
            m = XEN_VERSION_RE.search(line)
            if m:
                self.xen = f"Xen {m.group(1)}"
        for part in multi.DOMU_START_RE.split(line):
            m = FIGURE_RE.search(part)
            if m:
                key = (m.group("metric"), m.group("transport"), int(m.group("size")))
                self.samples.setdefault(key, []).append(int(m.group("value")))
                continue
            m = PLAN_RE.search(part)
            if m:
                self.plan = m.group("what")
                self.show(f"bench: {self.plan}", now, newline=True)
                continue
            m = PROGRESS_RE.search(part)
            if m:
                self.show(f"bench: {m.group('what')}", now)

    def show(self, text, now, newline=False):
        if self.quiet:
            return
        text = f"[{now:6.1f} s] {text}"
        if self.tty and not newline:
            sys.stdout.write("\r" + text.ljust(len(self.last)))
            sys.stdout.flush()
            self.last = text
        else:
            if self.tty and self.last:
                sys.stdout.write("\n")
                self.last = ""
            print(text, flush=True)

    def done(self):
        if self.tty and self.last:
            sys.stdout.write("\n")
            self.last = ""


def stats(values):
    """(median, first quartile, third quartile, min, max), or None."""
    if not values:
        return None
    v = sorted(values)
    if len(v) >= 2:
        q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
    else:
        q1 = q3 = v[0]
    return statistics.median(v), q1, q3, v[0], v[-1]


def spread(st):
    """Half the interquartile range, in % of the median."""
    med, q1, q3 = st[:3]
    return 0.0 if med == 0 else (q3 - q1) / 2 / med * 100


def fmt(st, scale):
    if st is None:
        return "-"
    v = st[0] * scale
    digits = 0 if v >= 100 else 1 if v >= 10 else 2
    return f"{v:.{digits}f} ±{spread(st):.0f}%"


def speedup(v, a, higher):
    """How many times better V4V is than Argo (>1: V4V faster); None where
    there is no better (``higher`` None)."""
    if higher is None or v is None or a is None or v[0] == 0 or a[0] == 0:
        return None
    return v[0] / a[0] if higher else a[0] / v[0]


def build_rows(samples):
    """One dict per table row. ``shared`` rows (the xen_version floor, the
    guest's memcpy) are one figure for both transports, in ``v4v``."""
    def get(metric, transport, size):
        return stats(samples.get((metric, transport, size), []))

    def row(metric, label, unit, size, scale, higher, v4v, argo, shared=False):
        return dict(metric=metric, label=label, unit=unit, size=size, scale=scale,
                    higher=higher, v4v=v4v, argo=argo, shared=shared)
    rows = [
        row("null_op_ns", "null op", "ns", 0, 1.0, False,
            get("null_ns", "v4v", 0), get("null_ns", "argo", 0)),
        row("notify_ns", "notify, no waiters", "ns", 0, 1.0, False,
            get("notify_ns", "v4v", 0), get("notify_ns", "argo", 0)),
        row("xen_version_ns", "xen_version", "ns", 0, 1.0, False,
            get("null_ns", "xen", 0), None, shared=True),
    ]
    for size in SIZES:
        rows.append(row("memcpy_Bps", "guest memcpy", "MB/s", size, 1e-6, True,
                        get("memcpy_Bps", "guest", size), None, shared=True))
    for metric, label, unit, scale, higher in ROWS:
        for size in SIZES:
            rows.append(row(metric, label, unit, size, scale, higher,
                            get(metric, "v4v", size), get(metric, "argo", size)))
    return rows


def size_name(size):
    if size == 0:
        return ""
    return f"{size // 1024} KiB" if size >= 1024 else f"{size} B"


def table(rows, samples, reps):
    out = [f"{'figure':<30} {'size':>7} {'V4V':>15} {'Argo':>15} {'V4V/Argo':>9}",
           "-" * 80]
    last = None
    for r in rows:
        if last is not None and r["metric"] != last:
            out.append("")
        last = r["metric"]
        label = f"{r['label']} ({r['unit']})"
        left = f"{label:<30} {size_name(r['size']):>7} {fmt(r['v4v'], r['scale']):>15}"
        if r["shared"]:
            out.append(f"{left} {'(same for both)':>15}")
            continue
        sp = speedup(r["v4v"], r["argo"], r["higher"])
        out.append(f"{left} {fmt(r['argo'], r['scale']):>15} "
                   f"{(f'{sp:.2f}x' if sp else '-'):>9}")
    out.append("")
    out.append("V4V/Argo: how many times better V4V is (throughput over throughput, "
               "Argo's time over V4V's);")
    out.append("above 1 V4V is ahead. Each figure: the median of "
               f"{reps} repetitions, ±half their interquartile range in % of it.")
    # The copy limit: bytes per second of one-way sends and of the stream
    # against the guest's own memcpy of the same size.
    for size in (16384, 65536):
        mc = stats(samples.get(("memcpy_Bps", "guest", size), []))
        if not mc:
            continue
        parts = []
        for t, name in (("v4v", "V4V"), ("argo", "Argo")):
            snd = stats(samples.get(("send_ns", t, size), []))
            st = stats(samples.get(("stream_Bps", t, size), []))
            if snd and st:
                one = size / (snd[0] * 1e-9)
                parts.append(f"{name} one-way {one / mc[0] * 100:.0f}%, "
                             f"stream {st[0] / mc[0] * 100:.0f}%")
        out.append(f"Copy limit at {size_name(size)} (guest memcpy {mc[0] * 1e-6:.0f} MB/s): "
                   + "; ".join(parts))
    return "\n".join(out)


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "unit", "size", "v4v_median", "v4v_q1", "v4v_q3", "v4v_min",
                    "v4v_max", "argo_median", "argo_q1", "argo_q3", "argo_min", "argo_max",
                    "v4v_over_argo"])
        for r in rows:
            def cols(st):
                return [""] * 5 if st is None else [f"{x * r['scale']:.4g}" for x in st]
            sp = speedup(r["v4v"], r["argo"], r["higher"])
            w.writerow([r["metric"], r["unit"].replace(" ", "_"), r["size"]] + cols(r["v4v"])
                       + cols(r["argo"]) + [f"{sp:.3f}" if sp else ""])


def write_svg(path, samples, title):
    """Throughput (MB/s, log) against message size (log2), hand-drawn."""
    series = [
        ("V4V stream", "#1f77b4", "", lambda s: stats(samples.get(("stream_Bps", "v4v", s), []))),
        ("Argo stream", "#d62728", "", lambda s: stats(samples.get(("stream_Bps", "argo", s), []))),
        ("V4V one-way send", "#1f77b4", "6,4", lambda s: _send_bps(samples, "v4v", s)),
        ("Argo one-way send", "#d62728", "6,4", lambda s: _send_bps(samples, "argo", s)),
        ("guest memcpy", "#555555", "2,3", lambda s: stats(samples.get(("memcpy_Bps", "guest", s), []))),
    ]
    pts = {}
    for name, _, _, f in series:
        pts[name] = [(s, st) for s in SIZES if (st := f(s))]
    values = [st[i] / 1e6 for p in pts.values() for _, st in p for i in (1, 2)]
    if not values:
        return
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values)))
    W, H, L, R, T, B = 760, 460, 70, 200, 40, 50
    pw, ph = W - L - R, H - T - B

    def x(size):
        return L + (math.log2(size) - 4) / (16 - 4) * pw

    def y(mbps):
        return T + ph - (math.log10(max(mbps, lo)) - math.log10(lo)) / \
            (math.log10(hi) - math.log10(lo)) * ph
    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'font-family="sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L}" y="22" font-size="14">{title}</text>']
    dec = lo
    while dec <= hi * 1.0001:
        o.append(f'<line x1="{L}" x2="{L + pw}" y1="{y(dec):.1f}" y2="{y(dec):.1f}" '
                 f'stroke="#ddd"/>')
        o.append(f'<text x="{L - 6}" y="{y(dec) + 4:.1f}" text-anchor="end">{dec:g}</text>')
        dec *= 10
    for s in SIZES:
        o.append(f'<line x1="{x(s):.1f}" x2="{x(s):.1f}" y1="{T}" y2="{T + ph}" stroke="#eee"/>')
        o.append(f'<text x="{x(s):.1f}" y="{T + ph + 16}" text-anchor="middle">'
                 f'{size_name(s)}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 10}" text-anchor="middle">message size</text>')
    o.append(f'<text x="16" y="{T + ph / 2}" transform="rotate(-90 16 {T + ph / 2})" '
             f'text-anchor="middle">MB/s (median; bars: interquartile range)</text>')
    for i, (name, color, dash, _) in enumerate(series):
        p = pts[name]
        if not p:
            continue
        d = " ".join(f"{x(s):.1f},{y(st[0] / 1e6):.1f}" for s, st in p)
        extra = f' stroke-dasharray="{dash}"' if dash else ""
        o.append(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"{extra}/>')
        for s, st in p:
            o.append(f'<line x1="{x(s):.1f}" x2="{x(s):.1f}" y1="{y(st[1] / 1e6):.1f}" '
                     f'y2="{y(st[2] / 1e6):.1f}" stroke="{color}"/>')
            o.append(f'<circle cx="{x(s):.1f}" cy="{y(st[0] / 1e6):.1f}" r="2.5" fill="{color}"/>')
        ly = T + 10 + i * 20
        o.append(f'<line x1="{L + pw + 12}" x2="{L + pw + 42}" y1="{ly}" y2="{ly}" '
                 f'stroke="{color}" stroke-width="2"{extra}/>')
        o.append(f'<text x="{L + pw + 48}" y="{ly + 4}">{name}</text>')
    o.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(o) + "\n")


def _send_bps(samples, t, size):
    st = stats(samples.get(("send_ns", t, size), []))
    if not st:
        return None
    # Bytes per second of back-to-back sends: the slowest send is the least.
    med, q1, q3, lo, hi = (size / (x * 1e-9) for x in st)
    return med, q3, q1, hi, lo


def host_line():
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        q = subprocess.run(["qemu-system-x86_64", "--version"], capture_output=True,
                           text=True).stdout.splitlines()[0]
    except (OSError, IndexError):
        q = "qemu-system-x86_64 (version unknown)"
    return (f"host: {cpu}, {os.cpu_count()} cores, {platform.system()} "
            f"{platform.release()}; {q}, TCG, 2 vCPUs")


def boot_or_replay(args, run, col, feed, prog, what, extra_qemu=()):
    """Boots (or, with --from-serial, reads a saved log), giving every line
    to `run` (result lines) and to `feed` (figures), and judges the boot
    against args.expect. Returns (problems, seconds the boot took)."""
    expected = multi.read_expect(args.expect)
    problems = []
    if args.from_serial:
        with open(args.from_serial, errors="replace") as f:
            for line in f:
                line = qemu.clean(line.rstrip("\n"))
                run.feed(line, 0.0)
                feed(line, 0.0)
        elapsed = 0.0
        problems += run.problems("(a saved log)", False, 0)
    else:
        if not args.initrd:
            print(f"{prog}: --initrd is required (or --from-serial)", file=sys.stderr)
            sys.exit(2)
        if not qemu.check_inputs(prog, ((args.xen, "Xen image"),
                                        (args.vmlinux, "dom0 kernel"),
                                        (args.initrd, "dom0 initramfs"))):
            sys.exit(1)
        serial = qemu.serial_path(args.results, args.name)
        print(f"{prog}: booting {what} under QEMU; serial log {serial}", flush=True)
        rc, elapsed, timed_out, _ = multi.boot(args, run, serial, extra_qemu, feed)
        col.done()
        problems += run.problems(rc, timed_out, args.timeout)
    for name in expected:
        reps = run.reports.get(name, [])
        if not reps:
            problems.append(f"{name}: no result line")
        for src, ok, why in reps:
            if not ok:
                problems.append(f"{name} from {src}: {why}")
    for name, reps in run.reports.items():
        if name not in expected:
            problems += [f"{name} from {src}: {why}" for src, ok, why in reps if not ok]
    if not col.samples:
        problems.append("no figures (no V4VB lines)")
    return problems, elapsed


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    run = multi.Run()
    col = Collector(sys.stdout.isatty(), quiet=bool(args.from_serial))
    col.icount = args.icount
    t0 = time.monotonic()
    icount = ["-icount", f"shift={args.icount},sleep=off"] if args.icount is not None else []
    problems, elapsed = boot_or_replay(args, run, col, col.feed, "bench",
                                       "Xen (V4V and Argo)", icount)
    if problems:
        for p in problems:
            print(f"bench: FAIL {p}")
        return 1

    reps = max(len(v) for v in col.samples.values())
    rows = build_rows(col.samples)
    text = table(rows, col.samples, reps)
    host = host_line()
    if col.icount is not None:
        clock = (f"clock: instructions executed (QEMU -icount shift={col.icount}: "
                 f"{2 ** int(col.icount)} ns each, both vCPUs on one host thread)")
    else:
        clock = "clock: host time (multi-threaded TCG, one host thread per vCPU)"
    header = (f"V4V against Argo, one boot of {col.xen} with both "
              f"({col.plan or 'plan unknown'})\n{host}\n{clock}\n")
    print()
    print(header)
    print(text)
    with open(os.path.join(args.out, "bench.txt"), "w") as f:
        f.write(header + "\n" + text + "\n")
    write_csv(os.path.join(args.out, "bench.csv"), rows)
    clock_word = "instruction clock" if col.icount is not None else "host clock"
    write_svg(os.path.join(args.out, "bench.svg"), col.samples,
              f"V4V vs Argo: throughput against message size ({col.xen}, QEMU TCG, "
              f"{clock_word})")
    print(f"\nbench: table, CSV and plot in {os.path.relpath(args.out, ROOT)}/"
          f"(bench.txt, bench.csv, bench.svg); boot took {elapsed:.0f} s, "
          f"report {time.monotonic() - t0 - elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
