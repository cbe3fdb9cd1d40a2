"""What the QEMU boot harnesses share (tests/boot.py, tests/multi.py).

Both boot a multiboot Xen under QEMU (TCG), read Xen's serial line from
QEMU's stdout and hand each line to the harness's own judge. This module
has the parts that do not depend on what is judged:

- the Xen command line base and the QEMU command (``xen_cmdline``,
  ``qemu_cmd``);
- the patterns for a dead Xen or dom0, for Xen lines worth echoing and for
  terminal escapes (``PANIC_RE``, ``XEN_TROUBLE_RE``, ``ESCAPE_RE``,
  ``clean``);
- ``run``: QEMU with a hard watchdog and a grace period once the verdict
  is out, its output saved as the serial log (``check_inputs``,
  ``serial_path``);
- the common options (``add_common_args``) and the summary (``finish``).
"""

import os
import re
import select
import shlex
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Serial console on COM1 and every log line; dom0's memory and vCPUs are
# added by xen_cmdline().
XEN_BASE_CMDLINE = "console=com1 com1=115200,8n1 loglvl=all guest_loglvl=all"

# Xen's own words for a dead hypervisor, and for a dom0 it killed.
PANIC_RE = re.compile(r"Panic on CPU|\bFATAL\b|Dom0 crashed")

# Xen lines worth showing with the guest's when echoing.
XEN_TROUBLE_RE = re.compile(r"\*\*\*|RIP:|Hardware Dom0")

# Terminal control sequences (firmware output) are not echoed.
ESCAPE_RE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|[@-~])")


def xen_cmdline(dom0_mem, dom0_vcpus=2):
    """The default Xen command line: the base plus dom0's size, e.g. "64M"."""
    return (f"{XEN_BASE_CMDLINE} dom0_mem={dom0_mem},max:{dom0_mem} "
            f"dom0_max_vcpus={dom0_vcpus}")


def clean(line):
    """A serial line without terminal escapes and carriage returns."""
    return ESCAPE_RE.sub("", line).replace("\r", "")


def qemu_cmd(qemu, cpu, memory, xen, cmdline, modules, smp=2):
    """QEMU booting the Xen image with these multiboot modules, on ``smp``
    physical CPUs.

    Each module is a path plus its command line ("PATH ARGS"); commas in
    them are escaped, since QEMU separates modules with ','.
    """
    return [
        qemu, "-machine", "q35,accel=tcg", "-cpu", cpu, "-m", str(memory),
        "-smp", str(smp), "-nographic", "-no-reboot",
        "-kernel", xen, "-append", cmdline,
        # QEMU separates multiboot modules with ',' ("',,'" is a comma).
        "-initrd", ",".join(m.replace(",", ",,") for m in modules),
    ]


def check_inputs(prog, files):
    """False (and a word on stderr) if one of the (path, what) is missing."""
    for path, what in files:
        if not os.path.isfile(path):
            print(f"{prog}: {what} {path} not found", file=sys.stderr)
            return False
    return True


def serial_path(results, name):
    """``<results>/<name>.serial``, the results folder made if need be."""
    os.makedirs(results, exist_ok=True)
    return os.path.join(results, f"{name}.serial")


def run(cmd, serial, timeout, on_line, grace):
    """Runs QEMU and feeds its serial output to the judge.

    The file ``serial`` gets ``cmd`` as a ``# ...`` line, then every byte
    QEMU prints. QEMU runs in its own session (its process group is killed at
    the end). ``on_line(line, seconds)`` gets each line (trailing CR
    removed, escapes kept; see ``clean``) with the time since the start,
    the unfinished last line included. ``grace()`` returns None while the
    verdict is still out, else how many seconds QEMU may still run (for
    Xen to reset the machine).

    Returns ``(rc, elapsed, timed_out, exited)``: QEMU's exit status,
    seconds, whether the ``timeout`` watchdog fired before any verdict,
    and whether QEMU exited by itself (else it was killed).
    """
    with open(serial, "wb") as log:
        return _run(cmd, log, timeout, on_line, grace)


def _run(cmd, log, timeout, on_line, grace):
    log.write(("# " + shlex.join(cmd) + "\n").encode())
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    fd = proc.stdout.fileno()
    pending = b""
    deadline = t0 + timeout
    grace_deadline = None
    fired = False

    def take(raw):
        on_line(raw.decode("utf-8", "replace").rstrip("\r"), time.monotonic() - t0)

    while True:
        now = time.monotonic()
        limit = deadline if grace_deadline is None else min(deadline, grace_deadline)
        if now >= limit:
            fired = grace_deadline is None
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
            take(raw)
        if grace_deadline is None:
            seconds = grace()
            if seconds is not None:
                grace_deadline = time.monotonic() + seconds
    if pending:
        take(pending)
    # Hitting the watchdog is a failure only if the verdict never came.
    timed_out = fired and grace() is None
    try:
        # After EOF on its output QEMU is on its way out; give it a moment.
        proc.wait(timeout=0.1 if timed_out else 2)
    except subprocess.TimeoutExpired:
        pass
    exited = proc.poll() is not None
    if not exited:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return proc.returncode, time.monotonic() - t0, timed_out, exited


def add_common_args(parser, *, name, timeout, xen_cmdline, echo_help):
    """The options both harnesses take, with this harness's defaults."""
    p = parser
    p.add_argument("--xen", default=os.path.join(ROOT, "build/xen/xen/xen"),
                   help="multiboot Xen image (default build/xen/xen/xen)")
    p.add_argument("--xen-cmdline", default=xen_cmdline)
    p.add_argument("--qemu", default="qemu-system-x86_64")
    p.add_argument("--smp", type=int, default=2,
                   help="physical CPUs of the emulated machine (default 2)")
    p.add_argument("--timeout", type=float, default=timeout,
                   help=f"hard watchdog in seconds (default {timeout:.0f})")
    p.add_argument("--results", default=os.path.join(ROOT, "build/results"))
    p.add_argument("--name", default=name,
                   help="log name: <results>/<name>.serial")
    p.add_argument("--counts", help="write 'PASSED FAILED' to this file")
    p.add_argument("--echo", action="store_true", help=echo_help)
    p.add_argument("--echo-all", action="store_true",
                   help="show the whole serial output as it arrives")


def finish(counts_path, passed, failed):
    """Writes the counts file if asked, prints the summary; the exit code."""
    if counts_path:
        os.makedirs(os.path.dirname(os.path.abspath(counts_path)), exist_ok=True)
        with open(counts_path, "w") as f:
            f.write(f"{passed} {failed}\n")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
