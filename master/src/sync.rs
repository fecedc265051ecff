//! `crctl sync`: where each rendered config goes on the master, what would change there, and
//! writing it. Planned first (no writes), so `--dry-run` prints exactly what a run would do.

use std::fmt;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::image::store::EDIT;
use crate::inventory::Inventory;
use crate::place;
use crate::render;
use crate::render::master::{Body, Image};
use crate::services::{self, Init};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("creating the node directory {path} failed: {source}")]
    NodeDir { path: PathBuf, source: std::io::Error },
    #[error("writing {path} failed: {source}{hint}")]
    Write { path: PathBuf, source: std::io::Error, hint: &'static str },
    #[error(
        "writing {path} failed: it is in the version this master booted, which is read-only; \
         boot files go into the next version: crctl image edit -- true (a working copy), then \
         crctl sync, then crctl image publish"
    )]
    BootedVersion { path: PathBuf },
    #[error("{path} is a directory where sync writes a link ({what}); move it away")]
    LinkOverDirectory { path: PathBuf, what: String },
    #[error(transparent)]
    Identity(#[from] crate::identity::IdentityError),
}

/// What a target holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// Rendered from the inventory: written whenever it differs.
    Rendered(String),
    /// The same, a script (mode 0755).
    Script(String),
    /// A symlink to this target, written as a link (never followed) whenever it differs.
    Link(String),
    /// Made once when missing, then kept: a machine-id.
    MachineId,
    /// Made once when missing, then kept: an ssh host key pair of this type (`ssh-keygen -t`).
    SshKey { kind: &'static str, host: String },
}

/// One file `sync` keeps: where, what for, and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub path: PathBuf,
    pub what: String,
    pub content: Content,
    /// A node's directory on the node-files filesystem to create (mode 0700) if missing.
    pub node_dir: Option<PathBuf>,
    /// A file of a store's image written into the tree `--root` names, there being no working
    /// copy: on a running master that tree is the version it booted, which is read-only.
    pub booted_version: bool,
}

/// What writing a target would change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    New,
    /// A file whose text or mode differs (at least one of them).
    Changed {
        text: Text,
        /// The mode it has, and the one sync gives it, when they differ.
        mode: Option<(u32, u32)>,
    },
    /// A link with another target, or another kind of file where a link belongs.
    Relinked,
    Unchanged,
}

/// How a file's text differs from what sync writes there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Text {
    Same,
    /// Lines in the new text not in the old, and the other way round (as multisets).
    Lines {
        added: usize,
        removed: usize,
    },
    /// The same lines; the newline at the end is added or taken away.
    FinalNewline,
    /// The same lines in the same order, ended otherwise (CRLF and LF).
    LineEnds,
    /// The same lines in another order.
    Order,
}

impl Text {
    /// How `new` differs from `old`. No I/O.
    pub fn of(old: &str, new: &str) -> Text {
        if old == new {
            return Text::Same;
        }
        let (added, removed) = line_counts(old, new);
        if (added, removed) != (0, 0) {
            Text::Lines { added, removed }
        } else if old.trim_end_matches('\n') == new.trim_end_matches('\n') {
            Text::FinalNewline
        } else if old.lines().eq(new.lines()) {
            Text::LineEnds
        } else {
            Text::Order
        }
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::New => write!(f, "new"),
            Change::Changed { text, mode } => {
                let text = match text {
                    Text::Same => None,
                    Text::Lines { added, removed } => Some(format!("+{added} -{removed} lines")),
                    Text::FinalNewline => Some("the newline at the end".into()),
                    Text::LineEnds => Some("line ends".into()),
                    Text::Order => Some("line order".into()),
                };
                let mode = mode.map(|(old, new)| format!("mode {old:04o} -> {new:04o}"));
                let what: Vec<String> = text.into_iter().chain(mode).collect();
                write!(f, "changed ({})", what.join(", "))
            }
            Change::Relinked => write!(f, "changed (link target)"),
            Change::Unchanged => write!(f, "unchanged"),
        }
    }
}

/// What sync would write, and notes on what it leaves out (a service the image lacks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub notes: Vec<String>,
}

/// ZFS's filesystem magic (statfs f_type).
const ZFS_SUPER_MAGIC: u64 = 0x2fc1_2fc1;

