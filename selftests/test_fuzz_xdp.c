// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The data plane fed random and mutated frames through
 * bpf_prog_test_run_opts (the NAT, one chain of two replicas): valid frames
 * of every kind with bits flipped, cut short, their length fields changed;
 * store messages from a configured replica with random fields; random bytes.
 * A seeded PRNG (RP_FUZZ_SEED overrides the seed) makes a failure replay.
 * Whatever comes, the program returns a verdict, counts every frame, keeps
 * no lease of an epoch that is not the session's, and leaves the flows no
 * message was about exactly as they were.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <criterion/criterion.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <stdlib.h>
#include <string.h>

#include "xdp_fixture.h"

#define FRAMES		30000
#define LIVE_FLOWS	8
#define SENTINELS	4
#define HDRS		(sizeof(struct ethhdr) + sizeof(struct iphdr) + sizeof(struct udphdr))

TestSuite(xdp_fuzz, .init = fx_setup, .fini = fx_teardown, .timeout = 120);

static uint64_t rng;

/* xorshift64*: fast, and the same sequence for the same seed */
static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint32_t below(uint32_t n)
{
	return (uint32_t)(rnd() % n);
}

/*
 * The keys messages may be about: a client's connections (ports 40000 + i)
 * and their reverse keys at the NAT's ports.  Sentinels are held flows far
 * from them (other addresses, ports a few bit flips never reach).
 */
static void live_key(struct rp_flow_key *k, uint32_t i)
{
	if (i % 2)
		fx_key(k, i % 4 == 1 ? IPPROTO_TCP : IPPROTO_UDP, FX_SERVER, 80, FX_EXT,
		       (uint16_t)(FX_PORT_BASE + i / 2));
	else
		fx_key(k, i % 4 == 0 ? IPPROTO_TCP : IPPROTO_UDP, FX_CLIENT,
		       (uint16_t)(40000 + i / 2), FX_SERVER, 80);
}

static void sentinel_key(struct rp_flow_key *k, uint32_t i)
{
	fx_key(k, IPPROTO_TCP, 0x0a01004du + i, 0x5a5a, 0xc6336442u, 0x2323);
}

static struct rp_dp_flow sentinel_flow(uint32_t i)
{
	struct rp_dp_flow f = {
		.epoch = FX_EPOCH,
		.seq = 10 + i,
		.acked = 9 + i,
		.gen = (uint16_t)(3 + i),
		.since_ns = 123456789,
		.state_len = sizeof(struct rp_nat_state),
	};
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons((uint16_t)(61000 + i)),
				   .dir = RP_NAT_FWD };

	memcpy(f.state, &st, sizeof(st));
	return f;
}

