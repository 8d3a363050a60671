// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The write-centric applications and the bounded-inconsistency mode: the
 * counters and the sketch through bpf_prog_test_run_opts (xdp_counter,
 * xdp_counter_lin, xdp_sketch), and with real traffic through two switches
 * in network namespaces (bounded_failover): after a crash the counts resume
 * from the last snapshot, at most one period's packets below the true count
 * and never above it; after a live reroute nothing is lost.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rp_test.h"
#include "topo_fixture.h"
#include "xdp_fixture.h"
/* after the fixture: the skeleton uses the types of redplane/dp.h */
#include "redplane.skel.h"

#define UDP_LEN(payload)	(sizeof(struct iphdr) + sizeof(struct udphdr) + (payload))

/* A datagram client -> server, and the server's answer, with `payload` bytes. */
static size_t to_server(uint8_t *buf, size_t payload)
{
	return fx_udp(buf, fx_mac_int, fx_mac_client, FX_CLIENT, 5000, FX_SERVER, 53, payload,
		      true);
}

static size_t to_client(uint8_t *buf, size_t payload)
{
	return fx_udp(buf, fx_mac_ext, fx_mac_server, FX_SERVER, 53, FX_CLIENT, 5000, payload,
		      true);
}

#define TO_SERVER	fx.ifindex_int, fx_mac_server, fx_mac_ext
#define TO_CLIENT	fx.ifindex_ext, fx_mac_client, fx_mac_int

static int conn_key(struct rp_flow_key *k)
{
	return rp_counter_key(k, IPPROTO_UDP, htonl(FX_CLIENT), htons(5000), htonl(FX_SERVER),
			      htons(53));
}

static struct rp_counter_state counts(const struct rp_flow_key *key)
{
	struct rp_counter_state st;
	struct rp_dp_flow f;

	cr_assert(fx_flow(key, &f), "the flow is in the map");
	cr_assert_eq(f.state_len, sizeof(st));
	memcpy(&st, f.state, sizeof(st));
	return st;
}

/* The first packet asks with `proposal`; `answer` (GRANT or MIGRATE of `stored`) lets it pass. */
static void first_packet(const struct rp_flow_key *key, uint8_t answer,
			 const struct rp_counter_state *stored)
{
	uint8_t pkt[256], msg[2048];
	struct rp_counter_state zero = { 0 };
	struct rp_msg_view req;
	struct fx_out out;
	size_t len = to_server(pkt, 10), mlen;

	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert_eq(req.app_id, RP_APP_COUNTER);
	cr_assert(rp_key_eq(&req.key, key), "one key per connection, lower endpoint first");
	cr_assert_eq(req.state_len, sizeof(zero));
	cr_assert_arr_eq(req.state, &zero, sizeof(zero), "a new connection proposes zeros");
	cr_assert_arr_eq(req.pkt, pkt, len, "the packet rides as it came");

	mlen = fx_msg(msg, FX_STORE, RP_APP_COUNTER, answer, key, 0, stored, sizeof(*stored), 0,
		      pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	fx_forwarded(pkt, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, pkt, len);
}

/* ---- the counters in bounded mode ---- */

TestSuite(xdp_counter, .init = fx_setup_counter, .fini = fx_teardown, .timeout = 30);

Test(xdp_counter, packets_are_counted_here_both_ways_and_forwarded_at_once)
{
	struct rp_counter_state zero = { 0 }, st;
	struct rp_flow_key key;
	uint8_t pkt[256];
	int dir = conn_key(&key);

	first_packet(&key, RP_MSG_GRANT, &zero);
	st = counts(&key);
	cr_assert_eq(st.pkts[dir], 1, "the first packet counted on its way out");
	cr_assert_eq(st.bytes[dir], UDP_LEN(10));

	/* the lease held: both directions count here, no message to the store */
	for (int i = 0; i < 5; i++)
		fx_expect_passes(pkt, to_server(pkt, 100), TO_SERVER);
	for (int i = 0; i < 3; i++)
		fx_expect_passes(pkt, to_client(pkt, 200), TO_CLIENT);
	st = counts(&key);
	cr_assert_eq(st.pkts[dir], 6);
	cr_assert_eq(st.bytes[dir], UDP_LEN(10) + 5 * UDP_LEN(100));
	cr_assert_eq(st.pkts[!dir], 3);
	cr_assert_eq(st.bytes[!dir], 3 * UDP_LEN(200));
	cr_assert_eq(fx_stat(RP_DP_counter_local), 9);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 1);
	cr_assert_eq(fx_stat(RP_DP_write_req), 0, "bounded mode never writes per packet");
}

