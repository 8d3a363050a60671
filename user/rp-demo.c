// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rp-demo: a TCP connection through a redplane NAT survives the loss of the
 * switch it runs on.  Three scenes, each on a fresh topology of network
 * namespaces (user/topo.h): a switch crash with redplane, the same crash with
 * the kernel's own NAT, and a live reroute with both switches up.
 */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "redplane/log.h"
#include "stream.h"
#include "topo.h"

#define STEP_US		2000	/* one message per connection every 2 ms */

static volatile sig_atomic_t stop;

struct demo {
	const char *lease_ms;
	unsigned int conns;
	bool keep;
	char bin[PATH_MAX];
	uint64_t t0;
	struct rp_topo topo;
	bool topo_up;
	int failures;
};

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double secs(struct demo *d)
{
	return (double)(rp_stream_now() - d->t0) / 1e9;
}

#define say(d, fmt, ...) printf("  [%6.3fs] " fmt "\n", secs(d), ##__VA_ARGS__)

static void sleep_us(unsigned int us)
{
	usleep(us);
}

static int setup(struct demo *d, bool redplane, bool both_switches)
{
	const char *args[] = { "--lease-ms", d->lease_ms, NULL };
	int err;

	err = rp_topo_create(&d->topo, "rpdemo", 2, d->bin);
	if (err)
		return err;
	d->topo_up = true;
	if (!redplane) {
		if (rp_topo_kernel_nat(&d->topo, 0) || rp_topo_kernel_nat(&d->topo, 1))
			return -EIO;
		return 0;
	}
	err = rp_topo_start_store(&d->topo, d->lease_ms, "0");
	if (!err)
		err = rp_topo_start_switch(&d->topo, 0, args);
	if (!err && both_switches)
		err = rp_topo_start_switch(&d->topo, 1, args);
	return err;
}

static void teardown(struct demo *d)
{
	if (d->topo_up)
		rp_topo_destroy(&d->topo);
	d->topo_up = false;
}

/* Streams for `ms`, reporting twice a second; calls back at `at_ms` once. */
static void stream_for(struct demo *d, struct rp_stream *s, unsigned int ms, unsigned int at_ms,
		       void (*at)(struct demo *, struct rp_stream *), bool watch_sw2)
{
	uint64_t start = rp_stream_now(), next_report = start + 500000000ull;
	bool fired = false, first_rx = false;
	long long migrations = 0;

	while (!stop && rp_stream_now() - start < (uint64_t)ms * 1000000ull) {
		uint64_t now = rp_stream_now();

		rp_stream_step(s);
		if (!fired && now - start >= (uint64_t)at_ms * 1000000ull && at) {
			at(d, s);
			fired = true;
		}
		if (fired && watch_sw2) {
			long long m = rp_topo_dp_stat(&d->topo, 1, "migrate");

			if (m > migrations) {
				if (!migrations)
					say(d, "sw2 takes the connections' leases over: stored state migrated");
				migrations = m;
			}
		}
		if (fired && !first_rx) {
			for (unsigned int i = 0; i < s->n; i++) {
				if (s->c[i].first_rx_after_ns) {
					say(d, "first byte through sw2 reaches the server");
					first_rx = true;
					break;
				}
			}
		}
		if (now >= next_report) {
			unsigned long long delivered = 0;

			for (unsigned int i = 0; i < s->n; i++)
				delivered += s->c[i].received;
			say(d, "%u/%u connections healthy, %llu messages delivered in order",
			    rp_stream_healthy(s), s->n, delivered);
			next_report += 500000000ull;
		}
		sleep_us(STEP_US);
	}
}

static void fail_sw1(struct demo *d, struct rp_stream *s)
{
	rp_topo_fail_switch(&d->topo, 0);
	rp_topo_route_via(&d->topo, 1);
	rp_stream_mark(s);
	say(d, "sw1 FAILS: its rp-load killed, its links down; routes move to sw2");
}

static void reroute(struct demo *d, struct rp_stream *s)
{
	rp_topo_route_via(&d->topo, 1);
	rp_stream_mark(s);
	say(d, "routes move to sw2 (both switches up)");
}

static void verdict(struct demo *d, struct rp_stream *s, bool expect_survive)
{
	bool intact;

	if (stop)
		return;	/* interrupted: no verdict on half a scene */
	intact = rp_stream_drain(s, 3000);
	unsigned int ok = rp_stream_healthy(s);
	double stall = (double)rp_stream_max_gap_ns(s) / 1e6;

	for (unsigned int i = 0; i < s->n; i++) {
		struct rp_stream_conn *c = &s->c[i];

		if (c->error)
			say(d, "connection %u BROKEN: %s", i,
			    c->error > 0 ? strerror(c->error) : "closed by the far end");
	}
	if (ok == s->n && intact) {
		printf("  VERDICT: %u/%u connections survived, every byte intact and in order; "
		       "recovery (longest stall) %.0f ms\n", ok, s->n, stall);
	} else {
		printf("  VERDICT: %u/%u connections survived%s\n", ok, s->n,
		       intact ? "" : ", bytes missing");
	}
	if ((ok == s->n && intact) != expect_survive)
		d->failures++;
}

