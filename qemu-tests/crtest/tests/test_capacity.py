# SPDX-License-Identifier: MIT
"""qemu-tests/bench --model's arithmetic on hand-made rows of bench --costs' and storm's JSON:
a link-bound, an nfsd-bound and a CPU-bound boot, the replicas for a large image, the storms'
shape, a root without some mode, and README's markers. No VM; files only in a temporary
directory.

    python3 -m unittest discover -s qemu-tests/crtest/tests"""

import contextlib
import io
import json
import math
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from crtest.capacity import (BEGIN, END, Assumptions, Demand, ModelError,  # noqa: E402
                             StormPoint, boot_demand, bound, image_demand, main, master_share,
                             noise, nodes_within, parse_sizes, render, replicas, seconds, shape,
                             splice, storm_points)

A = Assumptions()
GBE = 1e9 / 8 * A.link_efficiency   # payload bytes per second of 1 GbE


def costs_row(root="debian", mode="tree", http=0, nfs=0, compounds=0, reads=0, cpu=0.0,
              v3=None, image=None) -> dict:
    """A row as bench --costs writes it, with the fields the model reads."""
    sent = {"DHCP": 0, "TFTP": 0, "HTTP": http, "NFS": nfs, "other": 0}
    row = {"root": root, "mode": mode, "master_cpu": {"seconds": cpu},
           "page_cache_kib": 1024,
           "nfs": {"compounds": compounds, "v4ops": {"READ": reads, "SEQUENCE": compounds},
                   "v3": v3 or {}},
           "bytes": {p: {"master": {"bytes": b, "frames": 1}, "client": {"bytes": 0,
                                                                       "frames": 0}}
                     for p, b in sent.items()}}
    if image is not None:
        row["image"] = {"tree_bytes": 3 * image, "squashfs_bytes": image}
    return row


class Boot(unittest.TestCase):
    def test_demand_sums_every_protocol_and_nfsv3_calls(self):
        d = boot_demand(costs_row(http=10, nfs=5, compounds=7, cpu=1.5, v3={"GETATTR": 3}))
        self.assertEqual(d, Demand(15, 10, 1.5))

    def test_the_host_s_cpu_of_the_master_s_qemu_wins_where_recorded(self):
        row = costs_row(http=10, nfs=5, compounds=7, cpu=16.5)
        row["master_qemu_cpu_s"] = 4.25
        self.assertEqual(boot_demand(row), Demand(15, 7, 4.25))

    def test_bytes_bound(self):
        # 100 MB a boot, few calls: 1 GbE carries 117.5 MB/s of payload.
        d = boot_demand(costs_row(http=100e6, compounds=10, cpu=0.1))
        t = seconds(d, 50, 1, A)
        self.assertAlmostEqual(t["link"], 50 * 100e6 / GBE)
        self.assertAlmostEqual(t["nfsd"], 50 * 10 / A.nfsd_compounds_s)
        self.assertAlmostEqual(t["CPU"], 50 * 0.1 / A.tcg_factor / A.master_cores)
        self.assertEqual(bound(t), ("link", t["link"]))
        self.assertAlmostEqual(t["link"], 42.55, places=2)

    def test_nfsd_bound(self):
        # 10,000 COMPOUNDs a boot: 0.125 s of nfsd each, at 25 GbE far more than the link.
        d = boot_demand(costs_row(nfs=1e6, compounds=10_000, cpu=1.0))
        name, s = bound(seconds(d, 2000, 25, A))
        self.assertEqual(name, "nfsd")
        self.assertAlmostEqual(s, 250.0)
        self.assertEqual(nodes_within(d, 25, 300, A), 2400)

    def test_cpu_bound(self):
        # 80 TCG CPU-seconds: 8 real, over 8 cores, 1 s a node.
        d = boot_demand(costs_row(http=1e6, compounds=1, cpu=80.0))
        self.assertEqual(bound(seconds(d, 300, 10, A)), ("CPU", 300.0))
        self.assertEqual(nodes_within(d, 10, 300, A), 300)

    def test_a_boot_that_costs_nothing_has_no_limit(self):
        self.assertEqual(nodes_within(Demand(0, 0, 0), 1, 300, A), math.inf)

    def test_a_row_without_a_field_is_named(self):
        row = costs_row()
        del row["master_cpu"]
        with self.assertRaisesRegex(ModelError, "debian tree: no master_cpu.seconds"):
            boot_demand(row)


