// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The store's side of the protocol (docs/PROTOCOL.md): sessions, leases,
 * revokes with bounded waits, sequenced writes, and deletes (a holder's
 * EXPIRE, and orphans the head reclaims).  Handlers run on the
 * shard that owns the flow; they take the time as an argument so that the
 * unit tests drive them without sockets or sleeps.
 */
#include <netinet/in.h>
#include <string.h>

#include "redplane/log.h"
#include "redplane/steer.h"
#include "store.h"

#define NS_PER_MS	1000000ull
/*
 * Records looked at per tick for orphans: a tick stays short however many
 * flows a shard holds (at a 25 ms tick, a million records in 25 s).
 */
#define RECLAIM_SCAN	1024
/* ...and at a full table, before a new flow is refused */
#define RECLAIM_SCAN_FULL	64

/* Queues v for `to`; flushes first when the batch is full. */
static void emit(struct rp_shard *s, const struct rp_sockaddr *to, const struct rp_msg_view *v)
{
	struct rp_out_slot *o;
	int len;

	if (s->nout == RP_BATCH)
		rp_shard_flush(s);
	o = &s->out[s->nout];
	len = rp_msg_encode(o->buf, sizeof(o->buf), v);
	if (len < 0) {
		/* the handlers only build valid messages: count, never send */
		STAT_INC(s->stats.tx_errors);
		return;
	}
	o->to = *to;
	s->out_iov[s->nout].iov_len = (size_t)len;
	s->nout++;
}

/*
 * A change to a flow, with the reply that reports it (may be NULL).  In a
 * chain the reply leaves only once the tail has the change, so no switch
 * hears of state that one replica's crash could lose.
 */
static void commit(struct rp_shard *s, const struct rp_flow *f, const struct rp_sockaddr *to,
		   const struct rp_msg_view *reply)
{
	if (s->chain)
		rp_chain_put_flow(s, f, to, reply);
	else if (reply)
		emit(s, to, reply);
}

/*
 * A flow deleted here, and the reply that reports it (may be NULL).  An
 * answer about a key this replica does not have goes the same way: the
 * delete that took it may not be at the tail yet.
 */
static void commit_delete(struct rp_shard *s, uint8_t app_id, const struct rp_flow_key *key,
			  const struct rp_sockaddr *to, const struct rp_msg_view *reply)
{
	if (s->chain)
		rp_chain_put_delete(s, app_id, key, to, reply);
	else if (reply)
		emit(s, to, reply);
}

/* f must have no waiter; f's address holds another record afterwards. */
static void delete_flow(struct rp_shard *s, struct rp_flow *f, const struct rp_sockaddr *to,
			const struct rp_msg_view *reply)
{
	uint8_t app_id = f->app_id;
	struct rp_flow_key key = f->key;

	rp_shard_flow_delete(s, f);
	commit_delete(s, app_id, &key, to, reply);
}

static uint32_t lease_ms(const struct rp_shard *s)
{
	return s->cfg->lease_ms;
}

/* GRANT or MIGRATE: the flow's state and committed seq, the packet echoed. */
static void send_lease(struct rp_shard *s, const struct rp_sockaddr *to, const struct rp_flow *f,
		       uint8_t type, const uint8_t *pkt, uint16_t pkt_len)
{
	struct rp_msg_view r = {
		.type = type,
		.app_id = f->app_id,
		.flags = RP_F_STATE | (pkt_len ? RP_F_PKT : 0),
		.switch_id = f->owner,
		.state_len = f->state_len,
		.seq = f->seq,
		.epoch = f->epoch,
		.lease_ms = lease_ms(s),
		.pkt_len = pkt_len,
		.gen = f->gen,
		.key = f->key,
		.state = f->state,
		.pkt = pkt,
	};

	commit(s, f, to, &r);
	if (type == RP_MSG_GRANT)
		STAT_INC(s->stats.grant);
	else
		STAT_INC(s->stats.migrate);
}

