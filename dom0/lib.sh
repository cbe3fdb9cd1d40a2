# Helpers for dom0 scenario scripts (busybox sh), installed as
# /etc/v4v/lib.sh; a scenario starts with `. /etc/v4v/lib.sh`.
#
#   domu_create NAME KERNEL EXTRA [VCPUS] [MEM_MB] [WANT_ID] [RAMDISK] [VIF] [TYPE]
#                         start a domU of xl type TYPE (pv or pvh; by
#                         default domu_type's answer for NAME), created
#                         paused and left so with V4V_PAUSED=1; prints its
#                         domain id on stdout;
#                         with WANT_ID, a domU that got another id is
#                         destroyed before it runs, and the call fails;
#                         RAMDISK is its initramfs, VIF the inside of xl's
#                         `vif = [ ]` (none by default), TYPE xl's `type`
#                         (pv by default; pvh for a Linux PVH domU); a domU
#                         named in /etc/v4v/seclabels gets that FLASK label
#                         (domu_seclabel)
#   domu_seclabel NAME    the security label of NAME's xl config: the
#                         second word of NAME's line in /etc/v4v/seclabels
#                         (`b system_u:system_r:v4v_b_t`), empty when none
#   wait_log NAME REGEX TIMEOUT_S [EVERY_S]
#                         wait for a line matching REGEX (grep -E) in its
#                         console log, looking every EVERY_S seconds
#                         (default 0.2); 1 on timeout
#   wait_gone NAME TIMEOUT_S
#                         wait until the domain no longer exists; 1 on timeout
#   domus_finished RESULT TIMEOUT_S NAME...
#                         wait_gone each; reports RESULT ok, or fail naming
#                         the domains still running (which it destroys)
#   kinds_as_planned RESULT NAME...
#                         each test-guest domU's banner names the start
#                         info of the kind domu_type planned (PV or PVH);
#                         reports RESULT ok, or fail naming the others
#   dump_log NAME         its console log, each line prefixed "[NAME] "
#   domu_log NAME         the console log's path
#   check NAME CMD...     runs CMD, reports NAME by its exit status (the
#                         failure text is the command and its output)
#   result ok|fail NAME [WHY]
#                         "V4VT ok NAME" / "V4VT not ok NAME # WHY"
#
# Progress and errors go to stderr (the console), never to stdout, so
# `id=$(domu_create ...)` captures only the id.

V4V_CFG_DIR=/var/lib/xen/cfg
V4V_CONSOLE_DIR=/var/log/xen/console

_v4v_now() { cut -d' ' -f1 /proc/uptime; }
# Whole seconds since boot, for deadlines.
_v4v_secs() { cut -d. -f1 /proc/uptime; }

domu_log() { echo "$V4V_CONSOLE_DIR/guest-$1.log"; }

# Memory of a Linux domU (MiB) in the vsock boots. Its root file system is
# its initramfs (about 31 MiB: busybox, socat, Python, the modules), held
# twice while the kernel unpacks it; at 128 MiB that unpacking ran out of
# memory and the kernel panicked.
LINUX_DOMU_MB=192
# The same for the vsock boot's Linux PVH domU (same kernel, same image),
# the smallest of the sizes tried that works: at 128 MiB the kernel could
# not unpack the whole initramfs ("Initramfs unpacking failed: write
# error", then no socat), at 96 MiB xl could not even place it above the
# kernel. Xen's shadow page tables for it (no hardware paging under TCG)
# come on top, from Xen's free memory, not from this.
LINUX_PVH_MB=160

# A fixed UUID made from the name: libxl then needs no random numbers
# (dom0's entropy pool is slow to fill under TCG and libuuid would wait).
_v4v_uuid() {
    h=$(printf 'v4v-domu-%s' "$1" | md5sum | cut -c1-32)
    echo "$h" | sed 's/^\(.\{8\}\)\(.\{4\}\).\(.\{3\}\).\(.\{3\}\)\(.\{12\}\)$/\1-\2-4\3-8\4-\5/'
}

# The kind of domU NAME is created as: "pvh" when NAME is one of the
# space-separated names in V4V_PVH_DOMUS (a boot sets it in
# /etc/v4v/pvh-domus, read below), else "pv".
domu_type() {
    case " ${V4V_PVH_DOMUS:-} " in *" $1 "*) echo pvh ;; *) echo pv ;; esac
}
if [ -z "${V4V_PVH_DOMUS:-}" ] && [ -f /etc/v4v/pvh-domus ]; then
    V4V_PVH_DOMUS=$(cat /etc/v4v/pvh-domus)
fi

domu_seclabel() {
    [ -f /etc/v4v/seclabels ] || return 0
    awk -v n="$1" '$1 == n { print $2; exit }' /etc/v4v/seclabels
}

domu_create() {
    if [ $# -lt 3 ]; then
        echo "domu_create: usage: domu_create NAME KERNEL EXTRA [VCPUS] [MEM_MB] [WANT_ID] [RAMDISK] [VIF] [TYPE]" >&2
        return 2
    fi
    _name=$1 _kernel=$2 _extra=$3 _vcpus=${4:-1} _mem=${5:-32} _want=${6:-}
    _ramdisk=${7:-} _vif=${8:-} _type=${9:-$(domu_type "$1")}
    case "$_type" in pv|pvh) ;; *)
        echo "dom0: domu_create $_name: type $_type: only pv and pvh" >&2
        return 1 ;;
    esac
    if [ ! -f "$_kernel" ]; then
        echo "dom0: domu_create $_name: no kernel $_kernel" >&2
        return 1
    fi
    case "$_extra$_name" in *'"'*|*'\'*)
        echo "dom0: domu_create $_name: no quotes or backslashes in NAME/EXTRA" >&2
        return 1 ;;
    esac
    _rd=""
    [ -n "$_ramdisk" ] && _rd="ramdisk = \"$_ramdisk\""
    _label=$(domu_seclabel "$_name")
    _sl=""
    [ -n "$_label" ] && _sl="seclabel = \"$_label\""
    mkdir -p "$V4V_CFG_DIR"
    _cfg=$V4V_CFG_DIR/$_name.cfg
    cat > "$_cfg" <<EOF
