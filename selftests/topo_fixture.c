// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rp_test.h"
#include "link_impair.skel.h"
#include "topo_fixture.h"
#include "veth_peer.skel.h"

struct rp_topo topo;
struct veth_peer *store_link[RP_TOPO_SWITCHES];
const char *topo_prefix = "rt";
struct rp_topo_opts topo_opts;

static void topo_build(unsigned int nswitches)
{
	const char *bin = getenv("RP_BUILD");
	char prefix[16];
	int err;

	if (geteuid() != 0)
		cr_skip_test("needs root: builds network namespaces and loads XDP programs");
	snprintf(prefix, sizeof(prefix), "%s%d", topo_prefix, getpid());
	err = rp_topo_create_with(&topo, prefix, nswitches, bin && *bin ? bin : "build",
				  &topo_opts);
	cr_assert_eq(err, 0, "build the topology: %s", strerror(-err));
	rp_test_san_log_to(topo.dir);
	for (unsigned int i = 0; i < nswitches; i++) {
		char ifname[16];

		store_link[i] = veth_peer__open_and_load();
		cr_assert_not_null(store_link[i]);
		snprintf(ifname, sizeof(ifname), "st%u", i + 1);
		err = rp_topo_xdp_attach(topo.ns_store, ifname,
					 bpf_program__fd(store_link[i]->progs.veth_peer));
		cr_assert_eq(err, 0, "attach the loss injector: %s", strerror(-err));
	}
}

struct link_impair *topo_impair_store_link(unsigned int i, uint32_t drop_every,
					   uint32_t dup_every, uint32_t reorder_every)
{
	struct link_impair *imp;
	char ifname[16];

	store_link[i]->bss->drop_port = 4791;
	store_link[i]->bss->drop_every = drop_every;
	imp = link_impair__open_and_load();
	cr_assert_not_null(imp);
	imp->bss->port = 4791;
	imp->bss->dup_every = dup_every;
	imp->bss->reorder_every = reorder_every;
	snprintf(ifname, sizeof(ifname), "st%u", i + 1);
	cr_assert_eq(rp_topo_tc_attach(topo.ns_store, ifname,
				       bpf_program__fd(imp->progs.impair_ingress),
				       bpf_program__fd(imp->progs.impair_egress)), 0);
	return imp;
}

void topo_timing(unsigned int *lease_ms, unsigned int *time_scale)
{
	const char *l = getenv("RP_TEST_LEASE_MS"), *k = getenv("RP_TEST_TIME_SCALE");

	if (l && atoi(l) >= 10)
		*lease_ms = (unsigned int)atoi(l);
	if (k && atoi(k) >= 1)
		*time_scale = (unsigned int)atoi(k);
}

void topo_up(unsigned int nswitches, const char *lease_ms)
{
	topo_up_with(nswitches, lease_ms, NULL);
}

void topo_up_with(unsigned int nswitches, const char *lease_ms, const char *const *store_args)
{
	int err;

	topo_build(nswitches);
	topo.store_args = store_args;
	err = rp_topo_start_store(&topo, lease_ms, "0");
	cr_assert_eq(err, 0, "start rp-store: %s", strerror(-err));
}

bool topo_wait_role(unsigned int r, const char *role, int ms)
{
	char have[16] = "";

	for (int t = 0; t <= ms; t += 50) {
		if (rp_topo_replica_role(&topo, r, have, sizeof(have)) && !strcmp(have, role))
			return true;
		usleep(50000);
	}
	fprintf(stderr, "replica %u is '%s', not '%s' (log %s)\n", r + 1, have, role,
		topo.rep_log[r]);
	return false;
}

void topo_replica(unsigned int r, const char *const *extra)
{
	int err = rp_topo_start_replica(&topo, r, extra);

	cr_assert_eq(err, 0, "replica %u: %s (log %s)", r + 1, strerror(-err), topo.rep_log[r]);
}

void topo_up_chain(unsigned int nswitches, unsigned int nreplicas, const char *const *extra)
{
	static const char *const roles[][RP_TOPO_REPLICAS] = {
		{ "alone" }, { "head", "tail" }, { "head", "middle", "tail" },
	};

	topo_up_chains(nswitches, nreplicas, extra, NULL);
	for (unsigned int r = 0; r < nreplicas; r++)
		cr_assert(topo_wait_role(r, roles[nreplicas - 1][r], 5000), "chain formed");
}

