// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * One shard's part of chain replication (docs/CHAIN.md): the links to its
 * neighbours, the entries it forwards and keeps until the tail has them,
 * whole copies for a replica that joins, and what changes when the chain's
 * configuration does.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "redplane/log.h"
#include "store.h"

#define RECONNECT_NS	(20 * 1000000ull)	/* between connect attempts */
#define OBUF_MAX	(64u << 20)		/* a link's unsent bytes, at most */
#define COPY_LOW_WATER	(1u << 20)		/* refill a copy below this */
#define IN_BUF		(64u << 10)
#define ROOM_PER_REQ	4			/* entries one request may append */

static size_t obuf_unsent(const struct rp_obuf *b)
{
	return b->len - b->off;
}

static int obuf_put(struct rp_obuf *b, const void *p, size_t n)
{
	if (b->off && b->len + n > b->cap) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 64 << 10;
		uint8_t *np;

		while (cap < b->len + n)
			cap *= 2;
		if (cap > OBUF_MAX)
			return -ENOBUFS;
		np = realloc(b->p, cap);
		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static void link_close(struct rp_shard *s, struct rp_link *l)
{
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->connecting = false;
	l->ready = false;
	l->peer_id = 0;
	l->peer_inc = 0;
	l->out.off = l->out.len = 0;
	l->in_len = 0;
	(void)s;
}

static void link_fail(struct rp_shard *s, struct rp_link *l, const char *why)
{
	pr_debug("rp-store: shard %u: chain link to replica %u: %s\n", s->id, l->peer_id, why);
	STAT_INC(s->stats.chain_link_errors);
	link_close(s, l);
	if (l == &s->chain->down)
		s->chain->copying = false;
}

static void put_hdr(void *buf, uint8_t type, uint8_t kind, uint32_t len, uint16_t reply_len,
		    uint64_t idx)
{
	struct rp_link_hdr h = {
		.len = htobe32(len),
		.type = type,
		.kind = kind,
		.reply_len = htobe16(reply_len),
		.idx = htobe64(idx),
	};

	memcpy(buf, &h, sizeof(h));
}

static int link_send(struct rp_shard *s, struct rp_link *l, uint8_t type, uint64_t idx,
		     const void *body, uint32_t len)
{
	uint8_t buf[sizeof(struct rp_link_hdr) + sizeof(struct rp_link_hello)];

	if (l->fd < 0 || len > sizeof(buf) - sizeof(struct rp_link_hdr))
		return -EINVAL;
	put_hdr(buf, type, 0, len, 0, idx);
	if (len)
		memcpy(buf + sizeof(struct rp_link_hdr), body, len);
	if (obuf_put(&l->out, buf, sizeof(struct rp_link_hdr) + len)) {
		link_fail(s, l, "too much unsent");
		return -ENOBUFS;
	}
	return 0;
}

static void addr_put(struct rp_link_addr *a, const struct rp_sockaddr *sa)
{
	const struct sockaddr_in *in = (const struct sockaddr_in *)&sa->ss;

	memset(a, 0, sizeof(*a));
	if (sa->ss.ss_family == AF_INET) {
		a->addr = in->sin_addr.s_addr;
		a->port = in->sin_port;
	}
}

static void addr_get(struct rp_sockaddr *sa, const struct rp_link_addr *a)
{
	struct sockaddr_in *in = (struct sockaddr_in *)&sa->ss;

	memset(sa, 0, sizeof(*sa));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = a->addr;
	in->sin_port = a->port;
	sa->len = sizeof(*in);
}

/* An ENTRY frame: the record, then where the reply goes and the reply. */
static uint32_t entry_encode(uint8_t *buf, uint8_t kind, uint64_t idx, const void *rec,
			     size_t rec_len, const struct rp_sockaddr *to,
			     const struct rp_msg_view *reply)
{
	size_t off = sizeof(struct rp_link_hdr);
	int rlen = 0;

	memcpy(buf + off, rec, rec_len);
	off += rec_len;
	if (reply) {
		struct rp_link_addr a;

		addr_put(&a, to);
		memcpy(buf + off, &a, sizeof(a));
		off += sizeof(a);
		rlen = rp_msg_encode(buf + off, RP_DGRAM_MAX, reply);
		if (rlen < 0) {	/* handlers build valid replies only */
			off -= sizeof(a);
			rlen = 0;
		}
		off += (size_t)rlen;
	}
	put_hdr(buf, RP_LINK_ENTRY, kind, (uint32_t)(off - sizeof(struct rp_link_hdr)),
		(uint16_t)rlen, idx);
	return (uint32_t)off;
}

static void flow_rec(struct rp_link_flow *r, const struct rp_flow *f)
{
	memset(r, 0, sizeof(*r));
	r->app_id = f->app_id;
	r->state_len = f->state_len;
	r->owner = htobe16(f->owner);
	r->epoch = htobe32(f->epoch);
	r->seq = htobe32(f->seq);
	r->gen = htobe16(f->gen);
	r->key = f->key;
	memcpy(r->state, f->state, f->state_len);
}

static void session_rec(struct rp_link_session *r, uint16_t switch_id, uint32_t epoch,
			const struct rp_sockaddr *addr)
{
	memset(r, 0, sizeof(*r));
	r->switch_id = htobe16(switch_id);
	r->epoch = htobe32(epoch);
	addr_put(&r->addr, addr);
}

static size_t entry_rec_len(uint8_t kind)
{
	switch (kind) {
	case RP_ENT_FLOW:
		return sizeof(struct rp_link_flow);
	case RP_ENT_DELETE:
		return sizeof(struct rp_link_delete);
	default:
		return sizeof(struct rp_link_session);
	}
}

static struct rp_pending *pend_at(struct rp_shard_chain *c, uint32_t i)
{
	return &c->pend[(c->pend_first + i) % RP_CHAIN_PENDING];
}

/* The reply an entry frame carries, if any. */
static bool entry_reply(const uint8_t *frame, uint32_t len, struct rp_sockaddr *to,
			const uint8_t **msg, uint16_t *msg_len)
{
	const struct rp_link_hdr *h = (const void *)frame;
	uint16_t rlen = be16toh(h->reply_len);
	size_t off = sizeof(*h) + entry_rec_len(h->kind);
	struct rp_link_addr a;

	if (!rlen || off + sizeof(a) + rlen > len)
		return false;
	memcpy(&a, frame + off, sizeof(a));
	addr_get(to, &a);
	*msg = frame + off + sizeof(a);
	*msg_len = rlen;
	return true;
}

static void send_reply(struct rp_shard *s, const uint8_t *frame, uint32_t len)
{
	struct rp_sockaddr to;
	const uint8_t *msg;
	uint16_t mlen;

	if (entry_reply(frame, len, &to, &msg, &mlen)) {
		rp_shard_emit_raw(s, &to, msg, mlen);
		STAT_INC(s->stats.chain_replies);
	}
}

/* The tail has everything up to idx: forget it, and say so upstream. */
static void acked(struct rp_shard *s, uint64_t idx)
{
	struct rp_shard_chain *c = s->chain;

	if (idx > c->acked_down)
		c->acked_down = idx;
	while (c->pend_count && pend_at(c, 0)->idx <= idx) {
		c->pend_first = (c->pend_first + 1) % RP_CHAIN_PENDING;
		c->pend_count--;
	}
	if (!c->head && c->up.ready && idx > c->acked_up) {
		c->acked_up = idx;
		link_send(s, &c->up, RP_LINK_ACK, idx, NULL, 0);
	}
}

/* Keeps a frame until the tail has it, and sends it down when it can. */
static void forward(struct rp_shard *s, uint64_t idx, const uint8_t *frame, uint32_t len)
{
	struct rp_shard_chain *c = s->chain;
	struct rp_pending *p;

	if (c->pend_count == RP_CHAIN_PENDING) {
		/* the head refuses requests long before this: a broken chain */
		link_fail(s, &c->down, "too many entries not at the tail");
		return;
	}
	p = pend_at(c, c->pend_count++);
	p->idx = idx;
	p->len = len;
	memcpy(p->frame, frame, len);
	if (c->down.ready && obuf_put(&c->down.out, frame, len))
		link_fail(s, &c->down, "too much unsent");
}

/* A change made at the head: the tail commits it, then the reply leaves. */
static void head_put(struct rp_shard *s, uint8_t kind, const void *rec, size_t rec_len,
		     const struct rp_sockaddr *to, const struct rp_msg_view *reply)
{
	struct rp_shard_chain *c = s->chain;
	uint8_t frame[RP_LINK_FRAME_MAX];
	uint32_t len;

	c->idx++;
	STAT_INC(s->stats.chain_entries);
	if (c->tail) {
		/* a chain of one: this copy is the committed one */
		if (reply) {
			uint8_t msg[RP_DGRAM_MAX];
			int n = rp_msg_encode(msg, sizeof(msg), reply);

			if (n > 0)
				rp_shard_emit_raw(s, to, msg, (size_t)n);
		}
		return;
	}
	len = entry_encode(frame, kind, c->idx, rec, rec_len, to, reply);
	forward(s, c->idx, frame, len);
}

void rp_chain_put_flow(struct rp_shard *s, const struct rp_flow *f,
		       const struct rp_sockaddr *to, const struct rp_msg_view *reply)
{
	struct rp_link_flow r;

	flow_rec(&r, f);
	head_put(s, RP_ENT_FLOW, &r, sizeof(r), to, reply);
}

void rp_chain_put_delete(struct rp_shard *s, uint8_t app_id, const struct rp_flow_key *key,
			 const struct rp_sockaddr *to, const struct rp_msg_view *reply)
{
	struct rp_link_delete r = { .app_id = app_id, .key = *key };

	head_put(s, RP_ENT_DELETE, &r, sizeof(r), to, reply);
}

void rp_chain_put_session(struct rp_shard *s, uint16_t switch_id, uint32_t epoch,
			  const struct rp_sockaddr *addr, const struct rp_sockaddr *to,
			  const struct rp_msg_view *reply)
{
	struct rp_link_session r;

	session_rec(&r, switch_id, epoch, addr);
	head_put(s, RP_ENT_SESSION, &r, sizeof(r), to, reply);
}

bool rp_chain_has_room(const struct rp_shard *s)
{
	return s->chain->pend_count + ROOM_PER_REQ <= RP_CHAIN_PENDING;
}

void rp_chain_not_head(struct rp_shard *s, const struct rp_msg_view *v,
		       const struct rp_sockaddr *from)
{
	const struct rp_shard_chain *c = s->chain;
	struct rp_head_hint hint = { 0 };
	uint8_t msg[RP_DGRAM_MAX];
	struct rp_msg_view r = {
		.type = RP_MSG_REJECT,
		.app_id = v->app_id,
		.flags = RP_F_STATE,
		.reason = RP_REJ_NOT_HEAD,
		.switch_id = v->switch_id,
		.state_len = sizeof(hint),
		.seq = v->seq,
		.epoch = v->epoch,
		.lease_ms = s->cfg->lease_ms,
		.gen = v->gen,
		.key = v->key,
		.state = (const uint8_t *)&hint,
	};
	int n;

	if (c->conf.n && !c->conf.fenced) {
		hint.addr = c->conf.m[0].client.sin_addr.s_addr;
		hint.port = c->conf.m[0].client.sin_port;
	}
	hint.version = htobe32(c->conf.version);
	n = rp_msg_encode(msg, sizeof(msg), &r);
	if (n > 0) {
		rp_shard_emit_raw(s, from, msg, (size_t)n);
		STAT_INC(s->stats.reject[RP_REJ_NOT_HEAD]);
	}
}

/* ---- applying what the predecessor sends ---- */

static void apply_flow(struct rp_shard *s, const struct rp_link_flow *r)
{
	struct rp_flow *f = rp_flow_lookup(&s->flows, r->app_id, &r->key);

	if (!f)
		f = rp_flow_insert(&s->flows, r->app_id, &r->key);
	if (!f) {
		/* every replica has the same --max-flows, so the head refused first */
		pr_warn("rp-store: shard %u: flow table full while applying the chain\n", s->id);
		STAT_INC(s->stats.chain_bad_frames);
		return;
	}
	f->owner = be16toh(r->owner);
	f->epoch = be32toh(r->epoch);
	f->seq = be32toh(r->seq);
	f->gen = be16toh(r->gen);
	f->state_len = r->state_len > RP_STATE_MAX ? RP_STATE_MAX : r->state_len;
	memcpy(f->state, r->state, f->state_len);
	f->revoking = 0;
}

/* Idempotent: a delete resent after a new predecessor took over finds nothing. */
static void apply_delete(struct rp_shard *s, const struct rp_link_delete *r)
{
	struct rp_flow *f = rp_flow_lookup(&s->flows, r->app_id, &r->key);

	if (f) {
		rp_shard_flow_delete(s, f);
		STAT_INC(s->stats.chain_deletes_applied);
	}
}

static void apply_session(struct rp_shard *s, const struct rp_link_session *r)
{
	struct rp_sockaddr a;

	addr_get(&a, &r->addr);
	/* live until this replica becomes the head and restarts the clocks */
	rp_session_put(s->sessions, be16toh(r->switch_id), be32toh(r->epoch), &a, UINT64_MAX);
}

static bool apply_entry(struct rp_shard *s, const uint8_t *frame, uint32_t len)
{
	const struct rp_link_hdr *h = (const void *)frame;

	if (h->kind == RP_ENT_FLOW && len >= sizeof(*h) + sizeof(struct rp_link_flow)) {
		struct rp_link_flow r;

		memcpy(&r, frame + sizeof(*h), sizeof(r));
		apply_flow(s, &r);
		return true;
	}
	if (h->kind == RP_ENT_DELETE && len >= sizeof(*h) + sizeof(struct rp_link_delete)) {
		struct rp_link_delete r;

		memcpy(&r, frame + sizeof(*h), sizeof(r));
		apply_delete(s, &r);
		return true;
	}
	if (h->kind == RP_ENT_SESSION && s->id == 0 &&
	    len >= sizeof(*h) + sizeof(struct rp_link_session)) {
		struct rp_link_session r;

		memcpy(&r, frame + sizeof(*h), sizeof(r));
		apply_session(s, &r);
		return true;
	}
	return false;
}

static void on_entry(struct rp_shard *s, const uint8_t *frame, uint32_t len)
{
	struct rp_shard_chain *c = s->chain;
	uint64_t idx = be64toh(((const struct rp_link_hdr *)frame)->idx);

	if (idx == 0) {
		/* one record of a whole copy */
		if (apply_entry(s, frame, len))
			STAT_INC(s->stats.chain_copy_records);
		else
			STAT_INC(s->stats.chain_bad_frames);
		return;
	}
	if (idx > c->idx) {
		if (!apply_entry(s, frame, len)) {
			STAT_INC(s->stats.chain_bad_frames);
			return;
		}
		c->idx = idx;
		STAT_INC(s->stats.chain_applied);
		if (!c->tail)
			forward(s, idx, frame, len);
	}
	/* a resent entry this replica has: only its reply may be missing */
	if (c->tail)
		send_reply(s, frame, len);
}

static void on_reset(struct rp_shard *s, uint64_t idx, const uint8_t *body, uint32_t len)
{
	struct rp_shard_chain *c = s->chain;
	struct rp_link_status st;

	if (len < sizeof(st)) {
		STAT_INC(s->stats.chain_bad_frames);
		return;
	}
	memcpy(&st, body, sizeof(st));
	rp_flow_table_clear(&s->flows);
	if (s->id == 0) {
		struct rp_sockaddr none = { 0 };

		for (unsigned int id = 1; id < RP_SWITCHES; id++)
			rp_session_put(s->sessions, (uint16_t)id, 0, &none, 0);
	}
	c->lineage = 0;		/* whole again at COPY_END */
	c->in_lineage = be64toh(st.lineage);
	c->copy_start_ns = rp_now_ns();
	c->idx = idx;
	c->pend_first = c->pend_count = 0;
	pr_info("rp-store: shard %u: receiving a whole copy from replica %u (entry %llu)\n",
		s->id, c->up.peer_id, (unsigned long long)idx);
}

/* The predecessor's HELLO: accepted only from this replica's predecessor. */
static void on_hello(struct rp_shard *s, const uint8_t *body, uint32_t len)
{
	struct rp_shard_chain *c = s->chain;
	struct rp_link_status st;
	struct rp_link_hello h;
	const struct rp_chain_member *pred;

	if (len < sizeof(h)) {
		link_fail(s, &c->up, "short hello");
		return;
	}
	memcpy(&h, body, sizeof(h));
	pred = c->pos > 0 ? &c->conf.m[c->pos - 1] : NULL;
	if (be64toh(h.chain) != c->ch->name_hash || be32toh(h.shards) != s->cfg->shards ||
	    be32toh(h.shard) != s->id) {
		link_fail(s, &c->up, "another chain or shard count");
		return;
	}
	if (!pred || pred->id != be32toh(h.id) || pred->inc != be64toh(h.inc)) {
		c->up.peer_id = be32toh(h.id);
		link_fail(s, &c->up, "not this replica's predecessor");
		return;
	}
	c->up.peer_id = pred->id;
	c->up.peer_inc = pred->inc;
	c->up.ready = true;
	c->acked_up = 0;
	st.lineage = htobe64(c->lineage);
	st.idx = htobe64(c->idx);
	link_send(s, &c->up, RP_LINK_STATUS, 0, &st, sizeof(st));
	if (!c->tail && c->acked_down) {
		/* what the tail has is news to a new predecessor */
		c->acked_up = c->acked_down;
		link_send(s, &c->up, RP_LINK_ACK, c->acked_down, NULL, 0);
	}
}

/* ---- sending down ---- */

static void copy_begin(struct rp_shard *s)
{
	struct rp_shard_chain *c = s->chain;
	struct rp_link_status st = { .lineage = htobe64(c->lineage) };

	c->copying = true;
	c->copy_flow = 0;
	c->copy_session = 1;
	link_send(s, &c->down, RP_LINK_RESET, c->idx, &st, sizeof(st));
	STAT_INC(s->stats.chain_copies);
	pr_info("rp-store: shard %u: sending a whole copy to replica %u\n", s->id,
		c->down.peer_id);
}

/* One record of a whole copy (entry index 0). */
static uint32_t copy_frame(uint8_t *frame, const struct rp_flow *f)
{
	struct rp_link_flow r;

	flow_rec(&r, f);
	return entry_encode(frame, RP_ENT_FLOW, 0, &r, sizeof(r), NULL, NULL);
}

/* Streams the copy while the link has little unsent. */
static void copy_more(struct rp_shard *s)
{
	struct rp_shard_chain *c = s->chain;
	uint8_t frame[sizeof(struct rp_link_hdr) + sizeof(struct rp_link_flow)];

	while (c->copying && c->down.fd >= 0 && obuf_unsent(&c->down.out) < COPY_LOW_WATER) {
		uint32_t len;

		if (s->id == 0 && c->copy_session < RP_SWITCHES) {
			struct rp_link_session r;
			struct rp_session ses;
			uint16_t id = (uint16_t)c->copy_session++;

			rp_session_read(s->sessions, id, &ses);
			if (!ses.epoch)
				continue;
			session_rec(&r, id, ses.epoch, &ses.addr);
			len = entry_encode(frame, RP_ENT_SESSION, 0, &r, sizeof(r), NULL, NULL);
		} else if (c->copy_flow < s->flows.count) {
			len = copy_frame(frame, &s->flows.flows[c->copy_flow++]);
		} else {
			c->copying = false;
			link_send(s, &c->down, RP_LINK_COPY_END, c->idx, NULL, 0);
			break;
		}
		if (obuf_put(&c->down.out, frame, len))
			link_fail(s, &c->down, "too much unsent");
	}
}

void rp_chain_flow_moving(struct rp_shard *s, uint32_t from, uint32_t to)
{
	struct rp_shard_chain *c = s->chain;
	uint8_t frame[sizeof(struct rp_link_hdr) + sizeof(struct rp_link_flow)];
	uint32_t len;

	/*
	 * A record not yet copied that lands behind the copy's cursor would
	 * never be copied: it goes now.  A deleted record the copy has not
	 * reached is never copied, and one it has is deleted by the entry.
	 */
	if (!c->copying || c->down.fd < 0 || from == to || to >= c->copy_flow ||
	    from < c->copy_flow)
		return;
	len = copy_frame(frame, &s->flows.flows[from]);
	if (obuf_put(&c->down.out, frame, len))
		link_fail(s, &c->down, "too much unsent");
}

/* The successor said what it has: resume from there, or send it all. */
static void on_status(struct rp_shard *s, const uint8_t *body, uint32_t len)
{
	struct rp_shard_chain *c = s->chain;
	struct rp_link_status st;
	uint64_t lineage, have;
	uint64_t oldest = c->pend_count ? pend_at(c, 0)->idx - 1 : c->idx;

	if (len < sizeof(st)) {
		link_fail(s, &c->down, "short status");
		return;
	}
	memcpy(&st, body, sizeof(st));
	lineage = be64toh(st.lineage);
	have = be64toh(st.idx);
	c->down.ready = true;
	if (lineage != c->lineage || have < oldest || have > c->idx)
		copy_begin(s);
	/* whatever the tail may not have answered yet goes again */
	for (uint32_t i = 0; i < c->pend_count; i++) {
		struct rp_pending *p = pend_at(c, i);

		if (obuf_put(&c->down.out, p->frame, p->len)) {
			link_fail(s, &c->down, "too much unsent");
			return;
		}
		STAT_INC(s->stats.chain_resent);
	}
	copy_more(s);
}

/* ---- frames off a link ---- */

static void on_frame(struct rp_shard *s, struct rp_link *l, const uint8_t *frame, uint32_t len)
{
	struct rp_shard_chain *c = s->chain;
	const struct rp_link_hdr *h = (const void *)frame;
	const uint8_t *body = frame + sizeof(*h);
	uint32_t blen = len - (uint32_t)sizeof(*h);
	uint64_t idx = be64toh(h->idx);

	if (l == &c->up && !l->ready) {
		if (h->type == RP_LINK_HELLO)
			on_hello(s, body, blen);
		else
			link_fail(s, l, "no hello");
		return;
	}
	if (l == &c->down && !l->ready) {
		if (h->type == RP_LINK_STATUS)
			on_status(s, body, blen);
		else
			link_fail(s, l, "no status");
		return;
	}
	switch (h->type) {
	case RP_LINK_ENTRY:
		if (l == &c->up) {
			on_entry(s, frame, len);
			return;
		}
		break;
	case RP_LINK_RESET:
		if (l == &c->up) {
			on_reset(s, idx, body, blen);
			return;
		}
		break;
	case RP_LINK_COPY_END:
		if (l == &c->up) {
			c->lineage = c->in_lineage;
			pr_info("rp-store: shard %u: whole copy received, %u flows in %.1f ms\n",
				s->id, s->flows.count,
				(double)(rp_now_ns() - c->copy_start_ns) / 1e6);
			return;
		}
		break;
	case RP_LINK_ACK:
		if (l == &c->down) {
			acked(s, idx);
			return;
		}
		break;
	}
	STAT_INC(s->stats.chain_bad_frames);
	link_fail(s, l, "unexpected frame");
}

long rp_chain_link_input(struct rp_shard *s, struct rp_link *l, const uint8_t *buf, size_t len)
{
	size_t off = 0;

	while (len - off >= sizeof(struct rp_link_hdr)) {
		const struct rp_link_hdr *h = (const void *)(buf + off);
		uint32_t blen = be32toh(h->len), flen;

		/* before adding the header's length: a wrapped sum would pass (fuzz_chain) */
		if (blen > RP_LINK_FRAME_MAX - sizeof(*h)) {
			STAT_INC(s->stats.chain_bad_frames);
			link_fail(s, l, "oversized frame");
			return -1;
		}
		flen = blen + (uint32_t)sizeof(*h);
		if (len - off < flen)
			break;
		on_frame(s, l, buf + off, flen);
		if (l->fd < 0)
			return -1;
		off += flen;
	}
	return (long)off;
}

static void link_read(struct rp_shard *s, struct rp_link *l)
{
	for (;;) {
		ssize_t n = read(l->fd, l->in + l->in_len, IN_BUF - l->in_len);
		long off;

		if (n == 0) {
			link_fail(s, l, "closed by the peer");
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				link_fail(s, l, strerror(errno));
			return;
		}
		l->in_len += (size_t)n;
		off = rp_chain_link_input(s, l, l->in, l->in_len);
		if (off < 0)
			return;
		memmove(l->in, l->in + off, l->in_len - (size_t)off);
		l->in_len -= (size_t)off;
	}
}

static void link_write(struct rp_shard *s, struct rp_link *l)
{
	while (l->fd >= 0 && obuf_unsent(&l->out)) {
		ssize_t n = write(l->fd, l->out.p + l->out.off, obuf_unsent(&l->out));

		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				link_fail(s, l, strerror(errno));
			return;
		}
		l->out.off += (size_t)n;
		if (l == &s->chain->down)
			copy_more(s);
	}
	if (!obuf_unsent(&l->out))
		l->out.off = l->out.len = 0;
}

