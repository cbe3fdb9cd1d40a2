#!/usr/bin/env bash
# The Linux dom0 for multi-domain boots: a Debian kernel (plain ELF vmlinux)
# and an initramfs with busybox and Xen's toolstack (xl, xenstored,
# xenconsoled, the xenstore client), all from pinned Debian bookworm
# packages; the network backend and bridge modules ride along unloaded.
#
#   scripts/dom0-image.sh                 build build/dom0/vmlinux and the
#                                         base tree build/dom0/rootfs
#   scripts/dom0-image.sh pack OUT DIR... the base tree plus each DIR laid
#                                         over / as an uncompressed newc cpio
#   scripts/dom0-image.sh kernel-env      print build/dom0/kernel.env (building
#                                         first if needed): KERNEL_ABI,
#                                         KERNEL_VERSION, KERNEL_RELEASE of the
#                                         kernel actually used, shell-sourceable
#                                         (for linux-headers-$KERNEL_ABI-amd64)
#
# Idempotent and cached: the .debs are fetched once with `apt-get download`
# into build/cache/dom0/debs (nothing is installed system-wide); the kernel
# and the tree are rebuilt only when a pinned version or an input changes.
#
# The kernel pin is the first choice. Debian's security suite keeps only a
# few kernel ABIs, so when the pinned one has left the archive (not in apt's
# index even after an apt-get update) the newest downloadable
# linux-image-6.1.0-N-amd64 (same flavour) is used instead, with a loud
# warning: update the pin then. The choice is cached per pin, so later runs
# use it without asking apt; only the kernel in use keeps its .deb in the
# cache. V4V_KERNEL_PIN=ABI:VERSION (e.g.
# 6.1.0-56:6.1.192-2) overrides the pin, e.g. to test the fallback with a
# pin that does not exist.
#
# Libraries: the Xen libraries and libyajl come from the pinned packages;
# the C library and the other system libraries they link against (libc,
# libuuid, liblzma, zlib, libzstd, libgcc_s) are copied
# from this machine's /lib, found with ldd. The build machine and CI are
# Debian 12, whose glibc (2.36) is what the bookworm Xen tools are built
# against; the copied set (loader included) is self-consistent whatever
# the host's point release. scripts/setup.sh installs those libraries.
set -euo pipefail

# --- pinned Debian bookworm packages --------------------------------------
# The kernel: a later step needs the matching linux-headers-$KERNEL_ABI-amd64
# (build/dom0/kernel.env says which kernel was actually used; choose_kernel
# resets KERNEL_* to it).
KERNEL_ABI="6.1.0-57"
KERNEL_VERSION="6.1.192-3"
PIN_ABI="$KERNEL_ABI"
PIN_VERSION="$KERNEL_VERSION"
if [ -n "${V4V_KERNEL_PIN:-}" ]; then
    PIN_ABI="${V4V_KERNEL_PIN%%:*}"
    PIN_VERSION="${V4V_KERNEL_PIN#*:}"
fi
XEN_VERSION="4.17.5+72-g01140da4e8-1"   # the hypervisor source's version
YAJL_VERSION="2.1.0-3+deb12u2"
BUSYBOX_VERSION="1:1.35.0-4+deb12u1+b1"

XEN_PKGS=(xen-utils-4.17 libxenmisc4.17 libxencall1 libxenevtchn1
    libxenforeignmemory1 libxengnttab1 libxenstore4 libxentoollog1
    libxentoolcore1 libxendevicemodel1 libxenhypfs1 xenstore-utils)
PINNED=()
for p in "${XEN_PKGS[@]}"; do PINNED+=("$p=$XEN_VERSION"); done
PINNED+=("libyajl2=$YAJL_VERSION" "busybox-static=$BUSYBOX_VERSION")

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
CACHE="${V4V_CACHE:-$ROOT/build/cache}/dom0"
DEBS="$CACHE/debs"
OUT="$ROOT/build/dom0"
ROOTFS="$OUT/rootfs"

