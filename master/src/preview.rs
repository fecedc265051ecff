//! `crctl render NODE`: the `/etc` a node would boot with, as the files its node files add to
//! or replace in the image's `/etc`, and where each comes from. The node files are applied by
//! the agent's own code ([`clusterroot::nodefiles::apply`]) into a private scratch tree, so
//! what is shown is what the agent would do.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clusterroot::kmsg::Log;

use crate::inventory::{Inventory, Node};

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no node is named {0}; `crctl node list` shows them")]
    NoSuchNode(String),
    #[error("making the scratch directory {path} failed: {source}")]
    Scratch { path: PathBuf, source: std::io::Error },
    #[error("applying {node}'s node files from {from} failed: {source}")]
    Apply { node: String, from: String, source: clusterroot::nodefiles::NodeFilesError },
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("recording {node}'s node files: {source}")]
    Record { node: String, source: clusterroot::manifest::ManifestError },
}

/// How a path of the node's `/etc` differs from the image's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Added,
    Replaced,
}

/// One path of the node's `/etc` that is not the image's, and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub change: Change,
    pub source: String,
}

/// What the node's `/etc` would be: the node files applied, then what the agent adds at boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub entries: Vec<Entry>,
    /// Paths the node files hold exactly as the image has them.
    pub same: usize,
    /// The node-file sources applied, in order (`52:54:00:77:00:0b.tar.gz`, `52:54:00:77:00:0b/`).
    pub applied: Vec<String>,
    /// Every file the node files put in `/etc`, as the agent records them at boot
    /// (`/run/clusterroot/node-files`), for `crctl diff`.
    pub files: Vec<clusterroot::manifest::Entry>,
}

/// A scratch directory, private (0700: node files are secrets), removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// Its `etc`: what the node files put in `/etc` (missing when they put nothing there).
    pub fn etc(&self) -> PathBuf {
        self.0.join("etc")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every path below `dir`, relative to it, parents before children, sorted; none when `dir`
/// is missing.
pub fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), PreviewError> {
    let names = match std::fs::read_dir(dir.join(rel)) {
        Ok(entries) => entries,
        Err(e) if rel.as_os_str().is_empty() && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(PreviewError::Read { path: dir.join(rel), source }),
    };
    let mut names: Vec<_> = names.flatten().map(|e| e.file_name()).collect();
    names.sort();
    for name in names {
        let r = rel.join(&name);
        out.push(r.clone());
        if std::fs::symlink_metadata(dir.join(&r)).is_ok_and(|m| m.is_dir()) {
            walk(dir, &r, out)?;
        }
    }
    Ok(())
}

/// `node`'s node files from the directory `nodefiles`, applied by the agent's own code
/// (archives `<mac>*.tar*` in sorted order, then the directory `<mac>/`) into a private, empty
/// scratch root, as the agent applies them to the upper. Returns it and the sources applied.
pub fn into_scratch(node: &Node, nodefiles: &Path) -> Result<(Scratch, Vec<String>), PreviewError> {
    // Unique per call, not only per process: two previews at once (tests) get their own.
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let scratch =
        Scratch(std::env::temp_dir().join(format!("crctl-render-{}-{}-{call}", node.name, std::process::id())));
    let _ = std::fs::remove_dir_all(&scratch.0);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&scratch.0)
        .map_err(|source| PreviewError::Scratch { path: scratch.0.clone(), source })?;
    let from = nodefiles.display().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    let applied = clusterroot::nodefiles::apply(
        "/",
        &from,
        &node.mac,
        &scratch.0.display().to_string(),
        deadline,
        &Log::stderr_warnings(),
    )
    .map_err(|source| PreviewError::Apply { node: node.name.clone(), from, source })?;
    Ok((scratch, applied))
}

