# SPDX-License-Identifier: MIT
"""A node of the cluster test: its VM (booting its disk, or PXE) and command port, the steps
its console shows on the way up, the commands it answers (lib/cluster-init,
lib/cluster-report), and the failures that name it."""

import base64
import binascii
import hashlib
import re
import time
from dataclasses import dataclass, field
from typing import Optional

from ..patterns import (AGENT_ERROR, CRTEST_UP, IPXE_START, IT_SHELL, PANIC, PXE_RETRY, READY,
                        RUN_INIT, SD_EMERGENCY, SD_FAILED, SHELL_PROMPT, UEFI_PXE_FAILED)
from ..util import Fail, log, log_table
from ..vm import ControlPort, PxeVM, print_tail as print_console_tail
from .variants import Variant

BOOT_FAILS = (PANIC, AGENT_ERROR, SHELL_PROMPT, IT_SHELL, r"CRTEST (master|dhcp): failed",
              SD_EMERGENCY, SD_FAILED)
UEFI_RESETS = 3
# How often fetch asks for a file whose line the console mangled.
FETCH_TRIES = 3
MASTER_SERVICES = r"CRTEST master: services started"
MASTER_STEPS = [(RUN_INIT, 180), (READY, 240), (MASTER_SERVICES, 120), (CRTEST_UP, 60)]
SITE_DHCP_STEPS = [(RUN_INIT, 180), (READY, 240),
                   (r"CRTEST dhcp: services started", 60), (CRTEST_UP, 60)]
# iPXE fetching its script over HTTP, as it prints it ("http://172.23.199.225/boot.ipxe... ok").
IPXE_HTTP = r"http://172\.23\.199\.225/boot\.ipxe\.\.\. ok"
CLIENT_STEPS = [(IPXE_START, 120), (IPXE_HTTP, 240),
                (RUN_INIT, 600), (READY, 240), (CRTEST_UP, 180)]
# The Debian root's servers and clients, from is-system-running to the test's report.
DEBIAN_UP = [(r"CRTEST system: \S+", 700)]


class NodeFail(Fail):
    """A failure on one node: the report names it and shows its console."""

    def __init__(self, node: "Node", msg: str):
        super().__init__(msg)
        self.node = node


