//! Per-node files: `<overlays>/<mac>*.tar[.gz|.zst]` and `<overlays>/<mac>/`, laid over `/etc`.
//!
//! Every byte of an archive and every file in a node directory is untrusted. Writes are
//! resolved by hand, one component at a time from an fd of the new root's `/etc`, each step an
//! `openat(O_NOFOLLOW)` of a single name: a symlink on the way is read and followed only while
//! it stays inside `/etc` (an absolute one means the new root's path, as it will after boot),
//! and an entry that a symlink leads out of `/etc` is refused with a warning. The last
//! component is never followed: files, symlinks and hard links are made under a temporary name
//! and renamed into place, so a failed write leaves the shared image's version visible.
//! Decompressed bytes and written file data are bounded by the free space of `/etc`'s
//! filesystem, and everything stops at the boot's deadline.

use std::cell::Cell;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::rc::Rc;
use std::time::Instant;

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags, Timestamps};
use rustix::io::Errno;
use rustix::time::Timespec;

use crate::kmsg::Log;
use crate::mac::MacAddress;

#[derive(Debug, thiserror::Error)]
pub enum NodeFilesError {
    #[error("opening {path} failed: {errno}")]
    Open { path: String, errno: Errno },
    #[error("{path}: {op} failed: {errno}")]
    Write { path: String, op: &'static str, errno: Errno },
    #[error("{path}: write failed: {errno}; the shared image's version stays")]
    WriteFile { path: String, errno: Errno },
    #[error("{path}: reading its data failed: {cause}; the shared image's version stays")]
    ReadData { path: String, cause: io::Error },
    #[error("{path}: is a directory in the shared image; a {kind} does not replace it; skipped")]
    ReplaceDir { path: String, kind: &'static str },
    #[error("entry '{entry}' goes through a symlink out of /etc; skipped")]
    Escape { entry: String },
    #[error("hard link '{entry}' -> '{target}': {why}; skipped")]
    HardLink { entry: String, target: String, why: &'static str },
    #[error("entry '{entry}' is unsafe ({why}); skipped")]
    Unsafe { entry: String, why: &'static str },
    #[error("reading {source_name} failed: {cause}")]
    Read { source_name: String, cause: io::Error },
    #[error("{label}: clusterroot.timeout reached after {entries} entries; the rest is skipped")]
    Timeout { label: String, entries: usize },
}

/// How deep a node-file directory may nest; deeper trees are cut off with a warning.
const MAX_DEPTH: usize = 64;
/// How many directories an archive entry's name may hold. Far beyond anything real in `/etc`;
/// it bounds the open fds of the directory cache (see [`KEEP_OPEN`]).
const MAX_ENTRY_DEPTH: usize = 8192;
/// Warnings printed per archive or directory; the rest are counted in one closing line, so a
/// hostile archive cannot flood the console.
const MAX_WARNINGS: usize = 10;
/// Symlinks followed while resolving one path, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: usize = 40;
/// Components that followed symlinks may add to one lookup (`PATH_MAX` worth of `a/`).
const MAX_LINK_COMPONENTS: usize = 2048;
/// The directory cache keeps the fds of this many innermost levels open, plus one in every
/// `KEEP_OPEN` levels above them to walk down from when the path backs up.
const KEEP_OPEN: usize = 32;
/// A progress line for every this many entries or decompressed bytes.
const PROGRESS_ENTRIES: usize = 1000;
const PROGRESS_BYTES: u64 = 16 << 20;
/// File data is copied in chunks of this size; the deadline is checked between them.
const CHUNK: usize = 64 << 10;

/// Warnings for one source, capped at [`MAX_WARNINGS`].
struct Warner<'a> {
    log: &'a Log,
    label: String,
    count: usize,
}

impl<'a> Warner<'a> {
    fn new(log: &'a Log, label: &str) -> Warner<'a> {
        Warner { log, label: label.to_string(), count: 0 }
    }

    fn warn(&mut self, msg: &str) {
        self.count += 1;
        if self.count <= MAX_WARNINGS {
            self.log.warn(&format!("node files: {}: {msg}", self.label));
        }
    }
}

impl Drop for Warner<'_> {
    fn drop(&mut self) {
        if self.count > MAX_WARNINGS {
            self.log.warn(&format!(
                "node files: {}: {} more warnings not shown",
                self.label,
                self.count - MAX_WARNINGS
            ));
        }
    }
}

/// A path inside `/etc`, split into checked components: no `..`, no empty or `.` parts.
/// A leading `/` is dropped, as GNU tar does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcPath(Vec<Vec<u8>>);

impl EtcPath {
    pub fn parse(raw: &[u8]) -> Result<EtcPath, &'static str> {
        let mut comps = Vec::new();
        for c in raw.split(|b| *b == b'/') {
            match c {
                b"" | b"." => {}
                b".." => return Err("contains '..'"),
                c if c.contains(&0) => return Err("contains a NUL byte"),
                c => comps.push(c.to_vec()),
            }
        }
        if comps.len() > MAX_ENTRY_DEPTH {
            return Err("nests deeper than 8192 directories");
        }
        Ok(EtcPath(comps))
    }

    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    fn join(&self, name: &[u8]) -> EtcPath {
        let mut v = self.0.clone();
        v.push(name.to_vec());
        EtcPath(v)
    }

    /// The first `n` components joined with `/` (`.` for none).
    fn rel(&self, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, c) in self.0[..n].iter().enumerate() {
            if i > 0 {
                out.push(b'/');
            }
            out.extend_from_slice(c);
        }
        if out.is_empty() {
            out.push(b'.');
        }
        out
    }

    /// The entry as named in warnings about it: `ssh/ssh_host_ed25519_key`.
    pub fn entry(&self) -> String {
        String::from_utf8_lossy(&self.rel(self.0.len())).into_owned()
    }

    pub fn display(&self) -> String {
        format!("/etc/{}", self.entry())
    }
}

/// Owner, mode and modification time to give a written entry.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
}

