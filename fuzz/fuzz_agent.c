// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: what rp-load makes of a datagram on its socket
 * (user/hb_msg.c, as rp_hb_receive() uses it): who sent it, what it is, and
 * where a not_head hint moves the chain's head.  Two chains, of three
 * replicas and of one; each record's control byte picks the sender among
 * them and a stranger (the low three bits), and whether its port is off by
 * one (bit 3).  The first byte of the input turns bounded mode on (bit 0).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "agent.h"
#include "fuzz.h"
#include "redplane/codec.h"

#define SOURCES		6

static const struct {
	uint32_t addr;		/* host order */
	unsigned int chain;	/* SOURCES: not a replica */
} sources[SOURCES] = {
	{ 0xc000020b, 0 }, { 0xc000020c, 0 }, { 0xc000020d, 0 }, { 0xc0000214, 1 },
	{ 0xc0000215, 2 }, { 0x0a010002, 2 },
};

static struct rp_load_cfg cfg;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	cfg.switch_id = FUZZ_SWITCH_ID;
	cfg.nstores = 2;
	for (unsigned int i = 0; i < SOURCES; i++) {
		struct rp_store_chain *c;

		if (sources[i].chain >= cfg.nstores)
			continue;
		c = &cfg.chains[sources[i].chain];
		c->replicas[c->nreplicas] = (struct sockaddr_in){
			.sin_family = AF_INET,
			.sin_addr.s_addr = htonl(sources[i].addr),
			.sin_port = htons(4791),
		};
		c->nreplicas++;
	}
	return 0;
}

static void not_head(unsigned int i, struct rp_store_sess *s, const struct rp_msg_view *v)
{
	const struct rp_store_chain *c = &cfg.chains[i];
	uint32_t old = s->hint_version;
	struct rp_head_hint h;
	int r = rp_hb_hint(c, s, v);

	CHECK(r >= 0 || r == -EINVAL || r == -EALREADY || r == -ENOENT);
	if (r < 0) {
		CHECK(s->hint_version == old);
		return;
	}
	/* a replica of this chain, the one the hint names, of no older a version */
	CHECK(v->state_len == sizeof(h));
	memcpy(&h, v->state, sizeof(h));
	CHECK((unsigned int)r < c->nreplicas);
	CHECK(c->replicas[r].sin_addr.s_addr == h.addr && c->replicas[r].sin_port == h.port);
	CHECK(s->hint_version == ntohl(h.version) && s->hint_version >= old);
	s->head = (unsigned int)r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rp_store_sess sess[RP_MAX_STORES];
	struct fuzz_rec r;

	if (size < 1)
		return 0;
	cfg.bounded = *data & 1;
	data++;
	size--;
	memset(sess, 0, sizeof(sess));

	while (fuzz_next(&data, &size, &r)) {
		unsigned int src = (r.ctl & 7) % SOURCES, chain = ~0u, replica = ~0u;
		struct sockaddr_in from = {
			.sin_family = AF_INET,
			.sin_addr.s_addr = htonl(sources[src].addr),
			.sin_port = htons(r.ctl & 8 ? 4792 : 4791),
		};
		struct rp_msg_view v;
		enum rp_hb_kind kind = rp_hb_parse(&cfg, r.p, r.len, &from, &v, &chain, &replica);

		if (kind == RP_HB_IGNORE)
			continue;
		/* only a replica's well-formed message to this switch is acted on */
		CHECK(!(r.ctl & 8) && sources[src].chain == chain && chain < cfg.nstores);
		CHECK(replica < cfg.chains[chain].nreplicas);
		CHECK(cfg.chains[chain].replicas[replica].sin_addr.s_addr == from.sin_addr.s_addr);
		CHECK(rp_msg_decode(r.p, r.len, &v) == 0 && v.switch_id == FUZZ_SWITCH_ID);
		switch (kind) {
		case RP_HB_ACK:
			CHECK(v.type == RP_MSG_HEARTBEAT_ACK);
			break;
		case RP_HB_NOT_HEAD:
			CHECK(v.type == RP_MSG_REJECT && v.reason == RP_REJ_NOT_HEAD);
			not_head(chain, &sess[chain], &v);
			CHECK(sess[chain].head < cfg.chains[chain].nreplicas);
			break;
		case RP_HB_REVOKE:
			CHECK(cfg.bounded && v.type == RP_MSG_REVOKE);
			break;
		default:
			CHECK(0);
		}
	}
	return 0;
}
