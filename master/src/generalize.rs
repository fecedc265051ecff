//! `crctl generalize`: makes the master's installed system the cluster's shared image. The
//! files that are the master's alone move (never copy: a copy left in the image is readable
//! by every node) into the master's node files, its services' enable links with them, and the
//! image gets the clients' fstab and network interfaces.
//! Planned first, with no writes, so `--dry-run` prints exactly what a run does.

use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::inventory::Inventory;
use crate::services;

/// The master's own files, relative to `/etc`. The seed's list (`fstab`, `zfs/zpool.cache`),
/// then ours: its identity (`hostname`, `machine-id`, ZFS's `hostid`), what only the NFS and
/// DHCP server needs (`exports`, `dnsmasq.conf`), and ifupdown's `network/interfaces` (the
/// master's NICs; clients would bring them up too).
pub const MASTER_FILES: [&str; 8] =
    ["fstab", "zfs/zpool.cache", "hostid", "hostname", "machine-id", "exports", "dnsmasq.conf", "network/interfaces"];
/// Entries of directories of `/etc` that are all the master's, as `dir/prefix*suffix`: every
/// ssh host key, NetworkManager's saved connections (which may hold Wi-Fi and VPN secrets),
/// what ifupdown's `interfaces` sources, and systemd-networkd's links and devices.
pub const MASTER_GLOBS: [&str; 5] = [
    "ssh/ssh_host_*",
    "NetworkManager/system-connections/*",
    "network/interfaces.d/*",
    "systemd/network/*.network",
    "systemd/network/*.netdev",
];
/// Where systemd's enable links are, below `/etc`: `<unit>.wants/` and `<unit>.requires/`
/// directories, and alias links beside them.
pub const SYSTEMD_UNITS: &str = "systemd/system";
/// Where runit's enabled services are, below `/etc` (Void's `/var/service` leads here).
pub const RUNIT_DEFAULT: &str = "runit/runsvdir/default";
/// The runit service directory of a system whose `/var/service` is a directory of its own.
pub const VAR_SERVICE: &str = "var/service";
/// The mode of the master's node directory: its secrets are root's alone.
pub const NODE_DIR_MODE: u32 = 0o700;
/// The mode of the node-files directory above it: root may list it, others only pass through.
pub const NODEFILES_MODE: u32 = 0o711;

#[derive(Debug, thiserror::Error)]
pub enum GeneralizeError {
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the master's node files already hold {to}, which differs from {from}; compare them, keep one, and run generalize again")]
    Conflict { from: PathBuf, to: PathBuf },
    #[error("{path} is a {kind}, not a file or symlink; move it by hand")]
    NotAFile { path: PathBuf, kind: &'static str },
    #[error("{path} is not a directory; move it away and run generalize again")]
    NotADir { path: PathBuf },
    #[error("making {path} a directory of mode {mode:04o} failed: {source}")]
    Dir { path: PathBuf, mode: u32, source: std::io::Error },
    #[error("moving {from} to {to} failed: {source}")]
    Move { from: PathBuf, to: PathBuf, source: std::io::Error },
    #[error("writing the clients' {path} failed: {source}")]
    Clients { path: PathBuf, source: std::io::Error },
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Make `path` a directory of mode `mode` (created when missing).
    Dir { path: PathBuf, mode: u32, why: &'static str },
    /// Copy `from` (file or symlink, with mode and owner) to `to`, then delete `from`.
    Move { from: PathBuf, to: PathBuf },
    /// `from` is already in the node files as it is: only delete it from the image.
    Drop { from: PathBuf, to: PathBuf },
    /// Write the clients' version of a file over the image's.
    Clients { path: PathBuf, text: String, what: &'static str },
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Dir { path, mode, why } => write!(f, "mode    {} {mode:04o} ({why})", path.display()),
            Step::Move { from, to } => write!(f, "move    {} -> {}", from.display(), to.display()),
            Step::Drop { from, to } => write!(f, "delete  {} (already in {})", from.display(), to.display()),
            Step::Clients { path, what, .. } => write!(f, "write   {} ({what})", path.display()),
        }
    }
}

/// The clients' fstab: a tmpfs `/tmp` and `/home` over NFSv4 from the master.
pub fn clients_fstab(inv: &Inventory) -> String {
    let mut out = crate::render::stamp("#");
    out.push_str("# The clients' /etc/fstab (the shared image's); the master's own is in its node files.\n");
    out.push_str("tmpfs  /tmp  tmpfs  defaults,nosuid,nodev  0 0\n");
    out.push_str(&format!("{}:{}  /home  nfs4  rw,hard,retrans=10  0 0\n", inv.master_address(), inv.settings.home));
    out
}

/// The clients' `network/interfaces` (ifupdown): the loopback alone. A client's boot NIC is
/// set up by the agent in the initramfs and handed over as it is.
pub fn clients_interfaces() -> String {
    let mut out = crate::render::stamp("#");
    out.push_str(
        "# The clients' /etc/network/interfaces (the shared image's): the loopback only. Each client's\n\
         # boot NIC is set up in the initramfs and kept as it is; the master's own file is in its\n\
         # node files.\n",
    );
    out.push_str("auto lo\niface lo inet loopback\n");
    out
}

/// `dir/prefix*suffix` split into its three parts.
fn split_glob(glob: &str) -> (&str, &str, &str) {
    let (dir, name) = glob.rsplit_once('/').unwrap_or(("", glob));
    let (prefix, suffix) = name.split_once('*').unwrap_or((name, ""));
    (dir, prefix, suffix)
}

/// The names in `dir`, sorted; none when it is missing or not a directory.
fn names(dir: &Path) -> Result<Vec<String>, GeneralizeError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(Vec::new())
        }
        Err(source) => return Err(GeneralizeError::Read { path: dir.to_path_buf(), source }),
    };
    let mut out: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    out.sort();
    Ok(out)
}

