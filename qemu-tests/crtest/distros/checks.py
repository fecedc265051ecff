# SPDX-License-Identifier: MIT
"""What a client of a real root must report (lib/distro-report): init's state and services,
its network setup surviving a restart, the boot NIC's name and address, a machine-id and ssh
host key of its own, its host name and the lease's DNS. Failed checks are collected on the
node (ClientRun.failed), not raised: a report shows them all."""

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from ..addresses import SERVER_IP
from ..report import Report

LEASE_DNS = [SERVER_IP]      # lib/make-server-image: dnsmasq sends option 6 = 10.77.0.1
IMAGE_DNS = "192.0.2.53"     # what make-distro-root puts in the image's /etc/resolv.conf


def derived_machine_id(mac: str) -> str:
    """The machine-id the agent gives a node whose node files hold none: the first 16 bytes
    of SHA-256("clusterroot machine-id\\n" + MAC), marked as a random (version 4) UUID."""
    b = bytearray(hashlib.sha256(b"clusterroot machine-id\n" + mac.encode()).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()


@dataclass
class Facts:
    values: dict = field(default_factory=dict)   # key -> [value, ...] in order
    report: object = None                        # run's Report: mounts, state, resolv

    @classmethod
    def parse(cls, lines: list) -> "Facts":
        f = cls(report=Report.parse(lines))
        for raw in lines:
            i = raw.find("CRTEST ")
            if i < 0:
                continue
            m = re.match(r"([a-z0-9-]+(?: [^\s:]+)*): ?(.*)$", raw[i + len("CRTEST "):].rstrip())
            if m:
                f.values.setdefault(m.group(1), []).append(m.group(2))
        return f

    def one(self, key: str) -> Optional[str]:
        v = self.values.get(key)
        return v[0] if v else None

    def all(self, key: str) -> list:
        return self.values.get(key, [])


def check_node(node, kind: str, tree: Path) -> None:
    """Every check of one node; the failed ones go to node.failed."""
    c, f = node.client, node.facts
    r = f.report

    def want(what: str, got, expected) -> None:
        if got != expected:
            node.failed.append(f"{what}: got {got!r}, expected {expected!r}")

    if kind == "systemd":
        want("system state (systemctl is-system-running --wait)", f.one("system-state"),
             "running")
        want("failed units", f.all("failed"), [])
        want("sshd (ssh.service)", f.one("sshd"), "active")
    else:
        svs = f.all("sv")
        for name in ("ssh", "dhcpcd", "crtest"):
            line = next((s for s in svs if re.match(rf"\S+: /etc/service/{name}:", s)), None)
            if line is None or not line.startswith("run:"):
                node.failed.append(f"runit service {name}: {line or 'not reported'}")
        down = [s for s in svs if not s.startswith("run:")]
        if down:
            node.failed.append(f"runit services not running: {down}")
        want("dhcpcd's lease file", f.one("dhcpcd-lease"), "yes")
        want("sshd (sv status ssh)", (f.one("sshd") or "").split(":")[0], "run")
    # The node's network setup runs, and survives a restart (runit: dhcpcd's stop) with the
    # address and the NFS root in place.
    services = {"networkd": ["systemd-networkd.service", "networking.service"],
                "networkmanager": ["NetworkManager.service", "networking.service"],
                "ifupdown": ["networking.service"], "dhcpcd": []}[c.setup]
    for unit in services:
        want(f"{unit}", f.one(f"active {unit}"), "active")
    probes = [f"restart {u}" for u in services] or ["stop dhcpcd"]
    for what in probes:
        if f"10.77.0.{c.n}/24" not in f.all(f"addr-after {what}"):
            node.failed.append(f"address 10.77.0.{c.n}/24 after {what}: has "
                               f"{f.all(f'addr-after {what}')}")
        want(f"NFS root after {what}", f.one(f"nfs-after {what}"), "ok")
    nic = f.one("nic") or ""
    if not re.fullmatch(r"en[a-z0-9]+", nic) or nic.startswith("eth"):
        node.failed.append(f"boot NIC name: got {nic!r}, expected a predictable en* name")
    udev_name = next((v.split("=", 1)[1] for v in f.all("udev")
                      if v.startswith("ID_NET_NAME=")), None)
    if udev_name is not None:
        want("boot NIC name vs udev's ID_NET_NAME", nic, udev_name)
    if kind == "systemd":
        want("udev ID_RENAMING on the boot NIC", f.one("udev-renaming"), "absent")
    addr = f"10.77.0.{c.n}/24"
    if addr not in f.all("nic-addr"):
        node.failed.append(f"address {addr} on {nic or 'the boot NIC'}: has {f.all('nic-addr')}")
    want("type of /", r.mounts.get("/", ("?",))[0], "overlay")
    mid = derived_machine_id(c.mac)
    # The runit image has no /etc/machine-id at all; the agent writes the derived one anyway.
    want("/etc/machine-id (derived from the MAC)", f.one("machine-id"), mid)
    if kind == "systemd" and not any(re.search(r"clusterroot: warning: .*machine-id", x)
                                     for x in f.all("kmsg")):
        node.failed.append("no 'clusterroot: warning: ...machine-id...' in the kernel log "
                           "(the image ships one machine-id for every node)")
    pub = tree / "etc" / "overlays" / c.mac / "ssh" / "ssh_host_ed25519_key.pub"
    want("sha256 of /etc/ssh/ssh_host_ed25519_key.pub (its node file's)",
         f.one("ssh-key-sha256"), hashlib.sha256(pub.read_bytes()).hexdigest())
    want("ssh host keys", f.one("ssh-host-keys"), "ssh_host_ed25519_key ssh_host_ed25519_key.pub")
    want("running host name", f.one("hostname"), c.hostname)
    want("state hostname", r.state.get("hostname"), c.hostname)
    nameservers = [x.split()[1] for x in r.resolv if x.startswith("nameserver ") and len(x.split()) > 1]
    want("/etc/resolv.conf nameservers (the lease's)", nameservers, LEASE_DNS)
    want("state boot_mac", r.state.get("boot_mac"), c.mac)
    if r.state.get("boot_iface") != nic:
        node.notes.append(f"state boot_iface={r.state.get('boot_iface')!r}, booted NIC {nic!r}")
    if f.one("resolv-kind") != "file":
        node.notes.append(f"/etc/resolv.conf is {f.one('resolv-kind')}")
    for w in f.all("kmsg"):
        if "clusterroot: warning:" in w:
            node.notes.append("agent " + w[w.index("warning:"):])


def check_distinct(nodes: list) -> None:
    for key, what in (("machine-id", "machine-id"), ("ssh-key-sha256", "ssh host key")):
        seen: dict = {}
        for n in nodes:
            v = n.facts.one(key) if n.facts else None
            if v in (None, "absent"):
                continue
            if v in seen:
                n.failed.append(f"same {what} as {seen[v].client.hostname}: {v}")
            seen[v] = n
