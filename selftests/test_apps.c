// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The firewall and the load balancer: their decisions and malformed inputs
 * through bpf_prog_test_run_opts (xdp_fw, xdp_lb), every application with
 * replication compiled out (xdp_norepl), failover with real traffic through
 * two switches in network namespaces (fw_failover, lb_failover), and
 * rp-load's command line for them (apps_cli).
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rp_test.h"
#include "topo_fixture.h"
#include "xdp_fixture.h"
/* after the fixture: the skeleton uses the types of redplane/dp.h */
#include "redplane.skel.h"
#include "redplane_norepl.skel.h"

#define ETH_IP_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr))

static uint64_t tai_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_TAI, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- the firewall, through bpf_prog_test_run_opts ---- */

TestSuite(xdp_fw, .init = fx_setup_fw, .fini = fx_teardown, .timeout = 30);

static struct rp_fw_state fw_state(const struct rp_msg_view *v)
{
	struct rp_fw_state st;

	cr_assert(v->flags & RP_F_STATE, "the request carries a state");
	cr_assert_eq(v->state_len, sizeof(st));
	memcpy(&st, v->state, sizeof(st));
	return st;
}

/* A held firewall flow. */
static void fw_hold(const struct rp_flow_key *key, uint8_t phase, uint8_t origin, uint8_t fin,
		    uint64_t seen)
{
	struct rp_fw_state st = { .seen_ns = seen, .phase = phase, .origin = origin, .fin = fin };
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .state_len = sizeof(st) };

	memcpy(f.state, &st, sizeof(st));
	fx_put_flow(key, &f);
}

static struct rp_fw_state fw_flow(const struct rp_flow_key *key)
{
	struct rp_fw_state st;
	struct rp_dp_flow f;

	cr_assert(fx_flow(key, &f), "the flow is there");
	memcpy(&st, f.state, sizeof(st));
	return st;
}

/* Runs `pkt`; expects a write about `key` with seq, carrying pkt as it came. */
static struct rp_fw_state expect_write(const uint8_t *pkt, size_t len, int ifindex,
				       const struct rp_flow_key *key, uint32_t seq)
{
	struct rp_msg_view req;
	struct fx_out out;

	fx_run(pkt, len, ifindex, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE, "a write (type %u)", req.type);
	cr_assert_eq(req.app_id, RP_APP_FW);
	cr_assert(rp_key_eq(&req.key, key), "about the connection's key");
	cr_assert_eq(req.seq, seq);
	cr_assert_eq(req.pkt_len, len);
	cr_assert_arr_eq(req.pkt, pkt, len, "the packet rides as it came");
	return fw_state(&req);
}

/* The store's ACK of write `seq`, releasing `pkt`: forwarded toward dmac. */
static void ack_releases(const struct rp_flow_key *key, uint8_t app, uint32_t seq,
			 const uint8_t *pkt, size_t len, const uint8_t *dmac, const uint8_t *smac)
{
	uint8_t msg[2048], want[2048];
	struct fx_out out;
	size_t mlen = fx_msg(msg, FX_STORE, app, RP_MSG_ACK, key, seq, NULL, 0, 0, pkt, len);

	fx_run(msg, mlen, fx.ifindex_sto, &out);
	memcpy(want, pkt, len);
	fx_forwarded(want, dmac, smac);
	fx_expect(&out, XDP_REDIRECT, want, len);
}

#define TO_SERVER	fx.ifindex_int, fx_mac_server, fx_mac_ext
#define TO_CLIENT	fx.ifindex_ext, fx_mac_client, fx_mac_int

Test(xdp_fw, an_inside_connection_opens_in_one_round_trip_and_its_replies_pass)
{
	uint8_t syn[128], msg[2048], pkt[256];
	struct rp_flow_key key;
	struct rp_msg_view req;
	struct rp_fw_state st;
	struct fx_out out;
	size_t syn_len, len;

	/* 1. The SYN has no lease: it proposes the connection, inside end first */
	syn_len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, syn_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40000, FX_SERVER, 80);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert_eq(req.app_id, RP_APP_FW);
	cr_assert(rp_key_eq(&req.key, &key));
	st = fw_state(&req);
	cr_assert_eq(st.phase, RP_FW_SYN_SENT);
	cr_assert_eq(st.origin, RP_FW_OUT);
	cr_assert_eq(st.seen_ns, 0);
	cr_assert_arr_eq(req.pkt, syn, syn_len, "the SYN rides as it came");
	cr_assert_eq(fx_stat(RP_DP_fw_new), 1);

	/* 2. GRANT: the SYN leaves */
	len = fx_msg(msg, FX_STORE, RP_APP_FW, RP_MSG_GRANT, &key, 0, &st, sizeof(st), 0, syn,
		     syn_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	memcpy(pkt, syn, syn_len);
	fx_forwarded(pkt, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, pkt, syn_len);

	/* 3. The SYN-ACK establishes it: a write, released by its ACK */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40000,
		     FX_SYN | FX_ACK, 0);
	st = expect_write(pkt, len, fx.ifindex_ext, &key, 1);
	cr_assert_eq(st.phase, RP_FW_ESTABLISHED);
	ack_releases(&key, RP_APP_FW, 1, pkt, len, fx_mac_client, fx_mac_int);

	/* 4. Data both ways reads: no store */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_ACK, 100);
	fx_expect_passes(pkt, len, TO_SERVER);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40000,
		     FX_ACK | FX_PSH, 200);
	fx_expect_passes(pkt, len, TO_CLIENT);
	cr_assert_eq(fx_stat(RP_DP_fast_path), 3, "the SYN on its grant, and the data");
	cr_assert_eq(fx_stat(RP_DP_lease_req), 1);
	cr_assert_eq(fx_stat(RP_DP_write_req), 1);

	/* 5. Each side's FIN is a write */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80,
		     FX_FIN | FX_ACK, 0);
	st = expect_write(pkt, len, fx.ifindex_int, &key, 2);
	cr_assert_eq(st.fin, RP_FW_FIN_OUT);
	ack_releases(&key, RP_APP_FW, 2, pkt, len, fx_mac_server, fx_mac_ext);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40000,
		     FX_FIN | FX_ACK, 0);
	st = expect_write(pkt, len, fx.ifindex_ext, &key, 3);
	cr_assert_eq(st.fin, RP_FW_FIN_OUT | RP_FW_FIN_IN);
	ack_releases(&key, RP_APP_FW, 3, pkt, len, fx_mac_client, fx_mac_int);
	/* the last ACK reads */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_ACK, 0);
	fx_expect_passes(pkt, len, TO_SERVER);

	/* 6. Both sides closed: a SYN on the same ports is a new connection */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_SYN, 0);
	st = expect_write(pkt, len, fx.ifindex_int, &key, 4);
	cr_assert_eq(st.phase, RP_FW_SYN_SENT);
	cr_assert_eq(st.fin, 0);
}

