//! Boot settings → an ordered list of steps, printable with `--dry-run`; no I/O.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cmdline::{BootConfig, CmdlineError, IpConfig, LiveSource, Mode, NfsFile, NodeFilesSource, RootSpec, Size};
use crate::lower::block::DeviceRef;
use crate::lower::fetch::HttpUrl;
use crate::lower::image::{ImageChoice, IMAGES};
use crate::lower::nfs::{NfsMount, NfsOption, NfsVersion};
use crate::lower::zfs::{Dataset, ImportOptions};
use crate::manifest::MANIFEST_FILE;
use crate::net::{Addressing, Lease, NicChoice};

/// Where the layers live; `/run` moves into the new root at `switch_root`, so they stay visible.
pub const LOWER: &str = "/run/rootfs/lower";
pub const COWSPACE: &str = "/run/rootfs/cowspace";
pub const UPPER: &str = "/run/rootfs/cowspace/upper";
pub const WORK: &str = "/run/rootfs/cowspace/work";
/// Where a squashfs image lies: the tmpfs it is downloaded into, or the NFS export holding it.
pub const IMAGE_DIR: &str = "/run/rootfs/image";
/// Where a node-files source other than the lower is mounted while the node files are copied.
pub const NODEFILES: &str = "/run/rootfs/nodefiles";
/// Holds the layers; root only, so no user of the booted node reaches the lower (and any node
/// files in it) or the upper through it.
pub const RUN_ROOTFS: &str = "/run/rootfs";
/// Runtime configuration the booted system's network managers and journald read: the boot
/// NIC's hand-over (networkd's `.network` is `10-clusterroot-<nic>.network` here, sorting
/// before the usual `/etc/systemd/network` names) and the journal kept in `/run`.
pub const NETWORKD_DIR: &str = "/run/systemd/network";
pub const NM_CONF: &str = "/run/NetworkManager/conf.d/10-clusterroot.conf";
pub const JOURNALD_CONF: &str = "/run/systemd/journald.conf.d/10-clusterroot.conf";
/// Options that keep overlayfs from writing anything about the lower into it or relying on
/// features NFS lowers lack.
pub const OVERLAY_OPTIONS: [(&str, &str); 4] =
    [("index", "off"), ("xino", "off"), ("redirect_dir", "off"), ("metacopy", "off")];

/// What the hook asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Mount handler: mount the lower ourselves.
    Mount,
    /// Late hook: another handler mounted the lower on the new root already.
    Overlay,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Mount => "mount",
            Action::Overlay => "overlay",
        })
    }
}

/// The NFS lower as the command line gives it; DHCP may fill in the server or the whole root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsPlan {
    /// `None`: the DHCP server (server identifier, else `siaddr`).
    pub server: Option<Ipv4Addr>,
    /// `None`: the root path of the DHCP lease (option 17), `[<server-ip>:]<root-dir>[,<options>]`.
    pub path: Option<String>,
    pub version: NfsVersion,
    pub options: Vec<NfsOption>,
    pub target: String,
}

