# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""The redplane protocol for the Tofino control plane and its tests.

Constants and message layouts are read from include/redplane.p4, the P4
twin of include/redplane/proto.h (selftests/test_p4.c checks the two agree),
so that no Python copy of them can drift.  Plain Python 3, no SDE needed.
"""
import os
import re
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_P4 = os.path.join(os.path.dirname(HERE), "include", "redplane.p4")


class ProtocolError(Exception):
    pass


class Layout:
    """A P4 header of byte-aligned fields: pack and unpack it as big-endian bytes."""

    def __init__(self, name, fields):
        self.name = name
        self.fields = fields            # [(name, bits)]
        self.size = sum(bits for _, bits in fields) // 8

    def pack(self, **values):
        unknown = set(values) - {n for n, _ in self.fields}
        if unknown:
            raise ProtocolError("%s has no field %s" % (self.name, ", ".join(sorted(unknown))))
        out = b""
        for name, bits in self.fields:
            v = values.get(name, 0)
            if isinstance(v, (bytes, bytearray)):
                v = int.from_bytes(v, "big")
            if v < 0 or v >= 1 << bits:
                raise ProtocolError("%s.%s: %d does not fit %d bits" % (self.name, name, v, bits))
            out += v.to_bytes(bits // 8, "big")
        return out

    def unpack(self, data, offset=0):
        if len(data) < offset + self.size:
            raise ProtocolError("%s: %d bytes, %d needed" % (self.name, len(data) - offset,
                                                              self.size))
        out, pos = {}, offset
        for name, bits in self.fields:
            out[name] = int.from_bytes(data[pos:pos + bits // 8], "big")
            pos += bits // 8
        return out


class Protocol:
    """Constants (attributes, by their P4 names) and layouts of include/redplane.p4."""

    def __init__(self, path=DEFAULT_P4):
        try:
            with open(path) as f:
                text = f.read()
        except OSError as e:
            raise ProtocolError("Couldn't read the protocol header '%s': %s" %
                                (path, e.strerror))
        text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
        self.path = path
        self.consts = {}
        for name, value in re.findall(r"const\s+bit<\d+>\s+(\w+)\s*=\s*(\w+)\s*;", text):
            self.consts[name] = int(value, 0)
            setattr(self, name, int(value, 0))
        self.layouts = {}
        for name, body in re.findall(r"header\s+(\w+)\s*\{(.*?)\}", text, re.S):
            fields = [(f, int(w)) for w, f in re.findall(r"bit<(\d+)>\s+(\w+)\s*;", body)]
            if any(bits % 8 for _, bits in fields):
                raise ProtocolError("%s: a field is not whole bytes" % name)
            self.layouts[name] = Layout(name, fields)
        for need in ("rp_hdr_h", "rp_key_h", "rp_nat_state_h", "rp_mac_h", "rp_head_hint_h"):
            if need not in self.layouts:
                raise ProtocolError("%s declares no header %s" % (path, need))
        self.hdr = self.layouts["rp_hdr_h"]
        self.key = self.layouts["rp_key_h"]
        self.state = self.layouts["rp_nat_state_h"]
        self.hint = self.layouts["rp_head_hint_h"]
        self.mac = self.layouts["rp_mac_h"]
        self.msg_len = self.hdr.size + self.key.size + self.state.size + self.mac.size
        if self.msg_len != self.RP_MSG_LEN:
            raise ProtocolError("%s: a message is %d bytes, not RP_MSG_LEN %d" %
                                (path, self.msg_len, self.RP_MSG_LEN))
        self.msg_names = {v: n[len("RP_MSG_"):].lower() for n, v in self.consts.items()
                          if n.startswith("RP_MSG_")}
        self.reject_names = {v: n[len("RP_REJ_"):].lower() for n, v in self.consts.items()
                             if n.startswith("RP_REJ_")}

    # ---- messages ----

    def encode(self, msg_type, switch_id, seq=0, epoch=0, app_id=0, flags=0, reason=0,
               lease_ms=0, gen=0, key=None, state=b"", pkt=b""):
        """A message (RP_MSG_LEN bytes, MAC 0) and the piggybacked packet.  key: a dict of rp_key_h fields."""
        if len(state) > self.RP_STATE_MAX:
            raise ProtocolError("state of %d bytes" % len(state))
        if state:
            flags |= self.RP_F_STATE
        if pkt:
            flags |= self.RP_F_PKT
        hdr = self.hdr.pack(version=self.RP_VERSION, msg_type=msg_type, app_id=app_id,
                            flags=flags, switch_id=switch_id, reason=reason,
                            state_len=len(state), seq=seq & 0xffffffff,
                            epoch=epoch & 0xffffffff, lease_ms=lease_ms, pkt_len=len(pkt),
                            gen=gen & 0xffff)
        key_bytes = self.key.pack(**(key or {}))
        return (hdr + key_bytes + state.ljust(self.state.size, b"\0") +
                b"\0" * self.mac.size + pkt)

    def decode(self, data):
        """The fields of a message (header, key, state bytes, packet), checked as a switch would."""
        if len(data) < self.msg_len:
            raise ProtocolError("truncated: %d bytes" % len(data))
        m = self.hdr.unpack(data)
        if m["version"] != self.RP_VERSION:
            raise ProtocolError("bad_version %d" % m["version"])
        if m["pkt_len"] != len(data) - self.msg_len:
            raise ProtocolError("bad_len: pkt_len %d, %d bytes follow" %
                                (m["pkt_len"], len(data) - self.msg_len))
        if m["state_len"] > self.RP_STATE_MAX:
            raise ProtocolError("bad_len: state_len %d" % m["state_len"])
        m["key"] = self.key.unpack(data, self.hdr.size)
        off = self.hdr.size + self.key.size
        m["state"] = bytes(data[off:off + m["state_len"]])
        m["pkt"] = bytes(data[self.msg_len:])
        return m

    def hint_of(self, m):
        """The head hint of a REJECT not_head: (addr, port, version), or None."""
        if not m["flags"] & self.RP_F_STATE or len(m["state"]) < 12:
            return None
        h = self.hint.unpack(m["state"].ljust(self.hint.size, b"\0"))
        return h["addr"], h["port"], h["version"]


def key_v4(proto, saddr, sport, daddr, dport, family=4):
    """rp_key_h fields of an IPv4 key (addresses as ints): the first 4 of 16 bytes."""
    return {"family": family, "proto": proto, "sport": sport, "dport": dport, "pad": 0,
            "saddr": saddr << 96, "daddr": daddr << 96}


def key_hash(key_bytes):
    """The flow-to-chain hash the Tofino data plane computes (include/flows.p4)."""
    return zlib.crc32(key_bytes) & 0xffffffff


def chain_ranges(nchains):
    """[(first, last)] of the hash's high 16 bits for each chain: (h * n) >> 16 == chain."""
    out = []
    for i in range(nchains):
        first = -(-(i << 16) // nchains)            # ceil(i * 65536 / n)
        last = -(-((i + 1) << 16) // nchains) - 1
        out.append((first, last))
    return out


def chain_of(key_bytes, nchains):
    return ((key_hash(key_bytes) >> 16) * nchains) >> 16


def ipv4_checksum(header):
    s = sum(struct.unpack("!%dH" % (len(header) // 2), header))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff
