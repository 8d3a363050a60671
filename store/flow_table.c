// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "flow_table.h"

_Static_assert(sizeof(struct rp_flow) == 136, "flow record size (docs/STORE.md)");

/*
 * A 64-bit mix of the app id and the 40 key bytes.  Not the shard steering
 * hash: within one shard every key has the same steering hash modulo the
 * shard count, so reusing it would leave index slots unused.
 */
static uint64_t flow_hash(uint8_t app_id, const struct rp_flow_key *key)
{
	uint64_t w[sizeof(*key) / 8];
	uint64_t h = (app_id + 1) * 0x9E3779B97F4A7C15ull;

	memcpy(w, key, sizeof(w));
	for (size_t i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		h = (h ^ w[i]) * 0xBF58476D1CE4E5B9ull;
		h ^= h >> 31;
	}
	return h ^ (h >> 29);
}

static uint32_t index_slots(uint32_t cap)
{
	uint64_t want = (uint64_t)cap * 3 / 2 + 1, n = 16;

	while (n < want)
		n <<= 1;
	return (uint32_t)n;
}

size_t rp_flow_table_bytes(uint32_t cap)
{
	return (size_t)index_slots(cap) * sizeof(uint64_t) + (size_t)cap * sizeof(struct rp_flow);
}

int rp_flow_table_init(struct rp_flow_table *t, uint32_t cap)
{
	uint32_t slots;

	if (!cap || cap > (1u << 30))
		return -EINVAL;
	slots = index_slots(cap);
	memset(t, 0, sizeof(*t));
	/* calloc of this size maps fresh zero pages: nothing is resident yet */
	t->index = calloc(slots, sizeof(*t->index));
	t->flows = calloc(cap, sizeof(*t->flows));
	if (!t->index || !t->flows) {
		rp_flow_table_free(t);
		return -ENOMEM;
	}
	t->mask = slots - 1;
	t->cap = cap;
	return 0;
}

void rp_flow_table_free(struct rp_flow_table *t)
{
	free(t->index);
	free(t->flows);
	t->index = NULL;
	t->flows = NULL;
}

struct rp_flow *rp_flow_lookup(const struct rp_flow_table *t, uint8_t app_id,
			       const struct rp_flow_key *key)
{
	uint64_t h = flow_hash(app_id, key);
	uint32_t tag = (uint32_t)(h >> 32);

	/* linear probing; the index is never full, so an empty slot ends it */
	for (uint32_t i = (uint32_t)h & t->mask;; i = (i + 1) & t->mask) {
		uint64_t slot = t->index[i];
		struct rp_flow *f;

		if (!slot)
			return NULL;
		if ((uint32_t)(slot >> 32) != tag)
			continue;
		f = &t->flows[(uint32_t)slot - 1];
		if (f->app_id == app_id && !memcmp(&f->key, key, sizeof(*key)))
			return f;
	}
}

struct rp_flow *rp_flow_insert(struct rp_flow_table *t, uint8_t app_id,
			       const struct rp_flow_key *key)
{
	uint64_t h = flow_hash(app_id, key);
	struct rp_flow *f;
	uint32_t i;

	if (t->count == t->cap)
		return NULL;
	for (i = (uint32_t)h & t->mask; t->index[i]; i = (i + 1) & t->mask)
		;
	f = &t->flows[t->count];
	t->index[i] = (h & 0xFFFFFFFF00000000ull) | (uint64_t)(t->count + 1);
	t->count++;
	memset(f, 0, sizeof(*f));	/* a cleared table reuses records */
	f->key = *key;
	f->app_id = app_id;
	return f;
}

/* The index slot that holds record number rec (0-based) of hash h. */
static uint32_t slot_of(const struct rp_flow_table *t, uint64_t h, uint32_t rec)
{
	uint32_t i;

	for (i = (uint32_t)h & t->mask; (uint32_t)t->index[i] != rec + 1; i = (i + 1) & t->mask)
		;
	return i;
}

struct rp_flow *rp_flow_delete(struct rp_flow_table *t, struct rp_flow *f)
{
	uint32_t rec = (uint32_t)(f - t->flows), last = t->count - 1;
	uint32_t hole = slot_of(t, flow_hash(f->app_id, &f->key), rec), i;
	const struct rp_flow *l;

	/*
	 * Backward shift: an entry after the hole may fill it unless its home
	 * slot lies cyclically in (hole, i], where its probe never passed the
	 * hole.  The slot keeps only the hash's top half, so the home slot of
	 * an entry comes from rehashing its record's key.
	 */
	for (i = (hole + 1) & t->mask; t->index[i]; i = (i + 1) & t->mask) {
		const struct rp_flow *g = &t->flows[(uint32_t)t->index[i] - 1];
		uint32_t home = (uint32_t)flow_hash(g->app_id, &g->key) & t->mask;

		if (((i - home) & t->mask) >= ((i - hole) & t->mask)) {
			t->index[hole] = t->index[i];
			hole = i;
		}
	}
	t->index[hole] = 0;
	t->count--;
	if (rec == last)
		return NULL;
	/* the dense array stays dense: the last record takes the freed place */
	l = &t->flows[last];
	i = slot_of(t, flow_hash(l->app_id, &l->key), last);
	t->index[i] = (t->index[i] & 0xFFFFFFFF00000000ull) | (uint64_t)(rec + 1);
	*f = *l;
	return f;
}

void rp_flow_table_clear(struct rp_flow_table *t)
{
	memset(t->index, 0, ((size_t)t->mask + 1) * sizeof(*t->index));
	t->count = 0;
}
