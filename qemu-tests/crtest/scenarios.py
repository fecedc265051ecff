# SPDX-License-Identifier: MIT
"""run's scenarios, each declared once with the flavors it runs under (crtest.flavors): under
BUSYBOX as its name, under another as the flavor's prefix and its name (sd-nfs42,
dracut-nfs42, dracut-sd-nfs42). Add a scenario under every flavor with flavors=ALL; run it
under one more by adding that flavor to its field. What differs under a flavor comes from the
flavor (its configs, its console lines: STARTED, EMERGENCY, its NFS root spelling: a cmdline
function of the flavor) or, where a scenario's own boot differs, from `per_flavor`, which says
why. qemu-tests/README.md's scenario tables name them all (a test compares)."""

import re

from .addresses import (DHCP_OTHER_ROOT, DHCP_UNKNOWN, EXPORT, OTHER_HOST_MAC, SERVER_IP,
                        dead_mac, ip_param, mac)
from .builds import CROOT_UUID
from .checks import (check_dhcp, check_dhcp_nfsroot_path, check_dhcp_two_nics, check_escape,
                     check_fallback, check_identities_differ, check_latehook, check_local_image,
                     check_local_label, check_local_off, check_local_rw, check_local_rw_disk,
                     check_live_http, check_live_nfs, check_local_uuid, check_nfs42, check_node_with_files,
                     check_named_node_files, check_node_without_files, check_v3, check_zfs, check_zfs_bootfs,
                     check_zfs_image, check_zfs_rw)
from .faults import (LOSSY, REBOOTS, big_node_files, home_full, lossy_link, nfsd, reboot_loop,
                     slow_link)
from .flavors import ALL, BUSYBOX, DRACUTS, INITRAMFS_TOOLS, SYSTEMD
from .flows.images import image_versions, zfs_image_nfs
from .patterns import (CRTEST_ANY, IT_BOTTOM_OVERLAY, IT_BREAK, LATE_HOOK_START,
                       MOUNT_HANDLER_FAILED, PANIC, READY)
from .scenario import DONE, EMERGENCY, INIT_RUNS, MASTER, STARTED, Boot, Scenario, expand
from .util import Fail, log

NFSROOT = BUSYBOX.nfsroot()   # nfsroot=10.77.0.1:/srv/root
SHOW = "crtest.show=/etc/crtest/from-archive,/etc/crtest/from-dir crtest.stat=/etc/crtest/secret"
# A named node-files source: each node's directory of the shared root's /etc/overlays, as its
# own NFS export (nodefiles-required); and the agent's failure as the init reports it: the
# busybox hook with the exit code, systemd with the unit (the code is in its journal only).
NAMED_NODEFILES = f"clusterroot.nodefiles={SERVER_IP}:{EXPORT}/etc/overlays"
NODEFILES_EXIT = r"(failed with exit code 7: node files|Failed to start \S*clusterroo)"
# SHOW with the version marker of an image store's trees and the agent's node-files record.
IMAGE_SHOW = SHOW.replace("crtest.show=", "crtest.show=/crtest/version,/run/clusterroot/node-files,")
OTHERROOT = (r":: otherroot \(test double\): mounting 'LABEL=croot' on /new_root")
MISSING_TIMEOUT, ROOTDELAY = 5, 10   # local-missing: clusterroot.timeout=, the init's default
ZFS_MISSING_TIMEOUT = 10             # zfs-missing: loading the zfs module takes ~4 s under TCG
# Void's zfs hook (run_hook) waits zfs_wait= s (default 15) for the pool while the zfs module is
# not loaded, before the mount handler runs; where the agent loads the module, don't wait.
ZFS_WAIT = "zfs_wait=0"
ZFS_IMPORTED = r"clusterroot: ZFS pool tank imported"
UNREACHABLE = r"clusterroot: error: (?=.*10\.77\.0\.99)(?=.*/srv/root)"
# The squashfs scenarios' URLs ({live}: the file's name, 1-<sha256>.squashfs, filled in by the
# runner). lib/server-init serves the live disk over HTTP on port 80; nothing listens on 81,
# and port 82 accepts and never answers.
LIVE_HTTP = f"http://{SERVER_IP}/images"
LIVE_NFS = f"nfs://{SERVER_IP}/srv/live/images"
LIVE_FAILED = r"clusterroot: (error|warning): (?=.*(?:{url}))(?=.*(?:{why}))"


# The node files' archive (faults.big_node_files) 16 MiB into its copy; the watchdog's line.
NODE_FILES_16_MIB = r"clusterroot: node files: \S*52:54:00:77:00:15\.tar: \d+ entries, 16 MiB so far"
WATCHDOG = (r"clusterroot: error: the boot's node_files step \(server 10\.77\.0\.1\) was still "
            r"waiting 15 s after its deadline of 30 s")


