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
 *   rp_send_write()  the app changed the flow's state under its lock and
 *                built the write there (rp_write_locked()): the output
 *                packet rides in the write to the flow's store chain and
 *                leaves on the ACK;
 *   rp_pass()    the packet only read the state: forwarded at once;
 *   XDP_DROP or XDP_PASS, counted.
 *
 * Leases, sessions, sequence numbers, retransmission, chains and forwarding
 * are the shared code's business.  Three rules: ask for a lease before
 * changing the packet (a lease request carries the packet as it came, and
 * it comes back through the app), write before the packet leaves, and
 * look at a flow's lease and state, and change them, only under the flow's
 * lock (rp_flow_lock(): the packets of one flow, and the store's messages
 * about it, run on several CPUs at once; docs/DATAPLANE.md, "Concurrency").
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
	struct udphdr *l4;	/* TCP and UDP ports sit at the same offsets; or ICMP */
	void *end;
	/*
	 * The ports the flow is keyed by: TCP's and UDP's, an ICMP echo's
	 * identifier (a request's as sport, a reply's as dport), 0 in an error
	 */
	__be16 sport;
	__be16 dport;
	__u8 icmp;		/* RP_ICMP_* */
	/* RP_ICMP_ERROR: the quoted packet's IPv4 header and ports */
	struct iphdr *in_ip;
	struct udphdr *in_l4;
};

/*
 * An ICMP error's quoted header and ports are there: checked where they
 * are read, since the verifier forgets a check made on another path.
 */
static __always_inline bool rp_icmp_quote_ok(const struct rp_pkt *p)
{
	return (void *)(p->in_ip + 1) <= p->end && (void *)(p->in_l4 + 1) <= p->end;
}

/*
 * An application program's first call: the scratch and the packet's
 * headers (a TCP header whole; an ICMP error's quoted header and ports), or
 * NULL when they are not there.
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
	p->sport = sc->sport;
	p->dport = sc->dport;
	p->icmp = sc->icmp;
	p->in_ip = data + (sc->in_l3_off & 0x7f);
	p->in_l4 = data + (sc->in_l4_off & 0xff);
	if ((void *)(p->eth + 1) > p->end || (void *)(p->ip + 1) > p->end ||
	    (void *)(p->l4 + 1) > p->end)
		return NULL;
	if (p->ip->protocol == IPPROTO_TCP && (void *)p->l4 + sizeof(struct tcphdr) > p->end)
		return NULL;
	if (p->icmp == RP_ICMP_ERROR && !rp_icmp_quote_ok(p))
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

	if (ip->protocol == IPPROTO_ICMP) {
		/* an echo: its identifier is its port, its checksum covers no address */
		struct rp_icmphdr *ih = (void *)p->l4;

		old_port = ih->id;
		*a = addr;
		ih->id = port;
		ip->check = rp_csum_update32(ip->check, old_addr, addr);
		ih->checksum = rp_csum_update16(ih->checksum, old_port, port);
		return;
	}
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

/*
 * An ICMP error about a translated flow, translated back (the NAT): the
 * outer destination (`in`: it came from outside for the inside) or source
 * becomes addr, and in the quoted packet, which went the other way, the
 * source (`in`) or destination address and port become addr and port.  The
 * quoted IPv4 checksum, the quoted UDP or TCP checksum when it is there,
 * and the ICMP checksum over all of it are updated incrementally; an
 * ICMPv4 checksum covers no pseudo-header, so the outer change is the IPv4
 * checksum's only.
 */
static __always_inline void rp_icmp_xlate(struct rp_pkt *p, bool in, __be32 addr, __be16 port)
{
	struct iphdr *ip = p->ip, *iip = p->in_ip;
	struct rp_icmphdr *ih = (void *)p->l4;
	struct udphdr *il4 = p->in_l4;
	__be32 *oa = in ? &ip->daddr : &ip->saddr;
	__be32 *ia = in ? &iip->saddr : &iip->daddr;
	__be16 *ip_port = in ? &il4->source : &il4->dest;
	__be32 old_addr = *ia;
	__be16 old_port = *ip_port;
	__u16 icsum = ih->checksum, old, *l4c = NULL;

	ip->check = rp_csum_update32(ip->check, *oa, addr);
	*oa = addr;
	old = iip->check;
	iip->check = rp_csum_update32(iip->check, old_addr, addr);
	icsum = rp_csum_update16(icsum, old, iip->check);
	if (iip->protocol == IPPROTO_UDP && il4->check) {
		l4c = &il4->check;
	} else if (iip->protocol == IPPROTO_TCP) {
		struct tcphdr *th = (void *)il4;

		/* quoted whole only by routers that quote more than 8 bytes */
		if ((void *)&th->check + sizeof(th->check) <= p->end)
			l4c = &th->check;
	}
	if (l4c) {
		__u16 c = rp_csum_update32(*l4c, old_addr, addr);

		c = rp_csum_update16(c, old_port, port);
		icsum = rp_csum_update16(icsum, *l4c, c);
		*l4c = c;
	}
	icsum = rp_csum_update32(icsum, old_addr, addr);
	icsum = rp_csum_update16(icsum, old_port, port);
	*ia = addr;
	*ip_port = port;
	ih->checksum = icsum;
}

