# SPDX-License-Identifier: MIT
"""The installed master's VM (its kernel, initrd and command line from a grub.cfg entry, its
disks on virtio-scsi, the checkout on virtio-blk, the site and cluster NICs in fixed PCI
slots), its ports (ttyS1: the cluster test's commands; ttyS2: crtest-admin's stages and
scripts), and running README's stages on it."""

import base64
import os
import re
import socket
import time
from pathlib import Path
from typing import Optional

from ..cluster.node import Node
from ..cluster.variants import MASTER_IP, Variant
from ..flavors import DRACUT
from ..netns import Netns
from ..paths import QEMU, Dirs
from ..patterns import AGENT_ERROR, CRTEST_UP, DRACUT_SD_EMERGENCY, PANIC, SD_EMERGENCY
from ..report import Report
from ..util import LAST_LINES, Fail, log
from ..vm import TERMINAL_CONTROLS, VM, ControlPort
from .disks import Disks, disk_file
from .grub import pick_entry

SITE_MAC = "52:54:00:77:01:e1"      # ens4: PCI slot 4
CLUSTER_MAC = "52:54:00:77:00:e1"   # ens5: PCI slot 5; the inventory's master
SITE_BRIDGE = "br1"                 # the site network: nothing else on it
CLUSTER_BRIDGE = "br0"              # the clients' (PxeVM puts them on br0)
MASTER_MEM = "1536"
MASTER_CPUS = "2"
# Deadlines guard against hangs, not speed.
VM_TIMEOUT_S = 3600
UP_S = 900                          # power-on to crtest-admin's report
STAGE_S = {"install": 2400, "master": 900, "kernel": 2400, "maintenance": 900}
POWEROFF_S = 240
FAILS = (PANIC, SD_EMERGENCY, DRACUT_SD_EMERGENCY, AGENT_ERROR)

# For the cluster test's client checks: a Debian root (check_debian), whose clients boot the
# image the kernel hook built with dracut (dracut/clusterroot-net.conf), in which their boot
# NIC keeps the kernel's name (eth0), as in the cluster test's busybox images.
VARIANT = Variant("admin", "README's steps on an installed Debian master",
                  CLUSTER_MAC, False, MASTER_IP, flavor=DRACUT, root="debian",
                  generator="dracut")


class PhaseFail(Fail):
    def __init__(self, phase: str, msg: str, node=None):
        super().__init__(msg)
        self.phase = phase
        self.node = node


class AdminPort(ControlPort):
    """The third serial port (ttyS2): crtest-admin's stages and scripts (lib/admin-node)."""

    def qemu_args(self) -> list:
        return ["-chardev", f"socket,id=adm,path={self.path},server=on,wait=off",
                "-serial", "chardev:adm"]


