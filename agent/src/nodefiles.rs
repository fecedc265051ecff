//! Per-node files: `<overlays>/<mac>*.tar[.gz|.zst]` and `<overlays>/<mac>/`, laid over `/etc`.
//!
//! Sources are read from the lower; every write is resolved with `openat2(RESOLVE_IN_ROOT)`
//! with the new root as `/` (so absolute symlinks inside `/etc` mean what they mean after
//! boot), then done by one `*at` call on a single name that never follows a symlink: no `..`,
//! absolute path or symlink in a node file or archive can make a write land outside the new
//! root. `..` entries are refused; a write that a symlink leads out of `/etc` is warned about.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::time::Instant;

use rustix::fd::OwnedFd;
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
    #[error("entry '{entry}' is unsafe ({why}); skipped")]
    Unsafe { entry: String, why: &'static str },
    #[error("reading {source_name} failed: {cause}")]
    Read { source_name: String, cause: io::Error },
}

/// How deep a node-file directory may nest; deeper trees are cut off with a warning.
const MAX_DEPTH: usize = 64;
/// Warnings printed per archive or directory; the rest are counted in one closing line, so a
/// hostile archive cannot flood the console.
const MAX_WARNINGS: usize = 10;

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
            self.log.warn(&format!("{}: {msg}", self.label));
        }
    }
}

