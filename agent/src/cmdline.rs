//! Kernel command line → checked boot settings, with no I/O.
//!
//! Kernel syntax comes first (`root=`, `nfsroot=`, `ip=`, `BOOTIF=`, as in the kernel's
//! `Documentation/admin-guide/nfs/nfsroot.rst` and pxelinux), our own settings live under
//! `clusterroot.`. Anything malformed is an error naming the parameter, never a guess.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::lower::nfs::{NfsOption, NfsVersion};
use crate::mac::MacAddress;

/// Default for `clusterroot.timeout=`: how long to wait for link, devices and the server.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Default for `clusterroot.overlays=`: where node files live in the shared root.
pub const DEFAULT_OVERLAYS: &str = "/etc/overlays";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CmdlineError {
    #[error("{param}: {reason}; fix the kernel command line (all parameters: mkinitcpio -H clusterroot, or README.md's Boot parameters)")]
    BadParam { param: String, reason: String },
    #[error("unknown parameter {key}; known clusterroot parameters: {}", clusterroot_parameters())]
    Unknown { key: String },
    /// `clusterroot=off` with `rw` on a local lower: the booted system (sshd, systemd) would
    /// write its own identity into the image every client boots.
    #[error("clusterroot=off with rw: the booted system would write its host keys and machine-id into the shared image; boot clusterroot=off ro for maintenance, and change the image from a normal boot (chroot /run/rootfs/lower, or crctl image edit)")]
    PlainRw,
}

fn bad(key: &str, value: Option<&str>, reason: impl Into<String>) -> CmdlineError {
    let param = match value {
        Some(v) => format!("{key}={v}"),
        None => key.to_string(),
    };
    CmdlineError::BadParam { param, reason: reason.into() }
}

/// Whether the shared root gets an overlay (`clusterroot=off` boots the lower as it is).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Overlay,
    Plain,
}

/// Where a node's files come from: `clusterroot.nodefiles=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeFilesSource {
    /// Default: `<overlays>/<mac>` and `<overlays>/<mac>*.tar*` in the lower (the seed's layout,
    /// `clusterroot.overlays=`).
    Lower,
    /// `clusterroot.nodefiles=[<server-ip>:]<dir>`: the node's own NFS export `<dir>/<mac>`,
    /// laid over `/etc` as a tree; the server defaults to the root's NFS server.
    Nfs { server: Option<Ipv4Addr>, dir: String },
    /// `clusterroot.nodefiles=LABEL=…|UUID=…|PARTUUID=…|PARTLABEL=…|/dev/…`: a local
    /// filesystem laid out as `/etc/overlays` is (`<mac>/`, `<mac>*.tar*`), mounted read-only.
    Device(crate::lower::block::DeviceRef),
    /// `clusterroot.nodefiles=zfs:<pool>/<dataset>`: the same, in a dataset of the root's pool.
    Zfs(crate::lower::zfs::Dataset),
    /// `clusterroot.nodefiles=none`: no node files.
    None,
}

/// `nfsroot=[<server-ip>:]<root-dir>[,<nfs-options>]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsRoot {
    pub server: Option<Ipv4Addr>,
    /// Export path; `%s` is replaced by the client's address, as the kernel does.
    pub path: String,
    pub version: NfsVersion,
    /// Options other than `vers`/`nfsvers`/`minorversion`/`ro`/`rw`, in order.
    pub options: Vec<NfsOption>,
}

impl NfsRoot {
    /// The export path with `%s` replaced by the client address.
    pub fn path_for(&self, client: Option<Ipv4Addr>) -> String {
        match client {
            Some(ip) => self.path.replace("%s", &ip.to_string()),
            None => self.path.clone(),
        }
    }

    pub fn option(&self, key: &str) -> Option<&NfsOption> {
        self.options.iter().find(|o| o.key == key)
    }
}

/// The static part of `ip=`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StaticIp {
    pub client: Ipv4Addr,
    pub prefix: u8,
    pub server: Option<Ipv4Addr>,
    pub gateway: Option<Ipv4Addr>,
    pub hostname: Option<String>,
    pub device: Option<String>,
}

/// `ip=` in the kernel's syntax.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpConfig {
    /// No `ip=`: use the address the interface already has.
    Unset,
    /// `ip=off` / `ip=none`, or autoconf `off` without a client address: configure nothing.
    Off { device: Option<String>, server: Option<Ipv4Addr> },
    /// `ip=dhcp`, `ip=on`, `ip=any`, `ip=bootp`, `ip=rarp`, `ip=both` or such an autoconf field.
    Dhcp { device: Option<String>, server: Option<Ipv4Addr>, hostname: Option<String> },
    /// A client address, netmask, gateway, host name and device.
    Static(StaticIp),
}

impl IpConfig {
    pub fn device(&self) -> Option<&str> {
        match self {
            IpConfig::Unset => None,
            IpConfig::Off { device, .. } | IpConfig::Dhcp { device, .. } => device.as_deref(),
            IpConfig::Static(s) => s.device.as_deref(),
        }
    }

    pub fn server(&self) -> Option<Ipv4Addr> {
        match self {
            IpConfig::Unset => None,
            IpConfig::Off { server, .. } | IpConfig::Dhcp { server, .. } => *server,
            IpConfig::Static(s) => s.server,
        }
    }
}

/// What `root=` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSpec {
    None,
    Nfs,
    Device(crate::lower::block::DeviceRef),
    /// `<pool>/<dataset>` from `root=zfs:`, `root=ZFS=`, `zfs=` or `ZFS=`.
    Zfs(ZfsRoot),
    /// `zfs=bootfs|auto`, `root=zfs:AUTO`: the pool's bootfs property, which only the zfs
    /// hook's own handler reads.
    ZfsAuto(String),
    Other(String),
}

/// The master's root dataset and the parameter that named it (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZfsRoot {
    pub dataset: crate::lower::zfs::Dataset,
    pub param: String,
}

/// Everything the agent takes from the kernel command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootConfig {
    /// `root=` as given (`/dev/nfs`, `LABEL=...`, ...).
    pub root: Option<String>,
    pub nfsroot: Option<NfsRoot>,
    pub ip: IpConfig,
    /// The boot NIC named by pxelinux (`BOOTIF=`).
    pub bootif: Option<MacAddress>,
    pub mode: Mode,
    /// `clusterroot.size=`: tmpfs `size=` for the upper (default: the tmpfs default).
    pub size: Option<String>,
    /// `clusterroot.overlays=`: absolute path in the shared root holding node files.
    pub overlays: String,
    /// `clusterroot.nodefiles=`: where the node files come from (default: `overlays` in the lower).
    pub nodefiles: NodeFilesSource,
    /// `clusterroot.timeout=`: deadline for link, devices and server.
    pub timeout: Duration,
    pub debug: bool,
    /// `nfs.nfs4_unique_id=`: an NFSv4 identity chosen by the admin; respected as given.
    pub nfs4_unique_id: Option<String>,
    /// `rootfstype=`: filesystem of a local lower (probed when absent).
    pub rootfstype: Option<String>,
    /// `rootflags=`: mount options of a local lower.
    pub rootflags: Option<String>,
    /// `rw` (the last of `ro`/`rw` wins): keep a local lower writable, so the admin can update
    /// the image from the running master. An NFS lower is always read-only.
    pub rw: bool,
    /// The root dataset from `zfs=`/`ZFS=` (as the ZFS mkinitcpio hooks spell it) or
    /// `root=zfs:`/`root=ZFS=`.
    /// Only `RootSpec::Zfs` or `RootSpec::ZfsAuto`.
    pub zfs: Option<RootSpec>,
    /// `zfs_force=1` and `zfs_import_dir=`, the zfs hook's import parameters.
    pub zfs_import: crate::lower::zfs::ImportOptions,
    /// `clusterroot.image=default|<version>`: `root=`/`nfsroot=` name an image store, and the
    /// lower is this version of it, pinned for the boot.
    pub image: Option<crate::lower::image::ImageChoice>,
}

