#!/usr/bin/env bash
# The Linux dom0 for multi-domain boots: a Debian kernel (plain ELF vmlinux)
# and an initramfs with busybox and Xen's toolstack (xl, xenstored,
# xenconsoled, xen-init-dom0, the xenstore client) with every library they
# load, all from pinned Debian packages of the Xen stack chosen by
# V4V_XEN_VERSION (the top Makefile's XEN_VERSION); the network backend and
# bridge modules ride along unloaded.
#
#   stack 4.20 (the default)  Debian 13 (trixie): xen-utils-4.20, its C
#                             library and everything else from trixie,
#                             Linux 6.12
#   stack 4.17                Debian 12 (bookworm): xen-utils-4.17, Linux 6.1
#
#   scripts/dom0-image.sh                 build build/dom0-VER/vmlinux and the
#                                         base tree build/dom0-VER/rootfs
#   scripts/dom0-image.sh pack OUT DIR... the base tree plus each DIR laid
#                                         over / as an uncompressed newc cpio
#   scripts/dom0-image.sh kernel-env      print build/dom0-VER/kernel.env
#                                         (building first if needed):
#                                         KERNEL_ABI, KERNEL_VERSION,
#                                         KERNEL_RELEASE of the kernel actually
#                                         used, shell-sourceable (for
#                                         linux-headers-$KERNEL_ABI-amd64)
#
# Why mmdebstrap: the toolstack needs its libraries and, for Xen 4.20, a C
# library newer than the Debian 12 host's (glibc 2.41 against 2.36), so
# nothing may come from the host. `mmdebstrap --variant=extract` (through
# scripts/suite.sh, on a private apt index per suite; the host's apt is
# never touched) lets Debian's apt resolve the pinned packages' dependencies
# and unpacks all of them into one tree; both stacks are made this way.
# The shared objects each tool loads are then listed by the TREE's own
# dynamic loader (`ld.so --library-path TREE... --list`), checked to lie
# inside the tree, and copied into the image with libgcc_s.so.1 (glibc
# dlopens it for pthread_cancel; xl aborts without it). No host library
# ever goes into the image.
#
# The kernel needs no dependencies (its own, kmod and initramfs-tools, are
# install-time tools the image does not use), so its .deb is fetched alone
# with `apt-get download` on the same private index, and only vmlinuz and
# the modules are taken out of it; scripts/linux-domu.sh takes the domU's
# modules from the same .deb.
#
# Idempotent and cached in build/cache/dom0-VER: the tree is keyed on the
# exact package specs and rebuilt only when they change; the kernel .deb is
# kept; the rootfs is reassembled only when an input changed. A cached run
# does no network work.
#
# Pins: every package is pinned to an exact version. The archive moves on
# (Debian's security suite keeps only the newest update and a few kernel
# ABIs), so when a pin has left the archive the newest available version is
# used instead, with a loud warning: update the pin then. The kernel's
# fallback keeps the flavour (plain -amd64: not -rt, -cloud, -dbg,
# -unsigned) and the series (6.1.0-N for 4.17, 6.12.N+deb13 for 4.20).
# Fallback choices are remembered per pin in the cache, so that cached runs
# use them without asking apt (and repeat the warning). Overrides, e.g. to
# test the fallback with a pin that does not exist:
#   V4V_KERNEL_PIN=ABI:VERSION     (e.g. 6.1.0-56:6.1.192-2, or
#                                  6.12.117+deb13:6.12.117-1)
#   V4V_XEN_TOOLS_PIN=VERSION      the version of every xen package
set -euo pipefail

STACK="${V4V_XEN_VERSION:-4.20}"

