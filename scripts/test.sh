#!/usr/bin/env bash
# `make test`: run every stage, record its pass/fail counts, print a summary
# whose last line is `N passed, M failed`. Exits non-zero if anything failed.
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
RESULTS="$ROOT/build/results"
mkdir -p "$RESULTS"
rm -f "$RESULTS"/*.counts
total_pass=0
total_fail=0
report=()

# stage NAME COMMAND...: run COMMAND; it may write $RESULTS/NAME.counts as
# "PASSED FAILED"; if it does not, the stage counts as one test.
stage() {
    local name="$1"; shift
    local log="$RESULTS/$name.log"
    local t0=$SECONDS
    echo "=== $name"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    local p f
    if [ -f "$RESULTS/$name.counts" ]; then
        read -r p f < "$RESULTS/$name.counts"
        if [ "$rc" != 0 ] && [ "$f" = 0 ]; then f=1; fi
    elif [ "$rc" = 0 ]; then p=1; f=0
    else p=0; f=1
    fi
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    report+=("$(printf '%-18s %4d passed %4d failed  (%ds)' "$name" "$p" "$f" $((SECONDS - t0)))")
}

# Count cargo's own per-binary result lines.
host_tests() {
    make --no-print-directory host-test 2>&1 | tee "$RESULTS/host.raw"
    local rc=${PIPESTATUS[0]}
    awk '/^test result:/ { for (i=1;i<=NF;i++) { if ($(i)=="passed;") p+=$(i-1); if ($(i)=="failed;") f+=$(i-1) } }
         END { print p+0, f+0 }' "$RESULTS/host.raw" > "$RESULTS/host.counts"
    return "$rc"
}

stage host host_tests
stage clippy make --no-print-directory clippy
stage fmt make --no-print-directory fmt-check
stage guest make --no-print-directory guest
stage guest-clippy make --no-print-directory guest-clippy

# Each hypervisor: build, then the ABI (public header and FFI
# declarations) and disassembly checks, the in-guest suite with the test
# guest as a PV dom0 and as a PVH dom0, the multi-domain scenarios with a
# Linux dom0.
hypervisor() {
    local v="$1"
    stage "xen-$v" make --no-print-directory XEN_VERSION="$v" xen
    stage "abi-check-$v" make --no-print-directory XEN_VERSION="$v" abi-check
    stage "disasm-$v" make --no-print-directory XEN_VERSION="$v" disasm-check
    stage "boot-$v" make --no-print-directory XEN_VERSION="$v" boot-test
    stage "boot-pvh-$v" make --no-print-directory XEN_VERSION="$v" boot-test-pvh
    stage "multi-$v" make --no-print-directory XEN_VERSION="$v" multi-test
}

# Xen 4.20 (the default): Debian 13's toolstack and 6.12 kernel.
hypervisor 4.20
V=(XEN_VERSION=4.20)
# The scenarios again with PVH domUs (a, b and the hostile h).
stage multi-pvh-4.20 make --no-print-directory "${V[@]}" multi-test-pvh
stage starve-4.20 make --no-print-directory "${V[@]}" starve-test
# The debug build of it (CONFIG_DEBUG, the engine with debug assertions).
stage xen-4.20-debug make --no-print-directory "${V[@]}" xen-debug
stage disasm-4.20-debug make --no-print-directory "${V[@]}" disasm-check-debug
stage boot-4.20-debug make --no-print-directory "${V[@]}" boot-test-debug
stage boot-pvh-4.20-debug make --no-print-directory "${V[@]}" boot-test-pvh-debug
stage multi-4.20-debug make --no-print-directory "${V[@]}" multi-test-debug
# The FLASK build of it (CONFIG_XSM_FLASK) and its test policy, booted
# with flask=enforcing: three labelled domUs, a may send to b, c may not.
stage xen-4.20-flask make --no-print-directory "${V[@]}" xen-flask flask-policy
stage flask-4.20 make --no-print-directory "${V[@]}" flask-test
# Two Linux 6.12 domUs talking AF_VSOCK over V4V.
stage vsock-4.20 make --no-print-directory "${V[@]}" vsock-test

# Xen 4.17.7: Debian 12's toolstack and 6.1 kernel, and the vsock boot
# with two Linux 6.1 domUs.
hypervisor 4.17
stage vsock-4.17 make --no-print-directory XEN_VERSION=4.17 vsock-test

echo
echo "=== summary"
printf '%s\n' "${report[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
