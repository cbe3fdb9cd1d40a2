#!/bin/sh
# The starvation scenario: dom0's part (guest/src/scenario/starve.rs has
# the domUs'). Two hammer domains keep Xen copying maximal messages from
# all their vCPUs into 16 MiB rings of a receiver; meanwhile dom0 destroys
# a domain that has rings and waits, and a domain whose first V4V call
# comes during the hammering registers and unregisters a ring in a loop.
# Both must finish within their bounds. `make starve-test` boots it with 4
# physical CPUs, so that the hammers' copies overlap.
#
# Results are `V4VT ok NAME` / `V4VT not ok NAME # WHY` lines, figures
# `V4VD figure NAME VALUE`; the expected names are in dom0/starve/expect.
. /etc/v4v/lib.sh

G=/boot/v4v-test-guest
# Xen hands out domain ids in creation order.
SR=1 SV=2 SL=3 SH1=4 SH2=5
# The scenario guest reads the main scenarios' cast too (unused here).
SCAST="a=0 b=0 c=0 h=0 b2=0 sr=$SR sh1=$SH1 sh2=$SH2 sv=$SV sl=$SL"
# Milliseconds `xl destroy` of the victim may take while the hammers run
# (the looper's bounds are in starve.rs). Under TCG the toolstack itself
# is slow while the hammers keep the CPUs in 70 ms copies: a teardown
# that waits for them to stop takes their whole run (150 s at most).
TEARDOWN_BOUND_MS=60000

# screate NAME ROLE VCPUS ID [EXTRA]
screate() {
    domu_create "$1" "$G" "scenario role=$2 $SCAST $5" "$3" 32 "$4" >/dev/null
}

# The looper is created paused: unpausing it during the hammering is
# quick, while an `xl create` then takes tens of seconds.
if screate sr starve-r 1 "$SR" && screate sv starve-v 1 "$SV" &&
   V4V_PAUSED=1 screate sl starve-l 1 "$SL" &&
   screate sh1 starve-h 2 "$SH1" idx=0 && screate sh2 starve-h 2 "$SH2" idx=1; then
    result ok starve.domids-as-planned
    cast=yes
else
    result fail starve.domids-as-planned "xl create failed or ids differ"
    cast=no
fi

if [ "$cast" = yes ] && wait_log sv 'V4VD mark starve-v-ready' 300 &&
   wait_log sh1 'V4VD mark starve-hammering' 300 &&
   wait_log sh2 'V4VD mark starve-hammering' 300; then
    sleep 2
    # The teardown while the hammers run.
    t0=$(_v4v_now)
    xl destroy sv; rc=$?
    ms=$(awk "BEGIN { printf \"%d\", ($(_v4v_now) - $t0) * 1000 }")
    echo "dom0: xl destroy sv (domain $SV, 32 rings and 4 waits) during the hammering: exit $rc in $ms ms"
    echo "V4VD figure starve-teardown-ms $ms"
    if [ "$rc" = 0 ] && [ "$ms" -le "$TEARDOWN_BOUND_MS" ]; then
        result ok starve.teardown-bounded
    else
        result fail starve.teardown-bounded "exit $rc after $ms ms (bound $TEARDOWN_BOUND_MS ms)"
    fi
    # The looper's first V4V call, then its loop; it stops the hammers
    # when dom0 stops it.
    xl unpause sl || echo "dom0: xl unpause sl failed"
    if wait_log sl 'V4VD mark starve-l-looping' 300; then
        sleep 3
        v4vctl send "$SL:1" stop >/dev/null || echo "dom0: v4vctl send $SL:1 stop failed"
    fi
fi

left=""
for d in sr sh1 sh2 sl; do
    wait_gone "$d" 300 || left="$left $d"
done
if [ -z "$left" ]; then
    result ok starve.domus-finished
else
    result fail starve.domus-finished "still running:$left"
    for d in $left; do xl destroy "$d"; done
fi

for d in sr sv sl sh1 sh2; do
    dump_log "$d"
done
