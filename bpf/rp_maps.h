/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Maps and load-time settings of the data plane (one object, one copy). */
#ifndef __RP_MAPS_H
#define __RP_MAPS_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "redplane/dp.h"

/* Load-time settings: rp-load sets them through the skeleton's rodata. */
const volatile __u16 cfg_switch_id = 1;
const volatile __u8 cfg_app = RP_APP_NAT;
const volatile __be32 cfg_src_addr;	/* this switch's address toward the stores */
const volatile __be16 cfg_src_port;	/* rp-load's UDP port: requests leave from it */
const volatile __u32 cfg_nstores = 1;	/* store chains; flows hash to one */
/*
 * The consistency mode (rp-load --mode): 0, linearizable, every change a
 * write released by its ACK; 1, bounded inconsistency, changes kept here and
 * snapshotted by rp-load every --snapshot-ms.
 */
const volatile __u8 cfg_bounded;
/*
 * The deployment's MAC key (rp-load --mac-key, docs/SECURITY.md): when
 * cfg_mac, every request carries SipHash-2-4 of its header under it, and a
 * store message whose MAC is not right is dropped (drop_bad_mac).
 */
const volatile __u8 cfg_mac;
const volatile __u64 cfg_mac_key[2];
/* every replica of every chain: the sources store messages may come from */
const volatile __u32 cfg_nreplicas;
const volatile struct rp_dp_replica cfg_replicas[RP_MAX_STORES * RP_MAX_REPLICAS];

/*
 * Packets that only read a flow copy it without its lock, checked by its
 * version (rp_flow_peek): right where loads are not reordered with loads,
 * as on x86-64; rp-load clears it elsewhere, and every packet then takes
 * the lock.
 */
const volatile __u8 cfg_peek = 1;

/*
 * A flow's seen_ns is written at most once per this (ns): rp-load sets it
 * to a fraction of the shortest timeout, so that idleness is judged to
 * within that fraction and a busy flow costs one write per period, not one
 * per packet.
 */
const volatile __u64 cfg_touch_ns = 1000000000ull;
/*
 * How long a lookup the store answered "no such flow" is not asked again
 * (ns; rp-load --timeout negative=): the negative cache that keeps a flood
 * of packets for unknown flows off the store.
 */
const volatile __u64 cfg_negative_ns = 1000000000ull;
/*
 * Lookups (lease requests without a proposal: packets of flows this switch
 * does not know) each CPU may send: one per cfg_lookup_ns, in bursts of up
 * to cfg_lookup_burst_ns of credit (rp-load --lookup-rate; 0: no limit).
 * With the negative cache, what bounds the store's load under a flood of
 * packets for unknown flows.
 */
const volatile __u64 cfg_lookup_ns;
const volatile __u64 cfg_lookup_burst_ns;

/*
 * Benchmarks only (xdp-bench): bpf_prog_test_run_opts runs every repeat on
 * the frame the previous one rewrote, so the root program first restores
 * these 64 bytes.  Zero in production, where the verifier prunes the copy.
 */
#define RP_BENCH_FRAME	64
const volatile __u8 cfg_bench_reset;
const volatile __u64 cfg_bench_frame[RP_BENCH_FRAME / 8];

/* Per-flow state, ownership and sequence numbers; sized by --max-flows. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct rp_flow_key);
	__type(value, struct rp_dp_flow);
} flows SEC(".maps");

/*
 * The session with each store chain and the chain's head: rp-load writes,
 * every packet reads.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RP_MAX_STORES);
	__type(key, __u32);
	__type(value, struct rp_dp_session);
} sessions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, __RP_DP_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

/* rp-load's own counters, kept here so that they are pinned with the rest. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, __RP_AG_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} agent_stats SEC(".maps");

/*
 * Each CPU's lookup budget, as the generic cell rate algorithm keeps it:
 * the time its next lookup is due (bpf_ktime_get_coarse_ns).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lookup_due SEC(".maps");

/*
 * Datagrams whose first fragment passed, for their later fragments (which
 * carry no ports): least recently used go first.  Fragments of one
 * datagram come within milliseconds; Linux's reassembly gives up after 30
 * seconds (ipfrag_time), and so does this.
 */
#define RP_FRAG_MAX_NS	30000000000ull
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct rp_frag_key);
	__type(value, struct rp_frag_val);
} frags SEC(".maps");

/* What this switch runs, for `rp-load --status`: rp-load writes it once. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rp_dp_info);
} info SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, __RP_PROG_MAX);
	__type(key, __u32);
	__type(value, __u32);
} progs SEC(".maps");

/* Copies of write requests for the agent's retransmit ring. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20);
} wcopies SEC(".maps");

/* What one program of a tail-call chain hands the next (per CPU). */
struct rp_scratch {
	__u16 l3_off;		/* IPv4 header, from the frame's start */
	__u16 l4_off;		/* TCP, UDP or ICMP header */
	/* an ICMP error: the packet it quotes, its IPv4 and first 8 bytes */
	__u16 in_l3_off;
	__u16 in_l4_off;
	/* TCP and UDP: the ports; an ICMP echo: its identifier as a port (rp_pkt) */
	__be16 sport;
	__be16 dport;
	__u8 icmp;		/* RP_ICMP_* */
	__u8 frag_first;	/* the first fragment of a datagram: note it (rp_frag_note) */
	__u8 vlan;		/* an 802.1Q tag was present */
	/* the request the emitter wraps the packet in */
	__u8 type;
	__u8 flags;		/* RP_F_STATE when state goes along */
	__u8 state_len;
	__u16 store;
	__u16 gen;
	__u32 seq;
	__u32 epoch;
	struct rp_flow_key key;
	__u8 state[RP_STATE_MAX];
	/*
	 * A flow value being built (too big for the stack of a chain), as
	 * bytes: a per-CPU map's value may not hold a bpf_spin_lock
	 * (rp_scratch_flow() gives it its type).
	 */
	__u8 flow[sizeof(struct rp_dp_flow)] __attribute__((aligned(8)));
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rp_scratch);
} scratch SEC(".maps");

#endif /* __RP_MAPS_H */
