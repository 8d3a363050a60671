/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* rp-store internals shared by its files and by the unit tests. */
#ifndef __RP_STORE_H
#define __RP_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "redplane/addr.h"
#include "redplane/codec.h"
#include "redplane/proto.h"

#include "chain.h"
#include "flow_table.h"
#include "session.h"

#define RP_STORE_VERSION	"0.1.0"
#define RP_BATCH		32	/* datagrams per recvmmsg/sendmmsg */
#define RP_RX_BUF		2048	/* > RP_DGRAM_MAX, so MSG_TRUNC flags oversize */

_Static_assert(RP_RX_BUF > RP_DGRAM_MAX, "receive buffer detects oversize");

/* A switch the store serves (--allow): its id and the address it sends from. */
#define RP_ALLOW_MAX	1024
struct rp_allowed {
	uint16_t switch_id;
	int family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* 4 or 16 bytes, network order */
};

struct rp_store_cfg {
	struct rp_sockaddr listen;
	/* --allow: when nallowed, only these (id, address) pairs are served */
	struct rp_allowed allowed[RP_ALLOW_MAX];
	unsigned int nallowed;
	unsigned int shards;
	uint32_t lease_ms;	/* session lease period */
	uint32_t max_flows;	/* over all shards */
	uint32_t wait_queue;	/* requests waiting on revokes, per shard */
	uint32_t wait_ms;	/* longest a request waits on a revoke */
	uint32_t grace_ms;	/* after start, no lease granted for this long */
	uint64_t orphan_ns;	/* --orphan-timeout; 0: never reclaim (unit tests) */
	const char *stats_path;
	const char *dump_path;
	bool verbose;
	/* chain replication: zk_hosts NULL for a store of one */
	const char *zk_hosts;
	const char *chain_name;
	uint32_t replica_id;
	struct rp_sockaddr peer;
	bool peer_from_listen;	/* peer = listen's port + 1, once that is known */
	uint32_t failure_timeout_ms;
	char *config_text;	/* a --config file's text: options point into it */
	char **config_argv;
};

/*
 * Outcome counters.  The names are the statistics interface (stats file,
 * SIGUSR1 and exit dumps): keep docs/STORE.md in step.
 */
#define RP_STORE_COUNTERS(X)						\
	X(rx_datagrams)		/* every datagram received */		\
	X(tx_datagrams)		/* every datagram sent */		\
	X(tx_errors)		/* datagrams not sent (full buffer, no route) */ \
	X(misrouted)		/* reached a shard that does not own it */ \
	X(not_allowed)		/* --allow: a switch id from an address not listed for it */ \
	X(session_new)		/* heartbeat started a session (epoch) */ \
	X(session_renew)	/* heartbeat renewed a live session */	\
	X(grant)		/* new flow, proposal taken */		\
	X(migrate)		/* lease handed over with stored state */ \
	X(regrant)		/* owner asked again for a flow it owns */ \
	X(revoke_sent)		/* first revoke for a waiting request */ \
	X(revoke_retx)		/* revoke sent again */			\
	X(revoke_ack)		/* owner gave a flow up */		\
	X(revoke_ack_stale)	/* revoke-ack from a non-owner: ignored */ \
	X(revoke_ack_state)	/* revoke-ack's final state committed */ \
	X(revoke_ack_implied)	/* owner asked again while being revoked */ \
	X(wait_queued)		/* request queued behind a revoke */	\
	X(wait_refreshed)	/* same requester asked again while waiting */ \
	X(wait_done_ack)	/* waiting request granted on revoke-ack */ \
	X(wait_done_lapse)	/* waiting request granted on owner lapse */ \
	X(wait_dropped)		/* waiter's own session lapsed first */	\
	X(write_commit)		/* write applied */			\
	X(write_dup)		/* write seen before: ACKed again */	\
	X(write_conflict)	/* same seq, another state: refused stale */ \
	X(snapshot_commit)						\
	X(snapshot_dup)							\
	X(snapshot_old)		/* overtaken by a newer snapshot: acked, not applied */ \
	X(expire_deleted)	/* EXPIRE of the current holding: deleted */ \
	X(expire_not_owner)	/* EXPIRE of another holding: refused */ \
	X(expire_no_flow)	/* EXPIRE of a flow not here (deleted before) */ \
	X(expire_handover)	/* EXPIRE with a request waiting: it got the flow */ \
	X(orphans_reclaimed)	/* flows of no live session, idle past --orphan-timeout */ \
	X(chain_entries)	/* changes the head sent down the chain */ \
	X(chain_applied)	/* entries applied from the predecessor */ \
	X(chain_deletes_applied) /* of those, deletes of a flow this replica had */ \
	X(chain_replies)	/* replies sent as the tail */		\
	X(chain_resent)		/* entries sent again to a new successor */ \
	X(chain_copies)		/* whole copies sent to a successor */	\
	X(chain_copy_records)	/* records in those copies */		\
	X(chain_full)		/* requests refused: too much not yet at the tail */ \
	X(chain_reconfig)	/* chain configurations taken */	\
	X(chain_link_errors)	/* chain links broken or refused */	\
	X(chain_bad_frames)	/* malformed frames on a chain link */

