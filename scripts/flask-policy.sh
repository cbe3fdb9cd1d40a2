#!/usr/bin/env bash
# The FLASK policy of the enforcing boot (make flask-test), compiled with
# checkpolicy from the policy sources of a patched Xen tree:
#
#   flask-policy.sh XEN_TREE OUT_DIR
#
# OUT_DIR/modules gets a copy of XEN_TREE/tools/flask/policy/modules, minus
# the two V4V lines of guest_features.te (every domain type may do all of
# V4V), plus xen-patches/flask/v4v_test.te, enabled in modules.conf; Xen's
# own Makefile.common then makes OUT_DIR/xenpolicy-v4v-test from them (the
# access vectors, the initial SIDs and the policy's support files stay the
# tree's). The Xen tree itself is not written to.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
tree=$(realpath "$1")
out=$(realpath -m "$2")
src=$tree/tools/flask/policy
[ -f "$src/Makefile.common" ] || { echo "flask-policy: no $src/Makefile.common" >&2; exit 1; }
command -v checkpolicy >/dev/null || { echo "flask-policy: checkpolicy missing (make setup)" >&2; exit 1; }

rm -rf "$out/modules"
mkdir -p "$out/modules"
cp "$src"/modules/* "$out/modules/"
gf=$out/modules/guest_features.te
n=$(grep -c ':v4v ' "$gf" || true)
if [ "$n" != 2 ]; then
    echo "flask-policy: $gf has $n V4V allow lines, expected 2 (patch 0006 changed?)" >&2
    exit 1
fi
sed -i '/:v4v /d' "$gf"
cp "$ROOT/xen-patches/flask/v4v_test.te" "$out/modules/"
printf '\n# the enforcing boot'"'"'s test types (xen-patches/flask)\nv4v_test = on\n' \
    >> "$out/modules/modules.conf"
rm -f "$out/xenpolicy-v4v-test"
make -s -f "$src/Makefile.common" -C "$src" FLASK_BUILD_DIR="$out" MODDIR="$out/modules" \
    POLICY_FILENAME="$out/xenpolicy-v4v-test"
# A compiled policy starts with the SELinux magic, which is how Xen finds it
# among its boot modules.
magic=$(od -An -tx4 -N4 "$out/xenpolicy-v4v-test" | tr -d ' ')
[ "$magic" = f97cff8c ] || { echo "flask-policy: $out/xenpolicy-v4v-test: magic $magic" >&2; exit 1; }
echo "flask-policy: $out/xenpolicy-v4v-test ($(stat -c %s "$out/xenpolicy-v4v-test") bytes)"
