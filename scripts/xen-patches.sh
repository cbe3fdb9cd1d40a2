#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The V4V patch series for one Xen release (xen-patches/VERSION/, listed
# in its file `series`), VERSION being V4V_XEN_VERSION (4.20 or 4.17).
#
#   xen-patches.sh apply    make the tree (V4V_XEN_TREE, by default
#                           build/xen-VERSION) the pristine source of that
#                           release (scripts/xen-source.sh) with the series
#                           applied; does nothing if the series and the
#                           pristine tree are what the stamp records.
#   xen-patches.sh export   regenerate xen-patches/VERSION/*.patch and
#                           series from the commits on top of the
#                           `pristine` tag in the tree (the way to change a
#                           patch: edit and commit in the tree, then export).
#
# The tree is a git repository: tag `pristine` is the unmodified source, one
# commit per patch on top. Re-applying a changed series builds the new commits
# in a scratch worktree and then moves the tree to them with `git reset
# --hard`, which rewrites only the files whose content changed, so make's
# timestamps stay valid and the next build is incremental. Build outputs are
# untracked and survive.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VERSION="${V4V_XEN_VERSION:-4.20}"
PATCHES="$ROOT/xen-patches/$VERSION"
PRISTINE="${V4V_CACHE:-$ROOT/build/cache}/xen-$VERSION-pristine"
SRC_STAMP="${V4V_CACHE:-$ROOT/build/cache}/xen-$VERSION-src.stamp"
XEN="${V4V_XEN_TREE:-$ROOT/build/xen-$VERSION}"
[ -f "$PATCHES/series" ] || { echo "xen-patches: error: no series for Xen $VERSION ($PATCHES/series)" >&2; exit 1; }
STAMP="$XEN/.git/v4v-series.stamp"

# Fixed identity and dates: the same series always yields the same commits.
export GIT_AUTHOR_NAME="V4V" GIT_AUTHOR_EMAIL="v4v@invalid"
export GIT_COMMITTER_NAME="V4V" GIT_COMMITTER_EMAIL="v4v@invalid"
export GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z"
g() { git -C "$XEN" -c core.autocrlf=false -c gc.auto=0 "$@"; }

log() { printf 'xen-patches: %s\n' "$*"; }
die() { printf 'xen-patches: error: %s\n' "$*" >&2; exit 1; }

series_files() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$PATCHES/series"
}

# Identity of the inputs: the pristine tree's stamp and every patch's content.
series_hash() {
    {
        cat "$SRC_STAMP" 2>/dev/null || echo none
        cat "$PATCHES/series"
        series_files | while read -r p; do cat "$PATCHES/$p"; done
    } | sha256sum | cut -d' ' -f1
}

fresh_copy() {
    log "copying the pristine Xen $VERSION tree to $XEN"
    rm -rf "$XEN"
    mkdir -p "$(dirname "$XEN")"
    cp -a "$PRISTINE" "$XEN"
    g init -q -b main
    # -f: take every file of the source, even those its .gitignore names.
    g add -f -A .
    g commit -q -m "Pristine Xen $VERSION source: $(head -n1 "$SRC_STAMP")"
    g tag pristine
}

cmd_apply() {
    bash "$ROOT/scripts/xen-source.sh" "$VERSION"
    [ -d "$PRISTINE/xen" ] || die "no pristine source at $PRISTINE"
    local want
    want="$(series_hash)"
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -d "$XEN/.git" ]; then
        return 0
    fi
    if ! [ -d "$XEN/.git" ] || ! g rev-parse -q --verify pristine >/dev/null \
       || ! [ -f "$STAMP" ]; then
        fresh_copy
    elif ! g diff --quiet HEAD --; then
        die "$XEN has uncommitted changes; commit and export them, or remove it"
    fi
    # Build the series' commits in a scratch worktree off `pristine`.
    local wt="$XEN/.git/v4v-apply"
    g worktree remove -f "$wt" >/dev/null 2>&1 || rm -rf "$wt"
    g worktree prune
    g worktree add -q --detach "$wt" pristine
    local p
    while read -r p; do
        [ -f "$PATCHES/$p" ] || die "series names a missing patch: $p"
        git -C "$wt" -c core.autocrlf=false am -q --keep-cr "$PATCHES/$p" \
            || { git -C "$wt" am --abort >/dev/null 2>&1 || true; die "patch does not apply: $p"; }
    done < <(series_files)
    local head
    head="$(git -C "$wt" rev-parse HEAD)"
    g worktree remove -f "$wt"
    # Rewrites only the paths whose content differs from the new commit.
    g checkout -q -B main "$head"
    g reset -q --hard "$head"
    echo "$want" > "$STAMP"
    log "applied $(series_files | wc -l) patches to $XEN"
}

cmd_export() {
    [ -d "$XEN/.git" ] || die "$XEN is not a git repository; run apply first"
    g diff --quiet HEAD -- || die "$XEN has uncommitted changes; commit them first"
    mkdir -p "$PATCHES"
    rm -f "$PATCHES"/*.patch
    # --zero-commit and -N keep the files stable across re-applies.
    g format-patch -q --zero-commit -N --no-signature --no-stat \
        -o "$PATCHES" pristine..HEAD
    {
        echo "# V4V patches for Xen $VERSION, applied in this order on the pristine"
        echo "# source by scripts/xen-patches.sh (regenerate with its export)."
        (cd "$PATCHES" && ls -1 ./*.patch | sed 's|^\./||')
    } > "$PATCHES/series"
    # The tree is exactly the exported series now: no re-apply needed.
    series_hash > "$STAMP"
    log "exported $(series_files | wc -l) patches to xen-patches/$VERSION/"
}

case "${1:-}" in
    apply) cmd_apply ;;
    export) cmd_export ;;
    *) echo "usage: $0 apply|export" >&2; exit 2 ;;
esac
