/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Shard steering.  rp-store's shard threads each own a UDP socket in one
 * SO_REUSEPORT group; a classic BPF filter attached to the group picks the
 * socket from the message's app id and flow key, so a flow always reaches
 * the thread that owns its shard and no shard state is ever shared.
 * rp_shard_of() is the same function in C: the two must agree bit for bit
 * (selftests check it on a live group).
 */
#ifndef __REDPLANE_STEER_H
#define __REDPLANE_STEER_H

#include <stddef.h>
#include <stdint.h>
#include <linux/filter.h>

#define RP_STEER_MAX_INSNS	64
#define RP_SHARDS_MAX		64

/* Shard of a datagram; datagrams too short to hold a key go to shard 0. */
unsigned int rp_shard_of(const void *dgram, size_t len, unsigned int shards);

/* Builds the filter into insns[RP_STEER_MAX_INSNS]; returns its length. */
unsigned int rp_steer_build(struct sock_filter *insns, unsigned int shards);

/* Attaches the filter to fd's reuseport group.  0 or -errno. */
int rp_steer_attach(int fd, unsigned int shards);

#endif /* __REDPLANE_STEER_H */
