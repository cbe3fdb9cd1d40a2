#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""disasm-check: the Rust code linked into Xen follows the hypervisor's rules.

Usage: disasm-check.py [--self-test] [--counts FILE] XEN_SYMS RUST_ARCHIVE

The Rust functions are the FUNC symbols that the archive's members define
(Rust's own, core's, alloc's, compiler_builtins'); the script finds each in
XEN_SYMS by name and disassembles it there, as linked. Checks, each counted
as one test:

  found       the archive's entry points (v4v_rs_*) are in XEN_SYMS, and at
              least one Rust function is
  fpu-simd    no SSE/AVX/MMX/x87 instruction or register: Xen does not save
              the guest's FPU state around hypercalls
  red-zone    no memory operand below %rsp: interrupts and exceptions in Xen
              push onto the current stack
  ret         no plain ret: every return goes through __x86_return_thunk
  indirect    no indirect call or jmp: only calls/jumps to
              __x86_indirect_thunk_*
  got         XEN_SYMS has no (non-empty) .got/.got.plt/.plt, and no member
              of the archive has a GOT-relative relocation
  ibt         every Rust function whose address is taken (vtables, lea, ...)
              starts with endbr64, as CET-IBT requires of indirect targets
              (found from the archive's relocations: rustc puts every
              function in its own section, so each reference has one)
  stack       the deepest chain of Rust frames (return address, pushes and
              every `sub $n,%rsp`, stack probes included, summed along direct
              calls and tail jumps between Rust functions) is at most
              STACK_CHAIN_LIMIT bytes, and no Rust function is recursive

--self-test first runs the same checks on a small image with one planted
defect of every kind (each kind must fail) and on a clean one (every kind
must pass); it counts as one more test.

--counts writes "PASSED FAILED" for the stage summary.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Xen's primary stack is 8 KiB (PRIMARY_STACK_SIZE, pages 6-7 of the
# per-CPU stack, struct cpu_info at its top; page 5 below it is a shadow
# stack or a guard page, so an overflow is a fatal page fault). The entry
# path, the shim and the C functions Rust calls (guest copies, page pinning,
# printk) need their share: the deepest chain of Rust frames gets half.
STACK_CHAIN_LIMIT = 4096
KINDS = ["found", "fpu-simd", "red-zone", "ret", "indirect", "got", "ibt", "stack"]

# Relocations that make the linker build a GOT (or PLT) entry.
GOT_RELOCS = re.compile(
    r"R_X86_64_(GOT\w*|PLTOFF64|TLSGD|TLSLD|GOTTPOFF|TLSDESC\w*|GOTPC\w*|REX_GOTPCRELX)\b")
SIMD_REG = re.compile(r"%(?:[xyz]mm\d+|mm\d|st\b|st\(\d\)|k[0-7]\b|mxcsr)")
SIMD_MNEMONIC = re.compile(
    r"^(?:f\w+|emms|femms|ldmxcsr|stmxcsr|vldmxcsr|vstmxcsr|xsave\w*|xrstor\w*|"
    r"vzeroupper|vzeroall|movnt\w+|maskmov\w+|pshufw|cvt\w+|v\w+)$")
# A negative displacement from %rsp alone (an index register makes it array
# arithmetic, e.g. buf[i - 2], not an access below the stack pointer).
RED_ZONE = re.compile(r"(?<![\w)])-(?:0x[0-9a-f]+|\d+)\(%rsp\)")
SUB_RSP = re.compile(r"^sub\s+\$(0x[0-9a-f]+|\d+),%rsp$")
BRANCH = re.compile(r"^(?:call|jmp|j[a-z]{1,3})q?$")
PREFIXES = {"notrack", "bnd", "lock", "rep", "repz", "repe", "repnz", "repne",
            "data16", "addr32", "cs", "ds", "ss", "es", "fs", "gs", "rex", "rex.W"}


