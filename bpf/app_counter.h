/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-flow packet and byte counters, for every TCP and UDP connection
 * through the switch: one key per connection (include/redplane/counter.h),
 * a count per direction.
 *
 * Every packet changes the state, so the mode decides what a packet costs:
 *
 *   bounded (the default)  counted here, under the flow's lock, and
 *                          forwarded at once; rp-load snapshots the counters to the store
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
	bool mine, held, known;
	__u64 len;
	__u32 live;
	int dir;

	if (!sc)
		return XDP_DROP;
	if (p.icmp) {
		/* not this application's: the kernel's (docs/DATAPLANE.md, "ICMP") */
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	dir = rp_counter_key(&key, p.ip->protocol, p.ip->saddr, p.sport, p.ip->daddr,
			     p.dport) & 1;
	len = bpf_ntohs(p.ip->tot_len);
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return rp_lease(ctx, sc, &key, &prop, sizeof(prop));
	live = rp_live_epoch(rp_store_of(&key), rp_lease_now());
	/*
	 * One step under the lock: the packet counted only while the lease is
	 * held (a revoke stops the counting before rp-load reads the final
	 * counts), and in linearizable mode its write numbered with the counts
	 * it carries: write n carries the first n packets, whichever CPUs
	 * counted them.
	 */
	rp_flow_lock(f);
	mine = rp_flow_is(f, &key);
	held = mine && rp_held(f, live);
	known = mine && f->state_len == sizeof(*st) && (held || !(f->flags & RP_DPF_GONE));
	if (held && known) {
		st = (struct rp_counter_state *)f->state;
		st->pkts[dir]++;
		st->bytes[dir] += len;
		if (!cfg_bounded)
			rp_write_locked(sc, f, sizeof(*st));
	} else if (!held && known) {
		__builtin_memcpy(&prop, f->state, sizeof(prop));
	}
	rp_flow_unlock(f);
	if (!held)
		/*
		 * Any packet may start counting: propose zeros, or what is
		 * known here (a lapsed lease); the store keeps its own counts
		 * if it has the flow.
		 */
		return rp_lease(ctx, sc, &key, &prop, sizeof(prop));
	if (!known) {
		rp_stat(RP_DP_drop_bad_state);
		return XDP_DROP;
	}
	rp_touch(f, rp_tcp_flags(&p), rp_touch_now());
	if (cfg_bounded) {
		rp_stat(RP_DP_counter_local);
		return rp_pass(ctx, sc, &p);
	}
	rp_stat(RP_DP_counter_write);
	return rp_send_write(ctx, sc, &p, &key);
}

#endif /* __RP_APP_COUNTER_H */
