/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A Promela model of redplane's lease, write and chain protocol
 * (docs/PROTOCOL.md, docs/CHAIN.md), for spin.  docs/MODEL.md says what
 * is modelled, what is abstracted away, and how to run it.
 *
 * One flow, two switches, a chain of NREP replicas of which one may crash,
 * messages that may be lost, and real time as a global tick counter that
 * every clock reads with a bounded drift.
 *
 * Safety (asserted by monitor processes, checked in every reachable state):
 *   mutex     at most one switch holds a valid lease at any instant;
 *   released  a packet a switch releases on an ACK is a write the tail has;
 *   durable   no write any switch saw ACKed is missing at the current tail,
 *             whichever one replica crashed;
 *   fresh     a switch never installs a grant the committed record no
 *             longer names, nor releases on an ACK of another holding.
 * Liveness (ltl `asked`, with weak fairness, -DLIVENESS): switch 1, which
 * keeps asking, eventually holds the lease.  Time stops at TMAX; from then
 * on a switch may ask again whenever the network is quiet, so that a run
 * where the lease never moves is an infinite one spin can find.
 *
 * Bounds (-D...): NREP replicas, lease L ticks, DRIFT, TMAX, SEQMAX writes
 * a holding, REQMAX requests a switch, LOSSES lost datagrams, CRASH_T the
 * first tick a replica may crash in (none when beyond TMAX); CHECKS picks the
 * safety properties asserted.
 *
 * Seeded bugs (-DBUG_...; model/check.sh shows spin rejects each):
 *   BUG_LEASE_FROM_RECV   the switch times its lease from the ack's arrival
 *   BUG_GRANT_AT_HEAD     the head grants before the tail has the change
 *   BUG_ACK_AT_HEAD       the head acks a write before the tail has it
 *   BUG_NO_DRIFT_GUARD    the switch's guard leaves the clocks' drift out
 *   BUG_TAKEOVER_LAPSES   a new head counts every session as lapsed
 *   BUG_NO_GEN_CHECK      a switch installs any grant of its epoch
 *   BUG_IGNORE_REVOKE     a switch never gives a flow up
 *   BUG_FORGET_UNKNOWN_REVOKE  a switch acks a revoke of a holding it does
 *                         not have yet without remembering it
 *   BUG_IMPLIED_ACK       any request of the owner counts as its revoke-ack
 *   BUG_REVIVE_LAPSED     a switch whose session ran out takes it back when
 *                         renewed with the same epoch (a new head revives it)
 */

#ifndef NREP
#define NREP	2
#endif
#define NSW	2
#ifndef L
#define L	4	/* lease period, ticks */
#endif
#ifndef DRIFT
#define DRIFT	1	/* how far a clock may be off over one lease, ticks */
#endif
#ifdef BUG_NO_DRIFT_GUARD
#define GUARD	1		/* a guard that forgets the clocks drift */
#else
#define GUARD	(2 * DRIFT + 1)	/* the switch's guard: both clocks' drift, and one */
#endif
#ifndef TMAX
#define TMAX	8	/* time stops here */
#endif
#ifndef LOGMAX
#define LOGMAX	6	/* entries not yet at every replica and answered */
#endif
#ifndef QH
#define QH	4	/* datagrams the head's queue holds */
#endif
#ifndef QS
#define QS	3	/* datagrams a switch's queue holds */
#endif
#ifndef SEQMAX
#define SEQMAX	2	/* writes per holding */
#endif
#ifndef CRASH_T
#define CRASH_T	1	/* from this tick on, a replica may crash */
#endif
#ifndef LOSSES
#define LOSSES	1	/* messages the network may lose */
#endif

mtype = { HB, HBACK, REQ, GRANT, WRITE, ACK, REVOKE, RACK };
#define LAPSED	1	/* in a heartbeat's gen: the session it names ran out at the switch */

