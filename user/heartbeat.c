// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The switch's sessions with its store chains.  A heartbeat renews the
 * session; its ack tells the epoch and the lease period.  The data plane's
 * lease is timed from when the heartbeat was SENT, less a guard for clock
 * rate drift, so it always ends before the store's (timed from receipt).
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

int rp_hb_init(struct rp_agent *a)
{
	struct timespec res;

	a->next_hb_ns = 0;
	if (clock_getres(CLOCK_MONOTONIC_COARSE, &res))
		return -errno;
	a->coarse_tick_ns = (uint64_t)res.tv_sec * 1000000000ull + (uint64_t)res.tv_nsec;
	return 0;
}

static void send_heartbeat(struct rp_agent *a, unsigned int i, uint64_t now)
{
	struct rp_store_sess *s = &a->sess[i];
	uint8_t buf[RP_MSG_LEN];
	struct rp_msg_view v = {
		.type = RP_MSG_HEARTBEAT,
		.switch_id = a->cfg.switch_id,
		.seq = ++a->nonce,
		.epoch = s->epoch,
	};
	int len = rp_msg_encode(buf, sizeof(buf), &v);

	s->sent[v.seq % RP_HB_NONCES] = (struct hb_sent){ .nonce = v.seq, .sent_ns = now };
	if (len > 0 && sendto(a->sock, buf, (size_t)len, 0, (struct sockaddr *)&a->cfg.stores[i],
			      sizeof(a->cfg.stores[i])) == len)
		a->stats[RP_AG_heartbeats_sent]++;
}

void rp_hb_tick(struct rp_agent *a, uint64_t now)
{
	uint32_t pace_ms = a->cfg.lease_ms;

	for (unsigned int i = 0; i < a->cfg.nstores; i++) {
		struct rp_store_sess *s = &a->sess[i];

		if (lease_ms_of(a, s) < pace_ms)
			pace_ms = lease_ms_of(a, s);
		if (s->epoch && !s->lapsed && now >= s->expiry_ns) {
			s->lapsed = true;
			a->stats[RP_AG_session_lapsed]++;
			pr_warn("rp-load: session with store %u lapsed: its flows stop until renewed\n",
				i);
		}
	}
	if (now < a->next_hb_ns)
		return;
	for (unsigned int i = 0; i < a->cfg.nstores; i++)
		send_heartbeat(a, i, now);
	/* four heartbeats per lease: one lost heartbeat never lapses a session */
	a->next_hb_ns = now + (uint64_t)pace_ms * NS_PER_MS / 4;
}

static int store_index(const struct rp_agent *a, const struct sockaddr_in *from)
{
	for (unsigned int i = 0; i < a->cfg.nstores; i++)
		if (a->cfg.stores[i].sin_addr.s_addr == from->sin_addr.s_addr &&
		    a->cfg.stores[i].sin_port == from->sin_port)
			return (int)i;
	return -1;
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

static void on_ack(struct rp_agent *a, unsigned int i, const struct rp_msg_view *v, uint64_t now)
{
	struct rp_store_sess *s = &a->sess[i];
	struct hb_sent *h = &s->sent[v->seq % RP_HB_NONCES];
	struct rp_dp_session dp;
	uint64_t expiry;
	uint32_t key = i;

	if (h->nonce != v->seq || !h->sent_ns)
		return;		/* too old to time: the next one will do */
	if (v->epoch != s->epoch && s->epoch && rp_seq_before(v->seq, s->epoch_nonce))
		return;		/* a late ack from before the current epoch */
	a->stats[RP_AG_heartbeat_acks]++;
	rtt_sample(a, (double)(now - h->sent_ns) / 1000.0);
	s->lease_ms = v->lease_ms;
	expiry = h->sent_ns + (uint64_t)lease_ms_of(a, s) * NS_PER_MS - guard_ns(a, lease_ms_of(a, s));
	h->sent_ns = 0;
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
		 * The data plane reads epoch and expiry separately: the new epoch
		 * goes in first with no time left, then the expiry below.
		 */
		dp = (struct rp_dp_session){ .epoch = s->epoch };
		bpf_map_update_elem(bpf_map__fd(a->skel->maps.sessions), &key, &dp, 0);
	}
	if (expiry <= s->expiry_ns)
		return;
	s->expiry_ns = expiry;
	s->last_ack_ns = now;
	s->lapsed = false;
	dp = (struct rp_dp_session){ .expiry_ns = expiry, .epoch = s->epoch };
	if (bpf_map_update_elem(bpf_map__fd(a->skel->maps.sessions), &key, &dp, 0))
		pr_warn("rp-load: Couldn't update the session map: %s\n", strerror(errno));
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
		int i;

		if (n < 0)
			return;
		i = store_index(a, &from);
		if (i < 0 || rp_msg_decode(buf, (size_t)n, &v) || v.type != RP_MSG_HEARTBEAT_ACK ||
		    v.switch_id != a->cfg.switch_id)
			continue;	/* only heartbeat acks from our stores come here */
		on_ack(a, (unsigned int)i, &v, now);
	}
}
