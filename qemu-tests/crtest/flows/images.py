# SPDX-License-Identifier: MIT
"""Image versions: crctl image on the server VM (a tmpfs store, /srv/images; or a real ZFS
pool's, /srv/zstore), nodes booting clusterroot.image=default from it while versions are
published, rolled back and collected under them (image-versions, zfs-image-nfs)."""

import re

from ..addresses import SERVER_IP, identity, ip_param, mac
from ..builds import zfs_missing
from ..checks import check_equal, check_overlay_root
from ..patterns import PANIC
from ..report import Report
from ..scenario import Boot, Scenario
from ..server import Server
from ..util import Fail, log
from ..vm import VM

IMAGES_ROOT = f"nfsroot={SERVER_IP}:/srv/images clusterroot.image=default"
# Version 2 adds what the reader uses (the edit's chroot has /dev, /proc and /sys bound);
# version 3 changes one of those files and deletes the other two.
MAKE_V2 = ("image edit --root / -- /bin/sh -c 'mkdir -p /crtest && echo 2 >/crtest/version && "
           "cp /usr/bin/busybox /crtest/busybox && head -c 2097152 /dev/urandom >/crtest/data && "
           "test -e /proc/self/status && test -d /sys/class'")
MAKE_V3 = "image edit --root / -- /bin/sh -c 'echo 3 >/crtest/version && rm /crtest/busybox /crtest/data'"
READER_FAILED = r"CRTEST reader: failed"


def crctl(server: Server, args: str, timeout_s: float = 180) -> list:
    """Runs crctl ARGS on the server VM; its output lines. Fails unless it exits 0. The
    server's inventory is /etc/clusterroot/cluster unless ARGS name another with -f (it has no
    node-files filesystem, where crctl looks by default)."""
    server.vm.console.poll()
    mark = len(server.vm.console.lines)
    if not args.startswith("-f "):
        args = f"-f /etc/clusterroot/cluster {args}"
    server.command(f"crctl {args}")
    m = server.vm.expect(r"SERVER crctl done: (\d+)", timeout_s, (PANIC,))
    server.vm.console.poll()
    out = [line.split("SERVER crctl: ", 1)[1] for line in server.vm.console.lines[mark:]
           if "SERVER crctl: " in line]
    log(f"  server: crctl {args.split(' --', 1)[0]}: exit {m.group(1)}"
        + (f", {out[-1]}" if out else ""))
    if m.group(1) != "0":
        raise Fail(f"server: crctl {args} exited {m.group(1)}: {' | '.join(out[-6:])}")
    return out


def reader_round(vm: VM) -> int:
    """The last round the reader on `vm` printed (0: none yet)."""
    vm.console.poll()
    rounds = [int(m.group(1)) for line in vm.console.lines
              if (m := re.search(r"CRTEST reader: round (\d+) ", line))]
    return rounds[-1] if rounds else 0


def check_version(r: Report, n: int, version: str, store: str = "/srv/images") -> None:
    check_overlay_root(r, "nfs4", f"{SERVER_IP}:{store}/{version}")
    check_equal("state image", r.state.get("image"), version)
    check_equal("state nfs_identity", r.state.get("nfs_identity"),
                f"{identity(mac(n))}@{version}")


def running(listing: list, version: str) -> str:
    """The nodes `crctl image list` says run `version` (the rest of its line)."""
    for line in listing:
        words = line.split()
        if words and words[0] == version:
            return line
    raise Fail(f"crctl image list has no line for version {version}: {listing}")


def image_versions(runner, sc: Scenario) -> list:
    server = runner.ensure_server()
    # Node 11 boots version 2 and reads and executes its files in a loop.
    a_node = Boot(11, f"{ip_param(11)} {IMAGES_ROOT} crtest.reader crtest.hold"
                  ).for_flavor(sc.flavor)
    initrd = runner.builds.client_initramfs(a_node.config, a_node.flavor.builder)
    crctl(server, "image import /srv/root --root /")
    crctl(server, MAKE_V2)
    crctl(server, "image publish --root /")
    a = runner.start(f"{sc.name}-1-node11", a_node, initrd)
    fails = a_node.fail_on + (READER_FAILED,)
    try:
        for pattern, seconds in a_node.expect:
            a.expect(pattern, seconds, fails)
        a.expect(r"CRTEST reader: round 2 version 2 ", 60, fails)
        # The admin makes version 3 under it: changes /crtest/version, deletes the rest.
        crctl(server, MAKE_V3)
        published = crctl(server, "image publish --root /")
        if not any("published 3" in line for line in published):
            raise Fail(f"crctl image publish: {published}")
        at_publish = reader_round(a)
        a.expect(rf"CRTEST reader: round {at_publish + 5} version 2 ", 90, fails)
        # A node booting now gets version 3.
        b_node = Boot(12, f"{ip_param(12)} {IMAGES_ROOT} crtest.show=/crtest/version,/crtest/busybox",
                      check=lambda r: (check_version(r, 12, "3"),
                                       check_equal("/crtest/version", r.files.get("/crtest/version"), "3"),
                                       check_equal("/crtest/busybox absent", "/crtest/busybox" in r.absent, True))
                      ).for_flavor(sc.flavor)
        rb = runner.boot(sc, 2, b_node)
        listing = crctl(server, "image list --root /")
        if "node11" not in running(listing, "2"):
            raise Fail(f"crctl image list does not show node11 on version 2: {listing}")
        # Each version also as one squashfs file, its size listed (issue 27).
        for v in ("1", "2", "3"):
            if not re.search(r" \d+\.\d MiB ", running(listing, v)):
                raise Fail(f"crctl image list shows no squashfs file for version {v}: {listing}")
        # Rollback: the default back to 2; the next node boots 2.
        crctl(server, "image default 2 --root /")
        c_node = Boot(13, f"{ip_param(13)} {IMAGES_ROOT} crtest.show=/crtest/version",
                      check=lambda r: (check_version(r, 13, "2"),
                                       check_equal("/crtest/version", r.files.get("/crtest/version"), "2"))
                      ).for_flavor(sc.flavor)
        rc = runner.boot(sc, 3, c_node)
        # Node 11 read its version all along: no ESTALE, no EIO, the same bytes every round.
        at_end = reader_round(a)
        a.expect(rf"CRTEST reader: round {at_end + 2} version 2 ", 60, fails)
        a.console.poll()
        ra = Report.parse(a.console.lines)
        check_version(ra, 11, "2")
        log(f"  node11 read version 2 in {reader_round(a)} rounds, {reader_round(a) - at_publish} "
            "after version 3 was published; node12 booted 3, node13 2 after the rollback")
    except Fail:
        runner.print_tail(a.name, a.console)
        raise
    finally:
        a.stop()
        runner.vms.remove(a)
    return [(a_node, ra), (b_node, rb), (c_node, rc)]


