# SPDX-License-Identifier: MIT
"""The master's phases: install (the installed system boots its own entry, the new disks are
plugged in, stage install), master (the master boots through the agent; stage master; the
cluster test's checks of a master) and maintenance (the image itself boots read-only; the
image is unchanged and holds nothing of a node's). The clients' phases are in clients.py."""

import os
import re
import subprocess

from ..cluster.checks import nfsd_facts
from ..cluster.flow import node_spec
from ..cluster.node import NodeFail, check
from ..cluster.variants import CLIENTS, EXPORT, MASTER_IP, NFSD_WANT
from ..netns import Netns
from ..paths import Dirs
from ..report import Report
from ..util import Fail, log
from .disks import Disks, image_secrets, loop_mount, manifest, manifest_diff
from .master import (CLUSTER_MAC, SITE_MAC, Master, PhaseFail, boot_master, power_off,
                     run_stage, sh, stop)


def plug_disks(m: Master, disks: Disks) -> None:
    """The two new disks, plugged in one after the other into the running installed system:
    sdb, then sdc."""
    for lun, (img, name) in enumerate(zip(disks.blank, ("sdb", "sdc")), start=1):
        out = m.vm.hmp(f"drive_add 0 file={img},format=raw,if=none,id=hd{lun},cache=unsafe")
        out += m.vm.hmp(f"device_add scsi-hd,drive=hd{lun},bus=scsi0.0,channel=0,scsi-id=0,"
                        f"lun={lun},id=disk{lun}")
        if "rror" in out:
            raise PhaseFail("install", f"QEMU did not plug in {img.name}: {out.strip()}", m)
        rc, got = sh(m, f"for i in $(seq 300); do [ -e /sys/block/{name} ] && exit 0; sleep 0.1; "
                        f"done; ls /sys/block; exit 1")
        if rc != 0:
            raise PhaseFail("install", f"the disk plugged in did not appear as {name}: {got}", m)


def check_devices(m: Master) -> None:
    """The names README's steps use: sda1 the root, sdb and sdc the blank disks (vda: the
    checkout); ens4 the site NIC with its address, ens5 the cluster NIC."""
    rc, out = sh(m, "for d in sda sdb sdc vda; do echo \"$d $(cat /sys/block/$d/size)\"; done; "
                    "for n in ens4 ens5; do echo \"$n $(cat /sys/class/net/$n/address)\"; done; "
                    "findmnt -no SOURCE /; ip -o -4 addr show dev ens4")
    want = {"sda": 8 << 21, "sdb": 64 << 11, "sdc": 64 << 11, "vda": 128 << 11,  # sectors
            "ens4": SITE_MAC, "ens5": CLUSTER_MAC}
    got = dict(line.split(" ", 1) for line in out.splitlines() if line.count(" ") == 1)
    for name, value in want.items():
        if got.get(name) != str(value):
            raise PhaseFail("install", f"the installed system's {name} is {got.get(name)!r}, "
                                       f"expected {value}: {out}", m)
    if "/dev/sda1" not in out or "10.88.0.2/24" not in out:
        raise PhaseFail("install", f"the installed system's root is not /dev/sda1 or ens4 has "
                                   f"not 10.88.0.2/24: {out}", m)
    log("  the installed system: root /dev/sda1, blank disks sdb and sdc (checkout vda); NICs "
        "ens4 (10.88.0.2/24) and ens5")


def phase_install(dirs: Dirs, netns: Netns, disks: Disks, stages: dict) -> None:
    log("RUN  install: the installed system boots its own entry, then README's install steps")
    m = boot_master(dirs, netns, disks, "install", blank_at_boot=False)
    try:
        plug_disks(m, disks)
        check_devices(m)
        run_stage(dirs, m, "install", stages)
        power_off(m)
    finally:
        stop(m)


