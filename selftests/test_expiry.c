// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Flow expiry in the data plane (docs/DATAPLANE.md, "Expiry"): rp_expire
 * gives an idle held flow up under its lock, packets of a flow being
 * deleted are dropped, the store's answers end the delete, a flow the store
 * deleted is mapped anew, entries holding nothing are reaped; packets move
 * a flow's seen time and note its TCP flags.  And the phase rule that picks
 * a timeout (lib/timeout.c), for every TCP phase.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <criterion/criterion.h>
#include <netinet/tcp.h>
#include <string.h>

#include "xdp_fixture.h"
#include "redplane.skel.h"
#include "redplane/timeout.h"

TestSuite(expiry, .init = fx_setup, .fini = fx_teardown, .timeout = 30);

#define PORT	(FX_PORT_BASE + 7)

static int expire(const struct rp_flow_key *k, uint32_t op, uint64_t idle_before,
		  struct rp_dp_expire *rec)
{
	LIBBPF_OPTS(bpf_test_run_opts, run);

	*rec = (struct rp_dp_expire){ .key = *k, .idle_before_ns = idle_before, .op = op };
	run.data_in = rec;
	run.data_size_in = sizeof(*rec);
	run.data_out = rec;
	run.data_size_out = sizeof(*rec);
	cr_assert_eq(bpf_prog_test_run_opts(bpf_program__fd(fx.skel->progs.rp_expire), &run), 0);
	return (int)run.retval;
}

/* A NAT connection, both keys held under FX_EPOCH, last seen at `seen`. */
static void nat_conn(struct rp_flow_key *fwd, struct rp_flow_key *rev, uint64_t seen)
{
	struct rp_nat_state fs = { .addr = htonl(FX_EXT), .port = htons(PORT), .dir = RP_NAT_FWD };
	struct rp_nat_state rs = { .addr = htonl(FX_CLIENT), .port = htons(40000),
				   .dir = RP_NAT_REV };
	struct rp_dp_flow f = { .epoch = FX_EPOCH, .gen = 3, .seq = 2, .acked = 2,
				.state_len = sizeof(fs), .seen_ns = seen };

	fx_key(fwd, IPPROTO_TCP, FX_CLIENT, 40000, FX_SERVER, 80);
	fx_key(rev, IPPROTO_TCP, FX_SERVER, 80, FX_EXT, PORT);
	memcpy(f.state, &fs, sizeof(fs));
	fx_put_flow(fwd, &f);
	memcpy(f.state, &rs, sizeof(rs));
	fx_put_flow(rev, &f);
}

static size_t outbound(uint8_t *buf, uint8_t flags)
{
	return fx_tcp(buf, fx_mac_int, fx_mac_client, FX_CLIENT, 40000, FX_SERVER, 80, flags, 10);
}

Test(expiry, an_idle_flow_is_given_up_deleted_by_the_store_then_mapped_anew)
{
	struct rp_flow_key fwd, rev;
	struct rp_dp_expire rec;
	struct rp_msg_view req;
	struct rp_nat_state st;
	uint8_t pkt[128], msg[512];
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, mlen;

	nat_conn(&fwd, &rev, 1000);
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_GIVE_UP, 2000, &rec), RP_EXPIRE_GAVE_UP);
	cr_assert_eq(rec.epoch, FX_EPOCH);
	cr_assert_eq(rec.gen, 3);
	cr_assert_eq(rec.seq, 2);
	cr_assert_eq(rec.store, 0);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, 0, "given up");
	cr_assert_eq(f.gone_epoch, FX_EPOCH);
	cr_assert_eq(f.flags, RP_DPF_EXPIRING);
	cr_assert_neq(f.until_ns, 0);
	cr_assert_eq(fx_stat(RP_DP_expired), 1);
	/* asked again while the store has not answered: the same holding */
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_GIVE_UP, 0, &rec), RP_EXPIRE_PENDING);
	cr_assert_eq(rec.gen, 3);

	/* a packet while the delete is under way: dropped, the store not asked */
	len = outbound(pkt, FX_ACK);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_expiring), 1);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 0);

	/* an EXPIRE_ACK of another holding changes nothing; of this one, deleted */
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_EXPIRE_ACK, &fwd, 2, NULL, 0, 0, NULL, 0);
	((struct rp_msg *)(msg + 42))->hdr.gen = htons(2);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(fx_stat(RP_DP_drop_stale_expire_ack), 1);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, RP_DPF_EXPIRING);
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_EXPIRE_ACK, &fwd, 2, NULL, 0, 0, NULL, 0);
	((struct rp_msg *)(msg + 42))->hdr.gen = htons(3);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_expire_acked), 1);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, RP_DPF_EXPIRED);

	/* the next packet is a new connection: a new mapping, naming the holding given up */
	len = outbound(pkt, FX_SYN);
	fx_run(pkt, len, fx.ifindex_int, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(rp_key_eq(&req.key, &fwd));
	cr_assert_eq(req.gen, 3, "a record made anew starts after it");
	cr_assert(req.flags & RP_F_STATE, "a proposal, not a lookup");
	memcpy(&st, req.state, sizeof(st));
	cr_assert_eq(st.dir, RP_NAT_FWD);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, RP_DPF_REV_PENDING, "no longer expired; its reverse key to follow");
	cr_assert_eq(fx_stat(RP_DP_nat_new), 1);
}

