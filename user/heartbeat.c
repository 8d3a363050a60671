// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The switch's sessions with its store chains.  A heartbeat renews the
 * session; its ack tells the epoch and the lease period.  The data plane's
 * lease is timed from when the heartbeat was SENT, less a guard for clock
 * rate drift, so it always ends before the store's (timed from receipt).
 *
 * Requests go to a chain's head, answers come from its tail.  A replica
 * that is not the head refuses a request with a hint to the head; a head
 * that stops answering is looked for by heartbeating every replica.
 */
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "agent.h"
#include "redplane/codec.h"
#include "redplane/log.h"
/* after redplane/dp.h, whose types the skeleton uses */
#include "redplane.skel.h"

#define NS_PER_MS	1000000ull

/*
 * 5% of the lease for the two clocks' rates, 1 ms more, and one tick of the
 * coarse clock the data plane reads (it lags CLOCK_MONOTONIC by up to one).
 */
static uint64_t guard_ns(const struct rp_agent *a, uint32_t lease_ms)
{
	return (uint64_t)lease_ms * NS_PER_MS / 20 + NS_PER_MS + a->coarse_tick_ns;
}

static uint32_t lease_ms_of(const struct rp_agent *a, const struct rp_store_sess *s)
{
	if (s->lease_ms && s->lease_ms < a->cfg.lease_ms)
		return s->lease_ms;
	return a->cfg.lease_ms;
}

const struct sockaddr_in *rp_hb_head(const struct rp_agent *a, unsigned int store)
{
	return &a->cfg.chains[store].replicas[a->sess[store].head];
}

/*
 * Chain i's session and head into the data plane.  The expiry is the
 * caller's: a new epoch goes in with no time left first (see on_ack).
 */
static int put_session(struct rp_agent *a, unsigned int i, uint64_t expiry)
{
	const struct sockaddr_in *head = rp_hb_head(a, i);
	struct rp_dp_session dp = {
		.expiry_ns = expiry,
		.epoch = a->sess[i].epoch,
		.head = { .addr = head->sin_addr.s_addr, .port = head->sin_port },
	};
	uint32_t key = i;
	int err = 0;

	if (bpf_map_update_elem(bpf_map__fd(a->skel->maps.sessions), &key, &dp, 0)) {
		err = -errno;
		pr_warn("rp-load: Couldn't update the session map: %s\n", strerror(-err));
	}
	return err;
}

int rp_hb_init(struct rp_agent *a)
{
	uint64_t now = rp_mono_ns();
	struct timespec res;
	int err;

	a->next_hb_ns = 0;
	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res))
		return -errno;
	a->coarse_tick_ns = (uint64_t)res.tv_sec * 1000000000ull + (uint64_t)res.tv_nsec;
	for (unsigned int i = 0; i < a->cfg.nstores; i++) {
		/* the first replica listed is the head until one says otherwise */
		err = put_session(a, i, 0);
		if (err)
			return err;
		/* the heads get two heartbeat intervals to answer before probing */
		a->sess[i].last_ack_ns = now;
	}
	return 0;
}

static bool send_to(struct rp_agent *a, const void *buf, int len, const struct sockaddr_in *to)
{
	return sendto(a->sock, buf, (size_t)len, 0, (const struct sockaddr *)to,
		      sizeof(*to)) == len;
}

static const char *head_str(const struct rp_agent *a, unsigned int i, char *buf)
{
	return rp_addr_str((const struct sockaddr *)rp_hb_head(a, i), buf, RP_ADDRSTRLEN);
}

/*
 * The session was live here and ran out: over for good, even if the store
 * (a new head that brought every session back) would renew it; only a new
 * epoch will do.  The model found this (docs/MODEL.md).  An epoch never
 * live here (no expiry yet) has no grants to fear: the data plane asks for
 * leases only while its session is live.
 */
static bool ran_out(const struct rp_store_sess *s, uint64_t now)
{
	return s->epoch && s->expiry_ns && now >= s->expiry_ns;
}

/*
 * To the head, or to every replica while probing: one nonce, timed from
 * this one send, whichever replica the head turns out to be.
 */