name = "$_name"
uuid = "$(_v4v_uuid "$_name")"
type = "$_type"
kernel = "$_kernel"
$_rd
$_sl
extra = "$_extra"
vcpus = $_vcpus
memory = $_mem
on_poweroff = "destroy"
on_reboot = "destroy"
on_crash = "destroy"
disk = [ ]
vif = [ $_vif ]
EOF
    _t0=$(_v4v_now)
    # Paused, so that a short-lived domU cannot be gone (on_poweroff =
    # destroy) before its id is read.
    if ! xl create -p "$_cfg" > "/tmp/xl-create-$_name.log" 2>&1; then
        echo "dom0: xl create $_name failed:" >&2
        sed 's/^/dom0:   /' "/tmp/xl-create-$_name.log" >&2
        return 1
    fi
    if ! _id=$(xl domid "$_name" 2>/dev/null); then
        echo "dom0: $_name not there after xl create -p" >&2
        return 1
    fi
    # Scenarios tell each domU the others' ids on its command line, so a
    # domU with an id other than the planned one must not run at all.
    if [ -n "$_want" ] && [ "$_id" != "$_want" ]; then
        echo "dom0: $_name got domain id $_id, planned $_want" >&2
        xl destroy "$_name" 2>/dev/null
        return 1
    fi
    # V4V_PAUSED=1: leave it paused (the caller unpauses it later).
    if [ -n "${V4V_PAUSED:-}" ]; then
        echo "dom0: created $_name as domain $_id, paused" >&2
        echo "$_id"
        return 0
    fi
    if ! xl unpause "$_name" >> "/tmp/xl-create-$_name.log" 2>&1; then
        echo "dom0: xl unpause $_name failed:" >&2
        sed 's/^/dom0:   /' "/tmp/xl-create-$_name.log" >&2
        xl destroy "$_name" 2>/dev/null
        return 1
    fi
    echo "dom0: created $_name as domain $_id ($_type${_label:+, $_label}, $_vcpus vCPU, $_mem MiB, extra '$_extra') in $(awk "BEGIN { printf \"%.1f\", $(_v4v_now) - $_t0 }") s" >&2
    echo "$_id"
}

wait_log() {
    _log=$(domu_log "$1")
    _end=$(( $(_v4v_secs) + $3 ))
    while ! grep -E -q -- "$2" "$_log" 2>/dev/null; do
        if [ "$(_v4v_secs)" -ge "$_end" ]; then
            echo "dom0: wait_log $1: no line matching '$2' after $3 s" >&2
            return 1
        fi
        sleep "${4:-0.2}"
    done
    return 0
}

kinds_as_planned() {
    _res=$1; shift
    _wrong=""
    for _d in "$@"; do
        # The banner: "V4V test guest: domU on Xen 4.20 (xen-3.0-x86_64-pvh), ..."
        _magic='xen-3\.0-x86_64'
        [ "$(domu_type "$_d")" = pvh ] && _magic="$_magic-pvh"
        wait_log "$_d" "V4V test guest: .* \($_magic\)" 120 || _wrong="$_wrong $_d"
    done
    if [ -z "$_wrong" ]; then
        result ok "$_res"
    else
        result fail "$_res" "not booted as planned ($(for _d in "$@"; do printf '%s=%s ' "$_d" "$(domu_type "$_d")"; done)):$_wrong"
    fi
}

wait_gone() {
    _end=$(( $(_v4v_secs) + $2 ))
    while xl domid "$1" >/dev/null 2>&1; do
        if [ "$(_v4v_secs)" -ge "$_end" ]; then
            echo "dom0: wait_gone $1: still there after $2 s" >&2
            return 1
        fi
        sleep 0.5
    done
    return 0
}

domus_finished() {
    _res=$1 _timeout=$2
    shift 2
    _left=""
    for _d in "$@"; do
        wait_gone "$_d" "$_timeout" || _left="$_left $_d"
    done
    if [ -z "$_left" ]; then
        result ok "$_res"
    else
        result fail "$_res" "still running:$_left"
        xl list
        for _d in $_left; do xl destroy "$_d"; done
    fi
}

dump_log() {
    _log=$(domu_log "$1")
    if [ ! -f "$_log" ]; then
        echo "[$1] (no console log at $_log)"
        return 1
    fi
    tr -d '\r' < "$_log" | sed "s/^/[$1] /"
}

# dom0's console reaches Xen's serial line in small pieces, between which
# Xen may print a domU's line; so results are kept in a file and /init
# prints them once every domU is gone. A progress line shows them now.
V4V_RESULTS=/run/v4v-results
check() {
    _cname=$1; shift
    if _cout=$("$@" 2>&1); then
        result ok "$_cname"
    else
        result fail "$_cname" "$(echo "$*: $_cout" | tr '\n' ' ')"
    fi
}

result() {
    case "$1" in
        ok) _line="V4VT ok $2" ;;
        fail) _line="V4VT not ok $2 # ${3:-failed}" ;;
        *) echo "result: usage: result ok|fail NAME [WHY]" >&2; return 2 ;;
    esac
    echo "$_line" >> "$V4V_RESULTS"
    echo "dom0: result: $1 $2"
}
