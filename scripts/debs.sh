# Cached Debian packages for the image scripts: sourced by
# scripts/dom0-image.sh and scripts/linux-domu.sh after scripts/suite.sh,
# with DEBS (the cache folder), log and die set. Packages are named
# PKG=VERSION; `apt-get download` on the private apt index of the suite in
# DEBS_SUITE (bookworm, trixie: see suite.sh) fetches them into $DEBS.
# Nothing is installed and the host's own apt index is neither used nor
# changed, so a Debian 13 package is had the same way as a Debian 12 one.
# DEBS_SUITE may be set for one call: `DEBS_SUITE=trixie fetch_debs ...`.

# deb_file PKG=VERSION: the cached .deb's path (apt writes ':' as %3a;
# architecture-independent packages end in _all).
deb_file() {
    local pkg="${1%%=*}" ver="${1#*=}" f
    for f in "$DEBS/${pkg}_${ver//:/%3a}_amd64.deb" "$DEBS/${pkg}_${ver//:/%3a}_all.deb"; do
        if [ -s "$f" ]; then echo "$f"; return 0; fi
    done
    echo "$DEBS/${pkg}_${ver//:/%3a}_amd64.deb"
}

debs_suite() { [ -n "${DEBS_SUITE:-}" ] || die "DEBS_SUITE is not set"; echo "$DEBS_SUITE"; }

# apt_download PKG=VERSION...: into the cache.
apt_download() {
    local suite
    suite="$(debs_suite)"
    mkdir -p "$DEBS"
    (cd "$DEBS" && suite_apt "$suite" apt-get download -qq "$@") >&2
}

# in_index PKG=VERSION: the suite's index has that version.
in_index() { suite_in_index "$(debs_suite)" "$1"; }

# apt_candidate PKG: the newest version in the suite's index, or nothing.
apt_candidate() { suite_candidate "$(debs_suite)" "$1"; }

# fetch_debs PKG=VERSION...: each one cached, downloading only what is
# missing (the suite's index is brought up to date first, once a run);
# dies if one cannot be had.
fetch_debs() {
    mkdir -p "$DEBS"
    local want=() spec
    for spec in "$@"; do
        [ -s "$(deb_file "$spec")" ] || want+=("$spec")
    done
    [ "${#want[@]}" -gt 0 ] || return 0
    log "apt-get download ($(debs_suite)) ${want[*]}"
    apt_download "${want[@]}" \
        || die "cannot download ${want[*]} from $(debs_suite) (pinned versions gone from the archive?)"
    for spec in "${want[@]}"; do
        [ -s "$(deb_file "$spec")" ] || die "apt-get download gave no $(deb_file "$spec")"
    done
}
