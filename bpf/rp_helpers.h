/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Helpers shared by the data plane's programs. */
#ifndef __RP_HELPERS_H
#define __RP_HELPERS_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "redplane/siphash.h"
#include "rp_maps.h"
#include "rp_parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* Outer headers of a message to or from a store (no VLAN on that link). */
#define RP_ENCAP_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr) + \
			 sizeof(struct udphdr) + sizeof(struct rp_msg))

/*
 * The message's MAC under the deployment's key (its header, key and state).
 * A subprogram: inlined into the emitter it would push its stack past 512
 * bytes.
 */
static __noinline __u64 rp_msg_mac(const struct rp_msg *msg)
{
	return rp_siphash24(cfg_mac_key[0], cfg_mac_key[1], (const __u8 *)msg, RP_MAC_COVERED);
}

/* Seals a message built or changed here: its MAC, or 0 without a key. */
static __always_inline void rp_msg_seal(struct rp_msg *msg)
{
	__u64 mac = cfg_mac ? rp_msg_mac(msg) : 0;

	__builtin_memcpy(msg->mac, &mac, sizeof(mac));
}

static __always_inline void rp_stat(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct rp_scratch *rp_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

/* One's complement fold of a 32-bit sum into a 16-bit checksum field. */
static __always_inline __u16 rp_csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/*
 * Incremental updates (RFC 1624: HC' = ~(~HC + ~m + m')).  All values are
 * as they sit in the packet; one's complement sums do not care about order.
 */
static __always_inline __u16 rp_csum_update32(__u16 check, __be32 from, __be32 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~(from & 0xffff);
	s += (__u16)~(from >> 16);
	s += to & 0xffff;
	s += to >> 16;
	return rp_csum_fold(s);
}

static __always_inline __u16 rp_csum_update16(__u16 check, __be16 from, __be16 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~from;
	s += to;
	return rp_csum_fold(s);
}

static __always_inline __u16 rp_ip_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 s = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		s += w[i];
	return rp_csum_fold(s);
}

/* The store chain a flow belongs to. */
static __always_inline __u16 rp_store_of(const struct rp_flow_key *k)
{
	return rp_store_index(k, cfg_nstores);
}

static __always_inline struct rp_dp_session *rp_session(__u16 store)
{
	__u32 idx = store;

	return bpf_map_lookup_elem(&sessions, &idx);
}

/* One load the compiler may neither split, repeat nor move. */
#define RP_READ_ONCE(x)	(*(const volatile typeof(x) *)&(x))
/* Nor may it move a memory access across this. */
#define rp_barrier()	asm volatile("" ::: "memory")
/* The state bytes rp_flow_peek() copies at most: the firewall's state */
#define RP_PEEK_STATE	16

/* The clock leases are judged by; one read serves a packet that checks several. */
static __always_inline __u64 rp_lease_now(void)
{
#ifndef RP_NO_REPLICATION
	return bpf_ktime_get_coarse_ns();
#else
	return 0;	/* no lease expires: the baseline reads no clock */
#endif
}

#ifndef RP_NO_REPLICATION
/*
 * The epoch of chain `store`'s session if it is live at `now`, else 0: one
 * read of its expiry (DESIGN.md's safety rule).  The coarse clock costs a
 * fraction of bpf_ktime_get_ns(); it lags by up to one tick, which rp-load
 * takes off the expiry it writes.  No lock: every packet of every CPU reads
 * the session, and a lock would bounce its cache line between them all.
 * rp-load writes a new epoch with expiry 0 first, then its expiry; read
 * expiry first, then epoch, a packet never pairs an old epoch with a new
 * expiry (loads are not reordered with loads on x86-64; docs/DATAPLANE.md,
 * "Concurrency").
 */
static __always_inline __u32 rp_live_epoch(__u16 store, __u64 now)
{
	struct rp_dp_session *s = rp_session(store);
	__u64 expiry;

	if (!s)
		return 0;
	expiry = RP_READ_ONCE(s->expiry_ns);
	if (now >= expiry)
		return 0;
	return RP_READ_ONCE(s->epoch);
}
#else
/* The epoch of a flow installed locally; 0 stays "not held". */
#define RP_LOCAL_EPOCH	1

/* No store: a flow installed here is this switch's. */
static __always_inline __u32 rp_live_epoch(__u16 store, __u64 now)
{
	return RP_LOCAL_EPOCH;
}
#endif

/*
 * A flow leased under `epoch` is held, `live` being its chain's live epoch
 * (rp_live_epoch()).
 */
static __always_inline bool rp_epoch_held(__u32 epoch, __u32 live)
{
#ifndef RP_NO_REPLICATION
	return epoch && epoch == live;
#else
	return epoch;	/* installed here, under any epoch */
#endif
}

/* This switch holds the flow's lease: under the flow's lock. */
static __always_inline bool rp_held(const struct rp_dp_flow *f, __u32 live)
{
	return rp_epoch_held(f->epoch, live);
}

/*
 * A flow's lock.  Between the two, no helper may be called (the verifier's
 * rule for bpf_spin_lock): what a program decides about a flow under it is
 * plain code, with helpers called before (clocks, lookups) and after
 * (counters, tail calls).  The version goes odd and back around it, for
 * the readers that do not lock (rp_flow_peek).
 */
static __always_inline void rp_flow_lock(struct rp_dp_flow *f)
{
	bpf_spin_lock(&f->lock);
	f->version++;	/* odd: a change under way */
	rp_barrier();
}

static __always_inline void rp_flow_unlock(struct rp_dp_flow *f)
{
	rp_barrier();
	f->version++;
	bpf_spin_unlock(&f->lock);
}