Test(xdp_counter, a_migrated_connection_counts_on_from_the_stored_counts)
{
	struct rp_counter_state stored = { .pkts = { 40, 30 }, .bytes = { 4000, 3000 } }, st;
	struct rp_flow_key key;
	int dir = conn_key(&key);

	first_packet(&key, RP_MSG_MIGRATE, &stored);
	st = counts(&key);
	cr_assert_eq(st.pkts[dir], stored.pkts[dir] + 1);
	cr_assert_eq(st.bytes[dir], stored.bytes[dir] + UDP_LEN(10));
	cr_assert_eq(st.pkts[!dir], stored.pkts[!dir]);
	cr_assert_eq(fx_stat(RP_DP_migrate), 1);
}

Test(xdp_counter, a_revoke_goes_to_rp_load_and_the_next_request_implies_no_ack)
{
	struct rp_counter_state zero = { 0 };
	uint8_t pkt[256], msg[2048];
	struct rp_flow_key key;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	conn_key(&key);
	first_packet(&key, RP_MSG_GRANT, &zero);
	/* the revoke leaves the lease given up, the counts as they are, and passes up */
	len = fx_msg(msg, FX_STORE, RP_APP_COUNTER, RP_MSG_REVOKE, &key, 0, NULL, 0, 0, NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_PASS, "to rp-load's socket, which acks with the counts");
	cr_assert_eq(fx_stat(RP_DP_revoke_to_agent), 1);
	cr_assert(fx_flow(&key, &f));
	cr_assert_eq(f.epoch, 0, "not held");
	cr_assert_eq(f.gone_epoch, FX_EPOCH);
	cr_assert_eq(((struct rp_counter_state *)f.state)->pkts[conn_key(&key)], 1);
	/* a packet meanwhile asks again, naming no given-up holding: only rp-load's ack counts */
	len = to_server(pkt, 10);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert_eq(req.gen, 0);
	cr_assert_eq(((const struct rp_counter_state *)req.state)->pkts[conn_key(&key)], 1,
		     "it proposes what it counted");
}

Test(xdp_counter, a_state_of_the_wrong_size_is_dropped_and_counted)
{
	uint8_t pkt[256], msg[2048], bad[16] = { 1 };
	struct rp_flow_key key;
	struct fx_out out;
	size_t len = to_server(pkt, 10), mlen;

	conn_key(&key);
	mlen = fx_msg(msg, FX_STORE, RP_APP_COUNTER, RP_MSG_MIGRATE, &key, 0, bad, sizeof(bad), 0,
		      pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_state), 1);
	/* another application's message about the key: malformed here */
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_MIGRATE, &key, 0, bad, sizeof(bad), 0, pkt,
		      len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_malformed_msg), 1);
	cr_assert_eq(fx_stat(RP_DP_counter_local), 0);
}

/* ---- the counters in linearizable mode: every packet a write ---- */

TestSuite(xdp_counter_lin, .init = fx_setup_counter_lin, .fini = fx_teardown, .timeout = 30);

Test(xdp_counter_lin, every_packet_is_a_write_carrying_its_own_count_released_by_the_ack)
{
	struct rp_counter_state zero = { 0 };
	uint8_t pkt[256], msg[2048], want[256];
	struct rp_flow_key key;
	struct rp_msg_view req;
	struct fx_out out;
	int dir = conn_key(&key);
	size_t len, mlen;

	/* the grant brings the packet back: it is a write too (seq 1) */
	len = to_server(pkt, 10);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	mlen = fx_msg(msg, FX_STORE, RP_APP_COUNTER, RP_MSG_GRANT, &key, 0, &zero, sizeof(zero), 0,
		      pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE);
	cr_assert_eq(req.seq, 1);
	cr_assert_eq(((const struct rp_counter_state *)req.state)->pkts[dir], 1);

	for (uint32_t seq = 2; seq <= 4; seq++) {
		len = to_client(pkt, 50);
		fx_run(pkt, len, fx.ifindex_ext, &out);
		fx_decode_request(&out, &req);
		cr_assert_eq(req.type, RP_MSG_WRITE);
		cr_assert_eq(req.seq, seq);
		cr_assert_eq(((const struct rp_counter_state *)req.state)->pkts[!dir], seq - 1,
			     "the write counts its own packet");
		cr_assert_arr_eq(req.pkt, pkt, len);
		/* the ACK releases it */
		mlen = fx_msg(msg, FX_STORE, RP_APP_COUNTER, RP_MSG_ACK, &key, seq, NULL, 0, 0, pkt,
			      len);
		fx_run(msg, mlen, fx.ifindex_sto, &out);
		memcpy(want, pkt, len);
		fx_forwarded(want, fx_mac_client, fx_mac_int);
		fx_expect(&out, XDP_REDIRECT, want, len);
	}
	cr_assert_eq(fx_stat(RP_DP_counter_write), 4);
	cr_assert_eq(fx_stat(RP_DP_counter_local), 0);
}

