// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flow expiry (docs/DATAPLANE.md, "Expiry"; docs/PROTOCOL.md, EXPIRE): every
 * sweep period rp-load reads the flows map and
 *
 *  - gives up each held flow idle past its timeout (the application says
 *    which timeout its phase has), through the data plane's rp_expire, under
 *    the flow's lock, and asks the store to delete it (RP_MSG_EXPIRE), again
 *    every sweep until the store answers;
 *  - deletes the entries that hold nothing once they have been untouched
 *    for the quarantine (a given-up holding must outlive any grant of it
 *    still on the wire; a negative entry lives for its own timeout);
 *  - holds a translation's reverse key until its forward key is gone from
 *    the store, asking the store about the forward key when this switch
 *    does not know.
 *
 * The switch's decisions are the data plane's (under each flow's lock):
 * this only proposes them, so a packet that arrives meanwhile wins.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "agent.h"
#include "redplane/codec.h"
#include "redplane/log.h"
#include "redplane.skel.h"

#define READ_BATCH	1024	/* flows per map batch read */
#define NS_PER_SEC	1000000000ull

/* The closing bits the NAT and the LB keep in a key's state, as TCP flags. */
static uint8_t xlate_closing_flags(const struct rp_dp_flow *f)
{
	const struct rp_nat_state *st = (const struct rp_nat_state *)f->state;

	return (st->closing & RP_NAT_FIN ? TH_FIN : 0) | (st->closing & RP_NAT_RST ? TH_RST : 0);
}

void rp_xlate_idle(const struct rp_flow_key *k, const struct rp_dp_flow *f,
		   rp_flow_lookup_fn lookup, void *ctx, struct rp_conn_idle *c,
		   void (*other_key)(const struct rp_flow_key *k, const struct rp_dp_flow *f,
				     struct rp_flow_key *o))
{
	const struct rp_nat_state *st = (const struct rp_nat_state *)f->state;
	uint8_t mine = f->tcp_seen | xlate_closing_flags(f), theirs = 0;
	struct rp_flow_key ok;
	struct rp_dp_flow o;
	bool fwd = st->dir == RP_NAT_FWD, both = false;

	c->seen_ns = f->seen_ns;
	if (f->state_len != sizeof(*st)) {
		c->timeout = rp_udp_timeout(k->proto, false);
		return;
	}
	other_key(k, f, &ok);
	if (lookup(ctx, &ok, &o) && o.state_len == sizeof(*st) && o.epoch) {
		theirs = o.tcp_seen | xlate_closing_flags(&o);
		both = true;
		if (o.seen_ns > c->seen_ns)
			c->seen_ns = o.seen_ns;
	}
	if (!fwd)
		c->wait_for = ok;	/* the reverse key goes after the forward key */
	if (k->proto == IPPROTO_TCP)
		c->timeout = fwd ? rp_tcp_timeout(mine, theirs) : rp_tcp_timeout(theirs, mine);
	else
		c->timeout = rp_udp_timeout(k->proto, both);
}

/* ---- the map read ---- */

int rp_flows_read(int fd, struct rp_flow_read *r)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts, .elem_flags = BPF_F_LOCK);
	uint32_t batch = 0;
	bool first = true;

	r->n = 0;
	for (;;) {
		uint32_t count = READ_BATCH;
		int err;

		if (r->room - r->n < READ_BATCH) {
			size_t room = r->room ? 2 * r->room : 4 * READ_BATCH;
			void *p = realloc(r->keys, room * sizeof(*r->keys));

			if (!p)
				return -ENOMEM;
			r->keys = p;
			p = realloc(r->vals, room * sizeof(*r->vals));
			if (!p)
				return -ENOMEM;
			r->vals = p;
			r->room = room;
		}
		err = bpf_map_lookup_batch(fd, first ? NULL : &batch, &batch, r->keys + r->n,
					   r->vals + r->n, &count, &opts);
		first = false;
		if (err && errno != ENOENT)
			return -errno;
		r->n += count;
		if (err)
			return 0;	/* ENOENT: the last batch */
	}
}

void rp_flows_read_free(struct rp_flow_read *r)
{
	free(r->keys);
	free(r->vals);
	*r = (struct rp_flow_read){ 0 };
}

