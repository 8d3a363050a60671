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

#define RP_NAT_STATS(X)							\
	X(nat_new)		/* NAT mapping proposed for a new flow */ \
	X(nat_rev_req)		/* NAT reverse key requested */		\
	X(nat_collision)	/* NAT port already mapped elsewhere */	\
	X(nat_no_mapping)	/* NAT return traffic with a bad mapping */

#endif /* __REDPLANE_NAT_H */
