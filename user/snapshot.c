// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The bounded-inconsistency mode (--mode bounded, docs/APPS.md): the data
 * plane changes a held flow's state in place and forwards the packet at
 * once; every --snapshot-ms this sends the flow's chain a SNAPSHOT of each
 * held flow whose state changed since the last one the store acknowledged,
 * in batches.  A revoke of a held flow comes here (the data plane passes it
 * up after giving the lease up) and is acked with the flow's final state,
 * so a planned handover loses nothing.  A crash loses what was counted
 * after the last acknowledged snapshot: at most one period, plus the
 * snapshot's round trip to the chain's tail.
 *
 * Snapshot sequence numbers are rp-load's, per holding: from the seq the
 * grant brought (the store's committed one), one more per snapshot sent,
 * never used twice, so that no two snapshots of a holding carry one seq
 * with two states.  The data plane still records the newest seq ACKed
 * (f->acked), which says whether the last snapshot arrived.
 *
 * The table of what was sent is rebuilt every round from the flows read:
 * flows gone or no longer held drop out of it.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent.h"
#include "redplane/codec.h"
#include "redplane/log.h"
#include "redplane.skel.h"

#define SNAP_BATCH	64	/* datagrams per sendmmsg */
#define NOTHING_SENT	0xff	/* state_len of an entry that sent nothing yet */

/* What was sent for one holding of a flow. */
struct snap_ent {
	struct rp_flow_key key;
	uint32_t round;		/* the round that filled it; other values: empty */
	uint32_t epoch;
	uint32_t seq;		/* the newest seq sent */
	uint16_t gen;
	uint8_t state_len;	/* of the state last sent, or NOTHING_SENT */
	uint8_t state[RP_STATE_MAX];
};

struct snap_tab {
	struct snap_ent *e;
	uint32_t cap;		/* a power of two, or 0 */
	uint32_t round;
};

struct rp_snap {
	struct snap_tab tab[2];	/* [cur]: the last round's; the other is built next */
	unsigned int cur;
	uint32_t round;
	struct rp_flow_read read;	/* one round's read of the flows map */
	/* the batch being filled */
	uint8_t buf[SNAP_BATCH][RP_MSG_LEN];
	struct iovec iov[SNAP_BATCH];
	struct mmsghdr msg[SNAP_BATCH];
	struct sockaddr_in to[SNAP_BATCH];
	unsigned int nbatch;
};

static uint32_t key_hash(const struct rp_flow_key *k)
{
	const uint8_t *b = (const uint8_t *)k;
	uint64_t h = 0xcbf29ce484222325ull;	/* FNV-1a, 64-bit */

	for (size_t i = 0; i < sizeof(*k); i++)
		h = (h ^ b[i]) * 0x100000001b3ull;
	return (uint32_t)(h ^ (h >> 32));
}

/* Its entry, or where it goes (an empty one; NULL only if t is full, never: cap >= 2n). */
static struct snap_ent *tab_slot(struct snap_tab *t, const struct rp_flow_key *k)
{
	uint32_t mask = t->cap - 1;

	if (!t->cap)
		return NULL;
	for (uint32_t i = key_hash(k) & mask, n = 0; n < t->cap; i = (i + 1) & mask, n++) {
		struct snap_ent *e = &t->e[i];

		if (e->round != t->round || rp_key_eq(&e->key, k))
			return e;
	}
	return NULL;
}

static struct snap_ent *tab_find(struct snap_tab *t, const struct rp_flow_key *k)
{
	struct snap_ent *e = tab_slot(t, k);

	return e && e->round == t->round ? e : NULL;
}

/* Empties t for `round`, with room for n entries at half load. */
static int tab_reset(struct snap_tab *t, size_t n, uint32_t round)
{
	uint32_t cap = 64;

	while (cap < 2 * n)
		cap *= 2;
	if (cap > t->cap) {
		struct snap_ent *e = calloc(cap, sizeof(*e));

		if (!e)
			return -ENOMEM;
		free(t->e);
		t->e = e;
		t->cap = cap;
	}
	/* entries of an earlier round read as empty; a stale stamp equal to
	 * this round's cannot be there: rounds only grow, and 0 is never one */
	t->round = round;
	return 0;
}

int rp_snap_init(struct rp_agent *a)
{
	if (!a->cfg.bounded)
		return 0;
	a->snap = calloc(1, sizeof(*a->snap));
	if (!a->snap)
		return -ENOMEM;
	a->next_snap_ns = rp_mono_ns() + (uint64_t)a->cfg.snapshot_ms * 1000000ull;
	return 0;
}

void rp_snap_free(struct rp_agent *a)
{
	struct rp_snap *s = a->snap;

	if (!s)
		return;
	free(s->tab[0].e);
	free(s->tab[1].e);
	rp_flows_read_free(&s->read);
	free(s);
	a->snap = NULL;
}

static void flush(struct rp_agent *a)
{
	struct rp_snap *s = a->snap;
	unsigned int done = 0;

	while (done < s->nbatch) {
		int n = sendmmsg(a->sock, s->msg + done, s->nbatch - done, 0);

		if (n <= 0) {
			/* a full socket buffer: these wait for the next round */
			a->stats[RP_AG_snapshots_unsent] += s->nbatch - done;
			break;
		}
		a->stats[RP_AG_snapshots_sent] += (unsigned int)n;
		done += (unsigned int)n;
	}
	s->nbatch = 0;
}

/* Queues one message to `to`; sends the batch when it is full. */
static void queue(struct rp_agent *a, const struct rp_msg_view *v, const struct sockaddr_in *to)
{
	struct rp_snap *s = a->snap;
	unsigned int i = s->nbatch;
	int len = rp_msg_encode(s->buf[i], sizeof(s->buf[i]), v);

	if (len <= 0)
		return;
	s->to[i] = *to;
	s->iov[i] = (struct iovec){ .iov_base = s->buf[i], .iov_len = (size_t)len };
	s->msg[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &s->to[i],
						   .msg_namelen = sizeof(s->to[i]),
						   .msg_iov = &s->iov[i], .msg_iovlen = 1 } };
	if (++s->nbatch == SNAP_BATCH)
		flush(a);
}

