# SPDX-License-Identifier: MIT
"""Boot storms (qemu-tests/bench): the cluster test's master, then N PXE clients powered on at
once for each N; their times to switch_root against the master's own, the master's CPU and
nfsd's queue, and the floor this machine's cores set. A benchmark: it fails nothing."""

import os
import resource
import shutil
import signal
import statistics
import subprocess
import threading
import time

from .bench_figures import busy_jiffies
from .cluster.build import build_all, disk_copy
from .cluster.flow import boot_disk_node, preflight
from .cluster.node import CLIENT_STEPS, MASTER_STEPS, Node, print_tail
from .cluster.variants import (CLIENT_MEM, CLIENTS, MASTER_IP, MASTER_MEM, NODEFILES, VARIANTS,
                               VM_TIMEOUT_S)
from .netns import Netns
from .paths import CLUSTER_DIRS, Dirs
from .patterns import CRTEST_UP
from .util import Fail, Interrupted, interrupt_on, log
from .vm import ControlPort, PxeVM

# Client steps up to switch_root only: a storm is about getting there.
STEPS = [step for step in CLIENT_STEPS if step[0] != CRTEST_UP]


def bench_mac(i: int) -> str:
    """The i-th client's MAC (0-based): the inventory's nodes first."""
    if i < len(CLIENTS):
        return CLIENTS[i][1]
    return f"52:54:00:77:01:{i:02x}"


def cpu_times(master) -> tuple:
    """(busy, total) jiffies of the master's CPUs, from /proc/stat's first line."""
    return busy_jiffies(master.command("read /proc/stat", "read /proc/stat"))


def enqueued(master) -> int:
    """nfsd's sockets-enqueued over its pools: requests that found every thread busy."""
    text = master.command("read /proc/fs/nfsd/pool_stats", "read /proc/fs/nfsd/pool_stats")
    nums = [w for w in text.split() if w.isdigit() or w.startswith("0x")]
    # "# pool packets-arrived sockets-enqueued threads-woken threads-timedout" then a row a pool.
    rows = [nums[i:i + 5] for i in range(0, len(nums) - len(nums) % 5, 5)]
    return sum(int(r[2]) for r in rows)


def storm(dirs: Dirs, netns: Netns, n: int) -> dict:
    """N clients at once; their times, failures and CPU seconds."""
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    nodes = [Node(f"c{i + 1}", bench_mac(i), "") for i in range(n)]
    for node in nodes:
        node.ctl = ControlPort(dirs.work / f"bench-{node.name}-{n}.sock")
        node.vm = PxeVM(dirs, f"bench{n}-{node.name}", netns, node.mac, CLIENT_MEM,
                        VM_TIMEOUT_S, node.ctl.qemu_args())
    threads = [threading.Thread(target=node.boot, args=(STEPS,), daemon=True) for node in nodes]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    for node in nodes:
        node.vm.stop()
        node.ctl.close()
    times = [node.ready_s for node in nodes if node.ready_s is not None]
    failed = [f"{node.name} ({node.mac}): {node.error}" for node in nodes if node.error]
    # The stopped clients' QEMU (and `timeout`, which waited for it) are reaped children now.
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime + cpu1.ru_stime) - (cpu0.ru_utime + cpu0.ru_stime)
    return {"times": times, "failed": failed, "cpu": cpu}


