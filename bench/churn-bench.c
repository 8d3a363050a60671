// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * churn-bench: short TCP connections (connect, a request, a reply, close)
 * through one NAT switch in namespaces (user/topo.h), one after another,
 * all to one server port, for a few seconds per round; the connections per
 * second of
 *   redplane  rp-load and rp-store, short timeouts: every connection's two
 *             keys to the store and, once idle, deleted there again;
 *   norepl    the same XDP NAT built without replication, attached here:
 *             state kept locally (its map large enough for the run);
 *   nftables  the kernel's NAT (masquerade; conntrack), no XDP;
 * rounds interleaved, medians reported, with the peak flows the switch and
 * the store held and the store's resident bytes per live flow.  Needs root.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_csv.h"
#include "redplane/dp.h"
#include "redplane_norepl.skel.h"
#include "topo.h"

#define SECTION		8	/* the report's churn section */
#define SERVER_PORT	7000
#define MODES		3
#define MAX_ROUNDS	9

enum { REDPLANE, NOREPL, NFTABLES };
static const char *const mode_names[MODES] = { "redplane", "norepl", "nftables" };

struct mode {
	struct rp_topo t;
	struct redplane_norepl *norepl;
	int lfd;
	double cps[MAX_ROUNDS];
	unsigned long failed;
	long long peak_switch, peak_store;
};

static char stats_path[96];

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long store_stat(const char *name)
{
	return rp_topo_file_stat(stats_path, name);
}

static long long store_rss_bytes(const struct rp_topo *t)
{
	char path[64], line[256];
	long long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)t->store_pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %lld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static void round_once(struct mode *m, int mode, unsigned int r, double secs)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(SERVER_PORT) };
	double t0 = mono(), now = t0, next_sample = t0;
	unsigned long n = 0;

	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	while ((now = mono()) - t0 < secs) {
		if (rp_topo_short_conn(&m->t, m->lfd, &srv, 3000))
			m->failed++;
		else
			n++;
		if (mode == REDPLANE && now >= next_sample) {
			long long sw = rp_topo_agent_stat(&m->t, 0, "flows_entries");
			long long st = store_stat("flows");

			m->peak_switch = sw > m->peak_switch ? sw : m->peak_switch;
			m->peak_store = st > m->peak_store ? st : m->peak_store;
			next_sample = now + 0.25;
		}
	}
	m->cps[r] = n / (now - t0);
}

/* The XDP NAT without replication on the switch's two links. */
static int attach_norepl(struct mode *m)
{
	struct redplane_norepl *s = redplane_norepl__open();
	int fd, err;

	if (!s)
		return -errno;
	m->norepl = s;
	s->rodata->cfg_app = RP_APP_NAT;
	s->rodata->cfg_nat_int_net = htonl(0x0a010000u);	/* as rp_topo_start_switch */
	s->rodata->cfg_nat_int_mask = htonl(0xffffff00u);
	inet_pton(AF_INET, RP_TOPO_EXT, (void *)&s->rodata->cfg_nat_ext_addr);
	s->rodata->cfg_nat_port_base = 1024;
	s->rodata->cfg_nat_port_span = 64512;
	bpf_program__set_autoload(s->progs.rp_app_fw, false);
	bpf_program__set_autoload(s->progs.rp_app_lb, false);
	bpf_program__set_autoload(s->progs.rp_app_counter, false);
	bpf_program__set_autoload(s->progs.rp_app_sketch, false);
	bpf_map__set_max_entries(s->maps.flows, 1u << 20);
	err = redplane_norepl__load(s);
	if (err)
		return err;
	fd = bpf_program__fd(s->progs.rp_root);
	err = rp_topo_prog_array(bpf_map__fd(s->maps.progs), fd, RP_APP_NAT,
				 bpf_program__fd(s->progs.rp_app_nat));
	if (err)
		return err;
	err = rp_topo_xdp_attach(m->t.sw[0].ns, m->t.sw[0].if_int, fd);
	if (!err)
		err = rp_topo_xdp_attach(m->t.sw[0].ns, m->t.sw[0].if_ext, fd);
	return err;
}

