// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The real rp-store binary on an ephemeral loopback port, driven over UDP by
 * the test acting as switches.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flow_table.h"
#include "rp_test.h"

#define LEASE_MS	100	/* start_short_lease */

static struct rp_test_store st;
static struct rp_test_switch sw1, sw2;

static void start(const char *const *args)
{
	rp_test_store_start(&st, args);
	rp_test_switch_open(&sw1, 1, &st.addr);
	rp_test_switch_open(&sw2, 2, &st.addr);
}

/* Long enough that a loaded machine never lapses a session by accident. */
static void start_default(void)
{
	static const char *const args[] = { "--lease-ms", "1000", NULL };

	start(args);
}

/* For the tests about lapses. */
static void start_short_lease(void)
{
	static const char *const args[] = { "--lease-ms", "100", NULL };

	start(args);
}

static void stop(void)
{
	rp_test_switch_close(&sw1);
	rp_test_switch_close(&sw2);
	if (st.pid > 0)
		cr_expect_eq(rp_test_store_stop(&st), 0, "rp-store exits 0 on SIGTERM");
}

TestSuite(store, .init = start_default, .fini = stop, .timeout = 60);

/* The packet a switch sends along: its own bytes, so echoes can be told apart. */
struct tagged_pkt {
	uint8_t bytes[48];
};

static struct tagged_pkt tag(uint16_t sw, uint32_t n)
{
	struct tagged_pkt p;

	for (size_t i = 0; i < sizeof(p.bytes); i++)
		p.bytes[i] = (uint8_t)(sw * 31 + n * 7 + i);
	return p;
}

static void request(struct rp_test_switch *sw, uint32_t flow, const char *proposal,
		    const struct tagged_pkt *pkt)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_LEASE_REQ, sw->id, flow, sw->epoch);

	if (proposal)
		rp_test_set_state(&v, proposal);
	if (pkt)
		rp_test_set_pkt(&v, pkt->bytes, sizeof(pkt->bytes));
	rp_test_send(sw, &v);
}

static void write_seq(struct rp_test_switch *sw, uint32_t flow, uint32_t seq)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_WRITE, sw->id, flow, sw->epoch);
	struct tagged_pkt pkt = tag(sw->id, seq);
	char state[RP_STATE_MAX];

	snprintf(state, sizeof(state), "state-%u", seq);
	v.seq = seq;
	v.gen = sw->gen[flow];
	rp_test_set_state(&v, state);
	rp_test_set_pkt(&v, pkt.bytes, sizeof(pkt.bytes));
	rp_test_send(sw, &v);
}

static void expect_state(const struct rp_msg_view *v, const char *state, uint32_t seq)
{
	cr_assert_eq(v->seq, seq, "seq %u, expected %u", v->seq, seq);
	cr_assert_eq(v->state_len, strlen(state));
	cr_assert_arr_eq(v->state, state, strlen(state), "state '%.*s', expected '%s'",
			 v->state_len, v->state, state);
}

static void expect_echo(const struct rp_msg_view *v, const struct tagged_pkt *pkt)
{
	cr_assert_eq(v->pkt_len, sizeof(pkt->bytes));
	cr_assert_arr_eq(v->pkt, pkt->bytes, sizeof(pkt->bytes), "the packet is echoed");
}

/* Takes flow `flow` for sw with a fresh session; returns nothing. */
static void take_new_flow(struct rp_test_switch *sw, uint32_t flow, const char *proposal)
{
	struct tagged_pkt pkt = tag(sw->id, flow);
	struct rp_msg_view v;

	request(sw, flow, proposal, &pkt);
	rp_test_expect(sw, RP_MSG_GRANT, &v, 2000);
	expect_state(&v, proposal, 0);
	expect_echo(&v, &pkt);
	cr_assert_eq(v.epoch, sw->epoch);
}

