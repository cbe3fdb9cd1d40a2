#!/usr/bin/env bash
# Fuzz the engine: `bash scripts/fuzz.sh` runs the cargo-fuzz target `ops`
# (fuzz/fuzz_targets/ops.rs -> v4v::sim::fuzz::run) for FUZZ_SECONDS seconds
# (default 60), or for exactly FUZZ_RUNS executions, and prints how many
# inputs it executed and how fast.
#
#   bash scripts/fuzz.sh                              60 s
#   FUZZ_SECONDS=180 bash scripts/fuzz.sh             3 minutes
#   FUZZ_RUNS=10000000 bash scripts/fuzz.sh           a campaign of 10M runs
#                                                     (FUZZ_SEED, default 1)
#
# The toolchain is the project's pinned stable one; cargo-fuzz passes
# nightly-only flags (-Zsanitizer=address, ...) to rustc, which stable accepts
# with RUSTC_BOOTSTRAP=1. cargo-fuzz itself is installed on first use.
#
# Build: by default without a sanitizer (FUZZ_SANITIZER=none) and without
# libFuzzer's comparison tracing (FUZZ_TRACE_COMPARES=0), about 9 times the
# speed of cargo-fuzz's defaults (ASan and trace-compares); every check of
# the harness is the same in every build. After fuzzing, every input of the
# corpus (and fuzz/regressions/) is run once more through an ASan build
# (FUZZ_ASAN_REPLAY=1, the default), so a memory error that an input of the
# corpus causes is still reported. FUZZ_SANITIZER=address fuzzes under ASan
# throughout (no replay then); FUZZ_TRACE_COMPARES=1 gives libFuzzer the
# comparison operands to mutate with. Each build has its own target
# directory (fuzz/target/<sanitizer>[-tc]/), so switching does not rebuild.
# fuzz/README.md has the figures.
#
# Environment: FUZZ_SECONDS (60), FUZZ_RUNS (unset: run for FUZZ_SECONDS),
# FUZZ_SEED (1; with FUZZ_RUNS, libFuzzer's -seed), FUZZ_TARGET (ops),
# FUZZ_JOBS (1), FUZZ_NICE (10, the niceness to run at), FUZZ_SANITIZER
# (none | address), FUZZ_TRACE_COMPARES (0 | 1), FUZZ_ASAN_REPLAY (1 | 0),
# FUZZ_ARGS (extra libFuzzer
# flags). The corpus grows in fuzz/corpus/<target> (not committed); inputs
# that once failed live in fuzz/regressions/ and seed every run. A crash
# leaves its input in fuzz/artifacts/<target>/ and makes this script exit
# non-zero.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLCHAIN=1.95.0
SECONDS_TO_RUN="${FUZZ_SECONDS:-60}"
RUNS="${FUZZ_RUNS:-}"
SEED="${FUZZ_SEED:-1}"
TARGET="${FUZZ_TARGET:-ops}"
JOBS="${FUZZ_JOBS:-1}"
NICE="${FUZZ_NICE:-10}"
SAN="${FUZZ_SANITIZER:-none}"
ASAN_REPLAY="${FUZZ_ASAN_REPLAY:-1}"
TC="${FUZZ_TRACE_COMPARES:-0}"
CARGO=(cargo "+$TOOLCHAIN")

case "$SAN" in
    none | address) ;;
    *) echo "fuzz.sh: FUZZ_SANITIZER must be none or address" >&2; exit 2 ;;
esac
case "$TC" in
    0 | 1) ;;
    *) echo "fuzz.sh: FUZZ_TRACE_COMPARES must be 0 or 1" >&2; exit 2 ;;
esac

if ! "${CARGO[@]}" fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz"
    nice -n "$NICE" "${CARGO[@]}" install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# A smaller quarantine than ASan's default keeps memory (and page faults) down.
