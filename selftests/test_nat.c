// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The NAT's external ports (issue 17): a new connection's search for a
 * free port, the move of one whose port the store has taken, in both
 * builds; rp-load's state file that keeps the search's position across a
 * restart, and its refusal of a switch id that would share a range.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "topo_fixture.h"
#include "xdp_fixture.h"
/* after the fixture: the skeletons use the types of redplane/dp.h */
#include "redplane.skel.h"
#include "redplane_norepl.skel.h"

#define ETH_IP_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr))

/* The nat_ports map of the build under test: where the next search starts. */
static int map_ports;

static void set_position(uint32_t next)
{
	uint32_t zero = 0;

	cr_assert_eq(bpf_map_update_elem(map_ports, &zero, &next, 0), 0);
}

static uint32_t position(void)
{
	uint32_t zero = 0, next;

	cr_assert_eq(bpf_map_lookup_elem(map_ports, &zero, &next), 0);
	return next;
}

/*
 * The reverse key of port `ext_port` for SERVER:dport, as an entry here:
 * held under `epoch` (0: not) with flags `flags`, mapping to CLIENT2 (the
 * state of another connection).
 */
static void put_reverse(uint16_t dport, uint16_t ext_port, uint32_t epoch, uint8_t flags)
{
	struct rp_nat_state st = { .addr = htonl(FX_CLIENT2), .port = htons(40900),
				   .dir = RP_NAT_REV };
	struct rp_dp_flow f = { .epoch = epoch, .flags = flags, .state_len = sizeof(st) };
	struct rp_flow_key rev;

	if (!epoch)
		f.gone_epoch = FX_EPOCH;	/* given up */
	memcpy(f.state, &st, sizeof(st));
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, dport, FX_EXT, ext_port);
	fx_put_flow(&rev, &f);
}

/* The request carries the NAT state addr:port (host order), direction dir. */
static void expect_state(const struct rp_msg_view *v, uint32_t addr, uint16_t port, uint8_t dir)
{
	const struct rp_nat_state *st = (const struct rp_nat_state *)v->state;

	cr_assert(v->flags & RP_F_STATE);
	cr_assert_eq(v->state_len, sizeof(*st));
	cr_assert_eq(ntohl(st->addr), addr);
	cr_assert_eq(ntohs(st->port), port, "port %u, expected %u", ntohs(st->port), port);
	cr_assert_eq(st->dir, dir);
}

/* A SYN of CLIENT:cport to SERVER:dport goes to the store proposing ext_port. */
static void expect_proposal(uint16_t cport, uint16_t dport, uint16_t ext_port)
{
	uint8_t syn[128];
	struct rp_flow_key fwd;
	struct rp_msg_view req;
	struct fx_out out;
	size_t len;

	len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, cport, FX_SERVER, dport, FX_SYN, 0);
	fx_run(syn, len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, cport, FX_SERVER, dport);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(rp_key_eq(&req.key, &fwd));
	expect_state(&req, FX_EXT, ext_port, RP_NAT_FWD);
}

static void nat_setup(void)
{
	fx_setup();
	map_ports = bpf_map__fd(fx.skel->maps.nat_ports);
}

TestSuite(nat, .init = nat_setup, .fini = fx_teardown, .timeout = 30);

Test(nat, a_busy_first_candidate_gives_the_next_free_port)
{
	put_reverse(80, FX_PORT_BASE, FX_EPOCH, 0);
	expect_proposal(41000, 80, FX_PORT_BASE + 1);
	cr_assert_eq(fx_stat(RP_DP_nat_port_skipped), 1);
	cr_assert_eq(position(), 2, "the counter moved past the candidates looked at");
	/* a port is taken per destination: another one's first candidate is free */
	set_position(0);
	expect_proposal(41000, 443, FX_PORT_BASE);
	cr_assert_eq(fx_stat(RP_DP_nat_port_skipped), 1);
}

Test(nat, a_revoked_or_deleting_port_is_busy_an_expired_or_unknown_one_free)
{
	put_reverse(80, FX_PORT_BASE, 0, 0);			/* given up to a revoke */
	put_reverse(80, FX_PORT_BASE + 1, 0, RP_DPF_EXPIRING);	/* being deleted */
	put_reverse(80, FX_PORT_BASE + 2, 0, RP_DPF_EXPIRED);	/* deleted */
	expect_proposal(41001, 80, FX_PORT_BASE + 2);
	cr_assert_eq(fx_stat(RP_DP_nat_port_skipped), 2);

	put_reverse(80, FX_PORT_BASE + 2, 0, RP_DPF_NO_FLOW);	/* the store said: none */
	set_position(0);
	expect_proposal(41002, 80, FX_PORT_BASE + 2);
	cr_assert_eq(fx_stat(RP_DP_nat_port_skipped), 4);
	cr_assert_eq(fx_stat(RP_DP_nat_ports_exhausted), 0);
}