/* ---- the sweep ---- */

static bool lookup_flow(void *ctx, const struct rp_flow_key *k, struct rp_dp_flow *f)
{
	const struct rp_agent *a = ctx;

	return !bpf_map_lookup_elem_flags(bpf_map__fd(a->skel->maps.flows), k, f, BPF_F_LOCK);
}

/* rp_expire on (k, op, idle_before): its verdict, the record filled in. */
static int run_expire(struct rp_agent *a, const struct rp_flow_key *k, uint32_t op,
		      uint64_t idle_before, struct rp_dp_expire *rec)
{
	LIBBPF_OPTS(bpf_test_run_opts, run);
	int err;

	*rec = (struct rp_dp_expire){ .key = *k, .idle_before_ns = idle_before, .op = op };
	run.data_in = rec;
	run.data_size_in = sizeof(*rec);
	run.data_out = rec;
	run.data_size_out = sizeof(*rec);
	err = bpf_prog_test_run_opts(bpf_program__fd(a->skel->progs.rp_expire), &run);
	if (err) {
		a->stats[RP_AG_expiry_errors]++;
		return RP_EXPIRE_KEPT;
	}
	return (int)run.retval;
}

static void send_msg(struct rp_agent *a, uint16_t store, const struct rp_msg_view *v)
{
	uint8_t buf[RP_MSG_LEN];
	int len = rp_msg_encode(buf, sizeof(buf), v);

	if (len > 0 && sendto(a->sock, buf, (size_t)len, 0,
			      (const struct sockaddr *)rp_hb_head(a, store),
			      sizeof(struct sockaddr_in)) == len)
		return;
	a->stats[RP_AG_expiry_errors]++;
}

/* EXPIRE of the holding rp_expire gave up (or still deletes). */
static void send_expire(struct rp_agent *a, const struct rp_dp_expire *rec)
{
	struct rp_msg_view v = {
		.type = RP_MSG_EXPIRE,
		.app_id = a->cfg.app->id,
		.switch_id = a->cfg.switch_id,
		.seq = rec->seq,
		.epoch = rec->epoch,
		.gen = rec->gen,
		.key = rec->key,
	};

	if (rec->store >= a->cfg.nstores)
		return;
	send_msg(a, rec->store, &v);
	a->stats[RP_AG_expires_sent]++;
}

/*
 * A lookup (a lease request without a proposal or a packet) of a key this
 * switch does not hold: the store grants it here if it has it, or says it
 * has none, which the data plane notes (RP_DPF_NO_FLOW).
 */
static void ask_store(struct rp_agent *a, const struct rp_flow_key *k)
{
	uint16_t store = rp_store_index(k, a->cfg.nstores);
	struct rp_msg_view v = {
		.type = RP_MSG_LEASE_REQ,
		.app_id = a->cfg.app->id,
		.switch_id = a->cfg.switch_id,
		.epoch = a->sess[store].epoch,
		.key = *k,
	};

	if (!v.epoch || a->sess[store].lapsed)
		return;
	send_msg(a, store, &v);
	a->stats[RP_AG_expiry_lookups]++;
}

/* The entry says the store has no such flow (deleted, or never there). */
static bool gone_from_store(const struct rp_dp_flow *f)
{
	return !f->epoch && (f->flags & RP_DPF_GONE);
}

static uint64_t quarantine_ns(const struct rp_agent *a)
{
	uint64_t q = 8ull * a->cfg.lease_ms * 1000000ull;

	return q > NS_PER_SEC ? q : NS_PER_SEC;
}

/* A held flow: given up once idle past its timeout, and the store told. */
static void sweep_held(struct rp_agent *a, const struct rp_flow_key *k,
		       const struct rp_dp_flow *f, uint64_t now)
{
	struct rp_conn_idle c = { .timeout = RP_TO_NEVER };
	struct rp_dp_expire rec;
	struct rp_dp_flow w;
	uint64_t t;

	if (!a->cfg.app->idle)
		return;
	a->cfg.app->idle(k, f, lookup_flow, a, &c);
	if (c.timeout < 0 || c.timeout >= __RP_TO_MAX)
		return;
	t = a->cfg.timeouts[c.timeout];
	if (now < c.seen_ns + t)
		return;
	if (c.wait_for.family) {
		if (!lookup_flow(a, &c.wait_for, &w)) {
			ask_store(a, &c.wait_for);
			return;
		}
		if (!gone_from_store(&w)) {
			/* held here or being deleted: its own sweep; not known: ask */
			if (!w.epoch && !(w.flags & RP_DPF_EXPIRING))
				ask_store(a, &c.wait_for);
			return;
		}
	}
	switch (run_expire(a, k, RP_EXPIRE_OP_GIVE_UP, now - t, &rec)) {
	case RP_EXPIRE_GAVE_UP:
	case RP_EXPIRE_PENDING:
		send_expire(a, &rec);
		break;
	}
}

