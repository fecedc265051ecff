//! Kernel command line → checked boot settings, with no I/O.
//!
//! Kernel syntax comes first (`root=`, `nfsroot=`, `ip=`, `BOOTIF=`, as in the kernel's
//! `Documentation/admin-guide/nfs/nfsroot.rst` and pxelinux), our own settings live under
//! `clusterroot.`. Anything malformed is an error naming the parameter, never a guess.
//!
//! This file reads each word into [`BootConfig`] and says what the root is; a file per grammar
//! does the rest: `words` (the kernel's splitter), `ip`, `nfs` (`nfsroot=` and dracut's
//! `root=nfs:`), `size`, `nodefiles` (with `clusterroot.overlays=`) and `zfs`. They import the
//! error and the types from here, never the dispatch (only their tests parse whole lines).
//! Which roots the agent claims is decided once, in [`crate::claim`], from [`DHCP_WORDS`] and
//! [`ZFS_AUTO_WORDS`]; [`BootConfig::mounts_root`] is that rule seen through this parser.

mod ip;
mod live;
mod nfs;
mod nodefiles;
mod size;
mod words;
mod zfs;

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::mac::MacAddress;
use live::{parse_live, parse_sha256};
use nfs::{dracut_nfs_root, parse_nfs_target};
use nodefiles::{parse_nodefiles, parse_overlays};
use size::parse_size;
use zfs::parse_zfs_root;

pub(crate) use ip::is_dhcp_word;
pub use ip::{classful_prefix, netmask_prefix, parse_ip, IpConfig, StaticIp, DHCP_WORDS};
pub use live::{LiveSource, NfsFile, MAX_URLS};
pub use nfs::{parse_nfsroot, NfsRoot};
pub use nodefiles::NodeFilesSource;
pub use size::{Size, MAX_SIZE, MIN_SIZE};
pub use words::{split_words, split_words_bytes};
pub(crate) use zfs::is_zfs_auto;
pub use zfs::{ZfsRoot, ZFS_AUTO_WORDS};

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

