# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""PTF tests of redplane.p4 on tofino-model (or an ASIC), through BF Runtime.

The cases of the XDP fixtures (selftests/test_xdp.c), on the Tofino program:
each sends frames and store messages, and checks what leaves which port, the
flow registers and the counters.  Run from open-p4studio:

    ./run_p4_tests.sh -p redplane -t $REDPLANE/p4-tofino/ptf-tests \\
        -f $REDPLANE/p4-tofino/ptf-tests/ports.json \\
        --test-params "frame_adjust=0;cpu_port=64"

Ports: swports[0] toward the inside (client), [1] the outside (server),
[2] the stores; the CPU port is the test parameter cpu_port (64, the CPU
Ethernet port tofino-model has), the recirculation port 68.  The switch's
session is opened as the agent does it: a heartbeat sent through the CPU
port is stamped by the data plane, whose stamp is the device's clock, and
the session expiry is set from it.
"""
import ipaddress
import logging
import zlib

import ptf.testutils as testutils
from bfruntime_client_base_tests import BfRuntimeTest
import bfrt_grpc.client as gc
from p4testutils.misc_utils import get_logger, get_sw_ports
from scapy.all import ARP, IP, TCP, UDP, Dot1Q, Ether, IPOption, IPv6, Raw

from rp_scapy import PROTO, RpCpu, RpHeadHint, RpKey, RpNatState, parse_msg, rp_msg
from rp_tofino import STAT_NAMES     # control/, on the path rp_scapy set

logger = get_logger()
swports = get_sw_ports()

P4_NAME = "redplane"
SWITCH_ID = 7
EPOCH = 5
RP_ADDR, RP_PORT = "192.0.2.1", 4790
STORE, STORE_B, STRANGER = "192.0.2.10", "192.0.2.12", "192.0.2.11"
STORE_PORT = 4791
CLIENT, SERVER, EXT = "10.1.0.2", "198.51.100.2", "203.0.113.1"
PORT_FIRST, PORT_END = 20000, 20100
SWITCH_MAC = "00:00:00:00:aa:01"
MAC_CLIENT, MAC_SERVER, MAC_STORE = "00:00:00:00:00:c1", "00:00:00:00:00:5e", "00:00:00:00:00:57"
RECIRC_PORT = 68
MIRROR_SESSION = 1
UNIT_NS = 1024
RP_CPU_OP_SEND, RP_CPU_HB_ACK, RP_CPU_NOT_HEAD, RP_CPU_NOT_IPV4 = 0x01, 0x81, 0x82, 0x83
ST_HELD, ST_GONE, ST_MASK = 0x8000, 0xc000, 0xc000
LEASE_NONE = 0xffffffff


def ip2int(a):
    return int(ipaddress.IPv4Address(a))


def mac2int(m):
    return int(m.replace(":", ""), 16)


def key(proto, saddr, sport, daddr, dport):
    return RpKey(proto=proto, saddr=saddr, sport=sport, daddr=daddr, dport=dport)


def slot_of(k):
    """The flow's register index: include/flows.p4's hash of the 40-byte key."""
    return zlib.crc32(bytes(k)) & 0xffff


def colliding(k):
    """Another TCP key of the same slot (another client port and server port)."""
    b = bytearray(bytes(k))
    for sport in range(1, 65536):
        for dport in (81, 82, 83, 84, 85, 86, 87, 88):
            b[2:6] = sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
            if (zlib.crc32(bytes(b)) & 0xffff) == slot_of(k) and bytes(b) != bytes(k):
                return key(k.proto, k.saddr, sport, k.daddr, dport)
    raise AssertionError("no key collides with %r" % k)


def tcp(src, sport, dst, dport, flags="A", dmac=SWITCH_MAC, smac=MAC_CLIENT, payload=16, **ip):
    # 16 bytes of payload: a frame longer than Ethernet's minimum, never padded
    return (Ether(dst=dmac, src=smac) / IP(src=src, dst=dst, ttl=64, id=1, **ip) /
            TCP(sport=sport, dport=dport, flags=flags, seq=1000, ack=1) /
            Raw(b"\x00" * payload))


def udp(src, sport, dst, dport, dmac=SWITCH_MAC, smac=MAC_CLIENT, payload=24, csum=True):
    p = (Ether(dst=dmac, src=smac) / IP(src=src, dst=dst, ttl=64, id=1) /
         UDP(sport=sport, dport=dport) / Raw(b"\x00" * payload))
    if not csum:
        p[UDP].chksum = 0
    return p


def forwarded(pkt, dmac, smac=SWITCH_MAC, **rewrite):
    """What the switch sends on: its MACs, TTL - 1, addresses/ports rewritten, checksums anew."""
    p = pkt.copy()
    p[Ether].dst, p[Ether].src = dmac, smac
    p[IP].ttl -= 1
    for field, value in rewrite.items():
        layer, name = field.split("_", 1)
        setattr(p[{"ip": IP, "tcp": TCP, "udp": UDP}[layer]], name, value)
    del p[IP].chksum
    if TCP in p:
        del p[TCP].chksum
    elif UDP in p and p[UDP].chksum != 0:
        del p[UDP].chksum
    return Ether(bytes(p))


class RpTest(BfRuntimeTest):
    """The switch configured as control/rp_tofino.py would, session open under EPOCH."""

    def setUp(self):
        BfRuntimeTest.setUp(self, 0, P4_NAME)
        self.bfrt_info = self.interface.bfrt_info_get(P4_NAME)
        self.target = gc.Target(device_id=0, pipe_id=0xffff)
        self.INT, self.EXT, self.STO = swports[0], swports[1], swports[2]
        self.CPU = int(testutils.test_param_get("cpu_port", 64))
        self.frame_adjust = int(testutils.test_param_get("frame_adjust", 0))
        self.added = []
        self.nonce = 100
        self.configure()
        self.open_session()

    def tearDown(self):
        for table, keys in reversed(self.added):
            try:
                table.entry_del(self.target, keys)
            except gc.BfruntimeRpcException:
                pass
        for name in ("RpIngress.flows.r_kaddr", "RpIngress.flows.r_kport",
                     "RpIngress.flows.r_lease", "RpIngress.flows.r_seq",
                     "RpIngress.flows.r_acked", "RpIngress.flows.r_flags",
                     "RpIngress.flows.r_closing", "RpIngress.session.r_session"):
            self.table(name).entry_del(self.target)     # a register's clear
        BfRuntimeTest.tearDown(self)

    # ---- tables ----

    def table(self, name):
        return self.bfrt_info.table_get(name)

    def add(self, name, keys, data=None, action=None):
        t = self.table(name)
        k = [t.make_key(keys)]
        t.entry_add(self.target, k, [t.make_data(data or [], action)])
        self.added.append((t, k))

    def default(self, name, data, action):
        t = self.table(name)
        t.default_entry_set(self.target, t.make_data(data, action))

    def reg_write(self, name, index, **fields):
        t = self.table(name)
        t.entry_add(self.target, [t.make_key([gc.KeyTuple("$REGISTER_INDEX", index)])],
                    [t.make_data([gc.DataTuple("%s.%s" % (name, f), v)
                                  for f, v in fields.items()])])

    def reg_read(self, name, index, field="f1"):
        t = self.table(name)
        resp = t.entry_get(self.target, [t.make_key([gc.KeyTuple("$REGISTER_INDEX", index)])],
                           {"from_hw": True})
        data, _ = next(resp)
        return data.to_dict()["%s.%s" % (name, field)][0]     # the state pipe's, pipe 0

    def stat(self, name):
        """A counter, summed over the arrays that share include/stats.p4's indices."""
        i = STAT_NAMES.index(name)
        total = 0
        for arr in ("RpIngress.stats_rx", "RpIngress.stats_class", "RpIngress.stats_outcome",
                    "RpIngress.stats_note", "RpIngress.stats_fwd", "RpEgress.stats_eg"):
            t = self.table(arr)
            resp = t.entry_get(self.target, [t.make_key([gc.KeyTuple("$COUNTER_INDEX", i)])],
                               {"from_hw": True})
            data, _ = next(resp)
            total += sum(data.to_dict()["$COUNTER_SPEC_PKTS"])
        return total

    def configure(self):
        ig = "RpIngress."
        self.default(ig + "rp_cfg", [
            gc.DataTuple("switch_id", SWITCH_ID), gc.DataTuple("src_addr", ip2int(RP_ADDR)),
            gc.DataTuple("src_port", RP_PORT), gc.DataTuple("nat_ext", ip2int(EXT)),
            gc.DataTuple("port_first", PORT_FIRST), gc.DataTuple("port_end", PORT_END),
            gc.DataTuple("cpu_port", self.CPU), gc.DataTuple("recirc_port", RECIRC_PORT),
            gc.DataTuple("rtx_max_passes", 0)], ig + "set_cfg")
        self.default("RpEgress.rp_eg_cfg", [gc.DataTuple("frame_adjust", self.frame_adjust),
                                            gc.DataTuple("rtx_session", MIRROR_SESSION)],
                     "RpEgress.set_eg_cfg")
        prs = "RpIngressParser."
        self.add(prs + "rp_port_vs", [gc.KeyTuple("port", RP_PORT, 0xffff)])
        self.add(prs + "rp_addr_vs", [gc.KeyTuple("addr", ip2int(RP_ADDR), 0xffffffff)])
        self.add(prs + "rp_cpu_vs", [gc.KeyTuple("ingress_port", self.CPU, 0x1ff)])
        self.add(prs + "rp_recirc_vs", [gc.KeyTuple("ingress_port", RECIRC_PORT, 0x1ff)])
        for replica in (STORE, STORE_B):
            self.add(ig + "rp_replica", [gc.KeyTuple("src_addr", ip2int(replica)),
                                         gc.KeyTuple("src_port", STORE_PORT)],
                     [gc.DataTuple("chain", 0)], ig + "set_replica")
        self.add(ig + "rp_chain_head", [gc.KeyTuple("chain", 0)],
                 [gc.DataTuple("addr", ip2int(STORE)), gc.DataTuple("port", STORE_PORT)],
                 ig + "set_head")
        self.add(ig + "flow_key.rp_chain_of", [gc.KeyTuple("chain_hash", low=0, high=0xffff)],
                 [gc.DataTuple("chain", 0)], ig + "flow_key.set_chain")
        self.add(ig + "nat_key.nat_inside", [gc.KeyTuple("src_addr", ip2int("10.1.0.0"),
                                                         prefix_len=24)],
                 [], ig + "nat_key.inside")
        self.add(ig + "nat_own_port", [gc.KeyTuple("port", low=PORT_FIRST, high=PORT_END - 1)],
                 [], ig + "own_port")
        self.reg_write(ig + "nat.r_nat_next", 0, f1=PORT_FIRST)
        self.add(ig + "rp_route", [gc.KeyTuple("route_dst", ip2int(RP_ADDR), prefix_len=32)],
                 [], ig + "local")
        for net, port, mac in (("10.1.0.0", self.INT, MAC_CLIENT),
                               ("198.51.100.0", self.EXT, MAC_SERVER),
                               ("192.0.2.0", self.STO, MAC_STORE)):
            self.add(ig + "rp_route", [gc.KeyTuple("route_dst", ip2int(net), prefix_len=24)],
                     [gc.DataTuple("port", port), gc.DataTuple("dmac", mac2int(mac)),
                      gc.DataTuple("smac", mac2int(SWITCH_MAC)), gc.DataTuple("vid", 0)],
                     ig + "nexthop")
        self.add("$mirror.cfg", [gc.KeyTuple("$sid", MIRROR_SESSION)], [
            gc.DataTuple("$direction", str_val="EGRESS"),
            gc.DataTuple("$ucast_egress_port", RECIRC_PORT),
            gc.DataTuple("$ucast_egress_port_valid", bool_val=True),
            gc.DataTuple("$session_enable", bool_val=True)], "$normal")

    # ---- the session, as the agent opens it ----

    def heartbeat(self, dst=STORE):
        self.nonce += 1
        msg = rp_msg(PROTO.RP_MSG_HEARTBEAT, SWITCH_ID, seq=self.nonce)
        frame = (Ether(dst="00:00:00:00:00:00", src=SWITCH_MAC) /
                 IP(src=RP_ADDR, dst=dst, ttl=64, id=0) / UDP(sport=RP_PORT, dport=STORE_PORT,
                                                              chksum=0) / Raw(msg))
        return self.nonce, frame

    def device_now(self):
        """The data plane's clock: the stamp it gives a heartbeat sent through the CPU port."""
        nonce, frame = self.heartbeat()
        testutils.send_packet(self, self.CPU, bytes(RpCpu(op=RP_CPU_OP_SEND)) + bytes(frame))
        out = frame.copy()
        out[Ether].dst, out[Ether].src = MAC_STORE, SWITCH_MAC
        testutils.verify_packet(self, Ether(bytes(out)), self.STO)
        return nonce, self.reg_read("RpIngress.r_hb", nonce & 0xff, "hi")

    def open_session(self, seconds=60):
        _, now = self.device_now()
        expiry = (now + seconds * 1000000000 // UNIT_NS) & 0xffffffff
        self.reg_write("RpIngress.session.r_session", 0, lo=EPOCH, hi=expiry)

    # ---- messages ----

    def store_msg(self, src, msg_type, k, seq=0, epoch=EPOCH, gen=0, state=None, reason=0,
                  pkt=b"", sport=STORE_PORT, switch_id=SWITCH_ID):
        msg = rp_msg(msg_type, switch_id, key=k, seq=seq, epoch=epoch, gen=gen, state=state,
                     reason=reason, lease_ms=200, pkt=bytes(pkt))
        return (Ether(dst=SWITCH_MAC, src=MAC_STORE) / IP(src=src, dst=RP_ADDR, ttl=64) /
                UDP(sport=sport, dport=RP_PORT, chksum=0) / Raw(msg))

    def expect_request(self, to=STORE):
        """The request the switch sent toward the stores, decoded."""
        res = testutils.dp_poll(self, device_number=0, port_number=self.STO, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess), "no request on the store port")
        p = Ether(res.packet)
        self.assertEqual(p[Ether].dst, MAC_STORE)
        self.assertEqual(p[IP].src, RP_ADDR)
        self.assertEqual(p[IP].dst, to)
        self.assertEqual(p[UDP].sport, RP_PORT)
        self.assertEqual(p[UDP].dport, STORE_PORT)
        self.assertEqual(p[UDP].chksum, 0)
        raw = bytes(p[UDP].payload)
        h, k, st, inner = parse_msg(raw)
        self.assertEqual(h.switch_id, SWITCH_ID)
        self.assertEqual(h.pkt_len, len(inner), "pkt_len is the bytes that follow")
        self.assertEqual(p[IP].len, 20 + 8 + len(raw))
        self.assertEqual(IP(bytes(p[IP])[:20]).chksum, p[IP].chksum)
        return h, k, st, inner

    def flow(self, k):
        s = slot_of(k)
        f = "RpIngress.flows."
        lease_hi = self.reg_read(f + "r_lease", s, "hi")
        return {"epoch": self.reg_read(f + "r_lease", s, "lo"),
                "gen": lease_hi >> 16, "held": (lease_hi & ST_MASK) == ST_HELD,
                "status": lease_hi & ST_MASK,
                "saddr": self.reg_read(f + "r_kaddr", s, "lo"),
                "nat_addr": self.reg_read(f + "r_nat_addr", s),
                "nat_pd": self.reg_read(f + "r_nat_pd", s),
                "flags": self.reg_read(f + "r_flags", s),
                "closing": self.reg_read(f + "r_closing", s),
                "seq": self.reg_read(f + "r_seq", s),
                "acked": self.reg_read(f + "r_acked", s)}

    def hold(self, k, nat_addr, nat_port, direction, seq=0, gen=0):
        """A held lease on k, installed as a GRANT would (no packet: consumed)."""
        st = RpNatState(addr=nat_addr, port=nat_port, dir=direction)
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_MIGRATE, k,
                                                             seq=seq, gen=gen, state=st))
        testutils.verify_no_other_packets(self, timeout=1)

    def hold_mapping(self, proto, cport, ext_port):
        fwd = key(proto, CLIENT, cport, SERVER, 80)
        rev = key(proto, SERVER, 80, EXT, ext_port)
        self.hold(fwd, EXT, ext_port, PROTO.RP_NAT_FWD)
        self.hold(rev, CLIENT, cport, PROTO.RP_NAT_REV)
        # a MIGRATE of a forward key from this switch's range wants its reverse key confirmed
        if PORT_FIRST <= ext_port < PORT_END:
            self.reg_write("RpIngress.flows.r_flags", slot_of(fwd), f1=0)
        return fwd, rev