def mark_secrets(dirs: Dirs, disks: Disks) -> dict:
    """Test scaffolding between boots: each node's secret marker (mode 0600) in its directory on
    the node-files disk the steps made, for the secrecy probe; then the probe's specs."""
    macs = [mac for _, mac, _ in CLIENTS] + [CLUSTER_MAC]
    labels = {img: subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL", img],
                                  capture_output=True, text=True).stdout.strip()
              for img in disks.blank}
    nodefiles = [img for img, label in labels.items() if label == "nodefiles"]
    if len(nodefiles) != 1 or sorted(labels.values()) != ["home", "nodefiles"]:
        raise PhaseFail("install", f"after the install steps, sdb and sdc are labelled "
                                   f"{sorted(labels.values())}, expected home and nodefiles")
    disks.nodefiles = nodefiles[0]
    with loop_mount(disks.nodefiles, 0, dirs.work, writable=True) as mnt:
        for mac in macs:
            d = mnt / mac
            if not d.is_dir():
                raise PhaseFail("install", f"the node-files disk has no directory {mac}/ after "
                                           f"the install steps: {sorted(os.listdir(mnt))}")
            f = d / "crtest-secret"
            f.write_text(f"CRSECRET-{mac.replace(':', '')}\n")
            os.chown(f, 0, 0)
            os.chmod(f, 0o600)
    return {mac: node_spec(disks.nodefiles, mac) for mac in macs}


def check_master_boot(m: Master, rep) -> None:
    """The master booted through the agent with its node files, and serves: qemu-tests/cluster's
    checks of its master (check_master), but for the root, which GRUB names by UUID."""
    r = rep
    c = check
    c(m, "type of /", r.mount("/")[0], "overlay")
    ltype, _, lopts = r.mount("/run/rootfs/lower")
    c(m, "type of /run/rootfs/lower", ltype, "ext4")
    c(m, "/run/rootfs/lower mounted rw (rw on the command line)", "rw" in lopts.split(","), True)
    root = next((a.split("=", 1)[1] for a in m.vm.cmdline.split() if a.startswith("root=")), None)
    c(m, "state lower_source (the entry's root=)", r.state.get("lower_source"), root)
    c(m, "state boot_mac", r.state.get("boot_mac"), CLUSTER_MAC)
    c(m, "state node_files", r.state.get("node_files"), f"{CLUSTER_MAC}/")
    c(m, "state node_files_source", r.state.get("node_files_source"), "LABEL=nodefiles")
    c(m, "the node-files disk unmounted before switch_root", "/run/rootfs/nodefiles" in r.mounts,
      False)
    c(m, "hostname-file (node file)", r.values.get("hostname-file"), "master")
    c(m, "/home under the NFS rootdir (bind of /home)", r.mount("/run/rootfs/lower/home")[:2],
      r.mount("/home")[:2])
    home = r.mount("/home")
    c(m, "/home (its own disk, LABEL=home)", (home[0], "rw" in home[2].split(",")), ("ext4", True))
    c(m, "fstab", r.values.get("fstab"), "mounted")
    nodes = r.mount("/run/rootfs/lower/srv/nfs/nodes")
    c(m, "the node-files disk under the NFS rootdir, read-write", (nodes[0],
      "rw" in nodes[2].split(",")), ("ext4", True))
    c(m, "/srv/nfs/root under the NFS rootdir (bind of the lower)",
      r.mount(f"/run/rootfs/lower{EXPORT}")[0], "ext4")
    c(m, "nfsd: lease, grace, client records (nfs.conf)", nfsd_facts(r), NFSD_WANT)
    exports = next((x for x in r.lines if x.startswith("master: exports: ")), "")
    wanted = [(EXPORT, r"172\.23\.199\.0/24"), ("/home", r"172\.23\.199\.0/24")]
    wanted += [(f"/srv/nfs/nodes/{mac}", re.escape(ip)) for _, mac, ip in CLIENTS]
    for path, client in wanted:
        if not re.search(rf"{re.escape(path)}\s+{client}\(", exports):
            raise NodeFail(m, f"master: exportfs -v does not list {path} for {client}: "
                                 f"{exports!r}")
    # As cluster.check_debian, for a master that configures its NICs itself.
    c(m, "is-system-running", r.values.get("system"), "running")
    c(m, "failed units", r.values.get("failed-units"), "")
    c(m, "state machine_id_source (crctl sync made it)", r.state.get("machine_id_source"),
      "node files")
    c(m, "state hostname (the final name)", r.state.get("hostname"), "master")
    c(m, "ens4's site address (its node files' network/interfaces)",
      r.links.get("ens4", {}).get("addr"), "10.88.0.2/24")
    c(m, "ens5's cluster address", r.links.get("ens5", {}).get("addr"), f"{MASTER_IP}/24")


