#!/bin/sh
# The vsock boot (issue 6): dom0's part. Two Linux PV domUs with the
# vsock-v4v module talk AF_VSOCK over V4V with socat; dom0 adds and
# deletes a viptables rule when the client asks, destroys the server while
# the client streams to and from it, and starts a second server. A Linux
# PVH domU p (issue 13), the same kernel, talks with both: the client's
# echo and 64 MiB through it, its own connections to the server, which
# must fail when dom0 destroys the server, and its own death while the
# client streams to and from it.
#
# Domain ids are planned (a=1, b=2, p=3, a2=4, ra=5, rb=6, rh=7); CID =
# domid + 3.
. /etc/v4v/lib.sh

K=/boot/vmlinux-domu
R=/boot/linux-domu.cpio
A=1 B=2 P=3 A2=4 RA=5 RB=6 RH=7
CID_A=$((A + 3)) CID_P=$((P + 3)) CID_A2=$((A2 + 3))
G=/boot/v4v-test-guest

# linux_create NAME EXTRA WANT_ID [TYPE MEM_MB]: a Linux domU (1 vCPU),
# PV unless TYPE says pvh.
linux_create() {
    domu_create "$1" "$K" "console=hvc0 quiet vsock_v4v=debug=1 $2" 1 "${5:-$LINUX_DOMU_MB}" "$3" "$R" "" "${4:-pv}" >/dev/null
}

# secs_since T: seconds since _v4v_now said T, two decimals.
secs_since() { awk "BEGIN { printf \"%.2f\", $(_v4v_now) - $1 }"; }

# mark_watch DOMU WHAT: in the background, the time mark WHAT first
# shows in DOMU's console (looking every 0.1 s, 20 s at most) into
# /tmp/seen-WHAT. Started before the xl destroy that destroyed_fast
# times: the domain's rings go when Xen kills it, before xl destroy
# returns, and xl destroy of the PVH domU takes up to 3 s (Xen frees its
# shadow page tables), after which dom0 itself has been seen to take
# 2.4 s to look at a mark that had long been there.
mark_watch() {
    rm -f "/tmp/seen-$2"
    (wait_log "$1" "V4VD mark $2" 20 0.1 && _v4v_now > "/tmp/seen-$2") &
    watch_pid=$!
}

# destroyed_fast T WHAT DOMU NAME FIGURE: after an xl destroy that
# returned at T, with mark_watch DOMU WHAT started before it: NAME ok if
# the mark came within 2.5 s of T (as for b; negative: before xl destroy
# returned); the delay is FIGURE.
destroyed_fast() {
    wait "$watch_pid"
    if [ -s "/tmp/seen-$2" ]; then
        dt=$(awk "BEGIN { printf \"%.2f\", $(cat "/tmp/seen-$2") - $1 }")
        echo "dom0: $3 saw it $dt s after xl destroy returned"
        echo "V4VD figure $5 $dt"
        if awk "BEGIN { exit !($dt <= 2.5) }"; then
            result ok "$4"
        else
            result fail "$4" "$dt s"
        fi
    else
        result fail "$4" "$3 did not notice in 20 s"
    fi
}

# wait_b REGEX TIMEOUT_S [POLL_S]: wait_log on b (every POLL_S, default
# 1: dom0 shares the two CPUs with the domUs it watches), giving up at once
# when b is gone.
wait_b() {
    _end=$(( $(_v4v_secs) + $2 ))
    while ! grep -E -q -- "$1" "$(domu_log b)" 2>/dev/null; do
        if ! xl domid b >/dev/null 2>&1; then
            echo "dom0: b is gone, no line matching '$1'"
            return 1
        fi
        if [ "$(_v4v_secs)" -ge "$_end" ]; then
            echo "dom0: no line matching '$1' from b after $2 s"
            return 1
        fi
        sleep "${3:-1}"
    done
}

# live LOG NAME: a domU's console as it comes, result words defused (the
# whole log, results and all, is dumped at the end).
live() {
    tail -F "$(domu_log "$1")" 2>/dev/null | awk -v n="$1" '{ gsub(/\r/, "");
        gsub(/V4VT/, "v4vt"); gsub(/V4VD/, "v4vd"); print "[" n " live] " $0; fflush() }' &
}

if linux_create a "role=server" "$A" &&
    linux_create b "role=client srv=$CID_A srv2=$CID_A2 pvh=$CID_P ra=$RA rb=$RB rh=$RH" "$B" &&
    linux_create p "role=pvh srv=$CID_A" "$P" pvh "$LINUX_PVH_MB"; then
    result ok vsock.dom0-domids-as-planned
    live a
    live b
    live p
else
    result fail vsock.dom0-domids-as-planned "xl create failed or ids differ"
    xl list
    exit 1
fi