static int set_nonblock(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void down_connect(struct rp_shard *s, uint64_t now)
{
	struct rp_shard_chain *c = s->chain;
	const struct rp_chain_member *succ = &c->conf.m[c->pos + 1];
	struct sockaddr_in to = succ->peer, from = c->ch->self.peer;
	int fd;

	c->next_connect_ns = now + RECONNECT_NS;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	set_nonblock(fd);
	/* from this replica's own address: partitions and firewalls see who it is */
	from.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&from, sizeof(from))) {
		close(fd);
		return;
	}
	to.sin_port = htons((uint16_t)(ntohs(to.sin_port) + s->id));
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) && errno != EINPROGRESS) {
		close(fd);
		return;
	}
	c->down.fd = fd;
	c->down.connecting = true;
	c->down.peer_id = succ->id;
	c->down.peer_inc = succ->inc;
}

static void down_connected(struct rp_shard *s)
{
	struct rp_shard_chain *c = s->chain;
	struct rp_link_hello h = {
		.chain = htobe64(c->ch->name_hash),
		.inc = htobe64(c->ch->self.inc),
		.id = htobe32(c->ch->self.id),
		.shards = htobe32(s->cfg->shards),
		.shard = htobe32(s->id),
		.version = htobe32(c->conf.version),
	};
	int err = 0;
	socklen_t elen = sizeof(err);

	getsockopt(c->down.fd, SOL_SOCKET, SO_ERROR, &err, &elen);
	if (err) {
		/* not listening yet, or gone: try again shortly */
		link_close(s, &c->down);
		return;
	}
	c->down.connecting = false;
	link_send(s, &c->down, RP_LINK_HELLO, 0, &h, sizeof(h));
}

