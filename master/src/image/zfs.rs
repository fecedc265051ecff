//! The ZFS backend: when the store is a dataset's mountpoint, each version is a child dataset
//! `<ds>/<N>` and the working copy a clone, `<ds>/edit`, so an edit copies nothing. Versions
//! are real datasets rather than `.zfs/snapshot` directories, which have a history of bugs
//! when exported over NFS. Everything here is a plan of `zfs` command lines, made from `zfs
//! list`'s view of the store with no other I/O, and run one line after the other.

use std::fmt;
use std::path::{Path, PathBuf};

use super::command::{self, CommandError};
use super::mounts::{self, Mount};
use super::store::Version;

/// statfs(2)'s `f_type` for ZFS.
pub const MAGIC: u64 = 0x2fc1_2fc1;
/// The snapshot a working copy is cloned from: `<ds>/<from>@edit-<next>`.
pub const EDIT_SNAPSHOT: &str = "edit-";

#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error("running `{argv}` failed: {source}; is zfs installed and on PATH?")]
    Spawn { argv: String, source: std::io::Error },
    #[error("`{argv}` failed ({status}): {stderr}")]
    Failed { argv: String, status: String, stderr: String },
    #[error("`zfs list` printed a line crctl cannot read: {line}")]
    Parse { line: String },
    #[error("dataset {dataset} is not mounted on {dir}; the store's datasets must inherit its mountpoint (zfs inherit mountpoint {dataset})")]
    NotMounted { dataset: String, dir: PathBuf },
    #[error("dataset {dataset} is missing from `zfs list`; crctl image list shows the store as it is")]
    NoDataset { dataset: String },
}

/// One command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Argv(pub Vec<String>);

impl Argv {
    fn of(words: &[&str]) -> Argv {
        Argv(words.iter().map(|w| w.to_string()).collect())
    }
}

impl fmt::Display for Argv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(" "))
    }
}

/// The dataset mounted exactly on `dir`, when `dir` is a ZFS mountpoint (statfs magic, and
/// the mount's source in mountinfo).
pub fn dataset_of(dir: &Path, mounts: &[Mount]) -> Option<String> {
    let fs = rustix::fs::statfs(dir).ok()?;
    #[allow(clippy::unnecessary_cast)] // f_type's width differs between architectures
    let magic = fs.f_type as u64;
    if magic != MAGIC {
        return None;
    }
    mounts::at(mounts, dir).filter(|m| m.fstype == "zfs").map(|m| m.source.clone())
}

/// A dataset or snapshot as `zfs list` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    /// The snapshot a clone was made from.
    pub origin: Option<String>,
    /// A snapshot's clones.
    pub clones: Vec<String>,
    /// Seconds since the epoch.
    pub creation: Option<i64>,
}

/// The store's datasets and snapshots, oldest first, as `zfs list` shows them; changed by
/// [`Model::promote`] and [`Model::remove`] as the commands of a plan would change them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Model {
    pub entries: Vec<Entry>,
}

/// `zfs list` of everything below `ds`, oldest first, as [`Model::parse`] reads it.
pub fn list_argv(ds: &str) -> Argv {
    Argv::of(&[
        "zfs",
        "list",
        "-H",
        "-p",
        "-o",
        "name,origin,clones,creation",
        "-t",
        "filesystem,snapshot",
        "-s",
        "createtxg",
        "-r",
        ds,
    ])
}

fn snapshot_name(full: &str) -> &str {
    full.split_once('@').map_or("", |(_, s)| s)
}

