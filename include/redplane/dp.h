/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The XDP data plane's maps and records, shared by bpf/, rp-load and the
 * tests: the layout of every map value the agent or a test reads or writes.
 */
#ifndef __REDPLANE_DP_H
#define __REDPLANE_DP_H

#include <linux/bpf.h>
#include <linux/types.h>

#include "redplane/proto.h"
/* the applications' states and counters */
#include "redplane/counter.h"
#include "redplane/fw.h"
#include "redplane/lb.h"
#include "redplane/nat.h"
#include "redplane/sketch.h"

#define RP_MAX_STORES		4	/* store chains a switch talks to */
#define RP_MAX_REPLICAS		4	/* replicas of one chain */
#define RP_PIN_ROOT		"/sys/fs/bpf/redplane"

/* Slots of the program array: applications at their app id, then the core. */
enum rp_prog_slot {
	RP_PROG_ROOT = 0,	/* parse and dispatch (RP_APP_NONE is never an app) */
	/* 1 .. __RP_APP_MAX - 1: the application programs */
	RP_PROG_EMIT = 8,	/* wraps the packet in a request to the store */
	RP_PROG_STORE_RX = 9,	/* grants, ACKs, rejects, revokes */
	__RP_PROG_MAX = 16,
};

_Static_assert((int)__RP_APP_MAX <= (int)RP_PROG_EMIT, "app slots fit before the core's");

/*
 * A datagram whose first fragment passed (the frags map, bpf/rp_maps.h):
 * IPv4 source, destination, protocol and identification, as it came.
 */
struct rp_frag_key {
	__be32 saddr;
	__be32 daddr;
	__be16 id;
	__u8 proto;
	__u8 pad;
};

/* What its later fragments get: the first's address rewrite, if any. */
struct rp_frag_val {
	__u64 seen_ns;		/* bpf_ktime_get_coarse_ns() of the first fragment */
	__be32 addr;		/* the new source (src) or destination address */
	__u8 rewrite;		/* 0: forwarded as they are */
	__u8 src;
	__u16 pad;
};

/* What kind of ICMP a packet is, for the apps (struct rp_scratch.icmp) */
#define RP_ICMP_NONE	0	/* TCP or UDP */
#define RP_ICMP_ECHO	1	/* echo request or reply: its identifier is its port */
#define RP_ICMP_ERROR	2	/* destination unreachable, time exceeded, parameter
				 * problem, quoting a TCP or UDP packet */

/* rp_dp_flow.flags: local to the switch, never replicated */
#define RP_DPF_REV_PENDING	0x01	/* NAT, LB: the reverse key is not yet in the store */
#define RP_DPF_REV_KNOWN	0x02	/* LB: the reverse key is noted here */
/*
 * Expiry (docs/DATAPLANE.md, "Expiry"): the holding was given up here as
 * idle, and the store is asked to delete the flow (EXPIRING), which it did
 * (EXPIRED: the store has no such flow).
 */
#define RP_DPF_EXPIRING		0x04
#define RP_DPF_EXPIRED		0x08
/* the store said it has no such flow (a lookup's REJECT no_flow): a negative entry */
#define RP_DPF_NO_FLOW		0x10
/* the store has no such flow: what is here is no proposal for it */
#define RP_DPF_GONE		(RP_DPF_EXPIRED | RP_DPF_NO_FLOW)
/* what a new holding of the flow starts without */
#define RP_DPF_LIFE		(RP_DPF_EXPIRING | RP_DPF_GONE)

/*
 * Value of the flows map; the key is a struct rp_flow_key.  Every change of
 * a flow (its lease, seq, acked and the app's state) is made under `lock`,
 * in place, by any CPU; rp-load reads it with BPF_F_LOCK (docs/DATAPLANE.md,
 * "Concurrency").
 */