class Replicas(unittest.TestCase):
    def test_in_ram_every_node_downloads_the_whole_file(self):
        row = costs_row(mode="squashfs-http", http=15e6 + 90e6, nfs=1e5, compounds=100)
        image = image_demand(row, 90e6, 2e9)
        # The replica sends the 2 GB file and iPXE's 15 MB kernel and initramfs.
        self.assertEqual(image, Demand(2e9 + 15e6, 0, 0))
        # 10 GbE: 1.71 s a node, 2,000 nodes in 3,430 s: 6 replicas for 10 minutes.
        _, per = bound(seconds(image, 1, 10, A))
        self.assertAlmostEqual(per, (2e9 + 15e6) / (10 * GBE))
        self.assertEqual(replicas(per, 2000, 600), 6)
        # The master keeps the node files and /home.
        self.assertEqual(master_share(row, 90e6), Demand(1e5, 100, 0))

    def test_over_nfs_the_bytes_and_reads_scale_the_rest_stays(self):
        row = costs_row(mode="squashfs-nfs", http=15e6, nfs=40e6, compounds=1000, reads=400)
        image = image_demand(row, 100e6, 2e9)   # 20 times the image
        self.assertEqual(image.bytes, 800e6)
        self.assertEqual(image.compounds, 1000 + 400 * 19)
        self.assertEqual(master_share(row, 100e6), Demand(15e6, 0, 0))

    def test_at_least_one_server(self):
        self.assertEqual(replicas(0.0, 2000, 600), 1)
        self.assertEqual(replicas(0.3, 2000, 600), 1)
        self.assertEqual(replicas(0.31, 2000, 600), 2)


def storm_doc(mode: str, sizes: dict) -> dict:
    """A storm file's rows: {n: (compounds over the storm, master CPU-s, clients ok)}."""
    return {"rows": [{"mode": mode, "n": n, "summary": {"n": n, "ok": ok},
                      "nfs": {"compounds": calls}, "master_cpu": {"seconds": cpu}}
                     for n, (calls, cpu, ok) in sizes.items()]}


class Shape(unittest.TestCase):
    def test_per_client_figures_divide_by_the_clients_that_finished(self):
        points = storm_points("x.json", storm_doc("tree", {8: (1600, 16.0, 8),
                                                           4: (900, 3.0, 3)}))
        self.assertEqual(points[1], StormPoint("x.json", "tree", 4, 3, 300, 1.0))

    def test_flat_and_not_flat(self):
        tree = storm_points("t", storm_doc("tree", {1: (2078, 3.31, 1), 8: (18453, 18.0, 8),
                                                    32: (71923, 66.51, 32),
                                                    64: (142695, 129.23, 64)}))
        http = storm_points("t", storm_doc("squashfs-http", {8: (0, 1.91, 8),
                                                             32: (0, 12.41, 32),
                                                             64: (0, 35.83, 64)}))
        got = shape(tree + http, 8)
        self.assertEqual(got[("tree", "t")]["sizes"], [8, 32, 64])   # N = 1 left out
        self.assertAlmostEqual(got[("tree", "t")]["compounds"], (2306.6 - 2229.6) / 2261.3,
                               places=3)
        self.assertLess(got[("tree", "t")]["cpu"], 0.15)
        self.assertIsNone(got[("squashfs-http", "t")]["compounds"])
        self.assertGreater(got[("squashfs-http", "t")]["cpu"], 0.5)

    def test_one_size_is_no_shape_and_two_runs_are_the_noise(self):
        one = storm_points("a", storm_doc("tree", {1: (10, 1.0, 1), 8: (16640, 17.04, 8)}))
        other = storm_points("b", storm_doc("tree", {8: (18453, 18.0, 8)}))
        self.assertEqual(shape(one + other, 8), {})
        got = noise(one + other)
        self.assertEqual(list(got), [("tree", 8)])
        self.assertAlmostEqual(got[("tree", 8)]["compounds"], (2306.6 - 2080) / 2193.3, places=3)

    def test_a_storm_where_no_client_finished_is_left_out(self):
        self.assertEqual(storm_points("t", storm_doc("tree", {8: (0, 1.0, 0)})), [])