static void send_heartbeat(struct rp_agent *a, unsigned int i, uint64_t now)
{
	const struct rp_store_chain *c = &a->cfg.chains[i];
	struct rp_store_sess *s = &a->sess[i];
	uint8_t buf[RP_MSG_LEN];
	struct rp_msg_view v = {
		.type = RP_MSG_HEARTBEAT,
		.switch_id = a->cfg.switch_id,
		.seq = ++a->nonce,
		.epoch = s->epoch,
		.gen = ran_out(s, now) ? RP_HB_LAPSED : 0,
	};
	int len = rp_msg_encode(buf, sizeof(buf), &v);
	bool sent = false;

	s->sent[v.seq % RP_HB_NONCES] = (struct hb_sent){ .nonce = v.seq, .sent_ns = now };
	if (len <= 0)
		return;
	if (!s->probing) {
		sent = send_to(a, buf, len, rp_hb_head(a, i));
	} else {
		for (unsigned int r = 0; r < c->nreplicas; r++)
			sent |= send_to(a, buf, len, &c->replicas[r]);
		a->stats[RP_AG_hb_probes]++;
	}
	if (sent)
		a->stats[RP_AG_heartbeats_sent]++;
}

/* No ack for more than two heartbeat intervals: the head may be gone. */
static void update_probing(struct rp_agent *a, unsigned int i, uint64_t now, uint64_t interval_ns)
{
	struct rp_store_sess *s = &a->sess[i];
	uint64_t silent_ns = now - s->last_ack_ns;
	bool probe = a->cfg.chains[i].nreplicas > 1 && silent_ns > 2 * interval_ns;
	char addr[RP_ADDRSTRLEN];

	if (probe && !s->probing) {
		pr_warn("rp-load: store %u's head %s has not answered for %llu ms: heartbeats go to every replica\n",
			i, head_str(a, i, addr), (unsigned long long)(silent_ns / NS_PER_MS));
		s->hint_moved = false;
	}
	s->probing = probe;
}

void rp_hb_tick(struct rp_agent *a, uint64_t now)
{
	uint32_t pace_ms = a->cfg.lease_ms;
	uint64_t interval_ns;

	for (unsigned int i = 0; i < a->cfg.nstores; i++) {
		struct rp_store_sess *s = &a->sess[i];

		if (lease_ms_of(a, s) < pace_ms)
			pace_ms = lease_ms_of(a, s);
		if (!s->lapsed && ran_out(s, now)) {
			s->lapsed = true;
			a->stats[RP_AG_session_lapsed]++;
			pr_warn("rp-load: session with store %u lapsed: its leases are over, heartbeats ask for a new epoch\n",
				i);
		}
	}
	if (now < a->next_hb_ns)
		return;
	/* four heartbeats per lease: one lost heartbeat never lapses a session */
	interval_ns = (uint64_t)pace_ms * NS_PER_MS / 4;
	for (unsigned int i = 0; i < a->cfg.nstores; i++) {
		update_probing(a, i, now, interval_ns);
		send_heartbeat(a, i, now);
	}
	a->next_hb_ns = now + interval_ns;
}

/* Chain i's requests go to replica r from now on. */
static void move_head(struct rp_agent *a, unsigned int i, unsigned int r, const char *why)
{
	struct rp_store_sess *s = &a->sess[i];
	char addr[RP_ADDRSTRLEN];

	s->head = r;
	a->stats[RP_AG_head_changes]++;
	/* the session is the chain's: epoch and expiry stay as they are */
	put_session(a, i, s->expiry_ns);
	pr_info("rp-load: store %u's head is now %s (%s)\n", i, head_str(a, i, addr), why);
}

/* RFC 6298 smoothing of round-trip samples. */
static void rtt_sample(struct rp_agent *a, double us)
{
	if (a->srtt_us == 0) {
		a->srtt_us = us;
		a->rttvar_us = us / 2;
		return;
	}
	a->rttvar_us = 0.75 * a->rttvar_us + 0.25 * (a->srtt_us > us ? a->srtt_us - us : us - a->srtt_us);
	a->srtt_us = 0.875 * a->srtt_us + 0.125 * us;
}

