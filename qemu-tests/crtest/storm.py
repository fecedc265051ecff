# SPDX-License-Identifier: MIT
"""Boot storms the host can carry (qemu-tests/storm): the cluster test's master, and ONE load
VM that stands in for N clients at once, each a network namespace with a macvlan (its own
MAC) on the load VM's NIC (lib/load-init, lib/storm-client). Each client gets its own lease
from the master's dnsmasq, fetches boot.ipxe and the kernel and initramfs it names over HTTP,
then reads the root: in the NFS tree mode with the kernel NFS client of its namespace (its
own NFSv4 identity) replaying a real boot's reads (the trace, crtest.storm_trace), in the
squashfs-nfs mode the same replay inside the squashfs image it mounts from the master's NFS
export through a loop device, in the squashfs-http mode by downloading the image. Reported:
each client's times and failures, and the master's nfsd counters and CPU
(crtest.bench_figures). A benchmark that fails nothing but what cannot run; with `check`, a
test that fails on any client's failure or any DHCP, HTTP or NFS error (crtest.storm_check)."""

import dataclasses
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

from .bench import enqueued
from .bench_figures import USER_HZ, busy_jiffies, nfsd_counts, nfsd_delta, proc_lines
from .cluster.build import build_all, disk_copy, trace_path
from .cluster.flow import boot_disk_node, preflight
from .cluster.node import MASTER_STEPS, Node, print_tail, steps_for
from .cluster.variants import MASTER_IP, MASTER_MEM, NODEFILES, VARIANTS, Variant
from .netns import Netns
from .paths import KERNEL, KVER, LIB, QT, Dirs
from .patterns import PANIC
from .storm_check import new_lines, problems, rpc_counts
from .storm_record import record as record_trace
from .storm_results import client_mac, parse_storm
from .storm_trace import load_form, read_trace, totals
from .util import Fail, Interrupted, build_failed, interrupt_on, log, log_table, run
from .vm import VM, ControlPort, print_tail as print_console_tail

STORM_DIRS = Dirs.under(QT / ".work" / "storm")
MODES = ("tree", "squashfs-nfs", "squashfs-http")
ROOTS = ("debian", "busybox")
# The load VM's own NIC, and its clients' MACs PREFIX:01 .. PREFIX:NN (none of the cluster
# test's, nor qemu-tests/bench's 52:54:00:77:01:NN).
LOAD_MAC = "52:54:00:77:02:00"
CLIENT_MAC_PREFIX = "52:54:00:77:03"
LOAD_MEM = "2048"   # N clients' page caches of the root (reclaimable) and their sockets
# The master's dnsmasq gives unlisted machines the inventory's range (mkinitcpio/cluster:
# 172.23.199.100-199): 100 addresses.
MAX_CLIENTS = 100
# Deadlines guard against hangs, not speed.
LOAD_READY_S = 600      # the load VM's boot and its namespaces, under TCG
CLIENT_BUDGET_S = 1800  # one client, from "go" to its last read (storm.timeout=)
# Under --check (a small storm, ~50 s alone here): a client that hangs fails the test in
# minutes, naming what it was doing (lib/load-init), instead of holding the suite for 30.
CHECK_BUDGET_S = 300
NOTES = [
    "times: each client's moments since 'go' (all started at once): its lease (dhcp), "
    "boot.ipxe, kernel and initramfs read over HTTP (http), its root read (done: the trace's "
    "reads over NFS (tree) or in the squashfs image mounted from NFS (squashfs-nfs), or the "
    "squashfs image downloaded (squashfs-http)); the clients share the load VM's one TCG CPU, "
    "so their times include waiting for it",
    "master: nfsd's counters and its busy jiffies (/proc/net/rpc/nfsd, /proc/stat) from just "
    "before 'go' (its caches dropped) to the load VM's 'done'; 'nfsd read' is the bytes its "
    "READs read (its io line); 'nfsd all busy' is sockets-enqueued of "
    "/proc/fs/nfsd/pool_stats",
    "not a boot: no client runs a kernel, init or services; a client reads what a boot reads "
    "from the master (one DHCP exchange, not iPXE's and the agent's two; no node files)",
    "squashfs-nfs: the export mounted, the pointer read, the export mounted again under the "
    "identity with the image's version (as the agent does), the file on a loop device, the "
    "trace replayed in the squashfs; where no trace of the root is kept (busybox) the image "
    "file is read whole instead (reads=image)",
    "leases: the clients are not in the inventory (no dhcp-host line): the master's dnsmasq "
    "gives them addresses of its range, pinging each one first (its default: up to 3 s); "
    "storms of new clients got their leases ~20 s after go, together, those that had one "
    "at once (dnsmasq's ping wait is the likely cause, not shown); 'DHCP tries' > 1 is a "
    "client whose udhcpc gave up (3 requests unanswered) and asked again",
]