/// An on/off parameter: on alone or as 1, y, yes, on; off as 0, n, no, off.
fn switch(key: &str, value: Option<&str>, expected: &str) -> Result<bool, CmdlineError> {
    match value {
        None | Some("1" | "y" | "yes" | "on") => Ok(true),
        Some("0" | "n" | "no" | "off") => Ok(false),
        Some(_) => Err(bad(key, value, expected)),
    }
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

/// What `root=` names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootSpec {
    None,
    Nfs,
    /// `root=live:<url>` or `clusterroot.live=`: one squashfs file.
    Live,
    Device(crate::lower::block::DeviceRef),
    /// `<pool>/<dataset>` from `root=zfs:`, `root=ZFS=`, `zfs=` or `ZFS=`.
    Zfs(ZfsRoot),
    /// `zfs=bootfs|auto`, `root=zfs:AUTO`: the pool's bootfs property, which only the zfs
    /// hook's own handler reads.
    ZfsAuto(String),
    Other(String),
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
    /// `root=live:<url>` or `clusterroot.live=<url>,...`: the lower is one squashfs file.
    pub live: Option<LiveSource>,
    /// `clusterroot.sha256=`: the hash that file must have (else the one in its name).
    pub sha256: Option<[u8; 32]>,
    /// `clusterroot.maxsize=`: the most a squashfs image downloaded into RAM may take
    /// (default: what [`crate::lower::fetch`]'s caller finds available).
    pub maxsize: Option<Size>,
    /// `clusterroot.overlays=`: absolute path in the shared root holding node files.
    pub overlays: String,
    /// `clusterroot.nodefiles=`: where the node files come from (default: `overlays` in the lower).
    pub nodefiles: NodeFilesSource,
    /// `clusterroot.timeout=`: deadline for link, devices and server.
    pub timeout: Duration,
    pub debug: bool,
    /// `clusterroot.arp_probe=`: probe the boot NIC's address with ARP (RFC 5227) before
    /// taking it; default on.
    pub arp_probe: bool,
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
            live: None,
            sha256: None,
            maxsize: None,
            overlays: DEFAULT_OVERLAYS.to_string(),
            nodefiles: NodeFilesSource::Lower,
            timeout: DEFAULT_TIMEOUT,
            debug: false,
            arp_probe: true,
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
    "clusterroot.live",
    "clusterroot.sha256",
    "clusterroot.maxsize",
    "clusterroot.overlays",
    "clusterroot.nodefiles",
    "clusterroot.image",
    "clusterroot.timeout",
    "clusterroot.debug",
    "clusterroot.arp_probe",
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
        let mut live_raw: Option<String> = None;
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
                "clusterroot.size" => cfg.size = Some(parse_size("clusterroot.size", v)?.tmpfs_option()),
                "clusterroot.live" => live_raw = value.clone(),
                "clusterroot.sha256" => cfg.sha256 = Some(parse_sha256(v)?),
                "clusterroot.maxsize" => cfg.maxsize = Some(parse_size("clusterroot.maxsize", v)?),
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
                    cfg.debug = switch("clusterroot.debug", v, "expected clusterroot.debug or clusterroot.debug=0")?
                }
                "clusterroot.arp_probe" => {
                    cfg.arp_probe = switch(
                        "clusterroot.arp_probe",
                        v,
                        "expected clusterroot.arp_probe=0 (no probe) or clusterroot.arp_probe=1",
                    )?
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
        // dracut's root=live:<url> names one file; clusterroot.live= a list of replicas.
        let dracut_live = cfg.root.as_deref().and_then(|r| r.strip_prefix("live:"));
        cfg.live = match (live_raw, dracut_live) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "root",
                    cfg.root.as_deref(),
                    "clusterroot.live= names the squashfs image too: give one of them",
                ))
            }
            (Some(raw), None) => Some(parse_live("clusterroot.live", &raw)?),
            (None, Some(raw)) => Some(parse_live(&format!("root=live:{raw}"), raw).map_err(|e| match e {
                // The parameter is root=, its value live:<url>.
                CmdlineError::BadParam { reason, .. } => bad("root", cfg.root.as_deref(), reason),
                e => e,
            })?),
            (None, None) => None,
        };
        if cfg.live.is_some() {
            let root = cfg.root.as_deref().filter(|r| !r.starts_with("live:"));
            let other = if cfg.nfsroot.is_some() {
                Some("nfsroot= (or root=nfs:)".to_string())
            } else if cfg.zfs.is_some() {
                Some("zfs=".to_string())
            } else if cfg.image.is_some() {
                Some(
                    "clusterroot.image= (a squashfs URL names its version: the file, or crctl's pointer file default)"
                        .to_string(),
                )
            } else {
                // root=LABEL=x, root=/dev/nfs ...: another root, which the image would silently win over.
                root.map(|r| format!("root={r}"))
            };
            if let Some(other) = other {
                return Err(bad("clusterroot.live", None, format!("the squashfs image is the root; drop {other}")));
            }
        } else if cfg.sha256.is_some() {
            return Err(bad(
                "clusterroot.sha256",
                None,
                "checks a squashfs image, and there is none: add root=live:<url> or clusterroot.live=<url>",
            ));
        }
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
            RootSpec::Nfs | RootSpec::Live | RootSpec::Device(_) | RootSpec::Zfs(_) => true,
            RootSpec::None => matches!(self.ip, IpConfig::Dhcp { .. }),
            RootSpec::ZfsAuto(_) | RootSpec::Other(_) => false,
        }
    }

    /// What `root=` (and `zfs=`) name, in checked form.
    pub fn root_spec(&self) -> RootSpec {
        if let Some(z) = &self.zfs {
            return z.clone();
        }
        if self.live.is_some() {
            return RootSpec::Live;
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

fn parse_timeout(v: Option<&str>) -> Result<Duration, CmdlineError> {
    match v.and_then(|s| s.parse::<u64>().ok()) {
        Some(n) if (1..=3600).contains(&n) => Ok(Duration::from_secs(n)),
        _ => Err(bad("clusterroot.timeout", v, "expected whole seconds between 1 and 3600")),
    }
}

#[cfg(test)]
mod tests;
