# SPDX-License-Identifier: MIT
"""The harness's pieces that need no VM: a console read as it grows, expect on a VM that has
exited, the report parser, staleness, a failed build remembered, the work and log
directories. Without root:

    python3 -m unittest discover -s qemu-tests/crtest/tests"""

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

# crtest, from the directory put on sys.path above.
from crtest.builds import Builds
from crtest.paths import Dirs
from crtest.report import Report
from crtest.util import Fail, stale
from crtest.vm import VM, Console

CONSOLE = """\
[    3.141592] clusterroot: ready: switch_root in 3.1 s
CRTEST mount /: overlay overlay rw,lowerdir=/run/rootfs/lower
CRTEST state: boot_mac=52:54:00:77:00:11
CRTEST file /etc/crtest/from-dir: node1 from directory
CRTEST nofile /etc/crtest/from-archive
CRTEST link ens3: mtu=1400 mac=52:54:00:77:00:21 addr=10.77.0.21/24
CRTEST hostname-file: node1
CRTEST done
"""


class Exited:
    """A QEMU process that has ended."""
    returncode = 0

    def poll(self):
        return 0


def finished_vm(path: Path) -> VM:
    """A VM whose console is `path` and whose process has exited: expect reads what is there."""
    vm = VM.__new__(VM)
    vm._open(Dirs(path.parent, path.parent), "node11", None)
    vm.console = Console(path)
    vm.proc, vm.started = Exited(), time.monotonic()
    return vm


class Harness(unittest.TestCase):
    def setUp(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="crtest-test."))

    def tearDown(self):
        subprocess.run(["rm", "-rf", str(self.tmp)], check=True)

    def test_console_keeps_the_unfinished_line(self):
        log = self.tmp / "c.log"
        log.write_bytes(b"one\r\ntw")
        console = Console(log)
        console.poll()
        self.assertEqual((console.lines, console.partial), (["one"], "tw"))
        with open(log, "ab") as f:
            f.write(b"o\nthree")
        console.poll()
        self.assertEqual(console.lines, ["one", "two"])
        self.assertEqual(console.tail(), ["one", "two", "three"])

    def test_expect_in_order_and_fail_lines(self):
        log = self.tmp / "c.log"
        log.write_text(CONSOLE)
        vm = finished_vm(log)
        self.assertEqual(vm.expect(r"clusterroot: ready:", 5).group(0), "clusterroot: ready:")
        vm.expect(r"CRTEST done", 5)
        with self.assertRaisesRegex(Fail, r"VM exited \(status 0\) before /clusterroot: ready:/"):
            vm.expect(r"clusterroot: ready:", 5)    # only after the previous match
        with self.assertRaisesRegex(Fail, r"unexpected console line: CRTEST state"):
            finished_vm(log).expect(r"CRTEST done", 5, (r"CRTEST state",))

    def test_expect_takes_an_unfinished_line_only_for_a_prompt(self):
        log = self.tmp / "c.log"
        log.write_text("CRTEST sh: 0 QUJD\n[rootfs ]# ")
        self.assertEqual(finished_vm(log).expect(r"\[rootfs ", 5).group(0), "[rootfs ")
        log.write_text("CRTEST up\nCRTEST sh: 0 QUJD")     # the answer still being written
        with self.assertRaisesRegex(Fail, r"VM exited .* before /CRTEST sh"):
            finished_vm(log).expect(r"CRTEST sh: (\d+) (\S*)$", 5)

    def test_report(self):
        r = Report.parse(CONSOLE.splitlines())
        self.assertEqual(r.ready_at, 3.141592)
        self.assertEqual(r.mount("/")[0], "overlay")
        self.assertEqual(r.state, {"boot_mac": "52:54:00:77:00:11"})
        self.assertEqual(r.files, {"/etc/crtest/from-dir": "node1 from directory"})
        self.assertEqual(r.absent, {"/etc/crtest/from-archive"})
        self.assertEqual(r.links["ens3"]["mtu"], "1400")
        self.assertEqual(r.value("hostname-file"), "node1")
        with self.assertRaisesRegex(Fail, "nothing mounted at /home"):
            r.mount("/home")

    def test_stale(self):
        out, src = self.tmp / "out", self.tmp / "src"
        src.mkdir()
        (src / "input").write_text("1")
        self.assertTrue(stale(out, [src]))
        out.write_text("built")
        os.utime(src / "input", (time.time() - 60, time.time() - 60))
        os.utime(src, (time.time() - 60, time.time() - 60))
        self.assertFalse(stale(out, [src, self.tmp / "missing"]))
        os.utime(src / "input", (time.time() + 60, time.time() + 60))
        self.assertTrue(stale(out, [src]))

    def test_a_failed_build_is_remembered(self):
        builds, calls = Builds(Dirs.under(self.tmp), rebuild=False), []

        def build():
            calls.append(1)
            raise subprocess.CalledProcessError(1, ["make-thing", "x"], stderr=b"first\nlast\n")

        shown = io.StringIO()
        with contextlib.redirect_stdout(shown):
            for _ in range(2):
                with self.assertRaisesRegex(Fail, r"^building thing failed: make-thing x: last$"):
                    builds._once("thing", build)
        self.assertEqual(len(calls), 1)
        self.assertEqual(shown.getvalue(), "    | first\n    | last\n")   # its stderr, once

    def test_fresh_logs(self):
        dirs = Dirs.under(self.tmp / "work")
        dirs.fresh_logs()
        (dirs.logs / "old.console.log").write_text("old")
        dirs.fresh_logs()
        self.assertEqual(list(dirs.logs.iterdir()), [])
        self.assertEqual(dirs.logs, self.tmp / "work" / "logs")


if __name__ == "__main__":
    unittest.main()