static void up_accept(struct rp_shard *s)
{
	struct rp_shard_chain *c = s->chain;
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	set_nonblock(fd);
	/* the newest connection wins: a restarted predecessor reconnects */
	link_close(s, &c->up);
	c->up.fd = fd;
}

/* ---- configuration changes ---- */

/* Every waiting reply goes out: this replica's copy is the committed one now. */
static void commit_pending(struct rp_shard *s)
{
	struct rp_shard_chain *c = s->chain;
	uint64_t last = 0;

	for (uint32_t i = 0; i < c->pend_count; i++) {
		struct rp_pending *p = pend_at(c, i);

		send_reply(s, p->frame, p->len);
		last = p->idx;
	}
	if (last)
		acked(s, last);
}

static void become_head(struct rp_shard *s, uint64_t now)
{
	struct rp_shard_chain *c = s->chain;

	if (s->id == 0)
		rp_sessions_restart_clock(s->sessions, now);
	/* its records' touches happened at the old head: count them as now */
	s->touched_floor_ns = now;
	if (!c->lineage) {
		if (c->idx || s->flows.count)
			pr_warn("rp-store: shard %u: head without a whole copy: state may be missing\n",
				s->id);
		/*
		 * A new chain: leases of an earlier one that died whole may
		 * still be held by switches; grant nothing until they lapse.
		 */
		s->serve_from_ns = now + (uint64_t)s->cfg->grace_ms * 1000000ull;
		if (getrandom(&c->lineage, sizeof(c->lineage), 0) != sizeof(c->lineage) ||
		    !c->lineage)
			c->lineage = now | 1;
	}
	pr_info("rp-store: shard %u: head of chain '%s' (configuration %u)\n", s->id,
		c->ch->name, c->conf.version);
}

