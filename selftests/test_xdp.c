// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The XDP data plane through bpf_prog_test_run_opts: input frame, verdict,
 * output bytes and map side effects, for every path and drop reason.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <string.h>
#include <time.h>

#include "xdp_fixture.h"
/* after the fixture: the skeleton uses the types of redplane/dp.h */
#include "redplane.skel.h"

TestSuite(xdp, .init = fx_setup, .fini = fx_teardown, .timeout = 30);

#define ETH_IP_LEN	(sizeof(struct ethhdr) + sizeof(struct iphdr))
#define ENCAP_LEN	(ETH_IP_LEN + sizeof(struct udphdr) + RP_MSG_LEN)

/* What the switch sends on after forwarding: TTL - 1, its MACs. */
static void as_forwarded(uint8_t *frame, const uint8_t *dmac, const uint8_t *smac)
{
	struct iphdr *ip = (struct iphdr *)(frame + sizeof(struct ethhdr));
	uint32_t s = 0;

	memcpy(frame, dmac, 6);
	memcpy(frame + 6, smac, 6);
	ip->ttl--;
	ip->check = 0;
	for (int i = 0; i < 10; i++)
		s += ntohs(((uint16_t *)ip)[i]);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	ip->check = htons((uint16_t)~s);
}

static void expect_frame(const struct fx_out *out, uint32_t verdict, const uint8_t *want,
			 size_t len)
{
	cr_assert_eq(out->verdict, verdict, "verdict %u, expected %u", out->verdict, verdict);
	cr_assert_eq(out->len, len, "length %u, expected %zu", out->len, len);
	cr_assert_arr_eq(out->data, want, len, "output bytes");
	cr_assert(fx_csum_ok(out->data, out->len), "checksums valid");
}

static struct rp_nat_state nat_state(const struct rp_msg_view *v)
{
	struct rp_nat_state st;

	cr_assert(v->flags & RP_F_STATE);
	cr_assert_eq(v->state_len, sizeof(st));
	memcpy(&st, v->state, sizeof(st));
	return st;
}

/* A store message about `key`, `inner` riding along. */
static size_t store_msg(uint8_t *buf, uint32_t from, uint8_t type, const struct rp_flow_key *key,
			uint32_t seq, uint32_t epoch, const void *state, uint8_t state_len,
			const void *inner, size_t inner_len)
{
	struct rp_msg_view v = {
		.type = type,
		.app_id = RP_APP_NAT,
		.switch_id = FX_SWITCH_ID,
		.seq = seq,
		.epoch = epoch,
		.lease_ms = 200,
		.key = *key,
	};

	if (type == RP_MSG_GRANT || type == RP_MSG_MIGRATE) {
		v.flags |= RP_F_STATE;
		v.state = state;
		v.state_len = state_len;
	}
	if (type == RP_MSG_REJECT)
		v.reason = (uint8_t)(uintptr_t)state;
	if (inner_len) {
		v.flags |= RP_F_PKT;
		v.pkt = inner;
		v.pkt_len = (uint16_t)inner_len;
	}
	return fx_store_msg(buf, from, &v);
}

/* The lease generation of a store message built by store_msg(). */
static void set_gen(uint8_t *frame, uint16_t gen)
{
	struct rp_hdr *h = (struct rp_hdr *)(frame + ETH_IP_LEN + sizeof(struct udphdr));

	h->gen = htons(gen);
}

/* Installs a held lease on both keys of a client->server connection. */
static void hold_mapping(uint8_t proto, uint16_t cport, uint16_t ext_port)
{
	struct rp_flow_key fwd, rev;
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .state_len = sizeof(struct rp_nat_state) };
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(ext_port), .dir = RP_NAT_FWD };

	fx_key(&fwd, proto, FX_CLIENT, cport, FX_SERVER, 80);
	fx_key(&rev, proto, FX_SERVER, 80, FX_EXT, ext_port);
	memcpy(f.state, &st, sizeof(st));
	fx_put_flow(&fwd, &f);
	st = (struct rp_nat_state){ .addr = htonl(FX_CLIENT), .port = htons(cport), .dir = RP_NAT_REV };
	memcpy(f.state, &st, sizeof(st));
	fx_put_flow(&rev, &f);
}

static int count_wcopies(void *ctx, void *data, size_t size)
{
	struct fx_out *want = ctx;
	const struct rp_dp_wcopy *rec = data;

	cr_assert_geq(size, sizeof(*rec));
	cr_assert_eq(rec->len, want->len, "the copy is the whole request frame");
	cr_assert_arr_eq(rec->frame, want->data, want->len);
	cr_assert_eq(rec->ifindex, (uint32_t)fx.ifindex_sto);
	want->verdict++;
	return 0;
}

