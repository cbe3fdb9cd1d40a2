#!/bin/sh
# The enforcing-FLASK boot (make flask-test): dom0's part. Xen runs with
# flask=enforcing and the test policy (xen-patches/flask/v4v_test.te); the
# domUs get their types from /etc/v4v/seclabels. The roles are in
# guest/src/scenario/flask.rs: b opens a ring to any sender, c (may not
# send to b) is refused, a (may) gets through. dom0 orders them by their
# marks (b, then c, then a) and checks that its own V4V tools still work:
# it is dom0_t, which keeps all of V4V and the viptables.
. /etc/v4v/lib.sh

G=/boot/v4v-test-guest
B=1 C=2 A=3
CAST="a=$A b=$B c=$C h=0 b2=0"
PORT=30

# create NAME ID: starts a domU in its flask role under its planned id.
create() {
    domu_create "$1" "$G" "scenario role=flask-$1 $CAST" 1 32 "$2" >/dev/null
}

# labelled NAME: `xl list -Z` shows NAME with its label from seclabels.
labelled() {
    want=$(domu_seclabel "$1")
    [ "$1" = Domain-0 ] && want=system_u:system_r:dom0_t
    xl list -Z "$1" 2>/dev/null | awk -v w="$want" 'NR > 1 && $NF == w { f = 1 } END { exit !f }'
}

created=""
bad_labels=""
# start NAME ID MARK: creates NAME paused, checks its label (a domU that
# is quick about its role may be gone soon after), unpauses it and waits
# for MARK.
start() {
    if ! V4V_PAUSED=1 create "$1" "$2"; then
        result fail flask.dom0-created "xl create $1 failed or got another id than $2"
        xl list -Z
        exit 1
    fi
    created="$created $1"
    labelled "$1" || bad_labels="$bad_labels $1"
    xl list -Z "$1" | sed 's/^/dom0: /'
    if ! xl unpause "$1"; then
        result fail flask.dom0-created "xl unpause $1"
        exit 1
    fi
    wait_log "$1" "V4VD mark $3" 120 || echo "dom0: $1 never marked $3" >&2
}

start b "$B" flask-b-ready

# dom0 (dom0_t) sees b's ring, sends to it, and keeps the viptables.
out=$(v4vctl notify "$B:$PORT" --space 16 2>&1)
echo "dom0: v4vctl notify $B:$PORT --space 16 -> $out"
if echo "$out" | grep -q EXISTS; then
    result ok flask.dom0-notify-sees-ring
else
    result fail flask.dom0-notify-sees-ring "$out"
fi
check flask.dom0-send v4vctl send "$B:$PORT" "flask: hello from dom0"
vip() {
    v4vctl viptables add -s "$C:*" -d "$A:*" -j REJECT &&
    v4vctl viptables list | grep REJECT | grep -q "$C:\*" &&
    v4vctl viptables del -s "$C:*" -d "$A:*" -j REJECT &&
    ! v4vctl viptables list | grep -q REJECT
}
check flask.dom0-viptables vip

start c "$C" flask-c-done
start a "$A" flask-a-done
labelled Domain-0 || bad_labels="$bad_labels Domain-0"
if [ -z "$bad_labels" ]; then
    result ok flask.labels
else
    result fail flask.labels "not labelled as /etc/v4v/seclabels says:$bad_labels"
fi
result ok flask.dom0-created

domus_finished flask.domus-finished 120 $created
for d in $created; do
    dump_log "$d"
done