Test(store, heartbeat_then_grant_with_proposal)
{
	struct rp_msg_view v;
	uint32_t epoch;

	request(&sw1, 1, "p", NULL);
	rp_test_expect(&sw1, RP_MSG_REJECT, &v, 2000);
	cr_assert_eq(v.reason, RP_REJ_NO_SESSION);

	rp_test_heartbeat(&sw1);
	epoch = sw1.epoch;
	take_new_flow(&sw1, 1, "nat 198.51.100.1:40001");
	rp_test_heartbeat(&sw1);
	cr_assert_eq(sw1.epoch, epoch, "heartbeats inside the lease keep the session");
	cr_assert_eq(rp_test_store_wait_stat(&st, "grant", 1), 1);
	cr_assert_eq(rp_test_store_wait_stat(&st, "sessions_live", 1), 1);
}

/*
 * Writes 1..N go out in windows, shuffled, some lost and some duplicated, as
 * UDP may deliver them.  One shard on loopback keeps their order, so the
 * expected reply to each follows from the ones before.
 */
Test(store, write_ordering_with_loss_reordering_and_duplicates)
{
	enum { N = 400, WINDOW = 8 };
	uint32_t committed = 0, acks = 0, stale = 0, dups = 0;
	uint32_t sent[WINDOW * 2];
	struct rp_msg_view v;
	char state[32];

	rp_test_heartbeat(&sw1);
	take_new_flow(&sw1, 5, "state-0");
	srand(7);
	for (uint32_t base = 1; base <= N; base += WINDOW) {
		unsigned int n = 0;

		for (uint32_t seq = base; seq < base + WINDOW; seq++) {
			int r = rand() % 10;

			if (r == 0)
				continue;	/* lost */
			sent[n++] = seq;
			if (r == 1)
				sent[n++] = seq;	/* duplicated */
		}
		for (unsigned int i = n; i > 1; i--) {	/* reordered */
			unsigned int j = (unsigned int)rand() % i;
			uint32_t t = sent[i - 1];

			sent[i - 1] = sent[j];
			sent[j] = t;
		}
		for (unsigned int i = 0; i < n; i++)
			write_seq(&sw1, 5, sent[i]);
		for (unsigned int i = 0; i < n; i++) {
			struct tagged_pkt pkt = tag(1, sent[i]);

			cr_assert_eq(rp_test_recv(&sw1, &v, 2000), 0, "reply to seq %u", sent[i]);
			if (rp_seq_after(sent[i], committed) || sent[i] == committed) {
				cr_assert_eq(v.type, RP_MSG_ACK, "seq %u after %u: %s (%s)", sent[i],
					     committed, rp_msg_type_name(v.type),
					     rp_reject_name(v.reason));
				cr_assert_eq(v.seq, sent[i]);
				expect_echo(&v, &pkt);
				dups += sent[i] == committed;
				committed = sent[i];
				acks++;
			} else {
				cr_assert_eq(v.type, RP_MSG_REJECT, "seq %u after %u", sent[i],
					     committed);
				cr_assert_eq(v.reason, RP_REJ_STALE);
				cr_assert_eq(v.seq, committed, "stale reject names the committed seq");
				stale++;
			}
		}
		rp_test_heartbeat(&sw1);
	}
	cr_assert_gt(stale, 0, "the shuffle produced stale writes");
	cr_assert_gt(dups, 0, "the shuffle produced duplicates");
	cr_assert_eq(rp_test_store_wait_stat(&st, "write_commit", acks - dups), acks - dups);
	cr_assert_eq(rp_test_store_wait_stat(&st, "write_dup", dups), dups);
	cr_assert_eq(rp_test_store_wait_stat(&st, "reject_stale", stale), stale);

	/* the committed state is the newest write's */
	request(&sw1, 5, NULL, NULL);
	rp_test_expect(&sw1, RP_MSG_MIGRATE, &v, 2000);
	snprintf(state, sizeof(state), "state-%u", committed);
	expect_state(&v, state, committed);
}

