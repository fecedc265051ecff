# SPDX-License-Identifier: MIT
"""qemu-tests/storm --check's verdict (crtest.storm_check), from the lines and counters a
storm leaves: the load VM's console, the master's system log (busybox syslogd's and
journald's forms) and nfsd's rpc line. No VM."""

import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crtest.storm_check import (new_lines, problems, rpc_counts,  # noqa: E402
                                rpc_problems, syslog_problems)
from crtest.storm_results import parse_storm  # noqa: E402

PREFIX = "52:54:00:77:03"
OK = ("STORM client {i}: ok mac=52:54:00:77:03:0{i} ip=172.23.199.12{i} root=squashfs-nfs "
      "reads=image dhcp_tries=1 dhcp_ms=100 http_ms=200 done_ms=300 http_bytes=1 "
      "root_bytes=2 files=0")
# /proc/net/rpc/nfsd as crtest-report's read gives it: its lines joined with blanks.
NFSD = ("rc 0 4 4100 fh 0 0 0 0 0 io 0 0 th 8 0 0.0 0.0 ra 0 0 0 net 4112 0 4112 {conn} "
        "rpc {calls} {bad} 0 {auth} 0 proc3 22 0 0 0 proc4 2 0 {calls} proc4ops 76 0 0 0")
# Lines of the master's log: busybox syslogd's, then journald's (the Debian root's).
BUSYBOX_LOG = [
    "Dec  6 21:06:14 master daemon.info dnsmasq-dhcp[267]: 3044297854 DHCPDISCOVER(ens2) "
    "52:54:00:77:03:01 ",
    "Dec  6 21:06:20 master daemon.info dnsmasq-dhcp[267]: 3044297854 DHCPACK(ens2) "
    "172.23.199.121 52:54:00:77:03:01 storm1",
    'Dec  6 21:06:22 master user.info lighttpd: 172.23.199.121 172.23.199.225 - '
    '[06/Dec/2026:21:06:22 +0000] "GET /boot.ipxe HTTP/1.1" 200 1484 "-" "Wget"',
]
JOURNAL_LOG = [
    "Dec 06 01:57:25 master dnsmasq-dhcp[397]: DHCP, IP range 172.23.199.100 -- "
    "172.23.199.199, lease time 12h",
    'Dec 06 01:57:31 master lighttpd[390]: 172.23.199.122 172.23.199.225 - '
    '[06/Dec/2026:01:57:30 +0000] "GET /vmlinuz HTTP/1.1" 200 8247232 "-" "Wget"',
]


class Rpc(unittest.TestCase):
    def test_the_rpc_line_read(self):
        self.assertEqual(rpc_counts(NFSD.format(conn=8, calls=4112, bad=0, auth=0)),
                         {"calls": 4112, "badcalls": 0, "badfmt": 0, "badauth": 0,
                          "badclnt": 0})

    def test_bad_rpcs_between_two_readings(self):
        before = rpc_counts(NFSD.format(conn=8, calls=10, bad=1, auth=0))
        after = rpc_counts(NFSD.format(conn=9, calls=4112, bad=3, auth=2))
        self.assertEqual(rpc_problems(before, after), [
            "master: nfsd counted 2 badcalls (/proc/net/rpc/nfsd rpc line)",
            "master: nfsd counted 2 badauth (/proc/net/rpc/nfsd rpc line)"])
        self.assertEqual(rpc_problems(after, after), [])


