/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The NAT application's state and counters, shared by its program
 * (bpf/app_nat.h), rp-load (user/app_nat.c) and the tests.
 */
#ifndef __REDPLANE_NAT_H
#define __REDPLANE_NAT_H

#include <linux/types.h>

/* NAT state, in the state value of both of a connection's keys. */
struct rp_nat_state {
	__be32 addr;		/* forward key: external address; reverse: internal */
	__be16 port;		/* forward key: external port; reverse: internal */
	__u8 dir;		/* RP_NAT_FWD or RP_NAT_REV */
	__u8 closing;		/* RP_NAT_FIN | RP_NAT_RST seen in this key's direction */
};

#define RP_NAT_FWD	1
#define RP_NAT_REV	2
#define RP_NAT_FIN	0x01
#define RP_NAT_RST	0x02

/*
 * External ports a new connection looks at, from the shared counter's
 * position on: enough that a range one destination crowds still yields a
 * free port, few enough for the verifier to walk the loop (bpf/app_nat.h).
 */
#define RP_NAT_PORT_TRIES	64

#define RP_NAT_STATS(X)							\
	X(nat_new)		/* NAT mapping proposed for a new flow */ \
	X(nat_rev_req)		/* NAT reverse key requested */		\
	X(nat_collision)	/* NAT port already mapped elsewhere */	\
	X(nat_no_mapping)	/* NAT return traffic with a bad mapping */ \
	X(nat_port_skipped)	/* NAT candidate ports busy for the destination */ \
	X(nat_ports_exhausted)	/* NAT new flows dropped: no candidate port free */ \
	X(nat_port_moved)	/* NAT flows moved off a port the store had taken */

#endif /* __REDPLANE_NAT_H */
