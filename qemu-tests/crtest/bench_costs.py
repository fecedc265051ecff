# SPDX-License-Identifier: MIT
"""What one client boot costs the master, per delivery mode (qemu-tests/bench --costs): for each
root and mode, the cluster test's master boots its disk, its caches are dropped, one PXE client
(node1) boots to multi-user, and the master's nfsd counters, CPU jiffies and page cache are
read before and after, the cluster bridge recorded with tcpdump. A benchmark: it fails
nothing."""

import dataclasses
import importlib.util
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .bench_figures import (PROTOCOLS, USER_HZ, busy_jiffies, cached_kib, nfsd_counts,
                            nfsd_delta, traffic)
from .cluster.build import build_all, disk_copy, root_dir, store_dir
from .cluster.flow import boot_disk_node, preflight
from .cluster.node import CLIENT_STEPS, MASTER_STEPS, Node, print_tail, steps_for
from .cluster.variants import (CLIENT_MEM, CLIENTS, MASTER_IP, NODEFILES, VARIANTS,
                               VM_TIMEOUT_S, Variant)
from .netns import Netns
from .paths import QT, Dirs
from .patterns import CRTEST_UP
from .util import Fail, Interrupted, interrupt_on, log, log_table
from .vm import ControlPort, PxeVM

# Its own work directory: the builds of several kinds follow each other there, and a cluster
# test may run at the same time in .work/cluster.
BENCH_DIRS = Dirs.under(QT / ".work" / "bench")
MODES = ("tree", "squashfs-nfs", "squashfs-http")
ROOTS = ("busybox", "debian")
# The master's memory: 6 GiB, as a real master's, because nfsd sizes its largest READ and
# WRITE by it (a 4096th of the memory the kernel counts, rounded down to a power of two, at
# most 1 MiB: 4 GiB of guest memory gave 512 KiB, the kernel keeping some; the cluster test's
# 512 MiB masters offer 64 KiB), and so the count of READs a boot costs; each row records
# what nfsd offered (nfsd_max_block). Under TCG the guest's memory is taken only as it is
# touched.
COSTS_MASTER_MEM = "6144"
# Seconds the master is left alone between its own boot and the client's: its services have
# started, what they read at start is in its cache before the drop.
SETTLE_S = 10
NOTES = [
    "bytes: whole Ethernet frames as tcpdump captured them on the cluster bridge, headers "
    "included; 'master' is what the master sent (the main figure), 'client' what the client "
    "sent to it; the taps pass segmentation-offloaded TCP frames whole, so a captured frame "
    "may be larger than the MTU",
    "nfs: nfsd's own counters (/proc/net/rpc/nfsd), after minus before: NFSv4 COMPOUND calls, "
    "the operations inside them (proc4ops), NFSv3 calls (proc3)",
    "cpu: the master's busy jiffies (/proc/stat: all but idle and iowait) over its CPU, after "
    "minus before, in seconds (USER_HZ 100), under TCG: a ratio between modes, not a real "
    "machine's time; it includes what the idle master spends over the boot's duration",
    "master QEMU CPU: the host's CPU-seconds in the master's QEMU process over the same "
    "span (/proc/PID/stat), TCG's emulation included: it does not grow while the host serves "
    "other VMs, as the guest's own count does (its clock runs on while its vCPU waits)",
    "page cache: an approximation: the increase of Cached: in the master's /proc/meminfo from "
    "just after its caches were dropped (echo 3 >/proc/sys/vm/drop_caches) to the client up; "
    "it also holds whatever else the master read or wrote to tmpfs meanwhile",
    "tree boots the cluster test's master of that root (the demo's for busybox, the debian "
    "variant's for Debian; no store, the NFS root /srv/nfs/root); squashfs-nfs and "
    "squashfs-http an image store whose version 1 is the same root, in that image-mode",
    "image: the root as a tree (tree_bytes: du -sb, the apparent bytes of its files) and its "
    "squashfs file (squashfs_bytes) "
    "as crctl image squashfs builds it (zstd level 3), where the mode has one",
]


