// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The redplane data plane: a root program that parses and dispatches to the
 * application by tail call, the emitter that wraps a packet in a request to
 * the store, and the handler of the store's messages (grants, ACKs, rejects,
 * revokes).  The applications live in app_*.h, each one program at its app
 * id's slot of `progs`, written against rp_app.h; rp-load loads the one it
 * runs (docs/APPS.md).
 *
 * Built twice: as is, and with -DRP_NO_REPLICATION, the same applications
 * keeping their state locally with no store (the benchmark's baseline).
 */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "rp_helpers.h"
#include "rp_maps.h"
#include "rp_parse.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * ICMP the apps take (docs/DATAPLANE.md, "ICMP"): echoes, keyed by their
 * identifier (a request's as its source port, a reply's as its destination
 * port, so that a reply's key is the request's reverse), and errors quoting
 * a TCP or UDP packet (its IPv4 header, no options, and the 8 bytes with
 * the ports), whose flow is the quoted packet's.  0, or -1 for the kernel.
 */
static __always_inline int rp_parse_icmp(struct rp_cursor *c, struct rp_scratch *sc, void *data)
{
	struct rp_icmphdr *ih = c->pos;
	struct iphdr *iip;
	struct udphdr *il4;

	if ((void *)(ih + 1) > c->end)
		return -1;
	sc->l4_off = (__u16)((void *)ih - data);
	if (ih->type == RP_ICMPT_ECHO || ih->type == RP_ICMPT_ECHOREPLY) {
		sc->icmp = RP_ICMP_ECHO;
		sc->sport = ih->type == RP_ICMPT_ECHO ? ih->id : 0;
		sc->dport = ih->type == RP_ICMPT_ECHO ? 0 : ih->id;
		rp_stat(RP_DP_icmp_echo);
		return 0;
	}
	if (ih->type != RP_ICMPT_DEST_UNREACH && ih->type != RP_ICMPT_TIME_EXCEEDED &&
	    ih->type != RP_ICMPT_PARAMETERPROB)
		return -1;
	iip = (void *)(ih + 1);
	il4 = (void *)(iip + 1);
	if ((void *)(il4 + 1) > c->end || iip->ihl != 5 ||
	    (iip->protocol != IPPROTO_TCP && iip->protocol != IPPROTO_UDP) ||
	    (iip->frag_off & bpf_htons(IP_OFFSET)))
		return -1;
	sc->icmp = RP_ICMP_ERROR;
	sc->in_l3_off = (__u16)((void *)iip - data);
	sc->in_l4_off = (__u16)((void *)il4 - data);
	sc->sport = 0;
	sc->dport = 0;
	rp_stat(RP_DP_icmp_error);
	return 0;
}

/*
 * A TCP or UDP fragment after the first (no ports to key it by): forwarded
 * as its datagram's first fragment was, with the same address rewrite
 * (rp_frag_note), and only then; a fragment that comes before its first,
 * or whose first was dropped, is dropped: forwarding it untranslated would
 * leak the inside.  Only the IPv4 header changes: the TCP or UDP checksum
 * is in the first fragment.
 */
static __always_inline int rp_later_fragment(struct xdp_md *ctx, struct ethhdr *eth,
					     struct iphdr *ip, int vlan)
{
	struct rp_frag_key k = {
		.saddr = ip->saddr, .daddr = ip->daddr, .id = ip->id, .proto = ip->protocol,
	};
	struct rp_frag_val *v = bpf_map_lookup_elem(&frags, &k);

	if (!v || bpf_ktime_get_coarse_ns() - v->seen_ns > RP_FRAG_MAX_NS) {
		rp_stat(RP_DP_drop_fragment);
		return XDP_DROP;
	}
	if (v->rewrite) {
		__be32 *a = v->src ? &ip->saddr : &ip->daddr;

		ip->check = rp_csum_update32(ip->check, *a, v->addr);
		*a = v->addr;
	}
	rp_stat(RP_DP_frag_forwarded);
	return rp_forward(ctx, eth, ip, vlan);
}

/*
 * Verdicts for what the data plane does not handle (docs/DATAPLANE.md):
 * non-IPv4 goes to the kernel; IPv4 other than TCP, UDP and the ICMP the
 * apps take goes to the kernel; TCP and UDP fragments are dropped, since a
 * fragment without ports cannot be keyed and forwarding it untranslated
 * would leak the inside; IPv4 options are kept and skipped.
 */
SEC("xdp")
int rp_root(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct rp_cursor c = { .pos = data, .end = (void *)(long)ctx->data_end };
	struct rp_scratch *sc;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	int proto, vlan;

	if (cfg_bench_reset) {
		__u64 *w = data;

		if (data + RP_BENCH_FRAME > c.end)
			return XDP_DROP;
#pragma unroll
		for (int i = 0; i < RP_BENCH_FRAME / 8; i++)
			w[i] = cfg_bench_frame[i];
	}
	rp_stat(RP_DP_rx_packets);
	proto = rp_parse_eth(&c, &eth, &vlan);
	if (proto < 0) {
		rp_stat(RP_DP_drop_truncated);
		return XDP_DROP;
	}
	if (proto != ETH_P_IP) {
		rp_stat(RP_DP_pass_not_ipv4);
		return XDP_PASS;
	}
	proto = rp_parse_ipv4(&c, &ip);
	if (proto < 0 || ip->ihl < 5) {
		rp_stat(RP_DP_drop_truncated);
		return XDP_DROP;
	}
	if ((proto != IPPROTO_TCP && proto != IPPROTO_UDP && proto != IPPROTO_ICMP) ||
	    (proto == IPPROTO_ICMP && (ip->frag_off & bpf_htons(IP_MF | IP_OFFSET)))) {
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	if (ip->frag_off & bpf_htons(IP_OFFSET))
		return rp_later_fragment(ctx, eth, ip, vlan);
	/* options are carried along: the apps rewrite only addresses and ports */
	c.pos = (void *)ip + ip->ihl * 4;
	if (ip->ihl > 5)
		rp_stat(RP_DP_ip_options);
	if (proto == IPPROTO_ICMP) {
		sc = rp_scratch();
		if (!sc)
			return XDP_DROP;
		if (rp_parse_icmp(&c, sc, data)) {
			rp_stat(RP_DP_pass_not_app);
			return XDP_PASS;
		}
		sc->l3_off = (__u16)((void *)ip - data);
		sc->vlan = (__u8)vlan;
		bpf_tail_call(ctx, &progs, cfg_app);
		rp_stat(RP_DP_drop_tail_call);
		return XDP_DROP;
	}
	if (c.pos + sizeof(struct tcphdr) > c.end && proto == IPPROTO_TCP) {
		rp_stat(RP_DP_drop_truncated);
		return XDP_DROP;
	}
	if (rp_parse_udp(&c, &udp) < 0) {
		rp_stat(RP_DP_drop_truncated);
		return XDP_DROP;
	}

#ifndef RP_NO_REPLICATION
	/* the protocol port on this switch's address: a store's message */
	if (proto == IPPROTO_UDP && ip->daddr == cfg_src_addr && udp->dest == cfg_src_port) {
		bpf_tail_call(ctx, &progs, RP_PROG_STORE_RX);
		rp_stat(RP_DP_drop_tail_call);
		return XDP_DROP;
	}
#endif

	sc = rp_scratch();
	if (!sc)
		return XDP_DROP;
	sc->l3_off = (__u16)((void *)ip - data);
	sc->l4_off = (__u16)((void *)udp - data);
	sc->sport = udp->source;
	sc->dport = udp->dest;
	sc->icmp = RP_ICMP_NONE;
	sc->frag_first = !!(ip->frag_off & bpf_htons(IP_MF));
	if (sc->frag_first)
		rp_stat(RP_DP_frag_first);
	sc->vlan = (__u8)vlan;
	bpf_tail_call(ctx, &progs, cfg_app);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
}

#ifndef RP_NO_REPLICATION

/*
 * Copies the request frame (outer headers and message, then the packet) into
 * a ring record: a constant length, then the packet's.  6.1's verifier does
 * not carry a "not 0" test over to the register passed as the size, so the
 * size is built to be 1 or more by construction: ((n - 1) & mask) + 1.
 */
static __always_inline int rp_copy_frame(struct xdp_md *ctx, __u8 *frame, __u32 pkt_len)
{
	int err = bpf_xdp_load_bytes(ctx, 0, frame, RP_ENCAP_LEN);
	__u32 n;

	if (err || pkt_len == 0)
		return err;
	/* == pkt_len (1 to RP_PKT_MAX); at most 2048, which the record has room for */
	n = ((pkt_len - 1) & 0x7ff) + 1;
	return bpf_xdp_load_bytes(ctx, RP_ENCAP_LEN, frame + RP_ENCAP_LEN, n);
}

/*
 * Wraps the whole frame in a request to the head of the flow's store chain,
 * as the scratch describes it: Ethernet, IPv4, UDP, struct rp_msg, then the
 * frame.  A write also goes to rp-load's retransmit ring.
 */
SEC("xdp")
int rp_emit(struct xdp_md *ctx)
{
	struct rp_scratch *sc = rp_scratch();
	struct bpf_fib_lookup fib = {};
	struct rp_dp_session *sess;
	union {
		__u64 word;
		struct rp_dp_store store;
	} head;
	void *data, *data_end;
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	struct rp_msg *msg;
	__be32 head_addr;
	__be16 head_port;
	__u32 pkt_len;
	int rc;

	if (!sc)
		return XDP_DROP;
	sess = rp_session(sc->store);
	if (!sess)
		return XDP_DROP;
	/*
	 * Read once, address and port in one load: the route and the headers
	 * agree, and name one replica, even while rp-load moves the head.
	 */
	head.word = RP_READ_ONCE(*(__u64 *)&sess->head);
	head_addr = head.store.addr;
	head_port = head.store.port;
	pkt_len = ctx->data_end - ctx->data;
	if (pkt_len > RP_PKT_MAX) {
		rp_stat(RP_DP_emit_too_big);
		return XDP_DROP;
	}

	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_UDP;
	fib.ipv4_src = cfg_src_addr;
	fib.ipv4_dst = head_addr;
	fib.ifindex = ctx->ingress_ifindex;
	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		rp_stat(RP_DP_emit_no_route);
		return XDP_DROP;
	}

	if (bpf_xdp_adjust_head(ctx, -(int)RP_ENCAP_LEN)) {
		rp_stat(RP_DP_emit_error);
		return XDP_DROP;
	}
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	ip = (void *)(eth + 1);
	udp = (void *)(ip + 1);
	msg = (void *)(udp + 1);
	if ((void *)(msg + 1) > data_end)
		return XDP_DROP;

	__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons((__u16)(sizeof(*ip) + sizeof(*udp) + sizeof(*msg) + pkt_len));
	ip->id = 0;
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->saddr = cfg_src_addr;
	ip->daddr = head_addr;
	ip->check = rp_ip_csum(ip);

	udp->source = cfg_src_port;
	udp->dest = head_port;
	udp->len = bpf_htons((__u16)(sizeof(*udp) + sizeof(*msg) + pkt_len));
	udp->check = 0;		/* optional over IPv4 */

	msg->hdr.version = RP_VERSION;
	msg->hdr.type = sc->type;
	msg->hdr.app_id = cfg_app;
	msg->hdr.flags = (sc->flags & RP_F_STATE) | (pkt_len ? RP_F_PKT : 0);
	msg->hdr.switch_id = bpf_htons(cfg_switch_id);
	msg->hdr.reason = 0;
	msg->hdr.state_len = (sc->flags & RP_F_STATE) ? sc->state_len : 0;
	msg->hdr.seq = bpf_htonl(sc->seq);
	msg->hdr.epoch = bpf_htonl(sc->epoch);
	msg->hdr.lease_ms = 0;
	msg->hdr.pkt_len = bpf_htons((__u16)pkt_len);
	msg->hdr.gen = bpf_htons(sc->gen);
	__builtin_memcpy(&msg->key, &sc->key, sizeof(msg->key));
	__builtin_memcpy(msg->state, sc->state, RP_STATE_MAX);
	rp_msg_seal(msg);

	if (sc->type == RP_MSG_WRITE) {
		/* asked before reserving: a reserved record counts as queued */
		__u64 queued = bpf_ringbuf_query(&wcopies, BPF_RB_AVAIL_DATA);
		struct rp_dp_wcopy *rec = bpf_ringbuf_reserve(&wcopies, sizeof(*rec), 0);

		if (rec) {
			rec->sent_ns = bpf_ktime_get_ns();
			rec->len = RP_ENCAP_LEN + pkt_len;
			rec->ifindex = fib.ifindex;
			rec->seq = sc->seq;
			rec->epoch = sc->epoch;
			rec->gen = sc->gen;
			__builtin_memcpy(&rec->key, &sc->key, sizeof(rec->key));
			if (rp_copy_frame(ctx, rec->frame, pkt_len) == 0) {
				/*
				 * Wake rp-load only when it had drained the ring:
				 * one wake-up per batch, not per write.
				 */
				bpf_ringbuf_submit(rec, queued ? BPF_RB_NO_WAKEUP
							       : BPF_RB_FORCE_WAKEUP);
			} else {
				bpf_ringbuf_discard(rec, BPF_RB_NO_WAKEUP);
				rp_stat(RP_DP_wcopy_lost);
			}
		} else {
			rp_stat(RP_DP_wcopy_lost);
		}
		rp_stat(RP_DP_write_req);
	} else {
		rp_stat(RP_DP_lease_req);
	}
	return bpf_redirect(fib.ifindex, 0);
}

/*
 * Strips a store message's outer headers: the echoed frame is left.  Its
 * destination MAC becomes the outer one (this interface's own), so that a
 * frame the fast path hands to the kernel (no neighbour entry yet) is taken
 * as addressed to this host, not dropped as another host's.
 */
static __always_inline int rp_decap(struct xdp_md *ctx)
{
	__u8 mac[ETH_ALEN];
	struct ethhdr *eth = (void *)(long)ctx->data;

	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return -1;
	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	if (bpf_xdp_adjust_head(ctx, (int)RP_ENCAP_LEN))
		return -1;
	eth = (void *)(long)ctx->data;
	if ((void *)(eth + 1) > (void *)(long)ctx->data_end)
		return -1;
	__builtin_memcpy(eth->h_dest, mac, ETH_ALEN);
	return 0;
}

/* Forwards the frame a store echoed (already processed by the app). */
static __always_inline int rp_release(struct xdp_md *ctx)
{
	struct rp_cursor c;
	struct ethhdr *eth;
	struct iphdr *ip;
	int proto, vlan;

	if (rp_decap(ctx))
		return XDP_DROP;
	c.pos = (void *)(long)ctx->data;
	c.end = (void *)(long)ctx->data_end;
	proto = rp_parse_eth(&c, &eth, &vlan);
	if (proto != ETH_P_IP || rp_parse_ipv4(&c, &ip) < 0)
		return XDP_DROP;
	return rp_forward(ctx, eth, ip, vlan);
}

/* Turns a REVOKE into its REVOKE_ACK in place and sends it back. */
static __always_inline int rp_answer_revoke(struct ethhdr *eth, struct iphdr *ip,
					    struct udphdr *udp, struct rp_msg *msg)
{
	__u8 mac[ETH_ALEN];
	__be32 addr;
	__be16 port;

	__builtin_memcpy(mac, eth->h_dest, ETH_ALEN);
	__builtin_memcpy(eth->h_dest, eth->h_source, ETH_ALEN);
	__builtin_memcpy(eth->h_source, mac, ETH_ALEN);
	addr = ip->saddr;
	ip->saddr = ip->daddr;
	ip->daddr = addr;
	ip->ttl = 64;
	ip->check = rp_ip_csum(ip);
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	udp->check = 0;
	msg->hdr.type = RP_MSG_REVOKE_ACK;
	msg->hdr.flags = 0;
	msg->hdr.state_len = 0;
	msg->hdr.lease_ms = 0;
	/* switch_id, epoch, key and seq stay: the ack names the same lease */
	rp_msg_seal(msg);
	return XDP_TX;
}

static __always_inline bool rp_msg_ok(const struct rp_msg *msg, __u32 tail)
{
	__u8 type = msg->hdr.type;

	if (msg->hdr.version != RP_VERSION ||
	    msg->hdr.switch_id != bpf_htons(cfg_switch_id) ||
	    msg->hdr.state_len > RP_STATE_MAX || (msg->hdr.flags & ~RP_F_ALL) ||
	    bpf_ntohs(msg->hdr.pkt_len) != tail || tail > RP_PKT_MAX ||
	    !!(msg->hdr.flags & RP_F_PKT) != !!tail)
		return false;
	if (type == RP_MSG_HEARTBEAT_ACK)
		return msg->hdr.app_id == RP_APP_NONE;
	/* a replica that is not the head answers a heartbeat: no app, no key */
	if (type == RP_MSG_REJECT && msg->hdr.reason == RP_REJ_NOT_HEAD &&
	    msg->hdr.app_id == RP_APP_NONE)
		return true;
	if (type != RP_MSG_GRANT && type != RP_MSG_MIGRATE && type != RP_MSG_ACK &&
	    type != RP_MSG_REVOKE && type != RP_MSG_REJECT && type != RP_MSG_EXPIRE_ACK)
		return false;
	return msg->hdr.app_id == cfg_app && msg->key.family == RP_AF_INET;
}

static __always_inline bool rp_same_state(const struct rp_dp_flow *f, const struct rp_msg *msg)
{
	const __u64 *a = (const __u64 *)f->state, *b = (const __u64 *)msg->state;
	__u64 diff = 0;

	if (f->state_len != msg->hdr.state_len)
		return false;
	/* state bytes past state_len are zero on both sides */
#pragma unroll
	for (int i = 0; i < RP_STATE_MAX / 8; i++)
		diff |= a[i] ^ b[i];
	return !diff;
}

/* What a GRANT or MIGRATE came to, decided under the flow's lock. */
enum rp_install_verdict {
	RP_INSTALLED,
	RP_REGRANT,		/* the holding already here: kept */
	RP_STALE_GRANT,		/* an earlier holding, or one given up */
};

/*
 * Under the flow's lock: the grant of holding `gen` under session `epoch`
 * installed in place, unless this switch has that holding already (a
 * duplicated or repeated request's answer: its local state and sequence
 * numbers are newer than the store's, and stay), or has a later one, or
 * gave it up (a revoke overtook it: in a chain the head revokes and the
 * tail grants, and the two may run on two CPUs at once).  Checked and
 * installed in one step, so that a revoke is either before the grant
 * (which it refuses) or after it (which it undoes), never in between.
 */
static __always_inline enum rp_install_verdict rp_install_locked(struct rp_dp_flow *f,
								 const struct rp_msg *msg,
								 __u32 epoch, __u16 gen,
								 __u16 store, __u64 now,
								 __u64 seen)
{
	if (f->epoch == epoch) {
		if (f->gen == gen)
			return RP_REGRANT;
		if (!rp_gen_after(gen, f->gen))
			return RP_STALE_GRANT;
	} else if (f->gone_epoch == epoch && !rp_gen_after(gen, f->gen)) {
		return RP_STALE_GRANT;
	}
	/*
	 * The app's local flags are about the state it proposed: they stand
	 * while the store's state is that proposal.  A GRANT says so; so does a
	 * MIGRATE of the same state (a duplicated request answered twice, the
	 * answers reordered); a MIGRATE of another state resets them.
	 */
	if (msg->hdr.type != RP_MSG_GRANT && !rp_same_state(f, msg))
		f->flags = 0;
	__builtin_memcpy(f->state, msg->state, RP_STATE_MAX);
	f->state_len = msg->hdr.state_len;
	f->epoch = epoch;
	f->seq = bpf_ntohl(msg->hdr.seq);
	f->acked = f->seq;
	f->gen = gen;
	f->gone_epoch = 0;
	f->store = store;
	f->since_ns = now;
	f->until_ns = 0;
	/* a new holding: idle from now, and no longer expired or unknown */
	f->seen_ns = seen;
	f->flags &= ~RP_DPF_LIFE;
	return RP_INSTALLED;
}

/* GRANT and MIGRATE: install the lease, then process the echoed packet. */
static __always_inline int rp_install(struct xdp_md *ctx, struct rp_msg *msg, __u16 store)
{
	__u32 epoch = bpf_ntohl(msg->hdr.epoch), live;
	__u16 gen = bpf_ntohs(msg->hdr.gen);
	struct rp_dp_session *sess = rp_session(store);
	struct rp_scratch *sc = rp_scratch();
	enum rp_install_verdict v = RP_STALE_GRANT;
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	__u64 now, seen;

	/* a grant under the session's epoch, live or not (it may be renewed) */
	live = sess ? RP_READ_ONCE(sess->epoch) : 0;
	if (!sc || !epoch || epoch != live) {
		rp_stat(RP_DP_drop_stale_grant);
		return XDP_DROP;
	}
	__builtin_memcpy(&key, &msg->key, sizeof(key));
	/* a new entry holds nothing, and takes the grant under its lock as any */
	f = rp_scratch_flow(sc, &key);
	f->store = store;
	f = rp_flow_get(&key, f);
	if (!f) {
		rp_stat(RP_DP_drop_table_full);
		return XDP_DROP;
	}
	now = bpf_ktime_get_ns();
	seen = rp_touch_now();
	rp_flow_lock(f);
	/* an element deleted and made another key's meanwhile: lost like a datagram */
	if (rp_flow_is(f, &key))
		v = rp_install_locked(f, msg, epoch, gen, store, now, seen);
	rp_flow_unlock(f);
	if (v == RP_STALE_GRANT) {
		rp_stat(RP_DP_drop_stale_grant);
		return XDP_DROP;
	}
	if (v == RP_REGRANT)
		rp_stat(RP_DP_regrant);
	else
		rp_stat(msg->hdr.type == RP_MSG_GRANT ? RP_DP_grant : RP_DP_migrate);
	if (!(msg->hdr.flags & RP_F_PKT))
		return XDP_DROP;	/* consumed */
	if (rp_decap(ctx))
		return XDP_DROP;
	/* the packet that waited for the lease: through the app once more */
	bpf_tail_call(ctx, &progs, RP_PROG_ROOT);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
}

/* What an ACK came to, decided under the flow's lock. */
enum rp_ack_verdict {
	RP_ACK_TAKEN,
	RP_ACK_NOT_OWNER,
	RP_ACK_STALE,
	RP_ACK_AHEAD,
};

/*
 * Under the flow's lock: `acked` moves forward only, and only to a seq
 * this switch wrote, whichever CPUs the ACKs and the writes run on.
 */
static __always_inline enum rp_ack_verdict rp_ack_locked(struct rp_dp_flow *f, __u32 epoch,
							 __u16 gen, __u32 seq)
{
	if (!f->epoch || f->epoch != epoch || f->gen != gen)
		return RP_ACK_NOT_OWNER;
	/* release each write's packet once: a duplicate or older ACK is dropped */
	if (!rp_seq_after(seq, f->acked))
		return RP_ACK_STALE;
	/*
	 * An ACK of a write never made (a broken or forged store): taken, it
	 * would make the next writes' ACKs look stale and their packets never
	 * leave.  Bounded mode's snapshots carry rp-load's seqs, ahead of f->seq.
	 */
	if (!cfg_bounded && rp_seq_after(seq, f->seq))
		return RP_ACK_AHEAD;
	f->acked = seq;
	return RP_ACK_TAKEN;
}

/*
 * An ACK releases its write's packet, which the app already processed.  But
 * for a flow still RP_DPF_REV_PENDING: the only write made while a
 * translation's reverse key is not in the store is the NAT's move to
 * another port (bpf/app_nat.h, nat_move_port; the NAT and the LB write
 * otherwise only once the flag is cleared), and its packet is untranslated.
 * That one goes through the app again, as a grant's does, to ask for the
 * reverse key; once every write of the flow is acknowledged, since the app
 * writes the move again while one is not (an earlier ACK's packet, dropped,
 * has a later one riding behind it).
 */
static __always_inline int rp_on_ack(struct xdp_md *ctx, struct rp_msg *msg)
{
	enum rp_ack_verdict v = RP_ACK_NOT_OWNER;
	bool again = false, caught_up = false;
	struct rp_flow_key key;
	struct rp_dp_flow *f;

	__builtin_memcpy(&key, &msg->key, sizeof(key));
	f = bpf_map_lookup_elem(&flows, &key);
	if (f) {
		rp_flow_lock(f);
		if (rp_flow_is(f, &key)) {
			v = rp_ack_locked(f, bpf_ntohl(msg->hdr.epoch), bpf_ntohs(msg->hdr.gen),
					  bpf_ntohl(msg->hdr.seq));
			again = f->flags & RP_DPF_REV_PENDING;
			caught_up = f->acked == f->seq;
		}
		rp_flow_unlock(f);
	}
	if (v != RP_ACK_TAKEN) {
		rp_stat(v == RP_ACK_STALE ? RP_DP_drop_stale_ack :
			v == RP_ACK_AHEAD ? RP_DP_drop_ack_ahead : RP_DP_drop_ack_not_owner);
		return XDP_DROP;
	}
	rp_stat(RP_DP_ack);
	if (!(msg->hdr.flags & RP_F_PKT))
		return XDP_DROP;
	if (!again)
		return rp_release(ctx);
	if (!caught_up || rp_decap(ctx))
		return XDP_DROP;
	bpf_tail_call(ctx, &progs, RP_PROG_ROOT);
	rp_stat(RP_DP_drop_tail_call);
	return XDP_DROP;
}

/*
 * Under the flow's lock: gives up the holding a REVOKE names, held or not.
 * It names the holding the store wants back: the switch gives up that one
 * or any earlier one it might still hold, records it as given up, and so
 * refuses its grant if one arrives late.  True if it was held.
 */
static __always_inline bool rp_revoke_locked(struct rp_dp_flow *f, __u32 epoch, __u16 gen,
					     __u64 now)
{
	bool held;

	if (f->epoch == epoch && rp_gen_after(f->gen, gen))
		return false;	/* about an earlier holding: this one stays */
	if (!f->epoch && f->gone_epoch == epoch && !rp_gen_after(gen, f->gen))
		return false;	/* given up already */
	/*
	 * Given up, whether held or not: in a chain the head sends the revoke
	 * and the tail the grant, so a revoke can overtake the grant of the
	 * very holding it names (or of a session epoch this switch has not
	 * heard of yet).  Remembered, that grant is refused when it comes.
	 * The model found this (docs/MODEL.md).
	 */
	held = f->epoch == epoch;
	if (f->epoch)
		f->until_ns = now;
	f->gone_epoch = epoch;
	f->gen = gen;
	f->epoch = 0;
	return held;
}

/*
 * A REVOKE: the holding it names given up, in an entry made for it when
 * there was none (its grant may still be on the way, and must be refused
 * when it comes).  True if the flow was held.
 */
static __always_inline bool rp_revoke(const struct rp_msg *msg)
{
	__u16 gen = bpf_ntohs(msg->hdr.gen);
	__u32 epoch = bpf_ntohl(msg->hdr.epoch);
	struct rp_scratch *sc = rp_scratch();
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	bool held = false;
	__u64 now;

	if (!sc)
		return false;
	__builtin_memcpy(&key, &msg->key, sizeof(key));
	/* made blank, it takes the revoke under its lock as any entry */
	f = rp_scratch_flow(sc, &key);
	f->store = rp_store_of(&key);
	f->seen_ns = rp_touch_now();	/* kept as long as a given-up holding is */
	f = rp_flow_get(&key, f);
	if (!f)
		return false;
	now = bpf_ktime_get_ns();
	rp_flow_lock(f);
	if (rp_flow_is(f, &key))
		held = rp_revoke_locked(f, epoch, gen, now);
	rp_flow_unlock(f);
	return held;
}

/*
 * Under the lock of a flow given up as idle: the store's answer to its
 * EXPIRE (an EXPIRE_ACK, or a REJECT no_flow: deleted; a REJECT not_owner:
 * another switch has it) ends the delete, for the holding it names.
 */
static __always_inline bool rp_expire_answered_locked(struct rp_dp_flow *f, __u32 epoch,
						      __u16 gen, bool deleted)
{
	if (f->epoch || !(f->flags & RP_DPF_EXPIRING) || f->gone_epoch != epoch || f->gen != gen)
		return false;
	f->flags = (f->flags & ~RP_DPF_EXPIRING) | (deleted ? RP_DPF_EXPIRED : 0);
	return true;
}

/*
 * A REJECT no_flow (a lookup of a flow the store does not have): noted, so
 * that the flow's next packets are not asked about again for
 * cfg_negative_ns (the negative cache; rp-load deletes the note after).
 */
static __always_inline void rp_note_no_flow(struct rp_dp_flow *f, __u64 seen)
{
	if (f->epoch)
		return;		/* held: the answer is older than the holding */
	f->flags |= RP_DPF_NO_FLOW;
	f->seen_ns = seen;
}

/*
 * A REJECT: drops the flow's lease when the store says this switch is out
 * of step (not the owner, a conflict, or a stale seq while the store is
 * ahead; else a late copy of an old write), and only for the very holding
 * it names, without a given-up record: the store still counts the switch
 * as the owner and will regrant it.  It also ends a delete (not_owner,
 * no_flow) and notes a flow the store does not have (no_flow).  True if a
 * lease was dropped.
 */
static __always_inline bool rp_reject(const struct rp_msg *msg)
{
	__u16 gen = bpf_ntohs(msg->hdr.gen);
	__u32 epoch = bpf_ntohl(msg->hdr.epoch), seq = bpf_ntohl(msg->hdr.seq);
	__u8 reason = msg->hdr.reason;
	struct rp_scratch *sc = rp_scratch();
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	bool drop = false;
	__u64 now, seen;

	/* the rest are about the request, not the holding (busy, timeout, ...) */
	if (reason != RP_REJ_NOT_OWNER && reason != RP_REJ_CONFLICT && reason != RP_REJ_STALE &&
	    reason != RP_REJ_NO_FLOW)
		return false;
	if (!sc)
		return false;
	__builtin_memcpy(&key, &msg->key, sizeof(key));
	seen = rp_touch_now();
	if (reason == RP_REJ_NO_FLOW) {
		f = rp_scratch_flow(sc, &key);
		f->store = rp_store_of(&key);
		f->flags = RP_DPF_NO_FLOW;
		f->seen_ns = seen;
		f = rp_flow_get(&key, f);
	} else {
		f = bpf_map_lookup_elem(&flows, &key);
	}
	if (!f)
		return false;
	now = bpf_ktime_get_ns();
	rp_flow_lock(f);
	if (!rp_flow_is(f, &key)) {
		/* deleted and made another key's meanwhile: nothing of ours */
	} else if (reason == RP_REJ_NO_FLOW) {
		if (!rp_expire_answered_locked(f, epoch, gen, true))
			rp_note_no_flow(f, seen);
	} else if (reason == RP_REJ_NOT_OWNER && rp_expire_answered_locked(f, epoch, gen, false)) {
		/* the delete is over: not ours to delete */
	} else if (f->epoch && f->epoch == epoch && f->gen == gen &&
		   (reason != RP_REJ_STALE || rp_seq_after(seq, f->seq))) {
		f->epoch = 0;	/* kept as a hint of the state: the next packet asks again */
		f->until_ns = now;
		drop = true;
	}
	rp_flow_unlock(f);
	if (reason == RP_REJ_NO_FLOW)
		rp_stat(RP_DP_no_flow);
	return drop;
}

/* An EXPIRE_ACK: the store deleted the flow this switch gave up as idle. */
static __always_inline bool rp_expire_acked(const struct rp_msg *msg)
{
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	bool done = false;

	__builtin_memcpy(&key, &msg->key, sizeof(key));
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return false;
	rp_flow_lock(f);
	if (rp_flow_is(f, &key))
		done = rp_expire_answered_locked(f, bpf_ntohl(msg->hdr.epoch),
						 bpf_ntohs(msg->hdr.gen), true);
	rp_flow_unlock(f);
	return done;
}

SEC("xdp")
int rp_store_rx(struct xdp_md *ctx)
{
	struct rp_cursor c = { .pos = (void *)(long)ctx->data,
			       .end = (void *)(long)ctx->data_end };
	struct ethhdr *eth;
	struct iphdr *ip;
	struct udphdr *udp;
	struct rp_msg *msg;
	int vlan, store = -1;
	__u32 tail;

	rp_stat(RP_DP_rx_store);
	if (rp_parse_eth(&c, &eth, &vlan) != ETH_P_IP || vlan ||
	    rp_parse_ipv4(&c, &ip) != IPPROTO_UDP || ip->ihl != 5 ||
	    rp_parse_udp(&c, &udp) < 0) {
		rp_stat(RP_DP_drop_malformed_msg);
		return XDP_DROP;
	}
	/* any replica may speak for its chain: answers come from the tail */
#pragma unroll
	for (int i = 0; i < RP_MAX_STORES * RP_MAX_REPLICAS; i++) {
		if (i < (int)cfg_nreplicas && cfg_replicas[i].addr == ip->saddr &&
		    cfg_replicas[i].port == udp->source)
			store = cfg_replicas[i].store;
	}
	if (store < 0) {
		rp_stat(RP_DP_drop_bad_source);
		return XDP_DROP;
	}
	msg = c.pos;
	if ((void *)(msg + 1) > c.end) {
		rp_stat(RP_DP_drop_malformed_msg);
		return XDP_DROP;
	}
	tail = (__u32)(c.end - (void *)(msg + 1));
	if (cfg_mac) {
		__u64 mac;

		__builtin_memcpy(&mac, msg->mac, sizeof(mac));
		if (mac != rp_msg_mac(msg)) {
			rp_stat(RP_DP_drop_bad_mac);
			return XDP_DROP;
		}
	}
	if (!rp_msg_ok(msg, tail)) {
		rp_stat(RP_DP_drop_malformed_msg);
		return XDP_DROP;
	}

	switch (msg->hdr.type) {
	case RP_MSG_HEARTBEAT_ACK:
		rp_stat(RP_DP_hb_ack_pass);
		return XDP_PASS;	/* to rp-load's socket */
	case RP_MSG_GRANT:
	case RP_MSG_MIGRATE:
		return rp_install(ctx, msg, (__u16)store);
	case RP_MSG_ACK:
		return rp_on_ack(ctx, msg);
	case RP_MSG_EXPIRE_ACK:
		rp_stat(rp_expire_acked(msg) ? RP_DP_expire_acked : RP_DP_drop_stale_expire_ack);
		return XDP_DROP;
	case RP_MSG_REJECT:
		rp_stat(RP_DP_reject);
		if (msg->hdr.reason == RP_REJ_NOT_HEAD) {
			/*
			 * The request reached a replica that is not the head:
			 * nothing about the flow, whose lease stands.  rp-load's
			 * socket takes it (the echoed packet goes with it, never
			 * forwarded) and follows the hint to the head.
			 */
			rp_stat(RP_DP_reject_not_head);
			return XDP_PASS;
		}
		/*
		 * Not the owner, or out of step with the store's sequence
		 * numbers: give the lease up; the next packet asks again and
		 * the grant brings the store's state and seq back.
		 */
		if (rp_reject(msg))
			rp_stat(RP_DP_reject_lost_lease);
		return XDP_DROP;	/* the echoed packet is never released */
	case RP_MSG_REVOKE: {
		bool held = rp_revoke(msg);

		rp_stat(held ? RP_DP_revoke : RP_DP_revoke_unknown);
		if (tail)
			return XDP_DROP;
		if (cfg_bounded) {
			/*
			 * The flow's newest state is here, not at the store:
			 * rp-load's socket takes the revoke and acks it with
			 * the state (user/snapshot.c), each time the store
			 * asks.  Counting here stopped with the lease, so the
			 * state it reads is final.
			 */
			rp_stat(RP_DP_revoke_to_agent);
			return XDP_PASS;
		}
		return rp_answer_revoke(eth, ip, udp, msg);
	}
	}
	rp_stat(RP_DP_drop_malformed_msg);
	return XDP_DROP;
}

#endif /* RP_NO_REPLICATION */

/*
 * rp-load's sweep (user/expiry.c), through BPF_PROG_TEST_RUN with a struct
 * rp_dp_expire as the packet.  RP_EXPIRE_OP_GIVE_UP gives up the flow if
 * this switch holds it, every write of it is acknowledged, and no packet
 * came since idle_before_ns; the holding given up is written back into the
 * record.  Given up under the flow's lock, so that no packet uses the flow
 * after the decision: the next one asks the store (and is dropped while
 * the delete is under way, rp_lease).  In bounded mode the counts since
 * the last snapshot go with the flow, as expiry means.
 *
 * RP_EXPIRE_OP_REAP deletes an entry that holds nothing, checked under its
 * lock just before: a grant that lands between the check and the delete
 * (nanoseconds) loses the local copy only, and the flow's next packet asks
 * the store, which has it, again.
 */
SEC("xdp")
int rp_expire(struct xdp_md *ctx)
{
	struct rp_dp_expire *req = (void *)(long)ctx->data;
	int verdict = RP_EXPIRE_KEPT;
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	__u32 live, epoch = 0, seq = 0, op;
	__u16 gen = 0, store;
	__u64 cutoff, now;

	if ((void *)(req + 1) > (void *)(long)ctx->data_end)
		return RP_EXPIRE_KEPT;
	__builtin_memcpy(&key, &req->key, sizeof(key));
	cutoff = req->idle_before_ns;
	op = req->op;
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return RP_EXPIRE_KEPT;
	store = RP_READ_ONCE(f->store);
	live = rp_live_epoch(store, rp_lease_now());
	now = bpf_ktime_get_ns();
	rp_flow_lock(f);
	if (!rp_flow_is(f, &key)) {
		/* deleted meanwhile */
	} else if (op == RP_EXPIRE_OP_REAP) {
		if (!rp_held(f, live) && !((f->flags & RP_DPF_EXPIRING) && f->gone_epoch == live) &&
		    f->seen_ns <= cutoff && f->until_ns <= cutoff)
			verdict = RP_EXPIRE_REAPED;
	} else if (rp_held(f, live) && (cfg_bounded || f->acked == f->seq) &&
		   f->seen_ns <= cutoff) {
		f->until_ns = now;
		f->gone_epoch = f->epoch;
		f->epoch = 0;
#ifndef RP_NO_REPLICATION
		f->flags |= RP_DPF_EXPIRING;
		verdict = RP_EXPIRE_GAVE_UP;
#else
		f->flags |= RP_DPF_EXPIRED;	/* no store to tell */
		verdict = RP_EXPIRE_DONE;
#endif
	} else if (!f->epoch && (f->flags & RP_DPF_EXPIRING) && f->gone_epoch == live) {
		verdict = RP_EXPIRE_PENDING;
	}
	if (verdict != RP_EXPIRE_KEPT && verdict != RP_EXPIRE_REAPED) {
		epoch = f->gone_epoch;
		gen = f->gen;
		seq = f->seq;
		store = f->store;
	}
	rp_flow_unlock(f);
	if (verdict == RP_EXPIRE_REAPED && bpf_map_delete_elem(&flows, &key))
		verdict = RP_EXPIRE_KEPT;
	req->epoch = epoch;
	req->gen = gen;
	req->seq = seq;
	req->store = store;
	if (verdict == RP_EXPIRE_GAVE_UP || verdict == RP_EXPIRE_DONE)
		rp_stat(RP_DP_expired);
	return verdict;
}

/* the applications: one program each, at the slot of their app id */
#include "app_counter.h"
#include "app_fw.h"
#include "app_lb.h"
#include "app_nat.h"
#include "app_sketch.h"
