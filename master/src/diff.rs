//! `crctl diff NODE`: what a reboot would change on NODE. Its boot record (the agent's
//! `/run/clusterroot/state` and `node-files`, as NODE wrote them at boot) against what the
//! master would give it now: the image version its `clusterroot.image=` resolves to, and the
//! files its node files put in `/etc` ([`crate::preview`], the agent's own code).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clusterroot::manifest::{self, Entry, Kind};

use crate::image::store::Listing;
use crate::inventory::Inventory;
use crate::preview::{self, PreviewError};

/// Where the agent leaves its boot record on every node.
pub const RECORD_DIR: &str = "/run/clusterroot";

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("no node is named {0}; `crctl node list` shows them")]
    NoSuchNode(String),
    #[error(
        "reading {node}'s boot record {path} failed: {source}; {node}'s record is on {node}: copy it \
         (scp -r root@{node}:/run/clusterroot /tmp/{node}) and give --state /tmp/{node}"
    )]
    Read { node: String, path: PathBuf, source: std::io::Error },
    #[error("{path} is the record of a boot of {found}, not of {node} ({mac}): give --state with a copy of {node}'s /run/clusterroot")]
    OtherNode { node: String, mac: String, path: PathBuf, found: String },
    #[error("{path}: {source}")]
    Record { path: PathBuf, source: manifest::ManifestError },
    #[error(transparent)]
    Preview(#[from] PreviewError),
}

/// What the node booted, from its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booted {
    pub boot_mac: String,
    /// The version it pinned; empty when it booted a root, not a store.
    pub image: String,
    /// `default` or a version: what `clusterroot.image=` asked for.
    pub image_choice: String,
    /// What its node files put in `/etc`; `None` when the agent recorded nothing (node files
    /// turned off, or an agent older than the record).
    pub files: Option<Vec<Entry>>,
}

/// Reads `dir/state` and `dir/node-files`: no checks against the inventory yet.
pub fn read_record(node: &str, dir: &Path) -> Result<Booted, DiffError> {
    let state_path = dir.join("state");
    let read = |path: &Path, source| DiffError::Read { node: node.to_string(), path: path.to_path_buf(), source };
    let state = std::fs::read_to_string(&state_path).map_err(|e| read(&state_path, e))?;
    let value = |key: &str| {
        state.lines().find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix('='))).unwrap_or("").to_string()
    };
    let files_path = dir.join("node-files");
    let files = match std::fs::read_to_string(&files_path) {
        Ok(text) => Some(manifest::parse(&text).map_err(|source| DiffError::Record { path: files_path, source })?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(read(&files_path, e)),
    };
    Ok(Booted { boot_mac: value("boot_mac"), image: value("image"), image_choice: value("image_choice"), files })
}

/// How one path of the node-file record differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileChange {
    /// The node files hold it now; the node did not get it at boot.
    New,
    /// The node got it at boot; the node files no longer hold it.
    Gone,
    Contents,
    Mode {
        booted: u32,
        now: u32,
    },
    /// A file became a symlink or the other way round.
    Kind,
}

/// The image part: what the node runs and what it would boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageChange {
    /// It booted a root, not a version from the store.
    NoStore,
    Same {
        version: String,
    },
    /// A reboot boots another version (`default` moved on, or back).
    Other {
        booted: String,
        next: String,
    },
    /// What a reboot would boot is not known: the reason.
    Unknown {
        booted: String,
        why: String,
    },
}

/// What a reboot would change on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diff {
    pub node: String,
    pub mac: String,
    pub image: ImageChange,
    pub files: Vec<(String, FileChange)>,
    /// Files the node got at boot and would get again as they are.
    pub same: usize,
    /// The record had no node-file list.
    pub unrecorded: bool,
}

impl Diff {
    /// True when a reboot would change something (or cannot be told not to).
    pub fn changes(&self) -> bool {
        !self.files.is_empty()
            || self.unrecorded
            || !matches!(self.image, ImageChange::Same { .. } | ImageChange::NoStore)
    }
}

/// Compares the node-file records: booted against now, by path.
pub fn compare_files(booted: &[Entry], now: &[Entry]) -> (Vec<(String, FileChange)>, usize) {
    let before: BTreeMap<&str, &Entry> = booted.iter().map(|e| (e.path.as_str(), e)).collect();
    let after: BTreeMap<&str, &Entry> = now.iter().map(|e| (e.path.as_str(), e)).collect();
    let (mut out, mut same) = (Vec::new(), 0);
    let paths: std::collections::BTreeSet<&str> = before.keys().chain(after.keys()).copied().collect();
    for path in paths {
        let change = match (before.get(path), after.get(path)) {
            (None, Some(_)) => FileChange::New,
            (Some(_), None) => FileChange::Gone,
            (Some(b), Some(a)) if b.kind != a.kind => FileChange::Kind,
            (Some(b), Some(a)) if b.digest != a.digest => FileChange::Contents,
            (Some(b), Some(a)) if b.kind == Kind::File && b.mode != a.mode => {
                FileChange::Mode { booted: b.mode, now: a.mode }
            }
            _ => {
                same += 1;
                continue;
            }
        };
        out.push((path.to_string(), change));
    }
    (out, same)
}

