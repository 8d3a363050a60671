// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rp-load against the real rp-store in network namespaces, with real TCP
 * connections from the kernel's own stack through the switch's NAT; and
 * its --store parser on its own.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redplane/dp.h"
#include "redplane/store_list.h"
#include "rp_test.h"
#include "topo_fixture.h"
#include "veth_peer.skel.h"

static void up(void)
{
	topo_up(1, "1000");
}

TestSuite(load, .init = up, .fini = topo_down, .timeout = 60);

/* Drops the next `n` WRITE requests on their way to the store. */
static void drop_writes(unsigned int n)
{
	store_link[0]->bss->drop_port = 4791;
	store_link[0]->bss->drop_type = RP_MSG_WRITE;
	store_link[0]->bss->drop_budget = n;
}

Test(load, retransmits_writes_the_link_to_the_store_drops)
{
	const char *args[] = { "--rto-us", "20000", "--max-tries", "5", NULL };
	struct conn c;
	char buf[16];

	topo_switch(0, args);
	c = topo_connect(8080);
	topo_echo(&c);

	drop_writes(2);
	shutdown(c.client, SHUT_WR);	/* the FIN is a write */
	cr_assert_gt(topo_readable(c.server, 3000), 0, "the FIN never reached the server");
	cr_assert_eq(recv(c.server, buf, sizeof(buf), 0), 0, "EOF at the server");
	cr_assert_eq(store_link[0]->bss->dropped, 2, "the link dropped two write requests");
	cr_assert_geq(topo_agent_stat(0, "retransmits", 2), 2);
	cr_assert_geq(topo_agent_stat(0, "writes_acked", 1), 1);
	cr_assert_eq(rp_topo_agent_stat(&topo, 0, "gave_up"), 0);

	close(c.server);	/* and the server's FIN, inbound, is a write too */
	cr_assert_gt(topo_readable(c.client, 3000), 0);
	cr_assert_eq(recv(c.client, buf, sizeof(buf), 0), 0);
	close(c.client);
}

Test(load, gives_a_write_up_after_the_last_try)
{
	const char *args[] = { "--rto-us", "10000", "--max-tries", "2", NULL };
	struct conn c;
	char buf[16];

	topo_switch(0, args);
	c = topo_connect(8080);
	topo_echo(&c);

	drop_writes(1000000);
	shutdown(c.client, SHUT_WR);
	cr_assert_eq(topo_readable(c.server, 150), 0,
		     "a FIN whose write the store never had must not leave");
	cr_assert_geq(topo_agent_stat(0, "gave_up", 1), 1);
	cr_assert_geq(topo_agent_stat(0, "retransmits", 2), 2);

	/* the link heals: TCP's own retransmission of the FIN writes again */
	store_link[0]->bss->drop_budget = 0;
	cr_assert_gt(topo_readable(c.server, 5000), 0, "the FIN got through in the end");
	cr_assert_eq(recv(c.server, buf, sizeof(buf), 0), 0);
	close(c.server);
	close(c.client);
}

