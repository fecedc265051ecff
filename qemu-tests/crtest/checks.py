# SPDX-License-Identifier: MIT
"""The checks of run's scenarios: what a node's report (and, after power-off, its disk) must
show. Each raises Fail naming what differs."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from .addresses import DHCP_MTU, DHCP_OTHER_ROOT, EXPORT, SERVER_IP, dead_mac, identity, mac
from .builds import CROOT_UUID, LOCAL_DEVICE
from .report import Report
from .util import Fail

SHARED_ROOT_STAT = "751 0 0"  # mode uid gid of the shared root's "/" (lib/make-shared-root)


def check_equal(what: str, got, want) -> None:
    if got != want:
        raise Fail(f"{what}: got {got!r}, expected {want!r}")


def check_overlay_root(r: Report, lower_type: str, lower_source: Optional[str],
                       lower_opts: tuple = (), escape_search: bool = True,
                       lower_rw: bool = False) -> None:
    """/ is an overlay over a read-only (`lower_rw`: read-write) lower and a tmpfs upper,
    with the lower root's mode and owner, and writable."""
    check_equal("type of /", r.mount("/")[0], "overlay")
    ltype, lsrc, lopts = r.mount("/run/rootfs/lower")
    check_equal("type of /run/rootfs/lower", ltype, lower_type)
    if lower_source is not None:
        check_equal("source of /run/rootfs/lower", lsrc, lower_source)
    opts = lopts.split(",")
    if ("rw" if lower_rw else "ro") not in opts:
        raise Fail(f"/run/rootfs/lower is not mounted {'rw' if lower_rw else 'ro'}: {lopts}")
    for o in lower_opts:
        if o not in opts:
            raise Fail(f"/run/rootfs/lower lacks option {o}: {lopts}")
    check_equal("type of /run/rootfs/cowspace", r.mount("/run/rootfs/cowspace")[0], "tmpfs")
    check_equal("stat-lower (mode uid gid)", r.value("stat-lower"), SHARED_ROOT_STAT)
    check_equal("stat-root (mode uid gid, must equal the lower's)", r.value("stat-root"),
                r.value("stat-lower"))
    check_equal("lower-writable", r.value("lower-writable"), "yes" if lower_rw else "no")
    check_equal("written (root writable)", r.value("written"), "yes")
    check_equal("overlays-visible (/etc/overlays in the booted root)",
                r.value("overlays-visible"), "no")
    if escape_search:
        check_equal("escape-search", r.value("escape-search"), "0 found")
    check_equal("state mode", r.state.get("mode"), "overlay")


def check_state_keys(r: Report, mac: str) -> None:
    for key in ("lower_source", "lower_type", "boot_mac", "boot_iface", "node_files", "mode"):
        if key not in r.state:
            raise Fail(f"/run/clusterroot/state lacks {key} (has {sorted(r.state)})")
    check_equal("state boot_mac", r.state["boot_mac"], mac)


def check_identity_address(r: Report, n: int, nfs4: bool = True) -> None:
    """State: address=10.77.0.n/24 and, for NFSv4, nfs_identity from MAC n."""
    check_equal("state address", r.state.get("address"), f"10.77.0.{n}/24")
    if nfs4:
        check_equal("state nfs_identity", r.state.get("nfs_identity"), identity(mac(n)))


def node_files(r: Report) -> list:
    return [x for x in r.state.get("node_files", "").split(",") if x]


def check_nfs42(r: Report) -> None:
    check_overlay_root(r, "nfs4", f"{SERVER_IP}:{EXPORT}", ("vers=4.2",))
    check_state_keys(r, mac(11))
    check_identity_address(r, 11)
    check_equal("hostname-file", r.value("hostname-file"), "node1")