Test(store, non_owner_write_is_rejected_and_changes_nothing)
{
	struct rp_msg_view v;

	rp_test_heartbeat(&sw1);
	rp_test_heartbeat(&sw2);
	take_new_flow(&sw1, 9, "state-0");
	write_seq(&sw1, 9, 4);
	rp_test_expect(&sw1, RP_MSG_ACK, &v, 2000);

	write_seq(&sw2, 9, 5);
	rp_test_expect(&sw2, RP_MSG_REJECT, &v, 2000);
	cr_assert_eq(v.reason, RP_REJ_NOT_OWNER);
	cr_assert_eq(v.seq, 4);
	cr_assert_eq(rp_test_recv(&sw1, &v, 50), -ETIMEDOUT, "no revoke for a write");

	request(&sw1, 9, NULL, NULL);
	rp_test_expect(&sw1, RP_MSG_MIGRATE, &v, 2000);
	expect_state(&v, "state-4", 4);
	cr_assert_eq(rp_test_store_wait_stat(&st, "reject_not_owner", 1), 1);
}

/* Heartbeats for sw every 20 ms until a message of `type` arrives. */
static void wait_keeping_session(struct rp_test_switch *sw, uint8_t type,
				 struct rp_msg_view *v)
{
	for (int i = 0; i < 100; i++) {
		struct rp_msg_view hb = rp_test_msg(RP_MSG_HEARTBEAT, sw->id, 0, sw->epoch);

		if (rp_test_recv(sw, v, 20) == 0) {
			if (v->type == RP_MSG_HEARTBEAT_ACK) {
				cr_assert_eq(v->epoch, sw->epoch, "session kept while waiting");
				continue;
			}
			cr_assert_eq(v->type, type, "got %s (%s), expected %s",
				     rp_msg_type_name(v->type), rp_reject_name(v->reason),
				     rp_msg_type_name(type));
			return;
		}
		hb.seq = ++sw->nonce;
		rp_test_send(sw, &hb);
	}
	cr_assert_fail("no %s in 2 s", rp_msg_type_name(type));
}

TestSuite(store_lapse, .init = start_short_lease, .fini = stop, .timeout = 60);

Test(store_lapse, takeover_after_the_owner_lapses_returns_the_last_committed_state)
{
	struct tagged_pkt pkt = tag(2, 1);
	struct rp_msg_view v;
	uint64_t last_hb;

	rp_test_heartbeat(&sw1);
	take_new_flow(&sw1, 3, "state-0");
	for (uint32_t seq = 1; seq <= 10; seq++) {
		write_seq(&sw1, 3, seq);
		rp_test_expect(&sw1, RP_MSG_ACK, &v, 2000);
	}
	rp_test_heartbeat(&sw1);
	last_hb = rp_test_now_ms();	/* switch 1 now falls silent */

	/* asked while switch 1's session is live: it is revoked, never acks */
	rp_test_heartbeat(&sw2);
	request(&sw2, 3, "a proposal that loses", &pkt);
	rp_test_expect(&sw1, RP_MSG_REVOKE, &v, 2000);
	cr_assert_eq(v.seq, 10);
	wait_keeping_session(&sw2, RP_MSG_MIGRATE, &v);
	cr_assert_geq(rp_test_now_ms() - last_hb, LEASE_MS,
		      "granted before the owner's lease ran out");
	expect_state(&v, "state-10", 10);
	expect_echo(&v, &pkt);
	cr_assert_eq(rp_test_store_wait_stat(&st, "wait_done_lapse", 1), 1);

	/* switch 1 comes back to the revokes sent while it was silent */
	cr_assert_geq(rp_test_drain(&sw1, RP_MSG_REVOKE), 1);
	/* with a new epoch, and the flow is no longer its own */
	rp_test_heartbeat(&sw1);
	write_seq(&sw1, 3, 11);
	rp_test_expect(&sw1, RP_MSG_REJECT, &v, 2000);
	cr_assert_eq(v.reason, RP_REJ_NOT_OWNER);
	write_seq(&sw2, 3, 11);
	rp_test_expect(&sw2, RP_MSG_ACK, &v, 2000);
}