impl Drop for Warner<'_> {
    fn drop(&mut self) {
        if self.count > MAX_WARNINGS {
            self.log.warn(&format!("{}: {} more warnings not shown", self.label, self.count - MAX_WARNINGS));
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

    /// The first `n` components as a path relative to the new root: `etc/a/b`.
    fn in_root(&self, n: usize) -> Vec<u8> {
        let mut out = b"etc/".to_vec();
        out.extend_from_slice(&self.rel(n));
        out
    }

    pub fn display(&self) -> String {
        format!("/etc/{}", String::from_utf8_lossy(&self.rel(self.0.len())))
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

/// Writes into one directory (the new root's `/etc`) as if it were `/`.
pub struct EtcWriter {
    /// The new root: every path is `etc/...` resolved with this as `/`.
    root: OwnedFd,
    /// Where the new root is (from `/proc/self/fd`), to notice writes led out of `/etc`.
    root_path: Option<Vec<u8>>,
    /// Directories whose times are set last, after their contents changed.
    dir_times: Vec<(EtcPath, Meta)>,
    /// Things worth a warning that did not stop a write; drained by the caller.
    pub notes: Vec<String>,
    pub written: usize,
}

/// The path of an open fd, from `/proc/self/fd` (absent when /proc is not mounted).
fn fd_path(fd: &OwnedFd) -> Option<Vec<u8>> {
    use rustix::fd::AsRawFd;
    rustix::fs::readlink(format!("/proc/self/fd/{}", fd.as_raw_fd()), Vec::new()).ok().map(|p| p.into_bytes())
}

impl EtcWriter {
    /// Opens `<newroot>/etc` (resolved inside `newroot`), creating it if missing.
    pub fn open(newroot: &str) -> Result<EtcWriter, NodeFilesError> {
        let open_err = |path: &str| {
            let path = path.to_string();
            move |errno| NodeFilesError::Open { path: path.clone(), errno }
        };
        let root = rustix::fs::open(newroot, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
            .map_err(open_err(newroot))?;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let etc = match rustix::fs::openat2(&root, "etc", flags, Mode::empty(), IN_ROOT) {
            Err(Errno::NOENT) => {
                rustix::fs::mkdirat(&root, "etc", Mode::from_raw_mode(0o755)).map_err(open_err("/etc"))?;
                rustix::fs::openat2(&root, "etc", flags, Mode::empty(), IN_ROOT)
            }
            r => r,
        }
        .map_err(open_err(&format!("{newroot}/etc")))?;
        drop(etc);
        let root_path = fd_path(&root);
        Ok(EtcWriter { root, root_path, dir_times: Vec::new(), notes: Vec::new(), written: 0 })
    }

    /// Notes when the directory `dir` (holding `path`) is not under the new root's `/etc`:
    /// a symlink in the node files led the write elsewhere (still inside the new root).
    fn check_location(&mut self, dir: &OwnedFd, path: &EtcPath) {
        let (Some(root), Some(loc)) = (self.root_path.as_ref(), fd_path(dir)) else { return };
        let root: &[u8] = if root.as_slice() == b"/" { b"" } else { root };
        let etc = [root, b"/etc"].concat();
        let inside = loc == etc || (loc.starts_with(&etc) && loc.get(etc.len()) == Some(&b'/'));
        if !inside {
            let shown = String::from_utf8_lossy(loc.strip_prefix(root).unwrap_or(&loc)).into_owned();
            let shown = if shown.is_empty() { "/".to_string() } else { shown };
            self.notes.push(format!(
                "{} goes through a symlink out of /etc; written under {shown} of the new root",
                path.display()
            ));
        }
    }

    /// Opens (creating as needed) the directory holding `path`'s last component.
    fn parent(&mut self, path: &EtcPath) -> Result<OwnedFd, NodeFilesError> {
        let n = path.0.len().saturating_sub(1);
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut dir = rustix::fs::openat2(&self.root, "etc", flags, Mode::empty(), IN_ROOT)
            .map_err(|errno| NodeFilesError::Open { path: "/etc".into(), errno })?;
        for i in 1..=n {
            let rel = path.in_root(i);
            dir = match rustix::fs::openat2(&self.root, OsStr::from_bytes(&rel), flags, Mode::empty(), IN_ROOT) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => {
                    let name = OsStr::from_bytes(&path.0[i - 1]);
                    match rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => {
                            return Err(NodeFilesError::Write {
                                path: EtcPath(path.0[..i].to_vec()).display(),
                                op: "mkdir",
                                errno,
                            })
                        }
                    }
                    rustix::fs::openat2(&self.root, OsStr::from_bytes(&rel), flags, Mode::empty(), IN_ROOT).map_err(
                        |errno| NodeFilesError::Open { path: EtcPath(path.0[..i].to_vec()).display(), errno },
                    )?
                }
                Err(errno) => {
                    return Err(NodeFilesError::Open { path: EtcPath(path.0[..i].to_vec()).display(), errno })
                }
            };
        }
        self.check_location(&dir, path);
        Ok(dir)
    }

    /// Removes whatever non-directory sits at `name` (never following a symlink).
    fn clear(dir: &OwnedFd, name: &OsStr, path: &EtcPath) -> Result<Option<FileType>, NodeFilesError> {
        match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => {
                let ft = FileType::from_raw_mode(st.st_mode);
                if ft != FileType::Directory {
                    rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(|errno| NodeFilesError::Write {
                        path: path.display(),
                        op: "removing the old entry",
                        errno,
                    })?;
                }
                Ok(Some(ft))
            }
            Err(_) => Ok(None),
        }
    }

    fn finish(dir: &OwnedFd, name: &OsStr, path: &EtcPath, meta: &Meta, symlink: bool) -> Result<(), NodeFilesError> {
        let flags = AtFlags::SYMLINK_NOFOLLOW;
        let err = |op| move |errno| NodeFilesError::Write { path: path.display(), op, errno };
        rustix::fs::chownat(
            dir,
            name,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
            flags,
        )
        .map_err(err("chown"))?;
        if !symlink {
            // After chown, which clears set-id bits.
            rustix::fs::chmodat(dir, name, Mode::from_raw_mode(meta.mode & 0o7777), AtFlags::empty())
                .map_err(err("chmod"))?;
        }
        rustix::fs::utimensat(dir, name, &times(meta), flags).map_err(err("setting times"))
    }

    fn last(path: &EtcPath) -> Result<&OsStr, NodeFilesError> {
        path.0
            .last()
            .map(|c| OsStr::from_bytes(c))
            .ok_or(NodeFilesError::Unsafe { entry: "/etc".into(), why: "names /etc itself" })
    }

    /// Writes a regular file, replacing what was there.
    pub fn file(&mut self, path: &EtcPath, data: &mut dyn Read, meta: &Meta) -> Result<(), NodeFilesError> {
        let dir = self.parent(path)?;
        let name = Self::last(path)?;
        if Self::clear(&dir, name, path)? == Some(FileType::Directory) {
            return Err(NodeFilesError::Write {
                path: path.display(),
                op: "replacing a directory with a file",
                errno: Errno::ISDIR,
            });
        }
        let fd = rustix::fs::openat(
            &dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(|errno| NodeFilesError::Write { path: path.display(), op: "create", errno })?;
        let mut f = File::from(fd);
        io::copy(data, &mut f).map_err(|e| NodeFilesError::Write {
            path: path.display(),
            op: "write",
            errno: Errno::from_io_error(&e).unwrap_or(Errno::IO),
        })?;
        drop(f);
        Self::finish(&dir, name, path, meta, false)?;
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
        if Self::clear(&dir, name, path)? != Some(FileType::Directory) {
            rustix::fs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)).map_err(|errno| NodeFilesError::Write {
                path: path.display(),
                op: "mkdir",
                errno,
            })?;
        }
        let err = |op| move |errno| NodeFilesError::Write { path: path.display(), op, errno };
        rustix::fs::chownat(
            &dir,
            name,
            Some(rustix::fs::Uid::from_raw(meta.uid)),
            Some(rustix::fs::Gid::from_raw(meta.gid)),
            AtFlags::SYMLINK_NOFOLLOW,
        )
        .map_err(err("chown"))?;
        rustix::fs::chmodat(&dir, name, Mode::from_raw_mode(meta.mode & 0o7777), AtFlags::empty())
            .map_err(err("chmod"))?;
        self.dir_times.push((path.clone(), *meta));
        self.written += 1;
        Ok(())
    }

    /// Creates a symlink (as a symlink: its target is never followed here).
    pub fn symlink(&mut self, path: &EtcPath, target: &[u8], meta: &Meta) -> Result<(), NodeFilesError> {
        let dir = self.parent(path)?;
        let name = Self::last(path)?;
        if Self::clear(&dir, name, path)? == Some(FileType::Directory) {
            return Err(NodeFilesError::Write {
                path: path.display(),
                op: "replacing a directory with a symlink",
                errno: Errno::ISDIR,
            });
        }
        rustix::fs::symlinkat(OsStr::from_bytes(target), &dir, name).map_err(|errno| NodeFilesError::Write {
            path: path.display(),
            op: "symlink",
            errno,
        })?;
        Self::finish(&dir, name, path, meta, true)?;
        self.written += 1;
        Ok(())
    }

    /// Creates a hard link to another file already written under `/etc`.
    pub fn hardlink(&mut self, path: &EtcPath, target: &EtcPath) -> Result<(), NodeFilesError> {
        let src = rustix::fs::openat2(
            &self.root,
            OsStr::from_bytes(&target.in_root(target.0.len())),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            IN_ROOT,
        )
        .map_err(|errno| NodeFilesError::Open { path: target.display(), errno })?;
        let dir = self.parent(path)?;
        let name = Self::last(path)?;
        Self::clear(&dir, name, path)?;
        rustix::fs::linkat(&src, "", &dir, name, AtFlags::EMPTY_PATH).map_err(|errno| NodeFilesError::Write {
            path: path.display(),
            op: "link",
            errno,
        })?;
        self.written += 1;
        Ok(())
    }

    /// Sets directory times, deepest first, now that nothing more is written into them.
    pub fn close(mut self) -> Result<usize, NodeFilesError> {
        self.dir_times.sort_by_key(|(p, _)| std::cmp::Reverse(p.0.len()));
        for (path, meta) in std::mem::take(&mut self.dir_times) {
            let path = &path;
            let dir = self.parent(path)?;
            let name = Self::last(path)?;
            rustix::fs::utimensat(&dir, name, &times(&meta), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(|errno| NodeFilesError::Write { path: path.display(), op: "setting times", errno })?;
        }
        Ok(self.written)
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

/// Unpacks one tar stream into `/etc`. Unsafe or unsupported entries are skipped with a
/// warning; a read error ends the archive (what came before it stays applied).
pub fn unpack(reader: impl Read, name: &str, out: &mut EtcWriter, log: &Log) -> Result<usize, NodeFilesError> {
    let mut w = Warner::new(log, name);
    let read_err = |cause| NodeFilesError::Read { source_name: name.to_string(), cause };
    let mut archive = tar::Archive::new(reader);
    let mut count = 0;
    for entry in archive.entries().map_err(read_err)? {
        let mut entry = entry.map_err(read_err)?;
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let path = match EtcPath::parse(&raw) {
            Ok(p) => p,
            Err(why) => {
                w.warn(&NodeFilesError::Unsafe { entry: shown, why }.to_string());
                continue;
            }
        };
        let header = entry.header().clone();
        let meta = meta_of(&header).map_err(read_err)?;
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
                Err(why) => Err(NodeFilesError::Unsafe { entry: String::from_utf8_lossy(&target).into_owned(), why }),
            }
        } else if kind.is_pax_global_extensions()
            || kind.is_pax_local_extensions()
            || kind.is_gnu_longname()
            || kind.is_gnu_longlink()
        {
            continue;
        } else {
            w.warn(&format!("entry '{shown}' is a device, FIFO or other special file; skipped"));
            continue;
        };
        count += tally(result, out, &mut w);
    }
    Ok(count)
}

/// Counts one written entry, or warns about it; passes on the writer's notes either way.
fn tally(result: Result<(), NodeFilesError>, out: &mut EtcWriter, w: &mut Warner) -> usize {
    for note in std::mem::take(&mut out.notes) {
        w.warn(&note);
    }
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

/// Copies the tree under `src` (a directory in the lower) over `/etc`.
fn copy_tree(
    src: &OwnedFd,
    at: &EtcPath,
    depth: usize,
    out: &mut EtcWriter,
    label: &str,
    w: &mut Warner,
) -> Result<usize, NodeFilesError> {
    if depth > MAX_DEPTH {
        w.warn(&format!("{} nests deeper than {MAX_DEPTH} levels; not copied", at.display()));
        return Ok(0);
    }
    let mut dir =
        rustix::fs::Dir::read_from(src).map_err(|errno| NodeFilesError::Open { path: label.to_string(), errno })?;
    let mut names: Vec<Vec<u8>> = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry.map_err(|errno| NodeFilesError::Open { path: label.to_string(), errno })?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    names.sort();
    let mut count = 0;
    for name in names {
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
                    count += copy_tree(&child, &path, depth + 1, out, label, w)?;
                    Ok(())
                }
                Err(e) => Err(e),
            },
            FileType::RegularFile => {
                match rustix::fs::openat(src, os, OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
                    Ok(fd) => out.file(&path, &mut File::from(fd), &meta),
                    Err(errno) => Err(NodeFilesError::Open { path: format!("{label}{}", &path.display()[4..]), errno }),
                }
            }
            FileType::Symlink => match rustix::fs::readlinkat(src, os, Vec::new()) {
                Ok(t) => out.symlink(&path, t.as_bytes(), &meta),
                Err(errno) => Err(NodeFilesError::Open { path: path.display(), errno }),
            },
            _ => {
                w.warn(&format!("{} is a device, FIFO or socket; skipped", path.display()));
                continue;
            }
        };
        count += tally(result, out, w);
    }
    Ok(count)
}

