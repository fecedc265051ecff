//! One regular file's data copied into another with its holes kept.
//!
//! A sparse file (Debian's `/var/log/lastlog` is one, its apparent size growing with the
//! highest UID: over a terabyte near 2^32) must not arrive dense, or one file fills the store.
//! `copy_file_range(2)` alone does not keep holes: on ext4 and tmpfs (which have no method of
//! their own for it) the kernel splices every byte, a hole's zeros included. So the copy walks the source's data with
//! `lseek(2)`'s `SEEK_DATA` and `SEEK_HOLE`, copies only those ranges at the same offsets, and
//! sets the length with `ftruncate(2)` so a trailing hole stays one. Zeros the source stored as
//! data stay data: holes are kept, never invented.

use std::fs::File;

use rustix::fs::SeekFrom;
use rustix::io::Errno;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("reading its size failed: {errno}")]
    Size { errno: Errno },
    #[error("finding its data from byte {offset} on (lseek SEEK_DATA/SEEK_HOLE) failed: {errno}")]
    Seek { offset: u64, errno: Errno },
    #[error("reading it at byte {offset} failed: {errno}")]
    Read { offset: u64, errno: Errno },
    #[error("writing the copy at byte {offset} failed: {errno}")]
    Write { offset: u64, errno: Errno },
    #[error("copying it at byte {offset} (copy_file_range) failed: {errno}")]
    Kernel { offset: u64, errno: Errno },
    #[error("writing the copy at byte {offset} wrote nothing")]
    WroteNothing { offset: u64 },
    #[error("setting the copy's length to {size} bytes (ftruncate) failed: {errno}")]
    Length { size: u64, errno: Errno },
    #[error(
        "it changed size while being copied ({then} bytes when the copy began, {now} after); \
         stop what writes to it, or copy a snapshot"
    )]
    Changed { then: u64, now: u64 },
}

/// The most one `copy_file_range(2)` call is asked for, so a huge extent is copied in steps.
const CHUNK: usize = 1 << 30;
/// The buffer of the copy through userspace.
const BUFFER: usize = 1 << 17;

