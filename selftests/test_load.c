// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rp-load against the real rp-store in network namespaces, with real TCP
 * connections from the kernel's own stack through the switch's NAT.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "netns.h"
#include "redplane/dp.h"
#include "rp_test.h"
#include "veth_peer.skel.h"

static struct rp_topo topo;

static void up(void)
{
	rp_topo_up(&topo);
	rp_topo_start_store(&topo, "1000");
}

static void down(void)
{
	rp_topo_down(&topo);
}

TestSuite(load, .init = up, .fini = down, .timeout = 60);

struct conn {
	int client, server;
};

static int wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms);
}

/* A TCP connection from the client through the NAT to the server. */
static struct conn tcp_connect(void)
{
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(8080) };
	struct conn c;
	int one = 1, lfd = rp_topo_socket(&topo, RP_SERVER, SOCK_STREAM);
	struct sockaddr_in peer;
	socklen_t plen = sizeof(peer);

	inet_pton(AF_INET, "198.51.100.2", &srv.sin_addr);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(lfd, (struct sockaddr *)&srv, sizeof(srv)), 0);
	cr_assert_eq(listen(lfd, 4), 0);
	c.client = rp_topo_socket(&topo, RP_CLIENT, SOCK_STREAM);
	cr_assert_eq(connect(c.client, (struct sockaddr *)&srv, sizeof(srv)), 0,
		     "connect through the switch: %s", strerror(errno));
	cr_assert_gt(wait_readable(lfd, 5000), 0, "the server saw no connection");
	c.server = accept(lfd, (struct sockaddr *)&peer, &plen);
	cr_assert_geq(c.server, 0);
	cr_assert_eq(peer.sin_addr.s_addr, htonl(0xcb007101u), "the server sees the NAT's address");
	close(lfd);
	return c;
}

static void echo_check(struct conn *c)
{
	char buf[64];

	cr_assert_eq(send(c->client, "ping", 4, 0), 4);
	cr_assert_gt(wait_readable(c->server, 3000), 0);
	cr_assert_eq(recv(c->server, buf, sizeof(buf), 0), 4);
	cr_assert_eq(send(c->server, "pong", 4, 0), 4);
	cr_assert_gt(wait_readable(c->client, 3000), 0);
	cr_assert_eq(recv(c->client, buf, sizeof(buf), 0), 4);
	cr_assert_arr_eq(buf, "pong", 4);
}

/* Drops the next `n` WRITE requests on their way to the store. */
static void drop_writes(unsigned int n)
{
	topo.link->bss->drop_port = 4791;
	topo.link->bss->drop_type = RP_MSG_WRITE;
	topo.link->bss->drop_budget = n;
}

Test(load, retransmits_writes_the_link_to_the_store_drops)
{
	const char *args[] = { "--rto-us", "20000", "--max-tries", "5", NULL };
	struct conn c;
	char buf[16];

	rp_topo_start_load(&topo, args);
	c = tcp_connect();
	echo_check(&c);

	drop_writes(2);
	shutdown(c.client, SHUT_WR);	/* the FIN is a write */
	cr_assert_gt(wait_readable(c.server, 3000), 0, "the FIN never reached the server");
	cr_assert_eq(recv(c.server, buf, sizeof(buf), 0), 0, "EOF at the server");
	cr_assert_eq(topo.link->bss->dropped, 2, "the link dropped two write requests");
	rp_test_sleep_ms(200);	/* rp-load publishes its counters every 100 ms */
	cr_assert_geq(rp_topo_agent_stat(&topo, "retransmits"), 2);
	cr_assert_geq(rp_topo_agent_stat(&topo, "writes_acked"), 1);
	cr_assert_eq(rp_topo_agent_stat(&topo, "gave_up"), 0);

	close(c.server);	/* and the server's FIN, inbound, is a write too */
	cr_assert_gt(wait_readable(c.client, 3000), 0);
	cr_assert_eq(recv(c.client, buf, sizeof(buf), 0), 0);
	close(c.client);
}

Test(load, gives_a_write_up_after_the_last_try)
{
	const char *args[] = { "--rto-us", "10000", "--max-tries", "2", NULL };
	struct conn c;
	char buf[16];

	rp_topo_start_load(&topo, args);
	c = tcp_connect();
	echo_check(&c);

	drop_writes(1000000);
	shutdown(c.client, SHUT_WR);
	cr_assert_eq(wait_readable(c.server, 150), 0,
		     "a FIN whose write the store never had must not leave");
	rp_test_sleep_ms(150);
	cr_assert_geq(rp_topo_agent_stat(&topo, "gave_up"), 1);
	cr_assert_geq(rp_topo_agent_stat(&topo, "retransmits"), 2);

	/* the link heals: TCP's own retransmission of the FIN writes again */
	topo.link->bss->drop_budget = 0;
	cr_assert_gt(wait_readable(c.server, 5000), 0, "the FIN got through in the end");
	cr_assert_eq(recv(c.server, buf, sizeof(buf), 0), 0);
	close(c.server);
	close(c.client);
}

