// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The codec: round trips, and every rule a receiver rejects a datagram by. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "redplane/addr.h"
#include "rp_test.h"

static const uint8_t pkt[60] = { 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0xaa, 0xbb };
static const uint8_t state[RP_STATE_MAX] = { 1, 2, 3, 4, 5, 6, 7, 8, [63] = 0x3f };

static struct rp_msg_view full_msg(uint8_t type)
{
	struct rp_msg_view v = rp_test_msg(type, 0x1234, 77, 0xdeadbeef);

	v.seq = 0xfffffffe;
	v.lease_ms = 150;
	v.gen = 0xbeef;
	/* a delete and its answer name a flow and a holding, nothing more */
	if (type == RP_MSG_HEARTBEAT || type == RP_MSG_HEARTBEAT_ACK || type == RP_MSG_EXPIRE ||
	    type == RP_MSG_EXPIRE_ACK)
		return v;
	v.flags = RP_F_STATE | RP_F_PKT;
	v.state = state;
	v.state_len = sizeof(state);
	v.pkt = pkt;
	v.pkt_len = sizeof(pkt);
	if (type == RP_MSG_REJECT)
		v.reason = RP_REJ_STALE;
	return v;
}

Test(codec, round_trip_every_type)
{
	for (uint8_t t = 1; t < __RP_MSG_MAX; t++) {
		struct rp_msg_view in = full_msg(t), out;
		uint8_t buf[RP_DGRAM_MAX];
		size_t len = rp_test_encode(buf, &in);

		cr_assert_eq(len, RP_MSG_LEN + in.pkt_len, "%s length", rp_msg_type_name(t));
		cr_assert_eq(rp_msg_decode(buf, len, &out), 0, "%s decodes", rp_msg_type_name(t));
		cr_assert_eq(out.type, t);
		cr_assert_eq(out.app_id, in.app_id);
		cr_assert_eq(out.flags, in.flags);
		cr_assert_eq(out.reason, in.reason);
		cr_assert_eq(out.switch_id, 0x1234);
		cr_assert_eq(out.seq, 0xfffffffe);
		cr_assert_eq(out.epoch, 0xdeadbeef);
		cr_assert_eq(out.lease_ms, 150);
		cr_assert_eq(out.gen, 0xbeef);
		cr_assert_eq(out.state_len, in.state_len);
		cr_assert_eq(out.pkt_len, in.pkt_len);
		cr_assert(rp_key_eq(&out.key, &in.key));
		cr_assert_arr_eq(out.state, in.state ? in.state : out.state, in.state_len);
		cr_assert_arr_eq(out.pkt, in.pkt ? in.pkt : out.pkt, in.pkt_len);
	}
}

Test(codec, wire_layout_is_network_order)
{
	struct rp_msg_view v = full_msg(RP_MSG_WRITE);
	uint8_t buf[RP_DGRAM_MAX];

	rp_test_encode(buf, &v);
	cr_assert_eq(buf[0], RP_VERSION);
	cr_assert_eq(buf[1], RP_MSG_WRITE);
	cr_assert_eq(buf[2], RP_APP_NAT);
	cr_assert_eq(buf[4], 0x12);
	cr_assert_eq(buf[5], 0x34);
	cr_assert_eq(buf[7], RP_STATE_MAX);
	cr_assert_eq(buf[8], 0xff);
	cr_assert_eq(buf[11], 0xfe);
	cr_assert_eq(buf[12], 0xde);
	cr_assert_eq(buf[20], 0);
	cr_assert_eq(buf[21], sizeof(pkt));
	cr_assert_eq(buf[offsetof(struct rp_msg, key)], RP_AF_INET);
	cr_assert_eq(buf[offsetof(struct rp_msg, state) + 63], 0x3f);
	cr_assert_eq(buf[RP_MSG_LEN + 6], 0xaa);
}