# --- pinned Debian packages, per stack ---------------------------------------
# The kernel: a later step needs the matching linux-headers-$KERNEL_ABI-amd64
# (build/dom0-VER/kernel.env says which kernel was actually used;
# choose_kernel resets KERNEL_* to it). KERNEL_SERIES_RE: the ABIs a
# fallback may take (an extended regex), among the packages whose names
# start with KERNEL_NAMES; KERNEL_SERIES says the same to a reader.
case "$STACK" in
    4.17)
        SUITE=bookworm
        KERNEL_ABI="6.1.0-57"
        KERNEL_VERSION="6.1.192-3"
        KERNEL_SERIES_RE='6\.1\.0-[0-9]+'
        KERNEL_NAMES="linux-image-6.1.0-"
        KERNEL_SERIES="linux-image-6.1.0-N-amd64"
        KERNEL_PIN_EXAMPLE="6.1.0-56:6.1.192-2"
        XEN_TOOLS_PIN="4.17.7+13-g2445b30a44-0+deb12u1"
        BUSYBOX_PIN="1:1.35.0-4+deb12u1+b1"
        YAJL_PIN="2.1.0-3+deb12u2"
        ;;
    4.20)
        SUITE=trixie
        KERNEL_ABI="6.12.118+deb13"
        KERNEL_VERSION="6.12.118-1"
        KERNEL_SERIES_RE='6\.12\.[0-9]+\+deb13(\.[0-9]+)?'
        KERNEL_NAMES="linux-image-6.12."
        KERNEL_SERIES="linux-image-6.12.N+deb13-amd64"
        KERNEL_PIN_EXAMPLE="6.12.117+deb13:6.12.117-1"
        XEN_TOOLS_PIN="4.20.4+63-g7abfd2bce2-0+deb13u1"
        BUSYBOX_PIN="1:1.37.0-6+b9"
        YAJL_PIN="2.1.0-5+b2"
        ;;
    *)
        printf 'dom0-image: error: V4V_XEN_VERSION must be 4.20 or 4.17, not %s\n' "$STACK" >&2
        exit 1
        ;;
esac
PIN_ABI="$KERNEL_ABI"
PIN_VERSION="$KERNEL_VERSION"
if [ -n "${V4V_KERNEL_PIN:-}" ]; then
    PIN_ABI="${V4V_KERNEL_PIN%%:*}"
    PIN_VERSION="${V4V_KERNEL_PIN#*:}"
fi
XEN_TOOLS_PIN="${V4V_XEN_TOOLS_PIN:-$XEN_TOOLS_PIN}"

# Every binary package of Xen's source the dom0 uses, at one version (the
# tools' own; apt would otherwise take the newest libraries).
XEN_PKGS=("xen-utils-$STACK" "libxenmisc$STACK" xen-utils-common libxencall1 libxenevtchn1
    libxenforeignmemory1 libxengnttab1 libxenstore4 libxentoollog1
    libxentoolcore1 libxendevicemodel1 libxenhypfs1 xenstore-utils)

# Xen's tools and kernel modules the dom0 needs, in load order.
XEN_BINS=(xl xenstored xenconsoled xen-init-dom0)
MODULES=(drivers/xen/xen-evtchn drivers/xen/xen-privcmd drivers/xen/xen-gntdev
    drivers/xen/xen-gntalloc drivers/xen/xenfs/xenfs)
# The PV network's backend and a bridge, in load order, for the boots that
# give domUs a vif (the vsock benchmark: TCP next to AF_VSOCK). They go to
# /lib/modules/net, which /init leaves alone: a scenario loads them itself.
NET_MODULES=(net/llc/llc net/802/stp net/bridge/bridge
    drivers/net/xen-netback/xen-netback)
# xenstore-read/-write/-rm (one binary, from xenstore-utils): what a vif
# hotplug script needs to tell netback that the vif is plugged in.
XENSTORE_TOOLS=(xenstore-read xenstore-write xenstore-rm)

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${V4V_CACHE:-$ROOT/build/cache}/dom0-$STACK"
DEBS="$CACHE/debs"
TREE="$CACHE/tree"
CHOICES="$CACHE/pins.choice"
OUT="$ROOT/build/dom0-$STACK"
ROOTFS="$OUT/rootfs"