fn times(m: &Meta) -> Timestamps {
    let t = Timespec { tv_sec: m.mtime.0, tv_nsec: m.mtime.1 as _ };
    Timestamps { last_access: t, last_modification: t }
}

const IN_ROOT: ResolveFlags = ResolveFlags::IN_ROOT.union(ResolveFlags::NO_MAGICLINKS);

/// Why a lookup under `/etc` stopped.
enum Lookup {
    /// A symlink on the way leads out of `/etc`.
    Escape,
    /// A syscall failed: what it did, on which component, and why.
    Failed(&'static str, Errno),
}

/// `openat(dir, name, O_PATH|O_DIRECTORY|O_NOFOLLOW)`: one step down into a real directory.
/// `name` is a single component, so nothing but a symlink named `name` could be followed, and
/// `O_NOFOLLOW` refuses that (`ENOTDIR` or `ELOOP`).
fn open_dir(dir: BorrowedFd<'_>, name: &[u8]) -> Result<OwnedFd, Errno> {
    let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    rustix::fs::openat(dir, OsStr::from_bytes(name), flags, Mode::empty())
}

/// One directory between `/etc` and the entries being written: the entry-name component and,
/// unless closed to save fds, the directory it resolved to.
struct Level {
    name: Vec<u8>,
    fd: Option<OwnedFd>,
}

/// Writes into the new root's `/etc`, never outside it.
pub struct EtcWriter {
    /// `<newroot>/etc`, where every lookup starts.
    etc: OwnedFd,
    /// Its device and inode: a `..` from there would leave `/etc`.
    etc_id: (u64, u64),
    /// The directories of the last entry's parent path, outermost first. Cached fds are always
    /// real directories inside `/etc` (reached by single-name steps and `..` below `/etc`), and
    /// nothing here ever removes or renames a directory, so a stale cache can at worst put an
    /// entry in another directory of `/etc`, never outside it.
    cache: Vec<Level>,
    /// Directories (path joined with `/`, depth) whose times are set last, deepest first.
    dir_times: Vec<(Vec<u8>, usize, Meta)>,
    /// Bytes free on `/etc`'s filesystem when opened: the most any archive may decompress to.
    free: u64,
    /// File data that may still be written (starts at `free`).
    budget: u64,
    deadline: Instant,
    timed_out: bool,
    /// Counts temporary names, which are `.clusterroot-new.<n>` in the entry's directory.
    temps: u64,
    /// Directory steps taken so far (see [`EtcWriter::steps`]).
    steps: Cell<u64>,
    pub written: usize,
}

impl EtcWriter {
    /// Opens `<newroot>/etc` (resolved inside `newroot`), creating it if missing, and measures
    /// the free space of its filesystem. Nothing is written after `deadline`.
    pub fn open(newroot: &str, deadline: Instant) -> Result<EtcWriter, NodeFilesError> {
        let open_err = |path: &str| {
            let path = path.to_string();
            move |errno| NodeFilesError::Open { path: path.clone(), errno }
        };
        let root = rustix::fs::open(newroot, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(open_err(newroot))?;
        // The shared image's own /etc may be a symlink (to /usr/etc, say): resolve it with the
        // new root as "/", as it will be after boot.
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let etc = match rustix::fs::openat2(&root, "etc", flags, Mode::empty(), IN_ROOT) {
            Err(Errno::NOENT) => {
                rustix::fs::mkdirat(&root, "etc", Mode::from_raw_mode(0o755)).map_err(open_err("/etc"))?;
                rustix::fs::openat2(&root, "etc", flags, Mode::empty(), IN_ROOT)
            }
            r => r,
        }
        .map_err(open_err(&format!("{newroot}/etc")))?;
        let st = rustix::fs::fstat(&etc).map_err(open_err(&format!("{newroot}/etc")))?;
        // statvfs(3) once: how much the upper can still take. Unknown means unbounded; the
        // deadline still holds.
        let free = rustix::fs::fstatvfs(&etc).map(|v| v.f_bavail.saturating_mul(v.f_frsize)).unwrap_or(u64::MAX);
        Ok(EtcWriter {
            etc,
            etc_id: (st.st_dev, st.st_ino),
            cache: Vec::new(),
            dir_times: Vec::new(),
            free,
            budget: free,
            deadline,
            timed_out: false,
            temps: 0,
            steps: Cell::new(0),
            written: 0,
        })
    }

    /// How many single-name directory steps the writer has taken: the cost of resolving the
    /// entries' parents, which the directory cache keeps linear in the number of entries
    /// whatever their depth (tests count it rather than time it).
    pub fn steps(&self) -> u64 {
        self.steps.get()
    }

    /// Bytes that were free on `/etc`'s filesystem when the writer was opened.
    pub fn free_space(&self) -> u64 {
        self.free
    }

    /// Lowers the space budget to at most `max` bytes (for a caller that knows better than
    /// statvfs, such as a fuzzer writing to a big scratch filesystem).
    pub fn limit_space(&mut self, max: u64) {
        self.free = self.free.min(max);
        self.budget = self.budget.min(max);
    }

    /// Whether the deadline has passed (and stays passed once seen).
    pub fn expired(&mut self) -> bool {
        self.timed_out = self.timed_out || Instant::now() >= self.deadline;
        self.timed_out
    }

    fn is_etc(&self, dir: BorrowedFd<'_>) -> Result<bool, Lookup> {
        let st = rustix::fs::fstat(dir).map_err(|e| Lookup::Failed("stat", e))?;
        Ok((st.st_dev, st.st_ino) == self.etc_id)
    }

    /// The target of the symlink `name` in `dir`; anything else that is not a directory
    /// cannot hold entries (`ENOTDIR`).
    fn link_target(dir: BorrowedFd<'_>, name: &[u8]) -> Result<Vec<u8>, Lookup> {
        match rustix::fs::readlinkat(dir, OsStr::from_bytes(name), Vec::new()) {
            Ok(t) => Ok(t.into_bytes()),
            Err(Errno::INVAL) => Err(Lookup::Failed("open", Errno::NOTDIR)),
            Err(e) => Err(Lookup::Failed("readlink", e)),
        }
    }

    /// Steps from `dir` into its directory `name`, an entry's own component: creates it
    /// (mode 0755, as tar does) when `create` and it is missing, and follows a symlink there
    /// by hand while it stays inside `/etc`.
    fn step(&self, dir: BorrowedFd<'_>, name: &[u8], create: bool) -> Result<OwnedFd, Lookup> {
        self.steps.set(self.steps.get() + 1);
        match open_dir(dir, name) {
            Ok(fd) => return Ok(fd),
            Err(Errno::NOENT) if create => {
                match rustix::fs::mkdirat(dir, OsStr::from_bytes(name), Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(Lookup::Failed("mkdir", e)),
                }
                match open_dir(dir, name) {
                    Ok(fd) => return Ok(fd),
                    Err(Errno::NOTDIR) | Err(Errno::LOOP) => {}
                    Err(e) => return Err(Lookup::Failed("open", e)),
                }
            }
            Err(Errno::NOTDIR) | Err(Errno::LOOP) => {}
            Err(e) => return Err(Lookup::Failed("open", e)),
        }
        let target = Self::link_target(dir, name)?;
        self.follow(dir, target)
    }

    /// Resolves the symlink target `target` found in `dir` to a directory inside `/etc`, as
    /// the kernel would with the new root as `/`, but refusing to leave `/etc`: `..` at `/etc`
    /// and absolute targets not under `/etc` are escapes. Symlinks met on the way are followed
    /// the same way, at most [`MAX_LINKS`] of them.
    fn follow(&self, dir: BorrowedFd<'_>, target: Vec<u8>) -> Result<OwnedFd, Lookup> {
        let dup = |fd: BorrowedFd<'_>| rustix::io::fcntl_dupfd_cloexec(fd, 0).map_err(|e| Lookup::Failed("dup", e));
        let mut cur = dup(dir)?;
        // Components still to walk, the next one last.
        let mut pending: Vec<Vec<u8>> = Vec::new();
        let mut next_target = Some(target);
        let (mut links, mut added) = (0, 0);
        loop {
            if let Some(t) = next_target.take() {
                links += 1;
                if links > MAX_LINKS {
                    return Err(Lookup::Failed("following symlinks", Errno::LOOP));
                }
                let mut parts: Vec<&[u8]> = t.split(|b| *b == b'/').filter(|c| !c.is_empty() && *c != b".").collect();
                if t.starts_with(b"/") {
                    // The new root's path: `..` at its top stays there; only /etc/... is in.
                    let ups = parts.iter().take_while(|c| **c == b"..").count();
                    parts.drain(..ups);
                    if parts.first() != Some(&&b"etc"[..]) {
                        return Err(Lookup::Escape);
                    }
                    parts.remove(0);
                    cur = dup(self.etc.as_fd())?;
                }
                added += parts.len();
                if added > MAX_LINK_COMPONENTS {
                    return Err(Lookup::Failed("following symlinks", Errno::NAMETOOLONG));
                }
                pending.extend(parts.into_iter().rev().map(|c| c.to_vec()));
            }
            let Some(c) = pending.pop() else { return Ok(cur) };
            if c == b".." {
                if self.is_etc(cur.as_fd())? {
                    return Err(Lookup::Escape);
                }
                cur = open_dir(cur.as_fd(), b"..").map_err(|e| Lookup::Failed("open", e))?;
                continue;
            }
            match open_dir(cur.as_fd(), &c) {
                Ok(fd) => cur = fd,
                Err(Errno::NOTDIR) | Err(Errno::LOOP) => next_target = Some(Self::link_target(cur.as_fd(), &c)?),
                Err(e) => return Err(Lookup::Failed("open", e)),
            }
        }
    }

    fn lookup_error(path: &EtcPath, at: usize, l: Lookup) -> NodeFilesError {
        match l {
            Lookup::Escape => NodeFilesError::Escape { entry: path.entry() },
            Lookup::Failed(op, errno) => {
                NodeFilesError::Write { path: EtcPath(path.0[..=at].to_vec()).display(), op, errno }
            }
        }
    }

    /// Opens (creating as needed) the directory holding `path`'s last component, from the
    /// cache of the previous entry's directories: each component is resolved once while
    /// entries stay below it, so the cost does not grow with depth.
    fn parent(&mut self, path: &EtcPath) -> Result<OwnedFd, NodeFilesError> {
        let Some((_, want)) = path.0.split_last() else {
            return Err(NodeFilesError::Unsafe { entry: ".".into(), why: "names /etc itself" });
        };
        // Keep what the previous entry shares with this one, back to a level with an open fd.
        let mut keep = self.cache.iter().zip(want).take_while(|(l, c)| l.name == **c).count();
        while keep > 0 && self.cache[keep - 1].fd.is_none() {
            keep -= 1;
        }
        self.cache.truncate(keep);
        for (i, comp) in want.iter().enumerate().skip(keep) {
            let dir = match self.cache.last().and_then(|l| l.fd.as_ref()) {
                Some(fd) => fd.as_fd(),
                None => self.etc.as_fd(),
            };
            let fd = match self.step(dir, comp, true) {
                Ok(fd) => fd,
                Err(l) => {
                    self.cache.truncate(i);
                    return Err(Self::lookup_error(path, i, l));
                }
            };
            self.cache.push(Level { name: comp.clone(), fd: Some(fd) });
            // Close the fd that just left the innermost KEEP_OPEN, unless it is a waypoint.
            let len = self.cache.len();
            if len > KEEP_OPEN && !(len - KEEP_OPEN).is_multiple_of(KEEP_OPEN) {
                self.cache[len - KEEP_OPEN - 1].fd = None;
            }
        }
        let top = match self.cache.last().and_then(|l| l.fd.as_ref()) {
            Some(fd) => fd.as_fd(),
            None => self.etc.as_fd(),
        };
        rustix::io::fcntl_dupfd_cloexec(top, 0)
            .map_err(|errno| NodeFilesError::Open { path: EtcPath(want.to_vec()).display(), errno })
    }

    fn last(path: &EtcPath) -> Result<&[u8], NodeFilesError> {
        path.0
            .last()
            .map(|c| c.as_slice())
            .ok_or(NodeFilesError::Unsafe { entry: ".".into(), why: "names /etc itself" })
    }

    /// What sits at `name` in `dir`, not following a symlink; `None` when nothing does.
    fn kind_at(dir: &OwnedFd, name: &[u8]) -> Option<FileType> {
        rustix::fs::statat(dir, OsStr::from_bytes(name), AtFlags::SYMLINK_NOFOLLOW)
            .ok()
            .map(|st| FileType::from_raw_mode(st.st_mode))
    }

    /// Refuses to put a non-directory where a directory is: its contents would vanish.
    fn refuse_dir(dir: &OwnedFd, name: &[u8], path: &EtcPath, kind: &'static str) -> Result<(), NodeFilesError> {
        if Self::kind_at(dir, name) == Some(FileType::Directory) {
            return Err(NodeFilesError::ReplaceDir { path: path.display(), kind });
        }
        Ok(())
    }

    /// A fresh temporary name in `dir`, made by `create` (which must fail with `EEXIST` when
    /// the name is taken, as `O_EXCL`, `symlinkat` and `linkat` do).
    fn temp<T>(&mut self, mut create: impl FnMut(&OsStr) -> Result<T, Errno>) -> Result<(Vec<u8>, T), Errno> {
        loop {
            self.temps += 1;
            let name = format!(".clusterroot-new.{}", self.temps).into_bytes();
            match create(OsStr::from_bytes(&name)) {
                Ok(t) => return Ok((name, t)),
                // An archive may have made that name; a later number is free.
                Err(Errno::EXIST) if !self.temps.is_multiple_of(64) => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Renames the temporary `tmp` over `name`, or removes it when `result` is already a
    /// failure or the rename fails, so nothing half-made stays behind.
    fn commit(
        dir: &OwnedFd,
        tmp: &[u8],
        name: &[u8],
        path: &EtcPath,
        result: Result<(), NodeFilesError>,
    ) -> Result<(), NodeFilesError> {
        let result = result.and_then(|()| {
            rustix::fs::renameat(dir, OsStr::from_bytes(tmp), dir, OsStr::from_bytes(name))
                .map_err(|errno| NodeFilesError::WriteFile { path: path.display(), errno })
        });
        // After a failure, and after a rename that did nothing because both names were
        // already links to the same file (rename(2)), the temporary name is still there.
        let _ = rustix::fs::unlinkat(dir, OsStr::from_bytes(tmp), AtFlags::empty());
        result
    }

    /// Copies `data` into `file`, within the budget and the deadline.
    fn fill(&mut self, file: &mut File, data: &mut dyn Read, path: &EtcPath) -> Result<(), NodeFilesError> {
        let mut buf = vec![0u8; CHUNK];
        loop {
            if self.expired() {
                return Err(NodeFilesError::WriteFile { path: path.display(), errno: Errno::TIMEDOUT });
            }
            let n = match data.read(&mut buf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The archive holds more than fits: the same as the disk filling up.
                Err(e) if e.kind() == io::ErrorKind::StorageFull => {
                    return Err(NodeFilesError::WriteFile { path: path.display(), errno: Errno::NOSPC })
                }
                Err(cause) => return Err(NodeFilesError::ReadData { path: path.display(), cause }),
            };
            if n as u64 > self.budget {
                return Err(NodeFilesError::WriteFile { path: path.display(), errno: Errno::NOSPC });
            }
            self.budget -= n as u64;
            file.write_all(&buf[..n]).map_err(|e| NodeFilesError::WriteFile {
                path: path.display(),
                errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
            })?;
        }
    }

    /// Writes a regular file: a temporary file in the same directory, filled, given its owner,
    /// mode and times, then renamed over the old entry.
    pub fn file(&mut self, path: &EtcPath, data: &mut dyn Read, meta: &Meta) -> Result<(), NodeFilesError> {
        let dir = self.parent(path)?;
        let name = Self::last(path)?;
        Self::refuse_dir(&dir, name, path, "file")?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let (tmp, fd) = self
            .temp(|t| rustix::fs::openat(&dir, t, flags, Mode::from_raw_mode(0o600)))
            .map_err(|errno| NodeFilesError::WriteFile { path: path.display(), errno })?;
        let mut f = File::from(fd);
        let result = self.fill(&mut f, data, path).and_then(|()| {
            let err = |op| move |errno| NodeFilesError::Write { path: path.display(), op, errno };
            rustix::fs::fchown(
                &f,
                Some(rustix::fs::Uid::from_raw(meta.uid)),
                Some(rustix::fs::Gid::from_raw(meta.gid)),
            )
            .map_err(err("chown"))?;
            // After chown, which clears set-id bits.
            rustix::fs::fchmod(&f, Mode::from_raw_mode(meta.mode & 0o7777)).map_err(err("chmod"))?;
            rustix::fs::futimens(&f, &times(meta)).map_err(err("setting times"))
        });
        drop(f);
        Self::commit(&dir, &tmp, name, path, result)?;
        self.written += 1;
        Ok(())
    }

    /// Creates a directory or merges into the one there; its times are set at the end.
    pub fn dir(&mut self, path: &EtcPath, meta: &Meta) -> Result<(), NodeFilesError> {
        if path.is_root() {
            return Ok(()); // /etc itself keeps the shared image's owner and mode.
        }
        let dir = self.parent(path)?;
        let name = Self::last(path)?;
        let os = OsStr::from_bytes(name);
        let err = |op| move |errno| NodeFilesError::Write { path: path.display(), op, errno };
        match Self::kind_at(&dir, name) {
            Some(FileType::Directory) => {}
            Some(_) => {
                // A file or symlink gives way to the directory, as with tar.
                rustix::fs::unlinkat(&dir, os, AtFlags::empty()).map_err(err("removing the old entry"))?;
                rustix::fs::mkdirat(&dir, os, Mode::from_raw_mode(0o700)).map_err(err("mkdir"))?;
            }
            None => rustix::fs::mkdirat(&dir, os, Mode::from_raw_mode(0o700)).map_err(err("mkdir"))?,
        }
        let fd = rustix::fs::openat(
            &dir,
            os,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(err("open"))?;
        rustix::fs::fchown(&fd, Some(rustix::fs::Uid::from_raw(meta.uid)), Some(rustix::fs::Gid::from_raw(meta.gid)))
            .map_err(err("chown"))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(meta.mode & 0o7777)).map_err(err("chmod"))?;
        self.dir_times.push((path.rel(path.0.len()), path.0.len(), *meta));
        self.written += 1;
        Ok(())
    }

    /// Creates a symlink (as a symlink: its target is never followed here, and may point
    /// anywhere), under a temporary name renamed into place.
    pub fn symlink(&mut self, path: &EtcPath, target: &[u8], meta: &Meta) -> Result<(), NodeFilesError> {
        let dir = self.parent(path)?;
        let name = Self::last(path)?;
        Self::refuse_dir(&dir, name, path, "symlink")?;
        let (tmp, ()) = self
            .temp(|t| rustix::fs::symlinkat(OsStr::from_bytes(target), &dir, t))
            .map_err(|errno| NodeFilesError::WriteFile { path: path.display(), errno })?;
        let t = OsStr::from_bytes(&tmp);
        let err = |op| move |errno| NodeFilesError::Write { path: path.display(), op, errno };
        let result = rustix::fs::chownat(
            &dir,
            t,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(err("chown"))
        .and_then(|()| {
            rustix::fs::utimensat(&dir, t, &times(meta), AtFlags::SYMLINK_NOFOLLOW).map_err(err("setting times"))
        });
        Self::commit(&dir, &tmp, name, path, result)?;
        self.written += 1;
        Ok(())
    }

    /// Creates a hard link to a regular file already inside `/etc`; the target's directories
    /// are resolved like any write's, and must not lead out of `/etc`.
    pub fn hardlink(&mut self, path: &EtcPath, target: &EtcPath) -> Result<(), NodeFilesError> {
        let refuse = |why| NodeFilesError::HardLink { entry: path.entry(), target: target.entry(), why };
        let Some((tname, tdirs)) = target.0.split_last() else {
            return Err(refuse("its target is /etc itself"));
        };
        let mut tdir = rustix::io::fcntl_dupfd_cloexec(&self.etc, 0)
            .map_err(|errno| NodeFilesError::Open { path: target.display(), errno })?;
        for comp in tdirs {
            tdir = match self.step(tdir.as_fd(), comp, false) {
                Ok(fd) => fd,
                Err(Lookup::Escape) => return Err(refuse("its target goes through a symlink out of /etc")),
                Err(Lookup::Failed(_, errno)) => {
                    return Err(NodeFilesError::Open { path: target.display(), errno });
                }
            };
        }
        if Self::kind_at(&tdir, tname) != Some(FileType::RegularFile) {
            return Err(refuse("its target is not a regular file in /etc"));
        }
        let dir = self.parent(path)?;
        let name = Self::last(path)?;
        Self::refuse_dir(&dir, name, path, "hard link")?;
        let tname = OsStr::from_bytes(tname);
        // linkat without AT_SYMLINK_FOLLOW links the name itself, checked to be a file above.
        let (tmp, ()) = self
            .temp(|t| rustix::fs::linkat(&tdir, tname, &dir, t, AtFlags::empty()))
            .map_err(|errno| NodeFilesError::WriteFile { path: path.display(), errno })?;
        Self::commit(&dir, &tmp, name, path, Ok(()))?;
        self.written += 1;
        Ok(())
    }

    /// Sets directory times, deepest first, now that nothing more is written into them; a
    /// failure only warns. Returns the number of entries written.
    pub fn close(mut self, log: &Log) -> usize {
        let mut dirs = std::mem::take(&mut self.dir_times);
        dirs.sort_by_key(|(_, depth, _)| std::cmp::Reverse(*depth));
        let mut w = Warner::new(log, "/etc");
        for (raw, _, meta) in dirs {
            let Ok(path) = EtcPath::parse(&raw) else { continue };
            let result = self.parent(&path).and_then(|dir| {
                let name = Self::last(&path)?;
                rustix::fs::utimensat(&dir, OsStr::from_bytes(name), &times(&meta), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(|errno| NodeFilesError::Write { path: path.display(), op: "setting times", errno })
            });
            if let Err(e) = result {
                w.warn(&e.to_string());
            }
        }
        self.written
    }
}

/// Archive formats, by file name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Whether `name` is a node-file archive for `mac`: `<mac>.tar`, `<mac>.tar.gz`, `<mac>.tgz`,
/// `<mac>.tar.zst`, or the same with a suffix after the MAC (`<mac>-ssh.tar.gz`).
pub fn archive_kind(name: &str, mac: &MacAddress) -> Option<Compression> {
    let mac = mac.to_string();
    let rest = name.strip_prefix(&mac)?;
    if !(rest.starts_with('.') || rest.starts_with('-')) {
        return None;
    }
    if rest.ends_with(".tar") {
        Some(Compression::None)
    } else if rest.ends_with(".tar.gz") || rest.ends_with(".tgz") {
        Some(Compression::Gzip)
    } else if rest.ends_with(".tar.zst") {
        Some(Compression::Zstd)
    } else {
        None
    }
}

fn meta_of(h: &tar::Header) -> io::Result<Meta> {
    Ok(Meta { mode: h.mode()?, uid: h.uid()? as u32, gid: h.gid()? as u32, mtime: (h.mtime()? as i64, 0) })
}

/// The bytes that came out of an archive's stream so far, shared with the progress lines.
type Counter = Rc<Cell<u64>>;

/// Counts what comes out of an archive's (decompressed) stream and fails once it is more than
/// the free space of `/etc` (`StorageFull`) or the deadline passed (`TimedOut`): a small
/// archive that expands without end stops here, not when memory or time runs out.
struct Meter<R> {
    inner: R,
    count: Counter,
    limit: u64,
    deadline: Instant,
}

impl<R: Read> Read for Meter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if Instant::now() >= self.deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "clusterroot.timeout reached"));
        }
        let n = self.inner.read(buf)?;
        let total = self.count.get().saturating_add(n as u64);
        self.count.set(total);
        if total > self.limit {
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!(
                    "it holds more than the {} MiB free on the new root's /etc; stopped there",
                    self.limit.div_ceil(1 << 20)
                ),
            ));
        }
        Ok(n)
    }
}

