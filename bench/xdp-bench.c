// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * xdp-bench: each application's cost per packet on its read fast path,
 * redplane against the same application with replication compiled out,
 * all run through bpf_prog_test_run_opts in the same process, rounds
 * interleaved.
 *
 * One established flow per application, one packet of it repeated: the
 * flow's map entry stays in cache, so this is the cached case (a random
 * flow among many costs more memory misses in both variants alike).  The
 * NAT and the firewall see an outbound TCP packet of a connection, the load
 * balancer a client's TCP packet to its virtual address.  The counters and
 * the sketch run in bounded mode (their default), where every packet
 * changes the state here and goes at once: their "fast path" is that one;
 * the sketch's source is a heavy hitter (past the threshold from the
 * second round on), so its heavy-map update is in the figure.
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

#include "bench_csv.h"
#include "redplane/dp.h"
#include "redplane.skel.h"
#include "redplane_norepl.skel.h"

#define REPEAT	2000000
#define ROUNDS	7

#define CLIENT	0x0a010002u	/* 10.1.0.2 */
#define SERVER	0xc6336402u	/* 198.51.100.2: the server, and the backend */
#define EXT	0xcb007101u	/* 203.0.113.1: the NAT's address */
#define VIP	0xcb007150u	/* 203.0.113.80: the load balancer's */

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

/* A 64-byte TCP packet of an established connection, 10.1.0.2:40000 to daddr:80. */
static size_t build_packet(uint8_t *buf, uint32_t daddr)
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
	ip->saddr = htonl(CLIENT);
	ip->daddr = htonl(daddr);
	th->source = htons(40000);
	th->dest = htons(80);
	th->doff = 5;
	th->ack = 1;
	return sizeof(*eth) + sizeof(*ip) + sizeof(*th) + 10;	/* 64 bytes */
}

/* An application measured: its packet, and the state of its established flow. */
struct app_case {
	const char *name;
	uint8_t id;
	const char *prog;
	uint32_t daddr;		/* where the packet goes */
	uint8_t state[RP_STATE_MAX];
	uint8_t state_len;
	uint8_t flags;		/* rp_dp_flow.flags */
	bool bounded;
	uint8_t pkt[128];
	size_t len;
};

#define NAPPS	5
static struct app_case apps[NAPPS];

static void set_cases(void)
{
	struct rp_nat_state nat = { .addr = htonl(EXT), .port = htons(20000), .dir = RP_NAT_FWD };
	struct rp_fw_state fw = { .phase = RP_FW_ESTABLISHED, .origin = RP_FW_OUT };
	struct rp_lb_state lb = { .addr = htonl(SERVER), .port = htons(8080), .dir = RP_LB_FWD };

	apps[0] = (struct app_case){ .name = "nat", .id = RP_APP_NAT, .prog = "rp_app_nat",
				     .daddr = SERVER, .state_len = sizeof(nat) };
	memcpy(apps[0].state, &nat, sizeof(nat));
	apps[1] = (struct app_case){ .name = "fw", .id = RP_APP_FW, .prog = "rp_app_fw",
				     .daddr = SERVER, .state_len = sizeof(fw) };
	memcpy(apps[1].state, &fw, sizeof(fw));
	/* both keys known: its replies' key is noted */
	apps[2] = (struct app_case){ .name = "lb", .id = RP_APP_LB, .prog = "rp_app_lb",
				     .daddr = VIP, .state_len = sizeof(lb),
				     .flags = RP_DPF_REV_KNOWN };
	memcpy(apps[2].state, &lb, sizeof(lb));
	apps[3] = (struct app_case){ .name = "counter", .id = RP_APP_COUNTER,
				     .prog = "rp_app_counter", .daddr = SERVER,
				     .state_len = sizeof(struct rp_counter_state), .bounded = true };
	/* the sketch's state is its four chunks (install_flow) */
	apps[4] = (struct app_case){ .name = "sketch", .id = RP_APP_SKETCH,
				     .prog = "rp_app_sketch", .daddr = SERVER,
				     .state_len = sizeof(struct rp_sketch_chunk), .bounded = true };
	for (int i = 0; i < NAPPS; i++)
		apps[i].len = build_packet(apps[i].pkt, apps[i].daddr);
}