def variant_for(mode: str, root: str) -> Variant:
    """The cluster variant whose master serves a storm of `root`: the demo's (dhcp, the
    busybox root) or the debian one; for a squashfs mode with an image store in that
    image-mode, the root being its version 1."""
    by_name = {v.name: v for v in VARIANTS}
    base = by_name["debian" if root == "debian" else "dhcp"]
    if mode == "tree":
        return dataclasses.replace(base, name=f"storm-{root}-tree", reboots=())
    return dataclasses.replace(base, name=f"storm-{root}-{mode}", store=True, image_mode=mode,
                               reboots=())


def nfsd_threads(sizes: list) -> int:
    """The master's nfsd threads for storms of `sizes`: one per client, at least 8, as crctl
    renders them for listed clients (README "Sizing"); the storm's clients are not listed,
    so the inventory names the count (nfsd-threads)."""
    return max([8, *sizes])


def trace_for(mode: str, root: str) -> Optional[Path]:
    """The trace a client of `mode` replays: the root's in the tree mode (check_args sees that
    it exists); in squashfs-nfs the root's if one is kept (else the client reads the image
    file whole); none in squashfs-http (the image is downloaded whole)."""
    if mode == "tree":
        return trace_path(root)
    if mode == "squashfs-nfs" and trace_path(root).is_file():
        return trace_path(root)
    return None


def check_args(modes: list, sizes: list, root: str, record: bool = False,
               threads: int = 0) -> str:
    """Why these arguments cannot run, or ""."""
    if not 0 <= threads <= 8192:
        return "--nfsd-threads takes 1 to 8192 (crctl's nfsd-threads)"
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        return f"--modes takes {','.join(MODES)}"
    if root not in ROOTS:
        return f"--root takes {','.join(ROOTS)}"
    if (not sizes and not record) or any(n < 1 or n > MAX_CLIENTS for n in sizes):
        return f"--sizes takes numbers from 1 to {MAX_CLIENTS} (the master's DHCP range)"
    if record and "tree" not in modes:
        return "--record-trace records with the tree mode's master: --modes must name tree"
    if "tree" in modes and not record and not trace_path(root).is_file():
        return (f"no trace {trace_path(root)} for the tree mode: record one with "
                f"qemu-tests/storm --record-trace --root {root}")
    return ""


def load_image(dirs: Dirs, trace: Optional[Path], name: str) -> Path:
    """lib/make-load-image, every run (it holds this checkout's scripts), with the trace in
    the load VM's form (or none)."""
    out = dirs.work / f"load-{name}.img"
    form = "-"
    if trace is not None:
        form = dirs.work / f"load-{name}.trace"
        form.write_text(load_form(read_trace(trace)[1]), errors="surrogateescape")
    run([LIB / "make-load-image", out, form, KVER], capture_output=True)
    return out


class MasterState:
    """The master's counters at one moment (its command port)."""

    def __init__(self, master: Node):
        self.busy, self.total = busy_jiffies(master.command("read /proc/stat", "read /proc/stat"))
        rpc = master.command("read /proc/net/rpc/nfsd", "read /proc/net/rpc/nfsd")
        self.nfsd = nfsd_counts(rpc)
        self.rpc = rpc_counts(rpc)
        # The io line: bytes nfsd read from its filesystems for READs, then wrote.
        self.read_bytes = int((proc_lines(rpc).get("io") or [0])[0])
        self.enqueued = enqueued(master)


def drop_caches(master: Node) -> None:
    """The master's page cache dropped (crtest-report's write syncs after writing), so that
    every storm starts from a cold cache."""
    for _ in range(2):
        got = master.command("write /proc/sys/vm/drop_caches 3", "write /proc/sys/vm/drop_caches")
        if got != "ok":
            raise Fail(f"master: drop_caches: {got}")


