#!/usr/bin/env bash
# Linux domUs that speak AF_VSOCK over V4V (issue 6): the kernel module in
# vsock-v4v/, built against Debian's headers for exactly the kernel the
# images boot, and a small initramfs for PV and PVH domUs (busybox, socat,
# vsock.ko and xen-netfront.ko from the kernel package, vsock-v4v.ko, the
# datagram tool vdgram and the benchmark vperf built static from
# vsock-v4v/tools, /init from dom0/vsock/domu-init, the benchmark's role
# script from dom0/vsock-bench/domu-bench.sh as /etc/v4v/vsock-bench.sh).
#
#   scripts/linux-domu.sh headers   fetch and unpack linux-headers-* and
#                                   linux-kbuild-* (build/cache/linux-VER;
#                                   6.1 only, see below)
#   scripts/linux-domu.sh module    build build/linux-VER/vsock-v4v.ko (-Werror)
#   scripts/linux-domu.sh image     the module, then build/linux-VER/domu.cpio
#   scripts/linux-domu.sh overlay D the image as a dom0 overlay in D:
#                                   /boot/linux-domu.cpio, /boot/vmlinux-domu
#
# VER is the Xen stack, V4V_XEN_VERSION (4.20, the default, or 4.17; see
# scripts/dom0-image.sh). The kernel is the one scripts/dom0-image.sh chose
# for that stack (build/dom0-VER/kernel.env, via its kernel-env
# subcommand), so headers, modules and image always match it: the headers
# and kbuild come from the stack's Debian suite (Debian 12's 6.1 for 4.17,
# Debian 13's 6.12 for 4.20), vsock.ko and xen-netfront.ko from the very
# kernel .deb dom0-image.sh fetched, busybox from its package tree.
# Idempotent and cached like dom0-image.sh: .debs are fetched once with
# `apt-get download` on a private apt index per suite (scripts/suite.sh,
# scripts/debs.sh) into build/cache/linux-VER/debs (nothing installed
# system-wide); every step is redone only when an input changed.
#
# How the module is built depends on the kernel's series (module): Debian
# 12's 6.1 headers on this Debian 12 host with its gcc-12 (the compiler
# they were made with); Debian 13's 6.12 headers inside a Debian 13 chroot
# (build/cache/linux-VER/root-ABI, made once by mmdebstrap, see
# scripts/suite.sh), since they carry gcc-14-only flags and the host has
# no gcc-14. The chroot is reused while the versions it was made for stay
# the same (no network then).
#
# Another kernel than the stack's (`headers` and `module` only: `image`
# and `overlay` take the kernel package and vmlinux from dom0-image.sh):
#   V4V_LINUX_KERNEL=ABI:VERSION  e.g. 6.12.118+deb13:6.12.118-1 (Debian
#                                 13's linux-image-6.12.118+deb13-amd64)
#   V4V_LINUX_KERNEL_ENV=FILE     a kernel.env to read (KERNEL_ABI,
#                                 KERNEL_VERSION), e.g. another dom0's
set -euo pipefail

STACK="${V4V_XEN_VERSION:-4.20}"
case "$STACK" in
    4.17) SUITE=bookworm ;;
    4.20) SUITE=trixie ;;
    *) printf 'linux-domu: error: V4V_XEN_VERSION must be 4.20 or 4.17, not %s\n' "$STACK" >&2; exit 1 ;;
esac

SOCAT_VERSION="1.7.4.4-2"
LIBWRAP_VERSION="7.6.q-32"
PYTHON_VERSION="3.11.2-6+deb12u8"
# What goes into the domU image from Debian (bookworm whatever the stack:
# the domU's userland does not talk to Xen's toolstack), unpacked into one
# tree: socat, and Python's interpreter with its minimal standard library
# (the vsock boot's pyvsock.py: AF_VSOCK from Python's own socket module).
IMAGE_SUITE=bookworm
IMAGE_PKGS=("socat=$SOCAT_VERSION" "libwrap0=$LIBWRAP_VERSION"
    "python3.11-minimal=$PYTHON_VERSION" "libpython3.11-minimal=$PYTHON_VERSION")

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${V4V_CACHE:-$ROOT/build/cache}/linux-$STACK"
DEBS="$CACHE/debs"
OUT="$ROOT/build/linux-$STACK"
DOM0_CACHE="${V4V_CACHE:-$ROOT/build/cache}/dom0-$STACK"
DOM0_OUT="$ROOT/build/dom0-$STACK"

