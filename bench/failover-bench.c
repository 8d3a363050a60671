// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * failover-bench: what a switch crash and a live reroute cost the TCP
 * connections through a NAT, redplane against the kernel's nftables NAT
 * with its state synchronised by conntrackd (FTFW), on the same topology
 * (user/topo.h: client, sw1, sw2, server; the store for redplane, a
 * dedicated link between the switches for conntrackd).  Each run builds a
 * fresh topology and carries, through sw1:
 *   - one bulk TCP stream, paced, whose received bytes are counted per 10 ms:
 *     the stall (the longest gap between two reads at the receiver that ends
 *     after the event) and the throughput around the event;
 *   - 200 sequence-checked TCP connections (user/stream.h): how many survive,
 *     every byte delivered in order.
 * The streams run in a thread of their own, so that the failover's commands,
 * run from the main thread, never delay a read and pass for a stall.
 * docs/BENCH-FAILOVER.md says what is measured and how the baseline is set up.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>
#include <arpa/inet.h>

#include "redplane/log.h"
#include "redplane/parse.h"
#include "stream.h"
#include "topo.h"

#define NS_PER_MS	1000000ull
#define BIN_MS		10	/* timeline resolution */
#define STEP_MS		10	/* one counter per connection every 10 ms */
#define BULK_PORT	5001
#define CONN_PORT	8080
#define SYNC_NET	"10.30.0"	/* the dedicated link between sw1 and sw2, a /30 */

enum rp_system { SYS_REDPLANE, SYS_CONNTRACKD, NSYS };
enum rp_event { EV_CRASH, EV_REROUTE, NEV };
static const char *const sys_name[NSYS] = { "redplane", "nft-conntrackd" };
static const char *const ev_name[NEV] = { "crash", "reroute" };

struct opts {
	uint32_t runs, conns, lease_ms, before_ms, after_ms, drain_ms, rate_mbps;
	bool sys[NSYS], ev[NEV];
	bool debug;	/* -d: dump counters of a stuck run */
};

struct result {
	bool ok;		/* measured: the run's setup worked */
	double stall_ms;	/* INFINITY: the stream never resumed */
	unsigned int survived, total;
	double takeover_ms;	/* conntrackd: sw2's commit, flush, resync, bulk send */
	int synced;		/* conntrackd: sw2's external cache at the event; -1 unknown */
	uint64_t *bins;		/* received bytes per BIN_MS from the run's start */
	unsigned int nbins;
};

/* What the stream thread shares with the main thread. */
struct io {
	struct rp_stream conns;
	int bulk_c, bulk_s;
	uint64_t start_ns;
	_Atomic uint64_t fail_ns;	/* 0 until the event */
	atomic_bool stop;
	uint64_t *bins;
	unsigned int nbins;
	uint64_t last_rx_ns, stall_ns;
	bool bulk_broken, rx_after_fail;
};

struct bench {
	struct opts o;
	char bin[PATH_MAX];
	char prefix[16];
	char conntrackd[64];
	char not_measured[NSYS][256];
	struct rp_topo topo;
	bool topo_up;
	pid_t ctd_pid[RP_TOPO_SWITCHES];
	char ctd_conf[RP_TOPO_SWITCHES][128], ctd_log[RP_TOPO_SWITCHES][128];
	char ctd_error[256];	/* why conntrackd did not start, in the last run */
	char store_stats[PATH_MAX];	/* rp-store's --stats-file, in the run's directory */
	bool ctd_started;	/* in some run */
	struct result *res[NSYS][NEV];
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void sleep_until(uint64_t ns)
{
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000ull),
			       .tv_nsec = (long)(ns % 1000000000ull) };

	while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- the streams ---- */

static int open_bulk(struct rp_topo *t, unsigned int rate_mbps, int *cfd, int *sfd)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(BULK_PORT) };
	int one = 1, lfd = rp_topo_socket(t->ns_server, AF_INET, SOCK_STREAM), err = 0;
	struct pollfd p;

	*cfd = *sfd = -1;
	if (lfd < 0)
		return lfd;
	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	*cfd = rp_topo_socket(t->ns_client, AF_INET, SOCK_STREAM);
	if (bind(lfd, (struct sockaddr *)&srv, sizeof(srv)) || listen(lfd, 1) || *cfd < 0) {
		err = *cfd < 0 ? *cfd : -errno;
		goto out;
	}
	if (rate_mbps) {
		/* the kernel's TCP pacing: a steady rate, and no burst after a stall */
		unsigned int bytes_per_s = rate_mbps * 125000u;

		setsockopt(*cfd, SOL_SOCKET, SO_MAX_PACING_RATE, &bytes_per_s,
			   sizeof(bytes_per_s));
	}
	if (connect(*cfd, (struct sockaddr *)&srv, sizeof(srv))) {
		err = -errno;
		goto out;
	}
	p = (struct pollfd){ .fd = lfd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1 || (*sfd = accept(lfd, NULL, NULL)) < 0)
		err = -ETIMEDOUT;
