//! `pxelinux.cfg/default` in the master's TFTP root, and `pxelinux.cfg/01-<mac>` for each
//! client with a node-files export or replicas of its own: the clients' kernel command line,
//! where each one's node files come from, and the order in which it tries its replicas.

use super::stamp;
use crate::inventory::{ImageMode, Inventory, Node, ReplicaUrl};

/// What a command line's `clusterroot.nodefiles=` names. The agent stops the boot when it
/// cannot get the node files a line names, so only a machine that has an export may name one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeFiles {
    /// The master's node-files directory, whose `<mac>` subdirectory it exports to the node.
    Export,
    /// `none`: a machine without such an export.
    None,
}

impl NodeFiles {
    /// That of `node`: an export when it has an address ([`super::exports`] exports its node
    /// files to that address alone), else none.
    pub fn of(node: &Node) -> Self {
        if node.address.is_some() {
            NodeFiles::Export
        } else {
            NodeFiles::None
        }
    }
}

/// The clients' kernel command line after `BOOTIF=`, which each boot loader adds in its own
/// way (pxelinux: `IPAPPEND 2`; iPXE: `${netX/mac}`), for a machine the inventory does not
/// list: pxelinux.cfg/default's, and boot.ipxe's label all. It has no node-files export, so
/// `clusterroot.nodefiles=none`; in the squashfs modes it tries the `*` replicas, then the
/// master.
pub fn command_line(inv: &Inventory) -> String {
    command_line_with(inv, &inv.replicas_for_all(), NodeFiles::None)
}

/// The command line of a client that tries `order`'s replicas, then the master, with
/// `nodefiles`: in the squashfs modes `clusterroot.live=` names each replica's URL of the
/// default file, then the master's. With replica lines, `clusterroot.nodefiles=` names the
/// master: the agent would otherwise ask the first URL's server, a replica, which holds no
/// node files (and must never be asked for a node's secrets).
pub fn command_line_with(inv: &Inventory, order: &[&ReplicaUrl], nodefiles: NodeFiles) -> String {
    let master = inv.master_address();
    let root = match inv.master_live_url() {
        None => format!(
            "nfsroot={master}:{root}{image}",
            root = inv.boot_export(),
            image = if inv.uses_store() { " clusterroot.image=default" } else { "" },
        ),
        Some(own) => {
            let pointer = crate::image::squashfs::POINTER;
            let urls: Vec<String> = order.iter().map(|r| format!("{r}{pointer}")).chain([own]).collect();
            format!("clusterroot.live={}", urls.join(","))
        }
    };
    let dir = &inv.settings.nodefiles;
    let nodefiles = match nodefiles {
        NodeFiles::None => "none".to_string(),
        NodeFiles::Export if inv.settings.replicas.is_empty() => dir.clone(),
        NodeFiles::Export => format!("{master}:{dir}"),
    };
    format!(
        "{root} ip=dhcp clusterroot.nodefiles={nodefiles} clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8"
    )
}

/// Where one client loads its image from: its replicas in `order`, then the master.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement<'a> {
    pub node: &'a Node,
    /// The replicas of its groups and the `*` ones, in the file's order.
    pub replicas: Vec<&'a ReplicaUrl>,
    /// Its place among the clients with the same `replicas` (0: the first in the file), and
    /// how many they are.
    pub place: usize,
    pub sharing: usize,
    /// The replicas it tries, in order, before the master: `replicas` from the one at `place`
    /// (modulo their count), the others following in turn.
    pub order: Vec<&'a ReplicaUrl>,
    /// Its node files: from its export when it has an address.
    pub nodefiles: NodeFiles,
}

impl Placement<'_> {
    /// The index in `replicas` of the one it tries first (0 without replicas).
    pub fn start(&self) -> usize {
        self.place.checked_rem(self.replicas.len()).unwrap_or(0)
    }
}