static void snapshot_msg(struct rp_agent *a, const struct snap_ent *e, struct rp_msg_view *v)
{
	*v = (struct rp_msg_view){
		.type = RP_MSG_SNAPSHOT,
		.app_id = a->cfg.app->id,
		.flags = RP_F_STATE,
		.switch_id = a->cfg.switch_id,
		.state_len = e->state_len,
		.seq = e->seq,
		.epoch = e->epoch,
		.gen = e->gen,
		.key = e->key,
		.state = e->state,
	};
}

/* One round: a SNAPSHOT of each held flow whose state the store may not have. */
static void round_once(struct rp_agent *a)
{
	struct rp_snap *s = a->snap;
	struct snap_tab *old = &s->tab[s->cur], *new = &s->tab[s->cur ^ 1];
	uint64_t held = 0;
	int err;

	err = rp_flows_read(bpf_map__fd(a->skel->maps.flows), &s->read);
	if (!err)
		err = tab_reset(new, s->read.n, ++s->round);
	if (err) {
		a->stats[RP_AG_snapshot_errors]++;
		return;
	}
	for (size_t i = 0; i < s->read.n; i++) {
		const struct rp_dp_flow *f = &s->read.vals[i];
		const struct rp_flow_key *k = &s->read.keys[i];
		struct snap_ent *e, *prev;
		struct rp_msg_view v;

		if (!f->epoch || f->store >= a->cfg.nstores || f->epoch != a->sess[f->store].epoch ||
		    f->state_len > RP_STATE_MAX)
			continue;	/* not held: nothing of it is ours to send */
		held++;
		e = tab_slot(new, k);
		prev = tab_find(old, k);
		if (prev && prev->epoch == f->epoch && prev->gen == f->gen) {
			*e = *prev;
		} else {
			/* a new holding: the grant's seq is where the store is */
			*e = (struct snap_ent){ .key = *k, .epoch = f->epoch, .gen = f->gen,
						.seq = f->seq, .state_len = NOTHING_SENT };
		}
		e->round = new->round;
		if (e->state_len == f->state_len && !memcmp(e->state, f->state, f->state_len) &&
		    f->acked == e->seq)
			continue;	/* the store has this state */
		e->seq++;
		e->state_len = f->state_len;
		memset(e->state, 0, sizeof(e->state));
		memcpy(e->state, f->state, f->state_len);
		snapshot_msg(a, e, &v);
		queue(a, &v, rp_hb_head(a, f->store));
	}
	flush(a);
	s->cur ^= 1;
	a->stats[RP_AG_snapshot_rounds]++;
	a->stats[RP_AG_snapshot_flows] = held;
}

void rp_snap_tick(struct rp_agent *a, uint64_t now)
{
	uint64_t period = (uint64_t)a->cfg.snapshot_ms * 1000000ull;

	if (!a->snap || now < a->next_snap_ns)
		return;
	round_once(a);
	/* the next round a period after this one was due, or after now if late */
	a->next_snap_ns += period;
	if (a->next_snap_ns <= now)
		a->next_snap_ns = now + period;
}

/*
 * A REVOKE the data plane passed up: the flow's lease is given up there and
 * its state no longer changes.  Ack it with that state, under a seq newer
 * than any snapshot of the holding, to the replica that sent the revoke.
 */
void rp_snap_revoke(struct rp_agent *a, const struct rp_msg_view *rv,
		    const struct sockaddr_in *from)
{
	struct rp_msg_view v = {
		.type = RP_MSG_REVOKE_ACK,
		.app_id = rv->app_id,
		.switch_id = a->cfg.switch_id,
		.seq = rv->seq,
		.epoch = rv->epoch,
		.gen = rv->gen,
		.key = rv->key,
	};
	int fd = bpf_map__fd(a->skel->maps.flows);
	uint8_t buf[RP_MSG_LEN];
	struct rp_dp_flow f;
	int len;

	if (!bpf_map_lookup_elem_flags(fd, &rv->key, &f, BPF_F_LOCK) && !f.epoch && f.gone_epoch == rv->epoch &&
	    f.gen == rv->gen && f.state_len && f.state_len <= RP_STATE_MAX) {
		struct snap_ent *e = a->snap ? tab_find(&a->snap->tab[a->snap->cur], &rv->key)
					     : NULL;

		if (e && e->epoch == rv->epoch && e->gen == rv->gen)
			v.seq = ++e->seq;
		else
			v.seq = f.seq + 1;
		v.flags = RP_F_STATE;
		v.state_len = f.state_len;
		v.state = f.state;
		a->stats[RP_AG_revoke_handovers]++;
	}
	len = rp_msg_encode(buf, sizeof(buf), &v);
	if (len > 0 && sendto(a->sock, buf, (size_t)len, 0, (const struct sockaddr *)from,
			      sizeof(*from)) == len)
		a->stats[RP_AG_revoke_acks]++;
}
