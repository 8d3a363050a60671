// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Churn (issue 17): short TCP connections through one switch and a real
 * rp-store, all to one server address and port, with small bounds (a
 * 512-port NAT range, --max-flows 4096 on both sides) and short timeouts.
 * Every connection must succeed, nothing may be refused for room, and once
 * traffic stops the switch's map and the store must both return to zero
 * flows within the longest timeout and a few sweeps.
 *
 * RP_CHURN_CONNS sets the count (default 3000 here; `make churn` runs a
 * million, docs/TESTING.md).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "rp_test.h"
#include "topo_fixture.h"
#include "xdp_fixture.h"

#define SERVER_PORT	7000
/* timeouts: the TCP ones a connection passes through, short; the rest long */
#define TIMEOUTS	"tcp_syn_sent=2,tcp_syn_recv=2,tcp_established=3,tcp_fin_wait=0.5," \
			"tcp_close_wait=0.5,tcp_last_ack=0.5,tcp_time_wait=0.5,tcp_close=0.5," \
			"udp=1,udp_stream=1,negative=0.5"
#define LONGEST_S	3

static char stats_path[96];
static unsigned int lease_ms = 200, time_scale = 1;
static char lease_arg[16];

static unsigned long conns(void)
{
	const char *s = getenv("RP_CHURN_CONNS");
	unsigned long n = s ? strtoul(s, NULL, 10) : 0;

	return n ? n : 3000;
}

/* The store's counter `name` from its stats file (rewritten every second), or -1. */
static long long store_stat(const char *name)
{
	return rp_topo_file_stat(stats_path, name);
}

/*
 * One switch running `app_args` (NULL: topo's NAT) with switch_args, and
 * rp-store with its stats file and `max_flows` ("0": its default).
 */
static void start(const char *const *app_args, const char *max_flows,
		  const char *const *switch_args)
{
	static const char *store_args[8];

	topo_timing(&lease_ms, &time_scale);
	snprintf(lease_arg, sizeof(lease_arg), "%u", lease_ms);
	snprintf(stats_path, sizeof(stats_path), "/tmp/rp-churn-%d.stats", getpid());
	unlink(stats_path);
	store_args[0] = "--stats-file";
	store_args[1] = stats_path;
	store_args[2] = "--orphan-timeout";
	store_args[3] = "5";
	store_args[4] = strcmp(max_flows, "0") ? "--max-flows" : NULL;
	store_args[5] = max_flows;
	store_args[6] = NULL;
	topo_up_with(1, lease_arg, store_args);
	topo.app_args = app_args;
	topo_switch(0, switch_args);
}

static void up(const char *const *app_args)
{
	static const char *const switch_args[] = {
		"--timeout", TIMEOUTS, "--max-flows", "4096", NULL,
	};

	start(app_args, "4096", switch_args);
}

static void down(void)
{
	topo_down();
	unlink(stats_path);
}

static void nat_up(void)
{
	static const char *const nat[] = { "--app", "nat", "--nat-int", "10.1.0.0/24",
					   "--nat-ext", RP_TOPO_EXT, "--nat-ports", "20000-20511",
					   "--nat-switches", "1", NULL };

	up(nat);
}

static void fw_up(void)
{
	static const char *const fw[] = { "--app", "fw", "--fw-int", "10.1.0.0/24", NULL };

	up(fw);
}