struct rp_dp_flow {
	__u8 state[RP_STATE_MAX];
	/*
	 * The key this element holds.  rp-load deletes expired entries, and
	 * the map hands a deleted element to the next new key at once: a
	 * program that found the element before the delete checks, under the
	 * lock (or in its lock-free copy), that it is still its key's
	 * (rp_flow_is).
	 */
	struct rp_flow_key key;
	/*
	 * When the lease was installed, and when it was given up (revoked,
	 * refused or expired), by bpf_ktime_get_ns(): written on those rare
	 * paths only, they show that two switches never held a flow at once.
	 */
	__u64 since_ns;
	__u64 until_ns;
	/*
	 * The last packet of the flow, bpf_ktime_get_coarse_ns(), written at
	 * most once per cfg_touch_ns and without the lock (any CPU's "now" is
	 * right): what rp-load's sweep judges idleness by.
	 */
	__u64 seen_ns;
	__u32 epoch;		/* session epoch of the lease; 0 = not held */
	__u32 gone_epoch;	/* epoch of the holding last given up (revoked, expired) */
	__u32 seq;		/* newest sequence number written */
	__u32 acked;		/* newest sequence number the store acknowledged */
	__u16 gen;		/* the store's lease generation of this holding */
	__u16 store;		/* index of the store chain that owns the flow */
	__u8 state_len;
	__u8 flags;		/* RP_DPF_* */
	/*
	 * RP_TCP_* flags the flow's packets carried, both directions, local
	 * (rp_touch): with the app's state they give the TCP phase, and the
	 * phase the timeout.  Set without the lock: a bit lost to a race is
	 * set again by the next packet that carries it.
	 */
	__u8 tcp_seen;
	__u8 pad;
	/*
	 * Odd while a CPU changes the flow under `lock`, even otherwise: a
	 * packet that only reads copies what it needs without the lock and
	 * takes the copy if the version did not move (bpf/rp_helpers.h,
	 * rp_flow_peek).
	 */
	__u32 version;
	struct bpf_spin_lock lock;
};

_Static_assert(sizeof(struct rp_dp_flow) == 160, "rp_dp_flow size");

/*
 * rp-load's sweep gives up an idle flow through the data plane (the flow's
 * lock is the data plane's): it runs rp_expire with BPF_PROG_TEST_RUN on
 * this record as the packet, and reads the result back from it.
 */
struct rp_dp_expire {
	struct rp_flow_key key;
	__u64 idle_before_ns;	/* in: idle if seen_ns is at or before this */
	__u32 epoch;		/* out: the holding given up (or still being deleted) */
	__u32 seq;
	__u16 gen;
	__u16 store;
	__u32 op;		/* in: RP_EXPIRE_OP_* */
};

enum rp_expire_op {
	RP_EXPIRE_OP_GIVE_UP = 0,	/* a held flow idle since idle_before_ns */
	/*
	 * delete an entry that holds nothing and is not being deleted at the
	 * store, untouched since idle_before_ns (a given-up holding, a
	 * negative entry, a proposal no grant answered)
	 */
	RP_EXPIRE_OP_REAP = 1,
};

_Static_assert(sizeof(struct rp_dp_expire) >= 14, "an XDP test run needs an Ethernet header's room");

/* rp_expire's verdicts (its return value) */
enum rp_expire_verdict {
	RP_EXPIRE_KEPT = 0,	/* not idle, not held here, or a write not acked */
	RP_EXPIRE_GAVE_UP = 1,	/* given up now: send RP_MSG_EXPIRE */
	RP_EXPIRE_PENDING = 2,	/* given up before, the store has not said: send again */
	RP_EXPIRE_DONE = 3,	/* given up without a store to tell (no replication) */
	RP_EXPIRE_REAPED = 4,	/* RP_EXPIRE_OP_REAP: deleted from the map */
};

/*
 * The store chain a flow belongs to, among n: the data plane's and the
 * agent's choice must agree.
 */
static inline __u16 rp_store_index(const struct rp_flow_key *k, __u32 n)
{
	__u32 w[sizeof(*k) / 4], h = 0;

	if (n <= 1)
		return 0;
	__builtin_memcpy(w, k, sizeof(w));
#ifdef __clang__
#pragma unroll
#endif
	for (int i = 0; i < (int)(sizeof(*k) / 4); i++)
		h = (h ^ w[i]) * 0x9E3779B1u;
	return (__u16)((h ^ (h >> 16)) % n);
}

/* A store replica's address, in network order. */
struct rp_dp_store {
	__be32 addr;
	__be16 port;
	__u16 pad;
};

/*
 * The switch's session with one store chain, written by rp-load.  The head
 * moves when a replica says it is elsewhere: a request built while rp-load
 * rewrites it may go astray, and is lost like any other (a write is sent
 * again, a lease request asked again by the flow's next packet).
 */
struct rp_dp_session {
	/*
	 * Read without a lock by every packet: expiry first, then epoch; a new
	 * epoch goes in with expiry 0 before its expiry does (user/heartbeat.c),
	 * so no packet sees an old epoch with a new expiry.
	 */
	__u64 expiry_ns;	/* bpf_ktime_get_ns() (CLOCK_MONOTONIC) */
	__u32 epoch;		/* 0 = no session */
	__u32 pad;
	struct rp_dp_store head;	/* where the chain's requests go */
};

