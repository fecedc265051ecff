//! `pxelinux.cfg/default` in the master's TFTP root, and `pxelinux.cfg/01-<mac>` for nodes
//! whose replicas differ from every node's: the clients' kernel command line.

use super::stamp;
use crate::inventory::{ImageMode, Inventory, Node, ReplicaUrl};

/// The clients' kernel command line after `BOOTIF=`, which each boot loader adds in its own
/// way (pxelinux: `IPAPPEND 2`; iPXE: `${netX/mac}`): the same in pxelinux.cfg/default and
/// boot.ipxe. In the squashfs modes, that of a machine the inventory does not list: the
/// master, then the `*` replicas.
pub fn command_line(inv: &Inventory) -> String {
    command_line_with(inv, &inv.replicas_for_all())
}

/// The command line of a client served by `replicas` (after the master): in the squashfs
/// modes `clusterroot.live=` names the master's URL of the default file, then each replica's.
pub fn command_line_with(inv: &Inventory, replicas: &[&ReplicaUrl]) -> String {
    let root = match inv.master_live_url() {
        None => format!(
            "nfsroot={master}:{root}{image}",
            master = inv.master_address(),
            root = inv.boot_export(),
            image = if inv.uses_store() { " clusterroot.image=default" } else { "" },
        ),
        Some(master) => {
            let pointer = crate::image::squashfs::POINTER;
            let mut live = format!("clusterroot.live={master}");
            for r in replicas {
                live.push_str(&format!(",{r}{pointer}"));
            }
            live
        }
    };
    format!(
        "{root} ip=dhcp clusterroot.nodefiles={nodefiles} clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8",
        nodefiles = inv.settings.nodefiles,
    )
}

/// How the squashfs modes carry the root file, for the files' first comments (None: tree).
pub fn squashfs_transport(inv: &Inventory) -> Option<&'static str> {
    match inv.settings.image_mode {
        ImageMode::Tree => None,
        ImageMode::SquashfsNfs => Some("over NFS"),
        ImageMode::SquashfsHttp => Some("over HTTP"),
    }
}

/// Where the clients' root comes from, for pxelinux.cfg/default's first comment.
fn root_source(inv: &Inventory) -> String {
    let master = inv.master_address();
    match squashfs_transport(inv) {
        None => format!("with its root over NFSv4 from the master ({master} here)"),
        Some(how) => {
            format!("with its root the store's default squashfs file\n# {how} from the master ({master} here)")
        }
    }
}

/// What the command line's parts mean, for the comments of both boot loaders' files.
pub fn command_line_comment(inv: &Inventory) -> String {
    if let Some(how) = squashfs_transport(inv) {
        return format!(
            "\
# ip=dhcp: the agent's own DHCP client asks the DHCP server again for the address (and host
# name). clusterroot.live= (image-mode {mode}) names the default version's
# squashfs file (default, the store's one-line pointer file) on the master, then on each
# replica of the node's groups (replica lines), tried in that order: {does}.
# clusterroot.nodefiles= names the directory whose <mac> subdirectory the master (the first
# URL's server) exports to that node alone, with its node files (see the README's node
# files: the image every client reads holds none).
# console=: kernel and agent messages on the first serial port as well as the screen.
",
            mode = inv.settings.image_mode,
            does =
                if how == "over NFS" { "the agent loop-mounts it over NFS" } else { "the agent downloads it into RAM" },
        );
    }
    let mut out = String::from(
        "\
# ip=dhcp: the agent's own DHCP client asks the DHCP server again for the address (and host
# name); nfsroot= names the export of the master's shared root; clusterroot.nodefiles= the
# directory whose <mac> subdirectory the master exports to that node alone, with its node
# files (see the README's node files: the shared root every client reads holds none).
",
    );
    if inv.uses_store() {
        out.push_str(
            "\
# The inventory names an image store: nfsroot= names it, and clusterroot.image=default makes
# the agent boot the version its default names at boot, and keep it until the next boot.
",
        );
    }
    out.push_str("# console=: kernel and agent messages on the first serial port as well as the screen.\n");
    out
}

pub fn render(inv: &Inventory) -> String {
    let mut out = stamp("#");
    out.push_str(&format!(
        "\
# <TFTP root>/pxelinux.cfg/default on a clusterroot master, for clients that boot pxelinux
# over TFTP (iPXE clients boot boot.ipxe over HTTP instead, with the same command line):
# every client boots the kernel and initramfs that kernel.d/post-install/60-clusterroot puts
# into the TFTP root, {source}.
#
# The TFTP root also needs pxelinux.0 and ldlinux.c32 (Debian: /usr/lib/PXELINUX/pxelinux.0
# and /usr/lib/syslinux/modules/bios/ldlinux.c32; Void and Arch: /usr/lib/syslinux/bios/).
# pxelinux reads pxelinux.cfg/01-<mac> (e.g. 01-52-54-00-77-00-0b) before this file: put a
# node that needs other parameters there.
#
# IPAPPEND 2 adds BOOTIF=01-<mac of the NIC that PXE-booted> to the command line: the agent
# then configures that NIC and picks the node files by it.
{comment}
{entry}",
        source = root_source(inv),
        comment = command_line_comment(inv),
        entry = entry(&command_line(inv)),
    ));
    out
}

