// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "redplane/proto.h"
#include "redplane/steer.h"

/*
 * The hash: x = app_id; for each 32-bit big-endian word w of the key,
 * x = (x ^ w) * golden; h = x ^ (x >> 16); shard = h % shards.
 * Classic BPF has 32-bit ALU ops, XOR and MOD, and loads big-endian words,
 * which is why the hash is built from exactly these.
 */
#define STEER_GOLDEN	0x9E3779B1u
#define KEY_OFF		offsetof(struct rp_msg, key)
#define KEY_WORDS	(sizeof(struct rp_flow_key) / 4)

_Static_assert(sizeof(struct rp_flow_key) % 4 == 0, "key is whole words");

unsigned int rp_shard_of(const void *dgram, size_t len, unsigned int shards)
{
	const uint8_t *b = dgram;
	uint32_t x, w;

	/* a cBPF load past the end aborts the filter, which returns 0 */
	if (shards <= 1 || len < KEY_OFF + sizeof(struct rp_flow_key))
		return 0;

	x = b[offsetof(struct rp_hdr, app_id)];
	for (size_t i = 0; i < KEY_WORDS; i++) {
		memcpy(&w, b + KEY_OFF + 4 * i, 4);
		x = (x ^ ntohl(w)) * STEER_GOLDEN;
	}
	return (x ^ (x >> 16)) % shards;
}

unsigned int rp_steer_build(struct sock_filter *insns, unsigned int shards)
{
	unsigned int n = 0;

	/* The filter sees the UDP payload at offset 0. */
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_B | BPF_ABS,
						  offsetof(struct rp_hdr, app_id));
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
	for (unsigned int i = 0; i < KEY_WORDS; i++) {
		insns[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
							  KEY_OFF + 4 * i);
		insns[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0);
		insns[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MUL | BPF_K,
							  STEER_GOLDEN);
		insns[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TAX, 0);
	}
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_MISC | BPF_TXA, 0);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_RSH | BPF_K, 16);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_XOR | BPF_X, 0);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_ALU | BPF_MOD | BPF_K,
						  shards ? shards : 1);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_A, 0);
	return n;
}

_Static_assert(2 + 4 * KEY_WORDS + 5 <= RP_STEER_MAX_INSNS, "filter fits");

int rp_steer_attach(int fd, unsigned int shards)
{
	struct sock_filter insns[RP_STEER_MAX_INSNS];
	struct sock_fprog prog = {
		.len = (unsigned short)rp_steer_build(insns, shards),
		.filter = insns,
	};

	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof(prog)))
		return -errno;
	return 0;
}
