#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# rp-store chains over loopback, in one run (docs/CHAIN.md):
#   - write throughput and latency with chains of 1, 2 and 3 replicas
#     (rounds interleaved, medians; ratio against the chain of 1);
#   - the time from a replica's death (SIGKILL) to the chain accepting
#     writes again, for the head, a middle replica and the tail: the
#     longest time rp-bench saw no ACK, which includes the failure timeout;
#   - a replica joining a chain that holds 1,000,000 flows, under write load:
#     the whole copy's duration and the writes' longest stall.
# ZooKeeper runs from Debian's package with tickTime 100 ms.
# Prints a table and writes every figure to $OUTPUT/bench/chain.csv.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

OUTPUT=${OUTPUT:-build}
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-3}
WINDOW=${WINDOW:-64}
KILLS=${KILLS:-3}		# failovers measured per role
TIMEOUT_MS=${TIMEOUT_MS:-500}	# --failure-timeout-ms
JOIN_FLOWS=${JOIN_FLOWS:-1000000}	# flows held when a replica joins
BIN=$OUTPUT
CSV=$OUTPUT/bench/chain.csv
TMP=$(mktemp -d /tmp/rp-chain-bench.XXXXXX)
ZK_PORT=${ZK_PORT:-21881}
BASE_PORT=${BASE_PORT:-24000}
PIDS=()

cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

if [ ! -r /usr/share/java/zookeeper.jar ]; then
	echo "chain-bench: needs ZooKeeper (make deps installs Debian's zookeeper package)" >&2
	exit 1
fi

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

cat >"$TMP/zoo.cfg" <<EOF
tickTime=100
minSessionTimeout=200
maxSessionTimeout=60000
dataDir=$TMP/zk
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok
forceSync=no
EOF
java -Xmx256m -cp /usr/share/java/zookeeper.jar org.apache.zookeeper.server.ZooKeeperServerMain \
	"$TMP/zoo.cfg" >"$TMP/zk.log" 2>&1 &
PIDS+=("$!")
zk_ok() {
	exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" || return 1
	echo ruok >&3
	[ "$(timeout 1 head -c 4 <&3)" = imok ]
}
for _ in $(seq 200); do
	(zk_ok) 2>/dev/null && break
	sleep 0.1
done

# chain NAME N: starts N replicas of chain NAME one after another (each
# joins as the tail), waits until the last is the tail; sets TARGETS and
# REPLICA_PIDS.
PORT=$BASE_PORT
chain() {
	local name=$1 n=$2 r
	TARGETS=""
	REPLICA_PIDS=()
	for r in $(seq "$n"); do
		local port=$PORT
		PORT=$((PORT + 10))
		"$BIN/rp-store" --listen "127.0.0.1:$port" --peer "127.0.0.1:$((port + 1))" \
			--zk "127.0.0.1:$ZK_PORT" --chain "$name" --replica-id "$r" \
			--failure-timeout-ms "$TIMEOUT_MS" --lease-ms 1000 --grace-ms 0 \
			--stats-file "$TMP/$name-$r.stats" >"$TMP/$name-$r.log" 2>&1 &
		REPLICA_PIDS+=("$!")
		PIDS+=("$!")
		TARGETS="$TARGETS${TARGETS:++}127.0.0.1:$port"
		local want=tail
		[ "$r" = 1 ] && want=alone
		for _ in $(seq 100); do
			grep -qx "chain_role $want" "$TMP/$name-$r.stats" 2>/dev/null && break
			sleep 0.05
		done
		if ! grep -qx "chain_role $want" "$TMP/$name-$r.stats" 2>/dev/null; then
			echo "chain-bench: replica $r of $name did not join:" >&2
			cat "$TMP/$name-$r.log" >&2
			exit 1
		fi
	done
}

unchain() {
	local pid
	for pid in "${REPLICA_PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
}

mkdir -p "$(dirname "$CSV")"
echo "kind,round,replicas,rps,p50_us,p99_us,stall_ms,lost,rejected" >"$CSV"

echo "redplane chain benchmark: $(date -u +%FT%TZ)"
echo "machine: $(nproc) CPUs, kernel $(uname -r), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
echo "load:    window $WINDOW, 64-byte state, $DURATION s per run, $ROUNDS rounds, medians;" \
	"failure timeout $TIMEOUT_MS ms"
echo

for round in $(seq "$ROUNDS"); do
	for n in 1 2 3; do
		chain "w$round-$n" "$n"
		line=$("$BIN/rp-bench" -t "$TARGETS" -m write -w "$WINDOW" -d "$DURATION" -i 1)
		echo "write,$round,$n,$(field rps "$line"),$(field p50_us "$line"),$(field p99_us "$line"),,$(field lost "$line"),$(field rejected "$line")" >>"$CSV"
		unchain
	done
done

col() { # KIND REPLICAS COLUMN
	awk -F, -v k="$1" -v n="$2" -v c="$3" \
		'NR == 1 { for (i = 1; i <= NF; i++) idx[$i] = i; next }
		 $1 == k && $3 == n { print $idx[c] }' "$CSV" | median
}

