// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xdp_fixture.h"
/* after the fixture: the skeleton uses the types of redplane/dp.h */
#include "redplane.skel.h"

const uint8_t fx_mac_int[6] = { 0x02, 0, 0, 0, 1, 1 };
const uint8_t fx_mac_client[6] = { 0x02, 0, 0, 0, 1, 2 };
const uint8_t fx_mac_ext[6] = { 0x02, 0, 0, 0, 2, 1 };
const uint8_t fx_mac_server[6] = { 0x02, 0, 0, 0, 2, 2 };
const uint8_t fx_mac_sto[6] = { 0x02, 0, 0, 0, 3, 1 };
const uint8_t fx_mac_store[6] = { 0x02, 0, 0, 0, 3, 2 };

struct fx fx;

const uint32_t fx_backends[FX_NBACKENDS + 1] = { 0xc6336402u, 0xc6336403u, 0xc6336404u,
						 0xc6336405u };

static void sh(const char *cmd)
{
	int rc = system(cmd);

	cr_assert_eq(rc, 0, "'%s' failed (%d)", cmd, rc);
}

/* Three links with static neighbours, in a namespace of this test's own. */
static void build_netns(void)
{
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	sh("ip link set lo up");
	sh("ip link add rp-int address 02:00:00:00:01:01 type veth peer name rp-intp");
	sh("ip link add rp-ext address 02:00:00:00:02:01 type veth peer name rp-extp");
	sh("ip link add rp-sto address 02:00:00:00:03:01 type veth peer name rp-stop");
	sh("for l in rp-int rp-intp rp-ext rp-extp rp-sto rp-stop; do ip link set $l up; done");
	sh("ip addr add 10.1.0.1/24 dev rp-int");
	sh("ip addr add 198.51.100.1/24 dev rp-ext");
	sh("ip addr add 192.0.2.1/24 dev rp-sto");
	sh("ip neigh add 10.1.0.2 lladdr 02:00:00:00:01:02 dev rp-int nud permanent");
	sh("ip neigh add 10.1.0.3 lladdr 02:00:00:00:01:02 dev rp-int nud permanent");
	sh("for a in 2 3 4 5 6; do"
	   " ip neigh add 198.51.100.$a lladdr 02:00:00:00:02:02 dev rp-ext nud permanent; done");
	sh("for a in 10 12 20 21; do"
	   " ip neigh add 192.0.2.$a lladdr 02:00:00:00:03:02 dev rp-sto nud permanent; done");
	sh("sysctl -qw net.ipv4.ip_forward=1");
	fx.ifindex_int = (int)if_nametoindex("rp-int");
	fx.ifindex_ext = (int)if_nametoindex("rp-ext");
	fx.ifindex_sto = (int)if_nametoindex("rp-sto");
}

static void set_prog(int slot, const struct bpf_program *p)
{
	int fd = bpf_program__fd(p);

	cr_assert_eq(bpf_map_update_elem(bpf_map__fd(fx.skel->maps.progs), &slot, &fd, 0), 0);
}

/* The replicas of both chains, in the data plane's table's order. */
static const struct {
	uint32_t addr;
	uint16_t store;
} replicas[] = {
	{ FX_STORE, 0 }, { FX_STORE_B, 0 }, { FX_CHAIN1, 1 }, { FX_CHAIN1_B, 1 },
};

static void set_replicas(unsigned int nstores)
{
	unsigned int n = 0;

	for (size_t i = 0; i < sizeof(replicas) / sizeof(replicas[0]); i++) {
		if (replicas[i].store >= nstores)
			continue;
		fx.skel->rodata->cfg_replicas[n].addr = htonl(replicas[i].addr);
		fx.skel->rodata->cfg_replicas[n].port = htons(FX_STORE_PORT);
		fx.skel->rodata->cfg_replicas[n].store = replicas[i].store;
		n++;
	}
	fx.skel->rodata->cfg_nstores = nstores;
	fx.skel->rodata->cfg_nreplicas = n;
}

/* A live session for each chain, the head its first replica. */
static void put_sessions(unsigned int nstores)
{
	struct rp_dp_session sess = { .epoch = FX_EPOCH };
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	sess.expiry_ns = (uint64_t)(ts.tv_sec + 600) * 1000000000ull;
	sess.head.port = htons(FX_STORE_PORT);
	for (uint32_t i = 0; i < nstores; i++) {
		sess.head.addr = htonl(i ? FX_CHAIN1 : FX_STORE);
		cr_assert_eq(bpf_map_update_elem(fx.map_sessions, &i, &sess, 0), 0);
	}
}