impl Default for BootConfig {
    fn default() -> Self {
        BootConfig {
            root: None,
            nfsroot: None,
            ip: IpConfig::Unset,
            bootif: None,
            mode: Mode::Overlay,
            size: None,
            overlays: DEFAULT_OVERLAYS.to_string(),
            nodefiles: NodeFilesSource::Lower,
            timeout: DEFAULT_TIMEOUT,
            debug: false,
            nfs4_unique_id: None,
            rootfstype: None,
            rootflags: None,
            rw: false,
            zfs: None,
            zfs_import: crate::lower::zfs::ImportOptions::default(),
            image: None,
        }
    }
}

/// Splits a command line the way the kernel does: spaces separate words, double quotes
/// group, and `--` ends the kernel's part (the rest belongs to init).
pub fn split_words(cmdline: &str) -> Vec<String> {
    // Valid UTF-8 in, valid UTF-8 out: the byte splitter only cuts at whole characters.
    split_words_bytes(cmdline.as_bytes()).into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect()
}

/// [`split_words`] over the raw bytes of `/proc/cmdline`, which need not be UTF-8 (a boot
/// menu's encoding, a stray byte in `console=`). Valid UTF-8 splits exactly as text does;
/// bytes that are not UTF-8 are neither spaces nor quotes, so they stay inside their word.
pub fn split_words_bytes(cmdline: &[u8]) -> Vec<Vec<u8>> {
    let mut words = Vec::new();
    let mut cur = Vec::new();
    let mut in_quotes = false;
    let mut started = false;
    for chunk in cmdline.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => {
                    in_quotes = !in_quotes;
                    started = true;
                }
                c if c.is_whitespace() && !in_quotes => {
                    if started {
                        words.push(std::mem::take(&mut cur));
                        started = false;
                    }
                }
                c => {
                    cur.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                    started = true;
                }
            }
        }
        if !chunk.invalid().is_empty() {
            cur.extend_from_slice(chunk.invalid());
            started = true;
        }
    }
    if started {
        words.push(cur);
    }
    if let Some(end) = words.iter().position(|w| w == b"--") {
        words.truncate(end);
    }
    words
}

/// Every kernel parameter [`BootConfig::parse_bytes`] reads: the kernel's and the zfs hook's
/// syntax first, then ours. README.md's Boot parameters table has a row for each and no other
/// (scripts/check-sources). A word with any other key is left alone, whatever bytes it holds,
/// but for an unknown `clusterroot.*`, which is refused as a typo.
pub const PARAMETERS: &[&str] = &[
    "root",
    "ro",
    "rw",
    "rootfstype",
    "rootflags",
    "zfs",
    "ZFS",
    "zfs_force",
    "zfs_import_dir",
    "nfsroot",
    "ip",
    "BOOTIF",
    "nfs.nfs4_unique_id",
    "clusterroot",
    "clusterroot.size",
    "clusterroot.overlays",
    "clusterroot.nodefiles",
    "clusterroot.image",
    "clusterroot.timeout",
    "clusterroot.debug",
];

/// Whether the parser reads a word with this key (the text before the first `=`).
fn is_ours(key: &[u8]) -> bool {
    key.starts_with(b"clusterroot.") || PARAMETERS.iter().any(|k| k.as_bytes() == key)
}

/// Our own parameters, for the message that refuses an unknown one.
fn clusterroot_parameters() -> String {
    let ours: Vec<String> =
        PARAMETERS.iter().filter(|k| k.starts_with("clusterroot")).map(|k| format!("{k}=")).collect();
    ours.join(", ")
}

impl BootConfig {
    /// Parses a command line given as text (tests, tools); see [`BootConfig::parse_bytes`].
    pub fn parse(cmdline: &str) -> Result<BootConfig, CmdlineError> {
        BootConfig::parse_bytes(cmdline.as_bytes())
    }

    /// Parses the bytes of `/proc/cmdline`. Later words win over earlier ones, as in the kernel.
    /// A word that is not UTF-8 is ignored unless its key is one this parser reads; then it is
    /// an error naming that key (its value cannot be shown faithfully, and is not guessed at).
    pub fn parse_bytes(cmdline: &[u8]) -> Result<BootConfig, CmdlineError> {
        let mut cfg = BootConfig::default();
        let mut nfsroot_raw: Option<String> = None;
        let mut zfs_raw: Option<(String, String)> = None;
        for word in split_words_bytes(cmdline) {
            let (key, value) = match word.iter().position(|&b| b == b'=') {
                Some(i) => (&word[..i], Some(&word[i + 1..])),
                None => (&word[..], None),
            };
            if !is_ours(key) {
                continue;
            }
            let (key, value) = match (std::str::from_utf8(key), value.map(std::str::from_utf8).transpose()) {
                (Ok(k), Ok(v)) => (k.to_string(), v.map(str::to_string)),
                (k, _) => {
                    let param = k.map_or_else(|_| String::from_utf8_lossy(key).into_owned(), str::to_string);
                    return Err(CmdlineError::BadParam {
                        param,
                        reason:
                            "holds bytes that are not UTF-8 text (a stray or non-ASCII byte); retype it in plain ASCII"
                                .into(),
                    });
                }
            };
            let v = value.as_deref();
            match key.as_str() {
                "root" => cfg.root = value.clone(),
                "ro" if value.is_none() => cfg.rw = false,
                "rw" if value.is_none() => cfg.rw = true,
                "rootfstype" => cfg.rootfstype = value.clone().filter(|v| !v.is_empty()),
                "rootflags" => cfg.rootflags = value.clone().filter(|v| !v.is_empty()),
                "zfs" | "ZFS" => zfs_raw = value.clone().filter(|v| !v.is_empty()).map(|v| (key.clone(), v)),
                "zfs_force" => cfg.zfs_import.force = !matches!(v, Some("0") | Some("no") | Some("off")),
                "zfs_import_dir" => {
                    cfg.zfs_import.dir = match v {
                        Some(d) if d.starts_with('/') => Some(d.to_string()),
                        _ => {
                            return Err(bad(
                                "zfs_import_dir",
                                v,
                                "needs an absolute directory, such as /dev/disk/by-id",
                            ))
                        }
                    }
                }
                "nfsroot" => nfsroot_raw = value.clone(),
                "ip" => cfg.ip = parse_ip(v.unwrap_or(""))?,
                "BOOTIF" => {
                    let raw = v.unwrap_or("");
                    cfg.bootif = Some(MacAddress::from_bootif(raw).map_err(|e| bad("BOOTIF", v, e.to_string()))?);
                }
                "clusterroot" => {
                    cfg.mode = match v {
                        Some("off") | Some("0") | Some("no") => Mode::Plain,
                        None | Some("on") | Some("1") | Some("yes") => Mode::Overlay,
                        Some(_) => return Err(bad("clusterroot", v, "expected clusterroot=off or clusterroot=on")),
                    }
                }
                "clusterroot.size" => cfg.size = Some(parse_size(v)?),
                "clusterroot.overlays" => cfg.overlays = parse_overlays(v)?,
                "clusterroot.nodefiles" => cfg.nodefiles = parse_nodefiles(v)?,
                "clusterroot.timeout" => cfg.timeout = parse_timeout(v)?,
                "clusterroot.image" => {
                    cfg.image = Some(
                        crate::lower::image::ImageChoice::parse(v.unwrap_or(""))
                            .map_err(|reason| bad("clusterroot.image", v, reason))?,
                    )
                }
                "clusterroot.debug" => {
                    cfg.debug = match v {
                        None | Some("1") | Some("y") | Some("yes") | Some("on") => true,
                        Some("0") | Some("n") | Some("no") | Some("off") => false,
                        Some(_) => {
                            return Err(bad(
                                "clusterroot.debug",
                                v,
                                "expected clusterroot.debug or clusterroot.debug=0",
                            ))
                        }
                    }
                }
                "nfs.nfs4_unique_id" => {
                    cfg.nfs4_unique_id = match v {
                        Some(s) if !s.is_empty() => Some(s.to_string()),
                        _ => return Err(bad("nfs.nfs4_unique_id", v, "needs a value")),
                    }
                }
                k if k.starts_with("clusterroot.") => return Err(CmdlineError::Unknown { key: k.to_string() }),
                _ => {}
            }
        }
        // dracut's spelling, root=nfs:... or root=nfs4:..., names the same thing as nfsroot=.
        let dracut_nfs = cfg.root.as_deref().and_then(dracut_nfs_root);
        match (nfsroot_raw, dracut_nfs) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "root",
                    cfg.root.as_deref(),
                    "nfsroot= names the NFS root too: give one of them (nfsroot= or root=nfs4:)",
                ))
            }
            (Some(raw), None) => cfg.nfsroot = Some(parse_nfsroot(&raw)?),
            (None, Some(raw)) => cfg.nfsroot = Some(parse_nfs_target("root", cfg.root.as_deref().unwrap_or(""), &raw)?),
            (None, None) => {}
        }
        cfg.zfs = parse_zfs_root(zfs_raw, cfg.root.as_deref())?;
        Ok(cfg)
    }

    /// Whether the command line asks for an NFS lower (`nfsroot=`, `root=/dev/nfs`, or
    /// dracut's `root=nfs:`/`root=nfs4:`, which set `nfsroot` when parsed).
    pub fn wants_nfs(&self) -> bool {
        self.nfsroot.is_some() || self.root.as_deref() == Some("/dev/nfs")
    }

    /// Whether the agent mounts this root itself (rather than laying its overlay over what
    /// another handler mounted): the root claim of [`crate::claim`], seen through the checked
    /// parser. An NFS root, a local block device, or a named ZFS dataset; not the pool's
    /// bootfs, nor any other `root=`.
    pub fn mounts_root(&self) -> bool {
        if self.wants_nfs() {
            return true;
        }
        match self.root_spec() {
            RootSpec::Nfs | RootSpec::Device(_) | RootSpec::Zfs(_) => true,
            RootSpec::None => matches!(self.ip, IpConfig::Dhcp { .. }),
            RootSpec::ZfsAuto(_) | RootSpec::Other(_) => false,
        }
    }

    /// What `root=` (and `zfs=`) name, in checked form.
    pub fn root_spec(&self) -> RootSpec {
        if let Some(z) = &self.zfs {
            return z.clone();
        }
        match self.root.as_deref() {
            None | Some("") => RootSpec::None,
            Some("/dev/nfs") => RootSpec::Nfs,
            Some(r) if dracut_nfs_root(r).is_some() => RootSpec::Nfs,
            Some(r) => {
                if let Some(d) = crate::lower::block::DeviceRef::parse(r) {
                    RootSpec::Device(d)
                } else {
                    RootSpec::Other(r.to_string())
                }
            }
        }
    }

    /// The NFS server: from `nfsroot=`, else the server field of `ip=`.
    pub fn nfs_server(&self) -> Option<Ipv4Addr> {
        self.nfsroot.as_ref().and_then(|n| n.server).or_else(|| self.ip.server())
    }
}

