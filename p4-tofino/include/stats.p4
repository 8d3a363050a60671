/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Counter indices.  The names are the XDP data plane's (RP_DP_STATS in
 * include/redplane/dp.h and the NAT's RP_NAT_STATS), so that the two data
 * planes' figures read alike; the indices are this file's own, since the XDP
 * list also holds the counters of applications this program does not have.
 * Four counter arrays in ingress and one in egress share this index space (a
 * Counter is executed at most once a pass, and a packet can be counted under
 * several names); each index is counted by one array only, and
 * control/rp_tofino.py sums the arrays index by index.  Keep STAT_NAMES in
 * control/rp_tofino.py in step with this list.
 */
#ifndef _RP_STATS_P4_
#define _RP_STATS_P4_

const bit<8> RP_ST_rx_packets = 0;	/* every packet the root program saw */
const bit<8> RP_ST_pass_not_ipv4 = 1;	/* ARP, IPv6, ...: to the kernel; on Tofino: to the CPU port */
const bit<8> RP_ST_pass_not_app = 2;	/* IPv4 the app does not handle; on Tofino: routed as it is */
const bit<8> RP_ST_drop_truncated = 3;	/* headers cut short */
const bit<8> RP_ST_drop_fragment = 4;	/* IPv4 fragments (no ports to key on) */
const bit<8> RP_ST_ip_options = 5;	/* IPv4 with options: handled, kept */
const bit<8> RP_ST_fast_path = 6;	/* leased, read-only: forwarded at once */
const bit<8> RP_ST_lease_req = 7;	/* packet sent to the store in a lease request */
const bit<8> RP_ST_write_req = 8;	/* output packet sent in a write request */
const bit<8> RP_ST_drop_no_session = 9;	/* no live session: nothing can be leased */
const bit<8> RP_ST_emit_too_big = 10;	/* packet too big to ride in a request */
const bit<8> RP_ST_emit_no_route = 11;	/* no route or neighbour to the store */
const bit<8> RP_ST_emit_error = 12;	/* headroom could not be grown; never on Tofino (no headroom to grow) */
const bit<8> RP_ST_wcopy_lost = 13;	/* retransmit copy not queued (ring full); never on Tofino (mirror drops are not visible to the program) */
const bit<8> RP_ST_rx_store = 14;	/* protocol messages from a store */
const bit<8> RP_ST_drop_bad_source = 15;	/* protocol port, but not from a store */
const bit<8> RP_ST_drop_malformed_msg = 16;	/* protocol message breaking a rule */
const bit<8> RP_ST_hb_ack_pass = 17;	/* heartbeat acks handed to rp-load */
const bit<8> RP_ST_grant = 18;	/* lease granted, flow installed */
const bit<8> RP_ST_migrate = 19;	/* lease with stored state, installed */
const bit<8> RP_ST_regrant = 20;	/* grant of the holding already here: kept */
const bit<8> RP_ST_drop_stale_grant = 21;	/* grant for another session epoch */
const bit<8> RP_ST_drop_table_full = 22;	/* flows map full; never on Tofino (a grant takes its slot: slot_evict) */
const bit<8> RP_ST_ack = 23;	/* write acknowledged, packet released */
const bit<8> RP_ST_drop_stale_ack = 24;	/* duplicate or older ACK: not released */
const bit<8> RP_ST_drop_ack_not_owner = 25;	/* ACK for a flow not held */
const bit<8> RP_ST_reject = 26;	/* REJECT from the store: packet dropped */
const bit<8> RP_ST_reject_lost_lease = 27;	/* REJECT not_owner or stale: lease dropped */
const bit<8> RP_ST_reject_not_head = 28;	/* REJECT not_head: lease kept, to rp-load */
const bit<8> RP_ST_revoke = 29;	/* REVOKE: lease given up, acked */
const bit<8> RP_ST_revoke_unknown = 30;	/* REVOKE for a flow not held: acked */
const bit<8> RP_ST_nat_new = 31;	/* NAT mapping proposed for a new flow */
const bit<8> RP_ST_nat_rev_req = 32;	/* NAT reverse key requested */
const bit<8> RP_ST_nat_collision = 33;	/* NAT port already mapped elsewhere */
const bit<8> RP_ST_nat_no_mapping = 34;	/* NAT return traffic with a bad mapping */
const bit<8> RP_ST_fwd_redirect = 35;	/* forwarded by bpf_redirect */
const bit<8> RP_ST_fwd_pass = 36;	/* forwarded by the kernel (no neighbour, VLAN, ...); on Tofino: handed to the CPU by a local route */
const bit<8> RP_ST_fwd_drop = 37;	/* no route (blackhole, unreachable) */
const bit<8> RP_ST_drop_ttl = 38;	/* TTL expired */
const bit<8> RP_ST_drop_tail_call = 39;	/* a tail call failed; never on Tofino (no tail calls) */
/* Tofino only */
const bit<8> RP_ST_slot_evict = 40;	/* a grant (or a revoke's record) took a slot held by another flow (hash collision) */
const bit<8> RP_ST_steered = 41;	/* handed to the state pipe by another pipe */
const bit<8> RP_ST_recirc = 42;	/* sent round for another pass (echoed frames, reverse-key lookups) */
const bit<8> RP_ST_cpu_send = 43;	/* frames the control plane sent (heartbeats) */
const bit<8> RP_ST_rtx_sent = 44;	/* WRITE copies sent again (rp-load: retransmits) */
const bit<8> RP_ST_rtx_acked = 45;	/* copies freed by an ACK (rp-load: writes_acked) */
const bit<8> RP_ST_rtx_abandoned = 46;	/* copies freed: the holding is gone (rp-load: writes_abandoned) */
const bit<8> RP_ST_rtx_gave_up = 47;	/* copies dropped after the last try (rp-load: gave_up) */
const bit<8> RP_ST_rtx_wait = 48;	/* copies sent round again, not yet due */

const bit<32> RP_ST_N = 64;
const bit<8> RP_ST_NONE = 255;	/* not counted */

#endif /* _RP_STATS_P4_ */