/// Whether `path` is a symlink.
fn is_link(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The master-only services' enable links in the image, as (path in the image, path below the
/// node directory): systemd's `*.wants/UNIT` and `*.requires/UNIT`, and alias links `UNIT`
/// (not a mask, a link to /dev/null, which keeps clients from starting it all the same);
/// runit's `runsvdir/default/SV`, and `/var/service/SV` where that is a directory of its own.
fn enable_links(root: &Path) -> Result<Vec<(PathBuf, PathBuf)>, GeneralizeError> {
    let etc = root.join("etc");
    let units: Vec<&str> = services::master_only_units().collect();
    let mut out = Vec::new();
    let systemd = etc.join(SYSTEMD_UNITS);
    for name in names(&systemd)? {
        let path = systemd.join(&name);
        if (name.ends_with(".wants") || name.ends_with(".requires")) && !is_link(&path) {
            for unit in names(&path)? {
                if units.contains(&unit.as_str()) {
                    out.push((path.join(&unit), Path::new(SYSTEMD_UNITS).join(&name).join(&unit)));
                }
            }
        } else if units.contains(&name.as_str())
            && is_link(&path)
            && std::fs::read_link(&path).is_ok_and(|t| t != Path::new("/dev/null"))
        {
            out.push((path, Path::new(SYSTEMD_UNITS).join(&name)));
        }
    }
    let runit: Vec<&str> = services::master_only_runit().collect();
    let var_service = root.join(VAR_SERVICE);
    let var_service_is_dir = std::fs::symlink_metadata(&var_service).is_ok_and(|m| m.is_dir());
    for (dir, real) in [(etc.join(RUNIT_DEFAULT), true), (var_service, var_service_is_dir)] {
        if !real {
            continue; // a symlink to runit's default (or /run/runit): the links are found there
        }
        for sv in names(&dir)? {
            if runit.contains(&sv.as_str()) {
                out.push((dir.join(&sv), Path::new(RUNIT_DEFAULT).join(&sv)));
            }
        }
    }
    Ok(out)
}

/// A directory step for `path` when it is missing or has another mode.
fn dir_step(path: PathBuf, mode: u32, why: &'static str) -> Result<Option<Step>, GeneralizeError> {
    match std::fs::metadata(&path) {
        Ok(m) if !m.is_dir() => Err(GeneralizeError::NotADir { path }),
        Ok(m) if m.mode() & 0o7777 == mode => Ok(None),
        Ok(_) => Ok(Some(Step::Dir { path, mode, why })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(Step::Dir { path, mode, why })),
        Err(source) => Err(GeneralizeError::Read { path, source }),
    }
}

/// The plan for the image at `root` (its `/etc` is `root/etc`) and the master's node files.
/// The mount check of the node files is the caller's (it is skipped with `--into-image`).
pub fn plan(inv: &Inventory, root: &Path) -> Result<Vec<Step>, GeneralizeError> {
    let etc = root.join("etc");
    let nodefiles = crate::place::under(root, &inv.settings.nodefiles);
    let node_dir = nodefiles.join(inv.master().mac.to_string());
    let mut steps = Vec::new();

    // The node directories first, so that nothing lands in a directory others can read.
    steps.extend(dir_step(nodefiles, NODEFILES_MODE, "the node files: root lists them, others only pass")?);
    steps.extend(dir_step(node_dir.clone(), NODE_DIR_MODE, "the master's node files: root's alone")?);

    // The files with a clients' version: once the image holds that, it is generalized.
    let clients: [(&str, String, &'static str); 2] = [
        ("fstab", clients_fstab(inv), "the clients' fstab: /tmp, /home from the master"),
        ("network/interfaces", clients_interfaces(), "the clients' interfaces: the loopback only"),
    ];
    let is_clients = |rel: &Path| {
        clients.iter().any(|(r, text, _)| {
            Path::new(r) == rel && std::fs::read_to_string(etc.join(r)).ok().as_deref() == Some(text.as_str())
        })
    };

    // Every file of the master's, by name and by pattern, then the enable links (`true`).
    let mut moves: Vec<(PathBuf, PathBuf, bool)> = Vec::new();
    for rel in MASTER_FILES.iter().map(PathBuf::from) {
        if !is_clients(&rel) {
            moves.push((etc.join(&rel), rel, false));
        }
    }
    for glob in MASTER_GLOBS {
        let (dir, prefix, suffix) = split_glob(glob);
        for name in names(&etc.join(dir))? {
            if name.starts_with(prefix) && name.ends_with(suffix) && name.len() >= prefix.len() + suffix.len() {
                let rel = Path::new(dir).join(&name);
                moves.push((etc.join(&rel), rel, false));
            }
        }
    }
    moves.extend(enable_links(root)?.into_iter().map(|(from, rel)| (from, rel, true)));

    // Each checked: a file or symlink; moved, or only deleted when the node files hold it as
    // it is. An enable link the node files hold already (sync writes them) is the same
    // service enabled, whichever unit path it names.
    for (from, rel, enable_link) in moves {
        let to = node_dir.join(&rel);
        let Ok(meta) = std::fs::symlink_metadata(&from) else { continue };
        if !(meta.is_file() || meta.file_type().is_symlink()) {
            let kind = if meta.is_dir() { "directory" } else { "special file" };
            return Err(GeneralizeError::NotAFile { path: from, kind });
        }
        match std::fs::symlink_metadata(&to) {
            Ok(there) => {
                let same = (enable_link && there.file_type().is_symlink())
                    || crate::files::same(&from, &to)
                        .map_err(|source| GeneralizeError::Read { path: to.clone(), source })?;
                if !same {
                    return Err(GeneralizeError::Conflict { from, to });
                }
                steps.push(Step::Drop { from, to });
            }
            Err(_) => steps.push(Step::Move { from, to }),
        }
    }

    // The clients' versions: fstab always, interfaces where the image has ifupdown's.
    for (rel, text, what) in &clients {
        let path = etc.join(rel);
        let had = std::fs::symlink_metadata(&path).is_ok();
        if !is_clients(Path::new(rel)) && (*rel == "fstab" || had) {
            steps.push(Step::Clients { path, text: text.clone(), what });
        }
    }
    Ok(steps)
}

/// Copies `from` to `to` with its mode and owner, synced, then deletes `from`.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let meta = std::fs::symlink_metadata(from)?;
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(from)?, to)?;
        std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()))?;
    } else {
        let data = std::fs::read(from)?;
        crate::files::replace(to, &data, meta.mode() & 0o7777)?;
        std::os::unix::fs::chown(to, Some(meta.uid()), Some(meta.gid()))?;
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    }
    std::fs::remove_file(from)
}

