# shellcheck shell=bash
# SPDX-License-Identifier: MIT
#
# Sourced by lib/make-cluster-root and lib/make-debian-cluster-root (which define repo and
# die): the cluster's node files as crctl renders them from an inventory, and the master's
# node files that both roots share beyond those (its fstab and nfs.conf); each root adds what
# starts the services in its own init.

# cluster_sync OV INVENTORY...: what crctl sync (CRCTL, default this checkout's static build)
# renders from each INVENTORY, the shipped mkinitcpio/cluster first: for every node its
# hostname, hosts, machine-id and ssh host keys (made once, so no two nodes share one), and
# the master's dnsmasq.conf, exports, lighttpd.conf and nfs.conf. Synced into a staging root, whose node-files
# directories (/srv/nfs/nodes/<MAC>/) become OV's. Its pxelinux.cfg/default (the last
# inventory's) must be the file PXELINUX_WANT names, by default the shipped one, which the
# kernel hook's TFTP root holds. CRTEST_INVENTORY_EXTRA, lines added to every inventory
# (qemu-tests/storm's nfsd-threads for its unlisted clients).
cluster_sync() {
    local ov=$1 stage inv
    shift
    local crctl=${CRCTL:-$repo/target/x86_64-unknown-linux-musl/release/crctl}
    [[ -x $crctl ]] || die "no $crctl (scripts/build-agent builds it)"
    stage=$(mktemp -d)
    for inv in "$@"; do
        cp "$inv" "$stage/cluster"
        if [[ -n ${CRTEST_INVENTORY_EXTRA:-} ]]; then
            printf '%s\n' "$CRTEST_INVENTORY_EXTRA" >>"$stage/cluster"
        fi
        if ! "$crctl" -f "$stage/cluster" sync --root "$stage/root" --into-image >"$stage/sync.log" 2>&1; then
            cat "$stage/sync.log" >&2
            rm -rf "$stage"
            die "crctl sync of the inventory $inv failed"
        fi
    done
    local want=${PXELINUX_WANT:-$repo/mkinitcpio/pxelinux.cfg/default}
    if ! cmp -s "$stage/root/srv/tftp/pxelinux.cfg/default" "$want"; then
        rm -rf "$stage"
        die "crctl renders a pxelinux.cfg/default other than $want"
    fi
    mkdir -p "$ov"
    cp -a "$stage/root/srv/nfs/nodes/." "$ov/"
    rm -rf "$stage"
}

# master_common DIR [store]: the master's node files beyond crctl's, into DIR: fstab (run
# after cluster_sync, whose nfs.conf it checks); and next to DIR, on the node-files
# filesystem, the directory where nfsdcld keeps nfsd's client records across the master's
# reboots (nfsdcld/, root's alone, exported to nobody). With "store", the master boots a version of the image store on its disk
# (clusterroot.image=default), and its fstab mounts the whole store where crctl and the
# exports want it, in place of binding the one tree it booted.
master_common() {
    local m=$1 shared storagedir
    mkdir -p "$m"
    # nfs.conf is crctl's (cluster_sync): rootdir, nfsdcld's storagedir, lease and grace. Its
    # storagedir must be a directory of the node-files filesystem, which this makes.
    [[ -s $m/nfs.conf ]] || die "crctl sync left no nfs.conf in $m"
    storagedir=$(nfsdcld_dir "$m/nfs.conf")
    [[ $storagedir == /run/rootfs/lower/srv/nfs/nodes/* ]] ||
        die "crctl's nfs.conf keeps nfsdcld's records in '$storagedir', not on the node-files disk"
    install -d -m 0700 "$(dirname "$m")/${storagedir#/run/rootfs/lower/srv/nfs/nodes/}"
    shared='/run/rootfs/lower  /run/rootfs/lower/srv/nfs/root   none   bind                   0 0'
    if [[ ${2:-} == store ]]; then
        shared='LABEL=cluster      /run/rootfs/lower/srv/nfs/images ext4   rw                     0 0'
    fi
    cat >"$m/fstab" <<EOF
# The master's fstab (a node file): its own disk for /home, and the trees it exports, placed
# under the NFS server's rootdir (nfs.conf): the shared root it booted from (bound to
# srv/nfs/root), or the image store holding it (on srv/nfs/images), /home, and the
# node-files filesystem on srv/nfs/nodes, read-write: nfsdcld keeps nfsd's client records
# there (nfs.conf), and crctl sync writes node files there.
tmpfs              /tmp                             tmpfs  defaults,nosuid,nodev  0 0
LABEL=home         /home                            ext4   rw                     0 2
$shared
/home              /run/rootfs/lower/home           none   bind                   0 0
LABEL=nodefiles    /run/rootfs/lower/srv/nfs/nodes  ext4   rw,nosuid,nodev,noexec 0 0
EOF
}

# nfsdcld_dir NFS_CONF: the storagedir of NFS_CONF's [nfsdcld] section.
nfsdcld_dir() {
    sed -n '/^\[nfsdcld\]/,/^\[/s/^storagedir=//p' "$1"
}