/* What a switch runs, for `rp-load --status` (the info map, written by rp-load). */
struct rp_dp_info {
	__u16 switch_id;
	__u8 app;		/* RP_APP_* */
	__u8 pad;
};

/* A replica messages may come from, and the chain it belongs to. */
struct rp_dp_replica {
	__be32 addr;
	__be16 port;
	__u16 store;		/* index of its chain */
};

/*
 * Ring buffer record: a copy of a write request as it went out (the whole
 * frame, outer headers included), for the agent's retransmit ring.
 */
#define RP_FRAME_MAX	(14 + 20 + 8 + RP_DGRAM_MAX)	/* eth + ip + udp + message */
/* room for a packet of up to 2048 bytes: what the verifier can be shown */
#define RP_WCOPY_ROOM	(14 + 20 + 8 + RP_MSG_LEN + 2048)
struct rp_dp_wcopy {
	__u64 sent_ns;		/* bpf_ktime_get_ns() when it went out */
	__u32 len;		/* bytes of frame */
	__u32 ifindex;		/* where it went out */
	__u32 seq;
	__u32 epoch;
	__u16 gen;
	__u16 pad;
	struct rp_flow_key key;
	__u8 frame[RP_WCOPY_ROOM];	/* len <= RP_FRAME_MAX of it used */
};

/*
 * Per-CPU counters of the data plane, one per path and drop reason.  The
 * names are what `rp-load --status` prints.
 */
#define RP_DP_STATS(X)							\
	X(rx_packets)		/* every packet the root program saw */	\
	X(pass_not_ipv4)	/* ARP, IPv6, ...: to the kernel */	\
	X(pass_not_app)		/* IPv4 the app does not handle */	\
	X(drop_truncated)	/* headers cut short */			\
	X(drop_fragment)	/* a later fragment whose first was not seen here */ \
	X(frag_first)		/* first fragments: to the app, their datagram noted */ \
	X(frag_forwarded)	/* later fragments forwarded as their first was */ \
	X(icmp_echo)		/* ICMP echoes: to the app, keyed by identifier */ \
	X(icmp_error)		/* ICMP errors quoting TCP or UDP: to the app */ \
	X(drop_icmp_error)	/* an ICMP error no flow here or at the store owns */ \
	X(icmp_translated)	/* ICMP errors translated (NAT) or let through (fw) */ \
	X(ip_options)		/* IPv4 with options: handled, kept */	\
	X(fast_path)		/* leased, read-only: forwarded at once */ \
	X(lease_req)		/* packet sent to the store in a lease request */ \
	X(write_req)		/* output packet sent in a write request */ \
	X(drop_no_session)	/* no live session: nothing can be leased */ \
	X(emit_too_big)		/* packet too big to ride in a request */ \
	X(emit_no_route)	/* no route or neighbour to the store */ \
	X(emit_error)		/* headroom could not be grown */	\
	X(wcopy_lost)		/* retransmit copy not queued (ring full) */ \
	X(rx_store)		/* protocol messages from a store */	\
	X(drop_bad_source)	/* protocol port, but not from a store */ \
	X(drop_malformed_msg)	/* protocol message breaking a rule */	\
	X(drop_bad_mac)		/* --mac-key: a message whose MAC is not right */ \
	X(hb_ack_pass)		/* heartbeat acks handed to rp-load */	\
	X(grant)		/* lease granted, flow installed */	\
	X(migrate)		/* lease with stored state, installed */ \
	X(regrant)		/* grant of the holding already here: kept */ \
	X(drop_stale_grant)	/* grant for another session epoch */	\
	X(drop_table_full)	/* flows map full */			\
	X(ack)			/* write acknowledged, packet released */ \
	X(drop_stale_ack)	/* duplicate or older ACK: not released */ \
	X(drop_ack_ahead)	/* ACK of a seq this switch never wrote */ \
	X(drop_ack_not_owner)	/* ACK for a flow not held */		\
	X(reject)		/* REJECT from the store: packet dropped */ \
	X(reject_lost_lease)	/* REJECT not_owner or stale: lease dropped */ \
	X(reject_not_head)	/* REJECT not_head: lease kept, to rp-load */ \
	X(revoke)		/* REVOKE: lease given up, acked */	\
	X(revoke_unknown)	/* REVOKE for a flow not held: acked */	\
	X(drop_bad_state)	/* a held flow whose state the app does not know */ \
	X(drop_unknown_flow)	/* no replication: a lookup of a flow never made */ \
	X(expired)		/* idle flows given up, the store asked to delete them */ \
	X(expire_acked)		/* deletes the store confirmed */	\
	X(drop_stale_expire_ack) /* an EXPIRE_ACK of no delete under way */ \
	X(drop_expiring)	/* a packet of a flow being deleted */	\
	X(no_flow)		/* lookups the store answered "no such flow": noted */ \
	X(drop_negative)	/* a lookup not asked again: the store said no flow */ \
	X(drop_lookup_rate)	/* a lookup over this CPU's --lookup-rate budget */ \
	RP_NAT_STATS(X)							\
	RP_FW_STATS(X)							\
	RP_LB_STATS(X)							\
	RP_COUNTER_STATS(X)						\
	RP_SKETCH_STATS(X)						\
	X(revoke_to_agent)	/* bounded mode: REVOKE of a held flow to rp-load, which\
				   hands the newest state over with the ack */ \
	X(fwd_redirect)		/* forwarded by bpf_redirect */		\
	X(fwd_pass)		/* forwarded by the kernel (no neighbour, VLAN, ...) */ \
	X(fwd_drop)		/* no route (blackhole, unreachable) */	\
	X(drop_ttl)		/* TTL expired */			\
	X(drop_tail_call)	/* a tail call failed */

