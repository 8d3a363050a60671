// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Who may talk to whom (docs/SECURITY.md): the keyed MAC of messages in the
 * codec (SipHash-2-4 against its reference vector, key files), in the data
 * plane through bpf_prog_test_run_opts (suite mac), in rp-store (mac_store),
 * and end to end (mac_failover): a REVOKE forged from the store's own
 * address and port is dropped by the switch for its MAC, the same message
 * sealed with the key would have taken the flow, and a crash still hands
 * the flows over with every message sealed.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redplane/siphash.h"
#include "rp_test.h"
#include "topo_fixture.h"
#include "xdp_fixture.h"

#define HDR_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

/* A key file with `text`; its path in path (a mkstemp template). */
static void key_file(char *path, const char *text)
{
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
}

/* ---- the codec ---- */

Test(mac_codec, siphash_matches_the_reference_vector)
{
	/* the SipHash paper's appendix: key 00..0f, message 00..0e */
	uint8_t msg[15];

	for (int i = 0; i < 15; i++)
		msg[i] = (uint8_t)i;
	cr_assert_eq(rp_siphash24(fx_mac_key[0], fx_mac_key[1], msg, sizeof(msg)),
		     0xa129ca6149be45e5ull);
}

Test(mac_codec, a_key_seals_every_message_and_refuses_a_changed_or_unsealed_one)
{
	struct rp_msg_view v = { .type = RP_MSG_HEARTBEAT, .switch_id = 3, .seq = 7 }, d;
	uint8_t buf[RP_DGRAM_MAX], plain[RP_DGRAM_MAX];
	uint64_t mac;
	int len, plen;

	plen = rp_msg_encode(plain, sizeof(plain), &v);
	cr_assert_gt(plen, 0);
	rp_msg_set_key(fx_mac_key);
	len = rp_msg_encode(buf, sizeof(buf), &v);
	cr_assert_eq(len, (int)RP_MSG_LEN);
	memcpy(&mac, buf + RP_MAC_COVERED, sizeof(mac));
	cr_assert_eq(mac, rp_siphash24(fx_mac_key[0], fx_mac_key[1], buf, RP_MAC_COVERED));
	cr_assert_eq(rp_msg_decode(buf, (size_t)len, &d), 0);
	cr_assert_eq(d.mac, mac);
	cr_assert_eq(rp_msg_decode(plain, (size_t)plen, &d), -RP_E_MAC, "unsealed");
	buf[8] ^= 1;	/* the seq */
	cr_assert_eq(rp_msg_decode(buf, (size_t)len, &d), -RP_E_MAC, "changed after sealing");
	rp_msg_set_key(NULL);
	cr_assert_eq(rp_msg_decode(buf, (size_t)len, &d), 0, "no key: the MAC is not checked");
}

Test(mac_codec, key_files_are_32_hex_digits)
{
	char good[] = "/tmp/rp-key.XXXXXX", short_key[] = "/tmp/rp-key.XXXXXX";
	char bad[] = "/tmp/rp-key.XXXXXX";
	uint64_t key[2];

	key_file(good, "# test key\n00010203 04050607\n08090a0b0C0D0E0F\n");
	key_file(short_key, "0001020304050607\n");
	key_file(bad, "000102030405060708090a0b0c0d0e0g\n");
	cr_assert_eq(rp_mac_key_read("test", good, key), 0);
	cr_assert_eq(key[0], fx_mac_key[0], "bytes 0-7, little-endian");
	cr_assert_eq(key[1], fx_mac_key[1]);
	cr_assert_eq(rp_mac_key_read("test", short_key, key), -EINVAL);
	cr_assert_eq(rp_mac_key_read("test", bad, key), -EINVAL);
	cr_assert_eq(rp_mac_key_read("test", "/nonexistent/key", key), -ENOENT);
	unlink(good);
	unlink(short_key);
	unlink(bad);
}

/* ---- the data plane ---- */

TestSuite(mac, .init = fx_setup_mac, .fini = fx_teardown, .timeout = 30);

