//! clusterroot: one shared root for every node — lower (NFS or local), tmpfs upper, overlay,
//! per-node files — set up from the initramfs before `switch_root`.

// Errors carry their objects and the kernel's text; they happen once per boot at most, so their
// size does not matter.
#![allow(clippy::result_large_err)]

pub mod cmdline;
pub mod kmsg;
pub mod lower;
pub mod mac;
pub mod mount;
pub mod net;
pub mod nodefiles;
pub mod overlay;
pub mod plan;
pub mod rng;
pub mod root;
pub mod state;

use std::time::{Duration, Instant};

use cmdline::{BootConfig, CmdlineError, Mode};
use kmsg::Log;
use lower::nfs::NfsError;
use lower::{block, nfs, zfs};
use mac::MacAddress;
use net::netlink::{Netlink, NetlinkError};
use net::nic::NetError;
use net::{dhcp, Addressing, BootNic, NicChoice};
use overlay::OverlayError;
use plan::{Action, Plan, Step, LOWER};
use root::Root;
use state::State;

/// Exit codes, as documented in `docs/contracts.md` and the install hook's help.
pub mod exit {
    pub const OK: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const CMDLINE: u8 = 2;
    pub const NETWORK: u8 = 3;
    pub const LOWER: u8 = 4;
    pub const OVERLAY: u8 = 5;
    pub const USAGE: u8 = 64;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading the kernel command line from {path} failed: {cause}")]
    ReadCmdline { path: String, cause: std::io::Error },
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Dhcp(#[from] dhcp::DhcpError),
    #[error(transparent)]
    Nfs(#[from] NfsError),
    #[error("{0}")]
    NfsSource(String),
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    #[error(transparent)]
    Block(#[from] block::BlockError),
    #[error(transparent)]
    Zfs(#[from] zfs::ZfsError),
    #[error("the plan has {step} before the boot NIC is known (a bug: please report it)")]
    Order { step: &'static str },
}

impl Error {
    /// The documented exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::ReadCmdline { .. } | Error::Order { .. } => exit::INTERNAL,
            Error::Cmdline(_) => exit::CMDLINE,
            Error::Net(_) | Error::Netlink(_) | Error::Dhcp(_) => exit::NETWORK,
            Error::NfsSource(_) => exit::LOWER,
            Error::Nfs(_) | Error::Block(_) | Error::Zfs(_) => exit::LOWER,
            Error::Overlay(_) => exit::OVERLAY,
        }
    }
}

/// What `main` asks for.
#[derive(Debug, Clone)]
pub struct Options {
    pub action: Action,
    pub newroot: String,
    pub dry_run: bool,
    pub root: Root,
}

/// Reads the command line and builds the plan, without touching anything.
pub fn plan(opts: &Options) -> Result<(BootConfig, Plan), Error> {
    let path = opts.root.path("/proc/cmdline");
    let text = std::fs::read_to_string(&path)
        .map_err(|cause| Error::ReadCmdline { path: path.display().to_string(), cause })?;
    let cfg = BootConfig::parse(&text)?;
    let plan = Plan::new(&cfg, opts.action, &opts.newroot)?;
    Ok((cfg, plan))
}

/// Runs the whole boot step: plan, then execute. With `dry_run`, prints the plan instead.
pub fn run(opts: &Options, log: &mut Log) -> Result<(), Error> {
    let (cfg, plan) = plan(opts)?;
    log.debug = cfg.debug;
    if opts.dry_run {
        print!("{plan}");
        return Ok(());
    }
    log.debug(&format!("{plan}"));
    Executor::new(&opts.root, &cfg, log).run(&plan)
}

/// How a local lower is mounted, for the log.
fn local_access(rw: bool) -> &'static str {
    if rw {
        "read-write (rw: changes go to the shared image)"
    } else {
        "read-only"
    }
}

/// Carries out a plan, step by step, timing each.
struct Executor<'a> {
    root: &'a Root,
    cfg: &'a BootConfig,
    log: &'a Log,
    start: Instant,
    deadline: Instant,
    netlink: Option<Netlink>,
    boot: Option<BootNic>,
    boot_mac: Option<MacAddress>,
    lease: Option<net::Lease>,
    device: Option<std::path::PathBuf>,
    state: State,
}

impl<'a> Executor<'a> {
    fn new(root: &'a Root, cfg: &'a BootConfig, log: &'a Log) -> Executor<'a> {
        let start = Instant::now();
        Executor {
            root,
            cfg,
            log,
            start,
            deadline: start + cfg.timeout,
            netlink: None,
            boot: None,
            boot_mac: None,
            lease: None,
            device: None,
            state: State { mode: if cfg.mode == Mode::Plain { "plain" } else { "overlay" }, ..State::default() },
        }
    }

    fn netlink(&mut self) -> Result<&mut Netlink, Error> {
        if self.netlink.is_none() {
            self.netlink = Some(Netlink::open()?);
        }
        Ok(self.netlink.as_mut().expect("just opened"))
    }

    fn run(mut self, plan: &Plan) -> Result<(), Error> {
        for step in &plan.steps {
            let t = Instant::now();
            let name = self.step(step)?;
            self.state.timings.push((name, t.elapsed()));
        }
        self.summary(plan);
        Ok(())
    }

    fn step(&mut self, step: &Step) -> Result<&'static str, Error> {
        let log = self.log;
        match step {
            Step::Network { nic, addressing, .. } => {
                let deadline = self.deadline;
                let timeout = self.cfg.timeout;
                let root = self.root;
                let nl = self.netlink()?;
                let boot = match addressing {
                    Addressing::Dhcp { hostname } => {
                        let fixed = match nic {
                            NicChoice::BootIf(_) | NicChoice::Device(_) => {
                                Some(net::nic::find_nic(root, nic, deadline, nl, log)?)
                            }
                            _ => None,
                        };
                        let candidates =
                            || fixed.clone().map(|n| vec![n]).unwrap_or_else(|| net::nic::list_ethernet(root));
                        match net::nic::existing_address(&candidates(), nl)? {
                            Some(boot) => {
                                log.info(&format!(
                                    "{} already has {}/{}; using it as it is (no DHCP)",
                                    boot.nic, boot.address, boot.prefix
                                ));
                                boot
                            }
                            None => {
                                let (won, lease) =
                                    dhcp::acquire(root, &candidates, hostname.as_deref(), deadline, timeout, nl, log)?;
                                let boot = net::nic::apply_lease(root, &won, &lease, hostname.as_deref(), nl, log)?;
                                let opt = |label: &str, v: Option<String>| {
                                    v.map(|v| format!(", {label} {v}")).unwrap_or_default()
                                };
                                log.info(&format!(
                                    "DHCP lease on {}: {}/{} from {}{}{}{}{}",
                                    won.name,
                                    boot.address,
                                    boot.prefix,
                                    lease.server.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                                    opt("router", lease.router.map(|r| r.to_string())),
                                    opt("host name", lease.hostname.clone()),
                                    opt("MTU", lease.mtu.map(|m| m.to_string())),
                                    opt("root path", lease.root_path.clone()),
                                ));
                                self.lease = Some(lease);
                                boot
                            }
                        }
                    }
                    _ => {
                        let found = net::nic::find_nic(root, nic, deadline, nl, log)?;
                        net::nic::configure(root, &found, addressing, deadline, nl, log)?
                    }
                };
                log.info(&format!("boot NIC {} is up with {}/{}", boot.nic, boot.address, boot.prefix));
                self.state.boot_iface = boot.nic.name.clone();
                self.state.boot_mac = boot.nic.mac.to_string();
                self.state.address = format!("{}/{}", boot.address, boot.prefix);
                // The kernel's "(none)" means no host name is set.
                let name = rustix::system::uname().nodename().to_string_lossy().into_owned();
                self.state.hostname = if name == "(none)" { String::new() } else { name };
                self.boot_mac = Some(boot.nic.mac);
                self.boot = Some(boot);
                Ok("network")
            }
            Step::FindBootMac { nic } => {
                self.boot_mac = self.find_boot_mac(nic)?;
                if let Some(mac) = self.boot_mac {
                    self.state.boot_mac = mac.to_string();
                }
                Ok("boot_mac")
            }
            Step::NfsIdentity { given } => {
                let mac = self.boot_mac.ok_or(Error::Order { step: "the NFSv4 identity" })?;
                self.state.nfs_identity = nfs::set_identity(self.root, mac, given.as_deref(), log)?;
                Ok("nfs_identity")
            }
            Step::MountNfs(plan) => {
                let boot = self.boot.as_ref().ok_or(Error::Order { step: "the NFS mount" })?;
                let m = &plan.resolve(self.lease.as_ref(), &boot.nic.name).map_err(Error::NfsSource)?;
                let seed = boot.nic.mac.seed() ^ self.start.elapsed().as_nanos() as u64;
                let mounted = nfs::mount(m, boot.address, seed, self.deadline, self.cfg.timeout, log)?;
                log.info(&format!("lower: nfs {} (vers={}) on {} read-only", mounted.source, mounted.vers, m.target));
                self.state.lower_source = mounted.source;
                self.state.lower_type = format!("nfs{}", mounted.vers);
                Ok("lower")
            }
            Step::WaitDevice { device } => {
                let path = block::wait(self.root, device, self.deadline, self.cfg.timeout)?;
                log.info(&format!("root device {device} is {}", path.display()));
                self.device = Some(path);
                Ok("device")
            }
            Step::MountDevice { device, fstype, flags, rw, target } => {
                let path = self.device.clone().ok_or(Error::Order { step: "the device mount" })?;
                let fstype = match fstype.as_deref().or_else(|| block::probe_fstype(&path)) {
                    Some(t) => t.to_string(),
                    None => return Err(block::BlockError::UnknownFs { device: path.display().to_string() }.into()),
                };
                block::mount_device(&path, &fstype, flags.as_deref(), *rw, target)?;
                let how = local_access(*rw);
                log.info(&format!("lower: {fstype} {device} ({}) on {target} {how}", path.display()));
                self.state.lower_source = format!("{device}");
                self.state.lower_type = fstype;
                Ok("lower")
            }
            Step::ImportPool { pool, options, param } => {
                if zfs::import(self.root, pool, options, param, self.deadline, self.cfg.timeout)? {
                    log.info(&format!("ZFS pool {pool} imported (nothing mounted)"));
                } else {
                    log.info(&format!("ZFS pool {pool} was imported already"));
                }
                Ok("pool")
            }
            Step::MountZfs { dataset, rw, param, target } => {
                let mountpoint = zfs::mountpoint(self.root, dataset, param, self.deadline)?;
                let zfsutil = mountpoint != "legacy";
                zfs::mount_dataset(dataset, zfsutil, *rw, target)?;
                let how = local_access(*rw);
                let opt = if zfsutil { format!(", zfsutil: mountpoint {mountpoint}") } else { ", legacy".into() };
                log.info(&format!("lower: zfs {dataset}{opt}, on {target} {how}"));
                self.state.lower_source = dataset.to_string();
                self.state.lower_type = "zfs".into();
                Ok("lower")
            }
            Step::MoveRoot { from, to } => {
                let (source, fstype) = self.mount_source(from);
                overlay::move_root(from, to)?;
                log.info(&format!("lower: {fstype} {source} moved from {from} to {to}"));
                self.state.lower_source = source;
                self.state.lower_type = fstype;
                Ok("lower")
            }
            Step::MountTmpfs { size, target } => {
                overlay::mount_tmpfs(size.as_deref(), target)?;
                Ok("cowspace")
            }
            Step::PrepareUpper { hide } => {
                if overlay::prepare_upper(hide, log)? {
                    log.debug(&format!("{hide} hidden from the running system"));
                }
                Ok("upper")
            }
            Step::MountOverlay { target } => {
                overlay::mount_overlay(target)?;
                log.info(&format!("overlay on {target}: lower {LOWER}, upper tmpfs"));
                Ok("overlay")
            }
            Step::MoveLowerToRoot { target } => {
                overlay::move_root(LOWER, target)?;
                log.info(&format!("clusterroot=off: the lower itself is the root on {target}, no overlay"));
                Ok("overlay")
            }
            Step::NodeFiles { overlays, target } => {
                match self.boot_mac {
                    None => log.warn("no boot MAC known: node files skipped"),
                    Some(mac) => match nodefiles::apply(LOWER, overlays, &mac, target, log) {
                        Ok(applied) => self.state.node_files = applied,
                        Err(e) => log.warn(&format!("node files: {e}; the boot goes on without them")),
                    },
                }
                Ok("node_files")
            }
            Step::WriteState => {
                self.state.total = self.start.elapsed();
                if let Err(e) = self.state.write(self.root) {
                    log.warn(&format!("writing {} failed: {e}", state::STATE_FILE));
                }
                Ok("state")
            }
        }
    }

