#!/usr/bin/env bash
# Idempotent machine setup for building and testing V4V.
#
# Installs what a fresh Debian 12 machine lacks (apt packages, the pinned
# Rust toolchain's target and components). A second run does no network
# work: every step first checks whether its result is already there.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
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
    gcc-12 libc6-dev libc6 zlib1g libexpat1 libssl3
    # the FLASK test policy of `make flask-test` (scripts/flask-policy.sh):
    # Xen's policy sources go through m4, then Debian's checkpolicy
    checkpolicy m4)
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

# The Xen sources (scripts/xen-source.sh) and the Debian packages of the
# images (scripts/dom0-image.sh, scripts/linux-domu.sh) are fetched by the
# build steps that need them, into the build cache.
log "ok"
