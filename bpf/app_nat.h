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

static __always_inline __u8 nat_closing_bits(const struct rp_pkt *p)
{
	__u8 tf = rp_tcp_flags(p);

	return (tf & RP_TCP_FIN ? RP_NAT_FIN : 0) | (tf & RP_TCP_RST ? RP_NAT_RST : 0);
}

/*
 * A FIN or RST writes when it changes the state, or when the write that
 * changed it is not acknowledged yet: the local state is ahead of the store,
 * and a packet may leave only on what the store knows (a retransmitted FIN
 * goes through the store again).
 */
static __always_inline bool nat_must_write(const struct rp_dp_flow *f, __u8 bits)
{
	const struct rp_nat_state *st = (const struct rp_nat_state *)f->state;

	return (bits & ~st->closing) || (bits && rp_write_pending(f));
}

/*
 * The flow's mapping onto the packet (the source on the way out, the
 * destination on the way in); a FIN or RST then writes, the rest reads.
 */
static __always_inline int nat_apply(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p,
				     const struct rp_flow_key *key, struct rp_dp_flow *f, bool src)
{
	struct rp_nat_state *st = (struct rp_nat_state *)f->state;
	__u8 bits;

	rp_rewrite(p, src, st->addr, st->port);
	bits = nat_closing_bits(p);
	if (nat_must_write(f, bits)) {
		/* mark the key closing; the packet leaves with the write */
		st->closing |= bits;
		return rp_write(ctx, sc, p, key, f, sizeof(*st));
	}
	return rp_pass(ctx, sc, p);
}

static __always_inline int nat_outbound(struct xdp_md *ctx, struct rp_scratch *sc,
					struct rp_pkt *p)
{
	struct iphdr *ip = p->ip;
	__be16 sport = p->l4->source, dport = p->l4->dest;
	struct rp_flow_key fwd, rev;
	struct rp_dp_flow *f, *r;
	struct rp_nat_state *st, *rst;

	rp_key_v4(&fwd, ip->protocol, ip->saddr, sport, ip->daddr, dport);
	f = bpf_map_lookup_elem(&flows, &fwd);
	if (!rp_lease_held(f)) {
		struct rp_nat_state prop = {};

		if (f) {
			/* known here: ask again with what we know */
			__builtin_memcpy(&prop, f->state, sizeof(prop));
		} else {
			prop.addr = cfg_nat_ext_addr;
			prop.port = nat_alloc_port();
			prop.dir = RP_NAT_FWD;
			/* remember the proposal: its reverse key must follow a GRANT */
			rp_flow_note(sc, &fwd, &prop, sizeof(prop), RP_DPF_REV_PENDING);
			rp_stat(RP_DP_nat_new);
		}
		return rp_lease(ctx, sc, &fwd, &prop, sizeof(prop));
	}
	st = (struct rp_nat_state *)f->state;
	if (st->dir != RP_NAT_FWD) {
		rp_stat(RP_DP_nat_no_mapping);
		return XDP_DROP;
	}

	if (f->flags & RP_DPF_REV_PENDING) {
		rp_key_v4(&rev, ip->protocol, ip->daddr, dport, st->addr, st->port);
		r = bpf_map_lookup_elem(&flows, &rev);
		if (!rp_lease_held(r)) {
			struct rp_nat_state prop = {
				.addr = ip->saddr, .port = sport, .dir = RP_NAT_REV,
			};

			rp_stat(RP_DP_nat_rev_req);
			return rp_lease(ctx, sc, &rev, &prop, sizeof(prop));
		}
		rst = (struct rp_nat_state *)r->state;
		if (rst->dir != RP_NAT_REV || rst->addr != ip->saddr || rst->port != sport) {
			/* the port is someone else's: this connection cannot be mapped */
			rp_stat(RP_DP_nat_collision);
			return XDP_DROP;
		}
		f->flags &= ~RP_DPF_REV_PENDING;
	}

	return nat_apply(ctx, sc, p, &fwd, f, true);
}

static __always_inline int nat_inbound(struct xdp_md *ctx, struct rp_scratch *sc,
				       struct rp_pkt *p)
{
	struct iphdr *ip = p->ip;
	struct rp_flow_key rev;
	struct rp_dp_flow *r;
	struct rp_nat_state *st;

	rp_key_v4(&rev, ip->protocol, ip->saddr, p->l4->source, ip->daddr, p->l4->dest);
	r = bpf_map_lookup_elem(&flows, &rev);
	if (!rp_lease_held(r)) {
		struct rp_nat_state prop;

		/* never invent a mapping; one this switch had, it may propose again */
		if (!r || r->state_len != sizeof(prop))
			return rp_lease(ctx, sc, &rev, NULL, 0);
		__builtin_memcpy(&prop, r->state, sizeof(prop));
		return rp_lease(ctx, sc, &rev, &prop, sizeof(prop));
	}
	st = (struct rp_nat_state *)r->state;
	if (r->state_len != sizeof(*st) || st->dir != RP_NAT_REV) {
		rp_stat(RP_DP_nat_no_mapping);
		return XDP_DROP;
	}
	return nat_apply(ctx, sc, p, &rev, r, false);
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
