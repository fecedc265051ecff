# SPDX-License-Identifier: MIT
"""QEMU VMs (TCG) and their serial ports: the console log read as it grows, the command port,
a client booting a kernel and initramfs, and a PXE client with no disk and no kernel."""

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

from .netns import Netns
from .patterns import PROMPTS
from .paths import OVMF_CODE, OVMF_VARS, QEMU, Dirs
from .util import LAST_LINES, OUTPUT, Fail, die_with_parent, log


class Console:
    """The serial console log of a VM, read as it grows."""

    def __init__(self, path: Path):
        self.path = path
        self.pos = 0
        self.lines: list = []
        self.partial = ""
        self.scanned = 0  # lines checked against fail patterns

    def poll(self) -> None:
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return
        if not data:
            return
        self.pos += len(data)
        text = self.partial + data.decode(errors="replace").replace("\r", "")
        parts = text.split("\n")
        self.partial = parts.pop()
        self.lines.extend(parts)

    def tail(self, n: int = LAST_LINES) -> list:
        return (self.lines + ([self.partial] if self.partial else []))[-n:]


# Terminal controls in the console log: SeaBIOS's serial console and iPXE clear the screen
# and draw with ANSI sequences and backspaces; a tail printed with them could wipe the
# terminal it is printed on.
# ANSI escape sequences (CSI and two-byte), and with them every other control character.
ESCAPE_SEQUENCES = r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-~]"
TERMINAL_CONTROLS = re.compile(ESCAPE_SEQUENCES + r"|[\x00-\x08\x0b-\x1f\x7f]")


def on_screen(line: str) -> str:
    """A console line as a terminal shows it: without ANSI sequences, each backspace taking
    back the character before it (iPXE draws its download progress so, then overwrites it
    with "ok")."""
    shown: list = []
    for ch in re.sub(ESCAPE_SEQUENCES, "", line):
        if ch == "\b":
            if shown:
                shown.pop()
        else:
            shown.append(ch)
    return TERMINAL_CONTROLS.sub("", "".join(shown))


def print_tail(title: str, console: Optional[Console], clean: bool = False) -> None:
    """The last console lines of `title`; `clean`: without terminal controls (firmware's)."""
    if console is None:
        return
    console.poll()
    with OUTPUT:
        log(f"  --- last {LAST_LINES} console lines of {title} ({console.path}) ---")
        for line in console.tail():
            log(f"  | {TERMINAL_CONTROLS.sub('', line) if clean else line}")


class VM:
    """A QEMU process in the network namespace, its first serial port logged to
    <logs>/<name>.console.log. This class boots a kernel and initramfs; the subclasses boot
    otherwise and call _open and _launch the same way."""

    def __init__(self, dirs: Dirs, name: str, netns: Netns, nics: list, kernel: Path,
                 initrd: Path, append: str, mem: str, timeout_s: int,
                 disk: Optional[Path] = None, extra: Optional[list] = None):
        """`nics`: (MAC, bridge) per virtio NIC, in PCI order (the guest's eth0 first)."""
        self._open(dirs, name, netns)
        netdevs: list = []
        try:
            for i, (nic_mac, bridge) in enumerate(nics):
                tap = netns.add_tap(bridge)
                self.taps.append(tap)
                netdevs += ["-netdev", f"tap,id=net{i},ifname={tap},script=no,downscript=no",
                            "-device", f"virtio-net-pci,netdev=net{i},mac={nic_mac}"]
        except BaseException:
            for tap in self.taps:
                netns.del_tap(tap)
            raise
        cmd = [
            "ip", "netns", "exec", netns.name,
            "timeout", "--kill-after=10", str(timeout_s),
            QEMU, "-accel", "tcg", "-m", mem, "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
            "-kernel", kernel, "-initrd", initrd, "-append", append,
            "-serial", f"file:{self.console_path}",
        ] + netdevs
        if disk is not None:
            cmd += ["-drive", f"file={disk},format=raw,if=virtio"]
        cmd += extra or []
        self._launch(cmd, append)

    def _open(self, dirs: Dirs, name: str, netns: Netns) -> None:
        """The VM's name, namespace, console and QEMU logs; no taps yet."""
        self.name = name
        self.netns = netns
        self.console_path = dirs.logs / f"{name}.console.log"
        self.qemu_log = dirs.logs / f"{name}.qemu.log"
        self.console = Console(self.console_path)
        self.taps: list = []
        self.cursor = 0   # console lines before it are behind the last match (expect)

    def _launch(self, cmd: list, cmdline: str) -> None:
        """Starts QEMU (`cmd`) in a session of its own, dying with the harness; `cmdline`: the
        kernel command line, as reports name it."""
        self.cmdline = cmdline
        self.started = time.monotonic()
        with open(self.qemu_log, "wb") as qlog:
            self.proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                                         stdout=qlog, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def alive(self) -> bool:
        return self.proc.poll() is None

    def qemu_errors(self) -> str:
        try:
            return " ".join(self.qemu_log.read_text(errors="replace").split())[-300:]
        except OSError:
            return ""

    def expect(self, pattern: str, timeout_s: float, fail_on: tuple = ()) -> re.Match:
        """Waits for a console line matching `pattern` after the previous match; fails at once
        on a `fail_on` line anywhere. The unfinished last line is matched only by a prompt
        (patterns.PROMPTS): any other line may still be on its way, and a pattern that
        captures to its end would take half of it (CI saw a base64 answer cut so)."""
        rx = re.compile(pattern)
        fails = [re.compile(f) for f in fail_on]
        start_line = self.cursor
        deadline = time.monotonic() + timeout_s
        while True:
            self.console.poll()
            lines = self.console.lines
            for i in range(self.console.scanned, len(lines)):
                for f in fails:
                    if f.search(lines[i]):
                        raise Fail(f"{self.name}: unexpected console line: {lines[i].strip()}")
            self.console.scanned = len(lines)
            for i in range(start_line, len(lines)):
                m = rx.search(lines[i])
                if m:
                    self.cursor = i + 1
                    return m
            m = rx.search(self.console.partial) if pattern in PROMPTS else None
            if m:
                self.cursor = len(lines)
                return m
            if not self.alive():
                self.console.poll()
                if any(rx.search(x) for x in self.console.lines[start_line:]):
                    continue
                raise Fail(f"{self.name}: VM exited (status {self.proc.returncode}) before "
                           f"/{pattern}/ after {self.elapsed():.0f}s {self.qemu_errors()}".rstrip())
            if time.monotonic() > deadline:
                raise Fail(f"{self.name}: no /{pattern}/ within {timeout_s:.0f}s "
                           f"(VM up {self.elapsed():.0f}s)")
            time.sleep(0.2)

    def wait_exit(self, timeout_s: float) -> bool:
        try:
            self.proc.wait(timeout=timeout_s)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.alive():
            for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)
                except ProcessLookupError:
                    break
                if self.wait_exit(wait):
                    break
        self.console.poll()
        for tap in self.taps:
            self.netns.del_tap(tap)
        self.taps = []


