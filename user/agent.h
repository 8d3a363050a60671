/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* rp-load internals: the switch agent. */
#ifndef __RP_AGENT_H
#define __RP_AGENT_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "redplane/addr.h"
#include "redplane/dp.h"
#include "redplane/store_list.h"

#define RP_LOAD_VERSION		"0.1.0"
#define RP_MAX_IFACES		8
#define RP_HB_NONCES		16	/* heartbeats in flight we can time */
#define RP_RING_FRAMES		4096	/* retransmit ring: UMEM frames */
#define RP_FRAME_SIZE		2048
#define RP_STATE_DIR		"/var/lib/redplane"	/* --state-dir's default */
_Static_assert(RP_FRAME_MAX <= RP_FRAME_SIZE, "a request fits in a UMEM frame");

struct rp_load_cfg {
	uint64_t timeouts[__RP_TO_MAX];	/* --timeout, ns */
	uint32_t lookup_rate;		/* --lookup-rate: lookups per second, 0 = no limit */
	char ifnames[RP_MAX_IFACES][IF_NAMESIZE];
	unsigned int nifaces;
	const struct rp_app *app;
	struct rp_store_chain chains[RP_MAX_STORES];	/* the first replica: the head at start */
	unsigned int nstores;		/* chains */
	uint16_t switch_id;
	uint16_t port;			/* 0: any */
	uint32_t lease_ms;		/* heartbeat pace until a store says otherwise */
	uint32_t rto_us;		/* 0: adaptive from heartbeat round trips */
	uint32_t max_tries;
	uint32_t max_flows;
	bool bounded;			/* --mode bounded */
	uint32_t snapshot_ms;		/* --snapshot-ms: the period of bounded mode */
	bool mac;			/* --mac-key */
	uint64_t mac_key[2];
	/* --state-dir: what outlives a restart (the apps' save hooks); NULL: RP_STATE_DIR */
	const char *state_dir;
	/* the applications' own settings (user/app.h) */
	struct rp_nat_cfg nat;
	struct rp_fw_cfg fw;
	struct rp_lb_cfg lb;
	struct rp_sketch_cfg sketch;
	bool verbose;
};

struct hb_sent {
	uint32_t nonce;
	uint64_t sent_ns;
};

/* The session with one store chain, and where the chain's head is. */
struct rp_store_sess {
	uint32_t epoch;
	uint32_t epoch_nonce;		/* nonce of the ack that brought the epoch */
	uint64_t expiry_ns;		/* as written to the data plane */
	uint32_t lease_ms;		/* what the store grants */
	uint64_t last_ack_ns;		/* from any replica (the tail answers) */
	bool lapsed;
	bool probing;			/* heartbeats go to every replica */
	bool hint_moved;		/* a hint moved the head while probing */
	unsigned int head;		/* index of the head among the replicas */
	uint32_t hint_version;		/* newest head hint followed */
	struct hb_sent sent[RP_HB_NONCES];
};

/* One read of the flows map, every value copied under its lock (expiry.c). */
struct rp_flow_read {
	struct rp_flow_key *keys;
	struct rp_dp_flow *vals;
	size_t n, room;
};

/* One write copy in the retransmit ring; its frame is UMEM frame `index`. */
struct rp_wslot {
	bool used;
	bool in_flight;			/* handed to AF_XDP TX, not yet completed */
	uint32_t len;
	uint32_t seq;
	uint32_t epoch;
	uint16_t gen;
	uint32_t tries;
	uint64_t first_ns;
	uint64_t due_ns;		/* next look at it */
	struct rp_flow_key key;
};

struct redplane;
struct ring_buffer;
struct rp_snap;
struct xsk_umem;
struct xsk_socket;

