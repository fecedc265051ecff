# SPDX-License-Identifier: MIT
"""What a scenario is: client boots, checked on the console and in their reports. Declared
once, flavor-neutral, with the flavors it runs under; for_flavor makes the scenario of one
flavor, every field concrete (crtest.scenarios expands the table so)."""

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Optional, Union

from .flavors import BUSYBOX, FLAVORS, Flavor
from .patterns import CRTEST_DONE, READY, RUN_INIT
from .report import Report

# Steps (regex, seconds) of an `expect` list that stand for the flavor's own: the lines that
# say the agent has started (none under dracut), and those of its emergency shell.
STARTED = ("<the flavor's started steps>", 0)
EMERGENCY = ("<the flavor's emergency steps>", 0)
# A `config` that stands for the flavor's image of a node booting its own disk (root=LABEL=).
MASTER = "<the flavor's master config>"

INIT_RUNS = (RUN_INIT, 90)
DONE = (CRTEST_DONE, 90)
BOOTED = [INIT_RUNS, (READY, 150), DONE]


def pick(per_flavor: dict, flavor: Flavor, default):
    """The value of `per_flavor` ({flavor or tuple of flavors: value}) for `flavor`, else
    `default`."""
    for key, value in per_flavor.items():
        if key is flavor or (isinstance(key, tuple) and flavor in key):
            return value
    return default


@dataclass
class Boot:
    """One client VM boot within a scenario."""

    n: int                                   # 10.77.0.n, MAC 52:54:00:77:00:n
    cmdline: Union[str, Callable[[Flavor], str]]   # besides console=ttyS0 and the flavor's panic=; a
                                             # function of the flavor (its NFS root spelling)
    expect: Optional[list] = None            # (regex, seconds) in order; STARTED, EMERGENCY:
                                             # the flavor's; default BOOTED; a function
                                             # (runner, vm) is an action run at that point
                                             # (crtest.faults: the server's nfsd stopped...)
    fail_on: Optional[tuple] = None          # default: the flavor's boot_fails
    check: Optional[Callable[[Report], None]] = None
    powers_off: bool = True                  # else it ends in a shell: stopped after checks
    disk: Optional[str] = None               # label of a fresh ext4 image of the shared root
                                             # (UUID from DISK_UUIDS, else random)
    check_disk: Optional[Callable[[Path], None]] = None  # on the disk image after power-off
    zfs: bool = False                        # the disk is a copy of the ZFS pool image
    config: Optional[str] = None             # qemu-tests/config/ file of its image; default:
                                             # the flavor's client image; MASTER: its master's
    vm_timeout: int = 400                    # hard limit for the QEMU process
    nics: Optional[list] = None              # (MAC, bridge) per NIC, eth0 first; default
                                             # [(mac(n), "br0")]. Other bridges are made on
                                             # demand and hold no server.
    per_flavor: dict = field(default_factory=dict)  # {flavor or tuple: {field: value}} where
                                             # a flavor's boot differs (say why)
    boots: int = 0                           # (with a flow of its own, nodes empty) how many
                                             # boots it makes: the lanes take the most first
    flavor: Flavor = BUSYBOX                 # set by for_flavor

    @property
    def cost(self) -> int:
        """Its boots, as the lanes order the scenarios any of them may take (most first)."""
        return len(self.nodes) or self.boots

    def for_flavor(self, flavor: Flavor) -> "Boot":
        """This boot under `flavor`, every field concrete."""
        b = replace(self, **pick(self.per_flavor, flavor, {}), per_flavor={}, flavor=flavor)
        steps: list = []
        for step in BOOTED if b.expect is None else b.expect:
            steps += (flavor.started if step is STARTED else flavor.emergency
                      if step is EMERGENCY else [step])
        config = (flavor.client_config if b.config is None
                  else flavor.master_config if b.config == MASTER else b.config)
        return replace(b, cmdline=b.cmdline(flavor) if callable(b.cmdline) else b.cmdline,
                       expect=steps, config=config,
                       fail_on=flavor.boot_fails if b.fail_on is None else b.fail_on)


def boot_each(runner, sc: "Scenario") -> list:
    """A scenario's flow unless it has its own: its nodes boot one after the other; (node,
    report) each."""
    return [(node, runner.boot(sc, idx, node)) for idx, node in enumerate(sc.nodes, 1)]


@dataclass
class Scenario:
    name: str
    doc: str                                 # as listed; under a labelled flavor, brief is
    nodes: list                              # Boot, one after the other
    flavors: tuple = (BUSYBOX,)              # the flavors it runs under
    brief: str = ""                          # its doc after "<label>: " (default: doc)
    briefs: dict = field(default_factory=dict)  # {flavor or tuple: brief} where that differs
    server: bool = True                      # the server VM runs (NFS, DHCP); False: none,
                                             # and it runs in the local lane
    server_unchanged: bool = True            # (with server) export checksum equal before and after
    disk_unchanged: bool = False             # the node's disk image is byte-identical after
    refuse_versions: tuple = ()              # NFS versions the server does not offer
    dhcp: bool = False                       # dnsmasq runs on the server (see DHCP_NODES)
    dhcp_delay: int = 0                      # (with dhcp) each offer this many seconds late
    server_expect: tuple = ()                # regexes the server console must show meanwhile
    check_all: Optional[Callable[[list], None]] = None  # on [(node, report), ...]
    flow: Callable = boot_each               # (runner, scenario) -> [(node, report), ...]: a
                                             # flow that talks to the server in between is a
                                             # function of its own (crtest.flows)
    server_zfs: bool = False                 # the server VM has the ZFS pool (second disk);
                                             # the flow calls server.zfs_on() for its store
    portable: Optional[bool] = None          # may run on any lane's server (runner.portable);
                                             # None: as its fields say; True: its flow or
                                             # DHCP changes nothing that lasts past it
    server_live: bool = False                # the server VM serves the squashfs image disk
                                             # (Builds.live_disk) over HTTP and NFS; "{live}" in
                                             # a command line is its file's name
    other_host: Optional[tuple] = None       # (address, MAC): another host on the lane's
                                             # bridge holds that address during the boots (a
                                             # veth in the namespace; its kernel answers ARP)
    boots: int = 0                           # (with a flow of its own, nodes empty) how many
                                             # boots it makes: the lanes take the most first
    flavor: Flavor = BUSYBOX                 # set by for_flavor

    @property
    def cost(self) -> int:
        """Its boots, as the lanes order the scenarios any of them may take (most first)."""
        return len(self.nodes) or self.boots

    def for_flavor(self, flavor: Flavor) -> "Scenario":
        """The scenario under `flavor`: its name with the flavor's prefix, its doc with the
        flavor's label, its boots concrete."""
        brief = pick(self.briefs, flavor, self.brief or self.doc)
        return replace(self, name=flavor.prefix + self.name,
                       doc=f"{flavor.label}: {brief}" if flavor.label else self.doc,
                       nodes=[n.for_flavor(flavor) for n in self.nodes], flavors=(flavor,),
                       briefs={}, flavor=flavor)


def expand(table: list) -> list:
    """Every scenario of `table` under each of its flavors, flavor by flavor (FLAVORS' order),
    each in table order."""
    return [sc.for_flavor(f) for f in FLAVORS for sc in table if f in sc.flavors]