impl Model {
    /// Parses [`list_argv`]'s output: tab-separated, `-` for none.
    pub fn parse(text: &str) -> Result<Model, ZfsError> {
        let mut entries = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let f: Vec<&str> = line.split('\t').collect();
            let [name, origin, clones, creation] = f[..] else {
                return Err(ZfsError::Parse { line: line.to_string() });
            };
            let some = |s: &str| Some(s.to_string()).filter(|s| !s.is_empty() && s != "-");
            entries.push(Entry {
                name: name.to_string(),
                origin: some(origin),
                clones: some(clones).map(|c| c.split(',').map(str::to_string).collect()).unwrap_or_default(),
                creation: creation.parse().ok(),
            });
        }
        Ok(Model { entries })
    }

    /// Runs `zfs list` for `ds`.
    pub fn read(ds: &str) -> Result<Model, ZfsError> {
        Model::parse(&run(&list_argv(ds))?)
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    fn get_mut(&mut self, name: &str) -> Option<&mut Entry> {
        self.entries.iter_mut().find(|e| e.name == name)
    }

    /// `fs`'s snapshots, oldest first.
    pub fn snapshots_of(&self, fs: &str) -> Vec<&Entry> {
        self.entries.iter().filter(|e| e.name.split_once('@').is_some_and(|(d, _)| d == fs)).collect()
    }

    /// What `zfs promote clone` does: the origin's snapshots up to the one cloned move to
    /// `clone`, and the origin becomes a clone of it.
    pub fn promote(&mut self, clone: &str) {
        let Some(origin) = self.get(clone).and_then(|e| e.origin.clone()) else { return };
        let Some((parent, _)) = origin.split_once('@') else { return };
        let parent = parent.to_string();
        let snaps: Vec<String> = self.snapshots_of(&parent).iter().map(|e| e.name.clone()).collect();
        let Some(upto) = snaps.iter().position(|s| *s == origin) else { return };
        let parent_origin = self.get(&parent).and_then(|e| e.origin.clone());
        for old in &snaps[..=upto] {
            let new = format!("{clone}@{}", snapshot_name(old));
            for e in self.entries.iter_mut() {
                if e.name == *old {
                    e.name = new.clone();
                }
                if e.origin.as_deref() == Some(old.as_str()) {
                    e.origin = Some(new.clone());
                }
            }
        }
        let new_origin = format!("{clone}@{}", snapshot_name(&origin));
        if let Some(e) = self.get_mut(clone) {
            e.origin = parent_origin.clone();
        }
        if let Some(e) = self.get_mut(&parent) {
            e.origin = Some(new_origin.clone());
        }
        if let Some(e) = self.get_mut(&new_origin) {
            e.clones.iter_mut().filter(|c| **c == clone).for_each(|c| *c = parent.clone());
        }
        if let Some(e) = parent_origin.as_deref().and_then(|o| self.get_mut(o)) {
            e.clones.iter_mut().filter(|c| **c == parent).for_each(|c| *c = clone.to_string());
        }
    }

    /// What `zfs destroy name` does; returns the removed entry's origin.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        let i = self.entries.iter().position(|e| e.name == name)?;
        let origin = self.entries.remove(i).origin;
        if let Some(e) = origin.as_deref().and_then(|o| self.get_mut(o)) {
            e.clones.retain(|c| c != name);
        }
        origin
    }
}

/// `image edit` (no working copy yet): a snapshot of the version, and a writable clone of it
/// as `<ds>/edit`. A leftover snapshot of that name without clones is used again.
pub fn plan_edit(ds: &str, from: Version, next: Version, model: &Model) -> Vec<Argv> {
    let snap = format!("{ds}/{from}@{EDIT_SNAPSHOT}{next}");
    let mut plan = Vec::new();
    if model.get(&snap).is_none() {
        plan.push(Argv::of(&["zfs", "snapshot", &snap]));
    }
    plan.push(Argv::of(&["zfs", "clone", "-o", "readonly=off", &snap, &format!("{ds}/edit")]));
    plan
}

/// `image publish`: the clone made read-only, then renamed to the version (its mountpoint,
/// inherited, follows: `<store>/<next>`).
pub fn plan_publish(ds: &str, next: Version) -> Vec<Argv> {
    let edit = format!("{ds}/edit");
    vec![Argv::of(&["zfs", "set", "readonly=on", &edit]), Argv::of(&["zfs", "rename", &edit, &format!("{ds}/{next}")])]
}

/// `image import`, before the copy: a new dataset under a name that is not a version.
pub fn plan_import_create(ds: &str, tmp: &str) -> Vec<Argv> {
    vec![Argv::of(&["zfs", "create", "-o", "readonly=off", &format!("{ds}/{tmp}")])]
}

/// `image import`, after the copy: read-only, then renamed to the version.
pub fn plan_import_finish(ds: &str, tmp: &str, n: Version) -> Vec<Argv> {
    let t = format!("{ds}/{tmp}");
    vec![Argv::of(&["zfs", "set", "readonly=on", &t]), Argv::of(&["zfs", "rename", &t, &format!("{ds}/{n}")])]
}

