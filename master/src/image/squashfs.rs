//! Each version of the store also as one squashfs file, for clients that fetch their root
//! over HTTP (lighttpd serves the directory at `/images/`) or read it on NFS, rather than
//! mount the version's tree:
//!
//! ```text
//! <store>/squashfs/3-<sha256>.squashfs   version 3 as one file, named by the SHA-256 of its
//!                                        bytes; never rewritten
//! <store>/squashfs/default               one line: the file name of the default's
//! ```
//!
//! Names, what a store lacks and what gc removes are worked out here with no I/O
//! ([`FileName`], [`Files`], [`gc_removals`]); [`build`] runs Debian's `mksquashfs`, and
//! [`point_default`] writes the pointer.

use std::fmt;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::mounts::{self, Mount};
use super::order;
use super::progress;
use super::store::{self, Version};

/// The store's directory of squashfs files.
pub const DIR: &str = "squashfs";
/// The pointer to the default version's file, in [`DIR`].
pub const POINTER: &str = "default";
/// Written first, then renamed over [`POINTER`].
pub const POINTER_NEW: &str = ".default.new";
const SUFFIX: &str = ".squashfs";
/// Debian's squashfs-tools' program, found on PATH.
pub const PROGRAM: &str = "mksquashfs";
/// mksquashfs's options after the source and the target: zstd at level 3, the extended
/// attributes kept (file capabilities; mksquashfs 4.5 skips POSIX ACLs, saying "Unrecognised
/// xattr prefix system.posix_acl_access"), a new file rather than one appended to, no
/// progress bar nor summary (crctl draws its own on a terminal), the one filesystem of the
/// version (a mount point below it is left out and named on stderr), and an unreadable file an
/// error rather than a warning. Hard links are kept by default. Level 3, not mksquashfs's
/// default 15: measured on the admin test's Debian root (670 MiB) on one machine in one run,
/// level 3 took 2.9 s for 225 MiB, level 15 37.5 s for 200 MiB: a twelfth of the time for a
/// file an eighth bigger, at every publish.
pub const OPTIONS: [&str; 10] = [
    "-comp",
    "zstd",
    "-Xcompression-level",
    "3",
    "-xattrs",
    "-noappend",
    "-no-progress",
    "-quiet",
    "-one-file-system",
    "-exit-on-error",
];

#[derive(Debug, thiserror::Error)]
pub enum SquashfsError {
    #[error("mksquashfs (Debian's squashfs-tools) is missing; apt install squashfs-tools")]
    Missing,
    #[error("running mksquashfs for version {version} failed: {source}; {fix}")]
    Spawn { version: Version, source: std::io::Error, fix: String },
    #[error("mksquashfs of version {version} ({src}) failed ({status}): {stderr}; {fix}")]
    Failed { version: Version, src: PathBuf, status: String, stderr: String, fix: String },
    #[error("reading the squashfs directory {dir} failed: {source}")]
    Read { dir: PathBuf, source: std::io::Error },
    #[error("making the squashfs directory {dir} failed: {source}")]
    MakeDir { dir: PathBuf, source: std::io::Error },
    #[error("writing version {version}'s squashfs file {path} failed: {source}; {fix}")]
    Write { version: Version, path: PathBuf, source: std::io::Error, fix: String },
    #[error("pointing {path} at {name} failed: {source}; crctl image squashfs writes it again")]
    Pointer { path: PathBuf, name: String, source: std::io::Error },
    #[error("removing {path} failed: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Order(#[from] order::OrderError),
    #[error("version {version} of the image store ({dataset}) is mounted on {at}, not on {dir}, so mksquashfs would read an empty directory: bind it (mount --bind {at} {dir}), then crctl image squashfs {version}")]
    Elsewhere { version: Version, dataset: String, at: PathBuf, dir: PathBuf },
    #[error("version {version} of the image store ({dataset}) is not mounted on {dir}, so mksquashfs would read an empty directory: zfs mount {dataset}, then crctl image squashfs {version}")]
    NotMounted { version: Version, dataset: String, dir: PathBuf },
}