/// The root dataset: `zfs=`/`ZFS=` wins, else `root=zfs:<ds>` (dracut) or `root=ZFS=<ds>`
/// (GRUB). Bare `root=zfs` without `zfs=` and the automatic names ([`ZFS_AUTO_WORDS`]) mean
/// the pool's bootfs: `RootSpec::ZfsAuto`, left to the zfs hook.
fn parse_zfs_root(zfs: Option<(String, String)>, root: Option<&str>) -> Result<Option<RootSpec>, CmdlineError> {
    let (param, name) = match (zfs, root) {
        (Some((key, v)), _) => (format!("{key}={v}"), v),
        (None, Some(r)) if r.starts_with("zfs:") || r.starts_with("ZFS=") => (format!("root={r}"), r[4..].to_string()),
        (None, Some(r @ ("zfs" | "ZFS"))) => return Ok(Some(RootSpec::ZfsAuto(format!("root={r}")))),
        (None, _) => return Ok(None),
    };
    let name = name.as_str();
    if is_zfs_auto(name) {
        return Ok(Some(RootSpec::ZfsAuto(param)));
    }
    match crate::lower::zfs::Dataset::parse(name) {
        Ok(dataset) => Ok(Some(RootSpec::Zfs(ZfsRoot { dataset, param }))),
        Err(reason) => Err(CmdlineError::BadParam { param, reason }),
    }
}

/// The smallest `clusterroot.size=` taken as meant: 1 MiB. Below it is almost surely a number
/// without its unit (tmpfs reads a bare number as bytes), and no root fits in it anyway.
pub const MIN_SIZE: u64 = 1 << 20;
/// The largest `clusterroot.size=`: 1 PiB, far beyond any node's memory and far inside `u64`.
pub const MAX_SIZE: u64 = 1 << 50;

