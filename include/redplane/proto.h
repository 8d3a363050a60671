/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * redplane wire protocol: the single source of truth.
 *
 * Every message between a switch (XDP data plane or its agent) and rp-store
 * is one UDP datagram:
 *
 *   struct rp_msg (136 bytes, fixed)  |  piggybacked packet (pkt_len bytes)
 *
 * All multi-byte fields are in network byte order.  The layout is fixed so
 * that an XDP program or a P4 parser can reach every field at a constant
 * offset.  docs/PROTOCOL.md specifies the semantics; this header is included
 * by bpf/, user/, store/, the tests, and is checked field by field against
 * the P4 declarations.
 */
#ifndef __REDPLANE_PROTO_H
#define __REDPLANE_PROTO_H

#include <linux/types.h>

#define RP_VERSION		2	/* 2: the keyed MAC field */

/* Default UDP port of rp-store. */
#define RP_DEFAULT_PORT		4791

/* Largest flow state value a message carries (bytes). */
#define RP_STATE_MAX		64
/* Largest piggybacked packet: an Ethernet frame with one VLAN tag, no FCS. */
#define RP_PKT_MAX		1518

enum rp_msg_type {
	RP_MSG_LEASE_REQ	= 1,	/* switch -> store: ask for a flow's lease */
	RP_MSG_GRANT		= 2,	/* store -> switch: new flow, lease granted */
	RP_MSG_MIGRATE		= 3,	/* store -> switch: lease + existing state */
	RP_MSG_HEARTBEAT	= 4,	/* switch -> store: renew the session */
	RP_MSG_HEARTBEAT_ACK	= 5,	/* store -> switch: session renewed */
	RP_MSG_WRITE		= 6,	/* switch -> store: linearizable write */
	RP_MSG_SNAPSHOT		= 7,	/* switch -> store: bounded-mode snapshot */
	RP_MSG_ACK		= 8,	/* store -> switch: write/snapshot committed */
	RP_MSG_REVOKE		= 9,	/* store -> switch: give the flow up */
	RP_MSG_REVOKE_ACK	= 10,	/* switch -> store: flow given up */
	RP_MSG_REJECT		= 11,	/* store -> switch: request refused */
	RP_MSG_EXPIRE		= 12,	/* switch -> store: the flow it held is idle: delete it */
	RP_MSG_EXPIRE_ACK	= 13,	/* store -> switch: the flow is deleted */
	__RP_MSG_MAX,
};

/* Application ids.  The app id namespaces flow keys in the store. */
enum rp_app_id {
	RP_APP_NONE	= 0,	/* only in HEARTBEAT and HEARTBEAT_ACK */
	RP_APP_NAT	= 1,
	RP_APP_FW	= 2,
	RP_APP_LB	= 3,
	RP_APP_COUNTER	= 4,
	RP_APP_SKETCH	= 5,
	__RP_APP_MAX,
};

/* rp_hdr.flags */
#define RP_F_STATE	0x01	/* state[0..state_len) is meaningful */
#define RP_F_PKT	0x02	/* a packet of pkt_len bytes follows */
#define RP_F_ALL	(RP_F_STATE | RP_F_PKT)

/*
 * rp_hdr.gen in a HEARTBEAT: the session named by epoch ran out at the
 * switch, which wants a new one, never that one back (docs/PROTOCOL.md)
 */
#define RP_HB_LAPSED	1

/* rp_hdr.reason, in REJECT only (0 elsewhere) */
enum rp_reject_reason {
	RP_REJ_NONE		= 0,
	RP_REJ_NO_SESSION	= 1,	/* sender has no live session: heartbeat first */
	RP_REJ_NOT_OWNER	= 2,	/* write/revoke-ack from a switch not owning the flow */
	RP_REJ_STALE		= 3,	/* seq older than the committed one; seq = committed */
	RP_REJ_BUSY		= 4,	/* another request already waits for this flow */
	RP_REJ_QUEUE_FULL	= 5,	/* the shard's wait queue is full */
	RP_REJ_TIMEOUT		= 6,	/* owner neither acked the revoke nor lapsed */
	RP_REJ_TABLE_FULL	= 7,	/* --max-flows reached */
	RP_REJ_NO_FLOW		= 8,	/* lookup-only request for a flow never created */
	RP_REJ_CONFLICT		= 9,	/* a seq written twice with two states */
	RP_REJ_NOT_HEAD		= 10,	/* this replica is not its chain's head: the
					 * state is a struct rp_head_hint */
	__RP_REJ_MAX,
};

/*
 * The state of a REJECT not_head: where the replica that refused believes
 * its chain's head is (addr 0: it knows of no head), under which version of
 * the chain's configuration.  A switch follows the hint with the newest
 * version it has seen.
 */
struct rp_head_hint {
	__be32 addr;		/* the head's client address (IPv4) */
	__be16 port;		/* its UDP port */
	__u16 pad;		/* zero */
	__be32 version;		/* configuration version, grows with every change */
} __attribute__((packed));

