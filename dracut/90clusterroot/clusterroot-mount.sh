#!/bin/sh
# SPDX-License-Identifier: MIT
# dracut mount hook of clusterroot (mount/10, dracut without systemd): runs the agent, which
# mounts the lower, the upper and the overlay on $NEWROOT and applies the node files. The init
# sources this hook in a loop until $NEWROOT holds a usable root, so on failure it leaves
# nothing mounted, says why, and opens dracut's emergency shell; leaving the shell runs the
# agent again.

# shellcheck disable=SC1091 # dracut's library, in the image
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

# root, NEWROOT and hookdir are the init's.
# shellcheck disable=SC2154
if [ "${root%%:*}" = clusterroot ] && ! ismounted "$NEWROOT"; then
    clusterroot mount "$NEWROOT"
    _clusterroot_rc=$?
    if [ "$_clusterroot_rc" -ne 0 ]; then
        umount -R "$NEWROOT" 2>/dev/null
        case $_clusterroot_rc in
            1) _clusterroot_why='an internal error in clusterroot (a bug: please report it)' ;;
            2) _clusterroot_why='a bad kernel command line parameter' ;;
            3) _clusterroot_why='the network: no NIC, no link, or no address' ;;
            4) _clusterroot_why='the lower layer: mounting the shared root (NFS, device or ZFS)' ;;
            5) _clusterroot_why='the upper or the overlay mount' ;;
            6) _clusterroot_why='the environment: /proc/cmdline cannot be read' ;;
            7) _clusterroot_why='the node files: the source clusterroot.nodefiles= names failed this node' ;;
            64) _clusterroot_why='a usage error (wrong arguments to clusterroot)' ;;
            *) _clusterroot_why='see the messages above' ;;
        esac
        _clusterroot_msg="clusterroot mount $NEWROOT failed (exit $_clusterroot_rc: $_clusterroot_why); the line starting with 'clusterroot: error:' above says what to fix"
        # Said again just before the shell, after dracut's own messages.
        echo "warn \"$_clusterroot_msg\"" >"$hookdir/emergency/50-clusterroot.sh"
        emergency_shell -n clusterroot "$_clusterroot_msg"
    fi
    unset _clusterroot_rc _clusterroot_why _clusterroot_msg
fi
