/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stateful firewall's state and counters, shared by its program
 * (bpf/app_fw.h), rp-load (user/app_fw.c) and the tests.
 *
 * One key per connection, whichever side sent the packet: the 5-tuple as
 * the inside host sends it (saddr and sport are the inside end), so that a
 * connection and its replies are one flow, leased and replicated as one.
 */
#ifndef __REDPLANE_FW_H
#define __REDPLANE_FW_H

#include <linux/types.h>

struct rp_fw_state {
	__u64 seen_ns;		/* UDP: CLOCK_TAI, ns, of the write that last
				 * refreshed it (the same clock on every switch);
				 * TCP: 0 */
	__u8 phase;		/* RP_FW_SYN_SENT ... RP_FW_UDP */
	__u8 origin;		/* RP_FW_OUT: opened from the inside; RP_FW_IN: by a rule */
	__u8 fin;		/* TCP: RP_FW_FIN_OUT | RP_FW_FIN_IN, FINs seen */
	__u8 pad[5];		/* zero */
};

_Static_assert(sizeof(struct rp_fw_state) == 16, "rp_fw_state size");

/* rp_fw_state.phase */
#define RP_FW_SYN_SENT		1	/* TCP: the opener's SYN passed */
#define RP_FW_ESTABLISHED	2	/* TCP: the other side's SYN-ACK passed */
#define RP_FW_CLOSED		3	/* TCP: a RST passed */
#define RP_FW_UDP		4	/* a UDP pseudo-connection */

/* rp_fw_state.origin */
#define RP_FW_OUT		1
#define RP_FW_IN		2

/* rp_fw_state.fin: who sent a FIN */
#define RP_FW_FIN_OUT		0x01	/* the inside host */
#define RP_FW_FIN_IN		0x02	/* the outside host */

/* Inbound ports a rule opens, one bit per port (rodata bitmaps). */
#define RP_FW_PORT_WORDS	(65536 / 64)

#define RP_FW_STATS(X)							\
	X(fw_new)		/* connection proposed (opened) */	\
	X(fw_blocked)		/* unsolicited inbound SYN: dropped, the store not asked */ \
	X(fw_invalid)		/* a packet its connection's state does not allow */ \
	X(fw_expired)		/* inbound UDP of an idle pseudo-connection */ \
	X(fw_refresh)		/* UDP writes that refreshed the idle timer */

#endif /* __REDPLANE_FW_H */
