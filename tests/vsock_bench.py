#!/usr/bin/env python3
"""`make bench-vsock`: AF_VSOCK over V4V against TCP over Xen's PV network.

Boots Xen and the Linux dom0, whose script (dom0/vsock-bench) loads the
network backend and a bridge and starts two Linux PV domUs with a vif each
and the vsock-v4v module. The client domU runs ``vperf``
(vsock-v4v/tools/vperf.c) against the server over both transports, in
turn, and prints one line per figure and repetition, which dom0 puts on
the serial line at the end::

    [client] V4VB METRIC TRANSPORT SIZE REP VALUE

(TRANSPORT ``vsock`` or ``tcp``). This script judges the run like a
multi-domain test (dom0/vsock-bench/expect), takes the median of the
repetitions of every figure with its spread, and writes in --out:

- ``bench.txt``: the table printed on the terminal (vsock, TCP, ratio);
- ``bench.csv``: one row per metric and size, medians, quartiles, min and
  max of both, and the ratio (the client domain's floor, syscall_ns and
  pipe_rtt_ns, in the vsock columns);

and the serial log as ``<results>/<name>.serial``. ``--from-serial LOG``
makes the report from a saved log without booting.
"""

import argparse
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402
import multi  # noqa: E402
import qemu  # noqa: E402
from qemu import ROOT  # noqa: E402

SIZES = [64, 256, 1024, 4096, 16384, 65536]

# (metric, label, unit, scale, higher_is_better)
ROWS = [
    ("stream_Bps", "throughput", "MB/s", 1e-6, True),
    ("stream_wps", "writes", "k/s", 1e-3, True),
    ("rtt_p50_ns", "round trip, median", "us", 1e-3, False),
    ("rtt_p99_ns", "round trip, p99", "us", 1e-3, False),
]
CONNECT = ("connect_ns", "connect", "us", 1e-3, False)
# The client domain's own floor, no transport: (metric, label, unit, size, scale).
LOCAL = [
    ("syscall_ns", "domU system call", "ns", 0, 1.0),
    ("pipe_rtt_ns", "domU pipe round trip", "us", 64, 1e-3),
]


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    bench.report_args(p, "vsock-bench", "build/results/bench/vsock", "bench.txt and bench.csv")
    qemu.add_common_args(
        p, name="bench-vsock", timeout=1200.0, xen_cmdline=qemu.xen_cmdline("512M"),
        echo_help="show result, marker, dom0 and domU lines as they arrive")
    return p.parse_args()


def ratio(v, t, higher):
    """How many times better vsock is than TCP (>1: vsock ahead)."""
    if v is None or t is None or v[0] == 0 or t[0] == 0:
        return None
    return v[0] / t[0] if higher else t[0] / v[0]


def build_rows(samples):
    def get(metric, transport, size):
        return bench.stats(samples.get((metric, transport, size), []))
    sizes = sorted({k[2] for k in samples if k[2]}) or SIZES
    rows = []
    for metric, label, unit, scale, higher in ROWS:
        for size in sizes:
            rows.append(dict(metric=metric, label=label, unit=unit, size=size, scale=scale,
                             higher=higher, vsock=get(metric, "vsock", size),
                             tcp=get(metric, "tcp", size)))
    metric, label, unit, scale, higher = CONNECT
    rows.append(dict(metric=metric, label=label, unit=unit, size=0, scale=scale, higher=higher,
                     vsock=get(metric, "vsock", 0), tcp=get(metric, "tcp", 0)))
    for metric, label, unit, size, scale in LOCAL:
        rows.append(dict(metric=metric, label=label, unit=unit, size=size, scale=scale,
                         higher=None, vsock=get(metric, "local", size), tcp=None, local=True))
    return rows


def table(rows, reps):
    out = [f"{'figure':<28} {'size':>7} {'AF_VSOCK/V4V':>15} {'TCP/netfront':>15} "
           f"{'vsock/TCP':>10}", "-" * 79]
    last = None
    for r in rows:
        group = "local" if r.get("local") else r["metric"]
        if last is not None and group != last:
            out.append("")
        last = group
        if r.get("local"):
            out.append(f"{r['label'] + ' (' + r['unit'] + ')':<28} "
                       f"{bench.size_name(r['size']):>7} {bench.fmt(r['vsock'], r['scale']):>15} "
                       f"{'(no transport)':>15}")
            continue
        sp = ratio(r["vsock"], r["tcp"], r["higher"])
        out.append(f"{r['label'] + ' (' + r['unit'] + ')':<28} {bench.size_name(r['size']):>7} "
                   f"{bench.fmt(r['vsock'], r['scale']):>15} {bench.fmt(r['tcp'], r['scale']):>15} "
                   f"{(f'{sp:.2f}x' if sp else '-'):>10}")
    out.append("")
    out.append("vsock/TCP: how many times better AF_VSOCK over V4V is (throughput over "
               "throughput, TCP's time over vsock's);")
    out.append("above 1 vsock is ahead. Each figure: the median of "
               f"{reps} repetitions, ±half their interquartile range in % of it.")
    out.append("throughput: write() of exactly SIZE bytes for a fixed time, bytes the server "
               "read per second until it had them all;")
    out.append("writes: write() calls per second of the same runs; round trip: SIZE bytes "
               "there and back (TCP_NODELAY);")
    out.append("connect: connect() of every run of a repetition, median. The domU rows are the "
               "client domain's floor:")
    out.append("one getppid(), and 64 bytes to a child process and back through two pipes.")
    return "\n".join(out)


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["metric", "unit", "size"]
                   + [f"{t}_{c}" for t in ("vsock", "tcp")
                      for c in ("median", "q1", "q3", "min", "max")]
                   + ["vsock_over_tcp"])
        for r in rows:
            def cols(st):
                return [""] * 5 if st is None else [f"{x * r['scale']:.4g}" for x in st]
            sp = None if r.get("local") else ratio(r["vsock"], r["tcp"], r["higher"])
            w.writerow([r["metric"], r["unit"].replace(" ", "_"), r["size"]]
                       + cols(r["vsock"]) + cols(r["tcp"]) + [f"{sp:.3f}" if sp else ""])


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    run = multi.Run()
    col = bench.Collector(sys.stdout.isatty(), quiet=bool(args.from_serial))

    def feed(line, now):
        # dom0 passes the client's progress on as it goes; the same lines
        # come again in the dump of its log at the end ("[client] ...").
        if not (line.startswith("[") and "V4VD progress" in line):
            col.feed(line, now)
    problems, elapsed = bench.boot_or_replay(
        args, run, col, feed, "vsock_bench", "Xen, dom0 and two Linux domUs")
    if problems:
        for p in problems:
            print(f"vsock_bench: FAIL {p}")
        return 1

    reps = max(len(v) for v in col.samples.values())
    rows = build_rows(col.samples)
    text = table(rows, reps)
    header = ("AF_VSOCK over V4V against TCP over Xen's PV network (netfront, netback, "
              "a dom0 bridge), two Linux PV domUs, one boot\n"
              f"({col.plan or 'plan unknown'})\n{bench.host_line()}\n"
              "clock: CLOCK_MONOTONIC in the client domU (host time, multi-threaded TCG)\n")
    print()
    print(header)
    print(text)
    with open(os.path.join(args.out, "bench.txt"), "w") as f:
        f.write(header + "\n" + text + "\n")
    write_csv(os.path.join(args.out, "bench.csv"), rows)
    print(f"\nvsock_bench: table and CSV in {os.path.relpath(args.out, ROOT)}/"
          f"(bench.txt, bench.csv); boot took {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
