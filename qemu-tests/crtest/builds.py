# SPDX-License-Identifier: MIT
"""Building what the VMs boot: the shared root, its disk images, the ZFS pool, the server's and
the clients' initramfs images."""

import hashlib
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable, Optional

from .paths import AGENT_DIR, CONFIG, KERNEL, KVER, LIB, QEMU, QT, Dirs, mkinitcpio_prefix
from .util import LAST_LINES, Fail, Skip, build_failed, die_with_parent, log, run, stale

# Local-root scenarios: the shared root on the node's virtio disk (ext4, LABEL=croot).
CROOT_UUID = "c7007e57-0000-4000-8000-00000000c007"
DISK_UUIDS = {"croot": CROOT_UUID}
LOCAL_DEVICE = "/dev/vda"


def zfs_missing() -> None:
    """Skips a ZFS scenario where zfs-dkms or zfsutils-linux are missing."""
    if not list((Path("/lib/modules") / KVER).rglob("zfs.ko*")):
        raise Skip(f"no zfs module for {KVER}: scripts/setup installs zfs-dkms from contrib")
    if not any(Path(d, "zpool").exists() for d in ("/usr/sbin", "/sbin")):
        raise Skip("no zpool: scripts/setup installs zfsutils-linux")


class Builds:
    """Builds into the work directory once per run; the shared root and server image are kept
    between runs while their inputs are unchanged, the images a VM can write to are made
    fresh."""

    def __init__(self, dirs: Dirs, rebuild: bool):
        self.dirs = dirs
        self.rebuild = rebuild
        self.done: dict = {}
        self.errors: dict = {}
        # The server VM gets a copy of the ZFS pool image as its second disk: set by
        # prebuild_shared once the image is built, when a selected scenario has server_zfs.
        self.server_zfs = False
        # The server VM gets the squashfs scenarios' disk (live_disk) as its last disk: set by
        # prebuild_shared when a selected scenario has server_live; live_name is its file's.
        self.server_live = False
        self.live_name = ""

    def _once(self, key: str, fn: Callable[[], Path]) -> Path:
        if key in self.errors:
            raise Fail(self.errors[key])
        if key not in self.done:
            t0 = time.monotonic()
            try:
                self.done[key] = fn()
            except subprocess.CalledProcessError as e:
                self.errors[key] = build_failed(key, e)
                raise Fail(self.errors[key])
            except Fail as e:
                self.errors[key] = str(e)
                raise
            log(f"  built {key} in {time.monotonic() - t0:.1f}s")
        return self.done[key]

    def shared_root(self) -> Path:
        def build() -> Path:
            out = self.dirs.work / "shared-root"
            if self.rebuild or stale(out, [LIB / "make-shared-root", LIB / "node-init"]):
                if out.exists():
                    shutil.rmtree(out)
                run([LIB / "make-shared-root", out], capture_output=True)
            return out

        return self._once("shared root", build)

    def ext4_image(self, name: str, label: str, uuid: Optional[str] = None) -> Path:
        """A fresh ext4 image of the shared root, made on every call: the VM using it may
        write to it. `uuid`: the filesystem UUID (default random)."""
        out = self.dirs.work / f"{name}.img"
        shared_root = self.shared_root()
        try:
            run([LIB / "make-ext4-image", shared_root, out, label, "64M"] + ([uuid] if uuid else []),
                capture_output=True)
        except subprocess.CalledProcessError as e:
            err = (e.stderr or b"").decode(errors="replace").strip()
            raise Fail(f"building {out.name} failed: {err}")
        return out

    def store_image(self, name: str = "disk-cstore") -> Path:
        """A fresh ext4 image (LABEL=cstore) of an image store laid out as crctl image keeps
        one: versions 1 and 2 of the shared root, each with its number in /crtest/version,
        and default -> 2 (a master booting root=LABEL=... clusterroot.image=default)."""
        out, src = self.dirs.work / f"{name}.img", self.dirs.work / f"{name}-src"
        if src.exists():
            shutil.rmtree(src)
        src.mkdir()
        for v in ("1", "2"):
            run(["cp", "-a", self.shared_root(), src / v])
            (src / v / "crtest").mkdir(exist_ok=True)
            (src / v / "crtest" / "version").write_text(f"{v}\n")
        (src / "default").symlink_to("2")
        try:
            run([LIB / "make-ext4-image", src, out, "cstore", "64M"], capture_output=True)
        except subprocess.CalledProcessError as e:
            raise Fail(f"building {out.name} failed: {(e.stderr or b'').decode(errors='replace').strip()}")
        shutil.rmtree(src)
        return out

    def live_disk(self) -> Path:
        """The squashfs scenarios' disk (ext4, LABEL=live), which the server VM serves over
        HTTP (busybox httpd) and exports over NFS, read-only, as /srv/live (lib/server-init):
          images/1-<sha256>.squashfs  the shared root as one file, built as crctl publishes
                                      one (Debian's mksquashfs, zstd, xattrs)
          images/default              its name: what `default` resolves to
          bad/1-<sha256>.squashfs     the same name, one byte changed: a damaged replica
        Made once per run, from the shared root."""
        def build() -> Path:
            src, out = self.dirs.work / "live-src", self.dirs.work / "disk-live.img"
            if src.exists():
                shutil.rmtree(src)
            (src / "images").mkdir(parents=True)
            (src / "bad").mkdir()
            tmp = src / "images" / "new.squashfs"
            # The shared root, and 1.5 MiB that do not compress: the file is then bigger than
            # the least clusterroot.maxsize= (1M), which live-too-big sets.
            tree = src / "root"
            run(["cp", "-a", self.shared_root(), tree])
            (tree / "crtest").mkdir(exist_ok=True)
            (tree / "crtest" / "live-padding").write_bytes(os.urandom(3 << 19))
            run(["mksquashfs", tree, tmp, "-comp", "zstd", "-xattrs", "-noappend",
                 "-quiet", "-no-progress"], capture_output=True)
            shutil.rmtree(tree)
            data = tmp.read_bytes()
            name = f"1-{hashlib.sha256(data).hexdigest()}.squashfs"
            tmp.rename(src / "images" / name)
            (src / "images" / "default").write_text(f"{name}\n")
            middle = len(data) // 2
            (src / "bad" / name).write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF])
                                            + data[middle + 1:])
            size = f"{max(16, 2 * len(data) // (1 << 20) + 8)}M"
            run([LIB / "make-ext4-image", src, out, "live", size], capture_output=True)
            shutil.rmtree(src)
            self.live_name = name
            return out

        return self._once("squashfs image disk", build)

    def zfs_pool_image(self) -> Path:
        """The ZFS pool disk of the ZFS scenarios, made once by a preparation VM (see
        hooks/hooks/zfsprep) and kept while its inputs are unchanged."""

        def build() -> Path:
            work = self.dirs.work
            out = work / "zfs-pool.img"
            inputs = [LIB / "make-shared-root", LIB / "node-init", LIB / "make-ext4-image",
                      QT / "hooks" / "hooks" / "zfsprep", CONFIG / "zfs-prep.conf",
                      LIB / "build-initramfs", Path(mkinitcpio_prefix())]
            shared_root = self.shared_root()
            if not (self.rebuild or stale(out, inputs)):
                return out
            initrd = work / "initramfs-zfs-prep.img"
            run([LIB / "build-initramfs", CONFIG / "zfs-prep.conf", initrd, KVER],
                capture_output=True)
            src = work / "zfs-prep-src.img"
            run([LIB / "make-ext4-image", shared_root, src, "croot", "64M"], capture_output=True)
            tmp = work / "zfs-pool.img.tmp"
            tmp.unlink(missing_ok=True)
            with open(tmp, "wb") as f:
                f.truncate(256 << 20)
            console = self.dirs.logs / "zfs-prep.console.log"
            cmd = ["timeout", "--kill-after=10", "300", QEMU, "-accel", "tcg", "-m", "768",
                   "-smp", "1", "-nodefaults", "-no-user-config", "-display", "none",
                   "-no-reboot", "-kernel", KERNEL, "-initrd", initrd,
                   # zfs_wait=0: the zfs hook's wait for a pool (there is none yet) ends at once.
                   "-append", "console=ttyS0 panic=-1 zfs_wait=0", "-serial", f"file:{console}",
                   "-nic", "none",
                   "-drive", f"file={tmp},format=raw,if=virtio",
                   "-drive", f"file={src},format=raw,if=virtio,readonly=on"]
            subprocess.run([str(c) for c in cmd], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           preexec_fn=die_with_parent)
            text = console.read_text(errors="replace") if console.exists() else ""
            if "CRTEST zfsprep ok" not in text:
                why = re.search(r"CRTEST zfsprep failed: (.*)", text)
                for line in text.splitlines()[-LAST_LINES:]:
                    log(f"    | {line}")
                raise Fail("the ZFS preparation VM failed: "
                           + (why.group(1) if why else f"no result (see {console})"))
            src.unlink()
            tmp.rename(out)
            return out

        return self._once("ZFS pool image", build)

    def zfs_disk(self, name: str) -> Path:
        """A fresh copy of the pool image for one VM: importing a pool writes to it."""
        out = self.dirs.work / f"{name}.img"
        shutil.copyfile(self.zfs_pool_image(), out)
        return out

    def server_initramfs(self) -> Path:
        def build() -> Path:
            out = self.dirs.work / "server-initramfs.cpio.gz"
            # ZFS's modules and tools go in where installed: depmod rewrites modules.dep when
            # dkms adds or removes zfs.ko.
            zfs = [Path("/lib/modules") / KVER / "modules.dep", Path("/usr/sbin/zfs"),
                   Path("/usr/sbin/zpool")]
            if self.rebuild or stale(out, [LIB / "make-server-image", LIB / "server-init",
                                           AGENT_DIR / "crctl"] + zfs):
                run([LIB / "make-server-image", out, KVER], capture_output=True)
            return out

        return self._once("server initramfs", build)

    def client_initramfs(self, config: str, builder: str = "build-initramfs") -> Path:
        """The image of qemu-tests/config/`config`, built by lib/`builder` (a flavor's: the
        real mkinitcpio's build-initramfs, or Debian's dracut's build-dracut, which takes a
        conf.d snippet). Always rebuilt once per run: it holds the agent and hooks under
        test."""

        def build() -> Path:
            agent = AGENT_DIR / "clusterroot"
            if not os.access(agent, os.X_OK):
                raise Fail(
                    f"no agent binary {agent}: build it with "
                    "`cargo build --release --target x86_64-unknown-linux-musl`"
                )
            script = LIB / builder
            if not os.access(script, os.X_OK):
                raise Fail(f"no {script}")
            out = self.dirs.work / f"initramfs-{Path(config).stem}.img"
            env = dict(os.environ, CLUSTERROOT_AGENT=str(agent))
            run([script, CONFIG / config, out, KVER], env=env, capture_output=True)
            return out

        return self._once(f"client initramfs ({config})", build)