/// Unpacks one archive (`kind` says how it is compressed) into `/etc`. Unsafe or unsupported
/// entries are skipped with a warning; a read error ends the archive (what came before it
/// stays applied), and so does the deadline ([`NodeFilesError::Timeout`]).
pub fn unpack<'r>(
    reader: impl Read + 'r,
    kind: Compression,
    label: &str,
    out: &mut EtcWriter,
    log: &Log,
) -> Result<usize, NodeFilesError> {
    let decoded: Box<dyn Read + 'r> = match kind {
        Compression::None => Box::new(reader),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(reader)),
        Compression::Zstd => match ruzstd::decoding::StreamingDecoder::new(reader) {
            Ok(d) => Box::new(d),
            Err(e) => {
                let cause = io::Error::other(e.to_string());
                return Err(NodeFilesError::Read { source_name: label.to_string(), cause });
            }
        },
    };
    let bytes: Counter = Rc::new(Cell::new(0));
    let stream = Meter { inner: decoded, count: bytes.clone(), limit: out.free_space(), deadline: out.deadline };
    unpack_tar(stream, label, &bytes, out, log)
}

/// The entry loop of [`unpack`], over the metered stream.
fn unpack_tar(
    stream: impl Read,
    label: &str,
    bytes: &Counter,
    out: &mut EtcWriter,
    log: &Log,
) -> Result<usize, NodeFilesError> {
    let read_err = |cause: io::Error| {
        if cause.kind() == io::ErrorKind::TimedOut {
            return None;
        }
        Some(NodeFilesError::Read { source_name: label.to_string(), cause })
    };
    let mut w = Warner::new(log, label);
    let mut archive = tar::Archive::new(stream);
    let (mut count, mut seen) = (0, 0);
    let mut next_report = PROGRESS_BYTES;
    let timeout = |seen| NodeFilesError::Timeout { label: label.to_string(), entries: seen };
    let entries = archive.entries().map_err(|e| read_err(e).unwrap_or_else(|| timeout(0)))?;
    for entry in entries {
        if out.expired() {
            return Err(timeout(seen));
        }
        let mut entry = match entry {
            Ok(e) => e,
            Err(e) => return Err(read_err(e).unwrap_or_else(|| timeout(seen))),
        };
        seen += 1;
        if seen.is_multiple_of(PROGRESS_ENTRIES) || bytes.get() >= next_report {
            log.info(&format!("node files: {label}: {seen} entries, {} MiB so far", bytes.get() >> 20));
            next_report = (bytes.get() / PROGRESS_BYTES + 1) * PROGRESS_BYTES;
        }
        let raw = entry.path_bytes().into_owned();
        let path = match EtcPath::parse(&raw) {
            Ok(p) => p,
            Err(why) => {
                w.warn(&NodeFilesError::Unsafe { entry: String::from_utf8_lossy(&raw).into_owned(), why }.to_string());
                continue;
            }
        };
        let header = entry.header().clone();
        let meta = match meta_of(&header) {
            Ok(m) => m,
            Err(e) => return Err(read_err(e).unwrap_or_else(|| timeout(seen))),
        };
        let kind = header.entry_type();
        let result = if kind.is_dir() {
            out.dir(&path, &meta)
        } else if kind.is_file() || kind == tar::EntryType::Continuous {
            out.file(&path, &mut entry, &meta)
        } else if kind.is_symlink() {
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            out.symlink(&path, &target, &meta)
        } else if kind.is_hard_link() {
            let target = entry.link_name_bytes().map(|t| t.into_owned()).unwrap_or_default();
            match EtcPath::parse(&target) {
                Ok(t) => out.hardlink(&path, &t),
                Err(why) => Err(NodeFilesError::HardLink {
                    entry: path.entry(),
                    target: String::from_utf8_lossy(&target).into_owned(),
                    why,
                }),
            }
        } else if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        } else {
            w.warn(&format!("entry '{}' is a device, FIFO or other special file; skipped", path.entry()));
            continue;
        };
        if out.expired() {
            return Err(timeout(seen));
        }
        count += tally(result, &mut w);
    }
    Ok(count)
}

