//! `crctl generalize`: makes the master's installed system the cluster's shared image. The
//! files that are the master's alone move (never copy: a copy left in the image is readable
//! by every node) into the master's node files, and the image gets the clients' fstab.
//! Planned first, with no writes, so `--dry-run` prints exactly what a run does.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::inventory::Inventory;

/// The master's own files, relative to `/etc`. The seed's list (`fstab`, `zfs/zpool.cache`),
/// then ours: its identity (`hostname`, `machine-id`, ZFS's `hostid`), what only the NFS and
/// DHCP server needs (`exports`, `dnsmasq.conf`), and below, every `ssh/ssh_host_*` key and
/// NetworkManager's saved connections (which may hold Wi-Fi and VPN secrets).
pub const MASTER_FILES: [&str; 7] =
    ["fstab", "zfs/zpool.cache", "hostid", "hostname", "machine-id", "exports", "dnsmasq.conf"];
/// Directories of `/etc` whose entries (matching the prefix) are all the master's.
pub const MASTER_DIRS: [(&str, &str); 2] = [("ssh", "ssh_host_"), ("NetworkManager/system-connections", "")];

#[derive(Debug, thiserror::Error)]
pub enum GeneralizeError {
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the master's node files already hold {to}, which differs from {from}; compare them, keep one, and run generalize again")]
    Conflict { from: PathBuf, to: PathBuf },
    #[error("{path} is a {kind}, not a file or symlink; move it by hand")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("moving {from} to {to} failed: {source}")]
    Move { from: PathBuf, to: PathBuf, source: std::io::Error },
    #[error("writing the clients' fstab {path} failed: {source}")]
    Fstab { path: PathBuf, source: std::io::Error },
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Copy `from` (file or symlink, with mode and owner) to `to`, then delete `from`.
    Move { from: PathBuf, to: PathBuf },
    /// `from` is already in the node files as it is: only delete it from the image.
    Drop { from: PathBuf, to: PathBuf },
    /// Write the clients' fstab over the image's.
    Fstab { path: PathBuf, text: String },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Move { from, to } => write!(f, "move    {} -> {}", from.display(), to.display()),
            Step::Drop { from, to } => write!(f, "delete  {} (already in {})", from.display(), to.display()),
            Step::Fstab { path, .. } => {
                write!(f, "write   {} (the clients' fstab: /tmp, /home from the master)", path.display())
            }
        }
    }
}

/// The clients' fstab: a tmpfs `/tmp` and `/home` over NFSv4 from the master.
pub fn clients_fstab(inv: &Inventory) -> String {
    let mut out = crate::render::stamp("#");
    out.push_str("# The clients' /etc/fstab (the shared image's); the master's own is in its node files.\n");
    out.push_str("tmpfs  /tmp  tmpfs  defaults,nosuid,nodev  0 0\n");
    out.push_str(&format!("{}:{}  /home  nfs4  rw,hard,retrans=10  0 0\n", inv.master_address(), inv.settings.home));
    out
}

/// The plan for the image at `root` (its `/etc` is `root/etc`) and the master's node files.
pub fn plan(inv: &Inventory, root: &Path) -> Result<Vec<Step>, GeneralizeError> {
    let etc = root.join("etc");
    let node_dir = root.join(inv.settings.nodefiles.trim_start_matches('/')).join(inv.master().mac.to_string());
    let mut rels: Vec<PathBuf> = MASTER_FILES.iter().map(PathBuf::from).collect();
    for (dir, prefix) in MASTER_DIRS {
        let Ok(entries) = std::fs::read_dir(etc.join(dir)) else { continue };
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        rels.extend(names.into_iter().filter(|n| n.starts_with(prefix)).map(|n| Path::new(dir).join(n)));
    }
    let fstab = clients_fstab(inv);
    let fstab_path = etc.join("fstab");
    let clients_fstab_there = std::fs::read_to_string(&fstab_path).ok().as_deref() == Some(fstab.as_str());
    let mut steps = Vec::new();
    for rel in rels {
        let (from, to) = (etc.join(&rel), node_dir.join(&rel));
        if rel == Path::new("fstab") && clients_fstab_there {
            continue; // generalized already: the image's fstab is the clients'
        }
        let Ok(meta) = std::fs::symlink_metadata(&from) else { continue };
        if !(meta.is_file() || meta.file_type().is_symlink()) {
            let kind = if meta.is_dir() { "directory" } else { "special file" };
            return Err(GeneralizeError::NotAFile { path: from, kind });
        }
        if std::fs::symlink_metadata(&to).is_ok() {
            let same =
                crate::files::same(&from, &to).map_err(|source| GeneralizeError::Read { path: to.clone(), source })?;
            if !same {
                return Err(GeneralizeError::Conflict { from, to });
            }
            steps.push(Step::Drop { from, to });
        } else {
            steps.push(Step::Move { from, to });
        }
    }
    if !clients_fstab_there {
        steps.push(Step::Fstab { path: fstab_path, text: fstab });
    }
    Ok(steps)
}

