/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The stateful firewall: connections opened from the inside prefix pass
 * with their replies; from the outside only connections to a port a rule
 * opens.  The rest is dropped.
 *
 * One key per connection (the inside end first, include/redplane/fw.h), so
 * both directions are one flow.  Its state is the connection's phase:
 *
 *   TCP   SYN_SENT --SYN-ACK--> ESTABLISHED --RST--> CLOSED
 *            `----------------RST-------------------^
 *         ESTABLISHED notes each side's FIN; after both, or after a RST,
 *         a new SYN on the same ports opens a new connection.
 *   UDP   a pseudo-connection, open while datagrams come; idle for
 *         cfg_fw_udp_idle_ns (to 1.25 times that), it expires.
 *
 * Every change of phase is a write: the packet that caused it leaves once
 * the store has it.  Packets that change nothing only read.  UDP idleness
 * is judged by a time in the replicated state, CLOCK_TAI (the switches'
 * clocks agree, by NTP or PTP, to well under the timeout): a datagram more
 * than a quarter of the timeout after that time writes it anew, so a busy
 * pseudo-connection costs at most one write per quarter timeout, and a
 * switch that takes it over judges it as its last owner did.
 */
#ifndef __RP_APP_FW_H
#define __RP_APP_FW_H

#include "rp_app.h"

const volatile __be32 cfg_fw_int_net;
const volatile __be32 cfg_fw_int_mask;
const volatile __u64 cfg_fw_udp_idle_ns = 30000000000ull;	/* ns */
/* ports the rules open to the outside, one bit each */
const volatile __u64 cfg_fw_allow_tcp[RP_FW_PORT_WORDS];
const volatile __u64 cfg_fw_allow_udp[RP_FW_PORT_WORDS];

static __always_inline bool fw_rule_allows(__u8 proto, __be16 dport)
{
	__u32 port = bpf_ntohs(dport), i = (port >> 6) & (RP_FW_PORT_WORDS - 1);
	__u64 w = proto == IPPROTO_TCP ? cfg_fw_allow_tcp[i] : cfg_fw_allow_udp[i];

	return (w >> (port & 63)) & 1;
}

/*
 * The packet may open a connection: it comes from the inside, or a rule
 * allows its port (rules name TCP and UDP ports; ICMP only from the inside).
 */
static __always_inline bool fw_may_open(const struct rp_pkt *p, bool out)
{
	return out || (!p->icmp && fw_rule_allows(p->ip->protocol, p->dport));
}

/* The state of a connection this packet opens. */
static __always_inline void fw_open(struct rp_fw_state *s, bool tcp, bool out, __u64 now)
{
	__builtin_memset(s, 0, sizeof(*s));
	s->phase = tcp ? RP_FW_SYN_SENT : RP_FW_UDP;
	s->origin = out ? RP_FW_OUT : RP_FW_IN;
	s->seen_ns = tcp ? 0 : now;
}

static __always_inline bool fw_state_ok(const __u8 *state, __u8 state_len, bool tcp)
{
	const struct rp_fw_state *s = (const struct rp_fw_state *)state;

	if (state_len != sizeof(*s) || (s->origin != RP_FW_OUT && s->origin != RP_FW_IN))
		return false;
	return tcp ? s->phase >= RP_FW_SYN_SENT && s->phase <= RP_FW_CLOSED
		   : s->phase == RP_FW_UDP;
}

/*
 * TCP: the phase this packet leads to, in *s; false if the phase does not
 * allow the packet.  No sequence numbers are checked: this is a connection
 * tracker, not a TCP normalizer.
 */
static __always_inline bool fw_tcp_next(struct rp_fw_state *s, bool may_open, bool out, __u8 tf)
{
	bool from_opener = out == (s->origin == RP_FW_OUT);

	switch (s->phase) {
	case RP_FW_SYN_SENT:
		if (tf & RP_TCP_RST) {
			s->phase = RP_FW_CLOSED;
			return true;
		}
		if (from_opener)
			return rp_tcp_opener(tf);	/* the SYN again */
		if ((tf & (RP_TCP_SYN | RP_TCP_ACK)) != (RP_TCP_SYN | RP_TCP_ACK))
			return false;
		s->phase = RP_FW_ESTABLISHED;
		return true;
	case RP_FW_ESTABLISHED:
		if (tf & RP_TCP_RST) {
			s->phase = RP_FW_CLOSED;
			return true;
		}
		if (rp_tcp_opener(tf) && s->fin == (RP_FW_FIN_OUT | RP_FW_FIN_IN) && may_open) {
			/* both sides closed: the same ports, a new connection */
			fw_open(s, true, out, 0);
			return true;
		}
		if (tf & RP_TCP_FIN)
			s->fin |= out ? RP_FW_FIN_OUT : RP_FW_FIN_IN;
		return true;
	default:	/* RP_FW_CLOSED */
		if (!rp_tcp_opener(tf) || !may_open)
			return false;
		fw_open(s, true, out, 0);
		return true;
	}
}

/*
 * UDP: refreshes or reopens *s at `now` (CLOCK_TAI); false if the
 * pseudo-connection expired and the packet may not open it again.
 */
static __always_inline bool fw_udp_next(struct rp_fw_state *s, bool may_open, bool out, __u64 now)
{
	__u64 idle = cfg_fw_udp_idle_ns;
	__s64 age = (__s64)(now - s->seen_ns);	/* < 0: the clocks differ a little */

	if (age > (__s64)(idle + idle / 4)) {
		if (!may_open)
			return false;
		fw_open(s, false, out, now);
	} else if (age > (__s64)(idle / 4)) {
		s->seen_ns = now;
	}
	return true;
}

static __always_inline bool fw_same(const struct rp_fw_state *a, const struct rp_fw_state *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1];
}

/* No lease: open the connection, ask with what this switch knows (`known`), or look it up. */
static __always_inline int fw_ask(struct xdp_md *ctx, struct rp_scratch *sc, struct rp_pkt *p,
				  const struct rp_flow_key *key, const struct rp_fw_state *known,
				  bool out, __u8 tf)
{
	bool tcp = p->ip->protocol == IPPROTO_TCP;
	struct rp_fw_state prop;

	if (!tcp || rp_tcp_opener(tf)) {
		if (fw_may_open(p, out)) {
			if (!out && !rp_lookup_allowed()) {
				/*
				 * Opened from the outside: a spoofed SYN flood at an
				 * open port costs the store what --lookup-rate allows
				 */
				rp_stat(RP_DP_drop_lookup_rate);
				return XDP_DROP;
			}
			/* the store keeps what it has if the connection exists */
			fw_open(&prop, tcp, out, tcp ? 0 : bpf_ktime_get_tai_ns());
			rp_stat(RP_DP_fw_new);
			return rp_lease(ctx, sc, key, &prop, sizeof(prop));
		}
		if (tcp) {
			/* unsolicited: no connection starts with it; the store is not asked */
			rp_stat(RP_DP_fw_blocked);
			return XDP_DROP;
		}
	}
	if (known)
		/* known here (a lapsed lease, a restarted store): ask with it */
		return rp_lease(ctx, sc, key, known, sizeof(*known));
	/* a reply, or a connection another switch saw open: only if the store has it */
	return rp_lease(ctx, sc, key, NULL, 0);
}

/* What the firewall's look at a connection under its lock came to. */
enum fw_verdict {
	FW_NOT_HELD,
	FW_BAD_STATE,
	FW_REFUSED,		/* the phase does not allow the packet */
	FW_PASS,
	FW_WRITE,		/* built in the scratch */
};

/*
 * Under the connection's lock: its phase moved by the packet, and a write
 * built when the phase changed (or one is not acknowledged yet: the
 * firewall's verdicts depend on the phase, so no packet may leave on a
 * phase the store does not have).  *st gets the state seen, for a lease
 * request when not held; *refresh whether a UDP time was renewed.
 */
static __always_inline enum fw_verdict fw_step_locked(struct rp_scratch *sc, struct rp_dp_flow *f,
						      __u32 live, bool tcp, bool may_open,
						      bool out, __u8 tf, __u64 now,
						      struct rp_fw_state *st, bool *refresh)
{
	struct rp_fw_state *cur = (struct rp_fw_state *)f->state, next;
	bool ok;

	__builtin_memcpy(st, cur, sizeof(*st));
	if (!rp_held(f, live))
		return FW_NOT_HELD;
	if (!fw_state_ok(f->state, f->state_len, tcp))
		return FW_BAD_STATE;
	__builtin_memcpy(&next, cur, sizeof(next));
	ok = tcp ? fw_tcp_next(&next, may_open, out, tf) : fw_udp_next(&next, may_open, out, now);
	if (!ok)
		return FW_REFUSED;
	if (fw_same(&next, cur) && !rp_write_pending(f))
		return FW_PASS;
	*refresh = next.seen_ns != cur->seen_ns;
	__builtin_memcpy(cur, &next, sizeof(next));
	rp_write_locked(sc, f, sizeof(*cur));
	return FW_WRITE;
}

/*
 * An ICMP error passes when it quotes a packet of a connection this
 * firewall passed (path MTU discovery, traceroute, port unreachable), and
 * is dropped otherwise: the quoted packet's key, the inside end first, must
 * be a connection held here or known to the store.
 */
static __always_inline int fw_icmp_error(struct xdp_md *ctx, struct rp_scratch *sc,
					 struct rp_pkt *p, bool out)
{
	struct iphdr *iip = p->in_ip;
	struct rp_flow_view view;
	struct rp_flow_key key;
	struct rp_dp_flow *f;
	bool tcp, ok;
	__u32 live;

	if (!rp_icmp_quote_ok(p))
		return XDP_DROP;
	tcp = iip->protocol == IPPROTO_TCP;

	/* the quoted packet went the other way: from the inside when the error comes in */
	if (out)
		rp_key_v4(&key, iip->protocol, iip->daddr, p->in_l4->dest, iip->saddr,
			  p->in_l4->source);
	else
		rp_key_v4(&key, iip->protocol, iip->saddr, p->in_l4->source, iip->daddr,
			  p->in_l4->dest);
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return rp_lease(ctx, sc, &key, NULL, 0);
	live = rp_live_epoch(rp_store_of(&key), rp_lease_now());
	if (rp_flow_peek(f, &key, &view, sizeof(struct rp_fw_state))) {
		ok = rp_view_held(&view, live);
		if (ok && !fw_state_ok(view.state, view.state_len, tcp)) {
			rp_stat(RP_DP_drop_icmp_error);
			return XDP_DROP;
		}
	} else {
		rp_flow_lock(f);
		ok = rp_flow_is(f, &key) && rp_held(f, live) &&
		     fw_state_ok(f->state, f->state_len, tcp);
		rp_flow_unlock(f);
	}
	if (!ok)
		return rp_lease(ctx, sc, &key, NULL, 0);
	rp_stat(RP_DP_icmp_translated);
	return rp_pass(ctx, sc, p);
}

SEC("xdp")
int rp_app_fw(struct xdp_md *ctx)
{
	struct rp_pkt p;
	struct rp_scratch *sc = rp_app_begin(ctx, &p);
	bool out, in, tcp, may_open, mine, known, refresh = false;
	struct rp_fw_state st, next;
	struct rp_flow_view view;
	struct rp_flow_key key;
	enum fw_verdict v;
	struct rp_dp_flow *f;
	__u32 live;
	__u64 now;
	__u8 tf;

	if (!sc)
		return XDP_DROP;
	out = (p.ip->saddr & cfg_fw_int_mask) == cfg_fw_int_net;
	in = (p.ip->daddr & cfg_fw_int_mask) == cfg_fw_int_net;
	if (out == in) {
		/* does not cross between inside and outside */
		rp_stat(RP_DP_pass_not_app);
		return XDP_PASS;
	}
	if (p.icmp == RP_ICMP_ERROR)
		return fw_icmp_error(ctx, sc, &p, out);
	tcp = p.ip->protocol == IPPROTO_TCP;
	/* one key for both directions: the inside end first */
	if (out)
		rp_key_v4(&key, p.ip->protocol, p.ip->saddr, p.sport, p.ip->daddr, p.dport);
	else
		rp_key_v4(&key, p.ip->protocol, p.ip->daddr, p.dport, p.ip->saddr, p.sport);
	tf = rp_tcp_flags(&p);
	f = bpf_map_lookup_elem(&flows, &key);
	if (!f)
		return fw_ask(ctx, sc, &p, &key, NULL, out, tf);
	/* what needs a helper, before the lock */
	live = rp_live_epoch(rp_store_of(&key), rp_lease_now());
	now = tcp ? 0 : bpf_ktime_get_tai_ns();
	may_open = fw_may_open(&p, out);
	if (rp_flow_peek(f, &key, &view, sizeof(st)) && rp_view_held(&view, live) &&
	    fw_state_ok(view.state, view.state_len, tcp) && view.seq == view.acked) {
		/*
		 * The fast path: a packet that moves the phase nowhere only
		 * reads, and takes no lock; any other goes through the lock.
		 */
		__builtin_memcpy(&st, view.state, sizeof(st));
		__builtin_memcpy(&next, &st, sizeof(next));
		if ((tcp ? fw_tcp_next(&next, may_open, out, tf)
			 : fw_udp_next(&next, may_open, out, now)) &&
		    fw_same(&next, &st)) {
			rp_touch(f, tf, rp_touch_now());
			return rp_pass(ctx, sc, &p);
		}
	}
	rp_flow_lock(f);
	mine = rp_flow_is(f, &key);
	v = mine ? fw_step_locked(sc, f, live, tcp, may_open, out, tf, now, &st, &refresh)
		 : FW_NOT_HELD;
	known = mine && f->state_len == sizeof(st) && !(f->flags & RP_DPF_GONE);
	rp_flow_unlock(f);
	if (v == FW_PASS || v == FW_WRITE)
		rp_touch(f, tf, rp_touch_now());

	switch (v) {
	case FW_NOT_HELD:
		return fw_ask(ctx, sc, &p, &key, known ? &st : NULL, out, tf);
	case FW_BAD_STATE:
		rp_stat(RP_DP_drop_bad_state);
		return XDP_DROP;
	case FW_REFUSED:
		rp_stat(tcp ? RP_DP_fw_invalid : RP_DP_fw_expired);
		return XDP_DROP;
	case FW_WRITE:
		/* a new phase (or one the store has not acknowledged yet) */
		if (refresh)
			rp_stat(RP_DP_fw_refresh);
		return rp_send_write(ctx, sc, &p, &key);
	default:
		return rp_pass(ctx, sc, &p);
	}
}

#endif /* __RP_APP_FW_H */
