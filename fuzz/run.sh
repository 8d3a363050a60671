#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Runs libFuzzer targets: fuzz/run.sh BIN_DIR SECONDS NAME...
# Each BIN_DIR/fuzz-NAME runs for SECONDS on its seed corpus (fuzz/corpus/NAME,
# only read) and on what earlier runs found (BIN_DIR/corpus/NAME, where new
# inputs go).  A crash, a leak, a broken invariant or an input that takes
# over 10 s fails the run; its input is kept as BIN_DIR/NAME-crash-* (or
# -leak-, -timeout-) and its report is printed.  One line per target.
set -uo pipefail

dir=$1 secs=$2
shift 2
status=0
for t in "$@"; do
	bin=$dir/fuzz-$t log=$dir/$t.log
	mkdir -p "$dir/corpus/$t"
	if "$bin" -max_total_time="$secs" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$dir/$t-" "$dir/corpus/$t" "fuzz/corpus/$t" >"$log" 2>&1; then
		runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		cov=$(grep -ao 'cov: [0-9]*' "$log" | tail -n 1)
		printf '  %-9s %s: %s runs in %s s, %s, no failure\n' FUZZ "$t" "${runs:-?}" "$secs" "$cov"
	else
		grep -a -A 40 -E 'ERROR: |runtime error|invariant broken|ALARM|Test unit written' "$log" | head -n 80
		printf '  %-9s %s: FAILED (log %s)\n' FUZZ "$t" "$log"
		status=1
	fi
done
exit $status