class NewTcpConnectionTakesBothKeysThenForwards(RpTest):
    def runTest(self):
        syn = tcp(CLIENT, 40000, SERVER, 80, flags="S")
        fwd = key(6, CLIENT, 40000, SERVER, 80)

        # 1. no lease: the SYN rides to the store, proposing a mapping
        testutils.send_packet(self, self.INT, syn)
        h, k, st, inner = self.expect_request()
        self.assertEqual(h.msg_type, PROTO.RP_MSG_LEASE_REQ)
        self.assertEqual(bytes(k), bytes(fwd), "request for the forward key")
        self.assertEqual((st.addr, st.dir), (EXT, PROTO.RP_NAT_FWD))
        port = st.port
        self.assertTrue(PORT_FIRST <= port < PORT_END, "port %d from this switch's share" % port)
        self.assertEqual(inner, bytes(syn), "the SYN rides as it came")
        self.assertEqual(self.stat("nat_new"), 1)

        # 2. GRANT: installed; the SYN goes round, and out again for the reverse key
        testutils.send_packet(self, self.STO, self.store_msg(
            STORE, PROTO.RP_MSG_GRANT, fwd, state=st, pkt=inner))
        h, k, st2, inner2 = self.expect_request()
        rev = key(6, SERVER, 80, EXT, port)
        self.assertEqual(h.msg_type, PROTO.RP_MSG_LEASE_REQ)
        self.assertEqual(bytes(k), bytes(rev), "request for the reverse key")
        self.assertEqual((st2.addr, st2.port, st2.dir), (CLIENT, 40000, PROTO.RP_NAT_REV))
        self.assertEqual(inner2, bytes(syn), "still untranslated")
        f = self.flow(fwd)
        self.assertTrue(f["held"])
        self.assertEqual(f["flags"], 1, "the reverse key is pending")
        self.assertEqual(self.stat("nat_rev_req"), 1)

        # 3. GRANT of the reverse key: the SYN leaves, translated
        testutils.send_packet(self, self.STO, self.store_msg(
            STORE, PROTO.RP_MSG_GRANT, rev, state=st2, pkt=inner2))
        testutils.verify_packet(self, forwarded(syn, MAC_SERVER, ip_src=EXT, tcp_sport=port),
                                self.EXT)
        self.assertEqual(self.flow(fwd)["flags"], 0, "both keys are in the store")
        self.assertTrue(self.flow(rev)["held"])

        # 4. the connection's next packet reads the mapping: no store
        pkt = tcp(CLIENT, 40000, SERVER, 80)
        testutils.send_packet(self, self.INT, pkt)
        testutils.verify_packet(self, forwarded(pkt, MAC_SERVER, ip_src=EXT, tcp_sport=port),
                                self.EXT)
        self.assertEqual(self.stat("lease_req"), 2, "no further request")

        # 5. the reply comes back in, to the client
        reply = tcp(SERVER, 80, EXT, port, flags="SA", smac=MAC_SERVER)
        testutils.send_packet(self, self.EXT, reply)
        testutils.verify_packet(self, forwarded(reply, MAC_CLIENT, ip_dst=CLIENT,
                                                tcp_dport=40000), self.INT)
        testutils.verify_no_other_packets(self)


