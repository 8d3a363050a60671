# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Sourced by the benchmark scripts.
#
# bench_csv SECTION NAME VALUE UNIT: with RP_BENCH_CSV set (by bench/report.sh),
# appends one figure to it as `section,name,value,unit`, SECTION being the
# report's number (issue 7's); without it, does nothing.
bench_csv() {
	[ -n "${RP_BENCH_CSV:-}" ] || return 0
	echo "$1,$2,$3,$4" >>"$RP_BENCH_CSV"
}