out:
	close(lfd);
	return err;
}

static void bulk_read(struct io *io, uint64_t now)
{
	static char buf[65536];
	uint64_t fail = atomic_load(&io->fail_ns);

	for (;;) {
		ssize_t n = recv(io->bulk_s, buf, sizeof(buf), MSG_DONTWAIT);
		uint64_t bin = (now - io->start_ns) / (BIN_MS * NS_PER_MS);

		if (n <= 0) {
			if (n == 0 || errno != EAGAIN)
				io->bulk_broken = true;
			return;
		}
		if (bin < io->nbins)
			io->bins[bin] += (uint64_t)n;
		if (fail && now > fail) {
			/* a gap that ends after the event is the event's */
			if (now - io->last_rx_ns > io->stall_ns)
				io->stall_ns = now - io->last_rx_ns;
			io->rx_after_fail = true;
		}
		io->last_rx_ns = now;
	}
}

static void bulk_write(struct io *io)
{
	static const char buf[65536];

	if (send(io->bulk_c, buf, sizeof(buf), MSG_DONTWAIT | MSG_NOSIGNAL) < 0 &&
	    errno != EAGAIN)
		io->bulk_broken = true;
}

/* Bounded by the main thread, which sets stop after before + after ms. */
static void *stream_thread(void *arg)
{
	struct io *io = arg;
	uint64_t next_step = io->start_ns;

	io->last_rx_ns = io->start_ns;
	while (!atomic_load(&io->stop)) {
		uint64_t now = rp_stream_now(), fail = atomic_load(&io->fail_ns), wait;
		struct pollfd p[2] = { { .fd = io->bulk_s, .events = POLLIN },
				       { .fd = io->bulk_c, .events = POLLOUT } };
		struct timespec ts;

		if (fail && !io->conns.mark_ns)
			io->conns.mark_ns = fail;	/* each connection's first byte after it */
		if (now >= next_step) {
			rp_stream_step(&io->conns);
			next_step += STEP_MS * NS_PER_MS;
			if (next_step < now)
				next_step = now + STEP_MS * NS_PER_MS;	/* no catching up */
		}
		if (io->bulk_broken)
			p[0].fd = p[1].fd = -1;
		wait = next_step > now ? next_step - now : 0;
		ts = (struct timespec){ .tv_sec = 0, .tv_nsec = (long)wait };
		if (ppoll(p, 2, &ts, NULL) <= 0)
			continue;
		now = rp_stream_now();
		if (p[0].revents)
			bulk_read(io, now);
		if (p[1].revents && !io->bulk_broken)
			bulk_write(io);
	}
	return NULL;
}

/* ---- conntrackd ---- */

/* A kernel option: 'y', 'm', 'n', or '?' when the kernel does not tell. */
static char kconfig(const char *sym)
{
	char line[256], want[80];
	gzFile f = gzopen("/proc/config.gz", "rb");
	char state = '?';

	if (!f)
		return state;
	state = 'n';
	snprintf(want, sizeof(want), "CONFIG_%s=", sym);
	while (gzgets(f, line, sizeof(line))) {
		if (!strncmp(line, want, strlen(want))) {
			state = line[strlen(want)];
			break;
		}
	}
	gzclose(f);
	return state;
}

/* Whether conntrackd can run here; if not, why, in b->not_measured. */
static bool conntrackd_usable(struct bench *b)
{
	static const struct {
		const char *sym, *module, *what;
	} need[] = {
		{ "NF_CONNTRACK", "nf_conntrack", "connection tracking" },
		{ "NF_CONNTRACK_EVENTS", NULL, "conntrack events, which conntrackd listens to" },
		{ "NETFILTER_NETLINK", "nfnetlink", "netfilter netlink" },
		{ "NF_CT_NETLINK", "nf_conntrack_netlink",
		  "ctnetlink, through which conntrackd reads and commits states" },
		{ "NF_NAT", "nf_nat", "NAT" },
		{ "NFT_NAT", "nft_nat", "nftables NAT" },
	};
	char *msg = b->not_measured[SYS_CONNTRACKD];
	size_t size = sizeof(b->not_measured[SYS_CONNTRACKD]);

	if (!access("/usr/sbin/conntrackd", X_OK)) {
		snprintf(b->conntrackd, sizeof(b->conntrackd), "/usr/sbin/conntrackd");
	} else {
		snprintf(msg, size, "conntrackd is not installed (scripts/deps.sh installs "
				    "Debian's conntrackd)");
		return false;
	}
	if (system("nft --version >/dev/null 2>&1")) {
		snprintf(msg, size, "nft is not installed (scripts/deps.sh installs nftables)");
		return false;
	}
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		char state = kconfig(need[i].sym), path[96];

		if (state == 'n') {
			snprintf(msg, size, "this kernel is built without CONFIG_%s (%s)",
				 need[i].sym, need[i].what);
			return false;
		}
		snprintf(path, sizeof(path), "/sys/module/%s", need[i].module ? need[i].module : "");
		if (state == 'm' && need[i].module && access(path, F_OK)) {
			snprintf(msg, size, "CONFIG_%s=m (%s) but module %s is not loaded, and "
					    "no module can be loaded on this machine",
				 need[i].sym, need[i].what, need[i].module);
			return false;
		}
	}
	return true;
}