/// The length of `file` (fstat(2)'s `st_size`).
fn size_of(file: &File) -> Result<u64, DataError> {
    let st = rustix::fs::fstat(file).map_err(|errno| DataError::Size { errno })?;
    // st_size is never negative for a regular file.
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

/// Copies the data of `src` into the empty file `dst` at the same offsets, holes left
/// unwritten, and gives `dst` the length of `src`. Returns how many bytes of data it copied
/// (the holes are not counted: they are neither read nor written). An error if `src` changes
/// size meanwhile.
pub fn copy(src: &File, dst: &File) -> Result<u64, DataError> {
    copy_sized(src, dst, size_of(src)?, true)
}

/// [`copy`] for a source of `size` bytes when the copy begins; through userspace only unless
/// `kernel` (tests take both ways).
fn copy_sized(src: &File, dst: &File, size: u64, kernel: bool) -> Result<u64, DataError> {
    let mut range = Range { kernel, buf: Vec::new() };
    let mut copied = 0;
    let mut at = 0;
    while let Some((start, end)) = next_data(src, at, size)? {
        range.copy(src, dst, start, end, size)?;
        copied += end - start;
        at = end;
    }
    // The length last: a trailing hole is made here, and nothing is ever written there.
    rustix::fs::ftruncate(dst, size).map_err(|errno| DataError::Length { size, errno })?;
    match size_of(src)? {
        now if now != size => Err(DataError::Changed { then: size, now }),
        _ => Ok(copied),
    }
}

/// The first range of data at or after `at` in a file of `size` bytes, as `[start, end)`;
/// `None` when only a hole (or nothing) is left. Where the filesystem cannot tell
/// (`lseek(2)` refuses `SEEK_DATA` with EINVAL) everything from `at` on counts as data.
fn next_data(src: &File, at: u64, size: u64) -> Result<Option<(u64, u64)>, DataError> {
    if at >= size {
        return Ok(None);
    }
    let start = match rustix::fs::seek(src, SeekFrom::Data(at)) {
        Ok(start) => start,
        // ENXIO: no data from `at` to the end of the file.
        Err(Errno::NXIO) => return Ok(None),
        Err(Errno::INVAL) => return Ok(Some((at, size))),
        Err(errno) => return Err(DataError::Seek { offset: at, errno }),
    };
    if start >= size {
        // Data past the length the copy began with: the file grew, which the end notices.
        return Ok(None);
    }
    let end = match rustix::fs::seek(src, SeekFrom::Hole(start)) {
        Ok(end) => end.min(size),
        // ENXIO: `start` is past the end now: the file shrank, which the copy notices.
        Err(Errno::NXIO) => size,
        Err(errno) => return Err(DataError::Seek { offset: start, errno }),
    };
    Ok(Some((start, end)))
}

/// Copies ranges of one file: in the kernel while it accepts, else through a buffer.
struct Range {
    /// Whether `copy_file_range(2)` is still worth trying for this file.
    kernel: bool,
    buf: Vec<u8>,
}

impl Range {
    /// Copies `[start, end)` of `src` to the same offsets of `dst`. A source that ends before
    /// `end` has shrunk below `size`, its length when the copy began.
    fn copy(&mut self, src: &File, dst: &File, start: u64, end: u64, size: u64) -> Result<(), DataError> {
        let mut at = start;
        while at < end {
            let want = usize::try_from(end - at).unwrap_or(usize::MAX);
            let mut n = 0;
            if self.kernel {
                n = self.in_kernel(src, dst, at, want.min(CHUNK))?;
            }
            if n == 0 {
                // Refused, or nothing copied: read(2) says whether the source really ends here.
                self.kernel = false;
                n = self.through_buffer(src, dst, at, want.min(BUFFER))?;
            }
            if n == 0 {
                return Err(DataError::Changed { then: size, now: size_of(src)? });
            }
            at += n as u64;
        }
        Ok(())
    }

    /// `copy_file_range(2)` of up to `len` bytes at `at`, with explicit offsets (the files'
    /// own positions are neither used nor moved). 0 where the kernel refuses it for these
    /// files (EXDEV across filesystems, ENOSYS, EOPNOTSUPP, EINVAL).
    fn in_kernel(&mut self, src: &File, dst: &File, at: u64, len: usize) -> Result<usize, DataError> {
        loop {
            let (mut off_in, mut off_out) = (at, at);
            match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), len) {
                Ok(n) => return Ok(n),
                Err(Errno::INTR) => continue,
                Err(Errno::XDEV | Errno::NOSYS | Errno::OPNOTSUPP | Errno::INVAL) => return Ok(0),
                // Which side failed is not said (EIO, ENOSPC, ...): the message names both files.
                Err(errno) => return Err(DataError::Kernel { offset: at, errno }),
            }
        }
    }

    /// pread(2) of up to `len` bytes at `at`, then pwrite(2) of all of them at the same offset.
    fn through_buffer(&mut self, src: &File, dst: &File, at: u64, len: usize) -> Result<usize, DataError> {
        self.buf.resize(BUFFER, 0);
        let n = loop {
            match rustix::io::pread(src, &mut self.buf[..len], at) {
                Err(Errno::INTR) => continue,
                r => break r.map_err(|errno| DataError::Read { offset: at, errno })?,
            }
        };
        write_all_at(dst, &self.buf[..n], at)?;
        Ok(n)
    }
}

/// pwrite(2) until all of `buf` is at `at`.
fn write_all_at(dst: &File, mut buf: &[u8], mut at: u64) -> Result<(), DataError> {
    while !buf.is_empty() {
        match rustix::io::pwrite(dst, buf, at) {
            Ok(0) => return Err(DataError::WroteNothing { offset: at }),
            Ok(n) => {
                buf = &buf[n..];
                at += n as u64;
            }
            Err(Errno::INTR) => {}
            Err(errno) => return Err(DataError::Write { offset: at, errno }),
        }
    }
    Ok(())
}

/// Test files: sparse ones made, and their data found, independently of the copy.
#[cfg(test)]
pub(crate) mod fixture {
    use std::os::unix::fs::FileExt;
    use std::path::Path;

    use rustix::fs::SeekFrom;
    use rustix::io::Errno;

    /// 1 TiB: the apparent size of Debian's `/var/log/lastlog` once a UID nears 2^32.
    pub const TIB: u64 = 1 << 40;

