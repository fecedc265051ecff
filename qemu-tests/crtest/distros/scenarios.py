# SPDX-License-Identifier: MIT
"""distros' scenarios: a real root (scripts/setup-roots' systemd or runit tree, prepared by
lib/make-distro-root) and its clients, each with its network setup and image flavor; and the
root's export disk."""

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from ..addresses import DHCP_NODES, DHCP_OTHER_ROOT, mac
from ..flavors import BUSYBOX, SYSTEMD, Flavor
from ..paths import LIB, REPO, Dirs
from ..util import Fail, build_failed, log, run, stale


@dataclass
class Client:
    n: int          # MAC 52:54:00:77:00:n; the server's DHCP gives it 10.77.0.n (DHCP_NODES)
    flavor: Flavor  # its initramfs: the flavor's client image (BUSYBOX or SYSTEMD)
    setup: str      # its network setup (make-distro-root NODE)
    doc: str

    @property
    def mac(self) -> str:
        return mac(self.n)

    @property
    def hostname(self) -> str:
        return f"node{self.n}"   # from its node files (the DHCP server says dhcp-node<n>)

    @property
    def config(self) -> str:
        return self.flavor.client_config


@dataclass
class Scenario:
    name: str
    doc: str
    kind: str       # systemd or runit: the root (scripts/setup-roots)
    clients: list
    bridge: str


SCENARIOS = [
    Scenario("debian-systemd", "Debian 12 with systemd: networkd, ifupdown and NetworkManager "
             "nodes keep the address the NFS root runs over", "systemd",
             [Client(21, BUSYBOX, "networkd",
                     "systemd-networkd from node files, with a naive 20-wired.network (en*, "
                     "DHCP=yes)"),
              Client(23, SYSTEMD, "ifupdown",
                     "ifupdown, /etc/network/interfaces with lo only"),
              Client(24, BUSYBOX, "networkmanager",
                     "NetworkManager from node files")],
             "brs"),
    Scenario("debian-runit", "Debian 12 with runit: dhcpcd -B with `persistent` renews the "
             "lease without deconfiguring the NIC", "runit",
             [Client(25, BUSYBOX, "dhcpcd", "runit, dhcpcd"),
              Client(26, SYSTEMD, "dhcpcd", "runit, dhcpcd")],
             "brr"),
]


for _sc in SCENARIOS:
    assert all(c.n in DHCP_NODES and c.n != DHCP_OTHER_ROOT[0] for c in _sc.clients)


def list_scenarios() -> None:
    for sc in SCENARIOS:
        log(f"{sc.name:15} {sc.doc}")
        for c in sc.clients:
            log(f"{'':15}   {c.hostname} {c.mac} {c.flavor.name} image: {c.doc}")


def root_image(dirs: Dirs, kind: str, clients: list, rebuild: bool) -> Path:
    """The export disk of a scenario: lib/make-distro-root's tree as ext4, sized to fit. Kept
    while its inputs (the pristine tree, the scripts, the node list) are unchanged; each
    server boots a fresh copy (it mounts the disk read-write)."""
    work = dirs.work
    tree, img, spec = work / f"root-{kind}", work / f"root-{kind}.img", work / f"root-{kind}.nodes"
    nodes = [f"{c.mac},{c.hostname},{c.setup}" for c in clients]
    pristine = subprocess.run([REPO / "scripts" / "setup-roots", "--path", kind],
                              capture_output=True, text=True)
    if pristine.returncode != 0:
        raise Fail(f"no cached {kind} root: {pristine.stderr.strip()} (scripts/setup runs "
                   "scripts/setup-roots)")
    complete = Path(pristine.stdout.strip() + ".complete")
    inputs = [LIB / "make-distro-root", LIB / "distro-report", LIB / "make-ext4-image", complete]
    if (rebuild or stale(img, inputs) or not spec.exists()
            or spec.read_text() != "\n".join(nodes) or not tree.is_dir()):
        t0 = time.monotonic()
        img.unlink(missing_ok=True)
        try:
            run([LIB / "make-distro-root", kind, tree] + nodes, capture_output=True)
            mb = int(subprocess.run(["du", "-sm", tree], capture_output=True, text=True,
                                    check=True).stdout.split()[0])
            size = mb + mb // 4 + 64
            run([LIB / "make-ext4-image", tree, img, "export", f"{size}M"],
                capture_output=True)
        except subprocess.CalledProcessError as e:
            raise Fail(build_failed(f"the {kind} root", e))
        spec.write_text("\n".join(nodes))
        log(f"  built the {kind} root ({mb} MB) and its {size} MB export disk in "
            f"{time.monotonic() - t0:.1f}s")
    return img