base=$(col write 1 rps)
printf '%-9s %10s %8s %8s %8s\n' replicas writes/s p50_us p99_us ratio
for n in 1 2 3; do
	rps=$(col write "$n" rps)
	printf '%-9s %10.0f %8s %8s %8s\n' "$n" "$rps" "$(col write "$n" p50_us)" \
		"$(col write "$n" p99_us)" "$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')"
	bench_csv 4 "chain${n}_writes_rps" "$rps" req/s
	bench_csv 4 "chain${n}_writes_p50" "$(col write "$n" p50_us)" us
	bench_csv 4 "chain${n}_writes_p99" "$(col write "$n" p99_us)" us
	bench_csv 4 "chain${n}_writes_ratio" "$(awk -v a="$rps" -v b="$base" 'BEGIN { printf "%.2f", a / b }')" ratio
done
echo "(ratio: writes/s against a chain of 1, same run)"
echo

# Failover: a chain of 3 under write load, one replica killed a second in.
for k in $(seq "$KILLS"); do
	for role in head middle tail; do
		chain "f$k-$role" 3
		case $role in head) victim=0 ;; middle) victim=1 ;; tail) victim=2 ;; esac
		"$BIN/rp-bench" -t "$TARGETS" -m write -w "$WINDOW" -d 4 -i 1 >"$TMP/out" &
		bpid=$!
		sleep 1.5	# the bench first leases its flows, then measures
		kill -9 "${REPLICA_PIDS[$victim]}"
		{ wait "$bpid"; } 2>/dev/null
		line=$(cat "$TMP/out")
		echo "failover-$role,$k,3,$(field rps "$line"),$(field p50_us "$line"),$(field p99_us "$line"),$(field stall_ms "$line"),$(field lost "$line"),$(field rejected "$line")" >>"$CSV"
		unchain
	done
done

printf '%-16s %10s %10s %10s\n' "replica killed" "stall_ms" "min" "max"
for role in head middle tail; do
	vals=$(awk -F, -v k="failover-$role" '$1 == k { print $7 }' "$CSV")
	printf '%-16s %10s %10s %10s\n' "$role" "$(median <<<"$vals")" \
		"$(sort -g <<<"$vals" | head -1)" "$(sort -g <<<"$vals" | tail -1)"
	bench_csv 4 "chain_kill_${role}_stall_median" "$(median <<<"$vals")" ms
	bench_csv 4 "chain_kill_${role}_stall_min" "$(sort -g <<<"$vals" | head -1)" ms
	bench_csv 4 "chain_kill_${role}_stall_max" "$(sort -g <<<"$vals" | tail -1)" ms
done
echo "(stall: longest time without an ACK at the client, across the death; median of $KILLS;"
echo " failure timeout $TIMEOUT_MS ms: ZooKeeper expires the dead replica's session, the chain reconfigures)"
# A replica joins a chain of one that holds JOIN_FLOWS flows, under write
# load: how long the whole copy takes, and the writes' longest stall.
start_replica() { # NAME ID PORT: one more replica of chain NAME
	"$BIN/rp-store" --listen "127.0.0.1:$3" --peer "127.0.0.1:$(($3 + 1))" \
		--zk "127.0.0.1:$ZK_PORT" --chain "$1" --replica-id "$2" \
		--failure-timeout-ms "$TIMEOUT_MS" --lease-ms 60000 --grace-ms 0 \
		--max-flows "$((JOIN_FLOWS + 65536))" >"$TMP/$1-$2.log" 2>&1 &
	REPLICA_PIDS+=("$!")
	PIDS+=("$!")
}
REPLICA_PIDS=()
start_replica join 1 "$PORT"
for _ in $(seq 100); do grep -q 'head of chain' "$TMP/join-1.log" && break; sleep 0.05; done
"$BIN/rp-bench" -t "127.0.0.1:$PORT" -m lease -n "$JOIN_FLOWS" -d 600 -i 9 >/dev/null
"$BIN/rp-bench" -t "127.0.0.1:$PORT" -m write -w "$WINDOW" -d 5 -i 1 >"$TMP/out" &
bpid=$!
sleep 1.5
start_replica join 2 "$((PORT + 10))"
{ wait "$bpid"; } 2>/dev/null
copy=$(sed -n 's/.*whole copy received, \([0-9]*\) flows in \([0-9.]*\) ms.*/\1 \2/p' "$TMP/join-2.log")
line=$(cat "$TMP/out")
unchain
if [ -z "$copy" ]; then
	echo "chain-bench: the joining replica never had a whole copy:" >&2
	cat "$TMP/join-2.log" >&2
	exit 1
fi
set -- $copy
echo "join,1,2,$(field rps "$line"),$(field p50_us "$line"),$(field p99_us "$line"),$(field stall_ms "$line"),$(field lost "$line"),$(field rejected "$line")" >>"$CSV"
echo
echo "join: a replica joined a chain holding $1 flows under write load: whole copy in $2 ms;" \
	"the writes' longest stall $(field stall_ms "$line") ms ($(field rps "$line") writes/s over the run)"
bench_csv 4 chain_join_flows "$1" flows
bench_csv 4 chain_join_copy "$2" ms
bench_csv 4 chain_join_write_stall "$(field stall_ms "$line")" ms
echo "figures: $CSV"