/*
 * FTFW over UDP on the dedicated link (the example configuration's FTFW
 * mode; unicast rather than its multicast, there being one peer), TCP
 * states only, this switch's own addresses ignored so that only the
 * connections it forwards are synchronised.  Files in the topology's
 * directory: a config, a lock and a control socket for each namespace.
 */
static int conntrackd_start(struct bench *b, unsigned int i)
{
	struct rp_topo *t = &b->topo;
	const char *argv[] = { b->conntrackd, "-C", b->ctd_conf[i], NULL };
	unsigned int me = i + 1, peer = 2 - i;
	FILE *f;

	snprintf(b->ctd_conf[i], sizeof(b->ctd_conf[i]), "%s/conntrackd-sw%u.conf", t->dir, me);
	snprintf(b->ctd_log[i], sizeof(b->ctd_log[i]), "%s/conntrackd-sw%u.log", t->dir, me);
	f = fopen(b->ctd_conf[i], "w");
	if (!f)
		return -errno;
	fprintf(f,
		"Sync {\n"
		"\tMode FTFW {\n\t}\n"
		"\tUDP {\n"
		"\t\tIPv4_address " SYNC_NET ".%u\n"
		"\t\tIPv4_Destination_Address " SYNC_NET ".%u\n"
		"\t\tPort 3780\n"
		"\t\tInterface %sx%u\n"
		"\t\tSndSocketBuffer 1249280\n"
		"\t\tRcvSocketBuffer 1249280\n"
		"\t\tChecksum on\n"
		"\t}\n"
		"}\n"
		"General {\n"
		"\tSystemd off\n"
		"\tHashSize 8192\n"
		"\tHashLimit 65536\n"
		"\tLogFile off\n"
		"\tLockFile %s/conntrackd-sw%u.lock\n"
		"\tUNIX {\n\t\tPath %s/conntrackd-sw%u.ctl\n\t}\n"
		"\tNetlinkBufferSize 2097152\n"
		"\tNetlinkBufferSizeMaxGrowth 8388608\n"
		"\tFilter From Userspace {\n"
		"\t\tProtocol Accept {\n\t\t\tTCP\n\t\t}\n"
		"\t\tAddress Ignore {\n"
		"\t\t\tIPv4_address 127.0.0.1\n"
		"\t\t\tIPv4_address " SYNC_NET ".%u\n"
		"\t\t\tIPv4_address 10.10.%u.1\n"
		"\t\t\tIPv4_address 10.20.%u.1\n"
		"\t\t}\n"
		"\t}\n"
		"}\n",
		me, peer, b->prefix, me, t->dir, me, t->dir, me, me, me, me);
	fclose(f);
	/* in the foreground (console mode), its messages in the log */
	b->ctd_pid[i] = rp_topo_spawn(t->sw[i].ns, argv, b->ctd_log[i]);
	if (b->ctd_pid[i] < 0)
		return (int)b->ctd_pid[i];
	if (!rp_topo_wait_log(b->ctd_log[i], "initialization completed", 5000)) {
		char line[256] = "no message", cmd[400];
		FILE *p;

		/* its first complaint says more than its last words */
		snprintf(cmd, sizeof(cmd), "grep -m 1 -E '\\[(ERROR|warning)\\]' %s || tail -n 1 %s",
			 b->ctd_log[i], b->ctd_log[i]);
		p = popen(cmd, "r");
		if (p && fgets(line, sizeof(line), p))
			line[strcspn(line, "\n")] = '\0';
		if (p)
			pclose(p);
		snprintf(b->ctd_error, sizeof(b->ctd_error), "conntrackd did not start on sw%u: %s",
			 me, line);
		return -ETIMEDOUT;
	}
	return 0;
}

/* conntrackd's client on switch i: one command to the running daemon. */
static int conntrackd_cmd(struct bench *b, unsigned int i, const char *flag)
{
	int rc = rp_topo_sh(b->topo.sw[i].ns, "%s -C %s %s >>%s.ctl 2>&1", b->conntrackd,
			    b->ctd_conf[i], flag, b->ctd_log[i]);

	if (rc)
		pr_warn("failover-bench: conntrackd %s on sw%u failed (exit %d; see %s.ctl)\n",
			flag, i + 1, rc, b->ctd_log[i]);
	return rc;
}