enum rp_dp_stat {
#define X(name) RP_DP_##name,
	RP_DP_STATS(X)
#undef X
	__RP_DP_STAT_MAX,
};

/* Counters rp-load keeps (retransmit ring, session) in the agent_stats map. */
#define RP_AGENT_STATS(X)						\
	X(heartbeats_sent)						\
	X(heartbeat_acks)						\
	X(session_new)		/* new epochs: every lease was lost */	\
	X(session_lapsed)	/* no ack in time: the data plane stopped */ \
	X(acks_after_lapse)	/* acks renewing a session that ran out \
				   here: refused, a new epoch is asked for */ \
	X(hb_probes)		/* heartbeats sent to every replica of a \
				   chain whose head did not answer */	\
	X(not_head_rejects)	/* REJECT not_head from a replica */	\
	X(head_changes)		/* a chain's head moved: by a hint, or to \
				   the replica that ended its silence */ \
	X(head_hints_unknown)	/* a hint naming no replica of the chain */ \
	X(writes_tracked)	/* write copies taken into the ring */	\
	X(writes_acked)		/* copies freed by an ACK */		\
	X(writes_abandoned)	/* copies freed: lease lost or flow gone */ \
	X(retransmits)		/* copies sent again through AF_XDP */	\
	X(retransmits_udp)	/* copies sent again from the UDP socket, \
				   to a head that moved since */	\
	X(gave_up)		/* copies dropped after the last try */	\
	X(ring_full)		/* copies not taken: the ring was full */ \
	X(outstanding)		/* copies in the ring now (a gauge) */	\
	X(rtt_us)		/* smoothed store round trip (a gauge) */ \
	X(copy_delay_us)	/* mean wait of a write copy for rp-load: what a \
				   first send through the agent would add */ \
	X(snapshot_rounds)	/* bounded mode: periods snapshotted */	\
	X(snapshot_flows)	/* held flows in the last round (a gauge) */ \
	X(snapshots_sent)	/* SNAPSHOTs of changed or unacked flows */ \
	X(snapshots_unsent)	/* not sent (socket buffer full): next round */ \
	X(snapshot_errors)	/* rounds that could not read the flows */ \
	X(revoke_handovers)	/* revokes acked with the flow's final state */ \
	X(revoke_acks)		/* revoke acks rp-load sent */	\
	X(sweeps)		/* expiry sweeps of the flows map */	\
	X(flows_entries)	/* entries in the map at the last sweep (a gauge) */ \
	X(flows_held)		/* of them held (a gauge) */		\
	X(expires_sent)		/* EXPIREs sent (first tries and again) */ \
	X(expiry_lookups)	/* a reverse key's forward key asked about */ \
	X(entries_reaped)	/* entries holding nothing deleted */	\
	X(expiry_errors)	/* rp_expire runs or EXPIREs that failed */

enum rp_agent_stat {
#define X(name) RP_AG_##name,
	RP_AGENT_STATS(X)
#undef X
	__RP_AG_STAT_MAX,
};

#endif /* __REDPLANE_DP_H */