# The same on a real ZFS pool: the server imports the pool (a copy of the ZFS scenarios'),
# makes the store dataset tank/zstore mounted on /srv/zstore, and crctl's ZFS backend keeps
# the versions as its child datasets, each exported by a line of its own (crctl image
# export's file in /etc/exports.d: the store's export does not reach them).
ZCRCTL = "-f /etc/clusterroot/cluster-zfs"
ZSTORE = "/srv/zstore"
ZSTORE_ROOT = f"nfsroot={SERVER_IP}:{ZSTORE} clusterroot.image=default"


def said(lines: list, pattern: str, what: str) -> None:
    """Fails unless one of crctl's output lines matches `pattern`."""
    if not any(re.search(pattern, line) for line in lines):
        raise Fail(f"crctl {what}: no line matching {pattern!r}: {' | '.join(lines[-8:])}")


def zfs_image_nfs(runner, sc: Scenario) -> list:
    zfs_missing()
    server = runner.ensure_server()
    server.zfs_on()
    out = crctl(server, f"{ZCRCTL} image import /srv/root --root /", 300)
    said(out, r"^imported /srv/root as version 1 ", "image import")
    said(out, r"^exports: /etc/exports.d/clusterroot-images.exports new \(1 version dataset\)",
         "image import")
    out = crctl(server, f"{ZCRCTL} {MAKE_V2}")
    said(out, r"a ZFS clone of version 1 \(nothing copied\)", "image edit")
    out = crctl(server, f"{ZCRCTL} image publish --root /")
    said(out, r"^published 2 ", "image publish")
    said(out, r"changed \(2 version datasets\)", "image publish")
    a_node = Boot(11, f"{ip_param(11)} {ZSTORE_ROOT} crtest.reader crtest.hold"
                  ).for_flavor(sc.flavor)
    a = runner.start(f"{sc.name}-1-node11", a_node,
                     runner.builds.client_initramfs(a_node.config, a_node.flavor.builder))
    fails = a_node.fail_on + (READER_FAILED,)
    try:
        for pattern, seconds in a_node.expect:
            a.expect(pattern, seconds, fails)
        a.expect(r"CRTEST reader: round 2 version 2 ", 60, fails)
        # Version 3 under it, then a node that boots it.
        crctl(server, f"{ZCRCTL} {MAKE_V3}")
        crctl(server, f"{ZCRCTL} image publish --root /")
        at_publish = reader_round(a)
        b_node = Boot(12, f"{ip_param(12)} {ZSTORE_ROOT} crtest.show=/crtest/version,/crtest/busybox",
                      check=lambda r: (check_version(r, 12, "3", ZSTORE),
                                       check_equal("/crtest/version", r.files.get("/crtest/version"), "3"),
                                       check_equal("/crtest/busybox absent", "/crtest/busybox" in r.absent, True))
                      ).for_flavor(sc.flavor)
        rb = runner.boot(sc, 2, b_node)
        # gc under the running node: 1 goes (no node runs it; 2 is the version before the
        # default), and 2, cloned from it, is promoted first.
        out = crctl(server, f"{ZCRCTL} image gc --dry-run --root /")
        said(out, r"^zfs promote tank/zstore/2$", "image gc --dry-run")
        said(out, r"^zfs destroy tank/zstore/1$", "image gc --dry-run")
        out = crctl(server, f"{ZCRCTL} image gc --root /")
        said(out, r"^removed 1$", "image gc")
        said(out, r"changed \(2 version datasets\)", "image gc")
        at_end = reader_round(a)
        a.expect(rf"CRTEST reader: round {at_end + 3} version 2 ", 90, fails)
        a.console.poll()
        ra = Report.parse(a.console.lines)
        check_version(ra, 11, "2", ZSTORE)
        log(f"  node11 read version 2 (dataset tank/zstore/2) in {reader_round(a)} rounds, "
            f"{reader_round(a) - at_publish} after version 3 was published and 1 collected")
    except Fail:
        runner.print_tail(a.name, a.console)
        raise
    finally:
        a.stop()
        runner.vms.remove(a)
    return [(a_node, ra), (b_node, rb)]