Test(xdp_fw, unsolicited_inbound_is_dropped_and_rules_open_ports)
{
	uint8_t pkt[256];
	struct rp_flow_key key;
	struct rp_msg_view req;
	struct rp_fw_state st;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	/* a SYN from the outside to a port no rule opens: dropped, the store not asked */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 50000, FX_CLIENT, 80, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_fw_blocked), 1);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 80, FX_SERVER, 50000);
	cr_assert(!fx_flow(&key, &f), "nothing noted");

	/* to tcp:22, which a rule opens: proposed, opened from the outside */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 50001, FX_CLIENT, 22, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 22, FX_SERVER, 50001);
	cr_assert(rp_key_eq(&req.key, &key), "the inside end first");
	st = fw_state(&req);
	cr_assert_eq(st.phase, RP_FW_SYN_SENT);
	cr_assert_eq(st.origin, RP_FW_IN);

	/* mid-connection traffic from the outside: a lookup, which never creates */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40100, FX_ACK, 10);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40100, FX_SERVER, 80);
	cr_assert(rp_key_eq(&req.key, &key));
	cr_assert_eq(req.flags & RP_F_STATE, 0, "a lookup: no proposal");

	/* UDP from the outside: a lookup (a reply, maybe); to udp:53 a proposal */
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 9999, FX_CLIENT, 5000, 20, true);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.flags & RP_F_STATE, 0);
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 9999, FX_CLIENT, 53, 20, true);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	st = fw_state(&req);
	cr_assert_eq(st.phase, RP_FW_UDP);
	cr_assert_eq(st.origin, RP_FW_IN);
	cr_assert_eq(fx_stat(RP_DP_fw_blocked), 1);
}

Test(xdp_fw, a_connection_another_switch_opened_is_looked_up_and_goes_on)
{
	uint8_t pkt[256], msg[2048], want[256];
	struct rp_fw_state st = { .phase = RP_FW_ESTABLISHED, .origin = RP_FW_OUT };
	struct rp_flow_key key, other;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, mlen;

	/* the server's data, first seen here: a lookup; the store has the connection */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40200, FX_ACK, 50);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40200, FX_SERVER, 80);
	mlen = fx_msg(msg, FX_STORE, RP_APP_FW, RP_MSG_MIGRATE, &key, 4, &st, sizeof(st), 0, pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	memcpy(want, pkt, len);
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	fx_expect(&out, XDP_REDIRECT, want, len);
	cr_assert(fx_flow(&key, &f));
	cr_assert_eq(f.epoch, FX_EPOCH);
	cr_assert_eq(f.seq, 4);

	/*
	 * The store has no such connection: REJECT no_flow drops it, and notes
	 * the key as unknown (the negative cache), holding nothing: the
	 * connection's next packet is dropped without asking the store again.
	 */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40201, FX_ACK, 50);
	fx_key(&other, IPPROTO_TCP, FX_CLIENT, 40201, FX_SERVER, 80);
	mlen = fx_msg(msg, FX_STORE, RP_APP_FW, RP_MSG_REJECT, &other, 0, NULL, 0, RP_REJ_NO_FLOW,
		      pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&other, &f));
	cr_assert_eq(f.epoch, 0);
	cr_assert_eq(f.flags, RP_DPF_NO_FLOW);
	cr_assert_eq(f.state_len, 0);
	cr_assert_eq(fx_stat(RP_DP_no_flow), 1);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_negative), 1);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 1, "the migrate's request only");
}

Test(xdp_fw, packets_their_connections_phase_does_not_allow_are_dropped)
{
	uint8_t pkt[256];
	struct rp_flow_key key;
	struct rp_fw_state st;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40300, FX_SERVER, 80);
	fw_hold(&key, RP_FW_SYN_SENT, RP_FW_OUT, 0, 0);
	/* before the SYN-ACK: data either way is refused; the opener's SYN again passes */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40300, FX_ACK, 10);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40300, FX_SERVER, 80, FX_ACK, 10);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	/* a SYN from the responder is no answer either */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40300, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_fw_invalid), 3);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40300, FX_SERVER, 80, FX_SYN, 0);
	fx_expect_passes(pkt, len, TO_SERVER);

	/* a RST closes it (a write); afterwards only a new SYN from the inside passes */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40300,
		     FX_RST | FX_ACK, 0);
	st = expect_write(pkt, len, fx.ifindex_ext, &key, 1);
	cr_assert_eq(st.phase, RP_FW_CLOSED);
	cr_assert(fx_flow(&key, &f));
	f.acked = f.seq;	/* the store has it */
	fx_put_flow(&key, &f);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40300, FX_SERVER, 80, FX_ACK, 10);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40300, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP, "the outside may not reopen it: no rule for port 40300");
	cr_assert_eq(fx_stat(RP_DP_fw_invalid), 5);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40300, FX_SERVER, 80, FX_SYN, 0);
	st = expect_write(pkt, len, fx.ifindex_int, &key, 2);
	cr_assert_eq(st.phase, RP_FW_SYN_SENT);
}

Test(xdp_fw, while_a_write_is_unacknowledged_every_packet_of_the_flow_writes)
{
	uint8_t pkt[256];
	struct rp_flow_key key;
	struct rp_fw_state st;
	struct rp_dp_flow f;
	size_t len;

	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40400, FX_SERVER, 80);
	fw_hold(&key, RP_FW_SYN_SENT, RP_FW_OUT, 0, 0);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40400,
		     FX_SYN | FX_ACK, 0);
	expect_write(pkt, len, fx.ifindex_ext, &key, 1);
	/* the local state is ahead of the store's: the client's ACK must not leave on it */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40400, FX_SERVER, 80, FX_ACK, 0);
	st = expect_write(pkt, len, fx.ifindex_int, &key, 2);
	cr_assert_eq(st.phase, RP_FW_ESTABLISHED);
	cr_assert(fx_flow(&key, &f));
	cr_assert_eq(f.seq, 2);
	cr_assert_eq(fx_stat(RP_DP_fast_path), 0);
}

Test(xdp_fw, udp_pseudo_connections_refresh_by_writes_and_expire)
{
	uint64_t idle = FX_FW_IDLE_MS * 1000000ull, before, after;
	uint8_t pkt[256];
	struct rp_flow_key key, dns;
	struct rp_msg_view req;
	struct rp_fw_state st;
	struct fx_out out;
	size_t len;

	/* the first datagram from the inside proposes it, with the time */
	before = tai_ns();
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5353, FX_SERVER, 9999, 20, true);
	fx_run(pkt, len, fx.ifindex_int, &out);
	after = tai_ns();
	fx_decode_request(&out, &req);
	fx_key(&key, IPPROTO_UDP, FX_CLIENT, 5353, FX_SERVER, 9999);
	cr_assert(rp_key_eq(&req.key, &key));
	st = fw_state(&req);
	cr_assert_eq(st.phase, RP_FW_UDP);
	cr_assert_eq(st.origin, RP_FW_OUT);
	cr_assert(st.seen_ns >= before && st.seen_ns <= after, "CLOCK_TAI when it was opened");

	/* open and fresh: replies and more datagrams read */
	fw_hold(&key, RP_FW_UDP, RP_FW_OUT, 0, tai_ns());
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 9999, FX_CLIENT, 5353, 20, true);
	fx_expect_passes(pkt, len, TO_CLIENT);
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5353, FX_SERVER, 9999, 20, false);
	fx_expect_passes(pkt, len, TO_SERVER);
	cr_assert_eq(fx_stat(RP_DP_write_req), 0);

	/* a quarter of the timeout old: the next datagram (a reply too) writes the time anew */
	fw_hold(&key, RP_FW_UDP, RP_FW_OUT, 0, tai_ns() - idle / 4 - 1000000000ull);
	before = tai_ns();
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 9999, FX_CLIENT, 5353, 20, true);
	st = expect_write(pkt, len, fx.ifindex_ext, &key, 1);
	cr_assert_geq(st.seen_ns, before);
	cr_assert_eq(fx_stat(RP_DP_fw_refresh), 1);

	/* idle past the timeout (and its quarter of slack): replies are refused */
	fw_hold(&key, RP_FW_UDP, RP_FW_OUT, 0, tai_ns() - idle - idle / 4 - 1000000000ull);
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 9999, FX_CLIENT, 5353, 20, true);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_fw_expired), 1);
	cr_assert_lt(fw_flow(&key).seen_ns, before, "judged, not changed");
	/* ... but the inside opens it again */
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5353, FX_SERVER, 9999, 20, true);
	st = expect_write(pkt, len, fx.ifindex_int, &key, 1);
	cr_assert_geq(st.seen_ns, before);

	/* an expired flow to a port a rule opens: the outside opens it again */
	fx_key(&dns, IPPROTO_UDP, FX_CLIENT, 53, FX_SERVER, 7777);
	fw_hold(&dns, RP_FW_UDP, RP_FW_OUT, 0, tai_ns() - 2 * idle);
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 7777, FX_CLIENT, 53, 20, true);
	st = expect_write(pkt, len, fx.ifindex_ext, &dns, 1);
	cr_assert_eq(st.origin, RP_FW_IN);
}

