#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""ffi-check: the C shim's declarations and the Rust engine's agree.

Usage: ffi-check.py [--self-test] [--counts FILE] [--src DIR] XEN

XEN is a Xen tree (its xen/include/xen/v4v.h is read), Xen's xen/
directory, the header itself, or a patch of the series that adds
xen/include/xen/v4v.h (its added lines are the header: the series can be
checked without a tree).

Nothing else ties the two sides of the shim interface together: the C
compiler sees only v4v.h (against which it checks common/v4v.c), rustc only
src/xen/ffi.rs and the Rust definitions, and the linker matches symbols by
name alone. A parameter of the wrong width or a `*mut` where C has
`const` builds, links and miscomputes. This script compares them:

  the C side    every prototype of a v4v_shim_* (services of the shim, which
                Rust calls) and v4v_rs_* (entry points, which Rust defines)
                function in v4v.h. Preprocessor lines are ignored: a
                prototype under any #if counts. A v4v_* function with a body
                in the header (static inline) fails: Rust cannot link to it.
  the Rust side every function of every `extern "C" { ... }` block in DIR
                (default: src/ of this repository; today only
                src/xen/ffi.rs has one; #[link_name] is followed, an
                extern static fails), and every function definition named
                v4v_rs_* or exported (#[no_mangle], #[unsafe(no_mangle)],
                #[export_name]) under a v4v_* name. A definition must be
                `extern "C"` and exported. #[cfg] on either is shown, not
                evaluated: every configuration's declaration must agree.

Checks, each function one test:

  - the same functions on both sides: a v4v_shim_* service C declares and
    Rust does not, or the reverse, fails; the same for v4v_rs_* (declared
    in C, defined in Rust). A function declared in a Rust extern block that
    is not a v4v_shim_* service fails too (its C side is not checked).
  - the same number of parameters, and position by position the same ABI
    class: integers by width and signedness (C types through C_TYPES and
    the typedefs of C_TYPEDEFS, e.g. domid_t = uint16_t = u16; long is i64,
    x86-64), bool = bool, pointers by depth and, at every level, the
    constness of the pointee (`const void *` is `*const _`, `void *` is
    `*mut _`, `void *const *` is `*const *mut c_void`), and the pointee's
    type, where void/c_void, plain char/c_char, u8 and i8 are all "bytes"
    (the shim's `void *dst` is the engine's `*mut u8`).
  - the same return: void = no `->` (or `-> ()`), noreturn = `-> !`, else
    as a parameter.

A type neither table knows (a struct, a Rust type alias, a function
pointer, `...`) fails: an unknown type is never taken as agreeing.

Not checked: common/v4v.c against v4v.h (the C compiler does that: v4v.c
includes the header; and Xen's link fails when a function the engine calls
is not defined); which #if branch or #[cfg] is built (every declaration is
checked); a macro that renames a function; Rust outside DIR; whether a
`safe fn` in the extern block has no precondition; what the functions do.

--self-test first checks a built-in header and Rust source that exercise
the parsers (they must agree), then plants defects in copies of the parsed
inputs (the built-in ones and those of this run): a changed width, a
changed signedness, a changed pointee constness, a function missing on
either side, an extra parameter, a changed return, a lost noreturn and an
unknown type. Each must fail the function it was planted in. It counts as
one more test.