Test(codec, ipv6_key_round_trips)
{
	struct rp_msg_view in = full_msg(RP_MSG_LEASE_REQ), out;
	uint8_t buf[RP_DGRAM_MAX];

	memset(&in.key, 0, sizeof(in.key));
	in.key.family = RP_AF_INET6;
	in.key.proto = IPPROTO_UDP;
	memset(in.key.saddr.v6, 0x20, 16);
	memset(in.key.daddr.v6, 0xfe, 16);
	cr_assert_eq(rp_msg_decode(buf, rp_test_encode(buf, &in), &out), 0);
	cr_assert(rp_key_eq(&in.key, &out.key));
}

/* A valid datagram, then one change that breaks one rule. */
struct malformed {
	const char *name;
	uint8_t type;
	void (*mutate)(uint8_t *buf, size_t *len);
	int err;
};

#define HDR(buf) ((struct rp_hdr *)(buf))
#define KEY(buf) ((struct rp_flow_key *)((buf) + offsetof(struct rp_msg, key)))

static void m_trunc_hdr(uint8_t *b, size_t *len) { (void)b; *len = 10; }
static void m_trunc_msg(uint8_t *b, size_t *len) { (void)b; *len = RP_MSG_LEN - 1; }
static void m_empty(uint8_t *b, size_t *len) { (void)b; *len = 0; }
static void m_trunc_pkt(uint8_t *b, size_t *len) { (void)b; *len -= 1; }
static void m_trailing(uint8_t *b, size_t *len) { b[*len] = 0; *len += 1; }
static void m_oversized(uint8_t *b, size_t *len) { (void)b; *len = RP_DGRAM_MAX + 1; }
static void m_pkt_too_big(uint8_t *b, size_t *len)
{
	HDR(b)->pkt_len = htons(RP_PKT_MAX + 1);
	*len = RP_DGRAM_MAX;
}
static void m_version0(uint8_t *b, size_t *len) { (void)len; HDR(b)->version = 0; }
static void m_version_next(uint8_t *b, size_t *len) { (void)len; HDR(b)->version = RP_VERSION + 1; }
static void m_type0(uint8_t *b, size_t *len) { (void)len; HDR(b)->type = 0; }
static void m_type_high(uint8_t *b, size_t *len) { (void)len; HDR(b)->type = __RP_MSG_MAX; }
static void m_type_ff(uint8_t *b, size_t *len) { (void)len; HDR(b)->type = 0xff; }
static void m_app0(uint8_t *b, size_t *len) { (void)len; HDR(b)->app_id = 0; }
static void m_app_high(uint8_t *b, size_t *len) { (void)len; HDR(b)->app_id = __RP_APP_MAX; }
static void m_hb_app(uint8_t *b, size_t *len) { (void)len; HDR(b)->app_id = RP_APP_NAT; }
static void m_flag_unknown(uint8_t *b, size_t *len) { (void)len; HDR(b)->flags |= 0x80; }
static void m_flag_no_pkt(uint8_t *b, size_t *len) { (void)len; HDR(b)->flags &= ~RP_F_PKT; }
static void m_flag_no_state(uint8_t *b, size_t *len) { (void)len; HDR(b)->flags &= ~RP_F_STATE; }
static void m_write_no_state(uint8_t *b, size_t *len)
{
	(void)len;
	HDR(b)->flags &= ~RP_F_STATE;
	HDR(b)->state_len = 0;
}
static void m_pkt_flag_no_pkt(uint8_t *b, size_t *len)
{
	HDR(b)->pkt_len = 0;
	*len = RP_MSG_LEN;
}
static void m_hb_flags(uint8_t *b, size_t *len) { (void)len; HDR(b)->flags = RP_F_STATE; }
static void m_flag_state(uint8_t *b, size_t *len) { (void)len; HDR(b)->flags |= RP_F_STATE; }
static void m_with_state(uint8_t *b, size_t *len)
{
	(void)len;
	HDR(b)->flags |= RP_F_STATE;
	HDR(b)->state_len = 4;
}
static void m_with_pkt(uint8_t *b, size_t *len)
{
	HDR(b)->flags |= RP_F_PKT;
	HDR(b)->pkt_len = htons(8);
	memset(b + *len, 0xab, 8);
	*len += 8;
}
static void m_state_len(uint8_t *b, size_t *len) { (void)len; HDR(b)->state_len = RP_STATE_MAX + 1; }
static void m_switch0(uint8_t *b, size_t *len) { (void)len; HDR(b)->switch_id = 0; }
static void m_reason(uint8_t *b, size_t *len) { (void)len; HDR(b)->reason = RP_REJ_BUSY; }
static void m_reason0(uint8_t *b, size_t *len) { (void)len; HDR(b)->reason = 0; }
static void m_reason_high(uint8_t *b, size_t *len) { (void)len; HDR(b)->reason = __RP_REJ_MAX; }
static void m_family(uint8_t *b, size_t *len) { (void)len; KEY(b)->family = 5; }
static void m_pad(uint8_t *b, size_t *len) { (void)len; KEY(b)->pad = 1; }
static void m_v4_tail(uint8_t *b, size_t *len) { (void)len; KEY(b)->daddr.v6[15] = 1; }
static void m_hb_key(uint8_t *b, size_t *len) { (void)len; KEY(b)->sport = 1; }