static int setup(struct mode *m, int mode, const char *bin_dir)
{
	static const char *const load_args[] = {
		"--nat-ports", "1024-65535", "--nat-switches", "1", "--timeout",
		"tcp_syn_sent=2,tcp_established=3,tcp_fin_wait=1,tcp_close_wait=1,"
		"tcp_time_wait=1,tcp_close=1", NULL,
	};
	static const char *store_args[5];	/* NULL-terminated */
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(SERVER_PORT) };
	char prefix[16];
	int one = 1, err;

	snprintf(prefix, sizeof(prefix), "rpc%d%d", mode, getpid() % 10000);
	err = rp_topo_create(&m->t, prefix, 1, bin_dir);
	if (err)
		return err;
	if (mode == REDPLANE) {
		store_args[0] = "--stats-file";
		store_args[1] = stats_path;
		store_args[2] = "--orphan-timeout";
		store_args[3] = "10";
		m->t.store_args = store_args;
		err = rp_topo_start_store(&m->t, "200", "0");
		if (!err)
			err = rp_topo_start_switch(&m->t, 0, load_args);
	} else if (mode == NOREPL) {
		err = attach_norepl(m);
	} else {
		err = rp_topo_kernel_nat(&m->t, 0);
	}
	if (err)
		return err;
	m->lfd = rp_topo_socket(m->t.ns_server, AF_INET, SOCK_STREAM);
	if (m->lfd < 0)
		return m->lfd;
	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	setsockopt(m->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(m->lfd, (struct sockaddr *)&srv, sizeof(srv)) || listen(m->lfd, 128))
		return -errno;
	return 0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, unsigned int n)
{
	qsort(v, n, sizeof(*v), cmp);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
	struct mode m[MODES] = { 0 };
	bool made[MODES] = { 0 };
	unsigned int rounds = 3;
	double secs = 3, med[MODES];
	char self[PATH_MAX], *dir;
	long long rss0 = -1, rss, flows;
	int c, err = 0;
	ssize_t n;

	while ((c = getopt(argc, argv, "r:s:")) != -1) {
		if (c == 'r' && (rounds = (unsigned int)atoi(optarg)) >= 1 && rounds <= MAX_ROUNDS)
			continue;
		if (c == 's' && (secs = atof(optarg)) >= 0.5 && secs <= 600)
			continue;
		fprintf(stderr, "Usage: churn-bench [-r ROUNDS (3, at most %d)] [-s SECONDS a round (3)]\n",
			MAX_ROUNDS);
		return 2;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "churn-bench: needs root (network namespaces, XDP)\n");
		return 1;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	dir = dirname(self);
	snprintf(stats_path, sizeof(stats_path), "/tmp/rp-churn-bench-%d.stats", getpid());
	for (int i = 0; i < MODES && !err; i++) {
		err = setup(&m[i], i, dir);
		made[i] = m[i].t.prefix[0];
		if (err)
			fprintf(stderr, "churn-bench: Couldn't set %s up: %s\n", mode_names[i],
				strerror(-err));
	}
	if (!err) {
		rss0 = store_rss_bytes(&m[REDPLANE].t);
		printf("Churn: short TCP connections through one NAT switch, %u interleaved rounds of %.1f s:\n",
		       rounds, secs);
		for (unsigned int r = 0; r < rounds; r++)
			for (int i = 0; i < MODES; i++)
				round_once(&m[i], i, r, secs);
		rss = store_rss_bytes(&m[REDPLANE].t);
		flows = store_stat("flows");
		for (int i = 0; i < MODES; i++) {
			char name[64];

			med[i] = median(m[i].cps, rounds);
			printf("  %-9s %8.0f connections/s (median), %lu failed\n", mode_names[i],
			       med[i], m[i].failed);
			snprintf(name, sizeof(name), "churn_%s_cps", mode_names[i]);
			rp_bench_csv(SECTION, name, med[i], "connections/s");
		}
		printf("  redplane / norepl %.2f, redplane / nftables %.2f\n", med[0] / med[1],
		       med[0] / med[2]);
		rp_bench_csv(SECTION, "churn_redplane_vs_norepl", med[0] / med[1], "ratio");
		rp_bench_csv(SECTION, "churn_redplane_vs_nftables", med[0] / med[2], "ratio");
		printf("  redplane peak flows: %lld on the switch, %lld in the store\n",
		       m[0].peak_switch, m[0].peak_store);
		rp_bench_csv(SECTION, "churn_peak_switch_flows", (double)m[0].peak_switch, "flows");
		rp_bench_csv(SECTION, "churn_peak_store_flows", (double)m[0].peak_store, "flows");
		/* the table's pages are touched up to its peak and reused after */
		if (rss0 > 0 && rss > rss0 && m[0].peak_store > 0) {
			printf("  store resident memory per flow at the peak: %.0f bytes (%lld flows live at the end)\n",
			       (double)(rss - rss0) / m[0].peak_store, flows);
			rp_bench_csv(SECTION, "churn_store_bytes_per_flow",
				     (double)(rss - rss0) / m[0].peak_store, "bytes");
		}
	}
	for (int i = 0; i < MODES; i++) {
		if (m[i].lfd > 0)
			close(m[i].lfd);
		if (made[i])
			rp_topo_destroy(&m[i].t);
		redplane_norepl__destroy(m[i].norepl);
	}
	unlink(stats_path);
	return err ? 1 : 0;
}
