# Debian suites other than the host's, without touching the host's apt:
# sourced by the image scripts (after debs.sh, which defines log, die and
# SUDO for them). Debian 13's packages (Xen 4.20's toolstack, Linux 6.12,
# their C library) come from the same archive as Debian 12's, but adding
# trixie to the host's sources would let every later `apt-get install`
# upgrade the host from it. So each suite gets a private apt index (its own
# sources, lists and cache under the build cache, an empty dpkg status),
# and trees of packages are made by mmdebstrap, which resolves the
# dependencies with apt and extracts the packages into a folder.
#
# The archive's addresses are the host's own: read from its apt sources
# (the deb822 files and sources.list), never written into the project.
# V4V_DEBIAN_MIRROR and V4V_DEBIAN_SECURITY_MIRROR override them.
#
#   suite_apt SUITE CMD ARGS...     apt-get or apt-cache (CMD) on SUITE's
#                                   private index (updated once a run)
#   suite_in_index SUITE PKG=VER    that exact version is in SUITE's index
#   suite_candidate SUITE PKG       the newest version SUITE's index has
#   suite_tree SUITE DIR PKG=VER... mmdebstrap --variant=extract: the
#                                   packages and everything they depend on,
#                                   unpacked into DIR (no script run)
#   suite_root SUITE DIR PKG=VER... mmdebstrap --variant=apt: a tree that
#                                   can be chrooted into (a build chroot)

SUITE_CACHE="${V4V_CACHE:-$ROOT/build/cache}/suites"

