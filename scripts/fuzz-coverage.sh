#!/usr/bin/env bash
# Line coverage of the engine's product code reached by a fuzz corpus.
#
#   bash scripts/fuzz-coverage.sh                      fuzz/corpus/ops + fuzz/regressions
#   bash scripts/fuzz-coverage.sh DIR...               other corpus directories
#   FUZZ_COVERAGE_HTML=1 bash scripts/fuzz-coverage.sh  also an HTML report
#
# Every input of the directories runs once through v4v::sim::fuzz::run (the
# example fuzz_replay, a plain host build with every check of the harness)
# under cargo-llvm-cov. The report counts the product code: everything under
# src/ except src/sim/ (the simulation and the harness), the tests, and
# src/xen/ (which only builds for the hypervisor target). It prints a table,
# one line a file, and the total; the HTML report (per line, what was run)
# goes to target/llvm-cov/html/.
#
# Installs what it needs on first use (idempotent): the llvm-tools component
# of the pinned toolchain and cargo-llvm-cov (a cargo package, Apache-2.0/MIT;
# host-only). Environment: FUZZ_NICE (10).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLCHAIN=1.95.0
NICE="${FUZZ_NICE:-10}"
CARGO=(cargo "+$TOOLCHAIN")
cd "$ROOT"

if ! rustup "+$TOOLCHAIN" component list --installed 2>/dev/null | grep -q '^llvm-tools'; then
    echo "fuzz-coverage.sh: adding the llvm-tools component"
    rustup "+$TOOLCHAIN" component add llvm-tools-preview
fi
if ! "${CARGO[@]}" llvm-cov --version >/dev/null 2>&1; then
    echo "fuzz-coverage.sh: installing cargo-llvm-cov"
    nice -n "$NICE" "${CARGO[@]}" install --locked cargo-llvm-cov
fi

DIRS=("$@")
if [ ${#DIRS[@]} -eq 0 ]; then
    DIRS=(fuzz/corpus/ops fuzz/regressions)
fi
for d in "${DIRS[@]}"; do
    [ -d "$d" ] || { echo "fuzz-coverage.sh: no directory $d (grow a corpus with scripts/fuzz.sh)" >&2; exit 2; }
done
ABS=()
for d in "${DIRS[@]}"; do
    ABS+=("$(cd "$d" && pwd)")
done

# Not product code: the simulation and harness, tests (inline modules are not
# compiled into the example; src/engine/tests/ is cfg(test) too), the
# Xen-only glue, the example itself, the ABI crate, and other crates.
IGNORE='(/src/sim/|/tests/|/src/xen/|/examples/|/abi/|/\.cargo/|/rustc/|/library/)'

nice -n "$NICE" "${CARGO[@]}" llvm-cov clean --workspace >/dev/null 2>&1 || true
nice -n "$NICE" "${CARGO[@]}" llvm-cov run -p v4v --example fuzz_replay \
    --ignore-filename-regex "$IGNORE" --show-missing-lines -- "${ABS[@]}"
if [ "${FUZZ_COVERAGE_HTML:-0}" = 1 ]; then
    nice -n "$NICE" "${CARGO[@]}" llvm-cov report -p v4v --html \
        --ignore-filename-regex "$IGNORE"
    echo "fuzz-coverage.sh: HTML report in target/llvm-cov/html/index.html"
fi
