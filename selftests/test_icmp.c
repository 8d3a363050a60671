// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * ICMP through the apps (docs/DATAPLANE.md, "ICMP"): errors quoting a
 * translated connection are translated back, every checksum right (path
 * MTU discovery, traceroute); an error quoting no known connection is
 * looked up, never invented; echoes are flows keyed by their identifier;
 * the firewall lets related errors through.  Each expected frame is built
 * from scratch with full checksums, so an incremental update that is wrong
 * anywhere fails the byte comparison.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <linux/ip.h>
#include <string.h>

#include "xdp_fixture.h"

#define PORT	(FX_PORT_BASE + 9)
#define ROUTER	0xc6336401u	/* 198.51.100.1: a router beyond the switch */

TestSuite(icmp, .init = fx_setup, .fini = fx_teardown, .timeout = 30);
TestSuite(icmp_fw, .init = fx_setup_fw, .fini = fx_teardown, .timeout = 30);
TestSuite(frag, .init = fx_setup, .fini = fx_teardown, .timeout = 30);

/*
 * An ICMP message (type, code, the 4 bytes after its checksum) from saddr
 * to daddr, carrying `body`: Ethernet, IPv4, ICMP, checksums right.
 */
static size_t icmp_frame(uint8_t *buf, const uint8_t *dmac, const uint8_t *smac, uint32_t saddr,
			 uint32_t daddr, uint8_t type, uint8_t code, uint32_t rest,
			 const void *body, size_t blen)
{
	struct iphdr *ip = (struct iphdr *)(buf + 14);
	uint8_t *ih = (uint8_t *)(ip + 1);
	uint16_t c;

	memcpy(buf, dmac, 6);
	memcpy(buf + 6, smac, 6);
	buf[12] = 0x08;
	buf[13] = 0x00;
	memset(ip, 0, sizeof(*ip));
	ip->version = 4;
	ip->ihl = 5;
	ip->tot_len = htons((uint16_t)(20 + 8 + blen));
	ip->ttl = 64;
	ip->protocol = IPPROTO_ICMP;
	ip->saddr = htonl(saddr);
	ip->daddr = htonl(daddr);
	ip->check = fx_csum(ip, 20);
	ih[0] = type;
	ih[1] = code;
	ih[2] = ih[3] = 0;
	rest = htonl(rest);
	memcpy(ih + 4, &rest, 4);
	memcpy(ih + 8, body, blen);
	c = fx_csum(ih, 8 + blen);
	memcpy(ih + 2, &c, 2);
	return 14 + 20 + 8 + blen;
}

/* The IPv4 packet inside frame `inner` (its first `quote` bytes), as an error quotes it. */
static const uint8_t *quoted(const uint8_t *inner)
{
	return inner + 14;
}

/* Both keys of a connection held, by protocol; the inside end 40000. */
static void nat_conn(uint8_t proto)
{
	struct rp_nat_state fs = { .addr = htonl(FX_EXT), .port = htons(PORT), .dir = RP_NAT_FWD };
	struct rp_nat_state rs = { .addr = htonl(FX_CLIENT), .port = htons(40000),
				   .dir = RP_NAT_REV };
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .gen = 1, .state_len = sizeof(fs) };
	uint16_t far = proto == IPPROTO_ICMP ? 0 : (proto == IPPROTO_UDP ? 53 : 80);
	struct rp_flow_key fwd, rev;

	fx_key(&fwd, proto, FX_CLIENT, 40000, FX_SERVER, far);
	fx_key(&rev, proto, FX_SERVER, far, FX_EXT, PORT);
	memcpy(f.state, &fs, sizeof(fs));
	fx_put_flow(&fwd, &f);
	memcpy(f.state, &rs, sizeof(rs));
	fx_put_flow(&rev, &f);
}

static void expect_bytes(const struct fx_out *out, uint32_t verdict, const uint8_t *want,
			 size_t len)
{
	cr_assert_eq(out->verdict, verdict, "verdict %u, expected %u", out->verdict, verdict);
	cr_assert_eq(out->len, len, "length %u, expected %zu", out->len, len);
	for (size_t i = 0; i < len; i++)
		cr_assert_eq(out->data[i], want[i], "byte %zu: %#x, expected %#x", i, out->data[i],
			     want[i]);
}