Test(xdp, new_tcp_connection_takes_both_keys_then_forwards)
{
	uint8_t syn[128], msg[2048], want[128], tmp[2048];
	struct rp_flow_key fwd, rev;
	struct rp_nat_state st;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t syn_len, len;
	uint16_t port;

	/* 1. The SYN has no lease: it rides to the store, proposing a mapping */
	syn_len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, syn_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40000, FX_SERVER, 80);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(rp_key_eq(&req.key, &fwd), "request for the forward key");
	st = nat_state(&req);
	port = ntohs(st.port);
	cr_assert_eq(st.addr, htonl(FX_EXT));
	cr_assert(port >= FX_PORT_BASE && port < FX_PORT_BASE + FX_PORT_SPAN,
		  "port %u from this switch's range", port);
	cr_assert_eq(st.dir, RP_NAT_FWD);
	cr_assert_eq(req.pkt_len, syn_len);
	cr_assert_arr_eq(req.pkt, syn, syn_len, "the SYN rides as it came");
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0, "not held yet");
	cr_assert(f.flags & RP_DPF_REV_PENDING);
	cr_assert_eq(fx_stat(RP_DP_nat_new), 1);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 1);

	/* 2. GRANT: installed; the SYN goes back out for the reverse key */
	len = store_msg(msg, FX_STORE, RP_MSG_GRANT, &fwd, 0, FX_EPOCH, &st, sizeof(st), syn,
			syn_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	fx_decode_request(&out, &req);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, port);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(rp_key_eq(&req.key, &rev), "request for the reverse key");
	st = nat_state(&req);
	cr_assert_eq(st.addr, htonl(FX_CLIENT));
	cr_assert_eq(st.port, htons(40000));
	cr_assert_eq(st.dir, RP_NAT_REV);
	/* untranslated; addressed to the interface it came back on (rp_decap) */
	cr_assert_arr_eq(req.pkt, fx_mac_sto, 6);
	cr_assert_arr_eq(req.pkt + 6, syn + 6, syn_len - 6, "still untranslated");
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH);
	cr_assert(f.flags & RP_DPF_REV_PENDING);

	/* 3. GRANT of the reverse key: the SYN leaves, translated */
	len = store_msg(msg, FX_STORE, RP_MSG_GRANT, &rev, 0, FX_EPOCH, &st, sizeof(st), syn,
			syn_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	fx_tcp(want, fx_mac_ext, fx_mac_client, FX_EXT, port, FX_SERVER, 80, FX_SYN, 0);
	as_forwarded(want, fx_mac_server, fx_mac_ext);
	expect_frame(&out, XDP_REDIRECT, want, syn_len);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, 0, "both keys are in the store");
	cr_assert(fx_flow(&rev, &f));
	cr_assert_eq(f.epoch, FX_EPOCH);

	/* 4. The connection's next packet reads the mapping: no store */
	len = fx_tcp(tmp, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, FX_ACK, 100);
	fx_run(tmp, len, fx.ifindex_int, &out);
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_EXT, port, FX_SERVER, 80, FX_ACK, 100);
	as_forwarded(want, fx_mac_server, fx_mac_ext);
	expect_frame(&out, XDP_REDIRECT, want, len);
	cr_assert_eq(fx_stat(RP_DP_fast_path), 2);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 2, "no further request");

	/* 5. The reply comes back in, to the client */
	len = fx_tcp(tmp, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, port, FX_SYN | FX_ACK, 0);
	fx_run(tmp, len, fx.ifindex_ext, &out);
	fx_tcp(want, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_CLIENT, 40000, FX_SYN | FX_ACK, 0);
	as_forwarded(want, fx_mac_client, fx_mac_int);
	expect_frame(&out, XDP_REDIRECT, want, len);
}

Test(xdp, fin_is_a_write_released_only_by_its_ack)
{
	uint8_t fin[128], msg[2048], want[128];
	struct rp_flow_key fwd;
	struct ring_buffer *rb;
	struct fx_out out, copy = { 0 };
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct rp_nat_state st;
	size_t len, fin_len;

	hold_mapping(IPPROTO_TCP, 40001, 20042);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40001, FX_SERVER, 80);
	rb = ring_buffer__new(bpf_map__fd(fx.skel->maps.wcopies), count_wcopies, &copy, NULL);
	cr_assert_not_null(rb);

	fin_len = fx_tcp(fin, fx_mac_int, fx_mac_client, FX_CLIENT, 40001, FX_SERVER, 80,
			 FX_FIN | FX_ACK, 0);
	fx_run(fin, fin_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE);
	cr_assert(rp_key_eq(&req.key, &fwd));
	cr_assert_eq(req.seq, 1);
	st = nat_state(&req);
	cr_assert_eq(st.closing, RP_NAT_FIN);
	cr_assert_eq(st.port, htons(20042));
	/* the output packet rides, translated, not yet forwarded */
	fx_tcp(want, fx_mac_int, fx_mac_client, FX_EXT, 20042, FX_SERVER, 80, FX_FIN | FX_ACK, 0);
	cr_assert_eq(req.pkt_len, fin_len);
	cr_assert_arr_eq(req.pkt, want, fin_len);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.seq, 1);
	cr_assert_eq(f.acked, 0);

	/* rp-load gets a copy of the request for its retransmit ring */
	copy.len = out.len;
	memcpy(copy.data, out.data, out.len);
	cr_assert_eq(ring_buffer__consume(rb), 1);
	cr_assert_eq(copy.verdict, 1);
	ring_buffer__free(rb);

	/* an ACK of a write never made (seq 5): refused, nothing released, acked stays */
	len = store_msg(msg, FX_STORE, RP_MSG_ACK, &fwd, 5, FX_EPOCH, NULL, 0, want, fin_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_ack_ahead), 1);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.acked, 0);

	/* the ACK releases it */
	len = store_msg(msg, FX_STORE, RP_MSG_ACK, &fwd, 1, FX_EPOCH, NULL, 0, want, fin_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	as_forwarded(want, fx_mac_server, fx_mac_ext);
	expect_frame(&out, XDP_REDIRECT, want, fin_len);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.acked, 1);
	cr_assert_eq(fx_stat(RP_DP_ack), 1);

	/* a duplicate ACK releases nothing */
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_stale_ack), 1);

	/* a second FIN changes nothing: no second write */
	fx_run(fin, fin_len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert_eq(fx_stat(RP_DP_write_req), 1);
}

Test(xdp, a_migrate_of_our_own_proposal_keeps_the_reverse_key_pending)
{
	uint8_t syn[128], msg[2048];
	struct rp_flow_key fwd;
	struct rp_msg_view req;
	struct rp_nat_state st, other;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t syn_len, len;

	syn_len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40007, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, syn_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	st = nat_state(&req);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40007, FX_SERVER, 80);

	/* the request was duplicated: the regrant (MIGRATE) overtakes the GRANT */
	len = store_msg(msg, FX_STORE, RP_MSG_MIGRATE, &fwd, 0, FX_EPOCH, &st, sizeof(st), syn,
			syn_len);
	fx_run(msg, len, fx.ifindex_sto, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ, "the reverse key is still asked for");
	cr_assert_eq(nat_state(&req).dir, RP_NAT_REV);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert(f.flags & RP_DPF_REV_PENDING);

	/* a MIGRATE of another switch's mapping (a new holding): its reverse key exists */
	other = st;
	other.port = htons(ntohs(st.port) + 1);
	len = store_msg(msg, FX_STORE, RP_MSG_MIGRATE, &fwd, 0, FX_EPOCH, &other, sizeof(other),
			syn, syn_len);
	set_gen(msg, 1);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, 0);
	cr_assert_eq(((struct tcphdr *)(out.data + ETH_IP_LEN))->source, other.port,
		     "translated with the stored mapping");
}