--counts writes "PASSED FAILED" for the stage summary.
"""

import argparse
import copy
import os
import re
import sys

# --- Types --------------------------------------------------------------------
# A type is a tuple:
#   ("int", CLASS)         CLASS: u8 i8 u16 i16 u32 i32 u64 i64 usize isize bool
#   ("void",)              only as a pointee, or (C) as "returns nothing"
#   ("char",)              C's plain char (x86: signed, i8); as a pointee, bytes
#   ("ptr", CONST, INNER)  CONST: the pointee is const (C) / *const (Rust)
#   ("unit",) ("never",)   returns: nothing / does not return

# C base types (the words, sorted, so that "long unsigned int" is found).
C_TYPES = {
    "char": ("char",),
    "signed char": ("int", "i8"), "unsigned char": ("int", "u8"),
    "short": ("int", "i16"), "short int": ("int", "i16"),
    "signed short": ("int", "i16"), "signed short int": ("int", "i16"),
    "unsigned short": ("int", "u16"), "unsigned short int": ("int", "u16"),
    "int": ("int", "i32"), "signed": ("int", "i32"), "signed int": ("int", "i32"),
    "unsigned": ("int", "u32"), "unsigned int": ("int", "u32"),
    # x86-64 (LP64): long is 64 bits.
    "long": ("int", "i64"), "long int": ("int", "i64"),
    "signed long": ("int", "i64"), "signed long int": ("int", "i64"),
    "unsigned long": ("int", "u64"), "unsigned long int": ("int", "u64"),
    "long long": ("int", "i64"), "long long int": ("int", "i64"),
    "unsigned long long": ("int", "u64"), "unsigned long long int": ("int", "u64"),
    "int8_t": ("int", "i8"), "uint8_t": ("int", "u8"),
    "int16_t": ("int", "i16"), "uint16_t": ("int", "u16"),
    "int32_t": ("int", "i32"), "uint32_t": ("int", "u32"),
    "int64_t": ("int", "i64"), "uint64_t": ("int", "u64"),
    "s8": ("int", "i8"), "u8": ("int", "u8"), "s16": ("int", "i16"), "u16": ("int", "u16"),
    "s32": ("int", "i32"), "u32": ("int", "u32"), "s64": ("int", "i64"), "u64": ("int", "u64"),
    "size_t": ("int", "usize"), "ssize_t": ("int", "isize"),
    "uintptr_t": ("int", "usize"), "intptr_t": ("int", "isize"),
    "bool": ("int", "bool"), "_Bool": ("int", "bool"),
    "void": ("void",),
}
C_TYPES = {" ".join(sorted(k.split())): v for k, v in C_TYPES.items()}

# Xen's typedefs met in v4v.h, each to a C type above. Add one here (with
# what Xen defines it as) when the header starts using it.
C_TYPEDEFS = {
    "domid_t": "uint16_t",   # xen/include/public/xen.h
}

# Words of a C declaration that do not change the ABI class.
C_IGNORED = {"extern", "__must_check", "cf_check"}
C_NORETURN = {"noreturn", "__noreturn", "_Noreturn"}

RUST_TYPES = {
    "u8": ("int", "u8"), "i8": ("int", "i8"), "u16": ("int", "u16"), "i16": ("int", "i16"),
    "u32": ("int", "u32"), "i32": ("int", "i32"), "u64": ("int", "u64"), "i64": ("int", "i64"),
    "usize": ("int", "usize"), "isize": ("int", "isize"), "bool": ("int", "bool"),
    "c_void": ("void",), "c_char": ("char",),
    "c_schar": ("int", "i8"), "c_uchar": ("int", "u8"),
    "c_short": ("int", "i16"), "c_ushort": ("int", "u16"),
    "c_int": ("int", "i32"), "c_uint": ("int", "u32"),
    "c_long": ("int", "i64"), "c_ulong": ("int", "u64"),
    "c_longlong": ("int", "i64"), "c_ulonglong": ("int", "u64"),
}

BYTES = {("void",), ("char",), ("int", "u8"), ("int", "i8")}


class TypeError_(Exception):
    """A type the tables do not know, or a construct the check cannot see."""


def show(t):
    """A type in one notation for both sides (Rust-like)."""
    if t[0] == "int":
        return t[1]
    if t[0] == "ptr":
        return "*%s %s" % ("const" if t[1] else "mut", show(t[2]))
    return {"void": "void", "char": "char", "unit": "()", "never": "!"}[t[0]]


def show_sig(params, ret):
    s = "(%s)" % ", ".join(show(p) for p in params)
    return s if ret == ("unit",) else "%s -> %s" % (s, show(ret))


def value_class(t):
    """A C plain char passed by value is an i8 (x86)."""
    return ("int", "i8") if t == ("char",) else t


def compare(c, r, depth=0):
    """None when C type c and Rust type r agree, else why not."""
    what = "the pointee" + " of the pointee" * (depth - 1)
    if c[0] == "ptr" or r[0] == "ptr":
        if c[0] != r[0]:
            return "a pointer on one side only" if not depth else \
                "%s is a pointer on one side only" % what
        if c[1] != r[1]:
            return "the pointee%s is const in %s only" % (
                " of the pointee" * depth, "C" if c[1] else "Rust")
        return compare(c[2], r[2], depth + 1)
    if depth:
        if c == r or (c in BYTES and r in BYTES):
            return None
        return "%s differs" % what
    if value_class(c) == value_class(r):
        return None
    if "bool" in (c[1], r[1]):
        return "bool on one side only"
    return "width or signedness differs"


def mismatch(c, r):
    """None, or "C type, Rust type: why" for a parameter or return."""
    if c == r:
        return None
    if c[0] in ("unit", "never") or r[0] in ("unit", "never"):
        why = "returns on one side only" if "never" in (c[0], r[0]) else \
            "a value on one side only"
    else:
        why = compare(c, r)
    return why and "C %s, Rust %s: %s" % (show(c), show(r), why)


def join_tokens(words):
    """Tokens as source text: a space only between two words."""
    out = ""
    for w in words:
        if out and re.match(r"\w", w) and re.match(r".*\w$", out):
            out += " "
        out += w
    return out


# --- The C side ---------------------------------------------------------------
C_TOKEN = re.compile(r"[A-Za-z_]\w*|\.\.\.|[(){}\[\];,*]|\S")


class Func:
    """One side's declaration of one function: params, ret (types, or an
    error message in `error`), where (file:line), note (#[cfg] etc.)."""

    def __init__(self, name, where, params=None, ret=None, error=None, note=""):
        self.name, self.where = name, where
        self.params, self.ret, self.error, self.note = params or [], ret, error, note

    def sig(self):
        return self.error or show_sig(self.params, self.ret)


def header_from_patch(text, path):
    """The lines a patch adds as the new file xen/include/xen/v4v.h."""
    out, inside, new, hunk = [], False, False, False
    for line in text.splitlines():
        if line.startswith("diff --git "):
            inside = line.split()[-1] == "b/xen/include/xen/v4v.h"
            hunk = False
            continue
        if not inside:
            continue
        if line.startswith("new file mode"):
            new = True
        elif line.startswith("@@"):
            hunk = True
        elif hunk and line.startswith("+"):
            out.append(line[1:])
        elif hunk and line.startswith(("-", " ")):
            raise SystemExit("ffi-check: %s changes xen/include/xen/v4v.h rather than "
                             "adding it: give a patched tree" % path)
    if not new or not out:
        raise SystemExit("ffi-check: %s does not add xen/include/xen/v4v.h" % path)
    return "\n".join(out) + "\n"


def read_header(arg):
    """(text, name) of v4v.h from a tree, a xen/ dir, the header or a patch."""
    if os.path.isdir(arg):
        for rel in ("xen/include/xen/v4v.h", "include/xen/v4v.h"):
            p = os.path.join(arg, rel)
            if os.path.isfile(p):
                arg = p
                break
        else:
            raise SystemExit("ffi-check: no xen/include/xen/v4v.h under %s" % arg)
    with open(arg) as f:
        text = f.read()
    if arg.endswith((".patch", ".diff")):
        return header_from_patch(text, arg), arg + ":xen/include/xen/v4v.h"
    return text, arg


def c_tokens(text):
    """Tokens with line numbers: comments blanked (lines kept), preprocessor
    lines (with continuations) dropped."""
    text = re.sub(r"/\*.*?\*/", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    toks, cont = [], False
    for n, line in enumerate(text.split("\n"), 1):
        directive = cont or line.lstrip().startswith("#")
        cont = directive and line.rstrip().endswith("\\")
        if directive:
            continue
        toks += [(m.group(0), n) for m in C_TOKEN.finditer(line)]
    return toks


def c_type(words):
    """The type of a declaration's specifier and declarator tokens (the
    name already removed)."""
    if not words:
        raise TypeError_("no type")
    if "(" in words or "[" in words:
        raise TypeError_("'%s': function pointers and arrays are not supported"
                         % " ".join(words))
    star = words.index("*") if "*" in words else len(words)
    base, rest = words[:star], words[star:]
    const = "const" in base
    base = [w for w in base if w != "const"]
    for w in base:
        if w in ("volatile", "restrict", "struct", "union", "enum"):
            raise TypeError_("'%s': %s is not supported" % (" ".join(words), w))
    key = " ".join(sorted(C_TYPEDEFS.get(w, w) for w in base))
    if key not in C_TYPES:
        raise TypeError_("unknown C type '%s' (add it to C_TYPES or C_TYPEDEFS)"
                         % " ".join(base))
    t = C_TYPES[key]
    for w in rest:
        if w == "*":
            t = ("ptr", const, t)
            const = False
        elif w == "const":
            const = True     # the pointer just made is const
        else:
            raise TypeError_("'%s' in a declarator" % w)
    # A top-level const (of a value or a pointer parameter) is no part of
    # the ABI; consts of pointees are in the ("ptr", CONST, _) tuples.
    return t


def c_param(toks):
    words = [w for w in toks if w not in C_IGNORED]
    if words == ["..."]:
        raise TypeError_("variadic (...)")
    # The last word is the parameter's name unless it is part of the type.
    if len(words) > 1 and re.match(r"^[A-Za-z_]\w*$", words[-1]) and \
            words[-1] not in ("const",) and \
            " ".join(sorted(C_TYPEDEFS.get(w, w) for w in words if w not in ("const", "*"))) \
            not in C_TYPES:
        words = words[:-1]
    t = c_type(words)
    if t == ("void",):
        raise TypeError_("a void parameter")
    return t


def c_attribute(toks, i):
    """(end, words) of __attribute__((...)) at toks[i]."""
    depth, j, words = 0, i + 1, []
    while j < len(toks):
        if toks[j] == "(":
            depth += 1
        elif toks[j] == ")":
            depth -= 1
            if depth == 0:
                return j + 1, words
        elif toks[j] != ",":
            words.append(toks[j])
        j += 1
    raise TypeError_("unbalanced __attribute__")


def parse_c_decl(name, toks, body, where):
    """A Func from a statement's tokens (name at toks.index(name))."""
    f = Func(name, where)
    try:
        if body:
            raise TypeError_("defined in the header (static inline): no symbol for Rust")
        i = toks.index(name)
        depth, j = 0, i + 1
        while True:
            if toks[j] == "(":
                depth += 1
            elif toks[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        inner = toks[i + 2:j]
        spec, noreturn = [], False
        for before, part in ((True, toks[:i]), (False, toks[j + 1:])):
            k = 0
            while k < len(part):
                w = part[k]
                if w == "__attribute__":
                    k, words = c_attribute(part, k)
                    for a in words:
                        if a.strip("_") == "noreturn":
                            noreturn = True
                        else:
                            raise TypeError_("unknown attribute %s" % a)
                    continue
                if w in C_NORETURN:
                    noreturn = True
                elif w in C_IGNORED:
                    pass
                elif before:
                    spec.append(w)
                else:
                    raise TypeError_("'%s' after the parameters" % w)
                k += 1
        if any(w in ("static", "inline") for w in spec):
            raise TypeError_("static inline in the header: no symbol for Rust")
        ret = c_type(spec)
        if noreturn:
            if ret != ("void",):
                raise TypeError_("noreturn function returning %s" % show(ret))
            ret = ("never",)
        elif ret == ("void",):
            ret = ("unit",)
        if not inner:
            raise TypeError_("() is not a prototype: write (void)")
        params, cur, depth = [], [], 0
        for w in inner:
            if w == "," and depth == 0:
                params.append(cur)
                cur = []
                continue
            depth += (w == "(") - (w == ")")
            cur.append(w)
        params.append(cur)
        if params == [["void"]]:
            params = []
        f.params = [c_param(p) for p in params]
        f.ret = ret
    except TypeError_ as e:
        f.error = str(e)
    return f


NAME = re.compile(r"^v4v_(?:shim|rs)_\w+$")


def parse_c(text, fname):
    """{name: [Func]} of the v4v_shim_*/v4v_rs_* functions of a header."""
    toks = c_tokens(text)
    out = {}
    stmt, i = [], 0
    while i < len(toks):
        w, n = toks[i]
        if w in (";", "{"):
            body = w == "{"
            if body:
                depth = 0
                while i < len(toks):
                    depth += (toks[i][0] == "{") - (toks[i][0] == "}")
                    if depth == 0:
                        break
                    i += 1
            words = [t for t, _ in stmt]
            for k, t in enumerate(words):
                if NAME.match(t) and k + 1 < len(words) and words[k + 1] == "(":
                    where = "%s:%d" % (fname, stmt[k][1])
                    out.setdefault(t, []).append(parse_c_decl(t, words, body, where))
                    break
            stmt = []
        else:
            stmt.append((w, n))
        i += 1
    return out


# --- The Rust side ------------------------------------------------------------
RUST_TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*|/\*.*?\*/)
  | (?P<str>b?r(?P<h>\#*)".*?"(?P=h)|b?"(?:[^"\\]|\\.)*")
  | (?P<char>b?'(?:[^'\\\n]|\\[^\n]+?)')
  | (?P<life>'[A-Za-z_]\w*)
  | (?P<word>[A-Za-z_]\w*)
  | (?P<punct>::|->|\S)
""", re.S | re.X)


def rust_tokens(text):
    """(text, line, kind) of each token; comments dropped."""
    toks, line, pos = [], 1, 0
    for m in RUST_TOKEN.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        kind = next(k for k in ("comment", "str", "char", "life", "word", "punct")
                    if m.group(k) is not None)
        if kind != "comment":
            toks.append((m.group(0), line, kind))
    return toks


def rust_type(words):
    if not words:
        raise TypeError_("no type")
    if words[0] == "*":
        if len(words) < 3 or words[1] not in ("const", "mut"):
            raise TypeError_("'%s' is not a raw pointer type" % join_tokens(words))
        return ("ptr", words[1] == "const", rust_type(words[2:]))
    if words == ["!"]:
        return ("never",)
    if words == ["(", ")"]:
        return ("unit",)
    # A path (core::ffi::c_void): its last segment.
    if all(w == "::" or re.match(r"^\w+$", w) for w in words) and words[-1] != "::":
        name = words[-1]
        if name in RUST_TYPES:
            return RUST_TYPES[name]
    raise TypeError_("unknown Rust type '%s' (add it to RUST_TYPES)" % join_tokens(words))


def split_top(words, sep=","):
    parts, cur, depth = [], [], 0
    for w in words:
        if w == sep and depth == 0:
            parts.append(cur)
            cur = []
            continue
        depth += (w in "([{<") - (w in ")]}>")
        cur.append(w)
    if cur:
        parts.append(cur)
    return parts


def rust_sig(name, words, where, note):
    """A Func from the tokens after the name: ( params ) [-> ret]."""
    f = Func(name, where, note=note)
    try:
        depth, j = 0, 0
        while True:
            depth += (words[j] == "(") - (words[j] == ")")
            if depth == 0:
                break
            j += 1
        params = []
        for p in split_top(words[1:j]):
            if "..." in p:
                raise TypeError_("variadic (...)")
            colon = p.index(":")
            params.append(rust_type(p[colon + 1:]))
        rest = words[j + 1:]
        if rest and rest[0] == "->":
            ret = rust_type(rest[1:])
        elif not rest:
            ret = ("unit",)
        else:
            raise TypeError_("'%s' after the parameters" % join_tokens(rest))
        for p in params:
            if p[0] not in ("int", "ptr", "char"):
                raise TypeError_("a parameter of type %s" % show(p))
        if ret in (("void",),):
            raise TypeError_("returns c_void by value")
        f.params, f.ret = params, ret
    except (TypeError_, ValueError, IndexError) as e:
        f.error = str(e) or "cannot parse the signature"
    return f


def attributes_before(toks, i):
    """(attribute texts, index) of the #[...] groups ending before toks[i]."""
    attrs = []
    while i > 0 and toks[i - 1][0] == "]":
        depth, j = 0, i - 1
        while j >= 0:
            depth += (toks[j][0] == "]") - (toks[j][0] == "[")
            if depth == 0:
                break
            j -= 1
        if j < 1 or toks[j - 1][0] != "#":
            break
        text = ""
        for t, _, kind in toks[j + 1:i - 1]:
            if text and kind == "word" and text[-1].isalnum():
                text += " "
            text += t
        attrs.insert(0, text)
        i = j - 1
    return attrs, i


def cfg_note(attrs):
    return " ".join("#[%s]" % a for a in attrs if a.startswith("cfg"))


def parse_rust_file(text, rel, externs, defs):
    """Add the extern declarations and exported v4v_* definitions of one
    source file (text; rel names it) to externs and defs."""
    toks = rust_tokens(text)
    words = [t for t, _, _ in toks]
    in_block = [False] * len(toks)
    # extern "ABI" { ... } blocks
    for i, w in enumerate(words):
        if w != "extern" or i + 2 >= len(words) or toks[i + 1][2] != "str" or words[i + 2] != "{":
            continue
        abi = words[i + 1].strip('"')
        depth, j = 0, i + 2
        while True:
            depth += (words[j] == "{") - (words[j] == "}")
            if depth == 0:
                break
            j += 1
        for k in range(i, j + 1):
            in_block[k] = True
        k = i + 3
        while k < j:
            # one item: up to its ';' at depth 0
            end, depth = k, 0
            while end < j and not (words[end] == ";" and depth == 0):
                depth += (words[end] in "([{") - (words[end] in ")]}")
                end += 1
            item = words[k:end]
            if "static" in item and "fn" not in item:
                st = item.index("static")
                name = item[st + 2] if item[st + 1] == "mut" else item[st + 1]
                externs.setdefault(name, []).append(Func(
                    name, "%s:%d" % (rel, toks[k + st][1]),
                    error="an extern static: only functions are checked"))
            elif "fn" in item:
                fn = item.index("fn")
                name = item[fn + 1]
                attrs, _ = attributes_before(toks, k + fn - _mods(item, fn))
                for a in attrs:
                    m = re.search(r'link_name\s*=\s*"([^"]+)"', a)
                    if m:
                        name = m.group(1)
                f = rust_sig(name, item[fn + 2:], "%s:%d" % (rel, toks[k + fn][1]),
                             cfg_note(attrs))
                if abi != "C" and not f.error:
                    f.error = 'declared in extern "%s", not extern "C"' % abi
                externs.setdefault(name, []).append(f)
            k = end + 1
    # definitions: fn NAME ( ... ) ... { outside extern blocks
    for i, w in enumerate(words):
        if w != "fn" or in_block[i] or i + 1 >= len(words):
            continue
        name = words[i + 1]
        mods = _mods(words, i)
        attrs, _ = attributes_before(toks, i - mods)
        symbol = None
        for a in attrs:
            m = re.search(r'export_name\s*=\s*"([^"]+)"', a.replace(" ", ""))
            if m:
                symbol = m.group(1)
            elif re.sub(r"\s", "", a) in ("no_mangle", "unsafe(no_mangle)"):
                symbol = name
        if not (name.startswith("v4v_rs_") or (symbol or "").startswith("v4v_")):
            continue
        end = i + 2
        depth = 0
        while end < len(words) and not (depth == 0 and words[end] in ("{", ";", "where")):
            depth += (words[end] in "([") - (words[end] in ")]")
            end += 1
        f = rust_sig(symbol or name, words[i + 2:end], "%s:%d" % (rel, toks[i][1]),
                     cfg_note(attrs))
        if not f.error:
            before = words[i - mods:i]
            ext = before.index("extern") if "extern" in before else None
            abi = before[ext + 1] if ext is not None and ext + 1 < len(before) else '"C"'
            if ext is None:
                f.error = 'not extern "C" (a Rust-ABI function)'
            elif abi != '"C"':
                f.error = 'extern %s, not extern "C"' % abi
            elif symbol is None:
                f.error = "not exported: no #[unsafe(no_mangle)]"
        defs.setdefault(symbol or name, []).append(f)


def _mods(words, fn):
    """How many tokens of modifiers (pub, pub(crate), unsafe, safe, const,
    extern "C") stand before the `fn` at index fn."""
    i = fn
    while i > 0:
        w = words[i - 1]
        if w in ("pub", "unsafe", "safe", "const", "extern", "async") or w.startswith('"'):
            i -= 1
        elif w == ")" and i >= 3 and words[i - 3] == "(" and words[i - 4] == "pub":
            i -= 3
        else:
            break
    return fn - i


def parse_rust(src):
    """({name: [Func]} of extern-block declarations, {symbol: [Func]} of
    exported definitions) of every .rs file under src."""
    externs, defs = {}, {}
    base = os.path.dirname(os.path.abspath(src))
    for root, dirs, files in os.walk(src):
        dirs.sort()
        for fn in sorted(files):
            if fn.endswith(".rs"):
                p = os.path.join(root, fn)
                with open(p) as f:
                    parse_rust_file(f.read(), os.path.relpath(p, base), externs, defs)
    return externs, defs


def parse_rust_text(text, rel):
    """The same for one source given as text (the self-test)."""
    externs, defs = {}, {}
    parse_rust_file(text, rel, externs, defs)
    return externs, defs


# --- The check ----------------------------------------------------------------
def check(cdecls, externs, defs, quiet=False):
    """(passed, failed, {name: reasons}) of the comparison."""
    log = (lambda s: None) if quiet else print
    results = {}

    def one(name, cside, rside, rkind):
        why = []
        for c in cside:
            if c.error:
                why.append("C %s: %s" % (c.where, c.error))
        for r in rside:
            if r.error:
                why.append("Rust %s: %s" % (r.where, r.error))
        if not cside:
            why.append("not declared in the C header (Rust %s it at %s)"
                       % (rkind, ", ".join(r.where for r in rside)))
        if not rside:
            why.append("declared in C (%s), not %s in Rust"
                       % (", ".join(c.where for c in cside),
                          "declared in an extern block" if rkind == "declares"
                          else "defined as #[unsafe(no_mangle)] pub extern \"C\" fn"))
        if not why:
            for c in cside:
                for r in rside:
                    tag = "Rust %s%s" % (r.where, " " + r.note if r.note else "")
                    if len(cside) > 1:
                        tag = "C %s, %s" % (c.where, tag)
                    if len(c.params) != len(r.params):
                        why.append("%s: C has %d parameter%s, Rust %d"
                                   % (tag, len(c.params), "" if len(c.params) == 1 else "s",
                                      len(r.params)))
                        continue
                    for k, (cp, rp) in enumerate(zip(c.params, r.params), 1):
                        w = mismatch(cp, rp)
                        if w:
                            why.append("%s: parameter %d: %s" % (tag, k, w))
                    w = mismatch(c.ret, r.ret)
                    if w:
                        why.append("%s: return: %s" % (tag, w))
        results.setdefault(name, []).extend(why)
        csig = cside[0].sig() if cside else None
        rsigs = sorted({r.sig() for r in rside})
        notes = " ".join(sorted({r.note for r in rside if r.note}))
        # The C signature; the Rust one too where it reads differently
        # (a u8 pointee for void, an error).
        line = name + (csig if csig and not cside[0].error else "")
        if rsigs and rsigs != [csig]:
            line += "  [Rust %s]" % " | ".join(rsigs)
        log("  %-5s %s%s" % ("FAIL" if why else "ok", line, "  " + notes if notes else ""))
        for w in why:
            log("          %s" % w)

    def other(name, why):
        results.setdefault(name, []).append(why)
        log("  FAIL  %s\n          %s" % (name, why))

    entries = {n for n in cdecls if n.startswith("v4v_rs_")} | \
        {n for n in defs if n.startswith("v4v_rs_")}
    shims = {n for n in cdecls if n.startswith("v4v_shim_")} | \
        {n for n in externs if n.startswith("v4v_shim_")}
    for name in sorted(entries):
        one(name, cdecls.get(name, []), defs.get(name, []), "defines")
    for name in sorted(shims):
        one(name, cdecls.get(name, []), externs.get(name, []), "declares")
    for name in sorted(n for n in defs if n not in entries):
        other(name, "exported by Rust (%s) but not a v4v_rs_* entry point: the C header "
              "does not declare it as one" % ", ".join(r.where for r in defs[name]))
    for name in sorted(n for n in externs if n not in shims):
        other(name, "declared in a Rust extern block (%s) but not a v4v_shim_* service: "
              "its C side is not checked" % ", ".join(r.where for r in externs[name]))
    failed = sum(1 for w in results.values() if w)
    return len(results) - failed, failed, results


# --- Self-test ----------------------------------------------------------------
SAMPLE_H = r"""
/* A header in the shape of xen/include/xen/v4v.h. */
#ifndef __X_H__
#define __X_H__
#include <xen/types.h>
#define LONG_MACRO(x) \
    v4v_shim_not_a_function(x)
#ifdef CONFIG_V4V
int v4v_rs_init(void);
long v4v_rs_op(unsigned int cmd, uint64_t arg1, uint64_t arg2, uint64_t arg3,
               uint32_t arg4, uint32_t arg5);
void v4v_rs_domain_detach(domid_t domid);
bool v4v_rs_domain_relinquish(domid_t);
int v4v_shim_copy_from_guest(void *dst, uint64_t src, size_t len);
int v4v_shim_copy_to_guest(uint64_t dst, const void *src, size_t len);
domid_t v4v_shim_current_domid(void); // a comment
int v4v_shim_pin_frame(uint64_t gfn, void **page);
void *v4v_shim_map_frames(void *const *pages, size_t nr);
void v4v_shim_print(const char *str, size_t len);
void noreturn v4v_shim_panic(const char *str, size_t len);
extern unsigned long int v4v_shim_word(long unsigned x) __must_check;
unsigned int *v4v_shim_lock_levels(void);
#else
static inline void v4v_domain_detach(struct domain *d) { }
#endif
#endif
"""

SAMPLE_RS = r'''
//! Doc comment with a fn v4v_shim_in_a_comment(x: u8);
use core::ffi::c_void;
unsafe extern "C" {
    /// copy, with a ' quote in the doc
    pub fn v4v_shim_copy_from_guest(dst: *mut u8, src: u64, len: usize) -> i32;
    pub fn v4v_shim_copy_to_guest(dst: u64, src: *const u8, len: usize) -> i32;
    pub safe fn v4v_shim_current_domid() -> u16;
    pub fn v4v_shim_pin_frame(gfn: u64, page: *mut *mut c_void) -> i32;
    pub fn v4v_shim_map_frames(pages: *const *mut core::ffi::c_void, nr: usize)
        -> *mut c_void;
    pub fn v4v_shim_print(s: *const u8, len: usize);
    pub fn v4v_shim_panic(s: *const u8, len: usize) -> !;
    pub fn v4v_shim_word(x: u64) -> u64;
    #[cfg(debug_assertions)]
    pub safe fn v4v_shim_lock_levels() -> *mut u32;
}
const S: &str = "extern \"C\" { fn v4v_shim_in_a_string(); }";
const C: char = '{';
#[unsafe(no_mangle)]
pub extern "C" fn v4v_rs_init() -> i32 { 0 }
/// With a doc comment and the attribute first.
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub extern "C" fn v4v_rs_op(cmd: u32, a1: u64, a2: u64, a3: u64, a4: u32, a5: u32) -> i64 {
    let _ = (cmd, a1, a2, a3, a4, a5);
    0
}
#[no_mangle]
pub extern "C" fn v4v_rs_domain_detach(domid: u16) {}
#[unsafe(no_mangle)]
pub extern "C" fn v4v_rs_domain_relinquish(_: u16) -> bool { true }
fn helper<'a>(x: &'a u8) -> &'a u8 { x }
'''


# The name of a planted extern declaration that is no shim service.
PLANTED = "ffi_check_planted_memcpy"


def _first(funcs, pred):
    """(name, index) of the first parameter (or None) matching pred in the
    first declaration of a function that passes."""
    for name in sorted(funcs):
        f = funcs[name][0]
        if f.error is None:
            for k, p in enumerate(f.params):
                if pred(p):
                    return name, k
    return None


def mutations(cdecls, externs, defs, ok):
    """(what, name, mutated copies) of every planted defect; ok: names that
    pass unmutated (only those can show a defect being caught)."""
    out = []
    good = lambda d: {n: v for n, v in d.items() if n in ok}

    def plant(what, side, pick, change):
        c, e, d = copy.deepcopy((cdecls, externs, defs))
        table = {"c": c, "extern": e, "def": d}[side]
        hit = pick(good(table))
        if hit is None:
            return
        name, k = hit if isinstance(hit, tuple) else (hit, None)
        change(table, name, k)
        out.append((what, name, (c, e, d)))

    widen = {"u16": "u32", "u32": "u64", "u64": "u32", "i32": "i64", "i64": "i32",
             "usize": "u32", "u8": "u16", "bool": "u8"}
    sign = {"u16": "i16", "u32": "i32", "u64": "i64", "i32": "u32", "i64": "u64",
            "usize": "isize", "u8": "i8"}

    def set_param(t, k, fn):
        t[0].params[k] = fn(t[0].params[k])

    def width(table, name, k):
        set_param(table[name], k, lambda p: ("int", widen[p[1]]))

    def signed(table, name, k):
        set_param(table[name], k, lambda p: ("int", sign[p[1]]))

    def const(table, name, k):
        set_param(table[name], k, lambda p: ("ptr", not p[1], p[2]))

    is_int = lambda m: lambda p: p[0] == "int" and p[1] in m
    plant("a changed width (C)", "c", lambda t: _first(t, is_int(widen)), width)
    plant("a changed width (Rust)", "extern", lambda t: _first(t, is_int(widen)), width)
    plant("a changed signedness (Rust definition)", "def",
          lambda t: _first(t, is_int(sign)), signed)
    plant("a changed constness (C)", "c", lambda t: _first(t, lambda p: p[0] == "ptr"), const)
    plant("a changed inner constness (Rust)", "extern",
          lambda t: _first(t, lambda p: p[0] == "ptr" and p[2][0] == "ptr"),
          lambda t, n, k: set_param(t[n], k, lambda p: ("ptr", p[1], ("ptr", not p[2][1],
                                                                         p[2][2]))))
    first_of = lambda prefix: lambda t: next((n for n in sorted(t) if n.startswith(prefix)), None)
    drop = lambda t, n, k: t.pop(n)
    plant("a service missing in C", "c", first_of("v4v_shim_"), drop)
    plant("a service missing in Rust", "extern", first_of("v4v_shim_"), drop)
    plant("an entry point missing in C", "c", first_of("v4v_rs_"), drop)
    plant("an entry point missing in Rust", "def", first_of("v4v_rs_"), drop)
    plant("an extra parameter (Rust)", "extern", first_of("v4v_shim_"),
          lambda t, n, k: t[n][0].params.append(("int", "u32")))
    plant("a parameter less (C)", "c",
          lambda t: next((n for n in sorted(t) if t[n][0].params), None),
          lambda t, n, k: t[n][0].params.pop())

    def ret_change(table, name, k):
        f = table[name][0]
        f.ret = {("unit",): ("int", "i32"), ("int", "i32"): ("int", "i64")}.get(
            f.ret, ("unit",))
    plant("a changed return (C)", "c", first_of("v4v_"), ret_change)
    plant("a changed return (Rust definition)", "def", first_of("v4v_rs_"), ret_change)
    plant("a lost noreturn (C)", "c",
          lambda t: next((n for n in sorted(t) if t[n][0].ret == ("never",)), None),
          lambda t, n, k: setattr(t[n][0], "ret", ("unit",)))
    plant("a function unknown to C becoming an extern (Rust)", "extern",
          lambda t: next((n for n in sorted(t)), None),
          lambda t, n, k: t.setdefault(PLANTED, copy.deepcopy(t[n])))
    plant("an unknown type (C)", "c", first_of("v4v_shim_"),
          lambda t, n, k: setattr(t[n][0], "error", "unknown C type 'struct page_info'"))
    return out


def self_test(real=None):
    ok = True

    def fail(msg):
        nonlocal ok
        ok = False
        print("ffi-check: self-test: " + msg)

    # The parsers on the sample: everything in it agrees.
    cdecls = parse_c(SAMPLE_H, "sample.h")
    externs, defs = parse_rust_text(SAMPLE_RS, "sample.rs")
    want = {"v4v_rs_init", "v4v_rs_op", "v4v_rs_domain_detach", "v4v_rs_domain_relinquish",
            "v4v_shim_copy_from_guest", "v4v_shim_copy_to_guest", "v4v_shim_current_domid",
            "v4v_shim_pin_frame", "v4v_shim_map_frames", "v4v_shim_print", "v4v_shim_panic",
            "v4v_shim_word", "v4v_shim_lock_levels"}
    got = set(cdecls) | set(externs) | set(defs)
    if got != want:
        fail("the sample parsed to %s" % sorted(got ^ want))
    p, f, res = check(cdecls, externs, defs, quiet=True)
    if f:
        fail("the clean sample failed: %s" % {n: w for n, w in res.items() if w})
    expect = {"v4v_shim_map_frames": [("ptr", True, ("ptr", False, ("void",))), ("int", "usize")],
              "v4v_shim_pin_frame": [("int", "u64"), ("ptr", False, ("ptr", False, ("void",)))]}
    for n, params in expect.items():
        for side, funcs in (("C", cdecls), ("Rust", externs)):
            if funcs[n][0].params != params:
                fail("%s parsed as %s %s" % (n, side, funcs[n][0].sig()))
    if cdecls["v4v_shim_panic"][0].ret != ("never",) or externs["v4v_shim_panic"][0].ret != ("never",):
        fail("noreturn / -> ! not seen")
    # Text-level defects: the parsers must carry them to a failure.
    text_defects = (
            ("const dropped in the header text",
             SAMPLE_H.replace("const void *src", "void *src"), SAMPLE_RS,
             "v4v_shim_copy_to_guest"),
            ("void *const * made void ** in the header text",
             SAMPLE_H.replace("void *const *pages", "void **pages"), SAMPLE_RS,
             "v4v_shim_map_frames"),
            ("a struct pointer in the header text",
             SAMPLE_H.replace("void **page)", "struct page_info **page)"), SAMPLE_RS,
             "v4v_shim_pin_frame"),
            ("a static inline service in the header text",
             SAMPLE_H.replace("void v4v_shim_print(const char *str, size_t len);",
                              "static inline void v4v_shim_print(const char *str, size_t len) {}"),
             SAMPLE_RS, "v4v_shim_print"),
            ("#[no_mangle] dropped in the Rust text", SAMPLE_H,
             SAMPLE_RS.replace("#[no_mangle]\n", ""), "v4v_rs_domain_detach"),
            ("extern \"C\" dropped in the Rust text", SAMPLE_H,
             SAMPLE_RS.replace('pub extern "C" fn v4v_rs_init', "pub fn v4v_rs_init"),
             "v4v_rs_init"),
            ("a Rust type alias in the Rust text", SAMPLE_H,
             SAMPLE_RS.replace("domid: u16", "domid: DomId"), "v4v_rs_domain_detach"),
            ("-> ! dropped in the Rust text", SAMPLE_H,
             SAMPLE_RS.replace("len: usize) -> !;", "len: usize);"), "v4v_shim_panic"),
            ("int made unsigned in the header text",
             SAMPLE_H.replace("int v4v_rs_init", "unsigned int v4v_rs_init"), SAMPLE_RS,
             "v4v_rs_init"))
    for what, h, rs, name in text_defects:
        c = parse_c(h, "sample.h")
        e, d = parse_rust_text(rs, "sample.rs")
        _, _, res = check(c, e, d, quiet=True)
        bad = sorted(n for n, w in res.items() if w)
        if bad != [name]:
            fail("%s: failed %s, not just %s" % (what, bad, name))
    # Defects planted in copies of the parsed inputs: the sample's and this
    # run's.
    planted = 0
    for label, inputs in (("sample", (cdecls, externs, defs)), ("inputs", real)):
        if inputs is None:
            continue
        _, _, base = check(*inputs, quiet=True)
        passing = {n for n, w in base.items() if not w}
        kinds = set()
        for what, name, mutated in mutations(*inputs, ok=passing):
            _, _, res = check(*mutated, quiet=True)
            newly = sorted(n for n, w in res.items() if w and not base.get(n))
            target = PLANTED if "unknown to C" in what else name
            if target not in newly or len(newly) != 1:
                fail("%s: %s in %s: failed %s" % (label, what, name, newly))
            planted += 1
            kinds.add(what)
        if label == "sample" and len(kinds) < 16:
            fail("only %d kinds of defect could be planted in the sample" % len(kinds))
    print("ffi-check: self-test %s: the sample parses and agrees, %d text defects and "
          "%d planted defects each failed their function" % (
              "passed" if ok else "FAILED", len(text_defects), planted))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("xen", help="Xen tree, its xen/ dir, v4v.h, or the patch adding it")
    ap.add_argument("--src", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                   "..", "src"))
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--counts")
    args = ap.parse_args()

    text, hname = read_header(args.xen)
    cdecls = parse_c(text, hname)
    src = os.path.normpath(args.src)
    externs, defs = parse_rust(src)
    n_shim = sum(1 for n in cdecls if n.startswith("v4v_shim_"))
    print("ffi-check: %s: %d v4v_shim_* and %d v4v_rs_* functions; %s: %d extern "
          "declarations, %d exported definitions"
          % (hname, n_shim, len(cdecls) - n_shim, src, sum(map(len, externs.values())),
             sum(map(len, defs.values()))))

    passed = failed = 0
    if args.self_test:
        if self_test((cdecls, externs, defs)):
            passed += 1
        else:
            failed += 1
    p, f, _ = check(cdecls, externs, defs)
    passed += p
    failed += f
    print("ffi-check: %d passed, %d failed" % (passed, failed))
    if args.counts:
        with open(args.counts, "w") as out:
            out.write("%d %d\n" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
