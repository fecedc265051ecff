# SPDX-License-Identifier: MIT
"""The storm's pieces that need no VM: the trace (fincore's output in, the TSV file out and
back, the load VM's form), the load VM's result lines, the client MACs, the arguments and the
masters it picks; and the trace files the repository holds."""

import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crtest import storm  # noqa: E402
from crtest.paths import REPO  # noqa: E402
from crtest.cluster import build  # noqa: E402
from crtest.storm_results import client_mac, parse_client, parse_storm  # noqa: E402
from crtest.storm_trace import (Entry, TraceError, boot_order, format_trace, load_form,  # noqa: E402
                                parse_fincore, parse_trace, totals)

LOWER = "/run/rootfs/lower"


class Fincore(unittest.TestCase):
    def test_paths_relative_to_the_lower_sorted(self):
        text = (f"8192 10000 {LOWER}/usr/bin/b\n"
                f"4096 3 {LOWER}/etc/hostname\n"
                f"0 500 {LOWER}/usr/bin/never-read\n\n")
        self.assertEqual(parse_fincore(text, LOWER),
                         [Entry(4096, 3, "/etc/hostname"), Entry(8192, 10000, "/usr/bin/b")])

    def test_an_escaped_path_is_unescaped(self):
        # util-linux 2.38's fincore -r, on files named "a b/c d" and "back\\slash".
        text = (f"4096 3 {LOWER}/a\\x20b/c\\x20d\n"
                f"4096 3 {LOWER}/back\\x5cslash\n")
        self.assertEqual(parse_fincore(text, LOWER + "/"),
                         [Entry(4096, 3, "/a b/c d"), Entry(4096, 3, "/back\\slash")])

    def test_a_file_outside_the_lower_or_a_bad_line_is_an_error(self):
        with self.assertRaisesRegex(TraceError, "not under"):
            parse_fincore("4096 3 /etc/hostname\n", LOWER)
        with self.assertRaisesRegex(TraceError, "line 2"):
            parse_fincore(f"4096 3 {LOWER}/a\nfincore: cannot open\n", LOWER)


class TraceFile(unittest.TestCase):
    ENTRIES = [Entry(4096, 3, "/etc/hostname"), Entry(1 << 20, 3 << 20, "/usr/lib/x.so")]

    def test_written_then_read_back(self):
        text = format_trace(self.ENTRIES, ["how", "when"])
        self.assertTrue(text.startswith("# how\n# when\nresident_bytes\tsize\tpath\n"))
        self.assertEqual(parse_trace(text), (["how", "when"], self.ENTRIES))

    def test_the_replay_reads_the_resident_bytes_but_never_past_the_end(self):
        self.assertEqual(load_form(self.ENTRIES), "3 /etc/hostname\n1048576 /usr/lib/x.so\n")
        self.assertEqual(totals(self.ENTRIES), {"files": 2, "bytes": 3 + (1 << 20)})

    def test_the_boot_order_is_the_paths_in_order(self):
        self.assertEqual(boot_order(self.ENTRIES), "/etc/hostname\n/usr/lib/x.so\n")

    def test_bad_files_name_their_line(self):
        with self.assertRaisesRegex(TraceError, "no header"):
            parse_trace("# only a comment\n")
        with self.assertRaisesRegex(TraceError, "t:2: the header"):
            parse_trace("# c\nbytes path\n", "t")
        with self.assertRaisesRegex(TraceError, "t:3: not RESIDENT"):
            parse_trace("resident_bytes\tsize\tpath\n1\t2\t/a\nx\t2\t/b\n", "t")
        with self.assertRaisesRegex(TraceError, "absolute"):
            parse_trace("resident_bytes\tsize\tpath\n1\t2\tusr/a\n", "t")
        with self.assertRaisesRegex(TraceError, "cannot hold"):
            format_trace([Entry(1, 1, "/a\tb")], [])

    def test_the_repository_traces_read_and_say_how_they_were_taken(self):
        traces = sorted(build.TRACES.glob("trace-*.tsv"))
        for path in traces:
            with self.subTest(path.name):
                comments, entries = parse_trace(path.read_text(), path.name)
                self.assertTrue(entries)
                self.assertTrue(any("fincore" in c for c in comments))
                self.assertTrue(any("Recorded" in c for c in comments))
                self.assertEqual(len({e.path for e in entries}), len(entries))


