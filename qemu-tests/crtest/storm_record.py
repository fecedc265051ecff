# SPDX-License-Identifier: MIT
"""The storm's trace, recorded (qemu-tests/storm --record-trace): the cluster test's master of
a root boots its disk, one real client (node1) PXE-boots from it to multi-user, and util-linux
fincore on the client lists the resident pages of every file of its lower
(/run/rootfs/lower, the NFS mount of the shared root): the files and bytes its boot read.
Written as trace-ROOT.tsv in qemu-tests/bench-data/ (crtest.storm_trace)."""

import os
import time
from pathlib import Path

from .cluster.build import build_all, disk_copy
from .cluster.flow import boot_disk_node
from .cluster.node import CLIENT_STEPS, MASTER_STEPS, Node, print_tail, steps_for
from .cluster.variants import CLIENT_MEM, CLIENTS, MASTER_IP, MASTER_MEM, NODEFILES, VM_TIMEOUT_S
from .netns import Netns
from .paths import KVER, Dirs
from .storm_trace import format_trace, parse_fincore, totals
from .util import Fail, log
from .vm import ControlPort, PxeVM

LOWER = "/run/rootfs/lower"
# Seconds between the client's report "up" and the listing: systemd's last units settle.
SETTLE_S = 20


def method(root: str, variant: str, mac: str, when: str, up_s: float) -> list:
    """The trace file's header comments: how and when it was taken, and its limits."""
    return [
        f"The reads of one diskless client's boot, for qemu-tests/storm (the {root} root).",
        f"Recorded {when} by qemu-tests/storm --record-trace --root {root}: the cluster test's",
        f"master (variant {variant}) booted its disk; node1 ({mac}, {CLIENT_MEM} MB, one vCPU,",
        f"TCG, kernel {KVER}) PXE-booted from it to multi-user ('CRTEST up' after {up_s:.0f} s),",
        f"then, {SETTLE_S} s later, util-linux fincore listed on node1 the resident bytes of every",
        f"regular file under {LOWER} (its NFSv4 lower, one filesystem: find -xdev), through",
        "lib/cluster-report's 'fincore' command; the files with resident pages are below.",
        "Columns: resident_bytes (whole pages), size (the file's), path (in the shared root).",
        "The replay (lib/storm-read.rs) reads the first min(resident_bytes, size) bytes of each.",
        "Limits: fincore counts pages, not which ones, so a file read in part (an ELF mapped",
        "piecemeal) is replayed as a prefix; readahead's pages count as read; pages evicted",
        "during the boot are missed (none likely: 512 MB and no memory pressure); what",
        "the test's own report read after the boot counts too; directory reads, lookups and",
        "attribute calls (metadata) are not files' pages and are replayed only as the opens",
        "of these files imply; files read in the initramfs before the lower was mounted",
        "(from the initramfs itself) are not the root's and are not here.",
    ]


def record(dirs: Dirs, root: str, variant, out: Path) -> dict:
    """Boots the master of `variant` and node1, lists node1's resident lower files, writes
    the trace into `out`; its totals."""
    built = build_all(dirs, variant.flavor, variant.root, variant.store, variant.generator,
                      variant.image_mode)
    initrd, root_img, home_img, nodes_img, _, _ = built
    master = Node("master", variant.master_mac, MASTER_IP)
    name, mac, ip = CLIENTS[0]
    client = Node(name, mac, ip)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with Netns() as netns:
        try:
            drives = []
            for img, disk in ((home_img, "home-disk"), (nodes_img, "nodefiles-disk")):
                drives += ["-drive",
                           f"file={disk_copy(dirs, img, f'record-{disk}')},format=raw,if=virtio"]
            log(f"RUN  record: the master boots ({variant.name})")
            boot_disk_node(dirs, master, netns, variant, initrd,
                           disk_copy(dirs, root_img, "record-cluster-disk"),
                           f"root=LABEL=cluster rw {NODEFILES}", MASTER_MEM, drives,
                           steps_for(variant, MASTER_STEPS))
            log(f"RUN  record: {name} boots to multi-user")
            client.ctl = ControlPort(dirs.work / f"record-{name}-{os.getpid()}.sock")
            client.vm = PxeVM(dirs, f"{variant.name}-{name}", netns, mac, CLIENT_MEM,
                              VM_TIMEOUT_S, client.ctl.qemu_args())
            client.boot(steps_for(variant, CLIENT_STEPS))
            if client.error:
                raise Fail(f"{name}: {client.error}")
            up_s = client.vm.elapsed()
            log(f"  {name} up after {up_s:.0f} s; fincore in {SETTLE_S} s")
            time.sleep(SETTLE_S)
            data = client.fetch(f"fincore {LOWER}", f"fincore {LOWER}", timeout_s=1200)
            if data is None:
                client.vm.console.poll()
                why = next((x for x in reversed(client.vm.console.lines)
                            if f"CRTEST fincore {LOWER}:" in x), "")
                raise Fail(f"{name}: fincore listed nothing: {why.strip()}")
        except Fail:
            print_tail(client)
            print_tail(master)
            raise
        finally:
            for n in (client, master):
                if n.vm is not None:
                    n.vm.stop()
                if n.ctl is not None:
                    n.ctl.close()
    entries = parse_fincore(data.decode(errors="surrogateescape"), LOWER)
    if not entries:
        raise Fail(f"fincore on {name} found no resident file under {LOWER}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(format_trace(entries, method(root, variant.name, mac, when, up_s)),
                   errors="surrogateescape")
    t = totals(entries)
    log(f"  trace {out}: {t['files']} files, {t['bytes'] / 1048576:.1f} MiB")
    return t