struct variant {
	const struct app_case *app;
	bool replicated;
	struct bpf_object *obj;
	int prog;
	double ns[ROUNDS];
};

/*
 * Every application's settings (only the one measured runs), and the same
 * frame-restoring prologue (cfg_bench_reset) in both builds.
 */
#define SET_CONFIG(skel, a)						\
	do {								\
		(skel)->rodata->cfg_bench_reset = 1;			\
		memcpy((void *)(skel)->rodata->cfg_bench_frame, (a)->pkt, 64); \
		(skel)->rodata->cfg_switch_id = 1;			\
		(skel)->rodata->cfg_app = (a)->id;			\
		(skel)->rodata->cfg_bounded = (a)->bounded;		\
		(skel)->rodata->cfg_nat_int_net = htonl(0x0a010000);	\
		(skel)->rodata->cfg_nat_int_mask = htonl(0xffffff00);	\
		(skel)->rodata->cfg_nat_ext_addr = htonl(EXT);		\
		(skel)->rodata->cfg_fw_int_net = htonl(0x0a010000);	\
		(skel)->rodata->cfg_fw_int_mask = htonl(0xffffff00);	\
		(skel)->rodata->cfg_lb_vip = htonl(VIP);		\
		(skel)->rodata->cfg_lb_vport = htons(80);		\
		(skel)->rodata->cfg_lb_nbackends = 1;			\
		(skel)->rodata->cfg_lb_nknown = 1;			\
		(skel)->rodata->cfg_lb_backends[0].addr = htonl(SERVER); \
		(skel)->rodata->cfg_lb_backends[0].port = htons(8080);	\
	} while (0)