/*
 * A first fragment that passes: its datagram noted, as it came, with the
 * address rewrite its later fragments get (`rewrite`: addr becomes the
 * source when src, else the destination).  Once per packet.
 */
static __always_inline void rp_frag_note(struct rp_scratch *sc, const struct rp_pkt *p,
					 bool rewrite, bool src, __be32 addr)
{
	struct rp_frag_key k = {
		.saddr = p->ip->saddr, .daddr = p->ip->daddr, .id = p->ip->id,
		.proto = p->ip->protocol,
	};
	struct rp_frag_val v = {
		.seen_ns = bpf_ktime_get_coarse_ns(), .addr = addr, .rewrite = rewrite, .src = src,
	};

	if (!sc->frag_first)
		return;
	sc->frag_first = 0;
	bpf_map_update_elem(&frags, &k, &v, BPF_ANY);
}

/* The packet only read its flow's state: forwarded at once. */
static __always_inline int rp_pass(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p)
{
	rp_frag_note(sc, p, false, false, 0);
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
	struct rp_dp_flow *f = rp_scratch_flow(sc, key);

	__builtin_memcpy(f->state, state, len);
	f->state_len = (__u8)len;
	f->flags = flags;
	f->store = rp_store_of(key);
	f->seen_ns = rp_touch_now();
	bpf_map_update_elem(&flows, key, f, BPF_NOEXIST);
}

/*
 * Under the held flow's lock, after the app changed f->state (len bytes, a
 * constant): the write with the next sequence number, built in the scratch
 * with a copy of the state it carries.  The sequence number and the state
 * are taken in one step, so that no two writes share a seq and each one
 * carries the state its seq stands for.
 */
static __always_inline void rp_write_locked(struct rp_scratch *sc, struct rp_dp_flow *f, __u32 len)
{
	sc->type = RP_MSG_WRITE;
	sc->seq = ++f->seq;
#ifdef RP_NO_REPLICATION
	f->acked = f->seq;	/* committed at once */
#endif
	sc->epoch = f->epoch;
	sc->gen = f->gen;
	sc->store = f->store;
	/* the state's len bytes, zeros after them, as every message carries */
	__builtin_memset(sc->state, 0, RP_STATE_MAX);
	__builtin_memcpy(sc->state, f->state, len);
	sc->state_len = (__u8)len;
	sc->flags = RP_F_STATE;
}

/*
 * The translating applications (the NAT, the load balancer) keep one shape
 * of state in both keys of a connection: the address and port to put in,
 * the direction, and the FIN and RST bits seen (struct rp_nat_state,
 * struct rp_lb_state).
 */
struct rp_xlate_state {
	__be32 addr;
	__be16 port;
	__u8 dir;
	__u8 closing;	/* RP_XLATE_FIN | RP_XLATE_RST */
};

#define RP_XLATE_FIN	0x01
#define RP_XLATE_RST	0x02

_Static_assert(sizeof(struct rp_xlate_state) == sizeof(struct rp_nat_state) &&
	       sizeof(struct rp_xlate_state) == sizeof(struct rp_lb_state) &&
	       RP_XLATE_FIN == RP_NAT_FIN && RP_XLATE_FIN == RP_LB_FIN &&
	       RP_XLATE_RST == RP_NAT_RST && RP_XLATE_RST == RP_LB_RST,
	       "the NAT's and the LB's states are translations");

/* The closing bits of a packet with TCP flags `tf` (0 for UDP). */
static __always_inline __u8 rp_xlate_closing_bits(__u8 tf)
{
	return (tf & RP_TCP_FIN ? RP_XLATE_FIN : 0) | (tf & RP_TCP_RST ? RP_XLATE_RST : 0);
}

/*
 * Under the held key's lock: its translation into *st, and whether the
 * packet (closing bits `bits`) writes, the write then built in the scratch.
 * A FIN or RST writes when it changes the state, or when the write that
 * changed it is not acknowledged yet: the local state is ahead of the
 * store, and a packet may leave only on what the store knows (a
 * retransmitted FIN goes through the store again).
 */
