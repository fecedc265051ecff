//! What the booted system takes over from the boot: the node's identity (machine-id, host
//! name, ssh host keys, resolv.conf) and the boot NIC, handed to its network manager.
//!
//! Runs on the finished new root, after the node files, so that the node's own files win.
//! Nothing here fails the boot: each finding is one warning naming the file and the fix. The
//! renderers and checks are pure functions; [`hand_over`] reads the layers and writes.

use std::fmt::Write as _;
use std::io::Read;
use std::net::Ipv4Addr;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rustix::fd::OwnedFd;
use rustix::fs::{FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use crate::kmsg::Log;
use crate::mac::MacAddress;
use crate::net::{Lease, Nic};
use crate::nodefiles::{EtcPath, EtcWriter, Meta};
use crate::plan::{JOURNALD_CONF, NETWORKD_DIR, NM_CONF};
use crate::root::Root;

#[derive(Debug, thiserror::Error)]
pub enum HandOverError {
    #[error("writing {path} failed: {cause}")]
    Write { path: String, cause: String },
}

/// The new root and the two layers it is made of, to tell the image's files (lower) from the
/// node's own (upper: only the node files have written there yet).
pub struct Layers<'a> {
    pub newroot: &'a str,
    pub lower: &'a str,
    pub upper: &'a str,
}

/// The boot NIC as the agent left it: the NFS root depends on its address staying.
pub struct BootNet<'a> {
    pub nic: &'a Nic,
    pub address: Ipv4Addr,
    pub prefix: u8,
    /// The lease, when DHCP gave the address: the booted system's client renews it.
    pub lease: Option<&'a Lease>,
    /// The static `ip=` gateway.
    pub gateway: Option<Ipv4Addr>,
}

/// What the state file records.
pub struct Identity {
    /// The name the node ends up with: `/etc/hostname` of the new root, else the kernel's.
    pub hostname: String,
    /// Where `/etc/machine-id` came from: `node files`, `boot MAC`, or empty when unknown.
    pub machine_id: &'static str,
}

const SSH_KEYS: [&str; 4] = ["ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key", "ssh_host_dsa_key"];
/// Files read here are small; more is not a config file.
const READ_MAX: u64 = 1 << 20;
const NAMES_MAX: usize = 256;

// ---------------------------------------------------------------------------------------------
// Pure: renderers and checks

/// The node's machine-id when its node files give none: stable (the same on every boot) and
/// distinct per node, from the boot MAC: SHA-256 of `clusterroot machine-id\n<mac>`, cut to
/// 128 bits and marked as a version-4 UUID, as systemd formats new IDs.
pub fn machine_id_for(mac: &MacAddress) -> String {
    let mut h = Sha256::new();
    h.update(b"clusterroot machine-id\n");
    h.update(mac.to_string().as_bytes());
    let d = h.finalize();
    let mut id = [0u8; 16];
    id.copy_from_slice(&d[..16]);
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    id.iter().map(|b| format!("{b:02x}")).collect()
}

/// The ID in a machine-id file, if it holds one (32 hex digits, not all zero); empty and
/// `uninitialized` files hold none.
pub fn machine_id_in(text: &str) -> Option<&str> {
    let t = text.trim();
    let hex = t.len() == 32 && t.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && t.bytes().any(|b| b != b'0')).then_some(t)
}

/// The host name in an `/etc/hostname`: its first line that is not a comment, if it is a
/// valid name (letters, digits, `-`, `.`, at most 64 bytes).
pub fn hostname_in(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let ok = line.len() <= 64 && line.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    ok.then(|| line.to_string())
}

/// The fstab lines that mount `/` (1-based number, text): on a node `/` is the overlay, so
/// `systemd-remount-fs` or `mount -a` would fail on them.
pub fn fstab_root_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 2 && !f[0].starts_with('#') && f[1] == "/"
        })
        .map(|(i, l)| (i + 1, l.trim().to_string()))
        .collect()
}