static void churn(unsigned long n)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(SERVER_PORT) };
	int one = 1, lfd = rp_topo_socket(topo.ns_server, AF_INET, SOCK_STREAM);
	long long peak_switch = 0, peak_store = 0, v;
	struct timespec t0, t1;
	unsigned long failed = 0;
	const char *first = NULL;

	cr_assert_geq(lfd, 0);
	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(lfd, (struct sockaddr *)&srv, sizeof(srv)), 0);
	cr_assert_eq(listen(lfd, 128), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (unsigned long i = 0; i < n; i++) {
		const char *err = rp_topo_short_conn(&topo, lfd, &srv, 5000 * (int)time_scale);

		if (err) {
			failed++;
			if (!first)
				first = err;
		}
		if (i % 500 == 0) {
			v = rp_topo_agent_stat(&topo, 0, "flows_entries");
			peak_switch = v > peak_switch ? v : peak_switch;
			v = store_stat("flows");
			peak_store = v > peak_store ? v : peak_store;
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	close(lfd);
	fprintf(stderr, "churn: %lu connections in %.1f s (%.0f/s), %lu failed; peak flows "
		"%lld on the switch, %lld in the store\n", n,
		(double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9,
		n / ((double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9), failed,
		peak_switch, peak_store);
	cr_assert_eq(failed, 0, "%lu of %lu connections failed, the first: %s", failed, n, first);
	cr_assert_eq(rp_topo_dp_stat(&topo, 0, "drop_table_full"), 0);
	cr_assert_leq(store_stat("reject_table_full"), 0, "the store refused no flow for room");
}

/* Both sides back to no flow within the longest timeout and a few sweeps. */
static void expect_drained(void)
{
	long long sw = -1, st = -1;
	int ms;

	for (ms = 0; ms < (LONGEST_S + 6) * 1000 * (int)time_scale; ms += 250) {
		sw = rp_topo_agent_stat(&topo, 0, "flows_entries");
		st = store_stat("flows");
		if (sw == 0 && st == 0)
			break;
		rp_test_sleep_ms(250);
	}
	fprintf(stderr, "churn: drained after %d ms: %lld flows on the switch, %lld in the store\n",
		ms, sw, st);
	cr_assert_eq(sw, 0, "the switch's map empties: %lld entries left", sw);
	cr_assert_eq(st, 0, "the store empties: %lld flows left", st);
	cr_assert_gt(rp_topo_agent_stat(&topo, 0, "expires_sent"), 0);
}

TestSuite(churn, .timeout = 600);

Test(churn, nat_thousands_of_short_connections_to_one_server_all_succeed_and_drain,
     .init = nat_up, .fini = down)
{
	churn(conns());
	expect_drained();
}

Test(churn, fw_short_connections_all_succeed_and_drain, .init = fw_up, .fini = down)
{
	churn(conns() / 3);
	expect_drained();
}

/*
 * Floods (issue 17): packets for flows no one has, at a rate far above
 * --lookup-rate.  The store must see at most the budget (and a burst), a
 * key the store said it lacks is not asked about again while its negative
 * entry lives, and a live connection goes on meanwhile.
 */
#define LOOKUP_RATE	200
#define FLOOD		20000

static void flood_up(const char *const *app_args)
{
	static char rate[16];
	static const char *switch_args[] = { "--lookup-rate", rate, "--timeout", "negative=30",
					     NULL };

	snprintf(rate, sizeof(rate), "%u", LOOKUP_RATE);
	start(app_args, "0", switch_args);
}

static void nat_flood_up(void)
{
	flood_up(NULL);	/* the NAT, topo's default */
}

static void fw_flood_up(void)
{
	static const char *const fw[] = { "--app", "fw", "--fw-int", "10.1.0.0/24",
					  "--fw-allow", "tcp:22", NULL };

	flood_up(fw);
}

/* The store's lease requests, once its stats file is rewritten after now. */
static long long store_requests(void)
{
	rp_test_sleep_ms(1300);
	return store_stat("rx_lease_req");
}

static double since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* What the store saw of a flood that took `secs`: the budget, its burst, and slack. */
static void expect_budget(long long before, long long after, double secs)
{
	long long bound = (long long)(LOOKUP_RATE * (secs + 1.5)) + LOOKUP_RATE / 5 + 20;

	fprintf(stderr, "flood: %lld lease requests at the store in %.2f s (bound %lld)\n",
		after - before, secs, bound);
	cr_assert_leq(after - before, bound, "the store saw %lld lookups, more than %lld",
		      after - before, bound);
	cr_assert_gt(rp_topo_dp_stat(&topo, 0, "drop_lookup_rate"), 0);
}

/* UDP to the NAT's address, each datagram to another port: each a flow no one has. */
static void udp_flood(unsigned int from_port)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(5353) };
	int one = 1, fd = rp_topo_socket(topo.ns_server, AF_INET, SOCK_DGRAM);

	cr_assert_geq(fd, 0);
	/* one source port: each flood's keys are the last one's */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
	inet_pton(AF_INET, RP_TOPO_EXT, &to.sin_addr);
	for (unsigned int i = 0; i < FLOOD; i++) {
		to.sin_port = htons((uint16_t)(from_port + i % 20000));
		sendto(fd, "x", 1, 0, (struct sockaddr *)&to, sizeof(to));
	}
	close(fd);
}

Test(flood, unsolicited_packets_at_the_nat_cost_the_store_a_bounded_lookup_rate,
     .init = nat_flood_up, .fini = down, .timeout = 120)
{
	struct conn c = topo_connect(8080);
	long long before, after, neg;
	struct timespec t0;

	topo_echo(&c);
	before = store_requests();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	udp_flood(30000);
	topo_echo(&c);
	expect_budget(before, store_requests(), since(&t0));
	cr_assert_gt(rp_topo_dp_stat(&topo, 0, "no_flow"), 0, "the store's no_flow noted");

	/* the same keys again: those the store answered are not asked about again */
	neg = rp_topo_dp_stat(&topo, 0, "drop_negative");
	before = store_stat("rx_lease_req");
	clock_gettime(CLOCK_MONOTONIC, &t0);
	udp_flood(30000);
	after = store_requests();
	cr_assert_gt(rp_topo_dp_stat(&topo, 0, "drop_negative") - neg, 0);
	expect_budget(before, after, since(&t0));
	topo_echo(&c);
	close(c.client);
	close(c.server);
}

/* SYNs to the inside host's port 22 from FLOOD spoofed outside sources. */
static void syn_flood(void)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	int fd = rp_topo_socket_proto(topo.ns_server, AF_INET, SOCK_RAW, IPPROTO_RAW);
	uint8_t pkt[40];

	cr_assert_geq(fd, 0, "raw socket: %s", strerror(-fd));
	inet_pton(AF_INET, RP_TOPO_CLIENT, &to.sin_addr);
	for (unsigned int i = 0; i < FLOOD; i++) {
		uint32_t src = htonl(0xc6336400u + 10 + i % 200);	/* 198.51.100.10-209 */
		uint8_t pseudo[12 + 20];

		memset(pkt, 0, sizeof(pkt));
		pkt[0] = 0x45;
		pkt[3] = sizeof(pkt);
		pkt[6] = 0x40;			/* DF */
		pkt[8] = 64;
		pkt[9] = IPPROTO_TCP;
		memcpy(pkt + 12, &src, 4);
		memcpy(pkt + 16, &to.sin_addr, 4);
		pkt[20] = (uint8_t)((1024 + i) >> 8);
		pkt[21] = (uint8_t)(1024 + i);
		pkt[23] = 22;
		pkt[32] = 0x50;			/* data offset 5 */
		pkt[33] = 0x02;			/* SYN */
		pkt[34] = 0xff;			/* window */
		memcpy(pseudo, pkt + 12, 8);
		pseudo[8] = 0;
		pseudo[9] = IPPROTO_TCP;
		pseudo[10] = 0;
		pseudo[11] = 20;
		memcpy(pseudo + 12, pkt + 20, 20);
		{
			uint16_t c = fx_csum(pseudo, sizeof(pseudo));

			memcpy(pkt + 36, &c, 2);
		}
		sendto(fd, pkt, sizeof(pkt), 0, (struct sockaddr *)&to, sizeof(to));
	}
	close(fd);
}

Test(flood, a_spoofed_syn_flood_at_an_open_port_costs_the_store_a_bounded_rate,
     .init = fw_flood_up, .fini = down, .timeout = 120)
{
	struct conn c = topo_connect(8080);
	long long before;
	struct timespec t0;

	topo_echo(&c);
	before = store_requests();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	syn_flood();
	topo_echo(&c);
	expect_budget(before, store_requests(), since(&t0));
	close(c.client);
	close(c.server);
}
