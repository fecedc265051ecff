# SPDX-License-Identifier: MIT
"""The network namespace the VMs run in: bridges without addresses, a tap per VM NIC."""

import os
import re
import subprocess
import threading
from pathlib import Path

from .util import run


class Netns:
    """crtest-<pid>: a bridge (br0, more on demand) and one tap per VM NIC. The bridges have no
    address and the namespace has no routes beyond its own links: nothing reaches the host or
    the outside."""

    def __init__(self):
        self.name = f"crtest-{os.getpid()}"
        self.taps = 0
        self.bridges = {"br0"}
        self.lock = threading.Lock()   # the lanes add taps at the same time

    def __enter__(self):
        self._reap_stale()
        run(["ip", "netns", "add", self.name])
        try:
            run(["ip", "-n", self.name, "link", "set", "lo", "up"])
            self._add_bridge("br0")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc):
        # Deleting the namespace deletes the bridge and taps in it.
        subprocess.run(["ip", "netns", "del", self.name], stderr=subprocess.DEVNULL)

    @staticmethod
    def _reap_stale() -> None:
        """Namespaces left by runs of this harness that were killed with SIGKILL."""
        out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        for line in out.splitlines():
            m = re.match(r"crtest-(\d+)\b", line)
            if m and not Path(f"/proc/{m.group(1)}").exists():
                subprocess.run(["ip", "netns", "del", f"crtest-{m.group(1)}"],
                               stderr=subprocess.DEVNULL)

    def _add_bridge(self, bridge: str) -> None:
        run(["ip", "-n", self.name, "link", "add", bridge, "type", "bridge", "stp_state", "0",
             "forward_delay", "0"])
        run(["ip", "-n", self.name, "link", "set", bridge, "up"])
        self.bridges.add(bridge)

    def add_tap(self, bridge: str = "br0") -> str:
        """A tap on `bridge`, which is created (in this namespace, without an address) the
        first time it is named."""
        with self.lock:
            if bridge not in self.bridges:
                self._add_bridge(bridge)
            self.taps += 1
            tap = f"crtap{self.taps}"
        run(["ip", "netns", "exec", self.name, "ip", "tuntap", "add", "dev", tap, "mode", "tap"])
        run(["ip", "-n", self.name, "link", "set", tap, "master", bridge, "up"])
        return tap

    def shape(self, tap: str, rate: str) -> None:
        """Limits what `tap` passes to its VM to `rate` (tc's spelling, "16mbit"), with a
        token bucket (tbf): a slow link. The host's kernel has no netem, so loss and delay
        need another place."""
        run(["ip", "netns", "exec", self.name, "tc", "qdisc", "replace", "dev", tap, "root", "tbf",
             "rate", rate, "burst", "32kbit", "latency", "2s"])

    def add_host(self, bridge: str, address: str, host_mac: str) -> str:
        """Another host on `bridge`: a veth whose far end, in this namespace, has MAC
        `host_mac` and holds `address` (/24), so the namespace's kernel answers ARP for it as
        that host would. Returns the name to pass to del_link."""
        with self.lock:
            if bridge not in self.bridges:
                self._add_bridge(bridge)
            self.taps += 1
            host, port = f"crhost{self.taps}", f"crhostp{self.taps}"
        run(["ip", "-n", self.name, "link", "add", host, "address", host_mac, "type", "veth",
             "peer", "name", port])
        run(["ip", "-n", self.name, "link", "set", port, "master", bridge, "up"])
        # Answer ARP only on the interface that holds the address (arp_ignore=1): by default
        # the namespace's kernel answers for any of its addresses on any interface, the
        # bridges' own included, each with its own MAC.
        run(["ip", "netns", "exec", self.name, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"])
        run(["ip", "-n", self.name, "addr", "add", f"{address}/24", "dev", host])
        run(["ip", "-n", self.name, "link", "set", host, "up"])
        return host

    def del_link(self, link: str) -> None:
        """Removes a veth of add_host (both ends)."""
        subprocess.run(["ip", "-n", self.name, "link", "del", link], stderr=subprocess.DEVNULL)

    def del_tap(self, tap: str) -> None:
        subprocess.run(["ip", "-n", self.name, "link", "del", tap], stderr=subprocess.DEVNULL)