Test(xdp, a_fin_sent_again_before_its_ack_writes_again)
{
	uint8_t fin[128];
	struct rp_flow_key fwd;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t fin_len;

	hold_mapping(IPPROTO_TCP, 40002, 20043);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40002, FX_SERVER, 80);
	fin_len = fx_tcp(fin, fx_mac_int, fx_mac_client, FX_CLIENT, 40002, FX_SERVER, 80,
			 FX_FIN | FX_ACK, 0);
	fx_run(fin, fin_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.seq, 1);

	/* no ACK yet: the local state is ahead of the store, so TCP's
	 * retransmission of the FIN must not leave on it */
	fx_run(fin, fin_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE);
	cr_assert_eq(req.seq, 2);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.seq, 2);
	cr_assert_eq(fx_stat(RP_DP_fast_path), 0);
}

Test(xdp, udp_checksums_including_zero)
{
	uint8_t pkt[256];
	struct fx_out out;
	size_t len;
	struct udphdr *uh;

	hold_mapping(IPPROTO_UDP, 5353, 20007);
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5353, FX_SERVER, 80, 33, true);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert(fx_csum_ok(out.data, out.len), "UDP checksum updated");
	uh = (struct udphdr *)(out.data + ETH_IP_LEN);
	cr_assert_neq(uh->check, 0);
	cr_assert_eq(uh->source, htons(20007));

	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 5353, FX_SERVER, 80, 33, false);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	uh = (struct udphdr *)(out.data + ETH_IP_LEN);
	cr_assert_eq(uh->check, 0, "a UDP checksum of 0 stays 0");
	cr_assert(fx_csum_ok(out.data, out.len), "IPv4 header checksum");

	/* inbound, with the checksum */
	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, 20007, 7, true);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert(fx_csum_ok(out.data, out.len));
	uh = (struct udphdr *)(out.data + ETH_IP_LEN);
	cr_assert_eq(uh->dest, htons(5353));
}

Test(xdp, return_traffic_without_lease_looks_up_and_never_proposes)
{
	uint8_t pkt[128];
	struct rp_flow_key rev;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, 20011, FX_ACK, 10);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, 20011);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(rp_key_eq(&req.key, &rev));
	cr_assert_eq(req.flags & RP_F_STATE, 0, "a lookup: no proposal");
	cr_assert_arr_eq(req.pkt, pkt, len);
	cr_assert(!fx_flow(&rev, &f), "nothing installed locally");
}

Test(xdp, return_traffic_proposes_again_only_a_mapping_it_had)
{
	uint8_t pkt[128];
	struct rp_flow_key rev;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	struct rp_nat_state st;
	size_t len;

	hold_mapping(IPPROTO_TCP, 40600, 20012);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, 20012);
	cr_assert(fx_flow(&rev, &f));
	f.epoch = 0;	/* the lease is gone (a new epoch, say): the mapping is known */
	fx_put_flow(&rev, &f);

	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, 20012, FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	cr_assert(rp_key_eq(&req.key, &rev));
	st = nat_state(&req);
	cr_assert_eq(st.addr, htonl(FX_CLIENT), "the mapping it had, proposed again");
	cr_assert_eq(st.port, htons(40600));
	cr_assert_eq(st.dir, RP_NAT_REV);
}

Test(xdp, migrate_installs_the_stored_state_and_processes_the_packet)
{
	uint8_t pkt[128], msg[2048];
	struct rp_nat_state st = { .addr = htonl(FX_CLIENT), .port = htons(40100), .dir = RP_NAT_REV };
	struct rp_flow_key rev;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, plen;
	struct tcphdr *th;

	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, 20050);
	plen = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, 20050, FX_ACK, 20);
	len = store_msg(msg, FX_STORE, RP_MSG_MIGRATE, &rev, 9, FX_EPOCH, &st, sizeof(st), pkt, plen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert_eq(out.len, plen);
	th = (struct tcphdr *)(out.data + ETH_IP_LEN);
	cr_assert_eq(th->dest, htons(40100), "translated with the stored mapping");
	cr_assert(fx_csum_ok(out.data, out.len));
	cr_assert(fx_flow(&rev, &f));
	cr_assert_eq(f.seq, 9, "the committed seq came along");
	cr_assert_eq(f.acked, 9);
	cr_assert_eq(fx_stat(RP_DP_migrate), 1);
}

Test(xdp, store_messages_from_elsewhere_or_stale_are_dropped)
{
	uint8_t msg[2048], inner[128];
	struct rp_nat_state st = { .addr = htonl(FX_CLIENT), .port = htons(1), .dir = RP_NAT_REV };
	struct rp_flow_key rev;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, ilen;

	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, 20060);
	ilen = fx_tcp(inner, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, 20060, FX_ACK, 0);

	/* a forged grant from an address that is not a store */
	len = store_msg(msg, FX_STRANGER, RP_MSG_GRANT, &rev, 0, FX_EPOCH, &st, sizeof(st), inner,
			ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_source), 1);
	cr_assert(!fx_flow(&rev, &f));

	/* a grant of another session epoch */
	len = store_msg(msg, FX_STORE, RP_MSG_GRANT, &rev, 0, FX_EPOCH - 1, &st, sizeof(st), inner,
			ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_stale_grant), 1);
	cr_assert(!fx_flow(&rev, &f));

	/* an ACK for a flow not held */
	len = store_msg(msg, FX_STORE, RP_MSG_ACK, &rev, 1, FX_EPOCH, NULL, 0, inner, ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_ack_not_owner), 1);

	/* an ACK from a stranger for a held flow */
	hold_mapping(IPPROTO_TCP, 40200, 20061);
	fx_key(&rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, 20061);
	len = store_msg(msg, FX_STRANGER, RP_MSG_ACK, &rev, 1, FX_EPOCH, NULL, 0, inner, ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&rev, &f));
	cr_assert_eq(f.acked, 0, "nothing applied");
}

