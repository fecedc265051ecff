# SPDX-License-Identifier: MIT
"""The boot loader's test double: the entries of the installed system's grub.cfg, read from the
master's disk, the default one or the maintenance one (clusterroot=off)."""

import re
from dataclasses import dataclass
from pathlib import Path

from ..util import Fail
from .disks import debugfs


@dataclass
class Entry:
    title: str
    top: bool          # a top-level entry (not in a submenu)
    kernel: str
    args: str
    initrd: str


def grub_entries(disk: Path) -> list:
    cfg = debugfs(disk, "cat /boot/grub/grub.cfg")
    if "menuentry" not in cfg:
        raise Fail("the master's disk has no /boot/grub/grub.cfg with entries")
    entries, depth, current = [], 0, None
    submenus: list = []
    for raw in cfg.splitlines():
        line = raw.strip()
        if m := re.match(r"""(menuentry|submenu)\s+(['"])(.*?)\2.*\{$""", line):
            if m.group(1) == "submenu":
                submenus.append(depth)
            else:
                current = {"title": m.group(3), "top": not submenus, "kernel": None,
                           "args": "", "initrd": None, "depth": depth}
            depth += 1
            continue
        if line.endswith("{"):
            depth += 1
            continue
        if line == "}":
            depth -= 1
            if current is not None and depth == current["depth"]:
                if current["kernel"]:
                    entries.append(Entry(current["title"], current["top"], current["kernel"],
                                         current["args"], current["initrd"] or ""))
                current = None
            elif submenus and depth == submenus[-1]:
                submenus.pop()
            continue
        if current is not None:
            if m := re.match(r"linux(?:16|efi)?\s+(\S+)\s*(.*)$", line):
                current["kernel"], current["args"] = m.group(1), " ".join(m.group(2).split())
            elif m := re.match(r"initrd(?:16|efi)?\s+(\S+)", line):
                current["initrd"] = m.group(1)
    return entries


def pick_entry(disk: Path, maintenance: bool) -> Entry:
    """GRUB's default (the first entry, GRUB_DEFAULT=0), or the one that boots the image itself
    (clusterroot=off)."""
    entries = grub_entries(disk)
    if maintenance:
        chosen = [e for e in entries if "clusterroot=off" in e.args.split()]
        what = "an entry with clusterroot=off (README's maintenance entry)"
    else:
        chosen = entries[:1]
        what = "an entry"
    if not chosen:
        raise Fail(f"grub.cfg has no {what}: {[e.title for e in entries]}")
    e = chosen[0]
    if "$" in e.args or not e.initrd:
        raise Fail(f"grub.cfg's entry '{e.title}' uses what this boot loader double does not "
                   f"do (GRUB variables, no initrd): linux {e.kernel} {e.args}")
    return e
