#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Checks model/redplane.pml with spin (docs/MODEL.md).
#
#   model/check.sh           the bounded configurations (make test): each is
#                            searched exhaustively and must pass, and every
#                            seeded bug must be rejected in one of them
#   model/check.sh --bugs    only the seeded bugs
#   model/check.sh --full    larger configurations (make verify): more ticks,
#                            requests and writes, drift with a crash and a
#                            loss; bitstate search, SECONDS_BUDGET each (a
#                            search the budget cuts short says so, and how
#                            far it got)
#
# Runs as many spin searches at once as there are CPUs (MODEL_JOBS), prints
# one line per search and exits non-zero when the protocol fails a check, a
# seeded bug goes unnoticed, or an exhaustive search gives no verdict in
# SECONDS_BUDGET.
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
jobs=${MODEL_JOBS:-$(nproc)}

if ! command -v spin >/dev/null; then
	echo "model: spin is not installed (make deps installs Debian's spin)" >&2
	exit 1
fi

# The bounded configurations: one flow, two switches, lease L ticks, time
# stops at TMAX, SEQMAX writes per holding, REQMAX requests per switch.
# leases: clock drift of one tick each way, sessions lapsing and renewing
leases=(-DDRIFT=1 -DL=4 -DTMAX=3 -DSEQMAX=0 -DCRASH_T=99 -DLOSSES=0 -DREQMAX=1)
# contention: both switches ask twice; revokes, lapses, implied acks
contention=(-DDRIFT=0 -DL=2 -DTMAX=3 -DSEQMAX=0 -DCRASH_T=99 -DLOSSES=0 -DREQMAX=2)
# chain: two writes a holding, a chain of three and the crash of any one
# replica at any tick from 1 on
chain=(-DNREP=3 -DDRIFT=0 -DL=2 -DTMAX=2 -DSEQMAX=2 -DCRASH_T=1 -DLOSSES=0 -DREQMAX=1)
# chain-losses: a chain of two, a crash, and one datagram lost anywhere
losses=(-DDRIFT=0 -DL=2 -DTMAX=2 -DSEQMAX=1 -DCRASH_T=1 -DLOSSES=1 -DREQMAX=1)
# liveness: switch 0 asks once, switch 1 keeps asking; sessions may lapse
liveness=(-DDRIFT=0 -DL=2 -DTMAX=2 -DSEQMAX=0 -DCRASH_T=99 -DLOSSES=0 -DLIVENESS)

# search NAME EXPECT KIND SPIN_DEFINES...: EXPECT is pass, or the property
# that must catch a seeded bug (mutex, released, durable, fresh: asserted
# alone; asked: an acceptance cycle of the liveness claim `asked`); KIND is
# safety, liveness (weak fairness) or a bitstate variant of either
search() {
	local name=$1 expect=$2 kind=$3 dir=$work/$1 cc panflags checks=""
	shift 3
	case $kind in
	safety) cc="-DNOCLAIM -DSAFETY -DCOLLAPSE"; panflags="-m100000 -w26" ;;
	safety-bitstate) cc="-DNOCLAIM -DSAFETY -DBITSTATE"; panflags="-m1000000 -w32 -k3" ;;
	liveness) cc="-DCOLLAPSE -DNFAIR=3"; panflags="-a -f -m1000000 -w26" ;;
	liveness-bitstate) cc="-DBITSTATE -DNFAIR=3"; panflags="-a -f -m1000000 -w32 -k3" ;;
	esac
	case $expect in
	mutex) checks=-DCHECKS=1 ;;
	released) checks=-DCHECKS=2 ;;
	durable) checks=-DCHECKS=4 ;;
	fresh) checks=-DCHECKS=8 ;;
	esac
	# shellcheck disable=SC2086 # empty for a search of the protocol
	set -- "$@" $checks
	mkdir -p "$dir"
	cp "$here/redplane.pml" "$dir/"
	(
		cd "$dir"
		spin "$@" -a redplane.pml >spin.out 2>&1
		# shellcheck disable=SC2086 # word lists
		gcc -w -O2 $cc -o pan pan.c
		start=$(date +%s)
		# shellcheck disable=SC2086
		timeout "$budget" ./pan $panflags >pan.out 2>&1 || true
		echo $(($(date +%s) - start)) >secs
	)
	local out=$dir/pan.out errors states secs mb
	errors=$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' "$out" | tail -1)
	states=$(sed -n 's/^ *\([0-9e.+]*\) states, stored.*/\1/p' "$out" | tail -1)
	secs=$(cat "$dir/secs")
	mb=$(sed -n 's/^ *\([0-9.]*\)[[:space:]]*total actual memory usage.*/\1/p' "$out" | tail -1)
	if [ -z "$errors" ]; then
		states=$(sed -n 's/.* States= *\([0-9e.+]*\) .*/\1/p' "$out" | tail -1)
		if [[ $kind == *bitstate ]] && ! grep -q 'assertion violated\|acceptance cycle' "$out"; then
			# make verify: as far as the budget goes, and said so
			echo "model: $name: no error in the first ${states:-0} states ($kind; the ${budget} s budget ran out: not a whole search)" >"$dir/verdict"
			return 0
		fi
		echo "model: $name: no verdict within ${budget} s" >"$dir/verdict"
		return 1
	fi
	local found=none
	if grep -q 'acceptance cycle' "$out"; then
		found=asked
	elif grep -q 'assertion violated' "$out"; then
		found=$(sed -n 's/.*assertion violated.*broke_\([a-z]*\).*/\1/p' "$out" | head -1)
	fi
	if [ "$expect" = pass ] && [ "$errors" = 0 ]; then
		echo "model: $name: no error in $states states ($kind, ${secs} s, ${mb%.*} MB)" >"$dir/verdict"
	elif [ "$expect" != pass ] && [ "$errors" != 0 ] && [ "$found" = "$expect" ]; then
		echo "model: $name: rejected by $expect, as it must be (${secs} s)" >"$dir/verdict"
	else
		{
			echo "model: $name: expected $expect, spin found $errors errors ($found)"
			[ -f "$dir/redplane.pml.trail" ] &&
				(cd "$dir" && spin -t -p "$@" redplane.pml | tail -40)
		} >"$dir/verdict"
		return 1
	fi
}

