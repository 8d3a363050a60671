/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Parsers and deparsers of both gresses.
 *
 * Ingress tells five kinds of packet apart (rp_ig_md_t.kind): a frame (IPv4
 * or not), a protocol message addressed to this switch (by its IPv4
 * destination and UDP port, in two parser value sets the control plane
 * fills), a message the control plane sends through the CPU port, and a
 * retransmission copy of a WRITE coming back round the recirculation port.
 * What comes in on the CPU port or the recirculation port starts with a
 * header of the switch's own (rp_cpu_h, rp_recirc_h); two more value sets
 * name those ports.
 *
 * Checksums are updated incrementally: the parser takes the fields the
 * program may rewrite out of the IPv4 header checksum and the TCP/UDP
 * checksum, and the deparser puts their new values back in (RFC 1624, the
 * TNA Checksum extern's subtract/update).  IPv4 options stay in the
 * residual, so a header with options is handled like any other.
 */
#ifndef _RP_PARSERS_P4_
#define _RP_PARSERS_P4_

#include "headers.p4"

/* The protocol endpoint: UDP port and IPv4 address, one entry each. */
struct rp_vs_port_t {
    bit<16> port;
}
struct rp_vs_addr_t {
    bit<32> addr;
}
/* The CPU port and the state pipe's recirculation port. */
struct rp_vs_ingress_t {
    PortId_t ingress_port;
}

parser RpIngressParser(packet_in pkt,
                       out rp_headers_t hdr,
                       out rp_ig_md_t md,
                       out ingress_intrinsic_metadata_t ig_intr_md)
{
    Checksum() ipv4_csum;
    Checksum() l4_csum;
    value_set<rp_vs_port_t>(4) rp_port_vs;
    value_set<rp_vs_addr_t>(4) rp_addr_vs;
    value_set<rp_vs_ingress_t>(4) rp_cpu_vs;
    value_set<rp_vs_ingress_t>(4) rp_recirc_vs;

    state start {
        pkt.extract(ig_intr_md);
        md.kind = RP_K_OTHER;
        md.port_kind = RP_PORT_FRONT;
        md.sport = 0;
        md.dport = 0;
        md.tcp_flags = 0;
        md.ipv4_resid = 0;
        md.l4_resid = 0;
        transition select(ig_intr_md.resubmit_flag) {
            1: reject;      /* the program never resubmits */
            0: skip_port_md;
        }
    }

    state skip_port_md {
        pkt.advance(PORT_METADATA_SIZE);
        transition select(ig_intr_md.ingress_port) {
            rp_recirc_vs: parse_recirc;
            rp_cpu_vs: parse_cpu_port;
            default: parse_ethernet;
        }
    }

    state parse_cpu_port {
        md.port_kind = RP_PORT_CPU;
        transition parse_cpu;
    }

    state parse_recirc {
        md.port_kind = RP_PORT_RECIRC;
        pkt.extract(hdr.rp_recirc);
        transition select(hdr.rp_recirc.kind, hdr.rp_recirc.port_kind) {
            (RP_RC_RTX, _): parse_rtx;
            (RP_RC_STEER, RP_PORT_CPU): parse_cpu;
            default: parse_ethernet;
        }
    }

    state parse_cpu {
        pkt.extract(hdr.rp_cpu);
        transition select(hdr.rp_cpu.op) {
            RP_CPU_OP_SEND: parse_cpu_send;
            default: reject;
        }
    }

    state parse_cpu_send {
        md.kind = RP_K_CPU_SEND;
        transition parse_message_frame;
    }

    state parse_rtx {
        md.kind = RP_K_RTX;
        transition parse_message_frame;
    }

    /* A request as this switch built it: the message, the frame left as payload. */
    state parse_message_frame {
        pkt.extract(hdr.ethernet);
        pkt.extract(hdr.rp_ipv4);
        pkt.extract(hdr.rp_udp);
        pkt.extract(hdr.rp_hdr);
        pkt.extract(hdr.rp_key);
        pkt.extract(hdr.rp_state);
        pkt.extract(hdr.rp_mac);
        transition accept;
    }

    state parse_ethernet {
        pkt.extract(hdr.ethernet);
        transition select(hdr.ethernet.ether_type) {
            ETHERTYPE_VLAN: parse_vlan;
            ETHERTYPE_IPV4: probe_ipv4;
            default: accept;
        }
    }

    /*
     * A tagged frame is never taken for a message (the store link carries no
     * VLAN, docs/DATAPLANE.md): one to the endpoint is a frame here, and the
     * ingress drops it as a malformed message, as the XDP data plane does.
     */
    state parse_vlan {
        pkt.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_frame_ipv4;
            default: accept;
        }
    }

    state parse_frame_ipv4 {
        md.kind = RP_K_IPV4;
        transition parse_ipv4;
    }

    /*
     * Is it a message to this switch?  The IPv4 and UDP headers are looked
     * at before extraction (all within the parser's 32-byte window), so that
     * a message's outer headers land in rp_ipv4/rp_udp and its echoed frame
     * in the frame's own header instances.  Bytes of the lookahead: 0
     * version/IHL, 9 protocol, 16-19 destination, 22-23 UDP destination
     * port.  Only IHL 5: a message with options is malformed anyway.
     */
    state probe_ipv4 {
        bit<224> probe = pkt.lookahead<bit<224>>();
        md.kind = RP_K_IPV4;
        transition select(probe[223:216], probe[151:144]) {
            (0x45, IP_PROTO_UDP): probe_port;
            default: parse_ipv4;
        }
    }

    state probe_port {
        bit<224> probe = pkt.lookahead<bit<224>>();
        transition select(probe[47:32]) {
            rp_port_vs: probe_addr;
            default: parse_ipv4;
        }
    }

    state probe_addr {
        bit<224> probe = pkt.lookahead<bit<224>>();
        transition select(probe[95:64]) {
            rp_addr_vs: parse_message;
            default: parse_ipv4;
        }
    }

    state parse_message {
        md.kind = RP_K_MSG;
        pkt.extract(hdr.rp_ipv4);
        pkt.extract(hdr.rp_udp);
        pkt.extract(hdr.rp_hdr);
        pkt.extract(hdr.rp_key);
        pkt.extract(hdr.rp_state);
        pkt.extract(hdr.rp_mac);
        transition select(hdr.rp_hdr.flags & RP_F_PKT) {
            RP_F_PKT: parse_inner_eth;
            default: accept;
        }
    }

    /* the echoed frame: md.kind stays RP_K_MSG */
    state parse_inner_eth {
        pkt.extract(hdr.inner_eth);
        transition select(hdr.inner_eth.ether_type) {
            ETHERTYPE_VLAN: parse_inner_vlan;
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }

    state parse_inner_vlan {
        pkt.extract(hdr.vlan);
        transition select(hdr.vlan.ether_type) {
            ETHERTYPE_IPV4: parse_ipv4;
            default: accept;
        }
    }

    state parse_ipv4 {
        pkt.extract(hdr.ipv4);
        ipv4_csum.subtract({hdr.ipv4.hdr_checksum,
                            hdr.ipv4.ttl, hdr.ipv4.protocol,
                            hdr.ipv4.src_addr, hdr.ipv4.dst_addr});
        md.ipv4_resid = ipv4_csum.get();
        l4_csum.subtract({hdr.ipv4.src_addr, hdr.ipv4.dst_addr});
        /* a fragment has no ports to key on past the first: left unparsed */
        transition select(hdr.ipv4.flags[0:0], hdr.ipv4.frag_offset) {
            (0, 0): parse_ipv4_options;
            default: accept;
        }
    }

    state parse_ipv4_options {
        transition select(hdr.ipv4.ihl) {
            5: parse_l4;
            6: parse_opt1;
            7: parse_opt2;
            8: parse_opt3;
            9: parse_opt4;
            10: parse_opt5;
            11: parse_opt6;
            12: parse_opt7;
            13: parse_opt8;
            14: parse_opt9;
            15: parse_opt10;
            default: accept;    /* IHL < 5: the ingress drops it (drop_truncated) */
        }
    }

    state parse_opt10 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt9; }
    state parse_opt9 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt8; }
    state parse_opt8 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt7; }
    state parse_opt7 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt6; }
    state parse_opt6 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt5; }
    state parse_opt5 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt4; }
    state parse_opt4 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt3; }
    state parse_opt3 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt2; }
    state parse_opt2 { pkt.extract(hdr.ipv4_opts.next); transition parse_opt1; }
    state parse_opt1 { pkt.extract(hdr.ipv4_opts.next); transition parse_l4; }

    state parse_l4 {
        transition select(hdr.ipv4.protocol) {
            IP_PROTO_TCP: parse_tcp;
            IP_PROTO_UDP: parse_udp;
            default: accept;
        }
    }

    state parse_tcp {
        pkt.extract(hdr.tcp);
        l4_csum.subtract({hdr.tcp.checksum, hdr.tcp.src_port, hdr.tcp.dst_port});
        md.l4_resid = l4_csum.get();
        md.sport = hdr.tcp.src_port;
        md.dport = hdr.tcp.dst_port;
        md.tcp_flags = hdr.tcp.flags;
        transition accept;
    }

    state parse_udp {
        pkt.extract(hdr.udp);
        l4_csum.subtract({hdr.udp.checksum, hdr.udp.src_port, hdr.udp.dst_port});
        md.l4_resid = l4_csum.get();
        md.sport = hdr.udp.src_port;
        md.dport = hdr.udp.dst_port;
        transition accept;
    }
}

