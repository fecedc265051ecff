# SPDX-License-Identifier: MIT
"""What a node reports: the CRTEST lines of one boot (lib/node-init, lib/cluster-report,
lib/admin-node), parsed."""

import re
from dataclasses import dataclass, field
from typing import Optional

from .util import Fail


@dataclass
class Report:
    """The CRTEST lines of one boot (lib/node-init)."""

    lines: list
    mounts: dict = field(default_factory=dict)   # mount point -> (type, source, options)
    values: dict = field(default_factory=dict)   # "stat-root" -> "751 0 0", ...
    state: dict = field(default_factory=dict)    # /run/clusterroot/state
    files: dict = field(default_factory=dict)    # crtest.show= path -> content
    stats: dict = field(default_factory=dict)    # crtest.stat= path -> "600 0 0 regular file"
    absent: set = field(default_factory=set)
    escaped: list = field(default_factory=list)
    links: dict = field(default_factory=dict)    # NIC -> {"mtu": "1500", "mac": .., "addr": ..}
    leases: dict = field(default_factory=dict)   # NIC -> {key: value} of /run/clusterroot/net/NIC
    resolv: list = field(default_factory=list)   # lines of /run/clusterroot/resolv.conf
    devlinks: dict = field(default_factory=dict)  # /dev/disk/by-*/NAME -> link target
    ready_at: Optional[float] = None  # kernel clock (s) of the agent's "ready" line

    @classmethod
    def parse(cls, console_lines: list) -> "Report":
        r = cls(lines=[])
        for raw in console_lines:
            if r.ready_at is None and (m := re.search(r"\[\s*(\d+\.\d+)\] clusterroot: ready:", raw)):
                r.ready_at = float(m.group(1))
            i = raw.find("CRTEST ")
            if i < 0:
                continue
            line = raw[i + len("CRTEST "):].rstrip()
            r.lines.append(line)
            if m := re.match(r"mount (\S+): (\S+) (\S+) (\S+)$", line):
                r.mounts[m.group(1)] = (m.group(2), m.group(3), m.group(4))
            elif m := re.match(r"state: ([^=]+)=(.*)$", line):
                r.state[m.group(1)] = m.group(2)
            elif m := re.match(r"file (\S+): ?(.*)$", line):
                r.files[m.group(1)] = m.group(2)
            elif m := re.match(r"stat (\S+): (.*)$", line):
                r.stats[m.group(1)] = m.group(2)
            elif m := re.match(r"nofile (\S+)$", line):
                r.absent.add(m.group(1))
            elif m := re.match(r"escaped-found: (.*)$", line):
                r.escaped.append(m.group(1))
            elif m := re.match(r"link (\S+): (.*)$", line):
                r.links[m.group(1)] = dict(kv.split("=", 1) for kv in m.group(2).split()
                                           if "=" in kv)
            elif m := re.match(r"lease (\S+): ([^=]+)=(.*)$", line):
                r.leases.setdefault(m.group(1), {})[m.group(2)] = m.group(3)
            elif m := re.match(r"devlink (\S+): (.*)$", line):
                r.devlinks[m.group(1)] = m.group(2)
            elif m := re.match(r"resolv: (.*)$", line):
                r.resolv.append(m.group(1))
            elif m := re.match(r"([a-z-]+): ?(.*)$", line):
                r.values.setdefault(m.group(1), m.group(2))
        return r

    def value(self, key: str) -> str:
        if key not in self.values:
            raise Fail(f"node did not report '{key}'")
        return self.values[key]

    def mount(self, mp: str) -> tuple:
        if mp not in self.mounts:
            raise Fail(f"nothing mounted at {mp} (mounts seen: {self.mounts})")
        return self.mounts[mp]
