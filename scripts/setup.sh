#!/usr/bin/env bash
# Idempotent machine setup for building and testing V4V.
#
# Installs what a fresh Debian 12 machine lacks (apt packages, the pinned
# Rust toolchain's target and components) and downloads the pinned Debian
# Xen source once into the build cache. A second run does no network work:
# every step first checks whether its result is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${V4V_CACHE:-$ROOT/build/cache}"
XEN_VERSION="4.17.5+72-g01140da4e8-1"
TOOLCHAIN="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' "$ROOT/rust-toolchain.toml")"

log() { printf 'setup: %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- apt packages ---------------------------------------------------------
APT_PKGS=(qemu-system-x86 bison flex cpio dpkg-dev python3 make gcc binutils xz-utils ca-certificates
    # the dom0 images (scripts/dom0-image.sh, scripts/suite.sh): Debian 12's
    # or 13's packages with all their dependencies, extracted by mmdebstrap
    # from a private apt index checked against Debian's keys; zstd unpacks
    # Debian 13's kernel
    mmdebstrap debian-archive-keyring zstd
    # the Linux domUs of `make vsock-test` (scripts/linux-domu.sh): the
    # kernel module is built with gcc-12 (the kernel's compiler), the static
    # vdgram tool with libc6-dev, and socat's and Python's libraries come
    # from the host
    gcc-12 libc6-dev libc6 zlib1g libexpat1 libssl3)
missing=()
for p in "${APT_PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
apt_updated=0
apt_update() {
    if [ "$apt_updated" = 0 ]; then
        log "apt-get update"
        $SUDO apt-get update -qq
        apt_updated=1
    fi
}
if [ "${#missing[@]}" -gt 0 ]; then
    apt_update
    log "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Rust toolchain ---------------------------------------------------------
if ! rustup "+$TOOLCHAIN" target list --installed 2>/dev/null | grep -qx x86_64-unknown-none \
   || ! rustup "+$TOOLCHAIN" component list --installed 2>/dev/null | grep -q '^rust-src'; then
    log "rustup: toolchain $TOOLCHAIN with target x86_64-unknown-none and rust-src"
    rustup toolchain install "$TOOLCHAIN" --profile minimal --component rust-src,clippy,rustfmt \
        --target x86_64-unknown-none >/dev/null
fi

# v4vctl (tools/v4vctl) is built as a static musl binary for the dom0 image.
if ! rustup "+$TOOLCHAIN" target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
    log "rustup: target x86_64-unknown-linux-musl (static v4vctl)"
    rustup "+$TOOLCHAIN" target add x86_64-unknown-linux-musl >/dev/null
fi

# --- Xen source (pinned Debian source package) ------------------------------
mkdir -p "$CACHE"
if [ ! -f "$CACHE/xen-src.stamp" ]; then
    if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src .* bookworm ' /etc/apt/sources.list; then
        log "adding a deb-src entry for bookworm"
        $SUDO tee /etc/apt/sources.list.d/v4v-deb-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        apt_updated=0
    fi
    apt_update
    log "downloading Debian source xen=$XEN_VERSION"
    rm -rf "$CACHE/xen-dl" && mkdir -p "$CACHE/xen-dl"
    (cd "$CACHE/xen-dl" && apt-get source --download-only -qq "xen=$XEN_VERSION" >/dev/null)
    (cd "$CACHE/xen-dl" && dpkg-source -x ./*.dsc src >/dev/null)
    rm -rf "$CACHE/xen-pristine"
    mv "$CACHE/xen-dl/src" "$CACHE/xen-pristine"
    touch "$CACHE/xen-src.stamp"
fi
log "ok"