Test(store_lapse, takeover_of_a_lapsed_owner_is_immediate)
{
	struct rp_msg_view v;

	rp_test_heartbeat(&sw1);
	take_new_flow(&sw1, 4, "state-0");
	write_seq(&sw1, 4, 1);
	rp_test_expect(&sw1, RP_MSG_ACK, &v, 2000);
	rp_test_sleep_ms(LEASE_MS + 20);

	rp_test_heartbeat(&sw2);
	request(&sw2, 4, NULL, NULL);
	rp_test_expect(&sw2, RP_MSG_MIGRATE, &v, 2000);
	expect_state(&v, "state-1", 1);
	cr_assert_eq(rp_test_recv(&sw1, &v, 50), -ETIMEDOUT, "no revoke to a lapsed owner");
}

Test(store, takeover_through_revoke)
{
	struct tagged_pkt pkt = tag(2, 2);
	struct rp_msg_view v, ack;

	rp_test_heartbeat(&sw1);
	rp_test_heartbeat(&sw2);
	take_new_flow(&sw1, 6, "state-0");
	write_seq(&sw1, 6, 1);
	rp_test_expect(&sw1, RP_MSG_ACK, &v, 2000);

	request(&sw2, 6, NULL, &pkt);
	rp_test_expect(&sw1, RP_MSG_REVOKE, &v, 2000);
	cr_assert_eq(v.switch_id, 1);
	cr_assert_eq(v.epoch, sw1.epoch);
	ack = rp_test_msg(RP_MSG_REVOKE_ACK, 1, 6, sw1.epoch);
	ack.gen = v.gen;	/* the ack names the holding the revoke named */
	cr_assert_eq(v.gen, sw1.gen[6]);
	cr_assert(rp_key_eq(&v.key, &ack.key), "the revoke names the flow");

	rp_test_send(&sw1, &ack);
	rp_test_expect(&sw2, RP_MSG_MIGRATE, &v, 2000);
	expect_state(&v, "state-1", 1);
	expect_echo(&v, &pkt);
	cr_assert_eq(v.epoch, sw2.epoch);

	write_seq(&sw1, 6, 2);
	rp_test_expect(&sw1, RP_MSG_REJECT, &v, 2000);
	cr_assert_eq(v.reason, RP_REJ_NOT_OWNER);
	write_seq(&sw2, 6, 2);
	rp_test_expect(&sw2, RP_MSG_ACK, &v, 2000);
	cr_assert_eq(rp_test_store_wait_stat(&st, "wait_done_ack", 1), 1);
}

/* Ten thousand datagrams no receiver may accept. */
static size_t garbage(uint8_t *buf, unsigned int i)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_WRITE, 1, 3, 1);
	size_t len;

	v.seq = 1000 + i;
	rp_test_set_state(&v, "forged");
	switch (i % 8) {
	case 0: /* random bytes, random length */
		len = (size_t)rand() % RP_DGRAM_MAX;
		for (size_t b = 0; b < len; b++)
			buf[b] = (uint8_t)rand();
		buf[0] = 0;	/* not even the version: random bytes stay invalid */
		return len;
	case 1: /* a valid write, truncated */
		len = rp_test_encode(buf, &v);
		return (size_t)rand() % len;
	case 2: /* wrong version */
		len = rp_test_encode(buf, &v);
		buf[0] = (uint8_t)(RP_VERSION + 1 + rand() % 250);
		return len;
	case 3: /* unknown type */
		len = rp_test_encode(buf, &v);
		buf[1] = (uint8_t)(__RP_MSG_MAX + rand() % 200);
		return len;
	case 4: /* unknown app */
		len = rp_test_encode(buf, &v);
		buf[2] = (uint8_t)(__RP_APP_MAX + rand() % 200);
		return len;
	case 5: /* oversized: past the receive buffer, or past the protocol */
		len = rand() % 2 ? 3000 : RP_DGRAM_MAX + 1;
		memset(buf, 1, len);
		return len;
	case 6: /* a grant sent to the store */
		v.type = RP_MSG_GRANT;
		return rp_test_encode(buf, &v);
	default: /* one bad field in the middle */
		len = rp_test_encode(buf, &v);
		buf[offsetof(struct rp_msg, key) + offsetof(struct rp_flow_key, pad)] = 1;
		return len;
	}
}

