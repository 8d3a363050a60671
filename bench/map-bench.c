// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * map-bench: the kernel memory one flow costs in the data plane's `flows`
 * map at 1,000,000 flows.  A map made from the object's own definition
 * (type, key and value sizes, flags: preallocated, as rp-load loads it) with
 * 1,000,000 entries, then filled; the kernel's figure is the map's
 * `memlock` in /proc/self/fdinfo (what `bpftool map show` prints), read
 * before and after.  The same with BPF_F_NO_PREALLOC, for comparison, and
 * the figure computed from the hash table's layout, to check the reading.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench_csv.h"
#include "redplane/dp.h"
#include "redplane.skel.h"

#define CHUNK	65536

/* The map's memlock, in bytes, as the kernel reports it; -1 if unreadable. */
static long long memlock(int fd)
{
	char path[64], line[128];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "memlock: %lld", &v) == 1)
			break;
	if (f)
		fclose(f);
	return v;
}

static int fill(int fd, unsigned int n, __u32 value_size)
{
	struct rp_flow_key *keys = calloc(CHUNK, sizeof(*keys));
	void *values = calloc(CHUNK, value_size);
	int err = 0;

	if (!keys || !values) {
		err = -ENOMEM;
		goto out;
	}
	for (unsigned int done = 0; done < n && !err;) {
		__u32 count = n - done < CHUNK ? n - done : CHUNK;

		/* distinct flows: 10.0.0.0/8 sources, one port each */
		for (__u32 i = 0; i < count; i++)
			rp_key_v4(&keys[i], IPPROTO_TCP, htonl(0x0a000000u + done + i),
				  htons(40000), htonl(0xc6336402u), htons(80));
		if (bpf_map_update_batch(fd, keys, values, &count, NULL))
			err = -errno;
		done += count;
	}
out:
	free(keys);
	free(values);
	return err;
}

static __u32 round8(__u32 x)
{
	return (x + 7) & ~7u;
}

/*
 * A preallocated hash table, as kernel/bpf/hashtab.c lays it out on 64-bit:
 * each element a struct htab_elem (48 bytes before the key) with key and
 * value each rounded up to 8 bytes, one extra element per possible CPU, and
 * a bucket (16 bytes) per power of two at or above max_entries.
 */
static double computed_per_flow(__u32 key_size, __u32 value_size, unsigned int n)
{
	double elem = 48 + round8(key_size) + round8(value_size);
	unsigned long long buckets = 1;
	int ncpu = libbpf_num_possible_cpus();

	while (buckets < n)
		buckets <<= 1;
	return (elem * (n + (unsigned int)ncpu) + 16.0 * (double)buckets + 8.0 * ncpu) / n;
}

struct measure {
	long long before, after;
};

static int measure(const struct bpf_map *def, __u32 flags, unsigned int n, struct measure *m)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = flags);
	int fd = bpf_map_create(bpf_map__type(def), "flows", bpf_map__key_size(def),
				bpf_map__value_size(def), n, &opts);
	int err;

	if (fd < 0)
		return -errno;
	m->before = memlock(fd);
	err = fill(fd, n, bpf_map__value_size(def));
	m->after = memlock(fd);
	close(fd);
	return err;
}

int main(int argc, char **argv)
{
	unsigned int n = argc > 1 ? (unsigned int)strtoul(argv[1], NULL, 10) : 1000000;
	struct redplane *skel;
	const struct bpf_map *def;
	struct measure pre, dyn;
	double computed;
	__u32 flags;
	int err;

	if (n < 1000 || n > 10000000) {
		fprintf(stderr, "Usage: map-bench [FLOWS (1000000)]\n");
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "map-bench: needs root (BPF maps)\n");
		return 1;
	}
	skel = redplane__open();	/* the definition only: nothing loaded */
	if (!skel) {
		fprintf(stderr, "map-bench: Couldn't open the data plane object: %s\n",
			strerror(errno));
		return 1;
	}
	def = skel->maps.flows;
	flags = bpf_map__map_flags(def);
	err = measure(def, flags, n, &pre);
	if (!err)
		err = measure(def, flags | BPF_F_NO_PREALLOC, n, &dyn);
	if (err) {
		fprintf(stderr, "map-bench: Couldn't fill a map of %u flows: %s\n", n,
			strerror(-err));
		redplane__destroy(skel);
		return 1;
	}
	computed = computed_per_flow(bpf_map__key_size(def), bpf_map__value_size(def), n);
	printf("Kernel memory of the flows map (key %u bytes, value %u bytes), %u flows,\n"
	       "memlock from /proc/<pid>/fdinfo:\n", bpf_map__key_size(def),
	       bpf_map__value_size(def), n);
	printf("  as loaded (%s): %lld bytes empty, %lld full: %.1f bytes/flow "
	       "(computed from the layout: %.1f)\n",
	       flags & BPF_F_NO_PREALLOC ? "not preallocated" : "preallocated", pre.before,
	       pre.after, (double)pre.after / n, computed);
	printf("  BPF_F_NO_PREALLOC:        %lld bytes empty, %lld full: %.1f bytes/flow added\n",
	       dyn.before, dyn.after, (double)(dyn.after - dyn.before) / n);
	rp_bench_csv(7, "kernel_flows_bytes_per_flow", (double)pre.after / n, "bytes");
	rp_bench_csv(7, "kernel_flows_computed_per_flow", computed, "bytes");
	rp_bench_csv(7, "kernel_flows_noprealloc_per_flow", (double)(dyn.after - dyn.before) / n,
		     "bytes");
	rp_bench_csv(7, "kernel_flows_key_bytes", bpf_map__key_size(def), "bytes");
	rp_bench_csv(7, "kernel_flows_value_bytes", bpf_map__value_size(def), "bytes");
	rp_bench_csv(7, "kernel_flows_entries", n, "flows");
	redplane__destroy(skel);
	return 0;
}
