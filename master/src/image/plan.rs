//! The steps an image command takes, printed by `--dry-run` exactly as a run takes them, and
//! their executor.

use std::fmt;
use std::path::{Path, PathBuf};

use rustix::fs::{RenameFlags, CWD};
use rustix::io::Errno;

use super::exports;
use super::progress;
use super::squashfs;
use super::store::{self, Version};
use super::zfs::{self, Argv};
use super::{copy, ImageError};

/// One step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The store's directory, for its first version.
    MakeStore(PathBuf),
    /// The native copy of the tree `from` into `to` (new), leaving out `skip` (the store) and
    /// what the mount table `mountinfo` (read when the copy starts) has mounted in `from`.
    Copy { from: PathBuf, to: PathBuf, skip: PathBuf, mountinfo: PathBuf },
    /// rename(2), never over an existing entry.
    Rename { from: PathBuf, to: PathBuf },
    /// fsync(2) of a directory: the renames in it are durable.
    SyncDir(PathBuf),
    /// `default` pointed at `version` atomically.
    SetDefault { dir: PathBuf, version: Version },
    /// A tree removed: first renamed to `aside` (from then on it is no version, whatever
    /// happens), then deleted.
    Remove { path: PathBuf, aside: PathBuf },
    /// A `zfs` command line.
    Zfs(Argv),
    /// The dataset just made is mounted where the store expects it.
    CheckMounted { dataset: String, dir: PathBuf },
    /// The versions' export lines written again and loaded (a ZFS store; see exports.rs).
    Exports(exports::Target),
    /// Version `version`'s squashfs file built from its tree `src` into `dir` (the store's
    /// squashfs directory) by `program` (mksquashfs), through the temporary `tmp`; kept if
    /// the version has one. `then_default`: the default moves to it next (a failure says so).
    /// With the store's boot order `order` (if the file exists), what it names comes first.
    Squashfs {
        program: PathBuf,
        version: Version,
        src: PathBuf,
        dir: PathBuf,
        tmp: PathBuf,
        order: PathBuf,
        then_default: bool,
    },
    /// `dir/default` (the squashfs pointer) made to name version `version`'s file, or removed
    /// when it has none.
    SquashfsDefault { dir: PathBuf, version: Version },
    /// A file removed: a squashfs file no version keeps, or a leftover temporary one.
    RemoveFile(PathBuf),
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::MakeStore(d) => write!(f, "mkdir   {}", d.display()),
            Step::Copy { from, to, .. } => write!(
                f,
                "copy    {} -> {} (owners, modes, times, xattrs, hard links; one filesystem)",
                from.display(),
                to.display()
            ),
            Step::Rename { from, to } => write!(f, "rename  {} -> {}", from.display(), to.display()),
            Step::SyncDir(d) => write!(f, "fsync   {}", d.display()),
            Step::SetDefault { dir, version } => write!(
                f,
                "default -> {version} ({} renamed over {})",
                dir.join(store::DEFAULT_NEW).display(),
                dir.join(store::DEFAULT).display()
            ),
            Step::Remove { path, aside } => {
                write!(f, "remove  {} (renamed to {} first)", path.display(), aside.display())
            }
            Step::Zfs(argv) => write!(f, "{argv}"),
            Step::CheckMounted { dataset, dir } => write!(f, "check   {dataset} is mounted on {}", dir.display()),
            Step::Exports(t) => f.write_str(&exports::describe(t)),
            Step::Squashfs { program, version, src, dir, tmp, order, .. } => write!(
                f,
                "squashfs {version}: {} {} {} {}; fsync, sha256, rename to {}/{version}-<sha256>.squashfs (kept if \
                 version {version} has one); if {} exists, -sort {} made from it lays what it names first",
                program.display(),
                src.display(),
                tmp.display(),
                squashfs::OPTIONS.join(" "),
                dir.display(),
                order.display(),
                squashfs::sort_path(tmp).display()
            ),
            Step::SquashfsDefault { dir, version } => write!(
                f,
                "pointer {} -> version {version}'s squashfs file ({} renamed over it; removed if there is none)",
                dir.join(squashfs::POINTER).display(),
                dir.join(squashfs::POINTER_NEW).display()
            ),
            Step::RemoveFile(path) => write!(f, "remove  {}", path.display()),
        }
    }
}