class Render(unittest.TestCase):
    def test_a_missing_mode_and_size_are_reported(self):
        text = render([("costs.json", {"rows": [costs_row(http=15e6, nfs=45e6,
                                                          compounds=3619, cpu=6.3)]})],
                      [], {}, "qemu-tests/bench --model costs.json")
        self.assertTrue(text.startswith(BEGIN) and text.rstrip().endswith(END))
        self.assertIn("Not measured: squashfs on NFS, debian root; squashfs in RAM, debian "
                      "root.", text)
        self.assertIn("NFS tree, debian root: no squashfs size for the debian root", text)
        self.assertIn("| NFS tree, debian root | 10 GbE |", text)

    def test_a_recorded_size_replaces_none_and_a_row_without_fields_is_skipped(self):
        broken = costs_row(root="busybox")
        del broken["bytes"]
        rows = [costs_row(mode="squashfs-http", http=15e6 + 90e6, image=90_000_000), broken]
        text = render([("a.json", {"rows": rows})], [], {"debian": 1}, "cmd")
        self.assertIn("Squashfs sizes: debian 90.0 MB (recorded).", text)
        self.assertIn("Skipped: busybox tree: no bytes.", text)
        self.assertIn(  # the 2 GB file and the 15 MB kernel and initramfs
            "| squashfs in RAM, debian root | 10 GbE | 1,921.7 MiB | 0 | 6 |", text)

    def test_a_file_that_is_not_costs_json(self):
        with self.assertRaisesRegex(ModelError, "no rows"):
            render([("x.json", {"hello": 1})], [], {}, "cmd")


class Command(unittest.TestCase):
    def test_sizes(self):
        self.assertEqual(parse_sizes(["debian=91e6", "busybox=27418624"]),
                         {"debian": 91_000_000, "busybox": 27_418_624})
        for bad in ("debian", "=5", "debian=big"):
            with self.assertRaises(ModelError):
                parse_sizes([bad])

    def test_splice_replaces_between_the_markers(self):
        readme = f"a\n{BEGIN}\nold\n{END}\nb\n"
        self.assertEqual(splice(readme, f"{BEGIN}\nnew\n{END}\n"), f"a\n{BEGIN}\nnew\n{END}\nb\n")
        with self.assertRaises(ModelError):
            splice("no markers\n", f"{BEGIN}\n{END}\n")

    def test_readme_rewritten_in_place(self):
        with tempfile.TemporaryDirectory() as tmp:
            costs, readme = Path(tmp, "costs.json"), Path(tmp, "README.md")
            costs.write_text(json.dumps({"rows": [costs_row(http=1e6, compounds=5)]}))
            readme.write_text(f"# x\n{BEGIN}\nOLD TABLES\n{END}\n## after\n")
            with contextlib.redirect_stdout(io.StringIO()) as said:
                self.assertEqual(main([str(costs)], [], [], str(readme), "cmd"), 0)
                self.assertEqual(main([str(Path(tmp, "none.json"))], [], [], "", "cmd"), 1)
            self.assertIn("rewritten between its markers", said.getvalue())
            self.assertIn("none.json: [Errno 2]", said.getvalue())
            text = readme.read_text()
            self.assertTrue(text.startswith(f"# x\n{BEGIN}\n<!-- generated by: cmd -->\n"))
            self.assertTrue(text.endswith(f"{END}\n## after\n"))
            self.assertNotIn("OLD TABLES", text)


if __name__ == "__main__":
    unittest.main()