/* ---- the sketch ---- */

TestSuite(xdp_sketch, .init = fx_setup_sketch, .fini = fx_teardown, .timeout = 30);

/* The cell of source `addr` in row r, from the map (the chunk must be there). */
static uint32_t cell(uint32_t addr, uint32_t r)
{
	uint32_t col = rp_sketch_col(htonl(addr), r);
	struct rp_flow_key key;
	struct rp_dp_flow f;

	rp_sketch_key(&key, 1, r, col);
	cr_assert(fx_flow(&key, &f), "row %u's chunk is here", r);
	cr_assert_eq(f.state_len, sizeof(struct rp_sketch_chunk));
	return ((struct rp_sketch_chunk *)f.state)->cell[col % RP_SKETCH_CHUNK_CELLS];
}

static bool heavy(uint32_t addr, struct rp_sketch_heavy *h)
{
	__be32 a = htonl(addr);

	return !bpf_map_lookup_elem(bpf_map__fd(fx.skel->maps.heavy), &a, h);
}

Test(xdp_sketch, a_packet_takes_each_rows_chunk_then_counts_and_heavy_hitters_show)
{
	struct rp_sketch_chunk zero = { 0 };
	uint8_t pkt[256], msg[2048];
	struct rp_sketch_heavy h;
	struct rp_msg_view req;
	struct fx_out out;
	size_t len = to_server(pkt, 10), mlen;

	/* one lease request per row, the packet riding each; the last grant lets it go */
	fx_run(pkt, len, fx.ifindex_int, &out);
	for (uint32_t r = 0; r < RP_SKETCH_ROWS; r++) {
		struct rp_flow_key key;

		rp_sketch_key(&key, 1, r, rp_sketch_col(htonl(FX_CLIENT), r));
		fx_decode_request(&out, &req);
		cr_assert_eq(req.type, RP_MSG_LEASE_REQ, "row %u", r);
		cr_assert_eq(req.app_id, RP_APP_SKETCH);
		cr_assert(rp_key_eq(&req.key, &key), "row %u's chunk", r);
		cr_assert_eq(req.state_len, sizeof(zero));
		cr_assert_arr_eq(req.pkt, pkt, len);
		mlen = fx_msg(msg, FX_STORE, RP_APP_SKETCH, RP_MSG_GRANT, &key, 0, &zero,
			      sizeof(zero), 0, pkt, len);
		fx_run(msg, mlen, fx.ifindex_sto, &out);
		/* unwrapped, the packet arrived at the store link: its MAC is the switch's there */
		memcpy(pkt, fx_mac_sto, ETH_ALEN);
	}
	cr_assert_eq(out.verdict, XDP_REDIRECT, "after the last row's grant the packet leaves");
	for (uint32_t r = 0; r < RP_SKETCH_ROWS; r++)
		cr_assert_eq(cell(FX_CLIENT, r), 1, "row %u", r);
	cr_assert(!heavy(FX_CLIENT, &h), "one packet is no heavy hitter");

	/* held: counted here, forwarded at once; the third packet reaches the threshold */
	fx_expect_passes(pkt, len, TO_SERVER);
	cr_assert(!heavy(FX_CLIENT, &h));
	fx_expect_passes(pkt, len, TO_SERVER);
	cr_assert(heavy(FX_CLIENT, &h), "%u packets: a heavy hitter", FX_SKETCH_THRESHOLD);
	cr_assert_eq(h.estimate, FX_SKETCH_THRESHOLD);
	for (uint32_t r = 0; r < RP_SKETCH_ROWS; r++)
		cr_assert_eq(cell(FX_CLIENT, r), 3, "row %u", r);
	cr_assert_eq(fx_stat(RP_DP_sketch_update), 3);
	cr_assert_eq(fx_stat(RP_DP_lease_req), RP_SKETCH_ROWS);
	cr_assert_eq(fx_stat(RP_DP_write_req), 0);
}