Test(mac, requests_are_sealed_and_store_messages_without_the_right_mac_are_dropped)
{
	uint8_t syn[128], msg[2048], want[128];
	struct rp_nat_state fwd = { .addr = htonl(FX_EXT), .port = htons(FX_PORT_BASE),
				    .dir = RP_NAT_FWD };
	struct rp_flow_key key;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, mlen;

	/* the SYN's lease request decodes here, under the key: it is sealed */
	len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert_neq(req.mac, 0);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40000, FX_SERVER, 80);

	/* a grant whose state was changed after sealing: dropped, nothing installed */
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_GRANT, &key, 0, &fwd, sizeof(fwd), 0, syn,
		      len);
	msg[HDR_LEN + offsetof(struct rp_msg, state)] ^= 0xff;
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_mac), 1);
	cr_assert(!fx_flow(&key, &f) || !f.epoch, "a forged grant installed a lease");

	/* unsealed (a sender without the key): dropped */
	rp_msg_set_key(NULL);
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_GRANT, &key, 0, &fwd, sizeof(fwd), 0, syn,
		      len);
	rp_msg_set_key(fx_mac_key);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_mac), 2);

	/* sealed: the grant installs the flow and the SYN goes on */
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_GRANT, &key, 0, &fwd, sizeof(fwd), 0, syn,
		      len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	fx_decode_request(&out, &req);	/* the NAT's second round trip: the reverse key */
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(fx_flow(&key, &f) && f.epoch == FX_EPOCH);
	cr_assert_eq(fx_stat(RP_DP_grant), 1);
	(void)want;
}

Test(mac, a_revoke_ack_sent_back_by_the_data_plane_is_sealed_again)
{
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .state_len = 8 };
	struct rp_flow_key key;
	struct rp_msg_view ack;
	uint8_t msg[2048];
	struct fx_out out;
	size_t mlen;
	int err;

	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40000, FX_SERVER, 80);
	fx_put_flow(&key, &f);
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_REVOKE, &key, 0, NULL, 0, 0, NULL, 0);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_TX);
	err = rp_msg_decode(out.data + HDR_LEN, out.len - HDR_LEN, &ack);
	cr_assert_eq(err, 0, "the revoke-ack decodes under the key: %s",
		     rp_decode_err_name((unsigned int)-err));
	cr_assert_eq(ack.type, RP_MSG_REVOKE_ACK);
	cr_assert_eq(fx_stat(RP_DP_revoke), 1);
}

/* ---- rp-store ---- */

static char store_key[] = "/tmp/rp-key.XXXXXX";
static struct rp_test_store st;
static struct rp_test_switch sw;

static void mac_store_up(void)
{
	const char *args[] = { "--lease-ms", "1000", "--mac-key", store_key, NULL };

	key_file(store_key, "000102030405060708090a0b0c0d0e0f\n");
	rp_test_store_start(&st, args);
	rp_test_switch_open(&sw, 1, &st.addr);
}

static void mac_store_down(void)
{
	rp_test_switch_close(&sw);
	if (st.pid > 0)
		cr_expect_eq(rp_test_store_stop(&st), 0);
	unlink(store_key);
}

TestSuite(mac_store, .init = mac_store_up, .fini = mac_store_down, .timeout = 60);

Test(mac_store, unsealed_requests_are_dropped_and_sealed_ones_answered_sealed)
{
	struct rp_msg_view v = { .type = RP_MSG_HEARTBEAT, .switch_id = 1, .seq = 1 };

	/* no key here: the store says nothing, and counts it */
	rp_test_send(&sw, &v);
	cr_assert_eq(rp_test_recv(&sw, &v, 300), -ETIMEDOUT, "an unsealed heartbeat was answered");
	cr_assert_geq(rp_test_store_wait_stat(&st, "drop_bad_mac", 1), 1);
	/* with the key: answered, and the answer decodes under the key */
	rp_msg_set_key(fx_mac_key);
	rp_test_heartbeat(&sw);
	cr_assert_neq(sw.epoch, 0);
	cr_assert_eq(rp_test_store_stat(&st, "drop_bad_mac"), 1);
}

/* ---- end to end ---- */

static char topo_key[] = "/tmp/rp-key.XXXXXX";

static void mac_topo_up(void)
{
	static const char *store_args[3];
	static const char *sw_args[8];

	key_file(topo_key, "000102030405060708090a0b0c0d0e0f\n");
	store_args[0] = "--mac-key";
	store_args[1] = topo_key;
	topo_up_with(2, "200", store_args);
	/* a known port: the forger aims at it */
	sw_args[0] = "--mac-key";
	sw_args[1] = topo_key;
	sw_args[2] = "--port";
	sw_args[3] = "4790";
	topo_switch(0, sw_args);
	topo_switch(1, sw_args);
}

static void mac_topo_down(void)
{
	topo_down();
	unlink(topo_key);
}