/* A valid frame of the kind k (frames 0-7 from the hosts, 8-15 from a store). */
static size_t base_frame(uint8_t *buf, uint32_t k)
{
	uint32_t i = below(LIVE_FLOWS / 2);
	uint16_t cport = (uint16_t)(40000 + i), eport = (uint16_t)(FX_PORT_BASE + i);
	struct rp_nat_state st = { .addr = htonl(FX_EXT), .port = htons(eport), .dir = RP_NAT_FWD };
	uint8_t inner[256];
	size_t inner_len = 0;
	struct rp_flow_key key;
	static const uint8_t flags[] = { FX_SYN, FX_ACK, FX_ACK | FX_PSH, FX_FIN | FX_ACK, FX_RST };

	live_key(&key, below(LIVE_FLOWS));
	if (k >= 8 && below(2))
		inner_len = fx_tcp(inner, fx_mac_int, fx_mac_client, FX_CLIENT, cport, FX_SERVER,
				   80, flags[below(5)], below(40));
	switch (k) {
	case 0:
	case 1:
		return fx_tcp(buf, fx_mac_int, fx_mac_client, FX_CLIENT, cport, FX_SERVER, 80,
			      flags[below(5)], below(64));
	case 2:
		return fx_udp(buf, fx_mac_int, fx_mac_client, FX_CLIENT, cport, FX_SERVER, 80,
			      below(64), below(2));
	case 3:
		return fx_tcp(buf, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, eport,
			      flags[below(5)], below(64));
	case 4:
		return fx_udp(buf, fx_mac_ext, fx_mac_server, FX_SERVER, 80, FX_EXT, eport,
			      below(64), true);
	case 5: {
		/* not IPv4: ARP */
		size_t len = fx_udp(buf, fx_mac_int, fx_mac_client, FX_CLIENT, cport, FX_SERVER,
				    80, 10, false);

		buf[12] = 0x08;
		buf[13] = 0x06;
		return len;
	}
	case 6: {
		/* a fragment */
		size_t len = fx_udp(buf, fx_mac_int, fx_mac_client, FX_CLIENT, cport, FX_SERVER,
				    80, 20, true);

		((struct iphdr *)(buf + sizeof(struct ethhdr)))->frag_off = htons(0x2000);
		return len;
	}
	case 7:
		/* to the switch's protocol port, but from a stranger */
		return fx_msg(buf, FX_STRANGER, RP_APP_NAT, RP_MSG_GRANT, &key, 0, &st,
			      sizeof(st), 0, inner, inner_len);
	case 8:
	case 9:
		return fx_msg(buf, FX_STORE, RP_APP_NAT, k == 8 ? RP_MSG_GRANT : RP_MSG_MIGRATE,
			      &key, below(4), &st, sizeof(st), 0, inner, inner_len);
	case 10:
		/* half of them the ACK of a write in flight, as the store would send it */
		for (uint32_t j = 0; j < LIVE_FLOWS && below(2); j++) {
			struct rp_msg_view v = { .type = RP_MSG_ACK, .app_id = RP_APP_NAT,
						 .switch_id = FX_SWITCH_ID, .lease_ms = 200 };
			struct rp_dp_flow f;

			live_key(&v.key, j);
			if (!fx_flow(&v.key, &f) || !f.epoch || f.seq == f.acked)
				continue;
			v.seq = f.seq;
			v.epoch = f.epoch;
			v.gen = f.gen;
			return fx_store_msg(buf, FX_STORE_B, &v);
		}
		return fx_msg(buf, FX_STORE_B, RP_APP_NAT, RP_MSG_ACK, &key, below(8), NULL, 0, 0,
			      inner, inner_len);
	case 11:
		return fx_msg(buf, FX_STORE, RP_APP_NAT, RP_MSG_REVOKE, &key, below(8), NULL, 0, 0,
			      NULL, 0);
	case 12:
		return fx_msg(buf, FX_STORE_B, RP_APP_NAT, RP_MSG_REJECT, &key, below(8), NULL, 0,
			      (uint8_t)(1 + below(__RP_REJ_MAX - 1)), inner, inner_len);
	default: {
		struct rp_msg_view v = {
			.type = RP_MSG_HEARTBEAT_ACK,
			.switch_id = FX_SWITCH_ID,
			.seq = (uint32_t)rnd(),
			.epoch = FX_EPOCH,
			.lease_ms = 200,
		};

		return fx_store_msg(buf, FX_STORE, &v);
	}
	}
}

/* Bit flips, a cut, a length field changed, random bytes written. */
static size_t mutate(uint8_t *buf, size_t len, size_t cap)
{
	static const size_t len_fields[] = {
		sizeof(struct ethhdr) + 2,			/* IPv4 tot_len */
		sizeof(struct ethhdr) + sizeof(struct iphdr) + 4,	/* UDP len */
		HDRS + 20,					/* rp pkt_len */
		HDRS + 7,					/* rp state_len */
		sizeof(struct ethhdr),				/* version and ihl */
	};
	uint32_t n = 1 + below(3);

	for (uint32_t m = 0; m < n && len; m++) {
		switch (below(5)) {
		case 0:
			buf[below((uint32_t)len)] ^= (uint8_t)(1u << below(8));
			break;
		case 1:
			len = below((uint32_t)len + 1);
			break;
		case 2: {
			size_t off = len_fields[below(5)];

			if (off + 1 < len) {
				buf[off] = (uint8_t)rnd();
				if (below(2))
					buf[off + 1] = (uint8_t)rnd();
			}
			break;
		}
		case 3:
			buf[below((uint32_t)len)] = (uint8_t)rnd();
			break;
		default: {
			/* grown with random bytes */
			size_t more = below(64);

			if (len + more > cap)
				more = cap - len;
			for (size_t i = 0; i < more; i++)
				buf[len + i] = (uint8_t)rnd();
			len += more;
		}
		}
	}
	return len;
}