def check_live(r: Report, lower_type: str, source: str, identity_version: str = "") -> None:
    """A squashfs image as the lower (root=live:, clusterroot.live=): / is an overlay over the
    image's squashfs on a loop device, read-only; the state names the URL it came from
    (`source`, a regex) and the version in the file's name, which the NFSv4 identity names too
    (`identity_version`), and the node's files came from the image's /etc/overlays."""
    check_overlay_root(r, "squashfs", None)
    lsrc = r.mount("/run/rootfs/lower")[1]
    if not re.fullmatch(r"/dev/loop\d+", lsrc):
        raise Fail(f"source of /run/rootfs/lower: got {lsrc!r}, expected a loop device")
    check_equal("state lower_type", r.state.get("lower_type"), lower_type)
    if not re.fullmatch(source, r.state.get("lower_source", "")):
        raise Fail(f"state lower_source: got {r.state.get('lower_source')!r}, expected {source}")
    check_equal("state image (the version in the file's name)", r.state.get("image"), "1")
    check_state_keys(r, mac(11))
    check_identity_address(r, 11, nfs4=False)
    check_equal("state nfs_identity", r.state.get("nfs_identity"), identity(mac(11)) + identity_version)
    check_equal("hostname-file", r.value("hostname-file"), "node1")


def check_live_http(r: Report) -> None:
    check_live(r, "squashfs-http", rf"http://{re.escape(SERVER_IP)}/images/1-[0-9a-f]{{64}}\.squashfs",
               "@1")


def check_live_nfs(r: Report) -> None:
    check_live(r, "squashfs-nfs4.2",
               rf"nfs://{re.escape(SERVER_IP)}/srv/live/images/(1-[0-9a-f]{{64}}\.squashfs|default)",
               "@1")


def check_node_with_files(r: Report) -> None:
    check_overlay_root(r, "nfs4", f"{SERVER_IP}:{EXPORT}")
    check_state_keys(r, mac(11))
    check_identity_address(r, 11)
    check_equal("hostname-file", r.value("hostname-file"), "node1")
    check_equal("/etc/crtest/from-archive (from the .tar.gz)",
                r.files.get("/etc/crtest/from-archive"), "node1 from tar.gz")
    check_equal("/etc/crtest/from-dir (from the directory)",
                r.files.get("/etc/crtest/from-dir"), "node1 from directory")
    check_equal("stat of /etc/crtest/secret", r.stats.get("/etc/crtest/secret"),
                "600 0 0 regular file")
    check_equal("state node_files", sorted(node_files(r)),
                sorted([f"{mac(11)}.tar.gz", f"{mac(11)}/"]))


def check_named_node_files(r: Report) -> None:
    """Node 11 with clusterroot.nodefiles= naming its directory of the shared root's export as
    its own NFS export: that directory's files alone (no archive: an export is a tree)."""
    check_overlay_root(r, "nfs4", f"{SERVER_IP}:{EXPORT}")
    check_state_keys(r, mac(11))
    check_equal("hostname-file", r.value("hostname-file"), "node1")
    check_equal("/etc/crtest/from-dir (from the export)", r.files.get("/etc/crtest/from-dir"),
                "node1 from directory")
    check_equal("state node_files_source (clusterroot.nodefiles=)", r.state.get("node_files_source"),
                f"{SERVER_IP}:{EXPORT}/etc/overlays/{mac(11)}")
    check_equal("state node_files", node_files(r), [f"{mac(11)}/"])


def check_node_without_files(r: Report) -> None:
    check_overlay_root(r, "nfs4", f"{SERVER_IP}:{EXPORT}")
    check_state_keys(r, mac(12))
    check_identity_address(r, 12)
    check_equal("hostname-file", r.value("hostname-file"), "shared")
    if "/etc/crtest/from-archive" not in r.absent:
        raise Fail("/etc/crtest/from-archive exists on the node without node files")
    check_equal("state node_files", node_files(r), [])


def check_escape(r: Report) -> None:
    # The node's search covers the merged root, the lower and the upper (the initramfs is
    # gone by then; the agent's own tests cover it). x -> / would lead x/escaped out of /etc:
    # it is refused, as ../escaped2 is, so neither exists anywhere. The lower (and so the
    # server, see sum-after) must stay untouched.
    if r.escaped:
        raise Fail(f"malicious node files were written: {r.escaped}")
    check_overlay_root(r, "nfs4", f"{SERVER_IP}:{EXPORT}", escape_search=False)
    check_identity_address(r, 13)