Test(expiry, a_flow_seen_since_or_with_a_write_unacked_is_kept)
{
	struct rp_flow_key fwd, rev;
	struct rp_dp_expire rec;
	struct rp_dp_flow f;

	nat_conn(&fwd, &rev, 5000);
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_GIVE_UP, 4999, &rec), RP_EXPIRE_KEPT);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH, "a packet came after the cutoff");

	f.seq = 3;	/* a write the store has not acknowledged */
	f.seen_ns = 1;
	fx_put_flow(&fwd, &f);
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_GIVE_UP, 5000, &rec), RP_EXPIRE_KEPT);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.epoch, FX_EPOCH, "its write must reach the store first");

	f.epoch = 0;	/* not held: nothing to give up */
	f.seq = f.acked;
	fx_put_flow(&fwd, &f);
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_GIVE_UP, 5000, &rec), RP_EXPIRE_KEPT);
	cr_assert_eq(fx_stat(RP_DP_expired), 0);
}

Test(expiry, rejects_end_a_delete_not_owner_without_freeing_it)
{
	struct rp_flow_key fwd, rev;
	struct rp_dp_expire rec;
	uint8_t msg[512];
	struct rp_dp_flow f;
	struct fx_out out;
	size_t mlen;

	nat_conn(&fwd, &rev, 1000);
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_GIVE_UP, 2000, &rec), RP_EXPIRE_GAVE_UP);
	cr_assert_eq(expire(&rev, RP_EXPIRE_OP_GIVE_UP, 2000, &rec), RP_EXPIRE_GAVE_UP);
	/* not_owner: another switch has it, it is not this one's to delete */
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_REJECT, &fwd, 0, NULL, 0,
		      RP_REJ_NOT_OWNER, NULL, 0);
	((struct rp_msg *)(msg + 42))->hdr.gen = htons(3);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_eq(f.flags, 0, "neither being deleted nor gone from the store");
	/* no_flow: the store has none: as deleted */
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_REJECT, &rev, 0, NULL, 0,
		      RP_REJ_NO_FLOW, NULL, 0);
	((struct rp_msg *)(msg + 42))->hdr.gen = htons(3);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert(fx_flow(&rev, &f));
	cr_assert_eq(f.flags, RP_DPF_EXPIRED);
	cr_assert_eq(expire(&rev, RP_EXPIRE_OP_GIVE_UP, 0, &rec), RP_EXPIRE_KEPT,
		     "nothing more to send");
}

Test(expiry, reap_deletes_an_entry_holding_nothing_and_keeps_one_being_deleted)
{
	struct rp_flow_key fwd, rev;
	struct rp_dp_expire rec;
	struct rp_dp_flow f;

	nat_conn(&fwd, &rev, 1000);
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_REAP, 2000, &rec), RP_EXPIRE_KEPT, "held");
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_GIVE_UP, 2000, &rec), RP_EXPIRE_GAVE_UP);
	cr_assert_eq(expire(&fwd, RP_EXPIRE_OP_REAP, ~0ull, &rec), RP_EXPIRE_KEPT,
		     "its delete is under way");

	/* a holding given up (revoked) long ago: deleted; one given up lately: kept */
	cr_assert(fx_flow(&rev, &f));
	f.epoch = 0;
	f.gone_epoch = FX_EPOCH;
	f.until_ns = 1500;
	fx_put_flow(&rev, &f);
	cr_assert_eq(expire(&rev, RP_EXPIRE_OP_REAP, 1499, &rec), RP_EXPIRE_KEPT);
	cr_assert_eq(expire(&rev, RP_EXPIRE_OP_REAP, 1500, &rec), RP_EXPIRE_REAPED);
	cr_assert(!fx_flow(&rev, &f));
}

Test(expiry, packets_move_the_seen_time_and_note_their_tcp_flags)
{
	struct rp_flow_key fwd, rev;
	uint8_t pkt[128];
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len;

	nat_conn(&fwd, &rev, 0);
	len = outbound(pkt, FX_ACK);
	fx_run(pkt, len, fx.ifindex_int, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert(fx_flow(&fwd, &f));
	cr_assert_gt(f.seen_ns, 0, "the fast path noted the packet");
	cr_assert_eq(f.tcp_seen, FX_ACK);
	len = fx_tcp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, PORT, FX_ACK | FX_PSH,
		     10);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_REDIRECT);
	cr_assert(fx_flow(&rev, &f));
	cr_assert_eq(f.tcp_seen, FX_ACK | FX_PSH, "each key its own direction's flags");
}