static int set_progs(struct bpf_object *obj, const struct app_case *a)
{
	const struct {
		int slot;
		const char *name;
	} table[] = {
		{ RP_PROG_ROOT, "rp_root" },
		{ a->id, a->prog },
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
static int install_flow(struct bpf_object *obj, const struct app_case *a, bool replicated)
{
	struct rp_dp_flow f = { .state_len = a->state_len, .flags = a->flags, .epoch = 3 };
	struct rp_flow_key key;
	int flows = bpf_map__fd(bpf_object__find_map_by_name(obj, "flows"));

	rp_key_v4(&key, IPPROTO_TCP, htonl(CLIENT), htons(40000), htonl(a->daddr), htons(80));
	memcpy(f.state, a->state, sizeof(f.state));
	if (a->id == RP_APP_SKETCH) {
		/* the chunk of each row the client's cells are in */
		for (uint32_t r = 0; r < RP_SKETCH_ROWS; r++) {
			rp_sketch_key(&key, 1, r, rp_sketch_col(htonl(CLIENT), r));
			if (bpf_map_update_elem(flows, &key, &f, 0))
				return -errno;
		}
	} else if (bpf_map_update_elem(flows, &key, &f, 0)) {
		return -errno;
	}
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

static int run_once(struct variant *v, int ifindex, double *ns)
{
	uint8_t out[256];
	struct xdp_md ctx = { .data_end = (uint32_t)v->app->len, .ingress_ifindex = (uint32_t)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = v->app->pkt,
		    .data_size_in = (uint32_t)v->app->len, .data_out = out,
		    .data_size_out = sizeof(out), .ctx_in = &ctx, .ctx_size_in = sizeof(ctx),
		    .repeat = REPEAT);

	if (bpf_prog_test_run_opts(v->prog, &opts))
		return -errno;
	if (opts.retval != XDP_REDIRECT) {
		int stats = bpf_map__fd(bpf_object__find_map_by_name(v->obj, "stats"));
		int ncpu = libbpf_num_possible_cpus();
		uint64_t vals[ncpu];

		fprintf(stderr, "xdp-bench: %s%s returned %u, not a redirect: the fast path was not taken\n",
			v->app->name, v->replicated ? "" : " (no replication)", opts.retval);
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

/* Opens, configures and loads one build for one application. */
static int load_variant(struct variant *v, void **skel)
{
	int err;

	if (v->replicated) {
		struct redplane *s = redplane__open();

		if (!s)
			return -errno;
		SET_CONFIG(s, v->app);
		err = redplane__load(s);
		v->obj = s->obj;
		v->prog = bpf_program__fd(s->progs.rp_root);
		*skel = s;
	} else {
		struct redplane_norepl *s = redplane_norepl__open();

		if (!s)
			return -errno;
		SET_CONFIG(s, v->app);
		err = redplane_norepl__load(s);
		v->obj = s->obj;
		v->prog = bpf_program__fd(s->progs.rp_root);
		*skel = s;
	}
	if (!err)
		err = set_progs(v->obj, v->app);
	if (!err)
		err = install_flow(v->obj, v->app, v->replicated);
	return err;
}

int main(void)
{
	struct variant v[2 * NAPPS];
	void *skel[2 * NAPPS] = { 0 };
	int ifindex, err, nv = 2 * NAPPS;
	double med[2 * NAPPS];

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
	set_cases();
	for (int i = 0; i < nv; i++) {
		v[i] = (struct variant){ .app = &apps[i / 2], .replicated = !(i % 2) };
		err = load_variant(&v[i], &skel[i]);
		if (err) {
			fprintf(stderr, "xdp-bench: Couldn't set %s%s up: %s\n", v[i].app->name,
				v[i].replicated ? "" : " (no replication)", strerror(-err));
			return 1;
		}
	}

	for (int r = 0; r < ROUNDS; r++)
		for (int i = 0; i < nv; i++)
			if (run_once(&v[i], ifindex, &v[i].ns[r]))
				return 1;
	for (int i = 0; i < nv; i++) {
		qsort(v[i].ns, ROUNDS, sizeof(double), cmp_double);
		med[i] = v[i].ns[ROUNDS / 2];
	}
	printf("Read fast path, one cached flow per app, %d repeats x %d rounds, medians:\n",
	       REPEAT, ROUNDS);
	for (int a = 0; a < nv / 2; a++) {
		char name[32];

		printf("  %-7s redplane %6.1f ns/packet, no replication %6.1f ns/packet, ratio %.2f\n",
		       apps[a].name, med[2 * a], med[2 * a + 1], med[2 * a] / med[2 * a + 1]);
		snprintf(name, sizeof(name), "%s_redplane", apps[a].name);
		rp_bench_csv(1, name, med[2 * a], "ns/packet");
		snprintf(name, sizeof(name), "%s_norepl", apps[a].name);
		rp_bench_csv(1, name, med[2 * a + 1], "ns/packet");
		snprintf(name, sizeof(name), "%s_ratio", apps[a].name);
		rp_bench_csv(1, name, med[2 * a] / med[2 * a + 1], "ratio");
	}
	printf("  (goal: a ratio of at most 1.15)\n");
	/* the NAT's under the names earlier runs used, then every app's */
	printf("xdp_fast_path_ns,%.1f\nxdp_norepl_ns,%.1f\n", med[0], med[1]);
	for (int a = 0; a < nv / 2; a++)
		printf("xdp_%s_ns,%.1f\nxdp_%s_norepl_ns,%.1f\n", apps[a].name, med[2 * a],
		       apps[a].name, med[2 * a + 1]);
	for (int i = 0; i < nv; i++) {
		if (v[i].replicated)
			redplane__destroy(skel[i]);
		else
			redplane_norepl__destroy(skel[i]);
	}
	return 0;
}
