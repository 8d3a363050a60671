// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store's lease and write state machine, driven through its handler
 * with a virtual clock: no sockets, no sleeps.  Replies are read from the
 * shard's output batch.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "rp_test.h"
#include "store.h"

#define MS(x)		((uint64_t)(x) * 1000000ull)
#define T0		1000	/* ms; the virtual clock starts here */
#define LEASE		100	/* ms */
#define WAIT		200	/* ms */

static struct rp_store_cfg cfg;
static struct rp_sessions sessions;
static struct rp_shard shard;
static struct rp_shard *s = &shard;

static void setup(void)
{
	cfg = (struct rp_store_cfg){
		.shards = 1,
		.lease_ms = LEASE,
		.max_flows = 4,
		.wait_queue = 2,
		.wait_ms = WAIT,
	};
	cr_assert_eq(rp_sessions_init(&sessions, cfg.lease_ms), 0);
	cr_assert_eq(rp_shard_init(s, 0, &cfg, &sessions, cfg.max_flows), 0);
}

static void teardown(void)
{
	rp_shard_free(s);
	rp_sessions_free(&sessions);
}

TestSuite(lease, .init = setup, .fini = teardown);

/* Each switch "sends" from 127.0.0.1:(10000 + id). */
static struct rp_sockaddr switch_addr(uint16_t id)
{
	struct rp_sockaddr a;

	cr_assert_eq(rp_addr_parse("127.0.0.1:0", &a), 0);
	((struct sockaddr_in *)&a.ss)->sin_port = htons(10000 + id);
	return a;
}

static void deliver(const struct rp_msg_view *v, uint64_t now_ms)
{
	uint8_t buf[RP_DGRAM_MAX];
	struct rp_sockaddr from = switch_addr(v->switch_id);

	rp_store_handle(s, buf, rp_test_encode(buf, v), &from, MS(now_ms));
}

/* Output i, decoded; *to_id is the switch it goes to. */
static struct rp_msg_view out(unsigned int i, uint16_t *to_id)
{
	struct rp_out_slot *o = &s->out[i];
	struct rp_msg_view v;

	cr_assert_lt(i, s->nout, "expected output %u, have %u", i, s->nout);
	cr_assert_eq(rp_msg_decode(o->buf, s->out_iov[i].iov_len, &v), 0);
	if (to_id)
		*to_id = ntohs(((struct sockaddr_in *)&o->to.ss)->sin_port) - 10000;
	return v;
}

static uint16_t gens[8][128];	/* [switch][flow]: generation of its last grant */

/* The only output, which must be `type` to switch `to`. */
static struct rp_msg_view expect_one(uint8_t type, uint16_t to)
{
	uint16_t dest;
	struct rp_msg_view v;

	cr_assert_eq(s->nout, 1, "expected one %s, have %u outputs", rp_msg_type_name(type),
		     s->nout);
	v = out(0, &dest);
	cr_assert_eq(v.type, type, "got %s (%s), expected %s", rp_msg_type_name(v.type),
		     rp_reject_name(v.reason), rp_msg_type_name(type));
	cr_assert_eq(dest, to, "%s went to switch %u, not %u", rp_msg_type_name(type), dest, to);
	if (type == RP_MSG_GRANT || type == RP_MSG_MIGRATE)
		gens[to][rp_test_flow_of(&v.key)] = v.gen;
	s->nout = 0;
	return v;
}

static void expect_none(void)
{
	cr_assert_eq(s->nout, 0, "expected no output, have %u (first: %s)", s->nout,
		     s->nout ? rp_msg_type_name(out(0, NULL).type) : "");
}

/* A heartbeat naming epoch, with gen (RP_HB_LAPSED: it ran out at the switch). */
static uint32_t heartbeat_as(uint16_t id, uint32_t epoch, uint16_t gen, uint64_t now_ms)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_HEARTBEAT, id, 0, epoch);

	v.seq = (uint32_t)now_ms;
	v.gen = gen;
	deliver(&v, now_ms);
	v = expect_one(RP_MSG_HEARTBEAT_ACK, id);
	cr_assert_eq(v.seq, (uint32_t)now_ms, "nonce echoed");
	cr_assert_eq(v.lease_ms, LEASE);
	return v.epoch;
}

static uint32_t heartbeat(uint16_t id, uint64_t now_ms)
{
	return heartbeat_as(id, 0, 0, now_ms);
}

static const uint8_t pkt_a[] = "packet from switch A";
static const uint8_t pkt_b[] = "packet from switch B";

static void lease_req(uint16_t id, uint32_t epoch, uint32_t flow, const char *proposal,
		      const uint8_t *pkt, uint64_t now_ms)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_LEASE_REQ, id, flow, epoch);

	if (proposal)
		rp_test_set_state(&v, proposal);
	if (pkt)
		rp_test_set_pkt(&v, pkt, sizeof(pkt_a));
	deliver(&v, now_ms);
}

static void write_state(uint16_t id, uint32_t epoch, uint32_t flow, uint32_t seq,
			const char *state, uint64_t now_ms)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_WRITE, id, flow, epoch);

	v.seq = seq;
	v.gen = gens[id][flow];
	rp_test_set_state(&v, state);
	rp_test_set_pkt(&v, pkt_a, sizeof(pkt_a));
	deliver(&v, now_ms);
}

static void expect_state(const struct rp_msg_view *v, const char *state, uint32_t seq)
{
	cr_assert(v->flags & RP_F_STATE);
	cr_assert_eq(v->state_len, strlen(state));
	cr_assert_arr_eq(v->state, state, strlen(state), "state '%.*s', expected '%s'",
			 v->state_len, v->state, state);
	cr_assert_eq(v->seq, seq, "seq %u, expected %u", v->seq, seq);
}