/* A store message from a replica with random fields, about a live key or any. */
static size_t random_msg(uint8_t *buf)
{
	static const uint8_t types[] = { RP_MSG_GRANT, RP_MSG_MIGRATE, RP_MSG_ACK, RP_MSG_REVOKE,
					 RP_MSG_REJECT, RP_MSG_HEARTBEAT_ACK };
	struct rp_msg *m = (struct rp_msg *)(buf + HDRS);
	size_t pkt_len = 0;

	memset(m, 0, sizeof(*m));
	m->hdr.version = below(16) ? RP_VERSION : (uint8_t)rnd();
	m->hdr.type = below(4) ? types[below(sizeof(types))] : (uint8_t)below(__RP_MSG_MAX + 2);
	m->hdr.app_id = below(4) ? RP_APP_NAT : (uint8_t)below(8);
	m->hdr.flags = below(2) ? RP_F_STATE : 0;
	m->hdr.switch_id = htons(below(8) ? FX_SWITCH_ID : (uint16_t)rnd());
	m->hdr.reason = (uint8_t)below(__RP_REJ_MAX + 2);
	m->hdr.state_len = below(4) ? sizeof(struct rp_nat_state) : (uint8_t)below(80);
	m->hdr.seq = htonl(below(2) ? below(16) : (uint32_t)rnd());
	m->hdr.epoch = htonl(below(4) ? FX_EPOCH : (below(2) ? FX_EPOCH + 1 : (uint32_t)rnd()));
	m->hdr.lease_ms = htonl((uint32_t)rnd());
	m->hdr.gen = htons(below(2) ? (uint16_t)below(8) : (uint16_t)rnd());
	if (below(8)) {
		live_key(&m->key, below(LIVE_FLOWS));
	} else {
		for (size_t i = 0; i < sizeof(m->key); i++)
			((uint8_t *)&m->key)[i] = (uint8_t)rnd();
		/* never a sentinel's: no valid message is about them */
		m->key.saddr.v4 = htonl(0x0a010002);
	}
	for (size_t i = 0; i < RP_STATE_MAX; i++)
		m->state[i] = below(2) ? 0 : (uint8_t)rnd();
	if (below(2))
		pkt_len = fx_tcp(buf + HDRS + RP_MSG_LEN, fx_mac_int, fx_mac_client, FX_CLIENT,
				 (uint16_t)(40000 + below(LIVE_FLOWS / 2)), FX_SERVER, 80,
				 FX_ACK, below(32));
	m->hdr.pkt_len = htons(below(8) ? (uint16_t)pkt_len : (uint16_t)rnd());
	if (pkt_len)
		m->hdr.flags |= RP_F_PKT;
	if (!below(8))
		m->hdr.flags = (uint8_t)rnd();
	return fx_store_raw(buf, below(2) ? FX_STORE : FX_STORE_B, RP_MSG_LEN + pkt_len);
}

static size_t random_bytes(uint8_t *buf)
{
	size_t len = below(160);

	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)rnd();
	return len;
}

/* Every message the store handler took ends in exactly one of these. */
static const enum rp_dp_stat store_outcomes[] = {
	RP_DP_drop_malformed_msg, RP_DP_drop_bad_source, RP_DP_hb_ack_pass,
	RP_DP_drop_stale_grant, RP_DP_regrant, RP_DP_drop_table_full, RP_DP_grant,
	RP_DP_migrate, RP_DP_ack, RP_DP_drop_stale_ack, RP_DP_drop_ack_ahead,
	RP_DP_drop_ack_not_owner, RP_DP_drop_bad_mac, RP_DP_reject, RP_DP_revoke,
	RP_DP_revoke_unknown, RP_DP_expire_acked, RP_DP_drop_stale_expire_ack,
};

static void check_accounting(uint64_t frames)
{
	uint64_t outcomes = 0, installs;

	for (size_t i = 0; i < sizeof(store_outcomes) / sizeof(store_outcomes[0]); i++)
		outcomes += fx_stat(store_outcomes[i]);
	cr_assert_eq(fx_stat(RP_DP_rx_store), outcomes,
		     "every store message has one outcome: %lu taken, %lu outcomes",
		     (unsigned long)fx_stat(RP_DP_rx_store), (unsigned long)outcomes);
	/* a frame runs the root program again only when a grant releases its packet */
	installs = fx_stat(RP_DP_grant) + fx_stat(RP_DP_migrate) + fx_stat(RP_DP_regrant);
	cr_assert_geq(fx_stat(RP_DP_rx_packets), frames);
	cr_assert_leq(fx_stat(RP_DP_rx_packets), frames + installs);
}