Test(load, clean_detach_leaves_no_program_and_no_pins)
{
	char path[128];
	struct stat st;
	struct conn c;

	rp_topo_start_load(&topo, NULL);
	c = tcp_connect();
	echo_check(&c);
	cr_assert(rp_topo_xdp_attached(&topo, topo.if_int));
	snprintf(path, sizeof(path), "%s/%s/flows", RP_PIN_ROOT, topo.if_ext);
	cr_assert_eq(stat(path, &st), 0, "maps pinned under %s", path);

	cr_assert_eq(rp_topo_stop(&topo.load_pid), 0, "rp-load exits 0 on SIGTERM");
	cr_assert(!rp_topo_xdp_attached(&topo, topo.if_int));
	cr_assert(!rp_topo_xdp_attached(&topo, topo.if_ext));
	cr_assert(!rp_topo_xdp_attached(&topo, topo.if_sto));
	snprintf(path, sizeof(path), "%s/%s", RP_PIN_ROOT, topo.if_int);
	cr_assert_neq(stat(path, &st), 0, "%s removed", path);
	close(c.client);
	close(c.server);
}

static int run_load(const char *const *argv, char *out, size_t size)
{
	char log[128];
	pid_t pid;
	int status;
	FILE *f;
	size_t n;

	snprintf(log, sizeof(log), "%s/cli.log", topo.dir);
	pid = rp_topo_spawn(&topo, RP_SWITCH, argv, log);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	f = fopen(log, "r");
	n = f ? fread(out, 1, size - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(load, clear_errors_and_a_failed_attach_rolls_back)
{
	char out[4096], path[128];
	struct stat st;
	const char *nope[] = { rp_test_load_bin(), "nope0", "--app", "nat", "--store",
			       "192.0.2.10:4791", "--switch-id", "1", "--nat-int", "10.1.0.0/24",
			       "--nat-ext", "203.0.113.1", NULL };
	const char *bad_store[] = { rp_test_load_bin(), topo.if_int, "--app", "nat", "--store",
				    "192.0.2.10", "--switch-id", "1", "--nat-int", "10.1.0.0/24",
				    "--nat-ext", "203.0.113.1", NULL };
	const char *busy[] = { rp_test_load_bin(), topo.if_int, topo.if_ext, "--app", "nat",
			       "--store", "192.0.2.10:4791", "--switch-id", "1", "--nat-int",
			       "10.1.0.0/24", "--nat-ext", "203.0.113.1", NULL };

	cr_assert_eq(run_load(nope, out, sizeof(out)), 1);
	cr_assert_not_null(strstr(out, "no interface 'nope0'"), "%s", out);
	cr_assert_eq(run_load(bad_store, out, sizeof(out)), 2);
	cr_assert_not_null(strstr(out, "invalid store address '192.0.2.10'"), "%s", out);

	/* another program on the second interface: the first is rolled back */
	cr_assert_eq(rp_topo_sh(&topo, RP_SWITCH, "ip link set dev %s xdpdrv obj build/bpf/veth_peer.bpf.o sec xdp",
				topo.if_ext), 0);
	cr_assert_eq(run_load(busy, out, sizeof(out)), 1);
	cr_assert_not_null(strstr(out, "another XDP program is attached"), "%s", out);
	cr_assert(!rp_topo_xdp_attached(&topo, topo.if_int), "the first attach was undone");
	cr_assert(rp_topo_xdp_attached(&topo, topo.if_ext), "the other program stays");
	snprintf(path, sizeof(path), "%s/%s", RP_PIN_ROOT, topo.if_int);
	cr_assert_neq(stat(path, &st), 0, "no pins left behind");
}

static void up_short_lease(void)
{
	rp_topo_up(&topo);
	rp_topo_start_store(&topo, "300");
}

TestSuite(load_lapse, .init = up_short_lease, .fini = down, .timeout = 60);

Test(load_lapse, a_lapsed_session_stops_the_flows_until_they_are_leased_again)
{
	const char *args[] = { "--lease-ms", "300", NULL };
	struct conn c;
	char buf[16];

	rp_topo_start_load(&topo, args);
	c = tcp_connect();
	echo_check(&c);

	/* the store stops answering: the switch's session runs out */
	kill(topo.store_pid, SIGSTOP);
	rp_test_sleep_ms(500);
	cr_assert_geq(rp_topo_agent_stat(&topo, "session_lapsed"), 1);
	cr_assert_eq(send(c.client, "late", 4, 0), 4);
	cr_assert_eq(wait_readable(c.server, 300), 0,
		     "a switch without a live session forwarded a packet");

	/* the store is back: a new epoch, the flows are leased again */
	kill(topo.store_pid, SIGCONT);
	cr_assert_gt(wait_readable(c.server, 10000), 0, "the connection did not recover");
	cr_assert_eq(recv(c.server, buf, sizeof(buf), 0), 4);
	cr_assert_arr_eq(buf, "late", 4);
	echo_check(&c);
	rp_test_sleep_ms(200);	/* rp-load publishes its counters every 100 ms */
	cr_assert_eq(rp_topo_agent_stat(&topo, "session_new"), 2, "a second epoch");
	close(c.client);
	close(c.server);
}
