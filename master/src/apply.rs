//! `crctl apply`: makes the running master match its node files now, not at its next boot.
//! The master's node files are laid over the live `/etc` as the agent lays them at boot (its
//! own code, through a private scratch tree, as `crctl render` does), then, for each file that
//! changed, what loads it runs: `systemctl daemon-reload`, `exportfs -ra`, a restart.
//!
//! Planned first with no writes, so `--dry-run` prints exactly what a run does; every program
//! goes through a [`Runner`], which tests replace.

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clusterroot::kmsg::Log;
use clusterroot::manifest::{self, ManifestError, MANIFEST_FILE};
use clusterroot::nodefiles::{EtcPath, EtcWriter, Meta, NodeFilesError};
use clusterroot::root::Root;
use clusterroot::state::STATE_FILE;

use crate::inventory::Inventory;
use crate::place::{self, PlaceError};
use crate::preview::{self, PreviewError, Scratch};
use crate::services::{self, Init};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(
        "{path} is missing: this system did not boot through clusterroot, and its /etc is the \
         image's own; crctl apply runs on the running clusterroot master (node files reach /etc at \
         every clusterroot boot)"
    )]
    NotBooted { path: PathBuf },
    #[error("reading {path} failed: {source}")]
    ReadState { path: PathBuf, source: std::io::Error },
    #[error(
        "this system booted with clusterroot=off: / is the image itself, which the master's node \
         files must not go into; boot the master's normal entry, then run crctl apply"
    )]
    Plain,
    #[error("this system booted as {booted}, not as the master {master} ({mac}): crctl apply runs on the master")]
    NotTheMaster { booted: String, master: String, mac: String },
    #[error(
        "this system booted with clusterroot.nodefiles=none: its node files do not reach /etc at \
         boot either; boot the master with clusterroot.nodefiles=LABEL=nodefiles"
    )]
    NoNodeFiles,
    #[error(
        "{path} holds no node files for the master (no directory {mac}/ nor archive {mac}*.tar*); \
         run crctl sync first (applying none would take every node file away from the running master)"
    )]
    NoneToApply { path: PathBuf, mac: String },
    #[error(transparent)]
    Place(#[from] PlaceError),
    #[error(transparent)]
    Preview(#[from] PreviewError),
    #[error("comparing {path} with the node files failed: {source}")]
    Compare { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Record { path: PathBuf, source: ManifestError },
    #[error(
        "the master's node file hostname holds '{name}', which is not a host name; fix the inventory, then crctl sync"
    )]
    Hostname { name: String },
    #[error("{path} is not a path inside /etc ({why})")]
    Unsafe { path: PathBuf, why: &'static str },
    #[error("reading {path} failed: {source}")]
    ReadSource { path: PathBuf, source: std::io::Error },
    #[error("writing the live /etc failed: {0}")]
    Write(#[source] NodeFilesError),
    #[error("removing {path} failed: {source}")]
    Remove { path: PathBuf, source: std::io::Error },
    #[error("{failed} of {total} commands failed (each named above); /etc matches the node files")]
    Commands { failed: usize, total: usize },
}

/// The running master, as its boot record shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Boot {
    /// Its init system, which says how a service is restarted ([`Init::running`]); None:
    /// neither systemd nor runit, and what would load a file is only named.
    pub init: Option<Init>,
}

/// Refuses unless the live system is the master booted through clusterroot with its node
/// files: `/run/clusterroot/state` says `mode=overlay`, the master's MAC, and a node-files
/// source.
pub fn booted(inv: &Inventory, live: &Path) -> Result<Boot, ApplyError> {
    let path = Root::new(live).path(STATE_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ApplyError::NotBooted { path }),
        Err(source) => return Err(ApplyError::ReadState { path, source }),
    };
    let value = |key: &str| text.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=')).unwrap_or("");
    if value("mode") != "overlay" {
        return Err(ApplyError::Plain);
    }
    let master = inv.master();
    let mac = master.mac.to_string();
    if value("boot_mac") != mac {
        let booted = match value("boot_mac") {
            "" => "an unknown MAC".to_string(),
            m => m.to_string(),
        };
        return Err(ApplyError::NotTheMaster { booted, master: master.name.clone(), mac });
    }
    if value("node_files_source") == "none" {
        return Err(ApplyError::NoNodeFiles);
    }
    Ok(Boot { init: Init::running(live) })
}

/// What an entry is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Link,
    Dir,
}

impl Kind {
    fn of(meta: &std::fs::Metadata) -> Kind {
        if meta.is_dir() {
            Kind::Dir
        } else if meta.file_type().is_symlink() {
            Kind::Link
        } else {
            Kind::File
        }
    }
}

