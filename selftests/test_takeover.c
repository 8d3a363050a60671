// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Takeover in a routed network (issue 16): the client behind a router, the
 * server behind another, two switches each with an inside, an outside and a
 * store link, and a download: the server streams about 1 MB/s to the
 * client in 1 KiB writes.  sw1 crashes (or the routes move while it runs)
 * and the routers' routes move to sw2; which direction's packet reaches sw2
 * first is forced by holding the other direction back in a blackhole until
 * sw2 has asked the store for the first one.  Every byte must arrive, in
 * order, within a bound.
 *
 * The client writes a 4-byte report now and then, as a download client
 * does, so that a packet from its side can be made to come first.
 *
 * `make takeover` runs these cases in a loop (scripts/takeover.sh).  For
 * variants of the reporter's setup: RP_TAKEOVER_NO_REPORTS=1 (the client
 * sends nothing but ACKs; the forced orders then rest on them),
 * RP_TAKEOVER_NAGLE=1 (the server's 1 KiB writes coalesced by Nagle),
 * RP_TAKEOVER_QUEUES=N (the `takeover` suite on N-queue veths).
 *
 * The `takeover_mq` suite: the same download on multi-queue veths with a
 * chain of three replicas; `takeover_mq_store`: the same links with one
 * store, which needs no ZooKeeper and so runs in the VM too (below).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redplane/dp.h"
#include "rp_test.h"
#include "topo_fixture.h"

static unsigned int lease_ms = 200, time_scale = 1;
static char lease_arg[16] = "200";
static char dump_arg[128];
static const char *store_args[] = { "--dump-file", dump_arg, NULL };
static const char *const switch_args[] = { "--lease-ms", lease_arg, NULL };

static void routed(unsigned int queues)
{
	topo_timing(&lease_ms, &time_scale);
	snprintf(lease_arg, sizeof(lease_arg), "%u", lease_ms);
	topo_prefix = "tk";
	topo_opts = (struct rp_topo_opts){ .routers = true, .queues = queues };
}

static void up(void)
{
	routed(getenv("RP_TAKEOVER_QUEUES") ? (unsigned int)atoi(getenv("RP_TAKEOVER_QUEUES")) : 0);
	snprintf(dump_arg, sizeof(dump_arg), "/tmp/tk%d.flows", getpid());
	topo_up_with(2, lease_arg, store_args);
	topo_switch(0, switch_args);
	topo_switch(1, switch_args);
}

static void down(void)
{
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -f /tmp/tk%d.flows.*", getpid());
	if (system(cmd))
		fprintf(stderr, "takeover: Couldn't remove %s.*\n", dump_arg);
	topo_down();
}

TestSuite(takeover, .init = up, .fini = down, .timeout = 90);

/* ---- the download ---- */

/* Byte `off` of either stream: big-endian 32-bit counters, one per 4 bytes. */
static uint8_t stream_byte(uint64_t off)
{
	uint32_t word = (uint32_t)(off / 4);

	return (uint8_t)(word >> (8 * (3 - off % 4)));
}

static void fill(uint8_t *buf, uint64_t off, size_t len)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = stream_byte(off + i);
}

#define CHUNK		1024		/* the server's writes */
#define RATE		1000000ull	/* bytes/s */
#define REPORT_MS	100		/* the client's reports */

struct dl {
	struct conn c;
	uint64_t start_ns, sent, received;	/* server -> client bytes */
	uint64_t up_sent, up_received;		/* client -> server bytes */
	uint64_t last_report_ns;
	uint64_t last_rx_ns, max_gap_ns;	/* silences at the client */
	uint64_t mark_ns, first_rx_after_ns;
	bool out_of_order;
	int error;
};