/* Frames the firewall does not judge, or cannot, and their verdicts. */
Test(xdp_fw, malformed_and_foreign_inputs_get_their_documented_verdict)
{
	struct rp_nat_state nat = { .addr = 1, .port = 2, .dir = RP_NAT_FWD };
	struct rp_fw_state bogus = { .phase = 9, .origin = RP_FW_OUT };
	uint8_t pkt[256], msg[2048];
	struct rp_flow_key key;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, mlen;

	/* inside to inside, outside to outside: not the firewall's business */
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_CLIENT2, 2, 10, true);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 1, 0x0a090909u, 2, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	cr_assert_eq(fx_stat(RP_DP_pass_not_app), 2);

	/* a TCP header cut short, a fragment: the root program's drops, as for any app */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_SERVER, 80, FX_SYN, 0);
	fx_run(pkt, ETH_IP_LEN + 12, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_truncated), 1);
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_SERVER, 80, 20, true);
	((struct iphdr *)(pkt + sizeof(struct ethhdr)))->frag_off = htons(100);	/* a later one */
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_fragment), 1);

	/* the store grants a state that is not the firewall's: installed, never used */
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40500, FX_SERVER, 80);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40500, FX_SERVER, 80, FX_ACK, 0);
	mlen = fx_msg(msg, FX_STORE, RP_APP_FW, RP_MSG_MIGRATE, &key, 0, &nat, sizeof(nat), 0, pkt,
		      len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_state), 1);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40501, FX_SERVER, 80);
	mlen = fx_msg(msg, FX_STORE, RP_APP_FW, RP_MSG_MIGRATE, &key, 0, &bogus, sizeof(bogus), 0,
		      NULL, 0);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40501, FX_SERVER, 80, FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_state), 2);

	/* a message of another application: malformed here */
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40502, FX_SERVER, 80);
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_GRANT, &key, 0, &nat, sizeof(nat), 0, NULL,
		      0);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_malformed_msg), 1);
	cr_assert(!fx_flow(&key, &f));
}

/* ---- the load balancer, through bpf_prog_test_run_opts ---- */

TestSuite(xdp_lb, .init = fx_setup_lb, .fini = fx_teardown, .timeout = 30);

#define FX_UNLISTED	0xc6336406u	/* 198.51.100.6: a backend of another switch's list */

static struct rp_lb_state lb_state(const struct rp_msg_view *v)
{
	struct rp_lb_state st;

	cr_assert(v->flags & RP_F_STATE);
	cr_assert_eq(v->state_len, sizeof(st));
	memcpy(&st, v->state, sizeof(st));
	return st;
}

/* Both keys of client:cport -> VIP held, to backend b:FX_BACKEND_PORT. */
static void lb_hold(uint8_t proto, uint16_t cport, uint32_t b, struct rp_flow_key *fwd,
		    struct rp_flow_key *rev)
{
	struct rp_lb_state st = { .addr = htonl(b), .port = htons(FX_BACKEND_PORT), .dir = RP_LB_FWD };
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .state_len = sizeof(st),
				.flags = RP_DPF_REV_KNOWN };

	fx_key(fwd, proto, FX_CLIENT, cport, FX_VIP, FX_VIP_PORT);
	fx_key(rev, proto, b, FX_BACKEND_PORT, FX_CLIENT, cport);
	memcpy(f.state, &st, sizeof(st));
	fx_put_flow(fwd, &f);
	st = (struct rp_lb_state){ .addr = htonl(FX_VIP), .port = htons(FX_VIP_PORT),
				   .dir = RP_LB_REV };
	memcpy(f.state, &st, sizeof(st));
	f.flags = 0;
	fx_put_flow(rev, &f);
}

/* The backend a connection from FX_CLIENT:cport gets among the first n of fx_backends. */
static uint32_t lb_expected(uint8_t proto, uint16_t cport, unsigned int n)
{
	struct rp_flow_key k;

	fx_key(&k, proto, FX_CLIENT, cport, FX_VIP, FX_VIP_PORT);
	return fx_backends[rp_lb_hash(&k) % n];
}

Test(xdp_lb, a_new_connection_takes_a_backend_and_both_keys_then_goes_to_it)
{
	uint8_t syn[128], msg[2048], want[256], pkt[256];
	struct rp_flow_key fwd, rev;
	struct rp_lb_state st;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t syn_len, len;
	uint32_t b = lb_expected(IPPROTO_TCP, 40000, FX_NBACKENDS);

	/* 1. The SYN proposes its backend: the hash of its 5-tuple over the list */
	syn_len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_VIP, FX_VIP_PORT,
			 FX_SYN, 0);
	fx_run(syn, syn_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40000, FX_VIP, FX_VIP_PORT);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert_eq(req.app_id, RP_APP_LB);
	cr_assert(rp_key_eq(&req.key, &fwd));
	st = lb_state(&req);
	cr_assert_eq(st.addr, htonl(b));
	cr_assert_eq(st.port, htons(FX_BACKEND_PORT));
	cr_assert_eq(st.dir, RP_LB_FWD);
	cr_assert_arr_eq(req.pkt, syn, syn_len);
	cr_assert_eq(fx_stat(RP_DP_lb_new), 1);

	/* 2. GRANT: the SYN goes back for the reverse key */
	len = fx_msg(msg, FX_STORE, RP_APP_LB, RP_MSG_GRANT, &fwd, 0, &st, sizeof(st), 0, syn,
		     syn_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	fx_decode_request(&out, &req);
	fx_key(&rev, IPPROTO_TCP, b, FX_BACKEND_PORT, FX_CLIENT, 40000);
	cr_assert(rp_key_eq(&req.key, &rev), "the reply's 5-tuple");
	st = lb_state(&req);
	cr_assert_eq(st.addr, htonl(FX_VIP));
	cr_assert_eq(st.port, htons(FX_VIP_PORT));
	cr_assert_eq(st.dir, RP_LB_REV);
	cr_assert_eq(fx_stat(RP_DP_lb_rev_req), 1);

	/* 3. Its GRANT: the SYN leaves, to the backend */
	len = fx_msg(msg, FX_STORE, RP_APP_LB, RP_MSG_GRANT, &rev, 0, &st, sizeof(st), 0, syn,
		     syn_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, b, FX_BACKEND_PORT, FX_SYN, 0);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, want, syn_len);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, RP_DPF_REV_KNOWN, "both keys in the store, the reverse known");

	/* 4. The backend's reply gets the virtual address back */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, b, FX_BACKEND_PORT, FX_CLIENT, 40000,
		     FX_SYN | FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_tcp(want, fx_mac_ext, fx_mac_server, FX_VIP, FX_VIP_PORT, FX_CLIENT, 40000,
	       FX_SYN | FX_ACK, 0);
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	fx_expect(&out, XDP_REDIRECT, want, len);

	/* 5. Data reads: no store */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_VIP, FX_VIP_PORT, FX_ACK,
		     100);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, b, FX_BACKEND_PORT, FX_ACK, 100);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, want, len);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 2);
	cr_assert_eq(fx_stat(RP_DP_fast_path), 3);
}

