// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What rp-load's socket makes of a datagram from a store, apart from any
 * socket or map: which chain and replica sent it, what it is, and where a
 * not_head hint moves the chain's head.  heartbeat.c acts on the answers;
 * fuzz/fuzz_agent.c feeds these functions arbitrary datagrams.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "redplane/codec.h"

static int replica_index(const struct rp_store_chain *c, __be32 addr, __be16 port)
{
	for (unsigned int r = 0; r < c->nreplicas; r++)
		if (c->replicas[r].sin_addr.s_addr == addr && c->replicas[r].sin_port == port)
			return (int)r;
	return -1;
}

/* The chain of a replica (rp_parse_store_chains() lists each once), and which replica. */
static int chain_of(const struct rp_load_cfg *cfg, const struct sockaddr_in *from,
		    unsigned int *replica)
{
	for (unsigned int i = 0; i < cfg->nstores; i++) {
		int r = replica_index(&cfg->chains[i], from->sin_addr.s_addr, from->sin_port);

		if (r >= 0) {
			*replica = (unsigned int)r;
			return (int)i;
		}
	}
	return -1;
}

enum rp_hb_kind rp_hb_parse(const struct rp_load_cfg *cfg, const void *buf, size_t len,
			    const struct sockaddr_in *from, struct rp_msg_view *v,
			    unsigned int *chain, unsigned int *replica)
{
	int i = chain_of(cfg, from, replica);

	if (i < 0 || rp_msg_decode(buf, len, v) || v->switch_id != cfg->switch_id)
		return RP_HB_IGNORE;
	*chain = (unsigned int)i;
	/*
	 * The data plane passes up heartbeat acks, not_head rejects and,
	 * in bounded mode, revokes of held flows.
	 */
	if (v->type == RP_MSG_HEARTBEAT_ACK)
		return RP_HB_ACK;
	if (v->type == RP_MSG_REJECT && v->reason == RP_REJ_NOT_HEAD)
		return RP_HB_NOT_HEAD;
	if (v->type == RP_MSG_REVOKE && cfg->bounded)
		return RP_HB_REVOKE;
	return RP_HB_IGNORE;
}

int rp_hb_hint(const struct rp_store_chain *c, struct rp_store_sess *s,
	       const struct rp_msg_view *v)
{
	struct rp_head_hint h;
	uint32_t version;
	int r;

	if (!(v->flags & RP_F_STATE) || v->state_len != sizeof(h))
		return -EINVAL;
	memcpy(&h, v->state, sizeof(h));
	version = ntohl(h.version);
	if (!h.addr || version < s->hint_version)
		return -EALREADY;	/* it knows of no head, or an older configuration */
	r = replica_index(c, h.addr, h.port);
	if (r < 0)
		return -ENOENT;		/* not a replica --store names */
	s->hint_version = version;
	return r;
}