/// Copies `from` to `to` with its mode and owner, synced, then deletes `from`.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
        std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    } else {
        let data = std::fs::read(from)?;
        crate::files::replace(to, &data, meta.mode() & 0o7777)?;
        std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    std::fs::remove_file(from)
}

/// Runs the plan's steps in order; stops at the first failure, naming it.
pub fn execute(steps: &[Step]) -> Result<(), GeneralizeError> {
    for step in steps {
        match step {
            Step::Move { from, to } => move_file(from, to).map_err(|source| GeneralizeError::Move {
                from: from.clone(),
                to: to.clone(),
                source,
            })?,
            Step::Drop { from, to } => std::fs::remove_file(from).map_err(|source| GeneralizeError::Move {
                from: from.clone(),
                to: to.clone(),
                source,
            })?,
            Step::Fstab { path, text } => crate::files::replace(path, text.as_bytes(), 0o644)
                .map_err(|source| GeneralizeError::Fstab { path: path.clone(), source })?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn moves_the_masters_files_and_gives_clients_an_fstab() {
        let root = std::env::temp_dir().join(format!("crctl-generalize-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let write = |p: &str, s: &str, mode: u32| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, s).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("etc/fstab", "LABEL=root / ext4 rw 0 1\n", 0o644);
        write("etc/hostname", "master\n", 0o644);
        write("etc/ssh/ssh_host_ed25519_key", "secret\n", 0o600);
        write("etc/ssh/sshd_config", "shared\n", 0o644);
        write("etc/passwd", "shared\n", 0o644);
        let master = "srv/nfs/nodes/52:54:00:77:00:e1";
        write(&format!("{master}/hostname"), "master\n", 0o644);
        let inv = example::inventory();

        let steps = plan(&inv, &root).unwrap();
        let shown: Vec<String> = steps.iter().map(|s| s.to_string().replace(&root.display().to_string(), "")).collect();
        assert_eq!(
            shown,
            [
                format!("move    /etc/fstab -> /{master}/fstab"),
                format!("delete  /etc/hostname (already in /{master}/hostname)"),
                format!("move    /etc/ssh/ssh_host_ed25519_key -> /{master}/ssh/ssh_host_ed25519_key"),
                "write   /etc/fstab (the clients' fstab: /tmp, /home from the master)".to_string(),
            ]
        );
        // A dry run is the plan alone: nothing moved yet.
        assert!(root.join("etc/hostname").exists());
        execute(&steps).unwrap();
        let key = root.join(master).join("ssh/ssh_host_ed25519_key");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "secret\n");
        assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key").exists(), "moved, not copied");
        assert!(root.join("etc/ssh/sshd_config").exists());
        assert_eq!(std::fs::read_to_string(root.join(master).join("fstab")).unwrap(), "LABEL=root / ext4 rw 0 1\n");
        let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap();
        assert!(fstab.ends_with("172.23.199.225:/home  /home  nfs4  rw,hard,retrans=10  0 0\n"), "{fstab}");
        // Once done, nothing is left to do.
        assert_eq!(plan(&inv, &root).unwrap(), []);
        // A differing copy already in the node files is a conflict, and nothing moves.
        write("etc/hostname", "other\n", 0o644);
        let e = plan(&inv, &root).unwrap_err().to_string();
        assert!(e.contains("which differs from"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
