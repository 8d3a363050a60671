/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Fixtures for the XDP programs run through bpf_prog_test_run_opts: a
 * private network namespace with the switch's three links, the data plane
 * loaded (not attached) with a known configuration, and packet builders.
 */
#ifndef __XDP_FIXTURE_H
#define __XDP_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redplane/codec.h"
#include "redplane/dp.h"

#define FX_SWITCH_ID	7
#define FX_EPOCH	5
#define FX_PORT_BASE	20000
#define FX_PORT_SPAN	100
#define FX_RP_PORT	4790
#define FX_STORE_PORT	4791

/* Addresses, in host order, and the MACs of the switch and its neighbours. */
#define FX_CLIENT	0x0a010002u	/* 10.1.0.2, inside */
#define FX_CLIENT2	0x0a010003u	/* 10.1.0.3, inside */
#define FX_SERVER	0xc6336402u	/* 198.51.100.2, outside */
#define FX_EXT		0xcb007101u	/* 203.0.113.1, the NAT's address */
#define FX_SWITCH	0xc0000201u	/* 192.0.2.1, toward the store */
#define FX_STORE	0xc000020au	/* 192.0.2.10: chain 0's head */
#define FX_STRANGER	0xc000020bu	/* 192.0.2.11: not a store */
#define FX_STORE_B	0xc000020cu	/* 192.0.2.12: chain 0's second replica */
#define FX_CHAIN1	0xc0000214u	/* 192.0.2.20: chain 1's head (fx_setup_chains) */
#define FX_CHAIN1_B	0xc0000215u	/* 192.0.2.21: chain 1's second replica */

/* The firewall (fx_setup_fw): inside 10.1.0.0/24, rules tcp:22, udp:53 */
#define FX_FW_IDLE_MS	30000
/* The load balancer (fx_setup_lb): a virtual address, three backends, one draining */
#define FX_VIP		0xcb007150u	/* 203.0.113.80 */
#define FX_VIP_PORT	80
#define FX_BACKEND_PORT	8080
#define FX_NBACKENDS	3
extern const uint32_t fx_backends[FX_NBACKENDS + 1];	/* 198.51.100.2-4, then .5 draining */
/* The sketch (fx_setup_sketch): sketch id 1, a heavy hitter from this many packets */
#define FX_SKETCH_THRESHOLD	3

extern const uint8_t fx_mac_int[6], fx_mac_ext[6], fx_mac_sto[6];
extern const uint8_t fx_mac_client[6], fx_mac_server[6], fx_mac_store[6];

struct redplane;

struct fx {
	struct redplane *skel;
	int ifindex_int, ifindex_ext, ifindex_sto;
	int prog_root;
	int map_flows, map_sessions, map_stats;
};

extern struct fx fx;

/*
 * Skip the test when not root; else build the namespace and load, with one
 * store chain (FX_STORE, FX_STORE_B), or two (and FX_CHAIN1, FX_CHAIN1_B).
 * Every chain's session is live under FX_EPOCH, its first replica the head.
 */
void fx_setup(void);
void fx_setup_chains(void);
/* One chain, with the firewall or the load balancer as the application. */
void fx_setup_fw(void);
void fx_setup_lb(void);
/* The counters in bounded mode, in linearizable mode; the sketch (bounded) */
void fx_setup_counter(void);
void fx_setup_counter_lin(void);
void fx_setup_sketch(void);
/* The NAT with a MAC key (fx_mac_key) in the data plane and in this process's codec */
void fx_setup_mac(void);
extern const uint64_t fx_mac_key[2];
void fx_teardown(void);

/*
 * Skip the test when not root; else only the namespace and its links, for a
 * test that loads programs of its own (and sets fx.prog_root and the map fds).
 */
void fx_netns(void);

/* Moves chain `store`'s head, as rp-load does, the rest of its session kept. */
void fx_set_head(uint32_t store, uint32_t head);

struct fx_out {
	uint32_t verdict;
	uint8_t data[4096];
	uint32_t len;
};

/* Runs the root program on a frame that arrived on `ifindex`. */
void fx_run(const void *frame, size_t len, int ifindex, struct fx_out *out);

/* Frame builders (checksums correct), returning the length. */
enum { FX_SYN = 0x02, FX_ACK = 0x10, FX_FIN = 0x01, FX_RST = 0x04, FX_PSH = 0x08 };
size_t fx_tcp(uint8_t *buf, const uint8_t *dmac, const uint8_t *smac, uint32_t saddr,
	      uint16_t sport, uint32_t daddr, uint16_t dport, uint8_t flags, size_t payload);
/* csum: false sends a UDP checksum of 0 ("none"). */
size_t fx_udp(uint8_t *buf, const uint8_t *dmac, const uint8_t *smac, uint32_t saddr,
	      uint16_t sport, uint32_t daddr, uint16_t dport, size_t payload, bool csum);
/* A store's message to the switch, `inner` piggybacked. */
size_t fx_store_msg(uint8_t *buf, uint32_t from, const struct rp_msg_view *v);
/* The same around the mlen bytes already at buf + 42, whatever they are. */
size_t fx_store_raw(uint8_t *buf, uint32_t from, size_t mlen);
/*
 * A store's message of `app` about `key` under FX_EPOCH: a GRANT or MIGRATE
 * carries `state`, a REJECT `reason`; `inner` rides along.
 */
size_t fx_msg(uint8_t *buf, uint32_t from, uint8_t app, uint8_t type, const struct rp_flow_key *key,
	      uint32_t seq, const void *state, uint8_t state_len, uint8_t reason, const void *inner,
	      size_t inner_len);

/* The frame as the switch forwards it: the given MACs, TTL - 1. */
void fx_forwarded(uint8_t *frame, const uint8_t *dmac, const uint8_t *smac);
/* The verdict, and the output bytes with valid checksums. */
void fx_expect(const struct fx_out *out, uint32_t verdict, const uint8_t *want, size_t len);

/* Runs `pkt`: forwarded at once toward dmac from smac, unchanged but for TTL and MACs. */
void fx_expect_passes(const uint8_t *pkt, size_t len, int ifindex, const uint8_t *dmac,
		      const uint8_t *smac);

/* The Internet checksum of len bytes (RFC 1071), as it goes in a header. */
uint16_t fx_csum(const void *p, size_t len);

/* Valid IPv4 header and TCP/UDP checksums (a UDP checksum of 0 counts as valid). */
bool fx_csum_ok(const uint8_t *frame, size_t len);

/* The request inside a frame sent to FX_STORE (or `head`); fails the test unless it is one. */
void fx_decode_request(const struct fx_out *out, struct rp_msg_view *v);
void fx_decode_request_to(const struct fx_out *out, uint32_t head, struct rp_msg_view *v);

uint64_t fx_stat(enum rp_dp_stat s);
bool fx_flow(const struct rp_flow_key *key, struct rp_dp_flow *f);
void fx_put_flow(const struct rp_flow_key *key, const struct rp_dp_flow *f);
void fx_key(struct rp_flow_key *k, uint8_t proto, uint32_t saddr, uint16_t sport,
	    uint32_t daddr, uint16_t dport);

#endif /* __XDP_FIXTURE_H */