static void stop_being_head(struct rp_shard *s)
{
	struct rp_sockaddr none = { 0 };

	rp_store_drop_waiters(s);
	if (s->id != 0)
		return;
	/* sessions stay live until this replica is head again (see session.h) */
	for (unsigned int id = 1; id < RP_SWITCHES; id++) {
		struct rp_session ses;

		rp_session_read(s->sessions, (uint16_t)id, &ses);
		if (ses.epoch)
			rp_session_put(s->sessions, (uint16_t)id, ses.epoch,
				       ses.addr.len ? &ses.addr : &none, UINT64_MAX);
	}
}

static bool same_member(const struct rp_link *l, const struct rp_chain_member *m)
{
	return m && l->peer_id == m->id && l->peer_inc == m->inc;
}

static void reconfigure(struct rp_shard *s, uint64_t now)
{
	struct rp_shard_chain *c = s->chain;
	const struct rp_chain_member *pred = NULL, *succ = NULL;
	bool was_head = c->head, was_tail = c->tail;

	pthread_mutex_lock(&c->ch->lock);
	c->conf = c->ch->conf;
	c->gen_seen = atomic_load(&c->ch->gen);
	pthread_mutex_unlock(&c->ch->lock);
	STAT_INC(s->stats.chain_reconfig);

	c->pos = -1;
	for (unsigned int i = 0; i < c->conf.n && !c->conf.fenced; i++)
		if (c->conf.m[i].id == c->ch->self.id && c->conf.m[i].inc == c->ch->self.inc)
			c->pos = (int)i;
	if (c->pos > 0)
		pred = &c->conf.m[c->pos - 1];
	if (c->pos >= 0 && (unsigned int)c->pos + 1 < c->conf.n)
		succ = &c->conf.m[c->pos + 1];
	c->head = c->pos == 0;
	c->tail = c->pos >= 0 && !succ;

	if (c->down.fd >= 0 && !same_member(&c->down, succ)) {
		link_close(s, &c->down);
		c->copying = false;
	}
	if (succ && c->down.fd < 0)
		c->next_connect_ns = now;
	if (c->up.fd >= 0 && c->up.ready && !same_member(&c->up, pred))
		link_close(s, &c->up);

	if (c->tail && !was_tail)
		commit_pending(s);
	if (c->head && !was_head)
		become_head(s, now);
	if (!c->head && was_head)
		stop_being_head(s);
}

