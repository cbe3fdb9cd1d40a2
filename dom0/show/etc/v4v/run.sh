#!/bin/sh
# `make run`: three domUs talk over V4V while dom0 changes the rules.
# b shows what reaches its ring; a and c each send a line a second; dom0
# rejects c's traffic to b for a while with v4vctl, then lifts the rule.
. /etc/v4v/lib.sh

G=/boot/v4v-test-guest
B=1 A=2 C=3
CAST="a=$A b=$B c=$C h=0 b2=0"

for r in b:$B a:$A c:$C; do
    name=${r%%:*} id=${r#*:}
    domu_create "$name" "$G" "scenario role=show-$name $CAST" 1 32 "$id" >/dev/null || exit 1
done

if wait_log c 'V4VD mark show-c-2' 120; then
    echo "dom0: # v4vctl viptables add -s $C:* -d $B:* -j REJECT"
    v4vctl viptables add -s "$C:*" -d "$B:*" -j REJECT
    echo "dom0: # v4vctl viptables list"
    v4vctl viptables list | sed 's/^/dom0:   /'
fi
if wait_log c 'V4VD mark show-c-4' 120; then
    echo "dom0: # v4vctl viptables flush"
    v4vctl viptables flush
fi
for d in a c b; do
    wait_gone "$d" 120 || xl destroy "$d"
done
echo "dom0: all domUs finished"