Test(xdp, reject_drops_the_packet_and_not_owner_drops_the_lease)
{
	uint8_t msg[2048], inner[128];
	struct rp_flow_key fwd;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, ilen;

	hold_mapping(IPPROTO_TCP, 40300, 20070);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40300, FX_SERVER, 80);
	ilen = fx_tcp(inner, fx_mac_int, fx_mac_client, FX_EXT, 20070, FX_SERVER, 80, FX_FIN, 0);

	/* about another holding of the flow (generation 1, ours is 0): nothing */
	len = store_msg(msg, FX_STORE, RP_MSG_REJECT, &fwd, 3, FX_EPOCH,
			(void *)(uintptr_t)RP_REJ_NOT_OWNER, 0, inner, ilen);
	set_gen(msg, 1);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP, "a rejected write's packet never leaves");
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH, "an earlier holding's reject: the lease stands");

	/* stale: out of step with the store; given up, the next grant re-syncs */
	len = store_msg(msg, FX_STORE, RP_MSG_REJECT, &fwd, 3, FX_EPOCH,
			(void *)(uintptr_t)RP_REJ_STALE, 0, inner, ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0, "stale: the lease is given up");

	hold_mapping(IPPROTO_TCP, 40300, 20070);
	len = store_msg(msg, FX_STORE, RP_MSG_REJECT, &fwd, 3, FX_EPOCH,
			(void *)(uintptr_t)RP_REJ_NOT_OWNER, 0, inner, ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0, "not the owner: the lease is gone");
	cr_assert_eq(fx_stat(RP_DP_reject), 3);
	cr_assert_eq(fx_stat(RP_DP_reject_lost_lease), 2);
}

Test(xdp, a_late_grant_of_a_given_up_holding_is_refused_and_a_regrant_keeps_local_state)
{
	uint8_t msg[2048];
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(20071), .dir = RP_NAT_FWD };
	struct rp_flow_key fwd;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	hold_mapping(IPPROTO_TCP, 40301, 20071);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40301, FX_SERVER, 80);
	cr_assert(fx_flow(&fwd, &f));
	f.seq = 7;	/* writes the store has not answered yet */
	f.acked = 6;
	fx_put_flow(&fwd, &f);

	/* an answer to a repeated request for the same holding: local state stays */
	len = store_msg(msg, FX_STORE, RP_MSG_MIGRATE, &fwd, 5, FX_EPOCH, &st, sizeof(st), NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.seq, 7, "the switch's sequence number never winds back");
	cr_assert_eq(f.acked, 6);
	cr_assert_eq(fx_stat(RP_DP_regrant), 1);

	/* revoked, then the grant of that same holding arrives late */
	len = store_msg(msg, FX_STORE, RP_MSG_REVOKE, &fwd, 6, FX_EPOCH, NULL, 0, NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_TX);
	len = store_msg(msg, FX_STORE, RP_MSG_MIGRATE, &fwd, 6, FX_EPOCH, &st, sizeof(st), NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0, "a given-up holding is never taken back by a late grant");
	cr_assert_eq(fx_stat(RP_DP_drop_stale_grant), 1);

	/* a new holding (the next generation) is installed */
	set_gen(msg, 3);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH);
	cr_assert_eq(f.gen, 3);
	cr_assert_eq(f.seq, 6);

	/* holding generation 3, a delayed grant of generation 2 changes nothing */
	set_gen(msg, 2);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.gen, 3);
	cr_assert_eq(fx_stat(RP_DP_drop_stale_grant), 2);

	/* a revoke of a later generation than the one held gives it up too */
	len = store_msg(msg, FX_STORE, RP_MSG_REVOKE, &fwd, 6, FX_EPOCH, NULL, 0, NULL, 0);
	set_gen(msg, 5);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_TX);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0);
	cr_assert_eq(f.gen, 5, "recorded as given up up to generation 5");
}

Test(xdp, a_late_copy_of_an_old_write_refused_stale_keeps_the_lease)
{
	uint8_t msg[2048];
	struct rp_flow_key fwd;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	hold_mapping(IPPROTO_TCP, 40302, 20072);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40302, FX_SERVER, 80);
	cr_assert(fx_flow(&fwd, &f));
	f.seq = f.acked = 4;
	fx_put_flow(&fwd, &f);
	/* the store has 4 too: a duplicated copy of write 3 came back stale */
	len = store_msg(msg, FX_STORE, RP_MSG_REJECT, &fwd, 4, FX_EPOCH,
			(void *)(uintptr_t)RP_REJ_STALE, 0, NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH, "in step with the store: the lease stands");
	/* a seq written twice with two states: out of step, given up */
	len = store_msg(msg, FX_STORE, RP_MSG_REJECT, &fwd, 4, FX_EPOCH,
			(void *)(uintptr_t)RP_REJ_CONFLICT, 0, NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0);
}

