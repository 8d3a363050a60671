// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the store's message handling.  A shard as the lease
 * tests set one up (four flows, a wait queue of two, a virtual clock) takes
 * a sequence of datagrams through rp_store_handle(); each record's control
 * byte says which of four switch addresses sends it, how far the clock moves
 * first and whether the shard ticks.  After every datagram the invariants
 * below must hold; at the end of the input the shard is freed (leaks count).
 */
#include <arpa/inet.h>
#include <string.h>

#include "fuzz.h"
#include "store.h"

#define NS_PER_MS	1000000ull
#define FLOWS		4

static struct rp_store_cfg cfg = {
	.shards = 1,
	.lease_ms = 100,
	.max_flows = FLOWS,
	.wait_queue = 2,
	.wait_ms = 200,
	.orphan_ns = 300 * NS_PER_MS,	/* reclaimed within an input's span */
};
static struct rp_sessions sessions;
static struct rp_shard shard;

/*
 * What the flow records were before the datagram.  A delete (EXPIRE) moves
 * the last record into the freed place, so records are matched by key.
 */
static struct rp_flow before[FLOWS];
static uint32_t count_before;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (rp_sessions_init(&sessions, cfg.lease_ms))
		abort();
	return 0;
}

static uint64_t sum(const _Atomic uint64_t *c, size_t n)
{
	uint64_t t = 0;

	for (size_t i = 0; i < n; i++)
		t += c[i];
	return t;
}

static const struct rp_flow *was(const struct rp_flow *f)
{
	for (uint32_t i = 0; i < count_before; i++)
		if (before[i].app_id == f->app_id && rp_key_eq(&before[i].key, &f->key))
			return &before[i];
	return NULL;
}

static void check(struct rp_shard *s, uint64_t delivered)
{
	const struct rp_store_stats *st = &s->stats;
	const struct rp_flow *b;
	uint32_t waiting = 0;

	/* every datagram counted once: dropped by reason, misrouted, or by type */
	CHECK(st->rx_datagrams == delivered);
	CHECK(sum(st->bad, __RP_E_MAX) + st->misrouted + sum(st->rx_type, __RP_MSG_MAX) ==
	      delivered);
	/* flows are made by grants, gone by deletes, never more than the table holds */
	CHECK(s->flows.count == st->grant - st->expire_deleted - st->orphans_reclaimed);
	CHECK(s->flows.count <= FLOWS);

	for (uint32_t i = 0; i < s->flows.count; i++) {
		const struct rp_flow *f = &s->flows.flows[i];

		CHECK(f->state_len <= RP_STATE_MAX);
		CHECK(f->app_id > RP_APP_NONE && f->app_id < __RP_APP_MAX);
		CHECK(rp_flow_lookup(&s->flows, f->app_id, &f->key) == f);
		CHECK(!f->owner || f->epoch);
		if (f->waiter) {
			CHECK(f->waiter <= cfg.wait_queue);
			CHECK(s->waiters[f->waiter - 1].flow == f);
		}
		b = was(f);
		if (!b) {
			/* new: its proposal committed as seq 0 (its holding follows a named one) */
			CHECK(f->seq == 0);
			continue;
		}
		/*
		 * A committed seq never goes back; a holding never goes back (it
		 * may leap: a new holding follows the one its requester names)
		 */
		CHECK(f->seq == b->seq || rp_seq_after(f->seq, b->seq));
		CHECK(f->gen == b->gen || rp_gen_after(f->gen, b->gen));
	}
	for (uint32_t w = 0; w < cfg.wait_queue; w++) {
		const struct rp_waiter *wt = &s->waiters[w];

		if (!wt->flow)
			continue;
		waiting++;
		CHECK(wt->flow >= s->flows.flows && wt->flow < s->flows.flows + s->flows.count);
		CHECK(wt->flow->waiter == w + 1);
		CHECK(wt->pkt_len <= RP_PKT_MAX);
	}
	CHECK(waiting == s->nwaiting);

	/* every reply is a message a switch takes */
	for (unsigned int o = 0; o < s->nout; o++) {
		struct rp_msg_view v;

		CHECK(rp_msg_decode(s->out[o].buf, s->out_iov[o].iov_len, &v) == 0);
		CHECK(!rp_msg_from_switch(v.type));
	}
	s->nout = 0;
	memcpy(before, s->flows.flows, sizeof(*before) * s->flows.count);
	count_before = s->flows.count;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_shard *s = &shard;
	uint64_t now = 1000 * NS_PER_MS, delivered = 0;
	struct fuzz_rec r;

	/* a fresh store run with a known first epoch, so that inputs replay */
	memset(sessions.rec, 0, RP_SWITCHES * sizeof(*sessions.rec));
	sessions.first_epoch = FUZZ_STORE_FIRST_EPOCH;
	if (rp_shard_init(s, 0, &cfg, &sessions, FLOWS))
		abort();
	count_before = 0;

	while (fuzz_next(&data, &size, &r)) {
		struct rp_sockaddr from;
		struct sockaddr_in *in = (struct sockaddr_in *)&from.ss;

		memset(&from, 0, sizeof(from));
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = htons(10000 + (r.ctl & 3));
		from.len = sizeof(*in);
		/* up to 124 ms at a time: sessions lapse, waits time out */
		now += (uint64_t)(r.ctl >> 3) * 4 * NS_PER_MS;
		if (r.ctl & 4) {
			rp_store_tick(s, now);
			check(s, delivered);
		}
		rp_store_handle(s, r.p, r.len, &from, now);
		check(s, ++delivered);
	}
	rp_shard_free(s);
	return 0;
}
