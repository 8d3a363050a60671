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

/* Rewrites one address and port, with the IPv4, TCP and UDP checksums. */
static __always_inline void nat_rewrite(struct iphdr *ip, void *l4, void *data_end, bool src,
					__be32 addr, __be16 port)
{
	__be32 *a = src ? &ip->saddr : &ip->daddr;
	__be32 old_addr = *a;
	__be16 *p, old_port;
	__u16 *check;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = l4;

		if ((void *)(th + 1) > data_end)	/* checked before; for the verifier */
			return;
		p = src ? &th->source : &th->dest;
		check = &th->check;
	} else {
		struct udphdr *uh = l4;

		p = src ? &uh->source : &uh->dest;
		check = &uh->check;
	}
	old_port = *p;
	*a = addr;
	*p = port;
	ip->check = rp_csum_update32(ip->check, old_addr, addr);
	/* UDP checksum 0 means "none" and stays so */
	if (ip->protocol == IPPROTO_TCP || *check) {
		__u16 c = rp_csum_update32(*check, old_addr, addr);

		c = rp_csum_update16(c, old_port, port);
		/* a computed 0 goes on the wire as all ones (RFC 768) */
		if (ip->protocol == IPPROTO_UDP && c == 0)
			c = 0xffff;
		*check = c;
	}
}

static __always_inline __u8 nat_closing_bits(struct iphdr *ip, void *l4, void *data_end)
{
	struct tcphdr *th = l4;

	if (ip->protocol != IPPROTO_TCP || (void *)(th + 1) > data_end)
		return 0;
	return (th->fin ? RP_NAT_FIN : 0) | (th->rst ? RP_NAT_RST : 0);
}

#ifndef RP_NO_REPLICATION

/* Hands the packet to the emitter with a request about `key`. */
static __always_inline int nat_request(struct xdp_md *ctx, struct rp_scratch *sc, __u8 type,
				       const struct rp_flow_key *key,
				       const struct rp_nat_state *state, __u32 seq, __u16 store,
				       __u32 epoch, __u16 gen)
{
	sc->type = type;
	sc->gen = gen;
	sc->key = *key;
	sc->store = store;
	sc->seq = seq;
	sc->epoch = epoch;
	__builtin_memset(sc->state, 0, RP_STATE_MAX);
	if (state) {
		__builtin_memcpy(sc->state, state, sizeof(*state));
		sc->state_len = sizeof(*state);
		sc->flags = RP_F_STATE;
	} else {
		sc->state_len = 0;
		sc->flags = 0;
	}
	bpf_tail_call(ctx, &progs, RP_PROG_EMIT);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
}

/*
 * No lease on `key`: the packet rides to the store in a lease request,
 * proposing `proposal` (NULL: a lookup that must not create the flow).
 */
static __always_inline int nat_lease(struct xdp_md *ctx, struct rp_scratch *sc,
				     const struct rp_flow_key *key,
				     const struct rp_nat_state *proposal)
{
	__u16 store = rp_store_of(key);
	struct rp_dp_session *sess = rp_session(store);

	if (!rp_session_live(sess)) {
		rp_stat(RP_DP_drop_no_session);
		return XDP_DROP;
	}
	return nat_request(ctx, sc, RP_MSG_LEASE_REQ, key, proposal, 0, store, sess->epoch, 0);
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

	return (bits & ~st->closing) || (bits && f->acked != f->seq);
}

/* A FIN or RST: mark the key closing; the packet leaves with the write. */
static __always_inline int nat_write(struct xdp_md *ctx, struct rp_scratch *sc,
				     const struct rp_flow_key *key, struct rp_dp_flow *f,
				     __u8 bits)
{
	struct rp_nat_state *st = (struct rp_nat_state *)f->state;

	st->closing |= bits;
	f->seq++;
	return nat_request(ctx, sc, RP_MSG_WRITE, key, st, f->seq, f->store, f->epoch, f->gen);
}

/*
 * The flow's mapping onto the packet (the source on the way out, the
 * destination on the way in); a FIN or RST then writes, the rest reads.
 */
static __always_inline int nat_apply(struct xdp_md *ctx, struct rp_scratch *sc,
				     struct ethhdr *eth, struct iphdr *ip, void *l4,
				     const struct rp_flow_key *key, struct rp_dp_flow *f, bool src)
{
	struct rp_nat_state *st = (struct rp_nat_state *)f->state;
	void *data_end = (void *)(long)ctx->data_end;
	__u8 bits;

	nat_rewrite(ip, l4, data_end, src, st->addr, st->port);
	bits = nat_closing_bits(ip, l4, data_end);
	if (nat_must_write(f, bits))
		return nat_write(ctx, sc, key, f, bits);
	rp_stat(RP_DP_fast_path);
	return rp_forward(ctx, eth, ip, sc->vlan);
}

static __always_inline int nat_outbound(struct xdp_md *ctx, struct rp_scratch *sc,
					struct ethhdr *eth, struct iphdr *ip, void *l4,
					__be16 sport, __be16 dport)
{
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
			__builtin_memset(&sc->flow, 0, sizeof(sc->flow));
			__builtin_memcpy(sc->flow.state, &prop, sizeof(prop));
			sc->flow.state_len = sizeof(prop);
			sc->flow.flags = RP_DPF_REV_PENDING;
			sc->flow.store = rp_store_of(&fwd);
			bpf_map_update_elem(&flows, &fwd, &sc->flow, BPF_NOEXIST);
			rp_stat(RP_DP_nat_new);
		}
		return nat_lease(ctx, sc, &fwd, &prop);
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
			return nat_lease(ctx, sc, &rev, &prop);
		}
		rst = (struct rp_nat_state *)r->state;
		if (rst->dir != RP_NAT_REV || rst->addr != ip->saddr || rst->port != sport) {
			/* the port is someone else's: this connection cannot be mapped */
			rp_stat(RP_DP_nat_collision);
			return XDP_DROP;
		}
		f->flags &= ~RP_DPF_REV_PENDING;
	}

	return nat_apply(ctx, sc, eth, ip, l4, &fwd, f, true);
}