struct rp_store_stats {
#define X(name) _Atomic uint64_t name;
	RP_STORE_COUNTERS(X)
#undef X
	_Atomic uint64_t rx_type[__RP_MSG_MAX];	/* well-formed, by type */
	_Atomic uint64_t bad[__RP_E_MAX];		/* dropped, by reason */
	_Atomic uint64_t reject[__RP_REJ_MAX];		/* REJECTs sent, by reason */
};

/*
 * One writer per counter (its shard); relaxed load and store compile to
 * plain moves, and a reader in another thread sees whole values.
 */
#define STAT_ADD(ctr, n)						\
	atomic_store_explicit(&(ctr), atomic_load_explicit(&(ctr), memory_order_relaxed) + (n), \
			      memory_order_relaxed)
#define STAT_INC(ctr) STAT_ADD(ctr, 1)

/* A request that waits for its flow's owner to ack a revoke or lapse. */
struct rp_waiter {
	struct rp_flow *flow;	/* NULL = slot free */
	uint16_t switch_id;
	uint32_t epoch;
	uint16_t gen;		/* the holding its switch gave up: its grant comes after */
	uint64_t deadline_ns;
	uint64_t next_revoke_ns;
	struct rp_sockaddr from;
	uint16_t pkt_len;
	uint8_t pkt[RP_PKT_MAX];
};

struct rp_out_slot {
	struct rp_sockaddr to;
	uint8_t buf[RP_DGRAM_MAX];
};

struct rp_shard {
	unsigned int id;
	int fd;			/* -1 in unit tests: output stays in out[] */
	const struct rp_store_cfg *cfg;
	struct rp_sessions *sessions;
	struct rp_flow_table flows;

	uint64_t serve_from_ns;	/* end of the start-up grace (0: none) */
	/*
	 * Orphan reclaim: the next record to look at, when to look again, and
	 * the time every record counts as touched at least (a replica that
	 * becomes head cannot know when its records were last touched).
	 */
	uint32_t reclaim_at;
	uint64_t reclaim_next_ns;
	uint64_t touched_floor_ns;
	struct rp_waiter *waiters;	/* cfg->wait_queue slots */
	uint32_t nwaiting;

	struct rp_store_stats stats;
	struct rp_shard_chain *chain;	/* NULL: a store of one, no chain */
	int wake_fd;			/* eventfd: configuration or dump (-1 in tests) */
	_Atomic int dump_req;		/* write the flows to cfg->dump_path */

	unsigned int nout;
	struct rp_out_slot out[RP_BATCH];
	struct mmsghdr out_msgs[RP_BATCH];
	struct iovec out_iov[RP_BATCH];
};

/* shard.c */
int rp_shard_init(struct rp_shard *s, unsigned int id, const struct rp_store_cfg *cfg,
		  struct rp_sessions *sessions, uint32_t flow_cap);
void rp_shard_free(struct rp_shard *s);
/* Queues an encoded message for `to`. */
void rp_shard_emit_raw(struct rp_shard *s, const struct rp_sockaddr *to, const void *msg,
		       size_t len);
/*
 * Removes f from the shard's table and keeps true what points into it: the
 * waiter of the record that moves into f's place, and a whole copy being
 * streamed to a successor.  A record a waiter points to is never deleted.
 */
void rp_shard_flow_delete(struct rp_shard *s, struct rp_flow *f);
/* Sends what handlers queued; in unit tests (fd < 0) only clears. */
void rp_shard_flush(struct rp_shard *s);
/* Writes the shard's flows to cfg->dump_path.<shard id> (docs/STORE.md). */
int rp_shard_dump(struct rp_shard *s);
/* The shard thread: serves s->fd until stop_fd is readable. */
int rp_shard_run(struct rp_shard *s, int stop_fd);
uint64_t rp_now_ns(void);

/* lease.c: the store's protocol logic, free of sockets and clocks. */
void rp_store_handle(struct rp_shard *s, const void *dgram, size_t len,
		     const struct rp_sockaddr *from, uint64_t now_ns);
void rp_store_tick(struct rp_shard *s, uint64_t now_ns);
/* A shard that stops being its chain's head forgets the requests it queued. */
void rp_store_drop_waiters(struct rp_shard *s);
/* How often a shard with waiting requests, or orphans to look for, must tick. */
uint64_t rp_store_tick_ns(const struct rp_store_cfg *cfg);
/* The shard must tick: requests wait, or it reclaims orphans. */
bool rp_store_wants_tick(const struct rp_shard *s);

/* stats.c */
void rp_stats_sum(struct rp_store_stats *sum, struct rp_shard *const *shards, unsigned int n);
void rp_stats_print(FILE *f, const struct rp_store_stats *st, uint64_t flows,
		    unsigned int sessions_live);

#endif /* __RP_STORE_H */