/* ---- the shard loop's part ---- */

static void publish_gauges(struct rp_shard_chain *c)
{
	uint32_t role = RP_ROLE_NONE;

	if (c->head && c->tail)
		role = RP_ROLE_ALONE;
	else if (c->head)
		role = RP_ROLE_HEAD;
	else if (c->tail)
		role = RP_ROLE_TAIL;
	else if (c->pos >= 0)
		role = RP_ROLE_MIDDLE;
	atomic_store_explicit(&c->g_role, role, memory_order_relaxed);
	atomic_store_explicit(&c->g_version, c->conf.version, memory_order_relaxed);
	atomic_store_explicit(&c->g_whole, c->lineage != 0, memory_order_relaxed);
	atomic_store_explicit(&c->g_idx, c->idx, memory_order_relaxed);
}

enum { PFD_LISTEN, PFD_UP, PFD_DOWN, PFD_N };

int rp_chain_poll_fds(struct rp_shard *s, struct pollfd *pfd, uint64_t now)
{
	struct rp_shard_chain *c = s->chain;
	bool want_down = c->pos >= 0 && (unsigned int)c->pos + 1 < c->conf.n;

	if (atomic_load(&c->ch->gen) != c->gen_seen)
		reconfigure(s, now);
	/* a replica still receiving its own copy has none to give */
	if (want_down && c->lineage && c->down.fd < 0 && now >= c->next_connect_ns)
		down_connect(s, now);

	pfd[PFD_LISTEN] = (struct pollfd){ .fd = c->listen_fd, .events = POLLIN };
	pfd[PFD_UP] = (struct pollfd){ .fd = c->up.fd, .events = POLLIN };
	if (obuf_unsent(&c->up.out))
		pfd[PFD_UP].events |= POLLOUT;
	pfd[PFD_DOWN] = (struct pollfd){ .fd = c->down.fd, .events = POLLIN };
	if (c->down.connecting || obuf_unsent(&c->down.out))
		pfd[PFD_DOWN].events |= POLLOUT;
	return PFD_N;
}

