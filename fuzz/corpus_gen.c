// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Writes the fuzz targets' seed corpora (fuzz/corpus/NAME/seed-*) from valid
 * messages and frames, so that every fuzzer starts from what its code really
 * receives: `make fuzz-corpus` runs it.  The record format of the sequence
 * targets is fuzz/fuzz.h's.
 */
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"
#include "redplane/codec.h"
#include "store.h"

static const char *root;

/* An input being built: the setup byte (if any), then records. */
struct seed {
	uint8_t buf[16384];
	size_t len;
};

static void put(struct seed *s, const void *p, size_t n)
{
	if (s->len + n > sizeof(s->buf))
		abort();
	memcpy(s->buf + s->len, p, n);
	s->len += n;
}

static void rec(struct seed *s, uint8_t ctl, const void *p, size_t n)
{
	uint8_t hdr[3] = { ctl, (uint8_t)(n >> 8), (uint8_t)n };

	put(s, hdr, sizeof(hdr));
	put(s, p, n);
}

static void save(const char *target, const char *name, const struct seed *s)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", root, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/seed-%s", root, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(s->buf, 1, s->len, f) != s->len || fclose(f)) {
		fprintf(stderr, "corpus-gen: Couldn't write '%s': %s\n", path, strerror(errno));
		exit(1);
	}
}

static const uint8_t inner[] = "an Ethernet frame riding along";

/* A message of `type` from or to switch `sid` about flow n of the NAT app. */
static struct rp_msg_view msg(uint8_t type, uint16_t sid, uint32_t flow, uint32_t epoch)
{
	struct rp_msg_view v = {
		.type = type,
		.switch_id = sid,
		.epoch = epoch,
	};

	if (type != RP_MSG_HEARTBEAT && type != RP_MSG_HEARTBEAT_ACK) {
		v.app_id = RP_APP_NAT;
		rp_key_v4(&v.key, 6, htonl(0x0a010002), htons((uint16_t)(1000 + flow)),
			  htonl(0xc6336402), htons(80));
	}
	return v;
}

static void with_state(struct rp_msg_view *v, const char *state)
{
	v->flags |= RP_F_STATE;
	v->state = (const uint8_t *)state;
	v->state_len = (uint8_t)strlen(state);
}

static void with_pkt(struct rp_msg_view *v)
{
	v->flags |= RP_F_PKT;
	v->pkt = inner;
	v->pkt_len = sizeof(inner);
}

/* Appends v, encoded, as a record (ctl) or, for ctl < 0, as the whole input. */
static void add(struct seed *s, int ctl, const struct rp_msg_view *v)
{
	uint8_t buf[RP_DGRAM_MAX];
	int n = rp_msg_encode(buf, sizeof(buf), v);

	if (n < 0) {
		fprintf(stderr, "corpus-gen: an invalid %s\n", rp_msg_type_name(v->type));
		exit(1);
	}
	if (ctl < 0)
		put(s, buf, (size_t)n);
	else
		rec(s, (uint8_t)ctl, buf, (size_t)n);
}

static struct rp_msg_view not_head(uint16_t sid, uint32_t head, uint32_t version,
				   struct rp_head_hint *h)
{
	struct rp_msg_view v = msg(RP_MSG_REJECT, sid, 0, 7);

	*h = (struct rp_head_hint){ .addr = htonl(head), .port = htons(4791),
				    .version = htonl(version) };
	v.app_id = RP_APP_NONE;
	memset(&v.key, 0, sizeof(v.key));
	v.reason = RP_REJ_NOT_HEAD;
	v.flags = RP_F_STATE;
	v.state = (const uint8_t *)h;
	v.state_len = sizeof(*h);
	return v;
}