class MigrateInstallsStoredStateAndProcessesPacket(RpTest):
    def runTest(self):
        rev = key(6, SERVER, 80, EXT, 30050)    # another switch's port: no reverse-key check
        pkt = tcp(SERVER, 80, EXT, 30050, smac=MAC_SERVER)
        st = RpNatState(addr=CLIENT, port=40100, dir=PROTO.RP_NAT_REV)
        testutils.send_packet(self, self.STO, self.store_msg(
            STORE, PROTO.RP_MSG_MIGRATE, rev, seq=9, state=st, pkt=pkt))
        testutils.verify_packet(self, forwarded(pkt, MAC_CLIENT, ip_dst=CLIENT, tcp_dport=40100),
                                self.INT)
        f = self.flow(rev)
        self.assertEqual((f["seq"], f["acked"]), (9, 9), "the committed seq came along")
        self.assertEqual(self.stat("migrate"), 1)


class FinIsWriteReleasedOnlyByAck(RpTest):
    def runTest(self):
        fwd, _ = self.hold_mapping(6, 40001, 30042)
        fin = tcp(CLIENT, 40001, SERVER, 80, flags="FA")
        testutils.send_packet(self, self.INT, fin)
        h, k, st, inner = self.expect_request()
        self.assertEqual(h.msg_type, PROTO.RP_MSG_WRITE)
        self.assertEqual(bytes(k), bytes(fwd))
        self.assertEqual(h.seq, 1)
        self.assertEqual((st.closing, st.port), (PROTO.RP_NAT_FIN, 30042))
        # the output packet rides, translated, not yet forwarded (MACs and TTL as they came)
        want = fin.copy()
        want[IP].src, want[TCP].sport = EXT, 30042
        del want[IP].chksum, want[TCP].chksum
        self.assertEqual(inner, bytes(Ether(bytes(want))))
        f = self.flow(fwd)
        self.assertEqual((f["seq"], f["acked"]), (1, 0))

        # the ACK releases it
        ack = self.store_msg(STORE_B, PROTO.RP_MSG_ACK, fwd, seq=1, pkt=inner)
        testutils.send_packet(self, self.STO, ack)
        testutils.verify_packet(self, forwarded(Ether(inner), MAC_SERVER), self.EXT)
        self.assertEqual(self.flow(fwd)["acked"], 1)
        self.assertEqual(self.stat("ack"), 1)

        # a duplicate ACK releases nothing
        testutils.send_packet(self, self.STO, ack)
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_stale_ack"), 1)

        # a second FIN changes nothing: no second write
        testutils.send_packet(self, self.INT, fin)
        testutils.verify_packet(self, forwarded(fin, MAC_SERVER, ip_src=EXT, tcp_sport=30042),
                                self.EXT)
        self.assertEqual(self.stat("write_req"), 1)


