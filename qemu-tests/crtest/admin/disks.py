# SPDX-License-Identifier: MIT
"""The admin test's disks: the installed master's (built from the tree scripts/setup-roots
caches, or kept from the last run), the checkout's, and what the test reads on them between
boots: files through debugfs, mounts on the host, a manifest of the image."""

import hashlib
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..paths import AGENT_DIR, LIB, REPO, Dirs
from ..util import Fail, log, run

PART_OFFSET = 1048576               # sda1 (lib/make-admin-master)
# The root (sda), and two blank disks alike, which README's steps make /home (sdb) and the node
# files (sdc). Linux probes the disks present at boot in parallel and names them in no fixed
# order, so for the install boot only the root is there at power-on: the test plugs the new
# disks in once the installed system is up, one after the other (sdb, then sdc). Later boots
# find them by label.
DISKS = (("root", "8G"), ("sdb", "64M"), ("sdc", "64M"))   # the root holds image versions too
CHECKOUT_LABEL = "crtest-checkout"


def pristine_root() -> Path:
    tree = os.environ.get("CRTEST_ADMIN_ROOT")
    if not tree:
        found = subprocess.run([REPO / "scripts" / "setup-roots", "--path", "admin"],
                               capture_output=True, text=True)
        if found.returncode != 0:
            raise Fail(f"no installed master to start from: {found.stderr.strip()}")
        tree = found.stdout.strip()
    return Path(tree)