@dataclass
class Node:
    name: str
    mac: str
    ip: str
    vm: object = None
    ctl: Optional[ControlPort] = None
    ready_s: Optional[float] = None     # from power-on to the agent's "ready" line
    error: Optional[str] = None
    pxe_retries: int = 0                # "No bootable device", then a reset and PXE again
    uefi_resets: int = 0                # OVMF's PXE failed; the test reset it (PxeVM.reset)
    ride_at: int = 0                    # console lines ride_poll has read
    ride_last: int = 0                  # the last record its writer said it fsynced
    ride_pass: int = 0                  # the last pass its reader finished
    report: object = None
    marks: dict = field(default_factory=dict)

    def boot(self, steps: list) -> None:
        """Waits for the console lines of `steps` in order (run in a thread per node)."""
        try:
            for pattern, seconds in steps:
                if pattern == IPXE_START and isinstance(self.vm, PxeVM) and self.vm.uefi:
                    self.uefi_pxe(seconds)
                else:
                    self.vm.expect(pattern, seconds, BOOT_FAILS)
                self.marks[pattern] = self.vm.elapsed()
                if pattern == READY:
                    self.ready_s = self.vm.elapsed()
        except Fail as e:
            # The VM's messages start with its name; the report names the node anyway.
            self.error = str(e).removeprefix(f"{self.vm.name}: ")
        self.vm.console.poll()
        self.pxe_retries = sum(PXE_RETRY in line for line in self.vm.console.lines)
        if self.pxe_retries:
            log(f"  warning: {self.name}: network boot failed {self.pxe_retries} "
                "time(s); the firmware reset and PXE booted again")
        if self.uefi_resets:
            log(f"  warning: {self.name}: OVMF's PXE boot failed {self.uefi_resets} time(s); "
                "the test reset the machine and it PXE booted again")

    def uefi_pxe(self, seconds: float) -> None:
        """Waits for iPXE, loaded by OVMF's PXE; resets the machine when that failed."""
        deadline = time.monotonic() + seconds
        while True:
            m = self.vm.expect(f"{IPXE_START}|{UEFI_PXE_FAILED}", deadline - time.monotonic(),
                               BOOT_FAILS)
            if re.search(IPXE_START, m.group(0)):
                return
            if self.uefi_resets == UEFI_RESETS:
                raise Fail(f"OVMF's PXE boot failed {UEFI_RESETS + 1} times")
            self.uefi_resets += 1
            self.vm.reset()

    def command(self, line: str, answer: str, timeout_s: float = 90) -> str:
        """Sends a test command; returns the text after "CRTEST <answer>: "."""
        self.ctl.send(line)
        try:
            m = self.vm.expect(rf"CRTEST {re.escape(answer)}: (.*)$", timeout_s,
                               (PANIC,))
        except Fail as e:
            raise NodeFail(self, str(e))
        return m.group(1).strip()

    def fetch(self, line: str, answer: str, timeout_s: float = 90) -> Optional[bytes]:
        """A file the node sends on its console (cluster-report's send_file: "ok <sha256>
        <base64>"), or None when it has none ("-"). The console is shared with the kernel
        and journald, whose lines may land inside a long one: a line whose content does not
        match its hash is asked for again."""
        for attempt in range(1, FETCH_TRIES + 1):
            got = self.command(line, answer, timeout_s)
            if got == "-" or got.startswith("- "):
                return None
            parts = got.split(" ")
            if len(parts) == 3 and parts[0] == "ok":
                try:
                    data = base64.b64decode(parts[2], validate=True)
                except binascii.Error:
                    data = None
                if data is not None and hashlib.sha256(data).hexdigest() == parts[1]:
                    return data
            log(f"  warning: {self.name}: '{line}' came back mangled on the console "
                f"(try {attempt} of {FETCH_TRIES}; {len(got)} characters)")
        raise NodeFail(self, f"{self.name}: '{line}' came back mangled {FETCH_TRIES} times")

    def expect_answer(self, line: str, answer: str, want: str) -> None:
        got = self.command(line, answer)
        if got != want:
            raise NodeFail(self, f"{self.name}: '{line}' answered '{got}', expected '{want}'")
        log(f"  {self.name}: {line.split(' ', 2)[0]} {line.split(' ', 2)[1]}: {got}")


def check(node: Node, what: str, got, want) -> None:
    if got != want:
        raise NodeFail(node, f"{node.name}: {what}: got {got!r}, expected {want!r}")


def table(nodes: list) -> None:
    """One row per node. The last column is each node's power-on -> switch_root divided by the
    master's, measured in the same run: the figure that compares across these noisy
    machines."""
    rows = [("node", "MAC", "host name", "lower", "s to switch_root", "÷ master")]
    reference = next((n.ready_s for n in nodes if n.name == "master"), None)
    for n in nodes:
        state = n.report.state if n.report else {}
        host = n.report.values.get("hostname", "?") if n.report else "?"
        lower = f"{state.get('lower_type', '?')} {state.get('lower_source', '?')}"
        ratio = f"{n.ready_s / reference:.2f}" if n.ready_s and reference else "?"
        rows.append((n.name, n.mac, host, lower,
                     f"{n.ready_s:.1f}" if n.ready_s is not None else "?", ratio))
    log_table(rows)


def steps_for(variant: Variant, steps: list, uefi: bool = False) -> list:
    """The console lines a node shows on its way up: under a Debian root, the system state
    (crtest.service, lib/make-debian-cluster-root) comes after the agent's line and before
    the test's. A UEFI client (`uefi`) reaches iPXE only after the firmware's own PXE has
    loaded it."""
    if uefi:
        steps = [(p, 360 if p == IPXE_START else t) for p, t in steps]
    if variant.root != "debian":
        return steps
    at = [p for p, _ in steps].index(READY) + 1
    return steps[:at] + DEBIAN_UP + steps[at:]


def print_tail(node: "Node") -> None:
    if node.vm is None:
        return
    print_console_tail(node.name, node.vm.console, clean=True)
