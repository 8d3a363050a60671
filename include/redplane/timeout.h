/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Idle timeouts of flows (rp-load --timeout NAME=SECONDS), named and
 * defaulted as Linux connection tracking's nf_conntrack_*_timeout*
 * (seconds), and the phase of a connection that picks one
 * (docs/DATAPLANE.md, "Expiry").
 */
#ifndef __REDPLANE_TIMEOUT_H
#define __REDPLANE_TIMEOUT_H

#include <stdbool.h>
#include <stdint.h>

#define RP_TIMEOUTS(X)							\
	X(tcp_syn_sent, 120)						\
	X(tcp_syn_recv, 60)						\
	X(tcp_established, 432000)					\
	X(tcp_fin_wait, 120)						\
	X(tcp_close_wait, 60)						\
	X(tcp_last_ack, 30)						\
	X(tcp_time_wait, 120)						\
	X(tcp_close, 10)						\
	X(udp, 30)							\
	X(udp_stream, 120)						\
	X(icmp, 30)							\
	X(negative, 1)							\
	X(given_up, 30)

enum rp_timeout {
#define X(name, secs) RP_TO_##name,
	RP_TIMEOUTS(X)
#undef X
	__RP_TO_MAX,
	RP_TO_NEVER = -1,	/* the flow does not expire (the sketch's chunks) */
};


/* Every timeout at its default, in ns. */
void rp_timeouts_default(uint64_t *ns);
/* NAME=SECONDS[,...] into ns[]: 0, or -EINVAL after saying why. */
int rp_timeouts_parse(const char *prog, const char *arg, uint64_t *ns);
/* "tcp_syn_sent", ...; NULL out of range */
const char *rp_timeout_name(int t);

/*
 * The timeout class of a TCP connection from what each side sent: the
 * RP_TCP_* flags seen from the side that opened it and from the other.
 */
int rp_tcp_timeout(uint8_t opener, uint8_t other);
/* A UDP (or other) flow: a stream once both sides sent. */
int rp_udp_timeout(uint8_t proto, bool both);
#endif /* __REDPLANE_TIMEOUT_H */