/// What the master's node files depend on in the image below `root`: its init (the
/// inventory's, else the image's), the units or runit services it has, and whether the image
/// store is a ZFS dataset.
pub fn read_image(inv: &Inventory, root: &Path) -> Image {
    let exists = |p: &str| std::fs::symlink_metadata(place::under(root, p)).is_ok();
    let mut units = Vec::new();
    for unit in services::systemd_enabled() {
        let found = ["/lib/systemd/system", "/usr/lib/systemd/system"].map(|d| format!("{d}/{unit}"));
        if let Some(path) = found.into_iter().find(|p| exists(p)) {
            units.push((unit, path));
        }
    }
    let runit = services::runit_enabled().filter(|sv| exists(&format!("/etc/sv/{sv}"))).collect();
    let zfs_store = inv.uses_store()
        && rustix::fs::statfs(place::under(root, &inv.settings.images))
            .is_ok_and(|st| st.f_type as u64 == ZFS_SUPER_MAGIC);
    let working_copy = inv.uses_store()
        && std::fs::symlink_metadata(place::under(root, &inv.settings.images).join(EDIT)).is_ok_and(|m| m.is_dir());
    Image { init: inv.settings.init.or_else(|| Init::detect(root)), units, runit, zfs_store, working_copy }
}

/// The files for `inv`, below `root`: the master's dnsmasq.conf, exports,
/// lighttpd/lighttpd.conf and nfs.conf in its node files, and its own (fstab, its cluster
/// NIC's addresses, its services' enable links, nfsdcld's: [`render::master`], for `image`);
/// in every node's node files its hostname, the cluster's hosts, and its identity
/// (machine-id, ssh host keys: made once, then kept); boot.ipxe, pxelinux.cfg/default and the
/// clients' pxelinux.cfg/01-<mac> in the TFTP root ([`tftp_dir`]); and in the proxy setup the site DHCP server's host lines next
/// to the inventory.
pub fn plan(inv: &Inventory, root: &Path, inventory_path: &Path, image: &Image) -> Plan {
    let s = &inv.settings;
    let under = |p: &str| place::under(root, p);
    let node_dir = |mac: &clusterroot::mac::MacAddress| under(&s.nodefiles).join(mac.to_string());
    let master_dir = node_dir(&inv.master().mac);
    let configs = render::all(inv);
    let text_of = |name: &str| configs.iter().find(|c| c.name == name).map(|c| c.text.clone());
    let mut out = Vec::new();
    let mut add = |path: PathBuf, what: String, content: Content, dir: Option<&PathBuf>| {
        out.push(Target { path, what, content, node_dir: dir.cloned(), booted_version: false });
    };
    for (name, file) in [
        ("dnsmasq", "dnsmasq.conf"),
        ("exports", "exports"),
        ("lighttpd", "lighttpd/lighttpd.conf"),
        ("nfs", "nfs.conf"),
    ] {
        if let Some(c) = configs.iter().find(|c| c.name == name) {
            add(master_dir.join(file), c.what.to_string(), Content::Rendered(c.text.clone()), Some(&master_dir));
        }
    }
    let (own, mut notes) = render::master::files(inv, image);
    for f in own {
        let content = match f.body {
            Body::Text(t) => Content::Rendered(t),
            Body::Script(t) => Content::Script(t),
            Body::Link(t) => Content::Link(t),
        };
        add(master_dir.join(&f.path), f.what, content, Some(&master_dir));
    }
    let hosts = text_of("hosts").unwrap_or_default();
    for n in &inv.nodes {
        let dir = node_dir(&n.mac);
        let who = &n.name;
        add(dir.join("hostname"), format!("{who}'s /etc/hostname"), Content::Rendered(format!("{who}\n")), Some(&dir));
        add(dir.join("hosts"), format!("{who}'s /etc/hosts"), Content::Rendered(hosts.clone()), Some(&dir));
        add(dir.join("machine-id"), format!("{who}'s /etc/machine-id, made once"), Content::MachineId, Some(&dir));
        for kind in crate::identity::SSH_KEY_TYPES {
            add(
                dir.join(format!("ssh/ssh_host_{kind}_key")),
                format!("{who}'s ssh host key, made once"),
                Content::SshKey { kind, host: who.clone() },
                Some(&dir),
            );
        }
    }
    let (tftp, whose) = tftp_dir(inv, root, image);
    let mut boot_files: Vec<(String, PathBuf, Option<String>)> =
        [("ipxe", "boot.ipxe"), ("pxelinux", "pxelinux.cfg/default")]
            .map(|(n, f)| (f.to_string(), tftp.join(f), text_of(n)))
            .into();
    // Clients with an address (their node files' export), and nodes whose replicas differ
    // from every node's: pxelinux.cfg/01-<mac> each.
    for (file, text) in render::pxelinux::per_node(inv) {
        let path = tftp.join(&file);
        boot_files.push((file, path, Some(text)));
    }
    for (file, path, text) in &boot_files {
        if let Some(text) = text {
            add(path.clone(), format!("{file} in {whose}"), Content::Rendered(text.clone()), None);
        }
    }
    if let Some(text) = text_of("site-dhcp") {
        let what = "dhcp-host lines for the site's DHCP server".to_string();
        add(inventory_path.with_file_name("site-dhcp-hosts.conf"), what, Content::Rendered(text), None);
    }
    // A replica for a group no node is in serves nobody: most likely a misspelt group.
    for r in &s.replicas {
        if let Some(group) = r.group.as_deref().filter(|g| !inv.nodes.iter().any(|n| n.groups.iter().any(|x| x == g))) {
            notes.push(format!(
                "replica {group} {}: no node is in the group {group}, so it serves none; check the \
                 group's spelling against crctl node list",
                r.url
            ));
        }
    }
    if inv.uses_store() && image.working_copy {
        notes.push(format!(
            "boot.ipxe and the pxelinux.cfg files go into the working copy {}: the clients get them once \
             crctl image publish makes it the default",
            tftp.display()
        ));
    } else if inv.uses_store() {
        for t in out.iter_mut().filter(|t| boot_files.iter().any(|(_, p, _)| *p == t.path)) {
            t.booted_version = true;
        }
    }
    Plan { targets: out, notes }
}