Test(icmp, fragmentation_needed_from_beyond_the_nat_reaches_the_inside_host)
{
	uint8_t seg[256], seg_want[256], pkt[512], want[512];
	struct fx_out out;
	size_t len;

	nat_conn(IPPROTO_TCP);
	/* the translated segment a router beyond could not forward, quoted as RFC 792 says */
	fx_tcp(seg, fx_mac_ext, fx_mac_ext, FX_EXT, PORT, FX_SERVER, 80, FX_ACK, 100);
	len = icmp_frame(pkt, fx_mac_ext, fx_mac_server, ROUTER, FX_EXT, 3, 4, 1280,
			 quoted(seg), 28);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	/* to the client, about the segment as it sent it */
	fx_tcp(seg_want, fx_mac_ext, fx_mac_ext, FX_CLIENT, 40000, FX_SERVER, 80, FX_ACK, 100);
	icmp_frame(want, fx_mac_ext, fx_mac_server, ROUTER, FX_CLIENT, 3, 4, 1280,
		   quoted(seg_want), 28);
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	expect_bytes(&out, XDP_REDIRECT, want, len);
	cr_assert_eq(fx_stat(RP_DP_icmp_error), 1);
	cr_assert_eq(fx_stat(RP_DP_icmp_translated), 1);
}

Test(icmp, a_whole_quoted_udp_header_keeps_its_checksum_right)
{
	uint8_t dg[256], dg_want[256], pkt[512], want[512];
	struct fx_out out;
	size_t len;

	nat_conn(IPPROTO_UDP);
	/* time exceeded at a router beyond, for a probe the NAT sent (traceroute) */
	fx_udp(dg, fx_mac_ext, fx_mac_ext, FX_EXT, PORT, FX_SERVER, 53, 12, true);
	len = icmp_frame(pkt, fx_mac_ext, fx_mac_server, ROUTER, FX_EXT, 11, 0, 0,
			 quoted(dg), 20 + 8 + 12);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_udp(dg_want, fx_mac_ext, fx_mac_ext, FX_CLIENT, 40000, FX_SERVER, 53, 12, true);
	icmp_frame(want, fx_mac_ext, fx_mac_server, ROUTER, FX_CLIENT, 11, 0, 0,
		   quoted(dg_want), 20 + 8 + 12);
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	expect_bytes(&out, XDP_REDIRECT, want, len);
}

Test(icmp, an_error_from_the_inside_leaves_from_the_external_address)
{
	uint8_t dg[256], dg_want[256], pkt[512], want[512];
	struct fx_out out;
	size_t len;

	nat_conn(IPPROTO_UDP);
	/* the inside host's port unreachable for a datagram the NAT let in */
	fx_udp(dg, fx_mac_int, fx_mac_int, FX_SERVER, 53, FX_CLIENT, 40000, 4, true);
	len = icmp_frame(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, FX_SERVER, 3, 3, 0,
			 quoted(dg), 20 + 8);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_udp(dg_want, fx_mac_int, fx_mac_int, FX_SERVER, 53, FX_EXT, PORT, 4, true);
	icmp_frame(want, fx_mac_int, fx_mac_client, FX_EXT, FX_SERVER, 3, 3, 0,
		   quoted(dg_want), 20 + 8);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	expect_bytes(&out, XDP_REDIRECT, want, len);
}

Test(icmp, an_error_about_no_known_connection_is_looked_up_never_invented)
{
	uint8_t seg[256], pkt[512], msg[1024];
	struct rp_msg_view req;
	struct rp_flow_key rev;
	struct fx_out out;
	size_t len, mlen;

	fx_tcp(seg, fx_mac_ext, fx_mac_ext, FX_EXT, PORT, FX_SERVER, 80, FX_ACK, 0);
	len = icmp_frame(pkt, fx_mac_ext, fx_mac_server, ROUTER, FX_EXT, 3, 4, 1280,
			 quoted(seg), 28);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, PORT);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(rp_key_eq(&req.key, &rev), "the quoted connection's reverse key");
	cr_assert(!(req.flags & RP_F_STATE), "a lookup, no proposal");
	cr_assert_eq(req.pkt_len, len, "the error rides along");
	/* the store has none: dropped, and noted */
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_REJECT, &rev, 0, NULL, 0, RP_REJ_NO_FLOW,
		      pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_negative), 1);
	cr_assert_eq(fx_stat(RP_DP_icmp_translated), 0);
}

Test(icmp, echo_is_a_flow_keyed_by_its_identifier)
{
	uint8_t body[16], pkt[256], want[256];
	struct fx_out out;
	size_t len;

	memset(body, 0xab, sizeof(body));
	nat_conn(IPPROTO_ICMP);
	/* the request leaves with the external address and the mapped identifier */
	len = icmp_frame(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, FX_SERVER, 8, 0,
			 40000u << 16 | 7, body, sizeof(body));
	fx_run(pkt, len, fx.ifindex_int, &out);
	icmp_frame(want, fx_mac_int, fx_mac_client, FX_EXT, FX_SERVER, 8, 0,
		   (uint32_t)PORT << 16 | 7, body, sizeof(body));
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	expect_bytes(&out, XDP_REDIRECT, want, len);
	/* the reply comes back to the client with its own identifier */
	len = icmp_frame(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, FX_EXT, 0, 0,
			 (uint32_t)PORT << 16 | 7, body, sizeof(body));
	fx_run(pkt, len, fx.ifindex_ext, &out);
	icmp_frame(want, fx_mac_ext, fx_mac_server, FX_SERVER, FX_CLIENT, 0, 0,
		   40000u << 16 | 7, body, sizeof(body));
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	expect_bytes(&out, XDP_REDIRECT, want, len);
	cr_assert_eq(fx_stat(RP_DP_icmp_echo), 2);
	/* a ping of the NAT's own address is the host's to answer */
	len = icmp_frame(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, FX_EXT, 8, 0, 1, body,
			 sizeof(body));
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
}

