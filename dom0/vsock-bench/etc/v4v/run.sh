#!/bin/sh
# make bench-vsock: AF_VSOCK over V4V against TCP over Xen's PV network
# between the same two Linux domUs, in one boot. dom0 loads the network
# backend and a bridge, starts the server domU (domain 1) and the client
# (domain 2), each with a vif on the bridge (netfront in the domU, netback
# here, the hotplug script /etc/v4v/vif-bench), and waits: the client
# measures both transports in turn (`vperf`, dom0/vsock-bench/domu-bench.sh)
# and powers off. Knobs from /etc/v4v/vsock-bench.conf (written by
# mk/bench.mk): VB_REPS, VB_MS, VB_PINGS, VB_SIZES, VB_TIMEOUT.
. /etc/v4v/lib.sh
VB_REPS=5
VB_MS=1000
VB_PINGS=200
VB_SIZES=64,256,1024,4096,16384,65536
VB_TIMEOUT=900
[ -f /etc/v4v/vsock-bench.conf ] && . /etc/v4v/vsock-bench.conf

K=/boot/vmlinux-domu
R=/boot/linux-domu.cpio
BR=xenbr0
NET=10.118.0
SRV=1 CLI=2

# The network: netback, the bridge (no STP, no forwarding delay: busybox's
# brctl has no stp or setfd, sysfs does it), up.
net=ok
for ko in /lib/modules/net/*.ko; do
    insmod "$ko" || net="insmod $ko"
done
if [ "$net" = ok ]; then
    if brctl addbr "$BR" && echo 0 > "/sys/class/net/$BR/bridge/stp_state" &&
        echo 0 > "/sys/class/net/$BR/bridge/forward_delay" && ip link set "$BR" up; then
        result ok vsock-bench.dom0-network
    else
        net="bridge $BR"
    fi
fi
if [ "$net" != ok ]; then
    result fail vsock-bench.dom0-network "$net"
    exit 1
fi

# vb_create NAME WANT_ID EXTRA: a Linux domU (1 vCPU, $LINUX_DOMU_MB MiB) with a vif
# on the bridge.
vb_create() {
    domu_create "$1" "$K" "console=hvc0 quiet $3" 1 "$LINUX_DOMU_MB" "$2" "$R" \
        "'mac=00:16:3e:76:00:0$2,bridge=$BR,script=/etc/v4v/vif-bench'" >/dev/null
}

if vb_create server "$SRV" "role=bench-server vb_ip=$NET.1/24" &&
    vb_create client "$CLI" "role=bench-client vb_ip=$NET.2/24 vb_srv_cid=$((SRV + 3)) vb_srv_ip=$NET.1 vb_reps=$VB_REPS vb_ms=$VB_MS vb_pings=$VB_PINGS vb_sizes=$VB_SIZES"; then
    result ok vsock-bench.dom0-domus
    echo "dom0: bridge $BR: $(ls "/sys/class/net/$BR/brif" | tr '\n' ' ')"
else
    result fail vsock-bench.dom0-domus "xl create failed or ids differ"
    xl list
    exit 1
fi

# Wait for the client's verdict, quietly: a look at its console log every
# 5 s (dom0 is the network's backend: it must not eat the pCPUs), passing
# on its progress; whether it still exists only every 30 s.
log=$(domu_log client)
end=$(( $(_v4v_secs) + VB_TIMEOUT ))
last="" n=0
while ! grep -E -q 'V4VT (ok|not ok) vsock-bench.client' "$log" 2>/dev/null; do
    if [ "$(_v4v_secs)" -ge "$end" ]; then
        echo "dom0: no verdict from the client after $VB_TIMEOUT s"
        break
    fi
    n=$((n + 1))
    if [ $((n % 6)) = 0 ] && ! xl domid client >/dev/null 2>&1; then
        echo "dom0: the client is gone without a verdict"
        break
    fi
    sleep 5
    p=$(grep -a 'V4VD progress' "$log" 2>/dev/null | tail -n 1 | tr -d '\r')
    if [ -n "$p" ] && [ "$p" != "$last" ]; then
        echo "V4VD ${p#*V4VD }"
        last=$p
    fi
done

rc=0
if wait_gone client 60; then
    result ok vsock-bench.dom0-client-finished
else
    result fail vsock-bench.dom0-client-finished "client still running"
    rc=1
fi
# CPU seconds each domain used over the whole boot (dom0: netback's share
# of the TCP runs, and this script).
xl list
xl destroy client 2>/dev/null
xl destroy server 2>/dev/null
wait_gone server 30
for d in server client; do
    dump_log "$d"
done
exit $rc