/// How a path of the live `/etc` changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum What {
    /// The node files hold it; the live `/etc` does not.
    New,
    /// The node files hold it otherwise (contents, target, mode or owner).
    Changed,
    /// The node files held it at boot and no longer do: the image's version comes back.
    Restored,
    /// The node files held it at boot and no longer do, and the image has none.
    Removed,
}

/// One path of the live `/etc` that changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileChange {
    /// Below `/etc`.
    pub rel: PathBuf,
    pub what: What,
    pub kind: Kind,
}

/// One step of the plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Lay the node files' entry (or, restored, the image's) over the live one.
    Write(FileChange),
    /// Remove it from the live `/etc`.
    Remove(PathBuf),
    /// Record what the node files now put in `/etc` (the agent's `/run/clusterroot/node-files`,
    /// which the next apply and `crctl diff master` read).
    Record,
    /// Run a program that loads what changed.
    Run(Vec<String>),
    /// What crctl leaves to the admin, or to the next boot.
    Note(String),
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |rel: &Path, kind: Kind| {
            let slash = if kind == Kind::Dir { "/" } else { "" };
            format!("/etc/{}{slash}", rel.display())
        };
        match self {
            Step::Write(FileChange { rel, what: What::New, kind }) => write!(f, "copy    {} (new)", shown(rel, *kind)),
            Step::Write(FileChange { rel, what: What::Changed, kind }) => {
                write!(f, "copy    {} (changed)", shown(rel, *kind))
            }
            Step::Write(FileChange { rel, kind, .. }) => {
                write!(f, "restore {} from the image (the node files no longer hold it)", shown(rel, *kind))
            }
            Step::Remove(rel) => {
                write!(f, "remove  /etc/{} (neither the node files nor the image hold it)", rel.display())
            }
            Step::Record => write!(f, "record  {MANIFEST_FILE} (what the node files put in /etc now)"),
            Step::Run(argv) => write!(f, "run     {}", argv.join(" ")),
            Step::Note(text) => write!(f, "note    {text}"),
        }
    }
}

/// Files of `/etc` (a name, or a directory ending in `/`) and the service that reads them when
/// it starts. dnsmasq serves `/etc/hosts` by DNS.
pub const LOADED_BY: [(&str, &str); 4] =
    [("dnsmasq.conf", "dnsmasq"), ("dnsmasq.d/", "dnsmasq"), ("hosts", "dnsmasq"), ("lighttpd/", "lighttpd")];

