// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A shard thread: batched UDP I/O around the handlers of lease.c. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "redplane/log.h"

#include "store.h"

/* Bound the datagrams read between two ticks so waits stay on time. */
#define RX_ROUNDS_PER_TICK	16

uint64_t rp_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int rp_shard_init(struct rp_shard *s, unsigned int id, const struct rp_store_cfg *cfg,
		  struct rp_sessions *sessions, uint32_t flow_cap)
{
	int err;

	memset(s, 0, sizeof(*s));
	s->id = id;
	s->fd = -1;
	s->wake_fd = -1;
	s->cfg = cfg;
	s->sessions = sessions;
	err = rp_flow_table_init(&s->flows, flow_cap);
	if (err)
		return err;
	s->waiters = calloc(cfg->wait_queue, sizeof(*s->waiters));
	if (!s->waiters) {
		rp_flow_table_free(&s->flows);
		return -ENOMEM;
	}
	for (unsigned int i = 0; i < RP_BATCH; i++) {
		s->out_iov[i].iov_base = s->out[i].buf;
		s->out_msgs[i].msg_hdr.msg_iov = &s->out_iov[i];
		s->out_msgs[i].msg_hdr.msg_iovlen = 1;
		s->out_msgs[i].msg_hdr.msg_name = &s->out[i].to.ss;
	}
	return 0;
}

void rp_shard_free(struct rp_shard *s)
{
	rp_flow_table_free(&s->flows);
	free(s->waiters);
	s->waiters = NULL;
}

void rp_shard_flow_delete(struct rp_shard *s, struct rp_flow *f)
{
	uint32_t at = (uint32_t)(f - s->flows.flows);
	struct rp_flow *moved;

	if (s->chain)
		rp_chain_flow_moving(s, s->flows.count - 1, at);
	moved = rp_flow_delete(&s->flows, f);
	if (moved && moved->waiter)
		s->waiters[moved->waiter - 1].flow = moved;
}

void rp_shard_emit_raw(struct rp_shard *s, const struct rp_sockaddr *to, const void *msg,
		       size_t len)
{
	struct rp_out_slot *o;

	if (len > sizeof(o->buf))
		return;
	if (s->nout == RP_BATCH)
		rp_shard_flush(s);
	o = &s->out[s->nout];
	memcpy(o->buf, msg, len);
	o->to = *to;
	s->out_iov[s->nout].iov_len = len;
	s->nout++;
}

void rp_shard_flush(struct rp_shard *s)
{
	unsigned int sent = 0;

	if (s->fd < 0) {
		s->nout = 0;
		return;
	}
	for (unsigned int i = 0; i < s->nout; i++)
		s->out_msgs[i].msg_hdr.msg_namelen = s->out[i].to.len;
	while (sent < s->nout) {
		/*
		 * Never block: a peer whose link is down holds our datagrams in
		 * its neighbour queue, and a blocked shard would serve no one.
		 * UDP may lose them; the protocol resends what matters.
		 */
		int n = sendmmsg(s->fd, &s->out_msgs[sent], s->nout - sent, MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* drop this one (a full send buffer, an unreachable peer) */
			STAT_INC(s->stats.tx_errors);
			sent++;
			continue;
		}
		STAT_ADD(s->stats.tx_datagrams, (uint64_t)n);
		sent += (unsigned int)n;
	}
	s->nout = 0;
}

struct rx_batch {
	struct mmsghdr msgs[RP_BATCH];
	struct iovec iov[RP_BATCH];
	struct rp_sockaddr from[RP_BATCH];
	uint8_t buf[RP_BATCH][RP_RX_BUF];
};

static void rx_batch_reset(struct rx_batch *b)
{
	for (unsigned int i = 0; i < RP_BATCH; i++) {
		b->iov[i].iov_base = b->buf[i];
		b->iov[i].iov_len = sizeof(b->buf[i]);
		b->msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &b->from[i].ss,
			.msg_namelen = sizeof(b->from[i].ss),
			.msg_iov = &b->iov[i],
			.msg_iovlen = 1,
		};
	}
}

