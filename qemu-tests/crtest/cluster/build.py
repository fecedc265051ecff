# SPDX-License-Identifier: MIT
"""What the cluster test builds for one kind of setup (flavor, root, store, generator, image
mode): the
shared root with its node files, the master's image, the disks, and what crctl render says
each client gets. Everything that holds the agent and hooks under test is built every run."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Optional

from ..flavors import Flavor
from ..paths import AGENT_DIR, CONFIG, KVER, LIB, QT, REPO, Dirs
from ..storm_trace import boot_order, read_trace
from ..util import Fail, build_failed, log, run, sha256
from .variants import (CLIENTS, HOME_IMAGE_SIZE, HTTP_FILES, NODEFILES_IMAGE_SIZE,
                       ROOT_IMAGE_SIZES)


# The boot traces (qemu-tests/storm --record-trace): trace-ROOT.tsv, what one real boot read.
TRACES = QT / "bench-data"


def trace_path(root: str) -> Path:
    """The trace of `root`'s boot (it may not exist: busybox has none)."""
    return TRACES / f"trace-{root}.tsv"


def root_dir(dirs: Dirs, flavor: Flavor, root: str, store: bool, generator: str,
             image_mode: str, package: str = "") -> Path:
    """Where build_root puts the shared root of one kind (store_tree's store is
    store-<its name> next to it)."""
    return dirs.work / (f"cluster-root-{flavor.name}-{root}{'-store' if store else ''}"
                        + ("" if generator == "mkinitcpio" else f"-{generator}")
                        + ("" if image_mode == "tree" else f"-{image_mode}")
                        + (f"-{package}" if package else ""))


def store_dir(dirs: Dirs, tree: Path) -> Path:
    """Where store_tree keeps the store holding `tree`."""
    return dirs.work / f"store-{tree.name}"


def build_root(dirs: Dirs, kver: str, flavor: Flavor, root: str, store: bool,
               generator: str, image_mode: str = "tree", inventory: tuple = (),
               package: Optional[Path] = None, package_kind: str = "") -> Path:
    """lib/make-cluster-root (or, for the Debian root, lib/make-debian-cluster-root from the
    tree scripts/setup-roots cached), every run: the client initramfs in its TFTP root holds
    the agent and hooks under test. `inventory`: lines added to the inventories crctl sync
    renders the node files from (lib/cluster-master-files.bash). `package`: the package
    (of kind `package_kind`) pacman installs into the busybox root, whose files then build
    the images (CRTEST_PACKAGE)."""
    out = root_dir(dirs, flavor, root, store, generator, image_mode, package_kind)
    extra = {"CRTEST_INVENTORY_EXTRA": "\n".join(inventory)} if inventory else {}
    if package is not None:
        if root == "debian":
            raise Fail("a package into the Debian root: not a setup this test has")
        extra["CRTEST_PACKAGE"] = str(package)
    for old in (out, Path(f"{out}.nodefiles")):
        if old.exists():
            shutil.rmtree(old)
    if root == "debian":
        pristine = os.environ.get("CRTEST_DEBIAN_ROOT")
        if not pristine:
            found = subprocess.run([REPO / "scripts" / "setup-roots", "--path", "cluster"],
                                   capture_output=True, text=True)
            if found.returncode != 0:
                raise Fail(f"no Debian root: {found.stderr.strip()}")
            pristine = found.stdout.strip()
        run([LIB / "make-debian-cluster-root", pristine, out, kver],
            env=dict(agent_env(), CRTEST_STORE="1" if store else "",
                     CRTEST_GENERATOR=generator, CRTEST_IMAGE_MODE=image_mode, **extra),
            capture_output=True)
    else:
        run([LIB / "make-cluster-root", out, kver],
            env=dict(agent_env(), CRTEST_FLAVOR=flavor.name, CRTEST_STORE="1" if store else "",
                     CRTEST_GENERATOR=generator, CRTEST_IMAGE_MODE=image_mode, **extra),
            capture_output=True)
    return out


def agent_env() -> dict:
    """The environment for image builds (lib/build-initramfs): the agent under test; and the
    crctl that renders the cluster's node files from its inventory (lib/make-cluster-root)."""
    return dict(os.environ, CLUSTERROOT_AGENT=str(AGENT_DIR / "clusterroot"),
                CRCTL=str(AGENT_DIR / "crctl"))


def disk_initramfs(dirs: Dirs, kver: str, flavor: Flavor,
                   package_root: Optional[Path] = None, tag: str = "") -> Path:
    """The master's image (the site DHCP server boots it too), every run: it holds the agent
    and hooks under test. Built by the flavor's builder (the real mkinitcpio, or Debian's
    initramfs-tools); with `package_root`, a root a package (Debian's, or Arch's) is installed
    in, from the package's files there (lib/build-initramfs-tools, lib/build-initramfs).
    `tag` tells its file from another kind's."""
    config = flavor.cluster_master_config
    out = dirs.work / f"initramfs-{Path(config).stem}{tag}.img"
    env = agent_env()
    if package_root is not None:
        env["CRTEST_PACKAGE_ROOT"] = str(package_root)
    run([LIB / flavor.builder, CONFIG / config, out, kver], env=env, capture_output=True)
    return out