Test(xdp, revoke_gives_the_lease_up_and_is_acked_in_place)
{
	uint8_t msg[2048];
	struct rp_flow_key fwd;
	struct rp_msg_view ack;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;
	const struct ethhdr *eth;
	const struct iphdr *ip;
	const struct udphdr *uh;

	hold_mapping(IPPROTO_TCP, 40400, 20080);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40400, FX_SERVER, 80);
	len = store_msg(msg, FX_STORE, RP_MSG_REVOKE, &fwd, 4, FX_EPOCH, NULL, 0, NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_TX);
	eth = (const void *)out.data;
	ip = (const void *)(eth + 1);
	uh = (const void *)(ip + 1);
	cr_assert_arr_eq(eth->h_dest, fx_mac_store, 6);
	cr_assert_arr_eq(eth->h_source, fx_mac_sto, 6);
	cr_assert_eq(ip->saddr, htonl(FX_SWITCH));
	cr_assert_eq(ip->daddr, htonl(FX_STORE));
	cr_assert_eq(uh->source, htons(FX_RP_PORT));
	cr_assert_eq(uh->dest, htons(FX_STORE_PORT));
	cr_assert(fx_csum_ok(out.data, out.len));
	cr_assert_eq(rp_msg_decode(out.data + ETH_IP_LEN + sizeof(*uh),
				   out.len - ETH_IP_LEN - sizeof(*uh), &ack), 0);
	cr_assert_eq(ack.type, RP_MSG_REVOKE_ACK);
	cr_assert(rp_key_eq(&ack.key, &fwd));
	cr_assert_eq(ack.epoch, FX_EPOCH);
	cr_assert_eq(ack.switch_id, FX_SWITCH_ID);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0, "no longer processed here");
	cr_assert_eq(fx_stat(RP_DP_revoke), 1);

	/* a revoke for a flow this switch does not hold is acked all the same */
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 1, FX_SERVER, 2);
	len = store_msg(msg, FX_STORE, RP_MSG_REVOKE, &fwd, 0, FX_EPOCH, NULL, 0, NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_TX);
	cr_assert_eq(fx_stat(RP_DP_revoke_unknown), 1);
}

/*
 * In a chain the head sends revokes and the tail grants: a revoke can reach
 * the switch before the grant of the holding it names.  The holding is
 * given up all the same, its grant refused when it comes, and the next
 * request names it (the store takes that as the revoke's ack if the ack was
 * lost).  The model found this (docs/MODEL.md).
 */
Test(xdp, a_revoke_that_overtakes_its_grant_gives_the_holding_up)
{
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(20090), .dir = RP_NAT_FWD };
	uint8_t msg[2048], syn[128];
	struct rp_flow_key fwd;
	struct rp_msg_view req;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, syn_len;

	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40500, FX_SERVER, 80);
	/* revoked before this switch heard it was granted: no entry yet */
	len = store_msg(msg, FX_STORE, RP_MSG_REVOKE, &fwd, 0, FX_EPOCH, NULL, 0, NULL, 0);
	set_gen(msg, 3);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_TX, "acked");
	cr_assert_eq(fx_stat(RP_DP_revoke_unknown), 1);
	cr_assert(fx_flow(&fwd, &f), "the given-up holding is remembered");
	cr_assert_eq(f.epoch, 0);
	cr_assert_eq(f.gone_epoch, FX_EPOCH);
	cr_assert_eq(f.gen, 3);

	/* the grant of that holding arrives: refused */
	len = store_msg(msg, FX_STORE, RP_MSG_GRANT, &fwd, 0, FX_EPOCH, &st, sizeof(st), NULL, 0);
	set_gen(msg, 3);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_stale_grant), 1);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0, "not held");

	/*
	 * The next packet asks again, naming the holding it gave up, and,
	 * since the entry the revoke made holds no mapping, proposing a fresh
	 * one (not the entry's zeros), its reverse key to follow.
	 */
	syn_len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40500, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, syn_len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert_eq(req.gen, 3);
	cr_assert(req.flags & RP_F_STATE, "a proposal");
	cr_assert_eq(req.state_len, sizeof(st));
	{
		struct rp_nat_state prop;

		memcpy(&prop, req.state, sizeof(prop));
		cr_assert_eq(prop.addr, htonl(FX_EXT), "the external address, not zeros");
		cr_assert_eq(prop.dir, RP_NAT_FWD);
		cr_assert(ntohs(prop.port) >= FX_PORT_BASE &&
			  ntohs(prop.port) < FX_PORT_BASE + FX_PORT_SPAN, "a port of the range: %u",
			  ntohs(prop.port));
	}
	cr_assert(fx_flow(&fwd, &f));
	cr_assert(f.flags & RP_DPF_REV_PENDING, "its reverse key to follow a grant");
	cr_assert_eq(fx_stat(RP_DP_nat_new), 1);

	/* a later holding's grant is taken */
	len = store_msg(msg, FX_STORE, RP_MSG_GRANT, &fwd, 0, FX_EPOCH, &st, sizeof(st), NULL, 0);
	set_gen(msg, 4);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH, "held");
	cr_assert_eq(f.gen, 4);
}

Test(xdp, no_live_session_means_no_processing)
{
	struct rp_dp_session sess = { .epoch = FX_EPOCH, .expiry_ns = 1 };	/* lapsed */
	uint8_t pkt[128];
	struct fx_out out;
	uint32_t zero = 0;
	size_t len;

	hold_mapping(IPPROTO_TCP, 40500, 20090);
	cr_assert_eq(bpf_map_update_elem(fx.map_sessions, &zero, &sess, 0), 0);
	len = fx_tcp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 40500, FX_SERVER, 80, FX_ACK, 0);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP, "a held lease dies with its session");
	cr_assert_eq(fx_stat(RP_DP_drop_no_session), 1);
	cr_assert_eq(fx_stat(RP_DP_fast_path), 0);
}

/* Frames the data plane does not handle, and their documented verdicts. */
struct verdict_case {
	const char *name;
	size_t (*build)(uint8_t *buf);
	int ifindex_of;		/* 0 int, 1 ext, 2 sto */
	uint32_t verdict;
	enum rp_dp_stat stat;
};

