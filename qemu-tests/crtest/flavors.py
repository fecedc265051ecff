# SPDX-License-Identifier: MIT
"""Flavors: one value per kind of initramfs image a scenario boots under, with what it needs to
know: its configs, how they are built, the console lines of its good and failed boots, and how
it spells an NFS root.

A scenario names the flavors it runs under (crtest.scenarios); its name under one is the
flavor's prefix and its own name. A new flavor is one value here plus the scenarios that opt in.
"""

from dataclasses import dataclass
from typing import Optional

from .addresses import EXPORT, SERVER_IP
from .patterns import (AGENT_ERROR, DRACUT_SD_EMERGENCY, DRACUT_SHELL, HOOK_START, IT_PREMOUNT,
                       IT_SHELL, PANIC, SD_EMERGENCY, SD_FAILED, SD_SHELL, SD_START, SHELL_PROMPT)


@dataclass(frozen=True, eq=False)
class Flavor:
    name: str               # "busybox", "systemd", ...: cluster variants and distros name it so
    prefix: str             # of its scenarios' names: "sd-nfs42"
    label: str              # its scenarios' docs start "<label>: " (none for busybox)
    client_config: str      # qemu-tests/config/ file of the clients' image (NFS, DHCP)
    master_config: str      # ... of the image of a node that boots its own disk (root=LABEL=)
    builder: str            # the lib/ script that builds its images from such a config
    boot_fails: tuple       # console lines that fail a good boot at once
    started: tuple          # (regex, seconds) steps after RUN_INIT: the agent has started
    emergency: tuple        # (regex, seconds) steps: the emergency shell after a failure
    nfs_root: str           # the NFS root on the command line, of {server} and {path}
    cluster_master_config: Optional[str] = None   # the cluster test's master (config/)
    # ... with mount options, of {server}, {path} and {opts}
    nfs_root_opts: str = "nfsroot={server}:{path},{opts}"
    # the kernel's panic= on every test command line: reboot at once (-no-reboot: the VM ends)
    # on a kernel panic rather than hang until the deadline
    panic: str = "panic=-1"

    def nfsroot(self, server: str = SERVER_IP, path: str = EXPORT, opts: str = "") -> str:
        """The command line's NFS root in this flavor's spelling, with mount options `opts`
        (comma-separated, as nfs(5) has them) if any."""
        if opts:
            return self.nfs_root_opts.format(server=server, path=path, opts=opts)
        return self.nfs_root.format(server=server, path=path)


# mkinitcpio with its busybox init (Void's only kind): the hook's mount handler runs the agent.
BUSYBOX = Flavor(
    "busybox", "", "", "client.conf", "client.conf", "build-initramfs",
    boot_fails=(PANIC, AGENT_ERROR, SHELL_PROMPT),
    started=((HOOK_START, 60),),
    emergency=((SHELL_PROMPT, 30),),
    nfs_root="nfsroot={server}:{path}",
    cluster_master_config="cluster-master.conf")

# mkinitcpio's systemd hook (what Arch builds for new installs): /init is systemd; the agent runs
# as its generator and clusterroot.service.
SYSTEMD = Flavor(
    "systemd", "sd-", "systemd flavor", "client-sd.conf", "client-sd.conf", "build-initramfs",
    boot_fails=(PANIC, AGENT_ERROR, SD_EMERGENCY, SD_FAILED),
    started=((SD_START, 90),),
    emergency=((SD_EMERGENCY, 30), (SD_SHELL, 30)),
    nfs_root="nfsroot={server}:{path}",
    cluster_master_config="cluster-master-sd.conf")

# dracut (Debian's dracut-core 059, the clusterroot module of dracut/, lib/build-dracut): the
# clients boot the clients' image (dracut/clusterroot-net.conf), the masters (root=LABEL=) the
# master's (dracut/clusterroot.conf in conf.d). The NFS roots use dracut's spelling,
# root=nfs4:<server>:<path>, and root=nfs:<server>:<path>:<options> with options (nfs: lets
# them name any version). Without systemd (Void's kind) the module's mount hook
# runs the agent, and its emergency shell says "Dropping to debug shell".
DRACUT = Flavor(
    "dracut", "dracut-", "dracut without systemd", "dracut-client.conf", "dracut-master.conf",
    "build-dracut",
    boot_fails=(PANIC, AGENT_ERROR, DRACUT_SHELL),
    started=(),
    emergency=((DRACUT_SHELL, 30),),
    nfs_root="root=nfs4:{server}:{path}",
    nfs_root_opts="root=nfs:{server}:{path}:{opts}")

# dracut with systemd (Fedora's and EL's kind): the agent's generator and clusterroot.service;
# dracut's own emergency.service says "Entering emergency mode".
DRACUT_SD = Flavor(
    "dracut-sd", "dracut-sd-", "dracut with systemd", "dracut-client-sd.conf",
    "dracut-master-sd.conf", "build-dracut",
    boot_fails=(PANIC, AGENT_ERROR, DRACUT_SD_EMERGENCY, SD_FAILED),
    started=(),
    emergency=((DRACUT_SD_EMERGENCY, 30),),
    nfs_root="root=nfs4:{server}:{path}",
    nfs_root_opts="root=nfs:{server}:{path}:{opts}")

# initramfs-tools (Debian's 0.142, lib/build-initramfs-tools): the clients boot the image of the
# shipped clients' configuration directory (initramfs-tools/initramfs.conf, conf.d/clusterroot:
# MODULES=list, BOOT=clusterroot), the masters (root=LABEL=) Debian's defaults (MODULES=most)
# with the shipped master.conf in conf.d; both with the hook and the boot script, whose
# mountroot runs the agent. Its init reads the kernel's panic= too, and with panic=-1 would
# reboot where the tests wait for its shell: no panic= (a kernel panic fails the boot at once
# by its line anyway). The test-only init-premount script says it ran before the agent.
INITRAMFS_TOOLS = Flavor(
    "initramfs-tools", "itools-", "initramfs-tools", "initramfs-tools-client.conf",
    "initramfs-tools-master.conf", "build-initramfs-tools",
    boot_fails=(PANIC, AGENT_ERROR, IT_SHELL),
    started=((IT_PREMOUNT, 90),),
    emergency=((IT_SHELL, 30),),
    nfs_root="nfsroot={server}:{path}",
    cluster_master_config="initramfs-tools-master.conf",
    panic="")

# In the order their scenarios are listed.
FLAVORS = (BUSYBOX, SYSTEMD, DRACUT, DRACUT_SD, INITRAMFS_TOOLS)
ALL = FLAVORS
DRACUTS = (DRACUT, DRACUT_SD)
