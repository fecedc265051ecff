//! `crctl image`: versions of the shared root in an image store, published whole, booted by
//! name through the store's `default` symlink, edited in a working copy, and collected when no
//! node runs them. The layout is the agent's contract (see docs/images.md):
//!
//! ```text
//! <store>/1/ <store>/2/ ...   versions: whole root trees, never changed once published
//! <store>/default -> 2        the version nodes boot (relative symlink, replaced atomically)
//! <store>/edit/               the one writable working copy
//! <store>/squashfs/3-<sha256>.squashfs, <store>/squashfs/default
//!                             each version also as one file, and the default's name
//! ```
//!
//! Each command is parsed with no I/O (by [`crate::cli`], into a [`Request`]), planned from what the store holds (a list
//! of [`plan::Step`]s, which `--dry-run` prints), then executed under the store's lock.

pub mod command;
pub mod copy;
pub mod edit;
pub mod exports;
pub mod gc;
pub mod list;
pub mod mounts;
pub mod nodes;
pub mod order;
pub mod plan;
pub mod progress;
pub mod squashfs;
pub mod store;
pub mod zfs;

use std::path::{Path, PathBuf};

use rustix::io::Errno;

use crate::inventory::Inventory;
pub use nodes::Host;
use plan::Step;
use store::{Listing, StoreError, Version};

/// What an image command asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    List,
    /// `squashfs`: build the new version's squashfs file too (not with `--no-squashfs`).
    Import {
        src: PathBuf,
        squashfs: bool,
    },
    /// The command to run in the working copy (empty: the shell).
    Edit(Vec<String>),
    Publish {
        make_default: bool,
        squashfs: bool,
    },
    Discard,
    Default(Version),
    Gc,
    /// The export lines of a ZFS store's versions, written and loaded.
    Export,
    /// The squashfs file of the version, or of every version, that lacks one.
    Squashfs(Option<Version>),
}

/// A parsed `crctl image ...`: the store is `root` (None: [`crate::place::default_root`]) +
/// the inventory's `images` path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub op: Op,
    pub dry_run: bool,
    pub root: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Copy(#[from] copy::CopyError),
    #[error(transparent)]
    Zfs(#[from] zfs::ZfsError),
    #[error(transparent)]
    Nodes(#[from] nodes::NodesError),
    #[error(transparent)]
    Gc(#[from] gc::GcError),
    #[error(transparent)]
    Edit(#[from] edit::EditError),
    #[error(transparent)]
    Exports(#[from] exports::ExportsError),
    #[error(transparent)]
    Squashfs(#[from] squashfs::SquashfsError),
    #[error("the tree to import, {path}, cannot be read: {source}")]
    Source { path: PathBuf, source: std::io::Error },
    #[error("{path} is the image store itself; name the root tree to import, such as /run/rootfs/lower")]
    SourceIsStore { path: PathBuf },
    #[error(
        "{path} is empty: there is nothing to import; on a running master the image is \
         /run/rootfs/lower (crctl image import /run/rootfs/lower)"
    )]
    EmptySource { path: PathBuf },
    #[error("making the image store {dir} failed: {source}")]
    MakeStore { dir: PathBuf, source: std::io::Error },
    #[error("there is no working copy {path}; crctl image edit makes one")]
    NoEdit { path: PathBuf },
    #[error("image store {dir} has no default version to copy ({why}); crctl image default VERSION sets one")]
    NoDefault { dir: PathBuf, why: String },
    #[error("image store {dir} has no version {version}; crctl image list shows them")]
    NoSuchVersion { dir: PathBuf, version: Version },
    #[error("renaming {from} to {to} failed: {errno}")]
    Rename { from: PathBuf, to: PathBuf, errno: Errno },
    #[error(
        "removing {path} failed: {source}; what is left of it is {aside} (no version any more): remove it by hand"
    )]
    Remove { path: PathBuf, aside: PathBuf, source: std::io::Error },
    #[error("{path} has mounts below it ({mounts}); unmount them first (nothing was changed)")]
    Mounted { path: PathBuf, mounts: String },
    #[error("{cmd} in {dir} {how}; the working copy keeps its changes: crctl image edit goes on, crctl image discard drops it")]
    Command { cmd: String, dir: PathBuf, how: String },
}

/// How versions are kept: directories, or datasets below the store's own dataset.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Backend {
    Dir,
    Zfs { dataset: String },
}

/// What every command looks at first.
struct Ctx<'a> {
    inv: &'a Inventory,
    host: &'a Host,
    dir: PathBuf,
    mounts: Vec<mounts::Mount>,
    backend: Backend,
}

