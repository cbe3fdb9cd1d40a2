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
    report+=("$(printf '%-14s %4d passed %4d failed  (%ds)' "$name" "$p" "$f" $((SECONDS - t0)))")
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
stage xen make --no-print-directory xen
stage abi-check make --no-print-directory abi-check
stage disasm make --no-print-directory disasm-check
stage guest make --no-print-directory guest
stage guest-clippy make --no-print-directory guest-clippy
stage boot make --no-print-directory boot-test
stage multi make --no-print-directory multi-test
stage starve make --no-print-directory starve-test
# The debug hypervisor (CONFIG_DEBUG, the engine with debug assertions).
stage xen-debug make --no-print-directory xen-debug
stage disasm-debug make --no-print-directory disasm-check-debug
stage boot-debug make --no-print-directory boot-test-debug
stage multi-debug make --no-print-directory multi-test-debug
stage vsock make --no-print-directory vsock-test

echo
echo "=== summary"
printf '%s\n' "${report[@]}"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
