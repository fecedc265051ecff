//! A ZFS store's versions over NFS: each version is a dataset, a filesystem of its own, which
//! the store's export does not reach (it has no `crossmnt`, see `render/exports.rs`). So each
//! gets an export line of its own, in a file of the running master's `/etc/exports.d` that
//! `exportfs -ra` reads after `/etc/exports`. `crctl image export` writes it (at boot, and
//! whenever asked); import, publish and gc on a ZFS store write it again after they run.

use std::fmt::Write as _;
use std::path::PathBuf;

use super::command::{self, CommandError};
use super::mounts::{self, Mount};
use super::store::Version;

/// Where the lines go: not a node file, since the versions change between syncs.
pub const FILE: &str = "/etc/exports.d/clusterroot-images.exports";
/// The version exports' options: as the store's own, without its fsid (nfsd takes a ZFS
/// dataset's from statfs, one per dataset, the same after a reboot).
const OPTIONS: &str = "ro,no_root_squash,no_subtree_check";

#[derive(Debug, thiserror::Error)]
pub enum ExportsError {
    #[error("version {version} of the image store ({dataset}) is mounted on {at}, not on {dir}, so nfsd cannot export it there: bind it (mount --bind {at} {dir}), then crctl image export")]
    Elsewhere { version: Version, dataset: String, at: PathBuf, dir: PathBuf },
    #[error("version {version} of the image store ({dataset}) is not mounted on {dir}: zfs mount {dataset}, then crctl image export")]
    NotMounted { version: Version, dataset: String, dir: PathBuf },
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path} failed: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error(
        "running {cmd} -ra failed: {source}; install nfs-utils (Debian: nfs-kernel-server), then crctl image export"
    )]
    Spawn { cmd: String, source: std::io::Error },
    #[error("{cmd} -ra failed ({status}): {stderr}; {file} holds the version lines")]
    Failed { cmd: String, status: String, stderr: String, file: PathBuf },
}

/// One store's exports: where it is here, what backs it, and how clients name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The file written ([`FILE`] on a master).
    pub file: PathBuf,
    /// The command that loads it, run with `-ra`.
    pub exportfs: PathBuf,
    /// Read when the lines are made: the versions' mounts.
    pub mountinfo: PathBuf,
    /// The store on this machine (`--root` + the inventory's `images`).
    pub dir: PathBuf,
    /// The store's dataset; `None`: a directory store, whose versions its export reaches.
    pub dataset: Option<String>,
    /// The store as clients mount it: the inventory's `images`, below nfsd's rootdir.
    pub nfs_path: String,
    /// Who may mount: the inventory's network.
    pub network: String,
}

/// The file's text and its number of export lines, from the store's versions and what is
/// mounted where. A version dataset mounted only somewhere else (the master's own version,
/// which the agent mounted as its lower) or nowhere is an error that names the fix. No I/O.
pub fn render(t: &Target, versions: &[Version], mounts: &[Mount]) -> Result<(String, usize), ExportsError> {
    let mut text = String::from(
        "# Written by crctl image (export; import, publish and gc on a ZFS store): the image store's\n\
         # versions that are filesystems of their own, which the store's export in /etc/exports does\n\
         # not reach. Not a node file: crctl image export writes it again at each boot.\n",
    );
    let Some(ds) = &t.dataset else {
        text.push_str("# A directory store: its versions are in the store's own export; nothing to add.\n");
        return Ok((text, 0));
    };
    let mut n = 0;
    for v in versions {
        let dataset = format!("{ds}/{v}");
        let dir = t.dir.join(v.to_string());
        if mounts::at(mounts, &dir).is_none_or(|m| m.source != dataset) {
            return Err(match mounts.iter().find(|m| m.source == dataset && m.fstype == "zfs") {
                Some(m) => ExportsError::Elsewhere { version: *v, dataset, at: m.point.clone(), dir },
                None => ExportsError::NotMounted { version: *v, dataset, dir },
            });
        }
        let _ = writeln!(text, "{}/{v}  {}({OPTIONS})", t.nfs_path.trim_end_matches('/'), t.network);
        n += 1;
    }
    Ok((text, n))
}

/// Writes the file when it differs, then runs `exportfs -ra` (always: after a reboot nfsd has
/// none of it yet). Returns the line that says what was done.
pub fn apply(t: &Target, versions: &[Version]) -> Result<String, ExportsError> {
    let info = std::fs::read_to_string(&t.mountinfo)
        .map_err(|source| ExportsError::Read { path: t.mountinfo.clone(), source })?;
    let (text, n) = render(t, versions, &mounts::parse(&info))?;
    let change = match std::fs::read_to_string(&t.file) {
        Ok(old) if old == text => "unchanged",
        Ok(_) => "changed",
        Err(_) => "new",
    };
    if change != "unchanged" {
        crate::files::replace(&t.file, text.as_bytes(), 0o644)
            .map_err(|source| ExportsError::Write { path: t.file.clone(), source })?;
    }
    load(t)?;
    Ok(format!(
        "exports: {} {change} ({n} version {}); {} -ra",
        t.file.display(),
        if n == 1 { "dataset" } else { "datasets" },
        t.exportfs.display()
    ))
}

