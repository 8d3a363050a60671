/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * SipHash-2-4 (Aumasson and Bernstein, 2012), the keyed MAC of protocol
 * messages (docs/SECURITY.md): a 128-bit key as two little-endian 64-bit
 * words, the message read as little-endian 64-bit words, the 64-bit result
 * written little-endian.  One inline definition for the XDP programs (where
 * `len` is a constant and the loops unroll), rp-store, rp-load and the
 * tests.  Little-endian hosts only, as the rest of redplane.
 */
#ifndef __REDPLANE_SIPHASH_H
#define __REDPLANE_SIPHASH_H

#include <linux/types.h>

#ifdef __bpf__
/* packet memory: an unaligned 8-byte load (the x86 JIT and verifier allow it) */
typedef __u64 __attribute__((may_alias, aligned(1))) rp_sip_u64;
#define RP_SIP_LOAD(p)	(*(const rp_sip_u64 *)(p))
#else
static inline __u64 rp_sip_load(const void *p)
{
	__u64 v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}
#define RP_SIP_LOAD(p)	rp_sip_load(p)
#endif

#define RP_SIP_ROTL(x, b)	(((x) << (b)) | ((x) >> (64 - (b))))
#define RP_SIPROUND(v0, v1, v2, v3)					\
	do {								\
		v0 += v1; v1 = RP_SIP_ROTL(v1, 13); v1 ^= v0;		\
		v0 = RP_SIP_ROTL(v0, 32);				\
		v2 += v3; v3 = RP_SIP_ROTL(v3, 16); v3 ^= v2;		\
		v0 += v3; v3 = RP_SIP_ROTL(v3, 21); v3 ^= v0;		\
		v2 += v1; v1 = RP_SIP_ROTL(v1, 17); v1 ^= v2;		\
		v2 = RP_SIP_ROTL(v2, 32);				\
	} while (0)

static inline __attribute__((always_inline)) __u64
rp_siphash24(__u64 k0, __u64 k1, const __u8 *data, __u32 len)
{
	__u64 v0 = k0 ^ 0x736f6d6570736575ull, v1 = k1 ^ 0x646f72616e646f6dull;
	__u64 v2 = k0 ^ 0x6c7967656e657261ull, v3 = k1 ^ 0x7465646279746573ull;
	__u64 b = (__u64)len << 56, m;
	__u32 i;

	/* a bounded loop in BPF: unrolled, it would spill past the stack limit */
#ifdef __bpf__
#pragma clang loop unroll(disable)
#endif
	for (i = 0; i < len / 8; i++) {
		m = RP_SIP_LOAD(data + 8 * i);
		v3 ^= m;
		RP_SIPROUND(v0, v1, v2, v3);
		RP_SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
#ifdef __bpf__
#pragma unroll
#endif
	for (i = 0; i < len % 8; i++)
		b |= (__u64)data[len - len % 8 + i] << (8 * i);
	v3 ^= b;
	RP_SIPROUND(v0, v1, v2, v3);
	RP_SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	RP_SIPROUND(v0, v1, v2, v3);
	RP_SIPROUND(v0, v1, v2, v3);
	RP_SIPROUND(v0, v1, v2, v3);
	RP_SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

#endif /* __REDPLANE_SIPHASH_H */
