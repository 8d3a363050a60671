// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * mode-bench: write-centric traffic (the counter application: every packet
 * changes its flow's state) through a redplane switch in namespaces
 * (user/topo.h), linearizable mode against bounded mode, rounds interleaved
 * on the same topology and store:
 *   latency  UDP request and reply between client and server, one at a
 *            time (linearizable: each direction is a write to the store)
 *   rate     UDP datagrams over 16 flows as fast as one sender goes, for a
 *            second: delivered packets per second
 * One process holds both ends, so one clock times both.  Needs root.  With
 * RP_BENCH_CSV set, appends its figures there as section,name,value,unit
 * (section 3 of bench/report.md).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "stream.h"
#include "topo.h"

#define ROUNDS		3
#define FLOWS		16
#define SERVER_PORT	9000
#define RATE_NS		1000000000ull	/* how long the sender sends */
#define RATE_MAX	3000000		/* and at most this many datagrams */

static const char *const modes[2] = { "linearizable", "bounded" };

struct result {
	double p50_us[ROUNDS], p99_us[ROUNDS], pps[ROUNDS], offered[ROUNDS];
};

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

static int udp_socket(const char *ns, const char *addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = rp_topo_socket(ns, AF_INET, SOCK_DGRAM), big = 4 << 20;

	if (fd < 0)
		return -1;
	inet_pton(AF_INET, addr, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

static bool readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) == 1;
}

/* n request/reply exchanges from client port `port`: p50 and p99 in us; 0 or -1. */
static int latency(struct rp_topo *t, int srv, uint16_t port, int n, double *p50, double *p99)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(SERVER_PORT) };
	int cli = udp_socket(t->ns_client, RP_TOPO_CLIENT, port), got = 0;
	double *rtt = calloc((size_t)n, sizeof(double));
	char buf[64] = "request";

	if (cli < 0 || !rtt)
		goto out;
	inet_pton(AF_INET, RP_TOPO_SERVER, &to.sin_addr);
	for (int i = 0; i < n; i++) {
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		uint64_t t0 = rp_stream_now();

		if (sendto(cli, buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to)) < 0 ||
		    !readable(srv, 1000) ||
		    recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen) < 0 ||
		    sendto(srv, buf, sizeof(buf), 0, (struct sockaddr *)&from, flen) < 0 ||
		    !readable(cli, 1000) || recv(cli, buf, sizeof(buf), 0) < 0)
			continue;	/* lost (a write given up): not timed */
		rtt[got++] = (double)(rp_stream_now() - t0) / 1e3;
	}
	if (got >= n / 2) {
		qsort(rtt, (size_t)got, sizeof(double), cmp);
		*p50 = rtt[got / 2];
		*p99 = rtt[(got * 99) / 100];
	}
out:
	if (cli >= 0)
		close(cli);
	free(rtt);
	return got >= n / 2 ? 0 : -1;
}