def variant_for(root: str, mode: str) -> Variant:
    """The cluster variant of one row: the demo's (dhcp, or debian for the Debian root) for the
    NFS tree; for a squashfs mode, dhcp's with its image kept in a store in that image-mode."""
    by_name = {v.name: v for v in VARIANTS}
    base = by_name["debian" if root == "debian" else "dhcp"]
    if mode == "tree":
        return dataclasses.replace(base, name=f"costs-{root}-tree", reboots=())
    return dataclasses.replace(base, name=f"costs-{root}-{mode}", store=True, image_mode=mode,
                               reboots=())


class Capture:
    """tcpdump on the namespace's br0 into a file, from the moment it says it listens."""

    def __init__(self, netns: Netns, path: Path):
        self.path = path
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns.name, "tcpdump", "-n", "-U",
                                      "-i", "br0", "-w", str(path)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stderr], [], [], 30)
        line = self.proc.stderr.readline() if ready else ""
        if "listening on" not in line:
            self.stop()
            raise Fail(f"tcpdump did not start listening on br0: {line.strip() or 'no answer in 30 s'}")

    def stop(self) -> str:
        """Ends the capture; tcpdump's count of what the kernel dropped ("N packets dropped by
        kernel"), or "" if it said none."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rest = self.proc.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rest = self.proc.communicate()[1]
        return next((x.strip() for x in rest.splitlines() if "dropped by kernel" in x), "")


def _stat(pid: int) -> list:
    """/proc/PID/stat's fields from the state on (field 3), the name skipped."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def qemu_cpu_s(vm) -> float:
    """The CPU-seconds the host has spent on a VM's QEMU process, all its threads: utime and
    stime (/proc/PID/stat) of the process the harness started (`ip netns exec` execs
    `timeout`) and of its children (`timeout` forks QEMU). Unlike the guest's own count, it
    does not grow while the host runs something else."""
    ticks = 0
    for pid in [vm.proc.pid] + [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit()]:
        try:
            fields = _stat(pid)
        except OSError:
            continue   # gone meanwhile
        if pid == vm.proc.pid or int(fields[1]) == vm.proc.pid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class MasterState:
    """What the master's /proc says at one moment, and its QEMU's CPU on the host."""

    def __init__(self, master: Node):
        self.qemu_cpu_s = qemu_cpu_s(master.vm)
        self.busy, self.total = busy_jiffies(master.command("read /proc/stat", "read /proc/stat"))
        self.nfsd = nfsd_counts(master.command("read /proc/net/rpc/nfsd", "read /proc/net/rpc/nfsd"))
        self.cached = cached_kib(master.command("read /proc/meminfo", "read /proc/meminfo"))


def drop_caches(master: Node) -> None:
    """echo 3 >/proc/sys/vm/drop_caches on the master (crtest-report's write, which syncs
    after writing); twice, the second dropping what the first one's sync made clean."""
    for _ in range(2):
        got = master.command("write /proc/sys/vm/drop_caches 3", "write /proc/sys/vm/drop_caches")
        if got != "ok":
            raise Fail(f"master: drop_caches: {got}")


def image_sizes(dirs: Dirs, variant: Variant) -> dict:
    """The root's size as a tree (the files' apparent bytes) and, in a squashfs mode, its
    squashfs file's, from what build_all built."""
    tree = root_dir(dirs, variant.flavor, variant.root, variant.store, variant.generator,
                    variant.image_mode)
    du = subprocess.run(["du", "-s", "-b", "--one-file-system", str(tree)],
                        capture_output=True, text=True)
    sizes = {"tree_bytes": int(du.stdout.split()[0]) if du.returncode == 0 else None}
    if variant.image_mode != "tree":
        squashfs = store_dir(dirs, tree) / "squashfs"
        name = (squashfs / "default").read_text().strip()
        sizes["squashfs_bytes"] = (squashfs / name).stat().st_size
    return sizes


