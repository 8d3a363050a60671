/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The per-flow counter's state and counters, shared by its program
 * (bpf/app_counter.h), rp-load (user/app_counter.c) and the tests.
 *
 * One key per connection, both directions: the endpoint with the lower
 * (address, port) first (rp_counter_key), so that every switch derives the
 * same key from either direction's packets.
 */
#ifndef __REDPLANE_COUNTER_H
#define __REDPLANE_COUNTER_H

#include <linux/types.h>

#include "redplane/proto.h"

/* [0]: sent by the key's first endpoint (saddr:sport); [1]: by the second. */
struct rp_counter_state {
	__u64 pkts[2];
	__u64 bytes[2];		/* IPv4 total length: IP header and payload */
};

_Static_assert(sizeof(struct rp_counter_state) <= RP_STATE_MAX, "rp_counter_state size");

/* The packet's connection key, and which endpoint sent it (0: the key's first). */
static inline int rp_counter_key(struct rp_flow_key *k, __u8 proto, __be32 saddr, __be16 sport,
				 __be32 daddr, __be16 dport)
{
	/* any total order does, if every switch uses the same: host order */
	__u64 s = ((__u64)rp_be32(saddr) << 16) | rp_be16(sport);
	__u64 d = ((__u64)rp_be32(daddr) << 16) | rp_be16(dport);

	if (s <= d) {
		rp_key_v4(k, proto, saddr, sport, daddr, dport);
		return 0;
	}
	rp_key_v4(k, proto, daddr, dport, saddr, sport);
	return 1;
}

#define RP_COUNTER_STATS(X)						\
	X(counter_local)	/* bounded mode: counted here, forwarded at once */ \
	X(counter_write)	/* linearizable mode: counted in a write */

#endif /* __REDPLANE_COUNTER_H */