Test(store, ten_thousand_bad_datagrams_leave_it_running_with_state_intact)
{
	enum { N = 10000 };
	uint8_t buf[4096];
	struct rp_msg_view v;
	uint64_t dropped = 0;
	static const char *const drops[] = {
		"drop_truncated", "drop_oversized", "drop_bad_version", "drop_bad_type",
		"drop_bad_app", "drop_bad_flags", "drop_bad_len", "drop_bad_key",
		"drop_bad_switch", "drop_bad_reason", "drop_bad_direction",
	};

	rp_test_heartbeat(&sw1);
	take_new_flow(&sw1, 3, "state-0");
	write_seq(&sw1, 3, 7);
	rp_test_expect(&sw1, RP_MSG_ACK, &v, 2000);

	srand(11);
	for (unsigned int i = 0; i < N; i++) {
		rp_test_send_raw(&sw1, buf, garbage(buf, i));
		if (i % 500 == 0) {	/* keep the session; pace the socket queue */
			rp_test_heartbeat(&sw1);
		}
	}
	rp_test_heartbeat(&sw1);
	cr_assert(rp_test_store_alive(&st));
	for (size_t i = 0; i < sizeof(drops) / sizeof(drops[0]); i++)
		dropped += rp_test_store_stat(&st, drops[i]);
	cr_assert_eq(dropped, N, "every bad datagram is counted once (%llu)",
		     (unsigned long long)dropped);
	cr_assert_eq(rp_test_store_stat(&st, "drop_oversized"), N / 8);
	cr_assert_eq(rp_test_store_stat(&st, "drop_bad_direction"), N / 8);
	cr_assert_eq(rp_test_store_stat(&st, "write_commit"), 1);

	request(&sw1, 3, NULL, NULL);
	rp_test_expect(&sw1, RP_MSG_MIGRATE, &v, 2000);
	expect_state(&v, "state-7", 7);
	cr_assert_eq(rp_test_recv(&sw1, &v, 50), -ETIMEDOUT, "nothing answers bad input");
}

static void start_sharded(void)
{
	static const char *const args[] = { "--lease-ms", "500", "--shards", "2", NULL };

	start(args);
}

TestSuite(store_sharded, .init = start_sharded, .fini = stop, .timeout = 60);

Test(store_sharded, two_shards_serve_every_flow_on_its_own_shard)
{
	enum { FLOWS = 2000 };
	struct rp_msg_view v;
	uint64_t last_hb;

	rp_test_heartbeat(&sw1);
	rp_test_heartbeat(&sw2);
	last_hb = rp_test_now_ms();
	for (uint32_t f = 0; f < FLOWS; f++) {
		struct rp_test_switch *sw = f % 2 ? &sw2 : &sw1;
		char state[16];

		snprintf(state, sizeof(state), "flow-%u", f);
		request(sw, f, state, NULL);
		rp_test_expect(sw, RP_MSG_GRANT, &v, 2000);
		expect_state(&v, state, 0);
		write_seq(sw, f, 1);
		rp_test_expect(sw, RP_MSG_ACK, &v, 2000);
		/* renew by the clock, not by count: an emulated VM is slow */
		if (rp_test_now_ms() - last_hb > 100) {
			rp_test_heartbeat(&sw1);
			rp_test_heartbeat(&sw2);
			last_hb = rp_test_now_ms();
		}
	}
	/* a flow asked for by the other switch is revoked on its own shard */
	request(&sw2, 0, NULL, NULL);
	rp_test_expect(&sw1, RP_MSG_REVOKE, &v, 2000);
	struct rp_msg_view ack = rp_test_msg(RP_MSG_REVOKE_ACK, 1, 0, sw1.epoch);

	ack.key = v.key;
	ack.gen = v.gen;
	rp_test_send(&sw1, &ack);
	rp_test_expect(&sw2, RP_MSG_MIGRATE, &v, 2000);
	expect_state(&v, "state-1", 1);

	cr_assert_eq(rp_test_store_stat(&st, "misrouted"), 0);
	cr_assert_eq(rp_test_store_stat(&st, "flows"), FLOWS);
	cr_assert_eq(rp_test_store_stat(&st, "write_commit"), FLOWS);
}

