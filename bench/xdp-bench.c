// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp-bench: the NAT's cost per packet on the read fast path, redplane
 * against the same NAT with replication compiled out, both run through
 * bpf_prog_test_run_opts in the same process, rounds interleaved.
 *
 * One outbound TCP packet of one established flow, repeated: the flow's map
 * entry stays in cache, so this is the cached case (a random flow among
 * many costs more memory misses in both variants alike).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "redplane/dp.h"
#include "redplane.skel.h"
#include "redplane_norepl.skel.h"

#define REPEAT	2000000
#define ROUNDS	7

static int sh(const char *cmd)
{
	return system(cmd) == 0 ? 0 : -1;
}

/* One link with a static neighbour: fib lookups succeed. */
static int netns_setup(void)
{
	if (unshare(CLONE_NEWNET))
		return -errno;
	if (sh("ip link set lo up && "
	       "ip link add xb0 address 02:00:00:00:00:01 type veth peer name xb1 && "
	       "ip link set xb0 up && ip link set xb1 up && "
	       "ip addr add 10.1.0.1/24 dev xb0 && ip addr add 198.51.100.1/24 dev xb0 && "
	       "ip neigh add 198.51.100.2 lladdr 02:00:00:00:00:02 dev xb0 nud permanent && "
	       "sysctl -qw net.ipv4.ip_forward=1"))
		return -EIO;
	return 0;
}

static size_t build_packet(uint8_t *buf)
{
	struct ethhdr *eth = (void *)buf;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *th = (void *)(ip + 1);

	memset(buf, 0, 128);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*th) + 10);
	ip->saddr = htonl(0x0a010002);
	ip->daddr = htonl(0xc6336402);
	th->source = htons(40000);
	th->dest = htons(80);
	th->doff = 5;
	th->ack = 1;
	return sizeof(*eth) + sizeof(*ip) + sizeof(*th) + 10;	/* 64 bytes */
}

struct variant {
	const char *name;
	struct bpf_object *obj;
	int prog;
	double ns[ROUNDS];
};

/* Both run the same frame-restoring prologue (cfg_bench_reset). */
#define SET_CONFIG(skel, pkt)						\
	do {								\
		(skel)->rodata->cfg_bench_reset = 1;			\
		memcpy((void *)(skel)->rodata->cfg_bench_frame, pkt, 64); \
		(skel)->rodata->cfg_switch_id = 1;			\
		(skel)->rodata->cfg_app = RP_APP_NAT;			\
		(skel)->rodata->cfg_nat_int_net = htonl(0x0a010000);	\
		(skel)->rodata->cfg_nat_int_mask = htonl(0xffffff00);	\
		(skel)->rodata->cfg_nat_ext_addr = htonl(0xcb007101);	\
	} while (0)

static int set_progs(struct bpf_object *obj)
{
	static const struct {
		int slot;
		const char *name;
	} table[] = {
		{ RP_PROG_ROOT, "rp_root" },
		{ RP_APP_NAT, "rp_app_nat" },
		{ RP_PROG_EMIT, "rp_emit" },
		{ RP_PROG_STORE_RX, "rp_store_rx" },
	};
	int map = bpf_map__fd(bpf_object__find_map_by_name(obj, "progs"));

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		struct bpf_program *p = bpf_object__find_program_by_name(obj, table[i].name);
		int fd;

		if (!p)
			continue;	/* compiled out */
		fd = bpf_program__fd(p);
		if (bpf_map_update_elem(map, &table[i].slot, &fd, 0))
			return -errno;
	}
	return 0;
}

/* The established flow: a held lease (redplane) or a local entry (baseline). */
static int install_flow(struct bpf_object *obj, bool replicated)
{
	struct rp_nat_state st = { .addr = htonl(0xcb007101), .port = htons(20000),
				   .dir = RP_NAT_FWD };
	struct rp_dp_flow f = { .state_len = sizeof(st), .epoch = replicated ? 3 : 0 };
	struct rp_flow_key key = { .family = RP_AF_INET, .proto = IPPROTO_TCP,
				   .sport = htons(40000), .dport = htons(80) };
	int flows = bpf_map__fd(bpf_object__find_map_by_name(obj, "flows"));

	key.saddr.v4 = htonl(0x0a010002);
	key.daddr.v4 = htonl(0xc6336402);
	memcpy(f.state, &st, sizeof(st));
	if (bpf_map_update_elem(flows, &key, &f, 0))
		return -errno;
	if (replicated) {
		struct timespec ts;
		struct rp_dp_session sess = { .epoch = 3 };
		uint32_t zero = 0;
		int sessions = bpf_map__fd(bpf_object__find_map_by_name(obj, "sessions"));

		clock_gettime(CLOCK_MONOTONIC, &ts);
		sess.expiry_ns = (uint64_t)(ts.tv_sec + 3600) * 1000000000ull;
		if (bpf_map_update_elem(sessions, &zero, &sess, 0))
			return -errno;
	}
	return 0;
}