Test(xdp_lb, backends_are_chosen_by_the_hash_and_never_a_draining_one)
{
	unsigned int hits[FX_NBACKENDS + 1] = { 0 };
	uint8_t syn[128];
	struct rp_msg_view req;
	struct fx_out out;
	size_t len;

	for (uint16_t port = 41000; port < 41064; port++) {
		struct rp_lb_state st;
		unsigned int i;

		len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, port, FX_VIP, FX_VIP_PORT,
			     FX_SYN, 0);
		fx_run(syn, len, fx.ifindex_int, &out);
		fx_decode_request(&out, &req);
		st = lb_state(&req);
		cr_assert_eq(st.addr, htonl(lb_expected(IPPROTO_TCP, port, FX_NBACKENDS)));
		for (i = 0; i <= FX_NBACKENDS && htonl(fx_backends[i]) != st.addr; i++)
			;
		cr_assert_lt(i, FX_NBACKENDS, "port %u went to a draining backend", port);
		hits[i]++;
	}
	for (unsigned int i = 0; i < FX_NBACKENDS; i++)
		cr_assert_gt(hits[i], 0, "backend %u never chosen in 64 connections", i);
}

Test(xdp_lb, a_connection_taken_over_keeps_its_stored_backend_and_learns_its_replies)
{
	struct rp_lb_state st = { .addr = htonl(FX_UNLISTED), .port = htons(7000), .dir = RP_LB_FWD };
	uint8_t pkt[256], msg[2048], want[256];
	struct rp_flow_key fwd, rev;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, mlen;

	/* mid-connection, first seen here: a lookup, never a new backend */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40100, FX_VIP, FX_VIP_PORT,
		     FX_ACK, 30);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40100, FX_VIP, FX_VIP_PORT);
	cr_assert(rp_key_eq(&req.key, &fwd));
	cr_assert_eq(req.flags & RP_F_STATE, 0, "a lookup");
	cr_assert_eq(fx_stat(RP_DP_lb_new), 0);

	/* the store's backend is one this switch does not list: it is used all the same */
	mlen = fx_msg(msg, FX_STORE, RP_APP_LB, RP_MSG_MIGRATE, &fwd, 3, &st, sizeof(st), 0, pkt,
		      len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_CLIENT, 40100, FX_UNLISTED, 7000, FX_ACK, 30);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, want, len);

	/* its reverse key is noted here (not held), so its replies are known */
	fx_key(&rev, IPPROTO_TCP, FX_UNLISTED, 7000, FX_CLIENT, 40100);
	cr_assert(fx_flow(&rev, &f), "the reverse key noted");
	cr_assert_eq(f.epoch, 0);
	cr_assert_eq(fx_stat(RP_DP_lb_learned), 1);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_UNLISTED, 7000, FX_CLIENT, 40100, FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	cr_assert(rp_key_eq(&req.key, &rev));
	st = lb_state(&req);
	cr_assert_eq(st.addr, htonl(FX_VIP));
	cr_assert_eq(st.dir, RP_LB_REV);
	/* the next forward packet notes nothing more */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40100, FX_VIP, FX_VIP_PORT,
		     FX_ACK, 30);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert_eq(fx_stat(RP_DP_lb_learned), 1);
}

Test(xdp_lb, replies_are_known_by_their_key_or_a_listed_backend)
{
	uint8_t pkt[256];
	struct rp_flow_key rev;
	struct rp_msg_view req;
	struct fx_out out;
	size_t len;

	/* from a listed backend, the reverse key unknown here: a lookup */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, fx_backends[1], FX_BACKEND_PORT, FX_CLIENT,
		     40200, FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	fx_key(&rev, IPPROTO_TCP, fx_backends[1], FX_BACKEND_PORT, FX_CLIENT, 40200);
	cr_assert(rp_key_eq(&req.key, &rev));
	cr_assert_eq(req.flags & RP_F_STATE, 0, "never a proposal");
	/* from a draining one: the same */
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, fx_backends[FX_NBACKENDS], FX_BACKEND_PORT,
		     FX_CLIENT, 40200, 8, true);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.flags & RP_F_STATE, 0);
	/* from elsewhere, or a listed address's other port: not the load balancer's */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_UNLISTED, FX_BACKEND_PORT, FX_CLIENT, 40200,
		     FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, fx_backends[0], 22, FX_CLIENT, 40200, FX_ACK,
		     0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	/* the virtual address's other ports neither */
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40200, FX_VIP, 443, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	cr_assert_eq(fx_stat(RP_DP_pass_not_app), 3);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 2);
}

Test(xdp_lb, fin_is_a_write_released_by_its_ack_and_udp_keeps_a_zero_checksum)
{
	uint8_t pkt[256], want[256];
	struct rp_flow_key fwd, rev;
	struct rp_msg_view req;
	struct rp_lb_state st;
	struct fx_out out;
	struct udphdr *uh;
	size_t len;

	lb_hold(IPPROTO_TCP, 40300, fx_backends[2], &fwd, &rev);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, fx_backends[2], FX_BACKEND_PORT, FX_CLIENT,
		     40300, FX_FIN | FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE);
	cr_assert(rp_key_eq(&req.key, &rev), "the backend's FIN marks the reverse key");
	cr_assert_eq(req.seq, 1);
	st = lb_state(&req);
	cr_assert_eq(st.closing, RP_LB_FIN);
	fx_tcp(want, fx_mac_ext, fx_mac_server, FX_VIP, FX_VIP_PORT, FX_CLIENT, 40300,
	       FX_FIN | FX_ACK, 0);
	cr_assert_arr_eq(req.pkt, want, len, "the output packet rides, translated");
	ack_releases(&rev, RP_APP_LB, 1, want, len, fx_mac_client, fx_mac_int);

	/* UDP: a checksum of 0 stays 0, another is updated */
	lb_hold(IPPROTO_UDP, 5353, fx_backends[0], &fwd, &rev);
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5353, FX_VIP, FX_VIP_PORT, 33, false);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	uh = (struct udphdr *)(out.data + ETH_IP_LEN);
	cr_assert_eq(uh->check, 0);
	cr_assert_eq(uh->dest, htons(FX_BACKEND_PORT));
	cr_assert(fx_csum_ok(out.data, out.len));
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5353, FX_VIP, FX_VIP_PORT, 33, true);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert(fx_csum_ok(out.data, out.len), "UDP checksum updated");
	cr_assert_neq(((struct udphdr *)(out.data + ETH_IP_LEN))->check, 0);
}

