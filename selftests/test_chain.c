// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store as a chain of three replicas (docs/CHAIN.md), end to end: real
 * switches (rp-load, XDP NAT) between a client and a server, ZooKeeper,
 * replicas in namespaces of their own, real TCP.  Replicas are killed with
 * SIGKILL and cut off with nftables while connections open, carry data and
 * close (every close is a write through the chain).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rp_test.h"
#include "topo_fixture.h"

#define STEP_MS		2
/* a replica silent this long leaves the chain (its ZooKeeper session) */
#define FAILURE_MS	800

static const char *const replica_args[] = { "--failure-timeout-ms", "800", "--lease-ms", "200",
					    NULL };
static const char *const switch_args[] = { "--lease-ms", "200", "--max-tries", "12", NULL };

static void skip_under_emulation(void)
{
	unsigned int lease_ms = 200, time_scale = 1;

	topo_timing(&lease_ms, &time_scale);
	if (time_scale > 1)
		cr_skip_test("ZooKeeper's JVM under software emulation takes minutes to start: "
			     "the chain tests run on the host (make test)");
}

static void up(void)
{
	skip_under_emulation();
	topo_up_chain(2, 3, replica_args);
	topo_switch(0, switch_args);
	topo_switch(1, switch_args);
}

TestSuite(chain, .init = up, .fini = topo_down, .timeout = 180);

/*
 * Traffic for ms: the long-lived streams step, and short connections open,
 * carry a few counters and close, four at a time.  Returns how many short
 * connections opened.
 */
static unsigned int load_ms(struct rp_stream *s, unsigned int ms)
{
	uint64_t end = rp_stream_now() + ms * 1000000ull;
	unsigned int opened = 0;

	while (rp_stream_now() < end) {
		struct rp_stream c;

		if (!rp_stream_open(&c, &topo, 4, 8081)) {
			opened += c.n;
			for (int i = 0; i < 3; i++)
				rp_stream_step(&c);
		}
		rp_stream_close(&c);
		for (int i = 0; i < 5; i++) {
			rp_stream_step(s);
			rp_test_sleep_ms(STEP_MS);
		}
	}
	return opened;
}

static void expect_intact(struct rp_stream *s)
{
	cr_assert(rp_stream_drain(s, 5000), "every message arrives");
	for (unsigned int i = 0; i < s->n; i++) {
		cr_assert_eq(s->c[i].error, 0, "connection %u broke: %s", i,
			     s->c[i].error > 0 ? strerror(s->c[i].error) : "EOF");
		cr_assert(!s->c[i].out_of_order, "connection %u: bytes out of order", i);
	}
}

/* ACKs switch i released since `before`: writes the chain committed. */
static long long acks_since(unsigned int i, long long before)
{
	return rp_topo_dp_stat(&topo, i, "ack") - before;
}

static void kill_replica(unsigned int r)
{
	cr_assert_eq(rp_topo_stop(&topo.rep_pid[r], true), 128 + SIGKILL, "replica %u killed", r + 1);
}

/*
 * Every write switches 0..nsw-1 saw ACKed on store chain `chain` is at
 * replica r, with its sequence number.
 */
static void expect_acked_writes_at(unsigned int r, unsigned int nsw, unsigned int chain)
{
	for (unsigned int i = 0; i < nsw; i++) {
		unsigned int checked;
		int missing = rp_topo_check_acked(&topo, r, i, chain, &checked);

		cr_assert_eq(missing, 0, "replica %u lacks %d writes sw%u saw ACKed", r + 1,
			     missing, i + 1);
		cr_assert_gt(checked, 0, "sw%u held flows", i + 1);
	}
}

