// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcp-probe: times TCP connections from one network namespace to another,
 * through whatever sits between (here: a redplane switch).  One process
 * holds both ends, so one clock times both:
 *   connect  SYN to established (a new NAT flow: both keys to the store)
 *   read     one byte from client to server (the read fast path)
 *   write    client FIN to EOF at the server (a write: through the store)
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "redplane/addr.h"

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int socket_in(const char *ns, int type)
{
	char path[128];
	int self = open("/proc/self/ns/net", O_RDONLY), fd, nsfd;

	snprintf(path, sizeof(path), "/var/run/netns/%s", ns);
	nsfd = open(path, O_RDONLY);
	if (self < 0 || nsfd < 0 || setns(nsfd, CLONE_NEWNET)) {
		fprintf(stderr, "tcp-probe: Couldn't enter netns '%s': %s\n", ns, strerror(errno));
		exit(1);
	}
	fd = socket(AF_INET, type, 0);
	setns(self, CLONE_NEWNET);
	close(self);
	close(nsfd);
	return fd;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	printf("%-8s p50 %8.1f us   p99 %8.1f us   (n=%d)\n", name, v[n / 2], v[(n * 99) / 100],
	       n);
}

int main(int argc, char **argv)
{
	const char *cns = NULL, *sns = NULL;
	struct rp_sockaddr srv = { 0 };
	int count = 200, c;
	double *conn, *rd, *wr;
	char buf[16];

	while ((c = getopt(argc, argv, "c:s:a:n:")) != -1) {
		switch (c) {
		case 'c': cns = optarg; break;
		case 's': sns = optarg; break;
		case 'a':
			if (rp_addr_parse(optarg, &srv) || srv.ss.ss_family != AF_INET)
				return 2;
			break;
		case 'n': count = atoi(optarg); break;
		default:
			fprintf(stderr, "Usage: tcp-probe -c CLIENT_NS -s SERVER_NS -a A.B.C.D:PORT [-n COUNT]\n");
			return 2;
		}
	}
	if (!cns || !sns || !srv.len || count < 2 || count > 100000)
		return 2;
	conn = calloc((size_t)count, sizeof(double));
	rd = calloc((size_t)count, sizeof(double));
	wr = calloc((size_t)count, sizeof(double));

	int one = 1, lfd = socket_in(sns, SOCK_STREAM);

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&srv.ss, srv.len) || listen(lfd, 64)) {
		fprintf(stderr, "tcp-probe: Couldn't listen: %s\n", strerror(errno));
		return 1;
	}
	for (int i = 0; i < count; i++) {
		int cfd = socket_in(cns, SOCK_STREAM), sfd;
		double t0 = now_us();

		if (connect(cfd, (struct sockaddr *)&srv.ss, srv.len)) {
			fprintf(stderr, "tcp-probe: connect %d: %s\n", i, strerror(errno));
			return 1;
		}
		conn[i] = now_us() - t0;
		if (!readable(lfd, 5000) || (sfd = accept(lfd, NULL, NULL)) < 0)
			return 1;
		t0 = now_us();
		if (send(cfd, "x", 1, 0) != 1 || !readable(sfd, 5000) || recv(sfd, buf, 1, 0) != 1)
			return 1;
		rd[i] = now_us() - t0;
		t0 = now_us();
		shutdown(cfd, SHUT_WR);
		if (!readable(sfd, 5000) || recv(sfd, buf, 1, 0) != 0) {
			fprintf(stderr, "tcp-probe: no FIN on connection %d\n", i);
			return 1;
		}
		wr[i] = now_us() - t0;
		close(sfd);
		close(cfd);
	}
	report("connect", conn, count);
	report("read", rd, count);
	report("write", wr, count);
	printf("write path round trip (write - read, p50): %.1f us\n", wr[count / 2] - rd[count / 2]);
	close(lfd);
	return 0;
}
