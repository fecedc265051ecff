# SPDX-License-Identifier: MIT
"""The capacity model (qemu-tests/bench --model): from what one boot costs the master, as
qemu-tests/bench --costs measured it, and assumptions stated with their sources, the time one
master takes to cold-boot N nodes at once, the nodes it boots within a target, and the
replicas a large image needs; its shape checked against qemu-tests/storm's storms. No VM and
no network: JSON files in, Markdown out, ready for README's "Capacity model"."""

import dataclasses
import json
import math
import textwrap
from typing import Optional

from .bench_costs import MODES

BEGIN = "<!-- capacity: begin -->"
END = "<!-- capacity: end -->"
MODE_NAMES = {"tree": "NFS tree", "squashfs-nfs": "squashfs on NFS",
              "squashfs-http": "squashfs in RAM"}
RESOURCES = ("link", "nfsd", "CPU")
WIDTH = 96   # README's prose lines
# The storms' per-client figures are "flat" when their spread, (max - min) / mean, is within
# this: two runs at the same N have differed by 10 % (nfsd's delegation recalls vary, and
# the master's idle share is spread over more or fewer clients).
FLAT = 0.15


class ModelError(Exception):
    """A JSON file or row the model cannot read: which one, and what it lacks."""


@dataclasses.dataclass(frozen=True)
class Assumptions:
    """What the model assumes of real hardware; `sources` says where each value comes from."""

    links_gbit: tuple = (1, 10, 25)
    sizes: tuple = (2, 50, 500, 2000)
    # TCP payload over Ethernet frames, MTU 1500, IPv4 with TCP timestamps (Linux's default).
    link_efficiency: float = 0.94
    nfsd_compounds_s: float = 80_000
    tcg_factor: float = 10
    master_cores: int = 8
    # "Nodes per master": the most nodes whose cold boot at once ends within this.
    target_s: float = 300
    # The replicas question of issue 28: this many nodes, within this, with this image.
    big_nodes: int = 2000
    big_target_s: float = 600
    big_image_bytes: float = 2e9
    # The storms' shape is judged from this size up: one client alone holds every file
    # delegation (no recalls) and carries the master's idle share by itself.
    shape_from_n: int = 8


def sources(a: Assumptions) -> list:
    """The assumptions table: (assumption, value, source), one row each."""
    links = ", ".join(f"{g} GbE" for g in a.links_gbit)
    return [
        ("link speed, the master's one port", links, "the sizes issue 28 asks for"),
        ("TCP payload per bit on the wire", f"{a.link_efficiency:.0%}",
         "(1500 − 52) / (1500 + 38) = 94.1 % for IPv4 with TCP timestamps, MTU 1500: "
         "https://wiki.td-er.nl/index.php?title=Ethernet_payload_datarates; iperf's 941 "
         "Mbit/s on 1 GbE: https://itecnotes.com/network/tcp-trying-to-find-out-exact-tcp-"
         "overhead-cost-2. Applied to captured frames, whose headers are already counted: "
         "a few % pessimistic"),
        ("nfsd COMPOUNDs (or NFSv3 calls) per second, one master",
         f"{a.nfsd_compounds_s:,.0f}",
         "Greg Banks (SGI), linux-nfs, 2006-10-11, \"knfsd: repcache: split hash index\": "
         "a 4-CPU Altix A350 serving \"circa 80,000 nonidempotent calls per second\" "
         "(https://linuxlists.cc/l/6/nfs/permalink/%3C17714.59304.768727.298610%40cse.unsw"
         ".edu.au%3E). Indirect: NFSv3 WRITEs on 2006 hardware, each also a reply-cache "
         "lookup and insert, against our COMPOUNDs of ~4 light operations (SEQUENCE, PUTFH, "
         "GETATTR, a read of a cached file); taken as is, no faster hardware assumed; the "
         "storms' cross-check is below the shape table"),
        ("TCG's slowdown against the same CPU natively", f"{a.tcg_factor:g}×",
         "\"10-50x slower\": https://microsoft.github.io/quicksand/under-the-hood/"
         "08-performance.html; the low end, so the CPU it implies is an upper bound"),
        ("the master's cores", f"{a.master_cores}", "assumed: a small 1U server"),
        ("HTTP (lighttpd)", "link-bound",
         "static files by sendfile from the page cache cost little CPU (its share is in "
         "the master CPU row); a web benchmark of 1 MB files reports lighttpd at 3,897 "
         "requests/s (~31 Gbit/s) on an 8-vCPU EC2 c5.2xlarge: "
         "https://serverdevworker.com/83774ccf7"),
        ("the master's page cache", "holds what the boots read",
         "no disk reads modelled: a boot grew it by the page-cache column below (the whole "
         "squashfs file in RAM mode); with a 2 GB image, 2 GB of RAM on each server"),
        ("replicas per group", f"{a.big_nodes:,} nodes in R equal groups, one replica each",
         "assumed: each group's nodes try their replica first (see the note below the "
         "replicas table)"),
    ]


