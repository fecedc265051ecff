//! The read-ahead of the NFS mount that holds a squashfs image, raised before the image file
//! is opened: what nfs-utils' `nfsrahead` sets from a udev rule for every NFS mount.
//!
//! Linux gives an NFS mount 128 KiB of read-ahead. A node reads its image file through a
//! loop device, at the offsets squashfs asks for; with the image laid out in boot order
//! (`crctl image`'s boot order), those offsets mostly follow each other, and a larger window
//! turns them into a few READs of the server's largest size rather than hundreds of small
//! ones. A file's window is taken from its mount when it is opened, so this comes first.
//! Shell: `echo 2048 >/sys/class/bdi/$(mountpoint -d /run/rootfs/image)/read_ahead_kb`.
//!
//! The image's tables (inodes, directories, fragments, ids: a few hundred KiB at the end of
//! the file, which every lookup reads a block of) are then asked for whole, in one go
//! ([`tables`] from its superblock, which backhand reads; [`prefetch`]): otherwise each
//! block comes in a READ of its own, as the boot first needs it.

use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use backhand::SuperBlock;
use deku::reader::Reader;
use deku::DekuReader;
use rustix::fd::AsFd;
use rustix::fs::Advice;
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

/// A squashfs superblock's size: what [`tables`] needs of the file's start.
pub const SUPERBLOCK_BYTES: usize = 96;
/// Tables larger than this are not asked for at once (a damaged superblock, or an image of
/// millions of files): the boot reads what it needs as it goes.
pub const MAX_TABLES: u64 = 64 << 20;

/// Where the tables of the squashfs image starting with `head` lie: from its inode table
/// to the end of what it uses, or None for what is no squashfs 4.0 superblock (the mount
/// then says what is wrong). No I/O.
pub fn tables(head: &[u8]) -> Option<std::ops::Range<u64>> {
    let mut cursor = std::io::Cursor::new(head);
    let mut reader = Reader::new(&mut cursor);
    let sb = SuperBlock::from_reader_with_ctx(&mut reader, (*b"hsqs", 4, 0, deku::ctx::Endian::Little)).ok()?;
    let range = sb.inode_table..sb.bytes_used;
    (!range.is_empty() && range.end - range.start <= MAX_TABLES).then_some(range)
}

/// Asks the kernel to read `range` of `file` now (`POSIX_FADV_WILLNEED`), a window at a time
/// (it reads at most one per call); it returns at once, the READs in flight.
pub fn prefetch(file: impl AsFd, range: std::ops::Range<u64>, window: u64) -> Result<(), Errno> {
    for (at, len) in windows(range, window) {
        rustix::fs::fadvise(file.as_fd(), at, Some(len), Advice::WillNeed)?;
    }
    Ok(())
}

/// `range` cut into `(offset, length)` pieces of at most `window` bytes, in order (none for
/// an empty range or a zero window). No I/O.
pub fn windows(range: std::ops::Range<u64>, window: u64) -> impl Iterator<Item = (u64, NonZeroU64)> {
    let mut at = range.start;
    std::iter::from_fn(move || {
        let len = NonZeroU64::new(window.min(range.end.saturating_sub(at)))?;
        let piece = (at, len);
        at += len.get();
        Some(piece)
    })
}

/// `/sys/class/bdi/MAJOR:MINOR/read_ahead_kb` of the filesystem mounted on `mount`.
pub fn knob(root: &Root, mount: &Path) -> Result<PathBuf, ReadAheadError> {
    let st =
        rustix::fs::stat(mount).map_err(|errno| ReadAheadError::Stat { mount: mount.display().to_string(), errno })?;
    let (major, minor) = (rustix::fs::major(st.st_dev), rustix::fs::minor(st.st_dev));
    Ok(root.path(&format!("/sys/class/bdi/{major}:{minor}/read_ahead_kb")))
}

