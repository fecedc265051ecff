//! The store's layout on disk: version directories `1/`, `2/`, ..., the `default` symlink, the
//! working copy `edit/`, and the locks and fsyncs that keep changes to it whole.

use std::fmt;
use std::os::fd::OwnedFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, Mode, OFlags};
use rustix::io::Errno;

/// The symlink naming the version nodes boot.
pub const DEFAULT: &str = "default";
/// The one writable working copy.
pub const EDIT: &str = "edit";
/// Made first, then renamed over [`DEFAULT`], so a reader sees the old link or the new one.
pub const DEFAULT_NEW: &str = ".default.new";

/// A published version: a positive decimal number without leading zeros (`1`, `2`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version(pub u64);

impl Version {
    /// Parses a version name; the error is a whole message with the fix. No I/O.
    pub fn parse(s: &str) -> Result<Version, String> {
        match s {
            EDIT => return Err("'edit' is the working copy, not a version; crctl image publish makes it one".into()),
            super::squashfs::DIR => {
                return Err("'squashfs' holds the versions' squashfs files, not a version (crctl image list shows them)".into())
            }
            DEFAULT => {
                return Err("'default' names whichever version is the default; name the version itself (crctl image list shows them)".into())
            }
            _ => {}
        }
        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        match s.parse::<u64>() {
            Ok(n) if digits && n > 0 && !s.starts_with('0') => Ok(Version(n)),
            _ => Err(format!(
                "'{s}' is not a version (a positive decimal number without leading zeros, such as 3; crctl image list shows them)"
            )),
        }
    }

    /// The version after this one.
    pub fn next(self) -> Version {
        Version(self.0.saturating_add(1))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("image store {dir} is missing; crctl image import DIR makes it and its first version (or point the inventory's `images PATH` line, or --root, at the store)")]
    Missing { dir: PathBuf },
    #[error("reading image store {dir} failed: {source}")]
    Read { dir: PathBuf, source: std::io::Error },
    #[error("pointing {dir}/default at version {version} failed: {errno}; the old default stays")]
    SetDefault { dir: PathBuf, version: Version, errno: Errno },
    #[error("syncing image store {dir} failed: {errno}")]
    Sync { dir: PathBuf, errno: Errno },
    #[error("image store {dir} is busy: another crctl image command is changing it; run this one when it is done")]
    Busy { dir: PathBuf },
    #[error("{dir} is in use by a running crctl image edit; leave its command (or shell) first")]
    EditBusy { dir: PathBuf },
    #[error("locking {dir} failed: {errno}")]
    Lock { dir: PathBuf, errno: Errno },
}

/// What `default` is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DefaultLink {
    /// No `default` yet.
    Missing,
    /// A symlink to an existing version.
    Version(Version),
    /// Something that does not name an existing version: described for the user.
    Dangling(String),
}

/// One version in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub version: Version,
    /// The directory's mtime (seconds since the epoch).
    pub mtime: i64,
}

/// The store as read: its versions (sorted), its default, whether a working copy exists.
/// Anything else in it (the `squashfs` directory, temporary copies, `lost+found`, ...) is
/// ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listing {
    pub dir: PathBuf,
    pub versions: Vec<Entry>,
    pub default: DefaultLink,
    pub edit: bool,
}