Test(chain, killing_the_middle_head_and_tail_loses_no_acknowledged_write)
{
	unsigned int handed;
	uint64_t min_gap, max_gap;
	long long acks;
	struct rp_stream s;

	cr_assert_eq(rp_stream_open(&s, &topo, 4, 8080), 0);
	cr_assert_gt(load_ms(&s, 1000), 0);

	/* the middle: the head sends down to the tail instead */
	acks = rp_topo_dp_stat(&topo, 0, "ack");
	kill_replica(1);
	cr_assert_gt(load_ms(&s, 2 * FAILURE_MS + 1000), 0);
	cr_assert(topo_wait_role(0, "head", 3000) && topo_wait_role(2, "tail", 3000));
	cr_assert_gt(acks_since(0, acks), 0, "writes went on without the middle");

	/* back under load: a whole copy, then it serves as the tail */
	topo_replica(1, replica_args);
	cr_assert(topo_wait_role(1, "tail", 5000), "the restarted replica joins as the tail");
	cr_assert_eq(rp_topo_replica_stat(&topo, 1, "chain_whole"), 1);
	acks = rp_topo_dp_stat(&topo, 0, "ack");
	cr_assert_gt(load_ms(&s, 1000), 0);
	cr_assert_gt(acks_since(0, acks), 0);
	cr_assert_gt(rp_topo_replica_stat(&topo, 1, "chain_replies"), 0,
		     "the new tail answers the switches");
	cr_assert_gt(rp_topo_replica_stat(&topo, 1, "flows"), 0, "it caught up");

	/* flows move to sw2 by revokes through the chain, then the head dies */
	cr_assert_eq(rp_topo_route_via(&topo, 1), 0);
	rp_stream_mark(&s);
	cr_assert_gt(load_ms(&s, 1000), 0);
	acks = rp_topo_dp_stat(&topo, 1, "ack");
	kill_replica(0);
	cr_assert_gt(load_ms(&s, 2 * FAILURE_MS + 1500), 0);
	cr_assert(topo_wait_role(2, "head", 3000), "the second replica is the head now");
	cr_assert_gt(acks_since(1, acks), 0, "writes went on through the new head");
	cr_assert_gt(topo_agent_stat(1, "head_changes", 1), 0, "sw2 followed the head");

	/* the tail: its predecessor answers the switches itself */
	acks = rp_topo_dp_stat(&topo, 1, "ack");
	kill_replica(1);
	cr_assert_gt(load_ms(&s, 2 * FAILURE_MS + 1000), 0);
	cr_assert(topo_wait_role(2, "alone", 3000));
	cr_assert_gt(acks_since(1, acks), 0, "writes went on without the tail");

	expect_intact(&s);
	expect_acked_writes_at(2, 2, 0);
	cr_assert_eq(rp_topo_lease_overlaps(&topo, 0, 1, &handed, &min_gap, &max_gap), 0,
		     "no flow held by both switches at once");
	cr_assert_gt(handed, 0, "flows moved from sw1 to sw2");
	rp_stream_close(&s);
}

