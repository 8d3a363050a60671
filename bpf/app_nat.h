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
 * no other switch uses (rp-load derives it from the switch id).
 */
#ifndef __RP_APP_NAT_H
#define __RP_APP_NAT_H

#include "rp_app.h"

const volatile __be32 cfg_nat_int_net;
const volatile __be32 cfg_nat_int_mask;
const volatile __be32 cfg_nat_ext_addr;
const volatile __u16 cfg_nat_port_base = 1024;
const volatile __u16 cfg_nat_port_span = 4032;

/* The next external port to hand out (index into this switch's range). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} nat_ports SEC(".maps");

static __always_inline __be16 nat_alloc_port(void)
{
	__u32 zero = 0, n;
	__u32 *next = bpf_map_lookup_elem(&nat_ports, &zero);

	if (!next)
		return 0;
	n = __sync_fetch_and_add(next, 1);
	return bpf_htons((__u16)(cfg_nat_port_base + n % cfg_nat_port_span));
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
	__be16 sport = p->l4->source, dport = p->l4->dest;
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
		/* the port is someone else's: this connection cannot be mapped */
		rp_stat(RP_DP_nat_collision);
		return XDP_DROP;
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
	bool mine, held, pending, fresh = false, write = false;
	__be16 port = 0;
	__u64 now = rp_lease_now();
	__u32 live;
	int rc;

	rp_key_v4(&fwd, ip->protocol, ip->saddr, p->l4->source, ip->daddr, p->l4->dest);
	f = bpf_map_lookup_elem(&flows, &fwd);
	if (!f) {
		st.addr = cfg_nat_ext_addr;
		st.port = nat_alloc_port();
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
	if (RP_READ_ONCE(f->state_len) != sizeof(st) || (RP_READ_ONCE(f->flags) & RP_DPF_GONE))
		port = nat_alloc_port();
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
	if (held && !pending && ((struct rp_nat_state *)f->state)->dir == RP_NAT_FWD)
		write = rp_xlate_take_locked(sc, f, bits, &st);
	else
		__builtin_memcpy(&st, f->state, sizeof(st));
	rp_flow_unlock(f);
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
		/* the forward key again, now without the wait */
		rp_flow_lock(f);
		held = rp_flow_is(f, &fwd) && rp_held(f, live);
		if (held)
			write = rp_xlate_take_locked(sc, f, bits, &st);
		rp_flow_unlock(f);
		if (!held)
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

	rp_key_v4(&rev, ip->protocol, ip->saddr, p->l4->source, ip->daddr, p->l4->dest);
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

SEC("xdp")
int rp_app_nat(struct xdp_md *ctx)
{
	struct rp_pkt p;
	struct rp_scratch *sc = rp_app_begin(ctx, &p);

	if (!sc)
		return XDP_DROP;
	if ((p.ip->saddr & cfg_nat_int_mask) == cfg_nat_int_net)
		return nat_outbound(ctx, sc, &p);
	if (p.ip->daddr == cfg_nat_ext_addr)
		return nat_inbound(ctx, sc, &p);
	rp_stat(RP_DP_pass_not_app);
	return XDP_PASS;
}

#endif /* __RP_APP_NAT_H */
