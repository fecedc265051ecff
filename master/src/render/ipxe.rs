//! `boot.ipxe` in the master's TFTP root, which iPXE clients fetch over HTTP: the kernel, the
//! initramfs and the same command lines as pxelinux's, each client sent to its own by its MAC.

use std::fmt::Write as _;

use super::pxelinux::{
    command_line_comment, command_line_with, placement_reason, placements, squashfs_transport, NodeFiles, Placement,
};
use super::{comment, stamp};
use crate::inventory::{ImageMode, Inventory, ReplicaUrl};

pub fn render(inv: &Inventory) -> String {
    if inv.settings.replicas.is_empty() {
        return single(inv);
    }
    replicated(inv)
}

/// The master alone serves the root: one command line for the machines the inventory does
/// not list (`clusterroot.nodefiles=none`), and one for every client with an address, which
/// names its node files' export.
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
# TFTP root, fetched over HTTP from beside this file, {source} The command lines are pxelinux.cfg's.
#
# BOOTIF=01-<mac of the NIC iPXE booted from> (${{netX/mac:hexhyp}}, as pxelinux's IPAPPEND 2
# writes it): the agent configures that NIC and picks the node files by it.
# initrd=: the name of the initramfs below, which a UEFI kernel needs to find it.
{comment}",
        // Wrapped where the tree's line always was.
        source = match squashfs_transport(inv) {
            None => format!("with its root over NFSv4 from the\n# master ({master} here)."),
            Some(how) =>
                format!("with its\n# root the store's default squashfs file {how} from the master ({master}).\n#"),
        },
        comment = command_line_comment(inv),
    ));
    let placements = placements(inv);
    let (labels, in_all) = labels(inv, &placements);
    if labels.is_empty() {
        out.push('\n');
        out.push_str(&boot(inv, &[], NodeFiles::None));
        return out;
    }
    out.push_str(&sends(&placements, &labels, "Each client with an address, whose line names its node files' export,"));
    let why = format!("The machines the inventory does not list{}: no node-files export, so none.", without(&in_all));
    let _ = write!(out, "\n:all\n{}{}", comment(&why), boot(inv, &[], NodeFiles::None));
    for l in &labels {
        let names: Vec<&str> = l.members.iter().map(|p| p.node.name.as_str()).collect();
        let whose = if names.len() == 1 { "its" } else { "each one's" };
        let why = format!("{}: the master exports {whose} node files to its address alone.", names.join(", "));
        let _ = write!(out, "\n:{}\n{}{}", l.name, comment(&why), boot(inv, l.order, l.nodefiles));
    }
    out
}

/// With replicas: each client's command line names the replicas of its groups, then the
/// master, and clients with the same replicas start at the next one in turn
/// ([`placements`]), so nodes whose order differs from that of a machine the inventory does
/// not list are sent by their MAC (`iseq ${netX/mac}`) to a label of their own, one per
/// order and node files, as are the clients with an address, whose line names their node
/// files' export. In squashfs-http, the kernel and initramfs come from the same servers in
/// the same order: each replica's copy of the TFTP root (the parent of its directory, as the
/// master serves `/` beside `/images/`), then the master's.
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
    let all = inv.replicas_for_all();
    let placements = placements(inv);
    let (labels, in_all) = labels(inv, &placements);
    if !labels.is_empty() {
        out.push_str(&sends(
            &placements,
            &labels,
            "Each client with an address, whose line names its node files' export, and each whose \
             replicas, or the one it tries first, differ from the label all's,",
        ));
    }
    let who = without(&in_all);
    let why = match all.len() {
        0 => format!("No replica * line: the master alone, for the machines the inventory does not list{who}."),
        1 => format!("The replica of every node (its replica * line), then the master: for the machines the inventory does not list{who}."),
        _ => format!(
            "The replicas of every node (replica * lines) in the file's order, then the master: for the machines \
             the inventory does not list (iPXE knows them by no place to spread them by){who}."
        ),
    };
    let why = format!("{why} They have no node-files export, so none.");
    let _ = write!(out, "\n:all\n{}{}", comment(&why), boot(inv, &all, NodeFiles::None));
    for l in &labels {
        let mut why = reasons(&l.members);
        if l.nodefiles == NodeFiles::None {
            why.push_str(&comment("Without an address: no node-files export, so none."));
        }
        let _ = write!(out, "\n:{}\n{}{}", l.name, why, boot(inv, l.order, l.nodefiles));
    }
    out
}

