/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Chain replication (docs/CHAIN.md).  The replicas of one chain are ordered
 * by a configuration that ZooKeeper holds (store/coord.c); the first member
 * is the head, which orders every change, the last is the tail, whose copy
 * is the committed one.  Each shard thread of a replica has its own links:
 * a TCP connection to the same shard of its successor (entries go down) and
 * one from its predecessor (acknowledgements go up), so a shard's stream is
 * ordered and no two threads share a link.
 */
#ifndef __RP_CHAIN_H
#define __RP_CHAIN_H

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "redplane/proto.h"
#include "redplane/steer.h"

#define RP_CHAIN_MAX		8	/* replicas in one chain */
#define RP_CHAIN_PENDING	4096	/* entries per shard sent down, not yet committed */

struct rp_chain_member {
	uint32_t id;			/* --replica-id */
	uint64_t inc;			/* incarnation: random per process start */
	struct sockaddr_in client;	/* where switches send requests */
	struct sockaddr_in peer;	/* chain links: shard i listens on port + i */
};

struct rp_chain_conf {
	uint32_t version;		/* 0: none yet */
	bool fenced;			/* out of touch with ZooKeeper: serve nothing */
	unsigned int n;
	struct rp_chain_member m[RP_CHAIN_MAX];
};

/* What the coordination thread publishes and every shard reads. */
struct rp_chain {
	const char *name;		/* --chain */
	const char *zk_hosts;		/* --zk */
	uint32_t timeout_ms;		/* --failure-timeout-ms */
	struct rp_chain_member self;
	unsigned int shards;
	uint64_t name_hash;		/* links of two chains never meet */

	pthread_mutex_t lock;
	struct rp_chain_conf conf;	/* under lock */
	_Atomic uint32_t gen;		/* +1 at every publish */
	_Atomic int fatal;		/* the ZooKeeper session expired: exit */
	int wake_fd[RP_SHARDS_MAX];	/* each shard's wake-up eventfd */
};

/* Link frames: a header, then len bytes.  Multi-byte fields big-endian. */
enum rp_link_type {
	RP_LINK_HELLO = 1,	/* down: who I am (predecessor -> successor) */
	RP_LINK_STATUS,		/* up: what I have */
	RP_LINK_RESET,		/* down: drop everything, a full copy follows */
	RP_LINK_ENTRY,		/* down: one change (idx 0: part of a copy) */
	RP_LINK_COPY_END,	/* down: the copy is whole, as of idx */
	RP_LINK_ACK,		/* up: everything up to idx is at the tail */
};

enum rp_entry_kind {
	RP_ENT_FLOW = 1,
	RP_ENT_SESSION,
	RP_ENT_DELETE,		/* a flow deleted: expired, or an orphan reclaimed */
};

struct rp_link_hdr {
	__be32 len;		/* bytes after the header */
	__u8 type;		/* enum rp_link_type */
	__u8 kind;		/* ENTRY: enum rp_entry_kind */
	__be16 reply_len;	/* ENTRY: bytes of the reply at the end, 0: none */
	__be64 idx;
} __attribute__((packed));

struct rp_link_hello {
	__be64 chain;		/* hash of the chain's name */
	__be64 inc;
	__be32 id;
	__be32 shards;
	__be32 shard;
	__be32 version;
} __attribute__((packed));

struct rp_link_status {
	__be64 lineage;		/* 0: no whole copy, send one */
	__be64 idx;
} __attribute__((packed));

struct rp_link_addr {
	__be32 addr;
	__be16 port;
	__u16 pad;
} __attribute__((packed));

struct rp_link_flow {
	__u8 app_id;
	__u8 state_len;
	__be16 owner;
	__be32 epoch;
	__be32 seq;
	__be16 gen;
	__u16 pad;
	struct rp_flow_key key;
	__u8 state[RP_STATE_MAX];
} __attribute__((packed));

struct rp_link_delete {
	__u8 app_id;
	__u8 pad[3];
	struct rp_flow_key key;
} __attribute__((packed));

struct rp_link_session {
	__be16 switch_id;
	__u16 pad;
	__be32 epoch;
	struct rp_link_addr addr;
} __attribute__((packed));

#define RP_LINK_FRAME_MAX						\
	(sizeof(struct rp_link_hdr) + sizeof(struct rp_link_flow) +	\
	 sizeof(struct rp_link_addr) + RP_DGRAM_MAX)

_Static_assert(sizeof(struct rp_link_hdr) == 16, "link header");
_Static_assert(sizeof(struct rp_link_flow) == 120, "link flow record");
_Static_assert(sizeof(struct rp_link_delete) == 44, "link delete record");
_Static_assert(RP_LINK_FRAME_MAX == 1798, "largest link frame");

/* Bytes queued for a TCP peer: [off, len) not yet written. */
struct rp_obuf {
	uint8_t *p;
	size_t off, len, cap;
};

