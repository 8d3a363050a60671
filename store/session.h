/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Switch sessions.  Liveness is per switch, not per flow: a switch renews
 * its session with heartbeats, and every flow lease it holds is valid while
 * the session that granted it (its epoch) is live.  One shard thread (the
 * one heartbeats are steered to) writes the table; every shard reads it.
 * Each record is a seqlock, so readers never block and never see a torn
 * record.
 */
#ifndef __RP_SESSION_H
#define __RP_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "redplane/addr.h"

#define RP_SWITCHES	65536	/* switch ids are 16 bits; 0 is never valid */
#define RP_ADDR_WORDS	8	/* a sockaddr_in6 fits in 32 bytes */

struct rp_session_rec {
	_Atomic uint32_t seq;		/* odd while being written */
	_Atomic uint32_t epoch;		/* 0 = never joined */
	_Atomic uint64_t expiry_ns;	/* CLOCK_MONOTONIC */
	_Atomic uint32_t addr_len;
	_Atomic uint32_t addr[RP_ADDR_WORDS];
};

struct rp_session {
	uint32_t epoch;
	uint64_t expiry_ns;
	struct rp_sockaddr addr;
};

struct rp_sessions {
	struct rp_session_rec *rec;
	uint64_t lease_ns;
	uint32_t first_epoch;	/* random per store run: a restart never reuses epochs */
};

int rp_sessions_init(struct rp_sessions *s, uint32_t lease_ms);
void rp_sessions_free(struct rp_sessions *s);

/*
 * Writer side.  Renews switch_id's session when it is live, or starts a new
 * one (a new epoch) when it lapsed or never existed, or when it is epoch
 * `lapsed`, which ran out at the switch (0: none).  Returns the epoch;
 * *is_new tells which happened.
 */
uint32_t rp_session_heartbeat(struct rp_sessions *s, uint16_t switch_id,
			      const struct rp_sockaddr *from, uint64_t now_ns, uint32_t lapsed,
			      bool *is_new);

/*
 * Writer side, chain replicas: the record as the head made it.  A replica
 * that is not the head keeps replicated sessions live (expiry UINT64_MAX)
 * until it becomes the head, which then restarts every session's clock
 * (rp_sessions_restart_clock): it cannot know when a switch last renewed,
 * only that no switch holds a lease past one lease period from now.
 */
void rp_session_put(struct rp_sessions *s, uint16_t switch_id, uint32_t epoch,
		    const struct rp_sockaddr *addr, uint64_t expiry_ns);
void rp_sessions_restart_clock(struct rp_sessions *s, uint64_t now_ns);

/* Reader side: a consistent copy of one record. */
void rp_session_read(const struct rp_sessions *s, uint16_t switch_id, struct rp_session *out);

/* True when switch_id has a live session of exactly this epoch. */
bool rp_session_live(const struct rp_sessions *s, uint16_t switch_id, uint32_t epoch,
		     uint64_t now_ns);

/* Number of live sessions (for statistics; reads every record). */
unsigned int rp_sessions_count_live(const struct rp_sessions *s, uint64_t now_ns);

#endif /* __RP_SESSION_H */