/* The firewall's rules: tcp:22 and udp:53 open to the outside. */
static void set_fw(void)
{
	fx.skel->rodata->cfg_fw_int_net = htonl(0x0a010000u);
	fx.skel->rodata->cfg_fw_int_mask = htonl(0xffffff00u);
	fx.skel->rodata->cfg_fw_udp_idle_ns = FX_FW_IDLE_MS * 1000000ull;
	fx.skel->rodata->cfg_fw_allow_tcp[22 / 64] |= 1ull << (22 % 64);
	fx.skel->rodata->cfg_fw_allow_udp[53 / 64] |= 1ull << (53 % 64);
}

static void set_lb(void)
{
	fx.skel->rodata->cfg_lb_vip = htonl(FX_VIP);
	fx.skel->rodata->cfg_lb_vport = htons(FX_VIP_PORT);
	fx.skel->rodata->cfg_lb_nbackends = FX_NBACKENDS;
	fx.skel->rodata->cfg_lb_nknown = FX_NBACKENDS + 1;
	for (int i = 0; i < FX_NBACKENDS + 1; i++) {
		fx.skel->rodata->cfg_lb_backends[i].addr = htonl(fx_backends[i]);
		fx.skel->rodata->cfg_lb_backends[i].port = htons(FX_BACKEND_PORT);
	}
}

const uint64_t fx_mac_key[2] = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };

static void load(unsigned int nstores, uint8_t app, bool bounded, bool mac)
{
	struct bpf_program *app_prog = NULL;

	if (geteuid() != 0)
		cr_skip_test("needs root: loads BPF programs and builds a network namespace");
	memset(&fx, 0, sizeof(fx));
	build_netns();

	fx.skel = redplane__open();
	cr_assert_not_null(fx.skel, "open the BPF object");
	fx.skel->rodata->cfg_switch_id = FX_SWITCH_ID;
	fx.skel->rodata->cfg_app = app;
	fx.skel->rodata->cfg_src_addr = htonl(FX_SWITCH);
	fx.skel->rodata->cfg_src_port = htons(FX_RP_PORT);
	set_replicas(nstores);
	fx.skel->rodata->cfg_nat_int_net = htonl(0x0a010000u);
	fx.skel->rodata->cfg_nat_int_mask = htonl(0xffffff00u);
	fx.skel->rodata->cfg_nat_ext_addr = htonl(FX_EXT);
	fx.skel->rodata->cfg_nat_port_base = FX_PORT_BASE;
	fx.skel->rodata->cfg_nat_port_span = FX_PORT_SPAN;
	if (app == RP_APP_FW)
		set_fw();
	if (app == RP_APP_LB)
		set_lb();
	fx.skel->rodata->cfg_bounded = bounded;
	if (mac) {
		/* this process seals and checks with the same key (the test is the store) */
		fx.skel->rodata->cfg_mac = 1;
		fx.skel->rodata->cfg_mac_key[0] = fx_mac_key[0];
		fx.skel->rodata->cfg_mac_key[1] = fx_mac_key[1];
		rp_msg_set_key(fx_mac_key);
	}
	fx.skel->rodata->cfg_sketch_threshold = FX_SKETCH_THRESHOLD;
	/* as rp-load: only the application under test is loaded (and verified) */
	{
		struct bpf_program *progs[__RP_APP_MAX] = {
			[RP_APP_NAT] = fx.skel->progs.rp_app_nat,
			[RP_APP_FW] = fx.skel->progs.rp_app_fw,
			[RP_APP_LB] = fx.skel->progs.rp_app_lb,
			[RP_APP_COUNTER] = fx.skel->progs.rp_app_counter,
			[RP_APP_SKETCH] = fx.skel->progs.rp_app_sketch,
		};

		for (unsigned int i = 1; i < __RP_APP_MAX; i++)
			bpf_program__set_autoload(progs[i], i == app);
		app_prog = progs[app];
	}
	cr_assert_eq(redplane__load(fx.skel), 0, "load the BPF object (see the verifier log)");

	set_prog(RP_PROG_ROOT, fx.skel->progs.rp_root);
	set_prog(app, app_prog);
	set_prog(RP_PROG_EMIT, fx.skel->progs.rp_emit);
	set_prog(RP_PROG_STORE_RX, fx.skel->progs.rp_store_rx);
	fx.prog_root = bpf_program__fd(fx.skel->progs.rp_root);
	fx.map_flows = bpf_map__fd(fx.skel->maps.flows);
	fx.map_sessions = bpf_map__fd(fx.skel->maps.sessions);
	fx.map_stats = bpf_map__fd(fx.skel->maps.stats);
	put_sessions(nstores);
}