/* (a frame shorter than Ethernet's header never reaches XDP) */
static size_t b_vlan_cut(uint8_t *b)
{
	memset(b, 0, 16);
	b[12] = 0x81;	/* an 802.1Q tag announced, cut after 2 of its 4 bytes */
	return 16;
}
static size_t b_arp(uint8_t *b)
{
	memset(b, 0, 42);
	memcpy(b, fx_mac_int, 6);
	b[12] = 0x08;
	b[13] = 0x06;
	return 42;
}
static size_t b_ipv6(uint8_t *b)
{
	memset(b, 0, 80);
	b[12] = 0x86;
	b[13] = 0xdd;
	return 80;
}
static size_t b_ip_cut(uint8_t *b)
{
	fx_tcp(b, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_SERVER, 80, FX_SYN, 0);
	return sizeof(struct ethhdr) + 10;
}
static size_t b_tcp_cut(uint8_t *b)
{
	fx_tcp(b, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_SERVER, 80, FX_SYN, 0);
	return ETH_IP_LEN + 12;
}
static size_t b_fragment(uint8_t *b)
{
	size_t len = fx_udp(b, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_SERVER, 80, 20, true);

	((struct iphdr *)(b + sizeof(struct ethhdr)))->frag_off = htons(0x2000);	/* MF */
	return len;
}
static size_t b_later_fragment(uint8_t *b)
{
	size_t len = fx_udp(b, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_SERVER, 80, 20, true);

	((struct iphdr *)(b + sizeof(struct ethhdr)))->frag_off = htons(100);
	return len;
}
static size_t b_icmp(uint8_t *b)
{
	size_t len = fx_udp(b, fx_mac_int, fx_mac_client, FX_CLIENT, 1, FX_SERVER, 80, 20, false);

	((struct iphdr *)(b + sizeof(struct ethhdr)))->protocol = IPPROTO_ICMP;
	return len;
}
static size_t b_not_nat(uint8_t *b)
{
	return fx_udp(b, fx_mac_ext, fx_mac_server, FX_SERVER, 1, 0x0a090909u, 2, 10, true);
}
static size_t b_msg_version(uint8_t *b)
{
	struct rp_flow_key k;
	size_t len;

	fx_key(&k, IPPROTO_TCP, FX_CLIENT, 1, FX_SERVER, 2);
	len = store_msg(b, FX_STORE, RP_MSG_ACK, &k, 1, FX_EPOCH, NULL, 0, NULL, 0);
	b[ETH_IP_LEN + sizeof(struct udphdr)] = RP_VERSION + 1;
	return len;
}
static size_t b_msg_cut(uint8_t *b)
{
	struct rp_flow_key k;

	fx_key(&k, IPPROTO_TCP, FX_CLIENT, 1, FX_SERVER, 2);
	store_msg(b, FX_STORE, RP_MSG_ACK, &k, 1, FX_EPOCH, NULL, 0, NULL, 0);
	return ETH_IP_LEN + sizeof(struct udphdr) + 100;
}
static size_t b_msg_switch(uint8_t *b)
{
	struct rp_flow_key k;
	size_t len;

	fx_key(&k, IPPROTO_TCP, FX_CLIENT, 1, FX_SERVER, 2);
	len = store_msg(b, FX_STORE, RP_MSG_ACK, &k, 1, FX_EPOCH, NULL, 0, NULL, 0);
	b[ETH_IP_LEN + sizeof(struct udphdr) + 5] = FX_SWITCH_ID + 1;	/* another switch's */
	return len;
}
static size_t b_msg_pkt_len(uint8_t *b)
{
	struct rp_flow_key k;
	size_t len;

	fx_key(&k, IPPROTO_TCP, FX_CLIENT, 1, FX_SERVER, 2);
	len = store_msg(b, FX_STORE, RP_MSG_ACK, &k, 1, FX_EPOCH, NULL, 0, NULL, 0);
	memset(b + len, 0, 5);	/* trailing bytes the header does not announce */
	return len + 5;
}
static size_t b_msg_write(uint8_t *b)
{
	struct rp_flow_key k;
	size_t len;

	fx_key(&k, IPPROTO_TCP, FX_CLIENT, 1, FX_SERVER, 2);
	len = store_msg(b, FX_STORE, RP_MSG_ACK, &k, 1, FX_EPOCH, NULL, 0, NULL, 0);
	b[ETH_IP_LEN + sizeof(struct udphdr) + 1] = RP_MSG_WRITE;	/* a switch's type */
	return len;
}

static const struct verdict_case verdict_cases[] = {
	{ "VLAN tag cut", b_vlan_cut, 0, XDP_DROP, RP_DP_drop_truncated },
	{ "ARP", b_arp, 0, XDP_PASS, RP_DP_pass_not_ipv4 },
	{ "IPv6", b_ipv6, 0, XDP_PASS, RP_DP_pass_not_ipv4 },
	{ "IPv4 header cut", b_ip_cut, 0, XDP_DROP, RP_DP_drop_truncated },
	{ "TCP header cut", b_tcp_cut, 0, XDP_DROP, RP_DP_drop_truncated },
	/* a first fragment has the ports: a new connection's, to the store */
	{ "first fragment", b_fragment, 0, XDP_REDIRECT, RP_DP_frag_first },
	{ "later fragment", b_later_fragment, 0, XDP_DROP, RP_DP_drop_fragment },
	{ "ICMP", b_icmp, 0, XDP_PASS, RP_DP_pass_not_app },
	{ "not the NAT's traffic", b_not_nat, 1, XDP_PASS, RP_DP_pass_not_app },
	{ "message of another version", b_msg_version, 2, XDP_DROP, RP_DP_drop_malformed_msg },
	{ "message cut short", b_msg_cut, 2, XDP_DROP, RP_DP_drop_malformed_msg },
	{ "message for another switch", b_msg_switch, 2, XDP_DROP, RP_DP_drop_malformed_msg },
	{ "message with unannounced bytes", b_msg_pkt_len, 2, XDP_DROP, RP_DP_drop_malformed_msg },
	{ "a switch's message type", b_msg_write, 2, XDP_DROP, RP_DP_drop_malformed_msg },
};