/* REJECT echoes the request's flow and packet; seq carries `seq`. */
static struct rp_msg_view reject_msg(const struct rp_shard *s, const struct rp_msg_view *req,
				     uint8_t reason, uint32_t seq)
{
	return (struct rp_msg_view){
		.type = RP_MSG_REJECT,
		.app_id = req->app_id,
		.flags = req->pkt_len ? RP_F_PKT : 0,
		.reason = reason,
		.switch_id = req->switch_id,
		.seq = seq,
		.epoch = req->epoch,
		.lease_ms = lease_ms(s),
		.pkt_len = req->pkt_len,
		.gen = req->gen,
		.key = req->key,
		.pkt = req->pkt,
	};
}

static void send_reject(struct rp_shard *s, const struct rp_sockaddr *to,
			const struct rp_msg_view *req, uint8_t reason, uint32_t seq)
{
	struct rp_msg_view r = reject_msg(s, req, reason, seq);

	emit(s, to, &r);
	STAT_INC(s->stats.reject[reason]);
}

static bool owner_live(const struct rp_shard *s, const struct rp_flow *f, uint64_t now)
{
	return f->owner && rp_session_live(s->sessions, f->owner, f->epoch, now);
}

/* A message to f's owner about its holding: no state, no packet. */
static struct rp_msg_view holding_msg(const struct rp_shard *s, const struct rp_flow *f,
				      uint8_t type)
{
	return (struct rp_msg_view){
		.type = type,
		.app_id = f->app_id,
		.switch_id = f->owner,
		.seq = f->seq,
		.epoch = f->epoch,
		.lease_ms = lease_ms(s),
		.gen = f->gen,
		.key = f->key,
	};
}

static void send_revoke(struct rp_shard *s, const struct rp_flow *f)
{
	struct rp_session owner;
	struct rp_msg_view r = holding_msg(s, f, RP_MSG_REVOKE);

	rp_session_read(s->sessions, f->owner, &owner);
	emit(s, &owner.addr, &r);
}

uint64_t rp_store_tick_ns(const struct rp_store_cfg *cfg)
{
	uint64_t t = (uint64_t)cfg->lease_ms * NS_PER_MS / 8;

	return t < NS_PER_MS ? NS_PER_MS : t;
}

/* Revokes are resent a few times per lease period until acked. */
static uint64_t revoke_interval_ns(const struct rp_shard *s)
{
	return 2 * rp_store_tick_ns(s->cfg);
}

static void waiter_free(struct rp_shard *s, struct rp_waiter *w)
{
	w->flow->waiter = 0;
	w->flow = NULL;
	s->nwaiting--;
}

/*
 * A new holding of the flow: a generation of its own, so that a message of
 * an earlier holding (a late revoke-ack, a write resent from before a revoke)
 * never passes for one of this one, even within one session epoch.  It comes
 * after the holding the requester names as given up (`named`, 0: none) as
 * well: that one may be of a record since deleted, and a switch refuses a
 * grant of a holding it gave up.
 */
static void take(struct rp_flow *f, uint16_t switch_id, uint32_t epoch, uint16_t named,
		 uint64_t now)
{
	f->owner = switch_id;
	f->epoch = epoch;
	if (named && rp_gen_after(named, f->gen))
		f->gen = named;
	f->gen++;
	f->revoking = 0;
	f->touched_ns = now;
}

/* The owner is gone (acked or lapsed): the waiting request gets the flow. */
static void waiter_grant(struct rp_shard *s, struct rp_waiter *w, uint64_t now)
{
	struct rp_flow *f = w->flow;

	if (!rp_session_live(s->sessions, w->switch_id, w->epoch, now)) {
		/* its switch must rejoin and ask again; the flow stays free */
		STAT_INC(s->stats.wait_dropped);
		f->owner = 0;
		commit(s, f, NULL, NULL);
		waiter_free(s, w);
		return;
	}
	take(f, w->switch_id, w->epoch, w->gen, now);
	send_lease(s, &w->from, f, RP_MSG_MIGRATE, w->pkt, w->pkt_len);
	waiter_free(s, w);
}

