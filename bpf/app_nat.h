/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The NAT application: source NAT of an internal prefix to one external
 * address, TCP and UDP, both directions.
 *
 * A connection has two keys, both kept in the store: the forward key (the
 * inside's 5-tuple, state: external address and port) and the reverse key
 * (the return traffic's 5-tuple, state: internal address and port), so that
 * a switch that sees only the return traffic can fetch the mapping.  A new
 * connection proposes its mapping with the forward key; when the store
 * grants it, the same packet goes back with a request for the reverse key,
 * and leaves only once both are in the store.  Packets that read a mapping
 * never talk to the store.  A FIN or RST is a write: it marks its key
 * closing, and the packet leaves when the store has the mark.
 *
 * External ports: this switch hands out [cfg_nat_port_base, + span), a range
 * no other switch uses (rp-load derives it from the switch id).  A port is
 * taken for a destination exactly when its reverse key is in the store: a
 * new connection takes the first of several candidates whose reverse key
 * this switch does not know to exist (nat_alloc_port), and one the store
 * reveals taken moves to another (nat_move_port).
 */
#ifndef __RP_APP_NAT_H
#define __RP_APP_NAT_H

#include "rp_app.h"

const volatile __be32 cfg_nat_int_net;
const volatile __be32 cfg_nat_int_mask;
const volatile __be32 cfg_nat_ext_addr;
const volatile __u16 cfg_nat_port_base = 1024;
const volatile __u16 cfg_nat_port_span = 4032;

/*
 * Where the next connection's search for a port starts: an index into this
 * switch's range, moved on by every search.  rp-load saves it and restores
 * it across restarts (user/app_nat.c), so that a restarted switch does not
 * hand out the ports of the connections it just had again first.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} nat_ports SEC(".maps");

/* A search for a port (nat_alloc_port), as bpf_loop() hands it to each round. */
struct nat_search {
	struct rp_flow_key rev;	/* the candidate's reverse key */
	__u32 start;		/* the shared counter's position */
	__u32 tried;		/* candidates looked at */
	__be16 skip;		/* not this one (0: none) */
	bool found;		/* rev.dport is free */
};

/*
 * Round i: candidate start + i, free if its reverse key is, as far as this
 * switch knows.  The store is the arbiter; what this switch knows of the
 * key it holds, gave up to a revoke (another switch may have the
 * connection), or is deleting may all live on there.  Only an entry that
 * holds nothing and says the store has no such flow is free, as no entry
 * is.  1 ends the search.
 */
static long nat_try_port(__u32 i, void *arg)
{
	struct nat_search *s = arg;
	__u16 span = cfg_nat_port_span;
	struct rp_dp_flow *r;
	bool free = false;

	s->tried = i + 1;
	s->rev.dport = bpf_htons((__u16)(cfg_nat_port_base + (s->start + i) % span));
	if (s->rev.dport != s->skip) {
		r = bpf_map_lookup_elem(&flows, &s->rev);
		free = !r;
		if (r) {
			rp_flow_lock(r);
			/* an element deleted and made another key's: this key has none */
			free = !rp_flow_is(r, &s->rev) ||
			       (!r->epoch && (r->flags & RP_DPF_GONE) &&
				!(r->flags & RP_DPF_EXPIRING));
			rp_flow_unlock(r);
		}
	}
	if (!free)
		rp_stat(RP_DP_nat_port_skipped);
	s->found = free;
	return free;
}

/*
 * An external port for a connection of `proto` to daddr:dport, other than
 * `skip` (0: none): the first free one of RP_NAT_PORT_TRIES candidates from
 * the shared counter's position on, as Linux's NAT tries several.  0 (the
 * packet dropped, counted) when every candidate is busy.  The counter moves
 * past the candidates looked at: busy for this destination, they would be
 * looked at again by its next connection.  A bpf_loop(), not a loop: the
 * verifier checks its round once, where it would walk a loop's every
 * round and every way out of it through the rest of the program.
 */
static __always_inline __be16 nat_alloc_port(__u8 proto, __be32 daddr, __be16 dport, __be16 skip)
{
	__u32 zero = 0, span = cfg_nat_port_span;
	__u32 *next = bpf_map_lookup_elem(&nat_ports, &zero);
	struct nat_search s = { .skip = skip };

	if (!next || !span)
		return 0;
	rp_key_v4(&s.rev, proto, daddr, dport, cfg_nat_ext_addr, 0);
	s.start = __sync_fetch_and_add(next, 1);
	bpf_loop(span < RP_NAT_PORT_TRIES ? span : RP_NAT_PORT_TRIES, nat_try_port, &s, 0);
	if (!s.found) {
		rp_stat(RP_DP_nat_ports_exhausted);
		return 0;
	}
	if (s.tried > 1)
		__sync_fetch_and_add(next, s.tried - 1);
	return s.rev.dport;
}

/*
 * The store granted the reverse key of forward key `fwd` (held as `h`,
 * mapped as *st) back with another connection's state: its port is taken
 * for this destination.  The connection moves to another port, still
 * waiting for its reverse key; the move is a write, so that the forward
 * key's new mapping is in the store before its new reverse key is asked
 * for.  The packet rides in it untranslated, and the ACK brings it through
 * the app again instead of to the wire (rp_on_ack: the write of a flow
 * still RP_DPF_REV_PENDING), to ask for the new reverse key.
 */
static __always_inline int nat_move_port(struct xdp_md *ctx, struct rp_scratch *sc,
					 struct rp_pkt *p, struct rp_dp_flow *f,
					 const struct rp_flow_key *fwd, struct rp_hold h,
					 const struct rp_xlate_state *st, __u64 now)
{
	__u32 live = rp_live_epoch(rp_store_of(fwd), now);
	struct rp_xlate_state *cur;
	bool moved = false;
	__be16 port;

	/* before the lock, under which no helper may run */
	port = nat_alloc_port(p->ip->protocol, p->ip->daddr, p->dport, st->port);
	if (!port)
		return XDP_DROP;
	rp_flow_lock(f);
	cur = (struct rp_xlate_state *)f->state;
	/* as seen: another CPU's packet of the connection may have moved it already */
	if (rp_flow_is(f, fwd) && rp_held(f, live) && f->epoch == h.epoch && f->gen == h.gen &&
	    (f->flags & RP_DPF_REV_PENDING) && f->state_len == sizeof(*cur) &&
	    cur->dir == RP_NAT_FWD && cur->port == st->port) {
		cur->port = port;
		rp_write_locked(sc, f, sizeof(*cur));
		moved = true;
	}
	rp_flow_unlock(f);
	if (!moved)
		/* the connection's next packet finds where it stands now */
		return XDP_DROP;
	rp_stat(RP_DP_nat_port_moved);
#ifndef RP_NO_REPLICATION
	return rp_send_write(ctx, sc, p, fwd);
#else
	/* committed at once: through the app again, as the ACK would bring it */
	bpf_tail_call(ctx, &progs, cfg_app);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
#endif
}

/*
 * A new connection's reverse key, once its forward key is granted: asked
 * for, or found held with this connection's mapping; then the forward key
 * no longer waits for it.  A verdict, or -1 when the packet goes on.
 */
static __always_inline int nat_reverse_ready(struct xdp_md *ctx, struct rp_scratch *sc,
					     struct rp_pkt *p, struct rp_dp_flow *f,
					     const struct rp_flow_key *fwd, struct rp_hold h,
					     const struct rp_xlate_state *st, __u64 now)
{
	struct iphdr *ip = p->ip;
	__be16 sport = p->sport, dport = p->dport;
	struct rp_xlate_state rst = {};
	struct rp_flow_key rev;
	struct rp_dp_flow *r;
	bool held = false;

	rp_key_v4(&rev, ip->protocol, ip->daddr, dport, st->addr, st->port);
	r = bpf_map_lookup_elem(&flows, &rev);
	if (r) {
		__u32 live = rp_live_epoch(rp_store_of(&rev), now);

		rp_flow_lock(r);
		held = rp_flow_is(r, &rev) && rp_held(r, live);
		__builtin_memcpy(&rst, r->state, sizeof(rst));
		rp_flow_unlock(r);
	}
	if (!held) {
		struct rp_nat_state prop = {
			.addr = ip->saddr, .port = sport, .dir = RP_NAT_REV,
		};

		rp_stat(RP_DP_nat_rev_req);
		return rp_lease(ctx, sc, &rev, &prop, sizeof(prop));
	}
	if (rst.dir != RP_NAT_REV || rst.addr != ip->saddr || rst.port != sport) {
		/* the port is someone else's here */
		rp_stat(RP_DP_nat_collision);
		return nat_move_port(ctx, sc, p, f, fwd, h, st, now);
	}
	rp_flow_lock(f);
	rp_flags_locked(f, fwd, h, RP_DPF_REV_PENDING, 0);
	rp_flow_unlock(f);
	return -1;
}

static __always_inline int nat_outbound(struct xdp_md *ctx, struct rp_scratch *sc,
					struct rp_pkt *p)
{
	struct iphdr *ip = p->ip;
	__u8 tf = rp_tcp_flags(p), bits = rp_xlate_closing_bits(tf);
	struct rp_xlate_state st = {};
	struct rp_flow_key fwd;
	struct rp_flow_view v;
	struct rp_dp_flow *f;
	struct rp_hold hold;
	bool mine, held, pending, fresh = false, write = false, again = false;
	__be16 port = 0;
	__u64 now = rp_lease_now();
	__u32 live;
	int rc;

	rp_key_v4(&fwd, ip->protocol, ip->saddr, p->sport, ip->daddr, p->dport);
	f = bpf_map_lookup_elem(&flows, &fwd);
	if (!f) {
		st.addr = cfg_nat_ext_addr;
		st.port = nat_alloc_port(ip->protocol, ip->daddr, p->dport, 0);
		if (!st.port)
			return XDP_DROP;
		st.dir = RP_NAT_FWD;
		/* remember the proposal: its reverse key must follow a GRANT */
		rp_flow_note(sc, &fwd, &st, sizeof(st), RP_DPF_REV_PENDING);
		rp_stat(RP_DP_nat_new);
		return rp_lease(ctx, sc, &fwd, &st, sizeof(st));
	}
	live = rp_live_epoch(rp_store_of(&fwd), now);
	if (!bits && rp_flow_peek(f, &fwd, &v, sizeof(st))) {
		/* the fast path: a packet that only reads takes no lock */
		__builtin_memcpy(&st, v.state, sizeof(st));
		if (rp_view_held(&v, live) && !(v.flags & RP_DPF_REV_PENDING) &&
		    st.dir == RP_NAT_FWD) {
			rp_touch(f, tf, rp_touch_now());
			return rp_xlate_apply(ctx, sc, p, &fwd, &st, true, false);
		}
	}
	/*
	 * An entry with no mapping (made for a revoke or a grant on its way,
	 * holding nothing) is a new connection here: a port for it, taken
	 * before the lock, which the entry may have gained meanwhile.
	 */
	if (RP_READ_ONCE(f->state_len) != sizeof(st) || (RP_READ_ONCE(f->flags) & RP_DPF_GONE)) {
		port = nat_alloc_port(ip->protocol, ip->daddr, p->dport, 0);
		if (!port)
			return XDP_DROP;
	}
	rp_flow_lock(f);
	mine = rp_flow_is(f, &fwd);
	held = mine && rp_held(f, live);
	if (mine && !held && (f->state_len != sizeof(st) || (f->flags & RP_DPF_GONE)) && port) {
		struct rp_xlate_state *cur = (struct rp_xlate_state *)f->state;

		cur->addr = cfg_nat_ext_addr;
		cur->port = port;
		cur->dir = RP_NAT_FWD;
		cur->closing = 0;
		f->state_len = sizeof(st);
		f->flags = (f->flags & ~RP_DPF_LIFE) | RP_DPF_REV_PENDING;
		fresh = true;
	}
	pending = f->flags & RP_DPF_REV_PENDING;
	hold = rp_hold_of(f);
	if (held && pending && rp_write_pending(f)) {
		/*
		 * A move (nat_move_port) the store has not acknowledged: no
		 * reverse key may be asked for yet.  Written again, as a FIN
		 * sent again is, so that a move whose write rp-load gave up
		 * does not leave the connection waiting for good.
		 */
		rp_write_locked(sc, f, sizeof(st));
		again = true;
	} else if (held && !pending && ((struct rp_nat_state *)f->state)->dir == RP_NAT_FWD) {
		write = rp_xlate_take_locked(sc, f, bits, &st);
	} else {
		__builtin_memcpy(&st, f->state, sizeof(st));
	}
	rp_flow_unlock(f);
	if (again)
		return rp_send_write(ctx, sc, p, &fwd);
	if (fresh)
		rp_stat(RP_DP_nat_new);
	if (held)
		rp_touch(f, tf, rp_touch_now());
	if (!held)
		/* known here: ask again with what we know */
		return rp_lease(ctx, sc, &fwd, &st, sizeof(st));
	if (st.dir != RP_NAT_FWD) {
		rp_stat(RP_DP_nat_no_mapping);
		return XDP_DROP;
	}
	if (pending) {
		rc = nat_reverse_ready(ctx, sc, p, f, &fwd, hold, &st, now);
		if (rc >= 0)
			return rc;
		/*
		 * The forward key again, now without the wait.  Still waiting,
		 * it is another holding's (a grant keeps the flag): no write
		 * is made while RP_DPF_REV_PENDING is set but a move
		 * (rp_on_ack), so the regrant brings the packet back instead.
		 */
		rp_flow_lock(f);
		held = rp_flow_is(f, &fwd) && rp_held(f, live);
		pending = f->flags & RP_DPF_REV_PENDING;
		if (held && !pending)
			write = rp_xlate_take_locked(sc, f, bits, &st);
		rp_flow_unlock(f);
		if (!held || pending)
			return rp_lease(ctx, sc, &fwd, &st, sizeof(st));
	}
	return rp_xlate_apply(ctx, sc, p, &fwd, &st, true, write);
}

static __always_inline int nat_inbound(struct xdp_md *ctx, struct rp_scratch *sc,
				       struct rp_pkt *p)
{
	struct iphdr *ip = p->ip;
	struct rp_xlate_state st = {};
	struct rp_xlate_seen seen;
	struct rp_flow_key rev;
	struct rp_dp_flow *r;

	rp_key_v4(&rev, ip->protocol, ip->saddr, p->sport, ip->daddr, p->dport);
	r = bpf_map_lookup_elem(&flows, &rev);
	if (!r)
		/* never invent a mapping */
		return rp_lease(ctx, sc, &rev, NULL, 0);
	if (rp_xlate_look(sc, r, &rev, rp_tcp_flags(p), RP_NAT_REV, &st, &seen))
		return rp_xlate_apply(ctx, sc, p, &rev, &st, false, false);
	if (!seen.held)
		/* one this switch had, it may propose again */
		return seen.known ? rp_lease(ctx, sc, &rev, &st, sizeof(st))
				  : rp_lease(ctx, sc, &rev, NULL, 0);
	if (!seen.known || st.dir != RP_NAT_REV) {
		rp_stat(RP_DP_nat_no_mapping);
		return XDP_DROP;
	}
	return rp_xlate_apply(ctx, sc, p, &rev, &st, false, seen.write);
}

/*
 * An ICMP error quoting a packet of a translated connection, translated back
 * (path MTU discovery, traceroute): one from outside about a packet this
 * NAT sent out (quoted source: the external address) goes to the inside
 * host, by the connection's reverse key; one from the inside about a packet
 * this NAT let in goes out from the external address, by its forward key.
 * Both keys are (quoted destination, quoted source).  An error never makes
 * a mapping: not held here, the key is looked up; unknown, dropped.
 */
static __always_inline int nat_icmp_error(struct xdp_md *ctx, struct rp_scratch *sc,
					  struct rp_pkt *p)
{
	struct iphdr *ip = p->ip, *iip = p->in_ip;
	struct rp_xlate_state st = {};
	struct rp_xlate_seen seen = {};
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	bool in;

	if (!rp_icmp_quote_ok(p))
		return XDP_DROP;
	if (ip->daddr == cfg_nat_ext_addr && iip->saddr == cfg_nat_ext_addr) {
		in = true;
	} else if ((ip->saddr & cfg_nat_int_mask) == cfg_nat_int_net &&
		   (iip->daddr & cfg_nat_int_mask) == cfg_nat_int_net) {
		in = false;
	} else {
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	rp_key_v4(&key, iip->protocol, iip->daddr, p->in_l4->dest, iip->saddr, p->in_l4->source);
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return rp_lease(ctx, sc, &key, NULL, 0);
	if (!rp_xlate_look(sc, f, &key, 0, in ? RP_NAT_REV : RP_NAT_FWD, &st, &seen)) {
		if (!seen.held)
			return rp_lease(ctx, sc, &key, NULL, 0);
		if (!seen.known || st.dir != (in ? RP_NAT_REV : RP_NAT_FWD)) {
			rp_stat(RP_DP_drop_icmp_error);
			return XDP_DROP;
		}
	}
	rp_icmp_xlate(p, in, st.addr, st.port);
	rp_stat(RP_DP_icmp_translated);
	return rp_pass(ctx, sc, p);
}

/* An echo request from the inside, or a reply to the external address: a flow. */
static __always_inline bool nat_echo_is_ours(const struct rp_pkt *p)
{
	__u8 type = *(const __u8 *)p->l4;

	if (type == RP_ICMPT_ECHO)
		return (p->ip->saddr & cfg_nat_int_mask) == cfg_nat_int_net;
	return p->ip->daddr == cfg_nat_ext_addr;
}

SEC("xdp")
int rp_app_nat(struct xdp_md *ctx)
{
	struct rp_pkt p;
	struct rp_scratch *sc = rp_app_begin(ctx, &p);

	if (!sc)
		return XDP_DROP;
	if (p.icmp == RP_ICMP_ERROR)
		return nat_icmp_error(ctx, sc, &p);
	/* an echo request to this host, an echo the inside answers: the kernel's */
	if (p.icmp == RP_ICMP_ECHO && !nat_echo_is_ours(&p)) {
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	if ((p.ip->saddr & cfg_nat_int_mask) == cfg_nat_int_net)
		return nat_outbound(ctx, sc, &p);
	if (p.ip->daddr == cfg_nat_ext_addr)
		return nat_inbound(ctx, sc, &p);
	rp_stat(RP_DP_pass_not_app);
	return XDP_PASS;
}

#endif /* __RP_APP_NAT_H */