if wait_b 'V4VD mark vip-ready' 400; then
    echo "dom0: v4vctl viptables add -s $B:* -d $A:* -j REJECT"
    if v4vctl viptables add -s "$B:*" -d "$A:*" -j REJECT; then
        result ok vsock.dom0-viptables-add
    else
        result fail vsock.dom0-viptables-add "v4vctl failed"
    fi
    if wait_b 'V4VD mark vip-rejected' 120; then
        echo "dom0: v4vctl viptables del -s $B:* -d $A:* -j REJECT"
        if v4vctl viptables del -s "$B:*" -d "$A:*" -j REJECT; then
            result ok vsock.dom0-viptables-del
        else
            result fail vsock.dom0-viptables-del "v4vctl failed"
        fi
    fi
fi

# b gets here after its checks against p too (up to 240 s for p to answer,
# then 64 MiB through it).
if wait_b 'V4VD mark death-ready' 500; then
    # p holds a writer and a reader on a by now (it did long before b got
    # here); if it does not, its own results say so.
    wait_log p 'V4VD mark pvh-holding' 60
    mark_watch p pvh-saw-death
    t0=$(_v4v_now)
    echo "dom0: xl destroy a (domain $A) while b streams to and from it, and p holds two connections to it"
    xl destroy a
    t1=$(_v4v_now)
    if wait_b 'V4VD mark death-detected' 20 0.1; then
        t2=$(_v4v_now)
        dt=$(awk "BEGIN { printf \"%.2f\", $t2 - $t1 }")
        echo "dom0: b saw the reset $dt s after xl destroy returned ($(awk "BEGIN { printf \"%.2f\", $t1 - $t0 }") s in xl destroy)"
        echo "V4VD figure vsock-death-detect-s $dt"
        if awk "BEGIN { exit !($dt <= 2.5) }"; then
            result ok vsock.death-detected-fast
        else
            result fail vsock.death-detected-fast "$dt s"
        fi
    else
        result fail vsock.death-detected-fast "b did not notice in 20 s"
    fi
    destroyed_fast "$t1" pvh-saw-death p vsock.pv-death-pvh-detected-fast vsock-pv-death-pvh-detect-s
    live a2
    if linux_create a2 "role=server" "$A2"; then
        result ok vsock.dom0-new-server
    else
        result fail vsock.dom0-new-server "xl create a2"
    fi
fi

# The PVH domU dies while b streams to and from it.
if wait_b 'V4VD mark pvh-death-ready' 300; then
    mark_watch b pvh-death-detected
    t0=$(_v4v_now)
    echo "dom0: xl destroy p (domain $P, PVH) while b streams to and from it"
    xl destroy p
    t1=$(_v4v_now)
    echo "dom0: $(secs_since "$t0") s in xl destroy p"
    destroyed_fast "$t1" pvh-death-detected b vsock.pvh-death-detected-fast vsock-pvh-death-detect-s
fi

# Datagrams between the Linux client and two Rust test domUs in the
# guest's show roles: ra (show-a) sends b 6 lines, rb (show-b) prints what
# b sends it; their casts name b as the peer.
if wait_b 'V4VD mark dgram-ready' 300; then
    if domu_create ra "$G" "scenario role=show-a a=$RA b=$B c=$RB h=0 b2=0" 1 32 "$RA" >/dev/null &&
        domu_create rb "$G" "scenario role=show-b a=$B b=$RB c=$B h=0 b2=0" 1 32 "$RB" >/dev/null; then
        result ok vsock.dom0-rust-domus
    else
        result fail vsock.dom0-rust-domus "xl create ra/rb"
    fi
    # rb's last line; xenconsoled may write it after the domain is gone.
    wait_log rb 'b: done:' 300
    got=0
    for i in 1 2 3; do
        grep -q "b: <- a (dom$B:7000): \"hello from linux $i\"" "$(domu_log rb)" && got=$((got + 1))
    done
    if [ $got = 3 ] && grep -q "b: done: 3 messages from a" "$(domu_log rb)"; then
        result ok vsock.dgram-linux-to-rust
    else
        result fail vsock.dgram-linux-to-rust "rb printed $got of 3 lines"
    fi
fi

# The Rust wire-protocol peer (guest/src/scenario/vsock.rs) against a2.
if wait_b 'V4VD mark peer-ready' 300; then
    if domu_create rh "$G" "scenario role=vsock-peer a=$A2 b=$B c=0 h=0 b2=0" 1 32 "$RH" >/dev/null; then
        result ok vsock.dom0-rust-peer
    else
        result fail vsock.dom0-rust-peer "xl create rh"
    fi
    wait_log rh 'scenario: role vsock-peer finished' 400
fi

if wait_gone b 300; then
    result ok vsock.dom0-client-finished
else
    result fail vsock.dom0-client-finished "b still running"
    xl destroy b
fi
xl destroy a2 2>/dev/null
xl destroy p 2>/dev/null
for d in ra rb rh; do wait_gone "$d" 60 || xl destroy "$d"; done

kill $(jobs -p) 2>/dev/null
for d in a b p a2 ra rb rh; do
    dump_log "$d"
done