/// What the store would give a node whose record says `booted`.
pub fn image_change(booted: &Booted, store: &Path) -> ImageChange {
    if booted.image.is_empty() {
        return ImageChange::NoStore;
    }
    let unknown = |why: String| ImageChange::Unknown { booted: booted.image.clone(), why };
    let next = if booted.image_choice.is_empty() || booted.image_choice == "default" {
        match Listing::read(store) {
            Ok(l) => match l.default_version() {
                Some(v) => v.to_string(),
                None => return unknown(format!("{}/default names no version (crctl image list)", store.display())),
            },
            Err(e) => return unknown(e.to_string()),
        }
    } else {
        // Pinned by name on its command line: a reboot boots that one again.
        booted.image_choice.clone()
    };
    if next == booted.image {
        ImageChange::Same { version: next }
    } else {
        ImageChange::Other { booted: booted.image.clone(), next }
    }
}

/// The diff for `name`, whose boot record is in `record` (a copy of its `/run/clusterroot`),
/// with the master's view of the shared image at `root`.
pub fn diff(inv: &Inventory, root: &Path, name: &str, record: &Path) -> Result<Diff, DiffError> {
    let node = inv.node(name).ok_or_else(|| DiffError::NoSuchNode(name.to_string()))?;
    let booted = read_record(name, record)?;
    let mac = node.mac.to_string();
    if !booted.boot_mac.eq_ignore_ascii_case(&mac) {
        let found = if booted.boot_mac.is_empty() { "an unknown MAC".into() } else { booted.boot_mac.clone() };
        return Err(DiffError::OtherNode { node: name.into(), mac, path: record.join("state"), found });
    }
    let store = root.join(inv.settings.images.trim_start_matches('/'));
    let image = image_change(&booted, &store);
    let now = preview::preview(inv, root, name)?.files;
    let (files, same, unrecorded) = match &booted.files {
        Some(b) => {
            let (files, same) = compare_files(b, &now);
            (files, same, false)
        }
        None => (Vec::new(), 0, true),
    };
    Ok(Diff { node: name.to_string(), mac, image, files, same, unrecorded })
}

