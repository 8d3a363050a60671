// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TC (clsact) program for the tests' switch-store links: duplicates and
 * reorders UDP datagrams to or from the store port, since netem is not built
 * in.  A duplicate is a clone sent through the interface again; a reordered
 * datagram is dropped here and a clone of it is queued to the backlog, so it
 * arrives after the datagrams behind it in the same batch.
 */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SEEN_MARK	0x52504c31	/* a clone made here: pass it */

__u16 port;		/* host order; the store's UDP port */
__u32 dup_every;	/* duplicate every Nth datagram (0: off) */
__u32 reorder_every;	/* delay every Nth behind the next ones (0: off) */
__u32 seen, duplicated, reordered;

static __always_inline bool is_store_udp(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data, *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	if ((void *)(udp + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return false;
	return udp->dest == bpf_htons(port) || udp->source == bpf_htons(port);
}

static __always_inline int impair(struct __sk_buff *skb, __u64 flags)
{
	__u32 n;

	if (skb->mark == SEEN_MARK) {
		skb->mark = 0;
		return TC_ACT_OK;
	}
	if (!port || !is_store_udp(skb))
		return TC_ACT_OK;
	n = __sync_fetch_and_add(&seen, 1);
	if (reorder_every && n % reorder_every == reorder_every - 1) {
		skb->mark = SEEN_MARK;
		if (bpf_clone_redirect(skb, skb->ifindex, flags) == 0) {
			__sync_fetch_and_add(&reordered, 1);
			return TC_ACT_SHOT;	/* the clone, later, stands in for it */
		}
		skb->mark = 0;
		return TC_ACT_OK;
	}
	if (dup_every && n % dup_every == dup_every - 1) {
		skb->mark = SEEN_MARK;
		if (bpf_clone_redirect(skb, skb->ifindex, flags) == 0)
			__sync_fetch_and_add(&duplicated, 1);
		skb->mark = 0;
	}
	return TC_ACT_OK;
}

/* switch -> store */
SEC("tc")
int impair_ingress(struct __sk_buff *skb)
{
	return impair(skb, BPF_F_INGRESS);
}

/* store -> switch */
SEC("tc")
int impair_egress(struct __sk_buff *skb)
{
	return impair(skb, 0);
}