Test(xdp_sketch, the_estimate_is_the_least_row_of_the_stored_chunks)
{
	uint8_t pkt[256];
	struct rp_sketch_heavy h;
	size_t len = to_client(pkt, 10);

	/* chunks taken over from another switch: row 2 holds the least */
	for (uint32_t r = 0; r < RP_SKETCH_ROWS; r++) {
		uint32_t col = rp_sketch_col(htonl(FX_SERVER), r);
		struct rp_dp_flow f = { .epoch = FX_EPOCH, .state_len = sizeof(struct rp_sketch_chunk) };
		struct rp_flow_key key;

		((struct rp_sketch_chunk *)f.state)->cell[col % RP_SKETCH_CHUNK_CELLS] =
			r == 2 ? 70 : 90 + r;
		rp_sketch_key(&key, 1, r, col);
		fx_put_flow(&key, &f);
	}
	fx_expect_passes(pkt, len, TO_CLIENT);
	cr_assert(heavy(FX_SERVER, &h));
	cr_assert_eq(h.estimate, 71, "the least row, plus this packet");
	cr_assert_eq(cell(FX_SERVER, 0), 91);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 0);
}

Test(xdp_sketch, a_chunk_of_the_wrong_size_is_dropped_and_counted)
{
	uint32_t col = rp_sketch_col(htonl(FX_CLIENT), 0);
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .state_len = 8 };
	struct rp_flow_key key;
	uint8_t pkt[256];
	struct fx_out out;
	size_t len = to_server(pkt, 10);

	rp_sketch_key(&key, 1, 0, col);
	fx_put_flow(&key, &f);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_state), 1);
	cr_assert_eq(fx_stat(RP_DP_sketch_update), 0);
}

/* ---- bounded mode with real traffic: two switches, one store ---- */

static unsigned int lease_ms = 200, time_scale = 1;
static char lease_arg[16] = "200";
#define SNAPSHOT_MS	100
static char snap_arg[16];

#define PORT_C	5000
#define PORT_S	9000

/* Received datagrams, by when they arrived: the true count and its history. */
struct rx_log {
	int tx, rx;
	uint64_t *at;		/* monotonic ns of each datagram received */
	unsigned int n, cap;
	unsigned int sent;
};

static void rx_drain(struct rx_log *l)
{
	char buf[256];

	while (recv(l->rx, buf, sizeof(buf), MSG_DONTWAIT) > 0)
		if (l->n < l->cap)
			l->at[l->n++] = rp_stream_now();
}

/* n datagrams, one a millisecond, counted as they arrive. */
static void send_paced(struct rx_log *l, unsigned int n)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(PORT_S) };
	char payload[64] = "redplane";

	inet_pton(AF_INET, RP_TOPO_SERVER, &to.sin_addr);
	for (unsigned int i = 0; i < n; i++) {
		if (sendto(l->tx, payload, sizeof(payload), 0, (struct sockaddr *)&to,
			   sizeof(to)) == sizeof(payload))
			l->sent++;
		rp_test_sleep_ms(1);
		rx_drain(l);
	}
}

/* Waits up to ms for the datagrams in flight. */
static void rx_settle(struct rx_log *l, int ms)
{
	while (topo_readable(l->rx, ms) > 0)
		rx_drain(l);
}

static int udp_bound(const char *ns, const char *addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = rp_topo_socket(ns, AF_INET, SOCK_DGRAM), big = 1 << 20;

	cr_assert_geq(fd, 0);
	inet_pton(AF_INET, addr, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s:%u: %s", addr, port,
		     strerror(errno));
	return fd;
}

static void rx_open(struct rx_log *l, unsigned int cap)
{
	*l = (struct rx_log){ .cap = cap };
	l->at = calloc(cap, sizeof(*l->at));
	cr_assert_not_null(l->at);
	l->tx = udp_bound(topo.ns_client, RP_TOPO_CLIENT, PORT_C);
	l->rx = udp_bound(topo.ns_server, RP_TOPO_SERVER, PORT_S);
}