impl Ctx<'_> {
    fn zfs_name(&self, ds: &str, name: &str) -> String {
        format!("{ds}/{name}")
    }

    /// The store's version exports: what `image export` writes, and a ZFS store's import,
    /// publish and gc write again.
    fn exports(&self) -> exports::Target {
        exports::Target {
            file: self.host.exports_file.clone(),
            exportfs: self.host.exportfs.clone(),
            mountinfo: self.host.mountinfo.clone(),
            dir: self.dir.clone(),
            dataset: match &self.backend {
                Backend::Zfs { dataset } => Some(dataset.clone()),
                Backend::Dir => None,
            },
            nfs_path: self.inv.settings.images.clone(),
            network: self.inv.settings.network.to_string(),
        }
    }

    /// The store's directory of squashfs files.
    fn squashfs_dir(&self) -> PathBuf {
        squashfs::dir_of(&self.dir)
    }

    /// The step that builds version `v`'s squashfs file from its tree `src`.
    fn squashfs_step(&self, v: Version, src: PathBuf, then_default: bool) -> Step {
        let dir = self.squashfs_dir();
        let tmp = dir.join(squashfs::temp_name(v, pid()));
        let order = self.squashfs_dir().join(order::FILE);
        Step::Squashfs { program: self.host.mksquashfs.clone(), version: v, src, dir, tmp, order, then_default }
    }

    /// The steps that give a new version `v` (its tree at `src`) its squashfs file. A file
    /// already named for `v` belongs to a removed version of the same number: it goes first.
    fn new_version_squashfs(&self, files: &squashfs::Files, v: Version, src: PathBuf, then_default: bool) -> Vec<Step> {
        let mut steps: Vec<Step> = files.all_of(v).map(|f| Step::RemoveFile(files.path(&f.name.to_string()))).collect();
        if let Backend::Zfs { dataset } = &self.backend {
            // The renamed dataset follows its inherited mountpoint; mksquashfs reads it there.
            steps.push(Step::CheckMounted { dataset: self.zfs_name(dataset, &v.to_string()), dir: src.clone() });
        }
        steps.push(self.squashfs_step(v, src, then_default));
        steps
    }

    /// The steps that make `v` the default: the store's link, then the squashfs pointer.
    fn default_steps(&self, v: Version) -> [Step; 2] {
        [
            Step::SetDefault { dir: self.dir.clone(), version: v },
            Step::SquashfsDefault { dir: self.squashfs_dir(), version: v },
        ]
    }

    /// Refuses when something is mounted at or below `path` (a removal would reach into it).
    fn unmounted(&self, path: &Path) -> Result<(), ImageError> {
        let found = mounts::below(&self.mounts, path, true);
        if found.is_empty() {
            return Ok(());
        }
        let list: Vec<String> = found.iter().map(|p| p.display().to_string()).collect();
        Err(ImageError::Mounted { path: path.to_path_buf(), mounts: list.join(", ") })
    }
}

/// What a client fetches from its version's TFTP root (the master serves the default's:
/// [`Inventory::served_tftp`]): the kernel hook's kernel and initramfs, and sync's boot.ipxe.
pub const BOOT_FILES: [&str; 3] = ["vmlinuz", "initramfs-net.img", "boot.ipxe"];

