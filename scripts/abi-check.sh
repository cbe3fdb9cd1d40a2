#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# abi-check.sh C_DUMP RUST_DUMP COUNTS: compare the C header's view of the
# ABI with the Rust crate's, line by line (order-independent). Every line
# present on both sides passes; every line on one side only fails. Writes
# "PASSED FAILED" to COUNTS.
set -euo pipefail
c="$1" rust="$2" counts="$3"
same=$(comm -12 <(sort "$c") <(sort "$rust") | wc -l)
only_c=$(comm -23 <(sort "$c") <(sort "$rust"))
only_rust=$(comm -13 <(sort "$c") <(sort "$rust"))
diff_n=$(comm -3 <(sort "$c") <(sort "$rust") | wc -l)
echo "abi-check: $(wc -l < "$c") lines from v4v.h, $(wc -l < "$rust") from the ABI crate, $same agree"
if [ -n "$only_c" ]; then echo "only in the C header:"; echo "$only_c" | sed 's/^/  /'; fi
if [ -n "$only_rust" ]; then echo "only in the Rust crate:"; echo "$only_rust" | sed 's/^/  /'; fi
echo "$same $diff_n" > "$counts"
[ "$diff_n" = 0 ]
