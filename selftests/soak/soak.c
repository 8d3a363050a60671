// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The fault soak (`make soak`, docs/TESTING.md): real TCP traffic from the
 * kernel's stack through two switches running the NAT, with a chain of
 * three rp-store replicas, while a driver with a seeded random generator
 * crashes and restarts switches and replicas and moves the routes, and the
 * store links lose, duplicate and reorder datagrams the whole time.  At the
 * end:
 *   - every long-lived connection's bytes arrived whole and in order;
 *   - no flow was held by both switches at one instant (checked before each
 *     crashed switch comes back, and at the end);
 *   - every write a switch saw acknowledged is at the chain's tail;
 *   - counters account for every request: each replica's received datagrams
 *     are each in exactly one outcome counter, and each switch's write copies
 *     are acked, abandoned, given up or still outstanding.
 * SOAK_SECONDS (default 180) bounds the faults' phase; SOAK_SEED picks the
 * sequence (printed, so a failing run can be replayed).
 */
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "link_impair.skel.h"
#include "rp_test.h"
#include "topo_fixture.h"
#include "veth_peer.skel.h"

#define FAILURE_MS	800
#define STREAMS		16

static const char *const replica_args[] = { "--failure-timeout-ms", "800", "--lease-ms", "200",
					    NULL };
static const char *const switch_args[] = { "--lease-ms", "200", "--max-tries", "12", NULL };

static struct link_impair *imp[RP_TOPO_SWITCHES];
static unsigned int seed;

static void up(void)
{
	const char *s = getenv("SOAK_SEED");

	if (getenv("RP_TEST_TIME_SCALE") && atoi(getenv("RP_TEST_TIME_SCALE")) > 1)
		cr_skip_test("the soak needs ZooKeeper's JVM, minutes to start under emulation");
	seed = s && *s ? (unsigned int)strtoul(s, NULL, 0) : (unsigned int)time(NULL);
	srand(seed);
	topo_up_chain(2, 3, replica_args);
	topo_switch(0, switch_args);
	topo_switch(1, switch_args);
}

static void down(void)
{
	for (int i = 0; i < RP_TOPO_SWITCHES; i++)
		if (imp[i])
			link_impair__destroy(imp[i]);
	topo_down();
}

TestSuite(soak, .init = up, .fini = down, .timeout = 900);

/* Faults on both store links for the whole run: loss one way, duplicates and reordering both. */
static void impair_links(void)
{
	for (unsigned int i = 0; i < RP_TOPO_SWITCHES; i++)
		imp[i] = topo_impair_store_link(i, 20, 11, 7);
}

/* Traffic for ms: the streams step; short connections open, carry counters and close. */
static void load_ms(struct rp_stream *s, unsigned int ms, unsigned int *shorts)
{
	uint64_t end = rp_stream_now() + ms * 1000000ull;

	while (rp_stream_now() < end) {
		struct rp_stream c;

		if (!rp_stream_open(&c, &topo, 2, 8081)) {
			for (int i = 0; i < 3; i++)
				rp_stream_step(&c);
			*shorts += c.n;
		}
		rp_stream_close(&c);
		for (int i = 0; i < 5; i++) {
			rp_stream_step(s);
			rp_test_sleep_ms(10);
		}
	}
}

struct world {
	unsigned int routed;			/* the switch the routes go through */
	bool sw_up[RP_TOPO_SWITCHES];
	uint64_t sw_back_ns[RP_TOPO_SWITCHES];	/* when a crashed one restarts */
	bool rep_up[RP_TOPO_REPLICAS];
	uint64_t rep_back_ns[RP_TOPO_REPLICAS];
	unsigned int crashes, reroutes, kills, handed;
};

static void check_no_double_lease(struct world *w)
{
	unsigned int handed;
	uint64_t min_gap, max_gap;

	cr_assert_eq(rp_topo_lease_overlaps(&topo, 0, 1, &handed, &min_gap, &max_gap), 0,
		     "a flow held by both switches at once (seed %u)", seed);
	w->handed += handed;
}