class StaleOrDuplicateAckNotReleased(RpTest):
    def runTest(self):
        fwd, _ = self.hold_mapping(6, 40002, 30043)
        fin = tcp(CLIENT, 40002, SERVER, 80, flags="FA")
        testutils.send_packet(self, self.INT, fin)
        _, _, _, inner1 = self.expect_request()
        # not acked yet: TCP's retransmission of the FIN writes again (seq 2)
        testutils.send_packet(self, self.INT, fin)
        h, _, _, inner2 = self.expect_request()
        self.assertEqual(h.seq, 2)
        # ACK 2 releases the second; the late ACK 1 (covered) releases nothing
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_ACK, fwd,
                                                             seq=2, pkt=inner2))
        testutils.verify_packet(self, forwarded(Ether(inner2), MAC_SERVER), self.EXT)
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_ACK, fwd,
                                                             seq=1, pkt=inner1))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_stale_ack"), 1)
        # an ACK of another holding (generation) is not ours
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_ACK, fwd,
                                                             seq=3, gen=4, pkt=inner1))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_ack_not_owner"), 1)


class UnackedWriteIsRetransmitted(RpTest):
    """The switch's own retransmission: mirror copy, recirculation, timeout."""

    def runTest(self):
        # one retransmission after 50 ms, then given up 100 ms later (--max-tries 1);
        # long enough for tofino-model, which takes milliseconds a packet
        rto = 50000000 // UNIT_NS
        self.add("RpIngress.rp_rtx_rto", [gc.KeyTuple("tries", 1)],
                 [gc.DataTuple("rto", rto)], "RpIngress.rtx_resend")
        self.add("RpIngress.rp_rtx_rto", [gc.KeyTuple("tries", 2)],
                 [gc.DataTuple("rto", rto << 1)], "RpIngress.rtx_last")
        fwd, _ = self.hold_mapping(6, 40003, 30044)
        testutils.send_packet(self, self.INT, tcp(CLIENT, 40003, SERVER, 80, flags="FA"))
        first = self.expect_request()
        again = self.expect_request()       # the same write, sent again by the switch
        self.assertEqual(bytes(again[0]), bytes(first[0]))
        self.assertEqual(again[3], first[3])
        self.assertGreaterEqual(self.stat("rtx_sent"), 1)
        # acked: the copy is dropped on its next trip (or has been given up), nothing
        # more is sent
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_ACK, fwd,
                                                             seq=1, pkt=first[3]))
        testutils.verify_packet(self, forwarded(Ether(first[3]), MAC_SERVER), self.EXT)
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("rtx_acked") + self.stat("rtx_gave_up"), 1)