void topo_up_chains(unsigned int nswitches, unsigned int nreplicas, const char *const *extra,
		    const char *const *chain)
{
	int err;

	if (access("/usr/share/java/zookeeper.jar", R_OK))
		cr_skip_test("needs ZooKeeper (Debian's zookeeper package: make deps)");
	topo_build(nswitches);
	err = rp_topo_add_chain(&topo, nreplicas);
	cr_assert_eq(err, 0, "ZooKeeper and the replicas' namespaces: %s (log %s)", strerror(-err),
		     topo.zk_log);
	/* one by one, so that the chain's order is the replicas' order */
	for (unsigned int r = 0; r < nreplicas; r++) {
		const char *args[24] = { "--chain", chain ? chain[r] : "default" };
		bool first = true;
		unsigned int n = 2;

		for (unsigned int q = 0; q < r; q++)
			first &= strcmp(args[1], chain ? chain[q] : "default") != 0;
		while (extra && extra[n - 2] && n < 23) {
			args[n] = extra[n - 2];
			n++;
		}
		topo_replica(r, args);
		/* a replica joins as the tail; the first of its chain is a chain of one */
		cr_assert(topo_wait_role(r, first ? "alone" : "tail", 5000), "replica %u joined",
			  r + 1);
	}
}

void topo_down(void)
{
	/* stopped first: a leak is reported at exit */
	rp_topo_stop_all(&topo);
	if (topo.dir[0])
		cr_expect(!rp_test_san_reports(topo.dir),
			  "a sanitizer reported an error in rp-store or rp-load (above)");
	rp_topo_destroy(&topo);
	for (unsigned int i = 0; i < RP_TOPO_SWITCHES; i++) {
		if (store_link[i])
			veth_peer__destroy(store_link[i]);
		store_link[i] = NULL;
	}
}

void topo_switch(unsigned int i, const char *const *extra)
{
	int err = rp_topo_start_switch(&topo, i, extra);

	cr_assert_eq(err, 0, "rp-load on sw%u: %s (log %s)", i + 1, strerror(-err), topo.sw[i].log);
}

long long topo_agent_stat(unsigned int i, const char *name, long long min)
{
	long long v = -1;

	for (int t = 0; t < 100; t++) {
		v = rp_topo_agent_stat(&topo, i, name);
		if (v >= min)
			break;
		usleep(100000);
	}
	return v;
}

int topo_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms);
}

struct conn topo_connect(uint16_t port)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);
	int one = 1, lfd = rp_topo_socket(topo.ns_server, AF_INET, SOCK_STREAM);
	struct conn c;

	cr_assert_geq(lfd, 0);
	inet_pton(AF_INET, RP_TOPO_SERVER, &srv.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(lfd, (struct sockaddr *)&srv, sizeof(srv)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	c.client = rp_topo_socket(topo.ns_client, AF_INET, SOCK_STREAM);
	cr_assert_geq(c.client, 0);
	cr_assert_eq(connect(c.client, (struct sockaddr *)&srv, sizeof(srv)), 0,
		     "connect through the switch: %s", strerror(errno));
	cr_assert_gt(topo_readable(lfd, 5000), 0, "the server saw no connection");
	c.server = accept(lfd, (struct sockaddr *)&peer, &plen);
	cr_assert_geq(c.server, 0);
	/* the NAT (topo's application unless a test sets another) translates */
	if (!topo.app_args)
		cr_assert_eq(peer.sin_addr.s_addr, inet_addr(RP_TOPO_EXT),
			     "the server sees the NAT's address");
	close(lfd);
	return c;
}

void topo_echo(struct conn *c)
{
	char buf[64];

	cr_assert_eq(send(c->client, "ping", 4, 0), 4);
	cr_assert_gt(topo_readable(c->server, 3000), 0, "ping lost");
	cr_assert_eq(recv(c->server, buf, sizeof(buf), 0), 4);
	cr_assert_eq(send(c->server, "pong", 4, 0), 4);
	cr_assert_gt(topo_readable(c->client, 3000), 0, "pong lost");
	cr_assert_eq(recv(c->client, buf, sizeof(buf), 0), 4);
	cr_assert_arr_eq(buf, "pong", 4);
}

/*
 * After the last test, in the runner: remove any topology whose test process
 * is gone without having removed it (a test killed by its timeout does not
 * run its fini).
 */
ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	if (geteuid() != 0)
		return;
	if (system("for ns in $(ip netns list | awk '/^(rt|tk)[0-9]+-/ {print $1}'); do "
		   "p=${ns%%-*}; pid=${p#rt}; pid=${pid#tk}; "
		   "if ! kill -0 $pid 2>/dev/null; then ip netns del $ns; "
		   "rm -rf /sys/fs/bpf/redplane/${p}[ies][12]; fi; done"))
		fprintf(stderr, "selftests: Couldn't sweep leftover namespaces\n");
}
