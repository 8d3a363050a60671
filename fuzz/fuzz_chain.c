// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the chain's frame parsing.  One shard of replica 2 of a
 * chain (the middle of three, or the tail of two) takes what its links
 * received through rp_chain_link_input(), as link_read() hands it over:
 * each record's bytes arrive on the link from the predecessor (control bit
 * 0 clear) or from the successor (set), and whatever is not a whole frame
 * yet waits for the next record on that link.  A link that fails is taken
 * up again by the next record on it, handshake first.  The first byte of the
 * input picks shard 0 or 1, middle or tail, and links that start ready (as
 * after their handshake) or not.  No socket is read or written: the links'
 * descriptors are /dev/null, what they would send stays queued.
 */
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "redplane/log.h"
#include "store.h"

#define FLOWS		16
#define IN_MAX		(1u << 16)	/* as chain.c's receive buffer */

static struct rp_store_cfg cfg = {
	.shards = 2,
	.lease_ms = 100,
	.max_flows = FLOWS,
	.wait_queue = 2,
	.wait_ms = 200,
};
static struct rp_sessions sessions;
static struct rp_shard shard;
static struct rp_chain chain = {
	.name = "default",
	.shards = 2,
	.name_hash = FUZZ_CHAIN_HASH,
	.self = { .id = 2, .inc = 22 },
};
static struct rp_shard_chain *sc;
static struct rp_pending *pend;	/* 7 MB: allocated once */
static int devnull = -1;

struct link_in {
	uint8_t buf[IN_MAX];
	size_t len;
};
static struct link_in in_up, in_down;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	rp_log_set_level(RP_LOG_WARN);
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	pend = calloc(RP_CHAIN_PENDING, sizeof(*pend));
	if (devnull < 0 || !pend || rp_sessions_init(&sessions, cfg.lease_ms))
		abort();
	pthread_mutex_init(&chain.lock, NULL);
	return 0;
}

static void link_up(struct rp_link *l, bool ready, const struct rp_chain_member *peer)
{
	l->fd = dup(devnull);
	l->ready = ready;
	l->peer_id = ready ? peer->id : 0;
	l->peer_inc = ready ? peer->inc : 0;
	if (l->fd < 0)
		abort();
}

static void check(const struct rp_shard *s)
{
	const struct rp_shard_chain *c = s->chain;

	CHECK(c->pend_count <= RP_CHAIN_PENDING && c->pend_first < RP_CHAIN_PENDING);
	for (uint32_t i = 0; i < c->pend_count; i++) {
		const struct rp_pending *p = &c->pend[(c->pend_first + i) % RP_CHAIN_PENDING];
		const struct rp_pending *q = &c->pend[(c->pend_first + i + 1) % RP_CHAIN_PENDING];

		CHECK(p->len <= RP_LINK_FRAME_MAX);
		/* entries wait in the order they came, each once */
		CHECK(i + 1 == c->pend_count || q->idx > p->idx);
	}
	CHECK(s->flows.count <= FLOWS);
	for (uint32_t i = 0; i < s->flows.count; i++)
		CHECK(s->flows.flows[i].state_len <= RP_STATE_MAX);
	CHECK(c->up.out.off <= c->up.out.len && c->up.out.len <= c->up.out.cap);
	CHECK(c->down.out.off <= c->down.out.len && c->down.out.len <= c->down.out.cap);
	CHECK(s->nout <= RP_BATCH);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_shard *s = &shard;
	struct fuzz_rec r;
	uint8_t setup;

	if (size < 1)
		return 0;
	setup = *data++;
	size--;

	memset(sessions.rec, 0, RP_SWITCHES * sizeof(*sessions.rec));
	sessions.first_epoch = FUZZ_STORE_FIRST_EPOCH;
	if (rp_shard_init(s, setup & 1, &cfg, &sessions, FLOWS))
		abort();
	/* replica 2 after replica 1, and before replica 3 unless the tail */
	chain.conf = (struct rp_chain_conf){
		.version = 5,
		.n = setup & 2 ? 2 : 3,
		.m = { { .id = FUZZ_PRED_ID, .inc = FUZZ_PRED_INC }, { .id = 2, .inc = 22 },
		       { .id = 3, .inc = 33 } },
	};
	sc = calloc(1, sizeof(*sc));
	if (!sc)
		abort();
	sc->ch = &chain;
	sc->conf = chain.conf;
	sc->pos = 1;
	sc->tail = chain.conf.n == 2;
	sc->lineage = 0x11;
	sc->pend = pend;
	sc->listen_fd = -1;
	link_up(&sc->up, setup & 4, &chain.conf.m[0]);
	if (sc->tail)
		sc->down.fd = -1;
	else
		link_up(&sc->down, setup & 4, &chain.conf.m[2]);
	s->chain = sc;
	in_up.len = in_down.len = 0;

	while (fuzz_next(&data, &size, &r)) {
		bool down = r.ctl & 1;
		struct rp_link *l = down ? &sc->down : &sc->up;
		struct link_in *in = down ? &in_down : &in_up;
		size_t n = r.len < IN_MAX - in->len ? r.len : IN_MAX - in->len;
		long used;

		if (down && sc->tail)
			continue;	/* a tail has no successor */
		if (l->fd < 0) {
			link_up(l, false, NULL);
			in->len = 0;
		}
		memcpy(in->buf + in->len, r.p, n);
		in->len += n;
		used = rp_chain_link_input(s, l, in->buf, in->len);
		if (used < 0) {
			CHECK(l->fd < 0);
			in->len = 0;
		} else {
			CHECK((size_t)used <= in->len);
			memmove(in->buf, in->buf + used, in->len - (size_t)used);
			in->len -= (size_t)used;
		}
		check(s);
		s->nout = 0;
	}

	if (sc->up.fd >= 0)
		close(sc->up.fd);
	if (sc->down.fd >= 0)
		close(sc->down.fd);
	free(sc->up.out.p);
	free(sc->down.out.p);
	free(sc);
	s->chain = NULL;
	rp_shard_free(s);
	return 0;
}
