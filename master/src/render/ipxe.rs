//! `boot.ipxe` in the master's TFTP root, which iPXE clients fetch over HTTP: the kernel, the
//! initramfs and the same command line as pxelinux's.

use std::fmt::Write as _;

use super::pxelinux::{
    command_line, command_line_comment, command_line_with, placement_reason, placements, squashfs_transport, Placement,
};
use super::{comment, stamp};
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

/// With replicas: each client's command line names the replicas of its groups, then the
/// master, and clients with the same replicas start at the next one in turn
/// ([`placements`]), so nodes whose order differs from that of a machine the inventory does
/// not list are sent by their MAC (`iseq ${netX/mac}`) to a label of their own, one per
/// order. In squashfs-http, the kernel and initramfs come from the same servers in the same
/// order: each replica's copy of the TFTP root (the parent of its directory, as the master
/// serves `/` beside `/images/`), then the master's.
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
# TFTP root, with its root the store's default squashfs file {how} from a replica (the
# inventory's replica lines) or, when none sends it, from the master ({master} here).
# Replicas come first so that they carry the boots: were the master first, every node would
# load it, and a cold boot of the cluster would take what the master's one link takes. The
# nodes with the same replicas take them in turn (in the file's order, the first node starts
# at the first replica, the second at the second, ...), so that their boots spread evenly.
{fallback}#
# BOOTIF=01-<mac of the NIC iPXE booted from> (${{netX/mac:hexhyp}}, as pxelinux's IPAPPEND 2
# writes it): the agent configures that NIC and picks the node files by it.
# initrd=: the name of the initramfs below, which a UEFI kernel needs to find it.
{comment}",
        how = squashfs_transport(inv).unwrap_or_default(),
        fallback = if inv.settings.image_mode == ImageMode::SquashfsHttp {
            "# The kernel and initramfs come from the same servers in the same order: each replica's\n\
             # copy of the master's TFTP root (in the parent of its directory), then the master's.\n"
        } else {
            ""
        },
        comment = command_line_comment(inv),
    );
    // The labels: every machine's (`*` replicas, from the first), then one per other order.
    let all = inv.replicas_for_all();
    let placements = placements(inv);
    let mut in_all: Vec<&str> = Vec::new();
    let mut labels: Vec<(&[&ReplicaUrl], Vec<&Placement>)> = Vec::new();
    let mut sends = String::new();
    for p in &placements {
        if p.order == all {
            in_all.push(&p.node.name);
            continue;
        }
        let i = match labels.iter().position(|(order, _)| *order == p.order.as_slice()) {
            Some(i) => i,
            None => {
                labels.push((&p.order, Vec::new()));
                labels.len() - 1
            }
        };
        labels[i].1.push(p);
        let _ = writeln!(sends, "iseq ${{netX/mac}} {} && goto replicas-{} ||", p.node.mac, i + 1);
    }
    if !sends.is_empty() {
        let _ = write!(
            out,
            "\n# Nodes whose replicas, or the one they try first, differ from the label all's go to their\n\
             # label, by the MAC iPXE booted from; every other machine boots the label all.\n{sends}goto all\n"
        );
    }
    let who = if in_all.is_empty() { String::new() } else { format!(", and {}", in_all.join(", ")) };
    let why = match all.len() {
        0 => format!("No replica * line: the master alone, for the machines the inventory does not list{who}."),
        1 => format!("The replica of every node (its replica * line), then the master: for the machines the inventory does not list{who}."),
        _ => format!(
            "The replicas of every node (replica * lines) in the file's order, then the master: for the machines \
             the inventory does not list (iPXE knows them by no place to spread them by){who}."
        ),
    };
    let _ = write!(out, "\n:all\n{}{}", comment(&why), boot(inv, &all));
    for (i, (order, members)) in labels.iter().enumerate() {
        let _ = write!(out, "\n:replicas-{}\n{}{}", i + 1, reasons(members), boot(inv, order));
    }
    out
}

/// The comment of a label: why its nodes try its order, one sentence per list of replicas
/// and first one among them (nodes of two lists meet in one order only when their groups'
/// lines name the same replicas in another order).
fn reasons(members: &[&Placement]) -> String {
    let mut out = String::new();
    let mut done = vec![false; members.len()];
    for (i, p) in members.iter().enumerate() {
        if done[i] {
            continue;
        }
        let mut names = Vec::new();
        for (j, q) in members.iter().enumerate().skip(i) {
            if !done[j] && q.replicas == p.replicas && q.start() == p.start() {
                done[j] = true;
                names.push(q.node.name.as_str());
            }
        }
        out.push_str(&comment(&placement_reason(&names, p)));
    }
    out
}

