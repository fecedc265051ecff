# SPDX-License-Identifier: MIT
"""qemu-tests/bench --costs's figures without a VM: nfsd's counters, /proc/stat and /proc/meminfo
as crtest-report's read gives them (lines joined with blanks), and the bytes of a capture by
protocol, on a capture written here with dpkt (skipped, saying so, where the python3 running
the tests has no dpkt: Debian's python3-dpkt is /usr/bin/python3's).

    python3 -m unittest discover -s qemu-tests/crtest/tests"""

import importlib.util
import ipaddress
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# crtest, from the directory put on sys.path above.
from crtest.bench_figures import (busy_jiffies, cached_kib, nfsd_counts, nfsd_delta, proc_lines,
                                  traffic)

HAVE_DPKT = importlib.util.find_spec("dpkt") is not None


def nfsd_text(compounds: int, lookups: int, reads: int, v3_getattr: int) -> str:
    """/proc/net/rpc/nfsd of a 6.1 kernel, joined as crtest-report's read joins it."""
    v4 = [0] * 76
    v4[15], v4[25], v4[53] = lookups, reads, compounds
    v3 = [0] * 22
    v3[1] = v3_getattr
    lines = ["rc 0 12 345", "fh 0 0 0 0 0", "io 1000 2000",
             "th 8 0 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000",
             "ra 32 0 0 0 0 0 0 0 0 0 0 0", "net 400 0 400 3", "rpc 400 0 0 0 0",
             "proc3 22 " + " ".join(map(str, v3)), f"proc4 2 1 {compounds}",
             "proc4ops 76 " + " ".join(map(str, v4)), "wdeleg_getattr 0"]
    return " ".join(lines)


class TestNfsd(unittest.TestCase):
    def test_lines(self):
        lines = proc_lines("th 8 0 0.000 1.5 io 1 2")
        self.assertEqual(lines, {"th": [8, 0, 0.0, 1.5], "io": [1, 2]})

    def test_counts_and_delta(self):
        before = nfsd_counts(nfsd_text(10, 3, 1, 0))
        after = nfsd_counts(nfsd_text(110, 53, 41, 7))
        self.assertEqual(after["compounds"], 110)
        self.assertEqual(after["v4ops"]["LOOKUP"], 53)
        self.assertEqual(after["v4ops"]["SEQUENCE"], 110)
        self.assertEqual(after["v3"]["GETATTR"], 7)
        self.assertEqual(nfsd_delta(before, after),
                         {"compounds": 100, "v4ops": {"LOOKUP": 50, "READ": 40, "SEQUENCE": 100},
                          "v3": {"GETATTR": 7}})

    def test_no_nfsv3(self):
        counts = nfsd_counts("rc 0 0 0 proc4 2 0 5 proc4ops 3 0 0 0")
        self.assertEqual((counts["compounds"], counts["v3"]), (5, {}))


class TestProc(unittest.TestCase):
    def test_stat(self):
        text = "cpu 100 5 50 1000 20 1 2 0 0 0 cpu0 100 5 50 1000 20 1 2 0 0 0 intr 1"
        self.assertEqual(busy_jiffies(text), (158, 1178))

    def test_meminfo(self):
        text = "MemTotal: 492000 kB MemFree: 300000 kB Buffers: 12 kB Cached: 45678 kB " \
               "SwapCached: 0 kB"
        self.assertEqual(cached_kib(text), 45678)


MASTER_MAC = "52:54:00:77:00:e1"
CLIENT_MAC = "52:54:00:77:00:0b"
MASTER = "172.23.199.225"
CLIENT = "172.23.199.11"


@unittest.skipUnless(HAVE_DPKT, "no dpkt in this python3 (Debian's python3-dpkt is "
                                "/usr/bin/python3's)")
