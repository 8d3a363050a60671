/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The L4 load balancer's state and counters, shared by its program
 * (bpf/app_lb.h), rp-load (user/app_lb.c) and the tests.
 *
 * A connection has two keys, as the NAT's: the forward key (the client's
 * 5-tuple to the virtual address, state: the backend it goes to) and the
 * reverse key (the backend's reply, state: the virtual address to put back).
 */
#ifndef __REDPLANE_LB_H
#define __REDPLANE_LB_H

#include <linux/types.h>

#include "redplane/proto.h"

struct rp_lb_state {
	__be32 addr;		/* forward key: the backend; reverse: the virtual address */
	__be16 port;		/* forward key: the backend's port; reverse: the virtual port */
	__u8 dir;		/* RP_LB_FWD or RP_LB_REV */
	__u8 closing;		/* RP_LB_FIN | RP_LB_RST seen in this key's direction */
};

_Static_assert(sizeof(struct rp_lb_state) == 8, "rp_lb_state size");

#define RP_LB_FWD		1
#define RP_LB_REV		2
#define RP_LB_FIN		0x01
#define RP_LB_RST		0x02

/* Backends a switch knows: those it chooses from, then those draining. */
#define RP_LB_MAX_BACKENDS	16

struct rp_lb_backend {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/*
 * The hash a new connection's backend is chosen by (its index: the hash
 * modulo the number of backends), over the forward key's 40 bytes
 * (murmur3's finalizer after a multiplicative pass).  Here so that the
 * tests can tell which backend a connection gets.
 */
static inline __u32 rp_lb_hash(const struct rp_flow_key *k)
{
	const __u8 *b = (const __u8 *)k;
	__u32 h = 0x2545f491u, w;

#ifdef __clang__
#pragma unroll
#endif
	for (int i = 0; i < (int)(sizeof(*k) / 4); i++) {
		__builtin_memcpy(&w, b + 4 * i, 4);
		h = (h ^ w) * 0x9E3779B1u;
	}
	h ^= h >> 16;
	h *= 0x85ebca6bu;
	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	return h ^ (h >> 16);
}

#define RP_LB_STATS(X)							\
	X(lb_new)		/* backend chosen for a new connection */ \
	X(lb_no_backend)	/* a new connection, and no backend to choose */ \
	X(lb_rev_req)		/* reverse key requested */		\
	X(lb_learned)		/* reverse key of a taken-over connection noted */ \
	X(lb_collision)		/* reverse key already mapped elsewhere */ \
	X(lb_no_mapping)	/* a held key whose state has the wrong direction */

#endif /* __REDPLANE_LB_H */
