# SPDX-License-Identifier: MIT
"""A boot's reads, the trace qemu-tests/storm replays (trace-ROOT.tsv in qemu-tests/bench-data/):
the files a real client read from the shared root while it booted and how many of their
bytes, as util-linux fincore saw them resident in its page cache. Read, written and made
from fincore's output here; no VM."""

import re
from dataclasses import dataclass
from pathlib import Path

HEADER = ("resident_bytes", "size", "path")


@dataclass(frozen=True)
class Entry:
    """One file of the trace: its bytes resident after the boot, its size, its path in the
    shared root (absolute, e.g. /usr/lib/systemd/systemd)."""

    resident: int
    size: int
    path: str

    @property
    def read_bytes(self) -> int:
        """What the replay reads from the start of the file: the resident bytes, which
        fincore counts in whole pages, never more than the file holds."""
        return min(self.resident, self.size)


class TraceError(ValueError):
    """A trace file or fincore output that is not what it should be; says where."""


def parse_fincore(text: str, lower: str) -> list:
    """fincore's lines "RES SIZE PATH" (as `fincore -b -n -r -o RES,SIZE,FILE` prints them,
    the files with RES > 0) of files under `lower` (the client's /run/rootfs/lower): the
    entries, their paths made relative to `lower` (absolute in the shared root), sorted by
    path. fincore's raw output hex-escapes what is unsafe in a path (a blank is \\x20, a
    backslash \\x5c): the path is the rest of the line, unescaped."""
    prefix = lower.rstrip("/") + "/"
    entries = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(" ", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            raise TraceError(f"fincore line {n}: not 'RES SIZE PATH': {line!r}")
        res, size, path = int(parts[0]), int(parts[1]), unescape(parts[2])
        if not path.startswith(prefix):
            raise TraceError(f"fincore line {n}: {path} is not under {lower}")
        if res > 0:
            entries.append(Entry(res, size, "/" + path[len(prefix):]))
    return sorted(entries, key=lambda e: e.path)


def unescape(raw: str) -> str:
    """A path as libsmartcols' raw output escapes it (\\xHH for each byte that is not safe),
    as it was; bytes that are no UTF-8 come back as surrogates."""
    data = re.sub(rb"\\x([0-9a-fA-F]{2})", lambda m: bytes([int(m.group(1), 16)]),
                  raw.encode(errors="surrogateescape"))
    return data.decode(errors="surrogateescape")


def format_trace(entries: list, comments: list) -> str:
    """The TSV file: each comment line as "# ...", the header, then one line a file."""
    out = [f"# {c}".rstrip() for c in comments]
    out.append("\t".join(HEADER))
    for e in entries:
        if "\t" in e.path or "\n" in e.path:
            raise TraceError(f"a path the TSV cannot hold: {e.path!r}")
        out.append(f"{e.resident}\t{e.size}\t{e.path}")
    return "\n".join(out) + "\n"


def parse_trace(text: str, name: str = "trace") -> tuple:
    """(comments, entries) of a TSV trace; TraceError names the line that is wrong."""
    comments, entries = [], []
    header_seen = False
    for n, line in enumerate(text.splitlines(), 1):
        if line.startswith("#"):
            comments.append(line[1:].strip())
            continue
        if not line.strip():
            continue
        fields = line.split("\t")
        if not header_seen:
            if tuple(fields) != HEADER:
                raise TraceError(f"{name}:{n}: the header must be {' '.join(HEADER)}, "
                                 f"tab-separated: {line!r}")
            header_seen = True
            continue
        if len(fields) != 3 or not fields[0].isdigit() or not fields[1].isdigit():
            raise TraceError(f"{name}:{n}: not RESIDENT<TAB>SIZE<TAB>PATH: {line!r}")
        if not fields[2].startswith("/"):
            raise TraceError(f"{name}:{n}: the path must be absolute: {fields[2]!r}")
        entries.append(Entry(int(fields[0]), int(fields[1]), fields[2]))
    if not header_seen:
        raise TraceError(f"{name}: no header line ({' '.join(HEADER)})")
    return comments, entries


def read_trace(path: Path) -> tuple:
    """(comments, entries) of the trace file `path`."""
    return parse_trace(path.read_text(errors="surrogateescape"), str(path))


def load_form(entries: list) -> str:
    """The load VM's form ("BYTES PATH" a line, lib/storm-read.rs), as lib/make-load-image
    writes it from the TSV; here for the tests to compare with."""
    return "".join(f"{e.read_bytes} {e.path}\n" for e in entries)


def boot_order(entries: list) -> str:
    """The image store's boot-order file (crctl image: what a squashfs file lays out first)
    from a trace: its paths, one a line, in the trace's order."""
    return "".join(f"{e.path}\n" for e in entries)


def totals(entries: list) -> dict:
    """{"files", "bytes"}: what one replay reads."""
    return {"files": len(entries), "bytes": sum(e.read_bytes for e in entries)}