static void dl_open(struct dl *d)
{
	int one = 1;

	memset(d, 0, sizeof(*d));
	d->c = topo_connect(8080);
	if (!getenv("RP_TAKEOVER_NAGLE"))
		setsockopt(d->c.server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(d->c.client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	d->start_ns = d->last_rx_ns = d->last_report_ns = rp_stream_now();
}

static void dl_close(struct dl *d)
{
	close(d->c.client);
	close(d->c.server);
}

static bool dl_read(int fd, uint64_t *count, bool *bad, int *error)
{
	uint8_t buf[16384];
	bool got = false;

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				*error = n == 0 ? -1 : errno;
			return got;
		}
		got = true;
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != stream_byte(*count + (uint64_t)i))
				*bad = true;
		*count += (uint64_t)n;
	}
}

/* Writes what the pace owes (1 KiB at a time) and reads what arrived. */
static void dl_step(struct dl *d, bool write)
{
	uint64_t now = rp_stream_now();
	uint64_t owed = (now - d->start_ns) * RATE / 1000000000ull;
	uint8_t buf[CHUNK];

	owed -= owed % CHUNK;
	while (write && !d->error && d->sent < owed) {
		size_t len = CHUNK - d->sent % CHUNK;
		ssize_t n;

		fill(buf, d->sent, len);
		n = send(d->c.server, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n <= 0) {
			if (n < 0 && errno != EAGAIN)
				d->error = errno;
			break;
		}
		d->sent += (uint64_t)n;
	}
	if (write && !d->error && !getenv("RP_TAKEOVER_NO_REPORTS") &&
	    now - d->last_report_ns >= REPORT_MS * 1000000ull) {
		ssize_t n;

		fill(buf, d->up_sent, 4);
		n = send(d->c.client, buf, 4, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n > 0)
			d->up_sent += (uint64_t)n;
		d->last_report_ns = now;
	}
	if (dl_read(d->c.client, &d->received, &d->out_of_order, &d->error)) {
		if (now - d->last_rx_ns > d->max_gap_ns)
			d->max_gap_ns = now - d->last_rx_ns;
		d->last_rx_ns = now;
		if (d->mark_ns && !d->first_rx_after_ns)
			d->first_rx_after_ns = now;
	}
	dl_read(d->c.server, &d->up_received, &d->out_of_order, &d->error);
}

/* A client report now, out of turn: a packet from the client's side. */
static void dl_report(struct dl *d)
{
	uint8_t buf[4];

	fill(buf, d->up_sent, 4);
	cr_assert_eq(send(d->c.client, buf, 4, MSG_DONTWAIT | MSG_NOSIGNAL), 4);
	d->up_sent += 4;
	d->last_report_ns = rp_stream_now();
}

static void dl_ms(struct dl *d, unsigned int ms)
{
	uint64_t end = rp_stream_now() + (uint64_t)ms * time_scale * 1000000ull;

	while (rp_stream_now() < end) {
		dl_step(d, true);
		rp_test_sleep_ms(1);
	}
}

/* Stops writing and reads until both streams arrived whole, for up to ms. */
static bool dl_drain(struct dl *d, unsigned int ms)
{
	uint64_t end = rp_stream_now() + (uint64_t)ms * time_scale * 1000000ull;

	while (rp_stream_now() < end && !d->error) {
		dl_step(d, false);
		if (d->received == d->sent && d->up_received == d->up_sent)
			return true;
		rp_test_sleep_ms(1);
	}
	return d->received == d->sent && d->up_received == d->up_sent;
}

/* ---- what the switches hold, for a failure's evidence ---- */

static void print_flows(unsigned int i)
{
	int fd = rp_topo_open_pin(&topo, i, "flows");
	struct rp_flow_key key, next, *prev = NULL;

	if (fd < 0) {
		fprintf(stderr, "sw%u: no flows map (%s)\n", i + 1, strerror(-fd));
		return;
	}
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		const struct rp_nat_state *st;
		struct rp_dp_flow v;
		char k[RP_KEYSTRLEN], a[INET_ADDRSTRLEN];

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(fd, &key, &v))
			continue;
		st = (const struct rp_nat_state *)v.state;
		rp_key_str(&key, k, sizeof(k));
		inet_ntop(AF_INET, &st->addr, a, sizeof(a));
		fprintf(stderr,
			"sw%u %s: %s:%u dir %u closing %u | epoch %u gone %u gen %u seq %u acked %u "
			"flags %#x len %u\n",
			i + 1, k, a, ntohs(st->port), st->dir, st->closing, v.epoch, v.gone_epoch,
			v.gen, v.seq, v.acked, v.flags, v.state_len);
	}
	close(fd);
}