/// The kernel, initrd and boot lines of a client that tries `order`'s replicas, then the
/// master. In squashfs-http, each fetch falls back to the next server in turn (`kernel A ||
/// kernel B`); else the files come from beside this script.
fn boot(inv: &Inventory, order: &[&ReplicaUrl]) -> String {
    let args = command_line_with(inv, order);
    let mut sources = vec![String::new()];
    if inv.settings.image_mode == ImageMode::SquashfsHttp && !order.is_empty() {
        sources = order.iter().map(|r| r.parent()).chain([format!("http://{}/", inv.master_address())]).collect();
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
    use crate::render::pxelinux::tests::{five_nodes, A, B, C};

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
        // The replicas first, the master last, and the node files named on the master.
        let rest = "ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes ";
        let all = format!("clusterroot.live=nfs://172.23.199.2/srv/images/default,nfs://172.23.199.225/srv/nfs/images/squashfs/default {rest}");
        let gpu = format!("clusterroot.live=nfs://172.23.199.2/srv/images/default,nfs://172.23.199.3/tank/sq/default,nfs://172.23.199.225/srv/nfs/images/squashfs/default {rest}");
        let (first, second) = out
            .split_once(
                "\n:replicas-1\n# node2: the only node with these 2 replicas: from the first, then the master.\n",
            )
            .unwrap();
        assert!(first.contains(&all) && !first.contains(&gpu), "{out}");
        assert!(first.contains("\n:all\n# The replica of every node (its replica * line), then the master: for the machines the\n# inventory does not list, and node1.\nkernel vmlinuz "), "{out}");
        assert!(second.contains(&gpu), "{out}");
        // Over NFS, the kernel comes from beside the script alone: iPXE has no nfs:// here.
        assert!(!out.contains("kernel nfs") && !out.contains(" || kernel"), "{out}");
        // Only * replicas, one of them: one command line for all, no dispatch.
        let out = render(&with("image-mode squashfs-nfs\nreplica * nfs://172.23.199.2/srv/images/\n"));
        assert!(!out.contains("iseq") && out.contains(&all), "{out}");
    }

    #[test]
    fn over_http_the_kernel_and_initramfs_come_from_the_replicas_then_the_master() {
        let inv = with("image-mode squashfs-http\nreplica * http://172.23.199.2/images/\nreplica gpu http://172.23.199.3:8080/mirror/squashfs/\n");
        let out = render(&inv);
        let live = "clusterroot.live=http://172.23.199.2/images/default,http://172.23.199.3:8080/mirror/squashfs/default,http://172.23.199.225/images/default";
        let line = |base: &str| {
            format!("kernel {base}vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} {live} ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8")
        };
        let kernel = ["http://172.23.199.2/", "http://172.23.199.3:8080/mirror/", "http://172.23.199.225/"]
            .map(line)
            .join(" || ");
        let initrd = "initrd http://172.23.199.2/initramfs-net.img || initrd http://172.23.199.3:8080/mirror/initramfs-net.img || initrd http://172.23.199.225/initramfs-net.img";
        assert!(out.ends_with(&format!(":replicas-1\n# node2: the only node with these 2 replicas: from the first, then the master.\n{kernel}\n{initrd}\nboot\n")), "{out}");
        assert!(out.contains("\n# inventory does not list, and node1.\nkernel http://172.23.199.2/vmlinuz "), "{out}");
        assert!(out.contains("\ninitrd http://172.23.199.2/initramfs-net.img || initrd http://172.23.199.225/initramfs-net.img\nboot\n\n:replicas-1"), "{out}");
        assert!(
            out.contains("\n# The kernel and initramfs come from the same servers in the same order: each replica's\n"),
            "{out}"
        );
    }

    #[test]
    fn five_nodes_spread_over_three_replicas_by_label() {
        let inv = five_nodes(
            &format!("image-mode squashfs-http\nreplica * {A}\nreplica gpu {B}\nreplica gpu {C}\n"),
            ["gpu", "compute", "gpu", "gpu", "compute"],
        );
        let out = render(&inv);
        // node1, node3 and node4 share A, B, C and start at each in turn; node2 and node5 have A
        // alone, as a machine the inventory does not list: the label all.
        let sends = "\niseq ${netX/mac} 52:54:00:77:00:0b && goto replicas-1 ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0d && goto replicas-2 ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0e && goto replicas-3 ||\ngoto all\n";
        assert!(out.contains(sends), "{out}");
        assert!(out.contains("\n:all\n# The replica of every node (its replica * line), then the master: for the machines the\n# inventory does not list, and node2, node5.\n"), "{out}");
        let parent = |u: &str| u.rsplit_once("images/").map_or(u.replace("sq/", ""), |(p, _)| p.to_string());
        for (label, order, place) in [(1, [A, B, C], "1st"), (2, [B, C, A], "2nd"), (3, [C, A, B], "3rd")] {
            let body = out.split(&format!("\n:replicas-{label}\n")).nth(1).unwrap();
            assert!(
                body.contains(&format!(
                    "...): it\n# starts at the {place}, then the others in turn, then the master.\nkernel {}vmlinuz ",
                    parent(order[0])
                )),
                "{body}"
            );
            let live = format!("clusterroot.live={}default,{}default,{}default,http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes ", order[0], order[1], order[2]);
            let kernel = body.lines().find(|l| l.starts_with("kernel ")).unwrap();
            assert_eq!(kernel.matches(&live).count(), 4, "{kernel}");
            let initrd = body.lines().find(|l| l.starts_with("initrd ")).unwrap();
            let want = order.map(|u| format!("initrd {}initramfs-net.img", parent(u))).join(" || ");
            assert_eq!(initrd, format!("{want} || initrd http://172.23.199.225/initramfs-net.img"));
        }
        // Two * replicas, no group's: node2 starts at the second, by the MAC.
        let out = render(&with(&format!("image-mode squashfs-http\nreplica * {A}\nreplica * {C}\n")));
        assert!(out.contains("\niseq ${netX/mac} 52:54:00:77:00:0c && goto replicas-1 ||\ngoto all\n"), "{out}");
        assert!(out.contains("\n:replicas-1\n# node2: one of the 2 nodes with these 2 replicas, "), "{out}");
        assert!(out.contains("\nkernel http://172.23.199.4/vmlinuz "), "{out}");
    }

    #[test]
    fn tree_mode_is_unchanged() {
        let out = render(&with(""));
        let line = "\nkernel vmlinuz initrd=initramfs-net.img BOOTIF=01-${netX/mac:hexhyp} nfsroot=172.23.199.225:/srv/nfs/images clusterroot.image=default ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8\ninitrd initramfs-net.img\nboot\n";
        assert!(out.ends_with(line), "{out}");
        assert!(!out.contains("iseq") && !out.contains(":all") && !out.contains("replica"), "{out}");
    }
}