/* Reads and handles what is queued on the socket; returns 0 or -errno. */
static int shard_receive(struct rp_shard *s, struct rx_batch *b)
{
	for (int round = 0; round < RX_ROUNDS_PER_TICK; round++) {
		int n;
		uint64_t now;

		rx_batch_reset(b);
		n = recvmmsg(s->fd, b->msgs, RP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return 0;
			/* ICMP errors queued on the socket by an earlier send */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
				continue;
			return -errno;
		}
		now = rp_now_ns();
		for (int i = 0; i < n; i++) {
			struct msghdr *h = &b->msgs[i].msg_hdr;

			if (h->msg_flags & MSG_TRUNC) {
				STAT_INC(s->stats.rx_datagrams);
				STAT_INC(s->stats.bad[RP_E_OVERSIZED]);
				continue;
			}
			b->from[i].len = h->msg_namelen;
			rp_store_handle(s, b->buf[i], b->msgs[i].msg_len, &b->from[i], now);
		}
		rp_shard_flush(s);
		if (n < RP_BATCH)
			return 0;
	}
	return 0;
}

static int min_timeout(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

int rp_shard_dump(struct rp_shard *s)
{
	char path[4200], tmp[4210], key[RP_KEYSTRLEN];
	FILE *f;

	if (!s->cfg->dump_path)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s.%u", s->cfg->dump_path, s->id);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f) {
		pr_warn("rp-store: Couldn't write the flow dump '%s': %s\n", tmp, strerror(errno));
		return -errno;
	}
	for (uint32_t i = 0; i < s->flows.count; i++) {
		const struct rp_flow *fl = &s->flows.flows[i];

		rp_key_str(&fl->key, key, sizeof(key));
		fprintf(f, "%u %s %u %u %u %u %u\n", fl->app_id, key, fl->owner, fl->epoch, fl->gen,
			fl->seq, fl->state_len);
	}
	if (fclose(f))
		return -errno;
	return rename(tmp, path) ? -errno : 0;	/* readers see a whole file */
}

int rp_shard_run(struct rp_shard *s, int stop_fd)
{
	struct pollfd pfd[3 + 8] = {
		{ .fd = s->fd, .events = POLLIN },
		{ .fd = stop_fd, .events = POLLIN },
		{ .fd = s->wake_fd, .events = POLLIN },
	};
	int tick_ms = (int)(rp_store_tick_ns(s->cfg) / 1000000ull);
	struct rx_batch *b;
	int err = 0;

	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	for (;;) {
		/* sleep until traffic, unless waiting requests or orphans need a tick */
		int timeout = rp_store_wants_tick(s) ? tick_ms : -1, nchain = 0, n;

		if (s->chain) {
			nchain = rp_chain_poll_fds(s, &pfd[3], rp_now_ns());
			timeout = min_timeout(timeout, rp_chain_poll_timeout_ms(s));
		}
		n = poll(pfd, 3 + (nfds_t)nchain, timeout);
		if (n < 0 && errno != EINTR) {
			err = -errno;
			break;
		}
		if (pfd[1].revents)
			break;
		if (pfd[2].revents & POLLIN) {
			uint64_t v;

			if (read(s->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				pr_warn("rp-store: shard %u: wake-up: %s\n", s->id, strerror(errno));
			if (atomic_exchange(&s->dump_req, 0))
				rp_shard_dump(s);
		}
		if (s->chain) {
			/* entries from upstream before requests: a tail's replies first */
			rp_chain_poll_done(s, &pfd[3], nchain, rp_now_ns());
			rp_shard_flush(s);
		}
		if (n > 0 && (pfd[0].revents & POLLIN)) {
			err = shard_receive(s, b);
			if (err)
				break;
			if (s->chain)
				rp_chain_flush(s);
		}
		if (rp_store_wants_tick(s)) {
			rp_store_tick(s, rp_now_ns());
			rp_shard_flush(s);
		}
	}
	free(b);
	return err;
}