/// Removing the dataset `fs` (a version, or the working copy) and nothing else. A snapshot of
/// it that other datasets were cloned from would keep it: the clone of the newest such
/// snapshot is promoted first, which moves those snapshots to it (never `destroy -R`, which
/// would take the newer versions along). Then its own remaining snapshots go, then it, then
/// the `edit-` snapshot it was cloned from once nothing else depends on that. `model` is
/// changed as the commands would change the pool, so the next plan starts from there.
pub fn plan_destroy(fs: &str, model: &mut Model) -> Result<Vec<Argv>, ZfsError> {
    if model.get(fs).is_none() {
        return Err(ZfsError::NoDataset { dataset: fs.to_string() });
    }
    let mut plan = Vec::new();
    let newest_cloned = model.snapshots_of(fs).iter().rev().find(|s| !s.clones.is_empty()).map(|s| s.clones[0].clone());
    if let Some(clone) = newest_cloned {
        plan.push(Argv::of(&["zfs", "promote", &clone]));
        model.promote(&clone);
    }
    let own: Vec<String> = model.snapshots_of(fs).iter().map(|e| e.name.clone()).collect();
    for s in own {
        plan.push(Argv::of(&["zfs", "destroy", &s]));
        model.remove(&s);
    }
    plan.push(Argv::of(&["zfs", "destroy", fs]));
    if let Some(origin) = model.remove(fs) {
        let unused = model.get(&origin).is_some_and(|e| e.clones.is_empty());
        if unused && snapshot_name(&origin).starts_with(EDIT_SNAPSHOT) {
            plan.push(Argv::of(&["zfs", "destroy", &origin]));
            model.remove(&origin);
        }
    }
    Ok(plan)
}

/// Runs one command line; its standard output on success, its first error line otherwise.
pub fn run(argv: &Argv) -> Result<String, ZfsError> {
    command::run_checked(&argv.0[0], &argv.0[1..]).map_err(|e| match e {
        CommandError::Spawn { argv, source } => ZfsError::Spawn { argv, source },
        CommandError::Failed { argv, status, stderr } => ZfsError::Failed { argv, status, stderr },
    })
}