static void waiter_store_request(struct rp_waiter *w, const struct rp_msg_view *v,
				 const struct rp_sockaddr *from)
{
	w->switch_id = v->switch_id;
	w->epoch = v->epoch;
	w->gen = v->gen;
	w->from = *from;
	w->pkt_len = v->pkt_len;
	memcpy(w->pkt, v->pkt, v->pkt_len);
}

static void wait_for_revoke(struct rp_shard *s, struct rp_flow *f, const struct rp_msg_view *v,
			    const struct rp_sockaddr *from, uint64_t now)
{
	struct rp_waiter *w;

	if (f->waiter) {
		w = &s->waiters[f->waiter - 1];
		if (w->switch_id != v->switch_id) {
			send_reject(s, from, v, RP_REJ_BUSY, f->seq);
			return;
		}
		/* a retransmitted request: keep its place, take the newest packet */
		waiter_store_request(w, v, from);
		STAT_INC(s->stats.wait_refreshed);
		return;
	}
	if (s->nwaiting == s->cfg->wait_queue) {
		send_reject(s, from, v, RP_REJ_QUEUE_FULL, f->seq);
		return;
	}
	for (w = s->waiters; w->flow; w++)
		;
	w->flow = f;
	waiter_store_request(w, v, from);
	w->deadline_ns = now + (uint64_t)s->cfg->wait_ms * NS_PER_MS;
	w->next_revoke_ns = now + revoke_interval_ns(s);
	f->waiter = (uint16_t)(w - s->waiters + 1);
	s->nwaiting++;
	STAT_INC(s->stats.wait_queued);
	send_revoke(s, f);
	f->revoking = 1;
	STAT_INC(s->stats.revoke_sent);
}

/* The owner gave the flow up: the waiting request, if any, gets it. */
static void owner_gave_up(struct rp_shard *s, struct rp_flow *f, uint64_t now)
{
	f->owner = 0;
	f->revoking = 0;
	f->touched_ns = now;
	if (f->waiter) {
		STAT_INC(s->stats.wait_done_ack);
		waiter_grant(s, &s->waiters[f->waiter - 1], now);
	} else {
		commit(s, f, NULL, NULL);
	}
}

/* A waiter whose owner lapsed is served before anything else on the flow. */
static void settle_waiter(struct rp_shard *s, struct rp_flow *f, uint64_t now)
{
	if (f->waiter && !owner_live(s, f, now)) {
		STAT_INC(s->stats.wait_done_lapse);
		waiter_grant(s, &s->waiters[f->waiter - 1], now);
	}
}

/*
 * Nobody holds the flow (no owner, or its session is gone), nobody waits
 * for it, and nothing touched it for --orphan-timeout: a switch that died
 * holding it, or a flow no switch asked for again.
 */
static bool orphan(const struct rp_shard *s, const struct rp_flow *f, uint64_t now)
{
	uint64_t since = f->touched_ns > s->touched_floor_ns ? f->touched_ns : s->touched_floor_ns;

	return s->cfg->orphan_ns && !f->waiter && !owner_live(s, f, now) && now > since &&
	       now - since > s->cfg->orphan_ns;
}

/*
 * Looks at up to `scan` records from the cursor, which goes round the dense
 * array, and deletes up to `most` orphans.  Returns how many it deleted.
 */