Test(load, clean_detach_leaves_no_program_and_no_pins)
{
	struct rp_topo_switch *sw = &topo.sw[0];
	char path[128];
	struct stat st;
	struct conn c;

	topo_switch(0, NULL);
	c = topo_connect(8080);
	topo_echo(&c);
	cr_assert(rp_topo_xdp_attached(sw->ns, sw->if_int));
	snprintf(path, sizeof(path), "%s/%s/flows", RP_PIN_ROOT, sw->if_ext);
	cr_assert_eq(stat(path, &st), 0, "maps pinned under %s", path);

	cr_assert_eq(rp_topo_stop(&sw->load_pid, false), 0, "rp-load exits 0 on SIGTERM");
	cr_assert(!rp_topo_xdp_attached(sw->ns, sw->if_int));
	cr_assert(!rp_topo_xdp_attached(sw->ns, sw->if_ext));
	cr_assert(!rp_topo_xdp_attached(sw->ns, sw->if_sto));
	snprintf(path, sizeof(path), "%s/%s", RP_PIN_ROOT, sw->if_int);
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
	unlink(log);
	pid = rp_topo_spawn(topo.sw[0].ns, argv, log);
	cr_assert_gt(pid, 0);
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
	struct rp_topo_switch *sw = &topo.sw[0];
	char out[4096], path[128], bin[300];
	struct stat st;
	const char *nope[] = { bin, "nope0", "--app", "nat", "--store", RP_TOPO_STORE,
			       "--switch-id", "1", "--nat-int", "10.1.0.0/24", "--nat-ext",
			       RP_TOPO_EXT, NULL };
	const char *bad_store[] = { bin, sw->if_int, "--app", "nat", "--store", "192.0.2.10",
				    "--switch-id", "1", "--nat-int", "10.1.0.0/24", "--nat-ext",
				    RP_TOPO_EXT, NULL };
	const char *no_store_link[] = { bin, sw->if_int, sw->if_ext, "--app", "nat", "--store",
					RP_TOPO_STORE, "--switch-id", "1", "--nat-int",
					"10.1.0.0/24", "--nat-ext", RP_TOPO_EXT, NULL };
	const char *busy[] = { bin, sw->if_int, sw->if_ext, sw->if_sto, "--app", "nat", "--store",
			       RP_TOPO_STORE, "--switch-id", "1", "--nat-int", "10.1.0.0/24",
			       "--nat-ext", RP_TOPO_EXT, NULL };

	snprintf(bin, sizeof(bin), "%s/rp-load", topo.bin_dir);
	cr_assert_eq(run_load(nope, out, sizeof(out)), 1);
	cr_assert_not_null(strstr(out, "no interface 'nope0'"), "%s", out);
	cr_assert_eq(run_load(bad_store, out, sizeof(out)), 2);
	cr_assert_not_null(strstr(out, "invalid store address '192.0.2.10'"), "%s", out);

	cr_assert_eq(run_load(no_store_link, out, sizeof(out)), 1);
	cr_assert_not_null(strstr(out, "must be one of the interfaces"), "%s", out);

	/* another program on the second interface: the first is rolled back */
	cr_assert_eq(rp_topo_xdp_attach(sw->ns, sw->if_ext,
					bpf_program__fd(store_link[0]->progs.veth_peer)), 0);
	cr_assert_eq(run_load(busy, out, sizeof(out)), 1);
	cr_assert_not_null(strstr(out, "another XDP program is attached"), "%s", out);
	cr_assert(!rp_topo_xdp_attached(sw->ns, sw->if_int), "the first attach was undone");
	cr_assert(rp_topo_xdp_attached(sw->ns, sw->if_ext), "the other program stays");
	snprintf(path, sizeof(path), "%s/%s", RP_PIN_ROOT, sw->if_int);
	cr_assert_neq(stat(path, &st), 0, "no pins left behind");
}

TestSuite(load_store_list, .timeout = 10);

/* --store's parser, on its own: 0 or -EINVAL, its message into msg. */
static int parse_stores(const char *list, struct rp_store_chain *chains, unsigned int *n,
			char *msg, size_t size)
{
	FILE *f = tmpfile();
	int saved = dup(STDERR_FILENO), err;
	size_t len;

	cr_assert(f && saved >= 0);
	fflush(stderr);
	dup2(fileno(f), STDERR_FILENO);
	err = rp_parse_store_chains("rp-load", "--store", list, chains, n);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(f);
	len = fread(msg, 1, size - 1, f);
	msg[len] = '\0';
	fclose(f);
	return err;
}

static void expect_replica(const struct rp_store_chain *c, unsigned int r, const char *addr,
			   uint16_t port)
{
	char buf[INET_ADDRSTRLEN];

	cr_assert_lt(r, c->nreplicas);
	inet_ntop(AF_INET, &c->replicas[r].sin_addr, buf, sizeof(buf));
	cr_assert_str_eq(buf, addr);
	cr_assert_eq(ntohs(c->replicas[r].sin_port), port);
	cr_assert_eq(c->replicas[r].sin_family, AF_INET);
}