impl Listing {
    /// Reads the store `dir`.
    pub fn read(dir: &Path) -> Result<Listing, StoreError> {
        let read_err = |source| StoreError::Read { dir: dir.to_path_buf(), source };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Missing { dir: dir.to_path_buf() })
            }
            Err(e) => return Err(read_err(e)),
        };
        let (mut versions, mut edit, mut link) = (Vec::new(), false, None);
        for entry in entries {
            let entry = entry.map_err(read_err)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
            if name == DEFAULT {
                link = Some(if meta.file_type().is_symlink() {
                    std::fs::read_link(entry.path()).map_err(read_err)?.to_string_lossy().into_owned()
                } else {
                    String::new()
                });
            } else if name == EDIT {
                edit = meta.is_dir();
            } else if let (Ok(version), true) = (Version::parse(name), meta.is_dir()) {
                versions.push(Entry { version, mtime: meta.mtime() });
            }
        }
        versions.sort_by_key(|e| e.version);
        let default = match link {
            None => DefaultLink::Missing,
            Some(t) if t.is_empty() => DefaultLink::Dangling("is not a symlink".into()),
            Some(t) => match Version::parse(&t) {
                Ok(v) if versions.iter().any(|e| e.version == v) => DefaultLink::Version(v),
                Ok(_) => DefaultLink::Dangling(format!("-> {t}, a version the store does not have")),
                Err(_) => DefaultLink::Dangling(format!("-> {t}, not a version in the store")),
            },
        };
        Ok(Listing { dir: dir.to_path_buf(), versions, default, edit })
    }

    pub fn has(&self, v: Version) -> bool {
        self.versions.iter().any(|e| e.version == v)
    }

    /// The default version, when `default` names one.
    pub fn default_version(&self) -> Option<Version> {
        match self.default {
            DefaultLink::Version(v) => Some(v),
            _ => None,
        }
    }

    /// The number the next version gets: one more than the highest.
    pub fn next(&self) -> Version {
        self.versions.last().map_or(Version(1), |e| e.version.next())
    }

    /// The highest-numbered version below `v`.
    pub fn before(&self, v: Version) -> Option<Version> {
        self.versions.iter().map(|e| e.version).filter(|x| *x < v).max()
    }

    pub fn path_of(&self, v: Version) -> PathBuf {
        self.dir.join(v.to_string())
    }

    pub fn edit_path(&self) -> PathBuf {
        self.dir.join(EDIT)
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd, Errno> {
    rustix::fs::open(dir, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
}

/// fsync(2) on the directory: the renames in it are on disk when this returns.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    let fd = open_dir(dir).map_err(|errno| StoreError::Sync { dir: dir.into(), errno })?;
    rustix::fs::fsync(&fd).map_err(|errno| StoreError::Sync { dir: dir.into(), errno })
}

/// Points `default` at `v` atomically: the symlink `.default.new` (relative, `-> v`) renamed
/// over `default` (rename(2) replaces it in one step), then the directory synced.
/// Shell: `ln -sfn 3 .default.new && mv -T .default.new default && sync .`
pub fn set_default(dir: &Path, v: Version) -> Result<(), StoreError> {
    let err = |errno| StoreError::SetDefault { dir: dir.into(), version: v, errno };
    let new = dir.join(DEFAULT_NEW);
    match rustix::fs::unlink(&new) {
        Ok(()) | Err(Errno::NOENT) => {}
        Err(e) => return Err(err(e)),
    }
    rustix::fs::symlink(v.to_string(), &new).map_err(err)?;
    rustix::fs::rename(&new, dir.join(DEFAULT)).map_err(|e| {
        let _ = rustix::fs::unlink(&new);
        err(e)
    })?;
    sync_dir(dir)
}

/// An flock(2) held until dropped (the kernel drops it when the process ends, too).
pub struct Lock(#[allow(dead_code)] OwnedFd);

/// How long a lock is waited for before the holder is reported busy.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// flock(2) without blocking, tried again for [`LOCK_WAIT`]: a child that another thread
/// forked holds a copy of the lock's descriptor until it execs, so a lock just released can
/// look held for a moment; a command really running keeps it far longer.
fn flock_briefly(fd: &OwnedFd, op: FlockOperation) -> Result<(), Errno> {
    let until = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match rustix::fs::flock(fd, op) {
            Err(Errno::WOULDBLOCK) if std::time::Instant::now() < until => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            other => return other,
        }
    }
}

/// The store's own lock, exclusive: one changing command at a time.
pub fn lock_store(dir: &Path) -> Result<Lock, StoreError> {
    let fd = open_dir(dir).map_err(|errno| StoreError::Lock { dir: dir.into(), errno })?;
    match flock_briefly(&fd, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Lock(fd)),
        Err(Errno::WOULDBLOCK) => Err(StoreError::Busy { dir: dir.into() }),
        Err(errno) => Err(StoreError::Lock { dir: dir.into(), errno }),
    }
}

