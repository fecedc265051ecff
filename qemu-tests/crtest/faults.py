# SPDX-License-Identifier: MIT
"""Faults in the middle of a boot: actions that a boot's `expect` list runs between its steps
(Boot.expect), on the server VM or on the client's link. Each is a function (runner, vm)."""

import time
from typing import Callable

from .addresses import mac

Action = Callable[[object, object], None]


def nfsd(on: bool, after_s: float = 0) -> Action:
    """The server's nfsd started (after `after_s` seconds) or stopped, as a package upgrade
    restarts it: rpc.nfsd 0, then rpc.nfsd with its versions, in its grace period."""
    def act(runner, vm) -> None:
        if after_s:
            time.sleep(after_s)
        runner.ensure_server().set_nfsd(on)
    act.__name__ = f"nfsd_{'start' if on else 'stop'}"
    return act


def big_node_files(n: int, mib: int) -> Action:
    """Node n's node files in the export get an archive of a directory, crtest-big, of `mib`
    files of 1 MiB (mib 0: removed again)."""
    def act(runner, vm) -> None:
        runner.ensure_server().bigtar(mac(n), mib)
    act.__name__ = f"big_node_files_{n}_{mib}"
    return act


def slow_link(rate: str) -> Action:
    """What the client's first NIC receives limited to `rate` ("16mbit"), so that a copy
    takes long enough to be cut in the middle."""
    def act(runner, vm) -> None:
        runner.netns.shape(vm.taps[0], rate)
    act.__name__ = f"slow_link_{rate}"
    return act


# The lossy link of the lossy scenario: 5 % of the packets to the client lost, the others
# 200 ms late, give or take 50 ms, so that they also come out of order.
LOSSY = "delay 200ms 50ms loss 5%"


def lossy_link(spec: str) -> Action:
    """What the server sends goes through netem `spec` ("" for a clean link again)."""
    def act(runner, vm) -> None:
        runner.ensure_server().set_netem(spec)
    act.__name__ = "lossy_link" if spec else "clean_link"
    return act
