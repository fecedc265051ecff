# SPDX-License-Identifier: MIT
"""qemu-tests/storm --check: a storm as a pass/fail test (scripts/test runs one). It passes
when every client printed its ok line, once, and nothing said that DHCP, HTTP or NFS went
wrong: the load VM's kernel (its log from "ready" to "done": a warning or worse, or the
notice "nfs: server ... not responding"), the master's dnsmasq (a DHCPNAK, or no address to give),
its lighttpd (a storm client's request answered 4xx or 5xx) and its nfsd (RPCs it found bad,
/proc/net/rpc/nfsd's rpc line). What went wrong, one text each; no VM: lines and counters in."""

import re

from .bench_figures import proc_lines
from .storm_results import StormResult

# /proc/net/rpc/nfsd's "rpc" line: calls, then the bad ones.
RPC_FIELDS = ("calls", "badcalls", "badfmt", "badauth", "badclnt")
# The system log's sender (busybox syslogd: "host facility.level ident[pid]: ", journald:
# "host ident[pid]: "), then the message.
SENDER = re.compile(r" (?P<ident>[\w.-]+)(?:\[\d+\])?: (?P<msg>.*)$")
# lighttpd's access log: "CLIENT HOST - [date] "REQUEST" STATUS BYTES ...".
ACCESS = re.compile(r'^(?P<ip>\d+\.\d+\.\d+\.\d+) \S+ \S+ \[[^\]]*\] "(?P<req>[^"]*)" '
                    r'(?P<status>\d{3}) ')
# A kernel line as lib/load-init prints it (dmesg -r): "<level>[seconds] text".
KERNEL_LINE = re.compile(r"^<(?P<level>\d)>(?P<text>.*)$")
WARNING = 4   # KERN_WARNING; notices (5) count only when they say an NFS server is gone
# dnsmasq's DHCP lines that say a client got no address, or a wrong one.
DHCP_BAD = re.compile(r"DHCPNAK|no address (?:range )?available|DHCPDECLINE")


def rpc_counts(text: str) -> dict:
    """The rpc line of /proc/net/rpc/nfsd (as crtest-report's read gives it): {field: n}."""
    values = proc_lines(text).get("rpc", [])
    return {k: int(v) for k, v in zip(RPC_FIELDS, values)}


def rpc_problems(before: dict, after: dict) -> list:
    """nfsd's bad RPCs between two rpc_counts."""
    bad = {k: after.get(k, 0) - before.get(k, 0) for k in RPC_FIELDS[1:]}
    return [f"master: nfsd counted {n} {k} (/proc/net/rpc/nfsd rpc line)"
            for k, n in bad.items() if n]


def syslog_problems(lines: list, mac_prefix: str, ips: set) -> list:
    """The master's system log lines (crtest-report syslog) that say a storm client's DHCP or
    HTTP went wrong: dnsmasq's DHCPNAK/DHCPDECLINE naming a client's MAC (`mac_prefix`...) or
    saying it had no address to give (which names none), lighttpd's access lines from the
    clients' addresses (`ips`) answered 4xx or 5xx."""
    out = []
    prefix = mac_prefix.lower() + ":"
    for line in lines:
        m = SENDER.search(line)
        if not m:
            continue
        ident, msg = m.group("ident"), m.group("msg")
        if ident == "dnsmasq-dhcp" and DHCP_BAD.search(msg):
            if "no address" in msg or prefix in msg.lower():
                out.append(f"master: dnsmasq: {msg}")
        elif ident == "lighttpd":
            a = ACCESS.match(msg)
            if a and a.group("ip") in ips and int(a.group("status")) >= 400:
                out.append(f"master: lighttpd answered {a.group('ip')}'s "
                           f"\"{a.group('req')}\" {a.group('status')}")
    return out


def new_lines(before: list, now: list) -> list:
    """The lines of the system log `now` that came after those of `before` (busybox syslogd
    starts its file again once it is full: then all of `now`)."""
    if len(now) >= len(before) and now[:len(before)] == before:
        return now[len(before):]
    return now


def kernel_problems(result: StormResult) -> list:
    """The load VM's kernel messages of the storm (lib/load-init's "kernel:" lines, notices
    and worse) that say something went wrong: warnings and worse, and an NFS server not
    responding (a notice, as "random: crng init done" is, which says nothing of the storm)."""
    out = []
    for x in result.load_lines:
        if not x.startswith("kernel: "):
            continue
        line = x.removeprefix("kernel: ")
        m = KERNEL_LINE.match(line)
        if not m or int(m.group("level")) <= WARNING or "not responding" in m.group("text"):
            out.append(f"load VM kernel: {line}")
    return out


def problems(result: StormResult, rpc_before: dict, rpc_after: dict, syslog: list,
             mac_prefix: str) -> list:
    """Everything that fails a storm under --check, one text each: the clients that failed
    or said nothing, a client's second line, no "done" from the load VM, and the problems the
    load VM's kernel, the master's log and its nfsd counters show."""
    out = list(result.failures())
    out += [f"client {r.index}: a second line ({'ok' if r.ok else r.step})"
            for r in result.duplicates]
    if result.done_ms is None:
        out.append("the load VM never said done")
    out += kernel_problems(result)
    out += rpc_problems(rpc_before, rpc_after)
    ips = {r.fields["ip"] for r in result.clients.values() if r.fields.get("ip")}
    out += syslog_problems(syslog, mac_prefix, ips)
    return out