/// A label of the script other than all: the clients it boots, with their order and node files.
struct Label<'a> {
    name: String,
    order: &'a [&'a ReplicaUrl],
    nodefiles: NodeFiles,
    members: Vec<&'a Placement<'a>>,
}

/// The labels of the clients whose command line differs from that of a machine the inventory
/// does not list (the label all), one per order and node files, in the file's order: the
/// clients with an address in the `*` order share `nodefiles`; each other order is
/// `replicas-N`, or `replicas-N-none` for its clients without an address. And the clients
/// that boot the label all.
fn labels<'a>(inv: &Inventory, placements: &'a [Placement<'a>]) -> (Vec<Label<'a>>, Vec<&'a str>) {
    let all = inv.replicas_for_all();
    let mut orders: Vec<&[&ReplicaUrl]> = Vec::new();
    let mut labels: Vec<Label> = Vec::new();
    let mut in_all = Vec::new();
    for p in placements {
        let order = p.order.as_slice();
        let name = match (order == all.as_slice(), p.nodefiles) {
            (true, NodeFiles::None) => {
                in_all.push(p.node.name.as_str());
                continue;
            }
            (true, NodeFiles::Export) => "nodefiles".to_string(),
            (false, nodefiles) => {
                let n = match orders.iter().position(|o| *o == order) {
                    Some(i) => i + 1,
                    None => {
                        orders.push(order);
                        orders.len()
                    }
                };
                if nodefiles == NodeFiles::None {
                    format!("replicas-{n}-none")
                } else {
                    format!("replicas-{n}")
                }
            }
        };
        match labels.iter_mut().find(|l| l.name == name) {
            Some(l) => l.members.push(p),
            None => labels.push(Label { name, order, nodefiles: p.nodefiles, members: vec![p] }),
        }
    }
    (labels, in_all)
}

/// The lines that send each client of `labels` to its label by the MAC iPXE booted from, in
/// the file's order (`placements`'), after a comment that starts with `who`; every other
/// machine boots the label all.
fn sends(placements: &[Placement], labels: &[Label], who: &str) -> String {
    let mut out = String::from("\n");
    out.push_str(&comment(&format!(
        "{who} goes to its label by the MAC iPXE booted from; every other machine boots the label all."
    )));
    for p in placements {
        if let Some(l) = labels.iter().find(|l| l.members.iter().any(|m| m.node.name == p.node.name)) {
            let _ = writeln!(out, "iseq ${{netX/mac}} {} && goto {} ||", p.node.mac, l.name);
        }
    }
    out.push_str("goto all\n");
    out
}