class ControlPort:
    """The second serial port of a VM (a unix socket here, ttyS1 in the guest), where
    the test init (lib/server-init, lib/cluster-init) reads commands."""

    def __init__(self, path: Path):
        self.path = path
        self.sock: Optional[socket.socket] = None

    def qemu_args(self) -> list:
        return ["-chardev", f"socket,id=ctl,path={self.path},server=on,wait=off",
                "-serial", "chardev:ctl"]

    def connect(self) -> None:
        for _ in range(50):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.path))
                self.sock = s
                return
            except OSError:
                s.close()
                time.sleep(0.1)
        raise Fail(f"cannot connect to the command port {self.path}")

    def send(self, line: str) -> None:
        if self.sock is None:
            self.connect()
        self.sock.sendall(f"{line}\n".encode())

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        self.path.unlink(missing_ok=True)


class PxeVM(VM):
    """A client without disk or kernel: SeaBIOS runs its virtio NIC's option ROM (iPXE), which
    boots from the network. -nographic turns on SeaBIOS's serial console, so the BIOS and iPXE
    print on the serial console too. No -no-reboot: when network boot fails ("No bootable
    device") the machine resets and PXE boots again, as a real node does; Node.boot reports
    each such retry. (CI saw pxelinux's TFTP transfers to two clients stall at once under TCG,
    with the master idle, before the clients fetched over HTTP.)
    With uefi=True the firmware is OVMF and the NIC has no option ROM (romfile=): OVMF's own
    virtio driver and PXE boot it, as a real NIC's UEFI PXE would."""

    def __init__(self, dirs: Dirs, name: str, netns: Netns, nic_mac: str, mem: str,
                 timeout_s: int, extra: list, uefi: bool = False):
        self._open(dirs, name, netns)
        tap = netns.add_tap("br0")
        self.taps = [tap]
        cmd = [
            "ip", "netns", "exec", netns.name,
            "timeout", "--kill-after=10", str(timeout_s),
            QEMU, "-accel", "tcg", "-m", mem, "-smp", "1",
            "-nodefaults", "-no-user-config", "-nographic",
            "-boot", "n",
            "-serial", f"file:{self.console_path}",
            "-netdev", f"tap,id=net0,ifname={tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={nic_mac}" + (",romfile=" if uefi else ""),
        ] + extra
        self.monitor = dirs.work / f"{name}-{os.getpid()}.monitor"
        if uefi:
            nvram = dirs.work / f"{name}.OVMF_VARS.fd"
            shutil.copyfile(OVMF_VARS, nvram)
            cmd += ["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}",
                    "-drive", f"if=pflash,format=raw,unit=1,file={nvram}",
                    "-monitor", f"unix:{self.monitor},server=on,wait=off"]
        self.uefi = uefi
        self._launch(cmd, "(from boot.ipxe)")

    def reset(self) -> None:
        """Presses the reset button (QEMU's monitor: system_reset)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mon:
            mon.settimeout(10)
            mon.connect(str(self.monitor))
            mon.sendall(b"system_reset\n")
            time.sleep(0.5)

    def stop(self) -> None:
        super().stop()
        self.monitor.unlink(missing_ok=True)
