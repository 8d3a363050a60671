// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * nat-bench: TCP through a redplane switch in namespaces (user/topo.h: client,
 * one switch running rp-load, server, store beside), timed from one process
 * that holds both ends, so one clock times both:
 *   connect  SYN to established (a new NAT flow: both keys to the store)
 *   read     one byte from client to server (the read fast path)
 *   write    client FIN to EOF at the server (a write: through the store)
 * Then how long rp-load waited to see each write's copy: what a first
 * transmission through rp-load, rather than from XDP, would add.  Needs root.
 */
#include <arpa/inet.h>
#include <errno.h>
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

#include "bench_csv.h"
#include "stream.h"
#include "topo.h"

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
	rp_bench_csv_pct(3, "nat_tcp", name, v[n / 2], v[(n * 99) / 100]);
}

static double us_since(uint64_t t0)
{
	return (double)(rp_stream_now() - t0) / 1e3;
}

/* count connections, each timed at connect, one byte and FIN; 0 or -1 */
static int probe(struct rp_topo *t, int count, double *conn, double *rd, double *wr)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(8080) };
	int one = 1, lfd = rp_topo_socket(t->ns_server, AF_INET, SOCK_STREAM);
	char buf[16];

	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	if (lfd < 0)
		return -1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&srv, sizeof(srv)) || listen(lfd, 64)) {
		fprintf(stderr, "nat-bench: Couldn't listen: %s\n", strerror(errno));
		close(lfd);
		return -1;
	}
	for (int i = 0; i < count; i++) {
		int cfd = rp_topo_socket(t->ns_client, AF_INET, SOCK_STREAM), sfd = -1;
		uint64_t t0 = rp_stream_now();
		bool ok;

		ok = cfd >= 0 && !connect(cfd, (struct sockaddr *)&srv, sizeof(srv));
		conn[i] = us_since(t0);
		ok = ok && readable(lfd, 5000) && (sfd = accept(lfd, NULL, NULL)) >= 0;
		t0 = rp_stream_now();
		ok = ok && send(cfd, "x", 1, 0) == 1 && readable(sfd, 5000) &&
		     recv(sfd, buf, 1, 0) == 1;
		rd[i] = us_since(t0);
		t0 = rp_stream_now();
		ok = ok && !shutdown(cfd, SHUT_WR) && readable(sfd, 5000) &&
		     recv(sfd, buf, 1, 0) == 0;
		wr[i] = us_since(t0);
		if (sfd >= 0)
			close(sfd);
		if (cfd >= 0)
			close(cfd);
		if (!ok) {
			fprintf(stderr, "nat-bench: connection %d failed\n", i);
			close(lfd);
			return -1;
		}
	}
	close(lfd);
	return 0;
}

static void print_counters(struct rp_topo *t)
{
	static const char *const names[] = { "fast_path", "lease_req", "write_req", "grant",
					      "migrate", "ack", "nat_new", "nat_rev_req",
					      "drop_no_session", "reject" };

	printf("switch counters:");
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		printf(" %s=%lld", names[i], rp_topo_dp_stat(t, 0, names[i]));
	printf("\n");
}

/* rp-load reports, as it stops, how long its write copies waited for it. */
static void print_copy_wait(struct rp_topo *t)
{
	char line[512];
	FILE *f;

	rp_topo_stop(&t->sw[0].load_pid, false);
	f = fopen(t->sw[0].log, "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "copies reached rp-load ");
		double us;

		if (p && sscanf(p, "copies reached rp-load %lf us", &us) == 1)
			printf("first send through rp-load would wait: %.1f us more "
			       "(mean wake-up of rp-load for a request copy)\n", us);
	}
	if (f)
		fclose(f);
}

int main(int argc, char **argv)
{
	static const char *const load_args[] = { "--lease-ms", "1000", NULL };
	double *conn, *rd, *wr;
	char self[PATH_MAX], prefix[16];
	struct rp_topo t;
	int count = 200, c, err;
	ssize_t n;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || (count = atoi(optarg)) < 2 || count > 100000) {
			fprintf(stderr, "Usage: nat-bench [-n CONNECTIONS (default 200)]\n");
			return 2;
		}
	}
	if (geteuid() != 0) {
		fprintf(stderr, "nat-bench: needs root (network namespaces, XDP)\n");
		return 1;
	}
	conn = calloc((size_t)count, sizeof(double));
	rd = calloc((size_t)count, sizeof(double));
	wr = calloc((size_t)count, sizeof(double));
	/* rp-store and rp-load sit beside this binary */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (!conn || !rd || !wr || n <= 0)
		return 1;
	self[n] = '\0';
	snprintf(prefix, sizeof(prefix), "rprn%d", getpid() % 100000);

	err = rp_topo_create(&t, prefix, 1, dirname(self));
	if (err) {
		fprintf(stderr, "nat-bench: Couldn't build the topology: %s\n", strerror(-err));
		return 1;
	}
	err = rp_topo_start_store(&t, "1000", "0");
	if (!err)
		err = rp_topo_start_switch(&t, 0, load_args);
	if (!err) {
		printf("NAT through a redplane switch, %d TCP connections (namespaces, veth):\n",
		       count);
		err = probe(&t, count, conn, rd, wr);
	}
	if (!err) {
		report("connect", conn, count);
		report("read", rd, count);
		report("write", wr, count);
		printf("write path round trip (write - read, p50): %.1f us\n",
		       wr[count / 2] - rd[count / 2]);
		rp_bench_csv(3, "nat_tcp_write_round_trip_p50", wr[count / 2] - rd[count / 2], "us");
		print_counters(&t);
		print_copy_wait(&t);
	}
	rp_topo_destroy(&t);
	free(conn);
	free(rd);
	free(wr);
	return err ? 1 : 0;
}