static __always_inline bool rp_xlate_take_locked(struct rp_scratch *sc, struct rp_dp_flow *f,
						 __u8 bits, struct rp_xlate_state *st)
{
	struct rp_xlate_state *cur = (struct rp_xlate_state *)f->state;
	bool write = (bits & ~cur->closing) || (bits && rp_write_pending(f));

	if (write) {
		cur->closing |= bits;
		rp_write_locked(sc, f, sizeof(*cur));
	}
	__builtin_memcpy(st, cur, sizeof(*st));
	return write;
}

/* What a look at a translation's key under its lock found (rp_xlate_look()). */
struct rp_xlate_seen {
	bool held;	/* this switch holds the key */
	bool known;	/* its state has a translation's size */
	bool write;	/* the packet writes: built in the scratch */
};

/*
 * Key `f` of a translation (`key`), whose state must name direction `dir`,
 * for a packet with TCP flags `tf`.  True when the packet only reads a held
 * key, seen without the lock (*st is its translation: forward at once);
 * else false, with what the look under the lock found in *seen and the
 * translation (or the state seen, for a lease request) in *st.
 */
static __always_inline bool rp_xlate_look(struct rp_scratch *sc, struct rp_dp_flow *f,
					  const struct rp_flow_key *key, __u8 tf, __u8 dir,
					  struct rp_xlate_state *st, struct rp_xlate_seen *seen)
{
	__u32 live = rp_live_epoch(rp_store_of(key), rp_lease_now());
	__u8 bits = rp_xlate_closing_bits(tf);
	struct rp_flow_view v;
	bool mine;

	if (!bits && rp_flow_peek(f, key, &v, sizeof(*st))) {
		__builtin_memcpy(st, v.state, sizeof(*st));
		if (rp_view_held(&v, live) && v.state_len == sizeof(*st) && st->dir == dir) {
			rp_touch(f, tf, rp_touch_now());
			return true;
		}
	}
	rp_flow_lock(f);
	mine = rp_flow_is(f, key);
	seen->held = mine && rp_held(f, live);
	seen->known = mine && f->state_len == sizeof(*st) && !(f->flags & RP_DPF_GONE);
	seen->write = false;
	if (seen->held && seen->known && ((struct rp_xlate_state *)f->state)->dir == dir)
		seen->write = rp_xlate_take_locked(sc, f, bits, st);
	else
		__builtin_memcpy(st, f->state, sizeof(*st));
	rp_flow_unlock(f);
	if (seen->held)
		rp_touch(f, tf, rp_touch_now());
	return false;
}

/* Which holding of a flow a program saw under its lock (rp_hold_of()). */
struct rp_hold {
	__u32 epoch;
	__u16 gen;
};

static __always_inline struct rp_hold rp_hold_of(const struct rp_dp_flow *f)
{
	return (struct rp_hold){ .epoch = f->epoch, .gen = f->gen };
}

/*
 * Under f's lock: its local flags changed (`clear` cleared, then `set` set)
 * only if f is still `key`'s and the holding `h` seen before: a revoke and a grant of
 * another state in between reset the flags, which are about that state.
 * True if they were changed here.
 */
static __always_inline bool rp_flags_locked(struct rp_dp_flow *f, const struct rp_flow_key *key,
					    struct rp_hold h, __u8 clear, __u8 set)
{
	__u8 flags = (f->flags & ~clear) | set;

	if (!rp_flow_is(f, key) || f->epoch != h.epoch || f->gen != h.gen || flags == f->flags)
		return false;
	f->flags = flags;
	return true;
}

#ifndef RP_NO_REPLICATION

/*
 * This CPU may send a lookup now (cfg_lookup_ns): per CPU, so no CPU's
 * budget is another's cache line to fight over.
 */