Test(xdp, unhandled_and_malformed_frames_get_their_documented_verdict)
{
	for (size_t i = 0; i < sizeof(verdict_cases) / sizeof(verdict_cases[0]); i++) {
		const struct verdict_case *c = &verdict_cases[i];
		int ifindex[] = { fx.ifindex_int, fx.ifindex_ext, fx.ifindex_sto };
		uint8_t buf[2048];
		uint64_t before = fx_stat(c->stat);
		struct fx_out out;
		size_t len = c->build(buf);

		fx_run(buf, len, ifindex[c->ifindex_of], &out);
		cr_assert_eq(out.verdict, c->verdict, "%s: verdict %u, expected %u", c->name,
			     out.verdict, c->verdict);
		cr_assert_eq(fx_stat(c->stat), before + 1, "%s: counted", c->name);
		if (c->verdict == XDP_PASS)
			cr_assert_arr_eq(out.data, buf, len, "%s: passed unchanged", c->name);
	}
	cr_assert_eq(fx_stat(RP_DP_lease_req), 1, "none but the first fragment reached the store");
}

Test(xdp, heartbeat_acks_go_to_rp_load)
{
	struct rp_msg_view v = { .type = RP_MSG_HEARTBEAT_ACK, .switch_id = FX_SWITCH_ID,
				 .seq = 3, .epoch = FX_EPOCH, .lease_ms = 200 };
	uint8_t buf[512];
	struct fx_out out;
	size_t len = fx_store_msg(buf, FX_STORE, &v);

	fx_run(buf, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	cr_assert_eq(fx_stat(RP_DP_hb_ack_pass), 1);

	/* from the chain's tail, not the head the heartbeat went to */
	len = fx_store_msg(buf, FX_STORE_B, &v);
	fx_run(buf, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	cr_assert_eq(fx_stat(RP_DP_hb_ack_pass), 2);
}

Test(xdp, requests_go_to_the_head_rp_load_wrote_into_the_session)
{
	uint8_t syn[128], fin[128];
	struct fx_out out, copy = { 0 };
	struct rp_msg_view req;
	struct ring_buffer *rb;
	size_t len;

	len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40700, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, len, fx.ifindex_int, &out);
	fx_decode_request_to(&out, FX_STORE, &req);

	/* the head moved: the next lease request and write go to the new one */
	fx_set_head(0, FX_STORE_B);
	len = fx_tcp(syn, fx_mac_int, fx_mac_client, FX_CLIENT, 40701, FX_SERVER, 80, FX_SYN, 0);
	fx_run(syn, len, fx.ifindex_int, &out);
	fx_decode_request_to(&out, FX_STORE_B, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);

	hold_mapping(IPPROTO_TCP, 40702, 20074);
	rb = ring_buffer__new(bpf_map__fd(fx.skel->maps.wcopies), count_wcopies, &copy, NULL);
	cr_assert_not_null(rb);
	len = fx_tcp(fin, fx_mac_int, fx_mac_client, FX_CLIENT, 40702, FX_SERVER, 80,
		     FX_FIN | FX_ACK, 0);
	fx_run(fin, len, fx.ifindex_int, &out);
	fx_decode_request_to(&out, FX_STORE_B, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE);
	/* rp-load's copy shows the head it went to (it resends elsewhere if that moves) */
	copy.len = out.len;
	memcpy(copy.data, out.data, out.len);
	cr_assert_eq(ring_buffer__consume(rb), 1);
	cr_assert_eq(copy.verdict, 1);
	ring_buffer__free(rb);
}

/* A heartbeat's key: none. */
static const struct rp_flow_key heartbeat_key;

/*
 * A REJECT not_head from `from`, its hint naming `head`, echoing `inner`;
 * about `key`, or answering a heartbeat (heartbeat_key).
 */
static size_t not_head_msg(uint8_t *buf, uint32_t from, const struct rp_flow_key *key,
			   uint32_t head, const void *inner, size_t inner_len)
{
	struct rp_head_hint hint = { .addr = htonl(head), .port = htons(FX_STORE_PORT),
				     .version = htonl(2) };
	struct rp_msg_view v = {
		.type = RP_MSG_REJECT,
		.app_id = key == &heartbeat_key ? RP_APP_NONE : RP_APP_NAT,
		.flags = RP_F_STATE | (inner_len ? RP_F_PKT : 0),
		.reason = RP_REJ_NOT_HEAD,
		.switch_id = FX_SWITCH_ID,
		.state_len = sizeof(hint),
		.epoch = FX_EPOCH,
		.key = *key,
		.state = (const uint8_t *)&hint,
		.pkt = inner,
		.pkt_len = (uint16_t)inner_len,
	};

	return fx_store_msg(buf, from, &v);
}

Test(xdp, a_reject_not_head_goes_to_rp_load_and_the_lease_stays)
{
	uint8_t msg[2048], inner[128];
	struct rp_flow_key fwd;
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, ilen;

	hold_mapping(IPPROTO_TCP, 40310, 20073);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40310, FX_SERVER, 80);
	ilen = fx_tcp(inner, fx_mac_int, fx_mac_client, FX_EXT, 20073, FX_SERVER, 80, FX_FIN, 0);

	/* the write reached FX_STORE, no longer the head: it names FX_STORE_B */
	len = not_head_msg(msg, FX_STORE, &fwd, FX_STORE_B, inner, ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_PASS, "to rp-load's socket, which follows the hint");
	cr_assert_eq(out.len, len);
	cr_assert_arr_eq(out.data, msg, len, "as it came: the echoed packet is not released");
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH, "the lease stands");
	cr_assert_eq(f.gen, 0);
	cr_assert_eq(fx_stat(RP_DP_reject), 1);
	cr_assert_eq(fx_stat(RP_DP_reject_not_head), 1);
	cr_assert_eq(fx_stat(RP_DP_reject_lost_lease), 0);

	/* the answer to a heartbeat (no app, no key, no packet): up as well */
	len = not_head_msg(msg, FX_STORE_B, &heartbeat_key, FX_STORE, NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	cr_assert_eq(fx_stat(RP_DP_reject_not_head), 2);

	/* from a replica that is not configured: dropped, as any stranger's */
	len = not_head_msg(msg, FX_STRANGER, &fwd, FX_STRANGER, inner, ilen);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_source), 1);
	cr_assert_eq(fx_stat(RP_DP_reject_not_head), 2);
}