struct rp_agent {
	struct rp_load_cfg cfg;
	struct redplane *skel;
	int ifindex[RP_MAX_IFACES];
	unsigned int attached;
	unsigned int pinned;
	int lock_fd;
	int sock;			/* UDP: heartbeats out, their acks and not_head
					 * rejects in; writes resent to a new head */
	struct in_addr src_addr;
	uint16_t src_port;
	char store_ifname[IF_NAMESIZE];
	struct rp_store_sess sess[RP_MAX_STORES];
	uint32_t nonce;
	uint64_t next_hb_ns;
	uint64_t coarse_tick_ns;	/* resolution of the data plane's clock */
	/* round trip, for the adaptive RTO (RFC 6298) */
	double srtt_us, rttvar_us;
	/* retransmit ring */
	struct ring_buffer *rb;
	void *umem_area;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	struct rp_wslot *slots;
	uint32_t nslots_used;
	uint32_t tx_in_flight;		/* frames handed to AF_XDP TX, not completed */
	uint32_t free_hint;
	uint64_t copy_delay_sum_ns, copy_delay_n;
	/* bounded mode's snapshots (snapshot.c) */
	struct rp_snap *snap;
	uint64_t next_snap_ns;
	/* expiry (expiry.c) */
	struct rp_flow_read expiry_read;
	uint64_t next_sweep_ns;
	uint64_t stats[__RP_AG_STAT_MAX];
};

/* heartbeat.c */
int rp_hb_init(struct rp_agent *a);
void rp_hb_tick(struct rp_agent *a, uint64_t now);
void rp_hb_receive(struct rp_agent *a, uint64_t now);
const struct sockaddr_in *rp_hb_head(const struct rp_agent *a, unsigned int store);

/* hb_msg.c: what a datagram to rp-load's socket is, free of sockets and maps */
enum rp_hb_kind {
	RP_HB_IGNORE,		/* not from a replica, malformed, another switch's, unused */
	RP_HB_ACK,		/* a heartbeat ack */
	RP_HB_NOT_HEAD,		/* a REJECT not_head, with a hint to the head */
	RP_HB_REVOKE,		/* bounded mode: a revoke to answer with the state */
};

struct rp_msg_view;
/* Decodes a datagram from `from` into v; *chain and *replica: who sent it. */
enum rp_hb_kind rp_hb_parse(const struct rp_load_cfg *cfg, const void *buf, size_t len,
			    const struct sockaddr_in *from, struct rp_msg_view *v,
			    unsigned int *chain, unsigned int *replica);
/*
 * A not_head reject's hint for chain c: the replica it names as the head,
 * its configuration version then taken into s->hint_version; or -EINVAL (no
 * hint), -EALREADY (no head, or an older version), -ENOENT (no replica of c).
 */
int rp_hb_hint(const struct rp_store_chain *c, struct rp_store_sess *s,
	       const struct rp_msg_view *v);

/* retransmit.c */
int rp_rtx_init(struct rp_agent *a);
void rp_rtx_free(struct rp_agent *a);
void rp_rtx_poll(struct rp_agent *a, uint64_t now);
uint64_t rp_rtx_rto_ns(const struct rp_agent *a);
int rp_rtx_epoll_fd(const struct rp_agent *a);

/* snapshot.c */
int rp_snap_init(struct rp_agent *a);
void rp_snap_free(struct rp_agent *a);
void rp_snap_tick(struct rp_agent *a, uint64_t now);
void rp_snap_revoke(struct rp_agent *a, const struct rp_msg_view *rv,
		    const struct sockaddr_in *from);

/* expiry.c */
/* How often a flow's seen_ns moves on: a fraction of the shortest timeout. */
uint64_t rp_expiry_touch_ns(const struct rp_load_cfg *cfg);
void rp_expiry_init(struct rp_agent *a);
void rp_expiry_free(struct rp_agent *a);
void rp_expiry_tick(struct rp_agent *a, uint64_t now);
int rp_flows_read(int fd, struct rp_flow_read *r);
void rp_flows_read_free(struct rp_flow_read *r);

/* status.c */
int rp_status(const char *ifname);
/* A map rp-load pinned for ifname, or -1 after saying why. */
int rp_open_pin(const char *ifname, const char *map);

uint64_t rp_mono_ns(void);
void rp_agent_publish(struct rp_agent *a);

#endif /* __RP_AGENT_H */