static uint32_t reclaim_orphans(struct rp_shard *s, uint32_t scan, uint32_t most, uint64_t now)
{
	uint32_t done = 0;

	for (; scan && s->flows.count && done < most; scan--) {
		struct rp_flow *f;

		if (s->reclaim_at >= s->flows.count)
			s->reclaim_at = 0;
		f = &s->flows.flows[s->reclaim_at];
		if (!orphan(s, f, now)) {
			s->reclaim_at++;
			continue;
		}
		if (s->chain && !rp_chain_has_room(s))
			break;
		/* the last record moves into its place: the cursor looks at it next */
		delete_flow(s, f, NULL, NULL);
		STAT_INC(s->stats.orphans_reclaimed);
		done++;
	}
	return done;
}

bool rp_store_wants_tick(const struct rp_shard *s)
{
	if (s->nwaiting)
		return true;
	return s->cfg->orphan_ns && s->flows.count && (!s->chain || rp_chain_serves(s));
}

static void handle_lease_req(struct rp_shard *s, const struct rp_msg_view *v,
			     const struct rp_sockaddr *from, uint64_t now)
{
	struct rp_flow *f;

	if (!rp_session_live(s->sessions, v->switch_id, v->epoch, now)) {
		send_reject(s, from, v, RP_REJ_NO_SESSION, 0);
		return;
	}
	if (now < s->serve_from_ns) {
		/*
		 * Just started: a switch may still hold a lease granted by the
		 * run before this one (it has not seen a heartbeat ack since);
		 * nothing is granted until every such lease has run out.
		 */
		send_reject(s, from, v, RP_REJ_BUSY, 0);
		return;
	}

	f = rp_flow_lookup(&s->flows, v->app_id, &v->key);
	if (!f && !(v->flags & RP_F_STATE)) {
		/* no proposal: a lookup (e.g. a NAT's return traffic), never a create */
		send_reject(s, from, v, RP_REJ_NO_FLOW, 0);
		return;
	}
	if (!f) {
		f = rp_flow_insert(&s->flows, v->app_id, &v->key);
		if (!f && reclaim_orphans(s, RECLAIM_SCAN_FULL, 1, now))
			f = rp_flow_insert(&s->flows, v->app_id, &v->key);
		if (!f) {
			send_reject(s, from, v, RP_REJ_TABLE_FULL, 0);
			return;
		}
		/* a new flow: the proposed initial state is committed as seq 0 */
		f->state_len = v->state_len;
		memcpy(f->state, v->state, v->state_len);
		take(f, v->switch_id, v->epoch, v->gen, now);
		send_lease(s, from, f, RP_MSG_GRANT, v->pkt, v->pkt_len);
		return;
	}

	settle_waiter(s, f, now);
	if (owner_live(s, f, now) && f->owner == v->switch_id) {
		f->touched_ns = now;
		if (!f->revoking) {
			/* same switch, same live epoch: it lost its copy */
			STAT_INC(s->stats.regrant);
			send_lease(s, from, f, RP_MSG_MIGRATE, v->pkt, v->pkt_len);
			return;
		}
		if (v->gen != f->gen) {
			/*
			 * A request that names no holding given up was sent
			 * before its switch heard of the revoke (two packets of
			 * a flow, the second's request delayed): the switch may
			 * hold the flow now, so the revoke stands.  Found by the
			 * model (model/redplane.pml).
			 */
			send_reject(s, from, v, RP_REJ_BUSY, f->seq);
			return;
		}
		/*
		 * It asks again for a flow being revoked from it, naming the
		 * holding it gave up: its ack was lost or crossed this request.
		 * Its asking is its ack; a regrant of the same holding would be
		 * refused by a switch that gave it up.
		 */
		STAT_INC(s->stats.revoke_ack_implied);
		owner_gave_up(s, f, now);
	}
	if (owner_live(s, f, now)) {
		wait_for_revoke(s, f, v, from, now);
		return;
	}
	take(f, v->switch_id, v->epoch, v->gen, now);
	send_lease(s, from, f, RP_MSG_MIGRATE, v->pkt, v->pkt_len);
}

