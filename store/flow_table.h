/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-shard flow table: a dense array of flow records, allocated up front
 * and touched only as flows arrive (so resident memory follows the number
 * of flows), and an open-addressing index of 8-byte slots over it, kept at
 * most 2/3 full.  One thread owns a table: no locks.
 *
 * A delete keeps both dense: the last record moves into the freed one's
 * place, and the index closes the gap by backward shift (no tombstones, so
 * lookups never slow down with churn).  A record's address is therefore
 * stable only until the next delete.
 */
#ifndef __RP_FLOW_TABLE_H
#define __RP_FLOW_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "redplane/proto.h"

struct rp_flow {
	struct rp_flow_key key;	/* wire bytes */
	uint8_t app_id;
	uint8_t state_len;	/* bytes of state, <= RP_STATE_MAX */
	uint16_t owner;		/* lease owner's switch id, 0 = no lease */
	uint32_t epoch;		/* owner's session epoch when granted */
	uint32_t seq;		/* last committed sequence number */
	uint16_t waiter;	/* 1 + index of the request waiting on it, or 0 */
	uint16_t gen;		/* lease generation: +1 at every new holding */
	uint8_t revoking;	/* a revoke went to the owner, no ack came yet */
	uint8_t state[RP_STATE_MAX];
	/*
	 * CLOCK_MONOTONIC of the last request, write or grant about the flow
	 * at this replica (orphan reclaim); not replicated: clocks differ.
	 */
	uint64_t touched_ns;
};

struct rp_flow_table {
	uint64_t *index;	/* (tag << 32) | (record + 1); 0 = empty slot */
	uint32_t mask;		/* index slots - 1 */
	uint32_t count;
	uint32_t cap;
	struct rp_flow *flows;
};

/* Bytes a table for cap flows takes when full. */
size_t rp_flow_table_bytes(uint32_t cap);
int rp_flow_table_init(struct rp_flow_table *t, uint32_t cap);
void rp_flow_table_free(struct rp_flow_table *t);

struct rp_flow *rp_flow_lookup(const struct rp_flow_table *t, uint8_t app_id,
			       const struct rp_flow_key *key);
/* Forgets every flow (a chain replica about to receive a whole copy). */
void rp_flow_table_clear(struct rp_flow_table *t);
/* Adds a zeroed record for a key not in the table; NULL when full. */
struct rp_flow *rp_flow_insert(struct rp_flow_table *t, uint8_t app_id,
			       const struct rp_flow_key *key);
/*
 * Removes f.  The last record moves into f's place: returns it (now at f's
 * address), or NULL when f was the last record.  Any pointer to the last
 * record must follow it.
 */
struct rp_flow *rp_flow_delete(struct rp_flow_table *t, struct rp_flow *f);

#endif /* __RP_FLOW_TABLE_H */