Test(store, sigterm_stops_it_cleanly_with_statistics)
{
	char log[8192] = "";
	FILE *f;
	size_t n;

	rp_test_heartbeat(&sw1);
	kill(st.pid, SIGTERM);
	rp_test_sleep_ms(300);
	f = fopen(st.log, "r");
	cr_assert_not_null(f);
	n = fread(log, 1, sizeof(log) - 1, f);
	log[n] = '\0';
	fclose(f);
	cr_assert_not_null(strstr(log, "statistics at exit"), "log: %s", log);
	cr_assert_not_null(strstr(log, "session_new 1"), "log: %s", log);
	cr_assert_eq(rp_test_store_stop(&st), 0);
}

/* Orphans: a short timeout, and two shards so that both tick. */
static void start_orphans(void)
{
	static const char *const args[] = { "--lease-ms", "100", "--orphan-timeout", "0.3",
					    "--shards", "2", NULL };

	start(args);
}

TestSuite(store_orphans, .init = start_orphans, .fini = stop, .timeout = 60);

Test(store_orphans, the_running_store_reclaims_a_lapsed_switchs_flows_on_its_own)
{
	uint64_t t0;

	rp_test_heartbeat(&sw1);
	for (uint32_t flow = 1; flow <= 8; flow++)
		take_new_flow(&sw1, flow, "held");
	/* sw1 stops renewing; nothing else reaches the store */
	t0 = rp_test_now_ms();
	cr_assert_eq(rp_test_store_wait_stat(&st, "orphans_reclaimed", 8), 8,
		     "the shards ticked and reclaimed every flow");
	cr_assert_geq(rp_test_now_ms() - t0, 300, "not before the timeout");
	cr_assert_eq(rp_test_store_stat(&st, "flows"), 0);
}

/* Command-line errors need no running store. */
/* --allow: switch 1 from loopback is served, switch 2 from the same address is not. */
static void start_allow(void)
{
	static const char *const args[] = { "--lease-ms", "1000", "--allow", "1@127.0.0.1",
					    "--allow", "3@[::1],4@192.0.2.1", NULL };

	start(args);
}

TestSuite(store_allow, .init = start_allow, .fini = stop, .timeout = 60);

Test(store_allow, only_listed_switches_at_their_addresses_are_served)
{
	struct rp_msg_view v;

	rp_test_heartbeat(&sw1);
	take_new_flow(&sw1, 1, "listed");
	/* switch 2 is not listed: nothing comes back, whatever it sends */
	request(&sw2, 2, "unlisted", NULL);
	cr_assert_eq(rp_test_recv(&sw2, &v, 300), -ETIMEDOUT,
		     "an unlisted switch got an answer");
	cr_assert_geq(rp_test_store_wait_stat(&st, "not_allowed", 1), 1);
	cr_assert_eq(rp_test_store_stat(&st, "sessions_live"), 1, "only sw1's session");
}

TestSuite(store_cli, .timeout = 30);

static void expect_fail(const char *const *args, int code, const char *msg)
{
	char err[4096];

	cr_assert_eq(rp_test_run_store(args, err, sizeof(err)), code, "exit code; output: %s",
		     err);
	cr_assert_not_null(strstr(err, msg), "expected '%s' in: %s", msg, err);
}