static void bring_back(struct world *w, uint64_t now, bool all)
{
	for (unsigned int i = 0; i < RP_TOPO_SWITCHES; i++) {
		if (w->sw_up[i] || (!all && now < w->sw_back_ns[i]))
			continue;
		/* its lease records still pinned: compare them before they go */
		check_no_double_lease(w);
		cr_assert_eq(rp_topo_restore_switch(&topo, i), 0);
		topo_switch(i, switch_args);
		w->sw_up[i] = true;
		cr_log_info("soak: sw%u back", i + 1);
	}
	for (unsigned int r = 0; r < RP_TOPO_REPLICAS; r++) {
		if (w->rep_up[r] || (!all && now < w->rep_back_ns[r]))
			continue;
		topo_replica(r, replica_args);
		w->rep_up[r] = true;
		cr_log_info("soak: replica %u back", r + 1);
	}
}

static unsigned int replicas_up(const struct world *w)
{
	unsigned int n = 0;

	for (unsigned int r = 0; r < RP_TOPO_REPLICAS; r++)
		n += w->rep_up[r];
	return n;
}

/* One random fault, if the world allows it: one switch and two replicas always stay. */
static void fault(struct world *w, struct rp_stream *s, uint64_t now)
{
	unsigned int other = !w->routed, r;

	switch (rand() % 4) {
	case 0:	/* the routed switch crashes; the routes move to the other */
		if (!w->sw_up[other])
			return;
		cr_assert_eq(rp_topo_fail_switch(&topo, w->routed), 0);
		cr_assert_eq(rp_topo_route_via(&topo, other), 0);
		w->sw_up[w->routed] = false;
		w->sw_back_ns[w->routed] = now + 3000000000ull;
		cr_log_info("soak: sw%u crashed, routes via sw%u", w->routed + 1, other + 1);
		w->routed = other;
		w->crashes++;
		rp_stream_mark(s);
		return;
	case 1:	/* a live reroute */
		if (!w->sw_up[other])
			return;
		cr_assert_eq(rp_topo_route_via(&topo, other), 0);
		cr_log_info("soak: routes via sw%u", other + 1);
		w->routed = other;
		w->reroutes++;
		return;
	case 2:	/* a replica dies (SIGKILL); it restarts a while later */
		if (replicas_up(w) < 3)
			return;
		r = (unsigned int)rand() % RP_TOPO_REPLICAS;
		cr_assert_eq(rp_topo_stop(&topo.rep_pid[r], true), 128 + SIGKILL);
		w->rep_up[r] = false;
		w->rep_back_ns[r] = now + (2 * FAILURE_MS + 2000) * 1000000ull;
		cr_log_info("soak: replica %u killed", r + 1);
		w->kills++;
		return;
	default:	/* traffic only */
		return;
	}
}

static long long stat_of(unsigned int r, const char *name)
{
	long long v = rp_topo_replica_stat(&topo, r, name);

	return v < 0 ? 0 : v;
}

/* Each replica's received datagrams are each in one outcome counter (docs/STORE.md). */
static void expect_store_accounted(void)
{
	static const char *const types[] = { "lease_req", "grant", "migrate", "heartbeat",
					     "heartbeat_ack", "write", "snapshot", "ack",
					     "revoke", "revoke_ack", "reject" };
	static const char *const drops[] = { "truncated", "oversized", "bad_version", "bad_type",
					     "bad_app", "bad_flags", "bad_len", "bad_key",
					     "bad_switch", "bad_reason", "bad_direction",
					     "bad_mac" };

	long long total = 0;

	rp_test_sleep_ms(1200);	/* a fresh stats file */
	for (unsigned int r = 0; r < RP_TOPO_REPLICAS; r++) {
		long long rx = stat_of(r, "rx_datagrams"), sum;
		char name[48];

		sum = stat_of(r, "misrouted") + stat_of(r, "not_allowed");
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
			snprintf(name, sizeof(name), "rx_%s", types[t]);
			sum += stat_of(r, name);
		}
		for (size_t d = 0; d < sizeof(drops) / sizeof(drops[0]); d++) {
			snprintf(name, sizeof(name), "drop_%s", drops[d]);
			sum += stat_of(r, name);
		}
		/*
		 * One file, written while datagrams arrive: a few may be in
		 * rx_datagrams and not yet in their outcome.  A replica restarted
		 * late, not the head, may have received none.
		 */
		cr_assert(rx - sum >= 0 && rx - sum <= 50,
			  "replica %u: %lld datagrams, %lld in outcome counters (seed %u)", r + 1, rx,
			  sum, seed);
		total += rx;
	}
	cr_assert_gt(total, 0, "the replicas served requests");
}

