# SPDX-License-Identifier: MIT
"""Running distros' scenarios: the builds first (at once), then each scenario's server and
clients at once, on its own bridge; the scenarios one after the other (or all at once)."""

import fcntl
import os
import re
import shutil
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Optional

from ..addresses import EXPORT, SERVER_IP
from ..builds import Builds
from ..netns import Netns
from ..paths import AGENT_DIR, DISTROS_DIRS, KERNEL, Dirs
from ..patterns import (AGENT_ERROR_NOT_REPORTED, PANIC, POWER_DOWN, READY, RUN_INIT,
                        SD_EMERGENCY, SHELL_PROMPT)
from ..runner import preflight as run_preflight
from ..server import Server
from ..util import Fail, Interrupted, interrupt_on, join_all, log, run
from ..vm import VM, print_tail
from .checks import Facts, check_distinct, check_node
from .scenarios import SCENARIOS, Client, Scenario, root_image

NFSROOT = f"nfsroot={SERVER_IP}:{EXPORT}"
SERVER_MEM = "512"
CLIENT_MEM = {"systemd": "768", "runit": "512"}
VM_TIMEOUT_S = 1500          # hard limit of every QEMU process (a hang guard)
CLUSTERROOT_TIMEOUT = 120    # the agent's wait for DHCP and NFS (the server may boot later)
POWEROFF_S = 120             # from the report's last line to the end of the QEMU process
CLIENT_FAILS = (PANIC, AGENT_ERROR_NOT_REPORTED, SHELL_PROMPT, SD_EMERGENCY)
DONE_LINE = r"CRTEST done$"
STEPS = [(RUN_INIT, 180), (READY, CLUSTERROOT_TIMEOUT + 180),
         (r"CRTEST init: ", 450), (DONE_LINE, 630)]


@dataclass
class ClientRun:
    """A client of a scenario while it runs: its VM, its facts, the checks it failed."""

    client: Client
    vm: object = None
    error: Optional[str] = None
    facts: Optional[Facts] = None
    failed: list = field(default_factory=list)     # failed checks
    notes: list = field(default_factory=list)      # observations that fail nothing
    times: dict = field(default_factory=dict)

    def run(self, deadline_s: float) -> None:
        """Waits for the boot, the report and the power-off (a thread per node)."""
        try:
            for pattern, seconds in STEPS:
                self.vm.expect(pattern, seconds, CLIENT_FAILS)
                self.times[pattern] = self.vm.elapsed()
            done = self.vm.elapsed()
            if not self.vm.wait_exit(deadline_s):
                self.failed.append(f"poweroff: the VM still runs {deadline_s} s after the "
                                   "report")
            else:
                self.times["exit"] = self.vm.elapsed()
                self.vm.console.poll()
                tail = self.vm.console.lines[self.vm.cursor:] + [self.vm.console.partial]
                if not any(re.search(POWER_DOWN, x) for x in tail):
                    self.failed.append(f"poweroff: QEMU exited {self.times['exit'] - done:.0f} s "
                                       f"after the report without the kernel's '{POWER_DOWN}' "
                                       f"(status {self.vm.proc.returncode})")
                elif any(re.search(PANIC, x) for x in tail):
                    self.failed.append("poweroff: kernel panic during shutdown")
        except Fail as e:
            self.error = str(e).removeprefix(f"{self.vm.name}: ")
        finally:
            self.vm.console.poll()
            self.facts = Facts.parse(self.vm.console.lines)


def print_node_tail(node: ClientRun) -> None:
    print_tail(f"{node.client.hostname} ({node.vm.name})", node.vm.console)


