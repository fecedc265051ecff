# SPDX-License-Identifier: MIT
"""One variant of the cluster test end to end, in its own network namespace: the site DHCP
server (proxy), the master from its disk, the clients over PXE; the checks of each node, of
the master's logs, of /home, of crctl; the secrecy probe; the reboots (dhcp, dracut)."""

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from ..netns import Netns
from ..paths import AGENT_DIR, CLUSTER_DIRS, KERNEL, OVMF_CODE, OVMF_VARS, QEMU, Dirs
from ..report import Report
from ..runner import preflight as run_preflight
from ..util import Fail, Interrupted, interrupt_on, log
from ..vm import VM, ControlPort, PxeVM
from .build import build_all, disk_copy
from .checks import (check_client, check_http_log, check_master, check_proxy_log,
                     diff_matches, image_list, master_syslog, render_matches, served_from_store,
                     shared_home)
from .node import (CLIENT_STEPS, MASTER_STEPS, SITE_DHCP_STEPS, Node, NodeFail, print_tail,
                   steps_for, table)
from .reboots import ride_out_reboots
from .variants import (CLIENT_MEM, CLIENTS, DEBIAN_POWEROFF_S, MASTER_IP, MASTER_MEM,
                       NODEFILES, SITE_DHCP_IP, SITE_DHCP_MAC, SITE_DHCP_MEM, VARIANTS,
                       VM_TIMEOUT_S, Variant)


def boot_disk_node(dirs: Dirs, node: Node, netns: Netns, variant: Variant, initrd: Path,
                   disk: Path, append: str, mem: str, extra: list, steps: list,
                   boot: str = "") -> None:
    """Powers on a node that boots its disk; `boot` names a later boot of it (its console
    log is <variant>-<node><boot>.console.log)."""
    name = f"{variant.name}-{node.name}{boot}"
    node.ctl = ControlPort(dirs.work / f"{name}-{os.getpid()}.sock")
    node.vm = VM(dirs, name, netns, [(node.mac, "br0")], KERNEL,
                 initrd, " ".join(filter(None, ["console=ttyS0", variant.flavor.panic, append])),
                 mem, VM_TIMEOUT_S, disk=disk,
                 extra=extra + node.ctl.qemu_args())
    node.boot(steps)
    if node.error:
        raise NodeFail(node, node.error)
    log(f"  {node.name} up in {node.vm.elapsed():.1f}s (switch_root after {node.ready_s:.1f}s)")


