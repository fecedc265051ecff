//! `boot.ipxe` in the master's TFTP root, which iPXE clients fetch over HTTP: the kernel, the
//! initramfs and the same command line as pxelinux's.

use std::fmt::Write as _;

use super::pxelinux::{command_line, command_line_comment, command_line_with, squashfs_transport};
use super::stamp;
use crate::inventory::{ImageMode, Inventory, ReplicaUrl};

pub fn render(inv: &Inventory) -> String {
    if inv.settings.replicas.is_empty() {
        return single(inv);
    }
    replicated(inv)
}

/// One command line for every client: the master alone serves the root.
fn single(inv: &Inventory) -> String {
    let master = inv.master_address();
    // iPXE wants its signature on the first line, before crctl's stamp.
    let mut out = String::from("#!ipxe\n");
    out.push_str(&stamp("#"));
    out.push_str(&format!(
        "\
# <TFTP root>/boot.ipxe on a clusterroot master: the script iPXE clients run (dnsmasq.conf
# sends them to http://{master}/boot.ipxe; lighttpd serves the TFTP root). Every client
# boots the kernel and initramfs that kernel.d/post-install/60-clusterroot puts into the
# TFTP root, fetched over HTTP from beside this file, {source} The command line is pxelinux.cfg/default's.
#
# BOOTIF=01-<mac of the NIC iPXE booted from> (${{netX/mac:hexhyp}}, as pxelinux's IPAPPEND 2
# writes it): the agent configures that NIC and picks the node files by it.
# initrd=: the name of the initramfs below, which a UEFI kernel needs to find it.
{comment}
kernel vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} {args}
initrd initramfs-net.img
boot
",
        // Wrapped where the tree's line always was.
        source = match squashfs_transport(inv) {
            None => format!("with its root over NFSv4 from the\n# master ({master} here)."),
            Some(how) =>
                format!("with its\n# root the store's default squashfs file {how} from the master ({master}).\n#"),
        },
        comment = command_line_comment(inv),
        args = command_line(inv),
    ));
    out
}

/// With replicas: each client's command line names the replicas of its groups after the
/// master, so nodes whose replicas differ from those of every node are sent by their MAC
/// (`iseq ${netX/mac}`) to a label of their own. In squashfs-http, the kernel and initramfs
/// fall back to each replica's copy of the TFTP root (the parent of its directory, as the
/// master serves `/` beside `/images/`) when the master does not send them.
fn replicated(inv: &Inventory) -> String {
    let master = inv.master_address();
    let mut out = String::from("#!ipxe\n");
    out.push_str(&stamp("#"));
    let _ = write!(
        out,
        "\
# <TFTP root>/boot.ipxe on a clusterroot master: the script iPXE clients run (dnsmasq.conf
# sends them to http://{master}/boot.ipxe; lighttpd serves the TFTP root). Every client
# boots the kernel and initramfs that kernel.d/post-install/60-clusterroot puts into the
# TFTP root, with its root the store's default squashfs file {how} from the master
# ({master} here) or from a replica (the inventory's replica lines).
{fallback}#
# BOOTIF=01-<mac of the NIC iPXE booted from> (${{netX/mac:hexhyp}}, as pxelinux's IPAPPEND 2
# writes it): the agent configures that NIC and picks the node files by it.
# initrd=: the name of the initramfs below, which a UEFI kernel needs to find it.
{comment}",
        how = squashfs_transport(inv).unwrap_or_default(),
        fallback = if inv.settings.image_mode == ImageMode::SquashfsHttp {
            "# The kernel and initramfs come from the master, else from the first replica that sends them\n\
             # (its copy of the master's TFTP root, in the parent of its directory).\n"
        } else {
            ""
        },
        comment = command_line_comment(inv),
    );
    // The labels: every machine's (`*` replicas), then one per other list of replicas.
    let all = inv.replicas_for_all();
    let mut labels: Vec<(Vec<&ReplicaUrl>, Vec<&str>)> = Vec::new();
    let mut sends = String::new();
    for n in inv.clients() {
        let replicas = inv.replicas_of(n);
        if replicas == all {
            continue;
        }
        let i = match labels.iter().position(|(r, _)| *r == replicas) {
            Some(i) => i,
            None => {
                labels.push((replicas, Vec::new()));
                labels.len() - 1
            }
        };
        labels[i].1.push(&n.name);
        let _ = writeln!(sends, "iseq ${{netX/mac}} {} && goto replicas-{} ||", n.mac, i + 1);
    }
    if !sends.is_empty() {
        let _ = write!(
            out,
            "\n# Nodes whose groups have replicas of their own go to their label, by the MAC iPXE booted\n\
             # from; every other machine boots the label all.\n{sends}goto all\n"
        );
    }
    let _ = write!(out, "\n:all\n# The replicas of every node (replica * lines).\n{}", boot(inv, &all));
    for (i, (replicas, nodes)) in labels.iter().enumerate() {
        let _ = write!(out, "\n:replicas-{}\n# {}\n{}", i + 1, nodes.join(", "), boot(inv, replicas));
    }
    out
}