log() { printf 'linux-domu: %s\n' "$*" >&2; }
die() { printf 'linux-domu: error: %s\n' "$*" >&2; exit 1; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

KERNEL_ENV_DONE=""
kernel_env() {
    [ -z "$KERNEL_ENV_DONE" ] || return 0
    KERNEL_ENV_DONE=1
    local env
    if [ -n "${V4V_LINUX_KERNEL:-}" ]; then
        KERNEL_ABI="${V4V_LINUX_KERNEL%%:*}"
        KERNEL_VERSION="${V4V_LINUX_KERNEL#*:}"
        [ "$KERNEL_ABI" != "$V4V_LINUX_KERNEL" ] || die "V4V_LINUX_KERNEL=ABI:VERSION, not $V4V_LINUX_KERNEL"
        log "kernel from V4V_LINUX_KERNEL: $KERNEL_ABI-amd64 $KERNEL_VERSION"
    elif [ -n "${V4V_LINUX_KERNEL_ENV:-}" ]; then
        [ -f "$V4V_LINUX_KERNEL_ENV" ] || die "no $V4V_LINUX_KERNEL_ENV (V4V_LINUX_KERNEL_ENV)"
        env="$(grep -E '^KERNEL_(ABI|VERSION)=' "$V4V_LINUX_KERNEL_ENV")"
        eval "$env"
        log "kernel from $V4V_LINUX_KERNEL_ENV: ${KERNEL_ABI:-?}-amd64 ${KERNEL_VERSION:-?}"
    else
        env="$(bash "$ROOT/scripts/dom0-image.sh" kernel-env)" || die "dom0-image.sh kernel-env failed"
        eval "$env"
    fi
    [ -n "${KERNEL_ABI:-}" ] && [ -n "${KERNEL_VERSION:-}" ] || die "no kernel (KERNEL_ABI, KERNEL_VERSION in $DOM0_OUT/kernel.env)"
    # 6.1.0-57 -> 6.1, 6.12.118+deb13 -> 6.12
    KERNEL_SERIES="$(printf '%s\n' "$KERNEL_ABI" | sed -nE 's/^([0-9]+\.[0-9]+)[.-].*/\1/p')"
    [ -n "$KERNEL_SERIES" ] || die "cannot tell the series of kernel $KERNEL_ABI"
    choose_kbuild
    PKGS=("linux-headers-$KERNEL_ABI-amd64=$KERNEL_VERSION"
        "linux-headers-$KERNEL_ABI-common=$KERNEL_VERSION"
        "$KBUILD_PKG=$KBUILD_VERSION")
}

# suite_apt and friends (private apt index per suite), then deb_file,
# apt_download, in_index, apt_candidate, fetch_debs on $DEBS_SUITE (shared
# with dom0-image.sh): the kernel's packages come from the stack's suite.
. "$ROOT/scripts/suite.sh"
DEBS_SUITE="$SUITE"
. "$ROOT/scripts/debs.sh"

# choose_kbuild: KBUILD_PKG and KBUILD_VERSION, the kbuild package to
# build with. Debian 13 names it after the kernel's ABI
# (linux-kbuild-6.12.118+deb13), built from the same source as the kernel,
# so its version is the kernel's. Debian 12 names it after the series
# (linux-kbuild-6.1), and the headers ask for it at >= KERNEL_VERSION, not
# for that exact version: kbuild is the series' build tools (fixdep,
# modpost), and the archive replaces it on its own (6.1.192-2 went,
# 6.1.192-3 came, while the kernel and headers stayed at 6.1.192-2). So:
# the kernel's own version where it is cached or in apt's index, else a
# cached one that satisfies the dependency, else apt's candidate if it does.
choose_kbuild() {
    local pkg="linux-kbuild-$KERNEL_SERIES" f v
    KBUILD_VERSION="$KERNEL_VERSION"
    case "$KERNEL_ABI" in
        *+deb*) KBUILD_PKG="linux-kbuild-$KERNEL_ABI"; return 0 ;;
    esac
    KBUILD_PKG="$pkg"
    [ -s "$(deb_file "$pkg=$KERNEL_VERSION")" ] && return 0
    for f in "$DEBS/${pkg}_"*.deb; do
        [ -s "$f" ] || continue
        v="$(dpkg-deb -f "$f" Version)"
        if dpkg --compare-versions "$v" ge "$KERNEL_VERSION"; then
            KBUILD_VERSION="$v"
            return 0
        fi
    done
    in_index "$pkg=$KERNEL_VERSION" && return 0
    v="$(apt_candidate "$pkg")"
    [ -n "$v" ] || die "no $pkg in apt's index"
    dpkg --compare-versions "$v" ge "$KERNEL_VERSION" ||
        die "$pkg $v is older than the kernel's $KERNEL_VERSION (the headers need >=)"
    log "$pkg $KERNEL_VERSION is gone from the archive; using $v (the headers need >= $KERNEL_VERSION)"
    KBUILD_VERSION="$v"
}

