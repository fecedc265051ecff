//! The read-ahead of the NFS mount that holds a squashfs image, raised before the image file
//! is opened: what nfs-utils' `nfsrahead` sets from a udev rule for every NFS mount.
//!
//! Linux gives an NFS mount 128 KiB of read-ahead. A node reads its image file through a
//! loop device, at the offsets squashfs asks for; with the image laid out in boot order
//! (`crctl image`'s boot order), those offsets mostly follow each other, and a larger window
//! turns them into a few READs of the server's largest size rather than hundreds of small
//! ones. A file's window is taken from its mount when it is opened, so this comes first.
//! Shell: `echo 2048 >/sys/class/bdi/$(mountpoint -d /run/rootfs/image)/read_ahead_kb`.

use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::root::Root;

/// The window set: two of the largest READs a Linux nfsd offers (1 MiB, from 4 GiB of RAM).
/// Measured with the Debian root's boot in `qemu-tests/bench --costs`: README, "Costs per boot".
pub const IMAGE_READ_AHEAD_KIB: u32 = 2048;

#[derive(Debug, thiserror::Error)]
pub enum ReadAheadError {
    #[error("looking up the mount {mount} failed: {errno}")]
    Stat { mount: String, errno: Errno },
    #[error("reading {path} failed: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path} holds {text:?}, not a number of KiB")]
    Parse { path: String, text: String },
    #[error("writing {path} failed: {source}")]
    Write { path: String, source: std::io::Error },
}

/// `/sys/class/bdi/MAJOR:MINOR/read_ahead_kb` of the filesystem mounted on `mount`.
pub fn knob(root: &Root, mount: &Path) -> Result<PathBuf, ReadAheadError> {
    let st = rustix::fs::stat(mount).map_err(|errno| ReadAheadError::Stat { mount: mount.display().to_string(), errno })?;
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    Ok(root.path(&format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb")))
}

/// Sets the read-ahead of the filesystem on `mount` to `kib` unless it is larger already;
/// the window it had.
pub fn raise(root: &Root, mount: &Path, kib: u32) -> Result<u32, ReadAheadError> {
    let path = knob(root, mount)?;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ReadAheadError::Read { path: shown.clone(), source })?;
    let was: u32 = text.trim().parse().map_err(|_| ReadAheadError::Parse { path: shown.clone(), text: text.clone() })?;
    if was < kib {
        std::fs::write(&path, format!("{kib}\n")).map_err(|source| ReadAheadError::Write { path: shown, source })?;
    }
    Ok(was)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sysfs of one bdi under a scratch root, for the filesystem holding `dir`.
    fn scratch(tag: &str, holds: &str) -> (PathBuf, Root, PathBuf) {
        let base = std::env::temp_dir().join(format!("clusterroot-readahead-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let mount = base.join("image");
        std::fs::create_dir_all(&mount).unwrap();
        let root = Root::new(base.join("root"));
        let knob = knob(&root, &mount).unwrap();
        std::fs::create_dir_all(knob.parent().unwrap()).unwrap();
        std::fs::write(&knob, holds).unwrap();
        (base, root, mount)
    }

    #[test]
    fn a_small_window_is_raised_a_larger_one_kept() {
        let (base, root, mount) = scratch("raise", "128\n");
        assert_eq!(raise(&root, &mount, 2048).unwrap(), 128);
        let knob = knob(&root, &mount).unwrap();
        assert_eq!(std::fs::read_to_string(&knob).unwrap(), "2048\n");
        std::fs::write(&knob, "4096\n").unwrap();
        assert_eq!(raise(&root, &mount, 2048).unwrap(), 4096);
        assert_eq!(std::fs::read_to_string(&knob).unwrap(), "4096\n");
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn what_cannot_be_read_is_named() {
        let (base, root, mount) = scratch("bad", "lots\n");
        let e = raise(&root, &mount, 2048).unwrap_err().to_string();
        assert!(e.contains("read_ahead_kb holds \"lots\\n\", not a number of KiB"), "{e}");
        let e = raise(&root, &base.join("none"), 2048).unwrap_err().to_string();
        assert!(e.starts_with("looking up the mount ") && e.ends_with("No such file or directory (os error 2)"), "{e}");
        std::fs::remove_dir_all(base).unwrap();
    }
}