/// The kernel, initrd and boot lines of a client served by `replicas`. In squashfs-http,
/// each fetch falls back to the replicas' copies in turn (`kernel A || kernel B`); else the
/// files come from beside this script.
fn boot(inv: &Inventory, replicas: &[&ReplicaUrl]) -> String {
    let args = command_line_with(inv, replicas);
    let mut sources = vec![String::new()];
    if inv.settings.image_mode == ImageMode::SquashfsHttp && !replicas.is_empty() {
        sources = std::iter::once(format!("http://{}/", inv.master_address()))
            .chain(replicas.iter().map(|r| r.parent()))
            .collect();
    }
    let fetch = |what: &str| sources.iter().map(|s| what.replace("{}", s)).collect::<Vec<_>>().join(" || ");
    format!(
        "{}\n{}\nboot\n",
        fetch(&format!("kernel {{}}vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} {args}")),
        fetch("initrd {}initramfs-net.img"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_script_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/boot.ipxe"));
    }

    #[test]
    fn it_boots_what_pxelinux_boots() {
        let inv = example::inventory();
        let script = render(&inv);
        assert!(script.starts_with("#!ipxe\n# Rendered by crctl"), "{script}");
        let kernel = script.lines().find(|l| l.starts_with("kernel ")).unwrap();
        assert!(kernel.ends_with(&command_line(&inv)), "{kernel}");
        assert!(kernel.contains(" BOOTIF=01-${netX/mac:hexhyp} "), "{kernel}");
        assert!(script.ends_with("initrd initramfs-net.img\nboot\n"), "{script}");
    }

    /// The example cluster on a store, with `lines` after the master line, node2 in gpu too.
    fn with(lines: &str) -> Inventory {
        let text = example::CLUSTER
            .replace("master master\n", &format!("master master\nimages /srv/nfs/images\n{lines}"))
            .replace("172.23.199.12   compute", "172.23.199.12   compute,gpu");
        Inventory::parse(&text).unwrap()
    }

    #[test]
    fn squashfs_modes_without_replicas_boot_the_master_s_file() {
        let out = render(&with("image-mode squashfs-http\n"));
        let args =
            "clusterroot.live=http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes ";
        let kernel = format!("\nkernel vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} {args}");
        assert!(out.contains(&kernel), "{out}");
        assert!(out.ends_with("\ninitrd initramfs-net.img\nboot\n"), "{out}");
        assert!(!out.contains("nfsroot=") && !out.contains("iseq") && !out.contains("||"), "{out}");
        let out = render(&with("image-mode squashfs-nfs\n"));
        assert!(
            out.contains(" clusterroot.live=nfs://172.23.199.225/srv/nfs/images/squashfs/default ip=dhcp "),
            "{out}"
        );
    }

    #[test]
    fn replicas_per_group_send_their_nodes_to_a_label_of_their_own() {
        let inv = with("image-mode squashfs-nfs\nreplica * nfs://172.23.199.2/srv/images/\nreplica gpu nfs://172.23.199.3/tank/sq/\n");
        let out = render(&inv);
        let sends = "\niseq ${netX/mac} 52:54:00:77:00:0c && goto replicas-1 ||\ngoto all\n\n:all\n";
        assert!(out.contains(sends), "{out}");
        assert_eq!(out.matches("iseq").count(), 1, "node1 (compute only) boots all: {out}");
        let all = "clusterroot.live=nfs://172.23.199.225/srv/nfs/images/squashfs/default,nfs://172.23.199.2/srv/images/default ip=dhcp";
        let gpu = "clusterroot.live=nfs://172.23.199.225/srv/nfs/images/squashfs/default,nfs://172.23.199.2/srv/images/default,nfs://172.23.199.3/tank/sq/default ip=dhcp";
        let (first, second) = out.split_once("\n:replicas-1\n# node2\n").unwrap();
        assert!(first.contains(all) && !first.contains(gpu), "{out}");
        assert!(second.contains(gpu), "{out}");
        // Over NFS, the kernel comes from beside the script alone: iPXE has no nfs:// here.
        assert!(!out.contains("kernel nfs") && !out.contains(" || kernel"), "{out}");
        // Only * replicas: one command line for all, no dispatch.
        let out = render(&with("image-mode squashfs-nfs\nreplica * nfs://172.23.199.2/srv/images/\n"));
        assert!(!out.contains("iseq") && out.contains(all), "{out}");
    }

    #[test]
    fn over_http_the_kernel_and_initramfs_fall_back_to_each_replica() {
        let inv = with("image-mode squashfs-http\nreplica * http://172.23.199.2/images/\nreplica gpu http://172.23.199.3:8080/mirror/squashfs/\n");
        let out = render(&inv);
        let live = "clusterroot.live=http://172.23.199.225/images/default,http://172.23.199.2/images/default,http://172.23.199.3:8080/mirror/squashfs/default";
        let line = |base: &str| {
            format!("kernel {base}vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} {live} ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8")
        };
        let kernel = ["http://172.23.199.225/", "http://172.23.199.2/", "http://172.23.199.3:8080/mirror/"]
            .map(line)
            .join(" || ");
        let initrd = "initrd http://172.23.199.225/initramfs-net.img || initrd http://172.23.199.2/initramfs-net.img || initrd http://172.23.199.3:8080/mirror/initramfs-net.img";
        assert!(out.ends_with(&format!(":replicas-1\n# node2\n{kernel}\n{initrd}\nboot\n")), "{out}");
        assert!(
            out.contains(
                "\n:all\n# The replicas of every node (replica * lines).\nkernel http://172.23.199.225/vmlinuz "
            ),
            "{out}"
        );
        assert!(out.contains("\ninitrd http://172.23.199.225/initramfs-net.img || initrd http://172.23.199.2/initramfs-net.img\nboot\n\n:replicas-1"), "{out}");
    }
}
