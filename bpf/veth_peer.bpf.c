// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * For the far ends of the veth links of the demo, the benchmarks and the
 * tests: passes every frame (a veth delivers XDP_REDIRECTed and XDP_TXed
 * frames only to a peer with an XDP program, or with GRO, which was seen to
 * hold them for tens of milliseconds), and drops the first `drop_budget` UDP datagrams to `drop_port`,
 * (only messages of type `drop_type` when it is set), which is how the
 * tests inject loss (netem is not built in).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

__u16 drop_port;	/* host order; 0: drop nothing */
__u8 drop_type;		/* a redplane message type; 0: any datagram to drop_port */
__u32 drop_budget;
__u32 drop_every;	/* drop every Nth datagram to drop_port (0: off) */
__u32 seen;
__u32 dropped;
__u32 passed_to_port;

SEC("xdp")
int veth_peer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5 || !drop_port ||
	    udp->dest != bpf_htons(drop_port))
		return XDP_PASS;
	if (drop_type) {
		__u8 *type = (void *)(udp + 1) + 1;	/* struct rp_hdr's type */

		if ((void *)(type + 1) > end || *type != drop_type)
			return XDP_PASS;
	}
	if (drop_every && __sync_fetch_and_add(&seen, 1) % drop_every == drop_every - 1) {
		__sync_fetch_and_add(&dropped, 1);
		return XDP_DROP;
	}
	if (drop_budget) {
		__sync_fetch_and_sub(&drop_budget, 1);
		__sync_fetch_and_add(&dropped, 1);
		return XDP_DROP;
	}
	__sync_fetch_and_add(&passed_to_port, 1);
	return XDP_PASS;
}
