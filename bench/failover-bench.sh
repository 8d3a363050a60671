#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Failover, redplane against the kernel's nftables NAT with conntrackd (FTFW):
# the stall of a TCP stream and the share of 200 concurrent TCP connections
# that survive a switch crash and a live reroute, 10 runs of each, and the
# throughput around the event (docs/BENCH-FAILOVER.md).  A wrapper around
# $OUTPUT/failover-bench (built by `make all`); its options pass through
# (`-n RUNS`, `--help`).  With RP_BENCH_OUT=DIR set, it writes
# DIR/failover.csv and DIR/failover-timeline.csv.  Needs root.
set -euo pipefail

OUTPUT=${OUTPUT:-build}
BIN=$OUTPUT/failover-bench

if [ ! -x "$BIN" ]; then
	echo "failover-bench: $BIN is not built: run 'make all'" >&2
	exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "failover-bench: needs root (network namespaces, XDP, nftables)" >&2
	exit 1
fi
if [ -n "${RP_BENCH_OUT:-}" ]; then
	mkdir -p "$RP_BENCH_OUT"
fi
exec "$BIN" "$@"