static void codec(void)
{
	static const uint8_t types[] = { RP_MSG_LEASE_REQ, RP_MSG_GRANT, RP_MSG_MIGRATE,
					 RP_MSG_HEARTBEAT, RP_MSG_HEARTBEAT_ACK, RP_MSG_WRITE,
					 RP_MSG_SNAPSHOT, RP_MSG_ACK, RP_MSG_REVOKE,
					 RP_MSG_REVOKE_ACK, RP_MSG_REJECT, RP_MSG_EXPIRE,
					 RP_MSG_EXPIRE_ACK };
	struct rp_head_hint h;
	struct rp_msg_view v;
	struct seed s;

	for (size_t i = 0; i < sizeof(types); i++) {
		v = msg(types[i], 3, (uint32_t)i, 9);
		v.seq = (uint32_t)i * 0x01010101u;
		v.gen = (uint16_t)i;
		if (types[i] == RP_MSG_REJECT)
			v.reason = RP_REJ_STALE;
		if (types[i] != RP_MSG_HEARTBEAT && types[i] != RP_MSG_HEARTBEAT_ACK &&
		    types[i] != RP_MSG_EXPIRE && types[i] != RP_MSG_EXPIRE_ACK) {
			with_state(&v, "state");
			if (types[i] != RP_MSG_REVOKE && types[i] != RP_MSG_REVOKE_ACK)
				with_pkt(&v);
		}
		if (types[i] == RP_MSG_REVOKE || types[i] == RP_MSG_REVOKE_ACK ||
		    types[i] == RP_MSG_REJECT)
			v.flags &= (uint8_t)~RP_F_STATE, v.state_len = 0;
		s.len = 0;
		add(&s, -1, &v);
		save("codec", rp_msg_type_name(types[i]), &s);
	}
	v = not_head(3, 0xc000020c, 4, &h);
	s.len = 0;
	add(&s, -1, &v);
	save("codec", "not_head", &s);

	v = msg(RP_MSG_WRITE, 3, 1, 9);
	v.key.family = RP_AF_INET6;
	memset(v.key.saddr.v6, 0x20, 16);
	memset(v.key.daddr.v6, 0x30, 16);
	with_state(&v, "0123456789012345678901234567890123456789012345678901234567890123");
	s.len = 0;
	add(&s, -1, &v);
	save("codec", "write_ipv6_full_state", &s);
}

/*
 * The store: ctl bits 0-1 the sender (switch 1 + n sends from port 10000 + n
 * here), bit 2 a tick first, bits 3-7 the clock's advance in 4 ms steps.
 */
#define FROM(sw)	((uint8_t)((sw) - 1))
#define LATER(ms)	((uint8_t)(((ms) / 4) << 3))

/* Switches 1 to n join. */
static void join(struct seed *s, uint16_t n)
{
	for (uint16_t sw = 1; sw <= n; sw++) {
		struct rp_msg_view v = msg(RP_MSG_HEARTBEAT, sw, 0, 0);

		v.seq = sw;
		add(s, FROM(sw), &v);
	}
}

/* Switch sw proposes a state for a new flow. */
static void propose(struct seed *s, uint16_t sw, uint32_t flow, uint32_t epoch, const char *state)
{
	struct rp_msg_view v = msg(RP_MSG_LEASE_REQ, sw, flow, epoch);

	with_state(&v, state);
	add(s, FROM(sw), &v);
}

static void store(void)
{
	const uint32_t e = FUZZ_STORE_FIRST_EPOCH;
	struct rp_msg_view v;
	struct seed s;

	/* one switch: join, a new flow, writes (one a duplicate), a snapshot */
	s.len = 0;
	v = msg(RP_MSG_HEARTBEAT, 1, 0, 0);
	v.seq = 1;
	add(&s, FROM(1), &v);
	v = msg(RP_MSG_LEASE_REQ, 1, 1, e);
	with_state(&v, "proposal");
	with_pkt(&v);
	add(&s, FROM(1), &v);
	for (uint32_t seq = 1; seq <= 2; seq++) {
		v = msg(RP_MSG_WRITE, 1, 1, e);
		v.seq = seq;
		v.gen = 1;
		with_state(&v, seq == 1 ? "first" : "second");
		with_pkt(&v);
		add(&s, FROM(1), &v);
	}
	add(&s, FROM(1), &v);
	v.type = RP_MSG_SNAPSHOT;
	v.seq = 3;
	v.flags &= (uint8_t)~RP_F_PKT;
	v.pkt_len = 0;
	add(&s, FROM(1), &v);
	v = msg(RP_MSG_LEASE_REQ, 1, 2, e);
	add(&s, FROM(1), &v);	/* a lookup: no_flow */
	save("store", "one_switch", &s);

	/* two switches: the second asks for the first's flow, waits, gets it on the ack */
	s.len = 0;
	join(&s, 2);
	propose(&s, 1, 1, e, "proposal");
	v = msg(RP_MSG_LEASE_REQ, 2, 1, e);
	with_state(&v, "other");
	with_pkt(&v);
	add(&s, FROM(2), &v);
	v = msg(RP_MSG_LEASE_REQ, 2, 1, e);
	add(&s, FROM(2) | LATER(40) | 4, &v);	/* asked again: keeps its place */
	v = msg(RP_MSG_REVOKE_ACK, 1, 1, e);
	v.gen = 1;
	v.seq = 5;
	with_state(&v, "final");
	add(&s, FROM(1), &v);
	v = msg(RP_MSG_WRITE, 1, 1, e);	/* too late: not the owner now */
	v.gen = 1;
	v.seq = 6;
	with_state(&v, "late");
	add(&s, FROM(1), &v);
	save("store", "revoke_handover", &s);

	/* the owner expires its flow twice (deleted, then no_flow) and makes it anew */
	s.len = 0;
	join(&s, 1);
	propose(&s, 1, 1, e, "proposal");
	v = msg(RP_MSG_EXPIRE, 1, 1, e);
	v.gen = 1;
	add(&s, FROM(1), &v);
	add(&s, FROM(1), &v);
	v = msg(RP_MSG_LEASE_REQ, 1, 1, e);
	v.gen = 1;
	with_state(&v, "anew");
	add(&s, FROM(1), &v);
	save("store", "expire_and_anew", &s);

	/* the owner lapses while another waits, a third is refused (busy); the first rejoins */
	s.len = 0;
	join(&s, 3);
	v = msg(RP_MSG_LEASE_REQ, 1, 1, e);
	with_state(&v, "a");
	add(&s, FROM(1), &v);
	v = msg(RP_MSG_LEASE_REQ, 2, 1, e);
	add(&s, FROM(2), &v);
	v = msg(RP_MSG_LEASE_REQ, 3, 1, e);
	add(&s, FROM(3), &v);	/* busy */
	v = msg(RP_MSG_HEARTBEAT, 2, 0, e);
	v.seq = 9;
	add(&s, FROM(2) | LATER(80) | 4, &v);
	v = msg(RP_MSG_LEASE_REQ, 1, 1, e);
	v.gen = 1;
	add(&s, FROM(1) | LATER(40) | 4, &v);	/* switch 1 lapsed: a new session needed */
	v = msg(RP_MSG_HEARTBEAT, 1, 0, 0);
	v.seq = 10;
	add(&s, FROM(1) | LATER(124) | 4, &v);
	save("store", "lapse_and_timeout", &s);

	/* malformed and misdirected datagrams between good ones */
	s.len = 0;
	v = msg(RP_MSG_HEARTBEAT, 1, 0, 0);
	add(&s, FROM(1), &v);
	v = msg(RP_MSG_GRANT, 1, 1, e);
	add(&s, FROM(1), &v);	/* a store's message: bad_direction */
	rec(&s, FROM(1), inner, sizeof(inner));	/* truncated */
	save("store", "bad_datagrams", &s);
}