/// With a store in the inventory, a note when the tree that is or becomes `version` lacks a
/// boot file in its TFTP root: its clients would find no kernel, or boot another version's.
fn boot_files_note(inv: &Inventory, tree: &Path, version: Version) -> Option<String> {
    if !inv.uses_store() {
        return None;
    }
    let dir = tree.join(inv.settings.tftp.trim_start_matches('/'));
    let missing: Vec<&str> = BOOT_FILES.iter().copied().filter(|f| !dir.join(f).is_file()).collect();
    if missing.is_empty() {
        return None;
    }
    Some(format!(
        "note: clients of version {version} would find no {} in its TFTP root {}: make them in a working \
         copy (the kernel hook in crctl image edit, then crctl sync) and publish it",
        missing.join(", "),
        dir.display()
    ))
}

/// Prints `note`, if any.
fn say_note(note: Option<String>, out: &mut dyn std::io::Write) {
    if let Some(n) = note {
        let _ = writeln!(out, "{n}");
    }
}

fn pid() -> u32 {
    std::process::id()
}

/// Runs an image command against the inventory's store, writing to `out`.
pub fn run(inv: &Inventory, req: &Request, host: &Host, out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    let root = req.root.clone().unwrap_or_else(crate::place::default_root);
    let mut dir = crate::place::under(&root, &inv.settings.images);
    if let Ok(real) = std::fs::canonicalize(&dir) {
        dir = real; // mountinfo names real paths
    }
    let mounts = std::fs::read_to_string(&host.mountinfo).map(|t| mounts::parse(&t)).unwrap_or_default();
    let backend = zfs::dataset_of(&dir, &mounts).map_or(Backend::Dir, |dataset| Backend::Zfs { dataset });
    let ctx = Ctx { inv, host, dir, mounts, backend };
    match &req.op {
        Op::List => list(&ctx, out),
        Op::Import { src, squashfs } => {
            let squashfs = squashfs_wanted(inv, *squashfs);
            import(&ctx, src, squashfs, req.dry_run, out)
        }
        Op::Edit(cmd) => edit(&ctx, cmd, req.dry_run, out),
        Op::Publish { make_default, squashfs } => {
            let squashfs = squashfs_wanted(inv, *squashfs);
            publish(&ctx, *make_default, squashfs, req.dry_run, out)
        }
        Op::Discard => discard(&ctx, req.dry_run, out),
        Op::Default(v) => set_default(&ctx, *v, req.dry_run, out),
        Op::Gc => collect(&ctx, req.dry_run, out),
        Op::Export => export(&ctx, req.dry_run, out),
        Op::Squashfs(v) => build_squashfs(&ctx, *v, req.dry_run, out),
    }
}

/// Whether an import or a publish builds the new version's squashfs file: asked for (not
/// `--no-squashfs`) and booted by the inventory's image-mode. The files cost a build at every
/// publish (minutes for a big image on a slow machine), so a tree-mode cluster gets them only
/// from `image squashfs` (`image list` shows `-` for a version without one).
fn squashfs_wanted(inv: &Inventory, asked: bool) -> bool {
    asked && inv.settings.image_mode != crate::inventory::ImageMode::Tree
}

/// Prints the plan and `(dry run: ...)`, or takes the store's lock and runs it.
fn carry_out(ctx: &Ctx, steps: &[Step], dry_run: bool, out: &mut dyn std::io::Write) -> Result<bool, ImageError> {
    if dry_run {
        for s in steps {
            let _ = writeln!(out, "{s}");
        }
        let _ = writeln!(out, "(dry run: nothing changed)");
        return Ok(false);
    }
    let _lock = store::lock_store(&ctx.dir)?;
    plan::execute(steps, out)?;
    Ok(true)
}