/// The preview for `name`, with the master's view of the shared image at `root`.
pub fn preview(inv: &Inventory, root: &Path, name: &str) -> Result<Preview, PreviewError> {
    let node: &Node = inv.node(name).ok_or_else(|| PreviewError::NoSuchNode(name.to_string()))?;
    let image_etc = root.join("etc");
    let nodefiles = root.join(inv.settings.nodefiles.trim_start_matches('/'));
    let own_dir = nodefiles.join(node.mac.to_string());

    // A private, empty root to apply the node files to, as the agent does to the upper.
    let (scratch, applied) = into_scratch(node, &nodefiles)?;

    // What the agent would record at boot, before anything else is added.
    let etc = scratch.etc();
    let files =
        clusterroot::manifest::scan(&etc).map_err(|source| PreviewError::Record { node: name.to_string(), source })?;

    // Each path of the result against the image's /etc. No node files yet (before the first
    // `crctl sync`, or a node without any): the agent made no /etc (`walk` finds nothing),
    // and only what it adds itself at boot is shown.
    let mut paths = Vec::new();
    walk(&etc, Path::new(""), &mut paths)?;
    let mut entries = Vec::new();
    let mut same_count = 0;
    let archives: Vec<&str> = applied.iter().map(String::as_str).filter(|a| !a.ends_with('/')).collect();
    for rel in paths {
        let (ours, image) = (etc.join(&rel), image_etc.join(&rel));
        let in_image = std::fs::symlink_metadata(&image).is_ok();
        let is_dir = std::fs::symlink_metadata(&ours).is_ok_and(|m| m.is_dir());
        if in_image && (is_dir || crate::files::same(&ours, &image).unwrap_or(false)) {
            same_count += usize::from(!is_dir);
            continue;
        }
        let source = if std::fs::symlink_metadata(own_dir.join(&rel)).is_ok() {
            format!("node files {}/", own_dir.display())
        } else {
            format!("node-file archive {}", archives.join(", "))
        };
        let change = if in_image { Change::Replaced } else { Change::Added };
        entries.push(Entry { path: format!("/etc/{}", rel.display()), change, source });
    }

    // What the agent itself writes at boot (agent/src/handover.rs).
    let has = |p: &str| std::fs::symlink_metadata(etc.join(p)).is_ok();
    if !has("machine-id") {
        let image_id = std::fs::read_to_string(image_etc.join("machine-id")).unwrap_or_default();
        let change = if image_id.trim().is_empty() && !image_etc.join("machine-id").exists() {
            Change::Added
        } else {
            Change::Replaced
        };
        let source = "the agent at boot: derived from the boot MAC (the node files have none)".to_string();
        entries.push(Entry { path: "/etc/machine-id".into(), change, source });
    }
    let image_resolv = std::fs::symlink_metadata(image_etc.join("resolv.conf"));
    if !has("resolv.conf") && !image_resolv.as_ref().is_ok_and(|m| m.file_type().is_symlink()) {
        let change = if image_resolv.is_ok() { Change::Replaced } else { Change::Added };
        let source = "the agent at boot: the DHCP lease's DNS, if it has any".to_string();
        entries.push(Entry { path: "/etc/resolv.conf".into(), change, source });
    }
    Ok(Preview { entries, same: same_count, applied, files })
}

impl std::fmt::Display for Preview {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let width = self.entries.iter().map(|e| e.path.len()).max().unwrap_or(0);
        for e in &self.entries {
            let change = if e.change == Change::Added { "added" } else { "replaced" };
            writeln!(f, "{change:<9} {:<width$}  from {}", e.path, e.source)?;
        }
        let applied = if self.applied.is_empty() { "none".to_string() } else { self.applied.join(", ") };
        writeln!(f, "({} more node files are as the image has them; node files applied: {applied})", self.same)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    #[ignore = "applying node files sets owners, which needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
    fn shows_what_the_node_files_add_and_replace() {
        let root = std::env::temp_dir().join(format!("crctl-preview-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let write = |p: &str, s: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, s).unwrap();
        };
        write("etc/hosts", "127.0.0.1 localhost\n");
        write("etc/motd", "hello\n");
        write("etc/machine-id", "");
        std::os::unix::fs::symlink("../run/resolv.conf", root.join("etc/resolv.conf")).unwrap();
        let node1 = "srv/nfs/nodes/52:54:00:77:00:0b";
        write(&format!("{node1}/hostname"), "node1\n");
        write(&format!("{node1}/hosts"), "127.0.0.1 localhost\n172.23.199.11 node1\n");
        write(&format!("{node1}/motd"), "hello\n");
        write(&format!("{node1}/ssh/ssh_host_ed25519_key"), "secret\n");
        // Another node's files are not this node's.
        write("srv/nfs/nodes/52:54:00:77:00:0c/hostname", "node2\n");
        let p = preview(&example::inventory(), &root, "node1").unwrap();
        let got: Vec<(String, Change)> = p.entries.iter().map(|e| (e.path.clone(), e.change)).collect();
        assert_eq!(
            got,
            [
                ("/etc/hostname".to_string(), Change::Added),
                ("/etc/hosts".to_string(), Change::Replaced),
                ("/etc/ssh".to_string(), Change::Added),
                ("/etc/ssh/ssh_host_ed25519_key".to_string(), Change::Added),
                ("/etc/machine-id".to_string(), Change::Replaced),
            ]
        );
        assert!(p.entries[0].source.ends_with("srv/nfs/nodes/52:54:00:77:00:0b/"), "{}", p.entries[0].source);
        assert_eq!(p.same, 1, "motd is as the image has it");
        assert_eq!(p.applied, ["52:54:00:77:00:0b/"]);
        assert!(matches!(preview(&example::inventory(), &root, "nobody"), Err(PreviewError::NoSuchNode(_))));
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// Before the first `crctl sync` there are no node files (no directory at all, or none for
    /// this node): the preview shows what the agent alone adds at boot, not an error.
    #[test]
    fn a_node_without_node_files_gets_what_the_agent_adds() {
        let root = std::env::temp_dir().join(format!("crctl-preview-none-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(root.join("etc/resolv.conf"), "nameserver 10.0.0.1\n").unwrap();
        for made in ["", "srv/nfs/nodes", "srv/nfs/nodes/52:54:00:77:00:0c"] {
            std::fs::create_dir_all(root.join(made)).unwrap();
            let p = preview(&example::inventory(), &root, "node1").unwrap();
            let got: Vec<(&str, Change)> = p.entries.iter().map(|e| (e.path.as_str(), e.change)).collect();
            assert_eq!(got, [("/etc/machine-id", Change::Added), ("/etc/resolv.conf", Change::Replaced)], "{made}");
            assert!(p.applied.is_empty() && p.files.is_empty() && p.same == 0, "{made}: {p:?}");
            assert!(p.to_string().ends_with("node files applied: none)\n"), "{p}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