/// Every client's [`Placement`], in the file's order. Replicas come before the master so that
/// they carry the boots: were the master first, every node would load it, and a cold boot of
/// the cluster would take what the master's one link takes, whatever the replicas. The
/// clients with the same replicas take them in turn (the first starts at the first replica,
/// the second at the second, ...), so that their boots spread evenly over them.
pub fn placements(inv: &Inventory) -> Vec<Placement<'_>> {
    let lists: Vec<(&Node, Vec<&ReplicaUrl>)> = inv.clients().map(|n| (n, inv.replicas_of(n))).collect();
    // Each distinct list, with how many clients have it and how many were placed so far.
    let mut counts: Vec<(&[&ReplicaUrl], usize, usize)> = Vec::new();
    for (_, replicas) in &lists {
        match counts.iter_mut().find(|(r, _, _)| r == replicas) {
            Some((_, n, _)) => *n += 1,
            None => counts.push((replicas, 1, 0)),
        }
    }
    let mut out = Vec::new();
    for (node, replicas) in &lists {
        let Some((_, sharing, placed)) = counts.iter_mut().find(|(r, _, _)| r == replicas) else {
            continue; // every list was counted above
        };
        let mut p = Placement {
            node,
            replicas: replicas.clone(),
            place: *placed,
            sharing: *sharing,
            order: replicas.clone(),
            nodefiles: NodeFiles::of(node),
        };
        *placed += 1;
        let start = p.start();
        p.order.rotate_left(start);
        out.push(p);
    }
    out
}

/// Why `nodes` (sharing `p`'s replicas and first one) try them in `p.order`, for the comments
/// of the boot loaders' files: one sentence.
pub fn placement_reason(nodes: &[&str], p: &Placement) -> String {
    let who = nodes.join(", ");
    let one = nodes.len() == 1;
    let (them, their, they) = if one { ("it", "its", "it starts") } else { ("them", "their", "they start") };
    let n = p.replicas.len();
    match (n, p.sharing) {
        (0, _) => format!("{who}: no replica serves {them}: the master alone."),
        (1, _) => format!("{who}: the one replica of {their} groups, then the master."),
        (_, 1) => format!("{who}: the only node with these {n} replicas: from the first, then the master."),
        (_, sharing) => format!(
            "{who}: {among} the {sharing} nodes with these {n} replicas, which take them in turn in the \
             file's order (the first node starts at the first replica, the second at the second, ...): \
             {they} at the {}, then the others in turn, then the master.",
            ordinal(p.start() + 1),
            among = if one { "one of" } else { "among" },
        ),
    }
}

/// `1st`, `2nd`, `3rd`, `4th`, ..., `11th`, `21st`.
fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
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
        Some(how) if inv.settings.replicas.is_empty() => {
            format!("with its root the store's default squashfs file\n# {how} from the master ({master} here)")
        }
        Some(how) => format!(
            "with its root the store's default squashfs file\n# {how} from a replica (the inventory's replica lines) or, when none sends it, from\n\
             # the master ({master} here); pxelinux fetches the kernel and initramfs from the master"
        ),
    }
}