static int scene_crash(struct demo *d, bool redplane)
{
	struct rp_stream s;
	int err;

	printf("\n== %s: sw1 crashes mid-stream ==\n",
	       redplane ? "With redplane" : "Without redplane (the kernel's NAT, state only on sw1)");
	d->t0 = rp_stream_now();
	err = setup(d, redplane, true);
	if (err)
		return err;
	if (redplane)
		say(d, "topology up: client, sw1, sw2, server, store; rp-load on both switches "
		       "(lease %s ms); routes via sw1", d->lease_ms);
	else
		say(d, "topology up: client, sw1, sw2, server; nftables NAT on both switches; "
		       "routes via sw1");
	err = rp_stream_open(&s, &d->topo, d->conns, 8080);
	if (err) {
		pr_warn("rp-demo: Couldn't open the connections: %s\n", strerror(-err));
		rp_stream_close(&s);
		return err;
	}
	say(d, "%u TCP connections open from the client's kernel stack, streaming", d->conns);
	stream_for(d, &s, 4000, 1500, fail_sw1, redplane);
	verdict(d, &s, redplane);
	rp_stream_close(&s);
	teardown(d);
	return 0;
}

static int scene_reroute(struct demo *d)
{
	struct rp_stream s;
	unsigned int handed;
	uint64_t gap, max_gap;
	int err, overlaps;

	printf("\n== With redplane: live reroute, both switches up ==\n");
	d->t0 = rp_stream_now();
	err = setup(d, true, true);
	if (err)
		return err;
	err = rp_stream_open(&s, &d->topo, d->conns, 8080);
	if (err) {
		rp_stream_close(&s);
		return err;
	}
	say(d, "%u TCP connections streaming through sw1", d->conns);
	stream_for(d, &s, 2500, 1000, reroute, true);
	overlaps = rp_topo_lease_overlaps(&d->topo, 0, 1, &handed, &gap, &max_gap);
	say(d, "sw1 gave %lld leases up on revoke; sw2 took them over",
	    rp_topo_dp_stat(&d->topo, 0, "revoke"));
	if (overlaps == 0 && handed)
		say(d, "never processed by both: %u flows handed over, %.1f to %.1f us after "
		       "sw1 let go of each", handed, (double)gap / 1e3, (double)max_gap / 1e3);
	else
		say(d, "LEASE OVERLAP: %d of %u flows held by both at once", overlaps, handed);
	if (overlaps != 0)
		d->failures++;
	verdict(d, &s, true);
	rp_stream_close(&s);
	if (!d->keep)
		teardown(d);
	return 0;
}

static const char usage_text[] =
	"Usage: rp-demo [--lease-ms MS] [--connections N] [--keep]\n"
	"Shows a TCP connection through a redplane NAT surviving a switch crash,\n"
	"the same crash breaking it with the kernel's NAT, and a live reroute.\n"
	"  -l, --lease-ms MS      lease period (default 200)\n"
	"  -c, --connections N    TCP connections (default 4)\n"
	"  -k, --keep             keep the last topology up to explore, until Ctrl-C\n";

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "lease-ms", required_argument, NULL, 'l' },
		{ "connections", required_argument, NULL, 'c' },
		{ "keep", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct demo d = { .lease_ms = "200", .conns = 4 };
	struct sigaction sa = { .sa_handler = on_signal };
	char self[PATH_MAX];
	ssize_t n;
	int c, err = 0;

	while ((c = getopt_long(argc, argv, "l:c:kh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (atoi(optarg) < 10 || atoi(optarg) > 10000) {
				pr_warn("rp-demo: --lease-ms from 10 to 10000\n");
				return 2;
			}
			d.lease_ms = optarg;
			break;
		case 'c':
			d.conns = (unsigned int)atoi(optarg);
			if (d.conns < 1 || d.conns > 500) {
				pr_warn("rp-demo: --connections from 1 to 500\n");
				return 2;
			}
			break;
		case 'k':
			d.keep = true;
			break;
		default:
			fputs(usage_text, c == 'h' ? stdout : stderr);
			return c == 'h' ? 0 : 2;
		}
	}
	if (geteuid() != 0) {
		pr_warn("rp-demo: must run as root (network namespaces, XDP): sudo make demo\n");
		return 1;
	}
	/* rp-store and rp-load sit beside this binary */
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 1;
	self[n] = '\0';
	snprintf(d.bin, sizeof(d.bin), "%s", dirname(self));
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);

	printf("redplane demo: a NAT whose per-flow state survives its switch\n");
	err = scene_crash(&d, true);
	if (!err && !stop)
		err = scene_crash(&d, false);
	if (!err && !stop)
		err = scene_reroute(&d);
	if (!err && d.keep && d.topo_up && !stop) {
		printf("\nThe topology stays up: ip netns list; ip netns exec %s ip route; "
		       "build/rp-load --status %s. Ctrl-C ends.\n",
		       d.topo.ns_client, d.topo.sw[1].if_int);
		sigset_t block, old;

		/* blocked while `stop` is tested: no signal lost before the wait */
		sigemptyset(&block);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
		sigprocmask(SIG_BLOCK, &block, &old);
		while (!stop)
			sigsuspend(&old);
		sigprocmask(SIG_SETMASK, &old, NULL);
	}
	teardown(&d);
	if (err) {
		pr_warn("rp-demo: %s\n", strerror(-err));
		return 1;
	}
	if (stop)
		return 130;
	printf("\n%s\n", d.failures ? "demo: something did not go as shown above" :
				      "demo: done, everything went as expected");
	return d.failures ? 1 : 0;
}