/// Where sync writes the TFTP root's files, and what that is. With an image store, the TFTP
/// root belongs to a version (the master serves the default's: [`Inventory::served_tftp`]),
/// so the files go into the working copy, `<root><images>/edit<tftp>`, the next version, when
/// there is one; else, as without a store, into `<root><tftp>`: a tree before its import, a
/// scratch tree, or on a running master the version it booted, which refuses them.
pub fn tftp_dir(inv: &Inventory, root: &Path, image: &Image) -> (PathBuf, &'static str) {
    let s = &inv.settings;
    if inv.uses_store() && image.working_copy {
        let dir = place::under(root, &s.images).join(EDIT).join(s.tftp.trim_start_matches('/'));
        (dir, "the working copy's TFTP root (the next version)")
    } else {
        (place::under(root, &s.tftp), "the TFTP root")
    }
}

/// Lines in `new` not in `old`, and the other way round (as multisets).
fn line_counts(old: &str, new: &str) -> (usize, usize) {
    let mut rest: Vec<&str> = old.lines().collect();
    let mut added = 0;
    for l in new.lines() {
        match rest.iter().position(|o| *o == l) {
            Some(i) => {
                rest.swap_remove(i);
            }
            None => added += 1,
        }
    }
    (added, rest.len())
}

/// What writing `t` would change. Nothing is followed: a symlink where a file belongs is
/// replaced, not read through.
pub fn compare(t: &Target) -> Result<Change, SyncError> {
    let read = |source| SyncError::Read { path: t.path.clone(), source };
    let meta = match std::fs::symlink_metadata(&t.path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Change::New),
        Err(source) => return Err(read(source)),
    };
    let (text, mode) = match &t.content {
        // Made once: kept whatever it holds.
        Content::MachineId | Content::SshKey { .. } => return Ok(Change::Unchanged),
        Content::Link(target) => {
            let same = meta.file_type().is_symlink() && std::fs::read_link(&t.path).map_err(read)? == Path::new(target);
            return Ok(if same { Change::Unchanged } else { Change::Relinked });
        }
        Content::Rendered(text) => (text, 0o644),
        Content::Script(text) => (text, 0o755),
    };
    if !meta.is_file() {
        return Ok(Change::Changed { text: Text::Lines { added: text.lines().count(), removed: 0 }, mode: None });
    }
    let old = std::fs::read_to_string(&t.path).map_err(read)?;
    let old_mode = meta.permissions().mode() & 0o7777;
    match (Text::of(&old, text), old_mode == mode) {
        (Text::Same, true) => Ok(Change::Unchanged),
        (text, same_mode) => Ok(Change::Changed { text, mode: (!same_mode).then_some((old_mode, mode)) }),
    }
}