Test(xdp, ip_options_are_kept_and_vlan_frames_go_to_the_kernel)
{
	uint8_t pkt[256], opt[256];
	struct fx_out out;
	struct iphdr *ip;
	size_t len;

	hold_mapping(IPPROTO_UDP, 6000, 20095);

	/* an IPv4 header with 4 bytes of options (NOPs + EOL) */
	len = fx_udp(pkt, fx_mac_int, fx_mac_client, FX_CLIENT, 6000, FX_SERVER, 80, 16, false);
	memcpy(opt, pkt, ETH_IP_LEN);
	memset(opt + ETH_IP_LEN, 1, 3);
	opt[ETH_IP_LEN + 3] = 0;
	memcpy(opt + ETH_IP_LEN + 4, pkt + ETH_IP_LEN, len - ETH_IP_LEN);
	ip = (struct iphdr *)(opt + sizeof(struct ethhdr));
	ip->ihl = 6;
	ip->tot_len = htons(ntohs(ip->tot_len) + 4);
	ip->check = 0;
	{
		uint32_t s = 0;

		for (int i = 0; i < 12; i++)
			s += ntohs(((uint16_t *)ip)[i]);
		while (s >> 16)
			s = (s & 0xffff) + (s >> 16);
		ip->check = htons((uint16_t)~s);
	}
	fx_run(opt, len + 4, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	ip = (struct iphdr *)(out.data + sizeof(struct ethhdr));
	cr_assert_eq(ip->ihl, 6);
	cr_assert_eq(ip->saddr, htonl(FX_EXT));
	cr_assert_eq(((struct udphdr *)(out.data + ETH_IP_LEN + 4))->source, htons(20095));
	cr_assert(fx_csum_ok(out.data, out.len));
	cr_assert_eq(fx_stat(RP_DP_ip_options), 1);

	/* the same packet with an 802.1Q tag: translated, then the kernel forwards */
	memcpy(opt, pkt, 12);
	opt[12] = 0x81;
	opt[13] = 0x00;
	opt[14] = 0;
	opt[15] = 10;
	memcpy(opt + 16, pkt + 12, len - 12);
	fx_run(opt, len + 4, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_PASS);
	ip = (struct iphdr *)(out.data + 18);
	cr_assert_eq(ip->saddr, htonl(FX_EXT));
	cr_assert_eq(fx_stat(RP_DP_fwd_pass), 1);
}

TestSuite(xdp_chains, .init = fx_setup_chains, .fini = fx_teardown, .timeout = 30);

Test(xdp_chains, any_replica_speaks_for_its_own_chain_and_no_other)
{
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(20080), .dir = RP_NAT_FWD };
	struct rp_dp_session sess;
	struct rp_flow_key fwd;
	struct rp_dp_flow f;
	struct fx_out out;
	uint8_t msg[2048];
	uint32_t one = 1;
	size_t len;

	/* chain 1's session has an epoch of its own */
	cr_assert_eq(bpf_map_lookup_elem(fx.map_sessions, &one, &sess), 0);
	sess.epoch = FX_EPOCH + 1;
	cr_assert_eq(bpf_map_update_elem(fx.map_sessions, &one, &sess, 0), 0);
	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40800, FX_SERVER, 80);

	/* from chain 0's second replica: judged by chain 0's session, stale */
	len = store_msg(msg, FX_STORE_B, RP_MSG_GRANT, &fwd, 0, FX_EPOCH + 1, &st, sizeof(st),
			NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_stale_grant), 1);
	cr_assert(!fx_flow(&fwd, &f));

	/* a replica's address from another port, and an unknown address: not a store */
	((struct udphdr *)(msg + ETH_IP_LEN))->source = htons(FX_STORE_PORT + 1);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	len = store_msg(msg, FX_STRANGER, RP_MSG_GRANT, &fwd, 0, FX_EPOCH + 1, &st, sizeof(st),
			NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_bad_source), 2);
	cr_assert(!fx_flow(&fwd, &f));

	/* from chain 1's second replica (its tail): installed, owned by chain 1 */
	len = store_msg(msg, FX_CHAIN1_B, RP_MSG_GRANT, &fwd, 0, FX_EPOCH + 1, &st, sizeof(st),
			NULL, 0);
	fx_run(msg, len, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP, "no packet: consumed");
	cr_assert_eq(fx_stat(RP_DP_grant), 1);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.store, 1, "attributed to the sender's chain");
	cr_assert_eq(f.epoch, FX_EPOCH + 1);
}

Test(xdp_chains, a_chains_writes_go_to_its_own_head_and_follow_it)
{
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(20081), .dir = RP_NAT_FWD };
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .store = 1, .state_len = sizeof(st) };
	struct rp_msg_view req;
	struct rp_flow_key fwd;
	struct fx_out out;
	uint8_t fin[128];
	size_t len;

	fx_key(&fwd, IPPROTO_TCP, FX_CLIENT, 40801, FX_SERVER, 80);
	memcpy(f.state, &st, sizeof(st));
	fx_put_flow(&fwd, &f);
	len = fx_tcp(fin, fx_mac_int, fx_mac_client, FX_CLIENT, 40801, FX_SERVER, 80,
		     FX_FIN | FX_ACK, 0);
	fx_run(fin, len, fx.ifindex_int, &out);
	fx_decode_request_to(&out, FX_CHAIN1, &req);
	cr_assert_eq(req.seq, 1);

	/* chain 1's head moves: the flow's next write follows it */
	fx_set_head(1, FX_CHAIN1_B);
	fx_run(fin, len, fx.ifindex_int, &out);
	fx_decode_request_to(&out, FX_CHAIN1_B, &req);
	cr_assert_eq(req.type, RP_MSG_WRITE);
	cr_assert_eq(req.seq, 2);
	cr_assert_eq(fx_stat(RP_DP_write_req), 2);
}