def run_scenario(dirs: Dirs, sc: Scenario, netns: Netns, builds: Builds, rebuild: bool,
                 append: str, active: list) -> bool:
    t0 = time.monotonic()
    log(f"RUN  {sc.name}: {sc.doc}")
    server = None
    nodes = [ClientRun(c) for c in sc.clients]
    try:
        img = root_image(dirs, sc.kind, sc.clients, rebuild)
        disk = dirs.work / f"export-{sc.name}.img"
        run(["cp", "--sparse=always", img, disk])
        initrds = {c.config: builds.client_initramfs(c.config, c.flavor.builder)
                   for c in sc.clients}
        # The server and the clients at once: the clients' kernels and initramfs boot while
        # the server starts; the agent's DHCP waits (clusterroot.timeout) for
        # dnsmasq, which starts once the server is ready.
        t_server = time.monotonic()
        # run's server VM (lib/server-init) exporting a disk of ours, on a bridge of ours.
        server = Server(dirs, netns, builds.server_initramfs(), disk, name=f"{sc.name}-server",
                        bridge=sc.bridge, mem=SERVER_MEM, timeout_s=VM_TIMEOUT_S,
                        append="crtest.nosum")
        active.append(server)
        for node in nodes:
            c = node.client
            bootif = "BOOTIF=01-" + c.mac.replace(":", "-")
            node.vm = VM(dirs, f"{sc.name}-{c.hostname}", netns, [(c.mac, sc.bridge)], KERNEL,
                         initrds[c.config],
                         f"console=ttyS0 panic=-1 ip=dhcp {bootif} {NFSROOT} "
                         f"clusterroot.timeout={CLUSTERROOT_TIMEOUT}{append}",
                         CLIENT_MEM[sc.kind], VM_TIMEOUT_S)
            active.append(node.vm)
        server.wait_ready()
        server.set_dhcp(True)
        log(f"  server ready with DHCP in {time.monotonic() - t_server:.1f}s")
        join_all([threading.Thread(target=n.run, args=(POWEROFF_S,), daemon=True)
                  for n in nodes])
        tree = dirs.work / f"root-{sc.kind}"
        for n in nodes:
            if n.error is None:
                check_node(n, sc.kind, tree)
        check_distinct([n for n in nodes if n.error is None])
    except Fail as e:
        log(f"FAIL {sc.name}: {e} [{time.monotonic() - t0:.1f}s]")
        for n in nodes:
            if n.vm is not None:
                print_node_tail(n)
        if server is not None:
            print_tail(f"{sc.name}-server", server.vm.console)
        return False
    finally:
        for n in nodes:
            if n.vm is not None:
                n.vm.stop()
        if server is not None:
            server.stop()
        (dirs.work / f"export-{sc.name}.img").unlink(missing_ok=True)   # the server's copy
    return report_nodes(sc, nodes, t0)


def report_nodes(sc: Scenario, nodes: list, t0: float) -> bool:
    """A line per node, its failed checks and notes; whether the scenario passed."""
    bad = [n for n in nodes if n.error or n.failed]
    for n in nodes:
        c = n.client
        f = n.facts
        r = f.report if f else None
        ready = n.times.get(READY)
        done = n.times.get(DONE_LINE)
        off = n.times.get("exit")
        timing = (f"switch_root {ready:.0f}s, report {done:.0f}s, off {off:.0f}s"
                  if ready and done and off else
                  " ".join(f"{k}={v:.0f}s" for k, v in n.times.items()))
        log(f"  {c.hostname} ({c.flavor.name} image, {c.setup}): "
            + ("ok" if not (n.error or n.failed) else "FAILED")
            + f"; {timing}; nic {f.one('nic') if f else '?'} {' '.join(f.all('nic-addr')) if f else ''}"
            + (f"; state {f.one('system-state')}" if f and f.one("system-state") else "")
            + (f"; hostname {f.one('hostname')}" if f else "")
            + (f"; resolv {','.join(r.resolv)}" if r else ""))
        if n.error:
            log(f"    boot: {n.error}")
        for x in n.failed:
            log(f"    check failed: {x}")
        for x in n.notes:
            log(f"    note: {x}")
    if bad:
        reasons = []
        for n in bad:
            more = len(n.failed) - (0 if n.error else 1)
            reasons.append(f"{n.client.hostname}: {n.error or n.failed[0]}"
                           + (f" (+{more} more)" if more > 0 else ""))
        log(f"FAIL {sc.name}: {'; '.join(reasons)} [{time.monotonic() - t0:.1f}s]")
        for n in bad:
            print_node_tail(n)
        return False
    log(f"PASS {sc.name} [{time.monotonic() - t0:.1f}s]")
    return True


