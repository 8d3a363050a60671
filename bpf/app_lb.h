/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The L4 load balancer: TCP and UDP to one virtual address and port go to
 * a backend chosen per connection (destination NAT), and the backend's
 * replies get the virtual address back (source NAT).
 *
 * A connection has two keys, as the NAT's: the forward key (the client's
 * 5-tuple, state: the backend) and the reverse key (the backend's reply,
 * state: the virtual address and port).  A new connection's first packet
 * proposes its backend; when the store grants it, the same packet asks for
 * the reverse key, and leaves only once both are in the store.  The
 * backend is a hash of the 5-tuple over this switch's backends; once the
 * store has it, it is the connection's for good: a switch that takes the
 * connection over uses the stored backend, whatever its own list says.
 *
 * Replies are recognised by their reverse key, noted here when the
 * connection's forward packets pass; or, before any has, by their source
 * being a backend this switch lists (to choose from, or draining).
 */
#ifndef __RP_APP_LB_H
#define __RP_APP_LB_H

#include "rp_app.h"

const volatile __be32 cfg_lb_vip;
const volatile __be16 cfg_lb_vport;
/* chosen from: the first cfg_lb_nbackends; recognised: the first cfg_lb_nknown */
const volatile __u32 cfg_lb_nbackends;
const volatile __u32 cfg_lb_nknown;
const volatile struct rp_lb_backend cfg_lb_backends[RP_LB_MAX_BACKENDS];

/* A new connection's backend, into *s; false if there is none. */
static __always_inline bool lb_choose(const struct rp_flow_key *k, struct rp_xlate_state *s)
{
	__u32 n = cfg_lb_nbackends, i;

	if (!n)
		return false;
	i = (rp_lb_hash(k) % n) & (RP_LB_MAX_BACKENDS - 1);
	s->addr = cfg_lb_backends[i].addr;
	s->port = cfg_lb_backends[i].port;
	s->dir = RP_LB_FWD;
	return true;
}

/* A backend this switch lists, to choose from or draining. */
static __always_inline bool lb_is_backend(__be32 addr, __be16 port)
{
	bool found = false;

#pragma unroll
	for (int i = 0; i < RP_LB_MAX_BACKENDS; i++)
		if (i < (int)cfg_lb_nknown && cfg_lb_backends[i].addr == addr &&
		    cfg_lb_backends[i].port == port)
			found = true;
	return found;
}

/*
 * A new connection's reverse key, once its forward key is granted: asked
 * for, or found held with this connection's translation; then the forward
 * key no longer waits for it.  A verdict, or -1 when the packet goes on.
 */
static __always_inline int lb_reverse_ready(struct xdp_md *ctx, struct rp_scratch *sc,
					    struct rp_pkt *p, struct rp_dp_flow *f,
					    const struct rp_flow_key *fwd, struct rp_hold h,
					    const struct rp_flow_key *rev, __u64 now)
{
	struct iphdr *ip = p->ip;
	__be16 dport = p->dport;
	struct rp_lb_state rst = {};
	struct rp_dp_flow *r;
	bool held = false, known = false;

	r = bpf_map_lookup_elem(&flows, rev);
	if (r) {
		__u32 live = rp_live_epoch(rp_store_of(rev), now);

		rp_flow_lock(r);
		held = rp_flow_is(r, rev) && rp_held(r, live);
		known = r->state_len == sizeof(rst);
		__builtin_memcpy(&rst, r->state, sizeof(rst));
		rp_flow_unlock(r);
	}
	if (!held) {
		struct rp_lb_state prop = {
			.addr = ip->daddr, .port = dport, .dir = RP_LB_REV,
		};

		rp_stat(RP_DP_lb_rev_req);
		return rp_lease(ctx, sc, rev, &prop, sizeof(prop));
	}
	if (!known || rst.dir != RP_LB_REV || rst.addr != ip->daddr || rst.port != dport) {
		/* that reply is another connection's: this one cannot be told apart */
		rp_stat(RP_DP_lb_collision);
		return XDP_DROP;
	}
	rp_flow_lock(f);
	rp_flags_locked(f, fwd, h, RP_DPF_REV_PENDING, RP_DPF_REV_KNOWN);
	rp_flow_unlock(f);
	return -1;
}