impl std::fmt::Display for Diff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.image {
            ImageChange::NoStore => writeln!(f, "image     booted a root, not a version of the image store")?,
            ImageChange::Same { version } => writeln!(f, "image     version {version}, as booted")?,
            ImageChange::Other { booted, next } => {
                writeln!(f, "image     booted version {booted}; a reboot boots version {next}")?
            }
            ImageChange::Unknown { booted, why } => {
                writeln!(f, "image     booted version {booted}; what a reboot boots is unknown: {why}")?
            }
        }
        let width = self.files.iter().map(|(p, _)| p.len()).max().unwrap_or(0);
        for (path, change) in &self.files {
            let (word, note) = match change {
                FileChange::New => ("new", "the node files hold it now".to_string()),
                FileChange::Gone => ("gone", "the node got it at boot; the node files no longer hold it".into()),
                FileChange::Contents => ("changed", "contents".into()),
                FileChange::Mode { booted, now } => ("changed", format!("mode {booted:04o} -> {now:04o}")),
                FileChange::Kind => ("changed", "a file became a symlink or back".into()),
            };
            writeln!(f, "{word:<9} {path:<width$}  {note}")?;
        }
        if self.unrecorded {
            writeln!(
                f,
                "{}: its boot recorded no node files (clusterroot.nodefiles=none, or an older agent): not compared",
                self.node
            )?;
        }
        let files = |n: usize| if n == 1 { "1 node file".to_string() } else { format!("{n} node files") };
        let (n, node) = (self.files.len(), &self.node);
        let image_moves = matches!(self.image, ImageChange::Other { .. });
        match (n, image_moves, self.changes()) {
            (_, _, false) => writeln!(f, "{node}: a reboot changes nothing ({} as booted)", files(self.same)),
            (0, true, _) => writeln!(f, "{node}: a reboot changes the image version"),
            (n, true, _) => writeln!(f, "{node}: a reboot changes the image version and {}", files(n)),
            (0, false, _) => writeln!(f, "{node}: what a reboot changes is not fully known (see above)"),
            (n, false, _) => writeln!(f, "{node}: a reboot changes {} ({} as booted)", files(n), self.same),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: Kind, mode: u32, d: char) -> Entry {
        Entry { path: path.into(), kind, mode, digest: d.to_string().repeat(64) }
    }

    #[test]
    fn compares_by_path() {
        let booted = vec![
            entry("/etc/a", Kind::File, 0o644, 'a'),
            entry("/etc/b", Kind::File, 0o644, 'b'),
            entry("/etc/c", Kind::File, 0o600, 'c'),
            entry("/etc/d", Kind::File, 0o644, 'd'),
            entry("/etc/l", Kind::Link, 0, 'e'),
        ];
        let now = vec![
            entry("/etc/a", Kind::File, 0o644, 'a'),
            entry("/etc/c", Kind::File, 0o644, 'c'),
            entry("/etc/d", Kind::File, 0o644, '0'),
            entry("/etc/l", Kind::File, 0o644, 'e'),
            entry("/etc/n", Kind::File, 0o644, 'f'),
        ];
        let (changes, same) = compare_files(&booted, &now);
        assert_eq!(
            changes,
            [
                ("/etc/b".to_string(), FileChange::Gone),
                ("/etc/c".to_string(), FileChange::Mode { booted: 0o600, now: 0o644 }),
                ("/etc/d".to_string(), FileChange::Contents),
                ("/etc/l".to_string(), FileChange::Kind),
                ("/etc/n".to_string(), FileChange::New),
            ]
        );
        assert_eq!(same, 1);
    }

    fn store(name: &str, versions: &[&str], default: Option<&str>) -> PathBuf {
        let d = std::env::temp_dir().join(format!("crctl-diff-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for v in versions {
            std::fs::create_dir_all(d.join(v)).unwrap();
        }
        std::fs::create_dir_all(&d).unwrap();
        if let Some(v) = default {
            std::os::unix::fs::symlink(v, d.join("default")).unwrap();
        }
        d
    }

    fn booted(image: &str, choice: &str) -> Booted {
        Booted { boot_mac: String::new(), image: image.into(), image_choice: choice.into(), files: None }
    }

    #[test]
    fn image_follows_default_unless_pinned_by_name() {
        let s = store("image", &["1", "2", "3"], Some("3"));
        assert_eq!(image_change(&booted("", ""), &s), ImageChange::NoStore);
        assert_eq!(image_change(&booted("3", "default"), &s), ImageChange::Same { version: "3".into() });
        assert_eq!(
            image_change(&booted("2", "default"), &s),
            ImageChange::Other { booted: "2".into(), next: "3".into() }
        );
        assert_eq!(image_change(&booted("2", "2"), &s), ImageChange::Same { version: "2".into() });
        let none = store("nodefault", &["1"], None);
        assert!(matches!(image_change(&booted("1", "default"), &none), ImageChange::Unknown { .. }));
        for d in [s, none] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }

    #[test]
    fn reads_the_record_and_refuses_another_nodes() {
        let d = std::env::temp_dir().join(format!("crctl-diff-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("state"), "mode=overlay\nimage=2\nimage_choice=default\nboot_mac=52:54:00:77:00:0c\n")
            .unwrap();
        let r = read_record("node2", &d).unwrap();
        assert_eq!((r.image.as_str(), r.image_choice.as_str(), r.files), ("2", "default", None));
        std::fs::write(d.join("node-files"), manifest::render(&[entry("/etc/hostname", Kind::File, 0o644, 'a')]))
            .unwrap();
        assert_eq!(read_record("node2", &d).unwrap().files.unwrap().len(), 1);
        let inv = crate::render::example::inventory();
        match diff(&inv, Path::new("/nonexistent"), "node1", &d) {
            Err(DiffError::OtherNode { found, .. }) => assert_eq!(found, "52:54:00:77:00:0c"),
            other => panic!("{other:?}"),
        }
        let e = diff(&inv, Path::new("/nonexistent"), "node1", Path::new("/nonexistent/record")).unwrap_err();
        assert!(e.to_string().contains("scp -r root@node1:/run/clusterroot"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn says_what_a_reboot_changes() {
        let d = Diff {
            node: "node1".into(),
            mac: "52:54:00:77:00:0b".into(),
            image: ImageChange::Other { booted: "2".into(), next: "3".into() },
            files: vec![("/etc/hostname".into(), FileChange::Contents)],
            same: 4,
            unrecorded: false,
        };
        let text = d.to_string();
        assert!(text.contains("booted version 2; a reboot boots version 3"), "{text}");
        assert!(text.contains("changed   /etc/hostname  contents"), "{text}");
        assert!(text.ends_with("node1: a reboot changes the image version and 1 node file\n"), "{text}");
        let same = Diff { image: ImageChange::Same { version: "3".into() }, files: vec![], ..d };
        assert!(!same.changes());
        assert!(same.to_string().ends_with("node1: a reboot changes nothing (4 node files as booted)\n"));
    }
}