def check_latehook(r: Report) -> None:
    # Late-hook mode: the otherroot handler mounted /dev/vda, the late hook moved it.
    check_overlay_root(r, "ext4", LOCAL_DEVICE)
    check_state_keys(r, mac(11))
    check_equal("state lower_source (the root the other handler mounted)",
                r.state.get("lower_source"), LOCAL_DEVICE)
    check_equal("state lower_type", r.state.get("lower_type"), "ext4")


def check_local_node11(r: Report, lower_source: str, lower_rw: bool = False) -> None:
    """Local lower (the croot disk) with overlay, and the node files of MAC :11."""
    check_overlay_root(r, "ext4", LOCAL_DEVICE, lower_rw=lower_rw)
    check_state_keys(r, mac(11))
    check_equal("state lower_source", r.state.get("lower_source"), lower_source)
    check_equal("state lower_type", r.state.get("lower_type"), "ext4")
    check_equal("hostname-file", r.value("hostname-file"), "node1")
    check_equal("/etc/crtest/from-archive (from the .tar.gz)",
                r.files.get("/etc/crtest/from-archive"), "node1 from tar.gz")
    check_equal("/etc/crtest/from-dir (from the directory)",
                r.files.get("/etc/crtest/from-dir"), "node1 from directory")
    check_equal("state node_files", sorted(node_files(r)),
                sorted([f"{mac(11)}.tar.gz", f"{mac(11)}/"]))


def check_local_label(r: Report) -> None:
    check_local_node11(r, "LABEL=croot")
    # The links udev made in the initramfs (relative, by label and UUID; by-path and
    # by-diskseq ones besides), which the agent found the disk by.
    want = {"/dev/disk/by-label/croot": "../../vda", f"/dev/disk/by-uuid/{CROOT_UUID}": "../../vda"}
    got = {link: r.devlinks.get(link) for link in want}
    check_equal("udev links of the disk by label and UUID", got, want)


def check_local_uuid(r: Report) -> None:
    check_local_node11(r, f"UUID={CROOT_UUID}")


def check_image_pinned(r: Report, images: str) -> None:
    """clusterroot.image=default: version 2 (default's) is the lower, the store unmounted."""
    check_equal("state image", r.state.get("image"), "2")
    check_equal("state image_choice", r.state.get("image_choice"), "default")
    check_equal("/crtest/version (the version default names)", r.files.get("/crtest/version"), "2")
    if "/run/rootfs/images" in r.mounts:
        raise Fail(f"the store {images} is still mounted on /run/rootfs/images: "
                   f"{r.mounts['/run/rootfs/images']}")
    record = r.files.get("/run/clusterroot/node-files") or ""
    if not re.search(r"^f [0-7]{4} [0-9a-f]{64} /etc/hostname$", record.replace(" f ", "\nf "), re.M):
        raise Fail(f"/run/clusterroot/node-files does not record /etc/hostname: {record!r}")


def check_local_image(r: Report) -> None:
    check_local_node11(r, "LABEL=cstore")
    check_image_pinned(r, "LABEL=cstore")


def check_local_rw(r: Report) -> None:
    check_local_node11(r, "LABEL=croot", lower_rw=True)
    check_equal("lower-marker (written into /run/rootfs/lower)", r.value("lower-marker"),
                "written")


def disk_files(img: Path, paths: list) -> dict:
    """path -> content (None if absent) in the ext4 image as the next mount sees it: the
    node powers off without unmounting, so e2fsck replays the journal first, on a copy."""
    copy = img.with_name(img.name + ".fsck")
    shutil.copyfile(img, copy)
    try:
        fsck = subprocess.run(["e2fsck", "-fy", str(copy)], capture_output=True, text=True)
        if fsck.returncode not in (0, 1):
            raise Fail(f"e2fsck of a copy of {img.name} failed ({fsck.returncode}): "
                       f"{' '.join(fsck.stdout.split())[-300:]}")
        got = {}
        for path in paths:
            stat = subprocess.run(["debugfs", "-R", f"stat {path}", str(copy)],
                                  capture_output=True, text=True)
            if "Inode:" not in stat.stdout:
                got[path] = None
                continue
            got[path] = subprocess.run(["debugfs", "-R", f"cat {path}", str(copy)],
                                       capture_output=True, text=True).stdout
        return got
    finally:
        copy.unlink(missing_ok=True)