Test(load_store_list, one_replica_chains_and_chains_of_replicas)
{
	struct rp_store_chain c[RP_MAX_STORES];
	unsigned int n;
	char msg[256];

	cr_assert_eq(parse_stores("192.0.2.10:4791", c, &n, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(n, 1);
	cr_assert_eq(c[0].nreplicas, 1);
	expect_replica(&c[0], 0, "192.0.2.10", 4791);

	cr_assert_eq(parse_stores("10.0.0.10:4791+10.0.0.11:4791+10.0.0.12:4792,10.0.1.10:4791",
				  c, &n, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(n, 2);
	cr_assert_eq(c[0].nreplicas, 3);
	expect_replica(&c[0], 0, "10.0.0.10", 4791);
	expect_replica(&c[0], 1, "10.0.0.11", 4791);
	expect_replica(&c[0], 2, "10.0.0.12", 4792);
	cr_assert_eq(c[1].nreplicas, 1);
	expect_replica(&c[1], 0, "10.0.1.10", 4791);

	/* the most there may be; one address on two ports is two replicas */
	cr_assert_eq(parse_stores("10.0.0.1:1+10.0.0.1:2+10.0.0.1:3+10.0.0.1:4,"
				  "10.0.1.1:1+10.0.1.2:1+10.0.1.3:1+10.0.1.4:1,"
				  "10.0.2.1:1,10.0.3.1:1+10.0.3.2:65535", c, &n, msg, sizeof(msg)),
		     0, "%s", msg);
	cr_assert_eq(n, RP_MAX_STORES);
	cr_assert_eq(c[0].nreplicas, RP_MAX_REPLICAS);
	cr_assert_eq(c[1].nreplicas, RP_MAX_REPLICAS);
	expect_replica(&c[0], 3, "10.0.0.1", 4);
	expect_replica(&c[3], 1, "10.0.3.2", 65535);
	cr_assert_str_empty(msg, "no message: %s", msg);
}

Test(load_store_list, bad_lists_are_refused_saying_why)
{
	static const struct {
		const char *list;
		const char *msg;
	} bad[] = {
		{ "", "invalid --store '': a chain or a replica is empty" },
		{ "192.0.2.10:4791,", "a chain or a replica is empty" },
		{ ",192.0.2.10:4791", "a chain or a replica is empty" },
		{ "192.0.2.10:4791,,192.0.2.11:4791", "a chain or a replica is empty" },
		{ "192.0.2.10:4791+", "a chain or a replica is empty" },
		{ "+192.0.2.10:4791", "a chain or a replica is empty" },
		{ "192.0.2.10:4791++192.0.2.11:4791", "a chain or a replica is empty" },
		{ "192.0.2.10", "invalid store address '192.0.2.10': expected A.B.C.D:PORT" },
		{ "192.0.2.10:0", "invalid store address '192.0.2.10:0'" },
		{ "192.0.2.10:65536", "invalid store address '192.0.2.10:65536'" },
		{ "[::1]:4791", "invalid store address '[::1]:4791'" },
		{ "store1:4791", "invalid store address 'store1:4791'" },
		{ "192.0.2.10:4791+192.0.2.11", "invalid store address '192.0.2.11'" },
		{ "192.0.2.10:4791 ,192.0.2.11:4791", "invalid store address '192.0.2.10:4791 '" },
		{ "192.0.2.100:4791:4791", "invalid store address '192.0.2.100:4791:4791'" },
		{ "10.0.0.1:1+10.0.0.2:1+10.0.0.3:1+10.0.0.4:1+10.0.0.5:1",
		  "at most 4 replicas in a chain" },
		{ "10.0.0.1:1,10.0.0.2:1,10.0.0.3:1,10.0.0.4:1,10.0.0.5:1",
		  "at most 4 store chains" },
		{ "10.0.0.1:1+10.0.0.1:1", "store address '10.0.0.1:1' listed twice" },
		{ "10.0.0.1:1+10.0.0.2:1,10.0.0.3:1+10.0.0.2:1",
		  "store address '10.0.0.2:1' listed twice" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rp_store_chain c[RP_MAX_STORES];
		unsigned int n = 99;
		char msg[512];

		cr_assert_eq(parse_stores(bad[i].list, c, &n, msg, sizeof(msg)), -EINVAL,
			     "'%s' accepted", bad[i].list);
		cr_assert_eq(n, 99, "'%s': no chains returned", bad[i].list);
		cr_assert(!strncmp(msg, "rp-load: ", 9) && strstr(msg, bad[i].msg),
			  "'%s': expected '%s', got '%s'", bad[i].list, bad[i].msg, msg);
	}
}

static void up_short_lease(void)
{
	topo_up(1, "300");
}

TestSuite(load_lapse, .init = up_short_lease, .fini = topo_down, .timeout = 60);

Test(load_lapse, a_lapsed_session_stops_the_flows_until_they_are_leased_again)
{
	const char *args[] = { "--lease-ms", "300", NULL };
	struct conn c;
	char buf[16];

	topo_switch(0, args);
	c = topo_connect(8080);
	topo_echo(&c);

	/* the store stops answering: the switch's session runs out */
	kill(topo.store_pid, SIGSTOP);
	rp_test_sleep_ms(500);
	cr_assert_geq(topo_agent_stat(0, "session_lapsed", 1), 1);
	cr_assert_eq(send(c.client, "late", 4, 0), 4);
	cr_assert_eq(topo_readable(c.server, 300), 0,
		     "a switch without a live session forwarded a packet");

	/* the store is back: a new epoch, the flows are leased again */
	kill(topo.store_pid, SIGCONT);
	cr_assert_gt(topo_readable(c.server, 10000), 0, "the connection did not recover");
	cr_assert_eq(recv(c.server, buf, sizeof(buf), 0), 4);
	cr_assert_arr_eq(buf, "late", 4);
	topo_echo(&c);
	cr_assert_eq(topo_agent_stat(0, "session_new", 2), 2, "a second epoch");
	close(c.client);
	close(c.server);
}

/*
 * The model's finding (docs/MODEL.md): a new head brings every session back,
 * also one that ran out at its switch while the old head gave its flows
 * away; taking it back would make grants of the old epoch still on their
 * way good again.  Here the store keeps the session live (its heartbeats
 * arrive) while its answers are lost: the switch's session runs out, and
 * when the answers come again it takes a new epoch, not the old one back.
 */
Test(load_lapse, a_session_that_ran_out_here_comes_back_only_as_a_new_epoch)
{
	const char *args[] = { "--lease-ms", "300", NULL };
	struct conn c;

	topo_switch(0, args);
	c = topo_connect(8080);
	topo_echo(&c);

	if (rp_topo_sh(topo.ns_store,
		       "nft add table ip rp_mute; "
		       "nft \"add chain ip rp_mute out { type filter hook output priority 0; }\"; "
		       "nft add rule ip rp_mute out udp sport 4791 drop"))
		cr_skip_test("nftables cannot filter a namespace's output here");
	rp_test_sleep_ms(700);
	cr_assert_geq(topo_agent_stat(0, "session_lapsed", 1), 1);
	cr_assert_eq(topo_agent_stat(0, "session_new", 1), 1);
	cr_assert_eq(rp_topo_sh(topo.ns_store, "nft delete table ip rp_mute"), 0);

	/* the connection's flow is leased again, with its state, in the new epoch */
	topo_echo(&c);
	cr_assert_eq(topo_agent_stat(0, "session_new", 2), 2,
		     "the session that ran out here was taken back");
	close(c.client);
	close(c.server);
}

static void up_chain(void)
{
	topo_up(1, "1000");
}

TestSuite(load_chain, .init = up_chain, .fini = topo_down, .timeout = 60);

/*
 * A second replica of the store's chain, as far as the switch can tell:
 * datagrams to port 4792 are rewritten to the store's 4791 before conntrack
 * (stateless, so that answers keep coming from 4791, as from a chain's tail;
 * the UDP checksum is dropped, since XDP sends none and a rewrite would
 * break it).
 */
static void second_replica(void)
{
	if (rp_topo_sh(topo.ns_store,
		       "nft add table ip rpt; "
		       "nft \"add chain ip rpt pre { type filter hook prerouting priority -300; }\"; "
		       "nft add rule ip rpt pre udp dport 4792 notrack "
		       "udp dport set 4791 udp checksum set 0"))
		cr_skip_test("nftables cannot rewrite ports in a namespace here");
}

/* Where rp-load's protocol endpoint is, from its first line. */
static struct sockaddr_in endpoint(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	char log[1024], *p, *colon;
	FILE *f = fopen(topo.sw[0].log, "r");
	size_t n = f ? fread(log, 1, sizeof(log) - 1, f) : 0;

	if (f)
		fclose(f);
	log[n] = '\0';
	p = strstr(log, "protocol endpoint ");
	cr_assert_not_null(p, "%s", log);
	p += strlen("protocol endpoint ");
	colon = strchr(p, ':');
	cr_assert_not_null(colon);
	*colon = '\0';
	cr_assert_eq(inet_pton(AF_INET, p, &sin.sin_addr), 1);
	sin.sin_port = htons((uint16_t)atoi(colon + 1));
	return sin;
}

/* A REJECT not_head from 192.0.2.10:4792, its hint naming port `port` there. */
static void not_head(int fd, const struct sockaddr_in *to, uint16_t port, uint32_t version)
{
	struct rp_head_hint hint = { .addr = inet_addr("192.0.2.10"), .port = htons(port),
				     .version = htonl(version) };
	struct rp_msg_view v = {
		.type = RP_MSG_REJECT,
		.app_id = RP_APP_NAT,
		.flags = RP_F_STATE,
		.reason = RP_REJ_NOT_HEAD,
		.switch_id = 1,
		.state_len = sizeof(hint),
		.state = (const uint8_t *)&hint,
	};
	uint8_t buf[RP_DGRAM_MAX];
	size_t len;

	rp_key_v4(&v.key, IPPROTO_TCP, 0, 0, 0, 0);
	len = rp_test_encode(buf, &v);
	cr_assert_eq(sendto(fd, buf, len, 0, (const struct sockaddr *)to, sizeof(*to)),
		     (ssize_t)len);
}

Test(load_chain, follows_head_hints_resends_to_the_new_head_and_probes_a_silent_chain)
{
	const char *args[] = { "--store", "192.0.2.10:4791+192.0.2.10:4792", "--lease-ms", "1000",
			       "--rto-us", "20000", "--max-tries", "10", NULL };
	struct sockaddr_in replica = { .sin_family = AF_INET, .sin_port = htons(4792) };
	struct sockaddr_in sw;
	struct conn c, c2;
	long long probes;
	char buf[16];
	int fd;

	second_replica();
	topo_switch(0, args);
	sw = endpoint();
	c = topo_connect(8080);
	topo_echo(&c);
	fd = rp_topo_socket(topo.ns_store, AF_INET, SOCK_DGRAM);
	cr_assert_geq(fd, 0);
	replica.sin_addr.s_addr = inet_addr("192.0.2.10");
	cr_assert_eq(bind(fd, (struct sockaddr *)&replica, sizeof(replica)), 0);

	/*
	 * The FIN's write to the first head is lost; the second replica says
	 * it is the head now, before the write's first retransmission (TCP's
	 * own comes later): the copy goes to it from rp-load's socket.
	 */
	drop_writes(1);
	shutdown(c.client, SHUT_WR);
	not_head(fd, &sw, 4792, 3);
	cr_assert_eq(topo_agent_stat(0, "head_changes", 1), 1);
	cr_assert(rp_topo_wait_log(topo.sw[0].log, "head is now 192.0.2.10:4792", 1000));
	cr_assert_gt(topo_readable(c.server, 3000), 0, "the FIN never reached the server");
	cr_assert_eq(recv(c.server, buf, sizeof(buf), 0), 0);
	cr_assert_geq(topo_agent_stat(0, "retransmits_udp", 1), 1);
	cr_assert_eq(store_link[0]->bss->dropped, 1);

	/* an older configuration's hint is not followed; an unknown replica is counted */
	not_head(fd, &sw, 4791, 2);
	not_head(fd, &sw, 4799, 4);
	cr_assert_eq(topo_agent_stat(0, "head_hints_unknown", 1), 1);
	cr_assert_eq(topo_agent_stat(0, "not_head_rejects", 3), 3);
	cr_assert_eq(rp_topo_agent_stat(&topo, 0, "head_changes"), 1);

	/*
	 * The chain goes quiet: heartbeats probe every replica until it
	 * answers, with no hint; the replica whose ack came (port 4791: the
	 * store answers from there) is taken as the head.
	 */
	kill(topo.store_pid, SIGSTOP);
	rp_test_sleep_ms(1000);
	kill(topo.store_pid, SIGCONT);
	cr_assert_geq(topo_agent_stat(0, "hb_probes", 1), 1);
	cr_assert(rp_topo_wait_log(topo.sw[0].log, "heartbeats go to every replica", 1000));
	cr_assert_eq(topo_agent_stat(0, "head_changes", 2), 2);
	cr_assert(rp_topo_wait_log(topo.sw[0].log, "head is now 192.0.2.10:4791 (it answered", 1000));
	c2 = topo_connect(8081);
	topo_echo(&c2);
	rp_test_sleep_ms(PUBLISH_MS);
	probes = rp_topo_agent_stat(&topo, 0, "hb_probes");
	rp_test_sleep_ms(500 + PUBLISH_MS);
	cr_assert_eq(rp_topo_agent_stat(&topo, 0, "hb_probes"), probes, "probing stopped");
	close(fd);
	close(c2.client);
	close(c2.server);
	close(c.client);
	close(c.server);
}