/* States in switch i's external cache (those the other switch sent it). */
static int conntrackd_external(struct bench *b, unsigned int i)
{
	char cmd[512], line[512];
	int n = 0;
	FILE *p;

	snprintf(cmd, sizeof(cmd), "ip netns exec %s %s -C %s -e ct 2>/dev/null",
		 b->topo.sw[i].ns, b->conntrackd, b->ctd_conf[i]);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (fgets(line, sizeof(line), p))
		n += !strncmp(line, "tcp", 3);
	return pclose(p) ? -1 : n;
}

/*
 * What conntrackd's primary-backup.sh does when a node becomes primary:
 * commit the external cache into the kernel table, flush both caches,
 * resynchronise the internal cache with the kernel, send it in bulk.
 */
static void conntrackd_primary(struct bench *b, unsigned int i)
{
	conntrackd_cmd(b, i, "-c");
	conntrackd_cmd(b, i, "-f");
	conntrackd_cmd(b, i, "-R");
	/* after a crash there is no one to send to: its failure is expected */
	if (b->ctd_pid[1 - i] > 0)
		conntrackd_cmd(b, i, "-B");
}

/* ... and when one becomes backup: purge timers, ask the primary for its states */
static void conntrackd_backup(struct bench *b, unsigned int i)
{
	conntrackd_cmd(b, i, "-t");
	conntrackd_cmd(b, i, "-n");
}

/* ---- one run ---- */

/*
 * -d: the evidence of a run whose stream stalled (a second or more, or
 * stuck), taken before the topology goes: sw2's rp-load --status (its
 * data-plane and agent counters), the store's non-zero statistics, the bulk
 * stream's TCP state at the sender, and the TCP counters of both ends.
 */
static void dump_stalled(struct bench *b, enum rp_system sys)
{
	struct rp_topo *t = &b->topo;
	char cmd[2 * PATH_MAX + 64];

	printf("---- stalled run: evidence (-d) ----\n");
	if (sys == SYS_REDPLANE) {
		/* the store rewrites its stats file every second: have it now */
		if (t->store_pid > 0)
			kill(t->store_pid, SIGUSR1);
		usleep(200 * 1000);
		for (unsigned int i = 0; i < 2; i++) {
			snprintf(cmd, sizeof(cmd), "%s/rp-load --status %s | grep -v ' 0$'", b->bin,
				 t->sw[i].if_int);
			system(cmd);
		}
		printf("-- rp-store (non-zero) --\n");
		snprintf(cmd, sizeof(cmd), "grep -v ' 0$' %s", b->store_stats);
		system(cmd);
	} else {
		rp_topo_sh(t->sw[1].ns, "conntrack -L 2>/dev/null | grep -c . || true");
	}
	printf("-- the bulk stream: sender, receiver --\n");
	rp_topo_sh(t->ns_client, "ss -tinH dst " RP_TOPO_SERVER ":%u", BULK_PORT);
	rp_topo_sh(t->ns_server, "ss -tinH src " RP_TOPO_SERVER ":%u", BULK_PORT);
	printf("-- TCP counters: client, server --\n");
	rp_topo_sh(t->ns_client, "nstat -az | grep -Ev \"[[:space:]]0[[:space:]]\" || true");
	rp_topo_sh(t->ns_server, "nstat -az | grep -Ev \"[[:space:]]0[[:space:]]\" || true");
	printf("---- end of evidence ----\n");
}

static void teardown(struct bench *b)
{
	for (unsigned int i = 0; i < RP_TOPO_SWITCHES; i++)
		rp_topo_stop(&b->ctd_pid[i], false);
	if (b->topo_up)
		rp_topo_destroy(&b->topo);
	b->topo_up = false;
}

static int setup(struct bench *b, enum rp_system sys)
{
	struct rp_topo *t = &b->topo;
	char lease[16];
	const char *args[] = { "--lease-ms", lease, NULL };
	static const char *store_args[] = { "--stats-file", NULL, NULL };
	int err;

	b->ctd_error[0] = '\0';
	snprintf(lease, sizeof(lease), "%u", b->o.lease_ms);
	err = rp_topo_create(t, b->prefix, 2, b->bin);
	if (err)
		return err;
	b->topo_up = true;
	if (sys == SYS_REDPLANE) {
		/*
		 * A lease request carries the packet that asked for it: topo.c
		 * gives the store links the MTU a full-size frame needs
		 * (RP_TOPO_STORE_MTU, docs/PROTOCOL.md).
		 */
		snprintf(b->store_stats, sizeof(b->store_stats), "%s/rp-store.stats", t->dir);
		store_args[1] = b->store_stats;
		t->store_args = store_args;
		err = rp_topo_start_store(t, lease, "0");
		for (unsigned int i = 0; !err && i < 2; i++)
			err = rp_topo_start_switch(t, i, args);
		return err;
	}
	/* the demo's nftables NAT, the same external address on both switches */
	if (rp_topo_kernel_nat(t, 0) || rp_topo_kernel_nat(t, 1))
		return -EIO;
	if (rp_topo_sh(t->sw[0].ns,
		       "ip link add %sx1 type veth peer name %sx2 netns %s; "
		       "ip addr add " SYNC_NET ".1/30 dev %sx1; ip link set %sx1 up",
		       b->prefix, b->prefix, t->sw[1].ns, b->prefix, b->prefix) ||
	    rp_topo_sh(t->sw[1].ns, "ip addr add " SYNC_NET ".2/30 dev %sx2; ip link set %sx2 up",
		       b->prefix, b->prefix))
		return -EIO;
	for (unsigned int i = 0; !err && i < 2; i++)
		err = conntrackd_start(b, i);
	b->ctd_started |= !err;
	return err;
}