/*
 * A broken property sets its ghost and fails an assertion that names it
 * (model/check.sh reads the name).  CHECKS picks the properties asserted
 * (1 mutex, 2 released, 4 durable, 8 fresh), so that a seeded bug can be
 * shown to be caught by one property alone.
 */
#ifndef CHECKS
#define CHECKS	15
#endif
#define P_mutex		1
#define P_released	2
#define P_durable	4
#define P_fresh		8
bool broke_mutex, broke_released, broke_durable, broke_fresh;
#define broken(p)	if :: (CHECKS & P_##p) -> broke_##p = true; assert(!broke_##p) :: else -> skip fi

/*
 * A REJECT tells a switch nothing it acts on here (it asks again on its own
 * clock), so the store's rejects are not sent: they would only fill queues.
 */
#define reject()	skip

byte now;

/*
 * ---- the chain: one log, each replica holding a prefix of it ----
 *
 * An entry is the flow record after a change.  Entries every live replica
 * has and the tail has answered for are folded into the base record, so
 * that the log holds only what is in flight: two histories that leave the
 * chain in the same state are one state to spin.
 */
typedef entry {
	byte owner; byte epoch; byte gen; byte seq;	/* the flow record after it */
	mtype reply;		/* sent to switch rsw once the tail has the entry */
	byte rsw; byte rarg;	/* ACK: its seq */
};
entry log[LOGMAX];
byte loglen;
byte b_owner, b_epoch, b_gen, b_seq;	/* the record before log[0] */
byte applied[NREP];
bool alive[NREP];
byte replied;		/* replies sent for log[0, replied) */
bool crashed;
byte losses;

/* the committed record: the flow as the current tail has it */
byte c_owner, c_epoch, c_gen, c_seq;
byte max_acked;		/* ghost: the newest seq any switch saw ACKed */

/* the head's own state */
byte f_owner, f_epoch, f_gen, f_seq;
byte h_epoch[NSW];
byte h_exp[NSW];	/* store time: live while now < h_exp */
byte next_epoch = 1;
byte waiter;		/* 1 + the switch waiting on a revoke, 0 none */
bool revoking;		/* a revoke went to the owner for the waiter */
byte rv_t;		/* the time of the newest revoke, + 1: one a tick */

/* scratch for the inlines: used only inside atomic steps that never block */
byte gh, gt, gk;

/* the switches */
byte s_epoch[NSW];
byte s_end[NSW];	/* the session is valid while now < s_end */
bool s_was_live[NSW];	/* its epoch has been valid here (an end was taken) */
byte s_gen[NSW];	/* the holding, 0 none */
byte s_gone[NSW];	/* the newest holding given up */
byte s_seq[NSW];
byte s_acked[NSW];
byte hb_nonce[NSW];	/* the send time of the newest heartbeat, + 1 */
byte req_t[NSW];	/* the time of the newest request, + 1: one a tick */
byte wr_t[NSW];		/* the time of the newest write sent, + 1: one a tick */
bool want[NSW];
/*
 * REQMAX bounds the requests each switch sends (a smaller state space for
 * the safety checks).  LIVENESS: switch 0 asks once, switch 1 keeps asking.
 */
#if defined(REQMAX) || defined(LIVENESS)
byte nreq[NSW];		/* requests sent */
#ifdef LIVENESS
#define MAY_ASK(i)	(i == 1 || nreq[0] == 0)
#define ASKED(i)	if :: i == 0 -> nreq[0] = 1 :: else -> skip fi
#else
#define MAY_ASK(i)	(nreq[i] < REQMAX)
#define ASKED(i)	nreq[i]++
#endif
#else
#define MAY_ASK(i)	true
#define ASKED(i)	skip
#endif

chan to_head = [QH] of { mtype, byte, byte, byte, byte };	/* type, sw, epoch, gen, seq */
chan to_sw[NSW] = [QS] of { mtype, byte, byte, byte };		/* type, epoch, gen, arg */

