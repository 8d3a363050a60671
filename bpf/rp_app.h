/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The application interface: what an application's program (app_*.h) is
 * given.  The root program has parsed the packet; the application derives
 * its flow key, looks the flow up in `flows`, and ends with one of:
 *
 *   rp_lease()   no lease on the key: the packet rides to the store in a
 *                lease request, proposing the app's initial state (or, with
 *                no proposal, a lookup that never creates the flow); the
 *                grant brings it back through the app with the lease held;
 *   rp_write()   the app changed the flow's state: the output packet rides
 *                in a write to the flow's store chain and leaves on the ACK;
 *   rp_pass()    the packet only read the state: forwarded at once;
 *   XDP_DROP or XDP_PASS, counted.
 *
 * Leases, sessions, sequence numbers, retransmission, chains and forwarding
 * are the shared code's business.  Two rules: ask for a lease before
 * changing the packet (a lease request carries the packet as it came, and
 * it comes back through the app), and write before the packet leaves.
 *
 * Built with -DRP_NO_REPLICATION the same calls keep the state locally: a
 * proposal is installed at once and the packet goes through the app again,
 * a write commits at once, a lookup finds nothing.  An application is
 * written once for both builds.
 */
#ifndef __RP_APP_H
#define __RP_APP_H

#include "rp_helpers.h"

/* TCP flags, byte 13 of the header */
#define RP_TCP_FIN	0x01
#define RP_TCP_SYN	0x02
#define RP_TCP_RST	0x04
#define RP_TCP_ACK	0x10

/* The packet as the root program parsed it; bounds checked. */
struct rp_pkt {
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *l4;	/* TCP and UDP ports sit at the same offsets */
	void *end;
};

/*
 * An application program's first call: the scratch and the packet's
 * headers (a TCP header whole), or NULL when they are not there.
 */
static __always_inline struct rp_scratch *rp_app_begin(struct xdp_md *ctx, struct rp_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	struct rp_scratch *sc = rp_scratch();

	if (!sc)
		return NULL;
	p->end = (void *)(long)ctx->data_end;
	p->eth = data;
	/* offsets from the root program; bounded for the verifier */
	p->ip = data + (sc->l3_off & 0x1f);
	p->l4 = data + (sc->l4_off & 0x7f);
	if ((void *)(p->eth + 1) > p->end || (void *)(p->ip + 1) > p->end ||
	    (void *)(p->l4 + 1) > p->end)
		return NULL;
	if (p->ip->protocol == IPPROTO_TCP && (void *)p->l4 + sizeof(struct tcphdr) > p->end)
		return NULL;
	return sc;
}

/* RP_TCP_* of a TCP packet; 0 for UDP. */
static __always_inline __u8 rp_tcp_flags(const struct rp_pkt *p)
{
	const __u8 *th = (const __u8 *)p->l4;

	if (p->ip->protocol != IPPROTO_TCP || (void *)(th + 14) > p->end)
		return 0;
	return th[13];
}

/* A TCP SYN without ACK: a connection's first packet. */
static __always_inline bool rp_tcp_opener(__u8 tcp_flags)
{
	return (tcp_flags & (RP_TCP_SYN | RP_TCP_ACK)) == RP_TCP_SYN;
}

/*
 * Rewrites the source (src) or destination address and port, with the
 * IPv4, TCP and UDP checksums updated incrementally (RFC 1624).
 */
static __always_inline void rp_rewrite(struct rp_pkt *p, bool src, __be32 addr, __be16 port)
{
	struct iphdr *ip = p->ip;
	__be32 *a = src ? &ip->saddr : &ip->daddr;
	__be32 old_addr = *a;
	__be16 *pp, old_port;
	__u16 *check;

	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = (void *)p->l4;

		if ((void *)(th + 1) > p->end)	/* checked before; for the verifier */
			return;
		pp = src ? &th->source : &th->dest;
		check = &th->check;
	} else {
		struct udphdr *uh = p->l4;

		pp = src ? &uh->source : &uh->dest;
		check = &uh->check;
	}
	old_port = *pp;
	*a = addr;
	*pp = port;
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

/* The packet only read its flow's state: forwarded at once. */
static __always_inline int rp_pass(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p)
{
	rp_stat(RP_DP_fast_path);
	return rp_forward(ctx, p->eth, p->ip, sc->vlan);
}

/* A write of the flow's is not acknowledged yet: the local state is ahead of the store's. */
static __always_inline bool rp_write_pending(const struct rp_dp_flow *f)
{
	return f->acked != f->seq;
}

/*
 * Notes `key` here with `state` (len bytes, a constant) and the app's local
 * flags, not held: what the app proposed, or what it infers, for the
 * packets to come.  An entry already there is left alone.
 */