static int run_once(struct variant *v, const uint8_t *pkt, size_t len, int ifindex, double *ns)
{
	uint8_t out[256];
	struct xdp_md ctx = { .data_end = (uint32_t)len, .ingress_ifindex = (uint32_t)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = pkt, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = sizeof(out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = REPEAT);

	if (bpf_prog_test_run_opts(v->prog, &opts))
		return -errno;
	if (opts.retval != XDP_REDIRECT) {
		int stats = bpf_map__fd(bpf_object__find_map_by_name(v->obj, "stats"));
		int ncpu = libbpf_num_possible_cpus();
		uint64_t vals[ncpu];

		fprintf(stderr, "xdp-bench: %s returned %u, not a redirect: the fast path was not taken\n",
			v->name, opts.retval);
		for (uint32_t k = 0; k < __RP_DP_STAT_MAX; k++) {
			uint64_t sum = 0;

			bpf_map_lookup_elem(stats, &k, vals);
			for (int c = 0; c < ncpu; c++)
				sum += vals[c];
			if (sum)
				fprintf(stderr, "  counter %u: %llu\n", k, (unsigned long long)sum);
		}
		return -EINVAL;
	}
	*ns = opts.duration;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int main(void)
{
	struct redplane *repl;
	struct redplane_norepl *base;
	struct variant v[2] = { { .name = "redplane" }, { .name = "no replication" } };
	uint8_t pkt[128];
	size_t len = build_packet(pkt);
	int ifindex, err;

	if (geteuid() != 0) {
		fprintf(stderr, "xdp-bench: needs root (BPF programs, a network namespace)\n");
		return 1;
	}
	err = netns_setup();
	if (err) {
		fprintf(stderr, "xdp-bench: Couldn't build the namespace: %s\n", strerror(-err));
		return 1;
	}
	ifindex = (int)if_nametoindex("xb0");
	repl = redplane__open();
	base = redplane_norepl__open();
	if (!repl || !base)
		return 1;
	SET_CONFIG(repl, pkt);
	SET_CONFIG(base, pkt);
	if (redplane__load(repl) || redplane_norepl__load(base)) {
		fprintf(stderr, "xdp-bench: Couldn't load the programs\n");
		return 1;
	}
	v[0].obj = repl->obj;
	v[0].prog = bpf_program__fd(repl->progs.rp_root);
	v[1].obj = base->obj;
	v[1].prog = bpf_program__fd(base->progs.rp_root);
	for (int i = 0; i < 2; i++) {
		if (set_progs(v[i].obj) || install_flow(v[i].obj, i == 0)) {
			fprintf(stderr, "xdp-bench: Couldn't set %s up\n", v[i].name);
			return 1;
		}
	}

	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < 2; i++)
			if (run_once(&v[i], pkt, len, ifindex, &v[i].ns[r]))
				return 1;
	for (int i = 0; i < 2; i++)
		qsort(v[i].ns, ROUNDS, sizeof(double), cmp_double);
	printf("NAT read fast path, one cached flow, %d repeats x %d rounds, medians:\n", REPEAT,
	       ROUNDS);
	printf("  %-16s %6.1f ns/packet\n", v[0].name, v[0].ns[ROUNDS / 2]);
	printf("  %-16s %6.1f ns/packet\n", v[1].name, v[1].ns[ROUNDS / 2]);
	printf("  ratio            %6.2f (goal: <= 1.15)\n", v[0].ns[ROUNDS / 2] / v[1].ns[ROUNDS / 2]);
	printf("xdp_fast_path_ns,%.1f\nxdp_norepl_ns,%.1f\n", v[0].ns[ROUNDS / 2], v[1].ns[ROUNDS / 2]);
	redplane__destroy(repl);
	redplane_norepl__destroy(base);
	return 0;
}