Test(nat, with_every_candidate_busy_the_connection_is_dropped_and_counted)
{
	uint8_t syn[128];
	struct rp_flow_key fwd;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	_Static_assert(FX_PORT_SPAN > RP_NAT_PORT_TRIES, "the fixture's range has more ports");
	for (uint16_t i = 0; i < RP_NAT_PORT_TRIES; i++)
		put_reverse(80, FX_PORT_BASE + i, FX_EPOCH, 0);
	len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 41003, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_nat_ports_exhausted), 1);
	cr_assert_eq(fx_stat(RP_DP_nat_port_skipped), RP_NAT_PORT_TRIES);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 0, "nothing proposed");
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 41003, FX_SERVER, 80);
	cr_assert(!fx_flow(&fwd, &f), "no entry for a connection that got no port");

	/* the last candidate comes free: taken, not dropped */
	put_reverse(80, FX_PORT_BASE + RP_NAT_PORT_TRIES - 1, 0, RP_DPF_EXPIRED);
	set_position(0);
	expect_proposal(41003, 80, FX_PORT_BASE + RP_NAT_PORT_TRIES - 1);
	cr_assert_eq(fx_stat(RP_DP_nat_ports_exhausted), 1);
}

/* The store's message about `key` (FX_EPOCH, gen 0), `inner` riding along. */
static void from_store(uint8_t type, const struct rp_flow_key *key, uint32_t seq,
		       const struct rp_nat_state *st, const void *inner, size_t inner_len,
		       struct fx_out *out)
{
	uint8_t msg[2048];
	size_t len = fx_msg(msg, FX_STORE, RP_APP_NAT, type, key, seq, st,
			    st ? sizeof(*st) : 0, 0, inner, inner_len);

	fx_run(msg, len, fx.ifindex_sto, out);
}

/* A request whose packet is the SYN of CLIENT:cport, untranslated. */
static void expect_untranslated(const struct rp_msg_view *req, const uint8_t *syn, size_t len)
{
	cr_assert_eq(req->pkt_len, len);
	/* addressed to the interface it came back on, if it came back (rp_decap) */
	cr_assert_arr_eq(req->pkt + 6, syn + 6, len - 6, "the packet rides untranslated");
}

Test(nat, a_port_the_store_has_taken_moves_and_the_ack_asks_for_the_new_reverse_key)
{
	uint8_t syn[128], want[128], echo[2048];
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(FX_PORT_BASE),
				   .dir = RP_NAT_FWD },
			    other = { .addr = htonl(FX_CLIENT2), .port = htons(40900),
				      .dir = RP_NAT_REV };
	struct rp_flow_key fwd, rev, rev2;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t syn_len, echo_len;

	syn_len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 41004, FX_SERVER, 80, FX_SYN,
			 0);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 41004, FX_SERVER, 80);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, FX_PORT_BASE);
	fx_key(&rev2, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, FX_PORT_BASE + 1);
	fx_run(syn, syn_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	expect_state(&req, FX_EXT, FX_PORT_BASE, RP_NAT_FWD);
	from_store(RP_MSG_GRANT, &fwd, 0, &st, syn, syn_len, &out);
	fx_decode_request(&out, &req);
	cr_assert(rp_key_eq(&req.key, &rev), "the reverse key asked for");

	/* the store has it, another connection's: the SYN comes back with it */
	from_store(RP_MSG_MIGRATE, &rev, 0, &other, req.pkt, req.pkt_len, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE, "the move is a write of the forward key");
	cr_assert(rp_key_eq(&req.key, &fwd));
	cr_assert_eq(req.seq, 1);
	expect_state(&req, FX_EXT, FX_PORT_BASE + 1, RP_NAT_FWD);	/* another port */
	expect_untranslated(&req, syn, syn_len);
	cr_assert_eq(fx_stat(RP_DP_nat_collision), 1);
	cr_assert_eq(fx_stat(RP_DP_nat_port_moved), 1);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert(f.flags & RP_DPF_REV_PENDING, "still waiting for its reverse key");
	cr_assert_eq(f.seq, 1);
	cr_assert_eq(f.acked, 0);

	/* TCP sends the SYN again before the ACK: the move is written again */
	fx_run(syn, syn_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE, "no reverse key before the move is in the store");
	cr_assert_eq(req.seq, 2);
	expect_state(&req, FX_EXT, FX_PORT_BASE + 1, RP_NAT_FWD);
	expect_untranslated(&req, syn, syn_len);
	echo_len = req.pkt_len;
	memcpy(echo, req.pkt, echo_len);

	/* the first write's ACK: the second is not acknowledged yet, nothing leaves */
	from_store(RP_MSG_ACK, &fwd, 1, NULL, echo, echo_len, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_ack), 1);

	/* the second's: through the app again, which asks for the new reverse key */
	from_store(RP_MSG_ACK, &fwd, 2, NULL, echo, echo_len, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(rp_key_eq(&req.key, &rev2), "the new port's reverse key");
	expect_state(&req, FX_CLIENT, 41004, RP_NAT_REV);
	st = (struct rp_nat_state){ .addr = htonl(FX_CLIENT), .port = htons(41004),
				    .dir = RP_NAT_REV };
	expect_untranslated(&req, syn, syn_len);

	/* granted: the SYN leaves, translated to the new port */
	from_store(RP_MSG_GRANT, &rev2, 0, &st, req.pkt, req.pkt_len, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_EXT, FX_PORT_BASE + 1, FX_SERVER, 80, FX_SYN, 0);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, want, syn_len);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, 0, "both keys are in the store");
	cr_assert_eq(fx_stat(RP_DP_nat_port_moved), 1);
}

