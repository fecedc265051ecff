# SPDX-License-Identifier: MIT
"""Where things are: the checkout, the kernel the VMs boot, the agent build, the tools, and each
program's work and log directories."""

import functools
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

QT = Path(__file__).resolve().parent.parent   # qemu-tests/
REPO = QT.parent
LIB = QT / "lib"
CONFIG = QT / "config"


def setup_paths() -> dict:
    """The paths outside the checkout that scripts/setup writes (scripts/paths names them, and
    the environment overrides them), as NAME -> value."""
    out = subprocess.run([REPO / "scripts" / "paths"], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines())


def newest_kernel() -> str:
    """The newest Debian kernel in /boot (linux-image-amd64), e.g. 6.1.0-56-amd64."""
    found = [p.name[len("vmlinuz-"):] for p in Path("/boot").glob("vmlinuz-*-amd64")
             if (Path("/lib/modules") / p.name[len("vmlinuz-"):]).is_dir()]

    def key(v: str) -> list:
        return [int(x) if x.isdigit() else 0 for x in re.split(r"[.-]", v)]

    return max(found, key=key) if found else "missing"


KVER = os.environ.get("CRTEST_KVER") or newest_kernel()
KERNEL = Path(f"/boot/vmlinuz-{KVER}")
AGENT_DIR = REPO / "target" / "x86_64-unknown-linux-musl" / "release"
QEMU = os.environ.get("CRTEST_QEMU", "qemu-system-x86_64")
# UEFI clients: Debian's OVMF (package ovmf), a fresh copy of its variables for each VM.
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


@functools.cache
def mkinitcpio_prefix() -> str:
    """The real mkinitcpio every image is built with (scripts/setup installs it there)."""
    return setup_paths()["CLUSTERROOT_MKINITCPIO_PREFIX"]


@dataclass(frozen=True)
class Dirs:
    """Where a program writes: `work` holds its builds, disks and sockets, `logs` the console
    logs of its VMs. Every constructor that writes takes one."""

    work: Path
    logs: Path

    @classmethod
    def under(cls, work: Path) -> "Dirs":
        return cls(work, work / "logs")

    def fresh_logs(self) -> None:
        """The work directory made, the log directory emptied: a console is read from its
        file's start, so an old one would match."""
        self.work.mkdir(parents=True, exist_ok=True)
        if self.logs.exists():
            shutil.rmtree(self.logs)
        self.logs.mkdir(parents=True)


# Each program's own, so that they may run at the same time (run empties its logs/ when it
# starts).
RUN_DIRS = Dirs.under(QT / ".work")
CLUSTER_DIRS = Dirs.under(QT / ".work" / "cluster")
DISTROS_DIRS = Dirs.under(QT / ".work" / "distros")
ADMIN_DIRS = Dirs.under(QT / ".work" / "admin")