Test(xdp_lb, keys_whose_state_is_not_theirs_are_dropped)
{
	struct rp_lb_state rev_st = { .addr = htonl(FX_VIP), .port = htons(FX_VIP_PORT),
				      .dir = RP_LB_REV };
	struct rp_fw_state fw = { .phase = RP_FW_UDP, .origin = RP_FW_OUT };
	uint8_t pkt[256], msg[2048];
	struct rp_flow_key fwd;
	struct fx_out out;
	size_t len, mlen;

	/* a forward key whose stored state is a reverse one */
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40400, FX_VIP, FX_VIP_PORT);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40400, FX_VIP, FX_VIP_PORT, FX_ACK, 0);
	mlen = fx_msg(msg, FX_STORE, RP_APP_LB, RP_MSG_MIGRATE, &fwd, 0, &rev_st, sizeof(rev_st), 0,
		      pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_lb_no_mapping), 1);
	/* a state of another size */
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40401, FX_VIP, FX_VIP_PORT);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40401, FX_VIP, FX_VIP_PORT, FX_ACK, 0);
	mlen = fx_msg(msg, FX_STORE, RP_APP_LB, RP_MSG_MIGRATE, &fwd, 0, &fw, sizeof(fw), 0, pkt,
		      len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_lb_no_mapping), 2);
	cr_assert_eq(fx_stat(RP_DP_fast_path), 0);
}

/* ---- the same applications with replication compiled out (the benchmark's baseline) ---- */

static struct redplane_norepl *norepl;

static void norepl_load(uint8_t app)
{
	struct bpf_program *progs[] = {
		[RP_APP_NAT] = norepl->progs.rp_app_nat,
		[RP_APP_FW] = norepl->progs.rp_app_fw,
		[RP_APP_LB] = norepl->progs.rp_app_lb,
		[RP_APP_COUNTER] = norepl->progs.rp_app_counter,
		[RP_APP_SKETCH] = norepl->progs.rp_app_sketch,
	};

	norepl->rodata->cfg_app = app;
	norepl->rodata->cfg_nat_int_net = norepl->rodata->cfg_fw_int_net = htonl(0x0a010000u);
	norepl->rodata->cfg_nat_int_mask = norepl->rodata->cfg_fw_int_mask = htonl(0xffffff00u);
	norepl->rodata->cfg_nat_ext_addr = htonl(FX_EXT);
	norepl->rodata->cfg_nat_port_base = FX_PORT_BASE;
	norepl->rodata->cfg_nat_port_span = FX_PORT_SPAN;
	norepl->rodata->cfg_lb_vip = htonl(FX_VIP);
	norepl->rodata->cfg_lb_vport = htons(FX_VIP_PORT);
	norepl->rodata->cfg_lb_nbackends = norepl->rodata->cfg_lb_nknown = 1;
	norepl->rodata->cfg_lb_backends[0].addr = htonl(fx_backends[0]);
	norepl->rodata->cfg_lb_backends[0].port = htons(FX_BACKEND_PORT);
	norepl->rodata->cfg_bounded = app == RP_APP_COUNTER || app == RP_APP_SKETCH;
	norepl->rodata->cfg_sketch_threshold = 2;
	for (int i = RP_APP_NAT; i < __RP_APP_MAX; i++)
		bpf_program__set_autoload(progs[i], i == app);
	cr_assert_eq(redplane_norepl__load(norepl), 0, "load the no-replication build");
	cr_assert_eq(rp_topo_prog_array(bpf_map__fd(norepl->maps.progs),
					bpf_program__fd(norepl->progs.rp_root), app,
					bpf_program__fd(progs[app])), 0);
	fx.prog_root = bpf_program__fd(norepl->progs.rp_root);
	fx.map_flows = bpf_map__fd(norepl->maps.flows);
	fx.map_stats = bpf_map__fd(norepl->maps.stats);
}

static void norepl_setup(void)
{
	fx_netns();
	norepl = redplane_norepl__open();
	cr_assert_not_null(norepl);
}

static void norepl_teardown(void)
{
	if (norepl)
		redplane_norepl__destroy(norepl);
	norepl = NULL;
}

TestSuite(xdp_norepl, .init = norepl_setup, .fini = norepl_teardown, .timeout = 30);

Test(xdp_norepl, the_nat_maps_a_new_connection_at_once)
{
	uint8_t pkt[256], want[256];
	struct rp_flow_key fwd, rev;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	norepl_load(RP_APP_NAT);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_EXT, FX_PORT_BASE, FX_SERVER, 80, FX_SYN, 0);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, want, len);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40000, FX_SERVER, 80);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, FX_PORT_BASE);
	cr_assert(fx_flow(&fwd, &f) && f.flags == 0, "both keys here");
	cr_assert(fx_flow(&rev, &f));
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, FX_PORT_BASE,
		     FX_SYN | FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_tcp(want, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40000, FX_SYN | FX_ACK, 0);
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	fx_expect(&out, XDP_REDIRECT, want, len);
	/* return traffic it never mapped: nothing to look up */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, 20099, FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_unknown_flow), 1);
}

Test(xdp_norepl, the_counters_and_the_sketch_count_every_packet_at_once)
{
	struct rp_counter_state *st;
	uint8_t pkt[256], want[256];
	struct rp_flow_key key;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;
	int dir;

	norepl_load(RP_APP_COUNTER);
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5000, FX_SERVER, 53, 10, true);
	for (int i = 0; i < 3; i++) {
		fx_run(pkt, len, fx.ifindex_int, &out);
		memcpy(want, pkt, len);
		fx_forwarded(want, fx_mac_server, fx_mac_ext);
		fx_expect(&out, XDP_REDIRECT, want, len);
	}
	dir = rp_counter_key(&key, IPPROTO_UDP, htonl(FX_CLIENT), htons(5000), htonl(FX_SERVER),
			     htons(53));
	cr_assert(fx_flow(&key, &f));
	st = (struct rp_counter_state *)f.state;
	cr_assert_eq(st->pkts[dir], 3);
	cr_assert_eq(st->bytes[dir], 3 * (len - sizeof(struct ethhdr)));
	norepl_teardown();
	norepl_setup();

	norepl_load(RP_APP_SKETCH);
	for (int i = 0; i < 2; i++) {
		fx_run(pkt, len, fx.ifindex_int, &out);
		cr_assert_eq(out.verdict, XDP_REDIRECT);
	}
	cr_assert_eq(fx_stat(RP_DP_sketch_update), 2);
	cr_assert_eq(fx_stat(RP_DP_sketch_heavy), 1, "the second packet reaches the threshold");

	/*
	 * Chunks installed under another epoch (xdp-bench puts its flows so):
	 * without a store any epoch is held, and the packet counts at once.
	 */
	for (uint32_t r = 0; r < RP_SKETCH_ROWS; r++) {
		rp_sketch_key(&key, 1, r, rp_sketch_col(htonl(FX_CLIENT), r));
		cr_assert(fx_flow(&key, &f), "row %u's chunk", r);
		f.epoch = 7;
		fx_put_flow(&key, &f);
	}
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT, "counted and forwarded, not dropped");
	cr_assert_eq(fx_stat(RP_DP_sketch_update), 3);
}

Test(xdp_norepl, the_firewall_tracks_connections_and_shuts_the_outside_out)
{
	uint8_t pkt[256];
	struct rp_flow_key key;
	struct fx_out out;
	size_t len;

	norepl_load(RP_APP_FW);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_SYN, 0);
	fx_expect_passes(pkt, len, TO_SERVER);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40000,
		     FX_SYN | FX_ACK, 0);
	fx_expect_passes(pkt, len, TO_CLIENT);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40000, FX_SERVER, 80);
	cr_assert_eq(fw_flow(&key).phase, RP_FW_ESTABLISHED, "the write committed here");
	/* unsolicited: a SYN, then mid-connection traffic nobody opened */
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40001, FX_SYN, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_fw_blocked), 1);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40001, FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_unknown_flow), 1);
}