def check_local_rw_disk(img: Path) -> None:
    got = disk_files(img, ["/crtest-written-to-lower", "/etc/written-by-node",
                           "/root/written-by-node", "/etc/hostname"])
    check_equal("/crtest-written-to-lower on the disk (written into /run/rootfs/lower)",
                got["/crtest-written-to-lower"], "written to the lower by the node\n")
    for path in ("/etc/written-by-node", "/root/written-by-node"):
        if got[path] is not None:
            raise Fail(f"{path}, written to the overlay root, reached the disk: {got[path]!r}")
    check_equal("/etc/hostname on the disk (node files go to the overlay only)",
                got["/etc/hostname"], "shared\n")


def check_local_off(r: Report) -> None:
    ftype, src, opts = r.mount("/")
    check_equal("type of /", ftype, "ext4")
    check_equal("source of /", src, LOCAL_DEVICE)
    if "ro" not in opts.split(","):
        raise Fail(f"/ is not mounted ro (no rw on the command line): {opts}")
    for mp in ("/run/rootfs/cowspace", "/run/rootfs/lower"):
        if mp in r.mounts:
            raise Fail(f"clusterroot=off, yet {mp} is mounted: {r.mounts[mp]}")
    check_equal("state mode", r.state.get("mode"), "plain")
    check_equal("state lower_source", r.state.get("lower_source"), "LABEL=croot")
    check_equal("state lower_type", r.state.get("lower_type"), "ext4")
    check_equal("hostname-file (no node files without the overlay)",
                r.value("hostname-file"), "shared")
    check_equal("overlays-visible (the plain shared root)", r.value("overlays-visible"), "yes")


def check_zfs_node11(r: Report, dataset: str, lower_rw: bool = False) -> None:
    """A ZFS dataset as the lower, the overlay on top, the node files of MAC :11."""
    check_overlay_root(r, "zfs", dataset, lower_rw=lower_rw)
    check_state_keys(r, mac(11))
    check_equal("state lower_source", r.state.get("lower_source"), dataset)
    check_equal("state lower_type", r.state.get("lower_type"), "zfs")
    check_equal("hostname-file", r.value("hostname-file"), "node1")
    check_equal("/etc/crtest/from-archive (from the .tar.gz)",
                r.files.get("/etc/crtest/from-archive"), "node1 from tar.gz")
    check_equal("state node_files", sorted(node_files(r)),
                sorted([f"{mac(11)}.tar.gz", f"{mac(11)}/"]))


def check_zfs(r: Report) -> None:
    check_zfs_node11(r, "tank/root")


def check_zfs_image(r: Report) -> None:
    check_zfs_node11(r, "tank/images/2")
    check_image_pinned(r, "tank/images")


def check_zfs_rw(r: Report) -> None:
    check_zfs_node11(r, "tank/legacy", lower_rw=True)
    check_equal("state node_files_source (clusterroot.nodefiles=)",
                r.state.get("node_files_source"), "zfs:tank/nodefiles")
    check_equal("lower-marker (written into /run/rootfs/lower)", r.value("lower-marker"),
                "written")


def check_zfs_bootfs(r: Report) -> None:
    # Void's zfs hook's handler mounted the pool's bootfs, read-write (it does so unless the
    # command line says ro); the late hook moved it as it was.
    check_overlay_root(r, "zfs", "tank/root", lower_rw=True)
    check_state_keys(r, mac(11))
    check_equal("state lower_source (the root the zfs handler mounted)",
                r.state.get("lower_source"), "tank/root")
    check_equal("hostname-file", r.value("hostname-file"), "node1")


def check_v3(r: Report) -> None:
    check_overlay_root(r, "nfs", f"{SERVER_IP}:{EXPORT}", ("vers=3",))
    check_state_keys(r, mac(12))
    check_identity_address(r, 12, nfs4=False)