/// A squashfs file's name: `<version>-<sha256 of its bytes, 64 lowercase hex>.squashfs`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FileName {
    pub version: Version,
    pub sha256: [u8; 32],
}

impl FileName {
    /// The name `s` as a squashfs file's; `None` for any other name. No I/O.
    pub fn parse(s: &str) -> Option<FileName> {
        let (version, hex) = s.strip_suffix(SUFFIX)?.split_once('-')?;
        let version = Version::parse(version).ok()?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return None;
        }
        let mut sha256 = [0u8; 32];
        for (i, byte) in sha256.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
        }
        Some(FileName { version, sha256 })
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-", self.version)?;
        for b in self.sha256 {
            write!(f, "{b:02x}")?;
        }
        f.write_str(SUFFIX)
    }
}

/// One version's file and its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub name: FileName,
    pub size: u64,
}

/// What the squashfs directory holds (all empty when it is missing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Files {
    pub dir: PathBuf,
    /// The versions' files, by name.
    pub files: Vec<File>,
    /// Names starting with `.`: a build's temporary file or the pointer's, left by a command
    /// that was interrupted (every writer holds the store's lock).
    pub temps: Vec<String>,
    /// The pointer's line, when there is one.
    pub pointer: Option<String>,
}

/// Whether `default` names the default version's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pointer {
    /// It does; or nothing to name, and it names nothing.
    Right,
    /// It should name `want` and is missing.
    Missing { want: FileName },
    /// It names `is`, where it should name `want` (`None`: the default has no file).
    Wrong { is: String, want: Option<FileName> },
}

/// The squashfs directory of the store `store`.
pub fn dir_of(store: &Path) -> PathBuf {
    store.join(DIR)
}