/// Whether `rel` is `pattern`, or below it when it ends in `/`.
fn matches(rel: &str, pattern: &str) -> bool {
    if pattern.ends_with('/') {
        rel.starts_with(pattern)
    } else {
        rel == pattern
    }
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// A host name as `hostname(1)` takes it: letters, digits, `-` and `.`, at most 64, not
/// starting with `-` or `.`.
fn valid_hostname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['-', '.'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// What loads the changed files, in the order it runs: the service manager's view first, the
/// host name, newly enabled units, exports and network, then restarts; notes last. No I/O:
/// `hostname` is the new `/etc/hostname`'s name, when it changed.
pub fn actions(changes: &[FileChange], init: Option<Init>, hostname: Option<&str>) -> Vec<Step> {
    // Buckets in running order; a program is run once.
    let (mut reload, mut host, mut start, mut load, mut restart, mut notes) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let restart_of = |name: &str, restart: &mut Vec<Vec<String>>, notes: &mut Vec<String>| {
        let service = services::SERVICES.iter().find(|s| s.name == name);
        match (init, service.and_then(|s| s.systemd_unit), service.and_then(|s| s.runit)) {
            (Some(Init::Systemd), Some(unit), _) => restart.push(argv(&["systemctl", "restart", unit])),
            (Some(Init::Runit), _, Some(sv)) => restart.push(argv(&["sv", "restart", sv])),
            _ => notes.push(format!("restart {name} to load it")),
        }
    };
    for c in changes {
        let rel = c.rel.to_string_lossy();
        let rel = rel.as_ref();
        let gone = matches!(c.what, What::Restored | What::Removed);
        if rel == "hostname" {
            match hostname {
                Some(name) if !gone => host.push(argv(&["hostname", name])),
                _ => notes.push("hostname changed: the running system keeps its name until the next boot".into()),
            }
        } else if matches(rel, "exports") || matches(rel, "exports.d/") {
            load.push(argv(&["exportfs", "-ra"]));
        } else if let Some((_, name)) = LOADED_BY.iter().find(|(p, _)| matches(rel, p)) {
            restart_of(name, &mut restart, &mut notes);
        } else if matches(rel, "nfs.conf")
            || matches(rel, "nfs.conf.d/")
            || rel == crate::render::master::NFS_SERVER_CONF
        {
            notes.push(
                "nfs.conf changed: restart the NFS server to load it (clients wait through its grace period), or reboot"
                    .into(),
            );
        } else if crate::render::master::ROOTFS_FILES.iter().any(|(_, p)| *p == rel) && c.kind != Kind::Dir {
            // The store's boot files are served through /run/rootfs: let the servers in now,
            // before they restart (a file gone leaves the mode until the next boot).
            if !gone {
                load.push(crate::render::master::rootfs_chmod());
            }
        } else if rel == "machine-id" {
            notes.push("machine-id changed: the running system keeps its own until the next boot".into());
        } else if rel.starts_with("ssh/ssh_host_") {
            notes.push("ssh host keys changed: restart sshd to serve them".into());
        } else if rel == "fstab" {
            if init == Some(Init::Systemd) {
                reload.push(argv(&["systemctl", "daemon-reload"]));
            }
            notes.push("fstab changed: what it adds is mounted at the next boot (or by hand: mount TARGET)".into());
        } else if let Some(below) = rel.strip_prefix("systemd/system/") {
            if init != Some(Init::Systemd) {
                continue;
            }
            reload.push(argv(&["systemctl", "daemon-reload"]));
            // An enable link: <target>.wants/<unit> or <target>.requires/<unit>.
            let link = below.split_once('/').filter(|(dir, unit)| {
                (dir.ends_with(".wants") || dir.ends_with(".requires")) && !unit.contains('/') && c.kind == Kind::Link
            });
            match (link, c.what) {
                (Some((_, unit)), What::New) => start.push(argv(&["systemctl", "start", unit])),
                (Some((_, unit)), What::Removed) => notes.push(format!(
                    "{unit} is no longer enabled: it does not start at the next boot (systemctl stop {unit} stops it now)"
                )),
                (Some(_), _) => {}
                (None, _) if c.kind == Kind::Dir => {}
                (None, _) => {
                    let unit = below.split('/').next().unwrap_or(below).trim_end_matches(".d");
                    notes.push(format!("{unit} changed: it applies when {unit} (re)starts"));
                }
            }
        } else if rel.starts_with("systemd/network/") {
            if init == Some(Init::Systemd) && c.kind != Kind::Dir {
                load.push(argv(&["networkctl", "reload"]));
            }
        } else if let Some(sv) = rel.strip_prefix("runit/runsvdir/default/") {
            if init == Some(Init::Runit) && c.kind == Kind::Link {
                let (does, sv) = if gone { ("stops", sv) } else { ("starts", sv) };
                notes.push(format!("runsvdir {does} {sv} within 5 seconds"));
            }
        } else if let Some(below) = rel.strip_prefix("sv/") {
            // A service's run script changed: restart it (a new one runsvdir starts).
            if let (Some(Init::Runit), What::Changed, Some((sv, _))) = (init, c.what, below.split_once('/')) {
                restart.push(argv(&["sv", "restart", sv]));
            }
        } else if rel.starts_with("runit/core-services/") && c.kind != Kind::Dir {
            notes.push(format!("/etc/{rel} changed: it runs at the next boot"));
        }
    }
    // A unit both started and restarted is only restarted (restart starts it).
    start.retain(|s| !restart.iter().any(|r| r.last() == s.last()));
    let mut steps: Vec<Step> = Vec::new();
    for run in [reload, host, start, load, restart].into_iter().flatten() {
        if !steps.contains(&Step::Run(run.clone())) {
            steps.push(Step::Run(run));
        }
    }
    for note in notes {
        if !steps.contains(&Step::Note(note.clone())) {
            steps.push(Step::Note(note));
        }
    }
    steps
}

/// The plan, holding the scratch tree its writes are copied from.
pub struct Plan {
    pub steps: Vec<Step>,
    scratch: Scratch,
    /// The image's `/etc`, which restored files come from.
    image_etc: PathBuf,
    live: PathBuf,
}

/// The plan for the live system at `live`, the master's node files below the image `root`.
pub fn plan(inv: &Inventory, root: &Path, live: &Path, boot: &Boot) -> Result<Plan, ApplyError> {
    let master = inv.master();
    let nodefiles = place::under(root, &inv.settings.nodefiles);
    let (image_etc, live_etc) = (root.join("etc"), live.join("etc"));

    // The node files, applied by the agent's own code into a private scratch tree.
    let (scratch, applied) = preview::into_scratch(master, &nodefiles)?;
    if applied.is_empty() {
        return Err(ApplyError::NoneToApply { path: nodefiles, mac: master.mac.to_string() });
    }
    let ours = scratch.etc();
    let mut paths = Vec::new();
    preview::walk(&ours, Path::new(""), &mut paths)?;

    // Each of their entries against the live one.
    fn compare(path: &Path) -> impl FnOnce(std::io::Error) -> ApplyError {
        let path = path.to_path_buf();
        move |source| ApplyError::Compare { path, source }
    }
    let mut changes = Vec::new();
    for rel in paths {
        let (src, dst) = (ours.join(&rel), live_etc.join(&rel));
        let kind = Kind::of(&std::fs::symlink_metadata(&src).map_err(compare(&src))?);
        let what = match std::fs::symlink_metadata(&dst) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => What::New,
            Err(e) => return Err(compare(&dst)(e)),
            Ok(_) if crate::files::same(&src, &dst).map_err(compare(&dst))? => continue,
            Ok(_) => What::Changed,
        };
        changes.push(FileChange { rel, what, kind });
    }

    // What the node files put in /etc at boot (or at the last apply) and hold no longer: a
    // reboot gives the image's version, or none.
    let mut notes = Vec::new();
    let record = Root::new(live).path(MANIFEST_FILE);
    let now = manifest::scan(&ours).map_err(|source| ApplyError::Record { path: ours.clone(), source })?;
    match std::fs::read_to_string(&record) {
        Ok(text) => {
            let then = manifest::parse(&text).map_err(|source| ApplyError::Record { path: record.clone(), source })?;
            for entry in then.iter().filter(|e| !now.iter().any(|n| n.path == e.path)) {
                let rel = PathBuf::from(entry.path.trim_start_matches("/etc/"));
                let (image, dst) = (image_etc.join(&rel), live_etc.join(&rel));
                let here = std::fs::symlink_metadata(&dst).is_ok();
                match std::fs::symlink_metadata(&image) {
                    Ok(m) if !here || !crate::files::same(&image, &dst).map_err(compare(&dst))? => {
                        changes.push(FileChange { rel, what: What::Restored, kind: Kind::of(&m) });
                    }
                    Ok(_) => {}
                    Err(_) if here => {
                        let kind = if entry.kind == manifest::Kind::Link { Kind::Link } else { Kind::File };
                        changes.push(FileChange { rel, what: What::Removed, kind });
                    }
                    Err(_) => {}
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => notes.push(Step::Note(format!(
            "{} is missing: files the node files no longer hold stay in /etc until the next boot",
            record.display()
        ))),
        Err(source) => return Err(ApplyError::ReadSource { path: record, source }),
    }

    // The new host name, checked before anything changes.
    let hostname = match changes.iter().any(|c| c.rel == Path::new("hostname") && c.what != What::Removed) {
        true => {
            let from = if ours.join("hostname").exists() { ours.join("hostname") } else { image_etc.join("hostname") };
            let text =
                std::fs::read_to_string(&from).map_err(|source| ApplyError::ReadSource { path: from, source })?;
            let name = text.lines().next().unwrap_or("").trim().to_string();
            if !valid_hostname(&name) {
                return Err(ApplyError::Hostname { name });
            }
            Some(name)
        }
        false => None,
    };

    let mut steps: Vec<Step> = Vec::new();
    for c in &changes {
        match c.what {
            What::Removed => steps.push(Step::Remove(c.rel.clone())),
            _ => steps.push(Step::Write(c.clone())),
        }
    }
    if !changes.is_empty() {
        steps.push(Step::Record);
    }
    steps.extend(actions(&changes, boot.init, hostname.as_deref()));
    steps.extend(notes);
    Ok(Plan { steps, scratch, image_etc, live: live.to_path_buf() })
}

/// Runs a program to completion; tests record the command lines instead.
pub trait Runner {
    /// Runs `argv`; on failure, why, in one line.
    fn run(&mut self, argv: &[String]) -> Result<(), String>;
}

/// The programs themselves, found on `PATH`.
pub struct System;

impl Runner for System {
    fn run(&mut self, argv: &[String]) -> Result<(), String> {
        let (program, args) = argv.split_first().ok_or("an empty command line")?;
        crate::image::command::run_checked(program, args).map(drop).map_err(|e| e.to_string())
    }
}

/// The owner, mode and times of `meta`, for the agent's writer.
fn meta_of(meta: &std::fs::Metadata) -> Meta {
    Meta { mode: meta.mode() & 0o7777, uid: meta.uid(), gid: meta.gid(), mtime: (meta.mtime(), meta.mtime_nsec()) }
}

/// Writes one entry of `from` (the scratch tree's `etc` or the image's) into the live `/etc`.
fn write_entry(w: &mut EtcWriter, from: &Path, c: &FileChange) -> Result<(), ApplyError> {
    let src = from.join(&c.rel);
    let read = |source| ApplyError::ReadSource { path: src.clone(), source };
    let path =
        EtcPath::parse(c.rel.as_os_str().as_bytes()).map_err(|why| ApplyError::Unsafe { path: c.rel.clone(), why })?;
    let meta = std::fs::symlink_metadata(&src).map_err(read)?;
    match Kind::of(&meta) {
        Kind::Dir => w.dir(&path, &meta_of(&meta)),
        Kind::Link => {
            let target = std::fs::read_link(&src).map_err(read)?;
            w.symlink(&path, target.as_os_str().as_bytes(), &meta_of(&meta))
        }
        Kind::File => w.file(&path, &mut std::fs::File::open(&src).map_err(read)?, &meta_of(&meta)),
    }
    .map_err(ApplyError::Write)
}

/// Prints each step, then does it (with `dry_run`, only prints). Writes stop at the first
/// failure; every program runs, each failure is given to `failed` as one line, and the count
/// is the error.
pub fn execute(
    plan: &Plan,
    dry_run: bool,
    runner: &mut dyn Runner,
    out: &mut dyn Write,
    failed: &mut dyn FnMut(&str),
) -> Result<(), ApplyError> {
    if plan.steps.iter().all(|s| matches!(s, Step::Note(_))) {
        let _ = writeln!(out, "nothing to do: /etc matches the master's node files");
    }
    let mut writer: Option<EtcWriter> = None;
    let log = Log::stderr_warnings();
    let (mut failures, mut commands) = (0, 0);
    for step in &plan.steps {
        let _ = writeln!(out, "{step}");
        if dry_run {
            continue;
        }
        // The writes go through one writer of the live /etc, opened at the first.
        if matches!(step, Step::Write(_)) && writer.is_none() {
            let deadline = Instant::now() + Duration::from_secs(600);
            writer = Some(EtcWriter::open(&plan.live.display().to_string(), deadline).map_err(ApplyError::Write)?);
        }
        match (step, writer.as_mut()) {
            (Step::Write(c), Some(w)) => {
                let from = if c.what == What::Restored { plan.image_etc.clone() } else { plan.scratch.etc() };
                write_entry(w, &from, c)?;
            }
            (Step::Write(_), None) => unreachable!("opened above"),
            (Step::Remove(rel), _) => {
                let path = plan.live.join("etc").join(rel);
                std::fs::remove_file(&path).map_err(|source| ApplyError::Remove { path, source })?;
            }
            (Step::Record, _) => {
                // Directory times are set when the writer closes, before the record is made.
                if let Some(w) = writer.take() {
                    w.close(&log);
                }
                let etc = plan.scratch.etc();
                let entries = manifest::scan(&etc).map_err(|source| ApplyError::Record { path: etc, source })?;
                manifest::write(&Root::new(&plan.live), &entries)
                    .map_err(|source| ApplyError::Record { path: Root::new(&plan.live).path(MANIFEST_FILE), source })?;
            }
            (Step::Run(argv), _) => {
                commands += 1;
                if let Err(why) = runner.run(argv) {
                    failures += 1;
                    failed(&format!("apply: {why}"));
                }
            }
            (Step::Note(_), _) => {}
        }
    }
    if let Some(w) = writer.take() {
        w.close(&log);
    }
    if dry_run {
        let _ = writeln!(out, "(dry run: nothing changed)");
    }
    if failures > 0 {
        return Err(ApplyError::Commands { failed: failures, total: commands });
    }
    Ok(())
}

/// `crctl apply`: the checks (the running master, its node files mounted), then the plan,
/// then its execution.
pub fn run(
    inv: &Inventory,
    root: &Path,
    live: &Path,
    dry_run: bool,
    runner: &mut dyn Runner,
    out: &mut dyn Write,
    failed: &mut dyn FnMut(&str),
) -> Result<(), ApplyError> {
    let boot = booted(inv, live)?;
    // The node files are read from the node-files filesystem, never from the image's own
    // directory below its mount point.
    place::node_files_mounted_to_read(root, &inv.settings.nodefiles)?;
    let plan = plan(inv, root, live, &boot)?;
    execute(&plan, dry_run, runner, out, failed)
}

#[cfg(test)]
mod tests;