void fx_netns(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root: loads BPF programs and builds a network namespace");
	memset(&fx, 0, sizeof(fx));
	build_netns();
}

void fx_setup(void)
{
	load(1, RP_APP_NAT, false, false);
}

void fx_setup_chains(void)
{
	load(2, RP_APP_NAT, false, false);
}

void fx_setup_fw(void)
{
	load(1, RP_APP_FW, false, false);
}

void fx_setup_lb(void)
{
	load(1, RP_APP_LB, false, false);
}

void fx_setup_counter(void)
{
	load(1, RP_APP_COUNTER, true, false);
}

void fx_setup_counter_lin(void)
{
	load(1, RP_APP_COUNTER, false, false);
}

void fx_setup_sketch(void)
{
	load(1, RP_APP_SKETCH, true, false);
}

void fx_setup_mac(void)
{
	load(1, RP_APP_NAT, false, true);
}

void fx_set_head(uint32_t store, uint32_t head)
{
	struct rp_dp_session sess;

	cr_assert_eq(bpf_map_lookup_elem(fx.map_sessions, &store, &sess), 0);
	sess.head.addr = htonl(head);
	cr_assert_eq(bpf_map_update_elem(fx.map_sessions, &store, &sess, 0), 0);
}

void fx_teardown(void)
{
	if (fx.skel)
		redplane__destroy(fx.skel);
	fx.skel = NULL;
}

void fx_run(const void *frame, size_t len, int ifindex, struct fx_out *out)
{
	struct xdp_md ctx_in = { .data_end = (uint32_t)len, .ingress_ifindex = (uint32_t)ifindex };
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame, .data_size_in = (uint32_t)len,
		    .data_out = out->data, .data_size_out = sizeof(out->data), .ctx_in = &ctx_in,
		    .ctx_size_in = sizeof(ctx_in), .repeat = 1);
	int err = bpf_prog_test_run_opts(fx.prog_root, &opts);

	cr_assert_eq(err, 0, "bpf_prog_test_run_opts: %s", strerror(errno));
	out->verdict = opts.retval;
	out->len = opts.data_size_out;
}