impl Files {
    /// Reads the directory `dir`; a missing one holds nothing.
    pub fn read(dir: &Path) -> Result<Files, SquashfsError> {
        let err = |source| SquashfsError::Read { dir: dir.to_path_buf(), source };
        let mut files = Files { dir: dir.to_path_buf(), ..Files::default() };
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(files),
            Err(e) => return Err(err(e)),
        };
        for entry in entries {
            let entry = entry.map_err(err)?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            let Ok(meta) = std::fs::symlink_metadata(entry.path()) else { continue };
            if !meta.is_file() {
                continue;
            }
            if name == POINTER {
                let text = std::fs::read_to_string(entry.path()).map_err(err)?;
                files.pointer = Some(text.trim().to_string());
            } else if name.starts_with('.') {
                files.temps.push(name);
            } else if let Some(name) = FileName::parse(&name) {
                files.files.push(File { name, size: meta.len() });
            }
        }
        files.files.sort_by(|a, b| a.name.cmp(&b.name));
        files.temps.sort();
        Ok(files)
    }

    /// Version `v`'s file (the first by name, should there be more).
    pub fn of(&self, v: Version) -> Option<&File> {
        self.files.iter().find(|f| f.name.version == v)
    }

    /// Every file of version `v`.
    pub fn all_of(&self, v: Version) -> impl Iterator<Item = &File> {
        self.files.iter().filter(move |f| f.name.version == v)
    }

    /// The versions of `versions` without a file.
    pub fn missing(&self, versions: &[Version]) -> Vec<Version> {
        versions.iter().copied().filter(|v| self.of(*v).is_none()).collect()
    }

    /// Whether the pointer names the default's file (`default`: the store's default).
    pub fn pointer(&self, default: Option<Version>) -> Pointer {
        let want = default.and_then(|v| self.of(v)).map(|f| f.name.clone());
        match (&self.pointer, want) {
            (None, None) => Pointer::Right,
            (None, Some(want)) => Pointer::Missing { want },
            (Some(is), Some(want)) if *is == want.to_string() => Pointer::Right,
            (Some(is), want) => Pointer::Wrong { is: is.clone(), want },
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

/// What `image gc` removes of the squashfs directory, by path: the files of versions not in
/// `kept` (the ones it removes, and any whose version is gone) and every temporary file;
/// never the default's file nor the one the pointer names. No I/O.
pub fn gc_removals(files: &Files, kept: &[Version], default: Option<Version>) -> Vec<PathBuf> {
    let named = files.pointer.as_deref().unwrap_or("");
    let mut out: Vec<PathBuf> = files
        .files
        .iter()
        .filter(|f| !kept.contains(&f.name.version) && Some(f.name.version) != default)
        .filter(|f| f.name.to_string() != named)
        .map(|f| files.path(&f.name.to_string()))
        .collect();
    out.extend(files.temps.iter().map(|t| files.path(t)));
    out
}

/// The temporary name version `v`'s file is built under (a dot-name: never a version's file).
pub fn temp_name(v: Version, pid: u32) -> String {
    format!(".{v}.tmp-{pid}{SUFFIX}")
}

/// For a ZFS store: the version `v`'s dataset (`<ds>/<v>`) must be mounted on `dir`, where
/// mksquashfs reads it; otherwise it would read the empty directory under it. No I/O.
pub fn check_source(v: Version, ds: &str, dir: &Path, mounts: &[Mount]) -> Result<(), SquashfsError> {
    let dataset = format!("{ds}/{v}");
    if mounts::at(mounts, dir).is_some_and(|m| m.source == dataset) {
        return Ok(());
    }
    Err(match mounts.iter().find(|m| m.source == dataset && m.fstype == "zfs") {
        Some(m) => SquashfsError::Elsewhere { version: v, dataset, at: m.point.clone(), dir: dir.to_path_buf() },
        None => SquashfsError::NotMounted { version: v, dataset, dir: dir.to_path_buf() },
    })
}

/// What [`build`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Built {
    pub name: FileName,
    pub size: u64,
    pub took: Duration,
    /// The file was there already, and kept.
    pub kept: bool,
    /// What mksquashfs said on stderr though it succeeded (a mount point it left out).
    pub said: Vec<String>,
    /// What it took from the store's boot order, if the store has one.
    pub order: Option<order::Order>,
}

impl Built {
    /// The line a build ends with: `version 3: squashfs 3-<sha256>.squashfs, 210.4 MiB, in 12.3 s`.
    pub fn summary(&self) -> String {
        let v = self.name.version;
        if self.kept {
            return format!("version {v}: squashfs {} kept (made earlier)", self.name);
        }
        let took = self.took.as_secs_f64();
        format!("version {v}: squashfs {}, {}, in {took:.1} s", self.name, progress::mib(self.size))
    }
}

/// Builds version `v`'s file with `program` (mksquashfs) from the tree `src` into `dir` (made if missing), unless a file
/// of `v` is there already: mksquashfs writes the temporary `tmp` (in `dir`), which is
/// fsynced and hashed, then renamed to its name. A failure removes `tmp` and names `fix`.
/// With the store's boot order (`order`, when it exists), what it names is laid out first:
/// its sort file is written beside `tmp` for mksquashfs's `-sort`, and removed after.
/// Shell: `mksquashfs SRC TMP -comp zstd ... && sync TMP && mv TMP "3-$(sha256sum <TMP).squashfs"`
pub fn build(
    program: &Path,
    v: Version,
    src: &Path,
    dir: &Path,
    tmp: &Path,
    order: &Path,
    fix: &str,
) -> Result<Built, SquashfsError> {
    let started = Instant::now();
    // An existing file of the version is never rewritten: clients may be reading it.
    if let Some(f) = Files::read(dir)?.of(v) {
        return Ok(Built {
            name: f.name.clone(),
            size: f.size,
            took: Duration::ZERO,
            kept: true,
            said: vec![],
            order: None,
        });
    }
    // The directory lighttpd serves and nobody reads: traversable and readable by all.
    std::fs::create_dir_all(dir).map_err(|source| SquashfsError::MakeDir { dir: dir.to_path_buf(), source })?;
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755));
    let boot_order = order::read(order, src)?;
    let sort = sort_path(tmp);
    let written = (|| {
        let sort_arg = match &boot_order {
            Some(o) if !o.paths.is_empty() => {
                std::fs::write(&sort, o.sort_file()).map_err(|source| write_err(v, &sort, source, fix))?;
                Some(sort.as_path())
            }
            _ => None,
        };
        let said = run_mksquashfs(program, v, src, tmp, sort_arg, fix)?;
        let (sha256, size) = seal(v, tmp, fix)?;
        let name = FileName { version: v, sha256 };
        // A file of the same bytes (the same name) that appeared meanwhile is kept as it is.
        let to = dir.join(name.to_string());
        match rustix::fs::renameat_with(rustix::fs::CWD, tmp, rustix::fs::CWD, &to, rustix::fs::RenameFlags::NOREPLACE)
        {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(rustix::io::Errno::INVAL) if std::fs::symlink_metadata(&to).is_err() => {
                std::fs::rename(tmp, &to).map_err(|source| write_err(v, &to, source, fix))?
            }
            Err(e) => return Err(write_err(v, &to, e.into(), fix)),
        }
        store::sync_dir(dir).map_err(|e| write_err(v, dir, std::io::Error::other(e.to_string()), fix))?;
        Ok(Built { name, size, took: started.elapsed(), kept: false, said, order: boot_order.clone() })
    })();
    // Never a half-written file left behind (it would take space, under a name no one reads).
    let _ = std::fs::remove_file(tmp);
    let _ = std::fs::remove_file(&sort);
    written
}

