// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Idle timeouts and the phase that picks one (redplane/timeout.h). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "redplane/log.h"
#include "redplane/timeout.h"

#define NS_PER_SEC	1000000000ull

static const char *const timeout_names[__RP_TO_MAX] = {
#define X(name, secs) [RP_TO_##name] = #name,
	RP_TIMEOUTS(X)
#undef X
};

void rp_timeouts_default(uint64_t *ns)
{
#define X(name, secs) ns[RP_TO_##name] = (uint64_t)(secs) * NS_PER_SEC;
	RP_TIMEOUTS(X)
#undef X
}

/* SECONDS, with up to millisecond decimals: 0.25, 120 */
static int parse_seconds(const char *s, uint64_t *ns)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0.001) || v > 100.0 * 86400 * 365)
		return -EINVAL;
	*ns = (uint64_t)(v * 1e3 + 0.5) * 1000000ull;
	return 0;
}

int rp_timeouts_parse(const char *prog, const char *arg, uint64_t *ns)
{
	char buf[512], *save = NULL;

	if (strlen(arg) >= sizeof(buf)) {
		pr_warn("%s: --timeout '%s' is too long\n", prog, arg);
		return -EINVAL;
	}
	strcpy(buf, arg);
	for (char *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		int i;

		if (eq)
			*eq = '\0';
		for (i = 0; i < __RP_TO_MAX && strcmp(timeout_names[i], item); i++)
			;
		if (!eq || i == __RP_TO_MAX || parse_seconds(eq + 1, &ns[i])) {
			pr_warn("%s: invalid --timeout '%s': expected NAME=SECONDS[,...], NAME one of tcp_syn_sent, tcp_syn_recv, tcp_established, tcp_fin_wait, tcp_close_wait, tcp_last_ack, tcp_time_wait, tcp_close, udp, udp_stream, icmp, negative, given_up; SECONDS at least 0.001\n",
				prog, arg);
			return -EINVAL;
		}
	}
	return 0;
}

/*
 * After Linux's TCP tracker, from the flags each side was seen to send: a
 * RST closes; FINs from both sides leave TIME_WAIT; a FIN from the opener
 * alone, FIN_WAIT; from the other alone, CLOSE_WAIT; the other side's
 * SYN-ACK, or any packet without SYN (a connection picked up midway, or
 * the opener's ACK), makes it established; the opener's SYN alone is
 * SYN_SENT.
 */
int rp_tcp_timeout(uint8_t opener, uint8_t other)
{
	uint8_t any = opener | other;

	if (any & TH_RST)
		return RP_TO_tcp_close;
	if ((opener & TH_FIN) && (other & TH_FIN))
		return RP_TO_tcp_time_wait;
	if (opener & TH_FIN)
		return RP_TO_tcp_fin_wait;
	if (other & TH_FIN)
		return RP_TO_tcp_close_wait;
	if ((other & TH_ACK) || (opener & TH_ACK))
		return RP_TO_tcp_established;
	if (other & TH_SYN)
		return RP_TO_tcp_syn_recv;
	return opener ? RP_TO_tcp_syn_sent : RP_TO_tcp_established;
}

int rp_udp_timeout(uint8_t proto, bool both)
{
	if (proto == IPPROTO_ICMP)
		return RP_TO_icmp;
	return both ? RP_TO_udp_stream : RP_TO_udp;
}

const char *rp_timeout_name(int t)
{
	return t >= 0 && t < __RP_TO_MAX ? timeout_names[t] : NULL;
}
