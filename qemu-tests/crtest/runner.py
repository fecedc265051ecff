# SPDX-License-Identifier: MIT
"""Running run's scenarios: the builds first, then three lanes at once (the scenarios that
change the server VM on one, the others spread over all three), each booting its scenarios'
nodes and checking them."""

import os
import re
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

from .addresses import mac
from .builds import DISK_UUIDS, Builds, zfs_missing
from .netns import Netns
from .paths import KERNEL, KVER, QEMU, RUN_DIRS, Dirs
from .report import Report
from .scenario import boot_each, Boot, Scenario
from .server import Server
from .util import Fail, Interrupted, Skip, interrupt_on, log, log_table, sha256
from .vm import VM, Console, print_tail

CLIENT_MEM = "512"


class Runner:
    """One lane: its scenarios one after the other, its server VM started on first use and
    kept, its client VMs on its bridge."""

    def __init__(self, dirs: Dirs, builds: Builds, netns: Netns, bridge: str = "br0"):
        self.dirs = dirs
        self.builds = builds
        self.netns = netns
        self.bridge = bridge       # where this lane's nodes are, unless a node names its own
        self.server: Optional[Server] = None
        self.server_error: Optional[str] = None
        self.vms: list = []

    def ensure_server(self) -> Server:
        if self.server_error:
            raise Fail(self.server_error)
        if self.server is None:
            t0 = time.monotonic()
            try:
                self.server = Server.for_scenarios(self.dirs, self.netns, self.builds, self.bridge)
                sums = self.server.wait_ready()
            except Fail as e:
                self.server_error = f"server VM: {e}"
                self.print_tail(self.server.vm.name if self.server else "server",
                                self.server.vm.console if self.server else None)
                raise Fail(self.server_error)
            pool = ", ZFS pool on /dev/vdb" if self.server.zfs_disk else ""
            log(f"  server ready in {time.monotonic() - t0:.1f}s (export {sums}{pool})")
        return self.server

    @staticmethod
    def print_tail(title: str, console: Optional[Console]) -> None:
        print_tail(title, console)

    def boot(self, sc: Scenario, idx: int, node: Boot) -> Report:
        if node.zfs:
            zfs_missing()
        initrd = self.builds.client_initramfs(node.config, node.flavor.builder)
        disk = None
        if node.zfs:
            disk = self.builds.zfs_disk(f"disk-zfs-{sc.name}")
        elif node.disk == "cstore":
            disk = self.builds.store_image(f"disk-cstore-{self.bridge}")
        elif node.disk:
            # One per lane: the lanes boot at the same time, and a VM may write to its disk.
            disk = self.builds.ext4_image(f"disk-{node.disk}-{self.bridge}", node.disk,
                                          DISK_UUIDS.get(node.disk))
        before = sha256(disk) if (disk and sc.disk_unchanged) else None
        name = f"{sc.name}-{idx}-node{node.n}"
        vm = self.start(name, node, initrd, disk)
        try:
            for step in node.expect:
                if callable(step):
                    step(self, vm)      # an action between the steps (crtest.faults)
                else:
                    vm.expect(step[0], step[1], node.fail_on)
            if node.powers_off and not vm.wait_exit(30):
                raise Fail(f"{name}: did not power off after CRTEST done")
            vm.console.poll()
            report = Report.parse(vm.console.lines)
            if node.check:
                try:
                    node.check(report)
                except Fail as e:
                    raise Fail(f"{name}: {e}")
        except Fail:
            vm.stop()
            self.print_tail(name, vm.console)
            raise
        finally:
            vm.stop()
            self.vms.remove(vm)
        if before is not None and sha256(disk) != before:
            raise Fail(f"{name}: the disk holding the lower was modified")
        if node.check_disk:
            try:
                node.check_disk(disk)
            except Fail as e:
                raise Fail(f"{name}: disk after power-off: {e}")
        if node.zfs:
            disk.unlink()   # 256 MiB, and the next scenario makes its own copy
        return report

    def start(self, name: str, node: Boot, initrd: Path, disk: Optional[Path] = None) -> VM:
        """Powers a client VM on; stopped by close() if nothing stops it before."""
        cmdline = node.cmdline.replace("{live}", self.builds.live_name)
        vm = VM(self.dirs, name, self.netns, node.nics or [(mac(node.n), self.bridge)], KERNEL,
                initrd, " ".join(filter(None, ["console=ttyS0", node.flavor.panic, cmdline])),
                CLIENT_MEM, node.vm_timeout,
                disk=disk)
        self.vms.append(vm)
        return vm

    def run(self, sc: Scenario) -> list:
        """Boots the scenario's nodes (its flow); returns (node, report) per node."""
        server = self.ensure_server() if sc.server else None
        if server is not None:
            # Every scenario says what it needs, so their order does not matter.
            server.set_nfsd(True)
            server.set_netem("")
            server.set_versions(sc.refuse_versions)
            server.set_dhcp(sc.dhcp, sc.dhcp_delay)
        checks_export = sc.server and sc.server_unchanged
        sum_before = server.tree_sum(f"{sc.name}-before") if checks_export else None
        server_mark = len(server.vm.console.lines) if server is not None else 0
        other = (self.netns.add_host(self.bridge, *sc.other_host) if sc.other_host
                 else None)
        try:
            results = sc.flow(self, sc)
        finally:
            if other:
                self.netns.del_link(other)
        if sc.check_all:
            sc.check_all(results)
        if sc.server_expect:
            server.vm.console.poll()
            seen = server.vm.console.lines[server_mark:]
            for pattern in sc.server_expect:
                if not any(re.search(pattern, line) for line in seen):
                    self.print_tail("server", server.vm.console)
                    raise Fail(f"the server console shows no /{pattern}/")
        if checks_export:
            after = server.tree_sum(f"{sc.name}-after")
            if after != sum_before:
                raise Fail(f"the export changed on the server: sum {sum_before} before, "
                           f"{after} after")
        return results

    def close(self) -> None:
        for vm in list(self.vms):
            vm.stop()
        if self.server is not None:
            self.server.stop()