static void expect_pkt(const struct rp_msg_view *v, const uint8_t *pkt)
{
	cr_assert(v->flags & RP_F_PKT);
	cr_assert_eq(v->pkt_len, sizeof(pkt_a));
	cr_assert_arr_eq(v->pkt, pkt, sizeof(pkt_a), "the packet is echoed");
}

Test(lease, heartbeat_starts_renews_and_lapses_a_session)
{
	uint32_t e1 = heartbeat(1, T0);

	cr_assert_neq(e1, 0);
	cr_assert(rp_session_live(&sessions, 1, e1, MS(T0 + LEASE - 1)));
	cr_assert_eq(heartbeat(1, T0 + 50), e1, "a live session is renewed");
	cr_assert(rp_session_live(&sessions, 1, e1, MS(T0 + 50 + LEASE - 1)));
	cr_assert(!rp_session_live(&sessions, 1, e1, MS(T0 + 50 + LEASE)), "lapsed");
	cr_assert_eq(heartbeat(1, T0 + 50 + LEASE), e1 + 1, "after a lapse, a new epoch");
	cr_assert(!rp_session_live(&sessions, 1, e1, MS(T0 + 50 + LEASE + 1)),
		  "the old epoch stays dead");
	cr_assert_eq(s->stats.session_new, 2);
	cr_assert_eq(s->stats.session_renew, 1);
}

Test(lease, a_session_that_ran_out_at_the_switch_is_never_renewed)
{
	uint32_t e1 = heartbeat(1, T0), e2;

	/*
	 * Live here (a new head brings every session back), but the switch
	 * saw it run out: the store may have given its flows away meanwhile.
	 */
	lease_req(1, e1, 7, "v0", NULL, T0 + 1);
	expect_one(RP_MSG_GRANT, 1);
	e2 = heartbeat_as(1, e1, RP_HB_LAPSED, T0 + 10);
	cr_assert_neq(e2, e1, "the epoch that ran out at the switch came back");
	cr_assert(!rp_session_live(&sessions, 1, e1, MS(T0 + 11)), "the old epoch stays dead");
	cr_assert_eq(s->stats.session_new, 2);
	/* its flow is free: another switch takes it at once */
	lease_req(2, heartbeat(2, T0 + 12), 7, NULL, NULL, T0 + 12);
	cr_assert_eq(expect_one(RP_MSG_MIGRATE, 2).type, RP_MSG_MIGRATE);
	/* later heartbeats that still name the old epoch renew the new one */
	cr_assert_eq(heartbeat_as(1, e1, RP_HB_LAPSED, T0 + 20), e2);
	cr_assert_eq(s->stats.session_new, 3, "switch 2's, and switch 1's second");
}

Test(lease, a_restarted_store_never_hands_out_the_same_first_epoch)
{
	struct rp_sessions again;
	bool is_new;
	struct rp_sockaddr from = switch_addr(1);
	uint32_t e1 = heartbeat(1, T0), e2;

	/* a second run of the store: a fresh table */
	cr_assert_eq(rp_sessions_init(&again, LEASE), 0);
	e2 = rp_session_heartbeat(&again, 1, &from, MS(T0), 0, &is_new);
	cr_assert(is_new);
	cr_assert_neq(e2, e1, "switch 1 would take its old leases for live ones");
	rp_sessions_free(&again);
}

Test(lease, nothing_is_granted_during_the_start_up_grace)
{
	uint32_t e = heartbeat(1, T0);

	s->serve_from_ns = MS(T0 + 50);
	lease_req(1, e, 7, "v0", pkt_a, T0 + 49);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_BUSY);
	cr_assert_eq(s->flows.count, 0);
	lease_req(1, e, 7, "v0", pkt_a, T0 + 50);
	expect_one(RP_MSG_GRANT, 1);
}

Test(lease, request_without_session_is_rejected_with_its_packet)
{
	struct rp_msg_view v;

	lease_req(1, 1, 7, "proposal", pkt_a, T0);
	v = expect_one(RP_MSG_REJECT, 1);
	cr_assert_eq(v.reason, RP_REJ_NO_SESSION);
	expect_pkt(&v, pkt_a);
	cr_assert_eq(s->flows.count, 0, "no state was created");

	/* a session of another epoch is not this one */
	uint32_t e = heartbeat(1, T0);

	lease_req(1, e + 1, 7, NULL, NULL, T0);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NO_SESSION);
}

Test(lease, request_without_proposal_looks_up_and_never_creates)
{
	uint32_t e = heartbeat(1, T0);
	struct rp_msg_view v;

	lease_req(1, e, 7, NULL, pkt_a, T0);
	v = expect_one(RP_MSG_REJECT, 1);
	cr_assert_eq(v.reason, RP_REJ_NO_FLOW);
	expect_pkt(&v, pkt_a);
	cr_assert_eq(s->flows.count, 0);

	/* an empty proposal is still a proposal */
	lease_req(1, e, 7, "", NULL, T0);
	v = expect_one(RP_MSG_GRANT, 1);
	expect_state(&v, "", 0);
	lease_req(1, e, 7, NULL, NULL, T0);
	expect_one(RP_MSG_MIGRATE, 1);
}