/* The event, from t = 0; returns how long sw2's takeover took (conntrackd). */
static double act(struct bench *b, enum rp_system sys, enum rp_event ev)
{
	struct rp_topo *t = &b->topo;
	uint64_t t0, t00 = rp_stream_now();
	double took;

	if (ev == EV_CRASH) {
		/* the switch dies whole: its agent, then its links */
		if (sys == SYS_CONNTRACKD)
			rp_topo_stop(&b->ctd_pid[0], true);
		rp_topo_fail_switch(t, 0);
		if (sys == SYS_CONNTRACKD)
			rp_topo_sh(t->sw[0].ns, "ip link set %sx1 down", b->prefix);
	}
	t0 = rp_stream_now();
	/*
	 * The backup takes the states over before the routes bring it the
	 * traffic (the best case for conntrackd: no packet meets sw2 before its
	 * table has the connection); redplane's routes move at once.
	 */
	if (sys == SYS_CONNTRACKD)
		conntrackd_primary(b, 1);
	took = (double)(rp_stream_now() - t0) / 1e6;
	if (rp_topo_route_via(t, 1))
		pr_warn("failover-bench: Couldn't move the routes to sw2\n");
	if (b->o.debug)
		printf("  event: switch down after %.1f ms, routes moved after %.1f ms\n",
		       (double)(t0 - t00) / 1e6, (double)(rp_stream_now() - t00) / 1e6);
	if (sys == SYS_CONNTRACKD && ev == EV_REROUTE)
		conntrackd_backup(b, 0);
	return took;
}

static int one_run(struct bench *b, enum rp_system sys, enum rp_event ev, struct result *r)
{
	const struct opts *o = &b->o;
	struct io io = { .bulk_c = -1, .bulk_s = -1 };
	uint64_t fail, end;
	pthread_t th;
	int err;

	memset(r, 0, sizeof(*r));
	r->synced = -1;
	r->total = o->conns;
	err = setup(b, sys);
	if (!err)
		err = open_bulk(&b->topo, o->rate_mbps, &io.bulk_c, &io.bulk_s);
	if (!err)
		err = rp_stream_open(&io.conns, &b->topo, o->conns, CONN_PORT);
	r->nbins = (o->before_ms + o->after_ms) / BIN_MS + 1;
	r->bins = calloc(r->nbins, sizeof(*r->bins));
	if (!err && !r->bins)
		err = -ENOMEM;
	if (err)
		goto out;
	io.bins = r->bins;
	io.nbins = r->nbins;
	io.start_ns = rp_stream_now();
	err = -pthread_create(&th, NULL, stream_thread, &io);
	if (err)
		goto out;
	fail = io.start_ns + o->before_ms * NS_PER_MS;
	if (sys == SYS_CONNTRACKD) {
		sleep_until(fail - 300 * NS_PER_MS);
		r->synced = conntrackd_external(b, 1);
	}
	sleep_until(fail);
	if (!stop) {
		atomic_store(&io.fail_ns, rp_stream_now());
		r->takeover_ms = act(b, sys, ev);
		sleep_until(fail + o->after_ms * NS_PER_MS);
	}
	end = rp_stream_now();
	atomic_store(&io.stop, true);
	pthread_join(th, NULL);
	if (stop) {
		err = -EINTR;
		goto out;
	}

	rp_stream_drain(&io.conns, (int)o->drain_ms);
	for (unsigned int i = 0; i < io.conns.n; i++) {
		struct rp_stream_conn *c = &io.conns.c[i];

		r->survived += !c->error && !c->out_of_order && c->received == c->sent &&
			       c->first_rx_after_ns;
	}
	/*
	 * Still silent at the end, longer than any gap that ended: the stream
	 * did not resume within the window, and no number of ms would be true.
	 */
	if (io.bulk_broken || !io.rx_after_fail ||
	    (end > io.last_rx_ns && end - io.last_rx_ns > io.stall_ns))
		r->stall_ms = INFINITY;
	else
		r->stall_ms = (double)io.stall_ns / 1e6;
	r->ok = true;
	if (o->debug && r->stall_ms >= 1000)
		dump_stalled(b, sys);
out:
	if (io.bulk_c >= 0)
		close(io.bulk_c);
	if (io.bulk_s >= 0)
		close(io.bulk_s);
	rp_stream_close(&io.conns);
	teardown(b);
	return err;
}