/// Makes `path` a directory of `mode`: created (its parents as usual) when missing, then the
/// mode set (the umask does not apply to chmod).
fn make_dir(path: &Path, mode: u32) -> std::io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).mode(mode).create(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Runs the plan's steps in order; stops at the first failure, naming it.
pub fn execute(steps: &[Step]) -> Result<(), GeneralizeError> {
    for step in steps {
        match step {
            Step::Dir { path, mode, .. } => make_dir(path, *mode).map_err(|source| GeneralizeError::Dir {
                path: path.clone(),
                mode: *mode,
                source,
            })?,
            Step::Move { from, to } => move_file(from, to).map_err(|source| GeneralizeError::Move {
                from: from.clone(),
                to: to.clone(),
                source,
            })?,
            Step::Drop { from, to } => std::fs::remove_file(from).map_err(|source| GeneralizeError::Move {
                from: from.clone(),
                to: to.clone(),
                source,
            })?,
            Step::Clients { path, text, .. } => crate::files::replace(path, text.as_bytes(), 0o644)
                .map_err(|source| GeneralizeError::Clients { path: path.clone(), source })?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    #[test]
    fn moves_the_masters_files_and_gives_clients_an_fstab() {
        let root = std::env::temp_dir().join(format!("crctl-generalize-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let write = |p: &str, s: &str, mode: u32| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, s).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("etc/fstab", "LABEL=root / ext4 rw 0 1\n", 0o644);
        write("etc/hostname", "master\n", 0o644);
        write("etc/ssh/ssh_host_ed25519_key", "secret\n", 0o600);
        write("etc/ssh/sshd_config", "shared\n", 0o644);
        write("etc/passwd", "shared\n", 0o644);
        let master = "srv/nfs/nodes/52:54:00:77:00:e1";
        write(&format!("{master}/hostname"), "master\n", 0o644);
        let inv = example::inventory();

        let steps = plan(&inv, &root).unwrap();
        let shown: Vec<String> = steps.iter().map(|s| s.to_string().replace(&root.display().to_string(), "")).collect();
        assert_eq!(
            shown,
            [
                "mode    /srv/nfs/nodes 0711 (the node files: root lists them, others only pass)".to_string(),
                format!("mode    /{master} 0700 (the master's node files: root's alone)"),
                format!("move    /etc/fstab -> /{master}/fstab"),
                format!("delete  /etc/hostname (already in /{master}/hostname)"),
                format!("move    /etc/ssh/ssh_host_ed25519_key -> /{master}/ssh/ssh_host_ed25519_key"),
                "write   /etc/fstab (the clients' fstab: /tmp, /home from the master)".to_string(),
            ]
        );
        // A dry run is the plan alone: nothing moved yet.
        assert!(root.join("etc/hostname").exists());
        execute(&steps).unwrap();
        let key = root.join(master).join("ssh/ssh_host_ed25519_key");
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "secret\n");
        assert_eq!(std::fs::metadata(&key).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(root.join(master)).unwrap().mode() & 0o7777, 0o700);
        assert_eq!(std::fs::metadata(root.join("srv/nfs/nodes")).unwrap().mode() & 0o7777, 0o711);
        assert!(!root.join("etc/ssh/ssh_host_ed25519_key").exists(), "moved, not copied");
        assert!(root.join("etc/ssh/sshd_config").exists());
        assert_eq!(std::fs::read_to_string(root.join(master).join("fstab")).unwrap(), "LABEL=root / ext4 rw 0 1\n");
        let fstab = std::fs::read_to_string(root.join("etc/fstab")).unwrap();
        assert!(fstab.ends_with("172.23.199.225:/home  /home  nfs4  rw,hard,retrans=10  0 0\n"), "{fstab}");
        // Once done, nothing is left to do.
        assert_eq!(plan(&inv, &root).unwrap(), []);
        // A differing copy already in the node files is a conflict, and nothing moves.
        write("etc/hostname", "other\n", 0o644);
        let e = plan(&inv, &root).unwrap_err().to_string();
        assert!(e.contains("which differs from"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// `crctl help` names every master-only service whose links generalize moves.
    #[test]
    fn help_names_the_services_it_moves() {
        let cmd = crate::cli::command();
        let about = cmd.find_subcommand("generalize").and_then(|c| c.get_long_about()).unwrap().to_string();
        for s in services::SERVICES.iter().filter(|s| s.master_only) {
            assert!(about.contains(s.name), "crctl help's generalize lacks {}", s.name);
        }
    }

    #[test]
    fn globs_split_into_dir_prefix_and_suffix() {
        assert_eq!(split_glob("ssh/ssh_host_*"), ("ssh", "ssh_host_", ""));
        assert_eq!(split_glob("systemd/network/*.netdev"), ("systemd/network", "", ".netdev"));
        for glob in MASTER_GLOBS {
            assert_eq!(glob.matches('*').count(), 1, "{glob}");
        }
    }

    /// The master's services leave the image with their enable links (systemd's wants,
    /// requires and aliases, runit's default and a /var/service of its own), and its network
    /// setup with them; the image keeps a loopback-only interfaces file.
    #[test]
    fn moves_the_masters_services_and_network() {
        let root = std::env::temp_dir().join(format!("crctl-generalize-svc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let write = |p: &str, s: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(&p, s).unwrap();
        };
        let link = |p: &str, target: &str| {
            let p = root.join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
        };
        let wants = "etc/systemd/system/multi-user.target.wants";
        link(&format!("{wants}/dnsmasq.service"), "/lib/systemd/system/dnsmasq.service");
        link(&format!("{wants}/nfs-server.service"), "/lib/systemd/system/nfs-server.service");
        link(&format!("{wants}/ssh.service"), "/lib/systemd/system/ssh.service");
        link("etc/systemd/system/nfs-server.service.requires/nfsdcld.service", "/lib/systemd/system/nfsdcld.service");
        link("etc/systemd/system/nfs-kernel-server.service", "/lib/systemd/system/nfs-server.service");
        link("etc/systemd/system/lighttpd.service", "/dev/null");
        link("etc/runit/runsvdir/default/dnsmasq", "/etc/sv/dnsmasq");
        link("etc/runit/runsvdir/default/rpcbind", "/etc/sv/rpcbind");
        link("etc/runit/runsvdir/default/sshd", "/etc/sv/sshd");
        link("var/service/lighttpd", "/etc/sv/lighttpd");
        write("etc/network/interfaces", "auto ens4\niface ens4 inet dhcp\n");
        write("etc/network/interfaces.d/ens5", "auto ens5\n");
        write("etc/systemd/network/10-ens5.network", "[Match]\nName=ens5\n");
        write("etc/systemd/network/20-br0.netdev", "[NetDev]\nName=br0\n");
        write("etc/systemd/network/99-default.link", "[Link]\n");
        let master = "srv/nfs/nodes/52:54:00:77:00:e1";
        // sync enabled nfs-server already, naming the unit where another image keeps it.
        link(
            &format!("{master}/systemd/system/multi-user.target.wants/nfs-server.service"),
            "/usr/lib/systemd/system/nfs-server.service",
        );
        let inv = example::inventory();

        let steps = plan(&inv, &root).unwrap();
        let shown: Vec<String> = steps.iter().map(|s| s.to_string().replace(&root.display().to_string(), "")).collect();
        let m = format!("/{master}");
        let want = [
            "mode    /srv/nfs/nodes 0711 (the node files: root lists them, others only pass)".to_string(),
            format!("mode    {m} 0700 (the master's node files: root's alone)"),
            format!("move    /etc/fstab -> {m}/fstab"),
            format!("move    /etc/network/interfaces -> {m}/network/interfaces"),
            format!("move    /etc/network/interfaces.d/ens5 -> {m}/network/interfaces.d/ens5"),
            format!("move    /etc/systemd/network/10-ens5.network -> {m}/systemd/network/10-ens5.network"),
            format!("move    /etc/systemd/network/20-br0.netdev -> {m}/systemd/network/20-br0.netdev"),
            format!("move    /{wants}/dnsmasq.service -> {m}/systemd/system/multi-user.target.wants/dnsmasq.service"),
            format!("delete  /{wants}/nfs-server.service (already in {m}/systemd/system/multi-user.target.wants/nfs-server.service)"),
            format!("move    /etc/systemd/system/nfs-kernel-server.service -> {m}/systemd/system/nfs-kernel-server.service"),
            format!("move    /etc/systemd/system/nfs-server.service.requires/nfsdcld.service -> {m}/systemd/system/nfs-server.service.requires/nfsdcld.service"),
            format!("move    /etc/runit/runsvdir/default/dnsmasq -> {m}/runit/runsvdir/default/dnsmasq"),
            format!("move    /var/service/lighttpd -> {m}/runit/runsvdir/default/lighttpd"),
            "write   /etc/fstab (the clients' fstab: /tmp, /home from the master)".to_string(),
            "write   /etc/network/interfaces (the clients' interfaces: the loopback only)".to_string(),
        ];
        // fstab is missing here: nothing to move, the clients' is written all the same.
        let want: Vec<String> = want.into_iter().filter(|l| !l.starts_with("move    /etc/fstab")).collect();
        assert_eq!(shown, want);
        execute(&steps).unwrap();
        let node = root.join(master);
        assert_eq!(
            std::fs::read_link(node.join("systemd/system/multi-user.target.wants/dnsmasq.service")).unwrap(),
            Path::new("/lib/systemd/system/dnsmasq.service")
        );
        assert_eq!(
            std::fs::read_link(node.join("runit/runsvdir/default/lighttpd")).unwrap(),
            Path::new("/etc/sv/lighttpd")
        );
        for gone in [
            format!("{wants}/dnsmasq.service"),
            format!("{wants}/nfs-server.service"),
            "etc/systemd/system/nfs-kernel-server.service".into(),
            "etc/runit/runsvdir/default/dnsmasq".into(),
            "var/service/lighttpd".into(),
            "etc/systemd/network/10-ens5.network".into(),
        ] {
            assert!(std::fs::symlink_metadata(root.join(&gone)).is_err(), "{gone} left in the image");
        }
        for kept in [
            format!("{wants}/ssh.service"),
            "etc/systemd/system/lighttpd.service".into(),
            "etc/runit/runsvdir/default/rpcbind".into(),
            "etc/runit/runsvdir/default/sshd".into(),
            "etc/systemd/network/99-default.link".into(),
        ] {
            assert!(std::fs::symlink_metadata(root.join(&kept)).is_ok(), "{kept} moved");
        }
        let interfaces = std::fs::read_to_string(root.join("etc/network/interfaces")).unwrap();
        assert!(interfaces.ends_with("\nauto lo\niface lo inet loopback\n"), "{interfaces}");
        assert_eq!(
            std::fs::read_to_string(node.join("network/interfaces")).unwrap(),
            "auto ens4\niface ens4 inet dhcp\n"
        );
        assert_eq!(plan(&inv, &root).unwrap(), []);

        // A network file that differs from the node files' stops it, and so does an enable
        // link where the node files hold something that is not a link.
        write("etc/systemd/network/10-ens5.network", "[Match]\nName=ens6\n");
        let e = plan(&inv, &root).unwrap_err().to_string();
        assert!(e.contains("10-ens5.network, which differs from"), "{e}");
        std::fs::remove_file(root.join("etc/systemd/network/10-ens5.network")).unwrap();
        link(&format!("{wants}/dnsmasq.service"), "/lib/systemd/system/dnsmasq.service");
        let there = node.join("systemd/system/multi-user.target.wants/dnsmasq.service");
        std::fs::remove_file(&there).unwrap();
        std::fs::write(&there, "not a link\n").unwrap();
        assert!(matches!(plan(&inv, &root), Err(GeneralizeError::Conflict { .. })));
        // Something not a file where a master's file is named: moved by hand.
        std::fs::remove_file(&there).unwrap();
        std::fs::create_dir_all(root.join("etc/hostname")).unwrap();
        let e = plan(&inv, &root).unwrap_err().to_string();
        assert!(e.ends_with("etc/hostname is a directory, not a file or symlink; move it by hand"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
