//! nfs-utils' config on the master: nfsd's pseudo-root, where its client records outlive a
//! reboot, and the NFSv4 lease and grace periods.

use super::sizing::{Sizing, NFSD_THREADS_CAP, NFSD_THREADS_MIN};
use super::{comment, stamp};
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
{threads}",
        root = LOWER,
        nodefiles = inv.settings.nodefiles,
        lease = LEASE_S,
        grace = GRACE_S,
        threads = threads(&Sizing::of(inv)),
    ));
    out
}

/// `threads=`, with why that many and what they cost (README "Sizing").
fn threads(s: &Sizing) -> String {
    let rule =
        format!("one per client, at least {NFSD_THREADS_MIN} (nfs-utils' default) and at most {NFSD_THREADS_CAP}");
    let why = if s.nfsd_threads_set {
        format!("nfsd's threads: the inventory's nfsd-threads line (without it: {rule}).")
    } else {
        format!(
            "nfsd's threads: {rule} (the inventory's nfsd-threads line sets another count). A thread serves one request at a time, and in a boot storm every client has one \
             waiting: 8 clients booting at once found 8 threads enough (32 changed nothing), 64 found \
             all 8 busy again and again."
        )
    };
    let cost = format!(
        "Each holds a buffer of /proc/fs/nfsd/max_block_size (1/4096 of the RAM, at most 1 MiB) and a \
         16 KiB stack from its start: {NFSD_THREADS_CAP} take at most a sixteenth of the RAM. nfsd keeps up to \
         (threads + 3) x 20 = {} client connections open. rpc.nfsd given a count on its command line \
         ignores this line (runit's nfs-server service passes /etc/conf.d/nfs-server.conf's PROCESSES, \
         which crctl sync writes too), and so does a threads= in /etc/nfs.conf.d/*.conf.",
        s.nfsd_connections()
    );
    format!("{}threads={}\n", comment(&format!("{why} {cost}")), s.nfsd_threads)
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

    #[test]
    fn nfsd_runs_the_threads_the_inventory_needs() {
        let flat = |out: &str| out.split_whitespace().filter(|w| *w != "#").collect::<Vec<_>>().join(" ");
        let out = render(&example::inventory());
        assert!(out.ends_with("\nthreads=8\n"), "{out}");
        assert!(flat(&out).contains(" (threads + 3) x 20 = 220 client connections open."), "{out}");
        let text = example::CLUSTER.replace("master master\n", "master master\nnfsd-threads 100\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(out.ends_with("\nthreads=100\n"), "{out}");
        assert!(
            flat(&out)
                .contains("nfsd's threads: the inventory's nfsd-threads line (without it: one per client, at least 8"),
            "{out}"
        );
        assert!(flat(&out).contains("= 2060 client connections"), "{out}");
        assert!(out.lines().all(|l| l.len() <= 100), "{out}");
    }
}