#define valid(i)	(s_gen[i] != 0 && now < s_end[i])

/* the first and the last replica alive (at most one is dead) */
#if NREP == 3
#define HEAD	(alive[0] -> 0 : (alive[1] -> 1 : 2))
#define TAIL	(alive[2] -> 2 : (alive[1] -> 1 : 0))
#else
#define HEAD	(alive[0] -> 0 : 1)
#define TAIL	(alive[1] -> 1 : 0)
#endif

inline head_of(h) {
	h = HEAD
}

inline tail_of(t) {
	t = TAIL
}

/* The record the current tail has: the newest flow entry of its prefix. */
inline recompute_committed() {
	tail_of(gt);
	if
	:: applied[gt] == 0 ->
		c_owner = b_owner; c_epoch = b_epoch; c_gen = b_gen; c_seq = b_seq
	:: else ->
		gk = applied[gt] - 1;
		c_owner = log[gk].owner; c_epoch = log[gk].epoch;
		c_gen = log[gk].gen; c_seq = log[gk].seq
	fi;
	gt = 0; gk = 0
}

/* Fold what every live replica has and the tail answered into the base. */
inline fold() {
	gh = replied;
	gk = 0;
	do
	:: gk < NREP ->
		if
		:: alive[gk] && applied[gk] < gh -> gh = applied[gk]
		:: else -> skip
		fi;
		gk++
	:: else -> break
	od;
	if
	:: gh > 0 ->
		b_owner = log[gh - 1].owner; b_epoch = log[gh - 1].epoch;
		b_gen = log[gh - 1].gen; b_seq = log[gh - 1].seq;
		gk = 0;
		do
		:: gk + gh < loglen ->
			log[gk].owner = log[gk + gh].owner; log[gk].epoch = log[gk + gh].epoch;
			log[gk].gen = log[gk + gh].gen; log[gk].seq = log[gk + gh].seq;
			log[gk].reply = log[gk + gh].reply; log[gk].rsw = log[gk + gh].rsw;
			log[gk].rarg = log[gk + gh].rarg;
			gk++
		:: else -> break
		od;
		do
		:: gk < loglen ->
			log[gk].owner = 0; log[gk].epoch = 0; log[gk].gen = 0; log[gk].seq = 0;
			log[gk].reply = 0; log[gk].rsw = 0; log[gk].rarg = 0;
			gk++
		:: else -> break
		od;
		loglen = loglen - gh;
		replied = replied - gh;
		gk = 0;
		do
		:: gk < NREP ->
			if
			:: alive[gk] -> applied[gk] = applied[gk] - gh
			:: else -> applied[gk] = 0
			fi;
			gk++
		:: else -> break
		od
	:: else -> skip
	fi;
	gh = 0; gk = 0
}

/* A datagram: the network may lose it, and a full queue drops it. */
inline lossy_send(ch, a, b, c, d) {
	if
	:: losses < LOSSES -> losses++
	:: nfull(ch) -> ch ! a, b, c, d
	:: full(ch) -> skip
	fi
}

inline sw_send(a, b, c, d, e) {
	if
	:: losses < LOSSES -> losses++
	:: nfull(to_head) -> to_head ! a, b, c, d, e
	:: full(to_head) -> skip
	fi
}

/* The tail answers for each entry as it gets it. */
inline answer() {
	do
	:: replied < applied[TAIL] ->
		gk = replied;
		if
		:: log[gk].reply == GRANT ->
			lossy_send(to_sw[log[gk].rsw], GRANT, log[gk].epoch, log[gk].gen, log[gk].seq)
		:: log[gk].reply == ACK ->
			lossy_send(to_sw[log[gk].rsw], ACK, log[gk].epoch, log[gk].gen, log[gk].rarg)
		:: else -> skip
		fi;
		replied++
	:: else -> break
	od;
	gk = 0
}

