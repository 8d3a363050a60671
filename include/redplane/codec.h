/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Userspace codec for the wire protocol of proto.h: validation of every
 * received datagram, and encoding of replies.  BPF programs parse the same
 * layout directly; this is for the agent, the store, tools and tests.
 */
#ifndef __REDPLANE_CODEC_H
#define __REDPLANE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redplane/proto.h"

/* Why a datagram was refused; the receiver counts each and drops it. */
enum rp_decode_err {
	RP_E_OK = 0,
	RP_E_TRUNCATED,	/* shorter than struct rp_msg */
	RP_E_OVERSIZED,	/* longer than RP_DGRAM_MAX, or pkt_len > RP_PKT_MAX */
	RP_E_VERSION,	/* version != RP_VERSION */
	RP_E_TYPE,	/* unknown message type */
	RP_E_APP,	/* unknown app id, or app id where none belongs */
	RP_E_FLAGS,	/* unknown flag, or flag inconsistent with lengths */
	RP_E_LEN,	/* pkt_len disagrees with the datagram, state_len too big */
	RP_E_KEY,	/* bad family, nonzero padding or unused address bytes */
	RP_E_SWITCH,	/* switch id 0 */
	RP_E_REASON,	/* reason set outside a REJECT, or unknown in one */
	RP_E_DIRECTION,	/* valid message the receiver's role never accepts */
	RP_E_MAC,	/* a MAC key is set and the message's MAC is not its own */
	__RP_E_MAX,
};

/* A decoded message: header fields in host order, pointers into the buffer. */
struct rp_msg_view {
	uint8_t type;
	uint8_t app_id;
	uint8_t flags;
	uint8_t reason;
	uint16_t switch_id;
	uint8_t state_len;
	uint32_t seq;
	uint32_t epoch;
	uint32_t lease_ms;
	uint16_t pkt_len;
	uint16_t gen;
	struct rp_flow_key key;	/* wire bytes, network order */
	const uint8_t *state;	/* RP_STATE_MAX bytes, state_len meaningful */
	const uint8_t *pkt;	/* pkt_len bytes */
	uint64_t mac;		/* as on the wire; encode seals over it when a key is set */
};

/*
 * The deployment's MAC key (docs/SECURITY.md), for this process: from now
 * on rp_msg_encode() seals every message and rp_msg_decode() refuses one
 * whose MAC is not right (-RP_E_MAC).  NULL: no key, MACs neither written
 * nor checked.
 */
void rp_msg_set_key(const uint64_t key[2]);
/* The MAC of a message (its first RP_MAC_COVERED bytes) under `key`. */
uint64_t rp_msg_mac(const void *msg, const uint64_t key[2]);
/*
 * A key file: 32 hexadecimal digits (128 bits), blank lines and '#'
 * comments allowed.  0, or -EINVAL/-errno after saying why (prog: for
 * messages).
 */
int rp_mac_key_read(const char *prog, const char *path, uint64_t key[2]);

/* Returns 0, or -RP_E_* naming the first rule the datagram breaks. */
int rp_msg_decode(const void *buf, size_t len, struct rp_msg_view *v);

/*
 * Writes v as a datagram into buf (cap bytes).  state and pkt may be NULL
 * when their lengths are 0.  Returns the datagram length or -EINVAL when
 * v would not decode (so a sender cannot emit what a receiver refuses),
 * -ENOSPC when cap is too small.
 */
int rp_msg_encode(void *buf, size_t cap, const struct rp_msg_view *v);

/* Messages a switch sends (store accepts), and those a store sends. */
bool rp_msg_from_switch(uint8_t type);

/* A key is compared and hashed as its 40 wire bytes (rp_key_v4: proto.h). */
bool rp_key_eq(const struct rp_flow_key *a, const struct rp_flow_key *b);

/*
 * "PROTO SADDR:SPORT DADDR:DPORT" ([IPV6]:PORT for IPv6) into buf; returns
 * buf.  RP_KEYSTRLEN bytes always suffice.
 */
#define RP_KEYSTRLEN	112
char *rp_key_str(const struct rp_flow_key *k, char *buf, size_t size);

const char *rp_msg_type_name(unsigned int type);
const char *rp_reject_name(unsigned int reason);
const char *rp_decode_err_name(unsigned int err);

#endif /* __REDPLANE_CODEC_H */
