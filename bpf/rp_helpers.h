/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Helpers shared by the data plane's programs. */
#ifndef __RP_HELPERS_H
#define __RP_HELPERS_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "rp_maps.h"
#include "rp_parse.h"

#ifndef AF_INET
#define AF_INET 2
#endif

/* Outer headers of a message to or from a store (no VLAN on that link). */
#define RP_ENCAP_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr) + \
			 sizeof(struct udphdr) + sizeof(struct rp_msg))

static __always_inline void rp_stat(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &idx);

	if (v)
		*v += 1;
}

static __always_inline struct rp_scratch *rp_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

/* One's complement fold of a 32-bit sum into a 16-bit checksum field. */
static __always_inline __u16 rp_csum_fold(__u32 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

/*
 * Incremental updates (RFC 1624: HC' = ~(~HC + ~m + m')).  All values are
 * as they sit in the packet; one's complement sums do not care about order.
 */
static __always_inline __u16 rp_csum_update32(__u16 check, __be32 from, __be32 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~(from & 0xffff);
	s += (__u16)~(from >> 16);
	s += to & 0xffff;
	s += to >> 16;
	return rp_csum_fold(s);
}

static __always_inline __u16 rp_csum_update16(__u16 check, __be16 from, __be16 to)
{
	__u32 s = (__u16)~check;

	s += (__u16)~from;
	s += to;
	return rp_csum_fold(s);
}

static __always_inline __u16 rp_ip_csum(struct iphdr *ip)
{
	__u16 *w = (__u16 *)ip;
	__u32 s = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		s += w[i];
	return rp_csum_fold(s);
}

/* zlib's CRC-32 (reflected 0xEDB88320), a byte at a time. */
static const __u32 rp_crc32_table[256] = {
	0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f,
	0xe963a535, 0x9e6495a3, 0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988,
	0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91, 0x1db71064, 0x6ab020f2,
	0xf3b97148, 0x84be41de, 0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
	0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec, 0x14015c4f, 0x63066cd9,
	0xfa0f3d63, 0x8d080df5, 0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172,
	0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b, 0x35b5a8fa, 0x42b2986c,
	0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
	0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423,
	0xcfba9599, 0xb8bda50f, 0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924,
	0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d, 0x76dc4190, 0x01db7106,
	0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
	0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb, 0x086d3d2d,
	0x91646c97, 0xe6635c01, 0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
	0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457, 0x65b0d9c6, 0x12b7e950,
	0x8bbeb8ea, 0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
	0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7,
	0xa4d1c46d, 0xd3d6f4fb, 0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0,
	0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9, 0x5005713c, 0x270241aa,
	0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
	0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81,
	0xb7bd5c3b, 0xc0ba6cad, 0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a,
	0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683, 0xe3630b12, 0x94643b84,
	0x0d6d6a3e, 0x7a6a5aa8, 0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
	0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe, 0xf762575d, 0x806567cb,
	0x196c3671, 0x6e6b06e7, 0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc,
	0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5, 0xd6d6a3e8, 0xa1d1937e,
	0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
	0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55,
	0x316e8eef, 0x4669be79, 0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236,
	0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f, 0xc5ba3bbe, 0xb2bd0b28,
	0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
	0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a, 0x9c0906a9, 0xeb0e363f,
	0x72076785, 0x05005713, 0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38,
	0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21, 0x86d3d2d4, 0xf1d4e242,
	0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
	0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69,
	0x616bffd3, 0x166ccf45, 0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2,
	0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db, 0xaed16a4a, 0xd9d65adc,
	0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
	0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605, 0xcdd70693,
	0x54de5729, 0x23d967bf, 0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
	0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
};

/*
 * The store chain a flow belongs to: the high 16 bits of the CRC-32 of its
 * 40 key bytes, scaled to the number of chains.  The Tofino program
 * (p4-tofino/include/flows.p4) computes the same, with its hash unit and
 * ranges, so Tofino switches and Linux hosts put every flow on the same
 * chain.  Only lease requests and new flows need it: not the fast path.
 */
static __always_inline __u16 rp_store_of(const struct rp_flow_key *k)
{
	const __u8 *b = (const __u8 *)k;
	__u32 c = 0xffffffff;

	if (cfg_nstores <= 1)
		return 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*k); i++)
		c = rp_crc32_table[(c ^ b[i]) & 0xff] ^ (c >> 8);
	c ^= 0xffffffff;
	return (__u16)(((c >> 16) * cfg_nstores) >> 16);
}