static void rx_close(struct rx_log *l)
{
	close(l->tx);
	close(l->rx);
	free(l->at);
}

/* Datagrams that arrived in [from, to]. */
static unsigned int rx_between(const struct rx_log *l, uint64_t from, uint64_t to)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < l->n; i++)
		n += l->at[i] >= from && l->at[i] <= to;
	return n;
}

/* Switch i's pinned map `name`. */
static int pin_of(unsigned int i, const char *name)
{
	int fd = rp_topo_open_pin(&topo, i, name);

	cr_assert_geq(fd, 0, "open sw%u's %s: %s", i + 1, name, strerror(errno));
	return fd;
}

/* The client's packets switch i counted for the test's connection. */
static uint64_t counted(unsigned int i)
{
	struct rp_counter_state st;
	struct rp_flow_key key;
	struct rp_dp_flow f;
	int dir, fd = pin_of(i, "flows");
	struct in_addr c, s;

	inet_pton(AF_INET, RP_TOPO_CLIENT, &c);
	inet_pton(AF_INET, RP_TOPO_SERVER, &s);
	dir = rp_counter_key(&key, IPPROTO_UDP, c.s_addr, htons(PORT_C), s.s_addr, htons(PORT_S));
	cr_assert_eq(bpf_map_lookup_elem_flags(fd, &key, &f, BPF_F_LOCK), 0, "switch %u has the connection",
		     i + 1);
	close(fd);
	cr_assert_eq(f.state_len, sizeof(st));
	memcpy(&st, f.state, sizeof(st));
	return st.pkts[dir];
}

/* The sketch's estimate of the client on switch i (0: not a heavy hitter there). */
static uint64_t estimated(unsigned int i)
{
	struct rp_sketch_heavy h;
	struct in_addr c;
	int fd = pin_of(i, "heavy");

	inet_pton(AF_INET, RP_TOPO_CLIENT, &c);
	if (bpf_map_lookup_elem(fd, &c.s_addr, &h))
		h.estimate = 0;
	close(fd);
	return h.estimate;
}

/* `rp-load --status` of switch i lists `addr` among its heavy hitters. */
static void expect_status_lists(unsigned int i, const char *addr)
{
	const char *dir = getenv("RP_BUILD");
	char cmd[512], out[8192];
	size_t len;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "%s/rp-load --status %s 2>&1", dir && *dir ? dir : "build",
		 topo.sw[i].if_int);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	len = fread(out, 1, sizeof(out) - 1, p);
	out[len] = '\0';
	cr_assert_eq(pclose(p), 0, "rp-load --status: %s", out);
	cr_assert_not_null(strstr(out, "heavy hitters"), "no heavy hitters in: %s", out);
	cr_assert_not_null(strstr(strstr(out, "heavy hitters"), addr),
			   "%s not among the heavy hitters: %s", addr, out);
}

static void bounded_up(const char *const *app)
{
	topo_timing(&lease_ms, &time_scale);
	snprintf(lease_arg, sizeof(lease_arg), "%u", lease_ms);
	snprintf(snap_arg, sizeof(snap_arg), "%u", SNAPSHOT_MS * time_scale);
	topo_up(2, lease_arg);
	topo.app_args = app;
	topo_switch(0, (const char *const[]){ "--lease-ms", lease_arg, "--snapshot-ms", snap_arg,
					      NULL });
	topo_switch(1, (const char *const[]){ "--lease-ms", lease_arg, "--snapshot-ms", snap_arg,
					      NULL });
}

static void counter_up(void)
{
	bounded_up((const char *const[]){ "--app", "counter", NULL });
}

static void sketch_up(void)
{
	bounded_up((const char *const[]){ "--app", "sketch", "--sketch-threshold", "100", NULL });
}

/*
 * What a crash may lose: the packets that arrived in the last snapshot
 * period before it, and in a margin for the snapshot's round trip and
 * rp-load's wake-up (scaled on a slow machine).
 */
struct crash {
	uint64_t start, end;	/* sw1 killed from start; routes via sw2 at end */
};

static unsigned int crash_allowance(const struct rx_log *l, const struct crash *c)
{
	uint64_t window = (SNAPSHOT_MS + 30ull) * time_scale * 1000000ull;

	return rx_between(l, c->start - window, c->end);
}

