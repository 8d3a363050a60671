/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The flow table, the sessions and the flow-to-chain function.
 *
 * The XDP data plane keeps a flow in a BPF hash map keyed by the 40-byte
 * protocol key.  Tofino has no such map the data plane can insert into, so
 * a flow lives in a slot of a set of register arrays, the slot chosen by a
 * hash of the key, and the key itself is stored in the slot (two dual-width
 * registers): a lookup is a hit only when all 104 bits of the IPv4 5-tuple
 * match, so a hash collision is never taken for a lease.  A GRANT or MIGRATE
 * takes its key's slot whatever held it before: the switch's flow table is a
 * cache of what the store holds, and a flow pushed out of it loses nothing
 * but its local lease, which its next packet asks for again (the store still
 * counts this switch as the owner and answers MIGRATE at once, no revoke).
 * Writes that flow had outstanding are never released (their ACKs no longer
 * find the key), so pushing out costs a retransmission, never a wrong packet;
 * rp_tofino.py --status shows the count (slot_evict).
 *
 * A REVOKE takes its key's slot the same way when the slot holds another key
 * (or none): in a chain the head sends revokes and the tail grants, so a
 * revoke can reach the switch before the grant of the very holding it names
 * (or name a session epoch the switch has not learned yet).  The slot then
 * records that holding as given up (the revoke's epoch, its generation,
 * GONE) with the NAT state, flags and sequence numbers cleared, as
 * rp_remember_revoke makes an entry that holds nothing: the grant, arriving
 * late, finds the key and is refused, and the flow's next LEASE_REQ names the
 * given-up generation in `gen` (the store takes that request for the
 * revoke's ack if the ack was lost).  The key is written in the revoke's own
 * pass, by the same claiming RegisterActions a grant uses (each compares and
 * writes in one access), so no recirculation pass is needed for it.  A slot
 * that holds the key is not claimed: its holding is judged by the revoke
 * rules below, and a later holding of the same epoch stays.
 *
 * Every register is accessed once per pass, through the RegisterAction the
 * pass's operation (md.op) selects, in this order, each step's result
 * deciding the next:
 *
 *   r_kaddr, r_kport   the key: compared; a GRANT/MIGRATE or REVOKE writes it
 *   r_lease            lo: epoch of the slot's last holding; hi: its lease
 *                      generation, 2 status bits, 14 zero bits
 *   r_nat_addr, r_nat_pd, r_flags, r_closing, r_acked, r_seq
 *                      the NAT state, the local flags, sequence numbers
 *
 * r_lease's hi packs the generation and the status so that one serial
 * comparison orders (generation, status) pairs; that is what lets the grant
 * rules of docs/DATAPLANE.md (keep a regrant, refuse a late grant of a
 * holding given up, refuse an earlier generation) fit one stateful ALU with
 * two conditions.  The statuses rank DROPPED (a REJECT gave it up: the store
 * regrants the same generation) < an incoming grant < HELD (a regrant) <
 * GONE (revoked: that generation never comes back).
 *
 * Serial comparisons (RFC 1982) are written as P4 says them, a signed test
 * of a wrapped difference; the stateful ALU computes exactly that
 * difference and tests its sign.
 */
#ifndef _RP_FLOWS_P4_
#define _RP_FLOWS_P4_

#include "headers.p4"

const bit<32> RP_ST_DROPPED = 0x0000;
const bit<32> RP_ST_RANK_IN = 0x4000;   /* only in comparisons: a grant arriving */
const bit<32> RP_ST_HELD = 0x8000;
const bit<32> RP_ST_GONE = 0xc000;
const bit<32> RP_ST_MASK = 0xc000;
/* r_lease results that no cell holds (a cell's low 14 bits are zero) */
const bit<32> RP_LEASE_NONE = 0xffffffff;
const bit<32> RP_LEASE_FRESH = 0xfffffffe;

/* What a GRANT/MIGRATE did (rp_ig_md_t.mode). */
const bit<8> RP_MODE_NONE = 0;
const bit<8> RP_MODE_FRESH = 1;     /* installed */
const bit<8> RP_MODE_REGRANT = 2;   /* the holding this switch has: local state kept */
const bit<8> RP_MODE_STALE = 3;     /* a grant of a holding given up, or earlier than ours */
const bit<8> RP_MODE_CLAIMED = 4;   /* a REVOKE took another key's slot: its state is cleared */

/*
 * The key's hash and chain.  The hash is CRC-32 (zlib's) of the key exactly
 * as the protocol encodes it (40 bytes, docs/PROTOCOL.md), so that any
 * switch can compute the same function; its high 16 bits pick the chain,
 * chain = (h >> 16) * nchains >> 16, as ranges the control plane installs
 * (a modulo is beyond a match-action unit), and its low bits the slot.
 */
control RpKey(inout rp_ig_md_t md)
{
    Hash<bit<32>>(HashAlgorithm_t.CRC32) key_crc;
    bit<16> chain_hash;

    action set_chain(bit<8> chain) {
        md.chain = chain;
    }

    table rp_chain_of {
        key = {
            chain_hash : range @name("chain_hash");
        }
        actions = {
            set_chain;
        }
        default_action = set_chain(0);
        size = 16;
    }

    apply {
        md.key_hash = key_crc.get({RP_AF_INET, md.k_proto, md.k_sport, md.k_dport, 16w0,
                                   md.k_saddr, 96w0, md.k_daddr, 96w0});
        md.slot = md.key_hash[RP_SLOT_BITS - 1:0];
        chain_hash = md.key_hash[31:16];
        rp_chain_of.apply();
    }
}

/*
 * The switch's session with each chain: lo the epoch (0: none), hi the
 * expiry in RP time units.  Only the control plane writes it, both halves in
 * one register write, so that a packet never sees a new epoch with an old
 * expiry (the XDP agent has to order two writes for that).  A data pass sees
 * the epoch only while the session is live; a message from a store is
 * judged by the epoch alone, as rp_store_rx does.
 */
control RpSession(inout rp_ig_md_t md)
{
    Register<rp_pair_t, bit<8>>(RP_MAX_STORES) r_session;

    RegisterAction<rp_pair_t, bit<8>, bit<32>>(r_session) sess_live = {
        void apply(inout rp_pair_t value, out bit<32> epoch) {
            if ((int<32>)(value.hi - md.now) > 0) {
                epoch = value.lo;
            } else {
                epoch = 0;
            }
        }
    };

    RegisterAction<rp_pair_t, bit<8>, bit<32>>(r_session) sess_any = {
        void apply(inout rp_pair_t value, out bit<32> epoch) {
            epoch = value.lo;
        }
    };

    apply {
        if (md.kind == RP_K_MSG) {
            md.sess_epoch = sess_any.execute(md.src_chain);
        } else {
            md.sess_epoch = sess_live.execute(md.chain);
        }
    }
}

control RpFlows(inout rp_ig_md_t md)
{
    /* ---- the key ---- */

    Register<rp_pair_t, rp_slot_t>(RP_SLOTS) r_kaddr;     /* saddr, daddr */
    Register<rp_pair_t, rp_slot_t>(RP_SLOTS) r_kport;     /* sport ++ dport, proto */

    RegisterAction<rp_pair_t, rp_slot_t, bit<1>>(r_kaddr) kaddr_match = {
        void apply(inout rp_pair_t value, out bit<1> hit) {
            if (value.lo == md.k_saddr && value.hi == md.k_daddr) {
                hit = 1;
            } else {
                hit = 0;
            }
        }
    };
    RegisterAction<rp_pair_t, rp_slot_t, bit<1>>(r_kaddr) kaddr_claim = {
        void apply(inout rp_pair_t value, out bit<1> hit) {
            if (value.lo == md.k_saddr && value.hi == md.k_daddr) {
                hit = 1;
            } else {
                hit = 0;
            }
            value.lo = md.k_saddr;
            value.hi = md.k_daddr;
        }
    };

    bit<32> k_ports;
    bit<32> k_proto;

    RegisterAction<rp_pair_t, rp_slot_t, bit<1>>(r_kport) kport_match = {
        void apply(inout rp_pair_t value, out bit<1> hit) {
            if (value.lo == k_ports && value.hi == k_proto) {
                hit = 1;
            } else {
                hit = 0;
            }
        }
    };
    RegisterAction<rp_pair_t, rp_slot_t, bit<1>>(r_kport) kport_claim = {
        void apply(inout rp_pair_t value, out bit<1> hit) {
            if (value.lo == k_ports && value.hi == k_proto) {
                hit = 1;
            } else {
                hit = 0;
            }
            value.lo = k_ports;
            value.hi = k_proto;
        }
    };

    /* ---- the lease ---- */

    Register<rp_pair_t, rp_slot_t>(RP_SLOTS) r_lease;

    /* a data pass: the slot's generation and status, if leased under the live session */
    RegisterAction<rp_pair_t, rp_slot_t, bit<32>>(r_lease) lease_read = {
        void apply(inout rp_pair_t value, out bit<32> rv) {
            if (value.lo == md.sess_epoch) {
                rv = value.hi;
            } else {
                rv = RP_LEASE_NONE;
            }
        }
    };

    /* ACK, RTX: is the holding the message names (epoch, generation) the one held? */
    RegisterAction<rp_pair_t, rp_slot_t, bit<1>>(r_lease) lease_own = {
        void apply(inout rp_pair_t value, out bit<1> rv) {
            if (value.lo == md.msg_epoch && value.hi == md.held32) {
                rv = 1;
            } else {
                rv = 0;
            }
        }
    };

    /*
     * GRANT/MIGRATE of the key the slot holds: installed unless the slot's
     * holding is of this session and ranks at or above the grant (a regrant
     * of the holding held, a holding given up by a revoke, an earlier one).
     * Not installed: the old rank comes back, which tells a regrant (HELD,
     * same generation) from a stale grant.
     */
    RegisterAction<rp_pair_t, rp_slot_t, bit<32>>(r_lease) lease_install = {
        void apply(inout rp_pair_t value, out bit<32> rv) {
            if (value.lo != md.msg_epoch || (int<32>)(md.rank_in - value.hi) > 0) {
                value.lo = md.msg_epoch;
                value.hi = md.rank_in + RP_ST_RANK_IN;      /* the generation, HELD */
                rv = RP_LEASE_FRESH;
            } else {
                rv = value.hi;
            }
        }
    };

    /*
     * GRANT/MIGRATE or REVOKE of another key: the slot changes hands, to the
     * holding take32 names (held32 for a grant, gone32 for a revoke: one
     * RegisterAction for both, as a register's stateful ALU has few
     * instruction slots); the old occupant's rank comes back.
     */
    RegisterAction<rp_pair_t, rp_slot_t, bit<32>>(r_lease) lease_take = {
        void apply(inout rp_pair_t value, out bit<32> rv) {
            if (value.lo == md.msg_epoch) {
                rv = value.hi;
            } else {
                rv = RP_LEASE_NONE;
            }
            value.lo = md.msg_epoch;
            value.hi = md.take32;
        }
    };

    /*
     * REVOKE of the key the slot holds: give up the holding named, held or
     * not, and remember it as GONE so that its grant, arriving late, is
     * refused (rp_drop_lease).  Of the revoke's epoch, the slot's holding is
     * given up when it is not after the revoked one; a later generation
     * stays.  Of another epoch (an older session's holding, or a revoke of a
     * session the switch has not learned yet), the revoke's holding replaces
     * it.  The old rank comes back when the slot held the revoke's epoch and
     * was given up (NONE otherwise), which says whether it was held.
     */
    RegisterAction<rp_pair_t, rp_slot_t, bit<32>>(r_lease) lease_revoke = {
        void apply(inout rp_pair_t value, out bit<32> rv) {
            if (value.lo == md.msg_epoch && (int<32>)(md.gone32 - value.hi) >= 0) {
                rv = value.hi;
                value.hi = md.gone32;
            } else if (value.lo != md.msg_epoch) {
                rv = RP_LEASE_NONE;
                value.lo = md.msg_epoch;
                value.hi = md.gone32;
            } else {
                rv = RP_LEASE_NONE;                         /* a later holding: it stays */
            }
        }
    };

    /* REJECT not_owner/conflict/stale-ahead: drop exactly the holding named, no record */
    RegisterAction<rp_pair_t, rp_slot_t, bit<1>>(r_lease) lease_reject = {
        void apply(inout rp_pair_t value, out bit<1> rv) {
            if (value.lo == md.msg_epoch && value.hi == md.held32) {
                value.hi = md.held32 - RP_ST_HELD;          /* the generation, DROPPED */
                rv = 1;
            } else {
                rv = 0;
            }
        }
    };

    /* ---- state and sequence numbers ---- */

    Register<bit<32>, rp_slot_t>(RP_SLOTS) r_nat_addr;
    Register<bit<32>, rp_slot_t>(RP_SLOTS) r_nat_pd;      /* port ++ 8w0 ++ dir */
    Register<bit<8>, rp_slot_t>(RP_SLOTS) r_flags;        /* RP_FL_* */
    Register<bit<8>, rp_slot_t>(RP_SLOTS) r_closing;      /* RP_NAT_FIN | RP_NAT_RST */
    Register<bit<32>, rp_slot_t>(RP_SLOTS) r_acked;       /* newest seq the store acknowledged */
    Register<bit<32>, rp_slot_t>(RP_SLOTS) r_seq;         /* newest seq written */

    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_nat_addr) nat_addr_read = {
        void apply(inout bit<32> value, out bit<32> rv) { rv = value; }
    };
    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_nat_addr) nat_addr_write = {
        void apply(inout bit<32> value) { value = md.st_addr; }
    };
    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_nat_pd) nat_pd_read = {
        void apply(inout bit<32> value, out bit<32> rv) { rv = value; }
    };
    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_nat_pd) nat_pd_write = {
        void apply(inout bit<32> value) { value = md.st_pd; }
    };

    RegisterAction<bit<8>, rp_slot_t, bit<8>>(r_flags) flags_read = {
        void apply(inout bit<8> value, out bit<8> rv) { rv = value; }
    };
    RegisterAction<bit<8>, rp_slot_t, bit<8>>(r_flags) flags_write = {
        void apply(inout bit<8> value) { value = md.st_flags; }
    };
    /* the reverse key is in the store: the connection's packets may leave */
    RegisterAction<bit<8>, rp_slot_t, bit<8>>(r_flags) flags_clear = {
        void apply(inout bit<8> value, out bit<8> rv) { rv = 0; value = 0; }
    };

    RegisterAction<bit<8>, rp_slot_t, bit<8>>(r_closing) closing_read = {
        void apply(inout bit<8> value, out bit<8> rv) { rv = value; }
    };
    RegisterAction<bit<8>, rp_slot_t, bit<8>>(r_closing) closing_write = {
        void apply(inout bit<8> value) { value = md.st_closing; }
    };
    /* a FIN or RST: marked in the local state now, written to the store below */
    RegisterAction<bit<8>, rp_slot_t, bit<8>>(r_closing) closing_mark = {
        void apply(inout bit<8> value, out bit<8> rv) {
            rv = value;
            value = value | md.close_bits;
        }
    };

    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_acked) acked_read = {
        void apply(inout bit<32> value, out bit<32> rv) { rv = value; }
    };
    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_acked) acked_write = {
        void apply(inout bit<32> value) { value = md.msg_seq; }
    };
    /* ACK: each write's packet is released once; a duplicate or older ACK is not */
    RegisterAction<bit<32>, rp_slot_t, bit<1>>(r_acked) acked_advance = {
        void apply(inout bit<32> value, out bit<1> rv) {
            if ((int<32>)(md.msg_seq - value) > 0) {
                value = md.msg_seq;
                rv = 1;
            } else {
                rv = 0;
            }
        }
    };
    /* RTX: the copy's write is not covered yet (ACKs are cumulative) */
    RegisterAction<bit<32>, rp_slot_t, bit<1>>(r_acked) acked_covers = {
        void apply(inout bit<32> value, out bit<1> rv) {
            if ((int<32>)(md.msg_seq - value) > 0) {
                rv = 1;
            } else {
                rv = 0;
            }
        }
    };

    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_seq) seq_read = {
        void apply(inout bit<32> value, out bit<32> rv) { rv = value; }
    };
    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_seq) seq_write = {
        void apply(inout bit<32> value) { value = md.msg_seq; }
    };
    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_seq) seq_next = {
        void apply(inout bit<32> value, out bit<32> rv) {
            value = value + 1;
            rv = value;
        }
    };
    /*
     * A FIN or RST that changes nothing still writes while an earlier write
     * is unacknowledged: the local state is ahead of the store's, and a
     * packet may leave only on state the store has (a TCP retransmission of
     * a FIN goes through the store again).  Unchanged, seq == acked says it
     * did not write.
     */
    RegisterAction<bit<32>, rp_slot_t, bit<32>>(r_seq) seq_next_if_unacked = {
        void apply(inout bit<32> value, out bit<32> rv) {
            if (value != md.acked) {
                value = value + 1;
            }
            rv = value;
        }
    };

    action key_words() {
        k_ports = md.k_sport ++ md.k_dport;
        k_proto = (bit<32>)md.k_proto;
    }

    /* the slot's state is written: a grant installed, or a revoke's claim cleared it */
    bool fill;

    apply {
        key_words();
        /*
         * A GRANT/MIGRATE and a REVOKE claim the slot: the key is written
         * whatever held it (the same key, when it did), and whether it was
         * this key comes back from the same access.
         */
        if (md.op == RP_OP_INSTALL || md.op == RP_OP_REVOKE) {
            md.kaddr_hit = kaddr_claim.execute(md.slot);
            md.kport_hit = kport_claim.execute(md.slot);
        } else if (md.op != RP_OP_NONE) {
            md.kaddr_hit = kaddr_match.execute(md.slot);
            md.kport_hit = kport_match.execute(md.slot);
        }
        md.same_key = md.kaddr_hit == 1 && md.kport_hit == 1;

        /* ---- the lease ---- */
        if (md.op == RP_OP_DATA) {
            if (md.same_key) {
                md.lease_rv = lease_read.execute(md.slot);
            }
        } else if (md.op == RP_OP_INSTALL) {
            if (md.same_key) {
                md.lease_rv = lease_install.execute(md.slot);
            } else {
                md.lease_rv = lease_take.execute(md.slot);
            }
        } else if (md.op == RP_OP_ACK || md.op == RP_OP_RTX) {
            if (md.same_key) {
                md.owned = lease_own.execute(md.slot);
            }
        } else if (md.op == RP_OP_REVOKE) {
            if (md.same_key) {
                md.lease_rv = lease_revoke.execute(md.slot);
            } else {
                md.lease_rv = lease_take.execute(md.slot);  /* take32 = gone32 */
            }
        } else if (md.op == RP_OP_REJECT_DROP) {
            if (md.same_key) {
                md.lease_dropped = lease_reject.execute(md.slot);
            }
        }

        if (md.op == RP_OP_DATA) {
            md.held = md.same_key && md.sess_epoch != 0 &&
                      (md.lease_rv & RP_ST_MASK) == RP_ST_HELD;
            md.gen = md.lease_rv[31:16];
            /*
             * A holding of the live session given up by a revoke: a lease
             * request names its generation (rp_lease), else 0.
             */
            if (md.same_key && md.lease_rv != RP_LEASE_NONE &&
                (md.lease_rv & RP_ST_MASK) == RP_ST_GONE) {
                md.gone_gen = md.lease_rv[31:16];
            } else {
                md.gone_gen = 0;
            }
        } else if (md.op == RP_OP_INSTALL) {
            if (!md.same_key || md.lease_rv == RP_LEASE_FRESH) {
                md.mode = RP_MODE_FRESH;
            } else if (md.lease_rv == md.held32) {
                md.mode = RP_MODE_REGRANT;
            } else {
                md.mode = RP_MODE_STALE;
            }
        } else if (md.op == RP_OP_REVOKE) {
            if (!md.same_key) {
                md.mode = RP_MODE_CLAIMED;  /* st_* and msg_seq are zero (redplane.p4) */
            }
        }
        fill = md.mode == RP_MODE_FRESH || md.mode == RP_MODE_CLAIMED;

        /* ---- NAT state ---- */
        if (md.op == RP_OP_DATA) {
            if (md.same_key) {
                md.nat_addr = nat_addr_read.execute(md.slot);
                md.nat_pd = nat_pd_read.execute(md.slot);
            }
        } else if (fill) {
            nat_addr_write.execute(md.slot);
            nat_pd_write.execute(md.slot);
        }

        /*
         * The local flags: a frame a GRANT of the reverse key sent round
         * confirms the reverse key of the connection whose external address
         * and port it names (the recirculation header's, in st_addr and
         * st_pd for a data pass).
         */
        if (md.op == RP_OP_DATA) {
            if (md.held) {
                if (md.rev_clear && md.nat_addr == md.st_addr &&
                    md.nat_pd[31:16] == md.st_pd[31:16]) {
                    md.flags = flags_clear.execute(md.slot);
                } else {
                    md.flags = flags_read.execute(md.slot);
                }
            }
        } else if (fill) {
            flags_write.execute(md.slot);
        }

        /* a FIN or RST writes only where the mapping applies: held, right way round, complete */
        if (md.op == RP_OP_DATA) {
            md.may_write = md.held && md.close_bits != 0 && md.flags == 0 &&
                           ((md.outbound && md.nat_pd[7:0] == RP_NAT_FWD) ||
                            (!md.outbound && md.nat_pd[7:0] == RP_NAT_REV));
            if (md.may_write) {
                md.closing = closing_mark.execute(md.slot);
            } else if (md.same_key) {
                md.closing = closing_read.execute(md.slot);
            }
            md.new_bits = md.close_bits & ~md.closing;
        } else if (fill) {
            closing_write.execute(md.slot);
        }

        /* ---- sequence numbers ---- */
        if (md.op == RP_OP_DATA) {
            md.acked = acked_read.execute(md.slot);
        } else if (md.op == RP_OP_ACK) {
            if (md.owned == 1) {
                md.advanced = acked_advance.execute(md.slot);
            }
        } else if (md.op == RP_OP_RTX) {
            if (md.owned == 1) {
                md.unacked = acked_covers.execute(md.slot);
            }
        } else if (fill) {
            acked_write.execute(md.slot);
        }

        if (md.op == RP_OP_DATA) {
            if (md.may_write) {
                if (md.new_bits != 0) {
                    md.seq = seq_next.execute(md.slot);
                    md.wrote = true;
                } else {
                    md.seq = seq_next_if_unacked.execute(md.slot);
                    md.wrote = md.seq != md.acked;
                }
            }
        } else if (md.op == RP_OP_REJECT_SEQ) {
            if (md.same_key) {
                md.seq = seq_read.execute(md.slot);
            }
        } else if (fill) {
            seq_write.execute(md.slot);
        }
    }
}

#endif /* _RP_FLOWS_P4_ */