static void print_stats(unsigned int i)
{
	static const char *const names[] = {
#define X(n) #n,
		RP_DP_STATS(X)
#undef X
	};

	for (unsigned int k = 0; k < __RP_DP_STAT_MAX; k++) {
		long long v = rp_topo_dp_stat(&topo, i, names[k]);

		if (v > 0)
			fprintf(stderr, "sw%u %s %lld\n", i + 1, names[k], v);
	}
}

static void print_store(void)
{
	char cmd[256];

	if (topo.store_pid <= 0)
		return;
	kill(topo.store_pid, SIGUSR2);
	rp_test_sleep_ms(200);
	snprintf(cmd, sizeof(cmd), "cat %s.* >&2", dump_arg);
	if (system(cmd))
		fprintf(stderr, "no store dump\n");
}

static void evidence(const char *why)
{
	fprintf(stderr, "---- takeover: %s\n", why);
	for (unsigned int i = 0; i < topo.nswitches; i++) {
		print_flows(i);
		print_stats(i);
	}
	print_store();
}

/* ---- the cases ---- */

enum first { FIRST_NONE, FIRST_INBOUND, FIRST_OUTBOUND };

/* Waits up to ms, downloading, for switch i's counter to reach min; the last value read. */
static long long dl_wait_stat(struct dl *d, unsigned int i, const char *name, long long min,
			      unsigned int ms)
{
	long long v = -1;

	for (unsigned int t = 0; t <= ms * time_scale; t++) {
		v = rp_topo_dp_stat(&topo, i, name);
		if (v >= min)
			break;
		dl_step(d, true);
		rp_test_sleep_ms(1);
	}
	return v;
}

/*
 * Moves the routes to sw2, the `first` direction's first: the other is
 * held in a blackhole until sw2 has asked the store about the first one
 * (sw2's lease requests), then released, and the client sends a report so
 * that its side has a packet on the way at once.
 */
static void move_routes(struct dl *d, enum first first)
{
	long long reqs = rp_topo_dp_stat(&topo, 1, "lease_req");

	if (first == FIRST_NONE) {
		cr_assert_eq(rp_topo_route_via(&topo, 1), 0);
		return;
	}
	if (first == FIRST_INBOUND) {
		cr_assert_eq(rp_topo_route_side(&topo, RP_TOPO_BLACKHOLE, RP_TOPO_SIDE_CLIENT), 0);
		cr_assert_eq(rp_topo_route_side(&topo, 1, RP_TOPO_SIDE_SERVER), 0);
		cr_assert_gt(dl_wait_stat(d, 1, "lease_req", reqs + 1, 3000), reqs,
			     "the server's packet never reached sw2");
		cr_assert_eq(rp_topo_dp_stat(&topo, 1, "nat_new"), 0, "the inbound packet came first");
		cr_assert_eq(rp_topo_route_side(&topo, 1, RP_TOPO_SIDE_CLIENT), 0);
		dl_report(d);
		return;
	}
	cr_assert_eq(rp_topo_route_side(&topo, RP_TOPO_BLACKHOLE, RP_TOPO_SIDE_SERVER), 0);
	cr_assert_eq(rp_topo_route_side(&topo, 1, RP_TOPO_SIDE_CLIENT), 0);
	dl_report(d);
	cr_assert_gt(dl_wait_stat(d, 1, "lease_req", reqs + 1, 3000), reqs,
		     "the client's packet never reached sw2");
	cr_assert_eq(rp_topo_route_side(&topo, 1, RP_TOPO_SIDE_SERVER), 0);
}

