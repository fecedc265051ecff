# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Sourced by lib/make-cluster-root and lib/make-debian-cluster-root: the cluster test's master
# node files that both roots share (the NFS server's and dnsmasq's configuration, the
# master's fstab); each root adds what starts the services in its own init.

# master_common DIR DNSMASQ_CONF: the master's node files that do not depend on its init,
# into DIR: hostname, fstab, nfs.conf, exports (mkinitcpio/exports, next to DNSMASQ_CONF), and
# DNSMASQ_CONF as its dnsmasq.conf.
master_common() {
    local m=$1
    mkdir -p "$m"
    printf 'master\n' >"$m/hostname"
    cat >"$m/fstab" <<'EOF'
# The master's fstab (a node file): its own disk for /home, and the trees it exports, placed
# under the NFS server's rootdir (nfs.conf): the shared root it booted from, bound to
# srv/nfs/root, /home, and the node-files filesystem on srv/nfs/nodes.
tmpfs              /tmp                             tmpfs  defaults,nosuid,nodev  0 0
LABEL=home         /home                            ext4   rw                     0 2
/run/rootfs/lower  /run/rootfs/lower/srv/nfs/root   none   bind                   0 0
/home              /run/rootfs/lower/home           none   bind                   0 0
LABEL=nodefiles    /run/rootfs/lower/srv/nfs/nodes  ext4   ro,nosuid,nodev        0 0
EOF
    cat >"$m/nfs.conf" <<'EOF'
# The master's nfs.conf (a node file). Its / is an overlayfs, which nfsd cannot export, so
# the NFSv4 pseudo-root cannot be /: rootdir puts it on the shared root's own filesystem.
# The paths in /etc/exports, and those the clients mount, are below it: /srv/nfs/root is
# /run/rootfs/lower/srv/nfs/root here, /home is /run/rootfs/lower/home (see fstab).
[exports]
rootdir=/run/rootfs/lower
EOF
    # The exports crctl renders from the example inventory (mkinitcpio/cluster), shipped next
    # to the dnsmasq configs.
    install -m 0644 "$(dirname "$2")/exports" "$m/exports"
    install -m 0644 "$2" "$m/dnsmasq.conf"
}