class ResultLines(unittest.TestCase):
    OK = ("STORM client 3: ok mac=52:54:00:77:03:03 ip=172.23.199.150 root=nfs dhcp_ms=1200 "
          "http_ms=5300 done_ms=40100 http_bytes=31000000 root_bytes=90000000 files=1500")
    FAIL = ("STORM client 2: fail step=mount ms=9000 mac=52:54:00:77:03:02 "
            "error=172.23.199.225:/srv/nfs/root: mount: mounting x=y failed: Stale file handle")

    def test_an_ok_line(self):
        r = parse_client(self.OK)
        self.assertTrue(r.ok)
        self.assertEqual((r.index, r.step, r.error, r.done_ms), (3, "", "", 40100))
        self.assertEqual(r.fields["ip"], "172.23.199.150")
        self.assertEqual(r.ms("http_bytes"), 31000000)

    def test_a_failed_line_keeps_its_whole_error(self):
        r = parse_client("[  12.5] virtio_net: x " + self.FAIL)
        self.assertFalse(r.ok)
        self.assertEqual((r.index, r.step, r.done_ms), (2, "mount", 9000))
        self.assertEqual(r.error, "172.23.199.225:/srv/nfs/root: mount: mounting x=y failed: "
                                  "Stale file handle")
        self.assertNotIn("x", r.fields)

    def test_a_storm_counts_failed_silent_and_duplicate_clients(self):
        lines = ["STORM load: ready n=4", "STORM load: go", self.OK, self.FAIL,
                 self.OK.replace("client 3:", "client 1:").replace("done_ms=40100", "done_ms=20000"),
                 self.OK, "STORM load: done n=4 ms=41000"]
        s = parse_storm(lines, 4)
        self.assertEqual([r.index for r in s.ok], [1, 3])
        self.assertEqual([r.index for r in s.failed], [2])
        self.assertEqual(s.missing, [4])
        self.assertEqual(len(s.duplicates), 1)
        self.assertEqual(s.done_ms, 41000)
        self.assertEqual(s.failures(), [
            "client 2 (52:54:00:77:03:02): mount failed after 9000 ms: "
            "172.23.199.225:/srv/nfs/root: mount: mounting x=y failed: Stale file handle",
            "client 4: no result line"])
        sm = s.summary()
        self.assertEqual((sm["ok"], sm["failed"], sm["missing"]), (2, 1, 1))
        self.assertEqual(sm["done"], {"median_s": 30.05, "slowest_s": 40.1})
        self.assertEqual(sm["dhcp"], {"median_s": 1.2, "slowest_s": 1.2})

    def test_a_squashfs_nfs_line_and_the_kernel_lines(self):
        lines = ["STORM load: go",
                 "STORM client 1: fail step=squashfs ms=700 mac=52:54:00:77:03:01 "
                 "error=/dev/loop0 (1-ab.squashfs): mount: invalid argument",
                 "STORM load: kernel: <3>[   40.1] SQUASHFS error: Unable to read page",
                 "STORM load: done n=1 ms=800"]
        s = parse_storm(lines, 1)
        self.assertEqual((s.failed[0].step, s.failed[0].error),
                         ("squashfs", "/dev/loop0 (1-ab.squashfs): mount: invalid argument"))
        self.assertIn("kernel: <3>[   40.1] SQUASHFS error: Unable to read page", s.load_lines)
        self.assertEqual(s.done_ms, 800)

    def test_nothing_from_the_clients(self):
        s = parse_storm(["STORM load: failed: modprobe macvlan"], 2)
        self.assertEqual(s.missing, [1, 2])
        self.assertEqual(s.load_lines, ["failed: modprobe macvlan"])
        self.assertIsNone(s.summary()["done"])