def storm(dirs: Dirs, netns: Netns, master: Node, image: Path, mode: str, n: int,
          syslog: Optional[list] = None) -> dict:
    """One storm of `n` clients: the load VM boots and makes its namespaces, the master's
    counters are read, "go", every client's line, the counters again. With `syslog` (the
    master's system log lines read after the storm before, --check), the storm is checked
    (crtest.storm_check) and `syslog` updated: the row's "problems"."""
    name = f"storm-load-{mode}-{n}"
    budget = CLIENT_BUDGET_S if syslog is None else CHECK_BUDGET_S
    ctl = ControlPort(dirs.work / f"{name}-{os.getpid()}.sock")
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    vm = VM(dirs, name, netns, [(LOAD_MAC, "br0")], KERNEL, image,
            f"console=ttyS0 panic=-1 storm.n={n} storm.mac={CLIENT_MAC_PREFIX} "
            f"storm.timeout={budget}", LOAD_MEM,
            LOAD_READY_S + budget + 300, extra=ctl.qemu_args())
    fails = (PANIC, r"STORM load: failed")
    try:
        vm.expect(r"STORM load: ready n=\d+", LOAD_READY_S, fails)
        log(f"  load VM ready with {n} namespaces after {vm.elapsed():.0f} s")
        drop_caches(master)
        before = MasterState(master)
        ctl.send("go")
        t0 = time.monotonic()
        vm.expect(r"STORM load: done", budget + 120, fails)
        wall = time.monotonic() - t0
        after = MasterState(master)
        vm.wait_exit(60)
    except Fail:
        print_console_tail(name, vm.console)
        raise
    finally:
        vm.stop()
        ctl.close()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = parse_storm(vm.console.lines, n)
    busy = after.busy - before.busy
    row = {
        "mode": mode, "n": n, "wall_s": round(wall, 1),
        "summary": result.summary(),
        "failures": result.failures(),
        "clients": [{"index": i, "ok": r.ok, "step": r.step, "error": r.error, **r.fields}
                    for i, r in sorted(result.clients.items())],
        "load_done_ms": result.done_ms,
        "load_vm_cpu_s": round((cpu1.ru_utime + cpu1.ru_stime)
                               - (cpu0.ru_utime + cpu0.ru_stime), 1),
        "master_cpu": {"seconds": round(busy / USER_HZ, 2),
                       "percent": round(100.0 * busy / max(1, after.total - before.total), 1)},
        "nfs": nfsd_delta(before.nfsd, after.nfsd),
        "nfsd_read_bytes": after.read_bytes - before.read_bytes,
        "nfsd_all_busy": after.enqueued - before.enqueued,
    }
    fresh = []
    if syslog is not None:
        lines = master_syslog(dirs, master, f"{mode}-{n}")
        fresh = new_lines(syslog, lines)
        syslog[:] = lines
        row["problems"] = problems(result, before.rpc, after.rpc, fresh, CLIENT_MAC_PREFIX)
    show(row, result)
    if row.get("problems"):
        diagnose(master, fresh)
    return row


def master_syslog(dirs: Dirs, master: Node, name: str) -> list:
    """The master's system log (crtest-report syslog: dnsmasq's and lighttpd's lines), kept
    as logs/storm-NAME-master.syslog."""
    got = master.fetch("syslog", "syslog", timeout_s=180)
    if got is None:
        raise Fail(f"master: its system log could not be read: {master.command('syslog', 'syslog')}")
    text = got.decode(errors="replace")
    (dirs.logs / f"storm-{name}-master.syslog").write_text(text)
    return text.splitlines()


def diagnose(master: Node, syslog: list) -> None:
    """After a storm that failed its check: what the master says of itself (its load, nfsd's
    thread pools, its kernel's NFS lines, the last DHCP and HTTP lines of its log during the
    storm, its console's tail)."""
    log("  the master's diagnostics:")
    for what in ("read /proc/loadavg", "read /proc/fs/nfsd/pool_stats", "read /proc/fs/nfsd/threads"):
        log(f"    {what}: {master.command(what, what)}")
    for word in ("nfsd", "NFSD", "lockd", "rpc"):
        lines = [x.strip() for x in master.command(f"kmsg {word}", f"kmsg {word}").split("|")]
        for line in [x for x in lines if x][-10:]:
            log(f"    kernel: {line}")
    for line in [x for x in syslog if re.search(r" (dnsmasq-dhcp|lighttpd)(\[\d+\])?: ", x)][-30:]:
        log(f"    log: {line}")
    print_tail(master)


