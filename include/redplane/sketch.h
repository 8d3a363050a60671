/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The count-min sketch's layout and counters, shared by its program
 * (bpf/app_sketch.h), rp-load (user/app_sketch.c) and the tests.
 *
 * The sketch counts packets per IPv4 source address: RP_SKETCH_ROWS rows
 * of RP_SKETCH_COLS 32-bit cells; a source adds one to one cell per row
 * (its column in row r: rp_sketch_col), and its estimate is the least of
 * those cells (never below its true count; above it by what other sources
 * added to the same cells).
 *
 * Replicated, the sketch is chunks of 16 cells (64 bytes, one state value),
 * one key each: family RP_AF_INET, protocol 0, sport = the row, dport = the
 * chunk within the row, saddr = the sketch id (--sketch-id: switches with
 * the same id share one sketch, which moves to whichever switch the traffic
 * goes through, chunk by chunk).
 */
#ifndef __REDPLANE_SKETCH_H
#define __REDPLANE_SKETCH_H

#include <linux/types.h>

#include "redplane/proto.h"

#define RP_SKETCH_ROWS		4
#define RP_SKETCH_COLS		512	/* a power of two */
#define RP_SKETCH_CHUNK_CELLS	(RP_STATE_MAX / 4)
#define RP_SKETCH_ROW_CHUNKS	(RP_SKETCH_COLS / RP_SKETCH_CHUNK_CELLS)

struct rp_sketch_chunk {
	__u32 cell[RP_SKETCH_CHUNK_CELLS];
};

_Static_assert(sizeof(struct rp_sketch_chunk) == RP_STATE_MAX, "a chunk is one state");

/* A source the sketch estimates at or above --sketch-threshold (the heavy map). */
struct rp_sketch_heavy {
	__u64 estimate;		/* packets, when last seen */
	__u64 seen_ns;		/* bpf_ktime_get_ns() of its last packet */
};

/* Source `addr`'s column in row `row`: independent hashes, one seed per row. */
static inline __u32 rp_sketch_col(__be32 addr, __u32 row)
{
	__u32 h = (addr ^ (0x9E3779B9u * (row + 1))) * 0x85ebca6bu;

	h ^= h >> 13;
	h *= 0xc2b2ae35u;
	h ^= h >> 16;
	return h & (RP_SKETCH_COLS - 1);
}

/* The key of the chunk holding cell `col` of row `row` in sketch `id`. */
static inline void rp_sketch_key(struct rp_flow_key *k, __u32 id, __u32 row, __u32 col)
{
	rp_key_v4(k, 0, rp_be32(id), rp_be16((__u16)row), 0,
		  rp_be16((__u16)(col / RP_SKETCH_CHUNK_CELLS)));
}

#define RP_SKETCH_STATS(X)						\
	X(sketch_update)	/* a packet counted in every row */	\
	X(sketch_heavy)		/* ... whose source is at or above the threshold */ \
	X(sketch_heavy_full)	/* heavy map update failed */		\
	X(sketch_lost)		/* a row's chunk revoked between the look and \
				   the count: not counted there */

#endif /* __REDPLANE_SKETCH_H */