static uint32_t sum16(const void *p, size_t len, uint32_t s)
{
	const uint8_t *b = p;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		s += (uint32_t)b[len - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

uint16_t fx_csum(const void *p, size_t len)
{
	return htons(fold(sum16(p, len, 0)));
}

/* The L4 checksum over the pseudo-header, in host order. */
static uint16_t l4_csum(const struct iphdr *ip, const void *l4, size_t l4_len)
{
	uint32_t s = 0;

	s = sum16(&ip->saddr, 4, s);
	s = sum16(&ip->daddr, 4, s);
	s += ip->protocol;
	s += (uint32_t)l4_len;
	return fold(sum16(l4, l4_len, s));
}

static size_t ip_frame(uint8_t *buf, const uint8_t *dmac, const uint8_t *smac, uint32_t saddr,
		       uint32_t daddr, uint8_t proto, size_t l4_len)
{
	struct ethhdr *eth = (struct ethhdr *)buf;
	struct iphdr *ip = (struct iphdr *)(eth + 1);

	memcpy(eth->h_dest, dmac, 6);
	memcpy(eth->h_source, smac, 6);
	eth->h_proto = htons(ETH_P_IP);
	memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = proto;
	ip->id = htons(0x1234);
	ip->tot_len = htons((uint16_t)(sizeof(*ip) + l4_len));
	ip->saddr = htonl(saddr);
	ip->daddr = htonl(daddr);
	ip->check = htons(fold(sum16(ip, sizeof(*ip), 0)));
	return sizeof(*eth) + sizeof(*ip) + l4_len;
}

size_t fx_tcp(uint8_t *buf, const uint8_t *dmac, const uint8_t *smac, uint32_t saddr,
	      uint16_t sport, uint32_t daddr, uint16_t dport, uint8_t flags, size_t payload)
{
	size_t len = ip_frame(buf, dmac, smac, saddr, daddr, IPPROTO_TCP,
			      sizeof(struct tcphdr) + payload);
	struct iphdr *ip = (struct iphdr *)(buf + sizeof(struct ethhdr));
	struct tcphdr *th = (struct tcphdr *)(ip + 1);

	memset(th, 0, sizeof(*th));
	th->source = htons(sport);
	th->dest = htons(dport);
	th->seq = htonl(1000);
	th->doff = 5;
	th->window = htons(65535);
	((uint8_t *)th)[13] = flags;
	for (size_t i = 0; i < payload; i++)
		((uint8_t *)(th + 1))[i] = (uint8_t)(i * 7 + 1);
	th->check = htons(l4_csum(ip, th, sizeof(*th) + payload));
	return len;
}

size_t fx_udp(uint8_t *buf, const uint8_t *dmac, const uint8_t *smac, uint32_t saddr,
	      uint16_t sport, uint32_t daddr, uint16_t dport, size_t payload, bool csum)
{
	size_t len = ip_frame(buf, dmac, smac, saddr, daddr, IPPROTO_UDP,
			      sizeof(struct udphdr) + payload);
	struct iphdr *ip = (struct iphdr *)(buf + sizeof(struct ethhdr));
	struct udphdr *uh = (struct udphdr *)(ip + 1);

	uh->source = htons(sport);
	uh->dest = htons(dport);
	uh->len = htons((uint16_t)(sizeof(*uh) + payload));
	uh->check = 0;
	for (size_t i = 0; i < payload; i++)
		((uint8_t *)(uh + 1))[i] = (uint8_t)(i * 3 + 5);
	if (csum) {
		uint16_t c = l4_csum(ip, uh, sizeof(*uh) + payload);

		uh->check = htons(c ? c : 0xffff);
	}
	return len;
}

size_t fx_store_raw(uint8_t *buf, uint32_t from, size_t mlen)
{
	size_t len = ip_frame(buf, fx_mac_sto, fx_mac_store, from, FX_SWITCH, IPPROTO_UDP,
			      sizeof(struct udphdr) + mlen);
	struct udphdr *uh = (struct udphdr *)(buf + sizeof(struct ethhdr) + sizeof(struct iphdr));

	uh->source = htons(FX_STORE_PORT);
	uh->dest = htons(FX_RP_PORT);
	uh->len = htons((uint16_t)(sizeof(*uh) + mlen));
	uh->check = 0;
	return len;
}

size_t fx_store_msg(uint8_t *buf, uint32_t from, const struct rp_msg_view *v)
{
	size_t hdr = sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr);
	int mlen = rp_msg_encode(buf + hdr, RP_DGRAM_MAX, v);

	cr_assert_gt(mlen, 0, "the test built an invalid message");
	return fx_store_raw(buf, from, (size_t)mlen);
}

size_t fx_msg(uint8_t *buf, uint32_t from, uint8_t app, uint8_t type, const struct rp_flow_key *key,
	      uint32_t seq, const void *state, uint8_t state_len, uint8_t reason, const void *inner,
	      size_t inner_len)
{
	struct rp_msg_view v = {
		.type = type,
		.app_id = app,
		.switch_id = FX_SWITCH_ID,
		.seq = seq,
		.epoch = FX_EPOCH,
		.lease_ms = 200,
		.key = *key,
		.reason = type == RP_MSG_REJECT ? reason : 0,
	};

	if (type == RP_MSG_GRANT || type == RP_MSG_MIGRATE) {
		v.flags |= RP_F_STATE;
		v.state = state;
		v.state_len = state_len;
	}
	if (inner_len) {
		v.flags |= RP_F_PKT;
		v.pkt = inner;
		v.pkt_len = (uint16_t)inner_len;
	}
	return fx_store_msg(buf, from, &v);
}

void fx_forwarded(uint8_t *frame, const uint8_t *dmac, const uint8_t *smac)
{
	struct iphdr *ip = (struct iphdr *)(frame + sizeof(struct ethhdr));

	memcpy(frame, dmac, 6);
	memcpy(frame + 6, smac, 6);
	ip->ttl--;
	ip->check = 0;
	ip->check = htons(fold(sum16(ip, ip->ihl * 4u, 0)));
}

void fx_expect(const struct fx_out *out, uint32_t verdict, const uint8_t *want, size_t len)
{
	cr_assert_eq(out->verdict, verdict, "verdict %u, expected %u", out->verdict, verdict);
	cr_assert_eq(out->len, len, "length %u, expected %zu", out->len, len);
	cr_assert_arr_eq(out->data, want, len, "output bytes");
	cr_assert(fx_csum_ok(out->data, out->len), "checksums valid");
}

bool fx_csum_ok(const uint8_t *frame, size_t len)
{
	const struct iphdr *ip = (const void *)(frame + sizeof(struct ethhdr));
	size_t ihl = ip->ihl * 4u, l4_len = ntohs(ip->tot_len) - ihl;
	const uint8_t *l4 = (const uint8_t *)ip + ihl;

	if (len < sizeof(struct ethhdr) + ihl + l4_len)
		return false;
	if (fold(sum16(ip, ihl, 0)) != 0)
		return false;
	if (ip->protocol == IPPROTO_UDP && ((const struct udphdr *)l4)->check == 0)
		return true;
	return l4_csum(ip, l4, l4_len) == 0;
}

void fx_decode_request(const struct fx_out *out, struct rp_msg_view *v)
{
	fx_decode_request_to(out, FX_STORE, v);
}

void fx_decode_request_to(const struct fx_out *out, uint32_t head, struct rp_msg_view *v)
{
	size_t hdr = sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr);
	const struct ethhdr *eth = (const void *)out->data;
	const struct iphdr *ip = (const void *)(eth + 1);
	const struct udphdr *uh = (const void *)(ip + 1);
	int err;

	cr_assert_eq(out->verdict, XDP_REDIRECT, "verdict %u, expected a redirect", out->verdict);
	cr_assert_gt(out->len, hdr + RP_MSG_LEN);
	cr_assert_arr_eq(eth->h_dest, fx_mac_store, 6, "to the store's MAC");
	cr_assert_arr_eq(eth->h_source, fx_mac_sto, 6);
	cr_assert_eq(ip->saddr, htonl(FX_SWITCH));
	cr_assert_eq(ip->daddr, htonl(head), "to the head");
	cr_assert_eq(uh->source, htons(FX_RP_PORT));
	cr_assert_eq(uh->dest, htons(FX_STORE_PORT));
	cr_assert_eq(ntohs(uh->len), out->len - sizeof(*eth) - sizeof(*ip));
	cr_assert(fx_csum_ok(out->data, out->len), "outer checksums");
	err = rp_msg_decode(out->data + hdr, out->len - hdr, v);
	cr_assert_eq(err, 0, "the request decodes: %s", rp_decode_err_name((unsigned int)-err));
	cr_assert_eq(v->switch_id, FX_SWITCH_ID);
	cr_assert_eq(v->epoch, FX_EPOCH);
}