Test(xdp_norepl, the_load_balancer_sends_a_new_connection_to_its_backend_at_once)
{
	uint8_t pkt[256], want[256];
	struct fx_out out;
	size_t len;

	norepl_load(RP_APP_LB);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_VIP, FX_VIP_PORT, FX_SYN,
		     0);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, fx_backends[0], FX_BACKEND_PORT,
	       FX_SYN, 0);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_expect(&out, XDP_REDIRECT, want, len);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, fx_backends[0], FX_BACKEND_PORT, FX_CLIENT,
		     40000, FX_SYN | FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_tcp(want, fx_mac_ext, fx_mac_server, FX_VIP, FX_VIP_PORT, FX_CLIENT, 40000,
	       FX_SYN | FX_ACK, 0);
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	fx_expect(&out, XDP_REDIRECT, want, len);
}

/* ---- failover with real traffic: two switches, one store ---- */

/*
 * As in test_failover.c: a slower machine (the emulated VM) sets a longer
 * lease and a factor for every duration.
 */
static unsigned int lease_ms = 200, time_scale = 1;
static char lease_arg[16] = "200";

static void failover_topo(const char *const *app_args)
{
	topo_timing(&lease_ms, &time_scale);
	snprintf(lease_arg, sizeof(lease_arg), "%u", lease_ms);
	topo_up(2, lease_arg);
	topo.app_args = app_args;
}

static void stream_ms(struct rp_stream *s, unsigned int ms)
{
	for (unsigned int t = 0; t < ms * time_scale; t += 2) {
		rp_stream_step(s);
		rp_test_sleep_ms(2);
	}
}

/* How long the crash itself took: the routes pointed at a dead switch meanwhile. */
static uint64_t crash_ns;

/*
 * Every byte, in order, on every connection; the longest silence since the
 * routes moved to sw2 below a lease and a second, plus the crash's own
 * duration: TCP backs its retransmissions off while the routes still point
 * at the dead switch, and its next try may come that much later (under
 * emulation the crash takes seconds).
 */
static void expect_intact(struct rp_stream *s)
{
	uint64_t bound = (lease_ms + 1000ull * time_scale) * 1000000ull + crash_ns;

	cr_assert(rp_stream_drain(s, 5000), "every message arrives");
	for (unsigned int i = 0; i < s->n; i++) {
		cr_assert_eq(s->c[i].error, 0, "connection %u broke: %s", i,
			     s->c[i].error > 0 ? strerror(s->c[i].error) : "EOF");
		cr_assert(!s->c[i].out_of_order, "connection %u: bytes out of order", i);
		cr_assert_gt(s->c[i].received, 0);
		cr_assert_neq(s->c[i].first_rx_after_ns, 0, "connection %u moved to sw2", i);
	}
	cr_assert_lt(rp_stream_max_gap_ns(s), bound, "stall %llu ms (the crash took %llu ms)",
		     (unsigned long long)(rp_stream_max_gap_ns(s) / 1000000),
		     (unsigned long long)(crash_ns / 1000000));
}

/* sw1 fails, the routes move to sw2; silences count from then on. */
static void crash_sw1(struct rp_stream *s)
{
	uint64_t start = rp_stream_now();

	cr_assert_eq(rp_topo_fail_switch(&topo, 0), 0);
	cr_assert_eq(rp_topo_route_via(&topo, 1), 0);
	rp_stream_mark(s);
	crash_ns = s->mark_ns - start;
	for (unsigned int i = 0; i < s->n; i++)
		s->c[i].last_rx_ns = s->mark_ns;
}

static int socket_in(const char *ns, int type, const char *addr, uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, fd = rp_topo_socket(ns, AF_INET, type);

	cr_assert_geq(fd, 0);
	inet_pton(AF_INET, addr, &a.sin_addr);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s:%u: %s", addr, port,
		     strerror(errno));
	return fd;
}

static int listener(const char *ns, const char *addr, uint16_t port)
{
	int fd = socket_in(ns, SOCK_STREAM, addr, port);

	cr_assert_eq(listen(fd, 64), 0);
	return fd;
}

/*
 * From the server's side, a TCP connection to the client's `port`, where
 * `lfd` listens: true if it is made within ms.
 */
static bool outside_connects(int lfd, uint16_t port, int ms)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = rp_topo_socket(topo.ns_server, AF_INET, SOCK_STREAM), accepted;

	cr_assert_geq(fd, 0);
	fcntl(fd, F_SETFL, O_NONBLOCK);
	inet_pton(AF_INET, RP_TOPO_CLIENT, &to.sin_addr);
	connect(fd, (struct sockaddr *)&to, sizeof(to));
	if (topo_readable(lfd, ms) <= 0) {
		close(fd);
		return false;
	}
	accepted = accept(lfd, NULL, NULL);
	cr_assert_geq(accepted, 0);
	close(accepted);
	close(fd);
	return true;
}

/* A datagram to `to` from `fd`; true if `rx` gets it within ms. */
static bool udp_reaches(int fd, const char *addr, uint16_t port, int rx, int ms)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(port) };
	char buf[16];

	inet_pton(AF_INET, addr, &to.sin_addr);
	cr_assert_eq(sendto(fd, "dgram", 5, 0, (struct sockaddr *)&to, sizeof(to)), 5);
	if (topo_readable(rx, ms) <= 0)
		return false;
	return recv(rx, buf, sizeof(buf), 0) == 5;
}

static const char *const fw_app[] = { "--app", "fw", "--fw-int", "10.1.0.0/24",
				      "--fw-allow", "tcp:2222", NULL };

static void fw_up(void)
{
	const char *const args[] = { "--lease-ms", lease_arg, NULL };

	failover_topo(fw_app);
	topo_switch(0, args);
	topo_switch(1, args);
}

/* longer than the NAT's failover tests: more to check, slow under emulation */
TestSuite(fw_failover, .init = fw_up, .fini = topo_down, .timeout = 240);

Test(fw_failover, an_inside_connection_survives_and_the_outside_stays_shut_out)
{
	int closed = listener(topo.ns_client, RP_TOPO_CLIENT, 8081);
	int open = listener(topo.ns_client, RP_TOPO_CLIENT, 2222);
	int cu = socket_in(topo.ns_client, SOCK_DGRAM, RP_TOPO_CLIENT, 5353);
	int cu_quiet = socket_in(topo.ns_client, SOCK_DGRAM, RP_TOPO_CLIENT, 5354);
	int su = socket_in(topo.ns_server, SOCK_DGRAM, RP_TOPO_SERVER, 9090);
	int wait = 500 * (int)time_scale;
	struct rp_stream s;

	/* the outside: refused, unless a rule opens the port */
	cr_assert(!outside_connects(closed, 8081, wait), "an unsolicited connection got in");
	cr_assert_geq(rp_topo_dp_stat(&topo, 0, "fw_blocked"), 1);
	cr_assert(outside_connects(open, 2222, 3000 * (int)time_scale),
		  "tcp:2222 is open to the outside");
	cr_assert(!udp_reaches(su, RP_TOPO_CLIENT, 5354, cu_quiet, wait), "unsolicited UDP got in");
	/* a UDP flow from the inside, answered */
	cr_assert(udp_reaches(cu, RP_TOPO_SERVER, 9090, su, 3000 * (int)time_scale),
		  "UDP from the inside");
	cr_assert(udp_reaches(su, RP_TOPO_CLIENT, 5353, cu, 3000 * (int)time_scale), "its reply");

	cr_assert_eq(rp_stream_open(&s, &topo, 4, 8080), 0, "connections from the inside");
	cr_assert_geq(rp_topo_dp_stat(&topo, 0, "fw_new"), 4);
	for (unsigned int i = 0; i < s.n; i++)
		s.c[i].last_rx_ns = rp_stream_now();
	stream_ms(&s, 500);
	crash_sw1(&s);
	stream_ms(&s, 2000);
	expect_intact(&s);
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "migrate"), 4, "sw2 took the connections over");
	/* the UDP flow's server speaks first since the crash: sw2 looks the flow up */
	cr_assert(udp_reaches(su, RP_TOPO_CLIENT, 5353, cu, 3000 * (int)time_scale),
		  "the UDP flow's reply through sw2");
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "migrate"), 5);

	/* and through sw2 the outside is as shut out as before */
	cr_assert(!outside_connects(closed, 8081, wait), "an unsolicited connection got in via sw2");
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "fw_blocked"), 1);
	cr_assert(!udp_reaches(su, RP_TOPO_CLIENT, 5354, cu_quiet, wait),
		  "unsolicited UDP got in via sw2");
	cr_assert(outside_connects(open, 2222, 3000 * (int)time_scale), "tcp:2222 through sw2");
	rp_stream_close(&s);
	close(closed);
	close(open);
	close(cu);
	close(cu_quiet);
	close(su);
}