class RejectNotOwnerDropsTheLease(RpTest):
    def runTest(self):
        fwd, _ = self.hold_mapping(6, 40300, 30070)
        inner = tcp(EXT, 30070, SERVER, 80, flags="F")

        def reject(reason, seq=3, gen=0):
            testutils.send_packet(self, self.STO, self.store_msg(
                STORE, PROTO.RP_MSG_REJECT, fwd, seq=seq, gen=gen, reason=reason, pkt=inner))
            testutils.verify_no_other_packets(self, timeout=1)  # never released

        reject(PROTO.RP_REJ_NOT_OWNER, gen=1)       # another holding's: nothing
        self.assertTrue(self.flow(fwd)["held"], "an earlier holding's reject: the lease stands")
        reject(PROTO.RP_REJ_STALE, seq=0)           # a late copy of an old write: kept
        self.assertTrue(self.flow(fwd)["held"])
        reject(PROTO.RP_REJ_STALE, seq=3)           # the store is ahead: given up
        self.assertFalse(self.flow(fwd)["held"], "stale: the lease is given up")

        self.hold_mapping(6, 40300, 30070)
        reject(PROTO.RP_REJ_NOT_OWNER)
        f = self.flow(fwd)
        self.assertFalse(f["held"], "not the owner: the lease is gone")
        self.assertEqual(f["epoch"], EPOCH, "the slot keeps the state as a hint")
        self.assertEqual(self.stat("reject"), 4)
        self.assertEqual(self.stat("reject_lost_lease"), 2)