def preflight() -> Optional[str]:
    problem = run_preflight()
    if problem:
        return problem
    for tool in ("ssh-keygen", "systemctl", "du"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    agent = AGENT_DIR / "clusterroot"
    if not os.access(agent, os.X_OK):
        return f"no agent binary {agent}: build it with scripts/build-agent"
    return None


def run_all(dirs: Dirs, selected: list, netns: Netns, builds: Builds, rebuild: bool,
            parallel: bool, append: str, active: list, results: dict, t0: float) -> None:
    """Builds, then runs the scenarios one after the other (--parallel: all at once)."""
    # The images first, so that a broken build shows before any VM boots; the initramfs
    # images, the roots and the server image at once.
    jobs = [lambda cfg=cfg, builder=builder: builds.client_initramfs(cfg, builder)
            for cfg, builder in dict.fromkeys((c.config, c.flavor.builder)
                                              for sc in selected for c in sc.clients)]
    jobs += [lambda sc=sc: root_image(dirs, sc.kind, sc.clients, rebuild) for sc in selected]
    jobs.append(builds.server_initramfs)
    errors: list = []

    def build(job) -> None:
        try:
            job()
        except Fail as e:
            errors.append(str(e))

    join_all([threading.Thread(target=build, args=(j,), daemon=True) for j in jobs])
    for e in errors:
        log(f"  {e}")
    log(f"  builds done in {time.monotonic() - t0:.1f}s")

    def lane(sc: Scenario) -> None:
        results[sc.name] = run_scenario(dirs, sc, netns, builds, False, append, active)

    if parallel:
        join_all([threading.Thread(target=lane, args=(sc,), daemon=True) for sc in selected])
    else:
        for sc in selected:
            lane(sc)


def main(names: list, rebuild: bool = False, append: str = "", parallel: bool = False,
         dirs: Dirs = DISTROS_DIRS) -> int:
    """Runs the scenarios `names` (none: all); `append`: more kernel parameters for every
    client (debugging: crtest.hold, init=...); the exit status."""
    by_name = {sc.name: sc for sc in SCENARIOS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        log(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
        return 64
    selected = [by_name[n] for n in dict.fromkeys(names)] or SCENARIOS
    append = f" {append}" if append else ""

    problem = preflight()
    if problem:
        log(f"qemu-tests/distros: {problem}")
        return 2

    interrupt_on(signal.SIGTERM, signal.SIGHUP)

    dirs.work.mkdir(parents=True, exist_ok=True)
    # One run at a time: two would share .work/distros (the prepared roots, the logs).
    lock = open(dirs.work / ".lock", "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        log(f"qemu-tests/distros: another run holds {dirs.work / '.lock'} (pid {lock.read().strip()})")
        return 2
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    dirs.fresh_logs()

    t0 = time.monotonic()
    results: dict = {}
    builds = Builds(dirs, rebuild)
    # Every VM started (servers too), so that an interrupt stops them all whatever lane runs
    # them.
    active: list = []
    try:
        with Netns() as netns:
            try:
                run_all(dirs, selected, netns, builds, rebuild, parallel, append, active,
                        results, t0)
            finally:
                for vm in list(active):
                    vm.stop()
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({type(e).__name__} {e}); cleaned up")
        return 130
    passed = sum(1 for ok in results.values() if ok)
    failed = len(selected) - passed
    log(f"total {time.monotonic() - t0:.1f}s; logs in {dirs.logs}")
    log(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