/// Writes `t`: its node directory first (0700: node files are secrets), then the file whole.
pub fn write(t: &Target) -> Result<(), SyncError> {
    if let Some(dir) = &t.node_dir {
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
                .map_err(|source| SyncError::NodeDir { path: dir.clone(), source })?;
        }
    }
    let (text, mode) = match &t.content {
        Content::Rendered(text) => (text, 0o644),
        Content::Script(text) => (text, 0o755),
        Content::Link(target) => return link(t, target),
        Content::MachineId => return Ok(crate::identity::write_machine_id(&t.path)?),
        Content::SshKey { kind, host } => return Ok(crate::identity::ssh_keygen(kind, host, &t.path)?),
    };
    crate::files::replace(&t.path, text.as_bytes(), mode).map_err(|source| write_error(t, source))
}

/// The error of a failed write to `t`, with the fix for a read-only filesystem.
fn write_error(t: &Target, source: std::io::Error) -> SyncError {
    let read_only = source.raw_os_error() == Some(rustix::io::Errno::ROFS.raw_os_error());
    if read_only && t.booted_version {
        return SyncError::BootedVersion { path: t.path.clone() };
    }
    let hint = if read_only {
        "; remount that filesystem read-write first (mount -o remount,rw ...), or name another tree with --root"
    } else {
        ""
    };
    SyncError::Write { path: t.path.clone(), source, hint }
}