static const struct malformed cases[] = {
	{ "empty datagram", RP_MSG_LEASE_REQ, m_empty, RP_E_TRUNCATED },
	{ "half a header", RP_MSG_LEASE_REQ, m_trunc_hdr, RP_E_TRUNCATED },
	{ "message cut short", RP_MSG_WRITE, m_trunc_msg, RP_E_TRUNCATED },
	{ "packet cut short", RP_MSG_WRITE, m_trunc_pkt, RP_E_LEN },
	{ "trailing byte", RP_MSG_WRITE, m_trailing, RP_E_LEN },
	{ "datagram too long", RP_MSG_WRITE, m_oversized, RP_E_OVERSIZED },
	{ "pkt_len too long", RP_MSG_WRITE, m_pkt_too_big, RP_E_OVERSIZED },
	{ "version 0", RP_MSG_LEASE_REQ, m_version0, RP_E_VERSION },
	{ "a later version", RP_MSG_HEARTBEAT, m_version_next, RP_E_VERSION },
	{ "type 0", RP_MSG_LEASE_REQ, m_type0, RP_E_TYPE },
	{ "type past the last", RP_MSG_LEASE_REQ, m_type_high, RP_E_TYPE },
	{ "type 255", RP_MSG_LEASE_REQ, m_type_ff, RP_E_TYPE },
	{ "app 0 on a flow", RP_MSG_WRITE, m_app0, RP_E_APP },
	{ "unknown app", RP_MSG_LEASE_REQ, m_app_high, RP_E_APP },
	{ "app on a heartbeat", RP_MSG_HEARTBEAT, m_hb_app, RP_E_APP },
	{ "unknown flag", RP_MSG_LEASE_REQ, m_flag_unknown, RP_E_FLAGS },
	{ "packet without its flag", RP_MSG_LEASE_REQ, m_flag_no_pkt, RP_E_FLAGS },
	{ "pkt flag without packet", RP_MSG_LEASE_REQ, m_pkt_flag_no_pkt, RP_E_FLAGS },
	{ "state_len without its flag", RP_MSG_LEASE_REQ, m_flag_no_state, RP_E_FLAGS },
	{ "write without state", RP_MSG_WRITE, m_write_no_state, RP_E_FLAGS },
	{ "snapshot without state", RP_MSG_SNAPSHOT, m_write_no_state, RP_E_FLAGS },
	{ "flags on a heartbeat", RP_MSG_HEARTBEAT, m_hb_flags, RP_E_FLAGS },
	{ "state flag on an expire", RP_MSG_EXPIRE, m_flag_state, RP_E_FLAGS },
	{ "state on an expire", RP_MSG_EXPIRE, m_with_state, RP_E_FLAGS },
	{ "packet on an expire", RP_MSG_EXPIRE, m_with_pkt, RP_E_FLAGS },
	{ "state on an expire ack", RP_MSG_EXPIRE_ACK, m_with_state, RP_E_FLAGS },
	{ "packet on an expire ack", RP_MSG_EXPIRE_ACK, m_with_pkt, RP_E_FLAGS },
	{ "app 0 on an expire", RP_MSG_EXPIRE, m_app0, RP_E_APP },
	{ "bad key on an expire ack", RP_MSG_EXPIRE_ACK, m_family, RP_E_KEY },
	{ "state_len too long", RP_MSG_WRITE, m_state_len, RP_E_LEN },
	{ "switch id 0", RP_MSG_WRITE, m_switch0, RP_E_SWITCH },
	{ "switch id 0 heartbeat", RP_MSG_HEARTBEAT, m_switch0, RP_E_SWITCH },
	{ "reason outside reject", RP_MSG_ACK, m_reason, RP_E_REASON },
	{ "reject without reason", RP_MSG_REJECT, m_reason0, RP_E_REASON },
	{ "unknown reason", RP_MSG_REJECT, m_reason_high, RP_E_REASON },
	{ "bad family", RP_MSG_LEASE_REQ, m_family, RP_E_KEY },
	{ "key padding", RP_MSG_WRITE, m_pad, RP_E_KEY },
	{ "bytes after an IPv4 address", RP_MSG_WRITE, m_v4_tail, RP_E_KEY },
	{ "key on a heartbeat", RP_MSG_HEARTBEAT, m_hb_key, RP_E_KEY },
};