class RevokeAnsweredWithRevokeAck(RpTest):
    def runTest(self):
        fwd, _ = self.hold_mapping(6, 40400, 30080)
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_REVOKE, fwd,
                                                             seq=4))
        res = testutils.dp_poll(self, device_number=0, port_number=self.STO, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess), "no REVOKE_ACK")
        p = Ether(res.packet)
        self.assertEqual((p[Ether].dst, p[Ether].src), (MAC_STORE, SWITCH_MAC))
        self.assertEqual((p[IP].src, p[IP].dst), (RP_ADDR, STORE))
        self.assertEqual((p[UDP].sport, p[UDP].dport), (RP_PORT, STORE_PORT))
        m = PROTO.decode(bytes(p[UDP].payload))
        self.assertEqual(m["msg_type"], PROTO.RP_MSG_REVOKE_ACK)
        self.assertEqual((m["epoch"], m["switch_id"], m["seq"]), (EPOCH, SWITCH_ID, 4))
        self.assertEqual(bytes(p[UDP].payload)[24:64], bytes(fwd))
        self.assertFalse(self.flow(fwd)["held"], "no longer processed here")
        self.assertEqual(self.stat("revoke"), 1)

        # a late grant of the holding given up is refused
        testutils.send_packet(self, self.STO, self.store_msg(
            STORE, PROTO.RP_MSG_MIGRATE, fwd, seq=4,
            state=RpNatState(addr=EXT, port=30080, dir=PROTO.RP_NAT_FWD)))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertFalse(self.flow(fwd)["held"])
        self.assertEqual(self.stat("drop_stale_grant"), 1)

        # a revoke for a flow not held is acked all the same
        other = key(6, CLIENT, 1, SERVER, 2)
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_REVOKE, other))
        res = testutils.dp_poll(self, device_number=0, port_number=self.STO, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess))
        self.assertEqual(self.stat("revoke_unknown"), 1)


class RevokeThatOvertakesItsGrant(RpTest):
    """A revoke that overtakes its grant: the grant is refused, and the next request names
    the given-up generation (selftests/test_xdp.c, a_revoke_that_overtakes_its_grant...)."""

    def revoke(self, k, gen, seq=0):
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_REVOKE, k,
                                                             seq=seq, gen=gen))
        res = testutils.dp_poll(self, device_number=0, port_number=self.STO, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess), "no REVOKE_ACK")
        m = PROTO.decode(bytes(Ether(res.packet)[UDP].payload))
        self.assertEqual(m["msg_type"], PROTO.RP_MSG_REVOKE_ACK)
        self.assertEqual((m["epoch"], m["gen"]), (EPOCH, gen), "the ack names the holding")

    def runTest(self):
        fwd = key(6, CLIENT, 40600, SERVER, 80)
        st = RpNatState(addr=EXT, port=30096, dir=PROTO.RP_NAT_FWD)
        # another flow holds the slot: the revoke's record takes it, as a grant would
        other = colliding(fwd)
        self.hold(other, EXT, 30097, PROTO.RP_NAT_FWD)
        self.assertTrue(self.flow(other)["held"])

        # 1. revoked before this switch heard it was granted: acked, and remembered
        self.revoke(fwd, gen=3, seq=7)
        self.assertEqual(self.stat("revoke_unknown"), 1)
        self.assertEqual(self.stat("revoke"), 0)
        self.assertEqual(self.stat("slot_evict"), 1, "the other flow was pushed out")
        f = self.flow(fwd)
        self.assertEqual(f["saddr"], ip2int(CLIENT), "the slot is the revoked flow's")
        self.assertEqual((f["epoch"], f["gen"], f["status"]), (EPOCH, 3, ST_GONE),
                         "the given-up holding is recorded")
        self.assertFalse(f["held"])
        self.assertEqual((f["nat_addr"], f["nat_pd"], f["flags"], f["closing"]), (0, 0, 0, 0),
                         "the other flow's state is not taken for this one's")
        testutils.verify_no_other_packets(self, timeout=1)

        # 2. the grant of that holding arrives: refused, with its packet
        syn = tcp(CLIENT, 40600, SERVER, 80, flags="S")
        testutils.send_packet(self, self.STO, self.store_msg(
            STORE, PROTO.RP_MSG_GRANT, fwd, seq=7, gen=3, state=st, pkt=syn))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_stale_grant"), 1)
        f = self.flow(fwd)
        self.assertFalse(f["held"], "not held: another switch may have it now")
        self.assertEqual((f["gen"], f["status"]), (3, ST_GONE))
        # an earlier holding's grant is refused as well
        testutils.send_packet(self, self.STO, self.store_msg(
            STORE, PROTO.RP_MSG_GRANT, fwd, seq=7, gen=2, state=st))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_stale_grant"), 2)

        # 3. the next packet asks again, naming the holding it gave up
        testutils.send_packet(self, self.INT, syn)
        h, k, _, inner = self.expect_request()
        self.assertEqual(h.msg_type, PROTO.RP_MSG_LEASE_REQ)
        self.assertEqual(bytes(k), bytes(fwd))
        self.assertEqual((h.epoch, h.gen), (EPOCH, 3), "gen: the given-up generation")
        self.assertEqual(inner, bytes(syn))

        # 4. a later holding's grant is taken
        testutils.send_packet(self, self.STO, self.store_msg(
            STORE, PROTO.RP_MSG_GRANT, fwd, seq=7, gen=4, state=st))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("grant"), 1)
        f = self.flow(fwd)
        self.assertTrue(f["held"])
        self.assertEqual((f["epoch"], f["gen"]), (EPOCH, 4))
        self.assertEqual(f["nat_pd"] & 0xff, PROTO.RP_NAT_FWD)

        # 5. a late copy of the earlier revoke leaves the later holding alone
        self.revoke(fwd, gen=3, seq=7)
        f = self.flow(fwd)
        self.assertTrue(f["held"], "a later holding stays")
        self.assertEqual(f["gen"], 4)
        self.assertEqual(self.stat("revoke_unknown"), 2)

        # 6. the other flow, pushed out, asks again with no generation given up
        testutils.send_packet(self, self.INT, tcp(CLIENT, other.sport, SERVER, other.dport))
        h, k, _, _ = self.expect_request()
        self.assertEqual(h.msg_type, PROTO.RP_MSG_LEASE_REQ)
        self.assertEqual(bytes(k), bytes(other))
        self.assertEqual(h.gen, 0, "it gave nothing up")
        testutils.verify_no_other_packets(self, timeout=1)