/* The chain: the first byte picks shard 0, middle, links not ready; ctl 0 up, 1 down. */
static void frame(struct seed *s, uint8_t ctl, uint8_t type, uint8_t kind, uint64_t idx,
		  const void *body, size_t len, const void *reply, size_t reply_len)
{
	uint8_t buf[RP_LINK_FRAME_MAX];
	struct rp_link_hdr h = {
		.len = htobe32((uint32_t)(len + reply_len)),
		.type = type,
		.kind = kind,
		.reply_len = htobe16((uint16_t)(reply_len ? reply_len - sizeof(struct rp_link_addr)
							  : 0)),
		.idx = htobe64(idx),
	};

	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), body, len);
	if (reply_len)
		memcpy(buf + sizeof(h) + len, reply, reply_len);
	rec(s, ctl, buf, sizeof(h) + len + reply_len);
}

static void hello(struct seed *s)
{
	struct rp_link_hello h = {
		.chain = htobe64(FUZZ_CHAIN_HASH),
		.inc = htobe64(FUZZ_PRED_INC),
		.id = htobe32(FUZZ_PRED_ID),
		.shards = htobe32(2),
		.shard = htobe32(0),
		.version = htobe32(5),
	};

	frame(s, 0, RP_LINK_HELLO, 0, 0, &h, sizeof(h), NULL, 0);
}

static void flow_entry(struct seed *s, uint64_t idx, uint32_t flow, uint32_t seq, bool reply)
{
	struct rp_msg_view v = msg(RP_MSG_ACK, 3, flow, 9);
	struct rp_link_flow f = {
		.app_id = RP_APP_NAT,
		.state_len = 5,
		.owner = htobe16(3),
		.epoch = htobe32(9),
		.seq = htobe32(seq),
		.gen = htobe16(1),
		.key = v.key,
		.state = "state",
	};
	uint8_t r[sizeof(struct rp_link_addr) + RP_DGRAM_MAX];
	struct rp_link_addr *to = (struct rp_link_addr *)r;
	int n = 0;

	if (reply) {
		*to = (struct rp_link_addr){ .addr = htonl(0xc0000201), .port = htons(4790) };
		v.seq = seq;
		v.gen = 1;
		with_pkt(&v);
		n = rp_msg_encode(r + sizeof(*to), RP_DGRAM_MAX, &v);
		if (n < 0)
			abort();
		n += (int)sizeof(*to);
	}
	frame(s, 0, RP_LINK_ENTRY, RP_ENT_FLOW, idx, &f, sizeof(f), r, (size_t)n);
}

