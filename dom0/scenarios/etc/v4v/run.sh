#!/bin/sh
# The multi-domain scenarios: dom0's part. It starts the test domUs with
# xl, acts when they reach a mark (a viptables rule with v4vctl, an
# `xl destroy`), checks what only dom0 can see (v4vctl's answers, Xen's
# V4V state after a teardown) and waits for every domU to finish.
#
# Results are `V4VT ok NAME` / `V4VT not ok NAME # WHY` lines; the domUs
# print theirs on their own consoles (mirrored to Xen's serial line).
# The expected names are in dom0/scenarios/expect.
. /etc/v4v/lib.sh

G=/boot/v4v-test-guest
# Xen hands out domain ids in creation order, from 1 up; each domU learns
# the others' ids from its command line, so dom0 plans them and checks.
B=1 A=2 C=3 H=4 B2=5
CAST="a=$A b=$B c=$C h=$H b2=$B2"

# create NAME ID VCPUS: starts a domU in its role under its planned id.
create() {
    domu_create "$1" "$G" "scenario role=$1 $CAST" "$3" 32 "$2" >/dev/null
}

if create b "$B" 1 && create a "$A" 2 && create c "$C" 2 && create h "$H" 2; then
    result ok dom0.domids-as-planned
else
    result fail dom0.domids-as-planned "xl create failed or ids differ"
    xl list
    exit 1
fi
# PV or PVH as this boot planned (/etc/v4v/pvh-domus).
kinds_as_planned dom0.kinds-as-planned b a c h

# viptables: a probes b:15 until the rule bites, then until it is gone.
if wait_log a 'V4VD mark vip-a-ready' 900; then
    echo "dom0: v4vctl viptables add -s $A:* -d $B:15 -j REJECT"
    check viptables.dom0-add v4vctl viptables add -s "$A:*" -d "$B:15" -j REJECT
    list=$(v4vctl viptables list 2>&1)
    echo "$list"
    if echo "$list" | grep REJECT | grep -q "$B:15"; then
        result ok v4vctl.list-shows-rule
    else
        result fail v4vctl.list-shows-rule "$(echo "$list" | tr '\n' ' ')"
    fi
    if wait_log a 'V4VD mark vip-a-rejected' 300; then
        echo "dom0: v4vctl viptables del -s $A:* -d $B:15 -j REJECT"
        check v4vctl.del-by-rule v4vctl viptables del -s "$A:*" -d "$B:15" -j REJECT
        list=$(v4vctl viptables list 2>&1)
        if echo "$list" | grep -q REJECT; then
            result fail v4vctl.list-empty-after-del "$(echo "$list" | tr '\n' ' ')"
        else
            result ok v4vctl.list-empty-after-del
        fi
        # Deleting a rule that is not there: exit status 1 and a reason.
        out=$(v4vctl viptables del 5 2>&1); rc=$?
        echo "dom0: v4vctl viptables del 5 -> $rc: $out"
        if [ "$rc" = 1 ] && echo "$out" | grep -qi "no such rule"; then
            result ok v4vctl.del-missing-explained
        else
            result fail v4vctl.del-missing-explained "exit $rc: $out"
        fi
        echo "dom0: v4vctl send $B:15 'hello from dom0'"
        check v4vctl.send-from-dom0 v4vctl send "$B:15" "hello from dom0"
        # notify from dom0: b's ring exists, port 999 of b does not.
        yes=$(v4vctl notify "$B:15" --space 16 2>&1); no=$(v4vctl notify "$B:999" 2>&1)
        echo "dom0: v4vctl notify $B:15 --space 16 -> $yes"
        echo "dom0: v4vctl notify $B:999 -> $no"
        if echo "$yes" | grep -q "EXISTS" && ! echo "$no" | grep -q "EXISTS"; then
            result ok v4vctl.notify-reports-flags
        else
            result fail v4vctl.notify-reports-flags "$yes / $no"
        fi
    fi
fi

# Xen's V4V state as debug key '4' prints it (the last dump in xl dmesg).
v4v_state() {
    xl debug-keys 4
    xl dmesg | awk '/V4V: .*domain\(s\) with state/ { s = "" } { s = s $0 "\n" } END { printf "%s", s }'
}

# teardown: b stops reading, a is queued on its ring; destroy b.
if wait_log b 'V4VD mark teardown-ready' 1200; then
    # a must be waiting for space on b's teardown ring (port 0x10).
    tries=0
    until state=$(v4v_state) && echo "$state" | grep -q "port 0x10 .*wait(dom$A "; do
        tries=$((tries + 1))
        [ $tries -ge 25 ] && break
        sleep 0.2
    done
    echo "$state" | grep "dom$B:\|port 0x10 " | sed 's/^/dom0: before: /'
    if echo "$state" | grep -q "port 0x10 .*wait(dom$A "; then
        result ok teardown.a-queued-before-destroy
    else
        result fail teardown.a-queued-before-destroy "no wait of dom$A on b's ring 0x10"
    fi
    echo "dom0: xl destroy b (domain $B) while a is sending to it"
    check teardown.xl-destroy xl destroy b
    if wait_log a 'V4VD mark teardown-a-saw-enotconn' 120; then
        # Xen's V4V state (debug key '4'): nothing of b, no wait of a.
        state=$(v4v_state)
        echo "$state" | sed 's/^/dom0: after: /'
        if [ -z "$state" ]; then
            result fail teardown.no-state-left "no V4V dump in xl dmesg"
        elif echo "$state" | grep -q "dom$B:\|wait(dom$A "; then
            result fail teardown.no-state-left "b or a wait of a's survived"
        elif ! echo "$state" | grep -q "dom$A: .* 0 wait(s) queued"; then
            result fail teardown.no-state-left "a still counts waits"
        else
            result ok teardown.no-state-left
        fi
        if create b2 "$B2" 1; then
            result ok teardown.b2-created
            kinds_as_planned teardown.b2-kind-as-planned b2
        else
            result fail teardown.b2-created "xl create b2"
        fi
    fi
fi

# Every domU powers off when its role is done.
domus_finished dom0.domus-finished 900 a c h b2

# Every domU's whole console log (xenconsoled's copy) onto the serial line,
# `[NAME] `-prefixed: the record of the run even where Xen's mirror of a
# domU's lines was cut short.
for d in b a c h b2; do
    dump_log "$d"
done
