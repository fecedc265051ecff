# SPDX-License-Identifier: MIT
"""The clients' phases: node1 and node2 PXE-boot from the master and pass the cluster test's
checks, crctl render and diff on the master, the secrecy probe (clients); then stage kernel
on the master and node1 booting the new version's kernel (kernel)."""

import base64
import os
import re
import threading

from ..cluster.checks import check_client, render_matches, shared_home
from ..cluster.build import RENDER_LINE
from ..cluster.flow import poweroff, secrets as probe_secrets
from ..cluster.node import CLIENT_STEPS, Node, NodeFail, check, steps_for
from ..cluster.variants import CLIENT_MEM, CLIENTS, MASTER_IP
from ..netns import Netns
from ..paths import Dirs
from ..report import Report
from ..util import Fail, log
from ..vm import ControlPort, PxeVM
from .master import VARIANT, VM_TIMEOUT_S, Master, PhaseFail, run_stage, sh


def crctl_render(m: Master, name: str, mac: str) -> list:
    """crctl render NODE on the master, with the sha256 of each node file it names (read on
    the master): [(path, sha256 or None)], as cluster.render_matches takes it."""
    rc, out = sh(m, f"crctl render {name}; echo \"CRTEST render-exit $?\"; "
                    f"cd /run/rootfs/lower/srv/nfs/nodes/{mac} && find . -type f -exec sha256sum {{}} +")
    m_exit = re.search(r"CRTEST render-exit (\d+)", out)
    if not m_exit or m_exit.group(1) != "0":
        raise PhaseFail("clients", f"crctl render {name} on the master failed:\n{out}", m)
    sums = {}
    for line in out.splitlines():
        if mm := re.match(r"([0-9a-f]{64})  \./(.*)$", line):
            sums[f"/etc/{mm.group(2)}"] = mm.group(1)
    files = []
    for line in out.splitlines():
        mm = RENDER_LINE.match(line)
        if not mm:
            continue
        path, source = mm.group(2), mm.group(3)
        if not source.startswith("node files"):
            files.append((path, None))
        elif path in sums:
            files.append((path, sums[path]))
    listed = {p for p, h in files if h}
    if not listed or listed != set(sums):
        raise PhaseFail("clients", f"crctl render {name} lists {sorted(listed)}, its node files "
                                   f"hold {sorted(sums)}:\n{out}", m)
    return files


def crctl_diff(m: Master, node, mac: str) -> None:
    """crctl diff NODE on the master, with the client's boot record copied there: a reboot
    changes nothing; once the master's copy of its hostname changes, it names that file."""
    record = {}
    for f in ("state", "node-files"):
        got = node.fetch(f"b64 /run/clusterroot/{f}", f"b64 /run/clusterroot/{f}")
        if got is None:
            raise PhaseFail("clients", f"{node.name}: /run/clusterroot/{f} is missing", node)
        record[f] = base64.b64encode(got).decode()
    d = f"/run/crtest/record-{node.name}"
    host = f"/run/rootfs/lower/srv/nfs/nodes/{mac}/hostname"
    rc, out = sh(m, f"""
set -e
mkdir -p -m 0700 {d}
echo {record['state']} | base64 -d >{d}/state
echo {record['node-files']} | base64 -d >{d}/node-files
set +e
crctl diff {node.name} --state {d}; echo "CRTEST diff1 $?"
cp -p {host} /run/crtest/hostname.keep
echo '# changed on the master' >>{host}
crctl diff {node.name} --state {d}; echo "CRTEST diff2 $?"
cat /run/crtest/hostname.keep >{host}
""")
    first, _, second = out.partition("CRTEST diff1 ")
    if not first or "a reboot changes nothing" not in first or not second.startswith("0"):
        raise PhaseFail("clients", f"crctl diff {node.name} right after its boot, on the "
                                   f"master: expected exit 0 and no change:\n{out}", m)
    if not re.search(r"^changed\s+/etc/hostname\s+contents$", second, re.M) \
            or "CRTEST diff2 3" not in second:
        raise PhaseFail("clients", f"crctl diff {node.name} after its hostname changed on the "
                                   f"master: expected exit 3 and /etc/hostname changed:\n{out}", m)
    log(f"  {node.name}: crctl diff on the master, with its boot record: nothing, then "
        "/etc/hostname once changed")