/// What the command line's parts mean, for the comments of both boot loaders' files.
pub fn command_line_comment(inv: &Inventory) -> String {
    if let Some(how) = squashfs_transport(inv) {
        let does =
            if how == "over NFS" { "the agent loop-mounts it over NFS" } else { "the agent downloads it into RAM" };
        let (live, nodefiles) = if inv.settings.replicas.is_empty() {
            ("on the master", "the master (the first URL's server)")
        } else {
            (
                "on each replica of the node's groups (replica lines), then on the master, tried in that order",
                "the master, named since the first URL's server is a replica, which holds no node files and is \
                 never asked for a node's secrets,",
            )
        };
        let mut out = super::comment(&format!(
            "ip=dhcp: the agent's own DHCP client asks the DHCP server again for the address (and host name). \
             clusterroot.live= (image-mode {mode}) names the default version's squashfs file (default, the \
             store's one-line pointer file) {live}: {does}. clusterroot.nodefiles= names the directory whose \
             <mac> subdirectory {nodefiles} exports to that node alone, with its node files (see the README's \
             node files: the image every client reads holds none), or none for a machine without that \
             export (one the inventory does not list, or a client without an address): the agent stops \
             the boot when it cannot get the node files named.",
            mode = inv.settings.image_mode,
        ));
        out.push_str("# console=: kernel and agent messages on the first serial port as well as the screen.\n");
        return out;
    }
    let mut out = String::from(
        "\
# ip=dhcp: the agent's own DHCP client asks the DHCP server again for the address (and host
# name); nfsroot= names the export of the master's shared root; clusterroot.nodefiles= the
# directory whose <mac> subdirectory the master exports to that node alone, with its node
# files (see the README's node files: the shared root every client reads holds none), or
# none for a machine without that export (one the inventory does not list, or a client
# without an address): the agent stops the boot when it cannot get the node files named.
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
# over TFTP (iPXE clients boot boot.ipxe over HTTP instead, with the same command lines):
# every client boots the kernel and initramfs that kernel.d/post-install/60-clusterroot puts
# into the TFTP root, {source}.
#
# The TFTP root also needs pxelinux.0 and ldlinux.c32 (Debian: /usr/lib/PXELINUX/pxelinux.0
# and /usr/lib/syslinux/modules/bios/ldlinux.c32; Void and Arch: /usr/lib/syslinux/bios/).
{own}#
# IPAPPEND 2 adds BOOTIF=01-<mac of the NIC that PXE-booted> to the command line: the agent
# then configures that NIC and picks the node files by it.
{comment}
{entry}",
        source = root_source(inv),
        own = super::comment(&format!(
            "pxelinux reads pxelinux.cfg/01-<mac> (e.g. 01-52-54-00-77-00-0b) before this file: crctl writes \
             one for each client with an address, whose line names its node files, {replicas}so this file, \
             with clusterroot.nodefiles=none, is for the other machines, which have no node-files \
             export{unlisted}.",
            replicas = if placements(inv).iter().any(|p| p.order != inv.replicas_for_all()) {
                "and for each whose replicas, or the one it tries first, differ from this file's, "
            } else {
                ""
            },
            unlisted = if inv.settings.replicas.is_empty() {
                ""
            } else {
                " (a machine the inventory does not list tries the replica * lines in order)"
            },
        )),
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

/// The per-node configs, by file name below the TFTP root: one for each client whose command
/// line differs from default's: it has an address, so an export of its node files to name (see
/// [`NodeFiles`]), or its replicas, or the one it tries first, differ (its groups have
/// `replica` lines of their own, or it shares its replicas with nodes before it: see
/// [`placements`]). None when no client's do.
pub fn per_node(inv: &Inventory) -> Vec<(String, String)> {
    let all = inv.replicas_for_all();
    let mut out = Vec::new();
    for p in placements(inv).iter().filter(|p| p.order != all || p.nodefiles != NodeFiles::None) {
        let name = node_file_name(p.node);
        let nodefiles = "clusterroot.nodefiles=, which names the export of its node files (default's: none)";
        let replicas = format!(
            "the replicas in clusterroot.live={groups}, in this order:",
            groups = if p.node.groups.is_empty() {
                String::new()
            } else {
                format!(" (its groups: {})", p.node.groups.join(","))
            },
        );
        let but = match (p.nodefiles, p.order != all) {
            (NodeFiles::Export, false) => format!("{nodefiles}."),
            (NodeFiles::Export, true) => format!("{nodefiles}, and {replicas}"),
            (NodeFiles::None, _) => replicas,
        };
        let reason = if p.order == all { String::new() } else { super::comment(&placement_reason(&[&p.node.name], p)) };
        let mut text = stamp("#");
        text.push_str(&format!(
            "# <TFTP root>/{name} on a clusterroot master: the config of\n{about}{reason}\n{entry}",
            about = super::comment(&format!(
                "{node}, which pxelinux reads before pxelinux.cfg/default. It is default's but for {but}",
                node = p.node.name,
            )),
            entry = entry(&command_line_with(inv, &p.order, p.nodefiles)),
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
pub(crate) mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn the_shipped_config_is_the_examples_rendering() {
        assert_eq!(render(&example::inventory()), include_str!("../../../mkinitcpio/pxelinux.cfg/default"));
    }

    #[test]
    fn the_shipped_node_configs_are_the_examples_rendering() {
        let want = [
            (
                "pxelinux.cfg/01-52-54-00-77-00-0b",
                include_str!("../../../mkinitcpio/pxelinux.cfg/01-52-54-00-77-00-0b"),
            ),
            (
                "pxelinux.cfg/01-52-54-00-77-00-0c",
                include_str!("../../../mkinitcpio/pxelinux.cfg/01-52-54-00-77-00-0c"),
            ),
        ]
        .map(|(n, t)| (n.to_string(), t.to_string()));
        assert_eq!(per_node(&example::inventory()), want);
    }

    #[test]
    fn unlisted_machines_boot_none_and_each_client_with_an_address_its_export() {
        let inv = example::inventory();
        let none =
            "  APPEND nfsroot=172.23.199.225:/srv/nfs/root ip=dhcp clusterroot.nodefiles=none clusterroot.timeout=90 ";
        assert!(render(&inv).contains(&format!("\n{none}")), "{}", render(&inv));
        let files = per_node(&inv);
        assert_eq!(files.len(), 2, "{files:?}");
        for ((name, text), (node, mac)) in files.iter().zip([("node1", "0b"), ("node2", "0c")]) {
            assert_eq!(name, &format!("pxelinux.cfg/01-52-54-00-77-00-{mac}"));
            assert!(text.contains(&format!("\n# {node}, which pxelinux reads before pxelinux.cfg/default. It is default's but for\n# clusterroot.nodefiles=, which names the export of its node files (default's: none).\n\nDEFAULT cluster\n")), "{text}");
            assert!(text.contains("\n  APPEND nfsroot=172.23.199.225:/srv/nfs/root ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes clusterroot.timeout=90 "), "{text}");
        }
    }

    #[test]
    fn a_client_without_an_address_boots_default() {
        let text = example::CLUSTER.replace("172.23.199.12   compute", "- compute");
        let inv = Inventory::parse(&text).unwrap();
        let names: Vec<String> = per_node(&inv).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["pxelinux.cfg/01-52-54-00-77-00-0b"]);
        assert!(render(&inv).contains(" ip=dhcp clusterroot.nodefiles=none "));
        // None with an address: default alone.
        let inv = Inventory::parse(&text.replace("172.23.199.11   compute", "- compute")).unwrap();
        assert!(per_node(&inv).is_empty());
    }

    #[test]
    fn with_replicas_a_node_s_file_keeps_its_order_and_its_node_files() {
        let mut inv =
            five_nodes(&format!("image-mode squashfs-http\nreplica gpu {B}\n"), ["gpu", "-", "gpu", "-", "-"]);
        inv.nodes.iter_mut().filter(|n| n.name == "node3").for_each(|n| n.address = None);
        let files = per_node(&inv);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        // node3, without an address, gets a file for its replica alone.
        assert_eq!(names, ["0b", "0c", "0d", "0e", "0f"].map(|m| format!("pxelinux.cfg/01-52-54-00-77-00-{m}")));
        let live = format!("\n  APPEND clusterroot.live={B}default,http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=");
        assert!(files[0].1.contains(&format!("{live}172.23.199.225:/srv/nfs/nodes ")), "{}", files[0].1);
        assert!(files[0].1.contains("\n# clusterroot.nodefiles=, which names the export of its node files (default's: none), and\n# the replicas in clusterroot.live= (its groups: gpu), in this order:\n# node1: the one replica of its groups, then the master.\n"), "{}", files[0].1);
        assert!(files[2].1.contains(&format!("{live}none ")), "{}", files[2].1);
        assert!(files[2].1.contains("\n# node3, which pxelinux reads before pxelinux.cfg/default. It is default's but for the\n# replicas in clusterroot.live= (its groups: gpu), in this order:\n"), "{}", files[2].1);
        for (_, text) in &files[1..2] {
            assert!(text.contains("\n  APPEND clusterroot.live=http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes "), "{text}");
        }
        assert!(render(&inv).contains(
            "\n  APPEND clusterroot.live=http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=none "
        ));
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
        assert!(nfs.starts_with("clusterroot.live=nfs://172.23.199.225/srv/nfs/images/squashfs/default ip=dhcp clusterroot.nodefiles=none "), "{nfs}");
        assert_eq!(command_line(&with("image-mode tree\n")), tree);
        // The store at /: no double slash.
        let top = Inventory::parse(
            &example::CLUSTER.replace("master master\n", "master master\nimages /\nimage-mode squashfs-nfs\n"),
        )
        .unwrap();
        assert!(command_line(&top).starts_with("clusterroot.live=nfs://172.23.199.225/squashfs/default "));
        let out = render(&with("image-mode squashfs-nfs\n"));
        assert!(out.contains("\n# over NFS from the master (172.23.199.225 here).\n"), "{out}");
        // The clients' own files: the master's node files, unnamed (the first URL's server).
        let files = per_node(&with("image-mode squashfs-nfs\n"));
        assert_eq!(files.len(), 2);
        assert!(files.iter().all(|(_, t)| t.contains("\n  APPEND clusterroot.live=nfs://172.23.199.225/srv/nfs/images/squashfs/default ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes ")), "{files:?}");
    }

    /// The example cluster on a store with `lines` after the master line, and five clients,
    /// node1 to node5 (MACs 52:54:00:77:00:0b to 0f), in `groups` (`-`: none).
    pub(crate) fn five_nodes(lines: &str, groups: [&str; 5]) -> Inventory {
        let mut text: String = example::CLUSTER
            .replace("master master\n", &format!("master master\nimages /srv/nfs/images\n{lines}"))
            .lines()
            .filter(|l| !l.starts_with("node node"))
            .map(|l| format!("{l}\n"))
            .collect();
        for (i, g) in groups.iter().enumerate() {
            let g = if *g == "-" { "" } else { g };
            text.push_str(&format!("node node{} 52:54:00:77:00:{:02x} 172.23.199.{} {g}\n", i + 1, 0x0b + i, 11 + i));
        }
        Inventory::parse(&text).unwrap()
    }

    pub(crate) const A: &str = "http://172.23.199.2/images/";
    pub(crate) const B: &str = "http://172.23.199.3:8080/mirror/images/";
    pub(crate) const C: &str = "http://172.23.199.4/sq/";

    /// Each client's replicas in the order it tries them, as URLs.
    fn orders(inv: &Inventory) -> Vec<(String, Vec<String>)> {
        placements(inv).iter().map(|p| (p.node.name.clone(), p.order.iter().map(|r| r.to_string()).collect())).collect()
    }

    #[test]
    fn five_nodes_take_three_replicas_in_turn() {
        let inv =
            five_nodes(&format!("image-mode squashfs-http\nreplica * {A}\nreplica * {B}\nreplica * {C}\n"), ["-"; 5]);
        let want = [[A, B, C], [B, C, A], [C, A, B], [A, B, C], [B, C, A]];
        let got = orders(&inv);
        for (i, (name, order)) in got.iter().enumerate() {
            assert_eq!(
                (name.as_str(), order.as_slice()),
                (format!("node{}", i + 1).as_str(), &want[i].map(String::from)[..])
            );
        }
        let p = placements(&inv);
        assert_eq!(
            p.iter().map(|p| (p.place, p.sharing, p.start())).collect::<Vec<_>>(),
            [(0, 5, 0), (1, 5, 1), (2, 5, 2), (3, 5, 0), (4, 5, 1)]
        );
        // Default: a machine the inventory does not list, from the first; the master last.
        let live = |urls: [&str; 3], nodefiles: &str| {
            format!("clusterroot.live={}default,{}default,{}default,http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles={nodefiles} ", urls[0], urls[1], urls[2])
        };
        assert!(render(&inv).contains(&format!("\n  APPEND {}", live([A, B, C], "none"))), "{}", render(&inv));
        // A file for each node, all with addresses: node2, node3 and node5 start elsewhere.
        let files = per_node(&inv);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["0b", "0c", "0d", "0e", "0f"].map(|m| format!("pxelinux.cfg/01-52-54-00-77-00-{m}")));
        for ((_, text), urls) in files.iter().zip(want) {
            assert!(text.contains(&format!("\n  APPEND {}", live(urls, "172.23.199.225:/srv/nfs/nodes"))), "{text}");
        }
        let why = "\n# the replicas in clusterroot.live=, in this order:\n\
                   # node3: one of the 5 nodes with these 3 replicas, which take them in turn in the file's\n\
                   # order (the first node starts at the first replica, the second at the second, ...): it\n\
                   # starts at the 3rd, then the others in turn, then the master.\n\nDEFAULT cluster\n";
        assert!(files[2].1.contains(why), "{}", files[2].1);
        assert!(!files[0].1.contains("in this order"), "{}", files[0].1);
    }

    #[test]
    fn nodes_whose_groups_have_replicas_get_a_file_of_their_own() {
        // gpu's line first: node2's replicas in the file's order are gpu's, then *.
        let inv = five_nodes(
            &format!("image-mode squashfs-http\nreplica gpu {B}\nreplica * {A}\n"),
            ["compute", "compute,gpu", "compute", "-", "compute"],
        );
        let files = per_node(&inv);
        assert_eq!(files.len(), 5, "{files:?}");
        let (name, text) = &files[1];
        assert_eq!(name, "pxelinux.cfg/01-52-54-00-77-00-0c");
        assert!(text.contains(&format!("\n  APPEND clusterroot.live={B}default,{A}default,http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes ")), "{text}");
        let why = "\n# node2, which pxelinux reads before pxelinux.cfg/default. It is default's but for\n\
                   # clusterroot.nodefiles=, which names the export of its node files (default's: none), and\n\
                   # the replicas in clusterroot.live= (its groups: compute,gpu), in this order:\n\
                   # node2: the only node with these 2 replicas: from the first, then the master.\n";
        assert!(text.contains(why), "{text}");
        // One * replica: the others' files, and default, the replica first, the master last.
        let rest = format!("\n  APPEND clusterroot.live={A}default,http://172.23.199.225/images/default ip=dhcp clusterroot.nodefiles=");
        for (i, (_, text)) in files.iter().enumerate().filter(|(i, _)| *i != 1) {
            assert!(text.contains(&format!("{rest}172.23.199.225:/srv/nfs/nodes ")), "{i}: {text}");
        }
        let default = render(&inv);
        assert!(default.contains(&format!("{rest}none ")), "{default}");
        assert!(default.contains("\n# writes one for each client with an address, whose line names its node files, and for each\n# whose replicas, or the one it tries first, differ from this file's, "), "{default}");
        assert!(default.contains("\n# over HTTP from a replica (the inventory's replica lines) or, when none sends it, from\n# the master (172.23.199.225 here)"), "{default}");
    }

    #[test]
    fn group_replicas_alone_leave_the_others_on_the_master_whose_node_files_are_named() {
        let inv = five_nodes(
            "image-mode squashfs-nfs\nreplica gpu nfs://172.23.199.3/tank/sq/\n",
            ["gpu", "-", "gpu", "-", "-"],
        );
        assert_eq!(
            orders(&inv).iter().map(|(_, o)| o.len()).collect::<Vec<_>>(),
            [1, 0, 1, 0, 0],
            "one replica: no rotation, node1 and node3 both start at it"
        );
        let default = render(&inv);
        assert!(default.contains("\n  APPEND clusterroot.live=nfs://172.23.199.225/srv/nfs/images/squashfs/default ip=dhcp clusterroot.nodefiles=none "), "{default}");
        let files = per_node(&inv);
        assert_eq!(files.len(), 5, "{files:?}");
        for (i, (_, text)) in files.iter().enumerate() {
            let replica = if i == 0 || i == 2 { "nfs://172.23.199.3/tank/sq/default," } else { "" };
            assert!(text.contains(&format!("\n  APPEND clusterroot.live={replica}nfs://172.23.199.225/srv/nfs/images/squashfs/default ip=dhcp clusterroot.nodefiles=172.23.199.225:/srv/nfs/nodes ")), "{text}");
        }
        // Without replica lines the node files' server is the first URL's, the master: unnamed.
        let none = five_nodes("image-mode squashfs-nfs\n", ["gpu", "-", "gpu", "-", "-"]);
        let client = command_line_with(&none, &[], NodeFiles::Export);
        assert!(client.contains(" clusterroot.nodefiles=/srv/nfs/nodes "), "{client}");
        assert!(command_line(&none).contains(" clusterroot.nodefiles=none "));
    }

    #[test]
    fn tree_mode_has_no_replicas_and_names_no_server() {
        let inv = five_nodes("", ["gpu", "-", "gpu", "-", "-"]);
        let line = "nfsroot=172.23.199.225:/srv/nfs/images clusterroot.image=default ip=dhcp clusterroot.nodefiles=/srv/nfs/nodes clusterroot.timeout=90 console=tty0 console=ttyS0,115200n8";
        assert_eq!(command_line(&inv), line.replace("/srv/nfs/nodes", "none"));
        assert_eq!(command_line_with(&inv, &[], NodeFiles::Export), line);
        assert!(placements(&inv).iter().all(|p| p.order.is_empty()));
        let files = per_node(&inv);
        assert_eq!(files.len(), 5);
        assert!(files.iter().all(|(_, t)| t.contains(&format!("\n  APPEND {line}\n")) && !t.contains("replica")));
        assert!(!render(&inv).contains("the one it tries first"));
    }

    #[test]
    fn ordinals() {
        let got: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(ordinal).into();
        assert_eq!(got, ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]);
    }
}