/// `exportfs -ra`: nfsd serves what the export files say now.
fn load(t: &Target) -> Result<(), ExportsError> {
    let cmd = t.exportfs.display().to_string();
    command::run_checked(&t.exportfs, &["-ra"]).map_err(|e| match e {
        CommandError::Spawn { source, .. } => ExportsError::Spawn { cmd, source },
        CommandError::Failed { status, stderr, .. } => {
            ExportsError::Failed { cmd, status, stderr, file: t.file.clone() }
        }
    })?;
    Ok(())
}

/// The plan's line for this step (`--dry-run`).
pub fn describe(t: &Target) -> String {
    format!("exports {}: a line per version dataset, then {} -ra", t.file.display(), t.exportfs.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(dataset: Option<&str>) -> Target {
        Target {
            file: "/x/clusterroot-images.exports".into(),
            exportfs: "exportfs".into(),
            mountinfo: "/x/mountinfo".into(),
            dir: "/run/rootfs/lower/srv/nfs/images".into(),
            dataset: dataset.map(str::to_string),
            nfs_path: "/srv/nfs/images".into(),
            network: "172.23.199.0/24".into(),
        }
    }

    const INFO: &str = "\
22 1 0:21 / /run/rootfs/lower ro - zfs tank/images/2 ro
40 22 0:45 / /run/rootfs/lower/srv/nfs/images rw - zfs tank/images rw
41 40 0:46 / /run/rootfs/lower/srv/nfs/images/1 ro - zfs tank/images/1 ro
42 40 0:47 / /run/rootfs/lower/srv/nfs/images/3 ro - zfs tank/images/3 ro
";

    #[test]
    fn a_line_per_version_dataset_mounted_in_the_store() {
        let m = mounts::parse(&format!(
            "{INFO}43 40 0:21 / /run/rootfs/lower/srv/nfs/images/2 ro - zfs tank/images/2 ro\n"
        ));
        let (text, n) = render(&target(Some("tank/images")), &[Version(1), Version(2), Version(3)], &m).unwrap();
        assert_eq!(n, 3);
        let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            ["1", "2", "3"]
                .map(|v| format!("/srv/nfs/images/{v}  172.23.199.0/24(ro,no_root_squash,no_subtree_check)"))
        );
    }

    #[test]
    fn the_masters_own_version_mounted_elsewhere_names_the_bind() {
        let e = render(&target(Some("tank/images")), &[Version(1), Version(2)], &mounts::parse(INFO)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "version 2 of the image store (tank/images/2) is mounted on /run/rootfs/lower, not on \
             /run/rootfs/lower/srv/nfs/images/2, so nfsd cannot export it there: bind it (mount --bind \
             /run/rootfs/lower /run/rootfs/lower/srv/nfs/images/2), then crctl image export"
        );
        let e = render(&target(Some("tank/images")), &[Version(4)], &mounts::parse(INFO)).unwrap_err();
        assert!(e.to_string().starts_with("version 4 of the image store (tank/images/4) is not mounted"), "{e}");
    }

    #[test]
    fn a_directory_store_needs_no_line() {
        let (text, n) = render(&target(None), &[Version(1)], &[]).unwrap();
        assert_eq!(n, 0);
        assert!(text.lines().all(|l| l.starts_with('#')), "{text}");
    }

    #[test]
    fn apply_writes_once_and_always_loads() {
        let dir = std::env::temp_dir().join(format!("crctl-exports-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let calls = dir.join("calls");
        let fake = dir.join("exportfs");
        // A recording stand-in for exportfs (test double): the real one is run in QEMU.
        std::fs::write(&fake, format!("#!/bin/sh\necho \"$*\" >>{}\n", calls.display())).unwrap();
        std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(dir.join("mountinfo"), INFO).unwrap();
        let t = Target {
            file: dir.join("exports.d/clusterroot-images.exports"),
            exportfs: fake.clone(),
            mountinfo: dir.join("mountinfo"),
            ..target(Some("tank/images"))
        };
        let first = apply(&t, &[Version(1), Version(3)]).unwrap();
        assert!(first.contains(" new (2 version datasets); "), "{first}");
        assert!(apply(&t, &[Version(1), Version(3)]).unwrap().contains(" unchanged (2 version datasets)"));
        assert!(apply(&t, &[Version(3)]).unwrap().contains(" changed (1 version dataset)"));
        assert_eq!(std::fs::read_to_string(&calls).unwrap(), "-ra\n-ra\n-ra\n");
        std::fs::write(&fake, "#!/bin/sh\necho 'exportfs: bad line' >&2\nexit 1\n").unwrap();
        let e = apply(&t, &[Version(3)]).unwrap_err().to_string();
        assert!(e.contains("-ra failed (exit status: 1): exportfs: bad line;"), "{e}");
        let e = apply(&Target { exportfs: dir.join("nope"), ..t }, &[]).unwrap_err().to_string();
        assert!(e.contains("install nfs-utils"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
