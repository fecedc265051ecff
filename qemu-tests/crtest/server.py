# SPDX-License-Identifier: MIT
"""The NFS server VM (lib/make-server-image, lib/server-init) and the commands its second
serial port takes: nfsd's versions, dnsmasq, the ZFS store, the export's checksum."""

import os
import re
import time
from pathlib import Path
from typing import Optional

from .addresses import SERVER_MAC
from .builds import Builds, zfs_missing
from .netns import Netns
from .paths import KERNEL, Dirs
from .patterns import PANIC
from .util import Fail, log
from .vm import VM, ControlPort

SERVER_READY_S = 180
SERVER_MEM = "256"
# The server VM with the ZFS pool (Scenario.server_zfs). Measured at 256: 60 MB used after zfs on,
# crctl image import, edit and publish, the ARC (capped at 64 MB by server-init) at 9 MB of it.
SERVER_ZFS_MEM = "512"


class Server:
    """The NFS server VM and its command port (the second serial port, ttyS1), on `bridge`,
    exporting `disk`. With `zfs_disk`, a copy of the ZFS pool image, as its second disk
    (/dev/vdb), for zfs_on(). `builds`: the run's, whose pool image build failure zfs_on()
    names when the server has none."""

    def __init__(self, dirs: Dirs, netns: Netns, initrd: Path, disk: Path, name: str = "server",
                 bridge: str = "br0", mem: str = SERVER_MEM, timeout_s: int = 6 * 3600,
                 append: str = "", builds: Optional[Builds] = None,
                 zfs_disk: Optional[Path] = None, live_disk: Optional[Path] = None):
        self.builds = builds
        self.zfs_disk = zfs_disk   # the pool's copy, removed by stop()
        self.zfs = ""              # "tank/zstore /srv/zstore" once zfs_on() succeeded
        # The pool's disk is /dev/vdb (lib/server-init imports it from there); the squashfs
        # image disk comes last, read-only, found by its label.
        extra = [] if zfs_disk is None else ["-drive", f"file={zfs_disk},format=raw,if=virtio"]
        if live_disk is not None:
            extra += ["-drive", f"file={live_disk},format=raw,if=virtio,readonly=on"]
        self.ctl = ControlPort(dirs.work / f"{name}-{os.getpid()}.sock")
        self.ctl.path.unlink(missing_ok=True)
        self.vm = VM(dirs, name, netns, [(SERVER_MAC, bridge)], KERNEL, initrd,
                     "console=ttyS0 panic=-1" + (f" {append}" if append else ""), mem, timeout_s,
                     disk=disk, extra=extra + self.ctl.qemu_args())
        self.seq = 0
        self.refused: tuple = ()   # NFS versions nfsd does not offer now ("4.2", ...)
        self.dhcp = False          # dnsmasq running
        self.dhcp_delay = 0        # its offers' delay, seconds
        self.nfsd = True           # nfsd running (set_nfsd)
        self.netem = ""            # the netem on its NIC's way out (set_netem), "" for none

    @classmethod
    def for_scenarios(cls, dirs: Dirs, netns: Netns, builds: Builds,
                      bridge: str = "br0") -> "Server":
        """run's server on `bridge`: it exports a fresh image of the shared root; with
        `builds.server_zfs`, a fresh copy of the ZFS pool image is its second disk; with
        `builds.server_live`, the squashfs image disk its last. The server of br0 is
        "server"; another lane's (which runs only scenarios that need no pool) is
        "server-<bridge>", with its own export disk."""
        initrd = builds.server_initramfs()
        name = "server" if bridge == "br0" else f"server-{bridge}"
        disk = builds.ext4_image(name.replace("server", "export"), "export")
        mem, zfs_disk = SERVER_MEM, None
        if builds.server_zfs and bridge == "br0":
            zfs_disk = builds.zfs_disk("disk-zfs-server")
            mem = SERVER_ZFS_MEM
        live_disk = builds.live_disk() if builds.server_live else None
        return cls(dirs, netns, initrd, disk, name=name, bridge=bridge, mem=mem, builds=builds,
                   zfs_disk=zfs_disk, live_disk=live_disk)

    def wait_ready(self) -> str:
        fail_on = (PANIC, r"SERVER failed:")
        m = self.vm.expect(r"SERVER sum-before: (\S+ \d+)", SERVER_READY_S, fail_on)
        self.vm.expect(r"SERVER ready", 60, fail_on)
        try:
            self.ctl.connect()
        except Fail as e:
            raise Fail(f"server: {e}")
        return m.group(1)

    def command(self, line: str) -> None:
        if self.ctl.sock is None or not self.vm.alive():
            raise Fail("server: not running")
        self.ctl.send(line)

    def ask(self, line: str, topic: str, want: str, timeout: int = 30) -> str:
        """Sends server-init `line` and waits for its answer, "SERVER <topic> <outcome>" or
        "SERVER <topic> <outcome>: <details>" (outcome "failed" when it failed): the details
        ("" for none) when the outcome is `want`, else Fail with the answer."""
        self.command(line)
        m = self.vm.expect(rf"SERVER {topic} (\w+)(?:: ([^\r\n]*))?", timeout, (PANIC,))
        if m.group(1) != want:
            raise Fail(f"server: {line}: {m.group(0)}")
        return m.group(2) or ""

    def set_versions(self, refused: tuple) -> None:
        """nfsd offers every NFS version but `refused` (e.g. ("4.2", "4.1")); restarts nfsd
        only when that changes."""
        if tuple(sorted(refused)) == tuple(sorted(self.refused)):
            return
        args = " ".join(f"-{v}" for v in refused) if refused else "reset"
        versions = self.ask(f"versions {args}", "versions", "set", 60)
        offered = versions.split()
        want = [f"-{v}" for v in refused] if refused else ["+4.1", "+4.2"]
        missing = [v for v in want if v not in offered]
        if missing or (not refused and any(v.startswith("-4") for v in offered)):
            raise Fail(f"server: versions {args} left /proc/fs/nfsd/versions at "
                       f"'{versions}'")
        self.refused = tuple(refused)
        log(f"  server: nfsd versions now {versions}")

    def set_nfsd(self, on: bool) -> None:
        """nfsd running or stopped (rpc.nfsd 0). Started again, it offers the versions it did
        and keeps its grace period (10 s), as after a restart by a package upgrade."""
        if on == self.nfsd:
            return
        state = "started" if on else "stopped"
        details = self.ask("nfsd start" if on else "nfsd stop", "nfsd", state)
        self.nfsd = on
        log(f"  server: nfsd {state}{': ' + details if details else ''}")

    def set_netem(self, spec: str) -> None:
        """Every packet the server sends through netem `spec` ("delay 200ms 50ms loss 5%"),
        as netem on a client's tap would pass what reaches the client; "" for none."""
        if spec == self.netem:
            return
        state = "on" if spec else "off"
        details = self.ask(f"netem on {spec}" if spec else "netem off", "netem", state)
        self.netem = spec
        log(f"  server: netem {state}{': ' + details if details else ''}")

    def counts(self) -> dict:
        """What nodes' boots leave on the server: {"clients": nfsd's client records, "locks":
        the kernel's, "exports": etab's lines, "recovery": NFSv4 recovery records}."""
        self.command("counts")
        m = self.vm.expect(r"SERVER counts: (.*)", 30, (PANIC,))
        return {k: int(v) for k, v in (w.split("=") for w in m.group(1).split())}

    def bigtar(self, node_mac: str, mib: int) -> None:
        """Puts a node-files archive of a directory, crtest-big, of `mib` files of 1 MiB, in the
        export's /etc/overlays for `node_mac` (mib 0: removes it)."""
        self.ask(f"bigtar {node_mac} {mib}" if mib else f"bigtar off {node_mac}", "bigtar", "done", 120)

    def set_dhcp(self, on: bool, delay_s: int = 0) -> None:
        """dnsmasq (DHCP only) running or not; with `delay_s`, each offer that many seconds
        late (a slow server)."""
        want = (on, delay_s if on else 0)
        if want == (self.dhcp, self.dhcp_delay):
            return
        if self.dhcp:
            self.ask("dhcp off", "dhcp", "off")
            self.dhcp = False
        if on:
            self.ask(f"dhcp on {delay_s}" if delay_s else "dhcp on", "dhcp", "on")
        self.dhcp, self.dhcp_delay = want

    def zfs_on(self) -> str:
        """The server's ZFS image store: server-init's "zfs on" loads the zfs modules, imports
        the pool tank from the second disk and mounts a fresh dataset tank/zstore on
        /srv/zstore, the store of the inventory /etc/clusterroot/cluster-zfs. A no-op once on.
        Returns "tank/zstore /srv/zstore" (zfs list's name and mountpoint)."""
        if self.zfs:
            return self.zfs
        if self.zfs_disk is None:
            zfs_missing()                       # Skip where ZFS is not installed
            if self.builds is not None:
                self.builds.zfs_pool_image()    # the image's build failure, if that was it
            raise Fail("server: started without the ZFS pool (Scenario.server_zfs makes "
                       "prebuild_shared give it one)")
        t0 = time.monotonic()
        self.zfs = self.ask("zfs on", "zfs", "on", 120).strip()
        log(f"  server: zfs on in {time.monotonic() - t0:.1f}s ({self.zfs})")
        return self.zfs

    def tree_sum(self, what: str) -> str:
        """Checksum of the export tree, computed by the server VM."""
        self.seq += 1
        tag = f"{what}-{self.seq}"
        self.command(f"sum {tag}")
        m = self.vm.expect(rf"SERVER sum-after {re.escape(tag)}: (\S+ \d+)", 120,
                           (PANIC,))
        return m.group(1)

    def diagnose(self) -> None:
        """Logs server-init's "diag" (load, nfsd, port 2049's sockets, the NIC, neighbours,
        the kernel's last lines) after a scenario failed: a server that does not answer it
        within 30 s is itself the finding."""
        if self.ctl.sock is None or not self.vm.alive():
            log("  server: not running, no diagnosis")
            return
        self.vm.console.poll()
        mark = len(self.vm.console.lines)
        try:
            self.command("diag")
            self.vm.expect(r"SERVER diag done", 30, (PANIC,))
        except Fail as e:
            log(f"  server: no diagnosis ({e})")
            return
        self.vm.console.poll()
        for line in self.vm.console.lines[mark:]:
            if "SERVER diag: " in line:
                log("  server diag: " + line.split("SERVER diag: ", 1)[1])

    def stop(self) -> None:
        if self.ctl.sock is not None and self.vm.alive():
            try:
                self.ctl.send("halt")
                self.vm.wait_exit(20)
            except OSError:
                pass
        self.vm.stop()
        self.ctl.close()
        if self.zfs_disk is not None:
            self.zfs_disk.unlink(missing_ok=True)   # 256 MiB