/* A REVOKE of `key` as the store would send it to sw1, from the store's address and port. */
static void send_revoke(const struct rp_flow_key *key, uint32_t epoch, uint16_t gen)
{
	struct rp_msg_view v = { .type = RP_MSG_REVOKE, .app_id = RP_APP_NAT, .switch_id = 1,
				 .epoch = epoch, .gen = gen, .key = *key };
	struct sockaddr_in to = { .sin_family = AF_INET }, from = { .sin_family = AF_INET };
	uint8_t buf[sizeof(struct udphdr) + RP_MSG_LEN];
	struct udphdr *uh = (struct udphdr *)buf;
	int fd = rp_topo_socket_proto(topo.ns_store, AF_INET, SOCK_RAW, IPPROTO_UDP);
	int len = rp_msg_encode(buf + sizeof(*uh), RP_MSG_LEN, &v);

	cr_assert_geq(fd, 0, "a raw socket in the store's namespace");
	cr_assert_gt(len, 0);
	/* the store's own address (the link's would be refused as a stranger) */
	inet_pton(AF_INET, "192.0.2.10", &from.sin_addr);
	cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
	uh->source = htons(4791);	/* the store's own port */
	uh->dest = htons(4790);
	uh->len = htons((uint16_t)(sizeof(*uh) + (size_t)len));
	uh->check = 0;
	inet_pton(AF_INET, "192.0.2.1", &to.sin_addr);	/* sw1's store-facing address */
	cr_assert_eq(sendto(fd, buf, sizeof(*uh) + (size_t)len, 0, (struct sockaddr *)&to,
			    sizeof(to)),
		     (ssize_t)(sizeof(*uh) + (size_t)len));
	close(fd);
}

static struct rp_dp_flow sw1_flow(const struct rp_flow_key *key)
{
	struct rp_dp_flow f;
	int fd = rp_topo_open_pin(&topo, 0, "flows");

	cr_assert_geq(fd, 0);
	cr_assert_eq(bpf_map_lookup_elem_flags(fd, key, &f, BPF_F_LOCK), 0, "sw1 has the connection");
	close(fd);
	return f;
}

TestSuite(mac_failover, .init = mac_topo_up, .fini = mac_topo_down, .timeout = 120);

Test(mac_failover, a_forged_revoke_is_dropped_and_sealed_traffic_survives_a_crash)
{
	struct conn c = topo_connect(8080);
	struct sockaddr_in cli;
	socklen_t clen = sizeof(cli);
	struct rp_flow_key key;
	struct rp_dp_flow f;
	long long dropped;

	topo_echo(&c);
	cr_assert_eq(getsockname(c.client, (struct sockaddr *)&cli, &clen), 0);
	rp_key_v4(&key, IPPROTO_TCP, cli.sin_addr.s_addr, cli.sin_port, inet_addr(RP_TOPO_SERVER),
		  htons(8080));
	f = sw1_flow(&key);
	cr_assert_neq(f.epoch, 0, "sw1 holds the connection");

	/* forged: right addresses, ports, ids, epoch and generation; no key */
	rp_msg_set_key(NULL);
	send_revoke(&key, f.epoch, f.gen);
	for (int t = 0; t < 50 && !(dropped = rp_topo_dp_stat(&topo, 0, "drop_bad_mac")); t++)
		usleep(20000);
	cr_assert_eq(dropped, 1, "the forged revoke dropped for its MAC");
	cr_assert_eq(sw1_flow(&key).epoch, f.epoch, "sw1 still holds the connection");
	topo_echo(&c);
	cr_assert_eq(rp_topo_dp_stat(&topo, 0, "revoke"), 0);

	/* the same message sealed with the key is taken: the MAC was all that stopped it */
	rp_msg_set_key(fx_mac_key);
	send_revoke(&key, f.epoch, f.gen);
	for (int t = 0; t < 50 && !rp_topo_dp_stat(&topo, 0, "revoke"); t++)
		usleep(20000);
	cr_assert_eq(rp_topo_dp_stat(&topo, 0, "revoke"), 1);
	cr_assert_eq(sw1_flow(&key).epoch, 0, "a sealed revoke gives the flow up");

	/* every message sealed, a crash still hands the connection over */
	topo_echo(&c);	/* sw1 asks for the flow again */
	cr_assert_eq(rp_topo_fail_switch(&topo, 0), 0);
	cr_assert_eq(rp_topo_route_via(&topo, 1), 0);
	topo_echo(&c);
	cr_assert_geq(rp_topo_dp_stat(&topo, 1, "migrate"), 1);
	cr_assert_eq(rp_topo_dp_stat(&topo, 1, "drop_bad_mac"), 0);
	close(c.client);
	close(c.server);
}