Test(lease, new_flow_is_granted_its_proposal_in_one_round_trip)
{
	uint32_t e = heartbeat(1, T0);
	struct rp_msg_view v;

	lease_req(1, e, 7, "ext 203.0.113.1:40000", pkt_a, T0 + 1);
	v = expect_one(RP_MSG_GRANT, 1);
	expect_state(&v, "ext 203.0.113.1:40000", 0);
	expect_pkt(&v, pkt_a);
	cr_assert_eq(v.epoch, e);
	cr_assert_eq(v.switch_id, 1);
	cr_assert_eq(v.lease_ms, LEASE);

	/* the owner asking again (it lost its copy) gets the stored state */
	lease_req(1, e, 7, "another proposal", NULL, T0 + 2);
	v = expect_one(RP_MSG_MIGRATE, 1);
	expect_state(&v, "ext 203.0.113.1:40000", 0);
	cr_assert_eq(s->stats.regrant, 1);
}

Test(lease, flow_of_a_lapsed_owner_migrates_with_its_last_committed_state)
{
	uint32_t e1 = heartbeat(1, T0), e2;
	struct rp_msg_view v;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	write_state(1, e1, 7, 3, "v3", T0 + 10);
	expect_one(RP_MSG_ACK, 1);

	e2 = heartbeat(2, T0 + LEASE);	/* switch 1 lapsed at T0 + LEASE */
	lease_req(2, e2, 7, "a proposal that loses", pkt_b, T0 + LEASE);
	v = expect_one(RP_MSG_MIGRATE, 2);
	expect_state(&v, "v3", 3);
	expect_pkt(&v, pkt_b);
	cr_assert_eq(v.epoch, e2);

	/* the old owner's late write is refused, the state unchanged */
	e1 = heartbeat(1, T0 + LEASE + 1);
	write_state(1, e1, 7, 4, "v4 from the past", T0 + LEASE + 2);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NOT_OWNER);
	lease_req(2, e2, 7, NULL, NULL, T0 + LEASE + 3);
	v = expect_one(RP_MSG_MIGRATE, 2);
	expect_state(&v, "v3", 3);
}

Test(lease, live_owner_is_revoked_and_the_request_granted_on_its_ack)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	struct rp_msg_view v, ack;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	write_state(1, e1, 7, 1, "v1", T0 + 1);
	expect_one(RP_MSG_ACK, 1);

	lease_req(2, e2, 7, NULL, pkt_b, T0 + 2);
	v = expect_one(RP_MSG_REVOKE, 1);	/* nothing for switch 2 yet */
	cr_assert_eq(v.switch_id, 1);
	cr_assert_eq(v.epoch, e1);
	cr_assert_eq(v.seq, 1);
	cr_assert_eq(s->nwaiting, 1);

	/* the owner may still flush a write before it acks */
	write_state(1, e1, 7, 2, "v2", T0 + 3);
	expect_one(RP_MSG_ACK, 1);

	ack = rp_test_msg(RP_MSG_REVOKE_ACK, 1, 7, e1);
	ack.gen = gens[1][7];
	deliver(&ack, T0 + 4);
	v = expect_one(RP_MSG_MIGRATE, 2);
	expect_state(&v, "v2", 2);
	expect_pkt(&v, pkt_b);
	cr_assert_eq(s->nwaiting, 0);
	cr_assert_eq(s->stats.wait_done_ack, 1);

	write_state(1, e1, 7, 3, "v3", T0 + 5);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NOT_OWNER);

	/* a duplicate revoke-ack changes nothing */
	deliver(&ack, T0 + 6);
	expect_none();
	cr_assert_eq(s->stats.revoke_ack_stale, 1);
	write_state(2, e2, 7, 3, "v3", T0 + 7);
	expect_one(RP_MSG_ACK, 2);
}

Test(lease, messages_of_an_earlier_holding_never_pass_for_the_current_one)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	struct rp_msg_view v, ack;
	uint16_t first;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	first = gens[1][7];
	write_state(1, e1, 7, 1, "v1", T0);	/* a write of the first holding... */

	/* the flow goes to switch 2 and back to switch 1, same epochs */
	expect_one(RP_MSG_ACK, 1);
	lease_req(2, e2, 7, NULL, pkt_b, T0 + 1);
	expect_one(RP_MSG_REVOKE, 1);
	ack = rp_test_msg(RP_MSG_REVOKE_ACK, 1, 7, e1);
	ack.gen = first;
	deliver(&ack, T0 + 2);
	expect_one(RP_MSG_MIGRATE, 2);
	lease_req(1, e1, 7, NULL, pkt_a, T0 + 3);
	expect_one(RP_MSG_REVOKE, 2);
	ack = rp_test_msg(RP_MSG_REVOKE_ACK, 2, 7, e2);
	ack.gen = gens[2][7];
	deliver(&ack, T0 + 4);
	expect_one(RP_MSG_MIGRATE, 1);
	cr_assert_neq(gens[1][7], first, "a new holding, a new generation");

	/* ...resent now, and a late second ack of the first revoke: both refused */
	v = rp_test_msg(RP_MSG_WRITE, 1, 7, e1);
	v.seq = 2;
	v.gen = first;
	rp_test_set_state(&v, "from before");
	deliver(&v, T0 + 5);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NOT_OWNER);
	ack = rp_test_msg(RP_MSG_REVOKE_ACK, 1, 7, e1);
	ack.gen = first;
	deliver(&ack, T0 + 6);
	expect_none();
	cr_assert_eq(s->stats.revoke_ack_stale, 1);
	/* switch 1 still holds it: its current writes commit */
	write_state(1, e1, 7, 2, "v2", T0 + 7);
	expect_one(RP_MSG_ACK, 1);
}

