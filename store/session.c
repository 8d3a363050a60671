// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/random.h>

#include "session.h"

_Static_assert(sizeof(struct sockaddr_in6) <= RP_ADDR_WORDS * 4, "address fits");

int rp_sessions_init(struct rp_sessions *s, uint32_t lease_ms)
{
	/*
	 * A restarted store must not hand a switch the epoch it had before:
	 * the switch would take its old leases for live ones while the store
	 * grants the flows to others.  A random first epoch makes a repeat a
	 * 1 in 2^32 event.
	 */
	if (getrandom(&s->first_epoch, sizeof(s->first_epoch), 0) != sizeof(s->first_epoch))
		return -errno;
	s->rec = calloc(RP_SWITCHES, sizeof(*s->rec));
	if (!s->rec)
		return -ENOMEM;
	s->lease_ns = (uint64_t)lease_ms * 1000000ull;
	return 0;
}

void rp_sessions_free(struct rp_sessions *s)
{
	free(s->rec);
	s->rec = NULL;
}

/* The only writer of a record: a seqlock write of all its fields. */
static void session_write(struct rp_session_rec *r, uint32_t epoch, uint64_t expiry_ns,
			  const struct rp_sockaddr *addr)
{
	uint32_t seq = atomic_load_explicit(&r->seq, memory_order_relaxed);
	uint32_t words[RP_ADDR_WORDS] = { 0 };

	memcpy(words, &addr->ss, addr->len < sizeof(words) ? addr->len : sizeof(words));
	atomic_store_explicit(&r->seq, seq + 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	atomic_store_explicit(&r->epoch, epoch, memory_order_relaxed);
	atomic_store_explicit(&r->expiry_ns, expiry_ns, memory_order_relaxed);
	atomic_store_explicit(&r->addr_len, addr->len, memory_order_relaxed);
	for (int i = 0; i < RP_ADDR_WORDS; i++)
		atomic_store_explicit(&r->addr[i], words[i], memory_order_relaxed);
	atomic_store_explicit(&r->seq, seq + 2, memory_order_release);
}

uint32_t rp_session_heartbeat(struct rp_sessions *s, uint16_t switch_id,
			      const struct rp_sockaddr *from, uint64_t now_ns, uint32_t lapsed,
			      bool *is_new)
{
	struct rp_session_rec *r = &s->rec[switch_id];
	uint32_t epoch = atomic_load_explicit(&r->epoch, memory_order_relaxed);
	uint64_t expiry = atomic_load_explicit(&r->expiry_ns, memory_order_relaxed);

	/*
	 * A session the switch saw run out is over even when it is live here:
	 * a new head brings every session back (rp_sessions_restart_clock),
	 * also one the old head let lapse and whose flows it gave away.
	 * Later heartbeats naming the old epoch renew the new one.
	 */
	*is_new = !epoch || now_ns >= expiry || lapsed == epoch;
	if (*is_new) {
		epoch = epoch ? epoch + 1 : s->first_epoch;
		if (!epoch)	/* 0 means "never joined" */
			epoch = 1;
	}
	session_write(r, epoch, now_ns + s->lease_ns, from);
	return epoch;
}

void rp_session_put(struct rp_sessions *s, uint16_t switch_id, uint32_t epoch,
		    const struct rp_sockaddr *addr, uint64_t expiry_ns)
{
	session_write(&s->rec[switch_id], epoch, expiry_ns, addr);
}

void rp_sessions_restart_clock(struct rp_sessions *s, uint64_t now_ns)
{
	struct rp_session out;

	for (unsigned int id = 1; id < RP_SWITCHES; id++) {
		if (!atomic_load_explicit(&s->rec[id].epoch, memory_order_relaxed))
			continue;
		rp_session_read(s, (uint16_t)id, &out);
		session_write(&s->rec[id], out.epoch, now_ns + s->lease_ns, &out.addr);
	}
}

void rp_session_read(const struct rp_sessions *s, uint16_t switch_id, struct rp_session *out)
{
	struct rp_session_rec *r = &s->rec[switch_id];
	uint32_t words[RP_ADDR_WORDS];
	uint32_t s1, s2;

	do {
		s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
		out->epoch = atomic_load_explicit(&r->epoch, memory_order_relaxed);
		out->expiry_ns = atomic_load_explicit(&r->expiry_ns, memory_order_relaxed);
		out->addr.len = atomic_load_explicit(&r->addr_len, memory_order_relaxed);
		for (int i = 0; i < RP_ADDR_WORDS; i++)
			words[i] = atomic_load_explicit(&r->addr[i], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&r->seq, memory_order_relaxed);
	} while ((s1 & 1) || s1 != s2);

	memset(&out->addr.ss, 0, sizeof(out->addr.ss));
	memcpy(&out->addr.ss, words, sizeof(words));
}

bool rp_session_live(const struct rp_sessions *s, uint16_t switch_id, uint32_t epoch,
		     uint64_t now_ns)
{
	struct rp_session_rec *r = &s->rec[switch_id];
	uint32_t s1, s2, e;
	uint64_t expiry;

	do {
		s1 = atomic_load_explicit(&r->seq, memory_order_acquire);
		e = atomic_load_explicit(&r->epoch, memory_order_relaxed);
		expiry = atomic_load_explicit(&r->expiry_ns, memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		s2 = atomic_load_explicit(&r->seq, memory_order_relaxed);
	} while ((s1 & 1) || s1 != s2);

	return switch_id && e && e == epoch && now_ns < expiry;
}

unsigned int rp_sessions_count_live(const struct rp_sessions *s, uint64_t now_ns)
{
	unsigned int n = 0;

	for (unsigned int id = 1; id < RP_SWITCHES; id++) {
		uint32_t e = atomic_load_explicit(&s->rec[id].epoch, memory_order_relaxed);

		if (e && rp_session_live(s, (uint16_t)id, e, now_ns))
			n++;
	}
	return n;
}
