#!/bin/sh
# SPDX-License-Identifier: MIT
# dracut cmdline hook of clusterroot (cmdline/30): claims the roots the agent mounts, so that
# dracut's block handler (95rootfs-block) leaves them alone and the init does not stop with
# "Don't know how to handle 'root=...'". The agent decides ("clusterroot claims": the one rule
# of every flavor, agent/src/claim.rs, tested against agent/tests/claims.table): an NFS root, a
# local block device or a named ZFS dataset.
# The agent reads /proc/cmdline itself; $root only tells dracut whose root it is.

# shellcheck disable=SC1091 # dracut's library, in the image
type getarg >/dev/null 2>&1 || . /lib/dracut-lib.sh

clusterroot_claims() {
    local rc
    clusterroot claims
    rc=$?
    [ "$rc" -le 1 ] && return "$rc"
    warn "clusterroot: 'clusterroot claims' failed with exit code $rc: the root is left to dracut"
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