    /// A test file: its name, its apparent size, and the data written (the rest are holes).
    pub struct Sparse {
        pub name: &'static str,
        pub size: u64,
        pub data: Vec<(u64, Vec<u8>)>,
    }

    /// The test files.
    pub fn files() -> Vec<Sparse> {
        let file = |name, size, data| Sparse { name, size, data };
        let text = |s: &str| s.as_bytes().to_vec();
        vec![
            // First, and small: a copy that fills holes fails here, not after a terabyte.
            canary(),
            // Data at the start, in the middle and up to the very last byte.
            file("lastlog", TIB, vec![(0, text("first")), (TIB / 2 + 3, text("middle")), (TIB - 4, text("last"))]),
            file("trailing-hole", TIB, vec![(0, vec![7; 8192])]),
            file("all-hole", TIB, vec![]),
            // Zeros the source stored are data, and stay data: no hole is invented.
            file("zeros", 1 << 20, vec![(64 << 10, vec![0; 64 << 10])]),
            // Dense, and longer than one buffer of the copy through userspace.
            file("dense", 1 << 20, vec![(0, (0..1u32 << 20).map(|i| (i % 251) as u8).collect())]),
            file("empty", 0, vec![]),
        ]
    }

    /// 64 MiB with one block of data in the middle.
    pub fn canary() -> Sparse {
        Sparse { name: "canary", size: 64 << 20, data: vec![(32 << 20, b"canary".to_vec())] }
    }

    /// Makes `path` a file of `size` bytes with `data` written at each offset, holes elsewhere.
    pub fn sparse(path: &Path, size: u64, data: &[(u64, Vec<u8>)]) {
        let f = std::fs::File::create(path).unwrap();
        f.set_len(size).unwrap();
        for (at, bytes) in data {
            f.write_all_at(bytes, *at).unwrap();
        }
    }

    /// The data of `path` as `[start, end)` ranges, as SEEK_DATA and SEEK_HOLE find them.
    pub fn extents(path: &Path) -> Vec<(u64, u64)> {
        let f = std::fs::File::open(path).unwrap();
        let mut found = Vec::new();
        let mut at = 0;
        loop {
            let start = match rustix::fs::seek(&f, SeekFrom::Data(at)) {
                Err(Errno::NXIO) => return found,
                r => r.unwrap(),
            };
            at = rustix::fs::seek(&f, SeekFrom::Hole(start)).unwrap();
            found.push((start, at));
        }
    }

    /// Whether the filesystem of `dir` keeps holes (a file with a hole shows two extents).
    pub fn keeps_holes(dir: &Path) -> bool {
        let probe = dir.join(".holes-probe");
        sparse(&probe, 3 << 20, &[(0, vec![1]), ((2 << 20) + 5, vec![1])]);
        let holes = extents(&probe).len() == 2;
        std::fs::remove_file(&probe).unwrap();
        holes
    }