# run NAME ...: a search in the background, at most $jobs at once
names=()
run() {
	while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
		wait -n || true
	done
	names+=("$1")
	search "$@" &
}

# every property is shown to catch a seeded bug, asserted alone
run lease-from-receipt mutex safety "${leases[@]}" -DBUG_LEASE_FROM_RECV
run no-drift-guard mutex safety "${leases[@]}" -DBUG_NO_DRIFT_GUARD
run implied-ack mutex safety "${contention[@]}" -DBUG_IMPLIED_ACK
run takeover-lapses mutex safety "${chain[@]}" -DBUG_TAKEOVER_LAPSES
run forget-unknown-revoke mutex safety "${chain[@]}" -DBUG_FORGET_UNKNOWN_REVOKE
run revive-lapsed mutex safety "${chain[@]}" -DBUG_REVIVE_LAPSED
run ack-at-head released safety "${chain[@]}" -DBUG_ACK_AT_HEAD
run ack-at-head-durable durable safety "${chain[@]}" -DBUG_ACK_AT_HEAD
run grant-at-head fresh safety "${chain[@]}" -DBUG_GRANT_AT_HEAD
run no-gen-check fresh safety "${chain[@]}" -DBUG_NO_GEN_CHECK
run ignore-revoke asked liveness "${liveness[@]}" -DBUG_IGNORE_REVOKE

# the protocol as built: every property at once
if [ "$mode" = quick ]; then
	run leases pass safety "${leases[@]}"
	run contention pass safety "${contention[@]}"
	run chain pass safety "${chain[@]}"
	run chain-losses pass safety "${losses[@]}"
	run liveness pass liveness "${liveness[@]}"
elif [ "$mode" = full ]; then
	run leases-longer pass safety-bitstate -DDRIFT=1 -DL=4 -DTMAX=4 -DSEQMAX=1 -DCRASH_T=99 -DLOSSES=0 -DREQMAX=1
	run contention-drift pass safety-bitstate -DDRIFT=1 -DL=4 -DTMAX=3 -DSEQMAX=0 -DCRASH_T=1 -DLOSSES=1 -DREQMAX=2
	run chain-longer pass safety-bitstate -DNREP=3 -DDRIFT=0 -DL=2 -DTMAX=3 -DSEQMAX=2 -DCRASH_T=1 -DLOSSES=1 -DREQMAX=2
	run liveness-longer pass liveness-bitstate -DDRIFT=1 -DL=4 -DTMAX=3 -DSEQMAX=0 -DCRASH_T=99 -DLOSSES=0 -DLIVENESS
fi

failed=0
wait || true
for name in "${names[@]}"; do
	if [ -f "$work/$name/verdict" ]; then
		cat "$work/$name/verdict"
		grep -q "no error in\|as it must be" "$work/$name/verdict" || failed=1
	else
		echo "model: $name: the search did not run" >&2
		failed=1
	fi
done
exit "$failed"
