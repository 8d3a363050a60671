#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Checks model/redplane.pml with spin (docs/MODEL.md).
#
#   model/check.sh           the bounded configuration (make test): every
#                            seeded bug must be rejected, and the protocol
#                            as built must pass an exhaustive search
#   model/check.sh --bugs    only the seeded bugs
#   model/check.sh --full    a larger configuration (make verify): three
#                            replicas, clock drift, lost messages, a longer
#                            time bound; bitstate search, SECONDS_BUDGET each
#
# Prints one line per run and exits non-zero when the protocol fails or a
# seeded bug goes unnoticed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d /tmp/rp-model.XXXXXX)
trap 'rm -rf "$work"' EXIT
mode=quick
case "${1:-}" in
--full) mode=full ;;
--bugs) mode=bugs ;;
"") ;;
*) echo "usage: model/check.sh [--full | --bugs]" >&2; exit 2 ;;
esac
budget=${SECONDS_BUDGET:-600}

if ! command -v spin >/dev/null; then
	echo "model: spin is not installed (make deps installs Debian's spin)" >&2
	exit 1
fi

# run NAME EXPECT PAN_FLAGS SPIN_DEFINES...: EXPECT is pass or fail
failed=0
run() {
	local name=$1 expect=$2 panflags=$3 out errors states
	shift 3
	mkdir -p "$work/$name"
	cp "$here/redplane.pml" "$work/$name/"
	(
		cd "$work/$name"
		spin "$@" -a redplane.pml >spin.out 2>&1
		# shellcheck disable=SC2086 # CFLAGS-like word lists
		gcc -w -O2 $CC_DEFS -o pan pan.c
		# shellcheck disable=SC2086
		timeout "$budget" ./pan $panflags >pan.out 2>&1 || true
	)
	out=$work/$name/pan.out
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -1)
	states=$(sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' "$out" | tail -1)
	if [ -z "$errors" ]; then
		echo "model: $name: no verdict within ${budget} s" >&2
		failed=1
		return
	fi
	if [ "$expect" = pass ] && [ "$errors" = 0 ]; then
		echo "model: $name: no error in $states states"
	elif [ "$expect" = fail ] && [ "$errors" != 0 ]; then
		echo "model: $name: rejected, as it must be ($(grep -m1 -o 'assertion violated\|acceptance cycle\|invalid end state' "$out" || echo error))"
	else
		echo "model: $name: expected $expect, spin found $errors errors" >&2
		[ -f "$work/$name/redplane.pml.trail" ] &&
			(cd "$work/$name" && spin -t -p "$@" redplane.pml | tail -30) >&2
		failed=1
	fi
}

# bounded: two replicas, no drift, lease 2 ticks, time stops at 3
small=(-DDRIFT=0 -DL=2 -DTMAX=3 -DSEQMAX=1 -DLOSSES=0)
safety="-m200000 -w26"
CC_DEFS="-DNOCLAIM -DSAFETY"

run lease-from-receipt fail "$safety" "${small[@]}" -DBUG_LEASE_FROM_RECV
run reply-at-head fail "$safety" "${small[@]}" -DBUG_REPLY_AT_HEAD
run takeover-lapses fail "$safety" "${small[@]}" -DCRASH_T=1 -DBUG_TAKEOVER_LAPSES
run no-gen-check fail "$safety" "${small[@]}" -DBUG_NO_GEN_CHECK
run forget-unknown-revoke fail "$safety" "${small[@]}" -DBUG_FORGET_UNKNOWN_REVOKE
run implied-ack fail "$safety" "${small[@]}" -DBUG_IMPLIED_ACK
CC_DEFS=""
run ignore-revoke-liveness fail "-a -f -m200000 -w26" "${small[@]}" -DBUG_IGNORE_REVOKE

if [ "$mode" = bugs ]; then
	:
elif [ "$mode" = quick ]; then
	CC_DEFS="-DNOCLAIM -DSAFETY -DCOLLAPSE"
	run protocol pass "$safety" -DDRIFT=0 -DL=2 -DTMAX=2 -DSEQMAX=1 -DLOSSES=0
else
	CC_DEFS="-DNOCLAIM -DSAFETY -DBITSTATE"
	run protocol-3-replicas pass "-m1000000 -w32 -k3" -DNREP=3 -DDRIFT=1 -DTMAX=8
	run protocol-losses pass "-m1000000 -w32 -k3" -DDRIFT=1 -DTMAX=8 -DLOSSES=1
	CC_DEFS=""
	run protocol-liveness pass "-a -f -m1000000 -w28" "${small[@]}"
fi
exit "$failed"