static __always_inline struct rp_dp_session *rp_session(__u16 store)
{
	__u32 idx = store;

	return bpf_map_lookup_elem(&sessions, &idx);
}

/*
 * The session is live: one read of its expiry (DESIGN.md's safety rule).
 * The coarse clock costs a fraction of bpf_ktime_get_ns(); it lags by up to
 * one tick, which rp-load takes off the expiry it writes.
 */
static __always_inline bool rp_session_live(const struct rp_dp_session *s)
{
	return s && s->epoch && bpf_ktime_get_coarse_ns() < s->expiry_ns;
}

#ifndef RP_NO_REPLICATION
/* This switch holds the flow's lease now. */
static __always_inline bool rp_lease_held(const struct rp_dp_flow *f)
{
	struct rp_dp_session *s;

	if (!f || !f->epoch)
		return false;
	s = rp_session(f->store);
	return s && f->epoch == s->epoch && bpf_ktime_get_coarse_ns() < s->expiry_ns;
}
#else
/* No store: a flow installed here is this switch's (rp_app.h, RP_LOCAL_EPOCH). */
static __always_inline bool rp_lease_held(const struct rp_dp_flow *f)
{
	return f && f->epoch;
}
#endif

static __always_inline void rp_ip_decrease_ttl(struct iphdr *ip)
{
	__u32 check = (__u32)ip->check;

	check += (__u32)bpf_htons(0x0100);
	ip->check = (__u16)(check + (check >= 0xFFFF));
	ip->ttl--;
}

/*
 * Forwards with the kernel's routes and neighbours.  Anything the fast path
 * cannot do (no neighbour entry yet, a VLAN, local delivery) goes to the
 * kernel, which does it.
 */
static __always_inline int rp_forward(struct xdp_md *ctx, struct ethhdr *eth, struct iphdr *ip,
				      int vlan)
{
	struct bpf_fib_lookup fib = {};
	int rc;

	if (vlan) {
		rp_stat(RP_DP_fwd_pass);
		return XDP_PASS;
	}
	fib.family = AF_INET;
	fib.tos = ip->tos;
	fib.l4_protocol = ip->protocol;
	fib.tot_len = bpf_ntohs(ip->tot_len);
	fib.ipv4_src = ip->saddr;
	fib.ipv4_dst = ip->daddr;
	fib.ifindex = ctx->ingress_ifindex;

	rc = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	switch (rc) {
	case BPF_FIB_LKUP_RET_SUCCESS:
		if (ip->ttl <= 1) {
			rp_stat(RP_DP_drop_ttl);
			return XDP_PASS;	/* the kernel sends the ICMP time exceeded */
		}
		rp_ip_decrease_ttl(ip);
		__builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
		__builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
		rp_stat(RP_DP_fwd_redirect);
		return bpf_redirect(fib.ifindex, 0);
	case BPF_FIB_LKUP_RET_BLACKHOLE:
	case BPF_FIB_LKUP_RET_UNREACHABLE:
	case BPF_FIB_LKUP_RET_PROHIBIT:
		rp_stat(RP_DP_fwd_drop);
		return XDP_DROP;
	default:
		rp_stat(RP_DP_fwd_pass);
		return XDP_PASS;
	}
}

#endif /* __RP_HELPERS_H */
