/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every header and metadata type of the Tofino data plane other than the
 * protocol's own (those are in redplane.p4, the twin of the C header): the
 * standard headers (Ethernet, one 802.1Q tag, IPv4 and its options, TCP,
 * UDP), the headers the switch puts in front of a frame for itself (bridged
 * metadata, recirculation and mirror header, CPU header, port metadata), and
 * the header and metadata structs.  One declaration of each, used by every
 * file of p4-tofino/; `build.sh --check` refuses a second one.
 */
#ifndef _RP_HEADERS_P4_
#define _RP_HEADERS_P4_

#include "redplane.p4"

typedef bit<48> mac_addr_t;
typedef bit<32> ipv4_addr_t;
typedef bit<12> vlan_id_t;

const bit<16> ETHERTYPE_IPV4 = 0x0800;
const bit<16> ETHERTYPE_VLAN = 0x8100;

const bit<8> IP_PROTO_TCP = 6;
const bit<8> IP_PROTO_UDP = 17;

/* tcp_h.flags */
const bit<8> TCP_FIN = 0x01;
const bit<8> TCP_RST = 0x04;

/* ---- standard headers ---- */

header ethernet_h {
    mac_addr_t dst_addr;
    mac_addr_t src_addr;
    bit<16>    ether_type;
}

header vlan_tag_h {
    bit<3>    pcp;
    bit<1>    cfi;
    vlan_id_t vid;
    bit<16>   ether_type;
}

header ipv4_h {
    bit<4>      version;
    bit<4>      ihl;
    bit<8>      diffserv;
    bit<16>     total_len;
    bit<16>     identification;
    bit<3>      flags;          /* reserved, DF, MF */
    bit<13>     frag_offset;
    bit<8>      ttl;
    bit<8>      protocol;
    bit<16>     hdr_checksum;
    ipv4_addr_t src_addr;
    ipv4_addr_t dst_addr;
}

/*
 * IPv4 options, one 32-bit word each (IHL counts words): a stack of ten
 * holds the longest header (IHL 15).  They are extracted, never skipped,
 * because Tofino's deparser re-emits only what was extracted before the
 * payload: skipped bytes would vanish from the frame.
 */
header ipv4_opt_word_h {
    bit<32> word;
}
const int RP_IPV4_OPT_WORDS = 10;

header tcp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<32> seq_no;
    bit<32> ack_no;
    bit<4>  data_offset;
    bit<4>  res;
    bit<8>  flags;
    bit<16> window;
    bit<16> checksum;
    bit<16> urgent_ptr;
}

header udp_h {
    bit<16> src_port;
    bit<16> dst_port;
    bit<16> length;
    bit<16> checksum;
}

/* ---- what the switch puts in front of a frame for itself ---- */

/* Kinds of port (the parser's value sets, rp_ig_md_t.port_kind) */
const bit<8> RP_PORT_FRONT = 0;     /* a port toward hosts, routers or stores */
const bit<8> RP_PORT_CPU = 1;       /* the control plane's port */
const bit<8> RP_PORT_RECIRC = 2;    /* the state pipe's recirculation port */

/*
 * Ingress to egress, in front of every packet the ingress deparser emits:
 * its first byte tells the egress parser it from a mirrored copy, whose
 * first byte is an rp_recirc_h kind (RP_RC_*), never this value.
 */
const bit<8> RP_PT_BRIDGE = 0xb1;
const bit<8> RP_BR_REQUEST = 0x01;  /* a protocol message the switch sends: egress sets its lengths */
const bit<8> RP_BR_WRITE = 0x02;    /* a WRITE: egress mirrors a copy for retransmission */
header rp_bridge_h {
    bit<8> pkt_type;        /* RP_PT_BRIDGE */
    bit<8> flags;           /* RP_BR_* */
    bit<8> tries;           /* a WRITE: transmissions before this one */
    bit<8> pad;
}
const bit<16> RP_BRIDGE_LEN = 4;

/* egress-to-egress mirroring (the retransmission copies) */
#if __TARGET_TOFINO__ == 1
const bit<3> RP_MIRROR_TYPE_E2E = 2;
#else
const bit<4> RP_MIRROR_TYPE_E2E = 2;
#endif

/*
 * In front of a frame that goes round through a recirculation port, and of
 * the mirrored copies of WRITE requests (the Mirror extern emits it): why the
 * frame comes back and what the next pass needs.
 */