/// Counts one written entry, or warns about it.
fn tally(result: Result<(), NodeFilesError>, w: &mut Warner) -> usize {
    match result {
        Ok(()) => 1,
        Err(e) => {
            w.warn(&e.to_string());
            0
        }
    }
}

fn open_in_lower(lower: &OwnedFd, rel: &str, dir: bool) -> Result<OwnedFd, Errno> {
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC;
    if dir {
        flags |= OFlags::DIRECTORY;
    }
    rustix::fs::openat2(lower, rel, flags, Mode::empty(), IN_ROOT)
}

fn stat_meta(st: &rustix::fs::Stat) -> Meta {
    Meta { mode: st.st_mode, uid: st.st_uid, gid: st.st_gid, mtime: (st.st_mtime, st.st_mtime_nsec as i64) }
}

/// One directory source being copied: its name in warnings, the warnings, and the entries
/// seen so far (for the timeout message).
struct TreeSource<'a> {
    label: &'a str,
    w: Warner<'a>,
    seen: usize,
}

/// Copies the tree under `src` (a directory in the lower, or a node's own export) over `/etc`.
fn copy_tree(
    src: &OwnedFd,
    at: &EtcPath,
    depth: usize,
    out: &mut EtcWriter,
    s: &mut TreeSource,
) -> Result<usize, NodeFilesError> {
    if depth > MAX_DEPTH {
        s.w.warn(&format!("{} nests deeper than {MAX_DEPTH} levels; not copied", at.display()));
        return Ok(0);
    }
    let open_err = |errno| NodeFilesError::Open { path: s.label.to_string(), errno };
    let mut dir = rustix::fs::Dir::read_from(src).map_err(open_err)?;
    let mut names: Vec<Vec<u8>> = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(open_err)?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    let mut count = 0;
    for name in names {
        if out.expired() {
            return Err(NodeFilesError::Timeout { label: s.label.to_string(), entries: s.seen });
        }
        s.seen += 1;
        if s.seen.is_multiple_of(PROGRESS_ENTRIES) {
            s.w.log.info(&format!("node files: {}: {} entries so far", s.label, s.seen));
        }
        let os = OsStr::from_bytes(&name);
        let path = at.join(&name);
        let Ok(st) = rustix::fs::statat(src, os, AtFlags::SYMLINK_NOFOLLOW) else {
            continue;
        };
        let meta = stat_meta(&st);
        let result = match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => match out.dir(&path, &meta) {
                Ok(()) => {
                    let child = rustix::fs::openat(
                        src,
                        os,
                        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(|errno| NodeFilesError::Open { path: path.display(), errno })?;
                    count += copy_tree(&child, &path, depth + 1, out, s)?;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            FileType::RegularFile => {
                match rustix::fs::openat(src, os, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                    Ok(fd) => out.file(&path, &mut File::from(fd), &meta),
                    Err(errno) => Err(NodeFilesError::Open { path: format!("{}/{}", s.label, path.entry()), errno }),
                }
            }
            FileType::Symlink => match rustix::fs::readlinkat(src, os, Vec::new()) {
                Ok(t) => out.symlink(&path, t.as_bytes(), &meta),
                Err(errno) => Err(NodeFilesError::Open { path: path.display(), errno }),
            },
            _ => {
                s.w.warn(&format!("{} is a device, FIFO or socket; skipped", path.display()));
                continue;
            }
        };
        if out.expired() {
            return Err(NodeFilesError::Timeout { label: s.label.to_string(), entries: s.seen });
        }
        count += tally(result, &mut s.w);
    }
    Ok(count)
}

/// Copies the directory `src` over `/etc` as one source named `label`.
fn copy_source(src: &OwnedFd, label: &str, out: &mut EtcWriter, log: &Log) -> Result<usize, NodeFilesError> {
    let mut s = TreeSource { label, w: Warner::new(log, label), seen: 0 };
    copy_tree(src, &EtcPath(Vec::new()), 0, out, &mut s)
}

/// Applies the node files for `mac` from `overlays` (a path in the lower) to `newroot`'s `/etc`.
/// Returns what was applied, e.g. `["52:54:00:77:00:0b.tar.gz", "52:54:00:77:00:0b/"]`.
/// Stops, with one warning, at `deadline`.
pub fn apply(
    lower_root: &str,
    overlays: &str,
    mac: &MacAddress,
    newroot: &str,
    deadline: Instant,
    log: &Log,
) -> Result<Vec<String>, NodeFilesError> {
    let lower = rustix::fs::open(lower_root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| NodeFilesError::Open { path: lower_root.to_string(), errno })?;
    let rel = overlays.trim_start_matches('/');
    let dir = match open_in_lower(&lower, rel, true) {
        Ok(fd) => fd,
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => {
            log.info(&format!("no node files: {overlays} does not exist in the shared root"));
            return Ok(Vec::new());
        }
        Err(errno) => return Err(NodeFilesError::Open { path: overlays.to_string(), errno }),
    };
    let mut names: Vec<String> = Vec::new();
    let mut listing =
        rustix::fs::Dir::read_from(&dir).map_err(|errno| NodeFilesError::Open { path: overlays.to_string(), errno })?;
    while let Some(entry) = listing.read() {
        let entry = entry.map_err(|errno| NodeFilesError::Open { path: overlays.to_string(), errno })?;
        if let Ok(n) = entry.file_name().to_str() {
            names.push(n.to_string());
        }
    }
    names.sort();

    let mut out = EtcWriter::open(newroot, deadline)?;
    let mut applied = Vec::new();
    for name in names.iter() {
        let Some(kind) = archive_kind(name, mac) else { continue };
        let label = format!("{overlays}/{name}");
        let fd = match open_in_lower(&lower, &format!("{rel}/{name}"), false) {
            Ok(fd) => fd,
            Err(errno) => {
                log.warn(&format!("{}; node files from it skipped", NodeFilesError::Open { path: label, errno }));
                continue;
            }
        };
        match unpack(io::BufReader::new(File::from(fd)), kind, &label, &mut out, log) {
            Ok(n) => {
                log.info(&format!("node files: {label}: {n} entries"));
                applied.push(name.clone());
            }
            Err(e @ NodeFilesError::Timeout { .. }) => {
                log.warn(&format!("node files: {e}"));
                out.close(log);
                return Ok(applied);
            }
            Err(e) => {
                log.warn(&format!("node files: {e}; entries read before the error stay applied; the boot goes on"))
            }
        }
    }
    let mac_s = mac.to_string();
    if names.contains(&mac_s) {
        let label = format!("{overlays}/{mac_s}");
        match open_in_lower(&lower, &format!("{rel}/{mac_s}"), true) {
            Ok(src) => match copy_source(&src, &label, &mut out, log) {
                Ok(n) => {
                    log.info(&format!("node files: {label}/: {n} entries"));
                    applied.push(format!("{mac_s}/"));
                }
                Err(e @ NodeFilesError::Timeout { .. }) => log.warn(&format!("node files: {e}")),
                Err(e) => {
                    out.close(log);
                    return Err(e);
                }
            },
            Err(Errno::NOTDIR) => log.warn(&format!("{label} is not a directory; skipped")),
            Err(errno) => log.warn(&format!("{}; skipped", NodeFilesError::Open { path: label, errno })),
        }
    }
    out.close(log);
    Ok(applied)
}

/// Copies one node's own tree, the directory `src` (its per-node NFS export, mounted there),
/// over `newroot`'s `/etc`; `label` names it in warnings. Returns the number of entries.
/// Stops, with one warning, at `deadline`.
pub fn apply_tree(
    src: &str,
    label: &str,
    newroot: &str,
    deadline: Instant,
    log: &Log,
) -> Result<usize, NodeFilesError> {
    let dir = rustix::fs::open(src, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| NodeFilesError::Open { path: label.to_string(), errno })?;
    let mut out = EtcWriter::open(newroot, deadline)?;
    let result = copy_source(&dir, label, &mut out, log);
    let written = out.close(log);
    match result {
        Ok(n) => Ok(n),
        Err(e @ NodeFilesError::Timeout { .. }) => {
            log.warn(&format!("node files: {e}"));
            Ok(written)
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etc_paths() {
        assert_eq!(EtcPath::parse(b"./hostname").unwrap(), EtcPath(vec![b"hostname".to_vec()]));
        assert_eq!(
            EtcPath::parse(b"/ssh//sshd_config").unwrap(),
            EtcPath(vec![b"ssh".to_vec(), b"sshd_config".to_vec()])
        );
        assert!(EtcPath::parse(b"./").unwrap().is_root());
        assert!(EtcPath::parse(b"../escaped").is_err());
        assert!(EtcPath::parse(b"a/../../b").is_err());
        assert_eq!(EtcPath::parse(b"a/b").unwrap().display(), "/etc/a/b");
    }

    #[test]
    fn archive_names() {
        let mac: MacAddress = "52:54:00:77:00:0b".parse().unwrap();
        assert_eq!(archive_kind("52:54:00:77:00:0b.tar", &mac), Some(Compression::None));
        assert_eq!(archive_kind("52:54:00:77:00:0b.tar.gz", &mac), Some(Compression::Gzip));
        assert_eq!(archive_kind("52:54:00:77:00:0b.tgz", &mac), Some(Compression::Gzip));
        assert_eq!(archive_kind("52:54:00:77:00:0b.tar.zst", &mac), Some(Compression::Zstd));
        assert_eq!(archive_kind("52:54:00:77:00:0b-ssh.tar.gz", &mac), Some(Compression::Gzip));
        assert_eq!(archive_kind("52:54:00:77:00:0b", &mac), None);
        assert_eq!(archive_kind("52:54:00:77:00:0b.zip", &mac), None);
        assert_eq!(archive_kind("52:54:00:77:00:0bb.tar", &mac), None);
        assert_eq!(archive_kind("52:54:00:77:00:0c.tar", &mac), None);
    }
}
