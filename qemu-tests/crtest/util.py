# SPDX-License-Identifier: MIT
"""What every part of the harness uses: output, outcomes, commands, staleness, threads, signals."""

import ctypes
import hashlib
import signal
import subprocess
import threading
from pathlib import Path

LAST_LINES = 40   # of a console or a failed build's output, shown on failure


class Fail(Exception):
    """A scenario failed; the message says why."""


class Skip(Exception):
    """A scenario cannot run here; the message says why."""


class Interrupted(BaseException):
    """SIGTERM/SIGHUP: unwind like Ctrl-C so everything gets cleaned up."""


# Scenarios run in lanes at once (see crtest.runner); whole lines and blocks stay together.
OUTPUT = threading.RLock()


def log(msg: str) -> None:
    with OUTPUT:
        print(msg, flush=True)


def log_table(rows: list) -> None:
    """Rows of cells as columns, each line indented by two spaces."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        log(("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths))).rstrip())


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def build_failed(what: str, e: subprocess.CalledProcessError) -> str:
    """Logs the end of a failed build command's stderr; returns "building WHAT failed: CMD:
    <its last line>"."""
    out = (e.stderr or b"").decode(errors="replace").strip().splitlines()
    for line in out[-LAST_LINES:]:
        log(f"    | {line}")
    return f"building {what} failed: {' '.join(map(str, e.cmd))}" + (f": {out[-1]}" if out else "")


def newest_mtime(paths: list) -> float:
    newest = 0.0
    for p in paths:
        p = Path(p)
        if not p.exists():
            continue
        if p.is_dir():
            for sub in p.rglob("*"):
                newest = max(newest, sub.lstat().st_mtime)
        newest = max(newest, p.lstat().st_mtime)
    return newest


def stale(output: Path, inputs: list) -> bool:
    return not output.exists() or output.lstat().st_mtime < newest_mtime(inputs)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the harness dies, even by SIGKILL
    (prctl(PR_SET_PDEATHSIG)); `timeout` passes it on to QEMU."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)


def join_all(threads: list) -> None:
    """Starts the threads and waits for them; signals reach the main thread meanwhile."""
    for t in threads:
        t.start()
    for t in threads:
        while t.is_alive():
            t.join(0.5)


def interrupt_on(*signums: int) -> None:
    """These signals raise Interrupted in the main thread, so that everything unwinds (and is
    cleaned up) as on Ctrl-C."""

    def interrupted(signum, _frame):
        raise Interrupted(signal.Signals(signum).name)

    for signum in signums:
        signal.signal(signum, interrupted)