static void handle_heartbeat(struct rp_shard *s, const struct rp_msg_view *v,
			     const struct rp_sockaddr *from, uint64_t now)
{
	bool is_new;
	uint32_t lapsed = v->gen == RP_HB_LAPSED ? v->epoch : 0;
	uint32_t epoch = rp_session_heartbeat(s->sessions, v->switch_id, from, now, lapsed, &is_new);
	struct rp_msg_view r = {
		.type = RP_MSG_HEARTBEAT_ACK,
		.switch_id = v->switch_id,
		.seq = v->seq,	/* the switch's nonce: it times the lease from its send */
		.epoch = epoch,
		.lease_ms = lease_ms(s),
	};

	if (is_new) {
		char as[RP_ADDRSTRLEN];

		pr_debug("rp-store: switch %u joined from %s, session epoch %u\n", v->switch_id,
			 rp_addr_str((const struct sockaddr *)&from->ss, as, sizeof(as)), epoch);
		STAT_INC(s->stats.session_new);
	}
	else
		STAT_INC(s->stats.session_renew);
	/* the epoch, and where revokes go, must outlive this replica */
	if (s->chain)
		rp_chain_put_session(s, v->switch_id, epoch, from, from, &r);
	else
		emit(s, from, &r);
}

/* WRITE and SNAPSHOT: the full new state, committed if its seq is newer. */
static void handle_write(struct rp_shard *s, const struct rp_msg_view *v,
			 const struct rp_sockaddr *from, uint64_t now)
{
	bool snapshot = v->type == RP_MSG_SNAPSHOT;
	struct rp_flow *f;
	struct rp_msg_view ack;

	if (!rp_session_live(s->sessions, v->switch_id, v->epoch, now)) {
		send_reject(s, from, v, RP_REJ_NO_SESSION, 0);
		return;
	}
	f = rp_flow_lookup(&s->flows, v->app_id, &v->key);
	if (!f || f->owner != v->switch_id || f->epoch != v->epoch || f->gen != v->gen) {
		send_reject(s, from, v, RP_REJ_NOT_OWNER, f ? f->seq : 0);
		return;
	}
	f->touched_ns = now;

	if (v->seq == f->seq && (v->state_len != f->state_len ||
				 memcmp(v->state, f->state, v->state_len))) {
		/* a seq used twice for two states: the switch is out of step */
		STAT_INC(s->stats.write_conflict);
		send_reject(s, from, v, RP_REJ_CONFLICT, f->seq);
		return;
	}
	if (rp_seq_after(v->seq, f->seq)) {
		f->seq = v->seq;
		f->state_len = v->state_len;
		memcpy(f->state, v->state, v->state_len);
		STAT_INC(*(snapshot ? &s->stats.snapshot_commit : &s->stats.write_commit));
	} else if (v->seq == f->seq) {
		/* the ACK was lost: say it again, apply nothing */
		STAT_INC(*(snapshot ? &s->stats.snapshot_dup : &s->stats.write_dup));
	} else if (snapshot) {
		/*
		 * A snapshot overtaken by a newer one of the same holding: it
		 * is superseded, not out of step.  The ACK names the newer.
		 */
		STAT_INC(s->stats.snapshot_old);
	} else {
		send_reject(s, from, v, RP_REJ_STALE, f->seq);
		return;
	}

	ack = (struct rp_msg_view){
		.type = RP_MSG_ACK,
		.app_id = f->app_id,
		.flags = v->pkt_len ? RP_F_PKT : 0,
		.switch_id = v->switch_id,
		.seq = f->seq,
		.epoch = f->epoch,
		.lease_ms = lease_ms(s),
		.pkt_len = v->pkt_len,
		.gen = f->gen,
		.key = f->key,
		.pkt = v->pkt,
	};
	/* a duplicate's ACK waits too: the first copy may not be at the tail yet */
	commit(s, f, from, &ack);
}