/* The head appends a change; the reply leaves when the tail has it. */
inline append(a_rep, a_rsw, a_rarg) {
	head_of(gh);
	log[loglen].owner = f_owner; log[loglen].epoch = f_epoch;
	log[loglen].gen = f_gen; log[loglen].seq = f_seq;
	log[loglen].reply = a_rep; log[loglen].rsw = a_rsw; log[loglen].rarg = a_rarg;
#ifdef BUG_GRANT_AT_HEAD
	if
	:: a_rep == GRANT ->
		lossy_send(to_sw[a_rsw], GRANT, f_epoch, f_gen, f_seq);
		log[loglen].reply = 0
	:: else -> skip
	fi;
#endif
#ifdef BUG_ACK_AT_HEAD
	if
	:: a_rep == ACK ->
		lossy_send(to_sw[a_rsw], ACK, f_epoch, f_gen, a_rarg);
		log[loglen].reply = 0
	:: else -> skip
	fi;
#endif
	loglen++;
	applied[gh] = loglen;
	gh = 0;
	recompute_committed();	/* a chain of one commits at once */
	answer();
	fold()
}

#define OWNER_LIVE	(f_owner != 0 && h_epoch[f_owner - 1] == f_epoch && now < h_exp[f_owner - 1])

inline owner_live(live) {
	live = OWNER_LIVE
}

inline take(t_sw) {
	f_owner = t_sw + 1; f_epoch = h_epoch[t_sw]; f_gen++;
	waiter = 0; revoking = false;
	append(GRANT, t_sw, 0)
}