static __always_inline void rp_flow_note(struct rp_scratch *sc, const struct rp_flow_key *key,
					 const void *state, __u32 len, __u8 flags)
{
	__builtin_memset(&sc->flow, 0, sizeof(sc->flow));
	__builtin_memcpy(sc->flow.state, state, len);
	sc->flow.state_len = (__u8)len;
	sc->flow.flags = flags;
	sc->flow.store = rp_store_of(key);
	bpf_map_update_elem(&flows, key, &sc->flow, BPF_NOEXIST);
}

#ifndef RP_NO_REPLICATION

/* Hands the packet to the emitter with a request about `key` (state: len bytes, a constant). */
static __always_inline int rp_request(struct xdp_md *ctx, struct rp_scratch *sc, __u8 type,
				      const struct rp_flow_key *key, const void *state, __u32 len,
				      __u32 seq, __u16 store, __u32 epoch, __u16 gen)
{
	sc->type = type;
	sc->gen = gen;
	sc->key = *key;
	sc->store = store;
	sc->seq = seq;
	sc->epoch = epoch;
	__builtin_memset(sc->state, 0, RP_STATE_MAX);
	if (state) {
		__builtin_memcpy(sc->state, state, len);
		sc->state_len = (__u8)len;
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
 * proposing `proposal` (len bytes, a constant), or, with NULL, a lookup that
 * must not create the flow.  The store's grant brings the packet back
 * through the app with the lease held and the store's state (which wins
 * over a proposal when the store had the flow).
 */
static __always_inline int rp_lease(struct xdp_md *ctx, struct rp_scratch *sc,
				    const struct rp_flow_key *key, const void *proposal, __u32 len)
{
	__u16 store = rp_store_of(key);
	struct rp_dp_session *sess = rp_session(store);
	struct rp_dp_flow *f;
	__u16 gone = 0;

	if (!rp_session_live(sess)) {
		rp_stat(RP_DP_drop_no_session);
		return XDP_DROP;
	}
	/*
	 * The request names the holding this switch gave up in this session:
	 * only such a request can stand for a revoke-ack that was lost.  Not
	 * in bounded mode, where only rp-load's ack carries the final state.
	 */
	f = bpf_map_lookup_elem(&flows, key);
	if (f && !f->epoch && f->gone_epoch == sess->epoch && !cfg_bounded)
		gone = f->gen;
	return rp_request(ctx, sc, RP_MSG_LEASE_REQ, key, proposal, len, 0, store, sess->epoch,
			  gone);
}

/*
 * The app changed the held flow's state (f->state, len bytes, a constant):
 * a write with the next sequence number, the packet as it is now riding in
 * it, released by the ACK.
 */
static __always_inline int rp_write(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p,
				    const struct rp_flow_key *key, struct rp_dp_flow *f, __u32 len)
{
	f->seq++;
	return rp_request(ctx, sc, RP_MSG_WRITE, key, f->state, len, f->seq, f->store, f->epoch,
			  f->gen);
}

#else /* RP_NO_REPLICATION: the state stays here */

/* The epoch of a flow installed locally; 0 stays "not held". */
#define RP_LOCAL_EPOCH	1

/* As a grant would: the proposal installed, the packet through the app again. */
static __always_inline int rp_lease(struct xdp_md *ctx, struct rp_scratch *sc,
				    const struct rp_flow_key *key, const void *proposal, __u32 len)
{
	struct rp_dp_flow *old;

	if (!proposal) {
		/* nothing to look up elsewhere */
		rp_stat(RP_DP_drop_unknown_flow);
		return XDP_DROP;
	}
	old = bpf_map_lookup_elem(&flows, key);
	__builtin_memset(&sc->flow, 0, sizeof(sc->flow));
	__builtin_memcpy(sc->flow.state, proposal, len);
	sc->flow.state_len = (__u8)len;
	sc->flow.epoch = RP_LOCAL_EPOCH;
	if (old)
		sc->flow.flags = old->flags;	/* a GRANT keeps them */
	if (bpf_map_update_elem(&flows, key, &sc->flow, BPF_ANY)) {
		rp_stat(RP_DP_drop_table_full);
		return XDP_DROP;
	}
	rp_stat(RP_DP_grant);
	bpf_tail_call(ctx, &progs, cfg_app);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
}

/* The write commits at once. */
static __always_inline int rp_write(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p,
				    const struct rp_flow_key *key, struct rp_dp_flow *f, __u32 len)
{
	f->seq++;
	f->acked = f->seq;
	return rp_pass(ctx, sc, p);
}

#endif /* RP_NO_REPLICATION */

#endif /* __RP_APP_H */