static void chain(void)
{
	struct rp_link_session ses = {
		.switch_id = htobe16(3),
		.epoch = htobe32(9),
		.addr = { .addr = htonl(0xc0000201), .port = htons(4790) },
	};
	struct rp_link_status st = { .lineage = htobe64(0x11), .idx = htobe64(0) };
	struct seed s;

	/* middle, shard 0: the handshake, entries with replies, acks from the successor */
	s.len = 0;
	put(&s, "\0", 1);
	hello(&s);
	frame(&s, 1, RP_LINK_STATUS, 0, 0, &st, sizeof(st), NULL, 0);
	frame(&s, 0, RP_LINK_ENTRY, RP_ENT_SESSION, 1, &ses, sizeof(ses), NULL, 0);
	flow_entry(&s, 2, 1, 1, true);
	flow_entry(&s, 3, 1, 2, true);
	flow_entry(&s, 2, 1, 1, true);	/* resent */
	frame(&s, 1, RP_LINK_ACK, 0, 2, NULL, 0, NULL, 0);
	frame(&s, 1, RP_LINK_ACK, 0, 3, NULL, 0, NULL, 0);
	save("chain", "middle_entries", &s);

	/* tail, shard 1, links ready: a whole copy, then entries answered */
	s.len = 0;
	put(&s, "\7", 1);
	frame(&s, 0, RP_LINK_RESET, 0, 4, &st, sizeof(st), NULL, 0);
	for (uint32_t f = 1; f <= 3; f++)
		flow_entry(&s, 0, f, f, false);
	frame(&s, 0, RP_LINK_COPY_END, 0, 4, NULL, 0, NULL, 0);
	flow_entry(&s, 5, 2, 7, true);
	save("chain", "tail_copy", &s);

	/* a frame split over two reads, and one that names another chain */
	s.len = 0;
	put(&s, "\1", 1);
	{
		struct seed one = { .len = 0 };

		hello(&one);
		rec(&s, 0, one.buf + 3, 10);
		rec(&s, 0, one.buf + 13, one.len - 13);
	}
	{
		struct rp_link_hello h = { .chain = htobe64(1) };

		frame(&s, 0, RP_LINK_HELLO, 0, 0, &h, sizeof(h), NULL, 0);
	}
	save("chain", "split_and_foreign", &s);

	/*
	 * Regression: a header whose length wrapped the frame's length around
	 * 2^32 to less than the header (0 here) made link_read() spin on it
	 * forever, and one of 1 to 15 bytes handed a frame shorter than its
	 * header on (chain.c checks the length before adding the header's).
	 */
	s.len = 0;
	put(&s, "\4", 1);
	{
		struct rp_link_hdr h = { .len = htobe32(0xfffffff0u), .type = RP_LINK_ENTRY,
					 .kind = RP_ENT_FLOW, .idx = htobe64(1) };

		rec(&s, 0, &h, sizeof(h));
		h.len = htobe32(0xfffffff4u);
		h.type = RP_LINK_RESET;
		rec(&s, 0, &h, sizeof(h));
	}
	save("chain", "regression_wrapped_length", &s);
}

/* The agent: the first byte bounded mode; ctl: sender 0-2 chain 0, 3 chain 1, 4-5 others. */
static void agent(void)
{
	struct rp_head_hint h;
	struct rp_msg_view v;
	struct seed s;

	s.len = 0;
	put(&s, "\0", 1);
	v = msg(RP_MSG_HEARTBEAT_ACK, FUZZ_SWITCH_ID, 0, 7);
	v.seq = 1;
	v.lease_ms = 200;
	add(&s, 2, &v);
	v = not_head(FUZZ_SWITCH_ID, 0xc000020c, 3, &h);
	add(&s, 0, &v);	/* replica 1 is the head */
	v = not_head(FUZZ_SWITCH_ID, 0xc000020b, 2, &h);
	add(&s, 2, &v);	/* an older configuration */
	v = not_head(FUZZ_SWITCH_ID, 0x0a010002, 4, &h);
	add(&s, 1, &v);	/* not a replica */
	v = not_head(FUZZ_SWITCH_ID, 0, 5, &h);
	add(&s, 1, &v);	/* knows of no head */
	v = not_head(FUZZ_SWITCH_ID, 0xc000020d, 6, &h);
	add(&s, 8, &v);	/* from a port no replica has */
	save("agent", "hints", &s);

	s.len = 0;
	put(&s, "\1", 1);
	v = msg(RP_MSG_REVOKE, FUZZ_SWITCH_ID, 1, 7);
	v.gen = 2;
	add(&s, 3, &v);
	v.switch_id = FUZZ_SWITCH_ID + 1;
	add(&s, 3, &v);	/* another switch's */
	v = msg(RP_MSG_ACK, FUZZ_SWITCH_ID, 1, 7);
	add(&s, 3, &v);
	save("agent", "bounded_revoke", &s);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	root = argv[1];
	mkdir(root, 0755);
	codec();
	store();
	chain();
	agent();
	return 0;
}
