#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Builds the Tofino data plane (redplane.p4) with the Intel SDE's compiler.
#
#   p4-tofino/build.sh            compile with bf-p4c when $SDE is set; else say
#                                 why it is skipped and succeed
#   p4-tofino/build.sh --check    what needs no SDE: the Python files compile,
#                                 the P4 files include only p4-tofino/include/ and
#                                 declare each header once (tools/check_p4.py)
#
# Environment: SDE (open-p4studio's tree), SDE_INSTALL (default $SDE/install),
# OUTPUT (default build/ at the top of the repository: the program goes to
# $OUTPUT/p4/redplane), P4_TARGET (tofino or tofino2, default tofino),
# P4FLAGS (more bf-p4c options, e.g. -DRP_SLOT_BITS=17), V=1 (show commands).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(dirname "$here")
prog=redplane

run() {
	if [ "${V:-0}" = 1 ]; then
		printf '%s\n' "$*"
	fi
	"$@"
}

check() {
	local out rc=0 n
	# byte-code goes to a scratch directory, not next to the sources
	PYTHONPYCACHEPREFIX=$(mktemp -d)
	export PYTHONPYCACHEPREFIX
	trap 'rm -rf "$PYTHONPYCACHEPREFIX"' EXIT
	# no process substitution: the VM's initramfs has no /dev/fd
	n=$(find "$here" -name '*.py' -not -path '*/__pycache__/*' | wc -l)
	if ! out=$(find "$here" -name '*.py' -not -path '*/__pycache__/*' \
		-exec python3 -m py_compile {} + 2>&1); then
		printf 'p4: Python files do not compile:\n%s\n' "$out" >&2
		rc=1
	fi
	[ "$rc" = 0 ] && echo "p4 check: $n Python files compile"
	run python3 "$here/tools/check_p4.py" || rc=1
	return "$rc"
}

case "${1:-}" in
--check)
	check
	exit
	;;
-h|--help)
	sed -n '3,15p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
"")
	;;
*)
	echo "p4: unknown option '$1' (try --help)" >&2
	exit 2
	;;
esac

if [ -z "${SDE:-}" ]; then
	echo 'p4: skipped: $SDE is not set (the Tofino SDE, open-p4studio, is not installed here)'
	exit 0
fi

sde_install=${SDE_INSTALL:-$SDE/install}
p4c=$sde_install/bin/bf-p4c
if [ ! -x "$p4c" ]; then
	echo "p4: Couldn't find bf-p4c at '$p4c': set SDE_INSTALL to the SDE's install tree" >&2
	exit 1
fi

target=${P4_TARGET:-tofino}
case "$target" in
tofino) arch=tna ;;
tofino2) arch=t2na ;;
*)
	echo "p4: unknown P4_TARGET '$target': tofino or tofino2" >&2
	exit 2
	;;
esac

out=${OUTPUT:-$top/build}/p4/$prog
mkdir -p "$out"
echo "  BF-P4C  $prog ($target, $arch) -> ${out#"$top"/}"
# shellcheck disable=SC2086 # P4FLAGS is a list of options
run "$p4c" --std p4-16 --target "$target" --arch "$arch" -g \
	--bf-rt-schema "$out/bf-rt.json" -o "$out" ${P4FLAGS:-} \
	"$here/$prog.p4"

# bf-p4c writes the bf_switchd configuration; say where it is
conf=$out/$prog.conf
if [ ! -f "$conf" ]; then
	echo "p4: bf-p4c made no $prog.conf in '$out'" >&2
	exit 1
fi
echo "p4: built; run: \$SDE/run_switchd.sh -c $conf (or copy $out to \$SDE_INSTALL/share/p4/targets/$target/)"
