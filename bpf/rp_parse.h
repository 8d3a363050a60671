/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Header parsing: one function per header, each checking its bounds against
 * data_end and moving the cursor (after xdp-tools' parsing_helpers.h).
 */
#ifndef __RP_PARSE_H
#define __RP_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef ETH_P_8021Q
#define ETH_P_8021Q	0x8100
#endif
#define IP_MF		0x2000
#define IP_OFFSET	0x1FFF

/*
 * ICMPv4 (RFC 792), declared here: <linux/icmp.h> pulls in the C library's
 * socket headers, which a BPF target does not have.
 */
struct rp_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be16 id;		/* echo and echo reply */
	__be16 sequence;
};

#define RP_ICMPT_ECHOREPLY	0
#define RP_ICMPT_DEST_UNREACH	3
#define RP_ICMPT_ECHO		8
#define RP_ICMPT_TIME_EXCEEDED	11
#define RP_ICMPT_PARAMETERPROB	12

struct rp_cursor {
	void *pos;
	void *end;
};

struct rp_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

/* Returns the EtherType after at most one 802.1Q tag, or -1; sets *vlan. */
static __always_inline int rp_parse_eth(struct rp_cursor *c, struct ethhdr **eth, int *vlan)
{
	struct ethhdr *e = c->pos;
	struct rp_vlan_hdr *v;
	__u16 proto;

	if ((void *)(e + 1) > c->end)
		return -1;
	c->pos = e + 1;
	*eth = e;
	*vlan = 0;
	proto = e->h_proto;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		v = c->pos;
		if ((void *)(v + 1) > c->end)
			return -1;
		c->pos = v + 1;
		*vlan = 1;
		proto = v->proto;
	}
	return bpf_ntohs(proto);
}

/* Returns the IP protocol, or -1 when cut short. Options are not skipped. */
static __always_inline int rp_parse_ipv4(struct rp_cursor *c, struct iphdr **ip)
{
	struct iphdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*ip = h;
	return h->protocol;
}

static __always_inline int rp_parse_udp(struct rp_cursor *c, struct udphdr **udp)
{
	struct udphdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*udp = h;
	return 0;
}

static __always_inline int rp_parse_tcp(struct rp_cursor *c, struct tcphdr **tcp)
{
	struct tcphdr *h = c->pos;

	if ((void *)(h + 1) > c->end)
		return -1;
	c->pos = h + 1;
	*tcp = h;
	return 0;
}

#endif /* __RP_PARSE_H */