class Syslog(unittest.TestCase):
    IPS = {"172.23.199.121", "172.23.199.122"}

    def test_a_good_storm_has_no_problem(self):
        self.assertEqual(syslog_problems(BUSYBOX_LOG + JOURNAL_LOG, PREFIX, self.IPS), [])

    def test_dhcp_refusals_of_the_clients_and_no_address(self):
        lines = [
            "Dec  6 21:06:20 master daemon.info dnsmasq-dhcp[267]: 1 DHCPNAK(ens2) "
            "172.23.199.121 52:54:00:77:03:01 wrong network",
            # Another machine's NAK is not the storm's.
            "Dec  6 21:06:20 master daemon.info dnsmasq-dhcp[267]: 2 DHCPNAK(ens2) "
            "172.23.199.11 52:54:00:77:00:0b wrong network",
            "Dec 06 01:57:31 master dnsmasq-dhcp[397]: 3 DHCPDISCOVER(ens2) "
            "52:54:00:77:03:0a no address available",
        ]
        self.assertEqual(syslog_problems(lines, PREFIX, self.IPS), [
            "master: dnsmasq: 1 DHCPNAK(ens2) 172.23.199.121 52:54:00:77:03:01 wrong network",
            "master: dnsmasq: 3 DHCPDISCOVER(ens2) 52:54:00:77:03:0a no address available"])

    def test_http_errors_to_the_clients_only(self):
        lines = [x.replace('" 200 ', '" 404 ') for x in BUSYBOX_LOG + JOURNAL_LOG]
        lines.append(lines[-1].replace("172.23.199.122 172", "172.23.199.11 172"))
        self.assertEqual(syslog_problems(lines, PREFIX, self.IPS), [
            "master: lighttpd answered 172.23.199.121's \"GET /boot.ipxe HTTP/1.1\" 404",
            "master: lighttpd answered 172.23.199.122's \"GET /vmlinuz HTTP/1.1\" 404"])

    def test_the_lines_of_this_storm(self):
        self.assertEqual(new_lines(BUSYBOX_LOG[:1], BUSYBOX_LOG), BUSYBOX_LOG[1:])
        self.assertEqual(new_lines([], BUSYBOX_LOG), BUSYBOX_LOG)
        # syslogd started its file again: every line is new.
        self.assertEqual(new_lines(BUSYBOX_LOG, JOURNAL_LOG), JOURNAL_LOG)


class Verdict(unittest.TestCase):
    RPC = {"calls": 1, "badcalls": 0, "badfmt": 0, "badauth": 0, "badclnt": 0}

    def storm(self, *extra):
        lines = ["STORM load: ready n=2", "STORM load: go", OK.format(i=1), OK.format(i=2),
                 *extra, "STORM load: done n=2 ms=400"]
        return parse_storm(lines, 2)

    def test_every_client_ok_and_nothing_said(self):
        self.assertEqual(problems(self.storm(), self.RPC, self.RPC, BUSYBOX_LOG, PREFIX), [])

    def test_a_notice_that_says_nothing_of_the_storm(self):
        # Seen in a storm of the Debian root's squashfs-nfs: the load VM's CRNG got ready.
        result = self.storm("STORM load: kernel: <5>[   86.833294] random: crng init done")
        self.assertEqual(problems(result, self.RPC, self.RPC, [], PREFIX), [])
        result = self.storm("STORM load: kernel: <4>[   90.1] loop3: detected capacity change",
                            "STORM load: kernel: something not in dmesg -r's form")
        self.assertEqual(problems(result, self.RPC, self.RPC, [], PREFIX), [
            "load VM kernel: <4>[   90.1] loop3: detected capacity change",
            "load VM kernel: something not in dmesg -r's form"])

    def test_each_kind_of_problem(self):
        result = parse_storm([
            "STORM load: go", OK.format(i=1), OK.format(i=1),
            "STORM client 3: fail step=loop ms=900 mac=52:54:00:77:03:03 error=losetup: busy",
            "STORM load: kernel: <5>[  61.2] nfs: server 172.23.199.225 not responding, "
            "still trying"], 3)
        bad = dict(self.RPC, badcalls=1)
        got = problems(result, self.RPC, bad, [], PREFIX)
        self.assertEqual(got, [
            "client 3 (52:54:00:77:03:03): loop failed after 900 ms: losetup: busy",
            "client 2: no result line",
            "client 1: a second line (ok)",
            "the load VM never said done",
            "load VM kernel: <5>[  61.2] nfs: server 172.23.199.225 not responding, "
            "still trying",
            "master: nfsd counted 1 badcalls (/proc/net/rpc/nfsd rpc line)"])


if __name__ == "__main__":
    unittest.main()