/*
 * The download through sw1 for 2 s, then sw1 crashes (crash) or stays up,
 * and the routes move to sw2 as `first` says; then 3 s more.  Every byte
 * both ways must arrive in order, the longest silence at the client below
 * the bound.  *stall_ms is the longest silence.
 */
static void takeover(bool crash, enum first first, uint64_t *stall_ms)
{
	uint64_t bound_ms = (crash ? lease_ms : 0) + 1000ull * time_scale;
	struct dl d;
	bool whole;

	dl_open(&d);
	dl_ms(&d, 2000);
	cr_assert_eq(d.error, 0, "the download broke before the %s", crash ? "crash" : "reroute");
	cr_assert_gt(d.received, 1500000 * time_scale / 2, "the download ran through sw1");
	if (crash)
		cr_assert_eq(rp_topo_fail_switch(&topo, 0), 0);
	d.mark_ns = rp_stream_now();
	move_routes(&d, first);
	dl_ms(&d, 3000);
	whole = dl_drain(&d, 5000);
	*stall_ms = d.max_gap_ns / 1000000;
	fprintf(stderr, "takeover: %s %s: stall %llu ms, %s (%llu of %llu bytes down, "
			"%llu of %llu up)\n",
		crash ? "crash" : "reroute",
		first == FIRST_INBOUND ? "inbound first" :
		first == FIRST_OUTBOUND ? "outbound first" : "routes at once",
		(unsigned long long)*stall_ms, whole && !d.out_of_order ? "whole" : "NOT WHOLE",
		(unsigned long long)d.received, (unsigned long long)d.sent,
		(unsigned long long)d.up_received, (unsigned long long)d.up_sent);
	if (!whole || d.out_of_order || d.error || *stall_ms >= bound_ms || getenv("RP_DEBUG"))
		evidence(whole ? "after the run" : "the stream did not resume whole");
	cr_assert_eq(d.error, 0, "the connection broke: %s",
		     d.error > 0 ? strerror(d.error) : "EOF");
	cr_assert(!d.out_of_order, "bytes out of order");
	cr_assert(whole, "every byte arrives: %llu of %llu down, %llu of %llu up",
		  (unsigned long long)d.received, (unsigned long long)d.sent,
		  (unsigned long long)d.up_received, (unsigned long long)d.up_sent);
	cr_assert_neq(d.first_rx_after_ns, 0, "the download resumed through sw2");
	cr_assert_lt(*stall_ms, bound_ms, "stall %llu ms", (unsigned long long)*stall_ms);
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "migrate"), 2, "sw2 took both keys over");
	dl_close(&d);
}

Test(takeover, a_crash_with_the_inbound_packet_first_keeps_the_download_whole)
{
	uint64_t stall;

	takeover(true, FIRST_INBOUND, &stall);
}

Test(takeover, a_crash_with_the_outbound_packet_first_keeps_the_download_whole)
{
	uint64_t stall;

	takeover(true, FIRST_OUTBOUND, &stall);
}

Test(takeover, a_crash_with_both_routes_moved_at_once_keeps_the_download_whole)
{
	uint64_t stall;

	takeover(true, FIRST_NONE, &stall);
}

Test(takeover, a_live_reroute_with_the_inbound_packet_first_keeps_the_download_whole)
{
	uint64_t stall;

	takeover(false, FIRST_INBOUND, &stall);
}

Test(takeover, a_live_reroute_with_the_outbound_packet_first_keeps_the_download_whole)
{
	uint64_t stall;

	takeover(false, FIRST_OUTBOUND, &stall);
}

/*
 * ---- multi-queue veths and a chain of three ----
 *
 * Every link of two queues, RPS on the routers: the switches' XDP runs on
 * both CPUs (a veth runs it on the sender's CPU).  The chain's head, which
 * sends REVOKEs, is pinned to the first CPU and its tail, which sends
 * GRANTs, MIGRATEs and ACKs, to the last: a switch takes them on different
 * CPUs, concurrently with the packets of the flows they are about.
 */
static const char *const replica_args[] = { "--failure-timeout-ms", "800", "--lease-ms", "200",
					    NULL };