def checkout_tree(dirs: Dirs, stages: dict) -> Path:
    """This checkout as the admin has it: its files (git's, tracked and new, not ignored), the
    static build, and the stage scripts in .crtest-admin/."""
    out = dirs.work / "checkout"
    if out.exists():
        shutil.rmtree(out)
    files = subprocess.run(["git", "-C", REPO, "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, check=True).stdout.split(b"\0")
    for f in files:
        if not f:
            continue
        src = REPO / os.fsdecode(f)
        if not (src.is_file() or src.is_symlink()):
            continue   # deleted in the working tree
        dst = out / os.fsdecode(f)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst, follow_symlinks=False)
    build = out / "target" / "x86_64-unknown-linux-musl" / "release"
    build.mkdir(parents=True)
    for b in ("clusterroot", "crctl"):
        shutil.copy2(AGENT_DIR / b, build / b)
    (out / ".crtest-admin").mkdir()
    for stage, (script, _) in stages.items():
        (out / ".crtest-admin" / f"{stage}.sh").write_text(script)
    return out


@dataclass
class Disks:
    root: Path
    blank: tuple        # sdb, sdc
    checkout: Path      # vda
    nodefiles: Optional[Path] = None   # the one of `blank` the steps labelled nodefiles

    def scsi(self) -> list:
        return [self.root, *self.blank]


def build(dirs: Dirs, stages: dict, reuse: bool) -> Disks:
    """The master's disks: fresh, or (`reuse`, for --from) as the last run left them."""
    t0 = time.monotonic()
    paths = {"root": dirs.work / "disk-root.img"}
    paths.update((name, dirs.work / f"disk-{name}.img") for name, _ in DISKS[1:])
    if reuse:
        missing = [str(p) for p in paths.values() if not p.exists()]
        if missing:
            raise Fail(f"--from: no disks of an earlier run: {', '.join(missing)}")
    else:
        pristine = pristine_root()
        run([LIB / "make-admin-master", pristine, paths["root"], DISKS[0][1]],
            capture_output=True)
        for name, size in DISKS[1:]:
            paths[name].unlink(missing_ok=True)
            run(["truncate", "-s", size, paths[name]])
    tree = checkout_tree(dirs, stages)
    checkout = dirs.work / "disk-checkout.img"
    run([LIB / "make-ext4-image", tree, checkout, CHECKOUT_LABEL, "128M"],
        capture_output=True)
    log(f"  {'kept the disks of the last run' if reuse else 'built the installed master'} "
        f"and the checkout in {time.monotonic() - t0:.1f}s")
    return Disks(paths["root"], (paths["sdb"], paths["sdc"]), checkout)


def root_spec(disk: Path) -> str:
    """sda1 of the disk image, for e2fsprogs (debugfs, e2fsck, dumpe2fs)."""
    return f"{disk}?offset={PART_OFFSET}"


def debugfs(disk: Path, request: str) -> str:
    p = subprocess.run(["debugfs", "-R", request, root_spec(disk)], capture_output=True,
                       text=True, errors="replace")
    return p.stdout


def resolve(disk: Path, path: str) -> str:
    """`path` on sda1 with its symlinks followed (the root's own /vmlinuz -> boot/...)."""
    parts = [p for p in path.split("/") if p]
    done: list = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            done = done[:-1]
            continue
        if part == ".":
            continue
        here = "/" + "/".join(done + [part])
        out = debugfs(disk, f"stat {here}")
        if "Type: symlink" in out:
            hops += 1
            m = re.search(r'Fast link dest: "(.*)"', out)
            if hops > 20 or not m:
                raise Fail(f"cannot follow the symlink {here} on the master's disk")
            target = m.group(1)
            if target.startswith("/"):
                done = []
            parts = [p for p in target.split("/") if p] + parts
            continue
        if "Inode:" not in out:
            raise Fail(f"no {here} on the master's disk (for {path})")
        done.append(part)
    return "/" + "/".join(done)


def disk_file(disk: Path, path: str, out: Path) -> Path:
    real = resolve(disk, path)
    out.unlink(missing_ok=True)
    subprocess.run(["debugfs", "-R", f"dump {real} {out}", root_spec(disk)],
                   capture_output=True, check=True)
    if not out.exists() or out.stat().st_size == 0:
        raise Fail(f"could not read {path} ({real}) from the master's disk")
    return out


class loop_mount:
    """A read-only (or writable) mount of a filesystem at `offset` in an image, on the host,
    on a directory made in `work`."""

    def __init__(self, img: Path, offset: int, work: Path, writable: bool = False):
        self.img, self.offset, self.work, self.writable = img, offset, work, writable

    def __enter__(self) -> Path:
        self.dir = Path(tempfile.mkdtemp(prefix="mnt-", dir=self.work))
        args = ["losetup", "-f", "--show", "-o", str(self.offset)] + ([] if self.writable else ["-r"])
        self.loop = run(args + [self.img], capture_output=True, text=True).stdout.strip()
        try:
            run(["mount", "-o", "rw" if self.writable else "ro,noload", self.loop, self.dir])
        except BaseException:
            subprocess.run(["losetup", "-d", self.loop])
            raise
        return self.dir

    def __exit__(self, *exc):
        subprocess.run(["umount", self.dir])
        subprocess.run(["losetup", "-d", self.loop])
        self.dir.rmdir()


SECRET_MARK = b"CRSECRET-"   # each node's crtest-secret (mark_secrets)


def file_digest(path: Path) -> tuple:
    """(sha256, whether the file holds a node's secret marker)."""
    h, marked, tail = hashlib.sha256(), False, b""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            marked = marked or SECRET_MARK in tail + chunk
            tail = chunk[-len(SECRET_MARK):]
    return h.hexdigest(), marked


def manifest(disk: Path, work: Path) -> tuple:
    """Every entry of sda1: type, mode, owner, size, mtime and contents (sha256) or link
    target; and the files that hold a node's secret marker. The journal is replayed first, as
    the next mount would (e2fsck), so that the read-only mount (on a directory in `work`) shows
    what the master left."""
    subprocess.run(["e2fsck", "-E", "journal_only", "-y", root_spec(disk)], capture_output=True)
    out, marked = {}, []
    with loop_mount(disk, PART_OFFSET, work) as mnt:
        for top, dirs, files in os.walk(mnt):
            for name in dirs + files:
                p = Path(top) / name
                st = p.lstat()
                rel = "/" + str(p.relative_to(mnt))
                what = (stat.filemode(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns)
                if stat.S_ISREG(st.st_mode):
                    digest, has_mark = file_digest(p)
                    what += (st.st_size, digest)
                    if has_mark:
                        marked.append(rel)
                elif stat.S_ISLNK(st.st_mode):
                    what += (os.readlink(p),)
                out[rel] = what
    return out, marked


def manifest_diff(before: dict, after: dict) -> list:
    changes = [f"new {p}" for p in sorted(set(after) - set(before))]
    changes += [f"gone {p}" for p in sorted(set(before) - set(after))]
    changes += [f"changed {p}" for p in sorted(set(before) & set(after)) if before[p] != after[p]]
    return changes


def image_secrets(files: dict) -> list:
    """What must not be in the image, nor in any version of its store: a machine-id, ssh host
    keys, a random seed."""
    bad = []
    roots = [""] + sorted({m.group(0) for p in files
                           if (m := re.match(r"/srv/nfs/images/(\d+|edit)(?=/)", p))})
    for root in roots:
        mid = files.get(f"{root}/etc/machine-id")
        if mid is not None and mid[0].startswith("-") and mid[4] != 0:
            bad.append(f"{root}/etc/machine-id is not empty")
        bad += [p for p in files if p.startswith(f"{root}/etc/ssh/ssh_host_")]
        bad += [p for p in files if p == f"{root}/var/lib/systemd/random-seed"]
    return bad