static void sweep_once(struct rp_agent *a, uint64_t now)
{
	struct rp_flow_read *r = &a->expiry_read;
	uint64_t q = quarantine_ns(a), held = 0;
	int err = rp_flows_read(bpf_map__fd(a->skel->maps.flows), r);

	if (err) {
		a->stats[RP_AG_expiry_errors]++;
		return;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct rp_dp_flow *f = &r->vals[i];
		const struct rp_flow_key *k = &r->keys[i];
		struct rp_dp_expire rec;
		uint64_t after;

		if (f->store >= a->cfg.nstores)
			continue;
		if (f->epoch && f->epoch == a->sess[f->store].epoch) {
			held++;
			sweep_held(a, k, f, now);
			continue;
		}
		if ((f->flags & RP_DPF_EXPIRING) && f->gone_epoch == a->sess[f->store].epoch) {
			/* its EXPIRE or the answer was lost: again */
			if (run_expire(a, k, RP_EXPIRE_OP_GIVE_UP, 0, &rec) == RP_EXPIRE_PENDING)
				send_expire(a, &rec);
			continue;
		}
		/*
		 * A holding given up to another switch is remembered longer than
		 * one deleted at the store: the other switch may still hand the
		 * flow back, and a late grant of it must be refused
		 */
		if (f->flags & RP_DPF_NO_FLOW)
			after = a->cfg.timeouts[RP_TO_negative];
		else if (f->gone_epoch && !(f->flags & RP_DPF_EXPIRED))
			after = a->cfg.timeouts[RP_TO_given_up];
		else
			after = q;
		if (now >= f->seen_ns + after && now >= f->until_ns + after &&
		    run_expire(a, k, RP_EXPIRE_OP_REAP, now - after, &rec) == RP_EXPIRE_REAPED)
			a->stats[RP_AG_entries_reaped]++;
	}
	a->stats[RP_AG_sweeps]++;
	a->stats[RP_AG_flows_held] = held;
	a->stats[RP_AG_flows_entries] = r->n;
}

/* Sweeps often enough to judge the shortest timeout to a quarter of it. */
static uint64_t sweep_period_ns(const struct rp_agent *a)
{
	uint64_t p = NS_PER_SEC;

	for (int i = 0; i < __RP_TO_MAX; i++)
		if (a->cfg.timeouts[i] / 4 < p)
			p = a->cfg.timeouts[i] / 4;
	return p < 10000000ull ? 10000000ull : p;
}

void rp_expiry_init(struct rp_agent *a)
{
	a->next_sweep_ns = rp_mono_ns() + sweep_period_ns(a);
}

void rp_expiry_free(struct rp_agent *a)
{
	rp_flows_read_free(&a->expiry_read);
}

void rp_expiry_tick(struct rp_agent *a, uint64_t now)
{
	uint64_t period = sweep_period_ns(a);
	uint64_t full = a->stats[RP_AG_flows_entries] * 10 >= (uint64_t)a->cfg.max_flows * 9;

	if (now < a->next_sweep_ns)
		return;
	sweep_once(a, now);
	/* a map nine tenths full is swept ten times as often: room comes first */
	a->next_sweep_ns = now + (full ? period / 10 : period);
}

uint64_t rp_expiry_touch_ns(const struct rp_load_cfg *cfg)
{
	uint64_t t = NS_PER_SEC;

	for (int i = 0; i < __RP_TO_MAX; i++)
		if (i != RP_TO_negative && i != RP_TO_given_up && cfg->timeouts[i] / 8 < t)
			t = cfg->timeouts[i] / 8;
	return t ? t : 1;
}