def run_cluster(dirs: Dirs, netns: Netns, built: tuple, variant: Variant, nodes: dict) -> None:
    initrd, root_img, home_img, nodes_img, expected, rendered = built
    master = nodes["master"]

    def drive(img: Path, name: str) -> list:
        return ["-drive", f"file={disk_copy(dirs, img, f'{variant.name}-{name}')},format=raw,if=virtio"]

    if variant.site_dhcp:
        log(f"RUN  dhcp: the site's DHCP server ({SITE_DHCP_IP}) boots the same image")
        boot_disk_node(dirs, nodes["dhcp"], netns, variant, initrd,
                       disk_copy(dirs, root_img, f"{variant.name}-dhcp-disk"),
                       f"root=LABEL=cluster {NODEFILES}", SITE_DHCP_MEM,
                       drive(nodes_img, "dhcp-nodefiles-disk"), SITE_DHCP_STEPS)

    log("RUN  master: boots its disk through the agent, then starts nfsd and dnsmasq")
    master_disk = disk_copy(dirs, root_img, f"{variant.name}-cluster-disk")
    master_disks = drive(home_img, "home-disk") + drive(nodes_img, "nodefiles-disk")

    def boot_master(boot: str = "") -> None:
        """Powers the master on, with the disks of its first boot."""
        boot_disk_node(dirs, master, netns, variant, initrd, master_disk,
                       f"root=LABEL=cluster rw {NODEFILES}"
                       + (" clusterroot.image=default" if variant.store else ""), MASTER_MEM,
                       master_disks, steps_for(variant, MASTER_STEPS), boot)

    boot_master()

    clients = [nodes[name] for name, _, _ in CLIENTS]
    root = ("the default's squashfs file in RAM" if variant.image_mode == "squashfs-http"
            else "NFS root")
    log(f"RUN  {', '.join(c.name for c in clients)}: PXE boot from the master, {root}")
    for c in clients:
        c.ctl = ControlPort(dirs.work / f"{variant.name}-{c.name}-{os.getpid()}.sock")
        c.vm = PxeVM(dirs, f"{variant.name}-{c.name}", netns, c.mac, CLIENT_MEM, VM_TIMEOUT_S,
                     c.ctl.qemu_args(), uefi=c.name in variant.uefi)
    threads = [threading.Thread(target=c.boot,
                                args=(steps_for(variant, CLIENT_STEPS, c.name in variant.uefi),),
                                daemon=True)
               for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)
    for c in clients:
        if c.error:
            raise NodeFail(c, c.error)
        log(f"  {c.name} up in {c.vm.elapsed():.1f}s (switch_root after {c.ready_s:.1f}s)")

    for n in nodes.values():
        n.vm.console.poll()
        n.report = Report.parse(n.vm.console.lines)
    for n in [master] + clients:
        try:
            check_master(n, variant) if n is master else check_client(n, variant)
        except NodeFail:
            raise
        except Fail as e:
            raise NodeFail(n, f"{n.name}: {e}")
    syslog = master_syslog(dirs, master, variant)
    check_http_log(master, clients, {c.name: ["ipxe.efi"] if c.name in variant.uefi else []
                                     for c in clients}, syslog, variant)
    if variant.store:
        served_from_store(master)
    if variant.site_dhcp:
        check_proxy_log(master, clients, syslog)
    if clients[0].report.state.get("nfs_identity") == clients[1].report.state.get("nfs_identity"):
        raise NodeFail(clients[1], "the clients share an NFSv4 client identity")
    log("RUN  /home: a file from each client read on the other; a lock held on each")
    shared_home(clients[0], clients[1], master)
    log("RUN  render: each client's /etc is what crctl render NODE said, file by file")
    for c in clients:
        render_matches(c, expected[c.name])
    log("RUN  diff: crctl diff NODE on each client's boot record")
    macs = {name: mac for name, mac, _ in CLIENTS}
    for c in clients:
        diff_matches(dirs, c, macs[c.name], variant.store, rendered)
    if variant.store:
        log("RUN  image list: crctl on the master names the version each node runs")
        image_list(master, [master] + clients)
    if variant.root == "debian":
        # The secrecy probe reads every file of the root as nobody: minutes for a 400 MB
        # root over NFS under TCG, and issue 10's variants already run it on the same agent.
        log("RUN  poweroff: the clients, then the master, shut down cleanly")
        for n in clients + [master]:
            poweroff(n)
        return
    log("RUN  secrets: each client looks for every other node's files, as root and as nobody")
    every = [mac for _, mac, _ in CLIENTS] + [v.master_mac for v in VARIANTS] + [SITE_DHCP_MAC]
    specs = {mac: node_spec(nodes_img, mac) for mac in dict.fromkeys(every)}
    for c in clients:
        others = " ".join(specs[m] for m in specs if m != c.mac)
        secrets(c, f"secrets {specs[c.mac]} {MASTER_IP} {others}")
    if variant.reboots:
        ride_out_reboots(master, clients, boot_master, variant.reboots,
                         root_in_ram=variant.image_mode == "squashfs-http")


def node_spec(img: Path, mac: str) -> str:
    """MAC@DIR-INO:DIR-GEN:SECRET-INO:SECRET-GEN[:HOST-INO:HOST-GEN] of a node's directory on
    the node-files disk (debugfs), for the secrecy probe's forged file handles."""
    fields = []
    for path in (f"/{mac}", f"/{mac}/crtest-secret", f"/{mac}/hostname"):
        out = subprocess.run(["debugfs", "-R", f"stat {path}", str(img)], capture_output=True,
                             text=True).stdout
        ino, gen = re.search(r"Inode: (\d+)", out), re.search(r"Generation: (\d+)", out)
        if ino and gen:
            fields += [ino.group(1), gen.group(1)]
    return f"{mac}@{':'.join(fields)}" if len(fields) >= 4 else mac


def secrets(node: Node, line: str) -> None:
    """Runs the secrecy probe on a client; any leak fails the variant."""
    t0 = time.monotonic()
    got = node.command(line, "secrets", timeout_s=600)
    node.vm.console.poll()
    probes = [x for x in node.vm.console.lines if x.startswith("CRTEST probe: ")]
    for p in probes:
        if "LEAK" in p:
            log(f"  {node.name}: {p.removeprefix('CRTEST probe: ')}")
    if not got.startswith("ok"):
        raise NodeFail(node, f"{node.name}: secrecy probe: {got}")
    log(f"  {node.name}: secrets: {got} in {time.monotonic() - t0:.0f}s")


def poweroff(node: Node) -> None:
    """A clean shutdown (systemctl poweroff) that ends within DEBIAN_POWEROFF_S."""
    node.ctl.send("poweroff")
    t0 = time.monotonic()
    if not node.vm.wait_exit(DEBIAN_POWEROFF_S):
        raise NodeFail(node, f"{node.name}: still running {DEBIAN_POWEROFF_S} s after "
                             "systemctl poweroff")
    log(f"  {node.name}: powered off in {time.monotonic() - t0:.1f}s")


def shutdown(nodes: dict) -> None:
    order = ([n for n in nodes.values() if n.name not in ("master", "dhcp")]
             + [n for n in nodes.values() if n.name in ("master", "dhcp")])
    for n in order:
        if n.vm is None:
            continue
        if n.vm.alive() and n.ctl is not None and n.ctl.sock is not None:
            try:
                n.ctl.send("poweroff")
                n.vm.wait_exit(20)
            except OSError:
                pass
        n.vm.stop()
        if n.ctl is not None:
            n.ctl.close()