Test(lease, an_owner_asking_again_while_revoked_has_given_the_flow_up)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	uint16_t first;
	struct rp_msg_view v;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	first = gens[1][7];
	lease_req(2, e2, 7, NULL, pkt_b, T0 + 1);
	expect_one(RP_MSG_REVOKE, 1);
	/* switch 1's ack is lost; it asks for the flow again, naming what it gave up */
	v = rp_test_msg(RP_MSG_LEASE_REQ, 1, 7, e1);
	v.gen = first;
	rp_test_set_pkt(&v, pkt_a, sizeof(pkt_a));
	deliver(&v, T0 + 2);
	v = out(0, NULL);
	cr_assert_eq(v.type, RP_MSG_MIGRATE, "the waiter is served first");
	cr_assert_eq(v.switch_id, 2);
	cr_assert_eq(out(1, NULL).type, RP_MSG_REVOKE, "then switch 1 waits on switch 2");
	s->nout = 0;
	cr_assert_eq(s->stats.revoke_ack_implied, 1);
	/* switch 2 acks: switch 1 gets a new holding, never the one it gave up */
	v = rp_test_msg(RP_MSG_REVOKE_ACK, 2, 7, e2);
	v.gen = first + 1;
	deliver(&v, T0 + 3);
	v = expect_one(RP_MSG_MIGRATE, 1);
	cr_assert(rp_gen_after(v.gen, first));
}

/*
 * A request the owner sent before it heard of the revoke (it names no
 * holding given up) may have crossed its grant: the owner may hold the
 * flow, so the request is not its ack.  spin found this (model/).
 */
Test(lease, an_owner_request_sent_before_the_revoke_is_not_its_ack)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	uint16_t first;
	struct rp_msg_view v;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	first = gens[1][7];
	lease_req(2, e2, 7, NULL, pkt_b, T0 + 1);
	expect_one(RP_MSG_REVOKE, 1);
	/* switch 1's second packet asked before the grant came: late, gen 0 */
	lease_req(1, e1, 7, NULL, pkt_a, T0 + 2);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_BUSY);
	cr_assert_eq(s->stats.revoke_ack_implied, 0);
	/* the revoke stands: switch 2 gets the flow on switch 1's real ack */
	v = rp_test_msg(RP_MSG_REVOKE_ACK, 1, 7, e1);
	v.gen = first;
	deliver(&v, T0 + 3);
	v = expect_one(RP_MSG_MIGRATE, 2);
	cr_assert(rp_gen_after(v.gen, first));
}

Test(lease, a_seq_written_twice_with_two_states_is_refused)
{
	uint32_t e = heartbeat(1, T0);
	struct rp_msg_view v;

	lease_req(1, e, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	write_state(1, e, 7, 1, "v1", T0);
	expect_one(RP_MSG_ACK, 1);
	write_state(1, e, 7, 1, "v1 but other", T0);
	v = expect_one(RP_MSG_REJECT, 1);
	cr_assert_eq(v.reason, RP_REJ_CONFLICT, "the switch is out of step: it must re-sync");
	cr_assert_eq(v.seq, 1);
	cr_assert_eq(s->stats.write_conflict, 1);
	lease_req(1, e, 7, NULL, NULL, T0);
	v = expect_one(RP_MSG_MIGRATE, 1);
	expect_state(&v, "v1", 1);
}

Test(lease, waiting_request_is_granted_when_the_owner_lapses)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0 + 40);
	uint64_t t;
	struct rp_msg_view v;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	lease_req(2, e2, 7, NULL, pkt_b, T0 + 50);
	expect_one(RP_MSG_REVOKE, 1);

	/* the owner stays silent: revokes are resent until it lapses */
	for (t = T0 + 51; t < T0 + LEASE; t++) {
		rp_store_tick(s, MS(t));
		for (unsigned int i = 0; i < s->nout; i++)
			cr_assert_eq(out(i, NULL).type, RP_MSG_REVOKE);
		s->nout = 0;
	}
	cr_assert_geq(s->stats.revoke_retx, 1);
	cr_assert_eq(s->nwaiting, 1);

	rp_store_tick(s, MS(T0 + LEASE));
	v = expect_one(RP_MSG_MIGRATE, 2);
	expect_state(&v, "v0", 0);
	expect_pkt(&v, pkt_b);
	cr_assert_eq(s->stats.wait_done_lapse, 1);
}

Test(lease, waiting_request_times_out_when_the_owner_never_acks)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	struct rp_msg_view v;
	uint64_t t;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	lease_req(2, e2, 7, NULL, pkt_b, T0 + 1);
	expect_one(RP_MSG_REVOKE, 1);
	for (t = T0 + 2; t < T0 + 1 + WAIT; t++) {
		if (t % 50 == 0) {	/* both keep their sessions */
			heartbeat(1, t);
			heartbeat(2, t);
		}
		rp_store_tick(s, MS(t));
		s->nout = 0;
	}
	rp_store_tick(s, MS(T0 + 1 + WAIT));
	v = expect_one(RP_MSG_REJECT, 2);
	cr_assert_eq(v.reason, RP_REJ_TIMEOUT);
	expect_pkt(&v, pkt_b);
	cr_assert_eq(s->nwaiting, 0);

	/* the flow is still switch 1's */
	write_state(1, e1, 7, 1, "v1", T0 + 2 + WAIT);
	expect_one(RP_MSG_ACK, 1);
}

