#!/bin/sh
# SPDX-License-Identifier: MIT
# dracut cmdline hook of clusterroot (cmdline/30): claims the roots the agent mounts, so that
# dracut's block handler (95rootfs-block) leaves them alone and the init does not stop with
# "Don't know how to handle 'root=...'". The same rule as mkinitcpio's runtime hook and the
# agent's generator (agent/tests/claims.table): an NFS root (nfsroot=, root=/dev/nfs,
# root=nfs:|nfs4:..., or no root= with ip= asking for DHCP), a local block device
# (root=LABEL=|UUID=|PARTUUID=|PARTLABEL=|/dev/...) or a named ZFS dataset (root=zfs:<ds>,
# zfs=<ds>).
# The agent reads /proc/cmdline itself; $root only tells dracut whose root it is.

# shellcheck disable=SC1091 # dracut's library, in the image
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

clusterroot_claims() {
    local r z
    r=$(getarg root=)
    [ -n "$(getarg nfsroot=)" ] && return 0
    z=$(getarg zfs=) || z=$(getarg ZFS=)
    case $z in
        '' | auto | bootfs | zfs_auto) ;;
        *) return 0 ;;
    esac
    case $r in
        /dev/nfs | nfs:* | nfs4:*) return 0 ;;
        zfs:AUTO | ZFS=AUTO) return 1 ;;
        LABEL=* | UUID=* | PARTUUID=* | PARTLABEL=* | /dev/* | zfs:?* | ZFS=?*) return 0 ;;
        '')
            case ":$(getarg ip=):" in
                *:dhcp:* | *:on:* | *:any:* | *:both:* | *:bootp:* | *:rarp:*) return 0 ;;
            esac
            ;;
    esac
    return 1
}

if clusterroot_claims; then
    if getargbool 0 rootovl; then
        die "clusterroot: rootovl (overlay-root) would stack a second overlay on clusterroot's: remove rootovl from the kernel command line"
    fi
    root="clusterroot:$(getarg root=)"
    # shellcheck disable=SC2034 # the init's variable, read after the cmdline hooks
    rootok=1
    unset netroot
    info "clusterroot: the agent mounts the root ($root)"
fi
