#!/bin/sh
# Smoke scenario for the dom0 image: one domU running the test guest in
# `demo` mode, created with xl; dom0 waits for it to power off and checks
# its console log for the end of the demo transcript.
. /etc/v4v/lib.sh

G=/boot/v4v-test-guest
if id=$(domu_create demo "$G" demo 1 32); then
    result ok smoke.domu-create
else
    result fail smoke.domu-create "xl create failed"
    exit 1
fi
if wait_gone demo 120; then
    result ok smoke.domu-gone
else
    result fail smoke.domu-gone "domain $id still running after 120 s"
    xl list
fi
dump_log demo
log=$(domu_log demo)
if grep -q '"goodbye from the demo"' "$log" && grep -q 'V4VT done' "$log"; then
    result ok smoke.domu-demo
else
    result fail smoke.domu-demo "no demo transcript end in $log"
fi
