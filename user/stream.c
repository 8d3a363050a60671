// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"
#include "topo.h"

uint64_t rp_stream_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

int rp_stream_open(struct rp_stream *s, struct rp_topo *t, unsigned int n, uint16_t port)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, lfd, err = 0;

	memset(s, 0, sizeof(*s));
	s->c = calloc(n, sizeof(*s->c));
	if (!s->c)
		return -ENOMEM;
	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	lfd = rp_topo_socket(t->ns_server, AF_INET, SOCK_STREAM);
	if (lfd < 0) {
		free(s->c);
		s->c = NULL;
		return lfd;
	}
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&srv, sizeof(srv)) || listen(lfd, (int)n + 8)) {
		err = -errno;
		goto out;
	}
	for (s->n = 0; s->n < n; s->n++) {
		struct rp_stream_conn *c = &s->c[s->n];

		c->cfd = rp_topo_socket(t->ns_client, AF_INET, SOCK_STREAM);
		if (c->cfd < 0) {
			err = c->cfd;
			goto out;
		}
		/* bounded: a connect that never completes must not hang the caller */
		setsockopt(c->cfd, SOL_SOCKET, SO_SNDTIMEO,
			   &(struct timeval){ .tv_sec = 5 }, sizeof(struct timeval));
		if (connect(c->cfd, (struct sockaddr *)&srv, sizeof(srv))) {
			err = -errno;
			close(c->cfd);
			goto out;
		}
		if (!readable(lfd, 5000)) {
			err = -ETIMEDOUT;
			close(c->cfd);
			goto out;
		}
		c->sfd = accept(lfd, NULL, NULL);
		if (c->sfd < 0) {
			err = -errno;
			close(c->cfd);
			goto out;
		}
		setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->last_rx_ns = rp_stream_now();
	}
out:
	close(lfd);
	return err;
}

static void receive(struct rp_stream_conn *c, uint64_t now, uint64_t mark)
{
	uint8_t buf[4096];

	for (;;) {
		ssize_t n = recv(c->sfd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n == 0) {
			c->error = -1;
			return;
		}
		if (n < 0) {
			if (errno != EAGAIN)
				c->error = errno;
			return;
		}
		if (now - c->last_rx_ns > c->max_gap_ns)
			c->max_gap_ns = now - c->last_rx_ns;
		c->last_rx_ns = now;
		if (mark && !c->first_rx_after_ns)
			c->first_rx_after_ns = now;
		for (ssize_t i = 0; i < n; i++) {
			uint32_t v;

			c->partial[c->npartial++] = buf[i];
			if (c->npartial < 4)
				continue;
			memcpy(&v, c->partial, 4);
			if (ntohl(v) != c->received)
				c->out_of_order = true;
			c->received++;
			c->npartial = 0;
		}
	}
}

static void check_client(struct rp_stream_conn *c)
{
	uint8_t buf[64];
	ssize_t n = recv(c->cfd, buf, sizeof(buf), MSG_DONTWAIT);

	/* the server never writes: anything here is a reset or an EOF */
	if (n == 0 && !c->error)
		c->error = -1;
	else if (n < 0 && errno != EAGAIN && !c->error)
		c->error = errno;
}

void rp_stream_step(struct rp_stream *s)
{
	uint64_t now = rp_stream_now();

	for (unsigned int i = 0; i < s->n; i++) {
		struct rp_stream_conn *c = &s->c[i];
		uint32_t v = htonl(c->sent);

		if (c->error)
			continue;
		/* MSG_NOSIGNAL: a reset connection is an error, not a SIGPIPE */
		if (send(c->cfd, &v, sizeof(v), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(v))
			c->sent++;
		else if (errno != EAGAIN)
			c->error = errno;
		receive(c, now, s->mark_ns);
		check_client(c);
	}
}

void rp_stream_mark(struct rp_stream *s)
{
	s->mark_ns = rp_stream_now();
}

bool rp_stream_drain(struct rp_stream *s, int ms)
{
	uint64_t end = rp_stream_now() + (uint64_t)ms * 1000000ull;

	while (rp_stream_now() < end) {
		bool all = true;

		for (unsigned int i = 0; i < s->n; i++) {
			struct rp_stream_conn *c = &s->c[i];

			if (c->error)
				continue;
			receive(c, rp_stream_now(), s->mark_ns);
			if (c->received != c->sent)
				all = false;
		}
		if (all)
			return true;
		readable(s->c[0].sfd, 5);
	}
	return false;
}

void rp_stream_close(struct rp_stream *s)
{
	for (unsigned int i = 0; i < s->n; i++) {
		close(s->c[i].cfd);
		close(s->c[i].sfd);
	}
	free(s->c);
	memset(s, 0, sizeof(*s));
}

unsigned int rp_stream_healthy(const struct rp_stream *s)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < s->n; i++)
		n += !s->c[i].error && !s->c[i].out_of_order;
	return n;
}

uint64_t rp_stream_max_gap_ns(const struct rp_stream *s)
{
	uint64_t m = 0;

	for (unsigned int i = 0; i < s->n; i++)
		if (s->c[i].max_gap_ns > m)
			m = s->c[i].max_gap_ns;
	return m;
}