/* ---- the store: the head's handlers, the chain, one crash ---- */
active proctype store()
{
	mtype t;
	byte who, ep, gen, seq, h, r, s, k;
	bool live;

end:	do
	/* a switch's request, at whichever replica is the head now */
	:: atomic { nempty(to_head) && loglen < LOGMAX - 2 -> to_head ? t, who, ep, gen, seq;
		if
		:: t == HB ->
			if
			:: h_epoch[who] == 0 || now >= h_exp[who] ||
			   gen == LAPSED && ep == h_epoch[who] ->
				/*
				 * new, lapsed here, or lapsed at the switch: a new
				 * head may have brought back a session the old one
				 * let lapse, but not the leases it gave away since
				 */
				h_epoch[who] = next_epoch; next_epoch++
			:: else -> skip
			fi;
			/* timed from receipt, by a clock that may run fast */
			if
			:: h_exp[who] = now + L
			:: DRIFT > 0 -> h_exp[who] = now + L - DRIFT
			fi;
			/*
			 * Abstraction: a session (its epoch) is replicated at once;
			 * the chain carries flow records only.  The HEARTBEAT_ACK
			 * still times the switch's lease from its send.
			 */
			lossy_send(to_sw[who], HBACK, h_epoch[who], 0, seq)
		:: t == REQ && (h_epoch[who] != ep || now >= h_exp[who]) ->
			reject()
		:: t == REQ && h_epoch[who] == ep && now < h_exp[who] ->
			owner_live(live);
			if
			:: f_owner == who + 1 && live && !revoking ->
				append(GRANT, who, 0)	/* it lost its copy */
			:: f_owner == who + 1 && live && revoking && gen == f_gen ->
				/*
				 * asking again while being revoked, naming the holding
				 * it gave up: its ack was lost
				 */
				k = waiter - 1; take(k); k = 0;
				reject()
			:: f_owner == who + 1 && live && revoking && gen != f_gen ->
				/* sent before it heard of the revoke: the revoke stands */
				reject()
			:: !live -> take(who)
			:: f_owner != who + 1 && live && (waiter == 0 || waiter == who + 1) ->
				waiter = who + 1; revoking = true; rv_t = now + 1;
				lossy_send(to_sw[f_owner - 1], REVOKE, f_epoch, f_gen, 0)
			:: f_owner != who + 1 && live && waiter != 0 && waiter != who + 1 ->
				reject()	/* busy */
			fi
		:: t == WRITE ->
			owner_live(live);
			if
			:: f_owner == who + 1 && f_epoch == ep && f_gen == gen && live && seq > f_seq ->
				f_seq = seq; append(ACK, who, seq)
			:: f_owner == who + 1 && f_epoch == ep && f_gen == gen && live && seq == f_seq ->
				append(ACK, who, seq)	/* its ACK was lost */
			:: else -> reject()
			fi
		:: t == RACK ->
			if
			:: f_owner == who + 1 && f_epoch == ep && f_gen == gen ->
				f_owner = 0;
				if
				:: waiter != 0 && now < h_exp[waiter - 1] ->
					k = waiter - 1; take(k); k = 0
				:: else -> waiter = 0; revoking = false; append(0, 0, 0)
				fi
			:: else -> skip	/* stale */
			fi
		:: else -> skip
		fi;
		t = 0; who = 0; ep = 0; gen = 0; seq = 0; live = 0
	   }
	/* a waiter whose owner lapsed gets the flow; a lost revoke goes again */
	:: atomic { waiter != 0 && (!OWNER_LIVE || revoking && rv_t != now + 1) ->
		owner_live(live);
		if
		:: !live && now < h_exp[waiter - 1] -> k = waiter - 1; take(k); k = 0
		:: !live && now >= h_exp[waiter - 1] -> waiter = 0; revoking = false
		:: else ->
			rv_t = now + 1; lossy_send(to_sw[f_owner - 1], REVOKE, f_epoch, f_gen, 0)
		fi;
		live = 0
	   }
	/* the chain passes an entry one hop down */
	:: atomic { alive[0] && alive[1] && applied[1] < applied[0] ->
		applied[1]++; recompute_committed(); answer(); fold() }
#if NREP == 3
	:: atomic { alive[1] && alive[2] && applied[2] < applied[1] ->
		applied[2]++; recompute_committed(); answer(); fold() }
	:: atomic { alive[0] && !alive[1] && alive[2] && applied[2] < applied[0] ->
		applied[2]++; recompute_committed(); answer(); fold() }
#endif
	/* one replica crashes; ZooKeeper's configuration drops it */
	:: atomic { !crashed && now >= CRASH_T ->
		crashed = true;
		if
		:: r = 0
		:: r = 1
#if NREP > 2
		:: r = 2
#endif
		fi;
		head_of(h);
		alive[r] = false;
		applied[r] = 0;
		if
		:: r == h ->
			/* the next replica is the head with what it has: the rest is lost */
			head_of(h);
			k = applied[h];
			do
			:: k < loglen ->
				log[k].owner = 0; log[k].epoch = 0; log[k].gen = 0; log[k].seq = 0;
				log[k].reply = 0; log[k].rsw = 0; log[k].rarg = 0;
				k++
			:: else -> break
			od;
			loglen = applied[h];
			if
			:: loglen == 0 ->
				f_owner = b_owner; f_epoch = b_epoch; f_gen = b_gen; f_seq = b_seq
			:: else ->
				f_owner = log[loglen - 1].owner; f_epoch = log[loglen - 1].epoch;
				f_gen = log[loglen - 1].gen; f_seq = log[loglen - 1].seq
			fi;
			/* no switch's lease outlasts one lease period from now */
#ifdef BUG_TAKEOVER_LAPSES
			h_exp[0] = 0; h_exp[1] = 0;
#else
			h_exp[0] = now + L; h_exp[1] = now + L;
#endif
			waiter = 0; revoking = false;
			if
			:: replied > loglen -> replied = loglen
			:: else -> skip
			fi
		:: else -> skip
		fi;
		r = 0; h = 0; k = 0;
		recompute_committed();
		answer();
		fold()
	   }
	od
}

/* ---- a switch ---- */