/// Checks that `dataset` is mounted on `dir` (a filesystem of its own there), before data is
/// copied into `dir`: otherwise the copy would land in the parent dataset.
pub fn check_mounted(dataset: &str, dir: &Path) -> Result<(), ZfsError> {
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &Path| std::fs::metadata(p).ok().map(|m| m.dev());
    let (here, above) = (dev(dir), dev(dir.parent().unwrap_or(Path::new("/"))));
    if here.is_none() || here == above {
        return Err(ZfsError::NotMounted { dataset: dataset.to_string(), dir: dir.to_path_buf() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(plan: &[Argv]) -> Vec<String> {
        plan.iter().map(Argv::to_string).collect()
    }

    /// A linear history: 1 imported; 2 edited from 1, 3 from 2; an edit from 3 under way.
    const LIST: &str = "\
tank/images\t-\t-\t1700000000
tank/images/1\t-\t-\t1700000001
tank/images/1@edit-2\t-\ttank/images/2\t1700000002
tank/images/2\ttank/images/1@edit-2\t-\t1700000003
tank/images/2@edit-3\t-\ttank/images/3\t1700000004
tank/images/3\ttank/images/2@edit-3\t-\t1700000005
tank/images/3@edit-4\t-\ttank/images/edit\t1700000006
tank/images/edit\ttank/images/3@edit-4\t-\t1700000007
";

    #[test]
    fn parses_zfs_list() {
        let m = Model::parse(LIST).unwrap();
        assert_eq!(m.entries.len(), 8);
        assert_eq!(m.get("tank/images/2").unwrap().origin.as_deref(), Some("tank/images/1@edit-2"));
        assert_eq!(m.get("tank/images/1@edit-2").unwrap().clones, ["tank/images/2"]);
        assert_eq!(m.get("tank/images/1").unwrap().creation, Some(1_700_000_001));
        assert!(Model::parse("a\tb\n").is_err());
        assert_eq!(
            list_argv("tank/images").to_string(),
            "zfs list -H -p -o name,origin,clones,creation -t filesystem,snapshot -s createtxg -r tank/images"
        );
    }

    #[test]
    fn edit_publish_and_import_plans() {
        let m = Model::parse(LIST).unwrap();
        assert_eq!(
            lines(&plan_edit("tank/images", Version(3), Version(4), &Model::default())),
            ["zfs snapshot tank/images/3@edit-4", "zfs clone -o readonly=off tank/images/3@edit-4 tank/images/edit"]
        );
        // The snapshot is there already (an earlier edit, discarded): only the clone.
        assert_eq!(lines(&plan_edit("tank/images", Version(3), Version(4), &m)).len(), 1);
        assert_eq!(
            lines(&plan_publish("tank/images", Version(4))),
            ["zfs set readonly=on tank/images/edit", "zfs rename tank/images/edit tank/images/4"]
        );
        assert_eq!(
            lines(&plan_import_create("tank/images", "import-5")),
            ["zfs create -o readonly=off tank/images/import-5"]
        );
        assert_eq!(
            lines(&plan_import_finish("tank/images", "import-5", Version(5))),
            ["zfs set readonly=on tank/images/import-5", "zfs rename tank/images/import-5 tank/images/5"]
        );
    }

    #[test]
    fn destroying_old_versions_promotes_the_newer_ones() {
        let mut m = Model::parse(LIST).unwrap();
        let p1 = plan_destroy("tank/images/1", &mut m).unwrap();
        assert_eq!(
            lines(&p1),
            ["zfs promote tank/images/2", "zfs destroy tank/images/1", "zfs destroy tank/images/2@edit-2"]
        );
        // 2 stands alone now; removing it promotes 3 the same way.
        assert_eq!(m.get("tank/images/2").unwrap().origin, None);
        let p2 = plan_destroy("tank/images/2", &mut m).unwrap();
        assert_eq!(
            lines(&p2),
            ["zfs promote tank/images/3", "zfs destroy tank/images/2", "zfs destroy tank/images/3@edit-3"]
        );
        assert_eq!(m.get("tank/images/3").unwrap().origin, None);
        assert_eq!(m.get("tank/images/3@edit-4").unwrap().clones, ["tank/images/edit"]);
        // Never a recursive destroy.
        assert!(p1.iter().chain(&p2).all(|a| !a.0.iter().any(|w| w == "-r" || w == "-R")));
        // The working copy: destroyed, then the snapshot it came from.
        let discard = plan_destroy("tank/images/edit", &mut m).unwrap();
        assert_eq!(lines(&discard), ["zfs destroy tank/images/edit", "zfs destroy tank/images/3@edit-4"]);
        assert!(matches!(plan_destroy("tank/images/9", &mut m), Err(ZfsError::NoDataset { .. })));
    }

    #[test]
    fn a_version_cloned_twice_keeps_the_older_clone_working() {
        // 2 was the default twice: 3 and 5 were both made from it; 4 from 3; then a user
        // snapshot on 2 without clones.
        let list = "\
p/i/2\t-\t-\t1
p/i/2@edit-3\t-\tp/i/3\t2
p/i/3\tp/i/2@edit-3\t-\t3
p/i/3@edit-4\t-\tp/i/4\t4
p/i/4\tp/i/3@edit-4\t-\t5
p/i/2@edit-5\t-\tp/i/5\t6
p/i/5\tp/i/2@edit-5\t-\t7
p/i/2@mine\t-\t-\t8
";
        let mut m = Model::parse(list).unwrap();
        let p = plan_destroy("p/i/2", &mut m).unwrap();
        assert_eq!(
            lines(&p),
            ["zfs promote p/i/5", "zfs destroy p/i/2@mine", "zfs destroy p/i/2", "zfs destroy p/i/5@edit-5"]
        );
        // 3 now hangs off 5's copy of the older snapshot, which stays.
        assert_eq!(m.get("p/i/3").unwrap().origin.as_deref(), Some("p/i/5@edit-3"));
        assert_eq!(m.get("p/i/5@edit-3").unwrap().clones, ["p/i/3"]);
        assert_eq!(m.get("p/i/5").unwrap().origin, None);
        // Then 3: promote 4, and 3's origin snapshot on 5 is free to go.
        let p = plan_destroy("p/i/3", &mut m).unwrap();
        assert_eq!(lines(&p), ["zfs promote p/i/4", "zfs destroy p/i/3", "zfs destroy p/i/4@edit-4"]);
        assert_eq!(m.get("p/i/4").unwrap().origin.as_deref(), Some("p/i/5@edit-3"));
    }
}