    /// Checks that `copy` is `src` again: length, where the data is, the data itself, and
    /// about as many blocks. Returns the blocks of both.
    pub fn check(src: &Path, copy: &Path) -> (u64, u64) {
        use std::os::unix::fs::MetadataExt;
        let (ms, mc) = (std::fs::metadata(src).unwrap(), std::fs::metadata(copy).unwrap());
        assert_eq!(mc.len(), ms.len(), "{}: apparent size", copy.display());
        let ext = extents(src);
        assert_eq!(extents(copy), ext, "{}: data where the source has data, holes where it has holes", copy.display());
        let (fs, fc) = (std::fs::File::open(src).unwrap(), std::fs::File::open(copy).unwrap());
        for (start, end) in ext {
            let len = usize::try_from(end - start).unwrap();
            let (mut a, mut b) = (vec![0; len], vec![1; len]);
            fs.read_exact_at(&mut a, start).unwrap();
            fc.read_exact_at(&mut b, start).unwrap();
            assert!(a == b, "{}: the data at {start}..{end} differs", copy.display());
        }
        // The same order: the filesystem may lay out (or preallocate) a little differently.
        assert!(
            mc.blocks() <= 2 * ms.blocks() + 64,
            "{}: {} blocks, {} in the source",
            copy.display(),
            mc.blocks(),
            ms.blocks()
        );
        (ms.blocks(), mc.blocks())
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::{check, extents, files, keeps_holes, sparse, Sparse};
    use super::*;
    use std::path::{Path, PathBuf};

    /// A scratch directory under the temporary directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("crctl-data-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Makes the test files in `from`, copies each into `to` (in the kernel where it accepts
    /// if `kernel`, else through userspace), and checks the copies.
    fn copy_all(from: &Path, to: &Path, kernel: bool) {
        for Sparse { name, size, data } in files() {
            let (src, dst) = (from.join(name), to.join(format!("{name}.copy")));
            sparse(&src, size, &data);
            let (s, d) = (File::open(&src).unwrap(), File::create_new(&dst).unwrap());
            let copied = copy_sized(&s, &d, size, kernel).unwrap();
            let (blocks, copy_blocks) = check(&src, &dst);
            let data: u64 = extents(&src).iter().map(|(start, end)| end - start).sum();
            assert_eq!(copied, data, "{name}: only the data is counted");
            eprintln!("{name}: {size} bytes, {data} of data, {blocks} blocks, {copy_blocks} in the copy");
            std::fs::remove_file(&dst).unwrap();
        }
    }

    #[test]
    fn copies_the_data_and_keeps_the_holes() {
        let dir = Scratch::new("holes");
        if !keeps_holes(&dir.0) {
            eprintln!("skipped: the filesystem of {} keeps no holes", dir.0.display());
            return;
        }
        copy_all(&dir.0, &dir.0, true);
        copy_all(&dir.0, &dir.0, false);
    }

    /// tmpfs (where `copy_file_range(2)` also fills holes), and across filesystems, where the
    /// kernel refuses it (EXDEV) and the copy goes through userspace: in a thread with a
    /// private mount namespace, so the host never sees the tmpfs.
    #[test]
    #[ignore = "mounting a tmpfs needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
    fn keeps_the_holes_on_tmpfs_and_across_filesystems() {
        use rustix::mount::{mount, mount_change, MountFlags, MountPropagationFlags};
        let dir = Scratch::new("tmpfs");
        let (tmpfs, disk) = (dir.0.join("tmpfs"), dir.0.join("disk"));
        std::fs::create_dir_all(&tmpfs).unwrap();
        std::fs::create_dir_all(&disk).unwrap();
        let result = std::thread::spawn(move || {
            // SAFETY: only this thread's mount namespace and filesystem context change; it
            // shares no memory with other threads that unsharing could affect, and ends here.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
                .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
            // mount --make-rprivate /: the tmpfs below never reaches the host.
            mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
                .map_err(|e| format!("making / private: {e}"))?;
            mount("tmpfs", &tmpfs, "tmpfs", MountFlags::empty(), c"size=64m")
                .map_err(|e| format!("mount -t tmpfs: {e}"))?;
            let magic = rustix::fs::statfs(&tmpfs).unwrap().f_type;
            assert_eq!(magic as u64, 0x0102_1994, "{} is not on a tmpfs", tmpfs.display());
            copy_all(&tmpfs, &tmpfs, true);
            copy_all(&tmpfs, &disk, true);
            if keeps_holes(&disk) {
                copy_all(&disk, &tmpfs, true);
            }
            Ok::<(), String>(())
        })
        .join()
        .expect("the tmpfs test's thread panicked");
        if let Err(e) = result {
            eprintln!("skipped: the kernel refused: {e}");
        }
    }

    #[test]
    fn a_file_that_changes_size_meanwhile_is_an_error() {
        let dir = Scratch::new("changed");
        let src = dir.0.join("log");
        sparse(&src, 1 << 20, &[(0, vec![5; 1 << 20])]);
        for (then, kernel) in [(2 << 20, true), (2 << 20, false), (512 << 10, true)] {
            let dst = dir.0.join("copy");
            let _ = std::fs::remove_file(&dst);
            let (s, d) = (File::open(&src).unwrap(), File::create_new(&dst).unwrap());
            let e = copy_sized(&s, &d, then, kernel).unwrap_err();
            assert!(matches!(e, DataError::Changed { then: t, now } if t == then && now == 1 << 20), "{e:?}");
        }
        let e = copy_sized(&File::open(&src).unwrap(), &File::create(dir.0.join("copy")).unwrap(), 2 << 20, true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "it changed size while being copied (2097152 bytes when the copy began, 1048576 after); \
             stop what writes to it, or copy a snapshot"
        );
    }
}