fn show_default(v: Option<Version>) -> String {
    v.map_or("none".into(), |v| v.to_string())
}

fn list(ctx: &Ctx, out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    let listing = Listing::read(&ctx.dir)?;
    let running = nodes::running(ctx.inv, ctx.host)?;
    let model = match &ctx.backend {
        Backend::Zfs { dataset } => Some((dataset.clone(), zfs::Model::read(dataset)?)),
        Backend::Dir => None,
    };
    let created = |v: u64| {
        let mtime = listing.versions.iter().find(|e| e.version.0 == v).map_or(0, |e| e.mtime);
        model.as_ref().and_then(|(ds, m)| m.get(&format!("{ds}/{v}"))?.creation).unwrap_or(mtime)
    };
    let files = squashfs::Files::read(&ctx.squashfs_dir())?;
    for line in list::render(&listing, &files, &running, &created, &ctx.host.nfsd_clients.display().to_string()) {
        let _ = writeln!(out, "{line}");
    }
    Ok(())
}

fn import(
    ctx: &Ctx,
    src: &Path,
    squashfs: bool,
    dry_run: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), ImageError> {
    let src = std::fs::canonicalize(src).map_err(|source| ImageError::Source { path: src.to_path_buf(), source })?;
    if src == ctx.dir {
        return Err(ImageError::SourceIsStore { path: src });
    }
    // An empty tree is a mistake, never an image: on a running master the export's directory
    // (/srv/nfs/root) is an empty mount point in the overlay, and the image is the lower.
    if std::fs::read_dir(&src).is_ok_and(|mut d| d.next().is_none()) {
        return Err(ImageError::EmptySource { path: src });
    }
    let mut steps = Vec::new();
    let mut lock = None;
    let listing = match Listing::read(&ctx.dir) {
        Err(StoreError::Missing { .. }) if dry_run => {
            steps.push(Step::MakeStore(ctx.dir.clone()));
            Listing { dir: ctx.dir.clone(), versions: vec![], default: store::DefaultLink::Missing, edit: false }
        }
        Err(StoreError::Missing { .. }) | Ok(_) if !dry_run => {
            // An empty directory is harmless; the lock needs it. Read again under the lock.
            std::fs::create_dir_all(&ctx.dir)
                .map_err(|source| ImageError::MakeStore { dir: ctx.dir.clone(), source })?;
            lock = Some(store::lock_store(&ctx.dir)?);
            Listing::read(&ctx.dir)?
        }
        r => r?,
    };
    let n = listing.next();
    match &ctx.backend {
        Backend::Dir => {
            // A temporary name first: an interrupted copy never looks like a version.
            let tmp = ctx.dir.join(format!(".import-{n}.tmp-{}", pid()));
            steps.push(Step::Copy {
                from: src.clone(),
                to: tmp.clone(),
                skip: ctx.dir.clone(),
                mountinfo: ctx.host.mountinfo.clone(),
            });
            steps.push(Step::Rename { from: tmp, to: listing.path_of(n) });
            steps.push(Step::SyncDir(ctx.dir.clone()));
        }
        Backend::Zfs { dataset } => {
            let tmp = format!("import-{n}");
            steps.extend(zfs::plan_import_create(dataset, &tmp).into_iter().map(Step::Zfs));
            steps.push(Step::CheckMounted { dataset: ctx.zfs_name(dataset, &tmp), dir: ctx.dir.join(&tmp) });
            steps.push(Step::Copy {
                from: src.clone(),
                to: ctx.dir.join(&tmp),
                skip: ctx.dir.clone(),
                mountinfo: ctx.host.mountinfo.clone(),
            });
            steps.extend(zfs::plan_import_finish(dataset, &tmp, n).into_iter().map(Step::Zfs));
            // Exported before anything can make it the default.
            steps.push(Step::Exports(ctx.exports()));
        }
    }
    let old = listing.default_version();
    if squashfs {
        let files = squashfs::Files::read(&ctx.squashfs_dir())?;
        steps.extend(ctx.new_version_squashfs(&files, n, listing.path_of(n), old.is_none()));
    }
    if old.is_none() {
        steps.extend(ctx.default_steps(n));
    }
    let note = boot_files_note(ctx.inv, &src, n);
    if dry_run {
        carry_out(ctx, &steps, true, out)?;
    } else {
        plan::execute(&steps, out)?;
        drop(lock);
        let default = if old.is_none() {
            format!("default: none -> {n}")
        } else {
            format!("default stays {}", show_default(old))
        };
        let _ = writeln!(out, "imported {} as version {n} ({default})", src.display());
    }
    say_note(note, out);
    Ok(())
}

