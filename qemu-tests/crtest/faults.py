# SPDX-License-Identifier: MIT
"""Faults in the middle of a boot: actions that a boot's `expect` list runs between its steps
(Boot.expect), on the server VM or on the client's link. Each is a function (runner, vm)."""

import time
from typing import Callable

from .addresses import SERVER_IP, ip_param, mac
from .scenario import INIT_RUNS, Boot, Scenario
from .util import Fail, log

Action = Callable[[object, object], None]


def nfsd(on: bool, after_s: float = 0) -> Action:
    """The server's nfsd started (after `after_s` seconds) or stopped, as a package upgrade
    restarts it: rpc.nfsd 0, then rpc.nfsd with its versions, in its grace period."""
    def act(runner, vm) -> None:
        if after_s:
            time.sleep(after_s)
        runner.ensure_server().set_nfsd(on)
    act.__name__ = f"nfsd_{'start' if on else 'stop'}"
    return act


def big_node_files(n: int, mib: int) -> Action:
    """Node n's node files in the export get an archive of a directory, crtest-big, of `mib`
    files of 1 MiB (mib 0: removed again)."""
    def act(runner, vm) -> None:
        runner.ensure_server().bigtar(mac(n), mib)
    act.__name__ = f"big_node_files_{n}_{mib}"
    return act


def slow_link(rate: str) -> Action:
    """What the client's first NIC receives limited to `rate` ("16mbit"), so that a copy
    takes long enough to be cut in the middle."""
    def act(runner, vm) -> None:
        runner.netns.shape(vm.taps[0], rate)
    act.__name__ = f"slow_link_{rate}"
    return act


# The lossy link of the lossy scenario: 5 % of the packets to the client lost, the others
# 200 ms late, give or take 50 ms, so that they also come out of order.
LOSSY = "delay 200ms 50ms loss 5%"


def lossy_link(spec: str) -> Action:
    """What the server sends goes through netem `spec` ("" for a clean link again)."""
    def act(runner, vm) -> None:
        runner.ensure_server().set_netem(spec)
    act.__name__ = "lossy_link" if spec else "clean_link"
    return act


def power_cut(runner, vm) -> None:
    """The node's power cut where it stands (its QEMU killed)."""
    vm.stop()


# The reboot loop: node 16's boots, one cut in the middle of its agent, then REBOOTS whole.
REBOOTS = 20
LOWER_MOUNTED = r"clusterroot: lower: nfs "


def reboot_loop(runner, sc: Scenario) -> list:
    """Node 16 is powered off in the middle of its agent (its lower just mounted), then boots
    REBOOTS times in a row: every boot must succeed, and what the boots leave on the server
    (crtest.server.Server.counts) must not grow from boot to boot. After each boot the server
    holds at most one more client record than before the first (the node's: its NFSv4 client
    name is the same at every boot, so each boot's record replaces the last), not counting
    an unconfirmed one, which nfsd drops within a lease period (10 s); one lease period after
    the last boot, not even that. The exports and the recovery records likewise; the locks
    must not grow from the first half of the boots to the second."""
    server = runner.ensure_server()
    cmdline = f"{ip_param(16)} nfsroot={SERVER_IP}:/srv/root clusterroot.timeout=60"
    before = server.counts()
    cut = Boot(16, cmdline, expect=[INIT_RUNS, (LOWER_MOUNTED, 90), power_cut],
               powers_off=False).for_flavor(sc.flavor)
    results = [(cut, runner.boot(sc, 1, cut))]
    seen = []

    def check(now: dict, when: str, key_of_clients: str) -> None:
        limits = {key_of_clients: before[key_of_clients] + 1,
                  "exports": before["exports"], "recovery": before["recovery"] + 1}
        over = {k: now[k] for k, limit in limits.items() if now[k] > limit}
        if over:
            raise Fail(f"{when}, the server holds {over}: more than one client's worth beyond "
                       f"its counts before the first boot, {before} (all now: {now})")

    for i in range(REBOOTS):
        node = Boot(16, cmdline).for_flavor(sc.flavor)
        results.append((node, runner.boot(sc, i + 2, node)))
        seen.append(server.counts())
        check(seen[-1], f"after boot {i + 1} of {REBOOTS}", "held")
    # The locks (nfsd's read delegations among them, as many as the files a boot happened to
    # hold) vary from boot to boot; a leak would grow them: the last half's most is not above
    # the first half's.
    half = REBOOTS // 2
    first, second = (max(c["locks"] for c in part) for part in (seen[:half], seen[half:]))
    if second > first:
        raise Fail(f"the locks grow from boot to boot: at most {first} after boots 1 to {half}, "
                   f"{second} after boots {half + 1} to {REBOOTS} ({[c['locks'] for c in seen]})")
    time.sleep(12)
    last = server.counts()
    check(last, "a lease period after the last boot", "clients")
    log(f"  {REBOOTS} boots after a power cut in the agent, all up; server counts before the "
        f"first {before}; after each boot at most {max(c['held'] for c in seen)} client records "
        f"held, locks {[c['locks'] for c in seen]}, {max(c['exports'] for c in seen)} "
        f"exports, {max(c['recovery'] for c in seen)} recovery records; a lease period after "
        f"the last {last}")
    return results


def home_full(runner, sc: Scenario) -> list:
    """/home full on the server: node 17 writes a MiB fsynced into it; node 18 then writes
    until it is full and must get ENOSPC; node 17's file must then be on the server as it
    wrote it (server-init's homesum)."""
    server = runner.ensure_server()
    root = f"nfsroot={SERVER_IP}:/srv/root clusterroot.timeout=60"
    writer = Boot(17, f"{ip_param(17)} {root} crtest.home=write").for_flavor(sc.flavor)
    filler = Boot(18, f"{ip_param(18)} {root} crtest.home=fill").for_flavor(sc.flavor)
    wrote = runner.boot(sc, 1, writer)
    said = wrote.value("home")
    if not said.startswith("wrote "):
        raise Fail(f"node17: /home: {said}")
    filled = runner.boot(sc, 2, filler)
    full = filled.value("home")
    if not full.startswith("full: "):
        raise Fail(f"node18 did not get ENOSPC filling /home: {full}")
    server.command("homesum a")
    m = server.vm.expect(r"SERVER homesum: (\S+) (\d+)", 30)
    if m.group(1) != said.split()[1] or m.group(2) != str(1 << 20):
        raise Fail(f"node17's fsynced /home/a is {m.group(1)} ({m.group(2)} bytes) on the server "
                   f"after node18 filled /home; it wrote {said.split()[1]} (1 MiB)")
    log(f"  node18: {full}; node17's fsynced MiB intact on the server ({m.group(1)[:16]}...)")
    return [(writer, wrote), (filler, filled)]