control RpIngressDeparser(packet_out pkt,
                          inout rp_headers_t hdr,
                          in rp_ig_md_t md,
                          in ingress_intrinsic_metadata_for_deparser_t ig_dprsr_md)
{
    Checksum() ipv4_csum;
    Checksum() tcp_csum;
    Checksum() udp_csum;

    apply {
        if (md.upd_ipv4) {
            hdr.ipv4.hdr_checksum = ipv4_csum.update({
                hdr.ipv4.ttl, hdr.ipv4.protocol,
                hdr.ipv4.src_addr, hdr.ipv4.dst_addr,
                md.ipv4_resid});
        }
        if (md.upd_tcp) {
            hdr.tcp.checksum = tcp_csum.update({
                hdr.ipv4.src_addr, hdr.ipv4.dst_addr,
                hdr.tcp.src_port, hdr.tcp.dst_port,
                md.l4_resid});
        }
        /* UDP: the ingress sets upd_udp only when the checksum was not 0 ("none") */
        if (md.upd_udp) {
            hdr.udp.checksum = udp_csum.update(data = {
                hdr.ipv4.src_addr, hdr.ipv4.dst_addr,
                hdr.udp.src_port, hdr.udp.dst_port,
                md.l4_resid}, zeros_as_ones = true);  /* a computed 0 goes out as all ones (RFC 768) */
        }
        pkt.emit(hdr);
    }
}

