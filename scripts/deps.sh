#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# Installs what redplane builds and tests with, from Debian bookworm's archive.
# Idempotent; when everything is there it only asks dpkg and returns.
set -euo pipefail

PKGS=(
	make gcc clang llvm pkg-config
	libbpf-dev bpftool libxdp-dev libelf-dev zlib1g-dev linux-libc-dev
	libcriterion-dev
	iproute2 procps ethtool nftables
	# rp-store chains: ZooKeeper holds the membership (docs/CHAIN.md)
	zookeeper libzookeeper-mt-dev
	# libFuzzer and clang's ASan/UBSan runtimes (make test's sanitizer pass
	# and fuzz targets, make fuzz); Debian's clang 14 ships them apart
	libclang-rt-14-dev
	# the checks of the Tofino program that need no SDE (p4-tofino/build.sh --check)
	python3
	# bench/failover-bench: the kernel's NAT with its state synchronised by
	# conntrackd (FTFW), the baseline redplane's failover is compared against
	conntrackd
	# make verify: the protocol model (docs/MODEL.md)
	spin
	# make vmtest: software-emulated VMs on Debian's kernel packages
	qemu-system-x86 busybox-static kmod xz-utils
	# make bench: the report's plots (bench/report.sh)
	gnuplot-nox
)

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "deps: installing ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages and not root: run 'sudo make deps'" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