/// `clusterroot.size=<n>[K|M|G|T]` (binary units, either case; a bare number is bytes) between
/// 1M and 1024T, or `<n>%` of RAM from 1% to 100%. Stored as tmpfs's `size=` gets it, with the
/// unit upper-cased and leading zeros dropped: the kernel's `memparse` would read `010G` as
/// octal, and `0x...` as hex, so only plain decimal reaches it.
fn parse_size(v: Option<&str>) -> Result<String, CmdlineError> {
    let key = "clusterroot.size";
    let s = v.unwrap_or("");
    let (digits, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    if digits.is_empty() {
        return Err(bad(
            key,
            v,
            "expected a size such as 512M, 2G or 50% (K, M, G, T are powers of 1024; % is of RAM)",
        ));
    }
    // Only digits: parsing fails on overflow alone.
    let n = digits.parse::<u64>().ok();
    if unit == "%" {
        return match n {
            Some(p @ 1..=100) => Ok(format!("{p}%")),
            _ => Err(bad(key, v, "a share of RAM must be from 1% to 100%")),
        };
    }
    let shift = match unit {
        "" => 0,
        "k" | "K" => 10,
        "m" | "M" => 20,
        "g" | "G" => 30,
        "t" | "T" => 40,
        _ => {
            return Err(bad(
                key,
                v,
                format!("unit '{unit}' is not one of K, M, G, T (powers of 1024) or %; write 512M, 2G or 50%"),
            ))
        }
    };
    match n.and_then(|n| Some((n, n.checked_mul(1 << shift)?))) {
        Some((_, 0)) => Err(bad(key, v, "is zero; give a size such as 512M, 2G or 50%")),
        Some((_, b)) if b < MIN_SIZE => Err(bad(
            key,
            v,
            format!("is {b} bytes, too small for the upper; a number without a unit counts bytes, so add M or G (512M, 2G); the least is 1M"),
        )),
        Some((n, b)) if b <= MAX_SIZE => Ok(format!("{n}{}", unit.to_ascii_uppercase())),
        _ => Err(bad(key, v, "is too large; the most is 1024T (1 PiB); for all of RAM write 100%")),
    }
}

/// An absolute path with `//` and `/./` collapsed and a trailing `/` dropped (`/` stays `/`).
/// `..` is refused, not resolved: without the filesystem (symlinks) it cannot be resolved
/// truthfully. The error is the problem, for the caller's message.
fn normalize_dir(s: &str) -> Result<String, &'static str> {
    if s.is_empty() {
        return Err("is empty");
    }
    if !s.starts_with('/') {
        return Err("is not an absolute path");
    }
    if s.chars().any(char::is_control) {
        return Err("has a control character");
    }
    let mut out = String::new();
    for part in s.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("has a '..' component"),
            p => {
                out.push('/');
                out.push_str(p);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// `clusterroot.overlays=<dir>`: a directory strictly below `/etc`, normalized. The node files
/// are laid over `/etc` and the directory is hidden in the booted system, so `/etc` itself
/// would hide all of `/etc`, and `/usr` would white out `/usr`.
fn parse_overlays(v: Option<&str>) -> Result<String, CmdlineError> {
    let key = "clusterroot.overlays";
    let dir = normalize_dir(v.unwrap_or(""))
        .map_err(|why| bad(key, v, format!("{why}; give a directory strictly below /etc, such as /etc/overlays")))?;
    if dir == "/etc" {
        return Err(bad(
            key,
            v,
            "is /etc itself, which the booted system would lose (the directory is hidden); give a directory strictly below /etc, such as /etc/overlays",
        ));
    }
    if !dir.starts_with("/etc/") {
        return Err(bad(
            key,
            v,
            format!("{dir} is not below /etc; the node files must be in a directory strictly below /etc, such as /etc/overlays"),
        ));
    }
    Ok(dir)
}

/// `clusterroot.nodefiles=none | LABEL=… | UUID=… | PARTUUID=… | PARTLABEL=… | /dev/… |
/// zfs:<pool>/<dataset> | [<server-ip>:]<dir>`.
fn parse_nodefiles(v: Option<&str>) -> Result<NodeFilesSource, CmdlineError> {
    use crate::lower::block::DeviceRef;
    let key = "clusterroot.nodefiles";
    let s = v.unwrap_or("");
    if s == "none" {
        return Ok(NodeFilesSource::None);
    }
    if ["LABEL=", "UUID=", "PARTUUID=", "PARTLABEL="].iter().any(|p| s.starts_with(p)) {
        return DeviceRef::parse(s).map(NodeFilesSource::Device).ok_or_else(|| {
            bad(key, v, "names no device; write LABEL=<label>, UUID=<uuid>, PARTUUID=<uuid> or PARTLABEL=<label>")
        });
    }
    if s == "/dev" || s.starts_with("/dev/") {
        // DeviceRef::parse refuses /dev/nfs, the kernel's name for an NFS root.
        let dev = normalize_dir(s).ok().filter(|d| d.starts_with("/dev/"));
        return dev.as_deref().and_then(DeviceRef::parse).map(NodeFilesSource::Device).ok_or_else(|| {
            bad(key, v, "names no block device; write /dev/<device> (no '..'), or LABEL=, UUID=, PARTUUID=, PARTLABEL=")
        });
    }
    if let Some(name) = s.strip_prefix("zfs:") {
        if name.contains(['@', '#']) {
            return Err(bad(key, v, "names a snapshot or bookmark; write zfs:<pool>/<dataset>, a filesystem dataset"));
        }
        let ds = crate::lower::zfs::Dataset::parse(name)
            .map_err(|reason| CmdlineError::BadParam { param: format!("{key}={s}"), reason })?;
        if !ds.name().contains('/') {
            return Err(bad(key, v, "names only a pool; write zfs:<pool>/<dataset>"));
        }
        return Ok(NodeFilesSource::Zfs(ds));
    }
    let (server, dir) = if s.starts_with('/') {
        (None, s)
    } else if let Some((host, dir)) = s.split_once(':') {
        let ip = host.parse::<Ipv4Addr>().map_err(|_| {
            let why = "is not an IPv4 address; the initramfs has no DNS, so name the server by its address";
            bad(key, v, format!("server '{host}' {why}"))
        })?;
        (Some(ip), dir)
    } else {
        return Err(bad(
            key,
            v,
            "expected none, [<server-ip>:]<dir> (NFS), LABEL=, UUID=, PARTUUID=, PARTLABEL=, /dev/<device> or zfs:<pool>/<dataset>",
        ));
    };
    let dir = normalize_dir(dir).map_err(|why| {
        bad(key, v, format!("NFS directory '{dir}' {why}; write [<server-ip>:]<dir>, such as 10.0.0.1:/srv/nodes"))
    })?;
    if dir == "/" {
        return Err(bad(
            key,
            v,
            "NFS directory is /; name the directory that holds the nodes' exports, such as /srv/nodes",
        ));
    }
    Ok(NodeFilesSource::Nfs { server, dir })
}

fn parse_timeout(v: Option<&str>) -> Result<Duration, CmdlineError> {
    match v.and_then(|s| s.parse::<u64>().ok()) {
        Some(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(bad("clusterroot.timeout", v, "expected whole seconds between 1 and 3600")),
    }
}

fn parse_ipv4(key: &str, raw: &str, field: &str, s: &str) -> Result<Option<Ipv4Addr>, CmdlineError> {
    if s.is_empty() {
        return Ok(None);
    }
    s.parse::<Ipv4Addr>().map(Some).map_err(|_| bad(key, Some(raw), format!("{field} '{s}' is not an IPv4 address")))
}

/// The kernel's default netmask for an address when `ip=` leaves it empty (by class).
pub fn classful_prefix(ip: Ipv4Addr) -> u8 {
    match ip.octets()[0] {
        0..=127 => 8,
        128..=191 => 16,
        _ => 24,
    }
}

/// The prefix length of a contiguous netmask (`255.255.255.0` → 24), else `None`.
pub fn netmask_prefix(mask: Ipv4Addr) -> Option<u8> {
    let m = u32::from(mask);
    let ones = m.leading_ones();
    (m.checked_shl(ones).unwrap_or(0) == 0).then_some(ones as u8)
}

/// The `ip=` words that ask for DHCP, alone or in the autoconf field: the kernel's
/// (`Documentation/admin-guide/nfs/nfsroot.rst`). The parser and the root claim
/// ([`crate::claim`]) both read this list.
pub const DHCP_WORDS: &[&str] = &["on", "any", "dhcp", "bootp", "rarp", "both"];

/// The ZFS root names that mean the pool's `bootfs` property rather than a dataset, in
/// `zfs=`, `ZFS=`, `root=zfs:` and `root=ZFS=` alike: the zfs hooks' `auto` and `bootfs`,
/// `zfs_auto`, and dracut's `AUTO`. Only the zfs hook's own handler reads `bootfs`.
pub const ZFS_AUTO_WORDS: &[&str] = &["auto", "bootfs", "zfs_auto", "AUTO"];

pub(crate) fn is_dhcp_word(s: &str) -> bool {
    DHCP_WORDS.contains(&s)
}

pub(crate) fn is_zfs_auto(name: &str) -> bool {
    ZFS_AUTO_WORDS.contains(&name)
}

fn valid_ifname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.contains(['/', ':'])
        && !s.chars().any(char::is_whitespace)
}

fn valid_hostname(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
}

/// `ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>[:<dns0>:<dns1>:<ntp0>]`,
/// or `ip=off|none|dhcp|on|any|...`.
pub fn parse_ip(raw: &str) -> Result<IpConfig, CmdlineError> {
    let key = "ip";
    if raw.is_empty() {
        return Err(bad(key, Some(raw), "is empty; give ip=off, ip=dhcp or ip=<client-ip>:<server-ip>:<gw-ip>:<netmask>:<hostname>:<device>:<autoconf>"));
    }
    if raw == "dhcp6" || raw == "auto6" || raw.ends_with(":dhcp6") || raw.ends_with(":auto6") {
        return Err(bad(
            key,
            Some(raw),
            "IPv6 autoconfiguration is not supported; use ip=dhcp (DHCPv4) or a static IPv4 address",
        ));
    }
    if !raw.contains(':') {
        if raw == "off" || raw == "none" {
            return Ok(IpConfig::Off { device: None, server: None });
        }
        if is_dhcp_word(raw) {
            return Ok(IpConfig::Dhcp { device: None, server: None, hostname: None });
        }
    }
    let fields: Vec<&str> = raw.split(':').collect();
    if fields.len() > 10 {
        return Err(bad(key, Some(raw), format!("has {} fields, at most 10 are allowed", fields.len())));
    }
    let f = |i: usize| fields.get(i).copied().unwrap_or("");
    let client = parse_ipv4(key, raw, "client-ip", f(0))?;
    let server = parse_ipv4(key, raw, "server-ip", f(1))?;
    let gateway = parse_ipv4(key, raw, "gw-ip", f(2))?;
    let netmask = parse_ipv4(key, raw, "netmask", f(3))?;
    let hostname = match f(4) {
        "" => None,
        h if valid_hostname(h) => Some(h.to_string()),
        h => return Err(bad(key, Some(raw), format!("hostname '{h}' is not a valid host name"))),
    };
    let device = match f(5) {
        "" => None,
        d if valid_ifname(d) => Some(d.to_string()),
        d => return Err(bad(key, Some(raw), format!("device '{d}' is not an interface name"))),
    };
    for (i, field) in ["dns0-ip", "dns1-ip", "ntp0-ip"].iter().enumerate() {
        parse_ipv4(key, raw, field, f(7 + i))?;
    }
    let autoconf = f(6);
    let prefix = match netmask {
        Some(m) => Some(
            netmask_prefix(m).ok_or_else(|| bad(key, Some(raw), format!("netmask '{m}' is not a contiguous mask")))?,
        ),
        None => None,
    };
    match (autoconf, client) {
        ("" | "off" | "none", Some(client)) => Ok(IpConfig::Static(StaticIp {
            client,
            prefix: prefix.unwrap_or_else(|| classful_prefix(client)),
            server,
            gateway,
            hostname,
            device,
        })),
        ("" | "off" | "none", None) => Ok(IpConfig::Off { device, server }),
        (a, _) if is_dhcp_word(a) => Ok(IpConfig::Dhcp { device, server, hostname }),
        (a, _) => Err(bad(
            key,
            Some(raw),
            format!("autoconf '{a}' is not one of off, none, on, any, dhcp, bootp, rarp, both"),
        )),
    }
}

/// dracut's NFS root, `root=nfs:[<server-ip>:]<root-dir>[:<nfs-options>]` or `root=nfs4:...`
/// (`dracut.cmdline(7)`), in `nfsroot=`'s form: `<server-ip>:<root-dir>[,<nfs-options>]`, with
/// `vers=4` added for `nfs4:` unless the options name a version. `None` for any other root.
fn dracut_nfs_root(root: &str) -> Option<String> {
    let (rest, v4) = match root.strip_prefix("nfs4:") {
        Some(r) => (r, true),
        None => (root.strip_prefix("nfs:")?, false),
    };
    // The root-dir starts with '/': a server before it ends at the ':' before that '/', and
    // options follow the next ':' after it.
    let start = rest.find(":/").map_or(0, |i| i + 1);
    let (target, opts) = match rest[start..].find(':') {
        Some(i) => (&rest[..start + i], Some(&rest[start + i + 1..])),
        None => (rest, None),
    };
    let mut opts: Vec<String> = opts.unwrap_or("").split(',').filter(|o| !o.is_empty()).map(str::to_string).collect();
    let names_version = opts.iter().any(|o| {
        let k = o.split('=').next().unwrap_or("");
        matches!(k, "vers" | "nfsvers" | "v3" | "v4" | "v2")
    });
    if v4 && !names_version {
        opts.insert(0, "vers=4".to_string());
    }
    let mut out = target.to_string();
    for o in opts {
        out.push(',');
        out.push_str(&o);
    }
    Some(out)
}

/// `nfsroot=[<server-ip>:]<root-dir>[,<nfs-options>]`.
pub fn parse_nfsroot(raw: &str) -> Result<NfsRoot, CmdlineError> {
    parse_nfs_target("nfsroot", raw, raw)
}

/// An NFS root in `nfsroot=`'s form (`raw`), given as `key`=`given` (for messages).
fn parse_nfs_target(key: &'static str, given: &str, raw: &str) -> Result<NfsRoot, CmdlineError> {
    let (target, opts) = match raw.split_once(',') {
        Some((t, o)) => (t, Some(o)),
        None => (raw, None),
    };
    let (server, path) = match target.split_once(':') {
        Some((host, path)) => {
            let ip = host.parse::<Ipv4Addr>().map_err(|_| {
                bad(key, Some(given), format!(
                    "server '{host}' is not an IPv4 address; the initramfs has no DNS, so name the server by its address"
                ))
            })?;
            (Some(ip), path)
        }
        None => (None, target),
    };
    if !path.starts_with('/') {
        return Err(bad(key, Some(given), format!("root-dir '{path}' must be an absolute path on the server")));
    }
    let mut root = NfsRoot { server, path: path.to_string(), version: NfsVersion::Default, options: Vec::new() };
    let mut minor: Option<u8> = None;
    let mut major: Option<u8> = None;
    for opt in opts.unwrap_or("").split(',').filter(|o| !o.is_empty()) {
        let (k, v) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (opt, None),
        };
        if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
            return Err(bad(key, Some(given), format!("option '{opt}' is not an NFS mount option")));
        }
        if v == Some("") {
            return Err(bad(key, Some(given), format!("option '{k}=' has no value")));
        }
        match (k, v) {
            ("vers" | "nfsvers", Some(ver)) => {
                let (ma, mi) = match ver {
                    "3" => (3, None),
                    "4" => (4, None),
                    "4.0" => (4, Some(0)),
                    "4.1" => (4, Some(1)),
                    "4.2" => (4, Some(2)),
                    _ => {
                        return Err(bad(
                            key,
                            Some(given),
                            format!("NFS version '{ver}' is not supported; use 3, 4, 4.0, 4.1 or 4.2"),
                        ))
                    }
                };
                major = Some(ma);
                if mi.is_some() {
                    minor = mi;
                }
            }
            ("minorversion", Some(m)) => match m {
                "0" | "1" | "2" => minor = m.parse().ok(),
                _ => return Err(bad(key, Some(given), format!("minorversion '{m}' is not 0, 1 or 2"))),
            },
            ("v3", None) => major = Some(3),
            ("v4", None) => major = Some(4),
            ("v2", None) => return Err(bad(key, Some(given), "NFSv2 is not supported; use vers=3 or vers=4")),
            // The lower is always mounted read-only: `ro` is a no-op, `rw` cannot be honoured.
            ("ro", None) | ("rw", None) => {}
            (k, v) => root.options.push(NfsOption { key: k.to_string(), value: v.map(str::to_string) }),
        }
    }
    root.version = match (major, minor) {
        (Some(3), Some(_)) => return Err(bad(key, Some(given), "minorversion only applies to NFSv4")),
        (Some(3), None) => NfsVersion::V3,
        (Some(4), None) => NfsVersion::V4Any,
        (None, Some(m)) | (Some(4), Some(m)) => NfsVersion::V4(m),
        _ => NfsVersion::Default,
    };
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every parameter of the list is one the parser takes (none is refused as unknown), and an
    /// unknown `clusterroot.*` is refused with the whole list of ours.
    #[test]
    fn parameters_lists_what_the_parser_reads() {
        for key in PARAMETERS {
            for word in [key.to_string(), format!("{key}=x")] {
                let got = BootConfig::parse(&word);
                assert!(!matches!(got, Err(CmdlineError::Unknown { .. })), "{word}: {got:?}");
            }
        }
        let err = BootConfig::parse("clusterroot.verbose").unwrap_err().to_string();
        assert!(err.contains("clusterroot.image=, clusterroot.timeout=, clusterroot.debug="), "{err}");
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn seed_command_line() {
        let c = BootConfig::parse(
            "BOOT_IMAGE=vmlinuz ip=:::::eth0:dhcp nfsroot=172.23.199.225:/root,ro,nfsvers=4,retrans=10,rsize=32768,wsize=32768 quiet",
        )
        .unwrap();
        let n = c.nfsroot.as_ref().unwrap();
        assert_eq!(n.server, Some(ip("172.23.199.225")));
        assert_eq!(n.path, "/root");
        assert_eq!(n.version, NfsVersion::V4Any);
        let keys: Vec<_> = n.options.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(keys, ["retrans", "rsize", "wsize"]);
        assert_eq!(c.ip, IpConfig::Dhcp { device: Some("eth0".into()), server: None, hostname: None });
        assert!(c.wants_nfs());
        assert_eq!(c.mode, Mode::Overlay);
    }

    #[test]
    fn static_ip_forms() {
        let cases: &[(&str, IpConfig)] = &[
            ("off", IpConfig::Off { device: None, server: None }),
            ("none", IpConfig::Off { device: None, server: None }),
            ("dhcp", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("on", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("any", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("bootp", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("rarp", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            ("both", IpConfig::Dhcp { device: None, server: None, hostname: None }),
            (
                "::10.0.0.1::node7:eno1:on",
                IpConfig::Dhcp { device: Some("eno1".into()), server: None, hostname: Some("node7".into()) },
            ),
            (
                "10.77.0.11:10.77.0.1:10.77.0.254:255.255.255.0:node1:enp0s3:off",
                IpConfig::Static(StaticIp {
                    client: ip("10.77.0.11"),
                    prefix: 24,
                    server: Some(ip("10.77.0.1")),
                    gateway: Some(ip("10.77.0.254")),
                    hostname: Some("node1".into()),
                    device: Some("enp0s3".into()),
                }),
            ),
            (
                "10.77.0.11::10.77.0.1:255.255.0.0:::none",
                IpConfig::Static(StaticIp {
                    client: ip("10.77.0.11"),
                    prefix: 16,
                    server: None,
                    gateway: Some(ip("10.77.0.1")),
                    hostname: None,
                    device: None,
                }),
            ),
            (
                "10.1.2.3",
                IpConfig::Static(StaticIp {
                    client: ip("10.1.2.3"),
                    prefix: 8,
                    server: None,
                    gateway: None,
                    hostname: None,
                    device: None,
                }),
            ),
            (
                "192.168.1.5:::::eth1",
                IpConfig::Static(StaticIp {
                    client: ip("192.168.1.5"),
                    prefix: 24,
                    server: None,
                    gateway: None,
                    hostname: None,
                    device: Some("eth1".into()),
                }),
            ),
            (":::::eth0:dhcp", IpConfig::Dhcp { device: Some("eth0".into()), server: None, hostname: None }),
            ("::10.0.0.1::::off", IpConfig::Off { device: None, server: None }),
            (":10.0.0.1:::::off", IpConfig::Off { device: None, server: Some(ip("10.0.0.1")) }),
        ];
        for (raw, want) in cases {
            assert_eq!(&parse_ip(raw).unwrap(), want, "ip={raw}");
        }
    }

    #[test]
    fn malformed_ip_names_the_parameter_and_field() {
        let cases = [
            ("10.77.0.300::10.77.0.1:255.255.255.0::::", "client-ip '10.77.0.300'"),
            ("10.77.0.3:x::::::", "server-ip 'x'"),
            ("10.77.0.3:::255.0.255.0", "netmask '255.0.255.0' is not a contiguous"),
            ("10.77.0.3::::bad host", "hostname 'bad host'"),
            ("10.77.0.3:::::a/b", "device 'a/b'"),
            ("10.77.0.3::::::magic", "autoconf 'magic'"),
            ("", "is empty"),
            ("1:2:3:4:5:6:7:8:9:10:11", "at most 10"),
            ("dhcp6", "IPv6 autoconfiguration is not supported"),
            (":::::eth0:dhcp6", "IPv6 autoconfiguration is not supported"),
        ];
        for (raw, want) in cases {
            let err = parse_ip(raw).unwrap_err().to_string();
            assert!(err.starts_with(&format!("ip={raw}: ")), "{err}");
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn dracut_nfs_roots() {
        let c = BootConfig::parse("root=nfs4:10.0.0.1:/srv/root ip=dhcp").unwrap();
        let n = c.nfsroot.as_ref().unwrap();
        assert_eq!((n.server, n.path.as_str(), n.version), (Some(ip("10.0.0.1")), "/srv/root", NfsVersion::V4Any));
        assert!(c.wants_nfs());
        assert_eq!(c.root_spec(), RootSpec::Nfs);
        let c = BootConfig::parse("root=nfs4:10.0.0.1:/srv/root:vers=4.2,rsize=32768").unwrap();
        let n = c.nfsroot.unwrap();
        assert_eq!(n.version, NfsVersion::V4(2));
        assert_eq!(n.options, [NfsOption { key: "rsize".into(), value: Some("32768".into()) }]);
        let n = BootConfig::parse("root=nfs:10.0.0.1:/r").unwrap().nfsroot.unwrap();
        assert_eq!((n.path.as_str(), n.version), ("/r", NfsVersion::Default));
        // No server: the one ip= or DHCP names, as with nfsroot=/r.
        let n = BootConfig::parse("root=nfs4:/srv/root").unwrap().nfsroot.unwrap();
        assert_eq!((n.server, n.path.as_str()), (None, "/srv/root"));
        let e = BootConfig::parse("root=nfs4:server:/r").unwrap_err().to_string();
        assert!(e.contains("root=nfs4:server:/r") && e.contains("not an IPv4 address"), "{e}");
        let e = BootConfig::parse("root=nfs4:10.0.0.1:/r nfsroot=10.0.0.1:/r").unwrap_err().to_string();
        assert!(e.contains("give one of them"), "{e}");
        assert_eq!(BootConfig::parse("root=nfsx:1").unwrap().root_spec(), RootSpec::Other("nfsx:1".into()));
    }

    #[test]
    fn nfsroot_forms() {
        let n = parse_nfsroot("/srv/root").unwrap();
        assert_eq!((n.server, n.path.as_str(), n.version), (None, "/srv/root", NfsVersion::Default));
        let n = parse_nfsroot("10.0.0.1:/srv/%s,vers=3,port=2049,hard").unwrap();
        assert_eq!(n.version, NfsVersion::V3);
        assert_eq!(n.path_for(Some(ip("10.0.0.9"))), "/srv/10.0.0.9");
        assert_eq!(n.option("port").unwrap().value.as_deref(), Some("2049"));
        assert_eq!(n.option("hard").unwrap().value, None);
        assert_eq!(parse_nfsroot("10.0.0.1:/r,vers=4.1").unwrap().version, NfsVersion::V4(1));
        assert_eq!(parse_nfsroot("10.0.0.1:/r,vers=4,minorversion=0").unwrap().version, NfsVersion::V4(0));
        assert_eq!(parse_nfsroot("10.0.0.1:/r,v4").unwrap().version, NfsVersion::V4Any);
        assert_eq!(NfsVersion::Default.attempts(), ["4.2", "4.1", "4.0"]);
    }

    #[test]
    fn nfsroot_errors() {
        let cases = [
            ("master:/srv/root", "server 'master' is not an IPv4 address"),
            ("10.0.0.1:srv", "must be an absolute path"),
            ("10.0.0.1:/r,vers=5", "NFS version '5'"),
            ("10.0.0.1:/r,vers=2", "NFS version '2'"),
            ("10.0.0.1:/r,v2", "NFSv2 is not supported"),
            ("10.0.0.1:/r,rsize=", "has no value"),
            ("10.0.0.1:/r,a b", "is not an NFS mount option"),
            ("10.0.0.1:/r,vers=3,minorversion=1", "only applies to NFSv4"),
        ];
        for (raw, want) in cases {
            let err = parse_nfsroot(raw).unwrap_err().to_string();
            assert!(err.starts_with(&format!("nfsroot={raw}: ")), "{err}");
            assert!(err.contains(want), "{err} lacks {want}");
        }
    }

    #[test]
    fn clusterroot_settings() {
        let c = BootConfig::parse(
            "root=/dev/nfs clusterroot=off clusterroot.size=2G clusterroot.overlays=/etc//nodes/./ clusterroot.timeout=15 clusterroot.debug BOOTIF=01-52-54-00-77-00-0b nfs.nfs4_unique_id=abc",
        )
        .unwrap();
        assert!(c.wants_nfs());
        assert_eq!(c.nfsroot, None);
        assert_eq!(c.mode, Mode::Plain);
        assert_eq!(c.size.as_deref(), Some("2G"));
        assert_eq!(c.overlays, "/etc/nodes");
        assert_eq!(c.timeout, Duration::from_secs(15));
        assert!(c.debug);
        assert_eq!(c.bootif.unwrap().to_string(), "52:54:00:77:00:0b");
        assert_eq!(c.nfs4_unique_id.as_deref(), Some("abc"));
    }

    #[test]
    fn clusterroot_errors() {
        let cases = [
            ("clusterroot=maybe", "clusterroot=maybe: "),
            ("clusterroot.size=lots", "clusterroot.size=lots: "),
            ("clusterroot.size=10MB", "clusterroot.size=10MB: "),
            ("clusterroot.overlays=etc/overlays", "clusterroot.overlays=etc/overlays: "),
            ("clusterroot.overlays=/etc/../x", "clusterroot.overlays=/etc/../x: "),
            ("clusterroot.timeout=0", "clusterroot.timeout=0: "),
            ("clusterroot.timeout=ten", "clusterroot.timeout=ten: "),
            ("clusterroot.sise=1G", "unknown parameter clusterroot.sise"),
            ("BOOTIF=01-52-54", "BOOTIF=01-52-54: "),
        ];
        for (line, want) in cases {
            let err = BootConfig::parse(line).unwrap_err().to_string();
            assert!(err.starts_with(want), "{line}: {err}");
        }
    }

    /// The message for `line`, which must be a `BadParam` for `param`.
    fn bad_param(line: &[u8], param: &str) -> String {
        match BootConfig::parse_bytes(line) {
            Err(e @ CmdlineError::BadParam { .. }) => {
                let msg = e.to_string();
                assert!(msg.starts_with(&format!("{param}: ")), "{}: {msg}", String::from_utf8_lossy(line));
                assert_eq!(msg.lines().count(), 1, "{msg}");
                msg
            }
            other => panic!("{}: expected BadParam, got {other:?}", String::from_utf8_lossy(line)),
        }
    }

    #[test]
    fn overlays_forms() {
        for (raw, want) in [
            ("/etc/overlays", "/etc/overlays"),
            ("/etc/overlays/", "/etc/overlays"),
            ("/etc//overlays//", "/etc/overlays"),
            ("//etc/./overlays/.", "/etc/overlays"),
            ("/etc/./a/./b", "/etc/a/b"),
            ("/etc/cluster/nodes", "/etc/cluster/nodes"),
            ("/etc/...", "/etc/..."),
        ] {
            let c = BootConfig::parse(&format!("clusterroot.overlays={raw}")).unwrap();
            assert_eq!(c.overlays, want, "{raw}");
        }
        assert_eq!(BootConfig::parse("").unwrap().overlays, DEFAULT_OVERLAYS);
        for (raw, want) in [
            ("/etc", "is /etc itself"),
            ("/etc/", "is /etc itself"),
            ("/etc/.", "is /etc itself"),
            ("//etc//./", "is /etc itself"),
            ("/", "/ is not below /etc"),
            ("/usr", "/usr is not below /etc"),
            ("/srv/nodes", "/srv/nodes is not below /etc"),
            ("/etcetera/x", "/etcetera/x is not below /etc"),
            ("/usr/etc/x", "/usr/etc/x is not below /etc"),
            ("etc/overlays", "is not an absolute path"),
            ("", "is empty"),
            ("/etc/../x", "has a '..' component"),
            ("/etc/x/..", "has a '..' component"),
            ("/etc/x\u{7}y", "has a control character"),
        ] {
            let param = format!("clusterroot.overlays={raw}");
            let msg = bad_param(param.as_bytes(), &param);
            assert!(msg.contains(want), "{msg} lacks {want}");
            assert!(msg.contains("strictly below /etc"), "{msg}");
        }
        let msg = bad_param(b"clusterroot.overlays", "clusterroot.overlays");
        assert!(msg.contains("is empty"), "{msg}");
    }

    #[test]
    fn size_forms() {
        for (raw, want) in [
            ("1M", "1M"),
            ("1m", "1M"),
            ("512M", "512M"),
            ("2G", "2G"),
            ("2g", "2G"),
            ("0002G", "2G"),
            ("1024K", "1024K"),
            ("1024k", "1024K"),
            ("1048576", "1048576"),
            ("3t", "3T"),
            ("1024T", "1024T"),
            ("1048576G", "1048576G"),
            ("1%", "1%"),
            ("50%", "50%"),
            ("007%", "7%"),
            ("100%", "100%"),
        ] {
            let c = BootConfig::parse(&format!("clusterroot.size={raw}")).unwrap();
            assert_eq!(c.size.as_deref(), Some(want), "{raw}");
        }
        assert_eq!(BootConfig::parse("").unwrap().size, None);
        for (raw, want) in [
            ("0", "is zero"),
            ("0G", "is zero"),
            ("000M", "is zero"),
            ("0%", "from 1% to 100%"),
            ("101%", "from 1% to 100%"),
            ("99999999999999999999%", "from 1% to 100%"),
            ("1048575", "is 1048575 bytes, too small"),
            ("4096", "add M or G"),
            ("1023K", "is 1047552 bytes"),
            ("1025T", "is too large"),
            ("1048577G", "is too large"),
            ("99999999999999999999G", "is too large"),
            ("99999999999999999999", "is too large"),
            ("18446744073709551615T", "is too large"),
            ("10MB", "unit 'MB'"),
            ("1P", "unit 'P'"),
            ("1.5G", "unit '.5G'"),
            ("0x10G", "unit 'x10G'"),
            ("lots", "expected a size"),
            ("G", "expected a size"),
            ("%", "expected a size"),
            ("-1G", "expected a size"),
            ("+1G", "expected a size"),
            ("", "expected a size"),
        ] {
            let param = format!("clusterroot.size={raw}");
            let msg = bad_param(param.as_bytes(), &param);
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        bad_param(b"clusterroot.size", "clusterroot.size");
        let msg = bad_param(b"\"clusterroot.size=1 G\"", "clusterroot.size=1 G");
        assert!(msg.contains("unit ' G'"), "{msg}");
    }

    #[test]
    fn nodefiles_forms() {
        use crate::lower::block::DeviceRef;
        use crate::lower::zfs::Dataset;
        let nfs = |server: Option<&str>, dir: &str| NodeFilesSource::Nfs { server: server.map(ip), dir: dir.into() };
        let cases = [
            ("none", NodeFilesSource::None),
            ("LABEL=nodes", NodeFilesSource::Device(DeviceRef::Label("nodes".into()))),
            ("UUID=ABCD-1234", NodeFilesSource::Device(DeviceRef::Uuid("abcd-1234".into()))),
            ("PARTUUID=0A1B-02", NodeFilesSource::Device(DeviceRef::PartUuid("0a1b-02".into()))),
            ("PARTLABEL=nodefiles", NodeFilesSource::Device(DeviceRef::PartLabel("nodefiles".into()))),
            ("/dev/sdb1", NodeFilesSource::Device(DeviceRef::Path("/dev/sdb1".into()))),
            ("/dev//disk/./by-id/x/", NodeFilesSource::Device(DeviceRef::Path("/dev/disk/by-id/x".into()))),
            ("zfs:tank/nodes", NodeFilesSource::Zfs(Dataset::parse("tank/nodes").unwrap())),
            ("zfs:tank/cluster/nodes/", NodeFilesSource::Zfs(Dataset::parse("tank/cluster/nodes").unwrap())),
            ("10.0.0.1:/srv/nodes", nfs(Some("10.0.0.1"), "/srv/nodes")),
            ("10.0.0.1://srv/./nodes/", nfs(Some("10.0.0.1"), "/srv/nodes")),
            ("/srv/nodes", nfs(None, "/srv/nodes")),
            ("/srv/nodes/", nfs(None, "/srv/nodes")),
            ("/etc", nfs(None, "/etc")),
        ];
        for (raw, want) in cases {
            let c = BootConfig::parse(&format!("clusterroot.nodefiles={raw}")).unwrap();
            assert_eq!(c.nodefiles, want, "{raw}");
        }
        assert_eq!(BootConfig::parse("").unwrap().nodefiles, NodeFilesSource::Lower);
        // Quoted, as a label with a space needs on the kernel command line.
        let c = BootConfig::parse("\"clusterroot.nodefiles=PARTLABEL=node files\"").unwrap();
        assert_eq!(c.nodefiles, NodeFilesSource::Device(DeviceRef::PartLabel("node files".into())));
        for (raw, want) in [
            ("", "expected none, [<server-ip>:]<dir>"),
            ("nonesuch", "expected none, [<server-ip>:]<dir>"),
            ("off", "expected none"),
            ("LABEL=", "names no device"),
            ("UUID=", "names no device"),
            ("/dev", "names no block device"),
            ("/dev/", "names no block device"),
            ("/dev/nfs", "names no block device"),
            ("/dev/../etc", "names no block device"),
            ("zfs:", "names no dataset"),
            ("zfs:tank", "names only a pool"),
            ("zfs:tank/", "names only a pool"),
            ("zfs:tank/n@snap", "names a snapshot"),
            ("zfs:1tank/n", "a pool name starts with a letter"),
            ("zfs:tank//n", "empty or relative component"),
            ("master:/srv/nodes", "server 'master' is not an IPv4 address"),
            ("10.0.0.300:/srv/nodes", "server '10.0.0.300' is not an IPv4 address"),
            ("10.0.0.1:", "NFS directory '' is empty"),
            ("10.0.0.1:srv/nodes", "NFS directory 'srv/nodes' is not an absolute path"),
            ("10.0.0.1:/srv/../etc", "has a '..' component"),
            ("/srv/nodes/..", "has a '..' component"),
            ("/", "NFS directory is /"),
            ("//./", "NFS directory is /"),
            ("10.0.0.1:/", "NFS directory is /"),
        ] {
            let param = format!("clusterroot.nodefiles={raw}");
            let msg = bad_param(param.as_bytes(), &param);
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        bad_param(b"clusterroot.nodefiles", "clusterroot.nodefiles");
        let err = BootConfig::parse("clusterroot.nodefile=none").unwrap_err().to_string();
        assert!(err.contains("clusterroot.nodefiles="), "{err}");
    }

    #[test]
    fn bytes_that_are_not_utf8() {
        // Someone else's word: ignored, wherever the byte is.
        for line in [
            &b"console=tty\xff0 nfsroot=10.0.0.1:/r"[..],
            b"nfsroot=10.0.0.1:/r \xff",
            b"nfsroot=10.0.0.1:/r \xff\xfe=x",
            b"nfsroot=10.0.0.1:/r \"quiet=\xc3 \"",
            b"\xffnfsroot=bad nfsroot=10.0.0.1:/r",
            b"nfsroot=10.0.0.1:/r -- nfsroot=\xff",
            b"ro=1 nfsroot=10.0.0.1:/r rootwait=\xc3(",
        ] {
            let c = BootConfig::parse_bytes(line).unwrap_or_else(|e| panic!("{}: {e}", String::from_utf8_lossy(line)));
            assert_eq!(c.nfsroot.unwrap().path, "/r");
        }
        // Ours: an error naming the key, whatever the parameter would have meant.
        let ours = PARAMETERS.iter().copied().chain(["clusterroot.sise"]);
        for key in ours {
            for line in
                [format!("{key}=\u{1}/x").into_bytes(), format!("console=ttyS0 {key}=a\u{1} quiet").into_bytes()]
            {
                let line: Vec<u8> = line.iter().map(|&b| if b == 1 { 0xff } else { b }).collect();
                let msg = bad_param(&line, key);
                assert!(msg.contains("not UTF-8"), "{msg}");
            }
        }
        let msg = bad_param(b"clusterroot.\xff=1", "clusterroot.\u{fffd}");
        assert!(msg.contains("not UTF-8"), "{msg}");
        assert_eq!(
            split_words_bytes(b" a=\"x\xff y\"  \xc3\xa9\xc3 b -- c=\xff"),
            [&b"a=x\xff y"[..], b"\xc3\xa9\xc3", b"b"]
        );
        // Text splits as before, including at Unicode spaces.
        assert_eq!(split_words("a\u{a0}b=\"c\u{2003}d\""), ["a", "b=c\u{2003}d"]);
    }

    #[test]
    fn words_quotes_and_init_arguments() {
        assert_eq!(split_words(" a=1  b=\"x y\" \"c=d e\" -- init=x"), ["a=1", "b=x y", "c=d e"]);
        let c = BootConfig::parse("nfsroot=10.0.0.1:/a -- nfsroot=10.0.0.2:/b").unwrap();
        assert_eq!(c.nfsroot.unwrap().path, "/a");
        let c = BootConfig::parse("nfsroot=10.0.0.1:/a nfsroot=10.0.0.2:/b").unwrap();
        assert_eq!(c.nfsroot.unwrap().path, "/b");
    }

    #[test]
    fn local_roots() {
        use crate::lower::block::DeviceRef;
        let c = BootConfig::parse("root=LABEL=croot rootfstype=ext4 rootflags=noatime,data=ordered ro rw").unwrap();
        assert_eq!(c.root_spec(), RootSpec::Device(DeviceRef::Label("croot".into())));
        assert_eq!(
            (c.rootfstype.as_deref(), c.rootflags.as_deref(), c.rw),
            (Some("ext4"), Some("noatime,data=ordered"), true)
        );
        assert!(!BootConfig::parse("root=/dev/vda rw ro").unwrap().rw);
        for (line, ds, param) in [
            ("root=zfs:tank/root", "tank/root", "root=zfs:tank/root"),
            ("root=ZFS=tank/root", "tank/root", "root=ZFS=tank/root"),
            ("zfs=tank/os root=x", "tank/os", "zfs=tank/os"),
            ("root=zfs zfs=tank/os", "tank/os", "zfs=tank/os"),
            ("ZFS=tank/os", "tank/os", "ZFS=tank/os"),
        ] {
            let want = ZfsRoot { dataset: crate::lower::zfs::Dataset::parse(ds).unwrap(), param: param.into() };
            assert_eq!(BootConfig::parse(line).unwrap().root_spec(), RootSpec::Zfs(want), "{line}");
        }
        for (line, culprit) in [
            ("root=zfs:", "root=zfs:: names no dataset"),
            ("root=zfs:tank/root@snap", "root=zfs:tank/root@snap: names a snapshot"),
            ("zfs_import_dir=dev", "zfs_import_dir=dev: needs an absolute directory"),
        ] {
            let err = BootConfig::parse(line).unwrap_err().to_string();
            assert!(err.starts_with(culprit), "{line}: {err}");
        }
        for (line, param) in [
            ("zfs=bootfs", "zfs=bootfs"),
            ("root=zfs:AUTO", "root=zfs:AUTO"),
            ("zfs=AUTO", "zfs=AUTO"),
            // The zfs hooks' bare root=zfs, without zfs=: the pool's bootfs too.
            ("root=zfs", "root=zfs"),
            ("root=LABEL=x zfs=auto", "zfs=auto"),
        ] {
            assert_eq!(BootConfig::parse(line).unwrap().root_spec(), RootSpec::ZfsAuto(param.into()), "{line}");
        }
        let c = BootConfig::parse("zfs=tank zfs_force=1 zfs_import_dir=/dev/disk/by-id").unwrap();
        assert_eq!(c.zfs_import, crate::lower::zfs::ImportOptions { force: true, dir: Some("/dev/disk/by-id".into()) });
        assert!(BootConfig::parse("zfs_force").unwrap().zfs_import.force);
        assert!(!BootConfig::parse("zfs_force=0").unwrap().zfs_import.force);
        assert_eq!(BootConfig::parse("root=/dev/nfs").unwrap().root_spec(), RootSpec::Nfs);
        assert_eq!(BootConfig::parse("").unwrap().root_spec(), RootSpec::None);
        assert_eq!(BootConfig::parse("root=weird").unwrap().root_spec(), RootSpec::Other("weird".into()));
    }

    #[test]
    fn server_falls_back_to_ip_field() {
        let c = BootConfig::parse("nfsroot=/srv/root ip=10.0.0.5:10.0.0.1::255.255.255.0::eth0:off").unwrap();
        assert_eq!(c.nfs_server(), Some(ip("10.0.0.1")));
    }

    /// Arbitrary bytes never panic the parser (a cheap stand-in for the fuzz target).
    #[test]
    fn never_panics_on_noise() {
        let alphabet: &[&[u8]] = &[
            b"ip=",
            b"nfsroot=",
            b":",
            b",",
            b"=",
            b"\"",
            b" ",
            b"1",
            b"255.",
            b"/",
            b"vers=",
            b"4.",
            b"BOOTIF=",
            b"01-",
            b"clusterroot.",
            b"size=",
            b"overlays=",
            b"nodefiles=",
            b"zfs:",
            b"LABEL=",
            b"/dev/",
            b"/etc",
            b"..",
            b"%",
            b"G",
            b"999999999",
            b"-",
            b"x",
            b"\xff",
            b"\xc3",
            b"\xe2\x80",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..40_000 {
            let mut s = Vec::new();
            for _ in 0..(state % 12) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                s.extend_from_slice(alphabet[(state % alphabet.len() as u64) as usize]);
            }
            let _ = BootConfig::parse_bytes(&s);
        }
    }
}