/* sw1 crashes mid-stream; the routes move to sw2; the stream goes on. */
static struct crash crash_sw1(struct rx_log *l, unsigned int before, unsigned int after)
{
	struct crash crash;

	send_paced(l, before / 2);
	cr_assert_geq(topo_agent_stat(0, "snapshots_sent", 1), 1, "sw1 sends snapshots");
	/* mid-stream: the crash comes right after a packet, not after a pause */
	send_paced(l, before - before / 2);
	crash.start = rp_stream_now();
	cr_assert_eq(rp_topo_fail_switch(&topo, 0), 0);
	cr_assert_eq(rp_topo_route_via(&topo, 1), 0);
	/* what sw1 forwarded is in by now, and nothing more comes through it */
	rx_settle(l, 20);
	crash.end = rp_stream_now();
	send_paced(l, after);
	rx_settle(l, 1000 * (int)time_scale);
	return crash;
}

TestSuite(bounded_failover, .fini = topo_down, .timeout = 240);

Test(bounded_failover, counts_recovered_after_a_crash_are_at_most_one_period_short_never_over,
     .init = counter_up)
{
	unsigned int before = 800 * time_scale, after = 100;
	struct rx_log l;
	struct crash crash;
	uint64_t total, lost, allowed;

	rx_open(&l, before + after);
	crash = crash_sw1(&l, before, after);
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "migrate"), 1, "sw2 took the connection over");
	total = counted(1);
	allowed = crash_allowance(&l, &crash);
	cr_log_info("bounded: %u received, sw2 counts %llu, lost %lld, allowed %llu (a %u ms period)",
		    l.n, (unsigned long long)total, (long long)l.n - (long long)total,
		    (unsigned long long)allowed, SNAPSHOT_MS * time_scale);
	cr_assert_leq(total, l.n, "counts above the true count: %llu > %u",
		      (unsigned long long)total, l.n);
	lost = l.n - total;
	cr_assert_leq(lost, allowed,
		      "lost %llu packets, more than the %llu of the last period before the crash",
		      (unsigned long long)lost, (unsigned long long)allowed);
	cr_assert_gt(total, rx_between(&l, crash.end, UINT64_MAX),
		     "sw2 resumed from a snapshot, not from zero");
	rx_close(&l);
}

Test(bounded_failover, a_live_reroute_hands_the_exact_counts_over_both_ways, .init = counter_up)
{
	struct rx_log l;

	rx_open(&l, 1200);
	send_paced(&l, 300);
	cr_assert_eq(rp_topo_route_via(&topo, 1), 0);
	send_paced(&l, 300);
	rx_settle(&l, 200);
	cr_assert_eq(counted(1), l.n, "sw2 has every packet counted: %llu of %u",
		     (unsigned long long)counted(1), l.n);
	cr_assert_geq(topo_agent_stat(0, "revoke_handovers", 1), 1,
		      "sw1 handed its counts over with the revoke's ack");
	/* and back */
	cr_assert_eq(rp_topo_route_via(&topo, 0), 0);
	send_paced(&l, 300);
	rx_settle(&l, 200);
	cr_assert_eq(counted(0), l.n, "sw1 again: %llu of %u", (unsigned long long)counted(0), l.n);
	cr_assert_geq(topo_agent_stat(1, "revoke_handovers", 1), 1);
	rx_close(&l);
}

Test(bounded_failover, a_heavy_hitter_stays_one_after_a_crash_with_its_estimate_bounded,
     .init = sketch_up)
{
	unsigned int before = 600 * time_scale, after = 50;
	struct rx_log l;
	struct crash crash;
	uint64_t est, allowed;

	rx_open(&l, before + after);
	crash = crash_sw1(&l, before, after);
	est = estimated(1);
	allowed = crash_allowance(&l, &crash);
	cr_log_info("sketch: %u received, sw2 estimates %llu, allowed loss %llu", l.n,
		    (unsigned long long)est, (unsigned long long)allowed);
	cr_assert_gt(est, 0, "sw2 reports the client as a heavy hitter");
	/* one source: every cell it adds to is its own, so the estimate is its count */
	cr_assert_leq(est, l.n, "estimate above the true count");
	cr_assert_leq(l.n - est, allowed, "lost more than one period's packets");
	expect_status_lists(1, RP_TOPO_CLIENT);
	rx_close(&l);
}
