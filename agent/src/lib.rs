//! clusterroot: one shared root for every node — lower (NFS or local), tmpfs upper, overlay,
//! per-node files — set up from the initramfs before `switch_root`.

// Errors carry their objects and the kernel's text; they happen once per boot at most, so their
// size does not matter.
#![allow(clippy::result_large_err)]

pub mod cmdline;
mod exec;
pub mod generator;
pub mod handover;
pub mod kmsg;
pub mod lower;
pub mod mac;
pub mod manifest;
pub mod mount;
pub mod net;
pub mod nodefiles;
pub mod nodesource;
pub mod overlay;
pub mod plan;
pub mod rng;
pub mod root;
pub mod state;

use cmdline::{BootConfig, CmdlineError};
use exec::Executor;
use kmsg::Log;
use lower::block::BlockError;
use lower::nfs::NfsError;
use lower::zfs::ZfsError;
use net::dhcp::DhcpError;
use net::netlink::NetlinkError;
use net::nic::NetError;
use overlay::OverlayError;
use plan::{Action, Plan};
use root::Root;

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
    Dhcp(#[from] DhcpError),
    #[error(transparent)]
    Nfs(#[from] NfsError),
    #[error("{0}")]
    NfsSource(String),
    #[error(transparent)]
    Overlay(#[from] OverlayError),
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Zfs(#[from] ZfsError),
    #[error(transparent)]
    Image(#[from] crate::lower::image::ImageError),
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
            Error::Nfs(_) | Error::Block(_) | Error::Zfs(_) | Error::Image(_) => exit::LOWER,
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
    // Bytes, not text: a byte that is not UTF-8 in someone else's parameter (console=, a boot
    // menu's encoding) is no reason to fail the boot; the parser judges only its own keys.
    let bytes = std::fs::read(&path).map_err(|cause| Error::ReadCmdline { path: path.display().to_string(), cause })?;
    let cfg = BootConfig::parse_bytes(&bytes)?;
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
