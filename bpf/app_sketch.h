/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A count-min sketch of packets per IPv4 source address, with heavy hitters
 * (include/redplane/sketch.h has the layout).  Bounded mode only: a packet
 * adds one to a cell in each row, here, and is forwarded at once; rp-load
 * snapshots the chunks that changed every --snapshot-ms.
 *
 * The switch needs the lease of each chunk its packet touches: the first
 * packet that finds one not held rides to the store for it (proposing a
 * zero chunk, or what is known here) and comes back through here, until all
 * its rows are held.  A source whose estimate reaches cfg_sketch_threshold
 * is put in the `heavy` map with its estimate (`rp-load --status` lists
 * them).  The heavy map is not replicated: it is rebuilt from the sketch,
 * which is, by the next packet of each heavy source.
 */
#ifndef __RP_APP_SKETCH_H
#define __RP_APP_SKETCH_H

#include "rp_app.h"

const volatile __u32 cfg_sketch_id = 1;
const volatile __u64 cfg_sketch_threshold = 1000;	/* packets */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __be32);
	__type(value, struct rp_sketch_heavy);
} heavy SEC(".maps");

SEC("xdp")
int rp_app_sketch(struct xdp_md *ctx)
{
	struct rp_pkt p;
	struct rp_scratch *sc = rp_app_begin(ctx, &p);
	struct rp_dp_flow *row[RP_SKETCH_ROWS];
	__u32 col[RP_SKETCH_ROWS], live[RP_SKETCH_ROWS];
	struct rp_sketch_chunk prop;
	struct rp_sketch_heavy hh;
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	__u64 est = ~0ull, now;
	__be32 src;
	bool lost = false;

	if (!sc)
		return XDP_DROP;
	if (p.icmp) {
		/* not this application's: the kernel's (docs/DATAPLANE.md, "ICMP") */
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	src = p.ip->saddr;
	now = rp_lease_now();	/* one clock read for the four leases */
	/*
	 * Every row's chunk held first (read without the lock: a hint that
	 * the counting below checks again under each chunk's lock), so that a
	 * packet that must ride to the store for a chunk has counted nowhere.
	 */
#pragma unroll
	for (__u32 r = 0; r < RP_SKETCH_ROWS; r++) {
		col[r] = rp_sketch_col(src, r);
		rp_sketch_key(&key, cfg_sketch_id, r, col[r]);
		f = bpf_map_lookup_elem(&flows, &key);
		live[r] = rp_live_epoch(rp_store_of(&key), now);
		if (!f || !rp_epoch_held(RP_READ_ONCE(f->epoch), live[r])) {
			/* this row's chunk first; the packet comes back for the next */
			__builtin_memset(&prop, 0, sizeof(prop));
			if (f) {
				rp_flow_lock(f);
				if (rp_flow_is(f, &key) && f->state_len == sizeof(prop))
					__builtin_memcpy(&prop, f->state, sizeof(prop));
				rp_flow_unlock(f);
			}
			return rp_lease(ctx, sc, &key, &prop, sizeof(prop));
		}
		if (RP_READ_ONCE(f->state_len) != sizeof(prop)) {
			rp_stat(RP_DP_drop_bad_state);
			return XDP_DROP;
		}
		row[r] = f;
	}
#pragma unroll
	for (__u32 r = 0; r < RP_SKETCH_ROWS; r++) {
		struct rp_dp_flow *c = row[r];
		__u64 v = ~0ull;

		/*
		 * Counted only while held: a chunk revoked since the look above
		 * (rare) misses this packet, within bounded mode's loss.
		 */
		rp_flow_lock(c);
		if (rp_held(c, live[r]) && c->state_len == sizeof(prop))
			v = ++((struct rp_sketch_chunk *)c->state)->cell[col[r] % RP_SKETCH_CHUNK_CELLS];
		rp_flow_unlock(c);
		if (v == ~0ull)
			lost = true;
		else if (v < est)
			est = v;
	}
	if (lost)
		rp_stat(RP_DP_sketch_lost);
	rp_stat(RP_DP_sketch_update);
	if (est != ~0ull && est >= cfg_sketch_threshold) {
		struct rp_sketch_heavy *h = bpf_map_lookup_elem(&heavy, &src);

		rp_stat(RP_DP_sketch_heavy);
		if (h) {
			/* known: in place, no update of the map per packet */
			h->estimate = est;
			h->seen_ns = bpf_ktime_get_ns();
		} else {
			hh.estimate = est;
			hh.seen_ns = bpf_ktime_get_ns();
			if (bpf_map_update_elem(&heavy, &src, &hh, BPF_ANY))
				rp_stat(RP_DP_sketch_heavy_full);
		}
	}
	return rp_pass(ctx, sc, &p);
}

#endif /* __RP_APP_SKETCH_H */