/// Applies the node files for `mac` from `overlays` (a path in the lower) to `newroot`'s `/etc`.
/// Returns what was applied, e.g. `["52:54:00:77:00:0b.tar.gz", "52:54:00:77:00:0b/"]`.
pub fn apply(
    lower_root: &str,
    overlays: &str,
    mac: &MacAddress,
    newroot: &str,
    deadline: Instant,
    log: &Log,
) -> Result<Vec<String>, NodeFilesError> {
    let _ = deadline;
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

    let mut out = EtcWriter::open(newroot)?;
    let mut applied = Vec::new();
    for name in names.iter().filter(|n| archive_kind(n, mac).is_some()) {
        let label = format!("{overlays}/{name}");
        let fd = match open_in_lower(&lower, &format!("{rel}/{name}"), false) {
            Ok(fd) => fd,
            Err(errno) => {
                log.warn(&format!("{}; node files from it skipped", NodeFilesError::Open { path: label, errno }));
                continue;
            }
        };
        let file = io::BufReader::new(File::from(fd));
        let result = match archive_kind(name, mac) {
            Some(Compression::Gzip) => unpack(flate2::read::MultiGzDecoder::new(file), &label, &mut out, log),
            Some(Compression::Zstd) => match ruzstd::decoding::StreamingDecoder::new(file) {
                Ok(d) => unpack(d, &label, &mut out, log),
                Err(e) => {
                    Err(NodeFilesError::Read { source_name: label.clone(), cause: io::Error::other(e.to_string()) })
                }
            },
            _ => unpack(file, &label, &mut out, log),
        };
        match result {
            Ok(n) => {
                log.info(&format!("node files: {label}: {n} entries"));
                applied.push(name.clone());
            }
            Err(e) => log.warn(&format!("{e}; the archive is broken or not a tar file, entries read before the error stay applied; the boot goes on")),
        }
    }
    let mac_s = mac.to_string();
    if names.contains(&mac_s) {
        let label = format!("{overlays}/{mac_s}");
        match open_in_lower(&lower, &format!("{rel}/{mac_s}"), true) {
            Ok(src) => {
                let n = copy_tree(&src, &EtcPath(Vec::new()), 0, &mut out, &label, &mut Warner::new(log, &label))?;
                log.info(&format!("node files: {label}/: {n} entries"));
                applied.push(format!("{mac_s}/"));
            }
            Err(Errno::NOTDIR) => log.warn(&format!("{label} is not a directory; skipped")),
            Err(errno) => log.warn(&format!("{}; skipped", NodeFilesError::Open { path: label, errno })),
        }
    }
    out.close()?;
    Ok(applied)
}

/// Copies one node's own tree, the directory `src` (its per-node NFS export, mounted there),
/// over `newroot`'s `/etc`; `label` names it in warnings. Returns the number of entries.
pub fn apply_tree(
    src: &str,
    label: &str,
    newroot: &str,
    deadline: Instant,
    log: &Log,
) -> Result<usize, NodeFilesError> {
    let _ = deadline;
    let dir = rustix::fs::open(src, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| NodeFilesError::Open { path: label.to_string(), errno })?;
    let mut out = EtcWriter::open(newroot)?;
    let n = copy_tree(&dir, &EtcPath(Vec::new()), 0, &mut out, label, &mut Warner::new(log, label))?;
    out.close()?;
    Ok(n)
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