Test(store_cli, bad_arguments_get_clear_errors)
{
	expect_fail((const char *const[]){ NULL }, 2, "missing --listen");
	expect_fail((const char *const[]){ "--listen", "nowhere", NULL }, 2, "invalid --listen");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--shards", "0", NULL }, 2,
		    "invalid --shards '0'");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--shards", "x", NULL }, 2,
		    "invalid --shards");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--lease-ms", "5", NULL },
		    2, "invalid --lease-ms");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--max-flows", "-1", NULL },
		    2, "invalid --max-flows");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--bogus", NULL }, 2,
		    "unknown option '--bogus'");
	expect_fail((const char *const[]){ "--listen", NULL }, 2, "needs an argument");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "extra", NULL }, 2,
		    "unexpected argument 'extra'");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--allow", "1@nowhere", NULL },
		    2, "invalid --allow address 'nowhere'");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--allow", "127.0.0.1", NULL },
		    2, "invalid --allow element '127.0.0.1': expected ID@ADDR");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--allow", "0@127.0.0.1",
					   NULL },
		    2, "invalid --allow switch id '0'");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--allow", "1@127.0.0.1,",
					   NULL },
		    2, "an empty element");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--orphan-timeout", "0",
					   NULL },
		    2, "invalid --orphan-timeout '0'");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--orphan-timeout", "5s",
					   NULL },
		    2, "expected seconds from 0.001");
	expect_fail((const char *const[]){ "--help", NULL }, 0, "--orphan-timeout SECONDS");
	expect_fail((const char *const[]){ "--help", NULL }, 0, "Usage: rp-store");
	expect_fail((const char *const[]){ "--version", NULL }, 0, "protocol version 2");
}

Test(store_cli, too_little_memory_is_refused)
{
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--max-flows",
					   "1073741824", "--shards", "64", NULL },
		    1, "is available");
}

static void port_in_use(const char *shards)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int one = 1, fd = socket(AF_INET, SOCK_DGRAM, 0);
	char listen[64];

	/* even a socket that allows SO_REUSEPORT sharing must not be joined */
	cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
	snprintf(listen, sizeof(listen), "127.0.0.1:%u", ntohs(sin.sin_port));
	expect_fail((const char *const[]){ "--listen", listen, "--shards", shards, NULL }, 1,
		    "Address already in use");
	close(fd);
}

Test(store_cli, port_in_use_is_refused)
{
	port_in_use("1");
	port_in_use("2");
}

Test(store_cli, chain_options_get_clear_errors)
{
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--zk", "127.0.0.1:2181",
					   NULL },
		    2, "needs both --zk and --replica-id");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--replica-id", "0", NULL },
		    2, "invalid --replica-id");
	expect_fail((const char *const[]){ "--listen", "[::1]:0", "--zk", "127.0.0.1:2181",
					   "--replica-id", "1", NULL },
		    2, "chain replicas listen on IPv4");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--chain", "a/b", NULL }, 2,
		    "invalid --chain 'a/b'");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--failure-timeout-ms",
					   "50", NULL },
		    2, "invalid --failure-timeout-ms");
	expect_fail((const char *const[]){ "--listen", "127.0.0.1:0", "--peer", "nowhere", NULL },
		    2, "invalid --peer");
}

/* A config file holds the long options; the command line overrides it. */
Test(store_cli, a_config_file_is_read_and_checked)
{
	char path[] = "/tmp/rp-store-conf.XXXXXX";
	int fd = mkstemp(path);
	FILE *f;

	cr_assert_geq(fd, 0);
	f = fdopen(fd, "w");
	fputs("# a replica's settings\nlisten 127.0.0.1:0\n  shards 0\n", f);
	fclose(f);
	expect_fail((const char *const[]){ "--config", path, NULL }, 2, "invalid --shards '0'");
	/* the command line wins: its IPv6 --listen replaces the file's IPv4 one */
	f = fopen(path, "w");
	fputs("listen 127.0.0.1:0\nzk 127.0.0.1:2181\nreplica-id 1\n", f);
	fclose(f);
	expect_fail((const char *const[]){ "--config", path, "--listen", "[::1]:0", NULL }, 2,
		    "chain replicas listen on IPv4");
	f = fopen(path, "w");
	fputs("listen 127.0.0.1:0\nbogus 1\n", f);
	fclose(f);
	expect_fail((const char *const[]){ "--config", path, NULL }, 2, "unknown option '--bogus'");
	f = fopen(path, "w");
	fputs("listen 127.0.0.1:0\norphan-timeout -1\n", f);
	fclose(f);
	expect_fail((const char *const[]){ "--config", path, NULL }, 2,
		    "invalid --orphan-timeout '-1'");
	f = fopen(path, "w");
	fputs("config /etc/other\n", f);
	fclose(f);
	expect_fail((const char *const[]){ "--config", path, NULL }, 2, "cannot name another");
	unlink(path);
	expect_fail((const char *const[]){ "--config", path, NULL }, 2, "Couldn't read --config");
}

