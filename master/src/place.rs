//! Where each step acts: the image (`--root`), the inventory in it, and the check that node
//! files land on the node-files filesystem, never in the shared image.
//!
//! The running master's `/` is an overlay on a tmpfs: what crctl writes there is lost at the
//! next boot. The image it changes is `/run/rootfs/lower` (booted through clusterroot), or `/`
//! itself before the master's first clusterroot boot (or in a `clusterroot=off` maintenance
//! boot). The inventory lives at the top of the node-files filesystem, which survives reboots
//! and which no export reaches.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The image as the running clusterroot master sees it: the shared root's read-write view.
pub const LOWER: &str = "/run/rootfs/lower";

/// The inventory's file name at the top of the node-files filesystem. No MAC address: the
/// agent and sync's orphan check pass it over.
pub const INVENTORY_NAME: &str = "cluster";

/// Where the node files are unless the inventory says otherwise (its `nodefiles` setting): the
/// inventory, which names that setting, is found here.
pub const NODEFILES: &str = "/srv/nfs/nodes";

/// The flag that writes node files into the tree named by `--root` without the mount check.
pub const INTO_IMAGE: &str = "--into-image";

#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    #[error(
        "{path} is not mounted: node files (ssh host keys, machine-ids) would land in the shared \
         image, which every client reads; mount the node-files filesystem there (mount \
         LABEL=nodefiles {path}), or pass --into-image for a scratch tree"
    )]
    NotMounted { path: String },
    #[error(
        "{path} is not mounted: the master's node files are on the node-files filesystem, which its \
         fstab mounts there (mount LABEL=nodefiles {path}); without it crctl apply would read the \
         image's own directory"
    )]
    NotMountedToRead { path: String },
    #[error("checking whether {path} is a mount point failed: {source}")]
    Stat { path: String, source: std::io::Error },
}

/// The default `--root`: [`LOWER`] when it is a directory (booted through clusterroot), else
/// `/` (the installed system before its first clusterroot boot, or a maintenance boot).
pub fn default_root() -> PathBuf {
    root_given(Path::new(LOWER))
}

/// [`default_root`] with the lower's path given (tests).
pub fn root_given(lower: &Path) -> PathBuf {
    if lower.is_dir() {
        lower.to_path_buf()
    } else {
        PathBuf::from("/")
    }
}

/// An inventory path (absolute) as the running master sees it: below [`LOWER`], where the
/// trees nfsd exports are mounted (`/` alone is the lower itself).
pub fn in_lower(path: &str) -> String {
    if path == "/" {
        LOWER.to_string()
    } else {
        format!("{LOWER}{path}")
    }
}

/// `path` (absolute, as the inventory names it) inside the tree `root`.
pub fn under(root: &Path, path: &str) -> PathBuf {
    root.join(path.trim_start_matches('/'))
}

/// The default inventory (`-f`): `<root>/srv/nfs/nodes/cluster`, the top of the node-files
/// filesystem.
pub fn default_inventory(root: &Path) -> PathBuf {
    under(root, NODEFILES).join(INVENTORY_NAME)
}

/// Whether `<root><nodefiles>` is a mount point of its own: its filesystem (st_dev) differs
/// from its parent's and from `root`'s. A missing directory is not mounted either.
fn is_mounted(root: &Path, nodefiles: &str) -> Result<bool, PlaceError> {
    let dir = under(root, nodefiles);
    let dev = |p: &Path| std::fs::metadata(p).map(|m| m.dev());
    let own = match dev(&dir) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(PlaceError::Stat { path: dir.display().to_string(), source }),
    };
    let parent = dir.parent().unwrap_or(root);
    for other in [parent, root] {
        let d = dev(other).map_err(|source| PlaceError::Stat { path: other.display().to_string(), source })?;
        if d == own {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Refuses to write node files unless `<root><nodefiles>` is a mount point of its own.
pub fn node_files_mounted(root: &Path, nodefiles: &str) -> Result<(), PlaceError> {
    match is_mounted(root, nodefiles)? {
        true => Ok(()),
        false => Err(PlaceError::NotMounted { path: under(root, nodefiles).display().to_string() }),
    }
}

/// Refuses to read the master's node files (`crctl apply`) unless `<root><nodefiles>` is a
/// mount point of its own: below it, without the mount, is the image's own directory.
pub fn node_files_mounted_to_read(root: &Path, nodefiles: &str) -> Result<(), PlaceError> {
    match is_mounted(root, nodefiles)? {
        true => Ok(()),
        false => Err(PlaceError::NotMountedToRead { path: under(root, nodefiles).display().to_string() }),
    }
}

/// The mount check, skipped with `--into-image`.
pub fn check_node_files(root: &Path, nodefiles: &str, into_image: bool) -> Result<(), PlaceError> {
    if into_image {
        Ok(())
    } else {
        node_files_mounted(root, nodefiles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("crctl-place-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn root_is_the_lower_when_booted_through_clusterroot() {
        let d = scratch("root");
        assert_eq!(root_given(&d), d);
        assert_eq!(root_given(&d.join("missing")), Path::new("/"));
        let file = d.join("file");
        std::fs::write(&file, "").unwrap();
        assert_eq!(root_given(&file), Path::new("/"));
    }

    #[test]
    fn inventory_is_at_the_top_of_the_node_files() {
        assert_eq!(default_inventory(Path::new("/")), Path::new("/srv/nfs/nodes/cluster"));
        assert_eq!(default_inventory(Path::new(LOWER)), Path::new("/run/rootfs/lower/srv/nfs/nodes/cluster"));
    }

    #[test]
    fn node_files_in_the_image_are_refused() {
        let d = scratch("mount");
        // Missing, then a plain directory of the same filesystem: not mounted.
        for _ in 0..2 {
            let e = node_files_mounted(&d, "/srv/nfs/nodes").unwrap_err();
            let want = format!(
                "{0}/srv/nfs/nodes is not mounted: node files (ssh host keys, machine-ids) would land in the \
                 shared image, which every client reads; mount the node-files filesystem there (mount \
                 LABEL=nodefiles {0}/srv/nfs/nodes), or pass --into-image for a scratch tree",
                d.display()
            );
            assert_eq!(e.to_string(), want);
            std::fs::create_dir_all(d.join("srv/nfs/nodes")).unwrap();
        }
        assert!(check_node_files(&d, "/srv/nfs/nodes", true).is_ok());
        assert!(check_node_files(&d, "/srv/nfs/nodes", false).is_err());
        // To read them (crctl apply): the same check, its own fix.
        let e = node_files_mounted_to_read(&d, "/srv/nfs/nodes").unwrap_err();
        assert!(
            matches!(&e, PlaceError::NotMountedToRead { path } if *path == format!("{}/srv/nfs/nodes", d.display()))
        );
        assert!(e.to_string().ends_with("without it crctl apply would read the image's own directory"), "{e}");
    }

    #[test]
    fn a_mount_point_passes() {
        // /proc is its own filesystem under / wherever the tests run.
        if std::fs::metadata("/proc/self").is_err() {
            eprintln!("skipped: no /proc");
            return;
        }
        assert!(node_files_mounted(Path::new("/"), "/proc").is_ok());
        assert!(node_files_mounted_to_read(Path::new("/"), "/proc").is_ok());
    }
}