/* ---- figures ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Sorted copies of the measured runs' figures; returns how many. */
static unsigned int sorted(const struct result *r, unsigned int runs, double *v,
			   double (*get)(const struct result *))
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < runs; i++)
		if (r[i].ok)
			v[n++] = get(&r[i]);
	qsort(v, n, sizeof(*v), cmp_double);
	return n;
}

static double median(const double *v, unsigned int n)
{
	return n ? (v[(n - 1) / 2] + v[n / 2]) / 2 : NAN;
}

/* nearest rank */
static double p90(const double *v, unsigned int n)
{
	return n ? v[(n * 9 + 9) / 10 - 1] : NAN;
}

static double get_stall(const struct result *r)
{
	return r->stall_ms;
}

static double get_survived(const struct result *r)
{
	return r->survived;
}

static double get_takeover(const struct result *r)
{
	return r->takeover_ms;
}

static double get_synced(const struct result *r)
{
	return r->synced;
}

static void fmt_ms(char *buf, size_t size, double ms)
{
	if (isinf(ms))
		snprintf(buf, size, "stuck");
	else
		snprintf(buf, size, "%.1f", ms);
}

/* The run whose stall is the median one: the timeline shown for its case. */
static int representative(const struct result *r, unsigned int runs)
{
	double v[runs], m;
	unsigned int n = sorted(r, runs, v, get_stall);
	int best = -1;

	if (!n)
		return -1;
	m = v[(n - 1) / 2];
	for (unsigned int i = 0; i < runs; i++)
		if (r[i].ok && r[i].stall_ms == m)
			best = (int)i;
	return best;
}

static void summary(struct bench *b)
{
	const struct opts *o = &b->o;

	printf("\n%-15s %-8s %28s %24s %5s\n", "system", "event",
	       "stall ms: median  p90  range", "survived: median  range", "runs");
	for (int s = 0; s < NSYS; s++) {
		for (int e = 0; e < NEV && o->sys[s]; e++) {
			struct result *r = b->res[s][e];
			double v[o->runs];
			char med[16], p[16], lo[16], hi[16];
			unsigned int n;

			if (!o->ev[e])
				continue;
			if (b->not_measured[s][0]) {
				printf("%-15s %-8s not measured: %s\n", sys_name[s], ev_name[e],
				       b->not_measured[s]);
				continue;
			}
			n = sorted(r, o->runs, v, get_stall);
			if (!n) {
				printf("%-15s %-8s no run completed\n", sys_name[s], ev_name[e]);
				continue;
			}
			fmt_ms(med, sizeof(med), median(v, n));
			fmt_ms(p, sizeof(p), p90(v, n));
			fmt_ms(lo, sizeof(lo), v[0]);
			fmt_ms(hi, sizeof(hi), v[n - 1]);
			printf("%-15s %-8s %11s %6s %6s-%-6s", sys_name[s], ev_name[e], med, p, lo, hi);
			n = sorted(r, o->runs, v, get_survived);
			printf("   %5.0f/%u (%3.0f%%) %3.0f-%-3.0f %5u\n", median(v, n), o->conns,
			       100.0 * median(v, n) / o->conns, v[0], v[n - 1], n);
		}
	}
	for (int e = 0; e < NEV && o->sys[SYS_CONNTRACKD] && !b->not_measured[SYS_CONNTRACKD][0];
	     e++) {
		double v[o->runs], w[o->runs];
		unsigned int n, m;

		if (!o->ev[e])
			continue;
		n = sorted(b->res[SYS_CONNTRACKD][e], o->runs, v, get_takeover);
		m = sorted(b->res[SYS_CONNTRACKD][e], o->runs, w, get_synced);
		if (n && m)
			printf("nft-conntrackd %s: sw2's takeover (commit, flush, resync%s) took %.1f ms "
			       "(median); 300 ms before the event its external cache held %.0f to "
			       "%.0f of the %u connections\n", ev_name[e],
			       e == EV_CRASH ? "" : ", bulk send", median(v, n), w[0], w[m - 1],
			       o->conns + 1);
	}
	printf("stall: the longest gap in the bulk stream's received bytes that ends after the "
	       "event (\"stuck\": it had not resumed when the run ended); survived: of the %u connections, those "
	       "that delivered every byte in order after the event\n", o->conns);
}