/// The steps that make the working copy when there is none, and the line that says so.
fn edit_plan(ctx: &Ctx, listing: &Listing) -> Result<(Vec<Step>, Option<String>), ImageError> {
    let edit_dir = listing.edit_path();
    let mut steps = Vec::new();
    let mut made = None;
    if !listing.edit {
        let from = listing.default_version().ok_or_else(|| ImageError::NoDefault {
            dir: ctx.dir.clone(),
            why: match &listing.default {
                store::DefaultLink::Dangling(what) => format!("default {what}"),
                _ => "no default".into(),
            },
        })?;
        match &ctx.backend {
            Backend::Dir => {
                let tmp = ctx.dir.join(format!(".edit.tmp-{}", pid()));
                steps.push(Step::Copy {
                    from: listing.path_of(from),
                    to: tmp.clone(),
                    skip: ctx.dir.clone(),
                    mountinfo: ctx.host.mountinfo.clone(),
                });
                steps.push(Step::Rename { from: tmp, to: edit_dir.clone() });
                steps.push(Step::SyncDir(ctx.dir.clone()));
                made = Some(format!("made {}, a copy of version {from}", edit_dir.display()));
            }
            Backend::Zfs { dataset } => {
                let model = zfs::Model::read(dataset)?;
                steps.extend(zfs::plan_edit(dataset, from, listing.next(), &model).into_iter().map(Step::Zfs));
                steps.push(Step::CheckMounted { dataset: ctx.zfs_name(dataset, store::EDIT), dir: edit_dir.clone() });
                made = Some(format!("made {}, a ZFS clone of version {from} (nothing copied)", edit_dir.display()));
            }
        }
    }
    Ok((steps, made))
}

fn edit(ctx: &Ctx, cmd: &[String], dry_run: bool, out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    let listing = Listing::read(&ctx.dir)?;
    let edit_dir = listing.edit_path();
    let (steps, _) = edit_plan(ctx, &listing)?;
    if dry_run {
        // The shell is looked for in what the working copy is, or will be a copy of.
        let source = match listing.default_version() {
            Some(v) if !listing.edit => listing.path_of(v),
            _ => edit_dir.clone(),
        };
        let cmd = edit::command_or_shell(cmd, &source);
        for s in &steps {
            let _ = writeln!(out, "{s}");
        }
        let binds = edit::BINDS.join(", ");
        let _ = writeln!(
            out,
            "run     {} chrooted in {} ({binds} bound and a tmpfs on {} in a mount namespace of its own)",
            edit::show(&cmd),
            edit_dir.display(),
            edit::TMPFS
        );
        let _ = writeln!(out, "(dry run: nothing changed)");
        return Ok(());
    }
    let store_lock = store::lock_store(&ctx.dir)?;
    // Planned again under the lock: another command may have made or dropped the copy.
    let (steps, made) = edit_plan(ctx, &Listing::read(&ctx.dir)?)?;
    plan::execute(&steps, out)?;
    let line =
        made.unwrap_or_else(|| format!("editing {} (made earlier; crctl image discard drops it)", edit_dir.display()));
    let _ = writeln!(out, "{line}");
    // Shared while the command runs: publish and discard refuse until it ends.
    let _edit_lock = store::lock_edit(&edit_dir, false)?;
    let cmd = edit::command_or_shell(cmd, &edit_dir);
    drop(store_lock);
    let (mounts, made_dirs) = edit::prepare(&edit_dir)?;
    for d in made_dirs {
        let _ = writeln!(out, "made {} (missing; the mounts need it)", d.display());
    }
    let _ = out.flush();
    let status = edit::run(&edit_dir, &cmd, &mounts)?;
    let how = edit::describe(status);
    let _ = writeln!(out, "{} {how}", edit::show(&cmd));
    let next = Listing::read(&ctx.dir).map(|l| l.next()).unwrap_or(listing.next());
    let _ = writeln!(
        out,
        "crctl image publish makes it version {next} and the default (--no-default: not the default); crctl image discard drops it"
    );
    if !status.success() {
        return Err(ImageError::Command { cmd: edit::show(&cmd), dir: edit_dir, how });
    }
    Ok(())
}