    /// The boot MAC for node files when no network is configured (late hook).
    fn find_boot_mac(&mut self, nic: &NicChoice) -> Result<Option<MacAddress>, Error> {
        if let NicChoice::BootIf(mac) = nic {
            return Ok(Some(*mac));
        }
        let nics = net::nic::list_ethernet(self.root);
        if nics.is_empty() {
            self.log.warn("no Ethernet NIC found: node files skipped (name one with BOOTIF= if its driver loads late)");
            return Ok(None);
        }
        if let NicChoice::SingleWithLink = nic {
            if nics.len() == 1 {
                self.state.boot_iface = nics[0].name.clone();
                return Ok(Some(nics[0].mac));
            }
        }
        let deadline = self.deadline;
        let root = self.root;
        let log = self.log;
        let nl = self.netlink()?;
        let found = net::nic::find_nic(root, nic, deadline, nl, log)?;
        self.state.boot_iface = found.name.clone();
        Ok(Some(found.mac))
    }

    /// Source and type of the mount on `path`, from `/proc/self/mounts`.
    fn mount_source(&self, path: &str) -> (String, String) {
        let text = std::fs::read_to_string(self.root.path("/proc/self/mounts")).unwrap_or_default();
        text.lines()
            .rev()
            .find_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                (f.len() >= 3 && f[1] == path).then(|| (f[0].to_string(), f[2].to_string()))
            })
            .unwrap_or_else(|| ("?".into(), "?".into()))
    }

    fn summary(&self, plan: &Plan) {
        let secs = |d: Duration| format!("{:.2}", d.as_secs_f64());
        let total = self.start.elapsed();
        let steps: Vec<String> = self.state.timings.iter().map(|(n, d)| format!("{n} {}", secs(*d))).collect();
        let files =
            if self.state.node_files.is_empty() { "none".to_string() } else { self.state.node_files.join(", ") };
        let what = match self.cfg.mode {
            Mode::Overlay => format!(
                "{} is overlay over {} {} + tmpfs",
                plan.newroot, self.state.lower_type, self.state.lower_source
            ),
            Mode::Plain => {
                format!("{} is {} {} (clusterroot=off)", plan.newroot, self.state.lower_type, self.state.lower_source)
            }
        };
        let mac = if self.state.boot_mac.is_empty() { "unknown" } else { &self.state.boot_mac };
        self.log.info(&format!(
            "ready: {what}; boot MAC {mac}; node files: {files}; {} s ({})",
            secs(total),
            steps.join(", ")
        ));
    }
}