/* No lease but of the session's epoch; and the map's records are sane. */
static void check_flows(void)
{
	struct rp_flow_key key, next;
	struct rp_dp_flow f;
	void *prev = NULL;
	unsigned int n = 0;

	while (!bpf_map_get_next_key(fx.map_flows, prev, &next)) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem_flags(fx.map_flows, &key, &f, BPF_F_LOCK))
			continue;	/* gone meanwhile: nothing runs meanwhile, though */
		cr_assert(f.epoch == 0 || f.epoch == FX_EPOCH, "a lease of epoch %u", f.epoch);
		cr_assert_eq(f.store, 0, "a flow of chain %u, of one", f.store);
		cr_assert_leq(f.state_len, RP_STATE_MAX);
		n++;
	}
	cr_assert_gt(n, SENTINELS);
}

Test(xdp_fuzz, random_and_mutated_frames_never_corrupt_state)
{
	static const uint32_t verdicts[] = { XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT };
	const char *seed = getenv("RP_FUZZ_SEED");
	struct rp_flow_key keys[SENTINELS];
	uint8_t buf[2048];
	struct fx_out out;

	rng = seed ? strtoull(seed, NULL, 0) : 0x5eedf00dcafe1234ull;
	if (!rng)
		rng = 1;
	cr_log_info("seed 0x%llx (RP_FUZZ_SEED)", (unsigned long long)rng);
	for (uint32_t i = 0; i < SENTINELS; i++) {
		struct rp_dp_flow f = sentinel_flow(i);

		sentinel_key(&keys[i], i);
		fx_put_flow(&keys[i], &f);
	}

	for (uint64_t n = 1; n <= FRAMES; n++) {
		uint64_t rx = fx_stat(RP_DP_rx_packets), rx_store = fx_stat(RP_DP_rx_store);
		uint32_t pick = below(10);
		size_t len;
		bool ok = false;

		if (pick < 4)
			len = mutate(buf, base_frame(buf, below(16)), sizeof(buf));
		else if (pick < 8)
			len = random_msg(buf);
		else if (pick < 9)
			len = random_bytes(buf);
		else
			len = base_frame(buf, below(16));
		/* test_run refuses less than an Ethernet header, as no NIC delivers it */
		for (; len < ETH_HLEN; len++)
			buf[len] = (uint8_t)rnd();
		fx_run(buf, len, below(4) ? fx.ifindex_sto : fx.ifindex_int, &out);

		for (size_t v = 0; v < sizeof(verdicts) / sizeof(verdicts[0]); v++)
			ok |= out.verdict == verdicts[v];
		cr_assert(ok, "frame %lu: verdict %u", (unsigned long)n, out.verdict);
		cr_assert_gt(fx_stat(RP_DP_rx_packets), rx, "frame %lu not counted", (unsigned long)n);
		cr_assert_leq(fx_stat(RP_DP_rx_store) - rx_store, fx_stat(RP_DP_rx_packets) - rx);
		if (n % 2000 == 0) {
			check_accounting(n);
			check_flows();
		}
	}
	check_accounting(FRAMES);
	check_flows();

	for (uint32_t i = 0; i < SENTINELS; i++) {
		struct rp_dp_flow want = sentinel_flow(i), have;

		want.key = keys[i];
		cr_assert(fx_flow(&keys[i], &have), "sentinel %u still there", i);
		cr_assert_arr_eq(&have, &want, sizeof(want), "sentinel %u unchanged", i);
	}
	/* the run reached what it is about */
	cr_assert_gt(fx_stat(RP_DP_grant) + fx_stat(RP_DP_migrate), 300);
	cr_assert_gt(fx_stat(RP_DP_ack), 0);
	cr_assert_gt(fx_stat(RP_DP_revoke), 20);
	cr_assert_gt(fx_stat(RP_DP_reject_lost_lease), 0);
	cr_assert_gt(fx_stat(RP_DP_drop_malformed_msg), 1000);
	cr_assert_gt(fx_stat(RP_DP_lease_req) + fx_stat(RP_DP_write_req), 1000);
}