/* ---- the same with replication compiled out ---- */

static struct redplane_norepl *norepl;

static void norepl_setup(void)
{
	fx_netns();
	norepl = redplane_norepl__open();
	cr_assert_not_null(norepl);
	norepl->rodata->cfg_app = RP_APP_NAT;
	norepl->rodata->cfg_nat_int_net = htonl(0x0a010000u);
	norepl->rodata->cfg_nat_int_mask = htonl(0xffffff00u);
	norepl->rodata->cfg_nat_ext_addr = htonl(FX_EXT);
	norepl->rodata->cfg_nat_port_base = FX_PORT_BASE;
	norepl->rodata->cfg_nat_port_span = FX_PORT_SPAN;
	bpf_program__set_autoload(norepl->progs.rp_app_fw, false);
	bpf_program__set_autoload(norepl->progs.rp_app_lb, false);
	bpf_program__set_autoload(norepl->progs.rp_app_counter, false);
	bpf_program__set_autoload(norepl->progs.rp_app_sketch, false);
	cr_assert_eq(redplane_norepl__load(norepl), 0, "load the no-replication build");
	cr_assert_eq(rp_topo_prog_array(bpf_map__fd(norepl->maps.progs),
					bpf_program__fd(norepl->progs.rp_root), RP_APP_NAT,
					bpf_program__fd(norepl->progs.rp_app_nat)), 0);
	fx.prog_root = bpf_program__fd(norepl->progs.rp_root);
	fx.map_flows = bpf_map__fd(norepl->maps.flows);
	fx.map_stats = bpf_map__fd(norepl->maps.stats);
	map_ports = bpf_map__fd(norepl->maps.nat_ports);
}

static void norepl_teardown(void)
{
	if (norepl)
		redplane_norepl__destroy(norepl);
	norepl = NULL;
}

TestSuite(nat_norepl, .init = norepl_setup, .fini = norepl_teardown, .timeout = 30);

/* The SYN of CLIENT:cport to SERVER:80 leaves at once from ext_port. */
static void expect_leaves_from(uint16_t cport, uint16_t ext_port)
{
	uint8_t syn[128], want[128];
	struct fx_out out;
	size_t len;

	len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, cport, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, len, fx.ifindex_int, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_EXT, ext_port, FX_SERVER, 80, FX_SYN, 0);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, want, len);
}

Test(nat_norepl, busy_ports_are_skipped_and_a_taken_port_moves_at_once)
{
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(FX_PORT_BASE + 50),
				   .dir = RP_NAT_FWD };
	struct rp_dp_flow f = { .epoch = 1, .flags = RP_DPF_REV_PENDING, .state_len = sizeof(st) };
	struct rp_flow_key fwd, rev;

	put_reverse(80, FX_PORT_BASE, 1, 0);
	expect_leaves_from(41005, FX_PORT_BASE + 1);
	cr_assert_eq(fx_stat(RP_DP_nat_port_skipped), 1);

	/* a connection mapped to a port whose reverse key is another's: moved */
	memcpy(f.state, &st, sizeof(st));
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 41006, FX_SERVER, 80);
	fx_put_flow(&fwd, &f);
	put_reverse(80, FX_PORT_BASE + 50, 1, 0);
	expect_leaves_from(41006, FX_PORT_BASE + 2);
	cr_assert_eq(fx_stat(RP_DP_nat_collision), 1);
	cr_assert_eq(fx_stat(RP_DP_nat_port_moved), 1);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, FX_PORT_BASE + 2);
	cr_assert(fx_flow(&rev, &f), "the new port's reverse key");
	cr_assert(fx_flow(&fwd, &f) && f.flags == 0);

	for (uint16_t i = 0; i < RP_NAT_PORT_TRIES; i++)
		put_reverse(80, FX_PORT_BASE + 10 + i, 1, 0);
	set_position(10);
	{
		uint8_t syn[128];
		struct fx_out out;
		size_t len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 41007, FX_SERVER,
				    80, FX_SYN, 0);

		fx_run(syn, len, fx.ifindex_int, &out);
		cr_assert_eq(out.verdict, XDP_DROP);
		cr_assert_eq(fx_stat(RP_DP_nat_ports_exhausted), 1);
	}
}