# host_archive_uri main|security: the URI of the host's Debian archive (or
# of its security archive), from its apt sources.
host_archive_uri() {
    local kind="$1" override
    if [ "$kind" = security ]; then override="${V4V_DEBIAN_SECURITY_MIRROR:-}"; else override="${V4V_DEBIAN_MIRROR:-}"; fi
    if [ -n "$override" ]; then echo "$override"; return 0; fi
    local f uri
    # deb822 stanzas: print "URI SUITE..." per stanza; one-line entries:
    # "URI SUITE".
    uri="$(
        for f in /etc/apt/sources.list.d/*.sources; do
            [ -f "$f" ] || continue
            awk 'BEGIN { IGNORECASE = 1 }
                 /^[[:space:]]*$/ { if (u != "" && t ~ /(^| )deb( |$)/) print u, s; u = s = t = ""; next }
                 /^URIs:/ { u = $2 } /^Suites:/ { $1 = ""; s = $0 } /^Types:/ { $1 = ""; t = $0 }
                 END { if (u != "" && t ~ /(^| )deb( |$)/) print u, s }' "$f"
        done
        for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
            [ -f "$f" ] || continue
            awk '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $i, $(i + 1) }' "$f"
        done | cat
    )"
    if [ "$kind" = security ]; then
        uri="$(printf '%s\n' "$uri" | awk '/ [a-z]+-security( |$)/ { print $1; exit }')"
    else
        uri="$(printf '%s\n' "$uri" | awk '{ for (i = 2; i <= NF; i++) if ($i ~ /^(bookworm|trixie|stable|oldstable)$/) { print $1; exit } }')"
    fi
    [ -n "$uri" ] || die "cannot find the host's Debian $kind archive in its apt sources (set V4V_DEBIAN_${kind^^}_MIRROR)"
    echo "${uri%/}"
}

# suite_sources SUITE [TYPES]: deb822 sources for SUITE, its updates and
# security (TYPES: "deb" by default; the private index also has deb-src,
# for the Xen source packages).
suite_sources() {
    local suite="$1" types="${2:-deb}" main sec key=/usr/share/keyrings/debian-archive-keyring.gpg
    main="$(host_archive_uri main)"
    sec="$(host_archive_uri security)"
    printf 'Types: %s\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: %s\n\n' \
        "$types" "$main" "$suite" "$suite" "$key"
    printf 'Types: %s\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: %s\n' \
        "$types" "$sec" "$suite" "$key"
}

# The private apt of SUITE: its folder, and the options that make apt use
# it and nothing of the host's (the host's apt.conf.d still applies).
suite_dir() { echo "$SUITE_CACHE/$1"; }
suite_aptopts() {
    local d
    d="$(suite_dir "$1")"
    printf '%s\n' -o "Dir::Etc::SourceList=$d/sources.list" -o "Dir::Etc::SourceParts=$d/sources.list.d" \
        -o "Dir::State=$d/state" -o "Dir::State::status=$d/state/status" \
        -o "Dir::Cache=$d/cache" -o "APT::Architecture=amd64" -o "APT::Architectures=amd64" \
        -o "Acquire::Languages=none"
    if [ "$(id -u)" = 0 ]; then printf '%s\n' -o APT::Sandbox::User=root; fi
}

# suite_update SUITE: the private index, fetched once per run of the
# top-level script ($$ is its process id in subshells too; apt-get update
# only fetches what changed).
suite_update() {
    local suite="$1" d opts=()
    d="$(suite_dir "$suite")"
    if [ -f "$d/updated" ] && [ "$(cat "$d/updated")" = "$$" ]; then return 0; fi
    mkdir -p "$d/sources.list.d" "$d/state/lists/partial" "$d/cache/archives/partial"
    : > "$d/sources.list"
    [ -f "$d/state/status" ] || : > "$d/state/status"
    suite_sources "$suite" "deb deb-src" > "$d/sources.list.d/debian.sources"
    mapfile -t opts < <(suite_aptopts "$suite")
    log "apt-get update ($suite, private index)"
    apt-get "${opts[@]}" update -qq >&2 || die "apt-get update of $suite failed"
    echo "$$" > "$d/updated"
}

suite_apt() {
    local suite="$1" cmd="$2" opts=()
    shift 2
    suite_update "$suite"
    mapfile -t opts < <(suite_aptopts "$suite")
    "$cmd" "${opts[@]}" "$@"
}

suite_in_index() {
    # The update first, so that its log line and errors are not hidden
    # with apt-cache's complaint about an unknown version.
    suite_update "$1"
    suite_apt "$1" apt-cache show "$2" 2>/dev/null | grep -xF "Version: ${2#*=}" >/dev/null
}

suite_candidate() {
    LC_ALL=C suite_apt "$1" apt-cache policy "$2" | awk '$1 == "Candidate:" && $2 != "(none)" { print $2 }'
}

# suite_pick SUITE PKG PIN: PIN if SUITE has it, else the newest version
# with a loud warning (the pin has left the archive: update it).
suite_pick() {
    local suite="$1" pkg="$2" pin="$3" v
    if suite_in_index "$suite" "$pkg=$pin"; then echo "$pin"; return 0; fi
    v="$(suite_candidate "$suite" "$pkg")"
    [ -n "$v" ] || die "$pkg: neither the pin $pin nor any other version is in $suite"
    pin_warning "$pkg" "$pin" "$v"
    echo "$v"
}

pin_warning() {
    local bar="!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!"
    {
        echo "$bar"
        echo "WARNING: the pinned $1 $2 is no longer in the archive;"
        echo "WARNING: using the newest available, $3, instead. Update the pin."
        echo "$bar"
    } >&2
}

# mmdebstrap of SUITE into DIR with the given variant and packages.
suite_mmdebstrap() {
    local suite="$1" variant="$2" dir="$3" src
    shift 3
    local inc
    inc="$(IFS=,; echo "$*")"
    src="$(suite_dir "$suite")/mmdebstrap.sources"
    mkdir -p "$(suite_dir "$suite")"
    suite_sources "$suite" > "$src"
    rm -rf "$dir.tmp"
    mkdir -p "$(dirname "$dir")"
    log "mmdebstrap --variant=$variant $suite: $*"
    mmdebstrap --quiet --mode=root --variant="$variant" --format=directory \
        --aptopt='Acquire::Check-Valid-Until "false"' --aptopt='Acquire::Languages "none"' \
        --include="$inc" "$suite" "$dir.tmp" "$src" >&2 || die "mmdebstrap of $suite failed"
    rm -rf "$dir"
    mv "$dir.tmp" "$dir"
}

suite_tree() { local s="$1" d="$2"; shift 2; suite_mmdebstrap "$s" extract "$d" "$@"; }
suite_root() { local s="$1" d="$2"; shift 2; suite_mmdebstrap "$s" apt "$d" "$@"; }