log() { printf 'dom0-image: %s\n' "$*" >&2; }
die() { printf 'dom0-image: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# suite_apt, suite_in_index, suite_candidate, suite_pick, pin_warning,
# suite_tree; then deb_file, in_index, apt_candidate, apt_download,
# fetch_debs on $DEBS_SUITE's index.
. "$ROOT/scripts/suite.sh"
DEBS_SUITE="$SUITE"
. "$ROOT/scripts/debs.sh"

# --- remembered choices -------------------------------------------------------
# $CHOICES: one line per pinned package and pin, "PKG PIN CHOSEN": what was
# used for that pin (CHOSEN differs from PIN after a fallback).

# cached_choice PKG PIN: CHOSEN for that PKG and PIN, or nothing.
cached_choice() {
    [ -f "$CHOICES" ] || return 0
    awk -v p="$1" -v v="$2" '$1 == p && $2 == v { print $3; exit }' "$CHOICES"
}

# record_choice PKG PIN CHOSEN
record_choice() {
    [ "$(cached_choice "$1" "$2")" != "$3" ] || return 0
    mkdir -p "$CACHE"
    { [ -f "$CHOICES" ] && awk -v p="$1" -v v="$2" '!($1 == p && $2 == v)' "$CHOICES"; echo "$1 $2 $3"; } > "$CHOICES.tmp"
    mv "$CHOICES.tmp" "$CHOICES"
}

# warn_if_fallback PKG PIN CHOSEN: the loud warning again on a cached run.
warn_if_fallback() {
    [ "$2" = "$3" ] || pin_warning "$1" "$2" "$3"
}

# --- the package tree -----------------------------------------------------------
# tree_specs XEN BUSYBOX YAJL: TREE_SPECS, the packages of the tree.
tree_specs() {
    local p
    TREE_SPECS=()
    for p in "${XEN_PKGS[@]}"; do TREE_SPECS+=("$p=$1"); done
    TREE_SPECS+=("busybox-static=$2" "libyajl2=$3")
    XEN_TOOLS_VERSION="$1"
}

tree_current() {
    [ -f "$CACHE/tree.stamp" ] && [ "$(cat "$CACHE/tree.stamp")" = "$SUITE ${TREE_SPECS[*]}" ] &&
        [ -d "$TREE/usr" ]
}

# tree: every package but the kernel, with all its dependencies, extracted
# by mmdebstrap into $TREE. With the choices of an earlier run and the tree
# they made, nothing is asked of apt.
tree() {
    local xv bv yv
    xv="$(cached_choice "xen-utils-$STACK" "$XEN_TOOLS_PIN")"
    bv="$(cached_choice busybox-static "$BUSYBOX_PIN")"
    yv="$(cached_choice libyajl2 "$YAJL_PIN")"
    if [ -n "$xv" ] && [ -n "$bv" ] && [ -n "$yv" ]; then
        tree_specs "$xv" "$bv" "$yv"
        if tree_current; then
            warn_if_fallback "xen-utils-$STACK" "$XEN_TOOLS_PIN" "$xv"
            warn_if_fallback busybox-static "$BUSYBOX_PIN" "$bv"
            warn_if_fallback libyajl2 "$YAJL_PIN" "$yv"
            return 0
        fi
    fi
    # The pins against the archive as it is now.
    xv="$(suite_pick "$SUITE" "xen-utils-$STACK" "$XEN_TOOLS_PIN")"
    bv="$(suite_pick "$SUITE" busybox-static "$BUSYBOX_PIN")"
    yv="$(suite_pick "$SUITE" libyajl2 "$YAJL_PIN")"
    record_choice "xen-utils-$STACK" "$XEN_TOOLS_PIN" "$xv"
    record_choice busybox-static "$BUSYBOX_PIN" "$bv"
    record_choice libyajl2 "$YAJL_PIN" "$yv"
    tree_specs "$xv" "$bv" "$yv"
    tree_current && return 0
    rm -f "$CACHE/tree.stamp"
    suite_tree "$SUITE" "$TREE" "${TREE_SPECS[@]}"
    echo "$SUITE ${TREE_SPECS[*]}" > "$CACHE/tree.stamp"
}

# --- the kernel -----------------------------------------------------------------
# use_kernel ABI VERSION: the kernel the rest of the build uses.
use_kernel() {
    KERNEL_ABI="$1"
    KERNEL_VERSION="$2"
    KERNEL_PKG="linux-image-$KERNEL_ABI-amd64"
    KERNEL_RELEASE="$KERNEL_ABI-amd64"
}

# fetch_pinned_kernel: the pinned kernel's .deb is (now) cached.
fetch_pinned_kernel() {
    local spec="linux-image-$PIN_ABI-amd64=$PIN_VERSION"
    [ -s "$(deb_file "$spec")" ] && return 0
    in_index "$spec" || return 1
    log "apt-get download ($SUITE) $spec"
    apt_download "$spec" && [ -s "$(deb_file "$spec")" ] \
        || die "$spec is in $SUITE's index but cannot be downloaded"
}

# fallback_kernel: the newest downloadable linux-image-ABI-amd64 of the
# stack's series (the pin's flavour: no -rt, -cloud, -dbg, -unsigned),
# printed as ABI VERSION.
fallback_kernel() {
    local pkg ver tries=0
    while read -r pkg; do
        ver="$(apt_candidate "$pkg")"
        [ -n "$ver" ] || continue
        if [ -s "$(deb_file "$pkg=$ver")" ] || {
                log "apt-get download ($SUITE) $pkg=$ver"
                apt_download "$pkg=$ver" && [ -s "$(deb_file "$pkg=$ver")" ]
            }; then
            pkg="${pkg#linux-image-}"
            echo "${pkg%-amd64} $ver"
            return 0
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 3 ] || break
    done < <(suite_apt "$SUITE" apt-cache pkgnames "$KERNEL_NAMES" |
        grep -E "^linux-image-${KERNEL_SERIES_RE}-amd64\$" | sort -r -V)
    return 1
}