static __always_inline bool rp_lookup_allowed(void)
{
	__u32 zero = 0;
	__u64 now, due, *next;

	if (!cfg_lookup_ns)
		return true;
	next = bpf_map_lookup_elem(&lookup_due, &zero);
	if (!next)
		return true;
	now = bpf_ktime_get_coarse_ns();
	due = *next > now ? *next : now;
	if (due - now > cfg_lookup_burst_ns)
		return false;
	*next = due + cfg_lookup_ns;
	return true;
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
	__u32 live = rp_live_epoch(store, rp_lease_now());
	struct rp_dp_flow *f;
	__u64 now, age = ~0ull;
	bool expiring = false;
	__u16 gone = 0;

	if (!live) {
		rp_stat(RP_DP_drop_no_session);
		return XDP_DROP;
	}
	/*
	 * The request names the holding this switch gave up in this session:
	 * only such a request can stand for a revoke-ack that was lost (and a
	 * flow the store makes anew starts after it).  Not in bounded mode,
	 * where only rp-load's ack carries the final state.
	 */
	f = bpf_map_lookup_elem(&flows, key);
	if (f) {
		now = rp_touch_now();
		rp_flow_lock(f);
		if (rp_flow_is(f, key) && !f->epoch) {
			if (f->gone_epoch == live && !cfg_bounded)
				gone = f->gen;
			expiring = (f->flags & RP_DPF_EXPIRING) && f->gone_epoch == live;
			if (f->flags & RP_DPF_NO_FLOW)
				age = now - f->seen_ns;
		}
		rp_flow_unlock(f);
	}
	if (expiring) {
		/* given up as idle, its delete not yet answered: gone, for now */
		rp_stat(RP_DP_drop_expiring);
		return XDP_DROP;
	}
	if (!proposal && age < cfg_negative_ns) {
		/* the store said it has no such flow a moment ago */
		rp_stat(RP_DP_drop_negative);
		return XDP_DROP;
	}
	if (!proposal && !rp_lookup_allowed()) {
		rp_stat(RP_DP_drop_lookup_rate);
		return XDP_DROP;
	}
	sc->type = RP_MSG_LEASE_REQ;
	sc->gen = gone;
	sc->key = *key;
	sc->store = store;
	sc->seq = 0;
	sc->epoch = live;
	__builtin_memset(sc->state, 0, RP_STATE_MAX);
	if (proposal) {
		__builtin_memcpy(sc->state, proposal, len);
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
 * The write rp_write_locked() built for `key` goes out: the packet as it is
 * now rides in it, released by the ACK.
 */
static __always_inline int rp_send_write(struct xdp_md *ctx, struct rp_scratch *sc,
					 struct rp_pkt *p, const struct rp_flow_key *key)
{
	sc->key = *key;
	bpf_tail_call(ctx, &progs, RP_PROG_EMIT);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
}

#else /* RP_NO_REPLICATION: the state stays here */

/* No store to spare. */
static __always_inline bool rp_lookup_allowed(void)
{
	return true;
}

/* As a grant would: the proposal installed, the packet through the app again. */
static __always_inline int rp_lease(struct xdp_md *ctx, struct rp_scratch *sc,
				    const struct rp_flow_key *key, const void *proposal, __u32 len)
{
	struct rp_dp_flow *init, *f;
	__u64 now;

	if (!proposal) {
		/* nothing to look up elsewhere */
		rp_stat(RP_DP_drop_unknown_flow);
		return XDP_DROP;
	}
	__builtin_memset(sc->state, 0, RP_STATE_MAX);
	__builtin_memcpy(sc->state, proposal, len);
	init = rp_scratch_flow(sc, key);
	f = rp_flow_get(key, init);
	if (!f) {
		rp_stat(RP_DP_drop_table_full);
		return XDP_DROP;
	}
	/*
	 * In place; the app's local flags stay, as a GRANT keeps them.  A flow
	 * another CPU installed meanwhile stays as it is, as a regrant keeps
	 * the holding a switch has.
	 */
	now = rp_touch_now();
	rp_flow_lock(f);
	if (rp_flow_is(f, key) && !f->epoch) {
		__builtin_memcpy(f->state, sc->state, RP_STATE_MAX);
		f->state_len = (__u8)len;
		f->epoch = RP_LOCAL_EPOCH;
		f->seq = 0;
		f->acked = 0;
		f->flags &= ~RP_DPF_LIFE;
		f->seen_ns = now;
	}
	rp_flow_unlock(f);
	rp_stat(RP_DP_grant);
	bpf_tail_call(ctx, &progs, cfg_app);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
}

/* The write committed at once (rp_write_locked()): forwarded. */
static __always_inline int rp_send_write(struct xdp_md *ctx, struct rp_scratch *sc,
					 struct rp_pkt *p, const struct rp_flow_key *key)
{
	return rp_pass(ctx, sc, p);
}

#endif /* RP_NO_REPLICATION */

/*
 * The translation onto the packet (its source when `src`, else its
 * destination); then the write rp_xlate_take_locked() built, or forwarded.
 */
static __always_inline int rp_xlate_apply(struct xdp_md *ctx, struct rp_scratch *sc,
					  struct rp_pkt *p, const struct rp_flow_key *key,
					  const struct rp_xlate_state *st, bool src, bool write)
{
	if (!write)
		rp_frag_note(sc, p, true, src, st->addr);
	rp_rewrite(p, src, st->addr, st->port);
	if (write)
		return rp_send_write(ctx, sc, p, key);
	return rp_pass(ctx, sc, p);
}

#endif /* __RP_APP_H */