def run(*cmd):
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def split_insn(text):
    """(mnemonic, operands) of an objdump instruction: comment, symbol
    annotations and prefixes dropped."""
    text = re.sub(r"<[^>]*>", "", text.split("#")[0])
    words = text.split()
    while words and words[0] in PREFIXES:
        words.pop(0)
    if not words:
        return "", ""
    return words[0], " ".join(words[1:])


class Member:
    """One object file of the archive: its functions and relocations."""

    def __init__(self, path):
        self.path = path
        self.sections = {}  # index -> name
        for line in run("readelf", "-SW", path).splitlines():
            m = re.match(r"\s*\[\s*(\d+)\]\s+(\S+)", line)
            if m:
                self.sections[int(m.group(1))] = m.group(2)
        self.funcs = {}      # name -> (section name, offset, size)
        self.by_place = {}   # (section name, offset) -> name
        self.undefined = set()
        for line in run("readelf", "-sW", path).splitlines():
            f = line.split()
            if len(f) < 8 or not f[0].endswith(":") or not f[0][:-1].isdigit():
                continue
            if f[6] == "UND":
                self.undefined.add(f[7])
                continue
            if f[3] != "FUNC" or not f[6].isdigit():
                continue
            sec = self.sections.get(int(f[6]), "?")
            self.funcs[f[7]] = (sec, int(f[1], 16), int(f[2], 0))
            self.by_place[(sec, int(f[1], 16))] = f[7]

    def resolve(self, target):
        """Function named by a relocation target ("sym+0x10", ".text.x"), or None."""
        m = re.match(r"^([^+-]+)(?:([+-])0x([0-9a-f]+))?$", target)
        if not m:
            return None
        name, sign, off = m.group(1), m.group(2), int(m.group(3) or "0", 16)
        if sign == "-":
            off = -off
        if name in self.funcs and off in (0, -4):
            return name
        if name in self.sections.values():
            # A section symbol: the function at that offset (PC32 relocations
            # of a lea carry the -4 of the displacement).
            for o in (off, off + 4):
                if (name, o) in self.by_place:
                    return self.by_place[(name, o)]
        return None

    def relocations(self):
        """(kind, type, target): kind "branch" for direct call/jmp/jcc
        targets, "address" for everything else (address taken)."""
        out = []
        # Text: objdump -dr prints each relocation on its instruction's line.
        mnemonic = ""
        for line in run("objdump", "-dr", "-w", "--no-show-raw-insn", self.path).splitlines():
            m = re.match(r"^\s*[0-9a-f]+:\t(.*)$", line)
            if not m:
                continue
            insn, _, rest = m.group(1).partition("\t")
            if not insn.startswith("R_X86_64"):
                mnemonic, _ = split_insn(insn)
            else:
                rest = m.group(1)
            for rtype, target in re.findall(r"(R_X86_64_\w+)\s+(\S+)", rest):
                kind = "branch" if BRANCH.match(mnemonic) else "address"
                out.append((kind, rtype, target))
        # Data: every relocation takes an address.
        section = None
        for line in run("objdump", "-r", "-w", self.path).splitlines():
            h = re.match(r"^RELOCATION RECORDS FOR \[(.*)\]:", line)
            if h:
                section = h.group(1)
                continue
            f = line.split()
            if section and not section.startswith(".text") and len(f) == 3 \
                    and f[1].startswith("R_X86_64"):
                out.append(("address", f[1], f[2]))
        return out