/* The timeout each TCP phase gets, as Linux's tracker names them. */
Test(timeout, every_tcp_phase_picks_its_timeout)
{
	static const struct {
		uint8_t opener, other;
		int want;
	} cases[] = {
		{ TH_SYN, 0, RP_TO_tcp_syn_sent },
		{ TH_SYN, TH_SYN, RP_TO_tcp_syn_recv },
		{ TH_SYN, TH_SYN | TH_ACK, RP_TO_tcp_established },
		{ TH_SYN | TH_ACK, TH_SYN | TH_ACK, RP_TO_tcp_established },
		{ TH_ACK, 0, RP_TO_tcp_established },	/* picked up midway */
		{ 0, TH_ACK, RP_TO_tcp_established },
		{ 0, 0, RP_TO_tcp_established },
		{ TH_ACK | TH_FIN, TH_ACK, RP_TO_tcp_fin_wait },
		{ TH_ACK, TH_ACK | TH_FIN, RP_TO_tcp_close_wait },
		{ TH_ACK | TH_FIN, TH_ACK | TH_FIN, RP_TO_tcp_time_wait },
		{ TH_ACK | TH_RST, TH_ACK, RP_TO_tcp_close },
		{ TH_SYN, TH_RST, RP_TO_tcp_close },
		{ TH_ACK | TH_FIN, TH_ACK | TH_FIN | TH_RST, RP_TO_tcp_close },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(rp_tcp_timeout(cases[i].opener, cases[i].other), cases[i].want,
			     "case %zu: %s, expected %s", i,
			     rp_timeout_name(rp_tcp_timeout(cases[i].opener, cases[i].other)),
			     rp_timeout_name(cases[i].want));
	cr_assert_eq(rp_udp_timeout(IPPROTO_UDP, false), RP_TO_udp);
	cr_assert_eq(rp_udp_timeout(IPPROTO_UDP, true), RP_TO_udp_stream);
	cr_assert_eq(rp_udp_timeout(IPPROTO_ICMP, true), RP_TO_icmp);
}

Test(timeout, defaults_are_linux_conntracks_and_the_option_sets_each)
{
	uint64_t ns[__RP_TO_MAX];

	rp_timeouts_default(ns);
	cr_assert_eq(ns[RP_TO_tcp_established], 432000ull * 1000000000ull);
	cr_assert_eq(ns[RP_TO_tcp_time_wait], 120ull * 1000000000ull);
	cr_assert_eq(ns[RP_TO_udp], 30ull * 1000000000ull);
	cr_assert_eq(ns[RP_TO_udp_stream], 120ull * 1000000000ull);
	cr_assert_eq(rp_timeouts_parse("test", "tcp_time_wait=0.25,udp=2", ns), 0);
	cr_assert_eq(ns[RP_TO_tcp_time_wait], 250000000ull);
	cr_assert_eq(ns[RP_TO_udp], 2000000000ull);
	cr_assert_eq(ns[RP_TO_tcp_established], 432000ull * 1000000000ull, "the rest kept");
	cr_assert_lt(rp_timeouts_parse("test", "tcp_bogus=1", ns), 0);
	cr_assert_lt(rp_timeouts_parse("test", "udp", ns), 0);
	cr_assert_lt(rp_timeouts_parse("test", "udp=-1", ns), 0);
	cr_assert_lt(rp_timeouts_parse("test", "udp=0", ns), 0);
	cr_assert_lt(rp_timeouts_parse("test", "udp=1x", ns), 0);
}

Test(expiry, return_traffic_the_store_lacks_is_not_asked_about_again)
{
	struct rp_flow_key rev;
	struct rp_msg_view req;
	uint8_t pkt[128], msg[512];
	struct rp_dp_flow f;
	struct fx_out out;
	size_t len, mlen;

	len = fx_udp(pkt, fx_mac_ext, fx_mac_server, FX_SERVER, 53, FX_EXT, PORT, 10, true);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	fx_decode_request(&out, &req);
	cr_assert_eq(req.type, RP_MSG_LEASE_REQ);
	cr_assert(!(req.flags & RP_F_STATE), "a lookup");
	fx_key(&rev, IPPROTO_UDP, FX_SERVER, 53, FX_EXT, PORT);
	mlen = fx_msg(msg, FX_STORE, RP_APP_NAT, RP_MSG_REJECT, &rev, 0, NULL, 0, RP_REJ_NO_FLOW,
		      pkt, len);
	fx_run(msg, mlen, fx.ifindex_sto, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert(fx_flow(&rev, &f));
	cr_assert_eq(f.flags, RP_DPF_NO_FLOW);
	fx_run(pkt, len, fx.ifindex_ext, &out);
	cr_assert_eq(out.verdict, XDP_DROP);
	cr_assert_eq(fx_stat(RP_DP_drop_negative), 1);
	cr_assert_eq(fx_stat(RP_DP_lease_req), 1);
}
