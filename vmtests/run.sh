#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Runs the selftests inside a VM booted on another kernel (default: Debian
# bookworm's 6.1 LTS) and reports per-test results here.  With virtme-ng
# (vng) installed it is used; otherwise this runner does the same with
# Debian packages: qemu (software emulation: KVM is not usable here), the
# kernel package fetched with apt-get download (cached, never installed), an
# initramfs of busybox-static and the modules the tests need, and this host's
# root shared read-only over 9p with tmpfs for scratch.  The status comes out
# through a file on a second, writable 9p share, never through the VM's exit
# code; dmesg is checked for BPF warnings and oopses.
#
#   VM_KERNEL_PKG=linux-image-...   another Debian kernel package
#   VM_KERNEL_IMAGE=/path/vmlinuz   a kernel image (VM_KERNEL_MODULES=its /lib/modules/VER)
#   VM_FILTER='xdp/*'               a Criterion filter (default: every suite)
set -euo pipefail

OUTPUT=${OUTPUT:-build}
CACHE=${VM_CACHE:-$OUTPUT/vm}
TIMEOUT=${VM_TIMEOUT:-2400}
FILTER=${VM_FILTER:-}
REPO=$(pwd)
RESULTS=$(mktemp -d /tmp/rp-vmtest.XXXXXX)
trap 'rm -rf "$RESULTS"' EXIT

say() { printf 'vmtest: %s\n' "$*"; }

# Modules the tests load, by name; their dependencies are added from modules.dep.
WANT="virtio_pci virtio_blk 9pnet_virtio 9p veth sch_ingress cls_bpf"

