/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Sequence-checked TCP streams from the topology's client to its server,
 * both ends in this process (one clock times both): each message is a
 * 32-bit counter, and the server end checks that the counters arrive whole,
 * in order, with none missing.
 */
#ifndef __RP_STREAM_H
#define __RP_STREAM_H

#include <stdbool.h>
#include <stdint.h>

struct rp_topo;

struct rp_stream_conn {
	int cfd, sfd;
	uint32_t sent;		/* counters written by the client */
	uint32_t received;	/* counters read, in order, by the server */
	uint8_t partial[4];
	unsigned int npartial;
	uint64_t last_rx_ns;
	uint64_t max_gap_ns;	/* longest silence at the server */
	uint64_t first_rx_after_ns;	/* first byte after rp_stream_mark() */
	bool out_of_order;
	int error;		/* errno of a broken connection, or -1 for EOF */
};

struct rp_stream {
	unsigned int n;
	struct rp_stream_conn *c;
	uint64_t mark_ns;
};

uint64_t rp_stream_now(void);
/* Opens n connections client -> server:port; 0 or -errno. */
int rp_stream_open(struct rp_stream *s, struct rp_topo *t, unsigned int n, uint16_t port);
/* Sends one counter on every healthy connection and reads what arrived. */
void rp_stream_step(struct rp_stream *s);
/* From now on, note each connection's first byte (after a failure). */
void rp_stream_mark(struct rp_stream *s);
/* Stops sending; reads until every counter arrived or ms pass. True if all did. */
bool rp_stream_drain(struct rp_stream *s, int ms);
void rp_stream_close(struct rp_stream *s);

/* Connections without error, without disorder. */
unsigned int rp_stream_healthy(const struct rp_stream *s);
uint64_t rp_stream_max_gap_ns(const struct rp_stream *s);

#endif /* __RP_STREAM_H */