const bit<8> RP_RC_STEER = 0xc1;        /* from another pipe's port: process here */
const bit<8> RP_RC_REPROCESS = 0xc2;    /* a frame a GRANT/MIGRATE echoed: through the app again */
const bit<8> RP_RC_REV_LOOKUP = 0xc3;   /* a new connection's frame: look its reverse key up */
const bit<8> RP_RC_RTX = 0xc4;          /* a copy of a WRITE request, for retransmission */
const bit<8> RP_RC_DROP_LEASE = 0xc5;   /* a REJECT stale found the store ahead: drop the lease */
header rp_recirc_h {
    bit<8>      kind;       /* RP_RC_* */
    bit<8>      port_kind;  /* STEER: RP_PORT_* of the port it came in on */
    bit<8>      tries;      /* RTX: transmissions so far, the first included */
    bit<8>      rev_ok;     /* REPROCESS: the reverse key ext_addr:ext_port was just granted */
    bit<16>     orig_port;  /* STEER: the port it came in on */
    bit<16>     passes;     /* RTX: trips round the recirculation port since the last send */
    bit<32>     sent;       /* RTX: when it was last sent (RP time units) */
    ipv4_addr_t ext_addr;   /* REPROCESS, REV_LOOKUP: the connection's external address */
    bit<16>     ext_port;   /* ... and port */
    bit<16>     pad;
}

/*
 * Between the data plane and the control plane (control/rp_tofino.py), in
 * front of the frame on the CPU port, both ways.
 */
const bit<8> RP_CPU_OP_SEND = 0x01;     /* from the CPU: send this message frame (heartbeats) */
const bit<8> RP_CPU_HB_ACK = 0x81;      /* to the CPU: a HEARTBEAT_ACK; hb_sent is its heartbeat's send time */
const bit<8> RP_CPU_NOT_HEAD = 0x82;    /* to the CPU: a REJECT not_head, echoed packet and all */
const bit<8> RP_CPU_NOT_IPV4 = 0x83;    /* to the CPU: ARP, IPv6, ... (the switch's host stack) */
const bit<8> RP_CPU_LOCAL = 0x84;       /* to the CPU: a route says the switch itself */
header rp_cpu_h {
    bit<8>  op;             /* RP_CPU_* */
    bit<8>  chain;          /* HB_ACK, NOT_HEAD: the replica's chain */
    bit<16> ingress_port;
    bit<32> now;            /* data plane time (RP time units) when punted */
    bit<32> hb_sent;        /* HB_ACK: when the acked heartbeat left (0: unknown) */
}

/*
 * RP time units: the device's global timestamp (ns) >> 10, 1.024 us, 32
 * bits: they wrap every 73 minutes, and every comparison is serial (RFC
 * 1982), valid while the two times are less than 36 minutes apart.  The
 * control plane converts lease periods and timeouts into them.
 */
#define RP_NOW(ts) ((ts)[41:10])

/* ---- headers and metadata ---- */

/*
 * One struct for both gresses and every kind of pass.  Emission order is
 * declaration order: a frame's own Ethernet header first when the frame is
 * forwarded; when it is wrapped in a request, that same instance becomes the
 * outer Ethernet header and a copy of it (inner_eth) goes after the message,
 * followed by the frame's VLAN tag, IPv4 header and the rest, unmoved.  A
 * store message parses the same way round: its outer Ethernet header in
 * ethernet, the echoed frame in inner_eth, vlan, ipv4, ... so that the same
 * actions act on a frame whether it came bare or inside a message.
 */
struct rp_headers_t {
    rp_bridge_h     bridge;
    rp_recirc_h     rp_recirc;
    rp_cpu_h        rp_cpu;
    ethernet_h      ethernet;
    ipv4_h          rp_ipv4;        /* a message's IPv4 header */
    udp_h           rp_udp;         /* ... and UDP header */
    rp_hdr_h        rp_hdr;
    rp_key_h        rp_key;
    rp_nat_state_h  rp_state;
    rp_mac_h        rp_mac;
    ethernet_h      inner_eth;      /* the Ethernet header of the frame a message carries */
    vlan_tag_h      vlan;
    ipv4_h          ipv4;
    ipv4_opt_word_h[RP_IPV4_OPT_WORDS] ipv4_opts;
    tcp_h           tcp;
    udp_h           udp;
}

/* What the ingress parser found (rp_ig_md_t.kind). */
const bit<8> RP_K_OTHER = 0;        /* not IPv4 */
const bit<8> RP_K_IPV4 = 1;         /* IPv4: see l4 */
const bit<8> RP_K_MSG = 2;          /* a protocol message addressed to this switch */
const bit<8> RP_K_CPU_SEND = 3;     /* a message the control plane sends */
const bit<8> RP_K_RTX = 4;          /* a WRITE's retransmission copy */