class MessagesFromUnknownSourceDropped(RpTest):
    def runTest(self):
        rev = key(6, SERVER, 80, EXT, 30060)
        st = RpNatState(addr=CLIENT, port=1, dir=PROTO.RP_NAT_REV)
        inner = tcp(SERVER, 80, EXT, 30060, smac=MAC_SERVER)
        # a forged grant from an address that is not a store, and from a replica's other port
        testutils.send_packet(self, self.STO, self.store_msg(STRANGER, PROTO.RP_MSG_GRANT, rev,
                                                             state=st, pkt=inner))
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_GRANT, rev,
                                                             state=st, pkt=inner,
                                                             sport=STORE_PORT + 1))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_bad_source"), 2)
        self.assertNotEqual(self.flow(rev)["saddr"], ip2int(SERVER), "nothing installed")
        # a grant of another session epoch
        testutils.send_packet(self, self.STO, self.store_msg(STORE, PROTO.RP_MSG_GRANT, rev,
                                                             epoch=EPOCH - 1, state=st,
                                                             pkt=inner))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_stale_grant"), 1)


class NotHeadPassesToCpu(RpTest):
    def runTest(self):
        fwd, _ = self.hold_mapping(6, 40310, 30073)
        inner = tcp(EXT, 30073, SERVER, 80, flags="F")
        hint = RpHeadHint(addr=STORE_B, port=STORE_PORT, version=2)
        msg = self.store_msg(STORE, PROTO.RP_MSG_REJECT, fwd, reason=PROTO.RP_REJ_NOT_HEAD,
                             state=hint, pkt=inner)
        testutils.send_packet(self, self.STO, msg)
        res = testutils.dp_poll(self, device_number=0, port_number=self.CPU, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess), "nothing on the CPU port")
        cpu = RpCpu(res.packet[:12])
        self.assertEqual((cpu.op, cpu.chain, cpu.ingress_port), (RP_CPU_NOT_HEAD, 0, self.STO))
        self.assertEqual(res.packet[12:], bytes(msg), "as it came: the echoed packet stays in")
        self.assertTrue(self.flow(fwd)["held"], "the lease stands")
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("reject_not_head"), 1)
        self.assertEqual(self.stat("reject_lost_lease"), 0)

        # the answer to a heartbeat (no app, no key, no packet): up as well
        hb = rp_msg(PROTO.RP_MSG_REJECT, SWITCH_ID, reason=PROTO.RP_REJ_NOT_HEAD, epoch=EPOCH,
                    state=RpHeadHint(addr=STORE, port=STORE_PORT, version=2))
        frame = (Ether(dst=SWITCH_MAC, src=MAC_STORE) / IP(src=STORE_B, dst=RP_ADDR) /
                 UDP(sport=STORE_PORT, dport=RP_PORT, chksum=0) / Raw(hb))
        testutils.send_packet(self, self.STO, frame)
        res = testutils.dp_poll(self, device_number=0, port_number=self.CPU, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess))
        self.assertEqual(self.stat("reject_not_head"), 2)


class HeartbeatAcksToCpu(RpTest):
    def runTest(self):
        nonce, sent = self.device_now()
        ack = rp_msg(PROTO.RP_MSG_HEARTBEAT_ACK, SWITCH_ID, seq=nonce, epoch=EPOCH, lease_ms=200)
        for src in (STORE, STORE_B):    # the chain's tail answers, not the head it went to
            frame = (Ether(dst=SWITCH_MAC, src=MAC_STORE) / IP(src=src, dst=RP_ADDR) /
                     UDP(sport=STORE_PORT, dport=RP_PORT, chksum=0) / Raw(ack))
            testutils.send_packet(self, self.STO, frame)
            res = testutils.dp_poll(self, device_number=0, port_number=self.CPU, timeout=2)
            self.assertTrue(isinstance(res, self.dataplane.PollSuccess))
            cpu = RpCpu(res.packet[:12])
            self.assertEqual(cpu.op, RP_CPU_HB_ACK)
            self.assertEqual(cpu.hb_sent, sent, "timed from the heartbeat's send")
            self.assertTrue(0 <= (cpu.now - sent) & 0xffffffff < 10 ** 9)
        self.assertEqual(self.stat("hb_ack_pass"), 2)