Test(lease, one_waiter_per_flow_and_a_bounded_queue)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0), e3 = heartbeat(3, T0);

	for (uint32_t flow = 1; flow <= 3; flow++) {
		lease_req(1, e1, flow, "v0", NULL, T0);
		expect_one(RP_MSG_GRANT, 1);
	}
	lease_req(2, e2, 1, NULL, pkt_b, T0 + 1);
	expect_one(RP_MSG_REVOKE, 1);

	/* the same requester again: it keeps its place, no second revoke */
	lease_req(2, e2, 1, NULL, pkt_b, T0 + 2);
	expect_none();
	cr_assert_eq(s->stats.wait_refreshed, 1);

	/* another requester for the same flow */
	lease_req(3, e3, 1, NULL, pkt_a, T0 + 3);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 3).reason, RP_REJ_BUSY);

	/* the queue holds two */
	lease_req(3, e3, 2, NULL, pkt_a, T0 + 4);
	expect_one(RP_MSG_REVOKE, 1);
	lease_req(3, e3, 3, NULL, pkt_a, T0 + 5);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 3).reason, RP_REJ_QUEUE_FULL);
	cr_assert_eq(s->nwaiting, 2);
}

Test(lease, waiter_whose_own_session_lapsed_is_dropped)
{
	uint32_t e2 = heartbeat(2, T0), e1 = heartbeat(1, T0 + 5);

	lease_req(1, e1, 7, "v0", NULL, T0 + 5);
	expect_one(RP_MSG_GRANT, 1);
	lease_req(2, e2, 7, NULL, pkt_b, T0 + 10);
	expect_one(RP_MSG_REVOKE, 1);
	/* switch 2 lapses at T0 + LEASE, switch 1 at T0 + 5 + LEASE */
	rp_store_tick(s, MS(T0 + 5 + LEASE));
	expect_none();
	cr_assert_eq(s->stats.wait_dropped, 1);
	cr_assert_eq(s->nwaiting, 0);

	/* the flow is free: whoever joins next takes it with its state */
	uint32_t e3 = heartbeat(3, T0 + 200);

	lease_req(3, e3, 7, NULL, NULL, T0 + 200);
	struct rp_msg_view v = expect_one(RP_MSG_MIGRATE, 3);

	expect_state(&v, "v0", 0);
}

Test(lease, writes_commit_in_sequence_and_never_twice)
{
	uint32_t e = heartbeat(1, T0);
	struct rp_msg_view v;

	lease_req(1, e, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);

	write_state(1, e, 7, 1, "v1", T0);
	v = expect_one(RP_MSG_ACK, 1);
	cr_assert_eq(v.seq, 1);
	expect_pkt(&v, pkt_a);

	write_state(1, e, 7, 3, "v3", T0);	/* 2 was lost: a full state skips it */
	cr_assert_eq(expect_one(RP_MSG_ACK, 1).seq, 3);

	write_state(1, e, 7, 2, "v2", T0);	/* reordered, older */
	v = expect_one(RP_MSG_REJECT, 1);
	cr_assert_eq(v.reason, RP_REJ_STALE);
	cr_assert_eq(v.seq, 3, "a stale reject carries the committed seq");

	write_state(1, e, 7, 3, "v3", T0);	/* duplicate: ACKed, not applied */
	v = expect_one(RP_MSG_ACK, 1);
	cr_assert_eq(v.seq, 3);
	expect_pkt(&v, pkt_a);
	cr_assert_eq(s->stats.write_commit, 2);
	cr_assert_eq(s->stats.write_dup, 1);
	cr_assert_eq(s->stats.reject[RP_REJ_STALE], 1);

	lease_req(1, e, 7, NULL, NULL, T0);
	v = expect_one(RP_MSG_MIGRATE, 1);
	expect_state(&v, "v3", 3);
}

Test(lease, sequence_numbers_wrap)
{
	uint32_t e = heartbeat(1, T0);
	struct rp_msg_view v;

	lease_req(1, e, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	/* 2^31 - 1 ahead is the farthest a seq may jump */
	write_state(1, e, 7, 0xfffffffeu, "too far", T0);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_STALE);
	write_state(1, e, 7, 0x7fffffffu, "half", T0);
	expect_one(RP_MSG_ACK, 1);
	write_state(1, e, 7, 0xfffffffeu, "a", T0);
	expect_one(RP_MSG_ACK, 1);
	write_state(1, e, 7, 0xffffffffu, "b", T0);
	expect_one(RP_MSG_ACK, 1);
	write_state(1, e, 7, 0, "c", T0);
	cr_assert_eq(expect_one(RP_MSG_ACK, 1).seq, 0);
	write_state(1, e, 7, 0xffffffffu, "b", T0);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_STALE);
	lease_req(1, e, 7, NULL, NULL, T0);
	v = expect_one(RP_MSG_MIGRATE, 1);
	expect_state(&v, "c", 0);
}

Test(lease, only_the_owner_of_a_live_session_may_write)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);

	write_state(2, e2, 7, 1, "forged", T0);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 2).reason, RP_REJ_NOT_OWNER);
	write_state(2, e2, 8, 1, "no such flow", T0);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 2).reason, RP_REJ_NOT_OWNER);
	write_state(1, e1 + 1, 7, 1, "wrong epoch", T0);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NO_SESSION);
	write_state(1, e1, 7, 1, "too late", T0 + LEASE);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NO_SESSION);

	/* rejoined with a new epoch: the old lease is gone */
	e1 = heartbeat(1, T0 + LEASE);
	write_state(1, e1, 7, 1, "new epoch", T0 + LEASE);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NOT_OWNER);
	lease_req(1, e1, 7, NULL, NULL, T0 + LEASE);
	struct rp_msg_view v = expect_one(RP_MSG_MIGRATE, 1);

	expect_state(&v, "v0", 0);
}