/// Checks that no `image edit` runs in the working copy (its lock, taken and let go: the
/// store's lock, held from here on, keeps a new one from starting).
fn edit_idle(listing: &Listing, dry_run: bool) -> Result<(), ImageError> {
    if !listing.edit {
        return Err(ImageError::NoEdit { path: listing.edit_path() });
    }
    if !dry_run {
        drop(store::lock_edit(&listing.edit_path(), true)?);
    }
    Ok(())
}

fn publish(
    ctx: &Ctx,
    make_default: bool,
    squashfs: bool,
    dry_run: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), ImageError> {
    let _lock = if dry_run { None } else { Some(store::lock_store(&ctx.dir)?) };
    let listing = Listing::read(&ctx.dir)?;
    edit_idle(&listing, dry_run)?;
    let n = listing.next();
    let mut steps = match &ctx.backend {
        Backend::Dir => {
            vec![Step::Rename { from: listing.edit_path(), to: listing.path_of(n) }, Step::SyncDir(ctx.dir.clone())]
        }
        Backend::Zfs { dataset } => {
            let mut steps: Vec<Step> = zfs::plan_publish(dataset, n).into_iter().map(Step::Zfs).collect();
            // Before a node can boot it, the new dataset needs its export.
            steps.push(Step::Exports(ctx.exports()));
            steps
        }
    };
    if squashfs {
        // Built before the default moves, so that both kinds of clients switch together.
        let files = squashfs::Files::read(&ctx.squashfs_dir())?;
        steps.extend(ctx.new_version_squashfs(&files, n, listing.path_of(n), make_default));
    }
    if make_default {
        steps.extend(ctx.default_steps(n));
    }
    if dry_run {
        carry_out(ctx, &steps, true, out)?;
        say_note(boot_files_note(ctx.inv, &listing.edit_path(), n), out);
        return Ok(());
    }
    plan::execute(&steps, out)?;
    let old = listing.default_version();
    let default = match (make_default, old) {
        (true, _) => format!("default: {} -> {n}", show_default(old)),
        (false, Some(o)) => format!("default stays {o}"),
        (false, None) => format!("no default yet: crctl image default {n} sets it"),
    };
    let _ = writeln!(out, "published {n} ({default})");
    say_note(boot_files_note(ctx.inv, &listing.path_of(n), n), out);
    Ok(())
}