static const char *const chain_switch_args[] = { "--lease-ms", "200", "--max-tries", "12", NULL };

static int ncpus(void)
{
	return libbpf_num_possible_cpus();
}

static void pin(pid_t pid, int cpu)
{
	char cmd[96];

	snprintf(cmd, sizeof(cmd), "taskset -a -p -c %d %d >/dev/null", cpu, pid);
	cr_assert_eq(system(cmd), 0, "pin process %d to CPU %d", pid, cpu);
}

/* The CPUs the store's messages come from: REVOKEs, then grants and ACKs. */
static int revoke_cpu, grant_cpu;

static void up_mq(void)
{
	routed(2);
	lease_ms = 200;		/* the chain suites' (they skip under emulation) */
	snprintf(lease_arg, sizeof(lease_arg), "%u", lease_ms);
	if (time_scale > 1)
		cr_skip_test("ZooKeeper's JVM under software emulation takes minutes to start: "
			     "the chain tests run on the host (make test)");
	if (ncpus() < 2)
		cr_skip_test("needs two CPUs: REVOKE and GRANT on different CPUs");
	topo_up_chain(2, 3, replica_args);
	revoke_cpu = 0;
	grant_cpu = ncpus() - 1;
	pin(topo.rep_pid[0], revoke_cpu);
	pin(topo.rep_pid[2], grant_cpu);
	topo_switch(0, chain_switch_args);
	topo_switch(1, chain_switch_args);
}

TestSuite(takeover_mq, .init = up_mq, .fini = topo_down, .timeout = 180);

/*
 * The same links with one store, pinned to the last CPU: its messages come
 * from there, the flows' packets from every CPU.  No ZooKeeper: it runs in
 * the emulated VM too (make vmtest), on the other kernel.
 */
static void up_mq_store(void)
{
	routed(2);
	if (ncpus() < 2)
		cr_skip_test("needs two CPUs: the store's messages and the packets on different CPUs");
	snprintf(dump_arg, sizeof(dump_arg), "/tmp/tk%d.flows", getpid());
	topo_up_with(2, lease_arg, store_args);
	revoke_cpu = grant_cpu = ncpus() - 1;
	pin(topo.store_pid, grant_cpu);
	topo_switch(0, switch_args);
	topo_switch(1, switch_args);
}

TestSuite(takeover_mq_store, .init = up_mq_store, .fini = down, .timeout = 180);

/* Switch i's data-plane counter `name` on each CPU (vals: ncpus() of them). */
static void per_cpu(unsigned int i, const char *name, uint64_t *vals)
{
	static const char *const names[] = {
#define X(n) #n,
		RP_DP_STATS(X)
#undef X
	};
	int fd = rp_topo_open_pin(&topo, i, "stats");

	cr_assert_geq(fd, 0, "sw%u's stats", i + 1);
	for (uint32_t k = 0; k < __RP_DP_STAT_MAX; k++)
		if (!strcmp(names[k], name))
			cr_assert_eq(bpf_map_lookup_elem(fd, &k, vals), 0);
	close(fd);
}

/* Switch i counted `name` on CPU cpu (-1: on every CPU). */
static void expect_on_cpu(unsigned int i, const char *name, int cpu)
{
	int n = ncpus();
	uint64_t vals[n];

	memset(vals, 0, sizeof(vals));
	per_cpu(i, name, vals);
	for (int c = 0; c < n; c++) {
		fprintf(stderr, "sw%u %s on CPU %d: %llu\n", i + 1, name, c,
			(unsigned long long)vals[c]);
		if (cpu < 0 || c == cpu)
			cr_expect_gt(vals[c], 0, "sw%u's %s on CPU %d", i + 1, name, c);
	}
}

/*
 * A download and 16 short streams; sw1 crashes (or the routes move while
 * it runs) with the inbound packet first; then, for the reroute, back to
 * sw1.  Everything whole, never a flow held by both, and each switch ran
 * its data plane and took the store's messages on every CPU.
 */