class AdminVM(VM):
    """The installed master: its kernel, initrd and command line from a grub.cfg entry, its
    disks on virtio-scsi and the checkout on virtio-blk (vda), the site NIC in PCI slot 4 and
    the cluster NIC in slot 5 (udev: ens4, ens5). Its disks' writes reach the image files
    without being flushed to the host's disk (cache=unsafe: dpkg's and dracut's fsyncs are
    most of their time under TCG; the test powers the VM off cleanly before reading them)."""

    def __init__(self, dirs: Dirs, name: str, netns: Netns, kernel: Path, initrd: Path,
                 append: str, disks: Disks, extra: list, blank_at_boot: bool = True):
        self._open(dirs, name, netns)
        try:
            site = netns.add_tap(SITE_BRIDGE)
            self.taps.append(site)
            cluster = netns.add_tap(CLUSTER_BRIDGE)
            self.taps.append(cluster)
        except BaseException:
            for tap in self.taps:
                netns.del_tap(tap)
            raise
        cmd = [
            "ip", "netns", "exec", netns.name,
            "timeout", "--kill-after=10", str(VM_TIMEOUT_S),
            QEMU, "-accel", "tcg", "-m", MASTER_MEM, "-smp", MASTER_CPUS,
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", append,
            "-serial", f"file:{self.console_path}",
            "-device", "virtio-scsi-pci,id=scsi0,bus=pci.0,addr=0x3",
            "-netdev", f"tap,id=site,ifname={site},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=site,mac={SITE_MAC},bus=pci.0,addr=0x4",
            "-netdev", f"tap,id=cluster,ifname={cluster},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=cluster,mac={CLUSTER_MAC},bus=pci.0,addr=0x5",
        ]
        for i, drive in enumerate(disks.scsi() if blank_at_boot else disks.scsi()[:1]):
            cmd += ["-drive", f"file={drive},format=raw,if=none,id=hd{i},cache=unsafe",
                    "-device", f"scsi-hd,drive=hd{i},bus=scsi0.0,channel=0,scsi-id=0,lun={i}"]
        self.monitor = dirs.work / f"{name}-{os.getpid()}.monitor"
        cmd += ["-monitor", f"unix:{self.monitor},server=on,wait=off"]
        cmd += ["-drive", f"file={disks.checkout},format=raw,if=none,id=checkout,readonly=on",
                "-device", "virtio-blk-pci,drive=checkout,bus=pci.0,addr=0x6"]
        cmd += extra
        self._launch(cmd, append)

    def hmp(self, command: str) -> str:
        """One command on QEMU's human monitor; its answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mon:
            mon.settimeout(30)
            mon.connect(str(self.monitor))
            data = b""
            while not data.endswith(b"(qemu) "):
                data += mon.recv(4096)
            mon.sendall(command.encode() + b"\n")
            data = b""
            while not data.endswith(b"(qemu) "):
                chunk = mon.recv(4096)
                if not chunk:
                    break
                data += chunk
        return data.decode(errors="replace").replace("\r", "")

    def stop(self) -> None:
        super().stop()
        self.monitor.unlink(missing_ok=True)


class Master(Node):
    """The master (cluster.Node: its console, command port ttyS1) with the admin port."""

    adm: Optional[AdminPort] = None
    boot_name: str = ""


def boot_master(dirs: Dirs, netns: Netns, disks: Disks, boot: str, maintenance: bool = False,
                blank_at_boot: bool = True) -> Master:
    """Powers the master on with an entry of its grub.cfg (the boot loader's double); returns
    once crtest-admin has reported and serves commands."""
    entry = pick_entry(disks.root, maintenance)
    where = dirs.work / f"boot-{boot}"
    where.mkdir(parents=True, exist_ok=True)
    kernel = disk_file(disks.root, entry.kernel, where / "vmlinuz")
    initrd = disk_file(disks.root, entry.initrd, where / "initrd")
    append = f"{entry.args} console=ttyS0,115200 panic=-1"
    log(f"  {boot}: grub.cfg entry '{entry.title}': linux {entry.kernel} {entry.args}; "
        f"initrd {entry.initrd}")
    m = Master("master", CLUSTER_MAC, MASTER_IP)
    m.boot_name = boot
    m.ctl = ControlPort(dirs.work / f"{boot}-{os.getpid()}.sock")
    m.adm = AdminPort(dirs.work / f"{boot}-{os.getpid()}.adm")
    m.vm = AdminVM(dirs, f"master-{boot}", netns, kernel, initrd, append, disks,
                   m.ctl.qemu_args() + m.adm.qemu_args(), blank_at_boot)
    try:
        m.vm.expect(r"CRTEST system: (\S+)", UP_S, FAILS)
        m.vm.expect(r"CRTEST admin: commands on ttyS2", 60, FAILS)
        m.vm.expect(CRTEST_UP, 120, FAILS)
    except Fail as e:
        raise PhaseFail(boot, str(e), m)
    m.vm.console.poll()
    m.report = Report.parse(m.vm.console.lines)
    log(f"  {boot}: up in {m.vm.elapsed():.1f}s ({m.report.values.get('system')}; failed "
        f"units: {m.report.values.get('failed-units') or 'none'})")
    return m


def adm_command(m: Master, line: str, answer: str, timeout_s: float) -> re.Match:
    m.adm.send(line)
    try:
        return m.vm.expect(answer, timeout_s, (PANIC,))
    except Fail as e:
        raise PhaseFail(m.boot_name, str(e), m)


def sh(m: Master, script: str, timeout_s: float = 300) -> tuple:
    """Runs a script of the test's on the master (crtest-admin's sh): (status, output)."""
    b64 = base64.b64encode(script.encode()).decode()
    got = adm_command(m, f"sh {b64}", r"CRTEST sh: (\d+) (\S*)$", timeout_s)
    out = base64.b64decode(got.group(2)).decode(errors="replace") if got.group(2) != "-" else ""
    return int(got.group(1)), out


def run_stage(dirs: Dirs, m: Master, stage: str, stages: dict) -> None:
    """README's steps of `stage` in the VM; each output line into logs/stage-STAGE.log."""
    if stage not in stages:
        log(f"  stage {stage}: README has no block for it")
        return
    t0 = time.monotonic()
    log(f"RUN  stage {stage}: README.md lines {', '.join(map(str, stages[stage][1]))}")
    m.vm.console.poll()
    mark = len(m.vm.console.lines)
    got = adm_command(m, f"stage {stage}", rf"CRTEST stage {stage}: exit (\d+)(.*)$",
                      STAGE_S[stage])
    m.vm.console.poll()
    steps = [x.split("STEP| ", 1)[1] for x in m.vm.console.lines[mark:] if "STEP| " in x]
    (dirs.logs / f"stage-{stage}.log").write_text("\n".join(steps) + "\n")
    if got.group(1) != "0":
        for line in steps[-LAST_LINES:]:
            log(f"  | {TERMINAL_CONTROLS.sub('', line)}")
        raise PhaseFail(stage, f"stage {stage} of README's steps failed (exit {got.group(1)}"
                               f"{got.group(2)}); its output: {dirs.logs / f'stage-{stage}.log'}")
    log(f"  stage {stage}: done in {time.monotonic() - t0:.1f}s ({len(steps)} lines of output)")


def power_off(m: Master) -> None:
    t0 = time.monotonic()
    m.ctl.send("poweroff")
    if not m.vm.wait_exit(POWEROFF_S):
        raise PhaseFail(m.boot_name, f"still running {POWEROFF_S} s after systemctl poweroff", m)
    stop(m)
    log(f"  master ({m.boot_name}): powered off in {time.monotonic() - t0:.1f}s")


def stop(n) -> None:
    if n is None or n.vm is None:
        return
    n.vm.stop()
    for port in (n.ctl, getattr(n, "adm", None)):
        if port is not None:
            port.close()