#define LB_VIP		"203.0.113.80"
#define LB_VIP_PORT	80
#define LB_PORT		8080

static const char *const lb_app[] = { "--app", "lb", "--lb-vip", LB_VIP ":80", NULL };
static const char *const lb_addrs[] = { RP_TOPO_SERVER, "198.51.100.3", "198.51.100.4" };
#define LB_NADDRS	3

struct lb_net {
	int lfd[LB_NADDRS];	/* a listener on each backend address */
};

static void lb_up(void)
{
	failover_topo(lb_app);
}

/* The backends' listeners, and the switches with their lists. */
static void lb_start(struct lb_net *net, const char *sw1_list, const char *const *sw2_args)
{
	const char *const sw1[] = { "--lease-ms", lease_arg, "--lb-backends", sw1_list, NULL };
	const char *sw2[8] = { "--lease-ms", lease_arg };

	for (int i = 0; i < 5 && sw2_args[i]; i++)
		sw2[2 + i] = sw2_args[i];
	for (int i = 1; i < LB_NADDRS; i++)
		cr_assert_eq(rp_topo_server_addr(&topo, lb_addrs[i]), 0);
	for (int i = 0; i < LB_NADDRS; i++)
		net->lfd[i] = listener(topo.ns_server, lb_addrs[i], LB_PORT);
	topo_switch(0, sw1);
	topo_switch(1, sw2);
}

/* The backend (index into lb_addrs) a switch with `list` gives client port cport. */
static int lb_backend_of(const int *list, unsigned int n, uint16_t cport)
{
	struct rp_flow_key k;

	rp_key_v4(&k, IPPROTO_TCP, inet_addr(RP_TOPO_CLIENT), htons(cport), inet_addr(LB_VIP),
		  htons(LB_VIP_PORT));
	return list[rp_lb_hash(&k) % n];
}

/*
 * Connections from client ports first.. to the virtual address, into s
 * (appended); backend[i] is the listener that accepted connection i.
 */
static void lb_connect(struct lb_net *net, struct rp_stream *s, unsigned int n, uint16_t first,
		       int *backend)
{
	struct sockaddr_in vip = { .sin_family = AF_INET, .sin_port = htons(LB_VIP_PORT) };
	int one = 1;

	inet_pton(AF_INET, LB_VIP, &vip.sin_addr);
	s->c = realloc(s->c, (s->n + n) * sizeof(*s->c));
	cr_assert_not_null(s->c);
	for (unsigned int i = 0; i < n; i++) {
		struct rp_stream_conn *c = &s->c[s->n];
		int b;

		memset(c, 0, sizeof(*c));
		c->cfd = socket_in(topo.ns_client, SOCK_STREAM, RP_TOPO_CLIENT,
				   (uint16_t)(first + i));
		setsockopt(c->cfd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){ .tv_sec = 5 },
			   sizeof(struct timeval));
		cr_assert_eq(connect(c->cfd, (struct sockaddr *)&vip, sizeof(vip)), 0,
			     "connect to the virtual address: %s", strerror(errno));
		/* whichever backend's listener has it */
		struct pollfd p[LB_NADDRS];

		for (int j = 0; j < LB_NADDRS; j++)
			p[j] = (struct pollfd){ .fd = net->lfd[j], .events = POLLIN };
		cr_assert_gt(poll(p, LB_NADDRS, 5000), 0, "no backend saw connection %u", i);
		for (b = 0; b < LB_NADDRS - 1 && !(p[b].revents & POLLIN); b++)
			;
		c->sfd = accept(net->lfd[b], NULL, NULL);
		cr_assert_geq(c->sfd, 0);
		setsockopt(c->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		backend[i] = b;
		s->n++;
	}
	/* a stall counts from here: opening the others is no silence of theirs */
	for (unsigned int i = s->n - n; i < s->n; i++)
		s->c[i].last_rx_ns = rp_stream_now();
}

TestSuite(lb_failover, .init = lb_up, .fini = topo_down, .timeout = 240);

Test(lb_failover, tcp_streams_keep_their_backend_when_sw2_has_another_list)
{
	static const int sw1_list[] = { 0, 1 }, sw2_list[] = { 2, 1, 0 };
	const char *const sw2[] = { "--lb-backends",
				    "198.51.100.4:8080,198.51.100.3:8080,198.51.100.2:8080", NULL };
	int backend[8], later[6];
	unsigned int moved = 0;
	struct lb_net net;
	struct rp_stream s = { 0 };

	lb_start(&net, "198.51.100.2:8080,198.51.100.3:8080", sw2);
	lb_connect(&net, &s, 8, 42000, backend);
	for (unsigned int i = 0; i < 8; i++) {
		cr_assert_eq(backend[i], lb_backend_of(sw1_list, 2, (uint16_t)(42000 + i)),
			     "connection %u: the hash over sw1's list", i);
		moved += backend[i] != lb_backend_of(sw2_list, 3, (uint16_t)(42000 + i));
	}
	cr_assert_gt(moved, 0, "sw2's list would put some connections elsewhere");

	stream_ms(&s, 500);
	crash_sw1(&s);
	stream_ms(&s, 2000);
	/* whole streams: each connection still reaches the socket its backend accepted */
	expect_intact(&s);
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "migrate"), 16, "sw2 took both keys of each");

	/* new connections take sw2's list */
	lb_connect(&net, &s, 6, 42100, later);
	for (unsigned int i = 0; i < 6; i++)
		cr_assert_eq(later[i], lb_backend_of(sw2_list, 3, (uint16_t)(42100 + i)),
			     "new connection %u: the hash over sw2's list", i);
	rp_stream_close(&s);
	for (int i = 0; i < LB_NADDRS; i++)
		close(net.lfd[i]);
}