static void mq_takeover(bool crash)
{
	unsigned int handed;
	uint64_t min_gap, max_gap, bound_ms = (crash ? lease_ms : 0) + 1000ull * time_scale;
	struct rp_stream s;
	struct dl d;
	int overlaps;

	dl_open(&d);
	cr_assert_eq(rp_stream_open(&s, &topo, 16, 8081), 0);
	for (unsigned int t = 0; t < 1000; t++) {
		dl_step(&d, true);
		rp_stream_step(&s);
		rp_test_sleep_ms(1);
	}
	expect_on_cpu(0, "rx_packets", -1);
	if (crash)
		cr_assert_eq(rp_topo_fail_switch(&topo, 0), 0);
	d.mark_ns = rp_stream_now();
	rp_stream_mark(&s);
	move_routes(&d, FIRST_INBOUND);
	for (unsigned int t = 0; t < 2000; t++) {
		dl_step(&d, true);
		rp_stream_step(&s);
		rp_test_sleep_ms(1);
	}
	if (!crash) {
		overlaps = rp_topo_lease_overlaps(&topo, 0, 1, &handed, &min_gap, &max_gap);
		cr_assert_eq(overlaps, 0, "%d flows held by both switches at once", overlaps);
		cr_assert_geq(handed, 2 + 2 * 16, "%u flows handed over", handed);
		cr_assert_eq(rp_topo_route_via(&topo, 0), 0);
		for (unsigned int t = 0; t < 1500; t++) {
			dl_step(&d, true);
			rp_stream_step(&s);
			rp_test_sleep_ms(1);
		}
		/* revokes from the head's CPU, grants from the tail's, both ways */
		expect_on_cpu(0, "revoke", revoke_cpu);
		expect_on_cpu(1, "revoke", revoke_cpu);
		expect_on_cpu(0, "migrate", grant_cpu);
		/* a chain's messages on every CPU; one store's on its own */
		expect_on_cpu(0, "rx_store", revoke_cpu == grant_cpu ? grant_cpu : -1);
		expect_on_cpu(1, "rx_store", revoke_cpu == grant_cpu ? grant_cpu : -1);
	}
	expect_on_cpu(1, "rx_packets", -1);
	expect_on_cpu(1, "migrate", grant_cpu);
	cr_assert(dl_drain(&d, 5000) && !d.out_of_order && !d.error,
		  "the download arrived whole: %llu of %llu bytes", (unsigned long long)d.received,
		  (unsigned long long)d.sent);
	fprintf(stderr, "takeover_mq: %s: stall %llu ms, whole\n", crash ? "crash" : "reroute",
		(unsigned long long)(d.max_gap_ns / 1000000));
	if (getenv("RP_DEBUG"))
		evidence("after the run");
	cr_assert_lt(d.max_gap_ns / 1000000, bound_ms, "stall %llu ms",
		     (unsigned long long)(d.max_gap_ns / 1000000));
	cr_assert(rp_stream_drain(&s, 5000), "every short stream's message arrives");
	for (unsigned int i = 0; i < s.n; i++)
		cr_assert(!s.c[i].error && !s.c[i].out_of_order, "stream %u whole", i);
	if (!crash) {
		overlaps = rp_topo_lease_overlaps(&topo, 1, 0, &handed, &min_gap, &max_gap);
		cr_assert_eq(overlaps, 0, "%d flows held by both switches at once (back)", overlaps);
	}
	rp_stream_close(&s);
	dl_close(&d);
}

Test(takeover_mq, a_crash_on_multi_queue_links_with_a_chain_keeps_everything_whole)
{
	mq_takeover(true);
}

Test(takeover_mq, a_reroute_and_back_on_multi_queue_links_with_a_chain_never_holds_a_flow_twice)
{
	mq_takeover(false);
}

Test(takeover_mq_store, a_crash_on_multi_queue_links_keeps_everything_whole)
{
	mq_takeover(true);
}

Test(takeover_mq_store, a_reroute_and_back_on_multi_queue_links_never_holds_a_flow_twice)
{
	mq_takeover(false);
}