# headers: the three kernel packages unpacked into one tree; the flavour's
# Makefile points at /usr/src/...-common, which is rewritten to the tree.
headers() {
    kernel_env
    fetch_debs "${PKGS[@]}"
    local tree="$CACHE/headers" stamp="$CACHE/headers.stamp" key spec
    key="${PKGS[*]}"
    HDR="$tree/usr/src/linux-headers-$KERNEL_ABI-amd64"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -d "$HDR" ]; then return 0; fi
    log "unpacking headers for $KERNEL_ABI-amd64 ($KERNEL_VERSION)"
    rm -rf "$tree" && mkdir -p "$tree"
    for spec in "${PKGS[@]}"; do
        dpkg-deb -x "$(deb_file "$spec")" "$tree"
    done
    [ -f "$HDR/Makefile" ] || die "no $HDR/Makefile"
    sed -i "s#^include /usr/src/#include $tree/usr/src/#" "$HDR/Makefile"
    grep -q "^include $tree/" "$HDR/Makefile" || die "unexpected $HDR/Makefile"
    echo "$key" > "$stamp"
}

# build_root: the Debian ROOT_SUITE chroot with the kernel's headers
# installed (linux-headers-ABI-amd64 pulls -common, linux-kbuild-ABI and
# the compiler the kernel was built with), made once by mmdebstrap and
# kept in $CACHE/root-ABI with a stamp: its first line is what was asked
# for (compared offline, so a cached run needs no network), the rest the
# versions installed (part of the module's key). The headers' version is
# the kernel's; if the archive has dropped it, the newest of the same
# package (same ABI, so the module still matches the kernel) with a loud
# warning (suite_pick). Sets CROOT and CROOT_STAMP.
ROOT_EXTRA=(make)
build_root() {
    local pkg="linux-headers-$KERNEL_ABI-amd64" want ver
    CROOT="$CACHE/root-$KERNEL_ABI"
    CROOT_STAMP="$CROOT.stamp"
    want="$ROOT_SUITE $pkg=$KERNEL_VERSION ${ROOT_EXTRA[*]}"
    if [ -f "$CROOT_STAMP" ] && [ "$(head -n 1 "$CROOT_STAMP")" = "$want" ] &&
        [ -f "$CROOT/usr/src/$pkg/Makefile" ]; then
        return 0
    fi
    # suite_pick dies when the suite has no version of $pkg at all: the
    # module must be built for the kernel (ABI) the domUs boot, so no other
    # ABI will do.
    ver="$(suite_pick "$ROOT_SUITE" "$pkg" "$KERNEL_VERSION")"
    rm -f "$CROOT_STAMP"
    suite_root "$ROOT_SUITE" "$CROOT" "$pkg=$ver" "${ROOT_EXTRA[@]}"
    # A chroot is about 600 MB: the ones of older kernels of the series go.
    local old
    for old in "$CACHE/root-$KERNEL_SERIES".*; do
        [ -d "$old" ] && [ "$old" != "$CROOT" ] || continue
        log "removing the build chroot of another kernel, $old"
        rm -rf "$old" "$old.stamp"
    done
    [ -f "$CROOT/usr/src/$pkg/Makefile" ] || die "no /usr/src/$pkg/Makefile in $CROOT"
    {
        echo "$want"
        chroot "$CROOT" dpkg-query -W -f '${Package}=${Version}\n' \
            "$pkg" "linux-headers-$KERNEL_ABI-common" "linux-kbuild-$KERNEL_ABI" gcc-14 make
    } > "$CROOT_STAMP.tmp" || die "dpkg-query in $CROOT failed"
    mv "$CROOT_STAMP.tmp" "$CROOT_STAMP"
    log "build chroot $CROOT: $(tail -n +2 "$CROOT_STAMP" | tr '\n' ' ')"
}

