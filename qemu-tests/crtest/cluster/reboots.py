# SPDX-License-Identifier: MIT
"""The master's reboots (issue 15): crtest-ride (lib/ride.rs) on each client, while the master
shuts down cleanly and boots again, then loses its power and boots again. Clients whose root
is a squashfs file in RAM (issue 27) read it on while the master is off."""

import os
import re
import signal
import threading
import time
from typing import Optional

from ..patterns import PANIC
from ..report import Report
from ..util import Fail, log
from .checks import nfsd_facts
from .node import MASTER_SERVICES, Node, NodeFail, check
from .variants import DEBIAN_POWEROFF_S, NFSD_WANT

RIDE_FSYNCED = re.compile(r"CRTEST ride (\S+): fsynced (\d+)$")
RIDE_PASS = re.compile(r"CRTEST ride reader: pass (\d+) ")
RIDE_ERROR = r"CRTEST ride \S+: error: "
RIDE_S = 300            # from the master's power-on to the clients' resumption, at most


def ride_file(node: Node) -> str:
    return f"/home/ride-{node.name}.log"


def ride_poll(node: Node) -> int:
    """Reads the node's new console lines: its writer's last fsynced record (returned) and
    its reader's last pass. A ride error (EIO, ESTALE, ...) fails the node."""
    node.vm.console.poll()
    lines = node.vm.console.lines
    for line in lines[node.ride_at:]:
        if re.search(RIDE_ERROR, line):
            raise NodeFail(node, f"{node.name}: {line.strip()}")
        if m := RIDE_FSYNCED.search(line):
            node.ride_last = int(m.group(2))
        elif m := RIDE_PASS.search(line):
            node.ride_pass = int(m.group(1))
    node.ride_at = len(lines)
    return node.ride_last


def ride_progress(clients: list, timeout_s: float = 120) -> None:
    """Waits until every client's writer has fsynced 3 more records and its reader read the
    shared root once more."""
    want = {c.name: (ride_poll(c) + 3, c.ride_pass + 1) for c in clients}
    deadline = time.monotonic() + timeout_s
    while True:
        late = [c for c in clients
                if ride_poll(c) < want[c.name][0] or c.ride_pass < want[c.name][1]]
        if not late:
            return
        if time.monotonic() > deadline:
            c = late[0]
            raise NodeFail(c, f"{c.name}: no progress within {timeout_s:.0f}s: writer at record "
                              f"{c.ride_last}, reader at pass {c.ride_pass}")
        time.sleep(0.2)


def ride_locks(clients: list, when: str) -> None:
    """Each client's locks (the writer's, and the one shared_home took) are still its own:
    the other client cannot take them. `when` says when, for the report."""
    for a, b in ((clients[0], clients[1]), (clients[1], clients[0])):
        for path in (ride_file(b), f"/home/{'b' if b is clients[1] else 'a'}.lock"):
            got = a.command(f"try {path}", f"try {path}")
            if got != "busy":
                raise NodeFail(a, f"{a.name}: took {b.name}'s lock on {path} {when} "
                                  f"('{got}')")
    log(f"  locks {when}: neither client can take the other's "
        f"({', '.join(ride_file(c) for c in clients)}, /home/a.lock, /home/b.lock)")


def boot_and_watch(master: Node, clients: list, boot_master, boot: str) -> None:
    """Powers the master on again while a thread watches the clients' writers: reports, for
    each, the time from the master's power-on to its first record fsynced after it, against
    the master's own power-on -> services started of this boot; and nfsd's grace period."""
    base = {c.name: ride_poll(c) for c in clients}
    resumed: dict = {}
    failed: list = []
    done = threading.Event()

    def watch() -> None:
        try:
            while not done.is_set() and len(resumed) < len(clients):
                for c in clients:
                    if c.name not in resumed and ride_poll(c) > base[c.name]:
                        resumed[c.name] = time.monotonic()
                time.sleep(0.1)
        except Fail as e:
            failed.append(e)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        boot_master(boot)
        watcher.join(RIDE_S)
    finally:
        done.set()
    if failed:
        raise failed[0]
    on = master.vm.started
    own = master.marks[MASTER_SERVICES]
    for c in clients:
        if c.name not in resumed:
            raise NodeFail(c, f"{c.name}: its writer did not resume within "
                              f"{time.monotonic() - on:.0f}s of the master's power-on "
                              f"(last fsynced record {c.ride_last})")
        took = resumed[c.name] - on
        log(f"  {c.name}: resumed {took:.1f}s after the master's power-on (record "
            f"{base[c.name] + 1}); the master's own boot to services started: {own:.1f}s; "
            f"ratio {took / own:.2f}")
    master.vm.console.poll()
    check(master, f"nfsd after this boot ({boot})",
          nfsd_facts(Report.parse(master.vm.console.lines)), NFSD_WANT)
    kmsg = master.command("kmsg grace", "kmsg grace")
    start = re.search(r"\[\s*(\d+\.\d+)\] NFSD: starting (\d+)-second grace period", kmsg)
    end = re.search(r"\[\s*(\d+\.\d+)\] NFSD: all clients done reclaiming, ending NFSv4 "
                    r"grace period", kmsg)
    if not start or not end:
        raise NodeFail(master, f"master: nfsd did not end its grace period once both clients "
                               f"had reclaimed: {kmsg}")
    log(f"  master: nfsd's {start[2]}-second grace period ended after "
        f"{float(end[1]) - float(start[1]):.1f}s, all recorded clients having reclaimed")


