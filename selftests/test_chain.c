// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store as a chain of three replicas (docs/CHAIN.md), end to end: real
 * switches (rp-load, XDP NAT) between a client and a server, ZooKeeper,
 * replicas in namespaces of their own, real TCP.  Replicas are killed with
 * SIGKILL and cut off with nftables while connections open, carry data and
 * close (every close is a write through the chain).
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
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
 * replica r, with its sequence number.  A switch whose flows all moved to
 * another deletes what it gave up after a quarantine (docs/DATAPLANE.md,
 * "Expiry"): the switches together, not each, must have held some.
 */
static void expect_acked_writes_at(unsigned int r, unsigned int nsw, unsigned int chain)
{
	unsigned int total = 0;

	for (unsigned int i = 0; i < nsw; i++) {
		unsigned int checked;
		int missing = rp_topo_check_acked(&topo, r, i, chain, &checked);

		cr_assert_eq(missing, 0, "replica %u lacks %d writes sw%u saw ACKed", r + 1,
			     missing, i + 1);
		total += checked;
	}
	cr_assert_gt(total, 0, "the switches held flows");
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

/*
 * A flow's delete goes down the chain like any change: the test speaks the
 * protocol to the head itself (a switch of id 9 in the store namespace),
 * with the tail stopped for a while, and no rp-load.
 */
static void up_replicas(void)
{
	skip_under_emulation();
	topo_up_chain(1, 3, replica_args);
}

TestSuite(chain_expire, .init = up_replicas, .fini = topo_down, .timeout = 120);

/* Waits up to ms for replica r's stats file to show `name` == want. */
static bool wait_replica_stat(unsigned int r, const char *name, long long want, int ms)
{
	for (int t = 0; t < ms; t += 100) {
		if (rp_topo_replica_stat(&topo, r, name) == want)
			return true;
		rp_test_sleep_ms(100);
	}
	fprintf(stderr, "replica %u: %s is %lld, not %lld\n", r + 1, name,
		rp_topo_replica_stat(&topo, r, name), want);
	return false;
}

/* kill() returns before the group stop: waits until every thread of pid is stopped. */
static bool wait_stopped(pid_t pid, int ms)
{
	char dir[64], path[64 + 8 + sizeof(((struct dirent *)0)->d_name)], stat[256];

	snprintf(dir, sizeof(dir), "/proc/%d/task", (int)pid);
	for (int t = 0; t < ms; t++) {
		bool all = true;
		struct dirent *e;
		DIR *d = opendir(dir);

		if (!d)
			return false;
		while (all && (e = readdir(d))) {
			FILE *f;
			char *state;

			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
			f = fopen(path, "r");
			if (!f)
				continue;
			/* "tid (comm) S ...": the state follows the last ')' */
			state = fgets(stat, sizeof(stat), f) ? strrchr(stat, ')') : NULL;
			all = state && state[1] == ' ' && state[2] == 'T';
			fclose(f);
		}
		closedir(d);
		if (all)
			return true;
		rp_test_sleep_ms(1);
	}
	return false;
}

Test(chain_expire, an_expire_is_answered_once_the_tail_has_the_delete)
{
	struct rp_sockaddr head;
	struct rp_test_switch sw;
	struct rp_msg_view v;
	uint16_t gen;

	cr_assert_eq(rp_addr_parse("192.0.2.11:4791", &head), 0);
	rp_test_switch_open(&sw, 9, &head);
	close(sw.fd);
	sw.fd = rp_topo_socket(topo.ns_store, AF_INET, SOCK_DGRAM);
	cr_assert_geq(sw.fd, 0, "a socket in the store namespace: %s", strerror(-sw.fd));

	rp_test_heartbeat(&sw);
	v = rp_test_msg(RP_MSG_LEASE_REQ, sw.id, 1, sw.epoch);
	rp_test_set_state(&v, "v0");
	rp_test_send(&sw, &v);
	rp_test_expect(&sw, RP_MSG_GRANT, &v, 2000);
	gen = v.gen;
	for (unsigned int r = 0; r < 3; r++)
		cr_assert(wait_replica_stat(r, "flows", 1, 3000), "replica %u has the flow", r + 1);

	/* the tail stopped (well inside its ZooKeeper timeout): no answer */
	cr_assert_eq(kill(topo.rep_pid[2], SIGSTOP), 0);
	cr_assert(wait_stopped(topo.rep_pid[2], 200), "the tail stopped");
	v = rp_test_msg(RP_MSG_EXPIRE, sw.id, 1, sw.epoch);
	v.gen = gen;
	rp_test_send(&sw, &v);
	cr_assert_eq(rp_test_recv(&sw, &v, FAILURE_MS / 3), -ETIMEDOUT,
		     "answered (%s) before the tail had the delete", rp_msg_type_name(v.type));
	cr_assert_eq(kill(topo.rep_pid[2], SIGCONT), 0);
	rp_test_expect(&sw, RP_MSG_EXPIRE_ACK, &v, 2000);
	cr_assert_eq(v.gen, gen);
	cr_assert_eq(v.epoch, sw.epoch);
	cr_assert_eq(rp_test_flow_of(&v.key), 1);

	for (unsigned int r = 0; r < 3; r++)
		cr_assert(wait_replica_stat(r, "flows", 0, 3000), "replica %u deleted it", r + 1);
	cr_assert_eq(rp_topo_replica_stat(&topo, 0, "expire_deleted"), 1);
	cr_assert_eq(rp_topo_replica_stat(&topo, 1, "chain_deletes_applied"), 1);
	cr_assert_eq(rp_topo_replica_stat(&topo, 2, "chain_deletes_applied"), 1);
	cr_assert(topo_wait_role(2, "tail", 1000), "the stopped tail stayed in the chain");

	/* a resent EXPIRE: gone everywhere, so no_flow naming the holding */
	v = rp_test_msg(RP_MSG_EXPIRE, sw.id, 1, sw.epoch);
	v.gen = gen;
	rp_test_send(&sw, &v);
	rp_test_expect(&sw, RP_MSG_REJECT, &v, 2000);
	cr_assert_eq(v.reason, RP_REJ_NO_FLOW);
	cr_assert_eq(v.gen, gen);
	rp_test_switch_close(&sw);
}