Test(codec, rejects_every_malformed_case)
{
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct malformed *c = &cases[i];
		struct rp_msg_view v = full_msg(c->type), out;
		uint8_t buf[RP_DGRAM_MAX + 16] = { 0 };
		size_t len = rp_test_encode(buf, &v);

		cr_assert_eq(rp_msg_decode(buf, len, &out), 0, "%s: base decodes", c->name);
		c->mutate(buf, &len);
		cr_assert_eq(rp_msg_decode(buf, len, &out), -c->err, "%s: expected %s, got %s",
			     c->name, rp_decode_err_name(c->err),
			     rp_decode_err_name((unsigned int)-rp_msg_decode(buf, len, &out)));
	}
}

Test(codec, encode_refuses_what_decode_refuses)
{
	struct rp_msg_view v = full_msg(RP_MSG_WRITE);
	uint8_t buf[RP_DGRAM_MAX];

	v.state_len = RP_STATE_MAX + 1;
	cr_assert_eq(rp_msg_encode(buf, sizeof(buf), &v), -EINVAL);
	v = full_msg(RP_MSG_WRITE);
	v.switch_id = 0;
	cr_assert_eq(rp_msg_encode(buf, sizeof(buf), &v), -EINVAL);
	v = full_msg(RP_MSG_WRITE);
	v.type = 0;
	cr_assert_eq(rp_msg_encode(buf, sizeof(buf), &v), -EINVAL);
	v = full_msg(RP_MSG_WRITE);
	cr_assert_eq(rp_msg_encode(buf, RP_MSG_LEN, &v), -ENOSPC);
}

Test(codec, expire_and_its_ack_carry_no_state_and_no_packet)
{
	for (uint8_t t = RP_MSG_EXPIRE; t <= RP_MSG_EXPIRE_ACK; t++) {
		struct rp_msg_view v = full_msg(t), out;
		uint8_t buf[RP_DGRAM_MAX];

		v.flags = RP_F_STATE;
		v.state = state;
		v.state_len = 8;
		cr_assert_eq(rp_msg_encode(buf, sizeof(buf), &v), -EINVAL, "%s with a state",
			     rp_msg_type_name(t));
		v = full_msg(t);
		v.flags = RP_F_PKT;
		v.pkt = pkt;
		v.pkt_len = sizeof(pkt);
		cr_assert_eq(rp_msg_encode(buf, sizeof(buf), &v), -EINVAL, "%s with a packet",
			     rp_msg_type_name(t));
		v = full_msg(t);
		cr_assert_eq(rp_msg_encode(buf, sizeof(buf), &v), (int)RP_MSG_LEN);
		cr_assert_eq(rp_msg_decode(buf, RP_MSG_LEN, &out), 0);
		cr_assert_eq(out.flags, 0);
		cr_assert_eq(out.gen, 0xbeef, "the holding is named");
		cr_assert_eq(out.epoch, 0xdeadbeef);
	}
	cr_assert(rp_msg_from_switch(RP_MSG_EXPIRE));
	cr_assert(!rp_msg_from_switch(RP_MSG_EXPIRE_ACK));
}