Test(lease, snapshot_and_final_state_on_revoke_ack)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	struct rp_msg_view v = rp_test_msg(RP_MSG_SNAPSHOT, 1, 9, e1);

	lease_req(1, e1, 9, "count=0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	v.gen = gens[1][9];
	v.seq = 5;
	rp_test_set_state(&v, "count=50");
	deliver(&v, T0 + 1);
	cr_assert_eq(expect_one(RP_MSG_ACK, 1).seq, 5);
	deliver(&v, T0 + 1);
	expect_one(RP_MSG_ACK, 1);
	cr_assert_eq(s->stats.snapshot_commit, 1);
	cr_assert_eq(s->stats.snapshot_dup, 1);
	/* an older snapshot, overtaken by seq 5: acked with 5, not applied, not refused */
	v.seq = 4;
	rp_test_set_state(&v, "count=40");
	deliver(&v, T0 + 1);
	cr_assert_eq(expect_one(RP_MSG_ACK, 1).seq, 5);
	cr_assert_eq(s->stats.snapshot_old, 1);
	/* a write that old is out of step: refused */
	write_state(1, e1, 9, 3, "count=30", T0 + 1);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_STALE);

	lease_req(2, e2, 9, NULL, NULL, T0 + 2);
	expect_one(RP_MSG_REVOKE, 1);
	v = rp_test_msg(RP_MSG_REVOKE_ACK, 1, 9, e1);
	v.gen = gens[1][9];
	v.seq = 6;
	rp_test_set_state(&v, "count=57");
	deliver(&v, T0 + 3);
	v = expect_one(RP_MSG_MIGRATE, 2);
	expect_state(&v, "count=57", 6);
	cr_assert_eq(s->stats.revoke_ack_state, 1);
}

Test(lease, table_full_is_refused)
{
	uint32_t e = heartbeat(1, T0);

	for (uint32_t flow = 1; flow <= cfg.max_flows; flow++) {
		lease_req(1, e, flow, "v0", NULL, T0);
		expect_one(RP_MSG_GRANT, 1);
	}
	lease_req(1, e, 100, "v0", pkt_a, T0);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_TABLE_FULL);
	lease_req(1, e, 1, NULL, NULL, T0);
	expect_one(RP_MSG_MIGRATE, 1);
}

Test(lease, bad_input_is_counted_and_changes_nothing)
{
	uint32_t e = heartbeat(1, T0);
	uint8_t buf[RP_DGRAM_MAX];
	struct rp_sockaddr from = switch_addr(1);
	struct rp_msg_view v = rp_test_msg(RP_MSG_GRANT, 1, 7, e);	/* wrong direction */
	size_t len;

	lease_req(1, e, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);

	rp_test_set_state(&v, "evil");
	len = rp_test_encode(buf, &v);
	rp_store_handle(s, buf, len, &from, MS(T0));
	cr_assert_eq(s->stats.bad[RP_E_DIRECTION], 1);

	v = rp_test_msg(RP_MSG_WRITE, 1, 7, e);
	v.seq = 9;
	rp_test_set_state(&v, "evil");
	len = rp_test_encode(buf, &v);
	buf[0] = 9;	/* version */
	rp_store_handle(s, buf, len, &from, MS(T0));
	rp_store_handle(s, buf, 3, &from, MS(T0));
	cr_assert_eq(s->stats.bad[RP_E_VERSION], 1);
	cr_assert_eq(s->stats.bad[RP_E_TRUNCATED], 1);
	expect_none();

	lease_req(1, e, 7, NULL, NULL, T0);
	v = expect_one(RP_MSG_MIGRATE, 1);
	expect_state(&v, "v0", 0);
}

/* ---- deletes: EXPIRE, generations across a delete, orphans ---- */

static void expire(uint16_t id, uint32_t epoch, uint32_t flow, uint16_t gen, uint64_t now_ms)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_EXPIRE, id, flow, epoch);

	v.gen = gen;
	v.seq = 1;
	deliver(&v, now_ms);
}

/* A REJECT to `to` for `reason` that names the holding (epoch, gen) and flow. */
static void expect_reject_naming(uint16_t to, uint8_t reason, uint32_t epoch, uint16_t gen,
				 uint32_t flow)
{
	struct rp_msg_view v = expect_one(RP_MSG_REJECT, to);

	cr_assert_eq(v.reason, reason, "reject %s, expected %s", rp_reject_name(v.reason),
		     rp_reject_name(reason));
	cr_assert_eq(v.epoch, epoch);
	cr_assert_eq(v.gen, gen);
	cr_assert_eq(rp_test_flow_of(&v.key), flow);
}

static void revoke_ack(uint16_t id, uint32_t epoch, uint32_t flow, uint64_t now_ms)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_REVOKE_ACK, id, flow, epoch);

	v.gen = gens[id][flow];
	deliver(&v, now_ms);
}

Test(lease, expire_by_the_owner_deletes_the_flow_and_acks_it)
{
	uint32_t e = heartbeat(1, T0);
	struct rp_msg_view v;

	lease_req(1, e, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	write_state(1, e, 7, 1, "v1", T0 + 1);
	expect_one(RP_MSG_ACK, 1);

	expire(1, e, 7, gens[1][7], T0 + 2);
	v = expect_one(RP_MSG_EXPIRE_ACK, 1);
	cr_assert_eq(v.flags, 0, "no state, no packet");
	cr_assert_eq(v.app_id, RP_APP_NAT);
	cr_assert_eq(v.switch_id, 1);
	cr_assert_eq(v.epoch, e);
	cr_assert_eq(v.gen, gens[1][7]);
	cr_assert_eq(rp_test_flow_of(&v.key), 7);
	cr_assert_eq(s->flows.count, 0);
	cr_assert_eq(s->stats.expire_deleted, 1);

	/* gone: a lookup finds nothing, a resent EXPIRE is answered no_flow */
	lease_req(1, e, 7, NULL, NULL, T0 + 3);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 1).reason, RP_REJ_NO_FLOW);
	expire(1, e, 7, gens[1][7], T0 + 4);
	expect_reject_naming(1, RP_REJ_NO_FLOW, e, gens[1][7], 7);
	cr_assert_eq(s->stats.expire_no_flow, 1);
}