impl NfsPlan {
    /// The concrete mount, once the lease (if any) is known. The error says what is missing.
    pub fn resolve(&self, lease: Option<&Lease>, iface: &str) -> Result<NfsMount, String> {
        let lease_server = lease.and_then(|l| l.server);
        let (server, path, version, options) = match &self.path {
            Some(p) => (self.server.or(lease_server), p.clone(), self.version, self.options.clone()),
            None => {
                let Some(rp) = lease.and_then(|l| l.root_path.as_deref()) else {
                    return Err(format!(
                        "the DHCP lease on {iface} gives no root path (option 17) and the command line has no nfsroot=; set root-path on the DHCP server or add nfsroot=<server-ip>:<root-dir>"
                    ));
                };
                let parsed = crate::cmdline::parse_nfsroot(rp)
                    .map_err(|e| format!("the root path from DHCP (option 17) on {iface} is unusable: {e}"))?;
                (parsed.server.or(self.server).or(lease_server), parsed.path, parsed.version, parsed.options)
            }
        };
        let Some(server) = server else {
            return Err(format!(
                "nfsroot={path} names no server and the DHCP lease on {iface} has no server identifier; write nfsroot=<server-ip>:{path}"
            ));
        };
        Ok(NfsMount { server, path, version, options, target: self.target.clone() })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Load the NICs' drivers where the image has no udevd to do it (checked when it runs),
    /// once, before the first step that looks for the boot NIC.
    LoadNicDrivers,
    /// Find the boot NIC, give it its address and route, wait for its link.
    Network {
        nic: NicChoice,
        addressing: Addressing,
        timeout: Duration,
        /// Probe the address with ARP before taking it (`clusterroot.arp_probe=`).
        arp_probe: bool,
    },
    /// Find the boot NIC's MAC without configuring anything (for node files).
    FindBootMac {
        nic: NicChoice,
    },
    /// Per-node NFSv4 client identity, set before the first NFSv4 mount.
    NfsIdentity {
        given: Option<String>,
    },
    MountNfs(NfsPlan),
    /// Wait for the master's local root device to appear.
    WaitDevice {
        device: DeviceRef,
    },
    /// Mount it as the lower (read-only unless `rw`).
    MountDevice {
        device: DeviceRef,
        fstype: Option<String>,
        flags: Option<String>,
        rw: bool,
        target: String,
    },
    /// Import the master's pool without mounting anything.
    ImportPool {
        pool: String,
        options: ImportOptions,
        param: String,
    },
    /// Mount its root dataset as the lower (read-only unless `rw`).
    MountZfs {
        dataset: Dataset,
        rw: bool,
        param: String,
        target: String,
    },
    /// The store mounted on [`IMAGES`]: read which version to boot, mount that one on
    /// `target` read-only, take the store off again.
    PinImage {
        choice: ImageChoice,
        target: String,
    },
    /// Download the squashfs image into a tmpfs on [`IMAGE_DIR`] from the first URL that
    /// serves it whole, its SHA-256 checked while reading.
    FetchImage {
        urls: Vec<HttpUrl>,
        sha256: Option<[u8; 32]>,
        maxsize: Option<Size>,
    },
    /// Mount the NFS export holding the squashfs image on [`IMAGE_DIR`], read-only: the
    /// first of the list that mounts.
    MountNfsImage {
        files: Vec<NfsFile>,
    },
    /// Attach the image file to a loop device read-only, mount its squashfs on `target`.
    MountSquashfs {
        target: String,
    },
    /// Read the files of the boot order beside an image on NFS from the squashfs on `target`.
    ReadBootOrder {
        target: String,
    },
    /// Move the root another handler mounted to where the lower lives.
    MoveRoot {
        from: String,
        to: String,
    },
    MountTmpfs {
        size: Option<String>,
        target: String,
    },
    /// upper/ and work/ on the tmpfs, owned like the lower root; hide the node files.
    PrepareUpper {
        hide: String,
    },
    MountOverlay {
        target: String,
    },
    /// The node's files from `from` (default: `overlays` in the lower) onto `target`'s `/etc`.
    NodeFiles {
        from: NodeFilesSource,
        overlays: String,
        target: String,
    },
    /// What the booted system takes over: machine-id, host name, resolv.conf, the boot NIC
    /// (runtime files for networkd and NetworkManager); warnings about what would break.
    HandOver {
        target: String,
    },
    WriteState,
}

impl Step {
    /// The step's name in the timings: `time_<name>_ms` in the state file, the `ready:` line.
    pub fn name(&self) -> &'static str {
        match self {
            Step::LoadNicDrivers => "nic_drivers",
            Step::Network { .. } => "network",
            Step::FindBootMac { .. } => "boot_mac",
            Step::NfsIdentity { .. } => "nfs_identity",
            Step::WaitDevice { .. } => "device",
            Step::ImportPool { .. } => "pool",
            Step::MountNfs(_)
            | Step::MountDevice { .. }
            | Step::MountZfs { .. }
            | Step::MountSquashfs { .. }
            | Step::MoveRoot { .. } => "lower",
            Step::ReadBootOrder { .. } => "boot_order",
            Step::PinImage { .. } => "image",
            Step::FetchImage { .. } | Step::MountNfsImage { .. } => "fetch",
            Step::MountTmpfs { .. } => "cowspace",
            Step::PrepareUpper { .. } => "upper",
            Step::MountOverlay { .. } => "overlay",
            Step::NodeFiles { .. } => "node_files",
            Step::HandOver { .. } => "handover",
            Step::WriteState => "state",
        }
    }

    /// The exit code the agent ends with when the step is cut off by the watchdog
    /// ([`crate::watchdog`]): the code its own failures have.
    pub fn exit_code(&self) -> u8 {
        use crate::exit;
        match self {
            Step::LoadNicDrivers | Step::Network { .. } | Step::FindBootMac { .. } | Step::NfsIdentity { .. } => {
                exit::NETWORK
            }
            Step::MountTmpfs { .. }
            | Step::PrepareUpper { .. }
            | Step::MountOverlay { .. }
            | Step::HandOver { .. }
            | Step::WriteState => exit::OVERLAY,
            Step::NodeFiles { .. } => exit::NODEFILES,
            // The lower and the image, read from the server or the disk.
            _ => exit::LOWER,
        }
    }

    /// Whether the step looks for the boot NIC, so the NICs' drivers must be loaded before it.
    /// The boot MAC that `BOOTIF=` names is taken as it is, without looking for its NIC.
    fn looks_for_nic(&self) -> bool {
        match self {
            Step::Network { .. } => true,
            Step::FindBootMac { nic } => !matches!(nic, NicChoice::BootIf(_)),
            _ => false,
        }
    }
}

/// The whole boot, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub action: Action,
    pub newroot: String,
    pub steps: Vec<Step>,
}

impl Plan {
    /// Turns checked settings into steps. Fails only where settings contradict each other.
    pub fn new(cfg: &BootConfig, action: Action, newroot: &str) -> Result<Plan, CmdlineError> {
        let mut steps = steps(cfg, action, newroot)?;
        // The NICs' drivers load once, just before the first step that looks for a NIC.
        if let Some(i) = steps.iter().position(Step::looks_for_nic) {
            steps.insert(i, Step::LoadNicDrivers);
        }
        Ok(Plan { action, newroot: newroot.to_string(), steps })
    }
}

