//! The master's `/etc/exports`: the shared root and `/home` to the cluster network, each
//! client's node files to that client's address alone.

use std::fmt::Write as _;

use super::stamp;
use crate::inventory::Inventory;

/// The exports, paths below nfsd's rootdir (the master's `nfs.conf`, README "The master").
/// A client without an address gets no node-files export: it could not be limited to it.
pub fn render(inv: &Inventory) -> String {
    let s = &inv.settings;
    let mut out = stamp("#");
    out.push_str(
        "\
# The shared root and /home to the cluster; each client's node files to that client alone,
# with subtree_check: the node-files filesystem is one filesystem, and without it a client
# could reach other nodes' files by their file handles. The master's own are exported to nobody.
",
    );
    let net = s.network.to_string();
    if inv.uses_store() {
        // No crossmnt: under an nfs.conf rootdir, Debian 12's rpc.mountd (nfs-utils 2.6.2)
        // crashes on the first client of a crossmnt export (seen in the cluster test), so a
        // ZFS store's versions, datasets of their own, need exports of their own
        // (docs/images.md).
        // The store's squashfs directory is a plain directory in it (in a ZFS store, in the
        // store's own dataset, never a version's), so this export reaches its files too.
        out.push_str(
            "# The image store (crctl image) in place of one tree; clients mount <store>/<version>, or read\n\
             # <store>/squashfs/<version>-<sha256>.squashfs.\n",
        );
    }
    let root = (inv.boot_export().to_string(), format!("{net}(ro,no_root_squash,no_subtree_check,fsid=1)"));
    let mut lines = vec![root, (s.home.clone(), format!("{net}(rw,no_root_squash,no_subtree_check)"))];
    let mut missing = Vec::new();
    for n in inv.clients() {
        match n.address {
            Some(a) => {
                lines.push((format!("{}/{}", s.nodefiles, n.mac), format!("{a}(ro,no_root_squash,subtree_check)")))
            }
            None => missing.push(n.name.as_str()),
        }
    }
    let width = lines.iter().map(|(p, _)| p.len()).max().unwrap_or(0) + 2;
    for (path, to) in lines {
        let _ = writeln!(out, "{path:<width$}{to}");
    }
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "# No address in the inventory, so no node files exported for: {} (give each one: crctl node add)",
            missing.join(", ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_exports_are_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/exports"));
    }

    #[test]
    fn an_image_store_is_exported_in_place_of_the_one_tree() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(
            out.lines().any(|l| l.starts_with("/srv/nfs/images ")
                && l.ends_with(" 172.23.199.0/24(ro,no_root_squash,no_subtree_check,fsid=1)")),
            "{out}"
        );
        assert!(!out.contains("/srv/nfs/root"), "{out}");
        assert!(!out.contains("crossmnt,"), "{out}");
        assert!(out.contains("\n# <store>/squashfs/<version>-<sha256>.squashfs.\n"), "{out}");
    }

    #[test]
    fn a_client_without_address_gets_no_node_files_export() {
        let text = example::CLUSTER.replace("172.23.199.12   compute", "- compute");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(!out.contains("52:54:00:77:00:0c "));
        assert!(out.ends_with("for: node2 (give each one: crctl node add)\n"));
        assert!(!out.contains("52:54:00:77:00:e1"), "the master's node files go to nobody");
    }
}