class Checker:
    def __init__(self, image, archive, quiet=False):
        self.image = image
        self.archive = archive
        self.quiet = quiet
        self.failures = {k: [] for k in KINDS}
        self.checked = {k: 0 for k in KINDS}
        self.stack_report = ""

    def log(self, msg):
        if not self.quiet:
            print(msg)

    def fail(self, kind, msg):
        self.failures[kind].append(msg)

    def image_symbols(self):
        syms = {}
        for line in run("readelf", "-sW", self.image).splitlines():
            f = line.split()
            if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND":
                syms.setdefault(f[7], []).append((int(f[1], 16), int(f[2], 0)))
        return syms

    def disassemble(self, funcs):
        """{name: [(addr, mnemonic, operands, text)]} for (name, addr, size)."""
        result = {name: [] for name, _, _ in funcs}
        spans = sorted((a, a + s, n) for n, a, s in funcs if s > 0)
        # Disassemble clusters of nearby functions in one objdump run each.
        clusters, cur = [], []
        for span in spans:
            if cur and span[0] - cur[-1][1] > 0x10000:
                clusters.append(cur)
                cur = []
            cur.append(span)
        if cur:
            clusters.append(cur)
        for cl in clusters:
            lo, hi = cl[0][0], max(s[1] for s in cl)
            text = run("objdump", "-d", "-w", "--no-show-raw-insn",
                       "--start-address=0x%x" % lo, "--stop-address=0x%x" % hi, self.image)
            insns = []
            for line in text.splitlines():
                m = re.match(r"^\s*([0-9a-f]+):\t(.*)$", line)
                if m:
                    insns.append((int(m.group(1), 16), m.group(2).strip()))
            for start, end, name in cl:
                for addr, t in insns:
                    if start <= addr < end:
                        mn, ops = split_insn(t)
                        result[name].append((addr, mn, ops, t))
        return result

    def check(self):
        workdir = tempfile.mkdtemp(prefix="disasm-check.")
        try:
            subprocess.run(["ar", "x", os.path.abspath(self.archive)], cwd=workdir, check=True)
            members = [Member(os.path.join(workdir, f)) for f in sorted(os.listdir(workdir))]
            self._check(members)
        finally:
            shutil.rmtree(workdir)

    def _check(self, members):
        isyms = self.image_symbols()
        # A member is linked in when one of its Rust-only names (mangled
        # `_R...` or the v4v_rs_* entry points) is in the image; only linked
        # members count, and only image symbols of the member's size, so
        # that Xen's own memcpy is not taken for compiler_builtins' one.
        rust = {}
        linked = 0
        for mem in members:
            if not any(n.startswith(("_R", "v4v_rs_")) and n in isyms for n in mem.funcs):
                continue
            linked += 1
            for name, (_, _, size) in mem.funcs.items():
                locs = [(a, sz) for a, sz in isyms.get(name, []) if sz == size]
                if locs:
                    rust[name] = locs
        funcs = [(n, a, s) for n, locs in rust.items() for a, s in locs]
        dis = self.disassemble(funcs)
        n_insns = sum(len(v) for v in dis.values())
        self.log("disasm-check: %s: %d Rust functions from %d of %d archive members, "
                 "%d instructions" % (self.image, len(funcs), linked, len(members), n_insns))

        # found
        self.checked["found"] = 1
        entries = {n for m in members for n in m.funcs if n.startswith("v4v_rs_")}
        missing = sorted(e for e in entries if e not in isyms)
        if not funcs:
            self.fail("found", "no function of the archive is in the image")
        for e in missing:
            self.fail("found", "entry point %s missing from the image" % e)

        frames = {}
        calls = {}
        for name, insns in dis.items():
            frame = 8  # the return address
            callees = set()
            for addr, mn, ops, text in insns:
                where = "%x <%s>: %s" % (addr, name, text)
                self.checked["fpu-simd"] += 1
                if SIMD_REG.search(ops) or SIMD_MNEMONIC.match(mn):
                    self.fail("fpu-simd", where)
                self.checked["red-zone"] += 1
                if RED_ZONE.search(ops):
                    self.fail("red-zone", where)
                if mn.startswith(("ret", "lret", "iret")):
                    self.checked["ret"] += 1
                    self.fail("ret", where)
                elif mn.startswith("jmp") and "<__x86_return_thunk>" in text:
                    self.checked["ret"] += 1
                if mn.startswith(("call", "jmp")):
                    if ops.startswith("*"):
                        self.checked["indirect"] += 1
                        self.fail("indirect", where)
                    elif "<__x86_indirect_thunk_" in text:
                        self.checked["indirect"] += 1
                    else:
                        t = re.search(r"<([^>+]+)>", text)
                        if t and t.group(1) in dis and t.group(1) != name:
                            callees.add(t.group(1))
                        elif t and t.group(1) == name and mn.startswith("call"):
                            callees.add(name)
                if mn.startswith("push"):
                    frame += 8
                m = SUB_RSP.match("%s %s" % (mn, ops))
                if m:
                    frame += int(m.group(1), 0)
            frames[name] = frame
            calls[name] = callees

        # Deepest chain of frames through direct calls (memoised DFS).
        depth, path = {}, {}
        on_stack = set()

        def deepest(fn):
            if fn in depth:
                return depth[fn]
            if fn in on_stack:
                # A cycle through the panic handler is a panic while
                # panicking, which the handler cannot do (it formats into a
                # fixed buffer and ends in Xen's panic()); any other cycle is
                # recursion with a stack depth no one can bound.
                if not any("rust_begin_unwind" in f for f in on_stack):
                    self.fail("stack", "%s is recursive" % fn)
                return 0
            on_stack.add(fn)
            best, via = 0, None
            for c in calls[fn]:
                d = deepest(c)
                if d > best:
                    best, via = d, c
            on_stack.discard(fn)
            depth[fn] = frames[fn] + best
            path[fn] = via
            return depth[fn]

        for fn in sorted(dis):
            self.checked["stack"] += 1
            deepest(fn)
        roots = sorted(dis, key=lambda f: -depth.get(f, 0))
        if roots:
            top = roots[0]
            chain, fn = [], top
            while fn:
                chain.append("%s (%d)" % (fn, frames[fn]))
                fn = path.get(fn)
            self.stack_report = "deepest Rust stack %d bytes: %s" % (depth[top], " -> ".join(chain))
            for fn in roots:
                if depth[fn] <= STACK_CHAIN_LIMIT:
                    break
                if fn.startswith("v4v_rs_") or depth[fn] == depth[top]:
                    self.fail("stack", "%s needs %d bytes of stack (limit %d)"
                              % (fn, depth[fn], STACK_CHAIN_LIMIT))
        else:
            self.stack_report = "no Rust code"

        # got: the image's sections and the archive's relocations
        for line in run("objdump", "-h", "-w", self.image).splitlines():
            f = line.split()
            if len(f) > 2 and f[1] in (".got", ".got.plt", ".plt", ".plt.got"):
                self.checked["got"] += 1
                if int(f[2], 16) != 0:
                    self.fail("got", "%s is %d bytes in %s" % (f[1], int(f[2], 16), self.image))
        taken = set()
        for mem in members:
            for kind, rtype, target in mem.relocations():
                self.checked["got"] += 1
                if GOT_RELOCS.match(rtype):
                    self.fail("got", "%s: %s against %s" % (os.path.basename(mem.path), rtype, target))
                if kind == "address":
                    fn = mem.resolve(target)
                    if fn:
                        taken.add(fn)

        # ibt: address-taken Rust functions begin with endbr64
        for fn in sorted(taken):
            if fn not in dis:
                continue  # not linked in
            self.checked["ibt"] += 1
            insns = dis[fn]
            if not insns or insns[0][1] != "endbr64":
                first = insns[0][3] if insns else "(empty)"
                self.fail("ibt", "%s: address taken, starts with %s" % (fn, first))

        self.log("disasm-check: %d address-taken functions; %s" % (len(taken), self.stack_report))

    def report(self):
        passed = failed = 0
        for k in KINDS:
            bad = self.failures[k]
            status = "FAIL" if bad else "ok"
            self.log("  %-9s %-4s %6d checked, %d bad" % (k, status, self.checked[k], len(bad)))
            for msg in bad[:10]:
                self.log("      %s" % msg)
            if len(bad) > 10:
                self.log("      ... %d more" % (len(bad) - 10))
            if bad:
                failed += 1
            else:
                passed += 1
        return passed, failed