Test(chain, a_partition_isolating_the_head_lets_only_the_rest_go_on)
{
	long long commits, acks, after;
	struct rp_stream s;
	pid_t gone = 0;
	int status = 0;

	cr_assert_eq(rp_stream_open(&s, &topo, 4, 8080), 0);
	cr_assert_gt(load_ms(&s, 500), 0);

	/* the head still hears the switches, but not its peers nor ZooKeeper */
	cr_assert_eq(rp_topo_partition_replica(&topo, 0, true), 0);
	load_ms(&s, 2 * FAILURE_MS + 1000);
	cr_assert(topo_wait_role(1, "head", 3000), "the rest chose a new head");
	cr_assert(topo_wait_role(0, "none", 3000), "the cut-off head stopped serving");

	/* from now on only one side accepts writes */
	commits = rp_topo_replica_stat(&topo, 0, "write_commit");
	acks = rp_topo_dp_stat(&topo, 0, "ack");
	cr_assert_gt(load_ms(&s, 1500), 0);
	rp_test_sleep_ms(1100);	/* one more stats file */
	after = rp_topo_replica_stat(&topo, 0, "write_commit");
	cr_assert_eq(after, commits, "the cut-off head took %lld writes", after - commits);
	cr_assert_gt(acks_since(0, acks), 0, "the new head took the writes");
	cr_assert_gt(rp_topo_replica_stat(&topo, 0, "reject_not_head"), 0,
		     "the cut-off head sent switches away");

	/* healed: its session is gone, so it must not come back as it was */
	cr_assert_eq(rp_topo_partition_replica(&topo, 0, false), 0);
	for (int t = 0; t < 100 && !gone; t++) {
		gone = waitpid(topo.rep_pid[0], &status, WNOHANG);
		if (!gone)
			rp_test_sleep_ms(100);
	}
	cr_assert_eq(gone, topo.rep_pid[0], "the old head exited");
	topo.rep_pid[0] = 0;
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) != 0, "and said it failed");
	cr_assert(rp_topo_wait_log(topo.rep_log[0], "session expired", 100),
		  "the old head learned it left the chain");
	expect_intact(&s);
	expect_acked_writes_at(2, 1, 0);
	rp_stream_close(&s);
}

Test(chain, a_switch_crash_and_a_replica_crash_together_keep_the_streams_whole)
{
	struct rp_stream s;

	cr_assert_eq(rp_stream_open(&s, &topo, 4, 8080), 0);
	load_ms(&s, 500);
	cr_assert_eq(rp_topo_fail_switch(&topo, 0), 0);
	kill_replica(0);
	cr_assert_eq(rp_topo_route_via(&topo, 1), 0);
	rp_stream_mark(&s);
	load_ms(&s, 2 * FAILURE_MS + 2000);
	expect_intact(&s);
	for (unsigned int i = 0; i < s.n; i++)
		cr_assert_neq(s.c[i].first_rx_after_ns, 0, "connection %u moved to sw2", i);
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "migrate"), 8, "sw2 migrated both keys of 4");
	rp_stream_close(&s);
}

/*
 * Two chains share the key space: replicas 1 and 2 form chain "a", replica
 * 3 alone chain "b"; the switches hash each flow to one of them.
 */
static void up_two(void)
{
	static const char *const chains[] = { "a", "a", "b" };

	skip_under_emulation();
	topo_up_chains(2, 3, replica_args, chains);
	topo.store_list = "192.0.2.11:4791+192.0.2.12:4791,192.0.2.13:4791";
	topo_switch(0, switch_args);
	topo_switch(1, switch_args);
}

TestSuite(chains, .init = up_two, .fini = topo_down, .timeout = 120);

Test(chains, flows_spread_over_two_chains_and_survive_the_head_of_one)
{
	struct rp_stream s;
	long long acks;

	cr_assert_eq(rp_stream_open(&s, &topo, 8, 8080), 0);
	cr_assert_gt(load_ms(&s, 1000), 0);
	rp_test_sleep_ms(1100);	/* one more stats file */
	cr_assert_gt(rp_topo_replica_stat(&topo, 1, "flows"), 0, "chain a holds flows");
	cr_assert_gt(rp_topo_replica_stat(&topo, 2, "flows"), 0, "chain b holds flows");
	cr_assert_eq(rp_topo_replica_stat(&topo, 2, "chain_version"), 2,
		     "chain b never saw chain a's replicas");

	acks = rp_topo_dp_stat(&topo, 0, "ack");
	kill_replica(0);
	cr_assert_gt(load_ms(&s, 2 * FAILURE_MS + 1500), 0);
	cr_assert(topo_wait_role(1, "alone", 3000), "chain a goes on with replica 2");
	cr_assert_gt(acks_since(0, acks), 0);
	expect_intact(&s);
	expect_acked_writes_at(1, 1, 0);
	expect_acked_writes_at(2, 1, 1);
	rp_stream_close(&s);
}