@dataclasses.dataclass(frozen=True)
class Demand:
    """What some nodes' boots ask of one server."""

    bytes: float       # sent by the server: whole frames as captured, headers included
    compounds: float   # NFSv4 COMPOUNDs plus NFSv3 calls
    tcg_cpu_s: float   # the master's busy CPU-seconds under TCG (1 vCPU)


def _get(row: dict, *keys):
    value = row
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            raise ModelError(f"{row.get('root')} {row.get('mode')}: no {'.'.join(keys)}")
        value = value[key]
    return value


def boot_demand(row: dict) -> Demand:
    """One boot's demand on the master, from one row of bench --costs' JSON. Its CPU is the
    host's CPU-seconds in the master's QEMU where the row has them (master_qemu_cpu_s: they do
    not grow while the host runs other VMs), else the guest's own busy seconds."""
    sent = sum(_get(row, "bytes", p, "master", "bytes") for p in _get(row, "bytes"))
    calls = _get(row, "nfs", "compounds") + sum(_get(row, "nfs", "v3").values())
    cpu = row.get("master_qemu_cpu_s")
    return Demand(sent, calls, cpu if cpu is not None else _get(row, "master_cpu", "seconds"))


def seconds(d: Demand, n: int, link_gbit: float, a: Assumptions) -> dict:
    """The time each resource of one server needs for `n` nodes' demand `d`: {resource: s}.
    The model: every resource works at its capacity from the start, nothing else counts."""
    link = link_gbit * 1e9 / 8 * a.link_efficiency
    return {"link": n * d.bytes / link,
            "nfsd": n * d.compounds / a.nfsd_compounds_s,
            "CPU": n * d.tcg_cpu_s / a.tcg_factor / a.master_cores}


def bound(times: dict) -> tuple:
    """(resource, seconds) of the resource that takes longest."""
    name = max(RESOURCES, key=lambda r: times.get(r, 0))
    return name, times.get(name, 0)


def nodes_within(d: Demand, link_gbit: float, target_s: float, a: Assumptions) -> int:
    """The most nodes whose cold boot at once one server ends within `target_s`."""
    _, per_node = bound(seconds(d, 1, link_gbit, a))
    return math.floor(target_s / per_node) if per_node else math.inf


def image_demand(row: dict, image_bytes: float, target_bytes: float) -> Demand:
    """One boot's demand on the server of the root image when the image is `target_bytes`
    instead of the measured `image_bytes` (its squashfs file). In RAM a node downloads the
    whole file. Over NFS it reads what the boot touches: the NFS bytes are scaled by the
    size ratio, and so are the READs (one COMPOUND each); the lookups, opens and getattrs
    follow the files the boot opens, not the image's size, and stay as measured. The node
    files and /home, also over NFS, count with the image. In RAM mode a replica also sends
    iPXE's kernel and initramfs (crctl's boot.ipxe fetches them from the node's replicas
    first), everything the master sent over HTTP but the image."""
    if row["mode"] == "squashfs-http":
        http = _get(row, "bytes", "HTTP", "master", "bytes")
        return Demand(target_bytes + max(http - image_bytes, 0), 0, 0)
    scale = target_bytes / image_bytes
    reads = row["nfs"]["v4ops"].get("READ", 0) + row["nfs"]["v3"].get("READ", 0)
    calls = row["nfs"]["compounds"] + sum(row["nfs"]["v3"].values())
    return Demand(_get(row, "bytes", "NFS", "master", "bytes") * scale,
                  calls + reads * (scale - 1), 0)


