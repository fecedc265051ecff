# SPDX-License-Identifier: MIT
"""The admin test's run: its phases in order (install, master, clients, kernel, maintenance),
from --from to --until, with what a killed run left on the host cleaned up first."""

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Optional

from ..cluster.flow import poweroff, preflight as cluster_preflight
from ..cluster.node import NodeFail, print_tail
from ..netns import Netns
from ..paths import ADMIN_DIRS, AGENT_DIR, Dirs
from ..util import Fail, Interrupted, interrupt_on, log
from .clients import phase_clients, phase_kernel
from .disks import build
from .master import PhaseFail, power_off, stop
from .phases import mark_secrets, phase_install, phase_maintenance, phase_master
from .steps import PHASES, extract_stages


def preflight() -> Optional[str]:
    problem = cluster_preflight()
    if problem:
        return problem
    for tool in ("losetup", "e2fsck", "git"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not os.access(AGENT_DIR / "crctl", os.X_OK):
        return f"no {AGENT_DIR / 'crctl'}: build it with scripts/build-agent"
    return None


def run_phases(dirs: Dirs, readme: Path, start_phase: str, until_phase: str, secrets: bool,
               keep: bool) -> bool:
    """The phases from `start_phase` to `until_phase`; whether they passed."""
    t0 = time.monotonic()
    readme = readme.resolve()
    stages = extract_stages(readme)
    if "install" not in stages:
        raise Fail(f"{readme} has no block marked <!-- admin: install systemd|any -->")
    log(f"RUN  admin: README's master steps ({readme}: stages "
        f"{', '.join(f'{s} ({len(v[1])} blocks)' for s, v in stages.items())}), then the "
        "cluster checks")
    start = PHASES.index(start_phase)
    until = PHASES.index(until_phase)
    disks = build(dirs, stages, reuse=start > 0)
    master = None
    clients: list = []
    times = {}

    def timed(phase: str, fn, *a):
        t = time.monotonic()
        result = fn(*a)
        times[phase] = time.monotonic() - t
        return result

    with Netns() as netns:
        try:
            if start <= 0:
                timed("install", phase_install, dirs, netns, disks, stages)
            if until < 1:
                return True
            specs = mark_secrets(dirs, disks)
            if start <= 3:
                master = timed("master", phase_master, dirs, netns, disks, stages, start <= 1)
            if start <= 2 <= until:
                clients = timed("clients", phase_clients, dirs, netns, master, specs, secrets)
            if keep:
                log(f"  --keep: the VMs run on in network namespace {netns.name}; command "
                    f"ports in {dirs.work}/*.sock, *.adm; Ctrl-C stops them")
                while True:
                    time.sleep(3600)
            # Before stage kernel: the clients run on the one tree, which it turns into a store.
            for c in clients:
                poweroff(c)
                c.vm.stop()
            if start <= 3 <= until:
                timed("kernel", phase_kernel, dirs, netns, master, stages)
            if master is not None:
                power_off(master)
                master = None
            if until >= 4:
                timed("maintenance", phase_maintenance, dirs, netns, disks, stages)
        except PhaseFail as e:
            log(f"FAIL admin: {e.phase}: {e} [{time.monotonic() - t0:.1f}s]")
            if e.node is not None:
                print_tail(e.node)
            return False
        except NodeFail as e:
            log(f"FAIL admin: {e} [{time.monotonic() - t0:.1f}s]")
            print_tail(e.node)
            return False
        finally:
            for c in clients:
                if c.vm is not None:
                    c.vm.stop()
                    c.ctl.close()
            stop(master)
    log(f"  phases: {', '.join(f'{k} {v:.0f}s' for k, v in times.items())}")
    log(f"PASS admin [{time.monotonic() - t0:.1f}s]")
    return True


def main(readme: Path, start_phase: str = PHASES[0], until_phase: str = PHASES[-1],
         secrets: bool = False, keep: bool = False, dirs: Dirs = ADMIN_DIRS) -> int:
    """The admin test with the steps of `readme`; the exit status."""
    problem = preflight()
    if problem:
        log(f"qemu-tests/admin: {problem}")
        return 2

    interrupt_on(signal.SIGTERM, signal.SIGHUP)
    dirs.fresh_logs()
    # What a run that was killed left mounted: its host-side mounts of the disks.
    for d in dirs.work.glob("mnt-*"):
        subprocess.run(["umount", d], stderr=subprocess.DEVNULL)
        try:
            d.rmdir()   # never more: were it still mounted, its files are a disk's
        except OSError:
            pass
    for img in dirs.work.glob("disk-*.img"):
        loops = subprocess.run(["losetup", "-j", img], capture_output=True, text=True).stdout
        for loop in re.findall(r"^(/dev/loop\d+):", loops, re.M):
            subprocess.run(["losetup", "-d", loop])
    try:
        ok = run_phases(dirs, readme, start_phase, until_phase, secrets, keep)
    except Fail as e:
        log(f"FAIL admin: {e}")
        ok = False
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({type(e).__name__} {e}); cleaned up")
        return 130
    log(f"logs in {dirs.logs}")
    return 0 if ok else 1