/// Makes `t` a symlink to `target`: a new link under a temporary name, renamed over whatever
/// is there (a file or a link, never a directory), so a reader sees the old or the new.
fn link(t: &Target, target: &str) -> Result<(), SyncError> {
    if std::fs::symlink_metadata(&t.path).is_ok_and(|m| m.is_dir()) {
        return Err(SyncError::LinkOverDirectory { path: t.path.clone(), what: t.what.clone() });
    }
    let dir = t.path.parent().unwrap_or(Path::new("."));
    let name = t.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.crctl-{}", std::process::id()));
    let made = std::fs::create_dir_all(dir)
        .and_then(|()| {
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(target, &tmp)
        })
        .and_then(|()| std::fs::rename(&tmp, &t.path));
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made.map_err(|source| write_error(t, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("crctl-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    /// The targets for an image sync knows nothing of: the master's fstab alone of its own.
    fn targets(inv: &Inventory, root: &Path, inventory_path: &Path) -> Vec<Target> {
        plan(inv, root, inventory_path, &Image::default()).targets
    }

    fn paths(t: &[Target]) -> Vec<String> {
        t.iter().map(|t| t.path.display().to_string()).collect()
    }

    #[test]
    fn nodes_with_replicas_of_their_own_get_a_pxelinux_file() {
        let text = example::CLUSTER.replace(
            "master master\n",
            "master master\nimages /srv/nfs/images\nimage-mode squashfs-http\nreplica compute http://172.23.199.2/images/\n",
        );
        let inv = Inventory::parse(&text).unwrap();
        let t = targets(&inv, Path::new("/r"), Path::new("/etc/clusterroot/cluster"));
        let boot: Vec<String> = paths(&t).into_iter().filter(|p| p.starts_with("/r/srv/tftp/")).collect();
        assert_eq!(
            boot,
            [
                "/r/srv/tftp/boot.ipxe",
                "/r/srv/tftp/pxelinux.cfg/default",
                "/r/srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0b",
                "/r/srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0c"
            ]
        );
        let node1 = t.iter().find(|t| t.path.ends_with("01-52-54-00-77-00-0b")).unwrap();
        assert_eq!(node1.what, "pxelinux.cfg/01-52-54-00-77-00-0b in the TFTP root");
        let notes = plan(&inv, Path::new("/r"), Path::new("/etc/clusterroot/cluster"), &Image::default()).notes;
        assert!(!notes.iter().any(|n| n.starts_with("replica ")), "{notes:?}");
        // A group no node is in: said, as sync's note.
        let misspelt = Inventory::parse(&text.replace("replica compute", "replica compte")).unwrap();
        let notes = plan(&misspelt, Path::new("/r"), Path::new("/etc/clusterroot/cluster"), &Image::default()).notes;
        assert!(
            notes.contains(
                &"replica compte http://172.23.199.2/images/: no node is in the group compte, so it serves none; \
                  check the group's spelling against crctl node list"
                    .to_string()
            ),
            "{notes:?}"
        );
        // Without group replicas, a file for each client with an address (its node files'
        // export), none for one without.
        let t = targets(&example::inventory(), Path::new("/r"), Path::new("/etc/clusterroot/cluster"));
        let own: Vec<String> = paths(&t).into_iter().filter(|p| p.contains("pxelinux.cfg/01-")).collect();
        assert_eq!(
            own,
            ["/r/srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0b", "/r/srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0c"]
        );
        let without = Inventory::parse(&example::CLUSTER.replace("172.23.199.12   compute", "- compute")).unwrap();
        let t = targets(&without, Path::new("/r"), Path::new("/etc/clusterroot/cluster"));
        let own: Vec<String> = paths(&t).into_iter().filter(|p| p.contains("pxelinux.cfg/01-")).collect();
        assert_eq!(own, ["/r/srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0b"]);
    }

    #[test]
    fn targets_land_in_node_files_and_tftp_root() {
        let inv = example::inventory();
        let t = targets(&inv, Path::new("/r"), Path::new("/etc/clusterroot/cluster"));
        let p = paths(&t);
        let node1 = "/r/srv/nfs/nodes/52:54:00:77:00:0b";
        assert_eq!(
            p[..4],
            [
                "/r/srv/nfs/nodes/52:54:00:77:00:e1/dnsmasq.conf",
                "/r/srv/nfs/nodes/52:54:00:77:00:e1/exports",
                "/r/srv/nfs/nodes/52:54:00:77:00:e1/lighttpd/lighttpd.conf",
                "/r/srv/nfs/nodes/52:54:00:77:00:e1/nfs.conf"
            ]
        );
        let mine: Vec<&String> = p.iter().filter(|x| x.starts_with(node1)).collect();
        assert_eq!(
            mine,
            [
                "hostname",
                "hosts",
                "machine-id",
                "ssh/ssh_host_ed25519_key",
                "ssh/ssh_host_ecdsa_key",
                "ssh/ssh_host_rsa_key"
            ]
            .map(|f| format!("{node1}/{f}"))
            .iter()
            .collect::<Vec<_>>()
        );
        assert_eq!(
            p[p.len() - 4..],
            [
                "/r/srv/tftp/boot.ipxe",
                "/r/srv/tftp/pxelinux.cfg/default",
                "/r/srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0b",
                "/r/srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0c"
            ]
        );
        assert_eq!(p[4], "/r/srv/nfs/nodes/52:54:00:77:00:e1/fstab");
        assert_eq!(p.len(), 5 + 3 * 6 + 4);
        let proxy = targets(&example::proxy(), Path::new("/r"), Path::new("/etc/clusterroot/cluster"));
        assert_eq!(proxy.last().unwrap().path, Path::new("/etc/clusterroot/site-dhcp-hosts.conf"));
    }

    #[test]
    fn a_change_says_what_differs() {
        let changed = |old: &str, new: &str, mode| Change::Changed { text: Text::of(old, new), mode }.to_string();
        for (old, new, mode, want) in [
            ("a\nb\n", "a\nc\nd\n", None, "changed (+2 -1 lines)"),
            ("master", "master\n", None, "changed (the newline at the end)"),
            ("a\r\nb\r\n", "a\nb\n", None, "changed (line ends)"),
            ("b\na\n", "a\nb\n", None, "changed (line order)"),
            ("master\n", "master\n", Some((0o755, 0o644)), "changed (mode 0755 -> 0644)"),
            ("old\n", "master\n", Some((0o600, 0o644)), "changed (+1 -1 lines, mode 0600 -> 0644)"),
        ] {
            assert_eq!(changed(old, new, mode), want, "{old:?} -> {new:?}");
        }
        assert_eq!(Text::of("x\n", "x\n"), Text::Same);
    }

    /// Debian's debootstrap copies the build host's /etc/hostname, mode and all (0755 on one
    /// test host), and generalize moves it with its mode: sync then says it changes the mode,
    /// not "+0 -0 lines", and once written it is unchanged.
    #[test]
    fn a_moved_hostname_of_another_mode_is_a_mode_change() {
        let root = scratch("sync-hostname");
        let inv = example::inventory();
        let etc = root.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        crate::files::replace(&etc.join("hostname"), b"master\n", 0o755).unwrap();
        crate::generalize::execute(&crate::generalize::plan(&inv, &root).unwrap()).unwrap();
        let hostname = root.join("srv/nfs/nodes/52:54:00:77:00:e1/hostname");
        assert_eq!(std::fs::metadata(&hostname).unwrap().permissions().mode() & 0o7777, 0o755);
        let t = targets(&inv, &root, &root.join("cluster"));
        let t = t.iter().find(|t| t.path == hostname).unwrap();
        assert_eq!(compare(t).unwrap().to_string(), "changed (mode 0755 -> 0644)");
        write(t).unwrap();
        assert_eq!(compare(t).unwrap(), Change::Unchanged);
        assert_eq!(std::fs::metadata(&hostname).unwrap().permissions().mode() & 0o7777, 0o644);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn sync_is_idempotent_makes_identity_once_and_says_what_changed() {
        let root = scratch("sync");
        let inv = example::inventory();
        let t = targets(&inv, &root, &root.join("cluster"));
        assert!(t.iter().all(|t| compare(t).unwrap() == Change::New));
        for x in &t {
            write(x).unwrap();
        }
        assert!(t.iter().all(|t| compare(t).unwrap() == Change::Unchanged));
        let dir = root.join("srv/nfs/nodes/52:54:00:77:00:0b");
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(std::fs::read_to_string(dir.join("hostname")).unwrap(), "node1\n");
        let key = dir.join("ssh/ssh_host_ed25519_key");
        assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);
        assert!(std::fs::read_to_string(dir.join("ssh/ssh_host_ed25519_key.pub")).unwrap().ends_with(" root@node1\n"));
        // No two nodes share a machine-id or a key.
        let other = root.join("srv/nfs/nodes/52:54:00:77:00:0c");
        for f in ["machine-id", "ssh/ssh_host_ed25519_key", "ssh/ssh_host_rsa_key"] {
            assert_ne!(std::fs::read(dir.join(f)).unwrap(), std::fs::read(other.join(f)).unwrap(), "{f}");
        }
        // Identity is kept: a second write of the same targets is never asked for, and the
        // files stay as they were.
        let id = std::fs::read(dir.join("machine-id")).unwrap();
        // A node more: one line more in the master's configs and every hosts file, its own in
        // boot.ipxe; the new node's files are new, its pxelinux file too; nothing else changes.
        let n3 = crate::inventory::Node::parse(&["node3", "52:54:00:77:00:0d", "172.23.199.13"]).unwrap();
        let t2 = targets(&inv.with_node(n3).unwrap(), &root, &root.join("cluster"));
        let mut changes: Vec<String> = Vec::new();
        for t in &t2 {
            let c = compare(t).unwrap();
            if c != Change::Unchanged {
                changes.push(format!("{c} {}", t.path.strip_prefix(&root).unwrap().display()));
            }
        }
        let n3 = "srv/nfs/nodes/52:54:00:77:00:0d";
        let mut want = vec![
            // Its dhcp-host line, and tftp-max one more (render::sizing).
            "changed (+2 -1 lines) srv/nfs/nodes/52:54:00:77:00:e1/dnsmasq.conf".to_string(),
            "changed (+1 -0 lines) srv/nfs/nodes/52:54:00:77:00:e1/exports".to_string(),
            // Its iseq line, and its name in the label nodefiles' comment.
            "changed (+2 -1 lines) srv/tftp/boot.ipxe".to_string(),
        ];
        for mac in ["e1", "0b", "0c"] {
            want.push(format!("changed (+1 -0 lines) srv/nfs/nodes/52:54:00:77:00:{mac}/hosts"));
        }
        want.sort();
        for f in [
            "hostname",
            "hosts",
            "machine-id",
            "ssh/ssh_host_ed25519_key",
            "ssh/ssh_host_ecdsa_key",
            "ssh/ssh_host_rsa_key",
        ] {
            want.push(format!("new {n3}/{f}"));
        }
        want.push("new srv/tftp/pxelinux.cfg/01-52-54-00-77-00-0d".to_string());
        let (mut old, new): (Vec<String>, Vec<String>) = changes.into_iter().partition(|c| c.starts_with("changed"));
        old.sort();
        assert_eq!([old, new].concat(), want);
        assert_eq!(std::fs::read(dir.join("machine-id")).unwrap(), id);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn links_and_scripts_are_node_files_too() {
        let root = scratch("links");
        let inv = example::inventory();
        let image = Image { init: Some(Init::Runit), runit: vec!["rpcbind", "nfs-server"], ..Image::default() };
        let p = plan(&inv, &root, &root.join("cluster"), &image);
        assert_eq!(p.notes.len(), 3, "{:?}", p.notes);
        let master = root.join("srv/nfs/nodes/52:54:00:77:00:e1");
        for t in p.targets.iter().filter(|t| t.path.starts_with(&master)) {
            assert_eq!(compare(t).unwrap(), Change::New, "{}", t.path.display());
            write(t).unwrap();
            assert_eq!(compare(t).unwrap(), Change::Unchanged, "{}", t.path.display());
        }
        let link = master.join("runit/runsvdir/default/nfs-server");
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/sv/nfs-server"));
        let run = master.join("sv/nfsdcld/run");
        assert_eq!(std::fs::metadata(&run).unwrap().permissions().mode() & 0o7777, 0o755);
        // Another target, a file where a link belongs, a link where a file belongs: changed,
        // and written without following anything.
        let target = |name: &str| p.targets.iter().find(|t| t.path.to_string_lossy().ends_with(name)).unwrap();
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink("/etc/sv/elsewhere", &link).unwrap();
        assert_eq!(compare(target("default/nfs-server")).unwrap(), Change::Relinked);
        assert_eq!(Change::Relinked.to_string(), "changed (link target)");
        std::fs::remove_file(&link).unwrap();
        std::fs::write(&link, "a file").unwrap();
        assert_eq!(compare(target("default/nfs-server")).unwrap(), Change::Relinked);
        write(target("default/nfs-server")).unwrap();
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("/etc/sv/nfs-server"));
        let outside = root.join("outside");
        std::fs::write(&outside, "not the master's").unwrap();
        let fstab = master.join("fstab");
        std::fs::remove_file(&fstab).unwrap();
        std::os::unix::fs::symlink(&outside, &fstab).unwrap();
        assert!(matches!(
            compare(target(":e1/fstab")).unwrap(),
            Change::Changed { text: Text::Lines { removed: 0, .. }, mode: None }
        ));
        write(target(":e1/fstab")).unwrap();
        assert!(std::fs::symlink_metadata(&fstab).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "not the master's");
        // A mode that differs is a change, and says so.
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = compare(target("sv/nfsdcld/run")).unwrap();
        assert_eq!(c, Change::Changed { text: Text::Same, mode: Some((0o644, 0o755)) });
        assert_eq!(c.to_string(), "changed (mode 0644 -> 0755)");
        // A directory where a link belongs is an error naming it.
        std::fs::remove_file(&link).unwrap();
        std::fs::create_dir(&link).unwrap();
        let e = write(target("default/nfs-server")).unwrap_err().to_string();
        assert!(
            e.ends_with(
                "is a directory where sync writes a link (the master's nfs-server service, enabled); move it away"
            ),
            "{e}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    fn store() -> Inventory {
        Inventory::parse(&example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n"))
            .unwrap()
    }

    /// The targets in `dir` (the TFTP root they went to).
    fn boot_files<'a>(p: &'a Plan, dir: &Path) -> Vec<&'a Target> {
        p.targets.iter().filter(|t| t.path.starts_with(dir)).collect()
    }

    #[test]
    fn with_a_store_boot_files_go_into_the_working_copy() {
        let root = scratch("store-tftp");
        std::fs::create_dir_all(&root).unwrap();
        let inv = store();
        let (tree, edit) = (root.join("srv/tftp"), root.join("srv/nfs/images/edit/srv/tftp"));
        // No working copy: the tree --root names, as without a store (a tree before its
        // import, a scratch tree), marked as what a running master booted.
        let image = read_image(&inv, &root);
        assert!(!image.working_copy);
        let p = plan(&inv, &root, &root.join("cluster"), &image);
        let files = boot_files(&p, &tree);
        assert_eq!(
            paths(&files.iter().map(|t| (*t).clone()).collect::<Vec<_>>()),
            [
                "boot.ipxe",
                "pxelinux.cfg/default",
                "pxelinux.cfg/01-52-54-00-77-00-0b",
                "pxelinux.cfg/01-52-54-00-77-00-0c"
            ]
            .map(|f| tree.join(f).display().to_string())
        );
        assert!(files.iter().all(|t| t.booted_version && t.what.ends_with(" in the TFTP root")));
        assert!(p.targets.iter().filter(|t| !t.path.starts_with(&tree)).all(|t| !t.booted_version));
        assert!(!p.notes.iter().any(|n| n.contains("working copy")), "{:?}", p.notes);
        // A working copy: its TFTP root, the next version's; the tree is left alone.
        std::fs::create_dir_all(root.join("srv/nfs/images/edit")).unwrap();
        let image = read_image(&inv, &root);
        assert!(image.working_copy);
        let p = plan(&inv, &root, &root.join("cluster"), &image);
        assert!(boot_files(&p, &tree).is_empty());
        let files = boot_files(&p, &edit);
        assert_eq!(files.len(), 4);
        assert_eq!(files[0].what, "boot.ipxe in the working copy's TFTP root (the next version)");
        assert!(files.iter().all(|t| !t.booted_version));
        let note = format!(
            "boot.ipxe and the pxelinux.cfg files go into the working copy {}: the clients get them once \
             crctl image publish makes it the default",
            edit.display()
        );
        assert_eq!(p.notes.last(), Some(&note));
        for t in &files {
            write(t).unwrap();
        }
        assert!(std::fs::read_to_string(edit.join("pxelinux.cfg/default"))
            .unwrap()
            .contains("clusterroot.image=default"));
        assert!(!tree.exists());
        // Without a store, an edit directory there means nothing.
        let plain = example::inventory();
        let image = read_image(&plain, &root);
        assert!(!image.working_copy);
        let p = plan(&plain, &root, &root.join("cluster"), &image);
        assert!(boot_files(&p, &tree).iter().all(|t| !t.booted_version));
        assert_eq!(boot_files(&p, &tree).len(), 4);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_booted_version_refuses_boot_files_naming_the_fix() {
        let t = |booted_version| Target {
            path: PathBuf::from("/run/rootfs/lower/srv/tftp/boot.ipxe"),
            what: "boot.ipxe in the TFTP root".into(),
            content: Content::Rendered(String::new()),
            node_dir: None,
            booted_version,
        };
        let rofs = || std::io::Error::from_raw_os_error(rustix::io::Errno::ROFS.raw_os_error());
        assert_eq!(
            write_error(&t(true), rofs()).to_string(),
            "writing /run/rootfs/lower/srv/tftp/boot.ipxe failed: it is in the version this master booted, \
             which is read-only; boot files go into the next version: crctl image edit -- true (a working \
             copy), then crctl sync, then crctl image publish"
        );
        assert!(write_error(&t(false), rofs()).to_string().ends_with("(os error 30); remount that filesystem read-write first (mount -o remount,rw ...), or name another tree with --root"));
        let denied = std::io::Error::from_raw_os_error(rustix::io::Errno::ACCESS.raw_os_error());
        assert!(!write_error(&t(true), denied).to_string().contains("crctl image"));
    }

    /// A running store master: the tree --root names is the version it booted, bound
    /// read-only (in a thread with a private mount namespace, so the host never sees it).
    #[test]
    #[ignore = "a read-only bind mount needs root; as root: cargo test -- --include-ignored (scripts/test does)"]
    fn a_read_only_booted_version_is_one_line_with_the_fix() {
        use rustix::mount::{mount_bind, mount_change, mount_remount, MountFlags, MountPropagationFlags};
        let root = scratch("booted");
        std::fs::create_dir_all(root.join("srv/nfs/images")).unwrap();
        let inv = store();
        let p = plan(&inv, &root, &root.join("cluster"), &read_image(&inv, &root));
        let tree = root.join("srv/tftp");
        let files: Vec<Target> = boot_files(&p, &tree).into_iter().cloned().collect();
        let dir = root.clone();
        let result = std::thread::spawn(move || {
            // SAFETY: only this thread's mount namespace and filesystem context change; it
            // shares no memory with other threads that unsharing could affect, and ends here.
            unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }
                .map_err(|e| format!("unshare(CLONE_NEWNS): {e}"))?;
            mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
                .map_err(|e| format!("making / private: {e}"))?;
            mount_bind(&dir, &dir).map_err(|e| format!("mount --bind: {e}"))?;
            mount_remount(&dir, MountFlags::BIND | MountFlags::RDONLY, "")
                .map_err(|e| format!("mount -o remount,bind,ro: {e}"))?;
            Ok::<Vec<String>, String>(files.iter().map(|t| write(t).unwrap_err().to_string()).collect())
        })
        .join()
        .expect("the read-only test's thread panicked");
        match result {
            Ok(errors) => {
                let want = [
                    "boot.ipxe",
                    "pxelinux.cfg/default",
                    "pxelinux.cfg/01-52-54-00-77-00-0b",
                    "pxelinux.cfg/01-52-54-00-77-00-0c",
                ];
                assert_eq!(errors.len(), want.len());
                for (e, f) in errors.iter().zip(want) {
                    assert!(
                        e.starts_with(&format!("writing {}/{f} failed: it is in the version", tree.display())),
                        "{e}"
                    );
                    assert!(e.ends_with("then crctl sync, then crctl image publish") && !e.contains('\n'), "{e}");
                }
            }
            Err(e) => eprintln!("skipped: the kernel refused: {e}"),
        }
        assert!(!tree.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
