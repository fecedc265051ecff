//! The command line: parsed into a [`Command`] with no I/O, then run.

use std::path::{Path, PathBuf};

use crate::inventory::{self, Inventory, InventoryError, Node};
use crate::render;
use crate::sync::{self, Change, SyncError};

pub const HELP: &str = "\
crctl: the clusterroot master's tool

usage: crctl [-f FILE] COMMAND [ARGS]

The inventory (-f FILE, default /etc/clusterroot/cluster) is one plain file: the cluster's
settings, then one line per node, the master included. crctl changes it only through the
commands below, checks it whole before writing, and writes it whole (an error leaves it as
it was). Every config the cluster needs is rendered from it and never edited by hand.

Commands:
  node add NAME MAC [ADDRESS|-] [GROUP,...]
                 add a node: NAME is its host name, MAC that of the NIC it boots from,
                 ADDRESS its fixed address in the cluster network (- or none: the DHCP
                 server's choice; such a node gets no node-files export)
  node list      the nodes: name, MAC, address, groups; the master marked
  node remove NAME
                 remove a node (its node files stay; sync names them)
  render NODE [--root DIR]
                 the /etc NODE would boot with: each file its node files add to or
                 replace in the image's /etc (DIR/etc), and where it comes from (its
                 node-files directory, an archive, or the agent at boot: machine-id,
                 resolv.conf). The node files are applied by the agent's own code into a
                 private scratch directory; nothing on the master changes.
  diff NODE [--state DIR] [--root DIR]
                 what a reboot would change on NODE: the image version it booted against
                 the one it would boot now (the store's default, unless its command line
                 names a version), and each file its node files put in /etc at boot
                 against what they hold now (new, gone, changed: contents or mode). DIR is
                 a copy of NODE's boot record, /run/clusterroot (state and node-files, which
                 the agent writes at every boot): e.g.
                   scp -r root@node1:/run/clusterroot /tmp/node1
                   crctl diff node1 --state /tmp/node1
                 Default /run/clusterroot: this machine's own record (crctl diff on the
                 master for the master). Exit status 3 when a reboot would change something.
  generalize [--dry-run] [--root DIR]
                 make the master's installed system (DIR, default /run/rootfs/lower) the
                 cluster's image: move, never copy, the master's own files from DIR/etc
                 into its node files (fstab, zfs/zpool.cache, hostid, hostname,
                 machine-id, exports, dnsmasq.conf, ssh/ssh_host_*,
                 NetworkManager/system-connections/*) and write the clients' fstab (/tmp,
                 /home from the master). A file already in the node files as it is is only
                 deleted from the image; one that differs stops it before any change.
                 --dry-run prints the steps and does nothing.
  show CONFIG    print one rendered config: dnsmasq, exports, hosts, pxelinux,
                 site-dhcp (proxy setup), inventory
  sync [--dry-run] [--root DIR]
                 write every rendered config where it belongs below DIR (default
                 /run/rootfs/lower, the master's read-write view of the shared image):
                   <nodefiles>/<master MAC>/dnsmasq.conf, .../exports
                   <nodefiles>/<MAC>/hostname and hosts for every node
                   <nodefiles>/<MAC>/machine-id and ssh/ssh_host_{ed25519,ecdsa,rsa}_key
                     for every node: made once when missing (ssh-keygen), then kept,
                     so no two nodes share them
                   <tftp>/pxelinux.cfg/default
                   site-dhcp-hosts.conf next to the inventory (dhcp proxy)
                 and print, for each, new, changed (+A -R lines) or unchanged. A new
                 node's directory is made with mode 0700.
                 --dry-run prints the same and writes nothing. Running it twice changes
                 nothing the second time.
  image list     the versions of the shared root in the image store: version, the default
                 marked, when it was made (UTC), the nodes running it (the NFS server's
                 clients by the version in their NFSv4 identity, and the master by its
                 /run/clusterroot/state); then the working copy, nodes whose version is
                 unknown, and a default that names no version
  image import DIR [--dry-run]
                 copy the root tree DIR (never moved: e.g. a plain /srv/nfs/root) into the
                 next version; the default if there is none yet
  image edit [--dry-run] [-- CMD [ARG...]]
                 make the working copy <store>/edit from the default version if there is
                 none (a copy, or a ZFS clone), then run CMD in it (default: $SHELL, or
                 /bin/sh) chrooted, with /proc, /sys, /dev and /dev/pts bound in a mount
                 namespace of its own (the binds end with it); a CMD that fails is exit 1
  image publish [--no-default] [--dry-run]
                 the working copy becomes the next version, and the default unless
                 --no-default; nodes boot it from their next boot on
  image discard [--dry-run]
                 drop the working copy
  image default VERSION [--dry-run]
                 point default at VERSION atomically (also the rollback); running nodes
                 keep theirs until they reboot
  image gc [--dry-run]
                 remove every version that no node runs and that is neither the default nor
                 the version before it; refuses, removing nothing, when it cannot tell what
                 every node runs (no /proc/fs/nfsd/clients, or a node booted without a
                 version); a client whose lease ran out (nfsd's courtesy clients: off or
                 cut off) counts as running nothing
  image export [--dry-run]
                 a ZFS store's versions are datasets, which the store's export does not
                 reach: write an export line for each to
                 /etc/exports.d/clusterroot-images.exports, then run exportfs -ra. Run it
                 at the master's boot, before clients come; import, publish and gc on a
                 ZFS store run it themselves. A directory store needs no line.
                 Every image command takes --root DIR as sync does (default
                 /run/rootfs/lower): the store is DIR + the inventory's images PATH. A
                 store that is a ZFS dataset's mountpoint keeps each version as a child
                 dataset (edit is a clone: nothing is copied).
  help           this text

Inventory lines ('#' starts a comment; comments are kept):
  network CIDR             the cluster network, e.g. 172.23.199.0/24 (required)
  dhcp server|proxy        who gives the addresses: the master's dnsmasq (default), or
                           another server, the master answering PXE as a proxy
  range FIRST LAST         addresses for machines not listed (dhcp server)
  master NAME              the node that serves the others (required; a node line too)
  root PATH                the shared root's export (default /srv/nfs/root)
  nodefiles PATH           the node-files export, one <MAC> directory per node
                           (default /srv/nfs/nodes)
  home PATH                /home's export (default /home)
  tftp PATH                the TFTP root (default /srv/tftp)
  images PATH              the image store: a directory per version, default, edit
                           (default /srv/nfs/images)
  node NAME MAC [ADDRESS|-] [GROUP,...]

Exit status: 0 done (diff: a reboot changes nothing); 3 diff: a reboot would change NODE;
1 the inventory or a config could not be read, checked or written, an
image command failed or refused, or image edit's CMD failed (the message names the line,
file or version and the fix); 2 a malformed command line.
";

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum Command {
    Help,
    NodeAdd(Node),
    NodeList,
    NodeRemove(String),
    Show(String),
    Render { node: String, root: PathBuf },
    Diff { node: String, root: PathBuf, state: PathBuf },
    Generalize { dry_run: bool, root: PathBuf },
    Sync { dry_run: bool, root: PathBuf },
    Image(crate::image::Request),
}

/// The parsed command line: the inventory's path and the command.
#[derive(Debug, PartialEq, Eq)]
pub struct Invocation {
    pub inventory: PathBuf,
    pub command: Command,
}

const CONFIGS: [&str; 9] =
    ["dnsmasq", "exports", "hosts", "lighttpd", "nfs", "ipxe", "pxelinux", "site-dhcp", "inventory"];

/// Parses the arguments (after the program name). No I/O.
pub fn parse(args: &[String]) -> Result<Invocation, String> {
    let mut inventory = PathBuf::from(inventory::DEFAULT_PATH);
    let mut rest: Vec<&str> = args.iter().map(String::as_str).collect();
    if let ["-f", file, more @ ..] = rest.as_slice() {
        inventory = PathBuf::from(file);
        rest = more.to_vec();
    }
    let command = match rest.as_slice() {
        [] | ["help"] | ["-h"] | ["--help"] => Command::Help,
        ["node", "add", words @ ..] => Command::NodeAdd(Node::parse(words)?),
        ["node", "list"] => Command::NodeList,
        ["node", "remove", name] => Command::NodeRemove(name.to_string()),
        ["show", config] if CONFIGS.contains(config) => Command::Show(config.to_string()),
        ["show", other] => return Err(format!("no config named '{other}' (want one of {})", CONFIGS.join(", "))),
        ["render", node, opts @ ..] => {
            let root = match opts {
                [] => PathBuf::from(sync::DEFAULT_ROOT),
                ["--root", dir] => PathBuf::from(dir),
                _ => return Err("render: usage: crctl render NODE [--root DIR]".into()),
            };
            Command::Render { node: node.to_string(), root }
        }
        ["diff", node, opts @ ..] => {
            let (mut root, mut state) = (PathBuf::from(sync::DEFAULT_ROOT), PathBuf::from(crate::diff::RECORD_DIR));
            let mut it = opts.iter();
            while let Some(o) = it.next() {
                let slot = match *o {
                    "--root" => &mut root,
                    "--state" => &mut state,
                    _ => return Err("diff: usage: crctl diff NODE [--state DIR] [--root DIR]".into()),
                };
                *slot = PathBuf::from(it.next().ok_or(format!("diff: {o} needs a directory"))?);
            }
            Command::Diff { node: node.to_string(), root, state }
        }
        ["sync", opts @ ..] => {
            let (dry_run, root) = dry_run_and_root("sync", opts)?;
            Command::Sync { dry_run, root }
        }
        ["generalize", opts @ ..] => {
            let (dry_run, root) = dry_run_and_root("generalize", opts)?;
            Command::Generalize { dry_run, root }
        }
        ["image", words @ ..] => Command::Image(crate::image::parse(words)?),
        other => return Err(format!("unknown command '{}'", other.join(" "))),
    };
    Ok(Invocation { inventory, command })
}

/// `[--dry-run|-n] [--root DIR]`.
fn dry_run_and_root(command: &str, opts: &[&str]) -> Result<(bool, PathBuf), String> {
    let (mut dry_run, mut root) = (false, PathBuf::from(sync::DEFAULT_ROOT));
    let mut it = opts.iter();
    while let Some(o) = it.next() {
        match *o {
            "--dry-run" | "-n" => dry_run = true,
            "--root" => root = PathBuf::from(it.next().ok_or(format!("{command}: --root needs a directory"))?),
            other => return Err(format!("{command}: unknown option '{other}'")),
        }
    }
    Ok((dry_run, root))
}

#[derive(Debug, thiserror::Error)]
enum RunError {
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(transparent)]
    Preview(#[from] crate::preview::PreviewError),
    #[error(transparent)]
    Generalize(#[from] crate::generalize::GeneralizeError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Diff(#[from] crate::diff::DiffError),
}

/// Runs the command line; returns the exit status.
pub fn main(args: &[String]) -> u8 {
    let inv = match parse(args) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("crctl: {e}; see crctl help");
            return 2;
        }
    };
    match run(&inv, &mut std::io::stdout().lock()) {
        Ok(Outcome::Done) => 0,
        Ok(Outcome::RebootChanges) => 3,
        Err(e) => {
            eprintln!("crctl: {e}");
            1
        }
    }
}

/// How a command that did its work ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    /// `diff`: a reboot would change the node.
    RebootChanges,
}

fn run(inv: &Invocation, out: &mut dyn std::io::Write) -> Result<Outcome, RunError> {
    let path = inv.inventory.as_path();
    match &inv.command {
        Command::Help => {
            let _ = out.write_all(HELP.as_bytes());
        }
        Command::NodeAdd(node) => {
            let new = Inventory::load(path)?.with_node(node.clone())?;
            new.store(path)?;
            let _ = writeln!(out, "added {} ({}); crctl sync renders the configs", node.name, node.mac);
        }
        Command::NodeRemove(name) => {
            let new = Inventory::load(path)?.without_node(name)?;
            new.store(path)?;
            let _ = writeln!(out, "removed {name}; crctl sync renders the configs (its node files stay)");
        }
        Command::NodeList => list(&Inventory::load(path)?, out),
        Command::Show(name) => {
            let loaded = Inventory::load(path)?;
            let text = if name == "inventory" {
                Some(loaded.render())
            } else {
                render::all(&loaded).into_iter().find(|c| c.name == name).map(|c| c.text)
            };
            match text {
                Some(t) => {
                    let _ = out.write_all(t.as_bytes());
                }
                None => {
                    let _ = writeln!(out, "# {name}: nothing to render (dhcp server: the master gives the addresses)");
                }
            }
        }
        Command::Render { node, root } => {
            let p = crate::preview::preview(&Inventory::load(path)?, root, node)?;
            let _ = write!(out, "{p}");
        }
        Command::Diff { node, root, state } => {
            let d = crate::diff::diff(&Inventory::load(path)?, root, node, state)?;
            let _ = write!(out, "{d}");
            if d.changes() {
                return Ok(Outcome::RebootChanges);
            }
        }
        Command::Generalize { dry_run, root } => {
            // Plan: every step checked before the first change.
            let steps = crate::generalize::plan(&Inventory::load(path)?, root)?;
            for s in &steps {
                let _ = writeln!(out, "{s}");
            }
            if steps.is_empty() {
                let _ = writeln!(out, "nothing to do: {} is generalized", root.display());
            } else if *dry_run {
                let _ = writeln!(out, "(dry run: nothing changed)");
            } else {
                crate::generalize::execute(&steps)?;
            }
        }
        Command::Sync { dry_run, root } => sync_all(&Inventory::load(path)?, path, root, *dry_run, out)?,
        Command::Image(req) => crate::image::run(&Inventory::load(path)?, req, &crate::image::Host::default(), out)?,
    }
    Ok(Outcome::Done)
}

fn list(inv: &Inventory, out: &mut dyn std::io::Write) {
    let _ = writeln!(out, "{:<12} {:<17} {:<15} groups", "name", "MAC", "address");
    for n in &inv.nodes {
        let address = n.address.map_or("-".to_string(), |a| a.to_string());
        let mut groups = n.groups.join(",");
        if n.name == inv.settings.master {
            groups = if groups.is_empty() { "(master)".into() } else { format!("{groups} (master)") };
        }
        let _ = writeln!(out, "{:<12} {:<17} {:<15} {}", n.name, n.mac.to_string(), address, groups);
    }
}

fn sync_all(
    inv: &Inventory,
    path: &Path,
    root: &Path,
    dry_run: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), RunError> {
    // Plan: compare every target before writing any.
    let targets = sync::targets(inv, root, path);
    let mut plan = Vec::new();
    for t in &targets {
        plan.push((t, sync::compare(t)?));
    }
    // Execute, saying what each file was.
    for (t, change) in plan {
        let _ = writeln!(out, "{:<24} {} ({})", change.to_string(), t.path.display(), t.what);
        if !dry_run && change != Change::Unchanged {
            sync::write(t)?;
        }
    }
    // Node directories that belong to no node any more: named, left alone.
    let dir = root.join(inv.settings.nodefiles.trim_start_matches('/'));
    if let Ok(entries) = std::fs::read_dir(&dir) {
        let known: Vec<String> = inv.nodes.iter().map(|n| n.mac.to_string()).collect();
        let mut stale: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.parse::<clusterroot::mac::MacAddress>().is_ok() && !known.contains(n))
            .collect();
        stale.sort();
        for s in stale {
            let _ = writeln!(out, "note: {} belongs to no node of the inventory (left alone)", dir.join(s).display());
        }
    }
    if dry_run {
        let _ = writeln!(out, "(dry run: nothing written)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn parses_commands() {
        let i = parse(&args("-f /tmp/c node add n3 52:54:00:77:00:0d 172.23.199.13 a,b")).unwrap();
        assert_eq!(i.inventory, Path::new("/tmp/c"));
        assert!(matches!(i.command, Command::NodeAdd(ref n) if n.name == "n3" && n.groups == ["a", "b"]));
        assert_eq!(
            parse(&args("sync -n")).unwrap().command,
            Command::Sync { dry_run: true, root: DEFAULT_ROOT.into() }
        );
        assert_eq!(parse(&args("")).unwrap().command, Command::Help);
        assert_eq!(
            parse(&args("show bogus")).unwrap_err(),
            "no config named 'bogus' (want one of dnsmasq, exports, hosts, lighttpd, nfs, ipxe, pxelinux, site-dhcp, inventory)"
        );
        assert_eq!(
            parse(&args("node add n3 zz")).unwrap_err(),
            "'zz' is not a MAC address (expected six hex pairs such as 52:54:00:12:34:56)"
        );
        assert_eq!(parse(&args("frob")).unwrap_err(), "unknown command 'frob'");
    }

    use crate::sync::DEFAULT_ROOT;

    #[test]
    fn help_and_man_page_name_every_command() {
        let man = include_str!("../crctl.8");
        for cmd in [
            "node add",
            "node list",
            "node remove",
            "sync",
            "render",
            "generalize",
            "show",
            "image list",
            "image import",
            "image edit",
            "image publish",
            "image discard",
            "image default",
            "image gc",
            "image export",
        ] {
            assert!(HELP.contains(&format!("  {cmd}")), "help lacks {cmd}");
            assert!(
                man.contains(&format!(".B {cmd}"))
                    || man.contains(&format!(".BR {cmd}"))
                    || man.contains(&format!(".BI \"{cmd} ")),
                "man page lacks {cmd}"
            );
        }
    }

    #[test]
    fn a_refused_change_leaves_the_file_as_it_was() {
        let dir = std::env::temp_dir().join(format!("crctl-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cluster");
        std::fs::write(&file, crate::render::example::CLUSTER).unwrap();
        let f = file.display().to_string();
        let mut out = Vec::new();
        // Duplicate MAC, duplicate address, malformed MAC: an error naming it, the file unchanged.
        for (cmd, want) in [
            ("node add node9 52:54:00:77:00:0b 172.23.199.19", "MAC 52:54:00:77:00:0b belongs to both node1 and node9"),
            ("node add node9 52:54:00:77:00:19 172.23.199.11", "address 172.23.199.11 belongs to both node1 and node9"),
            ("node remove master", "the master master cannot be removed"),
        ] {
            let inv = parse(&args(&format!("-f {f} {cmd}"))).unwrap();
            let e = run(&inv, &mut out).unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
            assert_eq!(std::fs::read_to_string(&file).unwrap(), crate::render::example::CLUSTER);
        }
        assert_eq!(main(&args(&format!("-f {f} node add node9 52:54:00:77:00"))), 2);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), crate::render::example::CLUSTER);
        // Accepted: the new line at the end, the rest as it was.
        run(&parse(&args(&format!("-f {f} node add node3 52:54:00:77:00:0d 172.23.199.13"))).unwrap(), &mut out)
            .unwrap();
        let now = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            now,
            format!("{}node node3      52:54:00:77:00:0d 172.23.199.13\n", crate::render::example::CLUSTER)
        );
        let mut listed = Vec::new();
        run(&parse(&args(&format!("-f {f} node list"))).unwrap(), &mut listed).unwrap();
        let listed = String::from_utf8(listed).unwrap();
        assert!(listed.contains("master       52:54:00:77:00:e1 172.23.199.225  (master)\n"), "{listed}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