/* Each switch's write copies: acked, abandoned, given up, or still in the ring. */
static void expect_writes_accounted(void)
{
	for (unsigned int i = 0; i < RP_TOPO_SWITCHES; i++) {
		long long tracked, done;

		rp_test_sleep_ms(PUBLISH_MS);	/* rp-load's newest counters */
		tracked = rp_topo_agent_stat(&topo, i, "writes_tracked");
		done = rp_topo_agent_stat(&topo, i, "writes_acked") +
		       rp_topo_agent_stat(&topo, i, "writes_abandoned") +
		       rp_topo_agent_stat(&topo, i, "gave_up") +
		       rp_topo_agent_stat(&topo, i, "outstanding");
		cr_assert_eq(tracked, done, "sw%u: %lld write copies, %lld accounted for (seed %u)",
			     i + 1, tracked, done, seed);
	}
}

Test(soak, traffic_survives_random_crashes_reroutes_and_faults)
{
	const char *d = getenv("SOAK_SECONDS");
	uint64_t end, seconds = d && atoi(d) > 0 ? (uint64_t)atoi(d) : 180;
	struct world w = { .routed = 0, .sw_up = { true, true },
			   .rep_up = { true, true, true } };
	unsigned int shorts = 0;
	struct rp_stream s;

	cr_log_info("soak: seed %u (SOAK_SEED=%u replays it), %llu s of faults", seed, seed,
		    (unsigned long long)seconds);
	impair_links();
	cr_assert_eq(rp_stream_open(&s, &topo, STREAMS, 8080), 0);
	load_ms(&s, 1000, &shorts);
	end = rp_stream_now() + seconds * 1000000000ull;
	while (rp_stream_now() < end) {
		uint64_t now = rp_stream_now();

		bring_back(&w, now, false);
		fault(&w, &s, now);
		load_ms(&s, 1500 + (unsigned int)rand() % 1500, &shorts);
	}
	/* everything back, faults off, traffic settles */
	bring_back(&w, rp_stream_now(), true);
	for (int i = 0; i < RP_TOPO_SWITCHES; i++) {
		store_link[i]->bss->drop_every = 0;
		imp[i]->bss->dup_every = 0;
		imp[i]->bss->reorder_every = 0;
	}
	load_ms(&s, 2 * FAILURE_MS + 2000, &shorts);
	cr_log_info("soak: %u crashes, %u reroutes, %u replica kills, %u short connections, "
		    "%u flows handed between switches",
		    w.crashes, w.reroutes, w.kills, shorts, w.handed);

	cr_assert(rp_stream_drain(&s, 10000), "every message arrives (seed %u)", seed);
	for (unsigned int i = 0; i < s.n; i++) {
		cr_assert_eq(s.c[i].error, 0, "connection %u broke: %s (seed %u)", i,
			     s.c[i].error > 0 ? strerror(s.c[i].error) : "EOF", seed);
		cr_assert(!s.c[i].out_of_order, "connection %u: bytes out of order (seed %u)", i,
			  seed);
		cr_assert_eq(s.c[i].received, s.c[i].sent);
	}
	check_no_double_lease(&w);
	for (unsigned int i = 0; i < RP_TOPO_SWITCHES; i++) {
		unsigned int checked;
		unsigned int tail = 0;
		char role[16];

		for (unsigned int r = 0; r < RP_TOPO_REPLICAS; r++)
			if (rp_topo_replica_role(&topo, r, role, sizeof(role)) &&
			    (!strcmp(role, "tail") || !strcmp(role, "alone")))
				tail = r;
		cr_assert_eq(rp_topo_check_acked(&topo, tail, i, 0, &checked), 0,
			     "the tail lacks writes sw%u saw ACKed (seed %u)", i + 1, seed);
	}
	expect_writes_accounted();
	expect_store_accounted();
	cr_assert_gt(w.crashes + w.reroutes + w.kills, 0, "the driver made faults");
	rp_stream_close(&s);
}