/*
 * Egress sees three kinds of packet: a mirrored copy of a WRITE (its first
 * byte an RP_RC_* kind) on its way round the recirculation port, a message
 * this switch sends (RP_BR_REQUEST: its lengths are set here, where the
 * frame's length is known), and everything else, which only loses its
 * bridged header.
 */
parser RpEgressParser(packet_in pkt,
                      out rp_headers_t hdr,
                      out rp_eg_md_t md,
                      out egress_intrinsic_metadata_t eg_intr_md)
{
    state start {
        pkt.extract(eg_intr_md);
        transition select(pkt.lookahead<bit<8>>()) {
            RP_PT_BRIDGE: parse_bridge;
            RP_RC_RTX: parse_copy;
            default: accept;
        }
    }

    state parse_copy {
        pkt.extract(hdr.rp_recirc);
        transition accept;
    }

    state parse_bridge {
        pkt.extract(md.bridge);
        transition select(md.bridge.flags & RP_BR_REQUEST) {
            RP_BR_REQUEST: parse_request;
            default: accept;
        }
    }

    state parse_request {
        pkt.extract(hdr.ethernet);
        pkt.extract(hdr.rp_ipv4);
        pkt.extract(hdr.rp_udp);
        pkt.extract(hdr.rp_hdr);
        transition accept;
    }
}

control RpEgressDeparser(packet_out pkt,
                         inout rp_headers_t hdr,
                         in rp_eg_md_t md,
                         in egress_intrinsic_metadata_for_deparser_t eg_dprsr_md)
{
    Checksum() rp_ipv4_csum;
    Mirror() mirror;

    apply {
        if (md.upd_rp_ipv4) {
            hdr.rp_ipv4.hdr_checksum = rp_ipv4_csum.update({
                hdr.rp_ipv4.version, hdr.rp_ipv4.ihl, hdr.rp_ipv4.diffserv,
                hdr.rp_ipv4.total_len, hdr.rp_ipv4.identification,
                hdr.rp_ipv4.flags, hdr.rp_ipv4.frag_offset,
                hdr.rp_ipv4.ttl, hdr.rp_ipv4.protocol,
                hdr.rp_ipv4.src_addr, hdr.rp_ipv4.dst_addr});
        }
        /*
         * The retransmission copy: this request as it leaves (lengths and
         * checksum set above), behind an rp_recirc_h that the ingress reads
         * when the copy comes back round the recirculation port.
         */
        if (eg_dprsr_md.mirror_type == RP_MIRROR_TYPE_E2E) {
            mirror.emit<rp_recirc_h>(md.rtx_session, {
                RP_RC_RTX, RP_PORT_FRONT, md.mirror_tries, 8w0,
                16w0, 16w0, md.now, 32w0, 16w0, 16w0});
        }
        pkt.emit(hdr);
    }
}

#endif /* _RP_PARSERS_P4_ */