class TestTraffic(unittest.TestCase):
    def frame(self, src_mac, dst_mac, src, dst, seg, payload: bytes) -> bytes:
        import dpkt

        seg.data = payload
        if isinstance(seg, dpkt.udp.UDP):
            seg.ulen = 8 + len(payload)
            proto = dpkt.ip.IP_PROTO_UDP
        else:
            proto = dpkt.ip.IP_PROTO_TCP
        ip = dpkt.ip.IP(src=ipaddress.ip_address(src).packed, dst=ipaddress.ip_address(dst).packed,
                        p=proto, data=seg)
        ip.len = len(bytes(ip))
        eth = dpkt.ethernet.Ethernet(src=bytes.fromhex(src_mac.replace(":", "")),
                                     dst=bytes.fromhex(dst_mac.replace(":", "")),
                                     type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
        return bytes(eth)

    def test_by_protocol_and_sender(self):
        import dpkt

        udp, tcp = dpkt.udp.UDP, dpkt.tcp.TCP
        bcast = "ff:ff:ff:ff:ff:ff"
        frames = [
            # DHCP: the client's discover from 0.0.0.0, the master's offer.
            (CLIENT_MAC, self.frame(CLIENT_MAC, bcast, "0.0.0.0", "255.255.255.255",
                                    udp(sport=68, dport=67), b"d" * 300)),
            (MASTER_MAC, self.frame(MASTER_MAC, bcast, MASTER, "255.255.255.255",
                                    udp(sport=67, dport=68), b"o" * 300)),
            # TFTP: a request to 69, then data from the master's port of its choice and an ACK.
            (CLIENT_MAC, self.frame(CLIENT_MAC, MASTER_MAC, CLIENT, MASTER,
                                    udp(sport=2001, dport=69), b"\x00\x01ipxe.efi\x00octet\x00")),
            (MASTER_MAC, self.frame(MASTER_MAC, CLIENT_MAC, MASTER, CLIENT,
                                    udp(sport=40000, dport=2001), b"\x00\x03" + b"x" * 512)),
            (CLIENT_MAC, self.frame(CLIENT_MAC, MASTER_MAC, CLIENT, MASTER,
                                    udp(sport=2001, dport=40000), b"\x00\x04\x00\x01")),
            # Another port pair between the same two: not TFTP.
            (CLIENT_MAC, self.frame(CLIENT_MAC, MASTER_MAC, CLIENT, MASTER,
                                    udp(sport=2002, dport=40000), b"z")),
            # HTTP and NFS over TCP, each way.
            (CLIENT_MAC, self.frame(CLIENT_MAC, MASTER_MAC, CLIENT, MASTER,
                                    tcp(sport=50000, dport=80), b"GET /boot.ipxe")),
            (MASTER_MAC, self.frame(MASTER_MAC, CLIENT_MAC, MASTER, CLIENT,
                                    tcp(sport=80, dport=50000), b"h" * 1000)),
            (CLIENT_MAC, self.frame(CLIENT_MAC, MASTER_MAC, CLIENT, MASTER,
                                    tcp(sport=700, dport=2049), b"c" * 200)),
            (MASTER_MAC, self.frame(MASTER_MAC, CLIENT_MAC, MASTER, CLIENT,
                                    tcp(sport=2049, dport=700), b"n" * 4000)),
        ]
        arp = bytes(dpkt.ethernet.Ethernet(src=bytes.fromhex(MASTER_MAC.replace(":", "")),
                                           dst=b"\xff" * 6, type=dpkt.ethernet.ETH_TYPE_ARP,
                                           data=dpkt.arp.ARP()))
        frames.append((MASTER_MAC, arp))
        with tempfile.TemporaryDirectory() as tmp:
            pcap = Path(tmp) / "t.pcap"
            with open(pcap, "wb") as f:
                w = dpkt.pcap.Writer(f)
                for i, (_, buf) in enumerate(frames):
                    w.writepkt(buf, ts=1000.0 + i)
            got = traffic(str(pcap), MASTER_MAC, (MASTER,))

        def want(proto: str, sender: str) -> tuple:
            kinds = {"DHCP": [0, 1], "TFTP": [2, 3, 4], "HTTP": [6, 7], "NFS": [8, 9],
                     "other": [5, 10]}[proto]
            sizes = [len(frames[i][1]) for i in kinds if frames[i][0] == sender]
            return sum(sizes), len(sizes)

        for proto in ("DHCP", "TFTP", "HTTP", "NFS", "other"):
            for sender, who in ((MASTER_MAC, "master"), (CLIENT_MAC, "client")):
                self.assertEqual((got[proto][who]["bytes"], got[proto][who]["frames"]),
                                 want(proto, sender), f"{proto} sent by the {who}")


if __name__ == "__main__":
    unittest.main()