/* Datagrams over FLOWS client ports from `base` for RATE_NS: delivered and offered rates. */
static int rate(struct rp_topo *t, int srv, uint16_t base, double *pps, double *offered)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(SERVER_PORT) };
	int cli[FLOWS], err = 0;
	uint64_t t0, sent = 0, rcvd = 0, elapsed;
	char buf[64] = "count me";

	inet_pton(AF_INET, RP_TOPO_SERVER, &to.sin_addr);
	for (int f = 0; f < FLOWS; f++) {
		cli[f] = udp_socket(t->ns_client, RP_TOPO_CLIENT, (uint16_t)(base + f));
		if (cli[f] < 0)
			err = -1;
		else
			fcntl(cli[f], F_SETFL, O_NONBLOCK);
	}
	/* each flow's first packet takes its lease: not part of the rate */
	for (int f = 0; !err && f < FLOWS; f++) {
		sendto(cli[f], buf, sizeof(buf), 0, (struct sockaddr *)&to, sizeof(to));
		if (!readable(srv, 1000) || recv(srv, buf, sizeof(buf), 0) < 0)
			err = -1;
	}
	if (err)
		goto out;
	t0 = rp_stream_now();
	while ((elapsed = rp_stream_now() - t0) < RATE_NS && sent < RATE_MAX) {
		for (int i = 0; i < 64; i++)
			if (sendto(cli[(sent + (uint64_t)i) % FLOWS], buf, sizeof(buf), 0,
				   (struct sockaddr *)&to, sizeof(to)) > 0)
				sent++;
		while (recv(srv, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			rcvd++;
	}
	/* what is still on its way (a write waits for its ACK) */
	while (readable(srv, 200))
		while (recv(srv, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			rcvd++;
	*pps = (double)rcvd / ((double)elapsed / 1e9);
	*offered = (double)sent / ((double)elapsed / 1e9);
out:
	for (int f = 0; f < FLOWS; f++)
		if (cli[f] >= 0)
			close(cli[f]);
	return err;
}

static void csv(FILE *f, const char *name, double v, const char *unit)
{
	if (f)
		fprintf(f, "3,%s,%.4g,%s\n", name, v, unit);
}

int main(int argc, char **argv)
{
	static const char *const app[] = { "--app", "counter", NULL };
	const char *csv_path = getenv("RP_BENCH_CSV");
	struct result res[2] = { 0 };
	char self[PATH_MAX], prefix[16];
	struct rp_topo t;
	int n = 1000, c, err, srv = -1;
	FILE *out = NULL;
	ssize_t len;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || (n = atoi(optarg)) < 10 || n > 100000) {
			fprintf(stderr, "Usage: mode-bench [-n EXCHANGES per round (default 1000)]\n");
			return 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "mode-bench: needs root (network namespaces, XDP)\n");
		return 1;
	}
	len = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (len <= 0)
		return 1;
	self[len] = '\0';
	snprintf(prefix, sizeof(prefix), "rpm%d", getpid() % 100000);
	err = rp_topo_create(&t, prefix, 1, dirname(self));
	if (err) {
		fprintf(stderr, "mode-bench: Couldn't build the topology: %s\n", strerror(-err));
		return 1;
	}
	t.app_args = app;
	err = rp_topo_start_store(&t, "1000", "0");
	if (!err) {
		srv = udp_socket(t.ns_server, RP_TOPO_SERVER, SERVER_PORT);
		err = srv < 0 ? -errno : 0;
	}
	printf("Write-centric traffic (the counter app) through one switch, linearizable vs "
	       "bounded mode,\n%d rounds interleaved; %d request/reply exchanges, then %d flows "
	       "sent to for %.0f s:\n", ROUNDS, n, FLOWS, RATE_NS / 1e9);
	for (int r = 0; !err && r < ROUNDS; r++) {
		for (int m = 0; !err && m < 2; m++) {
			/* fresh client ports each round: no flow of an earlier session */
			uint16_t base = (uint16_t)(20000 + (r * 2 + m) * 100);
			const char *args[] = { "--lease-ms", "1000", "--mode", modes[m], NULL };

			err = rp_topo_start_switch(&t, 0, args);
			if (!err)
				err = latency(&t, srv, base + FLOWS, n, &res[m].p50_us[r],
					      &res[m].p99_us[r]);
			if (!err)
				err = rate(&t, srv, base, &res[m].pps[r], &res[m].offered[r]);
			if (err)
				fprintf(stderr, "mode-bench: %s round %d failed\n", modes[m], r + 1);
			rp_topo_stop(&t.sw[0].load_pid, false);
		}
	}
	if (!err) {
		double p50[2], p99[2], pps[2], off[2];
		char name[64];

		if (csv_path)
			out = fopen(csv_path, "a");
		for (int m = 0; m < 2; m++) {
			p50[m] = median(res[m].p50_us, ROUNDS);
			p99[m] = median(res[m].p99_us, ROUNDS);
			pps[m] = median(res[m].pps, ROUNDS);
			off[m] = median(res[m].offered, ROUNDS);
			printf("  %-12s latency p50 %7.1f us  p99 %7.1f us   rate %9.0f pkt/s "
			       "delivered (%9.0f offered)\n",
			       modes[m], p50[m], p99[m], pps[m], off[m]);
			snprintf(name, sizeof(name), "%s_p50", modes[m]);
			csv(out, name, p50[m], "us");
			snprintf(name, sizeof(name), "%s_p99", modes[m]);
			csv(out, name, p99[m], "us");
			snprintf(name, sizeof(name), "%s_rate", modes[m]);
			csv(out, name, pps[m], "pkt/s");
			snprintf(name, sizeof(name), "%s_offered", modes[m]);
			csv(out, name, off[m], "pkt/s");
		}
		printf("  bounded/linearizable: rate %.2fx, p50 latency %.2fx (medians of %d rounds)\n",
		       pps[1] / pps[0], p50[1] / p50[0], ROUNDS);
		csv(out, "rate_ratio_bounded_over_linearizable", pps[1] / pps[0], "ratio");
		csv(out, "p50_ratio_bounded_over_linearizable", p50[1] / p50[0], "ratio");
		if (out)
			fclose(out);
	}
	if (srv >= 0)
		close(srv);
	rp_topo_destroy(&t);
	return err ? 1 : 0;
}