struct rp_link {
	int fd;			/* -1: no connection */
	bool connecting;	/* a non-blocking connect in progress */
	bool ready;		/* the handshake is done */
	uint32_t peer_id;
	uint64_t peer_inc;
	struct rp_obuf out;
	uint8_t *in;		/* partial frame being read */
	size_t in_len;
};

struct rp_pending {
	uint64_t idx;
	uint32_t len;
	uint8_t frame[RP_LINK_FRAME_MAX];
};

/* One shard's view of the chain and its links. */
struct rp_shard_chain {
	struct rp_chain *ch;
	uint32_t gen_seen;
	struct rp_chain_conf conf;	/* this shard's copy */
	int pos;			/* in conf, -1: not a member */
	bool head, tail;
	int listen_fd;
	struct rp_link up, down;
	uint64_t next_connect_ns;

	uint64_t lineage;		/* which history this copy is of; 0: incomplete */
	uint64_t in_lineage;		/* the lineage of a copy being received */
	uint64_t copy_start_ns;		/* when its RESET came */
	uint64_t idx;			/* newest entry applied here */
	uint64_t acked_up;		/* newest idx acknowledged to the predecessor */
	uint64_t acked_down;		/* newest idx the successor acknowledged */

	/* for the statistics thread */
	_Atomic uint32_t g_role;	/* RP_ROLE_* */
	_Atomic uint32_t g_version;
	_Atomic uint32_t g_whole;	/* holds a whole copy */
	_Atomic uint64_t g_idx;

	/* entries sent down and not yet known to be at the tail */
	struct rp_pending *pend;
	uint32_t pend_first, pend_count;

	/* a full copy being streamed to the successor */
	bool copying;
	uint32_t copy_flow;		/* next flow record to send */
	uint32_t copy_session;		/* next session record (shard 0) */
};

enum rp_chain_role {
	RP_ROLE_NONE,		/* not a member (yet), or fenced */
	RP_ROLE_HEAD,		/* head of a longer chain */
	RP_ROLE_MIDDLE,
	RP_ROLE_TAIL,
	RP_ROLE_ALONE,		/* head and tail: a chain of one */
};

struct rp_shard;
struct rp_flow;
struct rp_msg_view;
struct rp_sockaddr;
struct pollfd;

/* chain.c */
int rp_chain_shard_init(struct rp_shard *s, struct rp_chain *ch);
void rp_chain_shard_free(struct rp_shard *s);
/* Fills pfd from index 0; returns how many it used. */
int rp_chain_poll_fds(struct rp_shard *s, struct pollfd *pfd, uint64_t now);
void rp_chain_poll_done(struct rp_shard *s, const struct pollfd *pfd, int n, uint64_t now);
/* Sends what the round queued on the links. */
void rp_chain_flush(struct rp_shard *s);
/* How long the shard may sleep (-1: until something happens). */
int rp_chain_poll_timeout_ms(const struct rp_shard *s);
/* This shard is its chain's head and serves switches. */
bool rp_chain_serves(const struct rp_shard *s);
/* Room for a request's entries at the head (false: refuse it, busy). */
bool rp_chain_has_room(const struct rp_shard *s);
/*
 * Head: hands a change down the chain; the reply (may be NULL) goes to the
 * switch when the tail has the change.
 */
void rp_chain_put_flow(struct rp_shard *s, const struct rp_flow *f,
		       const struct rp_sockaddr *to, const struct rp_msg_view *reply);
/* Head: a deleted flow, like rp_chain_put_flow. */
void rp_chain_put_delete(struct rp_shard *s, uint8_t app_id, const struct rp_flow_key *key,
			 const struct rp_sockaddr *to, const struct rp_msg_view *reply);
/*
 * The table is about to move record `from` into record `to`'s place (a
 * delete): a whole copy being streamed must not miss it.
 */
void rp_chain_flow_moving(struct rp_shard *s, uint32_t from, uint32_t to);
void rp_chain_put_session(struct rp_shard *s, uint16_t switch_id, uint32_t epoch,
			  const struct rp_sockaddr *addr, const struct rp_sockaddr *to,
			  const struct rp_msg_view *reply);
/*
 * The whole frames at the start of what link l (up: from the predecessor,
 * down: from the successor) received, each handled in turn.  Returns the
 * bytes they took, or -1 when the link failed (a bad frame closes it).
 */
long rp_chain_link_input(struct rp_shard *s, struct rp_link *l, const uint8_t *buf, size_t len);
/* Not the head: REJECT not_head with where the head is. */
void rp_chain_not_head(struct rp_shard *s, const struct rp_msg_view *v,
		       const struct rp_sockaddr *from);

/* coord.c: membership through ZooKeeper. */
int rp_coord_start(struct rp_chain *ch);
void rp_coord_stop(struct rp_chain *ch);

#endif /* __RP_CHAIN_H */