/// networkd's runtime `.network` for the boot NIC: the same address, kept whatever happens
/// (`KeepConfiguration=yes`: not removed as "foreign" at start, nor at stop, nor when a lease
/// expires), no DHCP release, and for a DHCP boot the same client identifier as the agent's,
/// so the server renews the same lease.
pub fn networkd_unit(net: &BootNet<'_>) -> String {
    let mut out = String::from(
        "# Written by clusterroot at boot: this NIC carries the NFS root, so its address must never\n\
         # be removed. Files in /etc/systemd/network that sort before this one's name take precedence.\n",
    );
    let _ =
        write!(out, "[Match]\nMACAddress={}\nName={}\n\n[Network]\nKeepConfiguration=yes\n", net.nic.mac, net.nic.name);
    match net.lease {
        Some(_) => out.push_str("DHCP=ipv4\n\n[DHCPv4]\nClientIdentifier=mac\nSendRelease=no\n"),
        None => {
            let _ = writeln!(out, "Address={}/{}", net.address, net.prefix);
            if let Some(gw) = net.gateway {
                let _ = writeln!(out, "Gateway={gw}");
            }
        }
    }
    out
}

/// NetworkManager's runtime configuration: the boot NIC is not its to manage, so it never
/// takes it down or re-addresses it.
pub fn nm_conf(mac: &MacAddress) -> String {
    format!(
        "# Written by clusterroot at boot: the boot NIC carries the NFS root; NetworkManager leaves it alone.\n\
         [keyfile]\nunmanaged-devices=mac:{mac}\n"
    )
}

/// journald's runtime drop-in: the journal in `/run`, within journald's runtime limits,
/// rather than in `/var/log/journal` on the upper, which is RAM too and larger.
pub const JOURNALD_TEXT: &str =
    "# Written by clusterroot at boot: /var is in RAM on this node (the overlay's upper), so keep\n\
     # the journal in /run within journald's runtime limits. Override with a later drop-in in\n\
     # /etc/systemd/journald.conf.d/.\n[Journal]\nStorage=volatile\n";

/// The ifupdown stanza that would bring `iface` up and, at shutdown, down (with a DHCP
/// release), taking the NFS root with it: `(line, text)` of `iface <iface> inet <method>`
/// when `auto`/`allow-hotplug` names the NIC and the method is not `manual`.
pub fn ifupdown_takes(text: &str, iface: &str) -> Option<(usize, String)> {
    let mut started = false;
    let mut stanza = None;
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            [kw, names @ ..] if kw.starts_with("auto") || kw.starts_with("allow-") => {
                started |= names.contains(&iface);
            }
            ["iface", name, "inet", method, ..] if *name == iface && *method != "manual" => {
                stanza.get_or_insert((i + 1, line.trim().to_string()));
            }
            _ => {}
        }
    }
    stanza.filter(|_| started)
}

/// Whether a `dhcpcd.conf` keeps dhcpcd from de-configuring `iface` when it stops:
/// `persistent`, or `denyinterfaces` naming it (globs allowed).
pub fn dhcpcd_keeps(text: &str, iface: &str) -> bool {
    text.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f.as_slice() {
            ["persistent", ..] => true,
            ["denyinterfaces", pats @ ..] => pats.iter().any(|p| glob(p.as_bytes(), iface.as_bytes())),
            _ => false,
        }
    })
}

