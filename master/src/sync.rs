//! `crctl sync`: where each rendered config goes on the master, what would change there, and
//! writing it. Planned first (no writes), so `--dry-run` prints exactly what a run would do.

use std::fmt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::inventory::Inventory;
use crate::render;

/// Where the master sees the shared image, read-write (it boots with `rw`): the TFTP root
/// and the node-files filesystem are below it, as the README's master fstab mounts them.
pub const DEFAULT_ROOT: &str = "/run/rootfs/lower";

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("creating the node directory {path} failed: {source}")]
    NodeDir { path: PathBuf, source: std::io::Error },
    #[error("writing {path} failed: {source}{hint}")]
    Write { path: PathBuf, source: std::io::Error, hint: &'static str },
}

/// One file `sync` keeps: where, what for, and its rendered text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub what: String,
    pub text: String,
    /// A node's directory on the node-files filesystem to create (mode 0700) if missing.
    pub node_dir: Option<PathBuf>,
}

/// What writing a target would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    New,
    Changed { added: usize, removed: usize },
    Unchanged,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::New => write!(f, "new"),
            Change::Changed { added, removed } => write!(f, "changed (+{added} -{removed} lines)"),
            Change::Unchanged => write!(f, "unchanged"),
        }
    }
}

/// The files for `inv`, below `root`: the master's dnsmasq.conf and exports and every node's
/// hosts in their node files, pxelinux.cfg/default in the TFTP root, and in the proxy setup
/// the site DHCP server's host lines next to the inventory.
pub fn targets(inv: &Inventory, root: &Path, inventory_path: &Path) -> Vec<Target> {
    let s = &inv.settings;
    let under = |p: &str| root.join(p.trim_start_matches('/'));
    let node_dir = |mac: &clusterroot::mac::MacAddress| under(&s.nodefiles).join(mac.to_string());
    let master_dir = node_dir(&inv.master().mac);
    let mut out = Vec::new();
    for c in render::all(inv) {
        let (path, dir) = match c.name {
            "dnsmasq" => (master_dir.join("dnsmasq.conf"), Some(master_dir.clone())),
            "exports" => (master_dir.join("exports"), Some(master_dir.clone())),
            "pxelinux" => (under(&s.tftp).join("pxelinux.cfg/default"), None),
            "site-dhcp" => (inventory_path.with_file_name("site-dhcp-hosts.conf"), None),
            _ => {
                // hosts: the same file in every node's node files.
                for n in &inv.nodes {
                    let dir = node_dir(&n.mac);
                    out.push(Target {
                        path: dir.join("hosts"),
                        what: format!("{}'s /etc/hosts", n.name),
                        text: c.text.clone(),
                        node_dir: Some(dir),
                    });
                }
                continue;
            }
        };
        out.push(Target { path, what: c.what.to_string(), text: c.text, node_dir: dir });
    }
    out
}

/// Lines in `new` not in `old`, and the other way round (as multisets).
fn line_counts(old: &str, new: &str) -> (usize, usize) {
    let mut rest: Vec<&str> = old.lines().collect();
    let mut added = 0;
    for l in new.lines() {
        match rest.iter().position(|o| *o == l) {
            Some(i) => {
                rest.swap_remove(i);
            }
            None => added += 1,
        }
    }
    (added, rest.len())
}

/// What writing `t` would change.
pub fn compare(t: &Target) -> Result<Change, SyncError> {
    match std::fs::read_to_string(&t.path) {
        Ok(old) if old == t.text => Ok(Change::Unchanged),
        Ok(old) => {
            let (added, removed) = line_counts(&old, &t.text);
            Ok(Change::Changed { added, removed })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Change::New),
        Err(source) => Err(SyncError::Read { path: t.path.clone(), source }),
    }
}

/// Writes `t`: its node directory first (0700: node files are secrets), then the file whole.
pub fn write(t: &Target) -> Result<(), SyncError> {
    if let Some(dir) = &t.node_dir {
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
                .map_err(|source| SyncError::NodeDir { path: dir.clone(), source })?;
        }
    }
    crate::files::replace(&t.path, t.text.as_bytes(), 0o644).map_err(|source| {
        let hint = if source.raw_os_error() == Some(30) {
            "; remount that filesystem read-write first (mount -o remount,rw ...), or name another tree with --root"
        } else {
            ""
        };
        SyncError::Write { path: t.path.clone(), source, hint }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("crctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn targets_land_in_node_files_and_tftp_root() {
        let inv = example::inventory();
        let t = targets(&inv, Path::new("/r"), Path::new("/etc/clusterroot/cluster"));
        let paths: Vec<String> = t.iter().map(|t| t.path.display().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/r/srv/nfs/nodes/52:54:00:77:00:e1/dnsmasq.conf",
                "/r/srv/nfs/nodes/52:54:00:77:00:e1/exports",
                "/r/srv/nfs/nodes/52:54:00:77:00:e1/hosts",
                "/r/srv/nfs/nodes/52:54:00:77:00:0b/hosts",
                "/r/srv/nfs/nodes/52:54:00:77:00:0c/hosts",
                "/r/srv/tftp/pxelinux.cfg/default",
            ]
        );
        let proxy = targets(&example::proxy(), Path::new("/r"), Path::new("/etc/clusterroot/cluster"));
        assert_eq!(proxy.last().unwrap().path, Path::new("/etc/clusterroot/site-dhcp-hosts.conf"));
    }

    #[test]
    fn sync_is_idempotent_and_says_what_changed() {
        let root = scratch("sync");
        let inv = example::inventory();
        let t = targets(&inv, &root, &root.join("cluster"));
        assert!(t.iter().all(|t| compare(t).unwrap() == Change::New));
        for x in &t {
            write(x).unwrap();
        }
        assert!(t.iter().all(|t| compare(t).unwrap() == Change::Unchanged));
        let dir = root.join("srv/nfs/nodes/52:54:00:77:00:0b");
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        // A node more: one line more in every hosts file, and a new node directory.
        let n3 = crate::inventory::Node::parse(&["node3", "52:54:00:77:00:0d", "172.23.199.13"]).unwrap();
        let t2 = targets(&inv.with_node(n3).unwrap(), &root, &root.join("cluster"));
        let changes: Vec<String> = t2.iter().map(|t| compare(t).unwrap().to_string()).collect();
        assert_eq!(
            changes,
            [
                "changed (+1 -0 lines)",
                "changed (+1 -0 lines)",
                "changed (+1 -0 lines)",
                "changed (+1 -0 lines)",
                "changed (+1 -0 lines)",
                "new",
                "unchanged"
            ]
        );
        std::fs::remove_dir_all(&root).unwrap();
    }
}