/// The sort file of a build, beside its temporary file: `.3.tmp-<pid>.squashfs.sort`.
pub fn sort_path(tmp: &Path) -> PathBuf {
    let mut name = tmp.as_os_str().to_owned();
    name.push(".sort");
    PathBuf::from(name)
}

fn write_err(version: Version, path: &Path, source: std::io::Error, fix: &str) -> SquashfsError {
    SquashfsError::Write { version, path: path.to_path_buf(), source, fix: fix.to_string() }
}

/// Runs mksquashfs, polling the size of what it has written for the spinner; what it said
/// on stderr, line by line (its last line names a failure).
fn run_mksquashfs(
    program: &Path,
    v: Version,
    src: &Path,
    tmp: &Path,
    sort: Option<&Path>,
    fix: &str,
) -> Result<Vec<String>, SquashfsError> {
    let spawn_err = |source: std::io::Error| match source.kind() {
        std::io::ErrorKind::NotFound => SquashfsError::Missing,
        _ => SquashfsError::Spawn { version: v, source, fix: fix.to_string() },
    };
    let _ = std::fs::remove_file(tmp); // a leftover of this very name (a pid used again)
    let mut child = Command::new(program)
        .arg(src)
        .arg(tmp)
        .args(OPTIONS)
        .args(sort.iter().flat_map(|s| [std::ffi::OsStr::new("-sort"), s.as_os_str()]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // Read by a thread of its own: a pipe left full would stop mksquashfs.
    let mut pipe = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(p) = pipe.as_mut() {
            let _ = p.read_to_end(&mut text);
        }
        text
    });
    let bar = progress::spinner(format!("version {v}: mksquashfs {}", src.display()));
    bar.set_message("written");
    let started = Instant::now();
    let status = loop {
        bar.set_position(std::fs::metadata(tmp).map_or(0, |m| m.len()));
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => break Err(e),
        }
    };
    let stderr = String::from_utf8_lossy(&reader.join().unwrap_or_default()).into_owned();
    let lines: Vec<String> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect();
    let status = status.map_err(|source| SquashfsError::Spawn { version: v, source, fix: fix.to_string() })?;
    if !status.success() {
        bar.finish_and_clear();
        return Err(SquashfsError::Failed {
            version: v,
            src: src.to_path_buf(),
            status: status.to_string(),
            stderr: lines.last().cloned().unwrap_or_else(|| "it said nothing".into()),
            fix: fix.to_string(),
        });
    }
    let size = std::fs::metadata(tmp).map_or(0, |m| m.len());
    let took = started.elapsed();
    progress::finish(
        &bar,
        format!(
            "version {v}: mksquashfs wrote {} in {:.1} s, {}",
            progress::mib(size),
            took.as_secs_f64(),
            progress::rate(size, took)
        ),
    );
    Ok(lines)
}

