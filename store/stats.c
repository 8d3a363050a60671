// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Statistics: summed over shards, printed as "name value" lines. */
#include <string.h>

#include "store.h"

#define LOAD(ctr) atomic_load_explicit(&(ctr), memory_order_relaxed)

void rp_stats_sum(struct rp_store_stats *sum, struct rp_shard *const *shards, unsigned int n)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned int i = 0; i < n; i++) {
		const struct rp_store_stats *st = &shards[i]->stats;

#define X(name) STAT_ADD(sum->name, LOAD(st->name));
		RP_STORE_COUNTERS(X)
#undef X
		for (unsigned int t = 0; t < __RP_MSG_MAX; t++)
			STAT_ADD(sum->rx_type[t], LOAD(st->rx_type[t]));
		for (unsigned int e = 0; e < __RP_E_MAX; e++)
			STAT_ADD(sum->bad[e], LOAD(st->bad[e]));
		for (unsigned int r = 0; r < __RP_REJ_MAX; r++)
			STAT_ADD(sum->reject[r], LOAD(st->reject[r]));
	}
}

void rp_stats_print(FILE *f, const struct rp_store_stats *st, uint64_t flows,
		    unsigned int sessions_live)
{
	fprintf(f, "flows %llu\n", (unsigned long long)flows);
	fprintf(f, "sessions_live %u\n", sessions_live);
#define X(name) fprintf(f, #name " %llu\n", (unsigned long long)LOAD(st->name));
	RP_STORE_COUNTERS(X)
#undef X
	for (unsigned int t = 1; t < __RP_MSG_MAX; t++)
		fprintf(f, "rx_%s %llu\n", rp_msg_type_name(t),
			(unsigned long long)LOAD(st->rx_type[t]));
	for (unsigned int e = 1; e < __RP_E_MAX; e++)
		fprintf(f, "drop_%s %llu\n", rp_decode_err_name(e),
			(unsigned long long)LOAD(st->bad[e]));
	for (unsigned int r = 1; r < __RP_REJ_MAX; r++)
		fprintf(f, "reject_%s %llu\n", rp_reject_name(r),
			(unsigned long long)LOAD(st->reject[r]));
}