/* How long the shard may sleep: a reconnect may be due. */
int rp_chain_poll_timeout_ms(const struct rp_shard *s)
{
	const struct rp_shard_chain *c = s->chain;
	bool want_down = c->pos >= 0 && (unsigned int)c->pos + 1 < c->conf.n;

	return want_down && c->down.fd < 0 ? (int)(RECONNECT_NS / 1000000ull) : -1;
}

void rp_chain_poll_done(struct rp_shard *s, const struct pollfd *pfd, int n, uint64_t now)
{
	struct rp_shard_chain *c = s->chain;

	if (n < PFD_N)
		return;
	if (atomic_load(&c->ch->gen) != c->gen_seen)
		reconfigure(s, now);
	if (pfd[PFD_LISTEN].revents & POLLIN)
		up_accept(s);
	if (c->down.fd >= 0 && c->down.fd == pfd[PFD_DOWN].fd) {
		if (c->down.connecting && (pfd[PFD_DOWN].revents & (POLLOUT | POLLERR | POLLHUP)))
			down_connected(s);
		else if (pfd[PFD_DOWN].revents & (POLLIN | POLLERR | POLLHUP))
			link_read(s, &c->down);
	}
	if (c->up.fd >= 0 && c->up.fd == pfd[PFD_UP].fd &&
	    (pfd[PFD_UP].revents & (POLLIN | POLLERR | POLLHUP)))
		link_read(s, &c->up);
	rp_chain_flush(s);
}

