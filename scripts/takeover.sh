#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# The takeover loop (make takeover, issue 16): the routed download of
# selftests/test_takeover.c, a crash and a live reroute, the inbound packet
# first and the outbound first, TAKEOVER_RUNS times each (20), every run on a
# fresh topology.  Prints each run's longest stall and whether the download
# arrived whole, then a summary per case; exits non-zero if any run was not
# whole (or failed otherwise).  Each run's output is kept in
# $TAKEOVER_LOGS (a temporary directory, removed when every run passed).
#
#   scripts/takeover.sh SELFTESTS [CASE...]
#   CASE: crash-inbound crash-outbound crash-at-once reroute-inbound reroute-outbound
set -uo pipefail

bin=$1
shift
runs=${TAKEOVER_RUNS:-20}
cases=("$@")
[ ${#cases[@]} -gt 0 ] || cases=(crash-inbound crash-outbound reroute-inbound reroute-outbound)
if [ "$(id -u)" -ne 0 ]; then
	echo "takeover: needs root (network namespaces, XDP)" >&2
	exit 2
fi
case $runs in
'' | *[!0-9]*)
	echo "takeover: TAKEOVER_RUNS must be a number, not '$runs'" >&2
	exit 2
	;;
esac
logs=${TAKEOVER_LOGS:-$(mktemp -d /tmp/takeover.XXXXXX)}
mkdir -p "$logs"

test_of() {
	case $1 in
	crash-inbound) echo a_crash_with_the_inbound_packet_first_keeps_the_download_whole ;;
	crash-outbound) echo a_crash_with_the_outbound_packet_first_keeps_the_download_whole ;;
	crash-at-once) echo a_crash_with_both_routes_moved_at_once_keeps_the_download_whole ;;
	reroute-inbound) echo a_live_reroute_with_the_inbound_packet_first_keeps_the_download_whole ;;
	reroute-outbound) echo a_live_reroute_with_the_outbound_packet_first_keeps_the_download_whole ;;
	*) return 1 ;;
	esac
}

failed=0
summary=()
for c in "${cases[@]}"; do
	t=$(test_of "$c") || {
		echo "takeover: unknown case '$c'" >&2
		exit 2
	}
	whole=0 stalls=()
	for ((r = 1; r <= runs; r++)); do
		log=$logs/$c.$r.log
		# one run, one process: bounded by the suite's own timeout and this one
		timeout 180 "$bin" --filter "takeover/$t" -j1 >"$log" 2>&1
		status=$?
		line=$(grep -a '^takeover: ' "$log" | head -n 1)
		stall=$(sed -n 's/.*stall \([0-9]*\) ms.*/\1/p' <<<"$line")
		if [ "$status" -eq 0 ] && grep -q ', whole (' <<<"$line"; then
			whole=$((whole + 1))
			verdict=whole
		else
			failed=$((failed + 1))
			verdict="NOT WHOLE (exit $status, see $log)"
		fi
		stalls+=("${stall:--}")
		printf '%-17s run %2d/%d: stall %5s ms, %s\n' "$c" "$r" "$runs" "${stall:--}" "$verdict"
	done
	sorted=$(printf '%s\n' "${stalls[@]}" | grep -v '^-$' | sort -n)
	n=$(grep -c . <<<"$sorted")
	if [ "$n" -gt 0 ]; then
		med=$(sed -n "$(((n + 1) / 2))p" <<<"$sorted")
		max=$(tail -n 1 <<<"$sorted")
	else
		med=- max=-
	fi
	summary+=("$(printf '%-17s %2d/%d whole, stall median %s ms, max %s ms' "$c" "$whole" "$runs" \
		"$med" "$max")")
done
echo
echo "takeover summary ($runs runs each):"
printf '  %s\n' "${summary[@]}"
if [ "$failed" -gt 0 ]; then
	echo "takeover: $failed runs not whole; logs in $logs"
	exit 1
fi
[ -n "${TAKEOVER_LOGS:-}" ] || rm -rf "$logs"
echo "takeover: every run whole"
