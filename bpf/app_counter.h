/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-flow packet and byte counters, for every TCP and UDP connection
 * through the switch: one key per connection (include/redplane/counter.h),
 * a count per direction.
 *
 * Every packet changes the state, so the mode decides what a packet costs:
 *
 *   bounded (the default)  counted here with atomic adds and forwarded at
 *                          once; rp-load snapshots the counters to the store
 *                          every --snapshot-ms (user/snapshot.c), and hands
 *                          the newest counts over with the ack of a revoke.
 *                          A crash loses what was counted since the last
 *                          snapshot the store acknowledged: at most one
 *                          period's packets (docs/APPS.md).
 *   linearizable           every packet is a write, released by its ACK:
 *                          nothing is lost, at the store's write rate.
 */
#ifndef __RP_APP_COUNTER_H
#define __RP_APP_COUNTER_H

#include "rp_app.h"

SEC("xdp")
int rp_app_counter(struct xdp_md *ctx)
{
	struct rp_pkt p;
	struct rp_scratch *sc = rp_app_begin(ctx, &p);
	struct rp_counter_state *st, prop = {};
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	__u64 len;
	int dir;

	if (!sc)
		return XDP_DROP;
	dir = rp_counter_key(&key, p.ip->protocol, p.ip->saddr, p.l4->source, p.ip->daddr,
			     p.l4->dest) & 1;
	f = bpf_map_lookup_elem(&flows, &key);
	if (!rp_lease_held(f)) {
		/*
		 * Any packet may start counting: propose zeros, or what is
		 * known here (a lapsed lease); the store keeps its own counts
		 * if it has the flow.
		 */
		if (f && f->state_len == sizeof(prop))
			__builtin_memcpy(&prop, f->state, sizeof(prop));
		return rp_lease(ctx, sc, &key, &prop, sizeof(prop));
	}
	if (f->state_len != sizeof(*st)) {
		rp_stat(RP_DP_drop_bad_state);
		return XDP_DROP;
	}
	st = (struct rp_counter_state *)f->state;
	len = bpf_ntohs(p.ip->tot_len);
	/* atomic: the packets of one connection may be on several CPUs at once */
	__sync_fetch_and_add(&st->pkts[dir], 1);
	__sync_fetch_and_add(&st->bytes[dir], len);
	if (cfg_bounded) {
		rp_stat(RP_DP_counter_local);
		return rp_pass(ctx, sc, &p);
	}
	rp_stat(RP_DP_counter_write);
	return rp_write(ctx, sc, &p, &key, f, sizeof(*st));
}

#endif /* __RP_APP_COUNTER_H */