void rp_chain_flush(struct rp_shard *s)
{
	struct rp_shard_chain *c = s->chain;

	/* a tail answers its predecessor once per round, with the newest */
	if (c->tail && !c->head && c->up.ready && c->idx > c->acked_up) {
		c->acked_up = c->idx;
		link_send(s, &c->up, RP_LINK_ACK, c->idx, NULL, 0);
	}
	link_write(s, &c->down);
	link_write(s, &c->up);
	publish_gauges(c);
}

bool rp_chain_serves(const struct rp_shard *s)
{
	return s->chain->head;
}

int rp_chain_shard_init(struct rp_shard *s, struct rp_chain *ch)
{
	struct sockaddr_in at = ch->self.peer;
	struct rp_shard_chain *c;
	int one = 1;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ch = ch;
	c->pos = -1;
	c->up.fd = c->down.fd = -1;
	c->pend = calloc(RP_CHAIN_PENDING, sizeof(*c->pend));
	c->up.in = malloc(IN_BUF);
	c->down.in = malloc(IN_BUF);
	c->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	s->chain = c;
	if (!c->pend || !c->up.in || !c->down.in || c->listen_fd < 0) {
		rp_chain_shard_free(s);
		return -ENOMEM;
	}
	setsockopt(c->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	at.sin_port = htons((uint16_t)(ntohs(at.sin_port) + s->id));
	if (bind(c->listen_fd, (struct sockaddr *)&at, sizeof(at)) || listen(c->listen_fd, 8)) {
		int err = -errno;
		char as[RP_ADDRSTRLEN];

		pr_warn("rp-store: Couldn't listen for chain links on %s: %s\n",
			rp_addr_str((struct sockaddr *)&at, as, sizeof(as)), strerror(-err));
		rp_chain_shard_free(s);
		return err;
	}
	return 0;
}

void rp_chain_shard_free(struct rp_shard *s)
{
	struct rp_shard_chain *c = s->chain;

	if (!c)
		return;
	link_close(s, &c->up);
	link_close(s, &c->down);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	free(c->up.out.p);
	free(c->down.out.p);
	free(c->up.in);
	free(c->down.in);
	free(c->pend);
	free(c);
	s->chain = NULL;
}
