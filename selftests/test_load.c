// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * rp-load against the real rp-store in network namespaces, with real TCP
 * connections from the kernel's own stack through the switch's NAT.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "redplane/dp.h"
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