/// The steps of [`Plan::new`], all but [`Step::LoadNicDrivers`].
fn steps(cfg: &BootConfig, action: Action, newroot: &str) -> Result<Vec<Step>, CmdlineError> {
    let mut steps = Vec::new();
    let nic = nic_choice(cfg);
    // With clusterroot=off the lower is mounted on the new root itself. Not at LOWER and
    // then moved: under systemd, /run is a shared mount, and the kernel refuses to move a
    // mount out of a shared parent (EINVAL).
    let plain = cfg.mode == Mode::Plain;
    let lower_target = if plain { newroot } else { LOWER };
    // With an image store, the store is mounted first and the version pinned after.
    let mount_target = if cfg.image.is_some() { IMAGES } else { lower_target };
    let pin = cfg.image.clone().map(|choice| Step::PinImage { choice, target: lower_target.to_string() });
    if cfg.image.is_some() && action == Action::Overlay {
        return Err(CmdlineError::BadParam {
            param: "clusterroot.image".into(),
            reason: "needs the clusterroot mount handler to mount the image store (root=/dev/nfs or nfsroot=, root=LABEL=..., zfs=); here another hook mounted the root, and the late clusterroot hook only lays the overlay over it".into(),
        });
    }
    match action {
        // One squashfs file: over the network, then attached to a loop device.
        Action::Mount if cfg.live.is_some() => {
            steps.push(Step::Network {
                nic,
                addressing: addressing(cfg),
                timeout: cfg.timeout,
                arp_probe: cfg.arp_probe,
            });
            // The node's own export (its node files) is NFSv4, and an NFS image too.
            steps.push(Step::NfsIdentity { given: cfg.nfs4_unique_id.clone() });
            steps.push(match cfg.live.clone() {
                Some(LiveSource::Http(urls)) => Step::FetchImage { urls, sha256: cfg.sha256, maxsize: cfg.maxsize },
                Some(LiveSource::Nfs(files)) => Step::MountNfsImage { files },
                None => unreachable!("guarded above"),
            });
            steps.push(Step::MountSquashfs { target: lower_target.to_string() });
            if matches!(cfg.live, Some(LiveSource::Nfs(_))) {
                steps.push(Step::ReadBootOrder { target: lower_target.to_string() });
            }
            if plain {
                steps.push(Step::WriteState);
                return Ok(steps);
            }
        }
        Action::Mount
            if cfg.nfsroot.is_none()
                && matches!(cfg.root_spec(), RootSpec::Device(_) | RootSpec::Zfs(_) | RootSpec::ZfsAuto(_)) =>
        {
            match cfg.root_spec() {
                RootSpec::Device(device) => {
                    steps.push(Step::WaitDevice { device: device.clone() });
                    steps.push(Step::MountDevice {
                        device,
                        fstype: cfg.rootfstype.clone(),
                        flags: cfg.rootflags.clone(),
                        rw: cfg.rw,
                        target: mount_target.into(),
                    });
                }
                RootSpec::Zfs(z) => {
                    steps.push(Step::ImportPool {
                        pool: z.dataset.pool().to_string(),
                        options: cfg.zfs_import.clone(),
                        param: z.param.clone(),
                    });
                    steps.push(Step::MountZfs {
                        dataset: z.dataset,
                        // A store is only read here; its versions are datasets of their own.
                        rw: cfg.rw && cfg.image.is_none(),
                        param: z.param,
                        target: mount_target.into(),
                    });
                }
                RootSpec::ZfsAuto(param) => {
                    return Err(CmdlineError::BadParam {
                        param,
                        reason: "the agent mounts a named dataset and does not read the pool's bootfs property; write zfs=<pool>/<dataset> (zpool get bootfs shows it), or let the zfs hook's handler mount it: clusterroot claims no such root, and its late hook lays the overlay over what that handler mounted".into(),
                    });
                }
                _ => unreachable!("guarded above"),
            }
            steps.extend(pin.clone());
            if plain {
                // The maintenance boot writes nothing into the image: booted read-write as a
                // plain root, sshd and systemd would make their host keys and machine-id in
                // the image every client reads. A pinned store version is read-only anyway.
                if cfg.rw && cfg.image.is_none() {
                    return Err(CmdlineError::PlainRw);
                }
                steps.push(Step::WriteState);
                return Ok(steps);
            }
            steps.push(Step::FindBootMac { nic });
        }
        Action::Mount => {
            let dhcp = matches!(cfg.ip, IpConfig::Dhcp { .. });
            let nfs = match &cfg.nfsroot {
                Some(n) => {
                    let server = n.server.or_else(|| cfg.ip.server());
                    if server.is_none() && !dhcp {
                        return Err(CmdlineError::BadParam {
                            param: format!("nfsroot={}", n.path),
                            reason: format!(
                                "names no server and ip= gives none; write nfsroot=<server-ip>:{} or use ip=dhcp",
                                n.path
                            ),
                        });
                    }
                    let path = match &cfg.ip {
                        IpConfig::Static(s) => n.path_for(Some(s.client)),
                        _ => n.path.clone(),
                    };
                    NfsPlan {
                        server,
                        path: Some(path),
                        version: n.version,
                        options: n.options.clone(),
                        target: mount_target.into(),
                    }
                }
                None if dhcp && matches!(cfg.root.as_deref(), None | Some("/dev/nfs")) => NfsPlan {
                    server: cfg.ip.server(),
                    path: None,
                    version: NfsVersion::Default,
                    options: Vec::new(),
                    target: mount_target.into(),
                },
                None if cfg.wants_nfs() => {
                    return Err(CmdlineError::BadParam {
                        param: "root=/dev/nfs".into(),
                        reason: "needs nfsroot=<server-ip>:<root-dir> naming the export, or ip=dhcp with a root path from the DHCP server".into(),
                    });
                }
                None => {
                    return Err(CmdlineError::BadParam {
                        param: "nfsroot".into(),
                        reason: "is missing: the clusterroot mount handler mounts an NFS lower; give nfsroot=<server-ip>:<root-dir> (or ip=dhcp with a root path from the DHCP server)".into(),
                    });
                }
            };
            steps.push(Step::Network {
                nic,
                addressing: addressing(cfg),
                timeout: cfg.timeout,
                arp_probe: cfg.arp_probe,
            });
            if nfs.version != NfsVersion::V3 {
                steps.push(Step::NfsIdentity { given: cfg.nfs4_unique_id.clone() });
            }
            steps.push(Step::MountNfs(nfs));
            steps.extend(pin.clone());
            if plain {
                steps.push(Step::WriteState);
                return Ok(steps);
            }
        }
        Action::Overlay => {
            steps.push(Step::MoveRoot { from: newroot.to_string(), to: LOWER.to_string() });
            steps.push(Step::FindBootMac { nic });
        }
    }
    steps.push(Step::MountTmpfs { size: cfg.size.clone(), target: COWSPACE.to_string() });
    steps.push(Step::PrepareUpper { hide: cfg.overlays.clone() });
    steps.push(Step::MountOverlay { target: newroot.to_string() });
    steps.push(Step::NodeFiles {
        from: cfg.nodefiles.clone(),
        overlays: cfg.overlays.clone(),
        target: newroot.to_string(),
    });
    steps.push(Step::HandOver { target: newroot.to_string() });
    steps.push(Step::WriteState);
    Ok(steps)
}

