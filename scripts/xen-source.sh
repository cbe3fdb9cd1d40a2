#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The pristine Xen source of one supported release, unpacked once into the
# build cache for scripts/xen-patches.sh:
#
#   scripts/xen-source.sh VERSION     VERSION is 4.20 or 4.17; makes
#                                     build/cache/xen-VERSION-pristine and
#                                     the stamp build/cache/xen-VERSION-src.stamp
#                                     (its first line says where the source
#                                     came from)
#
# Where the source comes from, in this order:
#   1. Debian's source package of the release Debian ships (Debian 13's
#      4.20.4+63 for 4.20, Debian 12's 4.17.7+13 for 4.17), through a
#      private apt index of its suite (scripts/suite.sh), when the archive
#      serves it: apt checks it against the suite's signed index.
#   2. Else the Xen Project's release tarball xen-X.Y.Z.tar.xz from
#      V4V_XEN_SRC (default: ../shared/xen-src beside the project), checked
#      against the SHA256SUMS file there before it is unpacked. Today the
#      archive reachable here lists both source packages but answers 404
#      for their files, so this is the path taken.
# V4V_XEN_SOURCE=debian|tarball forces one of the two.
#
# The series in xen-patches/VERSION applies to either: both are the same
# release (Debian's carries a few more stable-branch commits and Debian's
# own patches, none of which touch what the series touches).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${V4V_CACHE:-$ROOT/build/cache}"

log() { printf 'xen-source: %s\n' "$*" >&2; }
die() { printf 'xen-source: error: %s\n' "$*" >&2; exit 1; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
. "$ROOT/scripts/suite.sh"

VERSION="${1:-}"
case "$VERSION" in
    4.20) RELEASE=4.20.4; SUITE=trixie;   DEBIAN_VERSION="4.20.4+63-g7abfd2bce2-0+deb13u1" ;;
    4.17) RELEASE=4.17.7; SUITE=bookworm; DEBIAN_VERSION="4.17.7+13-g2445b30a44-0+deb12u1" ;;
    *) die "usage: $0 4.20|4.17" ;;
esac
SRC_DIR="${V4V_XEN_SRC:-$ROOT/../shared/xen-src}"
PRISTINE="$CACHE/xen-$VERSION-pristine"
STAMP="$CACHE/xen-$VERSION-src.stamp"
MODE="${V4V_XEN_SOURCE:-auto}"

if [ -f "$STAMP" ] && [ -d "$PRISTINE/xen" ]; then
    case "$MODE:$(head -n1 "$STAMP")" in
        auto:*|debian:debian*|tarball:tarball*) log "Xen $VERSION source: $(head -n1 "$STAMP") (cached)"; exit 0 ;;
    esac
fi

# from_debian: Debian's source package, unpacked with its patches applied.
from_debian() {
    local dl="$CACHE/xen-$VERSION-dl"
    rm -rf "$dl" && mkdir -p "$dl"
    suite_update "$SUITE"
    suite_apt "$SUITE" apt-cache showsrc xen 2>/dev/null | grep -xF "Version: $DEBIAN_VERSION" >/dev/null ||
        { log "the source xen=$DEBIAN_VERSION is not in $SUITE's index"; return 1; }
    log "apt-get source xen=$DEBIAN_VERSION ($SUITE)"
    (cd "$dl" && suite_apt "$SUITE" apt-get source --download-only -qq "xen=$DEBIAN_VERSION") >&2 || {
        log "the archive does not serve xen=$DEBIAN_VERSION's source"
        rm -rf "$dl"
        return 1
    }
    (cd "$dl" && dpkg-source -q -x ./*.dsc src) >&2 || die "dpkg-source -x of xen=$DEBIAN_VERSION failed"
    rm -rf "$PRISTINE"
    mv "$dl/src" "$PRISTINE"
    rm -rf "$dl"
    echo "debian xen=$DEBIAN_VERSION ($SUITE source package)" > "$STAMP"
}

# from_tarball: the release tarball, verified.
from_tarball() {
    local tar="$SRC_DIR/xen-$RELEASE.tar.xz" sums="$SRC_DIR/SHA256SUMS" want have
    [ -f "$tar" ] || die "no $tar (set V4V_XEN_SRC to the folder with xen-$RELEASE.tar.xz and SHA256SUMS)"
    [ -f "$sums" ] || die "no $sums: the tarball cannot be verified"
    want="$(awk -v f="xen-$RELEASE.tar.xz" '$2 == f || $2 == "*" f { print $1 }' "$sums")"
    [ -n "$want" ] || die "$sums has no line for xen-$RELEASE.tar.xz"
    have="$(sha256sum "$tar" | cut -d' ' -f1)"
    [ "$have" = "$want" ] || die "$tar: SHA-256 $have, SHA256SUMS says $want"
    log "unpacking $tar (SHA-256 verified)"
    local tmp="$CACHE/xen-$VERSION-dl"
    rm -rf "$tmp" && mkdir -p "$tmp"
    tar -xJf "$tar" -C "$tmp"
    [ -d "$tmp/xen-$RELEASE/xen" ] || die "$tar does not hold xen-$RELEASE/xen"
    rm -rf "$PRISTINE"
    mv "$tmp/xen-$RELEASE" "$PRISTINE"
    rm -rf "$tmp"
    echo "tarball xen-$RELEASE.tar.xz sha256:$have" > "$STAMP"
}

mkdir -p "$CACHE"
rm -f "$STAMP"
case "$MODE" in
    debian) from_debian || die "V4V_XEN_SOURCE=debian, but Debian's source of $DEBIAN_VERSION cannot be had" ;;
    tarball) from_tarball ;;
    auto) from_debian || { log "falling back to the Xen Project's release tarball"; from_tarball; } ;;
    *) die "V4V_XEN_SOURCE must be debian, tarball or unset, not '$MODE'" ;;
esac
log "Xen $VERSION source: $(head -n1 "$STAMP")"