def reader_on_alone(clients: list, timeout_s: float = 60) -> None:
    """With the master off: each client's reader goes on reading the shared root (2 more
    passes; its root is in its RAM), while its writer waits for /home (no record fsynced)."""
    stalled = {c.name: ride_poll(c) for c in clients}
    start = {c.name: c.ride_pass for c in clients}
    deadline = time.monotonic() + timeout_s
    while any(c.ride_pass < start[c.name] + 2 for c in clients):
        if time.monotonic() > deadline:
            c = next(c for c in clients if c.ride_pass < start[c.name] + 2)
            raise NodeFail(c, f"{c.name}: its reader of the shared root stopped while the "
                              f"master was off: pass {c.ride_pass} after {timeout_s:.0f}s "
                              f"(pass {start[c.name]} at the master's poweroff)")
        time.sleep(0.2)
        for c in clients:
            ride_poll(c)
    for c in clients:
        check(c, "records fsynced to /home while the master was off", ride_poll(c),
              stalled[c.name])
    log("  master off: " + "; ".join(
        f"{c.name}'s reader of the shared root passes {start[c.name]} -> {c.ride_pass}, "
        f"its writer waits for /home at record {c.ride_last}" for c in clients))


def ride_out_reboots(master: Node, clients: list, boot_master, reboots: tuple = ("clean", "cut"),
                     root_in_ram: bool = False) -> None:
    """The clients write fsynced records to a file in /home they hold a lock on and read the
    shared root, while the master shuts down cleanly and boots again ("clean" in `reboots`),
    then loses its power and boots again ("cut"): they resume without a restart, no call
    fails, the locks are still theirs, and the master's disk holds every record.
    `root_in_ram`: the clients' readers go on while the master is off (reader_on_alone)."""
    log(f"RUN  ride: the clients write, hold locks and read while the master "
        f"{' and then '.join(REBOOTS[r] for r in reboots)}")
    first_ready = master.ready_s
    for c in clients:
        c.ctl.send(f"ride-write {ride_file(c)}")
        c.vm.expect(rf"CRTEST ride {c.name}: locked ", 60, (PANIC, RIDE_ERROR))
        c.ctl.send("ride-read /usr/sbin")
        c.vm.expect(r"CRTEST ride reader: pass 1 ", 60, (PANIC, RIDE_ERROR))
    ride_progress(clients)
    ride_locks(clients, "before the reboot")
    if "clean" in reboots:
        clean_reboot(master, clients, boot_master, root_in_ram)
    cut = power_cut(master, clients, boot_master) if "cut" in reboots else None
    ride_stop(master, clients, cut)
    master.ready_s = first_ready   # the table compares the first boots


REBOOTS = {"clean": "shuts down cleanly and boots again", "cut": "loses its power and boots again"}


def clean_reboot(master: Node, clients: list, boot_master, root_in_ram: bool) -> None:
    log("RUN  reboot: the master shuts down cleanly and boots again while the clients write, "
        "hold locks and read")
    ride_progress(clients)
    master.ctl.send("poweroff")
    t0 = time.monotonic()
    if not master.vm.wait_exit(DEBIAN_POWEROFF_S):
        raise NodeFail(master, f"master: still running {DEBIAN_POWEROFF_S} s after poweroff")
    master.vm.stop()
    master.ctl.close()
    stopped = [x for x in master.vm.console.lines if "CRTEST master: stopped" in x]
    if not stopped:
        raise NodeFail(master, "master: its rc.shutdown did not finish")
    at = ", ".join(f"{c.name} at record {ride_poll(c)}" for c in clients)
    log(f"  master: shut down cleanly in {time.monotonic() - t0:.1f}s; {at}")
    if root_in_ram:
        reader_on_alone(clients)
    boot_and_watch(master, clients, boot_master, "-reboot")
    ride_progress(clients)
    ride_locks(clients, "reclaimed after the reboot")


def power_cut(master: Node, clients: list, boot_master) -> dict:
    """The master's power goes while the clients write; it boots again. Each client's last
    record fsynced before the cut."""
    log("RUN  power cut: the master's power goes while the clients write; it boots again")
    ride_progress(clients)
    cut = {c.name: ride_poll(c) for c in clients}
    os.killpg(master.vm.proc.pid, signal.SIGKILL)
    master.vm.wait_exit(10)
    master.vm.stop()
    master.ctl.close()
    at = ", ".join(f"{name}'s record {seq}" for name, seq in cut.items())
    log(f"  master: power cut with {at} fsynced")
    boot_and_watch(master, clients, boot_master, "-cut")
    ride_progress(clients)
    ride_locks(clients, "reclaimed after the power cut")
    return cut


def ride_stop(master: Node, clients: list, cut: Optional[dict]) -> None:
    """The writers stop; the master's disk holds every record each fsynced (`cut`: those
    fsynced before a power cut), and nothing else."""
    last = {}
    for c in clients:
        got = c.command("ride-stop", "ride-stop")
        c.vm.console.poll()
        ends = [m for x in c.vm.console.lines
                if (m := re.search(rf"CRTEST ride {c.name}: stopped after (\d+)", x))]
        if got != "ok" or not ends:
            raise NodeFail(c, f"{c.name}: its writer did not stop: {got}")
        ride_poll(c)
        last[c.name] = int(ends[-1][1])
    for c in clients:
        got = master.command(f"ride-check {ride_file(c)} {c.name}",
                             f"ride-check {ride_file(c)}")
        before = f", 1..{cut[c.name]} of them before the power cut" if cut else ""
        if got != f"ok {last[c.name]}":
            raise NodeFail(master, f"master: {ride_file(c)} on its disk: {got}; {c.name} "
                                   f"fsynced records 1..{last[c.name]}{before}")
        log(f"  master: {ride_file(c)} holds records 1..{last[c.name]}, every one {c.name} "
            f"fsynced{before}, and nothing else")