def one_boot(dirs: Dirs, root: str, mode: str) -> dict:
    """One row: the master of `root` in `mode`, then node1's boot to multi-user."""
    variant = variant_for(root, mode)
    t0 = time.monotonic()
    log(f"RUN  {root} root, {mode}: build")
    built = build_all(dirs, variant.flavor, variant.root, variant.store, variant.generator,
                      variant.image_mode)
    initrd, root_img, home_img, nodes_img, _, _ = built
    image = image_sizes(dirs, variant)
    master = Node("master", variant.master_mac, MASTER_IP)
    name, mac, ip = CLIENTS[0]
    client = Node(name, mac, ip)
    with Netns() as netns:
        capture = None
        try:
            drives = []
            for img, disk in ((home_img, "home-disk"), (nodes_img, "nodefiles-disk")):
                drives += ["-drive", f"file={disk_copy(dirs, img, f'costs-{disk}')},format=raw,if=virtio"]
            log(f"RUN  {root} root, {mode}: the master boots")
            boot_disk_node(dirs, master, netns, variant, initrd,
                           disk_copy(dirs, root_img, "costs-cluster-disk"),
                           f"root=LABEL=cluster rw {NODEFILES}"
                           + (" clusterroot.image=default" if variant.store else ""),
                           COSTS_MASTER_MEM, drives, steps_for(variant, MASTER_STEPS))
            time.sleep(SETTLE_S)
            max_block = master.command("read /proc/fs/nfsd/max_block_size",
                                       "read /proc/fs/nfsd/max_block_size").strip()
            drop_caches(master)
            before = MasterState(master)
            pcap = dirs.work / f"costs-{root}-{mode}.pcap"
            capture = Capture(netns, pcap)
            log(f"RUN  {root} root, {mode}: {name} boots to multi-user")
            client.ctl = ControlPort(dirs.work / f"costs-{name}-{os.getpid()}.sock")
            client.vm = PxeVM(dirs, f"{variant.name}-{name}", netns, mac, CLIENT_MEM,
                              VM_TIMEOUT_S, client.ctl.qemu_args())
            client.boot(steps_for(variant, CLIENT_STEPS))
            if client.error:
                raise Fail(f"{name}: {client.error}")
            up_s = client.marks[CRTEST_UP]
            after = MasterState(master)
            dropped = capture.stop()
            capture = None
        except Fail:
            print_tail(client)
            print_tail(master)
            raise
        finally:
            if capture is not None:
                capture.stop()
            for n in (client, master):
                if n.vm is not None:
                    n.vm.stop()
                if n.ctl is not None:
                    n.ctl.close()
    row = {
        "root": root, "mode": mode, "variant": variant.name, "store": variant.store,
        "client": {"name": name, "mac": mac, "switch_root_s": round(client.ready_s, 1),
                   "up_s": round(up_s, 1)},
        "master_cpu": {"busy_jiffies": after.busy - before.busy,
                       "seconds": round((after.busy - before.busy) / USER_HZ, 2),
                       "percent": round(100.0 * (after.busy - before.busy)
                                        / max(1, after.total - before.total), 1)},
        "master_qemu_cpu_s": round(after.qemu_cpu_s - before.qemu_cpu_s, 2),
        "page_cache_kib": after.cached - before.cached,
        "nfsd_max_block": int(max_block) if max_block.isdigit() else max_block,
        "image": image,
        "nfs": nfsd_delta(before.nfsd, after.nfsd),
        "bytes": traffic(str(pcap), variant.master_mac, (MASTER_IP,)),
        "pcap": str(pcap),
        "pcap_dropped": dropped,
        "wall_s": round(time.monotonic() - t0, 1),
    }
    log(f"  {root} {mode}: up in {up_s:.1f}s; master CPU {row['master_cpu']['seconds']} s; "
        f"page cache +{row['page_cache_kib']} KiB; {row['nfs']['compounds']} COMPOUNDs; "
        f"master sent {sum(p['master']['bytes'] for p in row['bytes'].values())} bytes")
    return row