def master_share(row: dict, image_bytes: float) -> Demand:
    """What stays on the master when replicas serve the image: DHCP and the rest; over NFS
    iPXE's boot.ipxe, kernel and initramfs (HTTP); in RAM mode the node files and /home
    (NFS), its boot.ipxe alone counted with the replica's HTTP (a few hundred bytes)."""
    total = boot_demand(row)
    if row["mode"] == "squashfs-http":
        return Demand(total.bytes - _get(row, "bytes", "HTTP", "master", "bytes"),
                      total.compounds, 0)
    return Demand(total.bytes - _get(row, "bytes", "NFS", "master", "bytes"), 0, 0)


def replicas(per_node: float, nodes: int, target_s: float) -> int:
    """Servers needed for `nodes` at `per_node` seconds each within `target_s`."""
    return max(1, math.ceil(nodes * per_node / target_s))


@dataclasses.dataclass(frozen=True)
class StormPoint:
    """One storm's per-client figures."""

    source: str
    mode: str
    n: int
    ok: int
    compounds: float   # per client that finished
    tcg_cpu_s: float   # the master's, per client that finished


def storm_points(name: str, doc: dict) -> list:
    """The storms of one qemu-tests/storm JSON file."""
    points = []
    for row in doc.get("rows", []):
        ok = (row.get("summary") or {}).get("ok", row.get("n", 0))
        if not ok:
            continue
        points.append(StormPoint(name, row["mode"], row["n"], ok,
                                 (row.get("nfs") or {}).get("compounds", 0) / ok,
                                 (row.get("master_cpu") or {}).get("seconds", 0) / ok))
    return points


def spread(values: list) -> float:
    """(max − min) / mean: 0 for a flat line."""
    mean = sum(values) / len(values)
    return (max(values) - min(values)) / mean if mean else 0.0


def _spreads(points: list) -> dict:
    calls = [p.compounds for p in points]
    return {"compounds": spread(calls) if any(calls) else None,
            "cpu": spread([p.tcg_cpu_s for p in points])}


def shape(points: list, from_n: int) -> dict:
    """Per mode and file (one run of storms), the spread of the per-client figures over its
    storms of `from_n` clients or more: {(mode, file): {"compounds": spread, or None without
    NFS, "cpu": spread, "sizes": [n, ...]}}, for runs of two sizes or more."""
    out: dict = {}
    for key in dict.fromkeys((p.mode, p.source) for p in points):
        these = [p for p in points if (p.mode, p.source) == key and p.n >= from_n]
        if len({p.n for p in these}) > 1:
            out[key] = dict(_spreads(these), sizes=sorted({p.n for p in these}))
    return out


def noise(points: list) -> dict:
    """The same spreads between runs of one mode at one size: {(mode, n): spreads}."""
    out: dict = {}
    for key in dict.fromkeys((p.mode, p.n) for p in points):
        these = [p for p in points if (p.mode, p.n) == key]
        if len(these) > 1:
            out[key] = _spreads(these)
    return out


# --- reading -----------------------------------------------------------------------------

def load(paths: list) -> list:
    """(path, document) of each JSON file."""
    docs = []
    for path in paths:
        try:
            with open(path) as f:
                docs.append((path, json.load(f)))
        except (OSError, ValueError) as e:
            raise ModelError(f"{path}: {e}") from e
    return docs


def costs_rows(docs: list) -> dict:
    """{(root, mode): row} of bench --costs' files, a later file's row replacing an earlier's."""
    rows = {}
    for path, doc in docs:
        if not isinstance(doc.get("rows"), list):
            raise ModelError(f"{path}: no rows: not qemu-tests/bench --costs' JSON")
        for row in doc["rows"]:
            rows[(row.get("root"), row.get("mode"))] = row
    return rows