/* Operations on the flow table (control RpFlows) */
const bit<8> RP_OP_NONE = 0;
const bit<8> RP_OP_DATA = 1;        /* a packet of the flow: lookup, maybe write */
const bit<8> RP_OP_INSTALL = 2;     /* GRANT or MIGRATE */
const bit<8> RP_OP_ACK = 3;
const bit<8> RP_OP_REVOKE = 4;
const bit<8> RP_OP_REJECT_SEQ = 5;  /* REJECT stale: is the store ahead of us? */
const bit<8> RP_OP_REJECT_DROP = 6; /* REJECT not_owner/conflict (or stale, ahead) */
const bit<8> RP_OP_RTX = 7;         /* is this WRITE copy still unacknowledged? */

/* What becomes of a packet at the end of ingress (rp_ig_md_t.fate). */
const bit<8> RP_FATE_DROP = 0;
const bit<8> RP_FATE_FORWARD = 1;   /* a frame: routed, TTL - 1, the next hop's MACs and VLAN */
const bit<8> RP_FATE_SEND = 2;      /* a message this switch sends: routed, outer MACs only */
const bit<8> RP_FATE_RECIRC = 3;    /* round again through the state pipe's recirculation port */
const bit<8> RP_FATE_CPU = 4;       /* to the control plane, behind an rp_cpu_h */
const bit<8> RP_FATE_STEER = 5;     /* to the state pipe */

/*
 * Outer headers of a message: Ethernet, IPv4, UDP (no VLAN: the store link
 * carries none), then the message itself, rp_hdr_h + rp_key_h + the state
 * + rp_mac_h (24 + 40 + 64 + 8 bytes = RP_MSG_LEN).
 */
const bit<16> RP_ENCAP_LEN = 14 + 20 + 8 + RP_MSG_LEN;
const bit<16> RP_UDP_MSG_LEN = 8 + RP_MSG_LEN;         /* UDP length of a message with no packet */
const bit<16> RP_IP_MSG_LEN = 20 + 8 + RP_MSG_LEN;     /* IPv4 length of the same */

/* rp_ig_md_t.flags: local to the switch, never replicated (dp.h's RP_DPF_*) */
const bit<8> RP_FL_REV_PENDING = 0x01;  /* NAT: the reverse key is not yet in the store */

/* Dual-width register cells. */
struct rp_pair_t {
    bit<32> lo;
    bit<32> hi;
}

#ifndef RP_SLOT_BITS
#define RP_SLOT_BITS 16             /* 65536 flow slots, as rp-load's default --max-flows */
#endif
typedef bit<RP_SLOT_BITS> rp_slot_t;
const bit<32> RP_SLOTS = 1 << RP_SLOT_BITS;
const bit<32> RP_MAX_STORES = 4;    /* include/redplane/dp.h */

struct rp_ig_md_t {
    /* parser */
    bit<8>      kind;               /* RP_K_* */
    bit<8>      port_kind;          /* RP_PORT_* */
    bit<16>     ipv4_resid;         /* IPv4 header checksum without ttl/proto/addresses */
    bit<16>     l4_resid;           /* TCP/UDP checksum without addresses and ports */
    bit<16>     sport;              /* TCP or UDP ports, wherever they came from */
    bit<16>     dport;
    bit<8>      tcp_flags;

    /* configuration (table rp_cfg) */
    bit<16>     switch_id;
    ipv4_addr_t src_addr;           /* this switch's protocol endpoint */
    bit<16>     src_port;
    ipv4_addr_t nat_ext;
    bit<32>     port_first;         /* this switch's share of the NAT ports: [first, end) */
    bit<32>     port_end;
    PortId_t    cpu_port;
    PortId_t    recirc_port;        /* the state pipe's recirculation port */
    bit<16>     rtx_max_passes;
    /*
     * Per-flow state lives in the registers of one pipe, the state pipe: a
     * port of another pipe hands its packets to the state pipe's
     * recirculation port first (table rp_port_steer).  0: no steering.
     */
    PortId_t    steer_port;

    /* this pass */
    bit<32>     now;                /* RP time units */
    PortId_t    orig_port;
    bool        outbound;           /* source in --nat-int */
    bool        inbound;            /* destination --nat-ext */
    bool        to_endpoint;        /* UDP to the protocol endpoint, not parsed as a message */
    bool        msg_bad;
    bit<16>     udp_tail;           /* bytes after the message by the UDP length */
    bit<16>     ip_udp_len;         /* UDP length by the IPv4 length */