export ASAN_OPTIONS="${ASAN_OPTIONS:-quarantine_size_mb=64}"
cd "$ROOT/fuzz"
CORPUS="corpus/$TARGET"
mkdir -p "$CORPUS" "artifacts/$TARGET"
LOG="$(mktemp "${TMPDIR:-/tmp}/v4v-fuzz.XXXXXX")"
trap 'rm -f "$LOG"' EXIT

# The cargo-fuzz flags that pick a build (the same for build and run).
build_flags() {
    if [ "$TC" = 1 ]; then
        echo "-s $1 --target-dir target/$1-tc"
    else
        echo "-s $1 --no-trace-compares --target-dir target/$1"
    fi
}

# shellcheck disable=SC2046
nice -n "$NICE" "${CARGO[@]}" fuzz build $(build_flags "$SAN") "$TARGET"

LIMIT=(-max_total_time="$SECONDS_TO_RUN")
WHAT="for ${SECONDS_TO_RUN}s"
if [ -n "$RUNS" ]; then
    LIMIT=(-runs="$RUNS" -seed="$SEED")
    WHAT="for $RUNS executions (seed $SEED)"
fi
BUILD="sanitizer $SAN, trace-compares $TC"
echo "fuzz.sh: running $TARGET $WHAT ($JOBS job(s), $BUILD)"
PAR=()
if [ "$JOBS" -gt 1 ]; then
    PAR=(-jobs="$JOBS" -workers="$JOBS")
fi
start=$(date +%s.%N)
set +e
# shellcheck disable=SC2046,SC2086
nice -n "$NICE" "${CARGO[@]}" fuzz run $(build_flags "$SAN") "$TARGET" "$CORPUS" regressions -- \
    "${LIMIT[@]}" -max_len=4096 -print_final_stats=1 \
    "${PAR[@]}" ${FUZZ_ARGS:-} 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s.%N)
if [ "$JOBS" -gt 1 ]; then
    # Each worker logs to fuzz-N.log in the current directory.
    cat fuzz-*.log >> "$LOG" 2>/dev/null || true
    rm -f fuzz-*.log
fi
execs=$(awk '/stat::number_of_executed_units/ { s += $NF } END { print s + 0 }' "$LOG")
secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')
rate=$(awk -v n="$execs" -v s="$secs" 'BEGIN { if (s > 0) printf "%.0f", n / s; else print 0 }')
echo "fuzz.sh: $TARGET: $execs executions in ${secs}s ($rate/s, $BUILD), exit status $rc"
if [ "$rc" != 0 ]; then
    echo "fuzz.sh: FAILURE; the input is in fuzz/artifacts/$TARGET/ (reproduce with" \
         "V4V_FUZZ_INPUT=<file> V4V_FUZZ_TRACE=1 cargo +1.95.0 test -p v4v --lib" \
         "fuzz_regressions -- --nocapture)"
    exit "$rc"
fi

if [ "$SAN" != address ] && [ "$ASAN_REPLAY" = 1 ]; then
    n=$(find "$CORPUS" regressions -maxdepth 1 -type f | wc -l)
    echo "fuzz.sh: replaying the corpus ($n inputs) under AddressSanitizer"
    # shellcheck disable=SC2046
    nice -n "$NICE" "${CARGO[@]}" fuzz build $(build_flags address) "$TARGET"
    set +e
    # -runs=0: run every input of the directories once, mutate nothing.
    # shellcheck disable=SC2046
    nice -n "$NICE" "${CARGO[@]}" fuzz run $(build_flags address) "$TARGET" "$CORPUS" regressions -- \
        -runs=0 -max_len=4096 2>&1 | tail -n 25 | tee "$LOG"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" != 0 ]; then
        echo "fuzz.sh: FAILURE under AddressSanitizer; the input is in fuzz/artifacts/$TARGET/"
        exit "$rc"
    fi
    echo "fuzz.sh: ASan replay of $n inputs: clean"
fi