/// The working copy's lock: shared while `image edit` runs a command in it, exclusive for
/// publish and discard, which must not move or drop it under a running shell.
pub fn lock_edit(edit: &Path, exclusive: bool) -> Result<Lock, StoreError> {
    let fd = open_dir(edit).map_err(|errno| StoreError::Lock { dir: edit.into(), errno })?;
    let op = if exclusive { FlockOperation::NonBlockingLockExclusive } else { FlockOperation::NonBlockingLockShared };
    match flock_briefly(&fd, op) {
        Ok(()) => Ok(Lock(fd)),
        Err(Errno::WOULDBLOCK) => Err(StoreError::EditBusy { dir: edit.into() }),
        Err(errno) => Err(StoreError::Lock { dir: edit.into(), errno }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    pub fn scratch(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("crctl-store-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn version_names() {
        assert_eq!(Version::parse("1"), Ok(Version(1)));
        assert_eq!(Version::parse("42"), Ok(Version(42)));
        for bad in ["0", "01", "-1", "+1", "a/b", "", "1.0", " 1", "99999999999999999999999"] {
            let e = Version::parse(bad).unwrap_err();
            assert!(e.contains("is not a version"), "{bad}: {e}");
        }
        assert!(Version::parse("edit").unwrap_err().contains("working copy"));
        assert!(Version::parse("default").unwrap_err().contains("name the version itself"));
        assert!(Version::parse("squashfs").unwrap_err().contains("squashfs files, not a version"));
    }

    #[test]
    fn listing_ignores_strays_and_names_a_dangling_default() {
        let dir = scratch("list");
        for d in ["1", "2", "10", "edit", "01", ".edit.tmp-1", "lost+found", "squashfs"] {
            std::fs::create_dir(dir.join(d)).unwrap();
        }
        std::fs::write(dir.join("3"), "a file, not a version").unwrap();
        symlink("2", dir.join(DEFAULT)).unwrap();
        let l = Listing::read(&dir).unwrap();
        let vs: Vec<u64> = l.versions.iter().map(|e| e.version.0).collect();
        assert_eq!(vs, [1, 2, 10]);
        assert_eq!(l.default, DefaultLink::Version(Version(2)));
        assert!(l.edit);
        assert_eq!(l.next(), Version(11));
        assert_eq!(l.before(Version(10)), Some(Version(2)));
        assert_eq!(l.before(Version(1)), None);

        std::fs::remove_file(dir.join(DEFAULT)).unwrap();
        symlink("7", dir.join(DEFAULT)).unwrap();
        let l = Listing::read(&dir).unwrap();
        assert_eq!(l.default, DefaultLink::Dangling("-> 7, a version the store does not have".into()));
        assert_eq!(l.default_version(), None);
        std::fs::remove_file(dir.join(DEFAULT)).unwrap();
        symlink("/srv/x", dir.join(DEFAULT)).unwrap();
        assert_eq!(
            Listing::read(&dir).unwrap().default,
            DefaultLink::Dangling("-> /srv/x, not a version in the store".into())
        );
        std::fs::remove_file(dir.join(DEFAULT)).unwrap();
        assert_eq!(Listing::read(&dir).unwrap().default, DefaultLink::Missing);
        let e = Listing::read(&dir.join("nope")).unwrap_err().to_string();
        assert!(e.contains("is missing; crctl image import DIR makes it"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn default_switches_atomically() {
        let dir = scratch("default");
        std::fs::create_dir(dir.join("1")).unwrap();
        std::fs::create_dir(dir.join("2")).unwrap();
        set_default(&dir, Version(1)).unwrap();
        assert_eq!(std::fs::read_link(dir.join(DEFAULT)).unwrap(), Path::new("1"));
        // A stale .default.new from an interrupted switch is replaced, never left behind.
        symlink("junk", dir.join(DEFAULT_NEW)).unwrap();
        set_default(&dir, Version(2)).unwrap();
        assert_eq!(std::fs::read_link(dir.join(DEFAULT)).unwrap(), Path::new("2"));
        assert!(std::fs::symlink_metadata(dir.join(DEFAULT_NEW)).is_err());
        // A directory where the link belongs: an error, and it stays.
        std::fs::remove_file(dir.join(DEFAULT)).unwrap();
        std::fs::create_dir(dir.join(DEFAULT)).unwrap();
        let e = set_default(&dir, Version(1)).unwrap_err().to_string();
        assert!(e.contains("default at version 1 failed"), "{e}");
        assert!(std::fs::symlink_metadata(dir.join(DEFAULT_NEW)).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn locks_exclude_each_other() {
        let dir = scratch("lock");
        let held = lock_store(&dir).unwrap();
        assert!(matches!(lock_store(&dir), Err(StoreError::Busy { .. })));
        drop(held);
        let shared = lock_edit(&dir, false).unwrap();
        assert!(matches!(lock_edit(&dir, true), Err(StoreError::EditBusy { .. })));
        drop(shared);
        drop(lock_edit(&dir, true).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
