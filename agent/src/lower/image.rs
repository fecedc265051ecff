//! Image versions: the store's `default` resolved to one version, which becomes the lower for
//! the whole boot.
//!
//! A store (made by `crctl image` on the master) holds one directory or ZFS dataset per
//! version (`1/`, `2/`, ...), never changed once published, and `default`, a symlink naming
//! the version nodes boot. With `clusterroot.image=`, `root=`/`nfsroot=` name the store: the
//! agent mounts it on [`IMAGES`], reads `default` once, and mounts that version on the lower.
//! A later `crctl image publish` or `image default` changes only `default`, so the lower of a
//! running node never changes under it (overlayfs calls that undefined).

use std::fmt;
use std::path::Path;

use rustix::io::Errno;
use rustix::mount::{MountFlags, UnmountFlags};

use crate::mount::{self, MountError};

/// Where the store is mounted while the version is picked; empty again afterwards.
pub const IMAGES: &str = "/run/rootfs/images";
/// The store's symlink naming the version to boot.
pub const DEFAULT_LINK: &str = "default";
/// The longest version name taken: it goes into the NFSv4 client identity (64 bytes at most).
const MAX_NAME: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("image store {store} has no default (the symlink naming the version to boot); on the master, crctl image list shows the versions and crctl image default VERSION sets it, or boot one by name with clusterroot.image=VERSION")]
    NoDefault { store: String },
    #[error("image store {store}: default is {what}; on the master, crctl image default VERSION sets it again")]
    BadDefault { store: String, what: String },
    #[error("image store {store} has no version {version}; on the master, crctl image list shows the versions")]
    Missing { store: String, version: String },
    #[error("reading {path} in image store {store} failed: {errno}")]
    Read { store: String, path: String, errno: Errno },
    #[error("mounting version {version} on {target} failed: {cause}")]
    Pin { version: String, target: String, cause: MountError },
    #[error("binding version {version} ({from}) on {target} failed: {errno}")]
    Bind { version: String, from: String, target: String, errno: Errno },
    #[error("making version {version} on {target} read-only failed: {errno}")]
    ReadOnly { version: String, target: String, errno: Errno },
    #[error("unmounting the image store from {path} failed: {errno}")]
    Unmount { path: String, errno: Errno },
}

/// `clusterroot.image=`: which version of the store to boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImageChoice {
    /// Whatever the store's `default` names at boot.
    Default,
    /// One version by name (to try a version before making it the default).
    Version(String),
}

impl ImageChoice {
    /// Parses the parameter's value; the error is the reason, for the caller's message.
    pub fn parse(v: &str) -> Result<ImageChoice, String> {
        match v {
            "default" => Ok(ImageChoice::Default),
            "edit" => Err("names the working copy crctl image edit changes; boot a published version (crctl image publish makes one)".into()),
            name => check_name(name).map(|()| ImageChoice::Version(name.to_string())),
        }
    }
}

impl fmt::Display for ImageChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ImageChoice::Default => f.write_str("the version the store's default names"),
            ImageChoice::Version(v) => write!(f, "version {v}"),
        }
    }
}

/// A version name is one path component: a letter or digit, then letters, digits, `.`, `_`,
/// `-`, at most 32 in all (crctl makes 1, 2, 3, ...).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok_first = name.starts_with(|c: char| c.is_ascii_alphanumeric());
    let ok_rest = name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || !ok_first || !ok_rest || name.len() > MAX_NAME {
        return Err(format!(
            "{name:?} is not a version name (a letter or digit, then letters, digits, '.', '_', '-', at most {MAX_NAME}); write default or a version crctl image list shows"
        ));
    }
    Ok(())
}

/// The version to boot, from the store mounted on `dir`; `store` names it in messages.
/// How a store keeps its versions: as directories in it (a disk, NFS), or as child datasets
/// (ZFS: `<store>/<version>`, each a filesystem of its own, whose directory in the store's own
/// filesystem need not exist; mounting the dataset is what tells).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Versions {
    Directories,
    Datasets,
}

pub fn resolve(dir: &Path, choice: &ImageChoice, store: &str, versions: Versions) -> Result<String, ImageError> {
    let version = match choice {
        ImageChoice::Version(v) => v.clone(),
        ImageChoice::Default => {
            let link = dir.join(DEFAULT_LINK);
            let target = match std::fs::read_link(&link) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(ImageError::NoDefault { store: store.to_string() })
                }
                Err(e) if e.raw_os_error() == Some(Errno::INVAL.raw_os_error()) => {
                    return Err(ImageError::BadDefault { store: store.to_string(), what: "not a symlink".into() })
                }
                Err(e) => return Err(read_error(store, &link, &e)),
            };
            let name = target.to_str().unwrap_or("").to_string();
            check_name(&name).map_err(|_| ImageError::BadDefault {
                store: store.to_string(),
                what: format!("a symlink to {:?}, not to a version in the store", target.display().to_string()),
            })?;
            name
        }
    };
    if versions == Versions::Datasets {
        return Ok(version);
    }
    match std::fs::metadata(dir.join(&version)) {
        Ok(m) if m.is_dir() => Ok(version),
        Ok(_) => Err(ImageError::Missing { store: store.to_string(), version }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ImageError::Missing { store: store.to_string(), version })
        }
        Err(e) => Err(read_error(store, &dir.join(&version), &e)),
    }
}