Test(lease, expire_of_a_flow_never_here_is_no_flow)
{
	uint32_t e = heartbeat(1, T0);

	expire(1, e, 9, 3, T0);
	expect_reject_naming(1, RP_REJ_NO_FLOW, e, 3, 9);
	cr_assert_eq(s->stats.expire_no_flow, 1);
	cr_assert_eq(s->stats.reject[RP_REJ_NO_FLOW], 1);
}

Test(lease, expire_of_another_holding_or_switch_is_not_owner)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	uint16_t g;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	g = gens[1][7];
	expire(2, e2, 7, g, T0 + 1);
	expect_reject_naming(2, RP_REJ_NOT_OWNER, e2, g, 7);
	expire(1, e1, 7, (uint16_t)(g - 1), T0 + 2);
	expect_reject_naming(1, RP_REJ_NOT_OWNER, e1, (uint16_t)(g - 1), 7);
	expire(1, e1 + 1, 7, g, T0 + 3);
	expect_reject_naming(1, RP_REJ_NOT_OWNER, e1 + 1, g, 7);
	cr_assert_eq(s->stats.expire_not_owner, 3);
	cr_assert_eq(s->flows.count, 1, "nothing was deleted");
	write_state(1, e1, 7, 1, "v1", T0 + 4);
	expect_one(RP_MSG_ACK, 1);
}

Test(lease, expire_while_a_request_waits_hands_the_flow_to_the_waiter)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	uint16_t g;
	uint16_t to;
	struct rp_msg_view v;

	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	write_state(1, e1, 7, 1, "v1", T0);
	expect_one(RP_MSG_ACK, 1);
	g = gens[1][7];
	lease_req(2, e2, 7, NULL, pkt_b, T0 + 1);
	expect_one(RP_MSG_REVOKE, 1);

	/* the EXPIRE crossed the revoke: it stands for the ack */
	expire(1, e1, 7, g, T0 + 2);
	cr_assert_eq(s->nout, 2);
	v = out(0, &to);
	cr_assert_eq(v.type, RP_MSG_MIGRATE);
	cr_assert_eq(to, 2);
	expect_state(&v, "v1", 1);
	expect_pkt(&v, pkt_b);
	cr_assert(rp_gen_after(v.gen, g));
	v = out(1, &to);
	cr_assert_eq(v.type, RP_MSG_REJECT);
	cr_assert_eq(v.reason, RP_REJ_NOT_OWNER, "the switch stops asking: the flow is 2's");
	cr_assert_eq(to, 1);
	cr_assert_eq(v.gen, g);
	s->nout = 0;
	cr_assert_eq(s->flows.count, 1);
	cr_assert_eq(s->nwaiting, 0);
	cr_assert_eq(s->stats.expire_handover, 1);
	cr_assert_eq(s->stats.expire_deleted, 0);
}

/*
 * The last record moves into a deleted one's place: the request waiting on
 * it must follow it, or its grant would go out for whatever is there now.
 */
Test(lease, a_delete_moves_the_last_record_and_its_waiter_follows)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	struct rp_msg_view v;

	for (uint32_t flow = 1; flow <= 3; flow++) {
		lease_req(1, e1, flow, flow == 3 ? "three" : "v0", NULL, T0);
		expect_one(RP_MSG_GRANT, 1);
	}
	lease_req(2, e2, 3, NULL, pkt_b, T0 + 1);
	expect_one(RP_MSG_REVOKE, 1);
	expire(1, e1, 1, gens[1][1], T0 + 2);
	expect_one(RP_MSG_EXPIRE_ACK, 1);
	cr_assert_eq(s->flows.count, 2);

	revoke_ack(1, e1, 3, T0 + 3);
	v = expect_one(RP_MSG_MIGRATE, 2);
	cr_assert_eq(rp_test_flow_of(&v.key), 3);
	expect_state(&v, "three", 0);
	cr_assert_eq(s->nwaiting, 0);
	write_state(2, e2, 3, 1, "three by 2", T0 + 4);
	expect_one(RP_MSG_ACK, 2);
	lease_req(1, e1, 2, NULL, NULL, T0 + 4);
	cr_assert_eq(expect_one(RP_MSG_MIGRATE, 1).switch_id, 1, "flow 2 is untouched");
}

/* A request that names the holding its switch gave up (gen); state may be NULL. */
static void request_naming(uint16_t id, uint32_t epoch, uint32_t flow, uint16_t gen,
			   const char *proposal, uint64_t now_ms)
{
	struct rp_msg_view v = rp_test_msg(RP_MSG_LEASE_REQ, id, flow, epoch);

	v.gen = gen;
	if (proposal)
		rp_test_set_state(&v, proposal);
	deliver(&v, now_ms);
}

/* Switch `from` gives flow up to `to` through a revoke. */
static void hand_over(uint16_t from, uint32_t e_from, uint16_t to, uint32_t e_to, uint32_t flow,
		      uint64_t now_ms)
{
	request_naming(to, e_to, flow, gens[to][flow], NULL, now_ms);
	expect_one(RP_MSG_REVOKE, from);
	revoke_ack(from, e_from, flow, now_ms);
	expect_one(RP_MSG_MIGRATE, to);
}

/*
 * Switch a makes flow 7, which goes to b and back `rounds` times (some
 * generations in), then expires it at T0 + 2 * rounds + 1.  Returns the
 * generation a gave up.
 */
