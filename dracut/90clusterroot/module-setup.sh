#!/bin/bash
# SPDX-License-Identifier: MIT
#
# dracut module clusterroot: boots a node from one shared root. The clusterroot agent mounts
# the lower (the shared root over NFS from the master, or the master's own disk or ZFS
# dataset), a tmpfs upper and an overlay of both on /sysroot, and lays the node's own files,
# picked by the MAC of its boot NIC, over /etc. This module packs the agent and runs it:
#   without systemd (Void's dracut: --omit systemd)  the mount hook mount/10-clusterroot.sh;
#   with systemd (Fedora, EL)                        the agent as systemd's generator
#                                                    clusterroot-generator, which writes
#                                                    clusterroot.service (the same generator
#                                                    as in mkinitcpio's systemd images).
# The agent does its own networking and NFS: dracut's network and nfs modules must not be in
# the image (they would run a second DHCP client and mount the root themselves); the build
# stops, naming the --omit that fixes it, when they are.
#
# Install as /usr/lib/dracut/modules.d/90clusterroot/ (this file and the two hook scripts),
# then: dracut --add clusterroot ... (or add_dracutmodules+=" clusterroot " in dracut.conf.d,
# see dracut/clusterroot-*.conf). Settings, in dracut.conf.d or the environment:
#   clusterroot_agent=PATH              the agent to pack (default /usr/bin/clusterroot)
#   clusterroot_nic_drivers="e1000e igb" the NIC drivers to pack (default: this machine's own
#                                       wired NICs' with --hostonly, else every driver under
#                                       drivers/net/ethernet and virtio_net)

# dracut sets moddir, initdir, systemdutildir and hostonly for the module functions.
# shellcheck disable=SC2154

# The modules that would fight the agent for the network or the root, and why: the one list.
# dracut/clusterroot.conf and dracut/clusterroot-net.conf omit them, README's dracut --omit
# line names them; scripts/check-sources fails when either disagrees with this.
_clusterroot_conflicts() {
    cat <<'LIST'
nfs mounts NFS roots itself
network brings NICs up with its own DHCP client
network-legacy brings NICs up with its own DHCP client (dhclient)
network-manager brings NICs up with NetworkManager
systemd-networkd brings NICs up with systemd-networkd
connman brings NICs up with connman
overlayfs builds its own overlay over the root (rd.live.overlay)
dmsquash-live mounts a live image as the root
livenet fetches a live image as the root
zfs mounts ZFS roots itself (the agent imports the pool for root=zfs:)
LIST
}

check() {
    local agent=${clusterroot_agent:-/usr/bin/clusterroot}
    if [[ ! -x $agent ]]; then
        derror "clusterroot: no agent at $agent (install clusterroot, or set clusterroot_agent=)"
        return 1
    fi
    # Only when asked for: --add clusterroot or add_dracutmodules.
    return 255
}

depends() {
    echo base
}

installkernel() {
    # The overlay, the NFS client (NFSv4 and NFSv3: a server may speak only v3, and vers=3
    # asks for it), loop and squashfs (a squashfs image as the lower: root=live:, or
    # clusterroot.live=), and the NIC drivers the nodes need, as the mkinitcpio hook adds them. Not
    # through dracut's host-only filter: the clients' hardware is not the build machine's.
    local drivers=${clusterroot_nic_drivers:-}
    if [[ -z $drivers ]]; then
        if [[ $hostonly ]]; then
            local d m
            for d in /sys/class/net/*/device/driver/module; do
                [[ -e $d ]] && m=$(basename "$(readlink -f "$d")") && drivers+=" $m"
            done
        fi
        [[ $drivers ]] || drivers="=drivers/net/ethernet virtio_net"
    fi
    # shellcheck disable=SC2086 # a list of drivers
    hostonly='' instmods overlay nfs nfsv4 nfsv3 sunrpc loop squashfs af_packet virtio_pci $drivers
}

install() {
    local agent=${clusterroot_agent:-/usr/bin/clusterroot} name why
    while read -r name why; do
        if dracut_module_included "$name"; then
            dfatal "clusterroot: the dracut module '$name' $why, which the clusterroot agent does: build with --omit \"$name\" (or omit_dracutmodules+=\" $name \")"
            exit 1
        fi
    done < <(_clusterroot_conflicts)

    inst_binary "$agent" /usr/bin/clusterroot
    inst_multiple -o umount modprobe
    inst_hook cmdline 30 "$moddir/clusterroot-cmdline.sh"
    if dracut_module_included systemd; then
        # systemd runs every generator first thing; this one writes clusterroot.service for
        # a root the agent mounts, and a sysroot.mount that only waits for it.
        mkdir -p "$initdir$systemdutildir/system-generators"
        ln_r /usr/bin/clusterroot "$systemdutildir/system-generators/clusterroot-generator"
    else
        inst_hook mount 10 "$moddir/clusterroot-mount.sh"
    fi
}