class VlanAndIpOptions(RpTest):
    def runTest(self):
        self.hold_mapping(17, 6000, 30095)
        # an IPv4 header with 4 bytes of options: translated, the options kept
        pkt = (Ether(dst=SWITCH_MAC, src=MAC_CLIENT) /
               IP(src=CLIENT, dst=SERVER, ttl=64, id=1, options=[IPOption(b"\x01\x01\x01\x00")]) /
               UDP(sport=6000, dport=80) / Raw(b"\x00" * 16))
        testutils.send_packet(self, self.INT, pkt)
        testutils.verify_packet(self, forwarded(pkt, MAC_SERVER, ip_src=EXT, udp_sport=30095),
                                self.EXT)
        self.assertEqual(self.stat("ip_options"), 1)
        # the same with an 802.1Q tag: translated, and the route's VLAN (none) applied
        tagged = (Ether(dst=SWITCH_MAC, src=MAC_CLIENT) / Dot1Q(vlan=10) /
                  IP(src=CLIENT, dst=SERVER, ttl=64, id=1) / UDP(sport=6000, dport=80) /
                  Raw(b"\x00" * 16))
        untagged = (Ether(dst=SWITCH_MAC, src=MAC_CLIENT) / IP(src=CLIENT, dst=SERVER, ttl=64, id=1) /
                    UDP(sport=6000, dport=80) / Raw(b"\x00" * 16))
        testutils.send_packet(self, self.INT, tagged)
        testutils.verify_packet(self, forwarded(untagged, MAC_SERVER, ip_src=EXT,
                                                udp_sport=30095), self.EXT)
        # a UDP checksum of 0 stays 0
        testutils.send_packet(self, self.INT, udp(CLIENT, 6000, SERVER, 80, csum=False))
        testutils.verify_packet(self, forwarded(udp(CLIENT, 6000, SERVER, 80, csum=False),
                                                MAC_SERVER, ip_src=EXT, udp_sport=30095),
                                self.EXT)


class MalformedMessagesDropped(RpTest):
    def runTest(self):
        k = key(6, CLIENT, 1, SERVER, 2)
        base = bytes(self.store_msg(STORE, PROTO.RP_MSG_ACK, k, seq=1))
        msg_at = 14 + 20 + 8

        def patched(offset, value):
            b = bytearray(base)
            b[msg_at + offset] = value
            return bytes(b)

        cases = [
            ("message of another version", patched(0, 2)),
            ("a switch's message type", patched(1, PROTO.RP_MSG_WRITE)),
            ("message for another switch", patched(5, SWITCH_ID + 1)),
            ("unknown flag", patched(3, 0x80)),
            ("PKT flag with no packet", patched(3, PROTO.RP_F_PKT)),
            ("an IPv4 key with bytes in its unused address part", patched(24 + 8 + 5, 1)),
        ]
        # a UDP length announcing bytes pkt_len does not
        p = Ether(base)
        p[UDP].len += 5
        p[IP].len += 5
        del p[IP].chksum
        cases.append(("message with unannounced bytes", bytes(p) + b"\0" * 5))
        for name, frame in cases:
            before = self.stat("drop_malformed_msg")
            testutils.send_packet(self, self.STO, frame)
            testutils.verify_no_other_packets(self, timeout=1)
            self.assertEqual(self.stat("drop_malformed_msg"), before + 1, name)
        self.assertEqual(self.stat("lease_req"), 0, "none of them reached the store")


class NoLiveSessionMeansNoProcessing(RpTest):
    def runTest(self):
        self.hold_mapping(6, 40500, 30090)
        _, now = self.device_now()
        self.reg_write("RpIngress.session.r_session", 0, lo=EPOCH,
                       hi=(now - 1) & 0xffffffff)                           # lapsed
        testutils.send_packet(self, self.INT, tcp(CLIENT, 40500, SERVER, 80))
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_no_session"), 1)
        self.assertEqual(self.stat("fast_path"), 0)


class UnhandledFramesGetTheirVerdict(RpTest):
    def runTest(self):
        arp = Ether(dst="ff:ff:ff:ff:ff:ff", src=MAC_CLIENT) / ARP(pdst=RP_ADDR)
        testutils.send_packet(self, self.INT, arp)
        res = testutils.dp_poll(self, device_number=0, port_number=self.CPU, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess), "ARP to the CPU")
        self.assertEqual(RpCpu(res.packet[:12]).op, RP_CPU_NOT_IPV4)
        ipv6 = Ether(dst=SWITCH_MAC, src=MAC_CLIENT) / IPv6() / Raw(b"\0" * 16)
        testutils.send_packet(self, self.INT, ipv6)
        res = testutils.dp_poll(self, device_number=0, port_number=self.CPU, timeout=2)
        self.assertTrue(isinstance(res, self.dataplane.PollSuccess), "IPv6 to the CPU")
        self.assertEqual(self.stat("pass_not_ipv4"), 2)

        frag = udp(CLIENT, 1, SERVER, 80)
        frag[IP].flags = "MF"
        testutils.send_packet(self, self.INT, frag)
        later = udp(CLIENT, 1, SERVER, 80)
        later[IP].frag = 100
        testutils.send_packet(self, self.INT, later)
        testutils.verify_no_other_packets(self, timeout=1)
        self.assertEqual(self.stat("drop_fragment"), 2)

        icmp = udp(CLIENT, 1, SERVER, 80, csum=False)
        icmp[IP].proto = 1
        testutils.send_packet(self, self.INT, icmp)
        testutils.verify_packet(self, forwarded(icmp, MAC_SERVER), self.EXT)   # untranslated
        self.assertEqual(self.stat("pass_not_app"), 1)
        self.assertEqual(self.stat("lease_req"), 0)