/// Sets the read-ahead of the filesystem on `mount` to `kib` unless it is larger already;
/// the window it had.
pub fn raise(root: &Root, mount: &Path, kib: u32) -> Result<u32, ReadAheadError> {
    let path = knob(root, mount)?;
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|source| ReadAheadError::Read { path: shown.clone(), source })?;
    let was: u32 =
        text.trim().parse().map_err(|_| ReadAheadError::Parse { path: shown.clone(), text: text.clone() })?;
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

    /// A squashfs 4.0 superblock (squashfs_fs.h) with its tables at 1000..1400.
    fn superblock() -> Vec<u8> {
        let mut sb = Vec::new();
        sb.extend(b"hsqs");
        for v in [3u32, 0, 131072, 1] {
            sb.extend(v.to_le_bytes()); // inodes, mkfs time, block size, fragments
        }
        for v in [6u16, 17, 0, 1, 4, 0] {
            sb.extend(v.to_le_bytes()); // zstd, block log, flags, ids, major, minor
        }
        for v in [0u64, 1400, 1390, u64::MAX, 1000, 1100, 1200, 1300] {
            sb.extend(v.to_le_bytes()); // root inode, bytes used, then the tables' starts
        }
        assert_eq!(sb.len(), SUPERBLOCK_BYTES);
        sb
    }

    #[test]
    fn the_tables_are_from_the_inode_table_to_the_end() {
        assert_eq!(tables(&superblock()), Some(1000..1400));
        let mut bad = superblock();
        bad[0] = b'x';
        assert_eq!(tables(&bad), None, "no squashfs");
        assert_eq!(tables(&superblock()[..50]), None, "cut short");
        let mut huge = superblock();
        huge[40..48].copy_from_slice(&(1000 + MAX_TABLES + 1).to_le_bytes());
        assert_eq!(tables(&huge), None, "past the limit");
        let mut v3 = superblock();
        v3[28] = 3;
        assert_eq!(tables(&v3), None, "squashfs 3");
    }

    /// A real mksquashfs image: its tables end where its superblock says it ends, and hold
    /// the names of its files (the directory table), not their bytes.
    #[test]
    #[ignore = "needs mksquashfs (Debian's squashfs-tools, which scripts/setup installs); scripts/test runs it"]
    fn a_real_images_tables_hold_its_names() {
        let dir = tempfile_in_tmp("mksquashfs");
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tree/usr/lib")).unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        std::fs::write(dir.join("tree/usr/lib/name-in-the-table"), &body).unwrap();
        let image = dir.join("image.squashfs");
        let ok = std::process::Command::new("mksquashfs")
            .args([dir.join("tree").as_os_str(), image.as_os_str()])
            .args(["-comp", "zstd", "-noappend", "-no-progress", "-quiet", "-noI", "-noD"])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let bytes = std::fs::read(&image).unwrap();
        let r = tables(&bytes[..SUPERBLOCK_BYTES]).unwrap();
        let t = &bytes[r.start as usize..r.end as usize];
        assert!(r.end as usize <= bytes.len() && r.end as usize + 4096 > bytes.len());
        assert!(t.windows(17).any(|w| w == b"name-in-the-table"), "the directory table is in the range");
        assert!(bytes[..r.start as usize].windows(64).any(|w| w == &body[1000..1064]), "the data before it");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_range_is_asked_for_a_window_at_a_time() {
        let mib = 1u64 << 20;
        let pieces: Vec<(u64, u64)> = windows(mib..5 * mib - 7, 2 * mib).map(|(at, len)| (at, len.get())).collect();
        assert_eq!(pieces, [(mib, 2 * mib), (3 * mib, 2 * mib - 7)]);
        assert_eq!(windows(0..0, 2 * mib).count(), 0);
        assert_eq!(windows(0..10, 0).count(), 0);
        #[allow(clippy::reversed_empty_ranges)] // an end before the start, as a bad superblock could give
        let backwards = 7..3;
        assert_eq!(windows(backwards, 2).count(), 0);
        // The kernel takes each piece (the file's pages are asked for, not waited on).
        let file = tempfile_in_tmp("prefetch");
        std::fs::write(&file, vec![0u8; 5 << 20]).unwrap();
        prefetch(std::fs::File::open(&file).unwrap(), mib..5 * mib - 7, 2 * mib).unwrap();
        std::fs::remove_file(file).unwrap();
    }

    fn tempfile_in_tmp(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("clusterroot-readahead-{tag}-{}", std::process::id()))
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
