/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The NAT application (bpf/app_nat.h's twin): source NAT of --nat-int to
 * --nat-ext, TCP and UDP, both directions.  A connection has two keys in the
 * store, both leased like any flow: the forward key (the inside's 5-tuple,
 * state: external address and port) and the reverse key (the return
 * traffic's 5-tuple, state: inside address and port).
 *
 * RpNatKey runs before the flow table: which way the packet goes and which
 * key it looks up.  RpNat runs after it: translate and forward, or wrap the
 * packet in a request.  A packet's key is always its own 5-tuple (the
 * forward key going out, the reverse key coming in), except in the pass
 * that looks a new connection's reverse key up.
 *
 * What differs from the XDP NAT, and why:
 *  - the reverse key of a new connection is looked up in a pass of its own
 *    (the frame goes round the recirculation port): the forward key's slot
 *    and the reverse key's are two indices of the same registers, and a
 *    register is reached once a pass;
 *  - a first packet does not record its proposal locally before the store
 *    answers (a record would claim a slot for a flow the store has not
 *    granted); so a GRANT of a forward key marks the reverse key pending,
 *    and so does a MIGRATE of a forward key whose port is from this switch's
 *    own range (it may be its own proposal, answered twice): the reverse key
 *    is then confirmed with the store, one round trip more, never less;
 *  - a SYN retransmitted before the GRANT proposes another port; the store
 *    keeps the first and answers the second with it (MIGRATE).
 */
#ifndef _RP_NAT_P4_
#define _RP_NAT_P4_

#include "headers.p4"

control RpNatKey(inout rp_headers_t hdr, inout rp_ig_md_t md)
{
    action inside() {
        md.outbound = true;
    }

    /* --nat-int: the inside prefix */
    table nat_inside {
        key = {
            hdr.ipv4.src_addr : lpm @name("src_addr");
        }
        actions = {
            inside;
            NoAction;
        }
        default_action = NoAction;
        size = 64;
    }

    action key_of_packet() {
        md.k_proto = hdr.ipv4.protocol;
        md.k_saddr = hdr.ipv4.src_addr;
        md.k_sport = md.sport;
        md.k_daddr = hdr.ipv4.dst_addr;
        md.k_dport = md.dport;
    }

    /* the reverse key of the connection the (outbound) frame belongs to */
    action key_reverse() {
        md.k_proto = hdr.ipv4.protocol;
        md.k_saddr = hdr.ipv4.dst_addr;
        md.k_sport = md.dport;
        md.k_daddr = hdr.rp_recirc.ext_addr;
        md.k_dport = hdr.rp_recirc.ext_port;
    }

    apply {
        if (hdr.ipv4.isValid()) {
            nat_inside.apply();
        }
        if (!md.outbound && hdr.ipv4.dst_addr == md.nat_ext) {
            md.inbound = true;
        }
        if (md.kind == RP_K_IPV4) {
            if (hdr.rp_recirc.isValid() && hdr.rp_recirc.kind == RP_RC_REV_LOOKUP) {
                key_reverse();
            } else {
                key_of_packet();
            }
            if (hdr.rp_recirc.isValid() && hdr.rp_recirc.kind == RP_RC_REPROCESS &&
                hdr.rp_recirc.rev_ok == 1) {
                md.rev_clear = true;
                md.st_addr = hdr.rp_recirc.ext_addr;
                md.st_pd = hdr.rp_recirc.ext_port ++ 16w0;
            }
            if (hdr.tcp.isValid()) {
                if ((md.tcp_flags & TCP_FIN) != 0) {
                    md.close_bits = RP_NAT_FIN;
                }
                if ((md.tcp_flags & TCP_RST) != 0) {
                    md.close_bits = md.close_bits | RP_NAT_RST;
                }
            }
        }
    }
}

control RpNat(inout rp_headers_t hdr, inout rp_ig_md_t md)
{
    /*
     * The next external port to hand out, within this switch's share
     * [port_first, port_end) of --nat-ports, in order and wrapping, as the
     * XDP NAT's nat_ports counter; 32 bits so that the end of a share can be
     * 65536.
     */
    Register<bit<32>, bit<1>>(1) r_nat_next;
    RegisterAction<bit<32>, bit<1>, bit<32>>(r_nat_next) nat_alloc = {
        void apply(inout bit<32> value, out bit<32> port) {
            if (value >= md.port_first && value < md.port_end) {
                port = value;
                value = value + 1;
            } else {
                port = md.port_first;
                value = md.port_first + 1;
            }
        }
    };

    /* ---- rewriting ---- */

    action translate_src() {
        hdr.ipv4.src_addr = md.nat_addr;
        md.route_dst = hdr.ipv4.dst_addr;
        md.upd_ipv4 = true;
    }

    action translate_dst() {
        hdr.ipv4.dst_addr = md.nat_addr;
        md.route_dst = md.nat_addr;
        md.upd_ipv4 = true;
    }

    /*
     * The packet rides to the head of its chain in a request: this Ethernet
     * header becomes the outer one (the route sets its addresses) and a copy
     * of it goes after the message, the rest of the frame following as it
     * is.  Lengths and the outer IPv4 checksum are egress's: only egress
     * knows how long the frame is.
     */
    action request(bit<8> msg_type, bit<8> flags) {
        hdr.inner_eth = hdr.ethernet;
        hdr.ethernet.ether_type = ETHERTYPE_IPV4;

        hdr.rp_ipv4.setValid();
        hdr.rp_ipv4.version = 4;
        hdr.rp_ipv4.ihl = 5;
        hdr.rp_ipv4.diffserv = 0;
        hdr.rp_ipv4.total_len = 0;
        hdr.rp_ipv4.identification = 0;
        hdr.rp_ipv4.flags = 0;
        hdr.rp_ipv4.frag_offset = 0;
        hdr.rp_ipv4.ttl = 64;
        hdr.rp_ipv4.protocol = IP_PROTO_UDP;
        hdr.rp_ipv4.hdr_checksum = 0;
        hdr.rp_ipv4.src_addr = md.src_addr;
        hdr.rp_ipv4.dst_addr = md.head_addr;

        hdr.rp_udp.setValid();
        hdr.rp_udp.src_port = md.src_port;
        hdr.rp_udp.dst_port = md.head_port;
        hdr.rp_udp.length = 0;
        hdr.rp_udp.checksum = 0;            /* optional over IPv4 */

        hdr.rp_hdr.setValid();
        hdr.rp_hdr.version = RP_VERSION;
        hdr.rp_hdr.msg_type = msg_type;
        hdr.rp_hdr.app_id = RP_APP_NAT;
        hdr.rp_hdr.flags = flags;           /* egress adds RP_F_PKT */
        hdr.rp_hdr.switch_id = md.switch_id;
        hdr.rp_hdr.reason = RP_REJ_NONE;
        hdr.rp_hdr.state_len = 0;
        hdr.rp_hdr.lease_ms = 0;
        hdr.rp_hdr.pkt_len = 0;

        hdr.rp_key.setValid();
        hdr.rp_key.family = RP_AF_INET;
        hdr.rp_key.proto = md.k_proto;
        hdr.rp_key.sport = md.k_sport;
        hdr.rp_key.dport = md.k_dport;
        hdr.rp_key.pad = 0;
        hdr.rp_key.saddr = md.k_saddr ++ 96w0;
        hdr.rp_key.daddr = md.k_daddr ++ 96w0;

        hdr.rp_state.setValid();
        hdr.rp_state.rest = 0;
        hdr.rp_mac.setValid();
        hdr.rp_mac.mac = 0;         /* no SipHash here: no --mac-key with Tofino */

        hdr.rp_recirc.setInvalid();
        hdr.bridge.flags = RP_BR_REQUEST;
        md.route_dst = md.head_addr;
        md.fate = RP_FATE_SEND;
    }

    /* The proposal (or the state written): the NAT's 8 bytes, the rest zero. */
    action nat_state(bit<32> addr, bit<16> port, bit<8> dir, bit<8> closing) {
        hdr.rp_state.addr = addr;
        hdr.rp_state.port = port;
        hdr.rp_state.dir = dir;
        hdr.rp_state.closing = closing;
        hdr.rp_hdr.state_len = 8;
    }

    action lease_request(bit<8> flags) {
        request(RP_MSG_LEASE_REQ, flags);
        hdr.rp_hdr.seq = 0;
        hdr.rp_hdr.epoch = md.sess_epoch;
        /* the holding given up in this session, if any: it stands for a lost revoke-ack */
        hdr.rp_hdr.gen = md.gone_gen;
        hdr.rp_state.addr = 0;
        hdr.rp_state.port = 0;
        hdr.rp_state.dir = 0;
        hdr.rp_state.closing = 0;
        md.st_outcome = RP_ST_lease_req;
    }

    /* A FIN or RST: the translated frame rides in a WRITE, released by its ACK. */
    action write_request() {
        request(RP_MSG_WRITE, RP_F_STATE);
        hdr.rp_hdr.seq = md.seq;
        hdr.rp_hdr.epoch = md.sess_epoch;
        hdr.rp_hdr.gen = md.gen;
        nat_state(md.nat_addr, md.nat_pd[31:16], md.nat_pd[7:0], md.closing | md.close_bits);
        hdr.bridge.flags = RP_BR_REQUEST | RP_BR_WRITE;
        hdr.bridge.tries = 1;
        md.st_outcome = RP_ST_write_req;
    }

    action recirculate(bit<8> kind, bit<8> rev_ok, bit<32> ext_addr, bit<16> ext_port) {
        hdr.rp_recirc.setValid();
        hdr.rp_recirc.kind = kind;
        hdr.rp_recirc.port_kind = RP_PORT_FRONT;
        hdr.rp_recirc.tries = 0;
        hdr.rp_recirc.rev_ok = rev_ok;
        hdr.rp_recirc.orig_port = (bit<16>)md.orig_port;
        hdr.rp_recirc.passes = 0;
        hdr.rp_recirc.sent = 0;
        hdr.rp_recirc.ext_addr = ext_addr;
        hdr.rp_recirc.ext_port = ext_port;
        hdr.rp_recirc.pad = 0;
        md.fate = RP_FATE_RECIRC;
        md.st_note = RP_ST_recirc;
    }

    action drop(bit<8> stat) {
        md.fate = RP_FATE_DROP;
        md.st_outcome = stat;
    }

    apply {
        if (hdr.rp_recirc.isValid() && hdr.rp_recirc.kind == RP_RC_REV_LOOKUP) {
            /*
             * The reverse key of a new connection whose forward key is held
             * (bpf/app_nat.h nat_outbound, REV_PENDING): held and mapping
             * this very connection, it is confirmed; held and mapping another,
             * the port is someone else's; not held, ask for it.
             */
            if (md.held) {
                if (md.nat_pd[7:0] == RP_NAT_REV && md.nat_addr == hdr.ipv4.src_addr &&
                    md.nat_pd[31:16] == md.sport) {
                    recirculate(RP_RC_REPROCESS, 1, md.k_daddr, md.k_dport);
                } else {
                    drop(RP_ST_nat_collision);
                }
            } else {
                md.st_note = RP_ST_nat_rev_req;
                if (md.sess_epoch == 0) {
                    drop(RP_ST_drop_no_session);
                } else {
                    lease_request(RP_F_STATE);
                    nat_state(hdr.ipv4.src_addr, md.sport, RP_NAT_REV, 0);
                }
            }
        } else if (!md.held) {
            /* no lease: the packet rides to the store in a lease request */
            if (md.sess_epoch == 0) {
                drop(RP_ST_drop_no_session);
            } else if (md.outbound) {
                lease_request(RP_F_STATE);
                if (md.same_key) {
                    /* known here: ask again with what we know */
                    nat_state(md.nat_addr, md.nat_pd[31:16], md.nat_pd[7:0], md.closing);
                } else {
                    md.next_port = nat_alloc.execute(0);
                    nat_state(md.nat_ext, md.next_port[15:0], RP_NAT_FWD, 0);
                    md.st_note = RP_ST_nat_new;
                }
            } else if (md.same_key && md.nat_pd[7:0] != 0) {
                /* a mapping this switch had, it may propose again */
                lease_request(RP_F_STATE);
                nat_state(md.nat_addr, md.nat_pd[31:16], md.nat_pd[7:0], md.closing);
            } else {
                /* never invent a mapping: a lookup, refused (no_flow) if unknown */
                lease_request(0);
            }
        } else if (md.outbound) {
            if (md.nat_pd[7:0] != RP_NAT_FWD) {
                drop(RP_ST_nat_no_mapping);
            } else if ((md.flags & RP_FL_REV_PENDING) != 0) {
                recirculate(RP_RC_REV_LOOKUP, 0, md.nat_addr, md.nat_pd[31:16]);
            } else {
                translate_src();
                if (hdr.tcp.isValid()) {
                    hdr.tcp.src_port = md.nat_pd[31:16];
                    md.upd_tcp = true;
                } else {
                    hdr.udp.src_port = md.nat_pd[31:16];
                    md.upd_udp = hdr.udp.checksum != 0;     /* 0 means "none" and stays so */
                }
            }
        } else {
            if (md.nat_pd[7:0] != RP_NAT_REV) {
                drop(RP_ST_nat_no_mapping);
            } else {
                translate_dst();
                if (hdr.tcp.isValid()) {
                    hdr.tcp.dst_port = md.nat_pd[31:16];
                    md.upd_tcp = true;
                } else {
                    hdr.udp.dst_port = md.nat_pd[31:16];
                    md.upd_udp = hdr.udp.checksum != 0;
                }
            }
        }

        /* translated: a FIN or RST writes (flows.p4 took its sequence number), the rest reads */
        if (md.held && md.fate == RP_FATE_FORWARD) {
            if (md.wrote) {
                write_request();
            } else {
                md.st_outcome = RP_ST_fast_path;
            }
        }
    }
}

#endif /* _RP_NAT_P4_ */