/* A heartbeat ack from replica r of chain i, the chain's tail. */
static void on_ack(struct rp_agent *a, unsigned int i, unsigned int r, const struct rp_msg_view *v,
		   uint64_t now)
{
	struct rp_store_sess *s = &a->sess[i];
	struct hb_sent *h = &s->sent[v->seq % RP_HB_NONCES];
	uint64_t expiry;

	if (h->nonce != v->seq || !h->sent_ns)
		return;		/* too old to time: the next one will do */
	if (v->epoch != s->epoch && s->epoch && rp_seq_before(v->seq, s->epoch_nonce))
		return;		/* a late ack from before the current epoch */
	a->stats[RP_AG_heartbeat_acks]++;
	s->last_ack_ns = now;
	/*
	 * The head went silent and no hint has named another: when the only
	 * survivor is the new head, no replica is left to send one.  The tail
	 * that answered is the head of a chain of one; if it is not the head,
	 * it refuses the next request with a hint to the head.
	 */
	if (s->probing && !s->hint_moved && r != s->head)
		move_head(a, i, r, "it answered while the head was silent");
	rtt_sample(a, (double)(now - h->sent_ns) / 1000.0);
	s->lease_ms = v->lease_ms;
	expiry = h->sent_ns + (uint64_t)lease_ms_of(a, s) * NS_PER_MS - guard_ns(a, lease_ms_of(a, s));
	h->sent_ns = 0;
	if (v->epoch == s->epoch && ran_out(s, now)) {
		/*
		 * Grants of this epoch may still be on their way, for flows the
		 * store has given away since: the heartbeats ask for a new one.
		 */
		a->stats[RP_AG_acks_after_lapse]++;
		return;
	}
	if (v->epoch != s->epoch) {
		if (s->epoch)
			pr_warn("rp-load: store %u started a new session (epoch %u): leases of epoch %u are gone\n",
				i, v->epoch, s->epoch);
		else
			pr_info("rp-load: joined store %u, session epoch %u, lease %u ms\n", i,
				v->epoch, v->lease_ms);
		s->epoch = v->epoch;
		s->epoch_nonce = v->seq;
		s->expiry_ns = 0;
		a->stats[RP_AG_session_new]++;
		/*
		 * The data plane reads expiry, then epoch, without a lock
		 * (bpf/rp_helpers.h, rp_live_epoch): the new epoch goes in
		 * first with no time left, then the expiry below, so that no
		 * packet pairs the old epoch with the new expiry.
		 */
		put_session(a, i, 0);
	}
	if (expiry <= s->expiry_ns || expiry <= now)
		return;		/* no later, or too late to give any time */
	s->expiry_ns = expiry;
	s->lapsed = false;
	put_session(a, i, expiry);
}

/*
 * A replica of chain i that is not its head refused a request, naming the
 * head under some version of the chain's configuration: follow the newest.
 */
static void on_not_head(struct rp_agent *a, unsigned int i, const struct rp_msg_view *v)
{
	struct rp_store_sess *s = &a->sess[i];
	char why[32];
	int r;

	a->stats[RP_AG_not_head_rejects]++;
	r = rp_hb_hint(&a->cfg.chains[i], s, v);
	if (r == -ENOENT)
		a->stats[RP_AG_head_hints_unknown]++;
	if (r < 0 || (unsigned int)r == s->head)
		return;
	s->hint_moved = true;
	snprintf(why, sizeof(why), "configuration %u", s->hint_version);
	move_head(a, i, (unsigned int)r, why);
}

void rp_hb_receive(struct rp_agent *a, uint64_t now)
{
	for (;;) {
		uint8_t buf[RP_DGRAM_MAX];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		struct rp_msg_view v;
		ssize_t n = recvfrom(a->sock, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				     &flen);
		unsigned int i, r;

		if (n < 0)
			return;
		switch (rp_hb_parse(&a->cfg, buf, (size_t)n, &from, &v, &i, &r)) {
		case RP_HB_ACK:
			on_ack(a, i, r, &v, now);
			break;
		case RP_HB_NOT_HEAD:
			on_not_head(a, i, &v);
			break;
		case RP_HB_REVOKE:
			rp_snap_revoke(a, &v, &from);	/* bounded mode: with the state */
			break;
		case RP_HB_IGNORE:
			break;
		}
	}
}
