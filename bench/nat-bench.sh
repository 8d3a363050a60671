#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The NAT in namespaces: client -- switch (rp-load) -- server, store beside.
# Times TCP connect (new flow), one-byte delivery (read fast path) and FIN
# delivery (a write through the store), 200 connections.  Needs root.
set -euo pipefail

OUTPUT=${OUTPUT:-build}
COUNT=${COUNT:-200}
P=rpb$$
PIDS=()

cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	for h in c sw srv st; do ip netns del "$P-$h" 2>/dev/null || true; done
	rm -f /tmp/$P-*.log
}
trap cleanup EXIT INT TERM

in_ns() { local ns=$1; shift; ip netns exec "$P-$ns" "$@"; }

for h in c sw srv st; do ip netns add "$P-$h"; in_ns "$h" ip link set lo up; done
in_ns sw ip link add bi$$ type veth peer name c0 netns "$P-c"
in_ns sw ip link add be$$ type veth peer name v0 netns "$P-srv"
in_ns sw ip link add bs$$ type veth peer name st0 netns "$P-st"
in_ns sw sh -c "ip addr add 10.1.0.1/24 dev bi$$ && ip addr add 198.51.100.1/24 dev be$$ && \
	ip addr add 192.0.2.1/24 dev bs$$ && for l in bi$$ be$$ bs$$; do ip link set \$l up; \
	ethtool -K \$l tx off >/dev/null; done && sysctl -qw net.ipv4.ip_forward=1"
in_ns c sh -c "ip addr add 10.1.0.2/24 dev c0 && ip link set c0 up && ethtool -K c0 tx off >/dev/null && ip route add default via 10.1.0.1"
in_ns srv sh -c "ip addr add 198.51.100.2/24 dev v0 && ip link set v0 up && ethtool -K v0 tx off >/dev/null && ip route add 203.0.113.1/32 via 198.51.100.1"
in_ns st sh -c "ip addr add 192.0.2.10/24 dev st0 && ip link set st0 up && ethtool -K st0 tx off >/dev/null"
# veth delivers redirected frames only to a peer with an XDP program
for x in "c c0" "srv v0" "st st0"; do
	set -- $x
	in_ns "$1" ip link set dev "$2" xdpdrv obj "$OUTPUT/bpf/veth_peer.bpf.o" sec xdp
done

# started with ip netns exec directly (not a function), so that $! is the daemon
ip netns exec "$P-st" "$OUTPUT/rp-store" --listen 192.0.2.10:4791 --lease-ms 1000 >/tmp/$P-store.log 2>&1 &
PIDS+=($!)
sleep 0.3
# nsenter keeps this mount namespace: the pins stay visible to --status
nsenter --net=/var/run/netns/$P-sw "$OUTPUT/rp-load" bi$$ be$$ bs$$ --app nat --store 192.0.2.10:4791 --switch-id 1 \
	--nat-int 10.1.0.0/24 --nat-ext 203.0.113.1 --lease-ms 1000 >/tmp/$P-load.log 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q "joined store" /tmp/$P-load.log && break; sleep 0.05; done
grep -q "joined store" /tmp/$P-load.log || { cat /tmp/$P-load.log >&2; exit 1; }

echo "NAT through a redplane switch, $COUNT TCP connections (namespaces, veth):"
"$OUTPUT/tcp-probe" -c "$P-c" -s "$P-srv" -a 198.51.100.2:8080 -n "$COUNT"

nsenter --net=/var/run/netns/$P-sw "$OUTPUT/rp-load" --status bi$$ |
	grep -E '^(flows|  (lease_req|write_req|ack|grant|migrate|fast_path|drop_|reject|nat_|emit_|retransmits|gave_up|rtt_us)[a-z_]* +[1-9])'

# The first transmission of a write leaves from XDP; through rp-load it would
# wait at least for rp-load to wake up and take the request:
kill "${PIDS[1]}"
wait "${PIDS[1]}" 2>/dev/null || true
sed -n 's/.*copies reached rp-load \([0-9.]*\) us.*/first send through rp-load would wait: \1 us more (mean wake-up of rp-load for a request copy)/p' /tmp/$P-load.log
