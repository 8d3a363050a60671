/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * redplane's data plane for Tofino (P4_16, TNA): the twin of the XDP data
 * plane (bpf/redplane.bpf.c, bpf/app_nat.h), speaking the same protocol
 * (docs/PROTOCOL.md) to the same rp-store chains, so that Tofino switches and
 * Linux hosts acting as switches can share flows.  README.md in this
 * directory says what differs and why.
 *
 * One ingress pass handles one of:
 *   - a frame from a port: the NAT looks its flow up; leased, it is
 *     translated and forwarded (a FIN or RST rides in a WRITE instead); not
 *     leased, it rides to its chain's head in a LEASE_REQ;
 *   - a message from a store replica (GRANT, MIGRATE, ACK, REVOKE, REJECT,
 *     HEARTBEAT_ACK), accepted only from a configured replica;
 *   - a frame sent round the recirculation port: one a GRANT/MIGRATE echoed
 *     (through the NAT again, as the XDP data plane tail-calls its root), a
 *     new connection's reverse-key lookup, a REJECT that drops a lease, or a
 *     retransmission copy of a WRITE;
 *   - a message the control plane sends through the CPU port (heartbeats).
 * Egress sets the lengths of the messages the switch sends (only egress
 * knows a frame's length) and mirrors each WRITE request into the
 * retransmission loop.
 *
 * Retransmission: egress mirrors every WRITE it sends (egress-to-egress, to a
 * session whose port is the state pipe's recirculation port) behind an
 * rp_recirc_h stamped with the send time and the number of transmissions.
 * The copy comes back into ingress, which checks it against the flow: the
 * key and the holding (epoch, generation) it was written under still in the
 * slot, and its sequence number not yet acknowledged (r_acked).  Acked or
 * abandoned, it is dropped.  Otherwise, once its timeout has passed (table
 * rp_rtx_rto: the RTO for the transmission count, doubled each try, as
 * control/rp_tofino.py installs it from --rto-us and --max-tries), it is sent
 * again to the chain's current head, and egress mirrors it again with one
 * transmission more; before that it goes round once more.  The last entry of
 * rp_rtx_rto gives the copy up after its timeout, so a copy lives at most the
 * sum of its timeouts, and rp_cfg's rtx_max_passes bounds its trips as well.
 */
#include <core.p4>
#if __TARGET_TOFINO__ == 2
#include <t2na.p4>
#else
#include <tna.p4>
#endif

#include "include/redplane.p4"
#include "include/headers.p4"
#include "include/stats.p4"
#include "include/parsers.p4"
#include "include/flows.p4"
#include "include/nat.p4"

/* Classes of store message (table rp_msg_class) */
const bit<8> RP_MC_BAD = 0;
const bit<8> RP_MC_HB_ACK = 1;
const bit<8> RP_MC_NOT_HEAD_HB = 2;     /* a REJECT not_head answering a heartbeat */
const bit<8> RP_MC_GRANT = 3;
const bit<8> RP_MC_MIGRATE = 4;
const bit<8> RP_MC_ACK = 5;
const bit<8> RP_MC_REVOKE = 6;
const bit<8> RP_MC_REJECT = 7;

control RpIngress(inout rp_headers_t hdr,
                  inout rp_ig_md_t md,
                  in ingress_intrinsic_metadata_t ig_intr_md,
                  in ingress_intrinsic_metadata_from_parser_t ig_prsr_md,
                  inout ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md,
                  inout ingress_intrinsic_metadata_for_tm_t ig_tm_md)
{
    RpNatKey() nat_key;
    RpKey() flow_key;
    RpSession() session;
    RpFlows() flows;
    RpNat() nat;

    /*
     * Four arrays over one index space (stats.p4): a Counter is executed at
     * most once a pass, and a packet is counted under up to five names.
     */
    Counter<bit<64>, bit<8>>(RP_ST_N, CounterType_t.PACKETS) stats_rx;
    Counter<bit<64>, bit<8>>(RP_ST_N, CounterType_t.PACKETS) stats_class;
    Counter<bit<64>, bit<8>>(RP_ST_N, CounterType_t.PACKETS) stats_outcome;
    Counter<bit<64>, bit<8>>(RP_ST_N, CounterType_t.PACKETS) stats_note;
    Counter<bit<64>, bit<8>>(RP_ST_N, CounterType_t.PACKETS) stats_fwd;

    /*
     * When each heartbeat left, by nonce (its low 8 bits), so that the
     * control plane times the lease from the SEND of the heartbeat an ack
     * echoes, on the clock the data plane compares expiries with.  A
     * heartbeat sent to several replicas (probing a silent head) keeps its
     * first send.
     */
    Register<rp_pair_t, bit<8>>(256) r_hb;
    RegisterAction<rp_pair_t, bit<8>, bit<32>>(r_hb) hb_record = {
        void apply(inout rp_pair_t value) {
            if (value.lo != md.msg_seq) {
                value.lo = md.msg_seq;
                value.hi = md.now;
            }
        }
    };
    RegisterAction<rp_pair_t, bit<8>, bit<32>>(r_hb) hb_lookup = {
        void apply(inout rp_pair_t value, out bit<32> sent) {
            if (value.lo == md.msg_seq) {
                sent = value.hi;
            } else {
                sent = 0;
            }
        }
    };

    /* ---- configuration the control plane sets ---- */

    action set_cfg(bit<16> switch_id, ipv4_addr_t src_addr, bit<16> src_port,
                   ipv4_addr_t nat_ext, bit<32> port_first, bit<32> port_end,
                   PortId_t cpu_port, PortId_t recirc_port, bit<16> rtx_max_passes) {
        md.switch_id = switch_id;
        md.src_addr = src_addr;
        md.src_port = src_port;
        md.nat_ext = nat_ext;
        md.port_first = port_first;
        md.port_end = port_end;
        md.cpu_port = cpu_port;
        md.recirc_port = recirc_port;
        md.rtx_max_passes = rtx_max_passes;
    }

    /* keyless: its default action carries the configuration */
    table rp_cfg {
        actions = {
            set_cfg;
        }
        default_action = set_cfg(0, 0, 0, 0, 0, 0, 0, 0, 0);
        size = 1;
    }

    /*
     * Ports outside the state pipe (multi-pipe Tofinos): their packets go to
     * the state pipe's recirculation port, where the flow registers are.
     */
    action steer_to(PortId_t port) {
        md.steer_port = port;
    }

    table rp_port_steer {
        key = {
            ig_intr_md.ingress_port : exact @name("ingress_port");
        }
        actions = {
            steer_to;
        }
        size = 512;
    }

    /* Every replica of every chain: the only sources messages are taken from. */
    action set_replica(bit<8> chain) {
        md.src_chain = chain;
        md.src_ok = true;
    }

    table rp_replica {
        key = {
            hdr.rp_ipv4.src_addr : exact @name("src_addr");
            hdr.rp_udp.src_port : exact @name("src_port");
        }
        actions = {
            set_replica;
            NoAction;
        }
        default_action = NoAction;
        size = 16;
    }

    /* Where a chain's requests go; control/rp_tofino.py moves it when the head moves. */
    action set_head(ipv4_addr_t addr, bit<16> port) {
        md.head_addr = addr;
        md.head_port = port;
    }

    table rp_chain_head {
        key = {
            md.chain : exact @name("chain");
        }
        actions = {
            set_head;
        }
        default_action = set_head(0, 0);
        size = 4;
    }

    /* --nat-ports share of this switch: a MIGRATE proposing one may be its own proposal */
    action own_port() {
        md.st_flags = RP_FL_REV_PENDING;
    }

    table nat_own_port {
        key = {
            hdr.rp_state.port : range @name("port");
        }
        actions = {
            own_port;
            NoAction;
        }
        default_action = NoAction;
        size = 2;
    }

    /*
     * Which messages a switch accepts (docs/PROTOCOL.md, rules 4, 6, 13,
     * 14, 16), by type, application, reason and key family: the rest of the
     * rules are checked below.  Only IPv4 keys: the Tofino NAT, like the XDP
     * one, has no IPv6 yet.
     */
    action msg_class(bit<8> c) {
        md.msg_class = c;
    }

    table rp_msg_class {
        key = {
            hdr.rp_hdr.msg_type : ternary;
            hdr.rp_hdr.app_id : ternary;
            hdr.rp_hdr.reason : range;
            hdr.rp_key.family : ternary;
        }
        actions = {
            msg_class;
        }
        default_action = msg_class(RP_MC_BAD);
        size = 8;
        const entries = {
            (RP_MSG_HEARTBEAT_ACK, RP_APP_NONE, 0 .. 0, _) : msg_class(RP_MC_HB_ACK);
            (RP_MSG_REJECT, RP_APP_NONE, RP_REJ_NOT_HEAD .. RP_REJ_NOT_HEAD, _) :
                msg_class(RP_MC_NOT_HEAD_HB);
            (RP_MSG_GRANT, RP_APP_NAT, 0 .. 0, RP_AF_INET) : msg_class(RP_MC_GRANT);
            (RP_MSG_MIGRATE, RP_APP_NAT, 0 .. 0, RP_AF_INET) : msg_class(RP_MC_MIGRATE);
            (RP_MSG_ACK, RP_APP_NAT, 0 .. 0, RP_AF_INET) : msg_class(RP_MC_ACK);
            (RP_MSG_REVOKE, RP_APP_NAT, 0 .. 0, RP_AF_INET) : msg_class(RP_MC_REVOKE);
            (RP_MSG_REJECT, RP_APP_NAT, RP_REJ_NO_SESSION .. RP_REJ_NOT_HEAD, RP_AF_INET) :
                msg_class(RP_MC_REJECT);
        }
    }

    /*
     * Retransmission timeouts by transmission count (RP time units): resend
     * for the first --max-tries, give up after the last one's timeout.
     */
    action rtx_resend(bit<32> rto) {
        md.rtx_rto = rto;
        md.rtx_give_up = false;
    }
    action rtx_last(bit<32> rto) {
        md.rtx_rto = rto;
        md.rtx_give_up = true;
    }

    table rp_rtx_rto {
        key = {
            hdr.rp_recirc.tries : exact @name("tries");
        }
        actions = {
            rtx_resend;
            rtx_last;
        }
        default_action = rtx_last(0);
        size = 64;
    }

    /* ---- forwarding (routes the control plane installs) ---- */

    action nexthop(PortId_t port, mac_addr_t dmac, mac_addr_t smac, vlan_id_t vid) {
        ig_tm_md.ucast_egress_port = port;
        md.nh_dmac = dmac;
        md.nh_smac = smac;
        md.nh_vid = vid;
        md.route_hit = true;
    }
    /* the switch's own addresses: its host stack, through the CPU port */
    action local() {
        md.route_hit = true;
        md.route_cpu = true;
    }
    action blackhole() {
        md.route_hit = false;
    }

    table rp_route {
        key = {
            md.route_dst : lpm @name("route_dst");
        }
        actions = {
            nexthop;
            local;
            blackhole;
        }
        default_action = blackhole;
        size = 1024;
    }

    /* ---- what becomes of the packet ---- */

    action stats_init() {
        md.st_class = RP_ST_NONE;
        md.st_outcome = RP_ST_NONE;
        md.st_note = RP_ST_NONE;
        md.st_fwd = RP_ST_NONE;
        md.fate = RP_FATE_DROP;
        md.op = RP_OP_NONE;
        md.mode = RP_MODE_NONE;
        hdr.bridge.setValid();
        hdr.bridge.pkt_type = RP_PT_BRIDGE;
        hdr.bridge.flags = 0;
        hdr.bridge.tries = 0;
        hdr.bridge.pad = 0;
    }

    action drop(bit<8> stat) {
        md.fate = RP_FATE_DROP;
        md.st_outcome = stat;
    }

    action punt(bit<8> op) {
        hdr.rp_cpu.setValid();
        hdr.rp_cpu.op = op;
        hdr.rp_cpu.chain = md.src_chain;
        hdr.rp_cpu.ingress_port = (bit<16>)md.orig_port;
        hdr.rp_cpu.now = md.now;
        hdr.rp_cpu.hb_sent = md.hb_sent;
        hdr.rp_recirc.setInvalid();
        md.fate = RP_FATE_CPU;
    }

    action steer() {
        hdr.rp_recirc.setValid();
        hdr.rp_recirc.kind = RP_RC_STEER;
        hdr.rp_recirc.port_kind = md.port_kind;
        hdr.rp_recirc.tries = 0;
        hdr.rp_recirc.rev_ok = 0;
        hdr.rp_recirc.orig_port = (bit<16>)ig_intr_md.ingress_port;
        hdr.rp_recirc.passes = 0;
        hdr.rp_recirc.sent = 0;
        hdr.rp_recirc.ext_addr = 0;
        hdr.rp_recirc.ext_port = 0;
        hdr.rp_recirc.pad = 0;
        md.fate = RP_FATE_STEER;
        md.st_class = RP_ST_steered;
    }

    /* A message's echoed frame back in front: its own Ethernet header first. */
    action decap() {
        hdr.ethernet = hdr.inner_eth;
        hdr.inner_eth.setInvalid();
        hdr.rp_ipv4.setInvalid();
        hdr.rp_udp.setInvalid();
        hdr.rp_hdr.setInvalid();
        hdr.rp_key.setInvalid();
        hdr.rp_state.setInvalid();
        hdr.rp_mac.setInvalid();
    }

    action recirculate(bit<8> kind, bit<8> rev_ok, ipv4_addr_t ext_addr, bit<16> ext_port) {
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

    /*
     * A REVOKE becomes its REVOKE_ACK, as rp_answer_revoke does: addresses
     * and ports swapped, switch_id, epoch, generation, key and seq kept (the
     * ack names the same lease).  Routed back to the replica; egress redoes
     * the lengths and the IPv4 checksum.
     */
    action answer_revoke() {
        ipv4_addr_t addr = hdr.rp_ipv4.src_addr;
        bit<16> port = hdr.rp_udp.src_port;

        hdr.rp_ipv4.src_addr = hdr.rp_ipv4.dst_addr;
        hdr.rp_ipv4.dst_addr = addr;
        hdr.rp_ipv4.ttl = 64;
        hdr.rp_udp.src_port = hdr.rp_udp.dst_port;
        hdr.rp_udp.dst_port = port;
        hdr.rp_udp.checksum = 0;
        hdr.rp_hdr.msg_type = RP_MSG_REVOKE_ACK;
        hdr.rp_hdr.flags = 0;
        hdr.rp_hdr.state_len = 0;
        hdr.rp_hdr.lease_ms = 0;
        hdr.bridge.flags = RP_BR_REQUEST;
        md.route_dst = addr;
        md.fate = RP_FATE_SEND;
    }

    /* The message's flow key and holding, for the flow table. */
    action msg_key() {
        md.k_proto = hdr.rp_key.proto;
        md.k_saddr = hdr.rp_key.saddr[127:96];
        md.k_sport = hdr.rp_key.sport;
        md.k_daddr = hdr.rp_key.daddr[127:96];
        md.k_dport = hdr.rp_key.dport;
        md.msg_epoch = hdr.rp_hdr.epoch;
        md.msg_seq = hdr.rp_hdr.seq;
        md.rank_in = hdr.rp_hdr.gen ++ 16w0x4000;
        md.held32 = hdr.rp_hdr.gen ++ 16w0x8000;
        md.gone32 = hdr.rp_hdr.gen ++ 16w0xc000;
        md.take32 = hdr.rp_hdr.gen ++ 16w0x8000;
    }

    /* A GRANT/MIGRATE's state: the NAT's 8 bytes; any other size maps nothing (dir 0). */
    action install_state() {
        md.st_addr = hdr.rp_state.addr;
        md.st_pd = hdr.rp_state.port ++ 8w0 ++ hdr.rp_state.dir;
        md.st_closing = hdr.rp_state.closing;
    }

    action install_no_state() {
        md.st_addr = 0;
        md.st_pd = 0;
        md.st_closing = 0;
    }

    action rtx_resend_now() {
        hdr.bridge.flags = RP_BR_REQUEST | RP_BR_WRITE;
        hdr.bridge.tries = hdr.rp_recirc.tries + 1;
        hdr.rp_recirc.setInvalid();
        /* to the chain's head now, which may have moved since the first send */
        hdr.rp_ipv4.dst_addr = md.head_addr;
        hdr.rp_udp.dst_port = md.head_port;
        md.route_dst = md.head_addr;
        md.fate = RP_FATE_SEND;
        md.st_outcome = RP_ST_rtx_sent;
    }

    action rtx_wait() {
        hdr.rp_recirc.passes = hdr.rp_recirc.passes + 1;
        md.fate = RP_FATE_RECIRC;
        md.st_outcome = RP_ST_rtx_wait;
    }

    action vlan_untag() {
        hdr.ethernet.ether_type = hdr.vlan.ether_type;
        hdr.vlan.setInvalid();
    }
    action vlan_tag() {
        hdr.vlan.setValid();
        hdr.vlan.pcp = 0;
        hdr.vlan.cfi = 0;
        hdr.vlan.vid = md.nh_vid;
        hdr.vlan.ether_type = hdr.ethernet.ether_type;
        hdr.ethernet.ether_type = ETHERTYPE_VLAN;
    }

    apply {
        stats_init();
        md.now = RP_NOW(ig_prsr_md.global_tstamp);
        md.orig_port = ig_intr_md.ingress_port;
        rp_cfg.apply();
        stats_rx.count(RP_ST_rx_packets);

        /* ================= classify ================= */

        if (ig_prsr_md.parser_err != 0) {
            if (md.kind == RP_K_MSG) {
                md.st_class = RP_ST_rx_store;
                drop(RP_ST_drop_malformed_msg);     /* a message cut short */
            } else {
                drop(RP_ST_drop_truncated);
            }
        } else if (md.port_kind != RP_PORT_RECIRC && rp_port_steer.apply().hit) {
            steer();
        } else {
            if (hdr.rp_recirc.isValid() && hdr.rp_recirc.kind == RP_RC_STEER) {
                md.orig_port = (PortId_t)hdr.rp_recirc.orig_port;
                hdr.rp_recirc.setInvalid();
            }
            nat_key.apply(hdr, md);

            if (md.kind == RP_K_OTHER) {
                md.st_outcome = RP_ST_pass_not_ipv4;
                punt(RP_CPU_NOT_IPV4);
            } else if (md.kind == RP_K_CPU_SEND) {
                md.st_class = RP_ST_cpu_send;
                md.msg_seq = hdr.rp_hdr.seq;
                if (hdr.rp_hdr.msg_type == RP_MSG_HEARTBEAT) {
                    hb_record.execute(hdr.rp_hdr.seq[7:0]);
                }
                hdr.rp_cpu.setInvalid();
                hdr.bridge.flags = RP_BR_REQUEST;
                md.route_dst = hdr.rp_ipv4.dst_addr;
                md.fate = RP_FATE_SEND;
            } else if (md.kind == RP_K_RTX) {
                msg_key();
                md.op = RP_OP_RTX;
                rp_rtx_rto.apply();
            } else if (md.kind == RP_K_MSG) {
                md.st_class = RP_ST_rx_store;
                rp_replica.apply();
                md.udp_tail = hdr.rp_udp.length - RP_UDP_MSG_LEN;
                md.ip_udp_len = hdr.rp_ipv4.total_len - 20;
                rp_msg_class.apply();
                if (hdr.rp_hdr.version != RP_VERSION ||
                    hdr.rp_hdr.switch_id != md.switch_id ||
                    hdr.rp_hdr.state_len > RP_STATE_MAX ||
                    (hdr.rp_hdr.flags & ~RP_F_ALL) != 0 ||
                    hdr.rp_hdr.pkt_len > RP_PKT_MAX ||
                    md.udp_tail != hdr.rp_hdr.pkt_len ||
                    md.ip_udp_len != hdr.rp_udp.length ||
                    md.msg_class == RP_MC_BAD) {
                    md.msg_bad = true;
                }
                if (((hdr.rp_hdr.flags & RP_F_PKT) == 0) != (hdr.rp_hdr.pkt_len == 0)) {
                    md.msg_bad = true;
                }
                if ((hdr.rp_hdr.flags & RP_F_STATE) == 0 && hdr.rp_hdr.state_len != 0) {
                    md.msg_bad = true;
                }
                /*
                 * The flow table keeps 32 bits of each address: a key whose
                 * unused bytes are not zero would alias its IPv4 twin.
                 */
                if (md.msg_class >= RP_MC_GRANT &&
                    (hdr.rp_key.pad != 0 || hdr.rp_key.saddr[95:0] != 0 ||
                     hdr.rp_key.daddr[95:0] != 0)) {
                    md.msg_bad = true;
                }

                if (!md.src_ok) {
                    drop(RP_ST_drop_bad_source);
                } else if (md.msg_bad) {
                    drop(RP_ST_drop_malformed_msg);
                } else if (md.msg_class == RP_MC_HB_ACK) {
                    /* r_hb: here, in the same chain of branches as hb_record */
                    md.msg_seq = hdr.rp_hdr.seq;
                    md.hb_sent = hb_lookup.execute(hdr.rp_hdr.seq[7:0]);
                } else if (md.msg_class == RP_MC_GRANT || md.msg_class == RP_MC_MIGRATE) {
                    msg_key();
                    md.op = RP_OP_INSTALL;
                    if ((hdr.rp_hdr.flags & RP_F_STATE) != 0 && hdr.rp_hdr.state_len == 8 &&
                        (hdr.rp_state.dir == RP_NAT_FWD || hdr.rp_state.dir == RP_NAT_REV)) {
                        install_state();
                    } else {
                        install_no_state();
                    }
                    /*
                     * The reverse key is pending after a GRANT of a forward
                     * key (the proposal was this switch's) and after a
                     * MIGRATE of one that may be its own (nat.p4).
                     */
                    if (md.st_pd[7:0] == RP_NAT_FWD) {
                        if (md.msg_class == RP_MC_GRANT) {
                            md.st_flags = RP_FL_REV_PENDING;
                        } else {
                            nat_own_port.apply();
                        }
                    }
                } else if (md.msg_class == RP_MC_ACK) {
                    msg_key();
                    md.op = RP_OP_ACK;
                } else if (md.msg_class == RP_MC_REVOKE) {
                    /*
                     * Given up, held or not: a slot of another key is
                     * claimed for the record (the revoke's epoch, generation,
                     * GONE), its state cleared, so that the grant the revoke
                     * overtook is refused (flows.p4).
                     */
                    msg_key();
                    md.op = RP_OP_REVOKE;
                    md.take32 = md.gone32;
                    install_no_state();
                    md.st_flags = 0;
                    md.msg_seq = 0;
                } else if (md.msg_class == RP_MC_REJECT) {
                    msg_key();
                    if (hdr.rp_hdr.reason == RP_REJ_NOT_OWNER ||
                        hdr.rp_hdr.reason == RP_REJ_CONFLICT ||
                        (hdr.rp_recirc.isValid() && hdr.rp_recirc.kind == RP_RC_DROP_LEASE)) {
                        md.op = RP_OP_REJECT_DROP;
                    } else if (hdr.rp_hdr.reason == RP_REJ_STALE) {
                        /* only when the store is ahead: else a late copy of an old write */
                        md.op = RP_OP_REJECT_SEQ;
                    }
                }
            } else {
                /* ---- an IPv4 frame (root program's checks, in its order) ---- */
                md.fate = RP_FATE_FORWARD;
                md.route_dst = hdr.ipv4.dst_addr;
                md.to_endpoint = hdr.udp.isValid() && hdr.ipv4.dst_addr == md.src_addr &&
                                 hdr.udp.dst_port == md.src_port;
                if (hdr.ipv4.ihl < 5) {
                    drop(RP_ST_drop_truncated);
                } else if (hdr.ipv4.protocol != IP_PROTO_TCP &&
                           hdr.ipv4.protocol != IP_PROTO_UDP) {
                    md.st_outcome = RP_ST_pass_not_app;     /* forwarded as it is */
                } else if (hdr.ipv4.flags[0:0] == 1 || hdr.ipv4.frag_offset != 0) {
                    /* no ports to key on; untranslated, it would leak the inside */
                    drop(RP_ST_drop_fragment);
                } else {
                    if (hdr.ipv4.ihl > 5) {
                        md.st_class = RP_ST_ip_options;     /* carried along */
                    }
                    if (md.to_endpoint) {
                        /* a message tagged or with IPv4 options: what rp_store_rx refuses */
                        md.st_class = RP_ST_rx_store;
                        drop(RP_ST_drop_malformed_msg);
                    } else if (md.outbound || md.inbound) {
                        md.op = RP_OP_DATA;
                    } else {
                        md.st_outcome = RP_ST_pass_not_app;
                    }
                }
            }
        }

        /* ================= the flow ================= */

        if (md.op != RP_OP_NONE) {
            flow_key.apply(md);
            rp_chain_head.apply();
            session.apply(md);
            /*
             * A grant is timed by the session of the chain that sent it,
             * which must be the chain the key hashes to (the one its packets
             * are checked against), and must belong to that session's epoch.
             */
            if (md.op == RP_OP_INSTALL &&
                (md.chain != md.src_chain || md.msg_epoch != md.sess_epoch)) {
                md.op = RP_OP_NONE;
                drop(RP_ST_drop_stale_grant);
            }
            flows.apply(md);
        }

        /* ================= outcome ================= */

        /* serial comparisons (RFC 1982): the sign of a wrapped difference */
        md.seq_ahead = md.msg_seq - md.seq;
        md.rtx_over = md.now - hdr.rp_recirc.sent - md.rtx_rto;

        if (md.op == RP_OP_DATA) {
            nat.apply(hdr, md);
        } else if (md.op == RP_OP_RTX) {
            if (md.owned == 0) {
                drop(RP_ST_rtx_abandoned);      /* the holding is gone: never released */
            } else if (md.unacked == 0) {
                drop(RP_ST_rtx_acked);
            } else {
                if (md.rtx_over[31:31] == 0) {
                    if (md.rtx_give_up) {
                        drop(RP_ST_rtx_gave_up);
                    } else {
                        rtx_resend_now();
                    }
                } else if (md.rtx_max_passes != 0 &&
                           hdr.rp_recirc.passes >= md.rtx_max_passes) {
                    drop(RP_ST_rtx_gave_up);
                } else {
                    rtx_wait();
                }
            }
        } else if (md.kind == RP_K_MSG && md.src_ok && !md.msg_bad) {
            if (md.msg_class == RP_MC_HB_ACK) {
                md.st_outcome = RP_ST_hb_ack_pass;
                punt(RP_CPU_HB_ACK);
            } else if (md.msg_class == RP_MC_NOT_HEAD_HB ||
                       (md.msg_class == RP_MC_REJECT && hdr.rp_hdr.reason == RP_REJ_NOT_HEAD)) {
                /*
                 * The request (or heartbeat) reached a replica that is not
                 * the head: the lease stands; the control plane follows the
                 * hint, and the echoed packet goes up with it, never forwarded.
                 */
                md.st_outcome = RP_ST_reject;
                md.st_note = RP_ST_reject_not_head;
                punt(RP_CPU_NOT_HEAD);
            } else if (md.op == RP_OP_INSTALL) {
                if (md.mode == RP_MODE_STALE) {
                    drop(RP_ST_drop_stale_grant);
                } else {
                    if (md.mode == RP_MODE_REGRANT) {
                        md.st_outcome = RP_ST_regrant;
                    } else if (md.msg_class == RP_MC_GRANT) {
                        md.st_outcome = RP_ST_grant;
                    } else {
                        md.st_outcome = RP_ST_migrate;
                    }
                    if (!md.same_key && md.lease_rv != RP_LEASE_NONE &&
                        (md.lease_rv & RP_ST_MASK) == RP_ST_HELD) {
                        md.st_note = RP_ST_slot_evict;
                    }
                    md.fate = RP_FATE_DROP;         /* no packet: consumed */
                    if ((hdr.rp_hdr.flags & RP_F_PKT) != 0 && hdr.ipv4.isValid()) {
                        /*
                         * The frame that waited for the lease goes through
                         * the NAT again.  If the key is the reverse key of
                         * the frame's own connection (a new connection's
                         * second request), the grant must map it back to this
                         * very inside address and port, or the port is
                         * someone else's (bpf/app_nat.h, nat_collision).
                         */
                        if (md.outbound && md.k_proto == hdr.ipv4.protocol &&
                            md.k_saddr == hdr.ipv4.dst_addr && md.k_sport == md.dport) {
                            if (md.st_pd[7:0] == RP_NAT_REV && md.st_addr == hdr.ipv4.src_addr &&
                                md.st_pd[31:16] == md.sport) {
                                decap();
                                recirculate(RP_RC_REPROCESS, 1, md.k_daddr, md.k_dport);
                            } else {
                                md.st_note = RP_ST_nat_collision;
                            }
                        } else {
                            decap();
                            recirculate(RP_RC_REPROCESS, 0, 0, 0);
                        }
                    }
                }
            } else if (md.op == RP_OP_ACK) {
                if (md.owned == 0) {
                    drop(RP_ST_drop_ack_not_owner);
                } else if (md.advanced == 0) {
                    drop(RP_ST_drop_stale_ack);     /* released once only */
                } else {
                    md.st_outcome = RP_ST_ack;
                    if ((hdr.rp_hdr.flags & RP_F_PKT) != 0 && hdr.ipv4.isValid()) {
                        decap();
                        md.route_dst = hdr.ipv4.dst_addr;
                        md.fate = RP_FATE_FORWARD;
                    }
                }
            } else if (md.op == RP_OP_REVOKE) {
                if (md.same_key && md.lease_rv != RP_LEASE_NONE &&
                    (md.lease_rv & RP_ST_MASK) == RP_ST_HELD) {
                    md.st_outcome = RP_ST_revoke;
                } else {
                    md.st_outcome = RP_ST_revoke_unknown;   /* acked all the same */
                    if (!md.same_key && md.lease_rv != RP_LEASE_NONE &&
                        (md.lease_rv & RP_ST_MASK) == RP_ST_HELD) {
                        md.st_note = RP_ST_slot_evict;      /* the record took its slot */
                    }
                }
                if ((hdr.rp_hdr.flags & RP_F_PKT) == 0) {
                    answer_revoke();
                }
            } else if (md.msg_class == RP_MC_REJECT) {
                /* the echoed packet is never released */
                if (!(hdr.rp_recirc.isValid() && hdr.rp_recirc.kind == RP_RC_DROP_LEASE)) {
                    md.st_outcome = RP_ST_reject;
                }
                if (md.op == RP_OP_REJECT_DROP && md.lease_dropped == 1) {
                    md.st_note = RP_ST_reject_lost_lease;
                } else if (md.op == RP_OP_REJECT_SEQ && md.same_key &&
                           md.seq_ahead[31:31] == 0 && md.seq_ahead != 0) {
                    /* the lease is dropped in a pass of its own: r_lease comes before r_seq */
                    recirculate(RP_RC_DROP_LEASE, 0, 0, 0);
                }
            }
        }

        /* ================= forwarding ================= */

        if (md.fate == RP_FATE_FORWARD || md.fate == RP_FATE_SEND) {
            rp_route.apply();
            if (!md.route_hit) {
                md.st_fwd = md.fate == RP_FATE_SEND ? RP_ST_emit_no_route : RP_ST_fwd_drop;
                md.fate = RP_FATE_DROP;
            } else if (md.route_cpu) {
                if (md.fate == RP_FATE_FORWARD) {
                    md.st_fwd = RP_ST_fwd_pass;
                    punt(RP_CPU_LOCAL);
                } else {
                    md.fate = RP_FATE_DROP;
                    md.st_fwd = RP_ST_emit_no_route;
                }
            } else if (md.fate == RP_FATE_SEND) {
                hdr.ethernet.dst_addr = md.nh_dmac;
                hdr.ethernet.src_addr = md.nh_smac;
            } else if (hdr.ipv4.ttl <= 1) {
                md.fate = RP_FATE_DROP;
                md.st_fwd = RP_ST_drop_ttl;     /* no ICMP time exceeded from the data plane */
            } else {
                hdr.rp_recirc.setInvalid();
                hdr.ipv4.ttl = hdr.ipv4.ttl - 1;
                md.upd_ipv4 = true;
                hdr.ethernet.dst_addr = md.nh_dmac;
                hdr.ethernet.src_addr = md.nh_smac;
                /* the next hop's VLAN: 0 untagged */
                if (md.nh_vid == 0) {
                    if (hdr.vlan.isValid()) {
                        vlan_untag();
                    }
                } else if (hdr.vlan.isValid()) {
                    hdr.vlan.vid = md.nh_vid;
                } else {
                    vlan_tag();
                }
                md.st_fwd = RP_ST_fwd_redirect;
            }
        }

        if (md.fate == RP_FATE_RECIRC) {
            ig_tm_md.ucast_egress_port = md.recirc_port;
        } else if (md.fate == RP_FATE_CPU) {
            ig_tm_md.ucast_egress_port = md.cpu_port;
        } else if (md.fate == RP_FATE_STEER) {
            ig_tm_md.ucast_egress_port = md.steer_port;
        } else if (md.fate == RP_FATE_DROP) {
            ig_dprsr_md.drop_ctl = 1;
        }

        if (md.st_class != RP_ST_NONE) {
            stats_class.count(md.st_class);
        }
        if (md.st_outcome != RP_ST_NONE) {
            stats_outcome.count(md.st_outcome);
        }
        if (md.st_note != RP_ST_NONE) {
            stats_note.count(md.st_note);
        }
        if (md.st_fwd != RP_ST_NONE) {
            stats_fwd.count(md.st_fwd);
        }
    }
}

control RpEgress(inout rp_headers_t hdr,
                 inout rp_eg_md_t md,
                 in egress_intrinsic_metadata_t eg_intr_md,
                 in egress_intrinsic_metadata_from_parser_t eg_prsr_md,
                 inout egress_intrinsic_metadata_for_deparser_t eg_dprsr_md,
                 inout egress_intrinsic_metadata_for_output_port_t eg_oport_md)
{
    Counter<bit<64>, bit<8>>(RP_ST_N, CounterType_t.PACKETS) stats_eg;

    /*
     * frame_adjust: eg_intr_md.pkt_length less the frame's length without
     * FCS (4 on the ASIC, which counts the FCS; 0 on tofino-model).
     */
    action set_eg_cfg(bit<16> frame_adjust, MirrorId_t rtx_session) {
        md.frame_adjust = frame_adjust;
        md.rtx_session = rtx_session;
    }

    table rp_eg_cfg {
        actions = {
            set_eg_cfg;
        }
        default_action = set_eg_cfg(4, 1);
        size = 1;
    }

    apply {
        md.now = RP_NOW(eg_prsr_md.global_tstamp);
        md.st_eg = RP_ST_NONE;
        rp_eg_cfg.apply();
        if (md.bridge.isValid() && (md.bridge.flags & RP_BR_REQUEST) != 0) {
            md.frame_len = eg_intr_md.pkt_length - md.frame_adjust;
            md.inner_len = md.frame_len - RP_ENCAP_LEN;
            if (md.frame_len < RP_ENCAP_LEN || md.inner_len > RP_PKT_MAX) {
                eg_dprsr_md.drop_ctl = 1;
                md.st_eg = RP_ST_emit_too_big;
            } else {
                hdr.rp_hdr.pkt_len = md.inner_len;
                if (md.inner_len != 0) {
                    hdr.rp_hdr.flags = hdr.rp_hdr.flags | RP_F_PKT;
                }
                hdr.rp_udp.length = md.inner_len + RP_UDP_MSG_LEN;
                hdr.rp_ipv4.total_len = md.inner_len + RP_IP_MSG_LEN;
                md.upd_rp_ipv4 = true;
                if ((md.bridge.flags & RP_BR_WRITE) != 0) {
                    eg_dprsr_md.mirror_type = RP_MIRROR_TYPE_E2E;
#if __TARGET_TOFINO__ != 1
                    eg_dprsr_md.mirror_io_select = 1;
#endif
                    md.mirror_tries = md.bridge.tries;
                }
            }
        }
        if (md.st_eg != RP_ST_NONE) {
            stats_eg.count(md.st_eg);
        }
    }
}

Pipeline(RpIngressParser(),
         RpIngress(),
         RpIngressDeparser(),
         RpEgressParser(),
         RpEgress(),
         RpEgressDeparser()) pipe;

Switch(pipe) main;
