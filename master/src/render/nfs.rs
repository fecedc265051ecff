//! nfs-utils' config on the master: nfsd's pseudo-root, where its client records outlive a
//! reboot, and the NFSv4 lease and grace periods.

use super::stamp;
use crate::inventory::Inventory;
use crate::place::LOWER;

/// nfsd's lease, in seconds (its default is 90): see the comment rendered with it.
pub const LEASE_S: u32 = 30;
/// nfsd's grace period after a reboot, in seconds (its default is 90).
pub const GRACE_S: u32 = 45;

pub fn render(inv: &Inventory) -> String {
    let mut out = stamp("#");
    out.push_str(&format!(
        "\
# /etc/nfs.conf of a clusterroot master (rpc.nfsd, rpc.mountd, exportfs and nfsdcld read it).

[exports]
# The master's / is an overlayfs, which nfsd cannot export, so the NFSv4 pseudo-root cannot be
# /: rootdir puts it on the shared root's own mount. /etc/exports and the clients name paths
# below it ({nodefiles} is {root}{nodefiles} here).
rootdir={root}

[nfsdcld]
# nfsd's records of its NFSv4 clients, which say who may reclaim opens and locks after the
# master reboots: on the node-files filesystem (mounted read-write, before nfsd starts), not
# in the tmpfs that / writes to. No export reaches this directory. Start nfsdcld before
# rpc.nfsd; keep /var/lib/nfs/v4recovery out of the image (nfsd would prefer it).
storagedir={root}{nodefiles}/nfsdcld

[nfsd]
# A client that stops renewing keeps its locks for lease-time seconds; clients renew every
# two thirds of it and retry a lost connection at least every half of it, so after a reboot
# they notice the master within about 15 s. The grace period leaves the recorded clients
# grace-time seconds to reclaim; nfsd ends it once all of them did.
lease-time={lease}
grace-time={grace}
",
        root = LOWER,
        nodefiles = inv.settings.nodefiles,
        lease = LEASE_S,
        grace = GRACE_S,
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_config_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/nfs.conf"));
    }

    #[test]
    fn the_records_live_on_the_node_files_filesystem() {
        let text = example::CLUSTER.replace("master master\n", "master master\nnodefiles /srv/nodes\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(out.contains("\nstoragedir=/run/rootfs/lower/srv/nodes/nfsdcld\n"), "{out}");
        assert!(out.contains("\nrootdir=/run/rootfs/lower\n"), "{out}");
        assert!(out.contains("\nlease-time=30\ngrace-time=45\n"), "{out}");
    }
}