log() { printf 'dom0-image: %s\n' "$*" >&2; }
die() { printf 'dom0-image: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# deb_file, apt_update_once, apt_download, in_index, apt_candidate, fetch_debs.
. "$ROOT/scripts/debs.sh"

# fetch: every package but the kernel (see choose_kernel).
fetch() {
    fetch_debs "${PINNED[@]}"
}

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
    if in_index "$spec"; then
        log "apt-get download $spec"
        apt_download "$spec" && [ -s "$(deb_file "$spec")" ] && return 0
    fi
    log "$spec: not in apt's index (or not downloadable); apt-get update"
    apt_update_once
    in_index "$spec" || return 1
    log "apt-get download $spec"
    apt_download "$spec" && [ -s "$(deb_file "$spec")" ] \
        || die "$spec is in apt's index but cannot be downloaded"
}

# fallback_kernel: the newest downloadable linux-image-6.1.0-N-amd64 (the
# pin's flavour: no -rt, -cloud, -dbg, -unsigned), printed as ABI VERSION.
fallback_kernel() {
    local pkg ver tries=0
    while read -r pkg; do
        ver="$(apt_candidate "$pkg")"
        [ -n "$ver" ] || continue
        if [ -s "$(deb_file "$pkg=$ver")" ] || {
                log "apt-get download $pkg=$ver"
                apt_download "$pkg=$ver" && [ -s "$(deb_file "$pkg=$ver")" ]
            }; then
            pkg="${pkg#linux-image-}"
            echo "${pkg%-amd64} $ver"
            return 0
        fi
        tries=$((tries + 1))
        [ "$tries" -lt 3 ] || break
    done < <(apt-cache pkgnames linux-image-6.1.0- |
        grep -E '^linux-image-6\.1\.0-[0-9]+-amd64$' | sort -r -V)
    return 1
}

kernel_warning() {
    local bar="!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    {
        echo "$bar"
        echo "dom0-image: WARNING: the pinned kernel linux-image-$PIN_ABI-amd64 $PIN_VERSION"
        echo "dom0-image: WARNING: is no longer in the archive; using the newest available,"
        echo "dom0-image: WARNING: linux-image-$KERNEL_ABI-amd64 $KERNEL_VERSION, instead."
        echo "dom0-image: WARNING: Update the pin: KERNEL_ABI=\"$KERNEL_ABI\" KERNEL_VERSION=\"$KERNEL_VERSION\""
        echo "dom0-image: WARNING: in scripts/dom0-image.sh."
        echo "$bar"
    } >&2
}

# choose_kernel: the pinned kernel if it can be had (cached or downloadable),
# else the fallback; the fallback choice is remembered per pin in
# $CACHE/kernel.choice so that a cached build does not ask apt again.
choose_kernel() {
    local pin="$PIN_ABI $PIN_VERSION" choice="$CACHE/kernel.choice"
    local cpin_abi cpin_ver abi ver
    mkdir -p "$DEBS"
    if [ -s "$(deb_file "linux-image-$PIN_ABI-amd64=$PIN_VERSION")" ]; then
        use_kernel $pin
        rm -f "$choice"
        return 0
    fi
    if [ -f "$choice" ] && read -r cpin_abi cpin_ver abi ver < "$choice" &&
        [ "$cpin_abi $cpin_ver" = "$pin" ] &&
        [ -s "$(deb_file "linux-image-$abi-amd64=$ver")" ]; then
        use_kernel "$abi" "$ver"
        kernel_warning
        return 0
    fi
    if fetch_pinned_kernel; then
        use_kernel $pin
        rm -f "$choice"
        return 0
    fi
    log "linux-image-$PIN_ABI-amd64 $PIN_VERSION is not in the archive; looking for the newest linux-image-6.1.0-N-amd64"
    read -r abi ver < <(fallback_kernel) \
        || die "no linux-image-6.1.0-N-amd64 can be downloaded (pinned: linux-image-$PIN_ABI-amd64 $PIN_VERSION)"
    use_kernel "$abi" "$ver"
    echo "$pin $abi $ver" > "$choice"
    kernel_warning
}

# kernel_env: build/dom0/kernel.env, rewritten only when it changes.
kernel_env() {
    local env="$OUT/kernel.env" text
    text="$(printf 'KERNEL_ABI=%s\nKERNEL_VERSION=%s\nKERNEL_RELEASE=%s' \
        "$KERNEL_ABI" "$KERNEL_VERSION" "$KERNEL_RELEASE")"
    if [ -f "$env" ] && [ "$(cat "$env")" = "$text" ]; then return 0; fi
    mkdir -p "$OUT"
    printf '%s\n' "$text" > "$env.tmp"
    mv "$env.tmp" "$env"
}