/*
 * EXPIRE: the holder gave the flow up as idle.  In a chain every answer
 * leaves once the tail has what it reports (and whatever came before), so
 * that no switch takes a delete for done that a crash of the head undoes.
 */
static void handle_expire(struct rp_shard *s, const struct rp_msg_view *v,
			  const struct rp_sockaddr *from, uint64_t now)
{
	struct rp_flow *f = rp_flow_lookup(&s->flows, v->app_id, &v->key);
	struct rp_msg_view r;

	if (!f) {
		/* deleted before (this EXPIRE was resent), or never here */
		STAT_INC(s->stats.expire_no_flow);
		STAT_INC(s->stats.reject[RP_REJ_NO_FLOW]);
		r = reject_msg(s, v, RP_REJ_NO_FLOW, 0);
		commit_delete(s, v->app_id, &v->key, from, &r);
		return;
	}
	if (f->owner != v->switch_id || f->epoch != v->epoch || f->gen != v->gen) {
		/* another switch's, or a holding of the sender's it gave up before */
		STAT_INC(s->stats.expire_not_owner);
		STAT_INC(s->stats.reject[RP_REJ_NOT_OWNER]);
		r = reject_msg(s, v, RP_REJ_NOT_OWNER, f->seq);
		commit(s, f, from, &r);
		return;
	}
	if (f->waiter) {
		/*
		 * A request waits on a revoke of this holding: giving it up is
		 * the revoke's ack, and the flow is the waiter's now, so the
		 * expirer is told it is not its to delete.
		 */
		STAT_INC(s->stats.expire_handover);
		STAT_INC(s->stats.reject[RP_REJ_NOT_OWNER]);
		owner_gave_up(s, f, now);
		r = reject_msg(s, v, RP_REJ_NOT_OWNER, f->seq);
		commit(s, f, from, &r);
		return;
	}
	r = holding_msg(s, f, RP_MSG_EXPIRE_ACK);
	STAT_INC(s->stats.expire_deleted);
	delete_flow(s, f, from, &r);
}

static void handle_revoke_ack(struct rp_shard *s, const struct rp_msg_view *v, uint64_t now)
{
	struct rp_flow *f = rp_flow_lookup(&s->flows, v->app_id, &v->key);

	if (!f || f->owner != v->switch_id || f->epoch != v->epoch || f->gen != v->gen) {
		/* a duplicate, a late one of an earlier holding, or from a non-owner */
		STAT_INC(s->stats.revoke_ack_stale);
		return;
	}
	/* bounded mode hands its newest local state over with the ack */
	if ((v->flags & RP_F_STATE) && rp_seq_after(v->seq, f->seq)) {
		f->seq = v->seq;
		f->state_len = v->state_len;
		memcpy(f->state, v->state, v->state_len);
		STAT_INC(s->stats.revoke_ack_state);
	}
	STAT_INC(s->stats.revoke_ack);
	owner_gave_up(s, f, now);
}

/* --allow: switch `id` may send from `from` (any port). */
static bool allowed(const struct rp_store_cfg *cfg, uint16_t id, const struct rp_sockaddr *from)
{
	const uint8_t *addr;
	int family = from->ss.ss_family;

	if (!cfg->nallowed)
		return true;
	if (family == AF_INET) {
		addr = (const uint8_t *)&((const struct sockaddr_in *)&from->ss)->sin_addr;
	} else {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)&from->ss)->sin6_addr;

		addr = a6->s6_addr;
		if (IN6_IS_ADDR_V4MAPPED(a6)) {
			family = AF_INET;
			addr += 12;
		}
	}
	for (unsigned int i = 0; i < cfg->nallowed; i++) {
		const struct rp_allowed *a = &cfg->allowed[i];

		if (a->switch_id == id && a->family == family &&
		    !memcmp(a->addr, addr, family == AF_INET ? 4 : 16))
			return true;
	}
	return false;
}