/// `pxelinux.cfg/01-<mac>` (`01-52-54-00-77-00-0b`), pxelinux's own name for one client's
/// config, which it reads before `default`.
pub fn node_file_name(node: &Node) -> String {
    format!("pxelinux.cfg/01-{}", node.mac.to_string().replace(':', "-"))
}

/// The per-node configs, by file name below the TFTP root: one for each client whose
/// replicas differ from those of every node (its groups have `replica` lines of their own).
/// None when no client's do.
pub fn per_node(inv: &Inventory) -> Vec<(String, String)> {
    let all = inv.replicas_for_all();
    let mut out = Vec::new();
    for n in inv.clients() {
        let replicas = inv.replicas_of(n);
        if replicas == all {
            continue;
        }
        let name = node_file_name(n);
        let mut text = stamp("#");
        text.push_str(&format!(
            "\
# <TFTP root>/{name} on a clusterroot master: the config of
# {node}, which pxelinux reads before pxelinux.cfg/default. It is default's but for the
# replicas of the node's groups ({groups}), tried after the master: see default.

{entry}",
            node = n.name,
            groups = n.groups.join(","),
            entry = entry(&command_line_with(inv, &replicas)),
        ));
        out.push((name, text));
    }
    out
}

/// The one boot entry of a pxelinux config (`default`, or a node's own), with `args`.
fn entry(args: &str) -> String {
    format!(
        "\
DEFAULT cluster
PROMPT 0
TIMEOUT 0

LABEL cluster
  KERNEL vmlinuz
  INITRD initramfs-net.img
  APPEND {args}
  IPAPPEND 2
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_config_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/pxelinux.cfg/default"));
    }

    #[test]
    fn with_an_image_store_clients_boot_its_default() {
        let text = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let out = render(&Inventory::parse(&text).unwrap());
        assert!(
            out.contains("  APPEND nfsroot=172.23.199.225:/srv/nfs/images clusterroot.image=default ip=dhcp "),
            "{out}"
        );
        assert!(!out.contains(":/srv/nfs/root"), "{out}");
    }

    #[test]
    fn squashfs_modes_name_the_image_file_and_keep_the_node_files() {
        let base = example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n");
        let tree = command_line(&Inventory::parse(&base).unwrap());
        let with = |lines: &str| {
            Inventory::parse(&base.replace("images /srv/nfs/images\n", &format!("images /srv/nfs/images\n{lines}")))
                .unwrap()
        };
        let http = command_line(&with("image-mode squashfs-http\n"));
        assert_eq!(
            http,
            tree.replace(
                "nfsroot=172.23.199.225:/srv/nfs/images clusterroot.image=default",
                "clusterroot.live=http://172.23.199.225/images/default"
            )
        );
        let nfs = command_line(&with("image-mode squashfs-nfs\n"));
        assert!(nfs.starts_with("clusterroot.live=nfs://172.23.199.225/srv/nfs/images/squashfs/default ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes "), "{nfs}");
        assert_eq!(command_line(&with("image-mode tree\n")), tree);
        // The store at /: no double slash.
        let top = Inventory::parse(
            &example::CLUSTER.replace("master master\n", "master master\nimages /\nimage-mode squashfs-nfs\n"),
        )
        .unwrap();
        assert!(command_line(&top).starts_with("clusterroot.live=nfs://172.23.199.225/squashfs/default "));
        let out = render(&with("image-mode squashfs-nfs\n"));
        assert!(out.contains("\n# over NFS from the master (172.23.199.225 here).\n"), "{out}");
        assert!(per_node(&with("image-mode squashfs-nfs\n")).is_empty());
    }

    #[test]
    fn nodes_whose_groups_have_replicas_get_a_file_of_their_own() {
        let text = example::CLUSTER
            .replace("master master\n", "master master\nimages /srv/nfs/images\nimage-mode squashfs-http\nreplica gpu http://172.23.199.3/images/\nreplica * http://172.23.199.2/images/\n")
            .replace("172.23.199.12   compute", "172.23.199.12   compute,gpu");
        let inv = Inventory::parse(&text).unwrap();
        let files = per_node(&inv);
        assert_eq!(files.len(), 1, "{files:?}");
        let (name, text) = &files[0];
        assert_eq!(name, "pxelinux.cfg/01-52-54-00-77-00-0c");
        // In the file's order: gpu's line comes first.
        assert!(text.contains("\n  APPEND clusterroot.live=http://172.23.199.225/images/default,http://172.23.199.3/images/default,http://172.23.199.2/images/default ip=dhcp "), "{text}");
        assert!(text.contains("\n# node2, which pxelinux reads before pxelinux.cfg/default."), "{text}");
        let default = render(&inv);
        assert!(default.contains("\n  APPEND clusterroot.live=http://172.23.199.225/images/default,http://172.23.199.2/images/default ip=dhcp "), "{default}");
    }
}