def waited(r, step: str, at_least_ms: int, for_what: str) -> None:
    """The agent's `step` took at least `at_least_ms` (time_<step>_ms): it waited for_what."""
    took = int(r.state.get(f"time_{step}_ms", "0"))
    if took < at_least_ms:
        raise Fail(f"time_{step}_ms {took}: less than {at_least_ms} ms, so the agent did not wait "
                   f"for {for_what}")
    log(f"  the {step} step took {took / 1000:.1f} s, waiting for {for_what}")


def check_waited_for_nfsd(r) -> None:
    """nfs42's root, mounted after a wait of at least 5 s in the lower's step."""
    check_nfs42(r)
    waited(r, "lower", 5000, "nfsd (stopped 10 s)")


def check_big_node_files(r) -> None:
    """The archive's last file arrived, as one of node 15's node files."""
    got = r.stats.get("/etc/crtest-big/23", "")
    if not got.startswith("644 0 0 regular"):
        raise Fail(f"/etc/crtest-big/23: stat {got!r}, expected '644 0 0 regular file'")
    log(f"  node files: /etc/crtest-big/23 {got}, node files took {r.state.get('time_node_files_ms')} ms")


def check_lossy_times(results: list) -> None:
    """The agent's time (time_total_ms) on the lossy link against the clean one, for the NFS
    root from DHCP and for the image over HTTP: reported, not bounded."""
    ms = [int(r.state.get("time_total_ms", "0")) for _, r in results]
    for what, clean, lossy in (("DHCP + NFS root + node files", ms[0], ms[1]),
                               ("squashfs image over HTTP", ms[2], ms[3])):
        ratio = lossy / clean if clean else float("nan")
        log(f"  {what}: {lossy / 1000:.1f} s on the lossy link, {clean / 1000:.1f} s on the "
            f"clean one ({ratio:.1f}x)")


def check_dhcp_slow(r) -> None:
    """dhcp's lease and root, after a wait of at least the server's 10 s for its offer."""
    check_dhcp(r)
    waited(r, "network", 9000, "the server's offer (10 s late)")


def live_failed(url: str, why: str) -> str:
    """The agent's line for one URL of a squashfs image that failed for `why` (a regex)."""
    return LIVE_FAILED.format(url=url, why=why)


def lease(n: int) -> str:
    """The agent's line for the lease of DHCP node n."""
    return rf"clusterroot: DHCP lease on \S+: 10\.77\.0\.{n}/24 from 10\.77\.0\.1"


def taken(n: int, given_by: str) -> str:
    """The agent's one line when another host (OTHER_HOST_MAC) holds 10.77.0.n, given by
    `given_by` (a regex)."""
    return (rf"clusterroot: error: address 10\.77\.0\.{n} \({given_by}\) is already used by "
            rf"{OTHER_HOST_MAC} on en\w+; ")


# The busybox hook's line after the agent failed with exit code 3 (the network).
NETWORK_FAILED = r"ERROR: clusterroot mount failed with exit code 3: network"
# A boot NIC that took its address anyway.
NIC_UP = r"clusterroot: boot NIC .* is up with"
TAKEN_DHCP = 24   # a DHCP node no other scenario boots: dnsmasq keeps a declined address 10 min


# The agent's line in an image without udev: the PCI NIC's driver, then virtio_net behind it.
NO_UDEV_EXPECT = [INIT_RUNS, STARTED,
                  (r"clusterroot: no udev: NIC drivers for 2 network device alias\(es\): "
                   r"(\S+ )*virtio_net( \S+)* virtio_pci\b", 60),
                  (READY, 90), DONE]