/*
 * The flow table against a reference model: random inserts, lookups and
 * deletes over a pool of keys twice the table's size, so that the index
 * runs near its 2/3 load with long probe runs for the backward shift.
 */
TestSuite(store_table, .timeout = 60);

#define TABLE_CAP	4096
#define TABLE_KEYS	(2 * TABLE_CAP)
#define TABLE_OPS	400000

/* xorshift64: the same sequence on every run, so a failure replays */
static uint64_t next_rand(uint64_t *x)
{
	*x ^= *x << 13;
	*x ^= *x >> 7;
	*x ^= *x << 17;
	return *x;
}

static void expect_table(const struct rp_flow_table *t, const bool *in, uint32_t n)
{
	struct rp_flow_key k;

	cr_assert_eq(t->count, n, "count %u, model %u", t->count, n);
	for (uint32_t id = 0; id < TABLE_KEYS; id++) {
		const struct rp_flow *f;

		rp_test_key(&k, id);
		f = rp_flow_lookup(t, RP_APP_NAT, &k);
		cr_assert_eq(f != NULL, in[id], "key %u: %s", id, in[id] ? "lost" : "not deleted");
		if (f)
			cr_assert_eq(*(const uint32_t *)f->state, id, "key %u's record", id);
	}
}

Test(store_table, deletes_keep_every_other_key_and_the_count)
{
	static bool in[TABLE_KEYS];
	struct rp_flow_table t;
	uint64_t x = 0x9E3779B97F4A7C15ull;
	uint32_t n = 0, deleted = 0;

	memset(in, 0, sizeof(in));
	cr_assert_eq(rp_flow_table_init(&t, TABLE_CAP), 0);
	for (uint32_t op = 0; op < TABLE_OPS; op++) {
		uint32_t id = (uint32_t)(next_rand(&x) % TABLE_KEYS);
		struct rp_flow_key k;
		struct rp_flow *f;

		rp_test_key(&k, id);
		f = rp_flow_lookup(&t, RP_APP_NAT, &k);
		cr_assert_eq(f != NULL, in[id], "op %u, key %u", op, id);
		if (!f) {
			f = rp_flow_insert(&t, RP_APP_NAT, &k);
			cr_assert_eq(f == NULL, n == TABLE_CAP, "op %u: insert at %u of %u", op, n,
				     TABLE_CAP);
			if (f) {
				/* the record says whose it is: a moved record must keep it */
				memcpy(f->state, &id, sizeof(id));
				in[id] = true;
				n++;
			}
		} else if (next_rand(&x) % 8 < 5) {
			struct rp_flow *last = &t.flows[t.count - 1], *moved;
			struct rp_flow was_last = *last;

			moved = rp_flow_delete(&t, f);
			if (f == last) {
				cr_assert_null(moved);
			} else {
				cr_assert_eq(moved, f, "the last record moves into the freed place");
				cr_assert_arr_eq(moved, &was_last, sizeof(was_last));
			}
			in[id] = false;
			n--;
			deleted++;
		}
		if (op % 50000 == 0)
			expect_table(&t, in, n);
	}
	expect_table(&t, in, n);
	cr_assert_gt(deleted, TABLE_OPS / 10);
	/* emptied completely, the table holds nothing and takes a full load again */
	while (t.count)
		rp_flow_delete(&t, &t.flows[next_rand(&x) % t.count]);
	memset(in, 0, sizeof(in));
	expect_table(&t, in, 0);
	for (uint32_t id = 0; id < TABLE_CAP; id++) {
		struct rp_flow_key k;

		rp_test_key(&k, id);
		cr_assert_not_null(rp_flow_insert(&t, RP_APP_NAT, &k));
		memcpy(t.flows[id].state, &id, sizeof(id));
		in[id] = true;
	}
	expect_table(&t, in, TABLE_CAP);
	rp_flow_table_free(&t);
}