BAD_ASM = r"""
    .text
    .globl v4v_rs_op
    .type v4v_rs_op,@function
v4v_rs_op:
    endbr64
    movaps %xmm0, (%rdi)
    fld1
    mov %rax, -8(%rsp)
    call *%rax
    jmp *(%rdi)
    lea taken(%rip), %rax
    sub $0x1000, %rsp
    movq $0, (%rsp)
    sub $0x1000, %rsp
    mov foo@GOTPCREL(%rip), %rax
    ret
    .size v4v_rs_op, .-v4v_rs_op
    .section .text.taken,"ax",@progbits
    .type taken,@function
taken:
    jmp __x86_return_thunk
    .size taken, .-taken
"""

GOOD_ASM = r"""
    .text
    .globl v4v_rs_op
    .type v4v_rs_op,@function
v4v_rs_op:
    endbr64
    push %rbx
    sub $0x40, %rsp
    mov %rax, 8(%rsp)
    lea taken(%rip), %rax
    call __x86_indirect_thunk_rax
    add $0x40, %rsp
    pop %rbx
    jmp __x86_return_thunk
    .size v4v_rs_op, .-v4v_rs_op
    .section .text.taken,"ax",@progbits
    .type taken,@function
taken:
    endbr64
    jmp __x86_return_thunk
    .size taken, .-taken
    .section .data.rel.ro,"aw"
    .quad taken
"""