Test(codec, direction_of_each_type)
{
	const uint8_t from_switch[] = { RP_MSG_LEASE_REQ, RP_MSG_HEARTBEAT, RP_MSG_WRITE,
					RP_MSG_SNAPSHOT, RP_MSG_REVOKE_ACK, RP_MSG_EXPIRE };
	unsigned int n = 0;

	for (unsigned int t = 0; t < 256; t++)
		n += rp_msg_from_switch((uint8_t)t);
	cr_assert_eq(n, sizeof(from_switch));
	for (size_t i = 0; i < sizeof(from_switch); i++)
		cr_assert(rp_msg_from_switch(from_switch[i]));
}

Test(codec, names_cover_every_value)
{
	for (unsigned int t = 1; t < __RP_MSG_MAX; t++)
		cr_assert_str_neq(rp_msg_type_name(t), "unknown");
	for (unsigned int r = 0; r < __RP_REJ_MAX; r++)
		cr_assert_str_neq(rp_reject_name(r), "unknown");
	for (unsigned int e = 0; e < __RP_E_MAX; e++)
		cr_assert_str_neq(rp_decode_err_name(e), "unknown");
	cr_assert_str_eq(rp_msg_type_name(200), "unknown");
}

Test(addr, parses_and_rejects)
{
	struct rp_sockaddr a;
	char s[RP_ADDRSTRLEN];

	cr_assert_eq(rp_addr_parse("127.0.0.1:4791", &a), 0);
	cr_assert_str_eq(rp_addr_str((struct sockaddr *)&a.ss, s, sizeof(s)), "127.0.0.1:4791");
	cr_assert_eq(rp_addr_parse("[::1]:0", &a), 0);
	cr_assert_str_eq(rp_addr_str((struct sockaddr *)&a.ss, s, sizeof(s)), "[::1]:0");
	cr_assert_eq(rp_addr_parse("127.0.0.1", &a), -EINVAL);
	cr_assert_eq(rp_addr_parse("127.0.0.1:", &a), -EINVAL);
	cr_assert_eq(rp_addr_parse("127.0.0.1:65536", &a), -EINVAL);
	cr_assert_eq(rp_addr_parse("127.0.0.1:-1", &a), -EINVAL);
	cr_assert_eq(rp_addr_parse("localhost:80", &a), -EINVAL);
	cr_assert_eq(rp_addr_parse("[::1:80", &a), -EINVAL);
	cr_assert_eq(rp_addr_parse(":80", &a), -EINVAL);
}

/*
 * A replica that is not its chain's head answers a heartbeat with REJECT
 * not_head: no app and no key, like the heartbeat, and the hint as state.
 */
Test(codec, not_head_answers_a_heartbeat_without_app_or_key)
{
	struct rp_head_hint hint = { .addr = htonl(0xc000020b), .port = htons(4791),
				     .version = htonl(7) };
	struct rp_msg_view v = {
		.type = RP_MSG_REJECT,
		.reason = RP_REJ_NOT_HEAD,
		.flags = RP_F_STATE,
		.switch_id = 3,
		.state_len = sizeof(hint),
		.state = (const uint8_t *)&hint,
	}, out;
	uint8_t buf[RP_DGRAM_MAX];
	int len = rp_msg_encode(buf, sizeof(buf), &v);

	cr_assert_eq(len, (int)RP_MSG_LEN);
	cr_assert_eq(rp_msg_decode(buf, (size_t)len, &out), 0);
	cr_assert_eq(out.app_id, RP_APP_NONE);
	cr_assert_arr_eq(out.state, &hint, sizeof(hint));
	/* another reason with no app is still malformed, as is a key */
	HDR(buf)->reason = RP_REJ_BUSY;
	cr_assert_eq(rp_msg_decode(buf, (size_t)len, &out), -RP_E_APP);
	HDR(buf)->reason = RP_REJ_NOT_HEAD;
	((struct rp_msg *)buf)->key.family = RP_AF_INET;
	cr_assert_eq(rp_msg_decode(buf, (size_t)len, &out), -RP_E_KEY);
}