Test(lb_failover, backends_sw2_only_drains_keep_their_connections_even_if_they_speak_first)
{
	static const int sw1_list[] = { 0, 1 };
	const char *const sw2[] = { "--lb-backends", "198.51.100.4:8080", "--lb-drain",
				    "198.51.100.2:8080,198.51.100.3:8080", NULL };
	int backend[6], later[4];
	struct lb_net net;
	struct rp_stream s = { 0 };
	char buf[16];

	lb_start(&net, "198.51.100.2:8080,198.51.100.3:8080", sw2);
	lb_connect(&net, &s, 6, 43000, backend);
	for (unsigned int i = 0; i < 6; i++)
		cr_assert_eq(backend[i], lb_backend_of(sw1_list, 2, (uint16_t)(43000 + i)));
	stream_ms(&s, 300);
	cr_assert(rp_stream_drain(&s, 5000));

	/* the backends speak first after the crash: sw2 knows them as draining */
	crash_sw1(&s);
	for (unsigned int i = 0; i < s.n; i++)
		cr_assert_eq(send(s.c[i].sfd, "hello", 5, 0), 5);
	for (unsigned int i = 0; i < s.n; i++) {
		cr_assert_gt(topo_readable(s.c[i].cfd, 5000 * (int)time_scale), 0,
			     "connection %u: the backend's bytes never arrived", i);
		cr_assert_eq(recv(s.c[i].cfd, buf, sizeof(buf), 0), 5);
	}
	stream_ms(&s, 1000);
	cr_assert(rp_stream_drain(&s, 5000), "every message arrives");
	for (unsigned int i = 0; i < s.n; i++) {
		cr_assert_eq(s.c[i].error, 0, "connection %u broke", i);
		cr_assert(!s.c[i].out_of_order);
	}
	/* new connections go to the one backend sw2 chooses from */
	lb_connect(&net, &s, 4, 43100, later);
	for (unsigned int i = 0; i < 4; i++)
		cr_assert_eq(later[i], 2);
	rp_stream_close(&s);
	for (int i = 0; i < LB_NADDRS; i++)
		close(net.lfd[i]);
}

/* ---- rp-load's command line for the applications ---- */

TestSuite(apps_cli, .timeout = 20);

/* rp-load with argv (after the binary): its exit status, its output into out. */
static int run_rp_load(const char *const *args, char *out, size_t size)
{
	const char *dir = getenv("RP_BUILD");
	const char *argv[24];
	char bin[300];
	int fds[2], status, n = 0;
	size_t len = 0;
	pid_t pid;

	snprintf(bin, sizeof(bin), "%s/rp-load", dir && *dir ? dir : "build");
	argv[n++] = bin;
	while (*args && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	if (pid == 0) {
		dup2(fds[1], STDOUT_FILENO);
		dup2(fds[1], STDERR_FILENO);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(fds[1]);
	for (ssize_t r; len < size - 1 && (r = read(fds[0], out + len, size - 1 - len)) > 0;)
		len += (size_t)r;
	out[len] = '\0';
	close(fds[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define CLI(...) ((const char *const[]){ "lo", "--store", "192.0.2.10:4791", "--switch-id", "1", \
					   __VA_ARGS__, NULL })

Test(apps_cli, bad_apps_rules_and_backends_are_refused_saying_why)
{
	char path[] = "/tmp/rp-rules.XXXXXX";
	struct {
		const char *const *args;
		const char *msg;
	} bad[] = {
		{ CLI("--app", "dns"),
		  "unknown --app 'dns' (this version has: nat, fw, lb, counter, sketch)" },
		{ CLI("--app", "nat", "--nat-int", "10.1.0.0/24", "--nat-ext", "203.0.113.1",
		      "--mode", "bounded"),
		  "--app nat runs linearizable mode only" },
		{ CLI("--app", "sketch", "--mode", "linearizable"), "--app sketch runs bounded mode only" },
		{ CLI("--app", "counter", "--mode", "eventual"),
		  "invalid --mode 'eventual': expected linearizable or bounded" },
		{ CLI("--app", "counter", "--mode", "linearizable", "--snapshot-ms", "10"),
		  "--snapshot-ms applies to --mode bounded only" },
		{ CLI("--app", "counter", "--snapshot-ms", "0"), "invalid --snapshot-ms '0'" },
		{ CLI("--app", "sketch", "--sketch-threshold", "0"), "invalid --sketch-threshold '0'" },
		{ CLI("--app", "counter", "--sketch-id", "2"),
		  "--sketch-id is an option of --app sketch, not of --app counter" },
		{ CLI("--app", "nat", "--nat-int", "10.1.0.0/24", "--nat-ext", "203.0.113.1",
		      "--fw-int", "10.0.0.0/8"),
		  "--fw-int is an option of --app fw, not of --app nat" },
		{ CLI("--app", "fw"), "--app fw needs --fw-int" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0"), "invalid --fw-int '10.1.0.0'" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0/24", "--fw-allow", "tcp:22,sctp:9"),
		  "--fw-allow: invalid rule 'sctp:9'" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0/24", "--fw-allow", "udp:0"),
		  "invalid rule 'udp:0'" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0/24", "--fw-allow", "tcp:90-80"),
		  "invalid rule 'tcp:90-80'" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0/24", "--fw-allow", "tcp:22,"),
		  "an empty rule" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0/24", "--fw-rules", "/nonexistent"),
		  "Couldn't open --fw-rules '/nonexistent'" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0/24", "--fw-rules", path),
		  ":3: invalid rule 'tcp:65536'" },
		{ CLI("--app", "fw", "--fw-int", "10.1.0.0/24", "--fw-udp-idle-ms", "5"),
		  "invalid --fw-udp-idle-ms '5'" },
		{ CLI("--app", "lb", "--lb-vip", "203.0.113.80:80"),
		  "--app lb needs --lb-vip and --lb-backends" },
		{ CLI("--app", "lb", "--lb-vip", "203.0.113.80", "--lb-backends", "10.0.0.1:80"),
		  "invalid --lb-vip '203.0.113.80'" },
		{ CLI("--app", "lb", "--lb-vip", "203.0.113.80:80", "--lb-backends",
		      "10.0.0.1:80,10.0.0.1:80"),
		  "backend '10.0.0.1:80' listed twice" },
		{ CLI("--app", "lb", "--lb-vip", "203.0.113.80:80", "--lb-backends", "10.0.0.1:80",
		      "--lb-drain", "10.0.0.1:80"),
		  "is in both --lb-backends and --lb-drain" },
		{ CLI("--app", "lb", "--lb-vip", "203.0.113.80:80", "--lb-backends", "10.0.0.1"),
		  "invalid --lb-backends '10.0.0.1'" },
	};
	char out[4096];
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_gt(write(fd, "# rules\ntcp:22, udp:53  # dns\ntcp:65536\n", 40), 0);
	close(fd);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = run_rp_load(bad[i].args, out, sizeof(out));

		cr_assert_eq(rc, 2, "case %zu: exit %d, expected 2 (%s)", i, rc, out);
		cr_assert(!strncmp(out, "rp-load: ", 9) && strstr(out, bad[i].msg),
			  "case %zu: '%s' lacks '%s'", i, out, bad[i].msg);
	}
	unlink(path);
}

Test(apps_cli, help_lists_every_application_and_its_options)
{
	const char *const args[] = { "--help", NULL };
	char out[8192];

	cr_assert_eq(run_rp_load(args, out, sizeof(out)), 0);
	for (const char *const *w = (const char *const[]){ "nat:", "fw:", "lb:", "counter:",
							     "sketch:", "--mode", "--snapshot-ms",
							     "--sketch-id", "--sketch-threshold",
							     "--nat-int",
							     "--fw-allow", "--fw-rules",
							     "--fw-udp-idle-ms", "--lb-vip",
							     "--lb-backends", "--lb-drain", NULL };
	     *w; w++)
		cr_assert_not_null(strstr(out, *w), "--help lacks '%s'", *w);
}
