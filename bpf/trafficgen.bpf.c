// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The forwarding benchmark's traffic (bench/fwd-bench.c), in three programs:
 *
 * trafficgen_tx    run by BPF_PROG_TEST_RUN with BPF_F_TEST_XDP_LIVE_FRAMES
 *                  in the client's namespace: writes `frame` (a 64-byte UDP
 *                  frame) with the source port stepping through `nflows`
 *                  values, and sends it out of the interface given as
 *                  ingress (XDP_TX).  Live frames reuse their pages with
 *                  whatever the path wrote into them (TTL, MACs, the NAT's
 *                  rewrite), so every header is written again every time.
 * trafficgen_sink  on the server's end of the link: counts the frames for
 *                  `sink_port` and drops them, those from `sink_saddr` (the
 *                  NAT's address: translated) apart; passes the rest (ARP,
 *                  TCP).
 * trafficgen_pass  XDP_PASS: a veth takes frames another veth's XDP sends
 *                  it only when it has an XDP program, so the switch's
 *                  ingress carries this one when the kernel forwards.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define TRAFFICGEN_FRAME	64	/* bytes, FCS not counted */

const volatile __u64 frame[TRAFFICGEN_FRAME / 8];
const volatile __u32 nflows = 1;	/* source ports sport_base .. + nflows - 1 */
const volatile __u16 sport_base = 10000;	/* host order */
const volatile __u16 sink_port = 9;		/* host order: UDP discard */
const volatile __be32 sink_saddr;		/* the source frames must arrive with */

__u64 sent;		/* one generator at a time: no atomics */
__u64 received;
__u64 received_bytes;
__u64 received_other;	/* not from sink_saddr: not translated */

SEC("xdp")
int trafficgen_tx(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	__u64 *w = data;
	struct udphdr *udp = data + sizeof(struct ethhdr) + sizeof(struct iphdr);

	if (data + TRAFFICGEN_FRAME > end)
		return XDP_ABORTED;
#pragma unroll
	for (int i = 0; i < TRAFFICGEN_FRAME / 8; i++)
		w[i] = frame[i];
	/* UDP checksum 0 ("none"): the ports may change without it */
	udp->source = bpf_htons((__u16)(sport_base + sent++ % nflows));
	return XDP_TX;
}

SEC("xdp")
int trafficgen_sink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5 || udp->dest != bpf_htons(sink_port))
		return XDP_PASS;
	if (ip->saddr != sink_saddr) {
		__sync_fetch_and_add(&received_other, 1);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&received, 1);
	__sync_fetch_and_add(&received_bytes, (__u64)(end - data));
	return XDP_DROP;
}

SEC("xdp")
int trafficgen_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
