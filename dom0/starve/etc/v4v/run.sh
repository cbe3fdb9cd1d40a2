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
SR=1 SV=2 SL=3 SC=4 SH1=5 SH2=6
# The scenario guest reads the main scenarios' cast too (unused here).
SCAST="a=0 b=0 c=0 h=0 b2=0 sr=$SR sh1=$SH1 sh2=$SH2 sv=$SV sl=$SL"
# `xl destroy` of the victim (rings, waits) against that of a control
# domain with no V4V state, both while the hammers run: under TCG the
# toolstack's own work on CPUs that the hammers hold in 70 ms copies takes
# seconds either way, and only times taken in one boot compare. The
# victim's may take at most twice the control's plus 10 s; a teardown
# that waited for the hammers to stop would take their whole run (up to
# 150 s). The looper's bounds are in starve.rs.
TEARDOWN_SLACK_MS=10000

# screate NAME ROLE VCPUS ID [EXTRA]
screate() {
    domu_create "$1" "$G" "scenario role=$2 $SCAST $5" "$3" 32 "$4" >/dev/null
}

# The looper is created paused: unpausing it during the hammering is
# quick, while an `xl create` then takes tens of seconds.
if screate sr starve-r 1 "$SR" && screate sv starve-v 1 "$SV" &&
   V4V_PAUSED=1 screate sl starve-l 1 "$SL" && screate sc starve-idle 1 "$SC" &&
   screate sh1 starve-h 2 "$SH1" idx=0 && screate sh2 starve-h 2 "$SH2" idx=1; then
    result ok starve.domids-as-planned
    cast=yes
else
    result fail starve.domids-as-planned "xl create failed or ids differ"
    cast=no
fi

if [ "$cast" = yes ] && wait_log sv 'V4VD mark starve-v-ready' 300 &&
   wait_log sc 'V4VD mark starve-idle-ready' 300 &&
   wait_log sh1 'V4VD mark starve-hammering' 300 &&
   wait_log sh2 'V4VD mark starve-hammering' 300; then
    sleep 2
    # The teardowns while the hammers run: the control's, then the victim's.
    t0=$(_v4v_now)
    xl destroy sc; crc=$?
    cms=$(awk "BEGIN { printf \"%d\", ($(_v4v_now) - $t0) * 1000 }")
    t0=$(_v4v_now)
    xl destroy sv; rc=$?
    ms=$(awk "BEGIN { printf \"%d\", ($(_v4v_now) - $t0) * 1000 }")
    echo "dom0: during the hammering, xl destroy of a domain without V4V state: exit $crc in $cms ms; of sv (domain $SV, 32 rings, 4 waits): exit $rc in $ms ms"
    echo "V4VD figure starve-teardown-control-ms $cms"
    echo "V4VD figure starve-teardown-ms $ms"
    bound=$((2 * cms + TEARDOWN_SLACK_MS))
    if [ "$rc" = 0 ] && [ "$crc" = 0 ] && [ "$ms" -le "$bound" ]; then
        result ok starve.teardown-bounded
    else
        result fail starve.teardown-bounded "exit $rc after $ms ms (control: exit $crc after $cms ms; bound $bound ms)"
    fi
    # The looper's first V4V call, then its loop; it stops the hammers
    # when dom0 stops it.
    xl unpause sl || echo "dom0: xl unpause sl failed"
    if wait_log sl 'V4VD mark starve-l-looping' 300; then
        sleep 3
        v4vctl send "$SL:1" stop >/dev/null || echo "dom0: v4vctl send $SL:1 stop failed"
    fi
fi

domus_finished starve.domus-finished 300 sr sh1 sh2 sl

for d in sr sv sl sc sh1 sh2; do
    dump_log "$d"
done