static uint16_t expired_after_rounds(uint16_t a, uint32_t e_a, uint16_t b, uint32_t e_b,
				     unsigned int rounds)
{
	uint16_t given_up;

	lease_req(a, e_a, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, a);
	for (unsigned int i = 0; i < rounds; i++) {
		hand_over(a, e_a, b, e_b, 7, T0 + 2 * i + 1);
		hand_over(b, e_b, a, e_a, 7, T0 + 2 * i + 2);
	}
	given_up = gens[a][7];
	expire(a, e_a, 7, given_up, T0 + 2 * rounds + 1);
	expect_one(RP_MSG_EXPIRE_ACK, a);
	return given_up;
}

Test(lease, a_flow_made_anew_after_a_delete_starts_after_the_given_up_holding)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	uint16_t given_up = expired_after_rounds(1, e1, 2, e2, 1);
	struct rp_msg_view v;

	/* a new packet of the flow at once: the new record's holding is a later one */
	request_naming(1, e1, 7, given_up, "anew", T0 + 10);
	v = expect_one(RP_MSG_GRANT, 1);
	cr_assert(rp_gen_after(v.gen, given_up), "gen %u is not after the given-up %u", v.gen,
		  given_up);
	expect_state(&v, "anew", 0);
}

Test(lease, a_waiter_naming_a_given_up_holding_is_granted_after_it)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	uint16_t given_up = expired_after_rounds(2, e2, 1, e1, 2);
	struct rp_msg_view v;

	/* switch 1 makes it anew (it names nothing), switch 2 asks and waits */
	lease_req(1, e1, 7, "anew", NULL, T0 + 10);
	cr_assert(!rp_gen_after(expect_one(RP_MSG_GRANT, 1).gen, given_up));
	request_naming(2, e2, 7, given_up, NULL, T0 + 11);
	expect_one(RP_MSG_REVOKE, 1);
	revoke_ack(1, e1, 7, T0 + 12);
	v = expect_one(RP_MSG_MIGRATE, 2);
	cr_assert(rp_gen_after(v.gen, given_up), "gen %u is not after the given-up %u", v.gen,
		  given_up);
}

/* Ticks at t, with switches in keep[] renewing their sessions first. */
static void tick_keeping(const uint16_t *keep, unsigned int n, uint64_t t)
{
	for (unsigned int i = 0; i < n; i++)
		heartbeat(keep[i], t);
	rp_store_tick(s, MS(t));
	expect_none();
}

Test(lease, an_orphan_is_reclaimed_once_its_owner_lapsed_and_the_timeout_passed)
{
	uint32_t e1 = heartbeat(1, T0), e2 = heartbeat(2, T0);
	const uint16_t both[] = { 1, 2 }, two[] = { 2 };
	uint64_t t;

	cfg.orphan_ns = MS(500);
	lease_req(1, e1, 7, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 1);
	lease_req(2, e2, 8, "v0", NULL, T0);
	expect_one(RP_MSG_GRANT, 2);

	/* long past the timeout, but both owners live: nothing goes */
	for (t = T0 + 50; t <= T0 + 1000; t += 50)
		tick_keeping(both, 2, t);
	write_state(1, e1, 7, 1, "v1", T0 + 1000);
	expect_one(RP_MSG_ACK, 1);
	cr_assert_eq(s->flows.count, 2);

	/* switch 1 lapses at T0 + 1000 + LEASE; its flow was touched at T0 + 1000 */
	for (t = T0 + 1050; t <= T0 + 1500; t += 50)
		tick_keeping(two, 1, t);
	cr_assert_eq(s->flows.count, 2, "lapsed, but touched less than the timeout ago");
	/* a tick looks for orphans once per tick period (LEASE / 8) */
	tick_keeping(two, 1, T0 + 1520);
	cr_assert_eq(s->flows.count, 1);
	cr_assert_eq(s->stats.orphans_reclaimed, 1);
	lease_req(2, e2, 7, NULL, NULL, T0 + 1521);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 2).reason, RP_REJ_NO_FLOW, "flow 7 is gone");
	lease_req(2, e2, 8, NULL, NULL, T0 + 1522);
	expect_one(RP_MSG_MIGRATE, 2);
}

Test(lease, a_full_table_reclaims_an_orphan_or_refuses)
{
	uint32_t e1 = heartbeat(1, T0), e2;

	cfg.orphan_ns = MS(500);
	for (uint32_t flow = 1; flow <= cfg.max_flows; flow++) {
		lease_req(1, e1, flow, "v0", NULL, T0);
		expect_one(RP_MSG_GRANT, 1);
	}
	/* switch 1 lapses at T0 + LEASE; its flows are not orphans before T0 + 500 */
	e2 = heartbeat(2, T0 + 300);
	lease_req(2, e2, 100, "v0", NULL, T0 + 300);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 2).reason, RP_REJ_TABLE_FULL);

	e2 = heartbeat(2, T0 + 600);
	for (uint32_t flow = 100; flow < 100 + cfg.max_flows; flow++) {
		lease_req(2, e2, flow, "v0", NULL, T0 + 600);
		expect_one(RP_MSG_GRANT, 2);
		cr_assert_eq(s->flows.count, cfg.max_flows);
	}
	cr_assert_eq(s->stats.orphans_reclaimed, cfg.max_flows);
	/* every flow is a live switch's now: refused as before */
	lease_req(2, e2, 200, "v0", NULL, T0 + 601);
	cr_assert_eq(expect_one(RP_MSG_REJECT, 2).reason, RP_REJ_TABLE_FULL);
	cr_assert_eq(s->stats.reject[RP_REJ_TABLE_FULL], 2);
}