def arch_package() -> Path:
    """The Arch package of this checkout, built once per release tarball by
    packaging/tests/arch-package (which packaging/tests/arch runs first in scripts/test)."""
    out = run([REPO / "packaging" / "tests" / "arch-package"], capture_output=True, text=True)
    return REPO / out.stdout.strip().splitlines()[-1]


def ext4_image(dirs: Dirs, tree: Path, name: str, label: str, size: str) -> Path:
    out = dirs.work / f"{name}.img"
    run([LIB / "make-ext4-image", tree, out, label, size], capture_output=True)
    return out


def disk_copy(dirs: Dirs, img: Path, name: str) -> Path:
    """A fresh copy of a built disk for one VM: the VMs write to their disks."""
    out = dirs.work / f"{name}.img"
    run(["cp", "--sparse=always", img, out])
    return out


def store_tree(dirs: Dirs, tree: Path, image_mode: str = "tree",
               trace: Optional[Path] = None) -> Path:
    """An image store as crctl image keeps one, holding `tree` as version 1, the default:
    what the store variant's master disk holds (hard links, so nothing is copied). A version
    is everything a client boots: the master serves the default's TFTP root (crctl's
    dnsmasq.conf and lighttpd.conf), so version 1's must hold what iPXE fetches. In a
    squashfs image-mode, crctl image squashfs (the inventory the tree holds) builds version
    1's file and the pointer to it in the store's squashfs/, as crctl image import would;
    with the root's `trace` (a boot's reads, crtest.storm_trace), its paths are the store's
    boot order (squashfs/boot-order), which that file lays out first and the agent reads
    ahead on NFS."""
    out = store_dir(dirs, tree)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(mode=0o755)
    if trace is not None and image_mode != "tree":
        (out / "squashfs").mkdir(mode=0o755)
        (out / "squashfs" / "boot-order").write_text(boot_order(read_trace(trace)[1]),
                                                     errors="surrogateescape")
    run(["cp", "-al", tree, out / "1"])
    (out / "default").symlink_to("1")
    missing = [f for f in HTTP_FILES if not (out / "default" / "srv" / "tftp" / f).is_file()]
    if missing:
        raise Fail(f"the store's default version has no {', '.join(missing)} in srv/tftp")
    if image_mode != "tree":
        scratch = dirs.work / f"squashfs-root-{tree.name}"
        if scratch.exists():
            shutil.rmtree(scratch)
        (scratch / "srv" / "nfs").mkdir(parents=True)
        (scratch / "srv" / "nfs" / "images").symlink_to(out)
        run([AGENT_DIR / "crctl", "-f", tree / "etc" / "clusterroot" / "cluster", "image",
             "squashfs", "1", "--root", scratch], capture_output=True)
        shutil.rmtree(scratch)
        if not (out / "squashfs" / "default").is_file():
            raise Fail(f"crctl image squashfs 1 left no pointer file {out / 'squashfs' / 'default'}")
    return out