def kib(n: int) -> str:
    return f"{n / 1024:.0f}"


def print_tables(rows: list) -> None:
    """The rows as three tables: per boot, bytes by protocol both ways, NFS operations."""
    log("\nwhat one client boot (power-on to multi-user) cost the master")
    table = [("root", "mode", "up s", "master CPU s", "its QEMU CPU s", "page cache +MiB",
              "NFS COMPOUNDs", "NFSv3 calls", "sent by master KiB", "sent by client KiB")]
    for r in rows:
        table.append((r["root"], r["mode"], f"{r['client']['up_s']:.1f}",
                      f"{r['master_cpu']['seconds']:.2f}", f"{r['master_qemu_cpu_s']:.2f}",
                      f"{r['page_cache_kib'] / 1024:.1f}",
                      str(r["nfs"]["compounds"]), str(sum(r["nfs"]["v3"].values())),
                      kib(sum(p["master"]["bytes"] for p in r["bytes"].values())),
                      kib(sum(p["client"]["bytes"] for p in r["bytes"].values()))))
    log_table(table)
    log("\nKiB by protocol, sent by the master / sent by the client")
    table = [("root", "mode") + PROTOCOLS]
    for r in rows:
        table.append((r["root"], r["mode"]) + tuple(
            f"{kib(r['bytes'][p]['master']['bytes'])} / {kib(r['bytes'][p]['client']['bytes'])}"
            for p in PROTOCOLS))
    log_table(table)
    ops = sorted({op for r in rows for op in r["nfs"]["v4ops"]}
                 | {f"v3 {op}" for r in rows for op in r["nfs"]["v3"]})
    if ops:
        log("\nNFS operations (nfsd's counters)")
        table = [("operation",) + tuple(f"{r['root']} {r['mode']}" for r in rows)]
        for op in ops:
            table.append((op,) + tuple(
                str(r["nfs"]["v3"].get(op[3:], 0) if op.startswith("v3 ")
                    else r["nfs"]["v4ops"].get(op, 0)) for r in rows))
        log_table(table)


def main(modes: list, roots: list, json_path: str = "", dirs: Dirs = BENCH_DIRS) -> int:
    """One client boot per root and mode; prints the tables, writes the JSON; the exit status."""
    bad = [m for m in modes if m not in MODES] + [r for r in roots if r not in ROOTS]
    if bad or not modes or not roots:
        log(f"bench --costs: --modes takes {','.join(MODES)}, --roots {','.join(ROOTS)}")
        return 64
    problem = preflight()
    if not problem and shutil.which("tcpdump") is None:
        problem = "--costs needs tcpdump (apt-get install tcpdump)"
    if not problem and importlib.util.find_spec("dpkt") is None:
        problem = ("--costs needs Debian's python3-dpkt (apt-get install python3-dpkt), in "
                   "this python3's path (/usr/bin/python3 has it)")
    if problem:
        log(f"qemu-tests/bench: {problem}")
        return 2
    interrupt_on(signal.SIGTERM)
    dirs.fresh_logs()
    out = Path(json_path) if json_path else dirs.work / "costs.json"
    t0 = time.monotonic()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows, failed = [], []
    try:
        for root in roots:
            for mode in modes:
                try:
                    rows.append(one_boot(dirs, root, mode))
                except Fail as e:
                    log(f"FAIL {root} root, {mode}: {e}")
                    failed.append({"root": root, "mode": mode, "why": str(e)})
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({type(e).__name__} {e})")
        return 130
    if rows:
        print_tables(rows)
    for note in NOTES:
        log(f"  {note}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "started": started,
                               "rows": rows, "failed": failed,
                               "notes": NOTES, "host_cores": os.cpu_count(),
                               "seconds": round(time.monotonic() - t0, 1)}, indent=2) + "\n")
    log(f"\nJSON in {out}; captures and console logs in {dirs.work}; {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0