STUB_ASM = r"""
    .text
    .globl __x86_return_thunk, __x86_indirect_thunk_rax, _start
_start:
__x86_return_thunk:
    ret
__x86_indirect_thunk_rax:
    jmp *%rax
    .data
    .globl foo
foo: .quad 0
"""


def self_test():
    """Each kind must catch its planted defect; the clean image must pass."""
    ok = True
    tmp = tempfile.mkdtemp(prefix="disasm-selftest.")
    try:
        def build(name, asm):
            src = os.path.join(tmp, name + ".s")
            with open(src, "w") as f:
                f.write(asm)
            run("as", "--64", "-o", os.path.join(tmp, name + ".o"), src)
        build("stub", STUB_ASM)
        for name, asm, expect_fail in (("bad", BAD_ASM, True), ("good", GOOD_ASM, False)):
            build(name, asm)
            lib = os.path.join(tmp, "lib%s.a" % name)
            run("ar", "rcs", lib, os.path.join(tmp, name + ".o"))
            img = os.path.join(tmp, name + ".elf")
            # --no-relax keeps the GOT load a GOT load.
            run("ld", "-o", img, "--no-relax", "-e", "_start",
                os.path.join(tmp, name + ".o"), os.path.join(tmp, "stub.o"))
            c = Checker(img, lib, quiet=True)
            c.check()
            for k in KINDS:
                if k == "found":
                    caught = bool(c.failures[k])
                    if caught:
                        print("disasm-check: self-test: %s image: 'found' failed: %s"
                              % (name, c.failures[k]))
                        ok = False
                    continue
                caught = bool(c.failures[k])
                if caught != expect_fail:
                    ok = False
                    print("disasm-check: self-test: %s image: check %s %s"
                          % (name, k, "missed its planted defect" if expect_fail
                             else "failed: %s" % c.failures[k]))
        # 'found' fails on an image without the archive's code.
        c = Checker(os.path.join(tmp, "stub.o"), os.path.join(tmp, "libbad.a"), quiet=True)
        c.check()
        if not c.failures["found"]:
            ok = False
            print("disasm-check: self-test: 'found' passed on an image without Rust code")
    finally:
        shutil.rmtree(tmp)
    print("disasm-check: self-test %s: every check kind caught its planted defect "
          "and passed the clean image" % ("passed" if ok else "FAILED") if ok else
          "disasm-check: self-test FAILED")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("image")
    ap.add_argument("archive")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--counts")
    args = ap.parse_args()

    passed = failed = 0
    if args.self_test:
        if self_test():
            passed += 1
        else:
            failed += 1
    c = Checker(args.image, args.archive)
    c.check()
    p, f = c.report()
    passed += p
    failed += f
    print("disasm-check: %d passed, %d failed" % (passed, failed))
    if args.counts:
        with open(args.counts, "w") as out:
            out.write("%d %d\n" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