# chroot_build MDIR: the module in MDIR built inside the chroot, as
# /build/vsock-v4v there (copied in and the result copied back, so nothing
# is mounted: kbuild needs only /dev/null, which mmdebstrap made; no /proc
# or /sys). A clean environment: the caller's make variables (MAKEFLAGS of
# `make vsock-module`) mean nothing to the chroot's make.
chroot_build() {
    local mdir="$1" b="$CROOT/build/vsock-v4v"
    [ -c "$CROOT/dev/null" ] || die "$CROOT/dev/null is not a device (kbuild writes to it)"
    rm -rf "$CROOT/build" && mkdir -p "$b"
    cp "$mdir"/* "$b/"
    nice chroot "$CROOT" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LC_ALL=C.UTF-8 \
        make -s -C "/usr/src/linux-headers-$KERNEL_ABI-amd64" M=/build/vsock-v4v modules >&2 ||
        return 1
    cp "$b/vsock-v4v.ko" "$mdir/"
    rm -rf "$CROOT/build"
}

# module: build/linux-VER/vsock-v4v.ko for the kernel (the stack's, or
# the one an override names), rebuilt only when the headers or the sources
# changed. The sources are copied into build/linux-VER/module and built
# there, so the source folder stays clean. How depends on the series:
# Debian 12's 6.1 on this host (headers, module_build_6_1), Debian 13's
# 6.12 in its chroot (build_root, chroot_build).
module() {
    kernel_env
    local src="$ROOT/vsock-v4v" stamp="$OUT/module.stamp" key stampf
    case "$KERNEL_SERIES" in
        6.1) headers; stampf="$CACHE/headers.stamp" ;;
        6.12) ROOT_SUITE=trixie; build_root; stampf="$CROOT_STAMP" ;;
        *) die "no build of vsock-v4v.ko for Linux $KERNEL_SERIES ($KERNEL_ABI-amd64); see module()" ;;
    esac
    key="$(cat "$stampf" "$src"/*.c "$src"/*.h "$src/Kbuild" | sha256sum | cut -d' ' -f1)"
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ] && [ -s "$OUT/vsock-v4v.ko" ]; then return 0; fi
    MDIR="$OUT/module"
    rm -rf "$MDIR" "$stamp" && mkdir -p "$MDIR"
    cp "$src"/*.c "$src"/*.h "$src/Kbuild" "$MDIR/"
    log "building vsock-v4v.ko against $KERNEL_ABI-amd64"
    case "$KERNEL_SERIES" in
        6.1) module_build_6_1 ;;
        6.12) chroot_build "$MDIR" || die "module build failed (in $CROOT)" ;;
    esac
    cp "$MDIR/vsock-v4v.ko" "$OUT/vsock-v4v.ko"
    echo "$key" > "$stamp"
    log "built $OUT/vsock-v4v.ko"
}

# module_build_6_1: Debian 12's headers and kbuild tools run on this
# Debian 12 machine, with its gcc-12 (the kernel's compiler), in $MDIR.
module_build_6_1() {
    nice make -s -C "$HDR" M="$MDIR" modules >&2 || die "module build failed"
}

copy_lib() {
    local src="$1" root="$2" rel
    case "$src" in
        "$CACHE/pkgs/"*) rel="${src#"$CACHE/pkgs/"}" ;;
        /*) rel="${src#/}" ;;
        *) die "odd library path $src" ;;
    esac
    rel="${rel#usr/}"
    mkdir -p "$root/$(dirname "$rel")"
    cp -L "$src" "$root/$rel"
}

# image: the domU initramfs, an uncompressed newc cpio.
image() {
    module
    local pk="$CACHE/pkgs" pstamp="$CACHE/pkgs.stamp" key spec
    key="${IMAGE_PKGS[*]}"
    DEBS_SUITE="$IMAGE_SUITE" fetch_debs "${IMAGE_PKGS[@]}"
    if ! [ -f "$pstamp" ] || [ "$(cat "$pstamp")" != "$key" ]; then
        rm -rf "$pk" && mkdir -p "$pk"
        for spec in "${IMAGE_PKGS[@]}"; do dpkg-deb -x "$(deb_file "$spec")" "$pk"; done
        echo "$key" > "$pstamp"
    fi
    local kdeb="$DOM0_CACHE/debs/linux-image-${KERNEL_ABI}-amd64_${KERNEL_VERSION}_amd64.deb"
    [ -s "$kdeb" ] || die "no kernel package $kdeb (scripts/dom0-image.sh fetches it)"
    local busybox="$DOM0_CACHE/tree/bin/busybox"
    [ -x "$busybox" ] || busybox="$DOM0_CACHE/tree/usr/bin/busybox"
    [ -x "$busybox" ] || die "no busybox in $DOM0_CACHE/tree (scripts/dom0-image.sh extracts it)"

    local istamp="$OUT/domu.stamp" ikey
    ikey="$(cat "$pstamp" "$OUT/module.stamp" "$0" "$ROOT/dom0/vsock/domu-init" \
        "$ROOT/vsock-v4v/tools/vdgram.c" "$ROOT/vsock-v4v/tools/vperf.c" \
        "$ROOT/dom0/vsock-bench/domu-bench.sh" "$ROOT/dom0/vsock/pyvsock.py" | sha256sum | cut -d' ' -f1)$kdeb"
    if [ -f "$istamp" ] && [ "$(cat "$istamp")" = "$ikey" ] && [ -s "$OUT/domu.cpio" ]; then return 0; fi
    log "assembling the domU initramfs"
    local r="$OUT/rootfs"
    rm -rf "$r" && mkdir -p "$r"
    local d
    for d in bin sbin usr/bin usr/sbin lib/x86_64-linux-gnu lib64 lib/modules/v4v proc sys dev tmp root etc run; do
        mkdir -p "$r/$d"
    done
    ln -s ../lib "$r/usr/lib"
    chmod 1777 "$r/tmp"
    install -m 755 "$busybox" "$r/bin/busybox"
    local applet
    while read -r applet; do
        [ "$applet" = bin/busybox ] && continue
        [ -e "$r/$applet" ] || [ -L "$r/$applet" ] && continue
        case "$applet" in usr/*) ln -s ../../bin/busybox "$r/$applet" ;;
                          *) ln -s ../bin/busybox "$r/$applet" ;; esac
    done < <("$r/bin/busybox" --list-full)

    install -m 755 "$pk/usr/bin/socat" "$r/usr/bin/socat"
    # vdgram: AF_VSOCK datagrams from the shell (socat has no such address).
    gcc -static -O2 -Wall -Wextra -Werror -o "$OUT/vdgram" "$ROOT/vsock-v4v/tools/vdgram.c" ||
        die "building vdgram failed"
    install -m 755 "$OUT/vdgram" "$r/usr/bin/vdgram"
    # vperf: the AF_VSOCK-against-TCP benchmark (make bench-vsock), and
    # the role script that runs it (domu-init's bench-* roles).
    gcc -static -O2 -Wall -Wextra -Werror -o "$OUT/vperf" "$ROOT/vsock-v4v/tools/vperf.c" ||
        die "building vperf failed"
    install -m 755 "$OUT/vperf" "$r/usr/bin/vperf"
    mkdir -p "$r/etc/v4v"
    install -m 644 "$ROOT/dom0/vsock-bench/domu-bench.sh" "$r/etc/v4v/vsock-bench.sh"
    # Python: the interpreter and its minimal standard library, compiled
    # here by the same interpreter (a PV domU under TCG would spend seconds
    # compiling at every start), and the test program that uses it.
    install -m 755 "$pk/usr/bin/python3.11" "$r/usr/bin/python3.11"
    ln -s python3.11 "$r/usr/bin/python3"
    cp -a "$pk/usr/lib/python3.11" "$r/lib/python3.11"
    "$r/usr/bin/python3.11" -I -m compileall -q \
        --invalidation-mode unchecked-hash -s "$r/lib" -p /usr/lib "$r/lib/python3.11" >&2 ||
        die "compiling Python's library failed"
    install -m 755 "$ROOT/dom0/vsock/pyvsock.py" "$r/usr/bin/pyvsock"
    local libs=() lib
    while read -r lib; do libs+=("$lib"); done < <(
        LD_LIBRARY_PATH="$pk/lib/x86_64-linux-gnu:$pk/usr/lib/x86_64-linux-gnu" \
            ldd "$pk/usr/bin/socat" "$pk/usr/bin/python3.11" |
        awk '/not found/ { print "MISSING:" $1; next }
             $2 == "=>" && $3 ~ /^\// { print $3; next }
             $1 ~ /^\// && NF == 2 { print $1 }')
    for lib in "${libs[@]}"; do
        case "$lib" in MISSING:*) die "${lib#MISSING:} not found (install libssl3 on this machine)" ;; esac
    done
    for lib in $(printf '%s\n' "${libs[@]}" | sort -u); do copy_lib "$lib" "$r"; done
    [ -x "$r/lib64/ld-linux-x86-64.so.2" ] || die "no dynamic loader copied"

    # Modules from the kernel package, loaded by /init in name order: the
    # vsock core, and the PV network frontend (for the benchmark's TCP; a
    # domU without a vif just has no eth0). Debian 12 ships them as plain
    # .ko under /lib/modules, Debian 13 as .ko.xz under /usr/lib/modules.
    local mspec mpath mfile kx="$OUT/kernel-modules"
    rm -rf "$kx" && mkdir -p "$kx"
    dpkg-deb --fsys-tarfile "$kdeb" | tar -x -C "$kx" --wildcards \
        "*lib/modules/$KERNEL_ABI-amd64/kernel/net/vmw_vsock/vsock.ko*" \
        "*lib/modules/$KERNEL_ABI-amd64/kernel/drivers/net/xen-netfront.ko*" ||
        die "no vsock or xen-netfront module in $kdeb"
    for mspec in 1-vsock:net/vmw_vsock/vsock 3-xen-netfront:drivers/net/xen-netfront; do
        mpath="$(find "$kx" -path "*/modules/$KERNEL_ABI-amd64/kernel/${mspec#*:}.ko*" | head -n 1)"
        mfile="$r/lib/modules/v4v/${mspec%%:*}.ko"
        case "$mpath" in
            *.ko) cp "$mpath" "$mfile" ;;
            *.ko.xz) xz -dc "$mpath" > "$mfile" ;;
            *) die "no ${mspec#*:}.ko in $kdeb" ;;
        esac
        if [ "$(head -c 4 "$mfile" | od -An -c | tr -d ' ')" != '177ELF' ]; then
            die "$mpath from $kdeb is not a plain ELF module"
        fi
    done
    rm -rf "$kx"
    install -m 644 "$OUT/vsock-v4v.ko" "$r/lib/modules/v4v/2-vsock-v4v.ko"
    install -m 755 "$ROOT/dom0/vsock/domu-init" "$r/init"
    printf 'root:x:0:0:root:/root:/bin/sh\n' > "$r/etc/passwd"
    printf 'root:x:0:\n' > "$r/etc/group"
    (cd "$r" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$OUT/domu.cpio.tmp"
    mv "$OUT/domu.cpio.tmp" "$OUT/domu.cpio"
    echo "$ikey" > "$istamp"
    log "built $OUT/domu.cpio ($(du -h "$OUT/domu.cpio" | cut -f1))"
}

overlay() {
    [ $# -eq 1 ] || die "usage: $0 overlay DIR"
    image
    mkdir -p "$1/boot"
    cp "$OUT/domu.cpio" "$1/boot/linux-domu.cpio"
    cp "$DOM0_OUT/vmlinux" "$1/boot/vmlinux-domu"
}

case "${1:-image}" in
    headers) headers ;;
    module) module ;;
    image) image ;;
    overlay) shift; overlay "$@" ;;
    *) die "usage: $0 headers | module | image | overlay DIR" ;;
esac