/*
 * f still holds `key`: an element rp-load deleted (an expired entry) goes
 * to the next new key at once, so a program that found it earlier checks,
 * under the lock or in its lock-free copy, before it trusts or changes it.
 */
static __always_inline bool rp_flow_is(const struct rp_dp_flow *f, const struct rp_flow_key *key)
{
	const __u64 *a = (const __u64 *)&f->key, *b = (const __u64 *)key;
	__u64 diff = 0;

#pragma unroll
	for (int i = 0; i < (int)(sizeof(*key) / 8); i++)
		diff |= a[i] ^ b[i];
	return !diff;
}

/* The clock of a flow's seen_ns; in both builds, since both expire flows. */
static __always_inline __u64 rp_touch_now(void)
{
	return bpf_ktime_get_coarse_ns();
}

/*
 * A packet of the flow (TCP flags `tcp`, 0 for others) at `now`: its
 * seen_ns moved on once per cfg_touch_ns, and flags it had not seen noted.
 * Without the lock, so that a packet that only reads stays lock-free: the
 * fields are the sweep's, no decision of the data plane reads them.
 */
static __always_inline void rp_touch(struct rp_dp_flow *f, __u8 tcp, __u64 now)
{
	if (now - RP_READ_ONCE(f->seen_ns) >= cfg_touch_ns)
		f->seen_ns = now;
	if ((RP_READ_ONCE(f->tcp_seen) | tcp) != f->tcp_seen)
		f->tcp_seen |= tcp;
}

/* What a packet that only reads needs of its flow (rp_flow_peek). */
struct rp_flow_view {
	__u32 epoch;
	__u32 seq;
	__u32 acked;
	__u8 state_len;
	__u8 flags;
	__u8 state[RP_PEEK_STATE];
};

/*
 * A copy of the flow's lease, seq numbers, flags and first `len` state
 * bytes (a constant, at most RP_PEEK_STATE) taken without the lock, as a
 * seqlock's reader does: true if no change was under way or made meanwhile,
 * and the element still holds `key`; false to take the lock instead.  A
 * packet that only reads then writes nothing shared (but seen_ns, once per
 * cfg_touch_ns), so a flow read from several CPUs at once (a connection's
 * two directions on two queues) does not move a cache line between them.
 * Sound where a load is not reordered with a later load (x86-64: rp-load
 * clears cfg_peek elsewhere) and the writer's stores keep their order (the
 * lock's holder, with compiler barriers); rp-load never writes a flow.
 */
static __always_inline bool rp_view_held(const struct rp_flow_view *v, __u32 live)
{
	return rp_epoch_held(v->epoch, live);
}

static __always_inline bool rp_flow_peek(const struct rp_dp_flow *f, const struct rp_flow_key *key,
					 struct rp_flow_view *v, __u32 len)
{
	__u32 version;
	bool same;

	if (!cfg_peek)
		return false;
	version = RP_READ_ONCE(f->version);
	if (version & 1)
		return false;
	rp_barrier();
	same = rp_flow_is(f, key);
	v->epoch = f->epoch;
	v->seq = f->seq;
	v->acked = f->acked;
	v->state_len = f->state_len;
	v->flags = f->flags;
	__builtin_memcpy(v->state, f->state, len);
	rp_barrier();
	return same && RP_READ_ONCE(f->version) == version;
}

/* The scratch's flow value being built for `key`, zeroed but for the key. */
static __always_inline struct rp_dp_flow *rp_scratch_flow(struct rp_scratch *sc,
							  const struct rp_flow_key *key)
{
	struct rp_dp_flow *f = (struct rp_dp_flow *)sc->flow;

	__builtin_memset(f, 0, sizeof(*f));
	__builtin_memcpy(&f->key, key, sizeof(f->key));
	return f;
}

/*
 * The entry for `key`, made from `init` (the scratch's flow for `key`) if
 * there was none: in place, never replaced.  A replaced element goes back
 * to the map's free list while another CPU may still be writing through
 * its pointer; changes are made in place, under the lock, instead.  NULL
 * when the map is full.  The entry may still turn out to be another key's
 * under the lock (rp_flow_is): an element rp-load deleted meanwhile.
 */
static __always_inline struct rp_dp_flow *rp_flow_get(const struct rp_flow_key *key,
						      const struct rp_dp_flow *init)
{
	struct rp_dp_flow *f = bpf_map_lookup_elem(&flows, key);

	if (f)
		return f;
	/* -EEXIST: another CPU made it in between; either way it is there now */
	bpf_map_update_elem(&flows, key, init, BPF_NOEXIST);
	return bpf_map_lookup_elem(&flows, key);
}

static __always_inline void rp_ip_decrease_ttl(struct iphdr *ip)
{
	__u32 check = (__u32)ip->check;

	check += (__u32)bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

/*
 * Forwards with the kernel's routes and neighbours.  Anything the fast path
 * cannot do (no neighbour entry yet, a VLAN, local delivery) goes to the
 * kernel, which does it.
 */
static __always_inline int rp_forward(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				      int vlan)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	if (vlan) {
		rp_stat(RP_DP_fwd_pass);
		return XDP_PASS;
	}
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		if (ip->ttl <= 1) {
			rp_stat(RP_DP_drop_ttl);
			return XDP_PASS;	/* the kernel sends the ICMP time exceeded */
		}
		rp_ip_decrease_ttl(ip);
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		rp_stat(RP_DP_fwd_redirect);
		return bpf_redirect(fib.ifindex, 0);
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		rp_stat(RP_DP_fwd_drop);
		return XDP_DROP;
	default:
		rp_stat(RP_DP_fwd_pass);
		return XDP_PASS;
	}
}

#endif /* __RP_HELPERS_H */
