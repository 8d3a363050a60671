#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs the Criterion selftests and closes with "N passed, N failed[, N skipped]";
# the exit status is the test binary's (non-zero on any failure), or 1 when a
# test printed a sanitizer report of rp-store or rp-load (selftests/rp_test.c:
# found at teardown, where Criterion no longer fails the test).
set -uo pipefail

bin=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" "$@" 2>&1 | tee "$out"
status=${PIPESTATUS[0]}
line=$(grep -a 'Synthesis:' "$out" | tail -n 1)
tested=$(sed -n 's/.*Tested: \([0-9]*\).*/\1/p' <<<"$line")
passing=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
failing=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$line")
crashing=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$line")
skipped=$(grep -ac '^\[SKIP\]' "$out")
san=$(grep -ac '^---- sanitizer report' "$out")
if [ -z "$tested" ]; then
	echo "0 passed, 1 failed (the test binary printed no summary)"
	exit 1
fi
echo "$passing passed, $((failing + crashing)) failed, $skipped skipped"
if [ "$san" -gt 0 ]; then
	echo "$san sanitizer reports (above): failed"
	exit 1
fi
[ "$status" -eq 0 ] && [ $((failing + crashing)) -eq 0 ]