kernel_warning() {
    pin_warning "kernel linux-image-$PIN_ABI-amd64" "$PIN_VERSION" "linux-image-$KERNEL_ABI-amd64 $KERNEL_VERSION"
    log "WARNING: update the pin in scripts/dom0-image.sh (stack $STACK):" \
        "KERNEL_ABI=\"$KERNEL_ABI\" KERNEL_VERSION=\"$KERNEL_VERSION\""
}

# choose_kernel: the pinned kernel if it can be had (cached or downloadable),
# else the fallback; the choice is remembered per pin in $CHOICES, so that
# a cached build does not ask apt again.
choose_kernel() {
    local pin="$PIN_ABI $PIN_VERSION" key="kernel" chosen abi ver
    mkdir -p "$DEBS"
    if [ -s "$(deb_file "linux-image-$PIN_ABI-amd64=$PIN_VERSION")" ]; then
        use_kernel $pin
        record_choice "$key" "$PIN_ABI:$PIN_VERSION" "$PIN_ABI:$PIN_VERSION"
        return 0
    fi
    chosen="$(cached_choice "$key" "$PIN_ABI:$PIN_VERSION")"
    if [ -n "$chosen" ] && [ -s "$(deb_file "linux-image-${chosen%%:*}-amd64=${chosen#*:}")" ]; then
        use_kernel "${chosen%%:*}" "${chosen#*:}"
        kernel_warning
        return 0
    fi
    if fetch_pinned_kernel; then
        use_kernel $pin
        record_choice "$key" "$PIN_ABI:$PIN_VERSION" "$PIN_ABI:$PIN_VERSION"
        return 0
    fi
    log "linux-image-$PIN_ABI-amd64 $PIN_VERSION is not in $SUITE; looking for the newest $KERNEL_SERIES"
    read -r abi ver < <(fallback_kernel) \
        || die "no $KERNEL_SERIES can be downloaded from $SUITE (pinned: linux-image-$PIN_ABI-amd64 $PIN_VERSION)"
    use_kernel "$abi" "$ver"
    record_choice "$key" "$PIN_ABI:$PIN_VERSION" "$abi:$ver"
    kernel_warning
}

# kernel_env: build/dom0-VER/kernel.env, rewritten only when it changes.
kernel_env() {
    local env="$OUT/kernel.env" text
    text="$(printf 'KERNEL_ABI=%s\nKERNEL_VERSION=%s\nKERNEL_RELEASE=%s' \
        "$KERNEL_ABI" "$KERNEL_VERSION" "$KERNEL_RELEASE")"
    if [ -f "$env" ] && [ "$(cat "$env")" = "$text" ]; then return 0; fi
    mkdir -p "$OUT"
    printf '%s\n' "$text" > "$env.tmp"
    mv "$env.tmp" "$env"
}

# The plain ELF vmlinux inside a bzImage: the boot protocol header gives
# the compressed payload's place (setup_sects at 0x1f1, payload_offset and
# payload_length at 0x248/0x24c, relative to the protected-mode code that
# follows the setup sectors); the payload's magic says how it is packed:
# XZ (Debian 12's 6.1) or zstd (Debian 13's 6.12; Python has no zstd
# module, so the zstd tool unpacks it).
extract_vmlinux() {
    python3 - "$1" "$2" <<'PY'
import gzip, io, lzma, os, struct, subprocess, sys
src, dst = sys.argv[1], sys.argv[2]
img = open(src, "rb").read()
if img[0x202:0x206] != b"HdrS":
    sys.exit(f"{src}: not a bzImage (no HdrS)")
setup_sects = img[0x1f1] or 4
off, length = struct.unpack_from("<II", img, 0x248)
start = (setup_sects + 1) * 512 + off
payload = img[start:start + length]
if payload.startswith(b"\xfd7zXZ\x00"):
    # The decompressor stops at the end of the XZ stream (the kernel's
    # 4-byte size trailer is left over).
    d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    elf = d.decompress(payload)
elif payload.startswith(b"\x1f\x8b"):
    elf = gzip.GzipFile(fileobj=io.BytesIO(payload)).read()
elif payload.startswith(b"\x28\xb5\x2f\xfd"):
    # Without the kernel's 4-byte size trailer, which zstd would take
    # for a broken second frame.
    elf = subprocess.run(["zstd", "-dcq"], input=payload[:-4], stdout=subprocess.PIPE,
                         check=True).stdout
else:
    sys.exit(f"{src}: unknown payload compression {payload[:6].hex()}")
if not elf.startswith(b"\x7fELF"):
    sys.exit(f"{src}: payload is not an ELF image")
with open(dst + ".tmp", "wb") as f:
    f.write(elf)
os.replace(dst + ".tmp", dst)
print(f"{dst}: {len(elf)} bytes from a {length}-byte payload")
PY
}

# kernel: vmlinux and the modules (plain .ko), straight out of the kernel
# package, into $CACHE/kernel/modules/M.ko. Debian 12 ships the modules
# under /lib/modules, uncompressed; Debian 13 under /usr/lib/modules,
# xz-compressed.
kernel() {
    local stamp="$CACHE/kernel.stamp" key="$KERNEL_PKG=$KERNEL_VERSION"
    local kdir="$CACHE/kernel" mods=("${MODULES[@]}" "${NET_MODULES[@]}")
    local skey="$key ${mods[*]}"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$skey" ] && [ -s "$OUT/vmlinux" ]; then
        return 0
    fi
    log "extracting the kernel $key"
    rm -rf "$kdir" "$stamp" && mkdir -p "$kdir/x" "$kdir/modules" "$OUT"
    local m pats=("./boot/vmlinuz-$KERNEL_RELEASE")
    for m in "${mods[@]}"; do
        pats+=("*lib/modules/$KERNEL_RELEASE/kernel/$m.ko*")
    done
    dpkg-deb --fsys-tarfile "$(deb_file "$key")" | tar -x -C "$kdir/x" --wildcards "${pats[@]}" ||
        die "vmlinuz or a module is missing from $KERNEL_PKG"
    extract_vmlinux "$kdir/x/boot/vmlinuz-$KERNEL_RELEASE" "$OUT/vmlinux" >&2
    local mdir="$kdir/x/lib/modules/$KERNEL_RELEASE/kernel"
    [ -d "$mdir" ] || mdir="$kdir/x/usr/lib/modules/$KERNEL_RELEASE/kernel"
    for m in "${mods[@]}"; do
        mkdir -p "$kdir/modules/$(dirname "$m")"
        if [ -f "$mdir/$m.ko" ]; then
            cp "$mdir/$m.ko" "$kdir/modules/$m.ko"
        elif [ -f "$mdir/$m.ko.xz" ]; then
            xz -dc "$mdir/$m.ko.xz" > "$kdir/modules/$m.ko"
        else
            die "module $m not in $KERNEL_PKG"
        fi
    done
    rm -rf "$kdir/x"
    echo "$skey" > "$stamp"
    # One kernel .deb in the cache: drop those of earlier pins or fallbacks.
    find "$DEBS" -maxdepth 1 -name 'linux-image-*.deb' \
        ! -name "$(basename "$(deb_file "$key")")" -print -delete |
        sed 's/^/dom0-image: removed old /' >&2
}

# --- the image ------------------------------------------------------------------
# tree_file PATH: PATH (absolute, as on the target) inside $TREE, with
# every symlink resolved inside the tree (Debian 12's loader link is
# absolute, /lib64/... -> /lib/x86_64-linux-gnu/..., and must not lead to
# the host's file); the tree is tried at PATH and at /usr/PATH (merged /usr).
tree_file() {
    local p="$1" cand n target
    for cand in "$p" "/usr$p"; do
        p="$cand"
        n=0
        while [ -L "$TREE$p" ] && [ "$n" -lt 40 ]; do
            target="$(readlink "$TREE$p")"
            case "$target" in /*) p="$target" ;; *) p="$(dirname "$p")/$target" ;; esac
            p="$(realpath -m -s "$p")"
            n=$((n + 1))
        done
        if [ -f "$TREE$p" ]; then echo "$TREE$p"; return 0; fi
        # A merged-/usr tree reached through /lib, /bin: retry under /usr.
        case "$p" in /usr/*) ;; *) if [ -f "$TREE/usr$p" ]; then echo "$TREE/usr$p"; return 0; fi ;; esac
    done
    return 1
}

# The folders the tree's libraries live in, for the tree's loader.
tree_libpath() {
    local d out=()
    for d in /lib/x86_64-linux-gnu /usr/lib/x86_64-linux-gnu /lib /usr/lib; do
        [ -d "$TREE$d" ] && [ ! -L "$TREE$d" ] && out+=("$TREE$d")
    done
    (IFS=:; echo "${out[*]}")
}

# needed_libs BINARY: the shared objects it loads, by the names it asks
# for, as "NAME PATH" lines, listed by the tree's own loader and checked
# to lie inside the tree (the loader falls back to the host's folders for
# a name the tree lacks: that is an error here, never a host library).
needed_libs() {
    local ldso out
    ldso="$(tree_file /lib64/ld-linux-x86-64.so.2)" || die "no dynamic loader in $TREE"
    out="$("$ldso" --library-path "$(tree_libpath)" --list "$1")" || die "the tree's loader cannot list $1"
    printf '%s\n' "$out" | awk -v tree="$TREE/" -v bin="$1" '
        /not found/ { print "dom0-image: error: " bin ": " $1 " not found in the tree" > "/dev/stderr"; bad = 1; next }
        $2 == "=>" && $1 !~ /^\// {
            if (index($3, tree) != 1) { print "dom0-image: error: " bin ": " $1 " would come from the host (" $3 ")" > "/dev/stderr"; bad = 1; next }
            print $1, $3 }
        END { exit bad }' || die "libraries of $1 not all in the tree"
}

# tree_bin PATH...: the first of the PATHs (absolute, as on the target)
# that the tree has.
tree_bin() {
    local p f
    for p in "$@"; do
        if f="$(tree_file "$p")"; then echo "$f"; return 0; fi
    done
    die "none of $* in $TREE"
}

rootfs() {
    local inputs key stamp="$OUT/rootfs.stamp"
    inputs=("$0" "$ROOT/scripts/suite.sh" "$ROOT/scripts/debs.sh" "$ROOT/dom0/init" "$ROOT/dom0/lib.sh")
    key="$(cat "$CACHE/tree.stamp" "$CACHE/kernel.stamp" "${inputs[@]}" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -d "$ROOTFS" ]; then
        return 0
    fi
    log "assembling $ROOTFS"
    rm -rf "$ROOTFS" "$stamp"
    mkdir -p "$ROOTFS"
    local d
    for d in bin sbin usr/bin usr/sbin lib/x86_64-linux-gnu lib64 lib/modules/v4v lib/modules/net \
        proc sys dev tmp root etc/xen etc/v4v boot \
        var/lib/xen var/run/xen var/run/xenstored var/log/xen/console var/lock; do
        mkdir -p "$ROOTFS/$d"
    done
    # One place for every library, /lib (what Debian 12's layout was).
    ln -s ../lib "$ROOTFS/usr/lib"
    chmod 1777 "$ROOTFS/tmp"

    # busybox and a symlink for each applet.
    local applet busybox
    busybox="$(tree_bin /bin/busybox)"
    install -m 755 "$busybox" "$ROOTFS/bin/busybox"
    while read -r applet; do
        [ "$applet" = bin/busybox ] && continue
        [ -e "$ROOTFS/$applet" ] || [ -L "$ROOTFS/$applet" ] && continue
        case "$applet" in usr/*) ln -s ../../bin/busybox "$ROOTFS/$applet" ;;
                          *) ln -s ../bin/busybox "$ROOTFS/$applet" ;; esac
    done < <("$ROOTFS/bin/busybox" --list-full)

    # Xen's tools, where Debian puts them (/usr/lib/xen-VER/bin), and in the
    # PATH (/usr/sbin): nothing in dom0/ names the version's folder.
    local b src xbin="lib/xen-$STACK/bin" libs=() name path list
    mkdir -p "$ROOTFS/$xbin"
    for b in "${XEN_BINS[@]}"; do
        src="$(tree_bin "/usr/$xbin/$b")"
        install -m 755 "$src" "$ROOTFS/$xbin/$b"
        ln -sf "/$xbin/$b" "$ROOTFS/usr/sbin/$b"
        list="$(needed_libs "$src")"
        while read -r name path; do libs+=("$name=$path"); done <<< "$list"
    done
    # The xenstore client, under the names it answers to.
    src="$(tree_bin /usr/bin/xenstore)"
    install -m 755 "$src" "$ROOTFS/usr/bin/xenstore"
    for b in "${XENSTORE_TOOLS[@]}"; do ln -sf xenstore "$ROOTFS/usr/bin/$b"; done
    list="$(needed_libs "$src")"
    while read -r name path; do libs+=("$name=$path"); done <<< "$list"
    # glibc dlopens libgcc_s for pthread_cancel; xl aborts without it.
    path="$(tree_bin /lib/x86_64-linux-gnu/libgcc_s.so.1)"
    libs+=("libgcc_s.so.1=$path")
    # Each under the name it is asked for, symlinks resolved in the tree.
    local lib
    while read -r lib; do
        name="${lib%%=*}"
        path="$(realpath -s "${lib#*=}")"
        path="$(tree_file "/${path#"$TREE/"}")" || die "${lib#*=} is not a file in the tree"
        install -m 644 "$path" "$ROOTFS/lib/x86_64-linux-gnu/$name"
    done < <(printf '%s\n' "${libs[@]}" | sort -u)
    # The loader, at the path the binaries ask for (PT_INTERP).
    path="$(tree_file /lib64/ld-linux-x86-64.so.2)" || die "no dynamic loader in $TREE"
    install -m 755 "$path" "$ROOTFS/lib64/ld-linux-x86-64.so.2"
    grep -aq "GNU C Library" "$ROOTFS/lib/x86_64-linux-gnu/libc.so.6" || die "no C library in the image"

    # Modules, flat, in load order (init loads them by this list).
    local i=0 m
    for m in "${MODULES[@]}"; do
        i=$((i + 1))
        install -m 644 "$CACHE/kernel/modules/$m.ko" "$ROOTFS/lib/modules/v4v/$i-$(basename "$m").ko"
    done
    i=0
    for m in "${NET_MODULES[@]}"; do
        i=$((i + 1))
        install -m 644 "$CACHE/kernel/modules/$m.ko" "$ROOTFS/lib/modules/net/$i-$(basename "$m").ko"
    done

    : > "$ROOTFS/etc/xen/xl.conf"
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOTFS/etc/passwd"
    printf 'root:x:0:\n' > "$ROOTFS/etc/group"
    echo "$KERNEL_PKG $KERNEL_VERSION, Xen tools $XEN_TOOLS_VERSION (Debian $SUITE)" > "$ROOTFS/etc/v4v/versions"
    install -m 755 "$ROOT/dom0/init" "$ROOTFS/init"
    install -m 644 "$ROOT/dom0/lib.sh" "$ROOTFS/etc/v4v/lib.sh"
    echo "$key" > "$stamp"
}

build() {
    [[ "$PIN_ABI" =~ ^${KERNEL_SERIES_RE}$ ]] && [ -n "$PIN_VERSION" ] && [ "$PIN_VERSION" != "$PIN_ABI" ] ||
        die "bad kernel pin '$PIN_ABI:$PIN_VERSION' for stack $STACK (V4V_KERNEL_PIN=ABI:VERSION, e.g. $KERNEL_PIN_EXAMPLE)"
    tree
    choose_kernel
    kernel
    kernel_env
    rootfs
    local text
    text="$(cat "$ROOTFS/etc/v4v/versions")"
    if ! [ -f "$OUT/image.stamp" ] || [ "$(cat "$OUT/image.stamp")" != "$text" ]; then
        echo "$text" > "$OUT/image.stamp"
    fi
}

# pack OUT DIR...: base tree + overlays, as an uncompressed newc cpio.
pack() {
    [ $# -ge 1 ] || die "usage: $0 pack OUT.cpio [DIR...]"
    local out="$1"; shift
    local d
    for d in "$@"; do [ -d "$d" ] || die "overlay $d is not a directory"; done
    build
    stage="$(mktemp -d "$OUT/pack.XXXXXX")"
    trap 'rm -rf "$stage"' EXIT
    cp -a "$ROOTFS/." "$stage/"
    for d in "$@"; do cp -a "$d/." "$stage/"; done
    mkdir -p "$(dirname "$out")"
    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet) > "$out.tmp"
    mv "$out.tmp" "$out"
    log "packed $out ($(du -h "$out" | cut -f1))"
}

case "${1:-build}" in
    build) build ;;
    pack) shift; pack "$@" ;;
    kernel-env) build >&2; cat "$OUT/kernel.env" ;;
    *) die "usage: $0 [build] | pack OUT.cpio [DIR...] | kernel-env" ;;
esac