/* ---- rp-load: the state file, and its options ---- */

/* rp-load's output with `args` (after the binary), and its exit status. */
static int run_rp_load(const char *args, char *out, size_t size)
{
	const char *bin = getenv("RP_BUILD");
	char cmd[1024];
	size_t n;
	FILE *p;
	int st;

	snprintf(cmd, sizeof(cmd), "%s/rp-load %s 2>&1", bin && *bin ? bin : "build", args);
	p = popen(cmd, "r");
	cr_assert_not_null(p);
	n = fread(out, 1, size - 1, p);
	out[n] = '\0';
	st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

TestSuite(nat_options, .timeout = 10);

Test(nat_options, a_switch_id_past_nat_switches_is_refused)
{
	char out[4096];
	int rc;

	rc = run_rp_load("nope0 --app nat --store 192.0.2.10:4791 --switch-id 17 "
			 "--nat-int 10.1.0.0/24 --nat-ext 203.0.113.1", out, sizeof(out));
	cr_assert_eq(rc, 2, "a bad command line: %s", out);
	cr_assert_not_null(strstr(out, "--switch-id 17 is greater than --nat-switches 16"), "%s",
			   out);
	cr_assert_not_null(strstr(out, "ports of --switch-id 1 "), "%s", out);
	rc = run_rp_load("nope0 --app nat --store 192.0.2.10:4791 --switch-id 17 "
			 "--nat-int 10.1.0.0/24 --nat-ext 203.0.113.1 --nat-switches 17",
			 out, sizeof(out));
	cr_assert_neq(rc, 2, "accepted: %s", out);
	cr_assert_null(strstr(out, "greater than"), "%s", out);
}

static void up(void)
{
	topo_up(1, "1000");
}

TestSuite(nat_load, .init = up, .fini = topo_down, .timeout = 60);

/* The position in the state file, or -1 if none. */
static long saved_position(const char *path)
{
	char line[128];
	long next = -1;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "next %ld", &next) == 1)
			break;
	fclose(f);
	return next;
}

/* A connection through the switch: the external port the server sees. */
static uint16_t connect_port(void)
{
	struct sockaddr_in peer;
	socklen_t len = sizeof(peer);
	struct conn c = topo_connect(8080);

	cr_assert_eq(getpeername(c.server, (struct sockaddr *)&peer, &len), 0);
	close(c.client);
	close(c.server);
	return ntohs(peer.sin_port);
}

Test(nat_load, the_port_position_survives_a_restart)
{
	struct rp_topo_switch *sw = &topo.sw[0];
	char dir[128], path[192];
	const char *args[] = { "--state-dir", dir, NULL };
	long next = -1;
	FILE *f;

	/* switch 1 of 16 sharing 1024-65535: ports 1024 to 5055 */
	snprintf(dir, sizeof(dir), "%s/state/nat", topo.dir);
	snprintf(path, sizeof(path), "%s/%s.nat", dir, sw->if_int);
	cr_assert_eq(rp_topo_sh(sw->ns, "mkdir -p %s", dir), 0);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fprintf(f, "next 1234\n");
	fclose(f);

	topo_switch(0, args);
	cr_assert_eq(connect_port(), 1024 + 1234, "the search starts where the file says");
	/* saved while it runs, for a crash */
	for (int t = 0; t < 100 && next != 1235; t++) {
		usleep(100000);
		next = saved_position(path);
	}
	cr_assert_eq(next, 1235, "saved every few seconds");
	cr_assert_eq(rp_topo_stop(&sw->load_pid, false), 0);
	cr_assert_eq(saved_position(path), 1235, "saved at exit");

	topo_switch(0, args);
	cr_assert_eq(connect_port(), 1024 + 1235, "a restart goes on from there");
	cr_assert_eq(rp_topo_stop(&sw->load_pid, false), 0);
	cr_assert_eq(saved_position(path), 1236);

	/* none saved, the directory gone: made again, the search starts anywhere */
	cr_assert_eq(rp_topo_sh(sw->ns, "rm -rf %s/state", topo.dir), 0);
	topo_switch(0, args);
	cr_assert(rp_topo_wait_log(sw->log, "random, none saved", 2000));
	cr_assert_eq(rp_topo_stop(&sw->load_pid, false), 0);
	next = saved_position(path);
	cr_assert(next >= 0 && next < 4032, "a position in the range: %ld", next);
}