static int write_csv(struct bench *b, const char *dir)
{
	const struct opts *o = &b->o;
	char path[PATH_MAX];
	FILE *f, *g;

	snprintf(path, sizeof(path), "%s/failover.csv", dir);
	f = fopen(path, "w");
	snprintf(path, sizeof(path), "%s/failover-timeline.csv", dir);
	g = fopen(path, "w");
	if (!f || !g) {
		pr_warn("failover-bench: Couldn't write %s: %s\n", path, strerror(errno));
		if (f)
			fclose(f);
		if (g)
			fclose(g);
		return -1;
	}
	fprintf(f, "system,event,run,stall_ms,survived,total\n");
	fprintf(g, "system,event,run,t_ms,mbps\n");
	for (int s = 0; s < NSYS; s++) {
		for (int e = 0; e < NEV; e++) {
			struct result *r = b->res[s][e];
			int rep;

			if (!o->sys[s] || !o->ev[e] || b->not_measured[s][0])
				continue;
			for (unsigned int i = 0; i < o->runs; i++) {
				if (!r[i].ok)
					continue;
				if (isinf(r[i].stall_ms))
					fprintf(f, "%s,%s,%u,inf,%u,%u\n", sys_name[s], ev_name[e],
						i + 1, r[i].survived, r[i].total);
				else
					fprintf(f, "%s,%s,%u,%.1f,%u,%u\n", sys_name[s], ev_name[e],
						i + 1, r[i].stall_ms, r[i].survived, r[i].total);
			}
			rep = representative(r, o->runs);
			for (unsigned int k = 0; rep >= 0 && k < r[rep].nbins - 1; k++)
				fprintf(g, "%s,%s,%d,%d,%.2f\n", sys_name[s], ev_name[e], rep + 1,
					(int)(k * BIN_MS) - (int)o->before_ms,
					(double)r[rep].bins[k] * 8 / (BIN_MS * 1000.0));
		}
	}
	fclose(f);
	fclose(g);
	printf("wrote %s/failover.csv and %s/failover-timeline.csv\n", dir, dir);
	return 0;
}

/* ---- options ---- */

static const char usage_text[] =
	"Usage: failover-bench [-n RUNS] [-c CONNECTIONS] [-l LEASE_MS] [-b BEFORE_MS]\n"
	"                      [-a AFTER_MS] [-r RATE_MBPS] [-s SYSTEM] [-e EVENT]\n"
	"The stall of a TCP stream and the share of concurrent TCP connections that\n"
	"survive a switch crash and a live reroute: redplane against nftables NAT with\n"
	"conntrackd (FTFW).  Needs root.  With RP_BENCH_OUT=DIR, writes\n"
	"DIR/failover.csv and DIR/failover-timeline.csv.\n"
	"  -n, --runs N          runs of each system and event (default 10)\n"
	"  -c, --connections N   concurrent connections per run (default 200)\n"
	"  -l, --lease-ms MS     redplane's lease period (default 200)\n"
	"  -b, --before-ms MS    streaming before the event (default 1000)\n"
	"  -a, --after-ms MS     streaming after it (default 3000)\n"
	"  -r, --rate-mbps R     the bulk stream's paced rate, 0: unpaced (default 100)\n"
	"  -s, --system NAME     redplane or nft-conntrackd only (default both)\n"
	"  -e, --event NAME      crash or reroute only (default both)\n"
	"  -d, --debug           dump the counters of a run stalled 1 s or more: sw2's\n"
	"                        rp-load --status, rp-store's statistics, the stream's\n"
	"                        TCP state (ss -ti) and both ends' TCP counters\n";

static bool pick(bool *set, const char *const *names, int n, const char *arg)
{
	for (int i = 0; i < n; i++)
		set[i] = !strcmp(arg, names[i]);
	for (int i = 0; i < n; i++)
		if (set[i])
			return true;
	return false;
}

