# SPDX-License-Identifier: MIT
"""README's steps: every fenced block preceded by "<!-- admin: STAGE INIT -->", for systemd or
any init, in document order, one script per stage."""

import re
from pathlib import Path

from ..util import Fail

PHASES = ("install", "master", "clients", "kernel", "maintenance")
STAGES = ("install", "master", "kernel", "maintenance")
STAGE_MARK = re.compile(r"^<!-- admin: (\S+) (\S+) -->\s*$")
INITS = ("systemd", "runit", "any")


def extract_stages(readme: Path) -> dict:
    """{stage: (script, [line numbers of its blocks])}: the blocks marked for systemd or any
    init, in document order."""
    lines = readme.read_text().splitlines()
    found: dict = {s: [] for s in STAGES}
    i = 0
    while i < len(lines):
        m = STAGE_MARK.match(lines[i])
        if not m:
            i += 1
            continue
        stage, init = m.groups()
        if stage not in STAGES or init not in INITS:
            raise Fail(f"{readme}:{i + 1}: marker names stage '{stage}' and init '{init}': "
                       f"want a stage of {', '.join(STAGES)} and an init of {', '.join(INITS)}")
        fence = re.match(r"^(`{3,}|~{3,})", lines[i + 1]) if i + 1 < len(lines) else None
        if not fence:
            raise Fail(f"{readme}:{i + 1}: an admin marker not followed by a fenced block")
        body, j = [], i + 2
        while j < len(lines) and not lines[j].startswith(fence.group(1)):
            body.append(lines[j])
            j += 1
        if j == len(lines):
            raise Fail(f"{readme}:{i + 2}: the fenced block does not end")
        if init in ("systemd", "any"):
            found[stage].append((i + 3, body))
        i = j + 1
    stages = {}
    for stage, blocks in found.items():
        if not blocks:
            continue
        text = [f"# Stage {stage}: the blocks of {readme.name} marked for it (qemu-tests/admin).",
                "PS4='+ [${SECONDS}s] '", "set -x"]
        for line_no, body in blocks:
            text += [f"# {readme.name}:{line_no}"] + body
        stages[stage] = ("\n".join(text) + "\n", [n for n, _ in blocks])
    return stages