class Setup(unittest.TestCase):
    def test_client_macs_as_the_load_vm_makes_them(self):
        self.assertEqual(client_mac(storm.CLIENT_MAC_PREFIX, 10), "52:54:00:77:03:0a")
        self.assertEqual(client_mac("aa:bb:cc:dd:ee", 255), "aa:bb:cc:dd:ee:ff")
        with self.assertRaises(ValueError):
            client_mac("aa:bb:cc:dd:ee", 256)

    def test_no_client_mac_is_one_of_the_cluster_tests(self):
        taken = {storm.LOAD_MAC, "52:54:00:77:00:0b", "52:54:00:77:00:0c"}
        macs = {client_mac(storm.CLIENT_MAC_PREFIX, i) for i in range(1, storm.MAX_CLIENTS + 1)}
        self.assertFalse(macs & taken)
        self.assertFalse({m for m in macs if m.startswith("52:54:00:77:01:")})

    def test_arguments(self):
        self.assertIn("--modes", storm.check_args(["nfs"], [1], "debian"))
        self.assertIn("--root", storm.check_args(["squashfs-http"], [1], "void"))
        self.assertIn("--sizes", storm.check_args(["squashfs-http"], [1, 101], "debian"))
        self.assertIn("--sizes", storm.check_args(["squashfs-http"], [], "debian"))
        self.assertEqual(storm.check_args(["squashfs-http"], [1, 8, 64], "busybox"), "")
        # Recording makes the trace: none is needed yet, nor any storm; but the tree's master.
        self.assertEqual(storm.check_args(["tree"], [], "busybox", record=True), "")
        self.assertIn("tree", storm.check_args(["squashfs-http"], [1], "debian", record=True))

    def test_the_masters(self):
        # The root the clients read, in the mode's store (a squashfs mode) or tree.
        for root in storm.ROOTS:
            for mode in storm.MODES:
                with self.subTest(root=root, mode=mode):
                    v = storm.variant_for(mode, root)
                    self.assertEqual((v.root, v.store, v.image_mode, v.reboots),
                                     (root, mode != "tree", mode, ()))
                    self.assertEqual(v.name, f"storm-{root}-{mode}")
        self.assertEqual(storm.variant_for("squashfs-nfs", "debian").master_mac,
                         storm.variant_for("tree", "debian").master_mac)

    def test_the_masters_nfsd_threads_one_per_client_at_least_8(self):
        self.assertEqual(storm.nfsd_threads([]), 8)
        self.assertEqual(storm.nfsd_threads([1, 8]), 8)
        self.assertEqual(storm.nfsd_threads([8, 64, 32]), 64)
        self.assertIn("--nfsd-threads", storm.check_args(["tree"], [8], "debian", threads=9000))
        self.assertEqual(storm.check_args(["tree"], [8], "debian", threads=8), "")

    def test_the_trace_each_mode_replays(self):
        self.assertEqual(storm.trace_for("tree", "debian"), build.trace_path("debian"))
        self.assertEqual(storm.trace_for("squashfs-nfs", "debian"), build.trace_path("debian"))
        self.assertIsNone(storm.trace_for("squashfs-http", "debian"))
        # The busybox root has no trace kept: squashfs-nfs reads its image whole, the tree
        # mode cannot run.
        self.assertFalse(build.trace_path("busybox").is_file())
        self.assertIsNone(storm.trace_for("squashfs-nfs", "busybox"))
        self.assertEqual(storm.check_args(["squashfs-nfs"], [8], "busybox"), "")
        self.assertIn("--record-trace", storm.check_args(["tree"], [8], "busybox"))
        self.assertEqual(storm.check_args(list(storm.MODES), [8], "debian"), "")




class ReadAheadTest(unittest.TestCase):
    def test_the_storm_client_raises_the_read_ahead_as_the_agent_does(self):
        agent = (REPO / "agent" / "src" / "lower" / "readahead.rs").read_text()
        client = (REPO / "qemu-tests" / "lib" / "storm-client").read_text()
        want = re.search(r"pub const IMAGE_READ_AHEAD_KIB: u32 = (\d+);", agent).group(1)
        self.assertEqual(re.search(r"^    read_ahead_kib=(\d+)$", client, re.M).group(1), want)


if __name__ == "__main__":
    unittest.main()
