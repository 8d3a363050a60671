#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# rp-store against the bare echo ceiling, over loopback, in one run:
#   - writes (64-byte state) and new-flow lease requests, 1 and 2 shards,
#     each against rp-echo with as many threads, rounds interleaved, medians;
#   - resident memory per flow at 1,000,000 flows.
# Prints a table and writes every figure to $OUTPUT/bench/store.csv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

OUTPUT=${OUTPUT:-build}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
WINDOW=${WINDOW:-64}
MEM_FLOWS=${MEM_FLOWS:-1000000}
BIN=$OUTPUT
CSV=$OUTPUT/bench/store.csv
TMP=$(mktemp -d /tmp/rp-bench.XXXXXX)
PIDS=()

cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

# start NAME CMD...: runs a server, waits for its "listening on" line,
# sets ADDR and PID.
start() {
	local name=$1
	shift
	"$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
	PID=$!
	PIDS+=("$PID")
	for _ in $(seq 100); do
		ADDR=$(sed -n 's/.*listening on \([^ ]*\).*/\1/p' "$TMP/$name.out")
		[ -n "$ADDR" ] && return 0
		kill -0 "$PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "store-bench: $name did not start:" >&2
	cat "$TMP/$name.err" >&2
	exit 1
}

stop() {
	kill "$PID"
	wait "$PID" 2>/dev/null || true
}

# field NAME LINE: the value of NAME=... in an rp-bench result line
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

mkdir -p "$(dirname "$CSV")"
echo "round,shards,target,mode,rps,p50_us,p99_us,p999_us,lost,rejected" >"$CSV"

record() { # round shards target line
	local l=$4
	echo "$1,$2,$3,$(field mode "$l"),$(field rps "$l"),$(field p50_us "$l"),$(field p99_us "$l"),$(field p999_us "$l"),$(field lost "$l"),$(field rejected "$l")" >>"$CSV"
}

echo "redplane store benchmark: $(date -u +%FT%TZ)"
echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)"
echo "commit:  $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "load:    window $WINDOW, 64-byte state, $DURATION s per run, $ROUNDS rounds, medians"
echo

for round in $(seq "$ROUNDS"); do
	for shards in 1 2; do
		start echo "$BIN/rp-echo" --listen 127.0.0.1:0 --threads "$shards"
		line=$("$BIN/rp-bench" -t "$ADDR" --echo -m write -w "$WINDOW" -d "$DURATION")
		record "$round" "$shards" echo "$line"
		stop

		start store "$BIN/rp-store" --listen 127.0.0.1:0 --shards "$shards" --lease-ms 1000 --grace-ms 0
		line=$("$BIN/rp-bench" -t "$ADDR" -m write -w "$WINDOW" -d "$DURATION" -i 1)
		record "$round" "$shards" store "$line"
		line=$("$BIN/rp-bench" -t "$ADDR" -m lease -w "$WINDOW" -d "$DURATION" -i 2)
		record "$round" "$shards" store "$line"
		stop
	done
done

# col SHARDS TARGET MODE COLUMN: median over rounds
col() {
	awk -F, -v s="$1" -v t="$2" -v m="$3" -v c="$4" \
		'NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
		 $2 == s && $3 == t && $4 == m { print $idx[c] }' "$CSV" | median
}

printf '%-7s %-22s %10s %8s %8s %8s %8s\n' shards run req/s p50_us p99_us p999_us ratio
for shards in 1 2; do
	ceiling=$(col "$shards" echo write rps)
	for run in "echo write" "store write" "store lease"; do
		set -- $run
		rps=$(col "$shards" "$1" "$2" rps)
		ratio=$(awk -v a="$rps" -v b="$ceiling" 'BEGIN { printf "%.2f", a / b }')
		printf '%-7s %-22s %10.0f %8s %8s %8s %8s\n' "$shards" "rp-$1 $2" "$rps" \
			"$(col "$shards" "$1" "$2" p50_us)" "$(col "$shards" "$1" "$2" p99_us)" \
			"$(col "$shards" "$1" "$2" p999_us)" "$ratio"
		bench_csv 4 "shards${shards}_$1_$2_rps" "$rps" req/s
		bench_csv 4 "shards${shards}_$1_$2_p50" "$(col "$shards" "$1" "$2" p50_us)" us
		bench_csv 4 "shards${shards}_$1_$2_p99" "$(col "$shards" "$1" "$2" p99_us)" us
		bench_csv 4 "shards${shards}_$1_$2_ratio" "$ratio" ratio
	done
done
echo "(ratio: requests/s against rp-echo with as many threads; goal for writes: >= 0.70)"
echo

# Memory: resident set before and after MEM_FLOWS new flows with 64-byte state.
rss_kb() { awk '/VmRSS/ { print $2 }' "/proc/$1/status"; }
start store "$BIN/rp-store" --listen 127.0.0.1:0 --lease-ms 60000 --grace-ms 0 --max-flows "$MEM_FLOWS"
before=$(rss_kb "$PID")
line=$("$BIN/rp-bench" -t "$ADDR" -m lease -w "$WINDOW" -n "$MEM_FLOWS" -d 600 -i 3)
after=$(rss_kb "$PID")
stop
per_flow=$(awk -v a="$after" -v b="$before" -v n="$MEM_FLOWS" 'BEGIN { printf "%.1f", (a - b) * 1024 / n }')
echo "memory: $MEM_FLOWS flows, RSS $((before / 1024)) MiB -> $((after / 1024)) MiB: $per_flow bytes/flow" \
	"(goal: < 128 + 64 = 192; created at $(field rps "$line") flows/s)"
echo "0,1,store,memory,$(field rps "$line"),,,,$per_flow," >>"$CSV"
bench_csv 7 store_bytes_per_flow "$per_flow" bytes
bench_csv 7 store_flows "$MEM_FLOWS" flows
echo "figures: $CSV"
