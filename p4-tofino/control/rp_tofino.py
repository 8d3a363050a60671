#!/usr/bin/env python3
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""rp_tofino: the redplane switch agent of a Tofino switch (rp-load's twin).

Runs inside bfrt_python (the SDE's bfshell), where the `bfrt` object is:

    RP_TOFINO_ARGS="--app nat --store 192.0.2.10:4791 --switch-id 3 ..." \\
        bfshell -b control/rp_tofino.py

(bfshell -b passes no arguments to the script: they come in RP_TOFINO_ARGS).
It configures the data plane of redplane.p4 (the endpoint, replicas, chains,
routes, NAT, mirror session, retransmission timeouts), then acts as the
agent: it keeps the switch's session with every store chain by heartbeats
sent through the CPU port, times each chain's lease from the send of the
acknowledged heartbeat (as the data plane stamped it, on the data plane's
own clock) less a guard of 5% + 1 ms, follows REJECT not_head hints and
probes a silent head's replicas (docs/DATAPLANE.md), and keeps the
retransmission timeout from heartbeat round trips.  Ctrl-C stops it; the
sessions are cleared first, so that the data plane stops every flow at once
(it fails closed, as it does by itself when the agent dies: the sessions
expire).

Outside bfrt_python only --help works, and the checks of the options.
"""
import argparse
import ipaddress
import os
import select
import shlex
import signal
import socket
import struct
import sys
import time

try:
    bfrt  # noqa: F821 -- defined by bfrt_python in the namespace that runs this file
except NameError:
    bfrt = None

PROG = "rp_tofino"
P4_NAME = "redplane"


def _home():
    try:
        return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    except NameError:   # exec'd by bfshell without __file__
        return os.environ.get("RP_TOFINO_HOME", os.getcwd())


sys.path.insert(0, os.path.join(_home(), "control"))
import rp_proto  # noqa: E402

# Counter names, by index: include/stats.p4's list.
STAT_NAMES = [
    "rx_packets", "pass_not_ipv4", "pass_not_app", "drop_truncated", "drop_fragment",
    "ip_options", "fast_path", "lease_req", "write_req", "drop_no_session", "emit_too_big",
    "emit_no_route", "emit_error", "wcopy_lost", "rx_store", "drop_bad_source",
    "drop_malformed_msg", "hb_ack_pass", "grant", "migrate", "regrant", "drop_stale_grant",
    "drop_table_full", "ack", "drop_stale_ack", "drop_ack_not_owner", "reject",
    "reject_lost_lease", "reject_not_head", "revoke", "revoke_unknown", "nat_new",
    "nat_rev_req", "nat_collision", "nat_no_mapping", "fwd_redirect", "fwd_pass", "fwd_drop",
    "drop_ttl", "drop_tail_call",
    "slot_evict", "steered", "recirc", "cpu_send", "rtx_sent", "rtx_acked", "rtx_abandoned",
    "rtx_gave_up", "rtx_wait",
]
STAT_ARRAYS = ["RpIngress.stats_rx", "RpIngress.stats_class", "RpIngress.stats_outcome",
               "RpIngress.stats_note", "RpIngress.stats_fwd", "RpEgress.stats_eg"]

# include/headers.p4
RP_CPU_OP_SEND = 0x01
RP_CPU_HB_ACK = 0x81
RP_CPU_NOT_HEAD = 0x82
CPU_HDR = struct.Struct("!BBHII")          # rp_cpu_h: op, chain, ingress_port, now, hb_sent
ETH_P_ALL = 0x0003
UNIT_NS = 1024                             # RP time units: the global timestamp >> 10
RTO_MIN_US = 1000
RTO_MAX_US = 1000000
MAX_STORES = 4
MAX_REPLICAS = 4


def warn(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr, flush=True)


def info(msg):
    print("%s: %s" % (PROG, msg), flush=True)


class ConfigError(Exception):
    """A bad command line (exit status 2)."""


class RuntimeFailure(Exception):
    """The switch cannot be driven: no bfrt_python, no program, no CPU port (exit status 1)."""


# ---------------------------------------------------------------- options

def parse_replica(text):
    addr, sep, port = text.rpartition(":")
    try:
        a = ipaddress.IPv4Address(addr)
        p = int(port)
    except ValueError:
        a, p = None, 0
    if not sep or a is None or not 1 <= p <= 65535:
        raise ConfigError("invalid store address '%s': expected A.B.C.D:PORT" % text)
    return (int(a), p)


def parse_store(text):
    """--store A:P+B:P,C:P as rp-load reads it: at most 4 chains of at most 4 replicas."""
    chains, seen = [], set()
    for chain_text in text.split(","):
        chain = []
        for rep in chain_text.split("+"):
            if not rep:
                raise ConfigError("invalid --store '%s': a chain or a replica is empty" % text)
            r = parse_replica(rep)
            if r in seen:
                raise ConfigError("invalid --store '%s': store address '%s' listed twice" %
                                  (text, rep))
            seen.add(r)
            chain.append(r)
        if len(chain) > MAX_REPLICAS:
            raise ConfigError("invalid --store '%s': at most %d replicas in a chain" %
                              (text, MAX_REPLICAS))
        chains.append(chain)
    if len(chains) > MAX_STORES:
        raise ConfigError("invalid --store '%s': at most %d store chains" % (text, MAX_STORES))
    return chains


def parse_ports_range(text):
    try:
        lo, hi = (int(x) for x in text.split("-"))
    except ValueError:
        lo, hi = 0, -1
    if not 1 <= lo <= hi <= 65535:
        raise ConfigError("invalid --nat-ports '%s': expected LO-HI" % text)
    return lo, hi


def parse_mac(text):
    parts = text.split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ConfigError("invalid MAC address '%s': expected aa:bb:cc:dd:ee:ff" % text)
    try:
        return int("".join(parts), 16)
    except ValueError:
        raise ConfigError("invalid MAC address '%s'" % text)


def parse_route(text):
    """--route PREFIX,DEV_PORT,NEXTHOP_MAC[,VLAN]"""
    parts = text.split(",")
    if len(parts) not in (3, 4):
        raise ConfigError("invalid --route '%s': expected PREFIX,DEV_PORT,NEXTHOP_MAC[,VLAN]" %
                          text)
    try:
        net = ipaddress.IPv4Network(parts[0], strict=False)
        port = int(parts[1])
        vid = int(parts[3]) if len(parts) == 4 else 0
    except ValueError as e:
        raise ConfigError("invalid --route '%s': %s" % (text, e))
    if not 0 <= port < 512 or not 0 <= vid < 4095:
        raise ConfigError("invalid --route '%s': port 0-511, VLAN 0-4094" % text)
    return net, port, parse_mac(parts[2]), vid


def ranged(lo, hi):
    def conv(text):
        try:
            v = int(text)
        except ValueError:
            v = None
        if v is None or not lo <= v <= hi:
            raise argparse.ArgumentTypeError("expected an integer from %d to %d" % (lo, hi))
        return v
    return conv


def build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="The redplane switch agent for a Tofino switch running redplane.p4 "
                    "(run under bfshell -b, options in RP_TOFINO_ARGS).",
        epilog="Status of a running agent's data plane: RP_TOFINO_ARGS=--status bfshell -b "
               "control/rp_tofino.py")
    p.add_argument("-a", "--app", choices=["nat"], help="the application: nat")
    p.add_argument("-s", "--store", type=str,
                   help="store chains, comma-separated (at most 4), each its replicas joined "
                        "by '+' (at most 4; the first is the head until a replica names "
                        "another): A.B.C.D:PORT[+A.B.C.D:PORT...][,...]")
    p.add_argument("-i", "--switch-id", type=ranged(1, 65535),
                   help="this switch's id, 1-65535, unique among switches")
    p.add_argument("--nat-int", type=str, help="the inside prefix to translate (A.B.C.D/LEN)")
    p.add_argument("--nat-ext", type=str, help="the external address")
    p.add_argument("--nat-ports", type=str, default="1024-65535",
                   help="external ports shared by all switches (default 1024-65535)")
    p.add_argument("--nat-switches", type=ranged(1, 4096), default=16,
                   help="switches sharing them: each gets 1/N (default 16)")
    p.add_argument("-L", "--lease-ms", type=ranged(10, 60000), default=200,
                   help="longest lease this switch assumes (default 200); the store's period "
                        "is used when shorter")
    p.add_argument("-r", "--rto-us", type=ranged(100, 10000000), default=0,
                   help="fixed retransmission timeout (default: adaptive, from heartbeat "
                        "round trips, RFC 6298, at least 1 ms)")
    p.add_argument("-t", "--max-tries", type=ranged(0, 60), default=5,
                   help="retransmissions before giving a write up (default 5)")
    p.add_argument("-m", "--max-flows", type=ranged(16, 1 << 26), default=65536,
                   help="flows the data plane holds: fixed when redplane.p4 is compiled "
                        "(RP_SLOT_BITS); a larger value is refused")
    p.add_argument("-p", "--port", type=ranged(1, 65535), default=4790,
                   help="UDP port of this switch's protocol endpoint (default 4790)")
    # the Tofino's own
    p.add_argument("--rp-addr", type=str,
                   help="this switch's IPv4 address toward the stores (the endpoint)")
    p.add_argument("--switch-mac", type=str, default="02:00:00:00:00:01",
                   help="the router MAC the switch sends from (default 02:00:00:00:00:01)")
    p.add_argument("--route", action="append", default=[],
                   help="a route: PREFIX,DEV_PORT,NEXTHOP_MAC[,VLAN] (VLAN 0: untagged); "
                        "repeat for each")
    p.add_argument("--ports", type=str, default="",
                   help="front ports to bring up: DEV_PORT:SPEED[:FEC],... "
                        "(e.g. 0:100G:RS); ports already up are left alone")
    p.add_argument("--cpu-port", type=ranged(0, 511), default=64,
                   help="the CPU port's device port (default 64: the CPU Ethernet port of pipe "
                        "0, as tofino-model has it; 192 or 320 for PCIe through bf_kpkt)")
    p.add_argument("--cpu-iface", type=str, default="veth251",
                   help="the Linux interface of the CPU port (default veth251 with "
                        "tofino-model; bf_pci0 with bf_kpkt)")
    p.add_argument("--recirc-port", type=ranged(0, 511), default=68,
                   help="the recirculation port of the state pipe (default 68: pipe 0's)")
    p.add_argument("--recirc-loopback", action="store_true",
                   help="--recirc-port is a front port: put it in MAC loopback")
    p.add_argument("--recirc-rate-mbps", type=ranged(0, 400000), default=0,
                   help="shape the recirculation port (0: leave it; see README)")
    p.add_argument("--mirror-session", type=ranged(1, 1015), default=1,
                   help="mirror session of the retransmission copies (default 1)")
    p.add_argument("--frame-adjust", type=ranged(0, 64), default=4,
                   help="eg_intr_md.pkt_length less the frame's length (4 on the ASIC, which "
                        "counts the FCS; 0 on tofino-model)")
    p.add_argument("--rtx-max-passes", type=ranged(0, 65535), default=0,
                   help="trips round the recirculation port a copy may make between sends "
                        "(0: bounded by time only)")
    p.add_argument("-S", "--status", action="store_true",
                   help="print the data plane's sessions and counters, and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log every punted message")
    return p


class Config:
    """The options, checked, in the data plane's terms."""

    def __init__(self, args):
        self.args = args
        if args.status:
            return
        missing = [o for o, v in (("--app", args.app), ("--store", args.store),
                                  ("--switch-id", args.switch_id), ("--rp-addr", args.rp_addr))
                   if v is None]
        if missing:
            raise ConfigError("missing %s" % ", ".join(missing))
        if args.nat_int is None or args.nat_ext is None:
            raise ConfigError("--app nat needs --nat-int and --nat-ext")
        self.chains = parse_store(args.store)
        try:
            self.nat_int = ipaddress.IPv4Network(args.nat_int, strict=False)
        except ValueError:
            raise ConfigError("invalid --nat-int '%s': expected A.B.C.D/LEN" % args.nat_int)
        try:
            self.nat_ext = int(ipaddress.IPv4Address(args.nat_ext))
        except ValueError:
            raise ConfigError("invalid --nat-ext '%s': expected A.B.C.D" % args.nat_ext)
        try:
            self.rp_addr = int(ipaddress.IPv4Address(args.rp_addr))
        except ValueError:
            raise ConfigError("invalid --rp-addr '%s': expected A.B.C.D" % args.rp_addr)
        lo, hi = parse_ports_range(args.nat_ports)
        per = (hi - lo + 1) // args.nat_switches
        if per < 1:
            raise ConfigError("--nat-ports leaves no port per switch for --nat-switches %d" %
                              args.nat_switches)
        # ports partitioned by switch id, as rp-load does (user/app_nat.c)
        self.port_first = lo + ((args.switch_id - 1) % args.nat_switches) * per
        self.port_end = self.port_first + per
        self.switch_mac = parse_mac(args.switch_mac)
        self.routes = [parse_route(r) for r in args.route]
        self.ports = []
        for spec in filter(None, args.ports.split(",")):
            parts = spec.split(":")
            if len(parts) not in (2, 3) or not parts[0].isdigit():
                raise ConfigError("invalid --ports element '%s': expected DEV_PORT:SPEED[:FEC]" %
                                  spec)
            self.ports.append((int(parts[0]), parts[1].upper(),
                               parts[2].upper() if len(parts) == 3 else "NONE"))
        if args.cpu_port == args.recirc_port:
            raise ConfigError("--cpu-port and --recirc-port are the same port")


# ---------------------------------------------------------------- the data plane

def entry_field(entry, suffix):
    """A data field of a bfrt_python entry, by the end of its name (one value per pipe)."""
    data = entry.data
    for k, v in data.items():
        name = k.decode() if isinstance(k, bytes) else k
        if name == suffix or name.endswith("." + suffix):
            return v
    raise KeyError(suffix)


def first_pipe(v):
    return v[0] if isinstance(v, (list, tuple)) else v


class DataPlane:
    """redplane.p4's tables and registers through bfrt_python."""

    def __init__(self, bfrt_obj):
        if bfrt_obj is None:
            raise RuntimeFailure("the bfrt_python object is not here: run me under "
                              "bfshell -b (see p4-tofino/README.md)")
        self.bfrt = bfrt_obj
        try:
            self.p4 = getattr(bfrt_obj, P4_NAME).pipe
        except AttributeError:
            raise RuntimeFailure("Couldn't find P4 program '%s': is bf_switchd running with "
                              "redplane.conf?" % P4_NAME)
        self.ig = self.p4.RpIngress
        self.eg = self.p4.RpEgress
        self.prs = self.p4.RpIngressParser

    def clear(self):
        """Entries of an earlier run go: the configuration is this run's."""
        for t in (self.ig.rp_replica, self.ig.rp_chain_head, self.ig.rp_route,
                  self.ig.rp_port_steer, self.ig.rp_rtx_rto, self.ig.nat_own_port,
                  self.ig.flow_key.rp_chain_of, self.ig.nat_key.nat_inside,
                  self.prs.rp_port_vs, self.prs.rp_addr_vs, self.prs.rp_cpu_vs,
                  self.prs.rp_recirc_vs):
            t.clear()
        for r in (self.ig.session.r_session, self.ig.r_hb, self.ig.flows.r_kaddr,
                  self.ig.flows.r_kport, self.ig.flows.r_lease, self.ig.flows.r_nat_addr,
                  self.ig.flows.r_nat_pd, self.ig.flows.r_flags, self.ig.flows.r_closing,
                  self.ig.flows.r_acked, self.ig.flows.r_seq):
            r.clear()

    def configure(self, cfg, rto_units):
        a = cfg.args
        self.ig.rp_cfg.set_default_with_set_cfg(
            switch_id=a.switch_id, src_addr=cfg.rp_addr, src_port=a.port,
            nat_ext=cfg.nat_ext, port_first=cfg.port_first, port_end=cfg.port_end,
            cpu_port=a.cpu_port, recirc_port=a.recirc_port,
            rtx_max_passes=a.rtx_max_passes)
        self.eg.rp_eg_cfg.set_default_with_set_eg_cfg(frame_adjust=a.frame_adjust,
                                                      rtx_session=a.mirror_session)
        self.prs.rp_port_vs.add(port=a.port, port_mask=0xffff)
        self.prs.rp_addr_vs.add(addr=cfg.rp_addr, addr_mask=0xffffffff)
        self.prs.rp_cpu_vs.add(ingress_port=a.cpu_port, ingress_port_mask=0x1ff)
        self.prs.rp_recirc_vs.add(ingress_port=a.recirc_port, ingress_port_mask=0x1ff)

        for i, chain in enumerate(cfg.chains):
            for addr, port in chain:
                self.ig.rp_replica.add_with_set_replica(src_addr=addr, src_port=port, chain=i)
            self.set_head(i, chain[0])
            self.set_session(i, 0, 0)
        for i, (first, last) in enumerate(rp_proto.chain_ranges(len(cfg.chains))):
            self.ig.flow_key.rp_chain_of.add_with_set_chain(chain_hash_start=first,
                                                            chain_hash_end=last, chain=i)

        self.ig.nat_key.nat_inside.add_with_inside(src_addr=int(cfg.nat_int.network_address),
                                                   src_addr_p_length=cfg.nat_int.prefixlen)
        self.ig.nat_own_port.add_with_own_port(port_start=cfg.port_first,
                                               port_end=cfg.port_end - 1)
        self.ig.nat.r_nat_next.mod(REGISTER_INDEX=0, f1=cfg.port_first)

        self.ig.rp_route.add_with_local(route_dst=cfg.rp_addr, route_dst_p_length=32)
        for net, port, nh_mac, vid in cfg.routes:
            self.ig.rp_route.add_with_nexthop(route_dst=int(net.network_address),
                                              route_dst_p_length=net.prefixlen, port=port,
                                              dmac=nh_mac, smac=cfg.switch_mac, vid=vid)
        self.set_rto(a.max_tries, rto_units)

        # ports of other pipes hand their packets to the state pipe
        state_pipe = a.recirc_port >> 7
        ports = {a.cpu_port} | {p for _, p, _, _ in cfg.routes} | {p for p, _, _ in cfg.ports}
        for p in sorted(ports):
            if p >> 7 != state_pipe:
                self.ig.rp_port_steer.add_with_steer_to(ingress_port=p, port=a.recirc_port)

        self.bfrt.mirror.cfg.add_with_normal(sid=a.mirror_session, direction="EGRESS",
                                             session_enable=True,
                                             ucast_egress_port=a.recirc_port,
                                             ucast_egress_port_valid=True,
                                             max_pkt_len=16384)
        for port, speed, fec in cfg.ports:
            self.bfrt.port.port.add(DEV_PORT=port, SPEED="BF_SPEED_" + speed,
                                    FEC="BF_FEC_TYP_" + fec, PORT_ENABLE=True,
                                    AUTO_NEGOTIATION="PM_AN_FORCE_DISABLE")
        if a.recirc_loopback:
            self.bfrt.port.port.add(DEV_PORT=a.recirc_port, SPEED="BF_SPEED_100G",
                                    FEC="BF_FEC_TYP_NONE", LOOPBACK_MODE="BF_LPBK_MAC_NEAR",
                                    PORT_ENABLE=True)
        if a.recirc_rate_mbps:
            try:
                self.bfrt.tf1.tm.port.sched_shaping.mod(
                    dev_port=a.recirc_port, unit="BPS", provisioning="MIN_ERROR",
                    max_rate=a.recirc_rate_mbps * 1000, max_burst_size=9000)
            except Exception as e:    # the TM tables differ between SDE releases
                warn("Couldn't shape the recirculation port %d: %s" % (a.recirc_port, e))

    def set_head(self, chain, replica):
        addr, port = replica
        t = self.ig.rp_chain_head
        try:
            t.mod_with_set_head(chain=chain, addr=addr, port=port)
        except Exception:
            t.add_with_set_head(chain=chain, addr=addr, port=port)

    def set_session(self, chain, epoch, expiry):
        """Both halves in one write: the data plane never sees one without the other."""
        self.ig.session.r_session.mod(REGISTER_INDEX=chain, lo=epoch, hi=expiry & 0xffffffff)

    def set_rto(self, max_tries, rto_units):
        t = self.ig.rp_rtx_rto
        t.clear()
        cap = RTO_MAX_US * 1000 // UNIT_NS
        for tries in range(1, max_tries + 1):
            t.add_with_rtx_resend(tries=tries, rto=min(rto_units << (tries - 1), cap))
        t.add_with_rtx_last(tries=max_tries + 1, rto=min(rto_units << max_tries, cap))

    def sessions(self, n):
        out = []
        for i in range(n):
            e = self.ig.session.r_session.get(REGISTER_INDEX=i, from_hw=True, print_ents=False)
            out.append((first_pipe(entry_field(e, "lo")), first_pipe(entry_field(e, "hi"))))
        return out

    def counters(self):
        totals = [0] * len(STAT_NAMES)
        for path in STAT_ARRAYS:
            gress, name = path.split(".")
            arr = getattr(getattr(self.p4, gress), name)
            arr.operation_counter_sync()
            for i in range(len(STAT_NAMES)):
                e = arr.get(COUNTER_INDEX=i, from_hw=False, print_ents=False)
                v = entry_field(e, "$COUNTER_SPEC_PKTS")
                totals[i] += sum(v) if isinstance(v, (list, tuple)) else v
        return dict(zip(STAT_NAMES, totals))


# ---------------------------------------------------------------- the agent

class ChainSession:
    def __init__(self, replicas):
        self.replicas = replicas
        self.head = 0
        self.epoch = 0
        self.epoch_nonce = 0
        self.expiry = 0             # RP time units, as written
        self.lease_ms = 0
        self.last_ack = time.monotonic()
        self.probing = False
        self.hint_moved = False
        self.hint_version = 0
        self.lapsed = False
        self.sent = {}              # nonce -> host time of its send

    def ran_out(self, dev_now):
        """Live here once and over by device time dev_now: never taken back (rp-load's ran_out)."""
        return self.epoch and self.expiry and serial_diff(self.expiry, dev_now) <= 0


class Agent:
    def __init__(self, cfg, dp, proto):
        self.cfg = cfg
        self.dp = dp
        self.proto = proto
        self.sess = [ChainSession(c) for c in cfg.chains]
        self.nonce = 0
        self.srtt_us = 0.0
        self.rttvar_us = 0.0
        self.rto_units = 0
        self.next_hb = 0.0
        self.dev_now = None         # (device time, host time) of the newest punt
        self.stats = dict.fromkeys(["heartbeats_sent", "heartbeat_acks", "session_new",
                                    "session_lapsed", "acks_after_lapse", "hb_probes",
                                    "not_head_rejects",
                                    "head_changes", "head_hints_unknown"], 0)
        self.stop = False
        self.sock = None

    # ---- clock and timing ----

    def lease_ms_of(self, s):
        if s.lease_ms and s.lease_ms < self.cfg.args.lease_ms:
            return s.lease_ms
        return self.cfg.args.lease_ms

    @staticmethod
    def units(ms):
        return int(ms * 1000000 // UNIT_NS)

    def guard_units(self, lease_ms):
        # 5% of the lease for the two clocks' rates, 1 ms more, and one unit of
        # the data plane's clock (it compares whole units)
        return self.units(lease_ms / 20.0 + 1.0) + 1

    def rto_units_now(self):
        a = self.cfg.args
        if a.rto_us:
            us = a.rto_us
        elif self.srtt_us == 0:
            us = 10 * RTO_MIN_US                # no sample yet
        else:
            us = min(max(self.srtt_us + 4 * self.rttvar_us, RTO_MIN_US), RTO_MAX_US)
        return max(1, int(us * 1000 // UNIT_NS))

    def rtt_sample(self, us):
        if self.srtt_us == 0:
            self.srtt_us, self.rttvar_us = us, us / 2
        else:
            self.rttvar_us = 0.75 * self.rttvar_us + 0.25 * abs(self.srtt_us - us)
            self.srtt_us = 0.875 * self.srtt_us + 0.125 * us
        rto = self.rto_units_now()
        # rewrite the table only when it moved by a quarter: entries are not free
        if not self.rto_units or abs(rto - self.rto_units) * 4 > self.rto_units:
            self.rto_units = rto
            self.dp.set_rto(self.cfg.args.max_tries, rto)

    # ---- frames through the CPU port ----

    def open_cpu(self):
        iface = self.cfg.args.cpu_iface
        try:
            s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
            s.bind((iface, 0))
        except OSError as e:
            raise RuntimeFailure("Couldn't open the CPU port's interface '%s': %s" %
                              (iface, e.strerror))
        s.setblocking(False)
        self.sock = s

    def heartbeat_frame(self, replica, nonce, epoch, lapsed):
        addr, port = replica
        # a session that ran out here is over: ask for a new epoch (rp-load does the same)
        msg = self.proto.encode(self.proto.RP_MSG_HEARTBEAT, self.cfg.args.switch_id,
                                seq=nonce, epoch=epoch,
                                gen=self.proto.RP_HB_LAPSED if lapsed else 0)
        udp = struct.pack("!HHHH", self.cfg.args.port, port, 8 + len(msg), 0)
        ip = struct.pack("!BBHHHBBHII", 0x45, 0, 20 + len(udp) + len(msg), 0, 0, 64, 17, 0,
                         self.cfg.rp_addr, addr)
        ip = ip[:10] + struct.pack("!H", rp_proto.ipv4_checksum(ip)) + ip[12:]
        # the route sets the Ethernet addresses
        eth = b"\0" * 6 + self.cfg.switch_mac.to_bytes(6, "big") + b"\x08\x00"
        cpu = CPU_HDR.pack(RP_CPU_OP_SEND, 0, 0, 0, 0)
        return cpu + eth + ip + udp + msg

    def send_heartbeats(self, now):
        interval = min(self.lease_ms_of(s) for s in self.sess) / 4000.0
        if now < self.next_hb:
            return
        # four heartbeats per lease: one lost heartbeat never lapses a session
        self.next_hb = now + interval
        for i, s in enumerate(self.sess):
            silent = now - s.last_ack
            probe = len(s.replicas) > 1 and silent > 2 * interval
            if probe and not s.probing:
                warn("store %d's head %s has not answered for %d ms: heartbeats go to every "
                     "replica" % (i, fmt_replica(s.replicas[s.head]), silent * 1000))
                s.hint_moved = False
            s.probing = probe
            self.nonce = (self.nonce + 1) & 0xffffffff or 1
            s.sent[self.nonce] = now
            if len(s.sent) > 64:
                s.sent.pop(next(iter(s.sent)))
            targets = s.replicas if s.probing else [s.replicas[s.head]]
            for r in targets:
                try:
                    self.sock.send(self.heartbeat_frame(r, self.nonce, s.epoch, s.lapsed))
                except OSError as e:
                    warn("Couldn't send a heartbeat on '%s': %s" % (self.cfg.args.cpu_iface,
                                                                    e.strerror))
            if s.probing:
                self.stats["hb_probes"] += 1
            self.stats["heartbeats_sent"] += 1

    def check_lapses(self, now):
        if self.dev_now is None:
            return
        dev, host = self.dev_now
        dev_est = (dev + int((now - host) * 1e9 / UNIT_NS)) & 0xffffffff
        for i, s in enumerate(self.sess):
            if not s.lapsed and s.ran_out(dev_est):
                s.lapsed = True
                self.stats["session_lapsed"] += 1
                warn("session with store %d lapsed: its leases are over, heartbeats ask for a new "
                     "epoch" % i)

    # ---- punted messages ----

    def receive(self, now):
        while True:
            try:
                frame = self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return
            if len(frame) < CPU_HDR.size:
                continue
            op, chain, in_port, dev_now, hb_sent = CPU_HDR.unpack_from(frame)
            if op not in (RP_CPU_HB_ACK, RP_CPU_NOT_HEAD):
                continue    # our own heartbeats seen on the socket, ARP, ...: not ours to handle
            self.dev_now = (dev_now, now)
            body = frame[CPU_HDR.size:]
            # Ethernet (14), IPv4 without options (20; the parser took only those), UDP (8)
            if len(body) < 42 or chain >= len(self.sess):
                continue
            src = struct.unpack_from("!I", body, 26)[0]
            sport = struct.unpack_from("!H", body, 34)[0]
            udp_len = struct.unpack_from("!H", body, 38)[0]
            try:
                m = self.proto.decode(body[42:34 + udp_len])
            except rp_proto.ProtocolError as e:
                warn("a punted message from %s does not decode: %s" %
                     (fmt_replica((src, sport)), e))
                continue
            replica = (src, sport)
            s = self.sess[chain]
            if replica not in s.replicas:
                continue
            r = s.replicas.index(replica)
            if self.cfg.args.verbose:
                info("%s from store %d replica %s (port %d)" %
                     (self.proto.msg_names.get(m["msg_type"], "?"), chain,
                      fmt_replica(replica), in_port))
            if op == RP_CPU_HB_ACK:
                self.on_ack(chain, r, m, dev_now, hb_sent, now)
            else:
                self.on_not_head(chain, m)

    def on_ack(self, i, r, m, dev_now, hb_sent, now):
        s = self.sess[i]
        nonce = m["seq"]
        if nonce not in s.sent or not hb_sent:
            return          # too old to time: the next one will do
        if m["epoch"] != s.epoch and s.epoch and serial_diff(nonce, s.epoch_nonce) < 0:
            return          # a late ack from before the current epoch
        del s.sent[nonce]
        self.stats["heartbeat_acks"] += 1
        s.last_ack = now
        if s.probing and not s.hint_moved and r != s.head:
            # the head went silent and no hint named another: when the only
            # survivor is the new head, no replica is left to send one
            self.move_head(i, r, "it answered while the head was silent")
        self.rtt_sample(((dev_now - hb_sent) & 0xffffffff) * UNIT_NS / 1000.0)
        s.lease_ms = m["lease_ms"]
        lease = self.lease_ms_of(s)
        # timed from the SEND of the acknowledged heartbeat, less the guard:
        # the store times it from receipt, so the switch's lease ends first
        expiry = (hb_sent + self.units(lease) - self.guard_units(lease)) & 0xffffffff
        if m["epoch"] == s.epoch and s.ran_out(dev_now):
            # the session was live here and ran out: grants of it may still be on
            # their way, for flows the store has given away since; only a new
            # epoch will do (an epoch never live here, expiry 0, has no grants)
            s.lapsed = True
            self.stats["acks_after_lapse"] += 1
            return
        if m["epoch"] != s.epoch:
            if s.epoch:
                warn("store %d started a new session (epoch %d): leases of epoch %d are gone" %
                     (i, m["epoch"], s.epoch))
            else:
                info("joined store %d, session epoch %d, lease %d ms" %
                     (i, m["epoch"], m["lease_ms"]))
            s.epoch = m["epoch"]
            s.epoch_nonce = nonce
            # too late to give any time: not live yet
            s.expiry = expiry if serial_diff(expiry, dev_now) > 0 else 0
            s.lapsed = False
            self.stats["session_new"] += 1
            self.dp.set_session(i, s.epoch, expiry)
            return
        if (s.expiry and serial_diff(expiry, s.expiry) <= 0) or serial_diff(expiry, dev_now) <= 0:
            return
        s.expiry = expiry
        s.lapsed = False
        self.dp.set_session(i, s.epoch, expiry)

    def on_not_head(self, i, m):
        s = self.sess[i]
        self.stats["not_head_rejects"] += 1
        hint = self.proto.hint_of(m)
        if hint is None:
            return
        addr, port, version = hint
        if not addr or version < s.hint_version:
            return          # it knows of no head, or an older configuration
        if (addr, port) not in s.replicas:
            self.stats["head_hints_unknown"] += 1
            return
        s.hint_version = version
        r = s.replicas.index((addr, port))
        if r == s.head:
            return
        s.hint_moved = True
        self.move_head(i, r, "configuration %d" % version)

    def move_head(self, i, r, why):
        s = self.sess[i]
        s.head = r
        self.stats["head_changes"] += 1
        self.dp.set_head(i, s.replicas[r])     # the session is the chain's: it stays
        info("store %d's head is now %s (%s)" % (i, fmt_replica(s.replicas[r]), why))

    # ---- main loop ----

    def run(self):
        self.open_cpu()
        self.rto_units = self.rto_units_now()
        self.dp.set_rto(self.cfg.args.max_tries, self.rto_units)
        info("running: switch %d, endpoint %s, %d store chain(s)" %
             (self.cfg.args.switch_id, fmt_replica((self.cfg.rp_addr, self.cfg.args.port)),
              len(self.sess)))
        while not self.stop:
            now = time.monotonic()
            self.send_heartbeats(now)
            self.check_lapses(now)
            timeout = max(0.0, min(self.next_hb - time.monotonic(), 0.05))
            try:
                ready, _, _ = select.select([self.sock], [], [], timeout)
            except InterruptedError:
                continue
            if ready:
                self.receive(time.monotonic())

    def shutdown(self):
        for i in range(len(self.sess)):
            try:
                self.dp.set_session(i, 0, 0)
            except Exception as e:
                warn("Couldn't clear session %d: %s" % (i, e))
        if self.sock:
            self.sock.close()
        info(" ".join("%s=%d" % kv for kv in self.stats.items()))


def serial_diff(a, b):
    """a - b as a signed 32-bit serial number difference (RFC 1982)."""
    d = (a - b) & 0xffffffff
    return d - (1 << 32) if d & 0x80000000 else d


def fmt_replica(r):
    return "%s:%d" % (ipaddress.IPv4Address(r[0]), r[1])


def print_status(dp):
    for i, (epoch, expiry) in enumerate(dp.sessions(MAX_STORES)):
        if epoch:
            print("store %d: epoch %d, expiry %d (RP time units)" % (i, epoch, expiry))
    for name, v in dp.counters().items():
        if v:
            print("%-20s %d" % (name, v))


def arguments(argv):
    if argv is None:
        env = os.environ.get("RP_TOFINO_ARGS")
        argv = shlex.split(env) if env is not None else sys.argv[1:]
    return build_parser().parse_args(argv)


def main(argv=None):
    args = arguments(argv)
    try:
        cfg = Config(args)
        if args.max_flows > 65536:
            raise ConfigError("--max-flows %d: redplane.p4 was built with 65536 slots "
                              "(rebuild with -DRP_SLOT_BITS=N for more)" % args.max_flows)
        dp = DataPlane(bfrt)
        if args.status:
            print_status(dp)
            return 0
        proto = rp_proto.Protocol(os.path.join(_home(), "include", "redplane.p4"))
        agent = Agent(cfg, dp, proto)
        dp.clear()
        dp.configure(cfg, agent.rto_units_now())
    except ConfigError as e:
        warn(str(e))
        return 2
    except (RuntimeFailure, rp_proto.ProtocolError) as e:
        warn(str(e))
        return 1

    def on_signal(signum, frame):
        agent.stop = True
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            signal.signal(sig, on_signal)
        except ValueError:      # not the main thread (some bfshell builds): Ctrl-C still raises
            pass
    try:
        agent.run()
    except KeyboardInterrupt:
        pass
    except RuntimeFailure as e:
        warn(str(e))
        return 1
    finally:
        agent.shutdown()
    return 0


if __name__ == "__main__" or bfrt is not None:
    rc = main()
    if bfrt is None:
        sys.exit(rc)