static int parse(struct opts *o, int argc, char **argv)
{
	static const struct option long_opts[] = {
		{ "runs", required_argument, NULL, 'n' },
		{ "connections", required_argument, NULL, 'c' },
		{ "lease-ms", required_argument, NULL, 'l' },
		{ "before-ms", required_argument, NULL, 'b' },
		{ "after-ms", required_argument, NULL, 'a' },
		{ "rate-mbps", required_argument, NULL, 'r' },
		{ "system", required_argument, NULL, 's' },
		{ "event", required_argument, NULL, 'e' },
		{ "debug", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *prog = "failover-bench";
	int c;

	*o = (struct opts){ .runs = 10, .conns = 200, .lease_ms = 200, .before_ms = 1000,
			    .after_ms = 3000, .drain_ms = 2000, .rate_mbps = 100,
			    .sys = { true, true }, .ev = { true, true } };
	while ((c = getopt_long(argc, argv, "n:c:l:b:a:r:s:e:dh", long_opts, NULL)) != -1) {
		int err = 0;

		switch (c) {
		case 'n':
			err = rp_parse_u32(prog, "--runs", optarg, 1, 1000, &o->runs);
			break;
		case 'c':
			err = rp_parse_u32(prog, "--connections", optarg, 1, 1000, &o->conns);
			break;
		case 'l':
			err = rp_parse_u32(prog, "--lease-ms", optarg, 10, 10000, &o->lease_ms);
			break;
		case 'b':
			/* the external cache is read 300 ms before the event */
			err = rp_parse_u32(prog, "--before-ms", optarg, 500, 60000, &o->before_ms);
			break;
		case 'a':
			err = rp_parse_u32(prog, "--after-ms", optarg, 100, 60000, &o->after_ms);
			break;
		case 'r':
			err = rp_parse_u32(prog, "--rate-mbps", optarg, 0, 10000, &o->rate_mbps);
			break;
		case 's':
			if (!pick(o->sys, sys_name, NSYS, optarg))
				err = -EINVAL;
			break;
		case 'e':
			if (!pick(o->ev, ev_name, NEV, optarg))
				err = -EINVAL;
			break;
		case 'd':
			o->debug = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			err = -EINVAL;
		}
		if (err) {
			if (c == 's' || c == 'e')
				pr_warn("%s: invalid %s '%s'\n", prog,
					c == 's' ? "--system" : "--event", optarg);
			fputs(usage_text, stderr);
			return err;
		}
	}
	if (optind < argc) {
		fputs(usage_text, stderr);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	static struct bench b;
	const char *out = getenv("RP_BENCH_OUT");
	uint64_t t0 = rp_stream_now();
	char self[PATH_MAX];
	int failed = 0;
	ssize_t n;

	if (parse(&b.o, argc, argv))
		return 2;
	if (geteuid() != 0) {
		pr_warn("failover-bench: needs root (network namespaces, XDP, nftables)\n");
		return 1;
	}
	/* rp-store, rp-load and the veth peer program sit beside this binary */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	snprintf(b.bin, sizeof(b.bin), "%s", dirname(self));
	/* "rpf": the namespace prefix this benchmark owns */
	snprintf(b.prefix, sizeof(b.prefix), "rpf%d", getpid() % 100000);
	for (int s = 0; s < NSYS; s++)
		for (int e = 0; e < NEV; e++) {
			b.res[s][e] = calloc(b.o.runs, sizeof(struct result));
			if (!b.res[s][e])
				return 1;
		}
	if (b.o.sys[SYS_CONNTRACKD] && !conntrackd_usable(&b))
		printf("nft-conntrackd: not measured: %s\n", b.not_measured[SYS_CONNTRACKD]);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("failover-bench: %u runs of each system and event, %u concurrent TCP connections "
	       "and one bulk stream (%s%u Mbit/s) per run; redplane's lease %u ms; the event "
	       "%u ms into each run, %u ms more after it\n",
	       b.o.runs, b.o.conns, b.o.rate_mbps ? "paced at " : "unpaced: ", b.o.rate_mbps,
	       b.o.lease_ms, b.o.before_ms, b.o.after_ms);
	/* interleaved, so that the machine's other load falls on every case alike */
	for (unsigned int run = 0; run < b.o.runs && !stop; run++) {
		for (int s = 0; s < NSYS && !stop; s++) {
			for (int e = 0; e < NEV && !stop; e++) {
				struct result *r = &b.res[s][e][run];
				char stall[16];
				int err;

				if (!b.o.sys[s] || !b.o.ev[e] || b.not_measured[s][0])
					continue;
				err = one_run(&b, (enum rp_system)s, (enum rp_event)e, r);
				if (err == -EINTR)
					continue;
				if (err && s == SYS_CONNTRACKD && !b.ctd_started && b.ctd_error[0]) {
					/* a baseline that never starts is not measured, not retried */
					snprintf(b.not_measured[s], sizeof(b.not_measured[s]), "%s",
						 b.ctd_error);
					printf("nft-conntrackd: not measured: %s\n", b.not_measured[s]);
					continue;
				}
				if (err) {
					pr_warn("failover-bench: %s %s run %u failed: %s%s%s\n",
						sys_name[s], ev_name[e], run + 1, strerror(-err),
						b.ctd_error[0] ? ": " : "", b.ctd_error);
					failed++;
					continue;
				}
				fmt_ms(stall, sizeof(stall), r->stall_ms);
				printf("  run %2u %-15s %-8s stall %7s%s  survived %u/%u\n", run + 1,
				       sys_name[s], ev_name[e], stall, isinf(r->stall_ms) ? "   " : " ms",
				       r->survived, r->total);
			}
		}
	}
	if (stop) {
		teardown(&b);
		return 130;
	}
	summary(&b);
	printf("failover-bench: %.0f s in all%s\n", (double)(rp_stream_now() - t0) / 1e9,
	       failed ? "; some runs failed (above)" : "");
	if (out && *out && write_csv(&b, out))
		failed++;
	for (int s = 0; s < NSYS; s++)
		for (int e = 0; e < NEV; e++) {
			for (unsigned int i = 0; i < b.o.runs; i++)
				free(b.res[s][e][i].bins);
			free(b.res[s][e]);
		}
	return failed ? 1 : 0;
}