def preflight() -> Optional[str]:
    problem = run_preflight()
    if problem:
        return problem
    for path, pkg in ((Path("/usr/lib/PXELINUX/pxelinux.0"), "pxelinux"),
                      (Path("/usr/lib/syslinux/modules/bios/ldlinux.c32"), "syslinux-common"),
                      (Path("/usr/sbin/dnsmasq"), "dnsmasq-base"),
                      (Path("/usr/sbin/rpc.nfsd"), "nfs-kernel-server"),
                      (Path("/usr/bin/flock"), "util-linux"),
                      (Path("/usr/lib/ipxe/undionly.kpxe"), "ipxe"),
                      (Path("/usr/lib/ipxe/ipxe.efi"), "ipxe"),
                      (OVMF_CODE, "ovmf"), (OVMF_VARS, "ovmf")):
        if not path.exists():
            return f"no {path} (install {pkg})"
    # QEMU loads the virtio NIC's boot ROM, efi-virtio.rom, from its firmware path.
    firmware = subprocess.run([QEMU, "-L", "help"], capture_output=True, text=True).stdout
    if not any((Path(d) / "efi-virtio.rom").exists() for d in firmware.split()):
        return f"QEMU finds no efi-virtio.rom in {' '.join(firmware.split())} (install ipxe-qemu)"
    agent = AGENT_DIR / "clusterroot"
    if not os.access(agent, os.X_OK):
        return f"no agent binary {agent}: build it with scripts/build-agent"
    return None


def run_variant(dirs: Dirs, built: tuple, variant: Variant, keep: bool) -> bool:
    """Boots one setup in its own network namespace; True if it passed."""
    t0 = time.monotonic()
    log(f"RUN  cluster-{variant.name}: {variant.doc}")
    nodes = {}
    if variant.site_dhcp:
        nodes["dhcp"] = Node("dhcp", SITE_DHCP_MAC, SITE_DHCP_IP)
    nodes["master"] = Node("master", variant.master_mac, MASTER_IP)
    for name, mac, ip in CLIENTS:
        nodes[name] = Node(name, mac, ip)
    ok = False
    with Netns() as netns:
        try:
            run_cluster(dirs, netns, built, variant, nodes)
            ok = True
        except NodeFail as e:
            msg = str(e)
            if not msg.startswith(f"{e.node.name}: "):
                msg = f"{e.node.name}: {msg}"
            log(f"FAIL cluster-{variant.name}: {msg} [{time.monotonic() - t0:.1f}s]")
            print_tail(e.node)
            if e.node.name != "master":
                print_tail(nodes["master"])
        except Fail as e:
            log(f"FAIL cluster-{variant.name}: {e} [{time.monotonic() - t0:.1f}s]")
        try:
            if ok or any(n.report for n in nodes.values()):
                table(list(nodes.values()))
            if keep:
                log(f"  --keep: the VMs run on in network namespace {netns.name}; command "
                    f"ports in {dirs.work}/*.sock; Ctrl-C stops them")
                for n in nodes.values():
                    if n.ctl is not None and n.ctl.sock is not None:
                        n.ctl.sock.close()   # QEMU takes one connection at a time
                        n.ctl.sock = None
                while True:
                    time.sleep(3600)
        finally:
            shutdown(nodes)
    if ok:
        log(f"PASS cluster-{variant.name} [{time.monotonic() - t0:.1f}s]")
    return ok


def main(names: list, keep: bool = False, dirs: Dirs = CLUSTER_DIRS) -> int:
    """Runs the variants `names` (none: all); the exit status."""
    by_name = {v.name: v for v in VARIANTS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        log(f"unknown variant(s): {', '.join(unknown)}; known: {', '.join(by_name)}")
        return 64
    selected = [by_name[n] for n in dict.fromkeys(names)] or VARIANTS

    problem = preflight()
    if problem:
        log(f"qemu-tests/cluster: {problem}")
        return 2

    interrupt_on(signal.SIGTERM, signal.SIGHUP)
    dirs.fresh_logs()

    t0 = time.monotonic()
    passed = failed = 0
    try:
        built: dict = {}
        for variant in selected:
            kind = (variant.flavor, variant.root, variant.store, variant.generator,
                    variant.image_mode, variant.package)
            try:
                if kind not in built:
                    built[kind] = build_all(dirs, *kind[:5], package=variant.package)
            except Fail as e:
                log(f"FAIL cluster-{variant.name}: {e}")
                failed += 1
                continue
            if run_variant(dirs, built[kind], variant, keep):
                passed += 1
            else:
                failed += 1
    except (KeyboardInterrupt, Interrupted) as e:
        log(f"interrupted ({type(e).__name__} {e}); cleaned up")
        return 130
    log(f"total {time.monotonic() - t0:.1f}s; logs in {dirs.logs}")
    log(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1