void fx_expect_passes(const uint8_t *pkt, size_t len, int ifindex, const uint8_t *dmac,
		      const uint8_t *smac)
{
	uint8_t want[2048];
	struct fx_out out;

	fx_run(pkt, len, ifindex, &out);
	memcpy(want, pkt, len);
	fx_forwarded(want, dmac, smac);
	fx_expect(&out, XDP_REDIRECT, want, len);
}

uint64_t fx_stat(enum rp_dp_stat s)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t vals[ncpu], sum = 0;
	uint32_t key = s;

	cr_assert_eq(bpf_map_lookup_elem(fx.map_stats, &key, vals), 0);
	for (int i = 0; i < ncpu; i++)
		sum += vals[i];
	return sum;
}

bool fx_flow(const struct rp_flow_key *key, struct rp_dp_flow *f)
{
	return bpf_map_lookup_elem_flags(fx.map_flows, key, f, BPF_F_LOCK) == 0;
}

/* As the data plane makes an entry: the value names its key (rp_flow_is). */
void fx_put_flow(const struct rp_flow_key *key, const struct rp_dp_flow *f)
{
	struct rp_dp_flow v = *f;

	v.key = *key;
	cr_assert_eq(bpf_map_update_elem(fx.map_flows, key, &v, BPF_F_LOCK), 0);
}

void fx_key(struct rp_flow_key *k, uint8_t proto, uint32_t saddr, uint16_t sport,
	    uint32_t daddr, uint16_t dport)
{
	rp_key_v4(k, proto, htonl(saddr), htons(sport), htonl(daddr), htons(dport));
}
