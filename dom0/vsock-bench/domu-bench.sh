# The Linux domUs' part of make bench-vsock (AF_VSOCK over V4V against TCP
# over Xen's PV network), installed as /etc/v4v/vsock-bench.sh by
# scripts/linux-domu.sh and sourced by the domU's /init
# (dom0/vsock/domu-init) for the roles bench-*, with its helpers (ok,
# fail, mark, ms, bye) and the modules (vsock, vsock-v4v, xen-netfront)
# loaded. Knobs come from the kernel command line:
#
#   role=bench-server vb_ip=ADDR/PREFIX
#       eth0 gets vb_ip; `vperf server` on vsock and TCP port 6000 until
#       dom0 destroys the domain
#   role=bench-client vb_ip=ADDR/PREFIX vb_srv_cid=CID vb_srv_ip=ADDR
#                     vb_reps=N vb_ms=MS vb_pings=N vb_sizes=B,B,...
#       eth0 gets vb_ip; `vperf client` against the server, both
#       transports, its `V4VB` lines on the console; then powers off
#
# Results: `V4VT ok vsock-bench.NAME`; dom0 puts the console logs on the
# serial line at the end, where tests/vsock_bench.py reads the figures.
VB_PORT=6000

# net_up: eth0 (netfront, once it has connected to dom0's netback) up
# with its address.
net_up() {
    end=$(( $(ms) + 60000 ))
    while [ ! -e /sys/class/net/eth0 ]; do
        if [ "$(ms)" -ge "$end" ]; then
            fail "vsock-bench.$role-net" "no eth0 after 60 s"
            dmesg | tail -n 20
            return 1
        fi
        sleep 0.2
    done
    if ! ip link set lo up || ! ip addr add "$vb_ip" dev eth0 || ! ip link set eth0 up; then
        fail "vsock-bench.$role-net" "cannot configure eth0 as $vb_ip"
        return 1
    fi
    echo "domu: eth0 $(cat /sys/class/net/eth0/address) $vb_ip, mtu $(cat /sys/class/net/eth0/mtu)"
    ok "vsock-bench.$role-net"
}

# netstat_eth0: eth0's counters, to see how TCP's bytes were packed.
netstat_eth0() {
    awk '$1 == "eth0:" { printf "domu: eth0 rx %d bytes %d packets, tx %d bytes %d packets\n",
        $2, $3, $10, $11 }' /proc/net/dev
}

bench_server() {
    net_up || bye
    vperf server "$VB_PORT" 2>/tmp/vperf.err &
    vpid=$!
    sleep 0.5
    if ! kill -0 "$vpid" 2>/dev/null; then
        fail vsock-bench.server-up "vperf server: $(cat /tmp/vperf.err)"
        bye
    fi
    ok vsock-bench.server-up
    mark server-ready
    wait "$vpid"
    fail vsock-bench.server-up "vperf server ended: $(cat /tmp/vperf.err)"
    bye
}

bench_client() {
    net_up || bye
    netstat_eth0
    t0=$(ms)
    if vperf client "$vb_srv_cid" "$vb_srv_ip" "$VB_PORT" -s "$vb_sizes" -r "$vb_reps" \
        -t "$vb_ms" -n "$vb_pings" -w 120 2>/tmp/vperf.err; then
        ok vsock-bench.client
    else
        fail vsock-bench.client "$(tr '\n' ' ' < /tmp/vperf.err)"
    fi
    echo "domu: vperf ran $(( ($(ms) - t0) / 1000 )) s"
    netstat_eth0
    dmesg | grep -E 'vsock-v4v|xen_netfront|xen-netfront' | tail -n 20
    mark client-done
    bye
}

case "$role" in
    bench-server) bench_server ;;
    bench-client) bench_client ;;
    *) fail vsock-bench.role "unknown role '$role'"; bye ;;
esac