def squashfs_sizes(rows: dict, given: dict) -> dict:
    """{root: (bytes, where from)}: the squashfs file's size a row records (bench --costs
    records it since its image sizes), else the one given on the command line."""
    sizes = {}
    for (root, _), row in rows.items():
        recorded = (row.get("image") or {}).get("squashfs_bytes")
        if recorded:
            sizes[root] = (recorded, "recorded")
    for root, size in given.items():
        sizes.setdefault(root, (size, "given"))
    return sizes


def parse_sizes(items: list) -> dict:
    """--squashfs-bytes ROOT=BYTES items: {root: bytes}."""
    sizes = {}
    for item in items:
        root, sep, value = item.partition("=")
        try:
            sizes[root] = int(float(value))
        except ValueError:
            sep = ""
        if not sep or not root:
            raise ModelError(f"--squashfs-bytes {item}: want ROOT=BYTES, e.g. debian=91e6")
    return sizes


# --- Markdown ----------------------------------------------------------------------------

def duration(s: float) -> str:
    if s == math.inf:
        return "∞"
    if s < 1:
        return "<1 s"
    if s < 100:
        return f"{s:.0f} s"
    if s < 6000:
        return f"{s / 60:.1f}".removesuffix(".0") + " min"
    return f"{s / 3600:.1f}".removesuffix(".0") + " h"


def mib(b: float) -> str:
    return f"{b / 2**20:,.1f} MiB"


def count(n: float) -> str:
    return "∞" if n == math.inf else f"{n:,.0f}"


