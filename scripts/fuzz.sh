#!/usr/bin/env bash
# Fuzz the engine: `bash scripts/fuzz.sh` runs the cargo-fuzz target `ops`
# (fuzz/fuzz_targets/ops.rs -> v4v::sim::fuzz::run) for FUZZ_SECONDS seconds
# (default 60) and prints how many inputs it executed.
#
# The toolchain is the project's pinned stable one; cargo-fuzz passes
# nightly-only flags (-Zsanitizer=address, ...) to rustc, which stable accepts
# with RUSTC_BOOTSTRAP=1. cargo-fuzz itself is installed on first use.
#
# Environment: FUZZ_SECONDS (60), FUZZ_TARGET (ops), FUZZ_JOBS (1),
# FUZZ_NICE (10, the niceness to run at), FUZZ_ARGS (extra libFuzzer flags).
# The corpus grows in fuzz/corpus/<target> (not committed); inputs that once
# failed live in fuzz/regressions/ and seed every run. A crash leaves its
# input in fuzz/artifacts/<target>/ and makes this script exit non-zero.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLCHAIN=1.95.0
SECONDS_TO_RUN="${FUZZ_SECONDS:-60}"
TARGET="${FUZZ_TARGET:-ops}"
JOBS="${FUZZ_JOBS:-1}"
NICE="${FUZZ_NICE:-10}"
CARGO=(cargo "+$TOOLCHAIN")

if ! "${CARGO[@]}" fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    "${CARGO[@]}" install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# A smaller quarantine than ASan's default keeps memory (and page faults) down.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}"
cd "$ROOT/fuzz"
CORPUS="corpus/$TARGET"
mkdir -p "$CORPUS" "artifacts/$TARGET"
LOG="$(mktemp "${TMPDIR:-/tmp}/v4v-fuzz.XXXXXX")"
trap 'rm -f "$LOG"' EXIT

"${CARGO[@]}" fuzz build "$TARGET"
echo "fuzz.sh: running $TARGET for ${SECONDS_TO_RUN}s ($JOBS job(s))"
PAR=()
if [ "$JOBS" -gt 1 ]; then
    PAR=(-jobs="$JOBS" -workers="$JOBS")
fi
set +e
# shellcheck disable=SC2086
nice -n "$NICE" "${CARGO[@]}" fuzz run "$TARGET" "$CORPUS" regressions -- \
    -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -print_final_stats=1 \
    "${PAR[@]}" ${FUZZ_ARGS:-} 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
if [ "$JOBS" -gt 1 ]; then
    # Each worker logs to fuzz-N.log in the current directory.
    cat fuzz-*.log >> "$LOG" 2>/dev/null || true
    rm -f fuzz-*.log
fi
execs=$(awk '/stat::number_of_executed_units/ { s += $NF } END { print s + 0 }' "$LOG")
echo "fuzz.sh: $TARGET: $execs executions in ${SECONDS_TO_RUN}s, exit status $rc"
if [ "$rc" != 0 ]; then
    echo "fuzz.sh: FAILURE; the input is in fuzz/artifacts/$TARGET/ (reproduce with" \
         "V4V_FUZZ_TRACE=1 and run(<input>) in a host test)"
fi
exit "$rc"