fn read_error(store: &str, path: &Path, e: &std::io::Error) -> ImageError {
    ImageError::Read {
        store: store.to_string(),
        path: path.display().to_string(),
        errno: Errno::from_raw_os_error(e.raw_os_error().unwrap_or(Errno::IO.raw_os_error())),
    }
}

/// A local store (the master's disk): the version's directory bound on `target`, read-only
/// whatever the disk's mount is. Shell: `mount --bind $IMAGES/3 $target; mount -o
/// remount,bind,ro $target`.
pub fn bind_readonly(dir: &str, version: &str, target: &str) -> Result<(), ImageError> {
    let (v, t) = (version.to_string(), target.to_string());
    mount::mkdir_p(target).map_err(|cause| ImageError::Pin { version: v.clone(), target: t.clone(), cause })?;
    let from = format!("{dir}/{version}");
    rustix::mount::mount_bind(from.as_str(), target).map_err(|errno| ImageError::Bind {
        version: v.clone(),
        from: from.clone(),
        target: t.clone(),
        errno,
    })?;
    rustix::mount::mount_remount(target, MountFlags::BIND | MountFlags::RDONLY, "")
        .map_err(|errno| ImageError::ReadOnly { version: v, target: t, errno })
}

/// Takes the store off [`IMAGES`]. `lazy`: a bind of one version keeps the filesystem in use.
pub fn unmount(dir: &str, lazy: bool) -> Result<(), ImageError> {
    let flags = if lazy { UnmountFlags::DETACH } else { UnmountFlags::empty() };
    rustix::mount::unmount(dir, flags).map_err(|errno| ImageError::Unmount { path: dir.to_string(), errno })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn store(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("crimage-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("1")).unwrap();
        std::fs::create_dir_all(dir.join("2")).unwrap();
        dir
    }

    #[test]
    fn choices() {
        assert_eq!(ImageChoice::parse("default"), Ok(ImageChoice::Default));
        assert_eq!(ImageChoice::parse("12"), Ok(ImageChoice::Version("12".into())));
        assert_eq!(ImageChoice::parse("2026-12-01.a"), Ok(ImageChoice::Version("2026-12-01.a".into())));
        for bad in ["", "edit", "../1", "a/b", ".hidden", "-1", "x y", &"9".repeat(33)] {
            assert!(ImageChoice::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn default_resolves_to_the_version_it_names() {
        let dir = store("default");
        symlink("2", dir.join("default")).unwrap();
        assert_eq!(resolve(&dir, &ImageChoice::Default, "s", Versions::Directories).unwrap(), "2");
        assert_eq!(resolve(&dir, &ImageChoice::Version("1".into()), "s", Versions::Directories).unwrap(), "1");
        // ZFS: the versions are child datasets, which need no directory in the store's own
        // filesystem; mounting one is the check.
        std::fs::remove_file(dir.join("default")).unwrap();
        symlink("7", dir.join("default")).unwrap();
        assert_eq!(resolve(&dir, &ImageChoice::Default, "tank/images", Versions::Datasets).unwrap(), "7");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_broken_store_is_named_with_the_fix() {
        let dir = store("broken");
        let err = resolve(&dir, &ImageChoice::Default, "10.0.0.1:/srv/images", Versions::Directories)
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("image store 10.0.0.1:/srv/images has no default"), "{err}");
        assert!(err.contains("crctl image default VERSION"), "{err}");
        symlink("/srv/images/1", dir.join("default")).unwrap();
        let err = resolve(&dir, &ImageChoice::Default, "s", Versions::Directories).unwrap_err().to_string();
        assert!(err.contains("not to a version in the store"), "{err}");
        std::fs::remove_file(dir.join("default")).unwrap();
        symlink("7", dir.join("default")).unwrap();
        let err = resolve(&dir, &ImageChoice::Default, "s", Versions::Directories).unwrap_err().to_string();
        assert!(err.starts_with("image store s has no version 7"), "{err}");
        std::fs::remove_file(dir.join("default")).unwrap();
        std::fs::create_dir(dir.join("default")).unwrap();
        let err = resolve(&dir, &ImageChoice::Default, "s", Versions::Directories).unwrap_err().to_string();
        assert!(err.contains("default is not a symlink"), "{err}");
        std::fs::write(dir.join("3"), "").unwrap();
        assert!(matches!(
            resolve(&dir, &ImageChoice::Version("3".into()), "s", Versions::Directories),
            Err(ImageError::Missing { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