_Static_assert(sizeof(struct rp_head_hint) == 12, "rp_head_hint size");

/* rp_flow_key.family */
#define RP_AF_INET	4
#define RP_AF_INET6	6

union rp_addr {
	__be32 v4;
	__u8 v6[16];
};

/*
 * A flow as the application defines it (an IPv4 or IPv6 5-tuple).  For IPv4
 * the 12 bytes after v4 in each address are zero, as is pad: the key is
 * compared and hashed as 40 raw bytes.
 */
struct rp_flow_key {
	__u8 family;		/* RP_AF_INET or RP_AF_INET6; 0 in HEARTBEAT */
	__u8 proto;		/* IPPROTO_* */
	__be16 sport;
	__be16 dport;
	__u16 pad;		/* must be zero */
	union rp_addr saddr;
	union rp_addr daddr;
} __attribute__((packed));

struct rp_hdr {
	__u8 version;		/* RP_VERSION */
	__u8 type;		/* enum rp_msg_type */
	__u8 app_id;		/* enum rp_app_id */
	__u8 flags;		/* RP_F_* */
	__be16 switch_id;	/* requester / owner; never 0 */
	__u8 reason;		/* enum rp_reject_reason */
	__u8 state_len;		/* bytes, <= RP_STATE_MAX */
	__be32 seq;		/* write seq / committed seq / heartbeat nonce */
	__be32 epoch;		/* session epoch the lease belongs to */
	__be32 lease_ms;	/* session lease period, milliseconds */
	__be16 pkt_len;		/* bytes of piggybacked packet, <= RP_PKT_MAX */
	__be16 gen;		/* lease generation: which holding of the flow */
} __attribute__((packed));

struct rp_msg {
	struct rp_hdr hdr;
	struct rp_flow_key key;
	__u8 state[RP_STATE_MAX];
	/*
	 * SipHash-2-4 of the 128 bytes above under the deployment's key
	 * (redplane/siphash.h, docs/SECURITY.md), little-endian; 0 when no
	 * key is configured.  The piggybacked packet is not covered.
	 */
	__u8 mac[8];
	/* followed by hdr.pkt_len bytes of packet */
} __attribute__((packed));

/* The bytes the MAC covers: header, key and state. */
#define RP_MAC_COVERED	__builtin_offsetof(struct rp_msg, mac)

#define RP_MSG_LEN	sizeof(struct rp_msg)
#define RP_DGRAM_MAX	(RP_MSG_LEN + RP_PKT_MAX)

_Static_assert(sizeof(union rp_addr) == 16, "rp_addr size");
_Static_assert(sizeof(struct rp_flow_key) == 40, "rp_flow_key size");
_Static_assert(sizeof(struct rp_hdr) == 24, "rp_hdr size");
_Static_assert(sizeof(struct rp_msg) == 136, "rp_msg size");
_Static_assert(RP_DGRAM_MAX == 1654, "largest datagram");
_Static_assert(__builtin_offsetof(struct rp_msg, mac) == 128, "mac offset");
_Static_assert(__builtin_offsetof(struct rp_hdr, app_id) == 2,
	       "app_id offset is used by the shard steering filter");
_Static_assert(__builtin_offsetof(struct rp_hdr, seq) == 8, "seq offset");
_Static_assert(__builtin_offsetof(struct rp_msg, key) == 24, "key offset");
_Static_assert(__builtin_offsetof(struct rp_msg, state) == 64, "state offset");
_Static_assert(RP_STATE_MAX <= 255, "state_len is one byte");
_Static_assert(RP_PKT_MAX <= 65535, "pkt_len is two bytes");

/* An IPv4 key; addresses and ports in network order.  For BPF and userspace. */
/* Host to network order, for headers shared by BPF, user space and the tests. */
static inline __u16 rp_be16(__u16 v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap16(v);
#else
	return v;
#endif
}

static inline __u32 rp_be32(__u32 v)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

static inline void rp_key_v4(struct rp_flow_key *k, __u8 proto, __be32 saddr, __be16 sport,
			     __be32 daddr, __be16 dport)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = RP_AF_INET;
	k->proto = proto;
	k->sport = sport;
	k->dport = dport;
	k->saddr.v4 = saddr;
	k->daddr.v4 = daddr;
}

/* Lease generations are 16-bit and wrap the same way. */
static inline int rp_gen_after(__u16 a, __u16 b)
{
	return (__s16)(a - b) > 0;
}

/*
 * Sequence numbers are 32-bit and wrap.  a is after b when the signed
 * distance from b to a is positive (RFC 1982 serial number arithmetic):
 * valid while the two are less than 2^31 apart.
 */
static inline int rp_seq_after(__u32 a, __u32 b)
{
	return (__s32)(a - b) > 0;
}

static inline int rp_seq_before(__u32 a, __u32 b)
{
	return rp_seq_after(b, a);
}

#endif /* __REDPLANE_PROTO_H */