def show(row: dict, result) -> None:
    """One storm's figures, as soon as it ended."""
    table = [("client", "MAC", "address", "DHCP tries", "lease s", "HTTP done s", "root done s",
              "HTTP MiB", "root MiB", "files", "fallbacks", "result")]
    for i in range(1, row["n"] + 1):
        r = result.clients.get(i)
        if r is None:
            table.append((str(i), client_mac(CLIENT_MAC_PREFIX, i), "-", "-", "-", "-", "-",
                          "-", "-", "-", "-", "no result line"))
            continue

        def s(key: str) -> str:
            v = r.ms(key)
            return "-" if v is None else f"{v / 1000:.1f}"

        def mib(key: str) -> str:
            v = r.ms(key)
            return "-" if v is None else f"{v / 1048576:.1f}"

        table.append((str(i), r.fields.get("mac", "?"), r.fields.get("ip", "-"),
                      r.fields.get("dhcp_tries", "-"), s("dhcp_ms"),
                      s("http_ms"), s("done_ms") if r.ok else "-", mib("http_bytes"),
                      mib("root_bytes"), r.fields.get("files", "-"),
                      r.fields.get("fallbacks", "-"),
                      "ok" if r.ok else f"FAILED {r.step} at {s('ms')} s: {r.error}"))
    log_table(table)
    for f in row["failures"]:
        log(f"  failed: {f}")
    for p in row.get("problems", []):
        if p not in row["failures"]:
            log(f"  check: {p}")
    nfs = row["nfs"]
    ops = sorted(nfs["v4ops"].items(), key=lambda kv: -kv[1])
    sm = row["summary"]
    done = sm["done"]
    log(f"  storm {row['mode']} N={row['n']}: {sm['ok']} ok, {sm['failed']} failed, "
        f"{sm['missing']} silent; root done median {done['median_s'] if done else '-'} s, "
        f"slowest {done['slowest_s'] if done else '-'} s; wall {row['wall_s']} s; "
        f"load VM CPU {row['load_vm_cpu_s']} s (its whole life)")
    log(f"  master: CPU {row['master_cpu']['seconds']} s ({row['master_cpu']['percent']}%); "
        f"nfsd: {nfs['compounds']} COMPOUNDs, {sum(nfs['v3'].values())} NFSv3 calls, "
        f"{row['nfsd_read_bytes'] / 1048576:.1f} MiB read, all "
        f"threads busy {row['nfsd_all_busy']} times; ops "
        + (", ".join(f"{op} {c}" for op, c in ops[:10]) or "none"))


def run_mode(dirs: Dirs, mode: str, root: str, sizes: list, record: bool = False,
             check: bool = False, threads: int = 0) -> list:
    """The master of `mode` boots, with `threads` nfsd threads (0: nfsd_threads); with
    `record`, a real client's boot is recorded into the trace first (crtest.storm_record);
    then a storm of each size, each checked with `check`; their rows."""
    variant = variant_for(mode, root)
    trace = trace_for(mode, root)
    threads = threads or nfsd_threads(sizes)
    log(f"RUN  {mode}: build ({variant.root} root{', image store' if variant.store else ''}; "
        f"nfsd-threads {threads})")
    built = build_all(dirs, variant.flavor, variant.root, variant.store, variant.generator,
                      variant.image_mode, (f"nfsd-threads {threads}",))
    initrd, root_img, home_img, nodes_img, _, _ = built
    master = Node("master", variant.master_mac, MASTER_IP)
    rows = []
    with Netns() as netns:
        try:
            drives = []
            for img, disk in ((home_img, "home-disk"), (nodes_img, "nodefiles-disk")):
                drives += ["-drive",
                           f"file={disk_copy(dirs, img, f'storm-{disk}')},format=raw,if=virtio"]
            log(f"RUN  {mode}: the master boots ({variant.name})")
            boot_disk_node(dirs, master, netns, variant, initrd,
                           disk_copy(dirs, root_img, "storm-cluster-disk"),
                           f"root=LABEL=cluster rw {NODEFILES}"
                           + (" clusterroot.image=default" if variant.store else ""),
                           MASTER_MEM, drives, steps_for(variant, MASTER_STEPS))
            if record:
                record_trace(dirs, netns, variant, master, root, trace_path(root))
            if sizes:
                try:
                    image = load_image(dirs, trace, mode)
                except subprocess.CalledProcessError as e:
                    raise Fail(build_failed("the load VM's initramfs (lib/make-load-image)", e))
            running = master.command("read /proc/fs/nfsd/threads", "read /proc/fs/nfsd/threads")
            if running != str(threads):
                raise Fail(f"master: nfsd runs {running} threads, not the inventory's {threads}")
            syslog = [] if check else None
            whole = mode == "squashfs-nfs" and trace is None
            for n in sizes:
                log(f"RUN  {mode}: storm of {n}"
                    + (" (no trace of the root: the image file is read whole)" if whole else ""))
                rows.append(dict(storm(dirs, netns, master, image, mode, n, syslog),
                                 nfsd_threads=threads))
        except Fail:
            print_tail(master)
            raise
        finally:
            if master.vm is not None:
                master.vm.stop()
            if master.ctl is not None:
                master.ctl.close()
    return rows