def main(sizes: list, variant_name: str = "dhcp", pcap: str = "", nfsd_threads: int = 0,
         dirs: Dirs = CLUSTER_DIRS) -> int:
    """Storms of each size in `sizes` against the master of the cluster variant
    `variant_name`; prints their figures; the exit status."""
    variant = {v.name: v for v in VARIANTS}.get(variant_name)
    if variant is None or variant.site_dhcp or variant.root != "busybox":
        log("bench: --variant takes dhcp or sd (the master gives the addresses, busybox root)")
        return 64
    problem = preflight()
    if not problem and pcap and shutil.which("tcpdump") is None:
        problem = "--pcap needs tcpdump (apt-get install tcpdump)"
    if problem:
        log(f"qemu-tests/bench: {problem}")
        return 2

    interrupt_on(signal.SIGTERM)
    dirs.fresh_logs()
    built = build_all(dirs, variant.flavor, variant.root, variant.store, variant.generator,
                      variant.image_mode)
    initrd, root_img, home_img, nodes_img, _, _ = built
    master = Node("master", variant.master_mac, MASTER_IP)
    rows = []
    with Netns() as netns:
        capture = None
        try:
            if pcap:
                capture = subprocess.Popen(["ip", "netns", "exec", netns.name, "tcpdump", "-q", "-n",
                                            "-i", "br0", "-w", pcap], stderr=subprocess.DEVNULL)
            drives = []
            for img, name in ((home_img, "home-disk"), (nodes_img, "nodefiles-disk")):
                copy = disk_copy(dirs, img, f"bench-{name}")
                drives += ["-drive", f"file={copy},format=raw,if=virtio"]
            boot_disk_node(dirs, master, netns, variant, initrd,
                           disk_copy(dirs, root_img, "bench-cluster-disk"),
                           f"root=LABEL=cluster rw {NODEFILES}"
                           + (" clusterroot.image=default" if variant.store else ""),
                           MASTER_MEM, drives, MASTER_STEPS)
            reference = master.ready_s
            if nfsd_threads:
                master.expect_answer(f"write /proc/fs/nfsd/threads {nfsd_threads}",
                                     "write /proc/fs/nfsd/threads", "ok")
            threads = master.command("read /proc/fs/nfsd/threads", "read /proc/fs/nfsd/threads")
            cores = os.cpu_count() or 1
            for n in sizes:
                log(f"RUN  storm of {n}")
                busy0, total0 = cpu_times(master)
                queued0 = enqueued(master)
                t0 = time.monotonic()
                result = storm(dirs, netns, n)
                wall = time.monotonic() - t0
                busy1, total1 = cpu_times(master)
                queued1 = enqueued(master)
                times = result["times"]
                cpu = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
                floor = result["cpu"] / cores
                rows.append((n, max(times) if times else None,
                             statistics.median(times) if times else None, cpu,
                             queued1 - queued0, len(result["failed"]), wall, floor))
                for f in result["failed"]:
                    log(f"  failed: {f}")
                # Each storm's figures at once: a later storm may take long to fail.
                log(f"  storm of {n}: switch_root after {', '.join(f'{t:.1f}' for t in sorted(times)) or 'none'} s "
                    f"(master {reference:.1f} s); master CPU {cpu:.0f}%; nfsd all busy "
                    f"{queued1 - queued0} times; {len(result['failed'])} failed; {wall:.0f} s; "
                    f"clients' CPU {result['cpu']:.0f} s on {cores} cores")
        except (KeyboardInterrupt, Interrupted) as e:
            log(f"interrupted ({type(e).__name__} {e})")
            return 130
        except Fail as e:
            log(f"bench: {e}")
            print_tail(master)
            return 1
        finally:
            if capture is not None:
                capture.terminate()
                capture.wait()
            if master.vm is not None:
                master.vm.stop()
            if master.ctl is not None:
                master.ctl.close()
    log(f"\nmaster power-on -> switch_root: {reference:.1f} s (the reference); nfsd threads: "
        f"{threads}; variant {variant.name}")
    log(f"{'N':>3} {'slowest s':>10} {'median s':>9} {'slowest/master':>15} "
        f"{'median/master':>14} {'master CPU %':>13} {'nfsd all busy':>14} {'failed':>7} "
        f"{'CPU floor s':>12} {'slowest/floor':>14}")

    def show(x) -> str:
        return "-" if x is None else f"{x:.1f}"

    for n, slowest, median, cpu, queued, failed, _, floor in rows:
        ratio = (lambda x: None if x is None else x / reference)
        log(f"{n:>3} {show(slowest):>10} {show(median):>9} {show(ratio(slowest)):>15} "
            f"{show(ratio(median)):>14} {cpu:>13.0f} {queued:>14} {failed:>7} "
            f"{floor:>12.1f} {show(slowest / floor if slowest and floor else None):>14}")
    single = next((r[1] for r in rows if r[0] == 1 and r[1]), None)
    if single:
        log("slowest of N / a single client: " + ", ".join(
            f"N={n}: {slowest / single:.2f}" for n, slowest, *_ in rows if slowest))
    return 0