/// Shell-style `*` and `?` matching, as dhcpcd's interface lists use. Iterative, with one
/// backtracking point (the last `*`), so a hostile pattern costs at most pattern × name steps.
fn glob(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(&c) if c == b'?' || c == name[n] => {
                p += 1;
                n += 1;
            }
            _ => match star {
                // Let the last `*` take one more byte and try again from there.
                Some((sp, sn)) => {
                    star = Some((sp, sn + 1));
                    p = sp + 1;
                    n = sn + 1;
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

// ---------------------------------------------------------------------------------------------
// Reading a tree as its own root

/// `path` (relative) inside `base`, resolved with `base` as `/`: an absolute symlink in the
/// image points into the image, never into the initramfs.
fn open_in(base: &str, path: &str, flags: OFlags) -> Result<OwnedFd, Errno> {
    let dir = rustix::fs::open(base, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
    let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
    rustix::fs::openat2(&dir, path, flags | OFlags::CLOEXEC, Mode::empty(), how)
}

/// The type of `path` in `base`, the last component not followed; `None` when absent.
fn kind_in(base: &str, path: &str) -> Option<FileType> {
    let fd = open_in(base, path, OFlags::PATH | OFlags::NOFOLLOW).ok()?;
    rustix::fs::fstat(&fd).ok().map(|st| FileType::from_raw_mode(st.st_mode))
}

/// The text of the regular file `path` in `base` (at most [`READ_MAX`] bytes), if any. Its
/// type is checked before it is opened for reading: opening a device node can act (a
/// watchdog starts counting), and node files are the node owner's to shape.
fn read_in(base: &str, path: &str) -> Option<String> {
    let probe = open_in(base, path, OFlags::PATH).ok()?;
    if FileType::from_raw_mode(rustix::fs::fstat(&probe).ok()?.st_mode) != FileType::RegularFile {
        return None;
    }
    let fd = open_in(base, path, OFlags::RDONLY | OFlags::NONBLOCK).ok()?;
    let mut text = Vec::new();
    std::fs::File::from(fd).take(READ_MAX).read_to_end(&mut text).ok()?;
    Some(String::from_utf8_lossy(&text).into_owned())
}

/// The names in directory `path` of `base`; the first [`NAMES_MAX`], a config directory
/// holding more being someone's attempt to slow the boot down.
fn names_in(base: &str, path: &str) -> Vec<String> {
    let Ok(fd) = open_in(base, path, OFlags::RDONLY | OFlags::DIRECTORY) else { return Vec::new() };
    let Ok(dir) = rustix::fs::Dir::read_from(&fd) else { return Vec::new() };
    dir.flatten().take(NAMES_MAX).map(|e| e.file_name().to_string_lossy().into_owned()).collect()
}

/// Whether the node files (anything in the upper, so far) gave `path`.
fn from_node_files(layers: &Layers<'_>, path: &str) -> bool {
    kind_in(layers.upper, path).is_some()
}

// ---------------------------------------------------------------------------------------------
// Writing

/// Writes `/etc/<name>` in the new root (a new file renamed over the old entry, a symlink
/// included; never through one).
fn write_etc(newroot: &str, name: &str, text: &str, mode: u32, log: &Log) -> Result<(), HandOverError> {
    let err = |cause: String| HandOverError::Write { path: format!("/etc/{name}"), cause };
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let mut w = EtcWriter::open(newroot, deadline).map_err(|e| err(e.to_string()))?;
    let path = EtcPath::parse(name.as_bytes()).map_err(|e| err(e.to_string()))?;
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let meta = Meta { mode, uid: 0, gid: 0, mtime: (now.as_secs() as i64, i64::from(now.subsec_nanos())) };
    w.file(&path, &mut text.as_bytes(), &meta).map_err(|e| err(e.to_string()))?;
    w.close(log);
    Ok(())
}

/// Writes a runtime file in the initramfs's `/run`, which becomes the booted system's.
fn write_run(root: &Root, path: &str, text: &str) -> Result<(), HandOverError> {
    let full = root.path(path);
    let result =
        full.parent().map(std::fs::create_dir_all).unwrap_or(Ok(())).and_then(|()| std::fs::write(&full, text));
    result.map_err(|e| HandOverError::Write { path: path.to_string(), cause: e.to_string() })
}

// ---------------------------------------------------------------------------------------------
// The step

/// Gives the booted system its identity and the boot NIC; returns what the state records.
pub fn hand_over(
    root: &Root,
    layers: &Layers<'_>,
    mac: Option<&MacAddress>,
    net: Option<&BootNet<'_>>,
    log: &Log,
) -> Identity {
    let machine_id = machine_id(layers, mac, log);
    let hostname = final_hostname(layers, log);
    check_ssh_keys(layers, log);
    check_fstab(layers, log);
    if let Some(lease) = net.and_then(|n| n.lease) {
        resolv_conf(layers, lease, log);
    }
    if let Some(net) = net {
        network(root, layers, net, log);
    }
    if let Err(e) = write_run(root, JOURNALD_CONF, JOURNALD_TEXT) {
        log.warn(&e.to_string());
    }
    Identity { hostname, machine_id }
}

/// systemd, D-Bus and networkd's DHCP client ID take the node's identity from
/// `/etc/machine-id`; an image's one would be every node's. The node files' one is kept;
/// otherwise the node gets its own, derived from its boot MAC, written in the upper.
fn machine_id(layers: &Layers<'_>, mac: Option<&MacAddress>, log: &Log) -> &'static str {
    if from_node_files(layers, "etc/machine-id") {
        return "node files";
    }
    let image = read_in(layers.lower, "etc/machine-id");
    let Some(mac) = mac else { return "" };
    let id = machine_id_for(mac);
    if let Some(shared) = image.as_deref().and_then(machine_id_in) {
        log.warn(&format!(
            "the shared image's /etc/machine-id holds {shared}, which every node would share; this node uses {id}, derived from its MAC; empty the image's file (truncate -s 0 /etc/machine-id) or give each node its own in its node files"
        ));
    }
    match write_etc(layers.newroot, "machine-id", &format!("{id}\n"), 0o444, log) {
        Ok(()) => {
            log.info(&format!("machine-id {id}, derived from boot MAC {mac}"));
            "boot MAC"
        }
        Err(e) => {
            log.warn(&format!("{e}; the booted system picks a machine-id of its own"));
            ""
        }
    }
}

/// The name the node ends up with: the new root's `/etc/hostname` (which systemd and runit
/// prefer to the DHCP name), set now so the rest of the boot uses it; else the kernel's. An
/// image's `/etc/hostname` would name every node alike.
fn final_hostname(layers: &Layers<'_>, log: &Log) -> String {
    let kernel = kernel_hostname();
    let Some(name) = read_in(layers.newroot, "etc/hostname").as_deref().and_then(hostname_in) else {
        return kernel;
    };
    if !from_node_files(layers, "etc/hostname") {
        let over =
            if kernel.is_empty() || kernel == name { String::new() } else { format!(" over its DHCP name {kernel}") };
        log.warn(&format!(
            "the shared image's /etc/hostname names every node {name}; this node takes it{over}; give each node its own in its node files, or delete the image's file so the DHCP name stays"
        ));
    }
    if name != kernel {
        if let Err(errno) = rustix::system::sethostname(name.as_bytes()) {
            log.warn(&format!("setting the host name to {name} (from /etc/hostname) failed: {errno}"));
            return kernel;
        }
    }
    name
}

/// The kernel's host name; empty when none is set (the kernel's `(none)`).
pub fn kernel_hostname() -> String {
    let name = rustix::system::uname().nodename().to_string_lossy().into_owned();
    if name == "(none)" {
        String::new()
    } else {
        name
    }
}

/// Host keys are a node's identity to its users: the image's are every node's (and readable
/// by root on each); none at all stops sshd.
fn check_ssh_keys(layers: &Layers<'_>, log: &Log) {
    let present: Vec<&str> =
        SSH_KEYS.into_iter().filter(|k| kind_in(layers.newroot, &format!("etc/ssh/{k}")).is_some()).collect();
    let shared: Vec<&str> =
        present.iter().copied().filter(|k| !from_node_files(layers, &format!("etc/ssh/{k}"))).collect();
    if !shared.is_empty() {
        log.warn(&format!(
            "this node uses the shared image's ssh host keys ({}): every node has them; give each node its own in its node files (ssh/ssh_host_*_key) and delete them from the image",
            shared.iter().map(|k| format!("/etc/ssh/{k}")).collect::<Vec<_>>().join(", ")
        ));
    } else if present.is_empty() && ["usr/sbin/sshd", "sbin/sshd"].iter().any(|p| kind_in(layers.newroot, p).is_some())
    {
        log.warn("no ssh host keys in /etc/ssh: sshd will not start; give this node its own in its node files (ssh/ssh_host_ed25519_key and .pub, made with ssh-keygen -t ed25519 -N '' -f ...)");
    }
}

fn check_fstab(layers: &Layers<'_>, log: &Log) {
    let Some(text) = read_in(layers.newroot, "etc/fstab") else { return };
    for (n, line) in fstab_root_lines(&text) {
        log.warn(&format!(
            "/etc/fstab line {n} mounts / ({line}), but / is the overlay: mounting it fails at boot (systemd-remount-fs, mount -a); remove the line from the clients' fstab (node files), or from the image"
        ));
    }
}

/// The lease's DNS servers, unless the image's `/etc/resolv.conf` is managed by something
/// else (a symlink: systemd-resolved, resolvconf, NetworkManager) or the node files give one.
fn resolv_conf(layers: &Layers<'_>, lease: &Lease, log: &Log) {
    let Some(text) = lease.resolv_conf() else { return };
    match kind_in(layers.newroot, "etc/resolv.conf") {
        Some(FileType::Symlink) => {
            log.info("/etc/resolv.conf is a symlink (managed by another service): left alone");
            return;
        }
        Some(_) if from_node_files(layers, "etc/resolv.conf") => return,
        _ => {}
    }
    match write_etc(layers.newroot, "resolv.conf", &text, 0o644, log) {
        Ok(()) => log.info("/etc/resolv.conf: the DHCP lease's DNS servers"),
        Err(e) => log.warn(&e.to_string()),
    }
}

/// Leaves the booted system's network managers what they need to adopt the boot NIC without
/// removing its address, and warns once about a configuration that would take it down.
fn network(root: &Root, layers: &Layers<'_>, net: &BootNet<'_>, log: &Log) {
    let nic = &net.nic.name;
    let networkd = format!("{NETWORKD_DIR}/10-clusterroot-{nic}.network");
    for (path, text) in [(networkd.as_str(), networkd_unit(net)), (NM_CONF, nm_conf(&net.nic.mac))] {
        if let Err(e) = write_run(root, path, &text) {
            log.warn(&e.to_string());
        }
    }
    let ifupdown = std::iter::once("etc/network/interfaces".to_string()).chain(
        names_in(layers.newroot, "etc/network/interfaces.d")
            .into_iter()
            .map(|n| format!("etc/network/interfaces.d/{n}")),
    );
    for file in ifupdown {
        if let Some((n, line)) = read_in(layers.newroot, &file).and_then(|t| ifupdown_takes(&t, nic)) {
            log.warn(&format!(
                "/{file} line {n} ({line}) has ifupdown configure the boot NIC {nic}; at shutdown ifdown would take it down and the NFS root with it (the shutdown hangs); remove the stanza: clusterroot configured {nic}"
            ));
        }
    }
    if dhcpcd_enabled(layers) {
        let conf = read_in(layers.newroot, "etc/dhcpcd.conf").unwrap_or_default();
        if !dhcpcd_keeps(&conf, nic) {
            log.warn(&format!(
                "dhcpcd is enabled and /etc/dhcpcd.conf lets it de-configure the boot NIC {nic} when it stops, taking the NFS root with it; add the line 'persistent' (or 'denyinterfaces {nic}')"
            ));
        }
    }
}

/// Whether dhcpcd is installed and enabled: a runit service (Void's `/etc/runit/runsvdir`,
/// `/etc/service`, `/var/service`) or a systemd unit wanted at boot.
fn dhcpcd_enabled(layers: &Layers<'_>) -> bool {
    let installed =
        ["usr/sbin/dhcpcd", "sbin/dhcpcd", "usr/bin/dhcpcd"].iter().any(|p| kind_in(layers.newroot, p).is_some());
    let dirs = [
        "etc/runit/runsvdir/default",
        "etc/service",
        "var/service",
        "etc/systemd/system/multi-user.target.wants",
        "etc/systemd/system/network-online.target.wants",
    ];
    installed && dirs.iter().any(|d| names_in(layers.newroot, d).iter().any(|n| n.starts_with("dhcpcd")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(s: &str) -> MacAddress {
        s.parse().unwrap()
    }

    #[test]
    fn machine_ids_are_stable_distinct_and_v4() {
        let a = machine_id_for(&mac("52:54:00:77:00:0b"));
        assert_eq!(a, machine_id_for(&mac("52:54:00:77:00:0B")));
        assert_ne!(a, machine_id_for(&mac("52:54:00:77:00:0c")));
        assert_eq!(a.len(), 32);
        assert_eq!(&a[12..13], "4");
        assert!(matches!(&a[16..17], "8" | "9" | "a" | "b"));
        assert_eq!(machine_id_in(&format!("{a}\n")), Some(a.as_str()));
    }

    #[test]
    fn machine_id_files() {
        assert_eq!(machine_id_in(""), None);
        assert_eq!(machine_id_in("uninitialized\n"), None);
        assert_eq!(machine_id_in(&"0".repeat(32)), None);
        assert_eq!(machine_id_in("0123456789abcdef0123456789abcdeg"), None);
        assert!(machine_id_in("0123456789abcdef0123456789abcdef").is_some());
    }

    #[test]
    fn host_names() {
        assert_eq!(hostname_in("# comment\n\nnode11\n").as_deref(), Some("node11"));
        assert_eq!(hostname_in("bad name\n"), None);
        assert_eq!(hostname_in(""), None);
    }

    #[test]
    fn fstab_lines_mounting_root() {
        let t = "# / was on /dev/sda1\nUUID=abc / ext4 errors=remount-ro 0 1\n/dev/sdb1 /home ext4 defaults 0 2\n";
        assert_eq!(fstab_root_lines(t), vec![(2, "UUID=abc / ext4 errors=remount-ro 0 1".to_string())]);
        assert!(fstab_root_lines("# UNCONFIGURED FSTAB\nproc /proc proc defaults 0 0\n").is_empty());
    }

    #[test]
    fn ifupdown_stanzas() {
        let bad = "auto lo\niface lo inet loopback\n\nallow-hotplug ens2\niface ens2 inet dhcp\n";
        assert_eq!(ifupdown_takes(bad, "ens2"), Some((5, "iface ens2 inet dhcp".into())));
        assert_eq!(ifupdown_takes(bad, "eth0"), None);
        assert_eq!(ifupdown_takes("auto ens2\niface ens2 inet manual\n", "ens2"), None);
        assert_eq!(ifupdown_takes("iface ens2 inet static\n  address 10.0.0.2/24\n", "ens2"), None);
        assert!(ifupdown_takes("auto lo ens2\niface ens2 inet static\n", "ens2").is_some());
    }

    #[test]
    fn dhcpcd_configs() {
        assert!(dhcpcd_keeps("# x\npersistent\n", "ens2"));
        assert!(dhcpcd_keeps("denyinterfaces eth1 en*\n", "ens2"));
        assert!(dhcpcd_keeps("denyinterfaces ens?\n", "ens2"));
        assert!(!dhcpcd_keeps("denyinterfaces eth*\n", "ens2"));
        assert!(!dhcpcd_keeps("hostname\n#persistent\n", "ens2"));
        assert!(glob(b"*", b"") && glob(b"e*2", b"ens2") && !glob(b"e*3", b"ens2") && glob(b"*s*", b"ens2"));
        // A hostile pattern is linear, not exponential.
        let hostile = "*a".repeat(5000) + "b";
        assert!(!glob(hostile.as_bytes(), b"aaaaaaaaaaaaaaa"));
    }

    #[test]
    fn networkd_files() {
        let nic = Nic { name: "ens2".into(), mac: mac("52:54:00:77:00:0b"), ifindex: 2 };
        let lease = Lease::default();
        let dhcp = BootNet {
            nic: &nic,
            address: Ipv4Addr::new(10, 77, 0, 11),
            prefix: 24,
            lease: Some(&lease),
            gateway: None,
        };
        let t = networkd_unit(&dhcp);
        for want in [
            "MACAddress=52:54:00:77:00:0b\n",
            "Name=ens2\n",
            "KeepConfiguration=yes\n",
            "DHCP=ipv4\n",
            "SendRelease=no\n",
            "ClientIdentifier=mac\n",
        ] {
            assert!(t.contains(want), "{want} missing in {t}");
        }
        let fixed = BootNet { lease: None, gateway: Some(Ipv4Addr::new(10, 77, 0, 1)), ..dhcp };
        let t = networkd_unit(&fixed);
        assert!(t.contains("Address=10.77.0.11/24\nGateway=10.77.0.1\n"), "{t}");
        assert!(!t.contains("DHCP"));
        assert!(nm_conf(&nic.mac).contains("unmanaged-devices=mac:52:54:00:77:00:0b\n"));
    }
}