def master_report(dirs: Dirs, m: Master) -> Report:
    """The master's facts now (after stage master): as crtest-admin reports them at boot."""
    rc, out = sh(m, """
say() { echo "CRTEST $*"; }
say "system: $(systemctl is-system-running)"
say "failed-units: $(systemctl --failed --plain --no-legend | awk '{ printf "%s ", $1 }')"
if systemctl -q is-active nfs-server.service dnsmasq.service lighttpd.service; then
    say "master: exports: $(exportfs -v | tr -s ' \\t\\n' ' ')"
    crtest-report nfsd
    say "master: services started"
fi
if systemctl -q is-active local-fs.target remote-fs.target; then say "fstab: mounted"; else say "fstab: not all mounted"; fi
crtest-report facts
""")
    (dirs.logs / "master-report.log").write_text(out)
    return Report.parse(out.splitlines())


def phase_master(dirs: Dirs, netns: Netns, disks: Disks, stages: dict,
                 stage: bool = True) -> Master:
    """The master boots through the agent; stage master runs, unless `stage` is false (--from
    a later phase: the last run's disks had it already)."""
    log("RUN  master: the entry the steps made: the master boots through the agent")
    m = boot_master(dirs, netns, disks, "master")
    try:
        if stage:
            run_stage(dirs, m, "master", stages)
        rep = master_report(dirs, m)
        try:
            check_master_boot(m, rep)
        except NodeFail as e:
            raise PhaseFail("master", str(e), m)
        except Fail as e:
            raise PhaseFail("master", f"master: {e}", m)
        m.report = rep
        log(f"  master: overlay over {rep.state.get('lower_source')} rw, node files from "
            f"LABEL=nodefiles, ens4 10.88.0.2 and ens5 {MASTER_IP}, nfsd, dnsmasq and lighttpd "
            "up, the exports")
    except BaseException:
        stop(m)
        raise
    return m


def phase_maintenance(dirs: Dirs, netns: Netns, disks: Disks, stages: dict) -> None:
    log("RUN  maintenance: the master boots the image itself (clusterroot=off), read-only")
    before, marked = manifest(disks.root, dirs.work)
    if marked:
        raise PhaseFail("maintenance", f"the image holds node files (their secret markers): "
                                       f"{', '.join(marked[:20])}")
    m = boot_master(dirs, netns, disks, "maintenance", maintenance=True)
    try:
        r = m.report
        check(m, "the maintenance boot's / (the image itself)",
                 (r.mount("/")[0], "ro" in r.mount("/")[2].split(",")), ("ext4", True))
        check(m, "state mode", r.state.get("mode"), "plain")
        log(f"  maintenance: / is the image, read-only; {r.values.get('system')} (failed: "
            f"{r.values.get('failed-units') or 'none'}; no node files, no network)")
        run_stage(dirs, m, "maintenance", stages)
        power_off(m)
    except NodeFail as e:
        raise PhaseFail("maintenance", str(e), m)
    finally:
        stop(m)
    after, _ = manifest(disks.root, dirs.work)
    changes = manifest_diff(before, after)
    if changes:
        raise PhaseFail("maintenance", f"the maintenance boot wrote into the image: "
                                       f"{'; '.join(changes[:30])}")
    bad = image_secrets(after)
    if bad:
        raise PhaseFail("maintenance", f"the image holds what must be each node's own: "
                                       f"{'; '.join(bad)}")
    log(f"  the image after the maintenance boot: {len(after)} entries, none changed; no "
        "node's files (secret markers), machine-id, ssh host keys or random seed in it")