/*
 * A switch heartbeats and asks at most once a tick.  When time has stopped
 * (TMAX) it may go on asking, and heartbeat while its session is not valid,
 * only when the network is quiet (a retransmission timer longer than a round
 * trip): so that a fair run of the liveness check keeps asking and hears
 * the answers, rather than filling queues that then drop them.
 */
#define ONCE_A_TICK(mark)	(now < TMAX && mark != now + 1)
#define AT_END			(now == TMAX && len(to_sw[i]) == 0 && len(to_head) == 0)

proctype sw(byte i)
{
	mtype t;
	byte ep, gen, arg, d;

end:	do
	/* heartbeat, a few per lease period; the nonce is its send time */
	:: atomic { ONCE_A_TICK(hb_nonce[i]) && now + 2 >= s_end[i] || AT_END && now >= s_end[i] ->
		hb_nonce[i] = now + 1;
#ifdef BUG_REVIVE_LAPSED
		sw_send(HB, i, s_epoch[i], 0, now + 1) }
#else
		/* a session that ran out here is over: it asks for a new one */
		if
		:: s_was_live[i] && now >= s_end[i] -> sw_send(HB, i, s_epoch[i], LAPSED, now + 1)
		:: else -> sw_send(HB, i, s_epoch[i], 0, now + 1)
		fi }
#endif
	/* ask for the flow while it does not hold it */
	/* naming the newest holding it gave up (0: none) */
	:: atomic { want[i] && s_gen[i] == 0 && now < s_end[i] && MAY_ASK(i) &&
		    (ONCE_A_TICK(req_t[i]) || AT_END) ->
		req_t[i] = now + 1; ASKED(i);
#ifdef BUG_IMPLIED_ACK
		sw_send(REQ, i, s_epoch[i], f_gen, 0) }	/* as if any request acked the revoke */
#else
		sw_send(REQ, i, s_epoch[i], s_gone[i], 0) }
