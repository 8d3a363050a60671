/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A switch's store chains, as its command line lists them (lib/parse.c). */
#ifndef __REDPLANE_STORE_LIST_H
#define __REDPLANE_STORE_LIST_H

#include <netinet/in.h>

#include "redplane/dp.h"

/* One chain: its replicas, in the order given. */
struct rp_store_chain {
	struct sockaddr_in replicas[RP_MAX_REPLICAS];
	unsigned int nreplicas;
};

/*
 * Store chains for option `opt` of `prog`: chains separated by ',', the
 * replicas of one chain joined by '+', each A.B.C.D:PORT with a port; at most
 * RP_MAX_STORES chains of RP_MAX_REPLICAS replicas, no replica listed twice.
 * 0 and the chains, or -EINVAL after a message saying what is wrong.
 */
int rp_parse_store_chains(const char *prog, const char *opt, const char *list,
			  struct rp_store_chain chains[RP_MAX_STORES], unsigned int *nchains);

#endif /* __REDPLANE_STORE_LIST_H */