void rp_store_handle(struct rp_shard *s, const void *dgram, size_t len,
		     const struct rp_sockaddr *from, uint64_t now)
{
	struct rp_msg_view v;
	int err;

	STAT_INC(s->stats.rx_datagrams);
	err = rp_msg_decode(dgram, len, &v);
	if (!err && !rp_msg_from_switch(v.type))
		err = -RP_E_DIRECTION;
	if (err) {
		STAT_INC(s->stats.bad[-err]);
		return;
	}
	if (!allowed(s->cfg, v.switch_id, from)) {
		STAT_INC(s->stats.not_allowed);
		return;
	}
	if (rp_shard_of(dgram, len, s->cfg->shards) != s->id) {
		STAT_INC(s->stats.misrouted);
		return;
	}
	STAT_INC(s->stats.rx_type[v.type]);
	if (s->chain) {
		if (!rp_chain_serves(s)) {
			rp_chain_not_head(s, &v, from);
			return;
		}
		if (!rp_chain_has_room(s)) {
			/* the chain is behind (a successor is being replaced): retry later */
			STAT_INC(s->stats.chain_full);
			send_reject(s, from, &v, RP_REJ_BUSY, 0);
			return;
		}
	}

	switch (v.type) {
	case RP_MSG_HEARTBEAT:
		handle_heartbeat(s, &v, from, now);
		break;
	case RP_MSG_LEASE_REQ:
		handle_lease_req(s, &v, from, now);
		break;
	case RP_MSG_WRITE:
	case RP_MSG_SNAPSHOT:
		handle_write(s, &v, from, now);
		break;
	case RP_MSG_REVOKE_ACK:
		handle_revoke_ack(s, &v, now);
		break;
	case RP_MSG_EXPIRE:
		handle_expire(s, &v, from, now);
		break;
	}
}

void rp_store_tick(struct rp_shard *s, uint64_t now)
{
	for (uint32_t i = 0; i < s->cfg->wait_queue && s->nwaiting; i++) {
		struct rp_waiter *w = &s->waiters[i];

		if (!w->flow)
			continue;
		if (!rp_session_live(s->sessions, w->switch_id, w->epoch, now)) {
			/* its switch must rejoin and ask again: dropped, as documented */
			STAT_INC(s->stats.wait_dropped);
			waiter_free(s, w);
		} else if (!owner_live(s, w->flow, now)) {
			STAT_INC(s->stats.wait_done_lapse);
			waiter_grant(s, w, now);
		} else if (now >= w->deadline_ns) {
			struct rp_msg_view req = {
				.app_id = w->flow->app_id,
				.switch_id = w->switch_id,
				.epoch = w->epoch,
				.pkt_len = w->pkt_len,
				.key = w->flow->key,
				.pkt = w->pkt,
			};

			send_reject(s, &w->from, &req, RP_REJ_TIMEOUT, w->flow->seq);
			waiter_free(s, w);
		} else if (now >= w->next_revoke_ns) {
			send_revoke(s, w->flow);
			STAT_INC(s->stats.revoke_retx);
			w->next_revoke_ns = now + revoke_interval_ns(s);
		}
	}
	/*
	 * Only the head reclaims (its deletes go down the chain), and not in
	 * the start-up grace, when a switch may hold a lease it cannot see.
	 */
	if (s->cfg->orphan_ns && now >= s->reclaim_next_ns && now >= s->serve_from_ns &&
	    (!s->chain || rp_chain_serves(s))) {
		reclaim_orphans(s, RECLAIM_SCAN, RECLAIM_SCAN, now);
		s->reclaim_next_ns = now + rp_store_tick_ns(s->cfg);
	}
}

void rp_store_drop_waiters(struct rp_shard *s)
{
	for (uint32_t i = 0; i < s->cfg->wait_queue && s->nwaiting; i++)
		if (s->waiters[i].flow)
			waiter_free(s, &s->waiters[i]);
}