def demo_table(results: list) -> None:
    """One line per node: what the demo shows a person."""
    rows = [("node", "MAC", "host name", "lower", "s to switch_root")]
    for node, r in results:
        lower = r.mounts.get("/run/rootfs/lower", ("?", "?", ""))
        rows.append((f"node{node.n}", mac(node.n), r.values.get("hostname-file", "?"),
                     f"{lower[0]} {lower[1]}",
                     f"{r.ready_at:.1f}" if r.ready_at is not None else "?"))
    log_table(rows)


def preflight() -> Optional[str]:
    if os.geteuid() != 0:
        return "must run as root (network namespace, taps, file owners)"
    for tool in (QEMU, "ip", "timeout", "mke2fs", "debugfs", "cpio", "modprobe"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    if not KERNEL.exists():
        return f"no kernel {KERNEL} (install linux-image-{KVER})"
    return None


def uses_server(sc: Scenario) -> bool:
    return sc.server or sc.dhcp


def portable(sc: Scenario) -> bool:
    """A scenario that only reads from the server (no NFS versions refused, no DHCP, no pool,
    no flow of its own that changes it) can run on any lane's server; so can one that says
    so (Scenario.portable: what it changes on the server, it undoes, and every lane's server
    can do it: dnsmasq, netem, nfsd's restart)."""
    if sc.portable is not None:
        return uses_server(sc) and sc.portable
    return (uses_server(sc) and not sc.dhcp and not sc.refuse_versions
            and not sc.server_zfs and sc.flow is boot_each)


# The lanes and their bridges: the same node MAC in two lanes never meets on one bridge.
LANE_BRIDGES = {"server": "br0", "local": "brl", "third": "brm"}


def split_lanes(selected: list) -> tuple:
    """(own, shared): the scenarios that change the server VM, in order, are the "server"
    lane's own (on br0); every other one (portable, or needing no server: local disks, ZFS,
    servers that do not answer) is shared, most boots first, and each lane takes the next
    as soon as it is free, the server lane once its own are done; a lane starts a server of
    its own on its bridge when it takes a portable one. Taken so, the lanes end within a
    scenario of each other (split in advance by boots, one lane ran alone for its last 110 s,
    one core idle; and a flow's boots count, not its empty node list: reboot-loop's 21 boots,
    taken last, ran alone for 250 s). Three lanes on two cores: a lane waits on its server, on a timeout or on
    a firmware as often as it computes (two lanes kept 1.6 cores busy)."""
    own: dict = {lane: [] for lane in LANE_BRIDGES}
    own["server"] = [sc for sc in selected if uses_server(sc) and not portable(sc)]
    shared = sorted((sc for sc in selected if portable(sc) or not uses_server(sc)),
                    key=lambda sc: -sc.cost)
    return own, shared


class SharedQueue:
    """The scenarios any lane may run, taken one at a time by whichever lane is free."""

    def __init__(self, scenarios: list):
        self.scenarios = list(scenarios)
        self.lock = threading.Lock()

    def take(self) -> Optional[Scenario]:
        with self.lock:
            return self.scenarios.pop(0) if self.scenarios else None


def prebuild_shared(builds: Builds, selected: list) -> None:
    """What both lanes would otherwise build on first use: the shared root and the ZFS pool
    (the server VM's second disk too, if a selected scenario has server_zfs)."""
    try:
        builds.shared_root()
        server_zfs = any(sc.server_zfs for sc in selected)
        if server_zfs or any(n.zfs for sc in selected for n in sc.nodes):
            zfs_missing()
            builds.zfs_pool_image()
            builds.server_zfs = server_zfs
        if any(sc.server_live for sc in selected):
            builds.live_disk()
            builds.server_live = True
    except (Fail, Skip) as e:
        log(f"  {e}")   # the scenarios that need it fail (or skip) with this reason


LANE_COUNTS = threading.Lock()


def lane_scenarios(own: list, shared: SharedQueue):
    """A lane's own scenarios, then the shared ones it takes while any are left."""
    yield from own
    while (sc := shared.take()) is not None:
        yield sc


def run_lane(runner: Runner, own: list, shared: SharedQueue, counts: dict, demo: bool) -> None:
    """Runs the lane's `own` scenarios one after the other, then the `shared` ones it takes;
    adds to `counts`."""
    for sc in lane_scenarios(own, shared):
        t0 = time.monotonic()
        log(f"RUN  {sc.name}: {sc.doc}")
        try:
            results = runner.run(sc)
            if demo:
                demo_table(results)
        except Fail as e:
            outcome = "failed"
            log(f"FAIL {sc.name}: {e} [{time.monotonic() - t0:.1f}s]")
            if sc.server and runner.server is not None:
                runner.server.diagnose()
        except Skip as e:
            outcome = "skipped"
            log(f"SKIP {sc.name}: {e}")
        else:
            outcome = "passed"
            log(f"PASS {sc.name} [{time.monotonic() - t0:.1f}s]")
        with LANE_COUNTS:
            counts[outcome] += 1


def main(scenarios: list, names: list, rebuild: bool = False, demo: bool = False,
         serial: bool = False, dirs: Dirs = RUN_DIRS) -> int:
    """Runs the scenarios `names` of `scenarios` (none: all); the exit status."""
    by_name = {sc.name: sc for sc in scenarios}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        log(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
        return 64
    selected = [by_name[n] for n in names] or scenarios

    problem = preflight()
    if problem:
        log(f"qemu-tests: {problem}")
        return 2

    interrupt_on(signal.SIGTERM, signal.SIGHUP)
    dirs.fresh_logs()

    counts = {"passed": 0, "failed": 0, "skipped": 0}
    t_all = time.monotonic()
    builds = Builds(dirs, rebuild)
    # The lanes run at once, one client VM each, on bridges of their own (split_lanes says
    # which scenarios are a lane's own and which any lane takes).
    own, shared_list = split_lanes(selected)
    if serial or demo:
        own, shared_list = {"serial": selected}, []
    shared = SharedQueue(shared_list)
    runners: list = []
    try:
        with Netns() as netns:
            try:
                # Build first, so a broken build shows before any VM boots; a scenario whose
                # image failed to build fails with that reason. The lanes share these builds.
                # Two at a time: each is one process mostly (a generator, then zstd), and
                # none shares a path with another (each its own temporary directory).
                def client(config: str, builder: str) -> None:
                    try:
                        builds.client_initramfs(config, builder)
                    except Fail as e:
                        log(f"  {e}")

                with ThreadPoolExecutor(max_workers=2) as pool:
                    jobs = [pool.submit(prebuild_shared, builds, selected)]
                    jobs += [pool.submit(client, config, builder) for config, builder in
                             dict.fromkeys((n.config, n.flavor.builder)
                                           for sc in selected for n in sc.nodes)]
                    for job in jobs:
                        job.result()
                threads = []
                for lane, own_scenarios in own.items():
                    runner = Runner(dirs, builds, netns, LANE_BRIDGES.get(lane, "br0"))
                    runners.append(runner)
                    threads.append(threading.Thread(
                        target=run_lane, args=(runner, own_scenarios, shared, counts, demo),
                        name=lane, daemon=True))
                for t in threads:
                    t.start()
                for t in threads:
                    while t.is_alive():
                        t.join(0.5)   # signals reach the main thread meanwhile
            finally:
                for runner in runners:
                    runner.close()
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({type(e).__name__} {e}); cleaned up")
        return 130
    passed, failed, skipped = counts["passed"], counts["failed"], counts["skipped"]
    summary = f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")
    log(f"total {time.monotonic() - t_all:.1f}s; logs in {dirs.logs}")
    log(summary)
    return 0 if failed == 0 else 1