TABLE = [
    Scenario("nfs42", "NFSv4.2 lower, tmpfs upper, overlay root; nothing written to the server",
             [Boot(11, lambda f: f"{ip_param(11)} {f.nfsroot()} clusterroot.timeout=60",
                   check=check_nfs42,
                   # dracut's spelling with an option
                   per_flavor={DRACUTS: dict(
                       cmdline=lambda f: f"{ip_param(11)} {f.nfsroot()}:vers=4.2 "
                                         "clusterroot.timeout=60"),
                       # initramfs-tools: another package's init-premount script runs before
                       # the agent, its init-bottom script after, on the overlay
                       INITRAMFS_TOOLS: dict(
                           expect=[INIT_RUNS, STARTED, (READY, 150), (IT_BOTTOM_OVERLAY, 60),
                                   DONE])})],
             flavors=ALL, brief="NFSv4.2 lower with a static ip=, overlay root",
             briefs={DRACUTS: "NFSv4.2 lower with a static ip=, "
                              "root=nfs4:<server>:<path>:vers=4.2",
                     INITRAMFS_TOOLS: "NFSv4.2 lower with a static ip=, overlay root; "
                                      "init-premount before the agent, init-bottom after"}),
    Scenario("no-udev", "an image without udev and without MODULES (HOOKS=(base clusterroot)): "
             "the agent loads the NIC's drivers itself from sysfs modaliases, virtio_pci and "
             "then virtio_net behind it, and boots as nfs42 does",
             [Boot(11, f"{ip_param(11)} {NFSROOT} clusterroot.timeout=60",
                   config="client-noudev.conf", expect=NO_UDEV_EXPECT, check=check_nfs42),
              # ip=dhcp with no BOOTIF=: any NIC that gets a lease, so none named to wait for.
              Boot(21, "ip=dhcp clusterroot.timeout=60", config="client-noudev.conf",
                   expect=NO_UDEV_EXPECT, check=check_dhcp)],
             dhcp=True),
    Scenario("two-nodes", "node files: a node with a directory and a .tar.gz, one without",
             [Boot(11, lambda f: f"{ip_param(11)} {f.nfsroot()} {SHOW}",
                   check=check_node_with_files),
              Boot(12, lambda f: f"{ip_param(12)} {f.nfsroot()} {SHOW}",
                   check=check_node_without_files)],
             check_all=check_identities_differ,
             flavors=ALL, brief="node files for one node, none for the other"),
    Scenario("escape", "malicious node files (symlink x -> / then x/escaped; ../escaped2) "
             "are refused with a warning naming them and the boot goes on",
             [Boot(13, f"{ip_param(13)} {NFSROOT} crtest.show=/etc/crtest-after-symlink,"
                       "/etc/crtest-after-dotdot crtest.stat=/etc/x",
                   expect=[INIT_RUNS,
                           (r"clusterroot: warning: .*entry 'x/escaped' goes through a symlink "
                            r"out of /etc; skipped", 150),
                           (r"clusterroot: warning: .*'\.\./escaped2' is unsafe", 60),
                           (READY, 60), DONE],
                   check=check_escape)]),
    Scenario("unreachable", "an NFS server that does not answer: error naming it, then the "
             "emergency shell",
             [Boot(11, lambda f: f"{ip_param(11)} {f.nfsroot('10.77.0.99')} clusterroot.timeout=10",
                   expect=[INIT_RUNS, STARTED, (UNREACHABLE, 40), EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY), powers_off=False,
                   # busybox: the hook's start line is not waited for; initramfs-tools: the
                   # init's panic repeats the agent's line just before its shell
                   per_flavor={BUSYBOX: dict(expect=[INIT_RUNS, (UNREACHABLE, 40), EMERGENCY]),
                               INITRAMFS_TOOLS: dict(expect=[
                                   INIT_RUNS, STARTED, (UNREACHABLE, 40),
                                   (UNREACHABLE + r".*\[clusterroot mount /root: exit code 4;",
                                    10),
                                   EMERGENCY])})],
             server=False,
             flavors=ALL,
             briefs={SYSTEMD: "an NFS server that does not answer: error naming it within the "
                              "deadline, then systemd's emergency shell",
                     DRACUTS: "an NFS server that does not answer: error naming it within the "
                              "deadline, then dracut's emergency shell",
                     INITRAMFS_TOOLS: "an NFS server that does not answer: error naming it "
                                      "within the deadline, then the init's panic repeats it "
                                      "and opens its shell"}),
    Scenario("nfsd-restart-mount", "nfsd stopped before the agent mounts the lower and "
             "started again 10 s after the agent started, in its grace period: the agent "
             "waits within its deadline and boots",
             [Boot(11, f"{ip_param(11)} {NFSROOT} clusterroot.timeout=90",
                   expect=[nfsd(False), INIT_RUNS, STARTED, nfsd(True, after_s=10), (READY, 150),
                           DONE],
                   check=check_waited_for_nfsd)]),
    Scenario("nfsd-restart-nodefiles", "nfsd stopped in the middle of the node files' copy "
             "(24 MiB over a 16 Mbit/s link, cut after 16 MiB) and started again 10 s later: "
             "the read waits for the server, the copy goes on, the node boots with its files",
             [Boot(15, f"{ip_param(15)} {NFSROOT} clusterroot.timeout=90 crtest.stat=/etc/crtest-big/23",
                   expect=[big_node_files(15, 24), slow_link("16mbit"), INIT_RUNS, STARTED,
                           (NODE_FILES_16_MIB, 150), nfsd(False), nfsd(True, after_s=10),
                           (READY, 150), DONE, big_node_files(15, 0)],
                   check=check_big_node_files)]),
    Scenario("nodefiles-required", "clusterroot.nodefiles= names a source (each node's "
             "directory of /etc/overlays in the export, as its own NFS export): node11, whose "
             "directory is there, boots with its files; node12, which has none (as a node whose "
             "export is missing or refused), stops with one line naming its MAC, the source "
             "and the fix, exit code 7, then the emergency shell",
             [Boot(11, f"{ip_param(11)} {NFSROOT} {NAMED_NODEFILES} {SHOW}",
                   check=check_named_node_files),
              Boot(12, f"{ip_param(12)} {NFSROOT} {NAMED_NODEFILES} clusterroot.timeout=30",
                   expect=[INIT_RUNS, STARTED,
                           (rf"clusterroot: error: node files for {mac(12)} from "
                            rf"{re.escape(NAMED_NODEFILES)}: .*or boot it with "
                            r"clusterroot\.nodefiles=none", 60),
                           (NODEFILES_EXIT, 10), EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY), powers_off=False)],
             flavors=(BUSYBOX, SYSTEMD),
             briefs={SYSTEMD: "a named node-files source that fails node12: its line, then "
                              "systemd's emergency shell"}),
    Scenario("nfsd-gone-nodefiles", "nfsd stopped in the middle of the node files' copy for "
             "good: the read waits, and the agent's watchdog ends the boot 15 s after the node "
             "files' deadline with one line naming the step and the server, then the "
             "emergency shell",
             [Boot(15, f"{ip_param(15)} {NFSROOT} clusterroot.timeout=30",
                   expect=[big_node_files(15, 24), slow_link("16mbit"), INIT_RUNS, STARTED,
                           (NODE_FILES_16_MIB, 150), nfsd(False), (WATCHDOG, 30 + 15 + 30),
                           EMERGENCY, nfsd(True), big_node_files(15, 0)],
                   fail_on=(PANIC, CRTEST_ANY), powers_off=False)],
             flavors=(BUSYBOX, SYSTEMD),
             briefs={SYSTEMD: "nfsd stopped in the middle of the node files' copy for good: "
                              "the watchdog's line, then systemd's emergency shell"}),
    Scenario("live-http", "a squashfs image in RAM over HTTP (root=live:http://...): "
             "downloaded into a tmpfs, its SHA-256 (from its name) checked, attached to a loop "
             "device read-only and mounted as the lower",
             [Boot(11, f"{ip_param(11)} root=live:{LIVE_HTTP}/{{live}} clusterroot.timeout=60",
                   check=check_live_http)],
             server_live=True, flavors=ALL,
             brief="a squashfs image in RAM over HTTP, root=live:http://..."),
    Scenario("live-nfs", "a squashfs image on NFS (root=live:nfs://...), LTSP's way: the "
             "export holding it mounted, the file attached to a loop device where it lies",
             [Boot(11, f"{ip_param(11)} root=live:{LIVE_NFS}/{{live}} clusterroot.timeout=60",
                   check=check_live_nfs)],
             server_live=True, flavors=ALL,
             brief="a squashfs image on NFS, root=live:nfs://..."),
    Scenario("live-default", "crctl's pointer file default names the squashfs file, read over "
             "HTTP (clusterroot.live=) and on NFS",
             [Boot(11, f"{ip_param(11)} clusterroot.live={LIVE_HTTP}/default",
                   check=check_live_http),
              Boot(11, f"{ip_param(11)} root=live:{LIVE_NFS}/default", check=check_live_nfs)],
             server_live=True),
    Scenario("live-failover", "replicas: the first refuses (port 81), the second is "
             "unreachable, the third accepts and never answers (port 82); each is one warning "
             "line, and the fourth serves the image within the deadline",
             [Boot(11, f"{ip_param(11)} clusterroot.live=http://{SERVER_IP}:81/images/{{live}},"
                       f"http://10.77.0.99/images/{{live}},http://{SERVER_IP}:82/images/{{live}},"
                       f"{LIVE_HTTP}/{{live}} clusterroot.timeout=60",
                   expect=[INIT_RUNS,
                           (live_failed(r"10\.77\.0\.1:81/", "refused"), 60),
                           (live_failed(r"10\.77\.0\.99/", r"No route to host|did not answer"), 60),
                           (live_failed(r"10\.77\.0\.1:82/", r"nothing came for 10 s"), 60),
                           (READY, 90), DONE],
                   check=check_live_http)],
             server_live=True),
    Scenario("live-damaged", "a damaged replica (one byte changed): one line naming its URL "
             "and both hashes, then the next serves; with no good replica, one line and the "
             "emergency shell within the deadline",
             [Boot(11, f"{ip_param(11)} clusterroot.live={LIVE_HTTP.replace('images', 'bad')}/{{live}},"
                       f"{LIVE_HTTP}/{{live}}",
                   expect=[INIT_RUNS,
                           (live_failed("/bad/1-", r"SHA-256 is [0-9a-f]{64}, expected [0-9a-f]{64}"), 60),
                           (READY, 90), DONE],
                   check=check_live_http),
              Boot(11, f"{ip_param(11)} root=live:{LIVE_HTTP.replace('images', 'bad')}/{{live}} "
                       "clusterroot.timeout=20",
                   expect=[INIT_RUNS, (r"clusterroot: error: the squashfs image could not be "
                                       r"fetched: .*SHA-256 is", 60), EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY), powers_off=False)],
             server_live=True),
    Scenario("live-too-big", "a squashfs image bigger than clusterroot.maxsize= is refused "
             "before the download, in one line, then the emergency shell",
             [Boot(11, f"{ip_param(11)} root=live:{LIVE_HTTP}/{{live}} clusterroot.maxsize=1M "
                       "clusterroot.timeout=20",
                   expect=[INIT_RUNS, (r"clusterroot: error: the squashfs image could not be "
                                       r"fetched: .*more than the 1048576 bytes allowed", 60),
                           EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY), powers_off=False)],
             server_live=True),
    Scenario("bad-ip", "a malformed ip= parameter: error naming ip=, then the emergency shell",
             [Boot(11, f"ip=10.77.0.300::{SERVER_IP}:255.255.255.0:node11::off {NFSROOT}",
                   expect=[INIT_RUNS, (r"clusterroot: error: .*ip=", 60), EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY), powers_off=False)],
             server=False),
    Scenario("latehook", "another hook's mount handler (otherroot, a test double standing in "
             "for zfs) mounts the root, the clusterroot late hook puts the overlay on top",
             [Boot(11, "root=LABEL=croot", disk="croot", config="client-late.conf",
                   expect=[INIT_RUNS, (OTHERROOT, 120), (LATE_HOOK_START, 30), (READY, 60), DONE],
                   check=check_latehook)],
             server=False, disk_unchanged=True),
    Scenario("local-label", "root=LABEL=croot: the agent mounts the disk read-only as the "
             "lower, overlay, node files; disk unchanged",
             [Boot(11, f"root=LABEL=croot {SHOW}", disk="croot", config=MASTER,
                   check=check_local_label)],
             server=False, disk_unchanged=True,
             flavors=ALL,
             briefs={SYSTEMD: "root=LABEL=croot, the agent (not systemd's fstab generator) "
                              "mounts the disk as the lower; disk unchanged",
                     DRACUTS: "root=LABEL=croot (the master): the agent, not dracut's block "
                              "handler, mounts the disk as the lower; disk unchanged"}),
    Scenario("local-image", "root=LABEL=cstore clusterroot.image=default (a master booting its "
             "image store): the agent reads default once and binds that version read-only "
             "as the lower; the store is unmounted again; disk unchanged",
             [Boot(11, f"root=LABEL=cstore clusterroot.image=default {IMAGE_SHOW}",
                   disk="cstore", config=MASTER, check=check_local_image)],
             server=False, disk_unchanged=True),
    Scenario("local-rw", "root=LABEL=croot rw: the lower is read-write; what the node writes "
             "to / stays in the upper, what it writes to the lower reaches the disk",
             [Boot(11, f"root=LABEL=croot rw crtest.writelower=1 {SHOW}", disk="croot",
                   config=MASTER, check=check_local_rw, check_disk=check_local_rw_disk)],
             server=False),
    Scenario("local-off", "root=LABEL=croot clusterroot=off: the disk itself is the root, no "
             "overlay",
             [Boot(11, "root=LABEL=croot clusterroot=off", disk="croot", config=MASTER,
                   check=check_local_off)],
             server=False, disk_unchanged=True,
             flavors=ALL, brief="root=LABEL=croot clusterroot=off, the disk itself is the root"),
    Scenario("local-uuid", "root=UUID=...: like local-label, found by filesystem UUID",
             [Boot(11, f"root=UUID={CROOT_UUID} {SHOW}", disk="croot", config=MASTER,
                   check=check_local_uuid)],
             server=False, disk_unchanged=True),
    Scenario("local-missing", "root=LABEL=nope: error naming LABEL=nope after the timeout, "
             "then the emergency shell",
             [Boot(11, f"root=LABEL=nope clusterroot.timeout={MISSING_TIMEOUT}", disk="croot",
                   config=MASTER,
                   expect=[INIT_RUNS, STARTED,
                           (r"clusterroot: error: root device LABEL=nope did not appear "
                            rf"within clusterroot\.timeout={MISSING_TIMEOUT} s "
                            r"\(looked for /dev/disk/by-label/nope\); check root=",
                            MISSING_TIMEOUT + ROOTDELAY + 20),
                           (MOUNT_HANDLER_FAILED, 10), EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY, READY), powers_off=False)],
             server=False, disk_unchanged=True),
    Scenario("zfs", "root=zfs:tank/root: the agent loads the zfs module (not in MODULES: udev's "
             "static /dev/zfs is there before it), imports the pool with the zfs hook's zpool "
             "and mounts the dataset (zfsutil) read-only as the lower; overlay, node files",
             [Boot(11, f"root=zfs:tank/root {ZFS_WAIT} {SHOW}", zfs=True, config="client-zfs.conf",
                   expect=[INIT_RUNS, STARTED, (ZFS_IMPORTED, 120),
                           (r"clusterroot: lower: zfs tank/root, zfsutil: mountpoint /, on "
                            r"/run/rootfs/lower read-only", 30),
                           (READY, 60), DONE],
                   check=check_zfs,
                   # systemd: the zfs hook brings zpool and the modules, its busybox runtime
                   # hook (which reads zfs_wait=) never runs
                   per_flavor={SYSTEMD: dict(cmdline=f"root=zfs:tank/root {SHOW}",
                                             config="client-sd-zfs.conf")})],
             server=False,
             flavors=(BUSYBOX, SYSTEMD),
             brief="root=zfs:tank/root, the agent loads the module, imports the pool with the "
                   "zfs hook's zpool and mounts the dataset"),
    Scenario("zfs-image", "root=zfs:tank/images clusterroot.image=default: the store dataset "
             "read for default, then its child dataset tank/images/2 mounted read-only as the "
             "lower",
             [Boot(11, f"root=zfs:tank/images clusterroot.image=default {ZFS_WAIT} {IMAGE_SHOW}",
                   zfs=True, config="client-zfs.conf",
                   expect=[INIT_RUNS, STARTED, (ZFS_IMPORTED, 120),
                           (r"clusterroot: image: version 2 of tank/images on /run/rootfs/lower "
                            r"read-only, pinned for this boot", 60),
                           (READY, 60), DONE],
                   check=check_zfs_image)],
             server=False),
    Scenario("zfs-rw", "zfs=tank/legacy rw: a legacy-mountpoint dataset as a writable lower; "
             "/ stays the overlay; node files from their own dataset (clusterroot.nodefiles=)",
             [Boot(11, f"zfs=tank/legacy rw crtest.writelower=1 "
                       f"clusterroot.nodefiles=zfs:tank/nodefiles {SHOW}", zfs=True,
                   config="client-zfs-modules.conf", check=check_zfs_rw)],
             server=False),
    Scenario("zfs-bootfs", "zfs=bootfs: left to Void's zfs hook's own handler, then the "
             "clusterroot late hook builds the overlay",
             [Boot(11, f"zfs=bootfs {SHOW}", zfs=True, config="client-zfs-modules.conf",
                   expect=[INIT_RUNS, (r":: running hook \[zfs\]", 90), (LATE_HOOK_START, 120),
                           (r"clusterroot: lower: zfs tank/root moved from /new_root to "
                            r"/run/rootfs/lower", 30),
                           (READY, 60), DONE],
                   check=check_zfs_bootfs)],
             server=False),
    Scenario("zfs-missing", "root=zfs:nope/root: error naming pool nope within the timeout, "
             "then the emergency shell",
             [Boot(11, f"root=zfs:nope/root {ZFS_WAIT} clusterroot.timeout={ZFS_MISSING_TIMEOUT}",
                   zfs=True,
                   config="client-zfs.conf",
                   expect=[INIT_RUNS, STARTED,
                           (r"clusterroot: error: ZFS pool nope was not found within "
                            rf"clusterroot\.timeout={ZFS_MISSING_TIMEOUT} s \((cannot import 'nope': "
                            r"no such pool available|zpool import was still running at the "
                            r"deadline)\); check the pool name in root=zfs:nope/root",
                            ZFS_MISSING_TIMEOUT + 30),
                           (MOUNT_HANDLER_FAILED, 10), EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY, READY), powers_off=False)],
             server=False),
    Scenario("v3", "NFSv3 lower (nfsroot=...,vers=3)",
             [Boot(12, lambda f: f"{ip_param(12)} {f.nfsroot(opts='vers=3')}", check=check_v3)],
             flavors=ALL, briefs={DRACUTS: "NFSv3 lower (root=nfs:<server>:<path>:vers=3)"}),
    Scenario("nfs-fallback", "a server refusing NFS 4.2 and 4.1: the agent steps down to 4.0",
             [Boot(12, f"{ip_param(12)} {NFSROOT} clusterroot.timeout=60",
                   expect=[INIT_RUNS,
                           (r"clusterroot: server 10\.77\.0\.1 refused NFS 4\.2; trying 4\.1",
                            150),
                           (r"clusterroot: server 10\.77\.0\.1 refused NFS 4\.1; trying 4\.0", 60),
                           (READY, 60), DONE],
                   check=check_fallback)],
             refuse_versions=("4.2", "4.1")),
    Scenario("dhcp", "ip=dhcp alone: address, router, DNS, domain, MTU, host name and the NFS "
             "root (option 17) from the lease",
             [Boot(21, "ip=dhcp clusterroot.timeout=60",
                   expect=[INIT_RUNS, STARTED, (lease(21), 80), (READY, 90), DONE],
                   check=check_dhcp,
                   # busybox: also the lease's host name, and the warning that the image's
                   # /etc/hostname wins over it
                   per_flavor={BUSYBOX: dict(expect=[
                       INIT_RUNS, STARTED, (lease(21) + r".*, host name dhcp-node21", 80),
                       (r"clusterroot: warning: the shared image's /etc/hostname names every "
                        r"node shared; this node takes it over its DHCP name dhcp-node21", 60),
                       (READY, 90), DONE])})],
             dhcp=True,
             flavors=ALL, brief="ip=dhcp alone, NFS root from the lease"),
    Scenario("dhcp-slow", "ip=dhcp from a slow DHCP server, whose first offer comes 10 s "
             "after the node asks (dnsmasq's --dhcp-reply-delay=10): the node takes it and "
             "boots within its deadline",
             [Boot(21, "ip=dhcp clusterroot.timeout=60",
                   expect=[INIT_RUNS, STARTED, (lease(21), 80), (READY, 90), DONE],
                   check=check_dhcp_slow)],
             dhcp=True, dhcp_delay=10, portable=True),
    Scenario("lossy", "a lossy, slow link (netem on what the server sends: 5 % lost, 200 ms "
             "late give or take 50 ms, so also out of order): DHCP, the NFS root, the node "
             "files and a squashfs image over HTTP all get through (the link is clean again "
             "once the agent is done); each boot also on the clean link, and the times compared",
             [Boot(21, "ip=dhcp clusterroot.timeout=120",
                   expect=[INIT_RUNS, STARTED, (lease(21), 80), (READY, 90), DONE],
                   check=check_dhcp),
              Boot(21, "ip=dhcp clusterroot.timeout=120",
                   expect=[lossy_link(LOSSY), INIT_RUNS, STARTED, (lease(21), 150), (READY, 150),
                           lossy_link(""), DONE],
                   check=check_dhcp, vm_timeout=600),
              Boot(11, f"{ip_param(11)} root=live:{LIVE_HTTP}/{{live}} clusterroot.timeout=120",
                   check=check_live_http),
              Boot(11, f"{ip_param(11)} root=live:{LIVE_HTTP}/{{live}} clusterroot.timeout=120",
                   expect=[lossy_link(LOSSY), INIT_RUNS, STARTED, (READY, 240), lossy_link(""),
                           DONE],
                   check=check_live_http, vm_timeout=600)],
             dhcp=True, server_live=True, check_all=check_lossy_times, portable=True),
    Scenario("dhcp-no-offer", "ip=dhcp on a MAC the DHCP server ignores: error naming the NIC "
             "within timeout+20 s, then the emergency shell",
             [Boot(DHCP_UNKNOWN, "ip=dhcp clusterroot.timeout=10",
                   expect=[INIT_RUNS, STARTED,
                           (r"clusterroot: error: DHCP: no offer on .*\ben[sop]\w+\b", 30),
                           EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY, r"clusterroot: DHCP lease"), powers_off=False)],
             server_unchanged=False, dhcp=True,
             server_expect=(rf"DHCPDISCOVER\(\S+\) {mac(DHCP_UNKNOWN)} ignored",)),
    Scenario("addr-taken", "another host on the network holds the static ip= address: ARP "
             "probes (RFC 5227), then one error line naming the address and that host's MAC, "
             "exit code 3, the emergency shell",
             [Boot(14, lambda f: f"{ip_param(14)} {f.nfsroot()} clusterroot.timeout=30",
                   expect=[INIT_RUNS, STARTED, (taken(14, "ip="), 40), (NETWORK_FAILED, 10),
                           EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY, NIC_UP), powers_off=False,
                   # systemd: no hook to name the exit code; clusterroot.service fails and
                   # systemd's emergency shell opens
                   per_flavor={SYSTEMD: dict(
                       expect=[INIT_RUNS, STARTED, (taken(14, "ip="), 40), EMERGENCY])})],
             server=False, other_host=("10.77.0.14", OTHER_HOST_MAC),
             flavors=(BUSYBOX, SYSTEMD),
             briefs={SYSTEMD: "as addr-taken: the static ip= address held by another host, "
                              "one error line naming it and that host's MAC, then systemd's "
                              "emergency shell"}),
    Scenario("addr-taken-dhcp", "another host holds the address the DHCP server gives: ARP "
             "probes, DHCPDECLINE (the server logs it), one error line naming the address and "
             "that host's MAC, the emergency shell",
             [Boot(TAKEN_DHCP, "ip=dhcp clusterroot.timeout=30",
                   expect=[INIT_RUNS, STARTED,
                           (taken(TAKEN_DHCP, r"DHCP lease from 10\.77\.0\.1"), 40),
                           (NETWORK_FAILED, 10), EMERGENCY],
                   fail_on=(PANIC, CRTEST_ANY, NIC_UP), powers_off=False)],
             server_unchanged=False, dhcp=True,
             other_host=(f"10.77.0.{TAKEN_DHCP}", OTHER_HOST_MAC),
             server_expect=(rf"DHCPDECLINE\(\S+\) 10\.77\.0\.{TAKEN_DHCP} {mac(TAKEN_DHCP)} "
                            rf"address in use by {OTHER_HOST_MAC}",)),
    Scenario("dhcp-two-nics", "ip=dhcp with the first NIC on a network without DHCP and the "
             "second on the server's: boots from the second without waiting out the timeout",
             [Boot(23, "ip=dhcp clusterroot.timeout=60",
                   nics=[(dead_mac(23), "br1"), (mac(23), "br0")],
                   expect=[INIT_RUNS, STARTED, (lease(23), 40), (READY, 90), DONE],
                   check=check_dhcp_two_nics)],
             dhcp=True),
    Scenario("dhcp-nfsroot-path", "ip=dhcp nfsroot=/srv/root: the NFS server is the DHCP "
             "server (option 54), not the lease's root path",
             [Boot(DHCP_OTHER_ROOT[0], f"ip=dhcp nfsroot={EXPORT} clusterroot.timeout=60",
                   expect=[INIT_RUNS, STARTED, (lease(DHCP_OTHER_ROOT[0]), 80), (READY, 90), DONE],
                   check=check_dhcp_nfsroot_path)],
             dhcp=True),
    Scenario("reboot-loop", "a node powered off in the middle of its agent (its lower just "
             "mounted), then booted 20 times in a row: it boots every time, and nfsd's client "
             "records, the locks, the exports and the recovery records on the server do not "
             "grow from boot to boot",
             [], flow=reboot_loop, portable=True, boots=REBOOTS + 1),
    Scenario("home-full", "/home full on the server (a 16 MiB tmpfs): a node writing there "
             "gets ENOSPC, and another node's fsynced file is intact on the server after",
             [], flow=home_full, portable=True, boots=2),
    Scenario("image-versions", "crctl image on the server: node11 boots version 2 and reads and "
             "executes its files while version 3 changes and deletes them (no ESTALE, no EIO); "
             "node12 boots 3; after image default 2, node13 boots 2",
             [], flow=image_versions),
    Scenario("zfs-image-nfs", "crctl image on a real ZFS pool on the server (import, edit as a "
             "clone, publish, gc promoting the clone): each version a dataset with an export "
             "of its own; node11 boots 2 over NFS and reads it while 3 is published and 1 "
             "collected; node12 boots 3",
             [], flow=zfs_image_nfs, server_zfs=True),
    Scenario("initrd-shutdown", "the initramfs shuts down after the agent mounted the root; "
             "systemd unmounts the overlay, then the NFS lower and the upper",
             [Boot(12, lambda f: f"{ip_param(12)} {f.nfsroot()}", config="client-sd-shutdown.conf",
                   fail_on=SYSTEMD.boot_fails + (CRTEST_ANY,),
                   expect=[INIT_RUNS, (READY, 150),
                           (r"Unmounted \S*sysroot\.mount", 60),
                           # then both, in either order
                           (r"Unmounted \S*run-rootfs-(lower|cowspace)\.mount", 60),
                           (r"Unmounted \S*run-rootfs-(lower|cowspace)\.mount", 60),
                           (r"reboot: Restarting system", 60)])],  # no report: node-init never runs
             flavors=(SYSTEMD,)),
    Scenario("break", "rd.break=pre-mount stops in dracut's shell before the agent has run",
             [Boot(11, lambda f: f"{ip_param(11)} {f.nfsroot()} rd.break=pre-mount",
                   expect=[INIT_RUNS, (r"Break before pre-mount", 60), EMERGENCY],
                   fail_on=(PANIC, r"clusterroot: (lower|ready|boot NIC)", CRTEST_ANY),
                   powers_off=False,
                   # initramfs-tools: its own break=, at the last point before mountroot, after
                   # the init-premount scripts
                   per_flavor={INITRAMFS_TOOLS: dict(
                       cmdline=lambda f: f"{ip_param(11)} {f.nfsroot()} break=mountroot",
                       expect=[INIT_RUNS, STARTED, (IT_BREAK, 60), EMERGENCY])})],
             server=False,
             flavors=DRACUTS + (INITRAMFS_TOOLS,),
             briefs={INITRAMFS_TOOLS: "break=mountroot stops in the init's shell after the "
                                      "init-premount scripts, before the agent has run"}),
]

# Every scenario under each of its flavors, in the order run --list prints them.
SCENARIOS = expand(TABLE)

# run --quick (scripts/test --quick, the inner loop): one boot per flavor, the one that
# crosses every layer (the agent's NFS lower, overlay, switch_root, the test init).
QUICK = "nfs42"


def quick() -> list:
    """The names run --quick boots: QUICK under every flavor it runs under."""
    return [sc.name for sc in SCENARIOS if sc.name.endswith(QUICK)
            and sc.name == sc.flavor.prefix + QUICK]


def list_scenarios() -> None:
    for sc in SCENARIOS:
        log(f"{sc.name:17} {sc.doc}")
