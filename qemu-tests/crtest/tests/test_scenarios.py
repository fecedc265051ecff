# SPDX-License-Identifier: MIT
"""The scenario table and its expansion, without root and without a VM:

    python3 -m unittest discover -s qemu-tests/crtest/tests

Every name once; each name the flavor's prefix and a table entry's name; no scenario of the
ones run, cluster and distros listed when crtest was made (issue 26) lost; each boot concrete
(no placeholder left, configs and builders that exist); and qemu-tests/README.md's scenario
tables name exactly what `qemu-tests/run --list` prints (issue 26, point 3)."""

import re
import subprocess
import sys
import unittest
from pathlib import Path

QT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(QT))

# crtest, from the directory put on sys.path above.
from crtest import flavors
from crtest.cluster.variants import VARIANTS
from crtest.distros.scenarios import SCENARIOS as DISTRO_SCENARIOS
from crtest.paths import CONFIG, LIB
from crtest.runner import (LANE_BRIDGES, SharedQueue, lane_scenarios, portable, split_lanes,
                           uses_server)
from crtest.scenario import EMERGENCY, MASTER, STARTED
from crtest.scenarios import SCENARIOS, TABLE

# What `--list` named when the harness became crtest, per flavor: a scenario may be added to
# these, none may go unnoticed (remove one here when it goes on purpose).
BEFORE = {
    "busybox": """nfs42 no-udev two-nodes escape unreachable bad-ip latehook local-label
        local-image local-rw local-off local-uuid local-missing zfs zfs-image zfs-rw zfs-bootfs
        zfs-missing v3 nfs-fallback dhcp dhcp-no-offer dhcp-two-nics dhcp-nfsroot-path
        image-versions zfs-image-nfs""",
    "systemd": """nfs42 dhcp two-nodes local-label local-off zfs unreachable initrd-shutdown""",
    "dracut": """nfs42 dhcp two-nodes local-label local-off unreachable break""",
    "dracut-sd": """nfs42 dhcp two-nodes local-label local-off unreachable break""",
    # issue 29's: the flavor came with these
    "initramfs-tools": """nfs42 dhcp two-nodes local-label local-off unreachable break""",
}
BEFORE_CLUSTER = {"dhcp", "proxy", "sd", "debian", "uefi", "dracut"}
BEFORE_DISTROS = {"debian-systemd", "debian-runit"}


def run_list(program: str) -> list:
    """The lines `--list` prints, of `program` in qemu-tests/."""
    out = subprocess.run([str(QT / program), "--list"], capture_output=True, text=True,
                         check=True)
    return out.stdout.splitlines()


