#!/bin/sh
# `make bench`: V4V against Argo in one boot. rx owns the rings and
# drains them, tx drives every workload and prints the figures
# (guest/src/bench); dom0 only starts them and waits. The knobs come from
# /etc/v4v/bench.conf (written by mk/bench.mk): BENCH_ARGS, BENCH_TIMEOUT.
. /etc/v4v/lib.sh
BENCH_ARGS=""
BENCH_TIMEOUT=1200
[ -f /etc/v4v/bench.conf ] && . /etc/v4v/bench.conf

G=/boot/v4v-test-guest
RX=1 TX=2
# One vCPU each: Xen's scheduler gives each domU a pCPU of its own (dom0
# only sleeps meanwhile).
domu_create rx "$G" "bench role=rx peer=$TX $BENCH_ARGS" 1 32 "$RX" >/dev/null || exit 1
domu_create tx "$G" "bench role=tx peer=$RX $BENCH_ARGS" 1 32 "$TX" >/dev/null || exit 1
rc=0
# dom0 keeps quiet while they measure: a look at tx's console log every
# 5 s (busybox grep), not `xl` every half second, which would take a pCPU
# from them.
wait_log tx 'V4VT (ok|not ok) bench-tx' "$BENCH_TIMEOUT" 5
if wait_gone tx 30; then
    result ok bench.tx-finished
else
    result fail bench.tx-finished "tx still running after $BENCH_TIMEOUT s"
    xl destroy tx
    rc=1
fi
if ! wait_gone rx 30; then
    result fail bench.rx-finished "rx still running 30 s after tx"
    xl destroy rx
    rc=1
else
    result ok bench.rx-finished
fi
exit $rc