def build_all(dirs: Dirs, flavor: Flavor, root: str, store: bool,
              generator: str = "mkinitcpio", image_mode: str = "tree",
              inventory: tuple = (), package: str = "") -> tuple:
    """(initramfs for disk-booted nodes, root disk, home disk, node-files disk, what crctl
    render says each client gets, the render root crctl diff reads) of one kind; a failed
    build raises Fail with its stderr. `inventory`: lines added to the inventories
    (build_root); crctl render's expectations do not have them. `package` "arch": the
    shared root gets clusterroot as the Arch package, and the master's image is built from
    what it installed there, after the root."""
    steps = []

    def step(what: str, fn):
        t0 = time.monotonic()
        try:
            result = fn()
        except subprocess.CalledProcessError as e:
            raise Fail(build_failed(what, e))
        steps.append(f"{what} {time.monotonic() - t0:.1f}s")
        return result

    clients = flavor.name if generator == "mkinitcpio" else generator
    tag = ("" if generator == "mkinitcpio" else f"-{generator}") + (f"-{package}" if package else "")
    master_initramfs = f"initramfs of the disk-booted nodes (config/{flavor.cluster_master_config})"
    # The Debian root built the Debian way has the Debian package installed
    # (lib/make-debian-cluster-root): the master's image is built from its files, after it.
    packaged = root == "debian" and generator == "initramfs-tools"
    if package:
        # The Arch package, installed into the busybox root by pacman: the same, after it.
        if package != "arch":
            raise Fail(f"no package of kind {package!r}: only arch")
        pkg = step("Arch package (packaging/tests/arch-package, reused if built from the same "
                   "release tarball)", arch_package)
        tree = step(f"shared root ({root}, {pkg.name} installed by pacman, with the {clients} "
                    "client initramfs from its files)",
                    lambda: build_root(dirs, KVER, flavor, root, store, generator, image_mode,
                                       inventory, pkg, package))
        initrd = step(master_initramfs + f", from the hooks and agent {pkg.name} installed",
                      lambda: disk_initramfs(dirs, KVER, flavor, tree, tag))
    else:
        if not packaged:
            initrd = step(master_initramfs, lambda: disk_initramfs(dirs, KVER, flavor))
        tree = step(f"shared root ({root}, with the {clients} client initramfs"
                    + (", the Debian package installed)" if packaged else ")"),
                    lambda: build_root(dirs, KVER, flavor, root, store, generator, image_mode,
                                       inventory))
        if packaged:
            initrd = step(master_initramfs[:-1] + ", the package's files in the root)",
                          lambda: disk_initramfs(dirs, KVER, flavor, tree))
    if store:
        root_img = step("root disk (an image store: version 1, the default"
                        + ("" if image_mode == "tree" else ", and its squashfs file") + ")",
                        lambda: ext4_image(dirs, store_tree(dirs, tree, image_mode, (
                                               trace_path(root)
                                               if trace_path(root).is_file() else None)),
                                           f"cluster-disk-{tree.name.removeprefix('cluster-root-')}",
                                           "cluster", ROOT_IMAGE_SIZES[root]))
    else:
        root_img = step("root disk", lambda: ext4_image(dirs, tree,
                                                        f"cluster-disk-{flavor.name}-{root}{tag}",
                                                        "cluster", ROOT_IMAGE_SIZES[root]))
    empty = dirs.work / "home-tree"
    if empty.exists():
        shutil.rmtree(empty)
    empty.mkdir(mode=0o755)
    os.chmod(empty, 0o755)
    home_img = step("home disk", lambda: ext4_image(dirs, empty, "home-disk", "home", HOME_IMAGE_SIZE))
    nodes_img = step("node-files disk",
                     lambda: ext4_image(dirs, Path(f"{tree}.nodefiles"),
                                        f"nodefiles-disk-{flavor.name}-{root}{tag}", "nodefiles",
                                        NODEFILES_IMAGE_SIZE))
    expected = step("crctl render of each client", lambda: render_expected(dirs, tree, store))
    log(f"  built ({flavor.name}, {root} root) {', '.join(steps)}")
    return initrd, root_img, home_img, nodes_img, expected, render_root(dirs, tree)


# The master's view laid out for crctl render and diff: the image's /etc, the node files; one
# for each build, as variants that share a build may run after others.
def render_root(dirs: Dirs, tree: Path) -> Path:
    return dirs.work / f"render-{tree.name}"


RENDER_LINE = re.compile(r"^(added|replaced)\s+(/etc/\S+)\s+from (.*)$")


def render_expected(dirs: Dirs, tree: Path, store: bool) -> dict:
    """What `crctl render NODE` says each client's /etc gets: {name: [(path, sha256 or
    None)]}, None for what the agent makes at boot (resolv.conf from the lease). Rendered on
    a scratch copy laid out as on the master: the image's /etc, and the node files at the
    inventory's /srv/nfs/nodes."""
    scratch = render_root(dirs, tree)
    if scratch.exists():
        shutil.rmtree(scratch)
    (scratch / "srv" / "nfs").mkdir(parents=True)
    shutil.copytree(tree / "etc", scratch / "etc", symlinks=True)
    shutil.copytree(Path(f"{tree}.nodefiles"), scratch / "srv" / "nfs" / "nodes", symlinks=True)
    if store:
        # The store as the master has it, for crctl diff: version 1, the default.
        (scratch / "srv" / "nfs" / "images" / "1").mkdir(parents=True)
        (scratch / "srv" / "nfs" / "images" / "default").symlink_to("1")
    expected = {}
    for name, mac, _ in CLIENTS:
        cmd = [AGENT_DIR / "crctl", "-f", REPO / "mkinitcpio" / "cluster", "render", name,
               "--root", scratch]
        out = run(cmd, capture_output=True, text=True).stdout
        files = []
        for line in out.splitlines():
            m = RENDER_LINE.match(line)
            if not m:
                continue
            path, source = m.group(2), m.group(3)
            src = scratch / "srv" / "nfs" / "nodes" / mac / path[len("/etc/"):]
            if not source.startswith("node files"):
                files.append((path, None))
            elif src.is_file() and not src.is_symlink():
                files.append((path, sha256(src)))
        # Every file of its node files is in the list: render names all it adds or replaces.
        own = scratch / "srv" / "nfs" / "nodes" / mac
        have = {f"/etc/{p.relative_to(own)}" for p in own.rglob("*")
                if p.is_file() and not p.is_symlink()}
        listed = {p for p, h in files if h}
        if not have or have != listed:
            raise Fail(f"crctl render {name} lists {sorted(listed)}, its node files hold "
                       f"{sorted(have)}:\n{out}")
        expected[name] = files
    # Kept for the diff check (diff_matches) of the variants of this build.
    return expected