    /* the flow key looked up or installed (IPv4 only) */
    bit<8>      k_proto;
    ipv4_addr_t k_saddr;
    ipv4_addr_t k_daddr;
    bit<16>     k_sport;
    bit<16>     k_dport;
    bit<32>     key_hash;           /* CRC-32 of the 40-byte protocol key */
    rp_slot_t   slot;
    bit<8>      chain;              /* the store chain the key hashes to */
    bit<8>      src_chain;          /* a message: the chain of the replica that sent it */
    bool        src_ok;

    /* session of the chain */
    bit<32>     sess_epoch;         /* data passes: 0 unless live; messages: any */

    /* flow table operation and results */
    bit<8>      op;                 /* RP_OP_* */
    bit<32>     msg_epoch;
    bit<32>     msg_seq;
    bit<32>     rank_in;            /* gen ++ 0b01 ++ 0: a grant's rank (flows.p4) */
    bit<32>     held32;             /* gen ++ HELD */
    bit<32>     gone32;             /* gen ++ GONE */
    bit<32>     take32;             /* what a claimed slot gets: held32 (grant), gone32 (revoke) */
    bit<1>      kaddr_hit;
    bit<1>      kport_hit;
    bool        same_key;
    bit<32>     lease_rv;
    bool        held;
    bit<16>     gen;
    bit<16>     gone_gen;           /* data: the generation given up in the live session, or 0 */
    bit<1>      owned;              /* ACK/RTX: the holding the message names is held */
    bit<1>      advanced;           /* ACK: newer than the newest acked */
    bit<1>      unacked;            /* RTX: not yet covered by an ACK */
    bit<1>      lease_dropped;      /* REJECT: the lease was given up */
    bit<32>     nat_addr;
    bit<32>     nat_pd;             /* port ++ 8 zero bits ++ dir */
    bit<8>      closing;            /* before this packet */
    bit<8>      close_bits;         /* RP_NAT_FIN/RST this packet carries */
    bit<8>      new_bits;           /* ... that the state did not have */
    bit<8>      flags;              /* RP_FL_* */
    bool        rev_clear;          /* REPROCESS confirmed the reverse key */
    bit<32>     acked;
    bit<32>     seq;
    bool        wrote;              /* the packet writes: a WRITE request */
    bool        may_write;          /* held, mapped, nothing pending: FIN/RST may write */
    /* state to install (GRANT/MIGRATE) */
    bit<32>     st_addr;
    bit<32>     st_pd;
    bit<8>      st_closing;
    bit<8>      st_flags;
    bit<8>      mode;               /* RP_MODE_* */

    /* what to do with the packet */
    bit<8>      fate;               /* RP_FATE_* */
    ipv4_addr_t route_dst;
    bit<8>      cpu_op;
    bit<32>     hb_sent;
    bit<32>     next_port;          /* NAT: a newly allocated external port */
    ipv4_addr_t head_addr;          /* the chain's head (table rp_chain_head) */
    bit<16>     head_port;
    bit<8>      msg_class;          /* table rp_msg_class: RP_MC_* */
    bit<32>     rtx_rto;
    bit<32>     rtx_over;           /* age of a WRITE copy less its timeout */
    bool        rtx_give_up;
    bit<32>     seq_ahead;          /* REJECT stale: store's committed seq less ours */

    /* next hop (table rp_route) */
    bool        route_hit;
    bool        route_cpu;
    mac_addr_t  nh_dmac;
    mac_addr_t  nh_smac;
    vlan_id_t   nh_vid;

    /* checksums to update in the deparser */
    bool        upd_ipv4;
    bool        upd_tcp;
    bool        upd_udp;

    /* counters (include/stats.p4): each array counts at most once a pass */
    bit<8>      st_class;
    bit<8>      st_outcome;
    bit<8>      st_note;
    bit<8>      st_fwd;
}

struct rp_eg_md_t {
    rp_bridge_h bridge;
    bit<16>     frame_adjust;       /* eg_intr_md.pkt_length - frame length (the FCS on hardware) */
    bit<16>     frame_len;
    bit<16>     inner_len;
    MirrorId_t  rtx_session;
    bit<8>      mirror_kind;
    bit<8>      mirror_tries;
    bit<32>     now;
    bool        upd_rp_ipv4;
    bit<8>      st_eg;
}

#endif /* _RP_HEADERS_P4_ */