kernel_from_package() {
	local pkg=${VM_KERNEL_PKG:-} deb dir
	if [ -z "$pkg" ]; then
		pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
			awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
	fi
	[ -n "$pkg" ] || { say "no kernel package found (apt-get update?)"; exit 1; }
	mkdir -p "$CACHE"
	deb=$(ls "$CACHE/${pkg}"_*.deb 2>/dev/null | head -n 1 || true)
	if [ -z "$deb" ]; then
		say "fetching $pkg (once; cached in $CACHE)"
		(cd "$CACHE" && apt-get download -q "$pkg" >/dev/null)
		deb=$(ls "$CACHE/${pkg}"_*.deb | head -n 1)
	fi
	dir=$CACHE/$pkg
	if [ ! -d "$dir/boot" ]; then
		rm -rf "$dir"
		dpkg-deb -x "$deb" "$dir"
	fi
	KIMAGE=$(ls "$dir"/boot/vmlinuz-* | head -n 1)
	KMODS=$(ls -d "$dir"/lib/modules/* | head -n 1)
	# the package leaves modules.dep to depmod at install time
	[ -f "$KMODS/modules.dep" ] || depmod -b "$dir" "$(basename "$KMODS")"
	KNAME=$pkg
}

# The modules in WANT and what they need, in load order.
resolve_modules() {
	local dep=$KMODS/modules.dep
	add_module() {
		local name=$1 path deps d
		path=$(grep -E "(^|/)${name}\.ko(\.[a-z]+)?:" "$dep" | head -n 1 | cut -d: -f1)
		[ -n "$path" ] || return 0	# built into the kernel
		grep -qxF "$path" "$CACHE/order" 2>/dev/null && return 0
		deps=$(grep -E "^${path}:" "$dep" | cut -d: -f2)
		for d in $deps; do
			d=$(basename "$d"); d=${d%%.ko*}
			add_module "$d"
		done
		echo "$path" >>"$CACHE/order"
	}
	: >"$CACHE/order"
	for m in $WANT; do add_module "$m"; done
}

build_initramfs() {
	local root=$CACHE/initramfs.root busybox=/bin/busybox	# busybox-static's
	rm -rf "$root"
	mkdir -p "$root"/{bin,dev,proc,sys,mnt/root,lib/modules}
	cp "$busybox" "$root/bin/busybox"
	for c in sh mount umount mkdir insmod chroot cat echo poweroff sleep dmesg ip mknod; do
		ln -s busybox "$root/bin/$c"
	done
	: >"$root/modules"
	while read -r path; do
		local f=$KMODS/$path out
		out=$root/lib/modules/$(basename "${path%%.ko*}").ko
		case "$f" in
		*.xz) xz -dc "$f" >"$out" ;;
		*.zst) zstd -qdc "$f" >"$out" ;;
		*) cp "$f" "$out" ;;
		esac
		echo "$(basename "$out")" >>"$root/modules"
	done <"$CACHE/order"
	cp vmtests/init "$root/init"
	chmod +x "$root/init"
	(cd "$root" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$CACHE/initramfs.gz"
}

boot() {
	say "booting $KNAME under qemu (software emulation), tests: ${FILTER:-all}"
	timeout "$TIMEOUT" qemu-system-x86_64 -accel tcg -m 3G -smp 2 -cpu max \
		-kernel "$KIMAGE" -initrd "$CACHE/initramfs.gz" \
		-append "console=ttyS0 panic=-1 quiet rp_output=$OUTPUT rp_filter=${FILTER:-all}" \
		-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on,multidevs=remap" \
		-virtfs "local,path=$RESULTS,mount_tag=results,security_model=none" \
		-nographic -no-reboot -display none >"$RESULTS/console" 2>&1 || true
}

report() {
	local line passed failed skipped
	# kept for a look after the run
	cp "$RESULTS/log" "$CACHE/last.log" 2>/dev/null || true
	cp "$RESULTS/dmesg" "$CACHE/last.dmesg" 2>/dev/null || true
	cp "$RESULTS/console" "$CACHE/last.console" 2>/dev/null || true
	if [ ! -f "$RESULTS/status" ]; then
		say "the VM wrote no status; its console:"
		tail -n 40 "$RESULTS/console"
		echo "0 passed, 1 failed"
		exit 1
	fi
	grep -aE '^\[(PASS|FAIL|SKIP|----)\]' "$RESULTS/log" | grep -av -e '^\[----\] *$' -e 'Test is disabled' || true
	line=$(grep -a 'Synthesis:' "$RESULTS/log" | tail -n 1)
	passed=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$line")
	failed=$(sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2/p' <<<"$line" |
		awk '{ print $1 + $2 }')
	if grep -aE 'WARNING:|BUG:|Oops|Call Trace|general protection' "$RESULTS/dmesg"; then
		say "the VM kernel warned (above): counted as a failure"
		failed=$((${failed:-0} + 1))
	fi
	skipped=$(grep -a '^\[SKIP\]' "$RESULTS/log" | grep -avc 'Test is disabled' || true)
	say "kernel $(cat "$RESULTS/uname" 2>/dev/null), tests exit status $(cat "$RESULTS/status")"
	echo "${passed:-0} passed, ${failed:-1} failed, ${skipped:-0} skipped"
	[ "$(cat "$RESULTS/status")" = 0 ] && [ "${failed:-1}" = 0 ]
}

if command -v vng >/dev/null 2>&1 && [ -n "${VM_KERNEL_IMAGE:-}" ]; then
	say "using virtme-ng with $VM_KERNEL_IMAGE"
	filter_arg=
	[ -n "$FILTER" ] && filter_arg="--filter $FILTER"
	cmd="cd $REPO && RP_BUILD=$OUTPUT RP_STORE=$OUTPUT/rp-store $OUTPUT/selftests/rp-selftests"
	cmd="$cmd $filter_arg >$RESULTS/log 2>&1; echo \$? >$RESULTS/status"
	cmd="$cmd; uname -r >$RESULTS/uname; dmesg >$RESULTS/dmesg"
	vng --run "$VM_KERNEL_IMAGE" --rwdir "$RESULTS" --exec "$cmd" || true
else
	if [ -n "${VM_KERNEL_IMAGE:-}" ]; then
		KIMAGE=$VM_KERNEL_IMAGE
		KMODS=${VM_KERNEL_MODULES:?set VM_KERNEL_MODULES to the modules directory of that kernel}
		KNAME=$(basename "$KIMAGE")
	else
		kernel_from_package
	fi
	resolve_modules
	build_initramfs
	boot
fi
report