/// Makes `tmp` readable by all (lighttpd runs as nobody), syncs it, and hashes its bytes as
/// read back: its SHA-256 and size.
fn seal(v: Version, tmp: &Path, fix: &str) -> Result<([u8; 32], u64), SquashfsError> {
    let err = |source| write_err(v, tmp, source, fix);
    let mut file = std::fs::File::open(tmp).map_err(err)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o644)).map_err(err)?;
    file.sync_all().map_err(err)?;
    let size = file.metadata().map_err(err)?.len();
    let bar = progress::bytes(format!("version {v}: sha256"), size);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        };
        hasher.update(&buf[..n]);
        bar.inc(n as u64);
    }
    bar.finish_and_clear();
    Ok((hasher.finalize().into(), size))
}

/// Points `dir/default` at version `v`'s file: one line, written as `.default.new`, synced,
/// renamed over it, the directory synced. When `v` has no file the pointer is removed (it
/// would name another version's). Returns a note for the second case, when there was a
/// pointer or files to point at. Shell: `echo 3-<sha256>.squashfs >.default.new && mv .default.new default`
pub fn point_default(dir: &Path, v: Version) -> Result<Option<String>, SquashfsError> {
    let files = Files::read(dir)?;
    let path = dir.join(POINTER);
    let Some(file) = files.of(v) else {
        if files.pointer.is_none() && files.files.is_empty() {
            return Ok(None); // a store without squashfs files
        }
        match std::fs::remove_file(&path) {
            Ok(()) => store::sync_dir(dir).map_err(|e| SquashfsError::Remove {
                path: path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SquashfsError::Remove { path, source }),
        }
        return Ok(Some(format!(
            "note: version {v} has no squashfs file, so {} names none: crctl image squashfs {v} makes both",
            path.display()
        )));
    };
    let name = file.name.to_string();
    let err = |source| SquashfsError::Pointer { path: path.clone(), name: name.clone(), source };
    let new = dir.join(POINTER_NEW);
    let written = (|| {
        let _ = std::fs::remove_file(&new);
        std::fs::write(&new, format!("{name}\n"))?;
        let f = std::fs::File::open(&new)?;
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.sync_all()?;
        std::fs::rename(&new, &path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&new);
        return Err(err(e));
    }
    store::sync_dir(dir).map_err(|e| err(std::io::Error::other(e.to_string())))?;
    Ok(None)
}

/// Removes the file `path` (gone already: done).
pub fn remove(path: &Path) -> Result<(), SquashfsError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(SquashfsError::Remove { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    fn name(v: u64, hex: &str) -> String {
        format!("{v}-{hex}.squashfs")
    }

    #[test]
    fn names_carry_the_version_and_the_hash() {
        let n = FileName::parse(&name(3, HASH)).unwrap();
        assert_eq!(n.version, Version(3));
        assert_eq!(n.sha256[..2], [0x9f, 0x86]);
        assert_eq!(n.to_string(), name(3, HASH));
        for bad in [
            name(0, HASH),
            name(3, &HASH.to_uppercase()),
            name(3, &HASH[1..]),
            format!("{HASH}.squashfs"),
            format!("3-{HASH}"),
            format!("3-{HASH}.squashfs.tmp"),
            format!("edit-{HASH}.squashfs"),
            "default".into(),
            temp_name(Version(3), 42),
        ] {
            assert_eq!(FileName::parse(&bad), None, "{bad}");
        }
        assert_eq!(temp_name(Version(3), 42), ".3.tmp-42.squashfs");
    }

    fn files(names: &[(u64, char)], temps: &[&str], pointer: Option<(u64, char)>) -> Files {
        let name = |v: u64, c: char| FileName { version: Version(v), sha256: [c as u8; 32] };
        Files {
            dir: "/s/squashfs".into(),
            files: names.iter().map(|(v, c)| File { name: name(*v, *c), size: 1 }).collect(),
            temps: temps.iter().map(|t| t.to_string()).collect(),
            pointer: pointer.map(|(v, c)| name(v, c).to_string()),
        }
    }

    #[test]
    fn gc_keeps_the_kept_the_default_and_the_pointed_at() {
        // Versions 2 and 3 stay (3 the default); 1 goes; 7 and 9 are gone already; the
        // pointer is stale, naming 9's file, which stays until the pointer moves.
        let f = files(&[(1, 'a'), (2, 'b'), (3, 'c'), (7, 'd'), (9, 'e')], &[".4.tmp-12.squashfs"], Some((9, 'e')));
        let gone: Vec<String> = gc_removals(&f, &[Version(2), Version(3)], Some(Version(3)))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(gone.len(), 3, "{gone:?}");
        assert!(gone[0].starts_with("1-6161") && gone[1].starts_with("7-6464"), "{gone:?}");
        assert_eq!(gone[2], ".4.tmp-12.squashfs");
        // The default's file is never removed, even were it not listed as kept.
        assert!(gc_removals(&f, &[], Some(Version(3))).iter().all(|p| !p.to_string_lossy().contains("/3-")));
    }

    #[test]
    fn the_pointer_names_the_defaults_file_or_nothing() {
        let f = files(&[(1, 'a'), (2, 'b')], &[], Some((1, 'a')));
        assert_eq!(f.pointer(Some(Version(1))), Pointer::Right);
        assert!(matches!(f.pointer(Some(Version(2))), Pointer::Wrong { want: Some(w), .. } if w.version == Version(2)));
        assert!(matches!(f.pointer(Some(Version(5))), Pointer::Wrong { want: None, .. }));
        let f = files(&[(1, 'a')], &[], None);
        assert!(matches!(f.pointer(Some(Version(1))), Pointer::Missing { .. }));
        assert_eq!(f.pointer(Some(Version(4))), Pointer::Right);
        assert_eq!(f.missing(&[Version(1), Version(4)]), [Version(4)]);
    }

    #[test]
    fn a_zfs_version_is_read_where_the_store_mounts_it() {
        let info = "\
22 1 0:21 / /run/rootfs/lower ro - zfs tank/images/2 ro
40 22 0:45 / /run/rootfs/lower/srv/nfs/images rw - zfs tank/images rw
41 40 0:46 / /run/rootfs/lower/srv/nfs/images/1 ro - zfs tank/images/1 ro
";
        let m = mounts::parse(info);
        let store = Path::new("/run/rootfs/lower/srv/nfs/images");
        assert!(check_source(Version(1), "tank/images", &store.join("1"), &m).is_ok());
        let e = check_source(Version(2), "tank/images", &store.join("2"), &m).unwrap_err().to_string();
        assert!(e.contains("is mounted on /run/rootfs/lower, not on") && e.contains("mount --bind"), "{e}");
        let e = check_source(Version(3), "tank/images", &store.join("3"), &m).unwrap_err().to_string();
        assert!(e.contains("zfs mount tank/images/3, then crctl image squashfs 3"), "{e}");
    }

    #[test]
    fn summaries() {
        let n = FileName::parse(&name(3, HASH)).unwrap();
        let b = Built {
            name: n,
            size: 220_620_390,
            took: Duration::from_millis(12_340),
            kept: false,
            said: vec![],
            order: None,
        };
        assert_eq!(b.summary(), format!("version 3: squashfs {}, 210.4 MiB, in 12.3 s", name(3, HASH)));
        let kept = Built { kept: true, ..b };
        assert_eq!(kept.summary(), format!("version 3: squashfs {} kept (made earlier)", name(3, HASH)));
    }

    #[test]
    fn a_missing_mksquashfs_is_one_line_with_the_fix() {
        assert_eq!(
            SquashfsError::Missing.to_string(),
            "mksquashfs (Debian's squashfs-tools) is missing; apt install squashfs-tools"
        );
    }
}