/* Client to the virtual address. */
static __always_inline int lb_forward(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p)
{
	struct iphdr *ip = p->ip;
	__be16 sport = p->sport, dport = p->dport;
	__u8 tf = rp_tcp_flags(p), bits = rp_xlate_closing_bits(tf), flags;
	struct rp_xlate_state st = {};
	struct rp_flow_key fwd, rev;
	struct rp_flow_view v;
	struct rp_dp_flow *f;
	struct rp_hold hold;
	bool mine, held, known, pending, write = false;
	__u64 now = rp_lease_now();
	__u32 live;
	int rc;

	rp_key_v4(&fwd, ip->protocol, ip->saddr, sport, ip->daddr, dport);
	f = bpf_map_lookup_elem(&flows, &fwd);
	if (!f) {
		if (ip->protocol == IPPROTO_TCP && !rp_tcp_opener(rp_tcp_flags(p)))
			/* mid-connection: its backend is in the store, if anywhere */
			return rp_lease(ctx, sc, &fwd, NULL, 0);
		if (!lb_choose(&fwd, &st)) {
			rp_stat(RP_DP_lb_no_backend);
			return XDP_DROP;
		}
		/* remember the proposal: its reverse key must follow a GRANT */
		rp_flow_note(sc, &fwd, &st, sizeof(st), RP_DPF_REV_PENDING);
		rp_stat(RP_DP_lb_new);
		return rp_lease(ctx, sc, &fwd, &st, sizeof(st));
	}
	live = rp_live_epoch(rp_store_of(&fwd), now);
	if (!bits && rp_flow_peek(f, &fwd, &v, sizeof(st))) {
		/* the fast path: a packet that only reads takes no lock */
		__builtin_memcpy(&st, v.state, sizeof(st));
		if (rp_view_held(&v, live) && v.state_len == sizeof(st) && st.dir == RP_LB_FWD &&
		    (v.flags & (RP_DPF_REV_PENDING | RP_DPF_REV_KNOWN)) == RP_DPF_REV_KNOWN) {
			rp_touch(f, tf, rp_touch_now());
			return rp_xlate_apply(ctx, sc, p, &fwd, &st, false, false);
		}
	}
	rp_flow_lock(f);
	mine = rp_flow_is(f, &fwd);
	held = mine && rp_held(f, live);
	known = mine && f->state_len == sizeof(st) && !(f->flags & RP_DPF_GONE);
	flags = f->flags;
	hold = rp_hold_of(f);
	if (held && known && ((struct rp_lb_state *)f->state)->dir == RP_LB_FWD &&
	    (flags & (RP_DPF_REV_PENDING | RP_DPF_REV_KNOWN)) == RP_DPF_REV_KNOWN)
		write = rp_xlate_take_locked(sc, f, bits, &st);
	else
		__builtin_memcpy(&st, f->state, sizeof(st));
	rp_flow_unlock(f);
	if (held)
		rp_touch(f, tf, rp_touch_now());
	if (!held) {
		if (known)
			/* known here: ask again with the backend it had */
			return rp_lease(ctx, sc, &fwd, &st, sizeof(st));
		if (ip->protocol == IPPROTO_TCP && !rp_tcp_opener(rp_tcp_flags(p)))
			return rp_lease(ctx, sc, &fwd, NULL, 0);
		if (!lb_choose(&fwd, &st)) {
			rp_stat(RP_DP_lb_no_backend);
			return XDP_DROP;
		}
		rp_stat(RP_DP_lb_new);
		return rp_lease(ctx, sc, &fwd, &st, sizeof(st));
	}
	if (!known || st.dir != RP_LB_FWD) {
		rp_stat(RP_DP_lb_no_mapping);
		return XDP_DROP;
	}
	if ((flags & (RP_DPF_REV_PENDING | RP_DPF_REV_KNOWN)) == RP_DPF_REV_KNOWN)
		return rp_xlate_apply(ctx, sc, p, &fwd, &st, false, write);

	rp_key_v4(&rev, ip->protocol, st.addr, st.port, ip->saddr, sport);
	if (flags & RP_DPF_REV_PENDING) {
		rc = lb_reverse_ready(ctx, sc, p, f, &fwd, hold, &rev, now);
		if (rc >= 0)
			return rc;
	} else {
		/*
		 * Taken over from another switch: note the reverse key, so that
		 * the backend's replies are known here even if this switch does
		 * not list the backend.  Its first reply fetches it.
		 */
		struct rp_lb_state note = { .addr = ip->daddr, .port = dport, .dir = RP_LB_REV };
		bool learned;

		rp_flow_note(sc, &rev, &note, sizeof(note), 0);
		rp_flow_lock(f);
		learned = rp_flags_locked(f, &fwd, hold, 0, RP_DPF_REV_KNOWN);
		rp_flow_unlock(f);
		if (learned)
			rp_stat(RP_DP_lb_learned);
	}
	/*
	 * The forward key again, now that its reverse key is known.  Still
	 * waiting, it is another holding's (a grant keeps the flag): no write
	 * is made while RP_DPF_REV_PENDING is set, since an ACK of such a flow
	 * sends its packet through the app again (rp_on_ack).
	 */
	rp_flow_lock(f);
	held = rp_flow_is(f, &fwd) && rp_held(f, live);
	pending = f->flags & RP_DPF_REV_PENDING;
	if (held && !pending)
		write = rp_xlate_take_locked(sc, f, bits, &st);
	rp_flow_unlock(f);
	if (!held || pending)
		return rp_lease(ctx, sc, &fwd, &st, sizeof(st));
	return rp_xlate_apply(ctx, sc, p, &fwd, &st, false, write);
}