def table(head: tuple, rows: list, right: int = 1) -> list:
    """A Markdown table: columns from `right` on aligned right."""
    align = ["---" if i < right else "---:" for i in range(len(head))]
    return ["| " + " | ".join(head) + " |", "|" + "|".join(align) + "|"] + [
        "| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def wrap(line: str) -> str:
    """A line of prose or of a list wrapped as README wraps its own; a table row as it is."""
    if line.startswith(("|", "<!--")):
        return line
    return textwrap.fill(line, WIDTH, subsequent_indent="  " if line.startswith("- ") else "",
                         break_long_words=False, break_on_hyphens=False)


def _mode_index(mode: str) -> int:
    return MODES.index(mode) if mode in MODES else len(MODES)


def label(root: str, mode: str) -> str:
    return f"{MODE_NAMES.get(mode, mode)}, {root} root"


def measured_section(rows: dict, demands: dict, skipped: list, a: Assumptions) -> list:
    """One boot's figures as measured, and the rows that are missing or unreadable."""
    out = ["One boot, as measured (master CPU under TCG, and at the TCG factor on real "
           "hardware):", ""]
    out += table(("mode, root", "sent by the master", "COMPOUNDs", "master CPU (TCG)",
                  "master CPU (real)", "page cache"),
                 [(label(*k), mib(d.bytes), count(d.compounds), f"{d.tcg_cpu_s:.2f} s",
                   f"{d.tcg_cpu_s / a.tcg_factor:.2f} s",
                   mib(rows[k].get("page_cache_kib", 0) * 1024)) for k, d in demands.items()])
    out += ["", "The master CPU (TCG) is the host's CPU-seconds in the master's QEMU over the "
            "boot (or, in rows measured before bench recorded those, the guest's busy "
            "seconds). The master CPU (real) is an upper bound: it holds the idle master's "
            "share over the boot's duration, and the TCG factor is the low end of its range."]
    roots = dict.fromkeys(root for root, _ in rows)
    missing = [label(r, m) for r in roots for m in MODES if (r, m) not in rows]
    if missing:
        out += ["", "Not measured: " + "; ".join(missing) + "."]
    if skipped:
        out += ["", "Skipped: " + "; ".join(skipped) + "."]
    return out


def boot_section(demands: dict, a: Assumptions) -> list:
    """Cold-boot times per mode, link and N, with their bound, and the nodes per master."""
    out = [f"Cold boot of N nodes at once by one master, and what bounds it; nodes per "
           f"master: the most whose cold boot at once the master serves within "
           f"{duration(a.target_s)}:", ""]
    lines = []
    for key, d in demands.items():
        for g in a.links_gbit:
            cells = [f"{duration(s)} ({name})"
                     for name, s in (bound(seconds(d, n, g, a)) for n in a.sizes)]
            largest = seconds(d, a.sizes[-1], g, a)
            lines.append((label(*key), f"{g} GbE", *cells,
                          " / ".join(duration(largest[r]) for r in RESOURCES),
                          count(nodes_within(d, g, a.target_s, a))))
    return out + table(("mode, root", "link", *(f"N = {n:,}" for n in a.sizes),
                        f"N = {a.sizes[-1]:,}: {' / '.join(RESOURCES)}", "nodes per master"),
                       lines, right=2)


def replicas_section(rows: dict, demands: dict, sizes: dict, a: Assumptions) -> list:
    """The servers a large image needs for many nodes within a target, per mode and link."""
    gb = a.big_image_bytes / 1e9
    out = [f"Replicas for {a.big_nodes:,} nodes within {duration(a.big_target_s)} with a "
           f"{gb:g} GB squashfs image (in RAM every node downloads the whole file; over NFS a "
           f"node reads what its boot touches: the measured NFS bytes and READs scaled by "
           f"{gb:g} GB over the root's squashfs file, the other COMPOUNDs as measured; link "
           f"and nfsd only, a replica's CPU is not modelled); R replicas serve the image (in RAM "
           f"mode iPXE's kernel and initramfs too), the master still serves every node DHCP, "
           f"the node files, and over NFS iPXE's files (its own share):", ""]
    lines, notes = [], []
    for key in demands:
        root, mode = key
        if root not in sizes:
            notes.append(f"{label(*key)}: no squashfs size for the {root} root "
                         f"(--squashfs-bytes {root}=BYTES).")
            continue
        image = image_demand(rows[key], sizes[root][0], a.big_image_bytes)
        share: Optional[Demand] = master_share(rows[key], sizes[root][0])
        if mode == "tree":
            # No replicas: each of R masters serves its nodes all of their boot.
            image = Demand(image.bytes + share.bytes, image.compounds + share.compounds, 0)
            share = None
        for g in a.links_gbit:
            name, per = bound(seconds(image, 1, g, a))
            servers = replicas(per, a.big_nodes, a.big_target_s)
            own = duration(bound(seconds(share, a.big_nodes, g, a))[1]) if share else "—"
            what = f"{servers:,}" if share else f"{servers:,} master{'s' * (servers > 1)}"
            lines.append((label(*key), f"{g} GbE", mib(image.bytes), count(image.compounds),
                          what, f"{duration(per * a.big_nodes / servers)} ({name})", own))
    if lines:
        out += table(("mode, root", "link", "per node, from its server", "COMPOUNDs per node",
                      "R", f"{a.big_nodes:,} nodes on R servers", "the master's own share"),
                     lines, right=2) + [""]
    known = ", ".join(f"{r} {s[0] / 1e6:,.1f} MB ({s[1]})" for r, s in sizes.items())
    notes += [f"Squashfs sizes: {known or 'none known'}.",
              "The tree mode has no replicas (they hold squashfs files), so its R is masters. "
              "crctl renders each node's replicas first and the master last (the image in "
              "clusterroot.live=, and in RAM mode iPXE's kernel and initramfs), the nodes "
              "sharing a list of replicas taking them in turn, so R replicas split the nodes "
              "R ways; the node files still come from the master alone."]
    return out + "\n\n".join(notes).split("\n")


def _within(s: dict) -> str:
    calls = "" if s["compounds"] is None else f"COMPOUNDs per client within {s['compounds']:.0%}, "
    return f"{calls}master CPU per client within {s['cpu']:.0%}"


def shape_section(points: list, a: Assumptions) -> list:
    """The storms' per-client figures, the verdict on their flatness, and the nfsd check."""
    out = ["The model's shape against the storms (qemu-tests/storm: N clients at once, each "
           "replaying a recorded Debian boot's reads or downloading the image): per client, "
           "the master's COMPOUNDs and CPU (TCG):", ""]
    out += table(("mode", "file", "N", "clients ok", "COMPOUNDs per client",
                  "master CPU per client"),
                 [(MODE_NAMES.get(p.mode, p.mode), p.source, p.n, p.ok, count(p.compounds),
                   f"{p.tcg_cpu_s:.2f} s")
                  for p in sorted(points, key=lambda p: (_mode_index(p.mode), p.n))], right=2)
    out.append("")
    shapes = shape(points, a.shape_from_n)
    for mode, source in sorted(shapes, key=lambda k: (_mode_index(k[0]), k[1])):
        s = shapes[(mode, source)]
        flat = max(v for v in (s["compounds"], s["cpu"]) if v is not None) <= FLAT
        out.append(f"- {MODE_NAMES.get(mode, mode)}, {source}, N = "
                   f"{', '.join(map(str, s['sizes']))}: {_within(s)}: "
                   + (f"flat within {FLAT:.0%}, as the model's cost per node assumes." if flat
                      else "not flat: the cost per client changes with N, which the model "
                      "does not capture."))
    for (mode, n), s in noise(points).items():
        out.append(f"- The noise: runs of {MODE_NAMES.get(mode, mode)} at N = {n} differ, "
                   f"{_within(s)}.")
    busy = [p for p in points if p.compounds and p.tcg_cpu_s and p.n >= a.shape_from_n]
    if busy:
        p = max(busy, key=lambda p: p.n)
        per_cpu_s = p.compounds / p.tcg_cpu_s
        out.append(f"- The nfsd assumption checked: at N = {p.n} the master served "
                   f"{per_cpu_s:,.0f} COMPOUNDs per TCG CPU-second of all its work, HTTP "
                   f"included: {per_cpu_s * a.tcg_factor * a.master_cores:,.0f} per second on "
                   f"{a.master_cores} real cores at the TCG factor, against the "
                   f"{a.nfsd_compounds_s:,.0f} assumed.")
    return out


def render(costs: list, storms: list, given: dict, command: str,
           a: Assumptions = Assumptions()) -> str:
    """The whole Markdown, markers included, from the files' (path, document) pairs."""
    rows = costs_rows(costs)
    # The Debian root first: the realistic one.
    order = sorted(rows, key=lambda k: (k[0] != "debian", str(k[0]), _mode_index(k[1])))
    demands, skipped = {}, []
    for key in order:
        try:
            demands[key] = boot_demand(rows[key])
        except ModelError as e:
            skipped.append(str(e))
    out = [BEGIN, f"<!-- generated by: {command} -->", ""]
    out += table(("assumption", "value", "source"), sources(a), right=3)
    out += [""] + measured_section(rows, demands, skipped, a)
    out += [""] + boot_section(demands, a)
    out += [""] + replicas_section(rows, demands, squashfs_sizes(rows, given), a)
    points = [p for path, doc in storms for p in storm_points(path.rsplit("/", 1)[-1], doc)]
    if points:
        out += [""] + shape_section(points, a)
    out += ["", "Ignored by the model: latency and round trips (a boot's own duration adds "
            "to these times), TCP slow start and congestion, what the clients send the master "
            "(the link's other direction), the clients' own links and the switch (assumed "
            "non-blocking), disk reads (the page cache is assumed to hold the "
            "image), DHCP and TFTP servers' limits, and nfsd's thread count (assumed enough).",
            "", END]
    return "\n".join(wrap(line) for line in out) + "\n"


def splice(readme: str, block: str) -> str:
    """README's text with what lies between the markers replaced by `block` (which holds them)."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise ModelError(f"README has no {BEGIN} ... {END}")
    return readme[:start] + block.rstrip("\n") + readme[end + len(END):]


def main(costs: list, storms: list, sizes: list, readme: str, command: str) -> int:
    """qemu-tests/bench --model: print the Markdown, or write it into README between the
    markers."""
    try:
        block = render(load(costs), load(storms), parse_sizes(sizes), command)
        if readme:
            with open(readme) as f:
                text = splice(f.read(), block)
            with open(readme, "w") as f:
                f.write(text)
            print(f"{readme}: the capacity model rewritten between its markers")
        else:
            print(block, end="")
    except ModelError as e:
        print(f"bench --model: {e}")
        return 1
    return 0
