# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""Scapy layers for the redplane protocol and the Tofino program's own headers.

Fields as include/redplane/proto.h lays them out (rp_hdr 24 bytes, the flow
key 40, the state 64); the import checks them against include/redplane.p4,
the P4 twin that selftests/test_p4.c checks against the C header, so the
three cannot drift apart.  Also the headers the Tofino program puts in front
of frames on its CPU port (rp_cpu_h) and recirculation port (rp_recirc_h),
from include/headers.p4.
"""
import os
import sys

from scapy.fields import (BitField, ByteField, IntField, IPField, ShortField,
                          StrFixedLenField, XByteField)
from scapy.packet import Packet

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "control"))
import rp_proto  # noqa: E402

PROTO = rp_proto.Protocol()


class RpHdr(Packet):
    """struct rp_hdr"""
    name = "redplane"
    fields_desc = [
        ByteField("version", 1),
        ByteField("msg_type", 0),
        ByteField("app_id", 0),
        XByteField("flags", 0),
        ShortField("switch_id", 0),
        ByteField("reason", 0),
        ByteField("state_len", 0),
        IntField("seq", 0),
        IntField("epoch", 0),
        IntField("lease_ms", 0),
        ShortField("pkt_len", 0),
        ShortField("gen", 0),
    ]


class RpKey(Packet):
    """struct rp_flow_key: an IPv4 address fills the first 4 of its 16 bytes."""
    name = "redplane key"
    fields_desc = [
        ByteField("family", 4),
        ByteField("proto", 0),
        ShortField("sport", 0),
        ShortField("dport", 0),
        ShortField("pad", 0),
        IPField("saddr", "0.0.0.0"),
        StrFixedLenField("saddr_rest", b"\0" * 12, 12),
        IPField("daddr", "0.0.0.0"),
        StrFixedLenField("daddr_rest", b"\0" * 12, 12),
    ]


class RpNatState(Packet):
    """The 64-byte state; the NAT's value (struct rp_nat_state) is its first 8."""
    name = "redplane NAT state"
    fields_desc = [
        IPField("addr", "0.0.0.0"),
        ShortField("port", 0),
        ByteField("dir", 0),
        ByteField("closing", 0),
        StrFixedLenField("rest", b"\0" * 56, 56),
    ]


class RpHeadHint(Packet):
    """struct rp_head_hint, in the state of a REJECT not_head."""
    name = "redplane head hint"
    fields_desc = [
        IPField("addr", "0.0.0.0"),
        ShortField("port", 0),
        ShortField("pad", 0),
        IntField("version", 0),
        StrFixedLenField("rest", b"\0" * 52, 52),
    ]


class RpCpu(Packet):
    """rp_cpu_h: in front of a frame on the CPU port."""
    name = "redplane CPU"
    fields_desc = [
        XByteField("op", 0),
        ByteField("chain", 0),
        ShortField("ingress_port", 0),
        IntField("now", 0),
        IntField("hb_sent", 0),
    ]


class RpRecirc(Packet):
    """rp_recirc_h: in front of a frame going round the recirculation port."""
    name = "redplane recirculation"
    fields_desc = [
        XByteField("kind", 0),
        ByteField("port_kind", 0),
        ByteField("tries", 0),
        ByteField("rev_ok", 0),
        ShortField("orig_port", 0),
        ShortField("passes", 0),
        IntField("sent", 0),
        IPField("ext_addr", "0.0.0.0"),
        ShortField("ext_port", 0),
        ShortField("pad", 0),
    ]


def _check(cls, layout, merged=()):
    """The scapy fields cover the P4 header's fields, in order, at the same widths."""
    mine = []
    for f in cls.fields_desc:
        size = f.sz * 8 if not isinstance(f, (StrFixedLenField, BitField)) else (
            f.size if isinstance(f, BitField) else f.length_from(None) * 8)
        mine.append((f.name, size))
    # an address split into its IPv4 part and the rest: merge them back
    for name in merged:
        i = [n for n, _ in mine].index(name)
        mine[i:i + 2] = [(name, mine[i][1] + mine[i + 1][1])]
    theirs = [(n if n != "msg_type" else "msg_type", b) for n, b in layout.fields]
    if mine != theirs:
        raise ImportError("rp_scapy.%s does not match %s in %s: %s vs %s" %
                          (cls.__name__, layout.name, PROTO.path, mine, theirs))


_check(RpHdr, PROTO.hdr)
_check(RpKey, PROTO.key, merged=("saddr", "daddr"))
_check(RpNatState, PROTO.state)
_check(RpHeadHint, PROTO.hint)


def rp_msg(msg_type, switch_id, key=None, seq=0, epoch=0, gen=0, app_id=None, flags=0,
           reason=0, lease_ms=0, state=None, state_len=None, pkt=b""):
    """A message's bytes: header, key, state (NAT state or raw bytes), the packet."""
    if app_id is None:
        app_id = PROTO.RP_APP_NAT if key is not None else PROTO.RP_APP_NONE
    if state is not None:
        flags |= PROTO.RP_F_STATE
    if pkt:
        flags |= PROTO.RP_F_PKT
    sbytes = bytes(state) if state is not None else b""
    if state_len is None:
        state_len = 8 if isinstance(state, RpNatState) else len(sbytes.rstrip(b"\0") or b"")
        if isinstance(state, RpHeadHint):
            state_len = 12
    hdr = RpHdr(msg_type=msg_type, app_id=app_id, flags=flags, switch_id=switch_id,
                reason=reason, state_len=state_len, seq=seq, epoch=epoch, lease_ms=lease_ms,
                pkt_len=len(pkt), gen=gen)
    k = key if key is not None else RpKey(family=0)
    return bytes(hdr) + bytes(k) + sbytes.ljust(64, b"\0")[:64] + bytes(8) + bytes(pkt)


def parse_msg(data):
    """(RpHdr, RpKey, RpNatState, packet bytes) of a message's bytes (the MAC, 128-136, skipped)."""
    return (RpHdr(data[:24]), RpKey(data[24:64]), RpNatState(data[64:128]), data[136:])