/* Anything else: a backend's reply, or not the load balancer's traffic. */
static __always_inline int lb_reply(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p)
{
	struct iphdr *ip = p->ip;
	struct rp_xlate_seen seen = {};
	struct rp_xlate_state st = {};
	struct rp_flow_key rev;
	struct rp_dp_flow *r;

	rp_key_v4(&rev, ip->protocol, ip->saddr, p->sport, ip->daddr, p->dport);
	r = bpf_map_lookup_elem(&flows, &rev);
	if (r && rp_xlate_look(sc, r, &rev, rp_tcp_flags(p), RP_LB_REV, &st, &seen))
		return rp_xlate_apply(ctx, sc, p, &rev, &st, true, false);
	if (!seen.held) {
		if (seen.known)
			return rp_lease(ctx, sc, &rev, &st, sizeof(st));
		/* from a backend: a reply the store may know; never invent one */
		if (lb_is_backend(ip->saddr, p->sport))
			return rp_lease(ctx, sc, &rev, NULL, 0);
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	if (!seen.known || st.dir != RP_LB_REV) {
		rp_stat(RP_DP_lb_no_mapping);
		return XDP_DROP;
	}
	return rp_xlate_apply(ctx, sc, p, &rev, &st, true, seen.write);
}

SEC("xdp")
int rp_app_lb(struct xdp_md *ctx)
{
	struct rp_pkt p;
	struct rp_scratch *sc = rp_app_begin(ctx, &p);

	if (!sc)
		return XDP_DROP;
	if (p.icmp) {
		/* not this application's: the kernel's (docs/DATAPLANE.md, "ICMP") */
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	if (p.ip->daddr == cfg_lb_vip && p.dport == cfg_lb_vport)
		return lb_forward(ctx, sc, &p);
	return lb_reply(ctx, sc, &p);
}

#endif /* __RP_APP_LB_H */