/// rename(2) that fails rather than replace an existing entry (RENAME_NOREPLACE; on a
/// filesystem without it, checked just before).
fn rename_new(from: &Path, to: &Path) -> Result<(), ImageError> {
    let err = |errno| ImageError::Rename { from: from.into(), to: to.into(), errno };
    match rustix::fs::renameat_with(CWD, from, CWD, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL) => {
            if std::fs::symlink_metadata(to).is_ok() {
                return Err(err(Errno::EXIST));
            }
            rustix::fs::rename(from, to).map_err(err)
        }
        r => r.map_err(err),
    }
}

/// Runs the steps in order; stops at the first failure, naming it. Notes from a copy (what
/// it left out) go to `out`.
pub fn execute(steps: &[Step], out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    for step in steps {
        match step {
            Step::MakeStore(dir) => {
                std::fs::create_dir_all(dir).map_err(|source| ImageError::MakeStore { dir: dir.clone(), source })?
            }
            Step::Copy { from, to, skip, mountinfo } => {
                // A bind mount in the tree can be of its own filesystem (a running master's
                // fstab binds the image onto its own srv/nfs/root): only the table tells.
                let mounts = copy::mount_points(mountinfo, from)?;
                // On a terminal: entries and bytes so far, and the rate.
                let bar = progress::spinner(format!("copying {}", from.display()));
                let mut watch = |r: &copy::Report| {
                    bar.set_position(r.bytes);
                    bar.set_message(format!("in {} entries", r.entries));
                };
                let copied = copy::tree_watched(from, to, &[skip.as_path()], &mounts, &mut watch);
                bar.finish_and_clear();
                let report = copied.inspect_err(|_| {
                    // Never leave half a copy behind (it has a temporary name, but takes space).
                    let _ = std::fs::remove_dir_all(to);
                })?;
                let _ = writeln!(
                    out,
                    "copied {} entries from {} ({} hard links, {} files reflinked)",
                    report.entries,
                    from.display(),
                    report.hard_links,
                    report.reflinked
                );
                for line in report.note_lines() {
                    let _ = writeln!(out, "{line}");
                }
            }
            Step::Rename { from, to } => rename_new(from, to)?,
            Step::SyncDir(dir) => store::sync_dir(dir)?,
            Step::SetDefault { dir, version } => store::set_default(dir, *version)?,
            Step::Remove { path, aside } => {
                rename_new(path, aside)?;
                store::sync_dir(aside.parent().unwrap_or(Path::new("/")))?;
                std::fs::remove_dir_all(aside).map_err(|source| ImageError::Remove {
                    path: path.clone(),
                    aside: aside.clone(),
                    source,
                })?;
            }
            Step::Zfs(argv) => {
                zfs::run(argv)?;
            }
            Step::CheckMounted { dataset, dir } => zfs::check_mounted(dataset, dir)?,
            Step::Exports(t) => {
                let versions: Vec<Version> = store::Listing::read(&t.dir)?.versions.iter().map(|e| e.version).collect();
                let _ = writeln!(out, "{}", exports::apply(t, &versions)?);
            }
            Step::Squashfs { program, version, src, dir, tmp, order, then_default } => {
                let fix = if *then_default {
                    format!(
                        "version {version} is in the store without it and the default did not move: crctl \
                         image squashfs {version}, then crctl image default {version}"
                    )
                } else {
                    format!("crctl image squashfs {version} builds it again")
                };
                let built = squashfs::build(program, *version, src, dir, tmp, order, &fix)?;
                let _ = writeln!(out, "{}", built.summary());
                if let Some(o) = &built.order {
                    let _ = writeln!(out, "version {version}: {o} ({})", order.display());
                }
                for line in &built.said {
                    let _ = writeln!(out, "note: mksquashfs: {line}");
                }
            }
            Step::SquashfsDefault { dir, version } => {
                if let Some(note) = squashfs::point_default(dir, *version)? {
                    let _ = writeln!(out, "{note}");
                }
            }
            Step::RemoveFile(path) => squashfs::remove(path)?,
        }
    }
    Ok(())
}