def check_identities_differ(results: list) -> None:
    ids = [r.state.get("nfs_identity") for _, r in results]
    if len(set(ids)) != len(ids):
        raise Fail(f"nodes share an NFSv4 client identity: {ids}")


def check_fallback(r: Report) -> None:
    check_overlay_root(r, "nfs4", f"{SERVER_IP}:{EXPORT}", ("vers=4.0",))
    check_state_keys(r, mac(12))
    check_equal("state lower_type", r.state.get("lower_type"), "nfs4.0")
    check_identity_address(r, 12)


def check_dhcp_node(r: Report, n: int, root_path: str, lower_source: str) -> None:
    """Booted over NFS with everything the lease of node n carries applied."""
    check_overlay_root(r, "nfs4", lower_source)
    check_state_keys(r, mac(n))
    check_identity_address(r, n)
    iface = r.state["boot_iface"]
    link = r.links.get(iface)
    if link is None:
        raise Fail(f"the node reports no NIC {iface} (boot_iface); NICs: {sorted(r.links)}")
    check_equal(f"MAC of {iface}", link.get("mac"), mac(n))
    check_equal(f"addresses of {iface}", link.get("addr"), f"10.77.0.{n}/24")
    check_equal(f"MTU of {iface} (DHCP option 26)", link.get("mtu"), DHCP_MTU)
    lease = r.leases.get(iface)
    if lease is None:
        raise Fail(f"no lease file /run/clusterroot/net/{iface} (lease files: {sorted(r.leases)})")
    want = {"address": f"10.77.0.{n}", "prefix": "24", "router": SERVER_IP, "dns": SERVER_IP,
            "domain": "cluster.test", "hostname": f"dhcp-node{n}", "mtu": DHCP_MTU,
            "root_path": root_path, "lease_time": "3600", "server": SERVER_IP}
    for key, value in want.items():
        check_equal(f"/run/clusterroot/net/{iface} {key}", lease.get(key), value)
    # The lease's name is set before the NFS mount; then the shared root's /etc/hostname
    # ("shared"), which every real init prefers, becomes the final name (with a warning), and
    # the state file records that.
    check_equal("running host name (the image's /etc/hostname over DHCP option 12)",
                r.value("hostname"), "shared")
    check_equal("state hostname (the final name)", r.state.get("hostname"), "shared")
    if f"nameserver {SERVER_IP}" not in r.resolv:
        raise Fail(f"/run/clusterroot/resolv.conf lacks 'nameserver {SERVER_IP}': {r.resolv}")
    if not any(re.fullmatch(r"(search|domain)\s+cluster\.test", x) for x in r.resolv):
        raise Fail(f"/run/clusterroot/resolv.conf lacks 'search cluster.test': {r.resolv}")


def check_dhcp(r: Report) -> None:
    check_dhcp_node(r, 21, f"{SERVER_IP}:{EXPORT}", f"{SERVER_IP}:{EXPORT}")
    check_equal("lease files", sorted(r.leases), [r.state["boot_iface"]])


def check_dhcp_two_nics(r: Report) -> None:
    check_dhcp_node(r, 23, f"{SERVER_IP}:{EXPORT}", f"{SERVER_IP}:{EXPORT}")
    dead = [name for name, link in r.links.items() if link.get("mac") == dead_mac(23)]
    if len(dead) != 1:
        raise Fail(f"the NIC {dead_mac(23)} is missing: {r.links}")
    if dead[0] in r.leases:
        raise Fail(f"a lease file for {dead[0]}, where no DHCP server is: {r.leases[dead[0]]}")
    ms = r.state.get("time_network_ms", "")
    if not ms.isdigit() or int(ms) >= 20000:
        raise Fail(f"state time_network_ms={ms!r}: the NIC without a DHCP server cost a wait "
                   "(want < 20000 with clusterroot.timeout=60)")


def check_dhcp_nfsroot_path(r: Report) -> None:
    n, other_root = DHCP_OTHER_ROOT
    # The lease's root path names 10.77.0.99; nfsroot=/srv/root wins, with the DHCP server.
    check_dhcp_node(r, n, other_root, f"{SERVER_IP}:{EXPORT}")
