# Cached Debian packages for the image scripts: sourced by
# scripts/dom0-image.sh and scripts/linux-domu.sh, which set DEBS (the
# cache folder), SUDO, log and die first. Packages are named PKG=VERSION;
# `apt-get download` fetches them into $DEBS and nothing is installed.

# deb_file PKG=VERSION: the cached .deb's path (apt writes ':' as %3a;
# architecture-independent packages end in _all).
deb_file() {
    local pkg="${1%%=*}" ver="${1#*=}" f
    for f in "$DEBS/${pkg}_${ver//:/%3a}_amd64.deb" "$DEBS/${pkg}_${ver//:/%3a}_all.deb"; do
        if [ -s "$f" ]; then echo "$f"; return 0; fi
    done
    echo "$DEBS/${pkg}_${ver//:/%3a}_amd64.deb"
}

APT_UPDATED=""
apt_update_once() {
    [ -z "$APT_UPDATED" ] || return 0
    APT_UPDATED=1
    log "apt-get update"
    $SUDO apt-get update -qq || log "apt-get update failed; going on with apt's index as it is"
}

# apt_download PKG=VERSION...: into the cache.
apt_download() {
    local aptopt=()
    # As root, apt would drop to _apt, which cannot write into our cache.
    if [ "$(id -u)" = 0 ]; then aptopt=(-o APT::Sandbox::User=root); fi
    (cd "$DEBS" && apt-get download -qq "${aptopt[@]}" "$@") >&2
}

# in_index PKG=VERSION: apt's index has that version. (`apt-cache show
# PKG=VERSION` exits 0 for a version it does not know, with only an
# error on stderr, so the version is looked for in what it prints.)
in_index() {
    apt-cache show "$1" 2>/dev/null | grep -xF "Version: ${1#*=}" >/dev/null
}

# apt_candidate PKG: the version apt would install, or nothing (none in
# apt's index).
apt_candidate() {
    LC_ALL=C apt-cache policy "$1" | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

# fetch_debs PKG=VERSION...: each one cached, downloading only what is
# missing (with one apt-get update if apt's index lacks it); dies if one
# cannot be had.
fetch_debs() {
    mkdir -p "$DEBS"
    local want=() spec
    for spec in "$@"; do
        [ -s "$(deb_file "$spec")" ] || want+=("$spec")
    done
    [ "${#want[@]}" -gt 0 ] || return 0
    log "apt-get download ${want[*]}"
    if ! apt_download "${want[@]}"; then
        log "not in apt's index; apt-get update and retry"
        apt_update_once
        apt_download "${want[@]}" \
            || die "cannot download ${want[*]} (pinned versions gone from the archive?)"
    fi
    for spec in "${want[@]}"; do
        [ -s "$(deb_file "$spec")" ] || die "apt-get download gave no $(deb_file "$spec")"
    done
}