/// `, and NAMES (without an address)` for the clients that boot the label all, or nothing.
fn without(names: &[&str]) -> String {
    if names.is_empty() {
        return String::new();
    }
    format!(", and {} (without an address)", names.join(", "))
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
/// master, with `nodefiles`. In squashfs-http, each fetch falls back to the next server in turn (`kernel A ||
/// kernel B`); else the files come from beside this script.
fn boot(inv: &Inventory, order: &[&ReplicaUrl], nodefiles: NodeFiles) -> String {
    let args = command_line_with(inv, order, nodefiles);
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
    use crate::render::pxelinux::{self, command_line};

    #[test]
    fn the_shipped_script_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/boot.ipxe"));
    }

    #[test]
    fn it_boots_what_pxelinux_boots() {
        let inv = example::inventory();
        let script = render(&inv);
        assert!(script.starts_with("#!ipxe\n# Rendered by crctl"), "{script}");
        // The label all is default's line, the label nodefiles each client's own file's.
        let kernels: Vec<&str> = script.lines().filter(|l| l.starts_with("kernel ")).collect();
        assert_eq!(kernels.len(), 2, "{script}");
        assert!(kernels[0].ends_with(&command_line(&inv)), "{script}");
        for (_, text) in pxelinux::per_node(&inv) {
            let append = text.lines().find_map(|l| l.strip_prefix("  APPEND ")).unwrap();
            assert!(kernels[1].ends_with(append), "{text}");
        }
        assert!(kernels.iter().all(|k| k.contains(" BOOTIF=01-${netX/mac:hexhyp} ")), "{script}");
        assert!(script.ends_with("initrd initramfs-net.img\nboot\n"), "{script}");
    }

    #[test]
    fn unlisted_machines_boot_none_and_clients_with_an_address_their_export() {
        let script = render(&example::inventory());
        let sends = "\niseq ${netX/mac} 52:54:00:77:00:0b && goto nodefiles ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0c && goto nodefiles ||\ngoto all\n";
        assert!(script.contains(sends), "{script}");
        let (all, nodefiles) = script.split_once("\n:nodefiles\n").unwrap();
        let all = all.split_once("\n:all\n").unwrap().1;
        assert!(
            all.starts_with("# The machines the inventory does not list: no node-files export, so none.\n"),
            "{all}"
        );
        assert!(all.contains(" ip=dhcp clusterroot.nodefiles=none clusterroot.timeout=90 "), "{all}");
        assert!(
            nodefiles.starts_with("# node1, node2: the master exports each one's node files to its address alone.\n"),
            "{nodefiles}"
        );
        assert!(
            nodefiles.contains(" ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes clusterroot.timeout=90 "),
            "{nodefiles}"
        );
        assert_eq!(script.matches("\nkernel ").count(), 2, "one label for both: {script}");
    }

    #[test]
    fn a_client_without_an_address_boots_none_with_the_unlisted_machines() {
        let text = example::CLUSTER.replace("172.23.199.12   compute", "- compute");
        let script = render(&Inventory::parse(&text).unwrap());
        assert!(script.contains("\niseq ${netX/mac} 52:54:00:77:00:0b && goto nodefiles ||\ngoto all\n"), "{script}");
        assert!(!script.contains("52:54:00:77:00:0c"), "{script}");
        assert!(script.contains("\n:all\n# The machines the inventory does not list, and node2 (without an address): no node-files\n# export, so none.\n"), "{script}");
        assert!(
            script.contains("\n:nodefiles\n# node1: the master exports its node files to its address alone.\n"),
            "{script}"
        );
        // No client with an address: no labels, the one line says none.
        let text = text.replace("172.23.199.11   compute", "- compute");
        let script = render(&Inventory::parse(&text).unwrap());
        assert!(!script.contains("iseq") && !script.contains(":all"), "{script}");
        assert!(script.contains(" clusterroot.nodefiles=none ") && !script.contains("/srv/nfs/nodes "), "{script}");
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
        let kernel = |nodefiles: &str| {
            format!("\nkernel vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} clusterroot.live=http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles={nodefiles} ")
        };
        let (all, nodefiles) = out.split_once("\n:nodefiles\n").unwrap();
        assert!(all.contains(&kernel("none")) && nodefiles.contains(&kernel("/srv/nfs/nodes")), "{out}");
        assert!(out.ends_with("\ninitrd initramfs-net.img\nboot\n"), "{out}");
        assert!(!out.contains("nfsroot=") && !out.contains("|| kernel"), "{out}");
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
        // node1 (compute only) tries the * replica as an unlisted machine, but names its node files.
        let sends = "\niseq ${netX/mac} 52:54:00:77:00:0b && goto nodefiles ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0c && goto replicas-1 ||\ngoto all\n\n:all\n";
        assert!(out.contains(sends), "{out}");
        assert_eq!(out.matches("iseq").count(), 2, "{out}");
        // The replicas first, the master last, and the node files named on the master.
        let rest = "ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes ";
        let star = "clusterroot.live=nfs://172.23.199.2/srv/images/default,nfs://172.23.199.225/srv/nfs/images/squashfs/default";
        let all = format!("{star} {rest}");
        let gpu = format!("clusterroot.live=nfs://172.23.199.2/srv/images/default,nfs://172.23.199.3/tank/sq/default,nfs://172.23.199.225/srv/nfs/images/squashfs/default {rest}");
        let (first, second) = out
            .split_once(
                "\n:replicas-1\n# node2: the only node with these 2 replicas: from the first, then the master.\n",
            )
            .unwrap();
        let (unlisted, node1) = first.split_once("\n:nodefiles\n").unwrap();
        assert!(unlisted.contains(&format!("{star} ip=dhcp clusterroot.nodefiles=none ")), "{out}");
        assert!(unlisted.contains("\n:all\n# The replica of every node (its replica * line), then the master: for the machines the\n# inventory does not list. They have no node-files export, so none.\nkernel vmlinuz "), "{out}");
        assert!(node1.starts_with("# node1: the one replica of its groups, then the master.\n"), "{out}");
        assert!(node1.contains(&all) && !first.contains(&gpu), "{out}");
        assert!(second.contains(&gpu), "{out}");
        // Over NFS, the kernel comes from beside the script alone: iPXE has no nfs:// here.
        assert!(!out.contains("kernel nfs") && !out.contains(" || kernel"), "{out}");
        // Only * replicas, one of them: one command line for the clients, one for the others.
        let out = render(&with("image-mode squashfs-nfs\nreplica * nfs://172.23.199.2/srv/images/\n"));
        assert_eq!(out.matches("\niseq ${netX/mac} ").count(), 2, "{out}");
        assert!(out.matches(" && goto nodefiles ||\n").count() == 2 && out.contains(&all), "{out}");
        assert!(!out.contains(":replicas-"), "{out}");
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
        assert!(out.contains("\n:nodefiles\n# node1: the one replica of its groups, then the master.\nkernel http://172.23.199.2/vmlinuz "), "{out}");
        assert!(out.contains("\n# inventory does not list. They have no node-files export, so none.\nkernel http://172.23.199.2/vmlinuz "), "{out}");
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
        // alone, as a machine the inventory does not list, and their node files: one label.
        let sends = "\niseq ${netX/mac} 52:54:00:77:00:0b && goto replicas-1 ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0c && goto nodefiles ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0d && goto replicas-2 ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0e && goto replicas-3 ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0f && goto nodefiles ||\ngoto all\n";
        assert!(out.contains(sends), "{out}");
        assert!(out.contains("\n:all\n# The replica of every node (its replica * line), then the master: for the machines the\n# inventory does not list. They have no node-files export, so none.\n"), "{out}");
        assert!(
            out.contains("\n:nodefiles\n# node2, node5: the one replica of their groups, then the master.\n"),
            "{out}"
        );
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
        assert!(out.contains("\niseq ${netX/mac} 52:54:00:77:00:0b && goto nodefiles ||\niseq ${netX/mac} 52:54:00:77:00:0c && goto replicas-1 ||\ngoto all\n"), "{out}");
        assert!(out.contains("\n:replicas-1\n# node2: one of the 2 nodes with these 2 replicas, "), "{out}");
        assert!(out.contains("\nkernel http://172.23.199.4/vmlinuz "), "{out}");
    }

    #[test]
    fn tree_mode_has_no_replicas_and_names_no_server() {
        let out = render(&with(""));
        let line = |nodefiles: &str| {
            format!("\nkernel vmlinuz initrd=initramfs-net.img BOOTIF=01-${{netX/mac:hexhyp}} nfsroot=172.23.199.225:/srv/nfs/images clusterroot.image=default ip=dhcp clusterroot.nodefiles={nodefiles} clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8\ninitrd initramfs-net.img\nboot\n")
        };
        assert!(out.ends_with(&line("/srv/nfs/nodes")), "{out}");
        assert!(out.contains(&format!("{}\n:nodefiles\n", line("none"))), "{out}");
        assert!(!out.contains("replica"), "{out}");
    }

    #[test]
    fn with_replicas_a_client_without_an_address_keeps_its_order_and_boots_none() {
        // node1 and node3 in gpu, node3 without an address: one order, two lines.
        let mut inv =
            five_nodes(&format!("image-mode squashfs-http\nreplica gpu {B}\n"), ["gpu", "-", "gpu", "-", "-"]);
        inv.nodes.iter_mut().filter(|n| n.name == "node3").for_each(|n| n.address = None);
        let out = render(&inv);
        let sends = "\niseq ${netX/mac} 52:54:00:77:00:0b && goto replicas-1 ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0c && goto nodefiles ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0d && goto replicas-1-none ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0e && goto nodefiles ||\n\
                     iseq ${netX/mac} 52:54:00:77:00:0f && goto nodefiles ||\ngoto all\n";
        assert!(out.contains(sends), "{out}");
        let live =
            format!("clusterroot.live={B}default,http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=");
        let label = |name: &str| out.split(&format!("\n:{name}\n")).nth(1).unwrap().split("\n:").next().unwrap();
        assert!(label("replicas-1").contains(&format!("{live}172.23.199.225:/srv/nfs/nodes ")), "{out}");
        let none = label("replicas-1-none");
        assert!(none.contains(&format!("{live}none ")), "{out}");
        assert!(none.starts_with("# node3: the one replica of its groups, then the master.\n# Without an address: no node-files export, so none.\n"), "{out}");
        assert!(label("all").contains(" ip=dhcp clusterroot.nodefiles=none "), "{out}");
        assert!(label("nodefiles").contains(" ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes "), "{out}");
    }
}