def readme_scenarios() -> list:
    """The first cell of every row of the tables in qemu-tests/README.md's "## Scenarios"."""
    text = (QT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Scenarios\n", 1)[1].split("\n## ", 1)[0]
    names = []
    for line in section.splitlines():
        if line.startswith("|") and not re.fullmatch(r"\|[-| :]+\|", line.strip()):
            names.append(line.split("|")[1].strip().strip("`"))
    return [n for n in names if n != "name"]   # the header rows


class Expansion(unittest.TestCase):
    def test_every_name_once(self):
        names = [sc.name for sc in SCENARIOS]
        self.assertEqual(sorted(n for n in set(names) if names.count(n) > 1), [])
        table = [sc.name for sc in TABLE]
        self.assertEqual(len(table), len(set(table)))

    def test_names_are_prefix_and_entry(self):
        want = [f.prefix + sc.name for f in flavors.FLAVORS for sc in TABLE if f in sc.flavors]
        self.assertEqual([sc.name for sc in SCENARIOS], want)
        for sc in SCENARIOS:
            self.assertEqual(sc.flavors, (sc.flavor,))
            self.assertTrue(sc.name.startswith(sc.flavor.prefix), sc.name)

    def test_nothing_listed_before_is_lost(self):
        for f in flavors.FLAVORS:
            got = {sc.name for sc in SCENARIOS if sc.flavor is f}
            want = {f.prefix + name for name in BEFORE[f.name].split()}
            self.assertEqual(want - got, set(), f"flavor {f.name}")

    def test_lanes_take_every_scenario_once_and_keep_the_server_s_changes_on_one(self):
        own, shared = split_lanes(SCENARIOS)
        names = [sc.name for scs in own.values() for sc in scs] + [sc.name for sc in shared]
        self.assertEqual(sorted(names), sorted(sc.name for sc in SCENARIOS))
        self.assertEqual(set(own), set(LANE_BRIDGES))
        changes = [sc for sc in SCENARIOS if uses_server(sc) and not portable(sc)]
        self.assertEqual(own["server"], changes)
        self.assertEqual([own[lane] for lane in own if lane != "server"], [[], []])
        # Most boots first, so that the lanes end close together; a flow of its own (no node
        # list) says how many it makes.
        boots = [sc.cost for sc in shared]
        self.assertEqual(boots, sorted(boots, reverse=True))
        flows = [sc.name for sc in shared if not sc.nodes and sc.boots < 1]
        self.assertEqual(flows, [], "flows any lane may take, without their boots= count")
        self.assertEqual(shared[0].name, "reboot-loop")
        self.assertEqual(len(set(LANE_BRIDGES.values())), len(LANE_BRIDGES))

    def test_lanes_share_out_the_shared_scenarios_once_each(self):
        own, shared = split_lanes(SCENARIOS)
        queue = SharedQueue(shared)
        taken: list = []
        lanes = [lane_scenarios(own[lane], queue) for lane in own]
        # The lanes take turns, as free lanes would, until every one is done.
        while lanes:
            for lane in list(lanes):
                sc = next(lane, None)
                if sc is None:
                    lanes.remove(lane)
                else:
                    taken.append(sc.name)
        self.assertEqual(sorted(taken), sorted(sc.name for sc in SCENARIOS))

    def test_quick_is_one_boot_per_flavor(self):
        from crtest.scenarios import quick
        names = quick()
        self.assertEqual(len(names), len(flavors.FLAVORS), names)
        by_name = {sc.name: sc for sc in SCENARIOS}
        self.assertEqual({by_name[n].flavor for n in names}, set(flavors.FLAVORS))
        self.assertTrue(all(len(by_name[n].nodes) == 1 for n in names), names)

    def test_docs_carry_the_flavor_label(self):
        for sc in SCENARIOS:
            if sc.flavor.label:
                self.assertTrue(sc.doc.startswith(sc.flavor.label + ": "), sc.name)
            self.assertNotIn("\n", sc.doc)

    def test_boots_are_concrete(self):
        for sc in SCENARIOS:
            for node in sc.nodes:
                where = f"{sc.name} node{node.n}"
                self.assertIs(node.flavor, sc.flavor, where)
                self.assertIsInstance(node.cmdline, str, where)
                self.assertEqual(node.per_flavor, {}, where)
                self.assertTrue((CONFIG / node.config).is_file(), f"{where}: {node.config}")
                self.assertTrue((LIB / node.flavor.builder).is_file(), where)
                self.assertNotEqual(node.config, MASTER, where)
                for step in node.expect:
                    self.assertNotIn(step, (STARTED, EMERGENCY), where)
                    if callable(step):          # an action (crtest.faults)
                        continue
                    pattern, seconds = step
                    re.compile(pattern)
                    self.assertGreater(seconds, 0, where)
                for pattern in node.fail_on:
                    re.compile(pattern)

    def test_flavors_give_their_parts(self):
        by_name = {sc.name: sc for sc in SCENARIOS}
        sd = by_name["sd-nfs42"].nodes[0]
        self.assertEqual((sd.config, sd.fail_on), ("client-sd.conf", flavors.SYSTEMD.boot_fails))
        master = by_name["dracut-sd-local-label"].nodes[0]
        self.assertEqual(master.config, "dracut-master-sd.conf")
        self.assertEqual(master.flavor.builder, "build-dracut")
        shell = by_name["dracut-unreachable"].nodes[0]
        self.assertEqual(shell.expect[-1], flavors.DRACUT.emergency[-1])
        self.assertIn("root=nfs4:10.77.0.99:/srv/root", shell.cmdline)
        self.assertIn("nfsroot=10.77.0.99:/srv/root", by_name["unreachable"].nodes[0].cmdline)
        for name in ("unreachable", "sd-unreachable", "dracut-unreachable"):
            self.assertFalse(by_name[name].server, name)


class Lists(unittest.TestCase):
    def test_run_list_is_the_table(self):
        lines = run_list("run")
        self.assertEqual(lines, [f"{sc.name:17} {sc.doc}" for sc in SCENARIOS])

    def test_readme_names_what_run_lists(self):
        listed = [line.split()[0] for line in run_list("run")]
        documented = readme_scenarios()
        self.assertEqual(sorted(n for n in set(documented) if documented.count(n) > 1), [],
                         "README names these twice")
        self.assertEqual(sorted(set(listed) - set(documented)), [],
                         "run --list has these, qemu-tests/README.md's Scenarios tables do not")
        self.assertEqual(sorted(set(documented) - set(listed)), [],
                         "qemu-tests/README.md's Scenarios tables have these, run --list does not")

    def test_faults_table_names_real_scenarios(self):
        """README's "## Faults" table: every scenario its second column names is one run has
        (but the cluster test's row), and every scenario whose code is in crtest.faults is in
        it."""
        text = (QT / "README.md").read_text(encoding="utf-8")
        section = text.split("\n## Faults\n", 1)[1].split("\n## ", 1)[0]
        names = set()
        for line in section.splitlines():
            cells = line.split("|")
            if len(cells) > 3 and not re.fullmatch(r"\|[-| :]+\|", line.strip()) \
                    and cells[2].strip() != "scenarios" and "cluster test" not in cells[2]:
                cell = re.sub(r"\([^)]*\)", "", cells[2])
                names |= {n.strip() for n in cell.split(",") if n.strip()}
        self.assertEqual(sorted(names - {sc.name for sc in SCENARIOS}), [],
                         "the Faults table names these, run --list does not")
        uses_faults = {sc.name for sc in SCENARIOS if sc.flow.__module__ == "crtest.faults"
                       or any(callable(step) for n in sc.nodes for step in n.expect)}
        self.assertEqual(sorted(uses_faults - names), [],
                         "these scenarios inject a fault and the Faults table does not name them")

    def test_cluster_and_distros_lists(self):
        cluster = {line.split()[0] for line in run_list("cluster")}
        self.assertEqual(cluster, {v.name for v in VARIANTS})
        self.assertEqual(BEFORE_CLUSTER - cluster, set())
        distros = {line.split()[0] for line in run_list("distros") if not line.startswith(" ")}
        self.assertEqual(distros, {sc.name for sc in DISTRO_SCENARIOS})
        self.assertEqual(BEFORE_DISTROS - distros, set())


if __name__ == "__main__":
    unittest.main()
