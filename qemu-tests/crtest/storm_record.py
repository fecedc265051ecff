# SPDX-License-Identifier: MIT
"""The storm's trace, recorded (qemu-tests/storm --record-trace): with the cluster test's master
of a root up (crtest.storm boots it), one real client (node1) PXE-boots from it to
multi-user, and util-linux
fincore on the client lists the resident pages of every file of its lower
(/run/rootfs/lower, the NFS mount of the shared root): the files and bytes its boot read.
Written as trace-ROOT.tsv in qemu-tests/bench-data/ (crtest.storm_trace)."""

import os
import time
from pathlib import Path

from .cluster.node import CLIENT_STEPS, Node, print_tail, steps_for
from .cluster.variants import CLIENT_MEM, CLIENTS, VM_TIMEOUT_S
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


def record(dirs: Dirs, netns: Netns, variant, master: Node, root: str, out: Path) -> dict:
    """With `master` (of `variant`) up in `netns`: node1 boots to multi-user, its resident
    lower files are listed, the trace is written into `out`, node1 is stopped; its totals."""
    name, mac, ip = CLIENTS[0]
    client = Node(name, mac, ip)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    try:
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
        t0 = time.monotonic()
        data = client.fetch(f"fincore {LOWER}", f"fincore {LOWER}", timeout_s=1200)
        if data is None:
            client.vm.console.poll()
            why = next((x for x in reversed(client.vm.console.lines)
                        if f"CRTEST fincore {LOWER}:" in x), "")
            raise Fail(f"{name}: fincore listed nothing: {why.strip()}")
        log(f"  fincore's list came in {time.monotonic() - t0:.0f} s")
    except Fail:
        print_tail(client)
        raise
    finally:
        if client.vm is not None:
            client.vm.stop()
        if client.ctl is not None:
            client.ctl.close()
    entries = parse_fincore(data.decode(errors="surrogateescape"), LOWER)
    if not entries:
        raise Fail(f"fincore on {name} found no resident file under {LOWER}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(format_trace(entries, method(root, variant.name, mac, when, up_s)),
                   errors="surrogateescape")
    t = totals(entries)
    log(f"  trace {out}: {t['files']} files, {t['bytes'] / 1048576:.1f} MiB")
    return t