Test(icmp_fw, a_related_error_passes_an_unrelated_one_is_looked_up)
{
	struct rp_fw_state st = { .phase = RP_FW_ESTABLISHED, .origin = RP_FW_OUT };
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .state_len = sizeof(st) };
	uint8_t seg[256], pkt[512], want[512];
	struct rp_msg_view req;
	struct rp_flow_key key;
	struct fx_out out;
	size_t len;

	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40400, FX_SERVER, 80);
	memcpy(f.state, &st, sizeof(st));
	fx_put_flow(&key, &f);
	/* fragmentation needed for the inside host's segment: it passes as it is */
	fx_tcp(seg, fx_mac_ext, fx_mac_ext, FX_CLIENT, 40400, FX_SERVER, 80, FX_ACK, 100);
	len = icmp_frame(pkt, fx_mac_ext, fx_mac_server, ROUTER, FX_CLIENT, 3, 4, 1280,
			 quoted(seg), 28);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	memcpy(want, pkt, len);
	fx_forwarded(want, fx_mac_client, fx_mac_int);
	expect_bytes(&out, XDP_REDIRECT, want, len);
	cr_assert_eq(fx_stat(RP_DP_icmp_translated), 1);
	/* about a connection the firewall never passed: asked of the store, not let in */
	fx_tcp(seg, fx_mac_ext, fx_mac_ext, FX_CLIENT, 40401, FX_SERVER, 80, FX_ACK, 100);
	len = icmp_frame(pkt, fx_mac_ext, fx_mac_server, ROUTER, FX_CLIENT, 3, 4, 1280,
			 quoted(seg), 28);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	fx_key(&key, IPPROTO_TCP, FX_CLIENT, 40401, FX_SERVER, 80);
	cr_assert(rp_key_eq(&req.key, &key));
	cr_assert(!(req.flags & RP_F_STATE), "a lookup, no proposal");
	cr_assert_eq(fx_stat(RP_DP_icmp_translated), 1);
}

/* A UDP datagram's fragment: the first (MF, with the ports), or a later one at `off` (8-byte units). */
static size_t fragment(uint8_t *buf, uint32_t saddr, uint16_t sport, uint32_t daddr,
		       uint16_t dport, uint16_t id, uint16_t off, bool more)
{
	size_t len = fx_udp(buf, fx_mac_int, fx_mac_client, saddr, sport, daddr, dport, 24, true);
	struct iphdr *ip = (struct iphdr *)(buf + 14);

	ip->id = htons(id);
	ip->frag_off = htons((uint16_t)((more ? 0x2000 : 0) | off));
	ip->check = 0;
	ip->check = fx_csum(ip, 20);
	return len;
}

Test(frag, later_fragments_follow_their_first_and_only_then)
{
	uint8_t pkt[256], want[256];
	struct iphdr *ip;
	struct fx_out out;
	size_t len;

	nat_conn(IPPROTO_UDP);
	/* the first fragment: translated like any packet of the connection */
	len = fragment(pkt, FX_CLIENT, 40000, FX_SERVER, 53, 77, 0, true);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	ip = (struct iphdr *)(out.data + 14);
	cr_assert_eq(ip->saddr, htonl(FX_EXT));
	cr_assert_eq(fx_stat(RP_DP_frag_first), 1);
	/* a later one of the same datagram: the same source, the IPv4 header only */
	len = fragment(pkt, FX_CLIENT, 40000, FX_SERVER, 53, 77, 3, false);
	memcpy(want, pkt, len);
	ip = (struct iphdr *)(want + 14);
	ip->saddr = htonl(FX_EXT);
	ip->check = 0;
	ip->check = fx_csum(ip, 20);
	fx_forwarded(want, fx_mac_server, fx_mac_ext);
	fx_run(pkt, len, fx.ifindex_int, &out);
	expect_bytes(&out, XDP_REDIRECT, want, len);
	cr_assert_eq(fx_stat(RP_DP_frag_forwarded), 1);
	/* one of a datagram whose first was not seen: dropped, never let out untranslated */
	len = fragment(pkt, FX_CLIENT, 40000, FX_SERVER, 53, 78, 3, false);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_fragment), 1);
}
