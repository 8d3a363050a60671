/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The redplane wire protocol in P4_16: the P4 twin of include/redplane/proto.h
 * (and of the NAT state in include/redplane/dp.h).  One place for every
 * header and constant the Tofino program uses; nothing here is repeated
 * elsewhere in p4-tofino/.
 *
 * selftests/test_p4.c parses this file in `make test` and checks it against
 * the C header field by field: order, widths, names and every constant.
 * Field names are the C names, except `type`, a P4 keyword: `msg_type`.
 * Multi-byte fields are in network byte order on the wire, as P4 extracts
 * them.
 */
#ifndef _REDPLANE_P4_
#define _REDPLANE_P4_

/* ---- constants (include/redplane/proto.h) ---- */

const bit<8>  RP_VERSION = 2;
const bit<16> RP_DEFAULT_PORT = 4791;
const bit<8>  RP_STATE_MAX = 64;
const bit<16> RP_PKT_MAX = 1518;
const bit<16> RP_MSG_LEN = 136;		/* header, key, state and MAC */
const bit<16> RP_DGRAM_MAX = 1654;	/* RP_MSG_LEN + RP_PKT_MAX */

/* enum rp_msg_type */
const bit<8> RP_MSG_LEASE_REQ = 1;
const bit<8> RP_MSG_GRANT = 2;
const bit<8> RP_MSG_MIGRATE = 3;
const bit<8> RP_MSG_HEARTBEAT = 4;
const bit<8> RP_MSG_HEARTBEAT_ACK = 5;
const bit<8> RP_MSG_WRITE = 6;
const bit<8> RP_MSG_SNAPSHOT = 7;
const bit<8> RP_MSG_ACK = 8;
const bit<8> RP_MSG_REVOKE = 9;
const bit<8> RP_MSG_REVOKE_ACK = 10;
const bit<8> RP_MSG_REJECT = 11;
const bit<8> RP_MSG_EXPIRE = 12;
const bit<8> RP_MSG_EXPIRE_ACK = 13;

/* enum rp_app_id */
const bit<8> RP_APP_NONE = 0;
const bit<8> RP_APP_NAT = 1;
const bit<8> RP_APP_FW = 2;
const bit<8> RP_APP_LB = 3;
const bit<8> RP_APP_COUNTER = 4;
const bit<8> RP_APP_SKETCH = 5;

/* rp_hdr.flags */
const bit<8> RP_F_STATE = 0x01;
const bit<8> RP_F_PKT = 0x02;
const bit<8> RP_F_ALL = 0x03;

/* rp_hdr.gen in a HEARTBEAT */
const bit<16> RP_HB_LAPSED = 1;

/* enum rp_reject_reason */
const bit<8> RP_REJ_NONE = 0;
const bit<8> RP_REJ_NO_SESSION = 1;
const bit<8> RP_REJ_NOT_OWNER = 2;
const bit<8> RP_REJ_STALE = 3;
const bit<8> RP_REJ_BUSY = 4;
const bit<8> RP_REJ_QUEUE_FULL = 5;
const bit<8> RP_REJ_TIMEOUT = 6;
const bit<8> RP_REJ_TABLE_FULL = 7;
const bit<8> RP_REJ_NO_FLOW = 8;
const bit<8> RP_REJ_CONFLICT = 9;
const bit<8> RP_REJ_NOT_HEAD = 10;

/* rp_flow_key.family */
const bit<8> RP_AF_INET = 4;
const bit<8> RP_AF_INET6 = 6;

/* the NAT's state value (include/redplane/dp.h) */
const bit<8> RP_NAT_FWD = 1;
const bit<8> RP_NAT_REV = 2;
const bit<8> RP_NAT_FIN = 0x01;
const bit<8> RP_NAT_RST = 0x02;

/* ---- headers ---- */

/* struct rp_hdr: 24 bytes */
header rp_hdr_h {
    bit<8>  version;
    bit<8>  msg_type;
    bit<8>  app_id;
    bit<8>  flags;
    bit<16> switch_id;
    bit<8>  reason;
    bit<8>  state_len;
    bit<32> seq;
    bit<32> epoch;
    bit<32> lease_ms;
    bit<16> pkt_len;
    bit<16> gen;
}

/* struct rp_flow_key: 40 bytes; an IPv4 address fills the first 4 of 16 */
header rp_key_h {
    bit<8>   family;
    bit<8>   proto;
    bit<16>  sport;
    bit<16>  dport;
    bit<16>  pad;
    bit<128> saddr;
    bit<128> daddr;
}

/*
 * struct rp_msg's state: 64 bytes.  The NAT's value, struct rp_nat_state,
 * is its first 8 bytes; the rest is zero.
 */
header rp_nat_state_h {
    bit<32>  addr;
    bit<16>  port;
    bit<8>   dir;
    bit<8>   closing;
    bit<448> rest;
}

/*
 * struct rp_msg's mac: SipHash-2-4 of the 128 bytes before it under the
 * deployment's key (docs/SECURITY.md).  This program sends 0 and does not
 * check it: a deployment with Tofino switches runs without --mac-key.
 */
header rp_mac_h {
    bit<64>  mac;
}

/* struct rp_head_hint: the state of a REJECT not_head */
header rp_head_hint_h {
    bit<32>  addr;
    bit<16>  port;
    bit<16>  pad;
    bit<32>  version;
    bit<416> rest;
}

#endif /* _REDPLANE_P4_ */