# unpack: every package but the kernel (not in PINNED), whole, into one tree.
unpack() {
    local tree="$CACHE/pkgs" stamp="$CACHE/pkgs.stamp" spec
    local key="${PINNED[*]}"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then return 0; fi
    log "unpacking packages"
    rm -rf "$tree" && mkdir -p "$tree"
    for spec in "${PINNED[@]}"; do
        dpkg-deb -x "$(deb_file "$spec")" "$tree"
    done
    echo "$key" > "$stamp"
}

# The plain ELF vmlinux inside a bzImage: the boot protocol header gives
# the compressed payload's place (setup_sects at 0x1f1, payload_offset and
# payload_length at 0x248/0x24c, relative to the protected-mode code that
# follows the setup sectors); the payload's magic says how it is packed.
extract_vmlinux() {
    python3 - "$1" "$2" <<'PY'
import gzip, io, lzma, os, struct, sys
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

# kernel: vmlinux and the modules, straight out of the kernel package.
kernel() {
    local stamp="$CACHE/kernel.stamp" key="$KERNEL_PKG=$KERNEL_VERSION"
    local kdir="$CACHE/kernel" mods=("${MODULES[@]}" "${NET_MODULES[@]}")
    local skey="$key ${mods[*]}"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$skey" ] && [ -s "$OUT/vmlinux" ]; then
        return 0
    fi
    log "extracting the kernel $key"
    rm -rf "$kdir" && mkdir -p "$kdir" "$OUT"
    local m pats=("./boot/vmlinuz-$KERNEL_RELEASE")
    for m in "${mods[@]}"; do
        pats+=("./lib/modules/$KERNEL_RELEASE/kernel/$m.ko*")
    done
    dpkg-deb --fsys-tarfile "$(deb_file "$key")" | tar -x -C "$kdir" --wildcards "${pats[@]}"
    extract_vmlinux "$kdir/boot/vmlinuz-$KERNEL_RELEASE" "$OUT/vmlinux" >&2
    for m in "${mods[@]}"; do
        local ko="$kdir/lib/modules/$KERNEL_RELEASE/kernel/$m.ko"
        if [ -f "$ko.xz" ]; then xz -d -f "$ko.xz"; fi
        [ -f "$ko" ] || die "module $m not in $KERNEL_PKG"
    done
    echo "$skey" > "$stamp"
    # One kernel .deb in the cache: drop those of earlier pins or fallbacks.
    find "$DEBS" -maxdepth 1 -name 'linux-image-*.deb' \
        ! -name "$(basename "$(deb_file "$key")")" -print -delete |
        sed 's/^/dom0-image: removed old /' >&2
}

# copy_lib PATH: a shared object into the tree at the same path, under its
# own (soname) name, with symlinks resolved.
copy_lib() {
    local src="$1" rel
    case "$src" in
        "$CACHE/pkgs/"*) rel="${src#"$CACHE/pkgs/"}" ;;
        /*) rel="${src#/}" ;;
        *) die "odd library path $src" ;;
    esac
    # Debian 12 is merged-/usr: keep one place for everything, /lib.
    rel="${rel#usr/}"
    mkdir -p "$ROOTFS/$(dirname "$rel")"
    cp -L "$src" "$ROOTFS/$rel"
}

# needed_libs BINARY: the shared objects it loads, one a line (MISSING:NAME
# for one ldd cannot find): the packages' libraries first, then the host's.
needed_libs() {
    LD_LIBRARY_PATH="$CACHE/pkgs/usr/lib/x86_64-linux-gnu" ldd "$1" |
        awk '/not found/ { print "MISSING:" $1; next }
             $2 == "=>" && $3 ~ /^\// { print $3; next }
             $1 ~ /^\// { print $1 }'
}

rootfs() {
    local inputs key stamp="$OUT/rootfs.stamp"
    inputs=("$0" "$ROOT/dom0/init" "$ROOT/dom0/lib.sh")
    key="$(cat "$CACHE/pkgs.stamp" "$CACHE/kernel.stamp" "${inputs[@]}" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -d "$ROOTFS" ]; then
        return 0
    fi
    log "assembling $ROOTFS"
    rm -rf "$ROOTFS" "$stamp"
    mkdir -p "$ROOTFS"
    local pk="$CACHE/pkgs" d
    for d in bin sbin usr/bin usr/sbin lib/x86_64-linux-gnu lib64 lib/modules/v4v \
        proc sys dev tmp root etc/xen etc/v4v boot \
        var/lib/xen var/run/xen var/run/xenstored var/log/xen/console var/lock; do
        mkdir -p "$ROOTFS/$d"
    done
    ln -s lib "$ROOTFS/usr/lib"
    chmod 1777 "$ROOTFS/tmp"

    # busybox and a symlink for each applet.
    install -m 755 "$pk/bin/busybox" "$ROOTFS/bin/busybox"
    local applet
    while read -r applet; do
        [ "$applet" = bin/busybox ] && continue
        [ -e "$ROOTFS/$applet" ] || [ -L "$ROOTFS/$applet" ] && continue
        case "$applet" in usr/*) ln -s ../../bin/busybox "$ROOTFS/$applet" ;;
                          *) ln -s ../bin/busybox "$ROOTFS/$applet" ;; esac
    done < <("$ROOTFS/bin/busybox" --list-full)

    # Xen's tools, where Debian puts them, and in the PATH.
    local b libs=() lib
    mkdir -p "$ROOTFS/lib/xen-4.17/bin"
    for b in "${XEN_BINS[@]}"; do
        install -m 755 "$pk/usr/lib/xen-4.17/bin/$b" "$ROOTFS/lib/xen-4.17/bin/$b"
        ln -sf "/lib/xen-4.17/bin/$b" "$ROOTFS/usr/sbin/$b"
        while read -r lib; do libs+=("$lib"); done < <(needed_libs "$pk/usr/lib/xen-4.17/bin/$b")
    done
    # The xenstore client, under the names it answers to.
    install -m 755 "$pk/usr/bin/xenstore" "$ROOTFS/usr/bin/xenstore"
    for b in "${XENSTORE_TOOLS[@]}"; do ln -sf xenstore "$ROOTFS/usr/bin/$b"; done
    while read -r lib; do libs+=("$lib"); done < <(needed_libs "$pk/usr/bin/xenstore")
    for lib in "${libs[@]}"; do
        case "$lib" in MISSING:*) die "${lib#MISSING:} not found (scripts/setup.sh installs the system libraries)" ;; esac
    done
    # glibc dlopens libgcc_s for pthread_cancel; xl aborts without it.
    libs+=(/lib/x86_64-linux-gnu/libgcc_s.so.1)
    for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do copy_lib "$lib"; done
    [ -x "$ROOTFS/lib64/ld-linux-x86-64.so.2" ] || die "no dynamic loader copied"

    # Modules, flat, in load order (init loads them by this list).
    local i=0 m
    for m in "${MODULES[@]}"; do
        i=$((i + 1))
        install -m 644 "$CACHE/kernel/lib/modules/$KERNEL_RELEASE/kernel/$m.ko" \
            "$ROOTFS/lib/modules/v4v/$i-$(basename "$m").ko"
    done
    mkdir -p "$ROOTFS/lib/modules/net"
    i=0
    for m in "${NET_MODULES[@]}"; do
        i=$((i + 1))
        install -m 644 "$CACHE/kernel/lib/modules/$KERNEL_RELEASE/kernel/$m.ko" \
            "$ROOTFS/lib/modules/net/$i-$(basename "$m").ko"
    done

    : > "$ROOTFS/etc/xen/xl.conf"
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$ROOTFS/etc/passwd"
    printf 'root:x:0:\n' > "$ROOTFS/etc/group"
    echo "$KERNEL_PKG $KERNEL_VERSION, Xen tools $XEN_VERSION" > "$ROOTFS/etc/v4v/versions"
    install -m 755 "$ROOT/dom0/init" "$ROOTFS/init"
    install -m 644 "$ROOT/dom0/lib.sh" "$ROOTFS/etc/v4v/lib.sh"
    echo "$key" > "$stamp"
}

build() {
    case "$PIN_ABI" in
        [0-9]*.*-[0-9]*) ;;
        *) die "bad kernel pin '$PIN_ABI:$PIN_VERSION' (V4V_KERNEL_PIN=ABI:VERSION, e.g. 6.1.0-56:6.1.192-2)" ;;
    esac
    fetch
    choose_kernel
    unpack
    kernel
    kernel_env
    rootfs
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