fn discard(ctx: &Ctx, dry_run: bool, out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    let _lock = if dry_run { None } else { Some(store::lock_store(&ctx.dir)?) };
    let listing = Listing::read(&ctx.dir)?;
    edit_idle(&listing, dry_run)?;
    let steps = match &ctx.backend {
        Backend::Dir => {
            ctx.unmounted(&listing.edit_path())?;
            vec![Step::Remove { path: listing.edit_path(), aside: ctx.dir.join(format!(".edit.discard-{}", pid())) }]
        }
        Backend::Zfs { dataset } => {
            let mut model = zfs::Model::read(dataset)?;
            zfs::plan_destroy(&ctx.zfs_name(dataset, store::EDIT), &mut model)?.into_iter().map(Step::Zfs).collect()
        }
    };
    if dry_run {
        carry_out(ctx, &steps, true, out)?;
        return Ok(());
    }
    plan::execute(&steps, out)?;
    let _ = writeln!(out, "discarded {}", listing.edit_path().display());
    Ok(())
}

fn set_default(ctx: &Ctx, v: Version, dry_run: bool, out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    let listing = Listing::read(&ctx.dir)?;
    if !listing.has(v) {
        return Err(ImageError::NoSuchVersion { dir: ctx.dir.clone(), version: v });
    }
    let old = listing.default_version();
    let note = boot_files_note(ctx.inv, &listing.path_of(v), v);
    if old == Some(v) {
        let _ = writeln!(out, "default: {v} (unchanged)");
    } else if carry_out(ctx, &ctx.default_steps(v), dry_run, out)? {
        let _ = writeln!(out, "default: {} -> {v}", show_default(old));
    }
    say_note(note, out);
    Ok(())
}

fn collect(ctx: &Ctx, dry_run: bool, out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    let _lock = if dry_run { None } else { Some(store::lock_store(&ctx.dir)?) };
    let listing = Listing::read(&ctx.dir)?;
    let running = nodes::running(ctx.inv, ctx.host)?;
    let versions: Vec<Version> = listing.versions.iter().map(|e| e.version).collect();
    let decisions = gc::select(&versions, listing.default_version(), &running, ctx.host.nfsd_clients.clone())?;
    let gone: Vec<Version> = decisions.iter().filter(|d| d.keep.is_empty()).map(|d| d.version).collect();
    let kept: Vec<Version> = decisions.iter().filter(|d| !d.keep.is_empty()).map(|d| d.version).collect();
    // The squashfs files of the versions that go, of versions gone already, and leftovers.
    let files = squashfs::Files::read(&ctx.squashfs_dir())?;
    let files_gone = squashfs::gc_removals(&files, &kept, listing.default_version());
    // Plan every removal before the first one.
    let mut steps = Vec::new();
    match &ctx.backend {
        Backend::Dir => {
            for v in &gone {
                ctx.unmounted(&listing.path_of(*v))?;
                steps.push(Step::Remove {
                    path: listing.path_of(*v),
                    aside: ctx.dir.join(format!(".gc-{v}-{}", pid())),
                });
            }
        }
        Backend::Zfs { dataset } => {
            let mut model = zfs::Model::read(dataset)?;
            for v in &gone {
                steps.extend(
                    zfs::plan_destroy(&ctx.zfs_name(dataset, &v.to_string()), &mut model)?.into_iter().map(Step::Zfs),
                );
            }
            steps.push(Step::Exports(ctx.exports()));
        }
    }
    steps.extend(files_gone.iter().cloned().map(Step::RemoveFile));
    if !files_gone.is_empty() {
        steps.push(Step::SyncDir(ctx.squashfs_dir()));
    }
    for d in &decisions {
        let _ = writeln!(out, "{d}");
    }
    if gone.is_empty() && files_gone.is_empty() {
        let _ = writeln!(out, "nothing to remove");
        return Ok(());
    }
    if dry_run {
        carry_out(ctx, &steps, true, out)?;
        return Ok(());
    }
    plan::execute(&steps, out)?;
    if !files_gone.is_empty() {
        let names: Vec<String> =
            files_gone.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
        let _ = writeln!(out, "removed from {}: {}", ctx.squashfs_dir().display(), names.join(", "));
    }
    if !gone.is_empty() {
        let names: Vec<String> = gone.iter().map(Version::to_string).collect();
        let _ = writeln!(out, "removed {}", names.join(", "));
    }
    Ok(())
}