static __always_inline int nat_inbound(struct xdp_md *ctx, struct rp_scratch *sc,
				       struct ethhdr *eth, struct iphdr *ip, void *l4,
				       __be16 sport, __be16 dport)
{
	struct rp_flow_key rev;
	struct rp_dp_flow *r;
	struct rp_nat_state *st;

	rp_key_v4(&rev, ip->protocol, ip->saddr, sport, ip->daddr, dport);
	r = bpf_map_lookup_elem(&flows, &rev);
	if (!rp_lease_held(r)) {
		struct rp_nat_state prop;

		/* never invent a mapping; one this switch had, it may propose again */
		if (!r || r->state_len != sizeof(prop))
			return nat_lease(ctx, sc, &rev, NULL);
		__builtin_memcpy(&prop, r->state, sizeof(prop));
		return nat_lease(ctx, sc, &rev, &prop);
	}
	st = (struct rp_nat_state *)r->state;
	if (r->state_len != sizeof(*st) || st->dir != RP_NAT_REV) {
		rp_stat(RP_DP_nat_no_mapping);
		return XDP_DROP;
	}
	return nat_apply(ctx, sc, eth, ip, l4, &rev, r, false);
}

#else /* RP_NO_REPLICATION: the same NAT, state kept only here */

static __always_inline int nat_apply(struct xdp_md *ctx, struct rp_scratch *sc,
				     struct ethhdr *eth, struct iphdr *ip, void *l4,
				     struct rp_dp_flow *f, bool src)
{
	struct rp_nat_state *st = (struct rp_nat_state *)f->state;
	void *data_end = (void *)(long)ctx->data_end;

	nat_rewrite(ip, l4, data_end, src, st->addr, st->port);
	st->closing |= nat_closing_bits(ip, l4, data_end);
	rp_stat(RP_DP_fast_path);
	return rp_forward(ctx, eth, ip, sc->vlan);
}

static __always_inline int nat_outbound(struct xdp_md *ctx, struct rp_scratch *sc,
					struct ethhdr *eth, struct iphdr *ip, void *l4,
					__be16 sport, __be16 dport)
{
	struct rp_flow_key fwd, rev;
	struct rp_dp_flow *f;

	rp_key_v4(&fwd, ip->protocol, ip->saddr, sport, ip->daddr, dport);
	f = bpf_map_lookup_elem(&flows, &fwd);
	if (!f) {
		struct rp_nat_state prop = {
			.addr = cfg_nat_ext_addr, .port = nat_alloc_port(), .dir = RP_NAT_FWD,
		};

		__builtin_memset(&sc->flow, 0, sizeof(sc->flow));
		__builtin_memcpy(sc->flow.state, &prop, sizeof(prop));
		sc->flow.state_len = sizeof(prop);
		bpf_map_update_elem(&flows, &fwd, &sc->flow, BPF_NOEXIST);
		rp_key_v4(&rev, ip->protocol, ip->daddr, dport, prop.addr, prop.port);
		prop = (struct rp_nat_state){ .addr = ip->saddr, .port = sport, .dir = RP_NAT_REV };
		__builtin_memcpy(sc->flow.state, &prop, sizeof(prop));
		bpf_map_update_elem(&flows, &rev, &sc->flow, BPF_NOEXIST);
		rp_stat(RP_DP_nat_new);
		f = bpf_map_lookup_elem(&flows, &fwd);
		if (!f)
			return XDP_DROP;
	}
	return nat_apply(ctx, sc, eth, ip, l4, f, true);
}

static __always_inline int nat_inbound(struct xdp_md *ctx, struct rp_scratch *sc,
				       struct ethhdr *eth, struct iphdr *ip, void *l4,
				       __be16 sport, __be16 dport)
{
	struct rp_flow_key rev;
	struct rp_dp_flow *r;

	rp_key_v4(&rev, ip->protocol, ip->saddr, sport, ip->daddr, dport);
	r = bpf_map_lookup_elem(&flows, &rev);
	if (!r) {
		rp_stat(RP_DP_nat_no_mapping);
		return XDP_DROP;
	}
	return nat_apply(ctx, sc, eth, ip, l4, r, false);
}

#endif /* RP_NO_REPLICATION */

SEC("xdp")
int rp_app_nat(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct rp_scratch *sc = rp_scratch();
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *l4;	/* TCP and UDP ports sit at the same offsets */

	if (!sc)
		return XDP_DROP;
	/* offsets from the root program; bounded for the verifier */
	ip = data + (sc->l3_off & 0x1f);
	l4 = data + (sc->l4_off & 0x7f);
	if ((void *)(eth + 1) > data_end || (void *)(ip + 1) > data_end ||
	    (void *)(l4 + 1) > data_end)
		return XDP_DROP;
	if (ip->protocol == IPPROTO_TCP && (void *)l4 + sizeof(struct tcphdr) > data_end)
		return XDP_DROP;

	if ((ip->saddr & cfg_nat_int_mask) == cfg_nat_int_net)
		return nat_outbound(ctx, sc, eth, ip, l4, l4->source, l4->dest);
	if (ip->daddr == cfg_nat_ext_addr)
		return nat_inbound(ctx, sc, eth, ip, l4, l4->source, l4->dest);
	rp_stat(RP_DP_pass_not_app);
	return XDP_PASS;
}

#endif /* __RP_APP_NAT_H */