#endif
	/* write: the packet waits for the ACK */
	:: atomic { valid(i) && s_seq[i] < SEQMAX && s_acked[i] == s_seq[i] && wr_t[i] != now + 1 ->
		wr_t[i] = now + 1; s_seq[i]++; sw_send(WRITE, i, s_epoch[i], s_gen[i], s_seq[i]) }
	/* retransmit the write not acked yet, on the next tick */
	:: atomic { s_gen[i] != 0 && s_acked[i] < s_seq[i] && wr_t[i] != now + 1 ->
		wr_t[i] = now + 1; sw_send(WRITE, i, s_epoch[i], s_gen[i], s_seq[i]) }
	:: atomic { to_sw[i] ? t, ep, gen, arg ->
		if
		:: t == HBACK && arg == hb_nonce[i] ->
			if
			:: ep != s_epoch[i] ->	/* a new session: every lease of the old is gone */
				s_epoch[i] = ep; s_gen[i] = 0; s_seq[i] = 0; s_acked[i] = 0; s_end[i] = 0;
				s_was_live[i] = false
#ifndef BUG_REVIVE_LAPSED
			:: ep == s_epoch[i] && s_was_live[i] && now >= s_end[i] ->
				/*
				 * The same epoch after it ran out here: its grants may
				 * be on their way still, and the store may have given
				 * the flows away since.  Only a new epoch will do.
				 */
				goto done
#endif
			:: else -> skip
			fi;
			/* timed from the SEND, by a clock that may run slow */
			d = 0;
			if
			:: d = 0
			:: DRIFT > 0 -> d = DRIFT
			fi;
#ifdef BUG_LEASE_FROM_RECV
			if
			:: now + L - GUARD + d > s_end[i] && now + L - GUARD + d > now ->
				s_end[i] = now + L - GUARD + d; s_was_live[i] = true
			:: else -> skip
			fi
#else
			if
			:: arg - 1 + L - GUARD + d > s_end[i] && arg - 1 + L - GUARD + d > now ->
				/* no later, or too late to give any time: not taken */
				s_end[i] = arg - 1 + L - GUARD + d; s_was_live[i] = true
			:: else -> skip
			fi
#endif
		:: t == HBACK && arg != hb_nonce[i] -> skip	/* an older one */
		:: t == GRANT ->
#ifdef BUG_NO_GEN_CHECK
			if
			:: ep == s_epoch[i] ->
#else
			if
			:: ep == s_epoch[i] && gen > s_gone[i] && gen > s_gen[i] ->
#endif
				/*
				 * fresh: while its session is valid, the committed
				 * record names this holding (a grant installed under
				 * a session that ran out is never used: valid() is
				 * false, and only a new epoch makes the session valid)
				 */
				if
				:: now < s_end[i] && (c_owner != i + 1 || c_gen != gen) -> broken(fresh)
				:: else -> skip
				fi;
				s_gen[i] = gen; s_seq[i] = arg; s_acked[i] = arg
			:: else -> skip
			fi
		:: t == ACK ->
			if
			:: ep == s_epoch[i] && gen == s_gen[i] && arg > s_acked[i] ->
				/* released: the tail has this write */
				if
				:: c_gen < gen || c_seq < arg -> broken(released)
				:: else -> skip
				fi;
				s_acked[i] = arg;
				if
				:: arg > max_acked -> max_acked = arg
				:: else -> skip
				fi
			:: else -> skip
			fi
		:: t == REVOKE ->
#ifdef BUG_IGNORE_REVOKE
			skip
#else
#ifdef BUG_FORGET_UNKNOWN_REVOKE
			/* only a holding it has is given up */
			if
			:: ep == s_epoch[i] && s_gen[i] != 0 && gen >= s_gen[i] && gen > s_gone[i] ->
				s_gone[i] = gen; s_gen[i] = 0
			:: else -> skip
			fi;
#else
			/*
			 * The revoke may overtake its grant (the head sends it, the
			 * tail the grant), even name an epoch this switch has not
			 * heard of yet: the holding is given up whether held or not,
			 * so that its grant is refused when it comes.
			 */
			if
			:: gen > s_gone[i] -> s_gone[i] = gen
			:: else -> skip
			fi;
			if
			:: s_gen[i] != 0 && gen >= s_gen[i] -> s_gen[i] = 0
			:: else -> skip
			fi;
#endif
			sw_send(RACK, i, ep, gen, 0)
#endif
		fi;
done:		t = 0; ep = 0; gen = 0; arg = 0; d = 0
	   }
	od
}

/* Time passes while the switches are quiet enough to leave some state behind. */
active proctype clock()
{
	byte i;
end:	do
	:: atomic { now < TMAX -> now++;
		/*
		 * Forget what no longer tells states apart: the once-a-tick
		 * marks of the tick gone, and ends already passed (time only
		 * grows, so every end at or before now is the same as 0).
		 */
		rv_t = 0;
		i = 0;
		do
		:: i < NSW ->
			req_t[i] = 0; wr_t[i] = 0;
			if
			:: s_end[i] <= now -> s_end[i] = 0
			:: else -> skip
			fi;
			if
			:: h_exp[i] <= now -> h_exp[i] = 0
			:: else -> skip
			fi;
			i++
		:: else -> break
		od;
		i = 0
	   }
	od
}

/* mutex */
active proctype mutex()
{
end:	atomic { valid(0) && valid(1) -> broken(mutex) }
}

/* durable: an ACKed write is at the current tail */
active proctype durable()
{
end:	atomic { max_acked > c_seq -> broken(durable) }
}

init {
	byte r;
	r = 0;
	do
	:: r < NREP -> alive[r] = true; r++
	:: else -> break
	od;
	want[0] = true;
#ifndef ONEWANT
	want[1] = true;
#endif
	run sw(0);
	run sw(1)
}

/* switch 1 keeps asking: it gets the lease */
ltl asked { <> (s_gen[1] != 0) }