def main(modes: list, sizes: list, root: str = "debian", json_path: str = "",
         record: bool = False, check: bool = False, threads: int = 0,
         dirs: Dirs = STORM_DIRS) -> int:
    """Storms of each size in each mode (with `record`, the tree mode's master first records
    the trace); prints their figures, writes the JSON; the exit status: with `check`, 1 when
    a storm had a problem (crtest.storm_check)."""
    problem = check_args(modes, sizes, root, record, threads)
    if problem:
        log(f"qemu-tests/storm: {problem}")
        return 64
    problem = preflight()
    if problem:
        log(f"qemu-tests/storm: {problem}")
        return 2
    interrupt_on(signal.SIGTERM)
    dirs.fresh_logs()
    out = Path(json_path) if json_path else dirs.work / ("check.json" if check else "storm.json")
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0 = time.monotonic()
    rows, failed = [], []
    trace = {}
    if record:
        modes = ["tree"] + [m for m in modes if m != "tree"]
    try:
        for mode in modes:
            path = trace_for(mode, root)
            if path is not None and not trace and not record:
                trace = {"file": str(path), **totals(read_trace(path)[1])}
                log(f"trace {path}: {trace['files']} files, "
                    f"{trace['bytes'] / 1048576:.1f} MiB per client")
            try:
                rows += run_mode(dirs, mode, root, sizes, record and mode == "tree", check,
                                 threads)
            except Fail as e:
                log(f"FAIL {mode}: {e}")
                failed.append({"mode": mode, "why": str(e)})
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({type(e).__name__} {e})")
        return 130
    if rows:
        log("\nstorms (times in s since go; over the clients that finished)")
        table = [("mode", "N", "ok", "failed", "lease median", "lease slowest", "root median",
                  "root slowest", "master CPU s", "master CPU %", "COMPOUNDs", "nfsd read MiB",
                  "nfsd all busy")]
        for r in rows:
            sm = r["summary"]

            def pick(step: str, key: str) -> str:
                return "-" if not sm[step] else f"{sm[step][key]:.1f}"

            table.append((r["mode"], str(r["n"]), str(sm["ok"]),
                          str(sm["failed"] + sm["missing"]), pick("dhcp", "median_s"),
                          pick("dhcp", "slowest_s"), pick("done", "median_s"),
                          pick("done", "slowest_s"), f"{r['master_cpu']['seconds']:.1f}",
                          f"{r['master_cpu']['percent']:.0f}", str(r["nfs"]["compounds"]),
                          f"{r['nfsd_read_bytes'] / 1048576:.0f}", str(r["nfsd_all_busy"])))
        log_table(table)
    for note in NOTES:
        log(f"  {note}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"command": " ".join(sys.argv), "started": started,
                               "root": root, "trace": trace, "rows": rows, "failed": failed,
                               "notes": NOTES, "host_cores": os.cpu_count(),
                               "seconds": round(time.monotonic() - t0, 1)}, indent=2) + "\n")
    log(f"\nJSON in {out}; console logs in {dirs.logs}; {time.monotonic() - t0:.0f} s")
    if check:
        bad = [r for r in rows if r.get("problems")]
        for r in bad:
            log(f"FAIL storm {r['mode']} N={r['n']}: {len(r['problems'])} problem(s): "
                + "; ".join(r["problems"][:5]))
        if not failed and not bad:
            storms = ", ".join(f"{r['mode']} N={r['n']}" for r in rows)
            log(f"PASS storm check: {storms}: every client finished, no DHCP, HTTP or NFS error")
        return 1 if failed or bad else 0
    return 1 if failed else 0