/// `image squashfs [VERSION]`: builds the file of the version, or of every version, that lacks
/// one (a store from before squashfs files, a publish with --no-squashfs, a failed build),
/// and points `squashfs/default` at the default's when it does not already.
fn build_squashfs(
    ctx: &Ctx,
    version: Option<Version>,
    dry_run: bool,
    out: &mut dyn std::io::Write,
) -> Result<(), ImageError> {
    let _lock = if dry_run { None } else { Some(store::lock_store(&ctx.dir)?) };
    let listing = Listing::read(&ctx.dir)?;
    let files = squashfs::Files::read(&ctx.squashfs_dir())?;
    let wanted: Vec<Version> = match version {
        Some(v) if !listing.has(v) => return Err(ImageError::NoSuchVersion { dir: ctx.dir.clone(), version: v }),
        Some(v) => vec![v],
        None => listing.versions.iter().map(|e| e.version).collect(),
    };
    let mut steps = Vec::new();
    let mut notes = Vec::new();
    let mut built = Vec::new();
    for v in files.missing(&wanted) {
        // A ZFS version is read where the store mounts it: one mounted elsewhere (the
        // master's own) would be an empty directory there.
        if let Backend::Zfs { dataset } = &ctx.backend {
            match squashfs::check_source(v, dataset, &listing.path_of(v), &ctx.mounts) {
                Ok(()) => {}
                Err(e) if version.is_none() => {
                    notes.push(format!("note: version {v} left out: {e}"));
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        steps.push(ctx.squashfs_step(v, listing.path_of(v), false));
        built.push(v);
    }
    // The pointer follows the default's file: new, or not named yet.
    let default = listing.default_version();
    match (default, files.pointer(default)) {
        (Some(d), squashfs::Pointer::Right) if built.contains(&d) => {
            steps.push(Step::SquashfsDefault { dir: ctx.squashfs_dir(), version: d })
        }
        (_, squashfs::Pointer::Right) => {}
        (Some(d), _) => steps.push(Step::SquashfsDefault { dir: ctx.squashfs_dir(), version: d }),
        (None, _) => steps.push(Step::RemoveFile(ctx.squashfs_dir().join(squashfs::POINTER))),
    }
    if steps.is_empty() {
        match version.and_then(|v| files.of(v)) {
            Some(f) => {
                let _ = writeln!(out, "version {}: squashfs {} (made earlier)", f.name.version, f.name);
            }
            None if notes.is_empty() => {
                let _ = writeln!(out, "every version has its squashfs file");
            }
            None => {}
        }
    } else if dry_run {
        carry_out(ctx, &steps, true, out)?;
    } else {
        plan::execute(&steps, out)?;
    }
    for n in notes {
        let _ = writeln!(out, "{n}");
    }
    Ok(())
}

/// Writes the store's version exports and loads them (a directory store: a file that says
/// none are needed). `--dry-run` prints the file instead.
fn export(ctx: &Ctx, dry_run: bool, out: &mut dyn std::io::Write) -> Result<(), ImageError> {
    let target = ctx.exports();
    let listing = Listing::read(&ctx.dir)?;
    let versions: Vec<Version> = listing.versions.iter().map(|e| e.version).collect();
    if dry_run {
        let info = std::fs::read_to_string(&ctx.host.mountinfo).unwrap_or_default();
        let (text, _) = exports::render(&target, &versions, &mounts::parse(&info))?;
        let _ = write!(out, "{}:\n{text}", target.file.display());
        let _ = writeln!(out, "then {} -ra\n(dry run: nothing changed)", target.exportfs.display());
        return Ok(());
    }
    let _lock = store::lock_store(&ctx.dir)?;
    let _ = writeln!(out, "{}", exports::apply(&target, &versions)?);
    Ok(())
}

#[cfg(test)]
mod tests;
