// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: the wire codec.  Any datagram that rp_msg_decode()
 * accepts must encode back to the same bytes (but for the state bytes past
 * state_len, which the encoder zeroes), and the encoding must decode to the
 * same view.  docs/TESTING.md, Fuzzing.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "redplane/codec.h"

static bool same_view(const struct rp_msg_view *a, const struct rp_msg_view *b)
{
	return a->type == b->type && a->app_id == b->app_id && a->flags == b->flags &&
	       a->reason == b->reason && a->switch_id == b->switch_id &&
	       a->state_len == b->state_len && a->seq == b->seq && a->epoch == b->epoch &&
	       a->lease_ms == b->lease_ms && a->pkt_len == b->pkt_len && a->gen == b->gen &&
	       rp_key_eq(&a->key, &b->key) && !memcmp(a->state, b->state, a->state_len) &&
	       !memcmp(a->pkt, b->pkt, a->pkt_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[RP_DGRAM_MAX + 64], want[RP_DGRAM_MAX];
	struct rp_msg_view v, w;
	int err, n;

	err = rp_msg_decode(data, size, &v);
	CHECK(err <= 0 && err > -__RP_E_MAX);
	if (err)
		return 0;
	CHECK(size >= RP_MSG_LEN && size <= RP_DGRAM_MAX);
	CHECK(v.state_len <= RP_STATE_MAX && v.pkt_len == size - RP_MSG_LEN);
	CHECK(!rp_msg_from_switch(v.type) || v.reason == RP_REJ_NONE);

	/* too small a buffer: refused, never written past */
	CHECK(rp_msg_encode(out, size - 1, &v) == -ENOSPC);

	n = rp_msg_encode(out, sizeof(out), &v);
	CHECK(n == (int)size);
	memcpy(want, data, size);
	memset(want + offsetof(struct rp_msg, state) + v.state_len, 0, RP_STATE_MAX - v.state_len);
	CHECK(!memcmp(out, want, size));

	CHECK(rp_msg_decode(out, (size_t)n, &w) == 0);
	CHECK(same_view(&v, &w));
	return 0;
}