/// How the boot NIC gets its address: `ip=`'s.
fn addressing(cfg: &BootConfig) -> Addressing {
    match &cfg.ip {
        IpConfig::Static(s) => Addressing::Static(s.clone()),
        IpConfig::Dhcp { hostname, .. } => Addressing::Dhcp { hostname: hostname.clone() },
        IpConfig::Unset => Addressing::Existing { because: "no ip= given" },
        IpConfig::Off { .. } => Addressing::Existing { because: "ip=off" },
    }
}

fn nic_choice(cfg: &BootConfig) -> NicChoice {
    if let Some(mac) = cfg.bootif {
        NicChoice::BootIf(mac)
    } else if let Some(dev) = cfg.ip.device() {
        NicChoice::Device(dev.to_string())
    } else if matches!(cfg.ip, IpConfig::Dhcp { .. }) {
        NicChoice::FirstLease
    } else {
        NicChoice::SingleWithLink
    }
}

/// The node files a directory laid out as `/etc/overlays` gives, in the order they apply.
fn per_mac(dir: &str) -> String {
    format!("{dir}/<boot MAC>*.tar, .tar.gz, .tgz, .tar.zst (sorted), then {dir}/<boot MAC>/")
}

/// The node-files step's line, without the record (see [`Step::NodeFiles`]).
fn fmt_node_files(f: &mut fmt::Formatter<'_>, from: &NodeFilesSource, overlays: &str, target: &str) -> fmt::Result {
    match from {
        NodeFilesSource::Lower => write!(f, "node files: {}, onto {target}/etc", per_mac(overlays)),
        NodeFilesSource::Nfs { server, dir } => {
            let server = server.map(|s| s.to_string()).unwrap_or_else(|| "<the root's NFS server>".into());
            write!(
                f,
                "node files: mount nfs {server}:{dir}/<boot MAC> (the node's own export) read-only on {NODEFILES}, copy it onto {target}/etc, unmount it"
            )
        }
        NodeFilesSource::Device(d) => write!(
            f,
            "node files: wait for {d} ({}), mount it read-only on {NODEFILES}; {}, onto {target}/etc; unmount it",
            d.dev_path(),
            per_mac(NODEFILES)
        ),
        NodeFilesSource::Zfs(ds) => write!(
            f,
            "node files: mount zfs {ds} read-only on {NODEFILES}; {}, onto {target}/etc; unmount it",
            per_mac(NODEFILES)
        ),
        NodeFilesSource::None => f.write_str("node files: none (clusterroot.nodefiles=none)"),
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::LoadNicDrivers => f.write_str(
                "load NIC drivers: modprobe the modalias of each network device in /sys/bus/pci and /sys/bus/virtio, unless udevd is in the image (then udevd does)",
            ),
            Step::Network { nic, addressing, timeout, arp_probe } => {
                write!(f, "boot NIC: {nic}; ")?;
                match addressing {
                    Addressing::Static(s) => {
                        write!(f, "address {}/{}", s.client, s.prefix)?;
                        if let Some(gw) = s.gateway {
                            write!(f, ", default route via {gw}")?;
                        }
                        if let Some(h) = &s.hostname {
                            write!(f, ", host name {h}")?;
                        }
                    }
                    Addressing::Dhcp { hostname } => {
                        f.write_str("address, route, MTU, host name, DNS from DHCP")?;
                        if let Some(h) = hostname {
                            write!(f, " (host name {h} from ip=)")?;
                        }
                    }
                    Addressing::Existing { because } => write!(f, "use the address it already has ({because})")?,
                }
                write!(f, "; wait up to {} s for link", timeout.as_secs())?;
                if *arp_probe && !matches!(addressing, Addressing::Existing { .. }) {
                    f.write_str("; an ARP probe first (RFC 5227): no other host may hold the address")?;
                }
                Ok(())
            }
            Step::FindBootMac { nic } => write!(f, "boot MAC for node files: {nic}"),
            Step::NfsIdentity { given: Some(id) } => {
                write!(f, "NFSv4 client identity: {id} (nfs.nfs4_unique_id= on the command line)")
            }
            Step::NfsIdentity { given: None } => {
                f.write_str("NFSv4 client identity: clusterroot-<boot MAC> in /sys/fs/nfs/net/nfs_client/identifier")
            }
            Step::MountNfs(m) => {
                let server = m.server.map(|s| s.to_string()).unwrap_or_else(|| "<DHCP server>".into());
                let Some(path) = &m.path else {
                    return write!(f, "mount nfs from the DHCP root path (option 17; server default {server}) on {} read-only", m.target);
                };
                let vers = m.version.attempts().join(", then ");
                write!(f, "mount nfs {server}:{path} on {} read-only, vers={vers}", m.target)?;
                let extra: Vec<String> = m
                    .options
                    .iter()
                    .map(|o| match &o.value {
                        Some(v) => format!("{}={v}", o.key),
                        None => o.key.clone(),
                    })
                    .collect();
                if !extra.is_empty() {
                    write!(f, ", options {}", extra.join(","))?;
                }
                write!(f, ", addr={server}")
            }
            Step::WaitDevice { device } => write!(f, "wait for root device {device} ({})", device.dev_path()),
            Step::MountDevice { device, fstype, flags, rw, target } => {
                write!(f, "mount {} {device} on {target} {}", fstype.as_deref().unwrap_or("<probed type>"), if *rw { "read-write (rw)" } else { "read-only" })?;
                if let Some(fl) = flags {
                    write!(f, ", options {fl}")?;
                }
                Ok(())
            }
            Step::ImportPool { pool, options, .. } => {
                write!(f, "import ZFS pool {pool} without mounting (zpool {})", options.args(pool).join(" "))
            }
            Step::MountZfs { dataset, rw, target, .. } => write!(
                f,
                "mount zfs {dataset} on {target} {} (zfsutil unless its mountpoint is legacy)",
                if *rw { "read-write (rw)" } else { "read-only" }
            ),
            Step::PinImage { choice, target } => write!(
                f,
                "image: read {IMAGES}/default, mount {choice} on {target} read-only (pinned for this boot), unmount the store"
            ),
            Step::FetchImage { urls, sha256, maxsize } => {
                let list: Vec<String> = urls.iter().map(|u| u.to_string()).collect();
                write!(f, "fetch: mount tmpfs on {IMAGE_DIR}; download {} into it", list.join(", else "))?;
                match maxsize {
                    Some(m) => write!(f, ", if the server announces at most clusterroot.maxsize={}", m.tmpfs_option())?,
                    None => f.write_str(", if the server announces at most the memory available less a quarter")?,
                }
                match sha256 {
                    Some(h) => write!(f, "; its SHA-256 must be {}", crate::lower::fetch::sha256_hex(h)),
                    None => f.write_str("; its SHA-256 must be the one in its name (<version>-<sha256>.squashfs)"),
                }
            }
            Step::MountNfsImage { files } => {
                let list: Vec<String> = files.iter().map(|n| format!("nfs {}:{}", n.server, n.dir)).collect();
                write!(f, "fetch: mount {} on {IMAGE_DIR} read-only; the image is {}", list.join(", else "), files.first().map_or("", |n| n.name.as_str()))?;
                write!(
                    f,
                    " there (a name not ending in .squashfs is a pointer file naming it); the mount's read-ahead at least {} KiB",
                    crate::lower::readahead::IMAGE_READ_AHEAD_KIB
                )
            }
            Step::MountSquashfs { target } => write!(
                f,
                "squashfs: modprobe loop unless loaded; attach the image file in {IMAGE_DIR} read-only to a free loop device (LOOP_CONFIGURE, autoclear); mount its squashfs on {target} read-only"
            ),
            Step::ReadBootOrder { target } => write!(
                f,
                "boot order: read the files {IMAGE_DIR}/{} names from {target}, in its order (none if there is no list)",
                crate::lower::bootorder::FILE
            ),
            Step::MoveRoot { from, to } => write!(f, "move the root mounted on {from} to {to} (the lower)"),
            Step::MountTmpfs { size, target } => write!(
                f,
                "mount tmpfs on {target} (size {})",
                size.as_deref().unwrap_or("tmpfs default")
            ),
            Step::PrepareUpper { hide } => write!(
                f,
                "create {UPPER} and {WORK}, owned like the lower root; hide {hide} (whiteout)"
            ),
            Step::MountOverlay { target } => {
                let opts: Vec<String> = OVERLAY_OPTIONS.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(
                    f,
                    "mount overlay on {target}: lowerdir={LOWER},upperdir={UPPER},workdir={WORK},{}",
                    opts.join(",")
                )
            }
            Step::NodeFiles { from, overlays, target } => {
                fmt_node_files(f, from, overlays, target)?;
                if *from != NodeFilesSource::None {
                    write!(f, "; record what they put in /etc in {MANIFEST_FILE} (0600, for crctl diff)")?;
                }
                Ok(())
            }
            Step::HandOver { target } => write!(
                f,
                "hand over: {target}/etc/machine-id (the node files' or derived from the boot MAC), /etc/resolv.conf from the lease, {NETWORKD_DIR}/10-clusterroot-<nic>.network, {NM_CONF}, {JOURNALD_CONF}; warn about what would break the node"
            ),
            Step::WriteState => f.write_str("write /run/clusterroot/state"),
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "clusterroot plan ({} {}):", self.action, self.newroot)?;
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "  {}. {s}", i + 1)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/contracts.md lists the `time_<step>_ms` names of the state file: exactly those of
    /// [`Step::name`], in its order.
    #[test]
    fn the_contract_lists_every_timing() {
        let src = include_str!("plan.rs");
        let body = &src[src.find("pub fn name(&self)").unwrap()..];
        let body = &body[..body.find("\n    }\n").unwrap()];
        let names: Vec<&str> = body.split("=> \"").skip(1).map(|s| &s[..s.find('"').unwrap()]).collect();
        let doc = include_str!("../../docs/contracts.md");
        let doc = &doc[doc.find("`time_<step>_ms` per step").expect("contracts.md's timings")..];
        let doc = &doc[..doc.find("and `time_total_ms`").unwrap()];
        let listed: Vec<&str> = doc.split('`').skip(1).step_by(2).skip(1).filter(|w| !w.contains(' ')).collect();
        assert_eq!(listed, names, "docs/contracts.md's time_<step>_ms names");
    }

    fn plan(cmdline: &str, action: Action) -> Result<Plan, CmdlineError> {
        Plan::new(&BootConfig::parse(cmdline).unwrap(), action, "/sysroot")
    }

    #[test]
    fn arp_probe_is_in_the_plan_unless_turned_off() {
        let probe = "an ARP probe first (RFC 5227)";
        let with = plan("ip=dhcp", Action::Mount).unwrap().to_string();
        assert!(with.contains(probe), "{with}");
        let without = plan("ip=dhcp clusterroot.arp_probe=0", Action::Mount).unwrap().to_string();
        assert!(!without.contains(probe), "{without}");
        // No address to set, nothing to probe.
        let existing = plan("nfsroot=10.77.0.1:/srv/root", Action::Mount).unwrap().to_string();
        assert!(!existing.contains(probe), "{existing}");
    }

    #[test]
    fn nfs_overlay_plan_reads_well() {
        let p = plan(
            "ip=10.77.0.11::10.77.0.1:255.255.255.0:node1::off nfsroot=10.77.0.1:/srv/%s,rsize=32768 BOOTIF=01-52-54-00-77-00-0b",
            Action::Mount,
        )
        .unwrap();
        let text = p.to_string();
        let want = "\
clusterroot plan (mount /sysroot):
  1. load NIC drivers: modprobe the modalias of each network device in /sys/bus/pci and /sys/bus/virtio, unless udevd is in the image (then udevd does)
  2. boot NIC: the NIC with MAC 52:54:00:77:00:0b (BOOTIF=); address 10.77.0.11/24, default route via 10.77.0.1, host name node1; wait up to 60 s for link; an ARP probe first (RFC 5227): no other host may hold the address
  3. NFSv4 client identity: clusterroot-<boot MAC> in /sys/fs/nfs/net/nfs_client/identifier
  4. mount nfs 10.77.0.1:/srv/10.77.0.11 on /run/rootfs/lower read-only, vers=4.2, then 4.1, then 4.0, options rsize=32768, addr=10.77.0.1
  5. mount tmpfs on /run/rootfs/cowspace (size tmpfs default)
  6. create /run/rootfs/cowspace/upper and /run/rootfs/cowspace/work, owned like the lower root; hide /etc/overlays (whiteout)
  7. mount overlay on /sysroot: lowerdir=/run/rootfs/lower,upperdir=/run/rootfs/cowspace/upper,workdir=/run/rootfs/cowspace/work,index=off,xino=off,redirect_dir=off,metacopy=off
  8. node files: /etc/overlays/<boot MAC>*.tar, .tar.gz, .tgz, .tar.zst (sorted), then /etc/overlays/<boot MAC>/, onto /sysroot/etc; record what they put in /etc in /run/clusterroot/node-files (0600, for crctl diff)
  9. hand over: /sysroot/etc/machine-id (the node files' or derived from the boot MAC), /etc/resolv.conf from the lease, /run/systemd/network/10-clusterroot-<nic>.network, /run/NetworkManager/conf.d/10-clusterroot.conf, /run/systemd/journald.conf.d/10-clusterroot.conf; warn about what would break the node
  10. write /run/clusterroot/state
";
        assert_eq!(text, want);
    }

    #[test]
    fn nic_choice_order() {
        let p =
            plan("nfsroot=10.0.0.1:/r ip=10.0.0.2:::::eno1:off BOOTIF=01-52-54-00-00-00-01", Action::Mount).unwrap();
        assert!(matches!(&p.steps[1], Step::Network { nic: NicChoice::BootIf(_), .. }));
        let p = plan("nfsroot=10.0.0.1:/r ip=10.0.0.2:::::eno1:off", Action::Mount).unwrap();
        assert!(matches!(&p.steps[1], Step::Network { nic: NicChoice::Device(d), .. } if d == "eno1"));
        let p = plan("nfsroot=10.0.0.1:/r", Action::Mount).unwrap();
        assert!(matches!(
            &p.steps[1],
            Step::Network { nic: NicChoice::SingleWithLink, addressing: Addressing::Existing { .. }, .. }
        ));
    }

    #[test]
    fn plain_mode_has_no_overlay() {
        let p = plan("nfsroot=10.0.0.1:/r ip=10.0.0.2 clusterroot=off", Action::Mount).unwrap();
        assert!(p.steps.iter().any(|s| matches!(s, Step::MountNfs(n) if n.target == "/sysroot")));
        assert!(!p.steps.iter().any(|s| matches!(s, Step::MountOverlay { .. } | Step::NodeFiles { .. })));
    }

    #[test]
    fn v3_skips_the_v4_identity_and_adds_nolock() {
        let p = plan("nfsroot=10.0.0.1:/r,vers=3 ip=10.0.0.2", Action::Mount).unwrap();
        assert!(!p.steps.iter().any(|s| matches!(s, Step::NfsIdentity { .. })));
        let Some(Step::MountNfs(m)) = p.steps.iter().find(|s| matches!(s, Step::MountNfs(_))) else { panic!() };
        let m = m.resolve(None, "eth0").unwrap();
        let opts = m.options_for("3", "10.0.0.2".parse().unwrap());
        assert!(opts.contains(&("nolock".into(), None)));
        assert!(!opts.iter().any(|(k, _)| k == "clientaddr"));
    }

    #[test]
    fn missing_server_is_an_error() {
        let err = plan("nfsroot=/srv/root", Action::Mount).unwrap_err().to_string();
        assert!(err.starts_with("nfsroot=/srv/root: names no server"), "{err}");
        let err = plan("root=/dev/nfs", Action::Mount).unwrap_err().to_string();
        assert!(err.starts_with("root=/dev/nfs: needs nfsroot="), "{err}");
        assert!(plan("nfsroot=/srv/root ip=10.0.0.2:10.0.0.1", Action::Mount).is_ok());
    }

    #[test]
    fn dhcp_plans() {
        use crate::net::Lease;
        let lease = Lease {
            server: Some("10.77.0.1".parse().unwrap()),
            root_path: Some("10.77.0.5:/srv/root,vers=3".into()),
            ..Lease::default()
        };
        // Only ip=dhcp: every NIC races, the root path names the lower.
        let p = plan("ip=dhcp", Action::Mount).unwrap();
        assert_eq!(p.steps[0], Step::LoadNicDrivers);
        assert!(matches!(
            &p.steps[1],
            Step::Network { nic: NicChoice::FirstLease, addressing: Addressing::Dhcp { hostname: None }, .. }
        ));
        let Some(Step::MountNfs(n)) = p.steps.iter().find(|s| matches!(s, Step::MountNfs(_))) else { panic!() };
        let m = n.resolve(Some(&lease), "eth0").unwrap();
        assert_eq!(
            (m.server.to_string(), m.path.as_str(), m.version),
            ("10.77.0.5".into(), "/srv/root", NfsVersion::V3)
        );
        assert!(
            p.to_string().contains("mount nfs from the DHCP root path (option 17; server default <DHCP server>)"),
            "{p}"
        );
        let err = n.resolve(Some(&Lease::default()), "eth0").unwrap_err();
        assert!(err.contains("gives no root path (option 17)"), "{err}");
        // A root path without a server: the DHCP server.
        let l2 = Lease { root_path: Some("/srv/root".into()), ..lease.clone() };
        assert_eq!(n.resolve(Some(&l2), "eth0").unwrap().server.to_string(), "10.77.0.1");
        // nfsroot= without a server and ip=dhcp: the server identifier.
        let p = plan("ip=:::::eth1:dhcp nfsroot=/srv/root", Action::Mount).unwrap();
        assert!(matches!(&p.steps[1], Step::Network { nic: NicChoice::Device(d), .. } if d == "eth1"));
        let Some(Step::MountNfs(n)) = p.steps.iter().find(|s| matches!(s, Step::MountNfs(_))) else { panic!() };
        let m = n.resolve(Some(&lease), "eth1").unwrap();
        assert_eq!((m.server.to_string(), m.path.as_str()), ("10.77.0.1".into(), "/srv/root"));
        assert!(n.resolve(Some(&Lease::default()), "eth1").unwrap_err().contains("names no server"));
        // A local root wins over ip=dhcp: the master's lower is its own disk.
        assert!(matches!(plan("ip=dhcp root=LABEL=x", Action::Mount).unwrap().steps[0], Step::WaitDevice { .. }));
    }

    #[test]
    fn local_device_plan() {
        let p = plan("root=LABEL=croot rw BOOTIF=01-52-54-00-77-00-0b", Action::Mount).unwrap();
        let text = p.to_string();
        assert!(text.contains("1. wait for root device LABEL=croot (/dev/disk/by-label/croot)"), "{text}");
        assert!(text.contains("2. mount <probed type> LABEL=croot on /run/rootfs/lower read-write (rw)"), "{text}");
        assert!(text.contains("3. boot MAC for node files: the NIC with MAC 52:54:00:77:00:0b (BOOTIF=)"), "{text}");
        assert!(text.contains("mount overlay on /sysroot"), "{text}");
        let p = plan("root=UUID=abcd clusterroot=off", Action::Mount).unwrap();
        assert!(matches!(p.steps.last(), Some(Step::WriteState)));
        assert!(p.steps.iter().any(|s| matches!(s, Step::MountDevice { target, .. } if target == "/sysroot")));
        let text = plan("root=zfs:tank/root zfs_force=1", Action::Mount).unwrap().to_string();
        assert!(text.contains("1. import ZFS pool tank without mounting (zpool import -N -f tank)"), "{text}");
        assert!(text.contains("2. mount zfs tank/root on /run/rootfs/lower read-only"), "{text}");
        assert!(text.contains("3. load NIC drivers: modprobe"), "{text}");
        assert!(text.contains("4. boot MAC for node files"), "{text}");
        let err = plan("zfs=bootfs", Action::Mount).unwrap_err().to_string();
        assert!(err.starts_with("zfs=bootfs: the agent mounts a named dataset"), "{err}");
        assert!(plan("zfs=bootfs", Action::Overlay).is_ok());
        let p = plan("zfs=tank/root clusterroot=off", Action::Mount).unwrap();
        assert!(matches!(&p.steps[1], Step::MountZfs { rw: false, target, .. } if target == "/sysroot"));
        assert!(!p.steps.iter().any(|s| matches!(s, Step::MountOverlay { .. })));
        // nfsroot= wins over a local root=.
        assert!(matches!(
            plan("root=LABEL=x nfsroot=10.0.0.1:/r ip=10.0.0.2", Action::Mount).unwrap().steps[1],
            Step::Network { .. }
        ));
    }

    /// The maintenance boot (`clusterroot=off`) of a local lower is read-only: with `rw` the
    /// booted system would write its identity into the shared image. NFS lowers are read-only
    /// anyway, and so is a pinned version of an image store.
    #[test]
    fn maintenance_boot_with_rw_on_a_local_lower_is_refused() {
        for cmdline in [
            "root=LABEL=cluster rw clusterroot=off",
            "root=/dev/sda1 ro clusterroot=off rw",
            "zfs=tank/root rw clusterroot=off",
            "root=zfs:tank/root clusterroot=0 rw",
        ] {
            let err = plan(cmdline, Action::Mount).unwrap_err();
            assert_eq!(err, CmdlineError::PlainRw, "{cmdline}");
            assert!(err.to_string().starts_with("clusterroot=off with rw: the booted system would write"), "{err}");
        }
        for cmdline in [
            "root=LABEL=cluster ro clusterroot=off",
            "root=LABEL=cluster rw ro clusterroot=off",
            "root=LABEL=cluster rw",
            "nfsroot=10.0.0.1:/r ip=10.0.0.2 rw clusterroot=off",
            "root=LABEL=cluster rw clusterroot=off clusterroot.image=default",
        ] {
            assert!(plan(cmdline, Action::Mount).is_ok(), "{cmdline}");
        }
    }

    /// The NICs' drivers load in one step, once, just before the first step that looks for a
    /// NIC; never where no step does.
    #[test]
    fn nic_drivers_load_once_before_the_first_nic_step() {
        let steps = |cmdline: &str, action: Action| -> Vec<&'static str> {
            plan(cmdline, action).unwrap().steps.iter().map(Step::name).collect()
        };
        assert_eq!(
            steps("nfsroot=10.0.0.1:/r ip=dhcp", Action::Mount)[..4],
            ["nic_drivers", "network", "nfs_identity", "lower"]
        );
        assert_eq!(
            steps("nfsroot=10.0.0.1:/r,vers=3 ip=10.0.0.2 clusterroot=off", Action::Mount),
            ["nic_drivers", "network", "lower", "state"]
        );
        assert_eq!(steps("root=LABEL=x", Action::Mount)[..4], ["device", "lower", "nic_drivers", "boot_mac"]);
        assert_eq!(steps("root=LABEL=x ip=:::::eth0:off", Action::Overlay)[..3], ["lower", "nic_drivers", "boot_mac"]);
        for (cmdline, action) in [
            ("root=LABEL=x nfsroot=10.0.0.1:/r ip=dhcp clusterroot.image=3", Action::Mount),
            ("zfs=tank/root", Action::Mount),
            ("root=LABEL=x", Action::Overlay),
        ] {
            let p = plan(cmdline, action).unwrap();
            let n = p.steps.iter().filter(|s| **s == Step::LoadNicDrivers).count();
            assert_eq!(n, 1, "{cmdline}: {p}");
        }
        // No step looks for a NIC: a local root with clusterroot=off, or BOOTIF= naming the
        // boot MAC outright.
        for (cmdline, action) in [
            ("root=LABEL=x clusterroot=off", Action::Mount),
            ("zfs=tank/root BOOTIF=01-52-54-00-77-00-0b", Action::Mount),
            ("root=LABEL=x BOOTIF=01-52-54-00-77-00-0b", Action::Overlay),
        ] {
            let p = plan(cmdline, action).unwrap();
            assert!(!p.steps.contains(&Step::LoadNicDrivers), "{cmdline}: {p}");
        }
    }

    #[test]
    fn latehook_plan_moves_the_root() {
        let p = plan("root=LABEL=croot", Action::Overlay).unwrap();
        assert_eq!(p.steps[0], Step::MoveRoot { from: "/sysroot".into(), to: LOWER.into() });
        assert_eq!(p.steps[1], Step::LoadNicDrivers);
        assert!(matches!(p.steps[2], Step::FindBootMac { .. }));
    }

    #[test]
    fn an_image_store_is_mounted_then_one_version_pinned() {
        let text = plan("nfsroot=10.0.0.1:/srv/nfs/images ip=dhcp clusterroot.image=default", Action::Mount)
            .unwrap()
            .to_string();
        assert!(text.contains("4. mount nfs 10.0.0.1:/srv/nfs/images on /run/rootfs/images read-only"), "{text}");
        assert!(text.contains("5. image: read /run/rootfs/images/default, mount the version the store's default names on /run/rootfs/lower read-only"), "{text}");
        assert!(text.contains("6. mount tmpfs"), "{text}");
        let p = plan("root=LABEL=cluster rw clusterroot.image=4", Action::Mount).unwrap();
        assert!(matches!(&p.steps[1], Step::MountDevice { rw: true, target, .. } if target == IMAGES));
        assert_eq!(p.steps[2], Step::PinImage { choice: ImageChoice::Version("4".into()), target: LOWER.into() });
        // A ZFS store is only read; its versions are datasets mounted read-only.
        let p = plan("zfs=tank/images rw clusterroot.image=default clusterroot=off", Action::Mount).unwrap();
        assert!(matches!(&p.steps[1], Step::MountZfs { rw: false, target, .. } if target == IMAGES));
        assert_eq!(p.steps[2], Step::PinImage { choice: ImageChoice::Default, target: "/sysroot".into() });
        let err = plan("root=LABEL=x clusterroot.image=default", Action::Overlay).unwrap_err().to_string();
        assert!(err.starts_with("clusterroot.image: needs the clusterroot mount handler"), "{err}");
        let err = BootConfig::parse("root=LABEL=x clusterroot.image=edit").unwrap_err().to_string();
        assert!(err.starts_with("clusterroot.image=edit: names the working copy"), "{err}");
    }
}