def phase_clients(dirs: Dirs, netns: Netns, m: Master, specs: dict, secrets: bool) -> list:
    log(f"RUN  clients: {', '.join(n for n, _, _ in CLIENTS)} PXE boot from the master")
    clients = [Node(name, mac, ip) for name, mac, ip in CLIENTS]
    for c in clients:
        c.ctl = ControlPort(dirs.work / f"{c.name}-{os.getpid()}.sock")
        c.vm = PxeVM(dirs, c.name, netns, c.mac, CLIENT_MEM, VM_TIMEOUT_S, c.ctl.qemu_args())
    threads = [threading.Thread(target=c.boot, args=(steps_for(VARIANT, CLIENT_STEPS),),
                                daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    try:
        for c in clients:
            if c.error:
                raise NodeFail(c, c.error)
            log(f"  {c.name} up in {c.vm.elapsed():.1f}s (switch_root after {c.ready_s:.1f}s)")
            c.vm.console.poll()
            c.report = Report.parse(c.vm.console.lines)
            try:
                check_client(c, VARIANT)
            except NodeFail:
                raise
            except Fail as e:
                raise NodeFail(c, f"{c.name}: {e}")
        if clients[0].report.state.get("nfs_identity") == clients[1].report.state.get("nfs_identity"):
            raise NodeFail(clients[1], "the clients share an NFSv4 client identity")
        log("  node1, node2: overlay over the master's NFS root, node files, host names, "
            "/home over NFSv4, multi-user with no failed unit")
        log("RUN  /home: a file from each client read on the other; a lock held on each")
        shared_home(clients[0], clients[1], m)
        log("RUN  render: each client's /etc is what crctl render NODE said on the master")
        for c in clients:
            render_matches(c, crctl_render(m, c.name, c.mac))
        log("RUN  diff: crctl diff NODE on the master, with each client's boot record")
        for c in clients:
            crctl_diff(m, c, c.mac)
        # The image's own files are read on the master's disk (phase maintenance), unless
        # --secrets asks for the whole probe.
        scope = "" if secrets else "--image-on-disk "
        log("RUN  secrets: node1 looks for every other node's files, as root and as nobody"
            + ("" if secrets else " (the image itself: phase maintenance, on the disk)"))
        c = clients[0]
        others = " ".join(specs[mac] for mac in specs if mac != c.mac)
        probe_secrets(c, f"secrets {scope}{specs[c.mac]} {MASTER_IP} {others}")
    except NodeFail as e:
        raise PhaseFail("clients", str(e), e.node)
    return clients


def phase_kernel(dirs: Dirs, netns: Netns, m: Master, stages: dict) -> None:
    """Stage kernel on the running master (README's image versions and a kernel update in a
    new version), then node1 boots again: the new version, the new kernel, its modules."""
    if "kernel" not in stages:
        log("  kernel: README has no block for stage kernel: the kernel update is not tested")
        return
    log("RUN  kernel: image versions and a kernel update on the master, then node1 boots again")
    rc, old = sh(m, "uname -r")
    run_stage(dirs, m, "kernel", stages)
    rc, listing = sh(m, "crctl image list")
    log(f"  master: crctl image list: {' | '.join(listing.strip().splitlines())}")
    name, mac, ip = CLIENTS[0]
    c = Node(name, mac, ip)
    c.ctl = ControlPort(dirs.work / f"{name}-kernel-{os.getpid()}.sock")
    c.vm = PxeVM(dirs, f"{name}-kernel", netns, mac, CLIENT_MEM, VM_TIMEOUT_S, c.ctl.qemu_args())
    try:
        c.boot(steps_for(VARIANT, CLIENT_STEPS))
        if c.error:
            raise NodeFail(c, c.error)
        c.vm.console.poll()
        c.report = Report.parse(c.vm.console.lines)
        r = c.report
        version = r.state.get("image")
        kernel = c.command("read /proc/sys/kernel/osrelease", "read /proc/sys/kernel/osrelease")
        modules = c.command(f"sum /lib/modules/{kernel}/modules.dep", "sum")
        check(c, "state image_choice", r.state.get("image_choice"), "default")
        check(c, "the lower (the store's default version)", r.mount("/run/rootfs/lower")[:2],
                 ("nfs4", f"{MASTER_IP}:/srv/nfs/images/{version}"))
        if not version or version == "1":
            raise NodeFail(c, f"{name} booted version {version} of the store, not the one "
                                 "the kernel update published")
        if kernel == old.strip():
            raise NodeFail(c, f"{name} runs kernel {kernel}, the master's own: the new "
                                 "version's kernel did not reach the TFTP root it boots from")
        if modules.endswith("=-"):
            raise NodeFail(c, f"{name} runs kernel {kernel} without its modules in the "
                                 f"version it mounts: {modules}")
        check(c, "is-system-running", r.values.get("system"), "running")
        check(c, "failed units", r.values.get("failed-units"), "")
        log(f"  {name}: version {version} of the store, kernel {kernel} (the master's: "
            f"{old.strip()}), its modules there, multi-user with no failed unit")
        poweroff(c)
    except NodeFail as e:
        raise PhaseFail("kernel", str(e), e.node)
    finally:
        c.vm.stop()
        c.ctl.close()
