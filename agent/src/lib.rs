//! clusterroot: one shared root for every node — lower (NFS or local), tmpfs upper, overlay,
//! per-node files — set up from the initramfs before `switch_root`.

// Errors carry their objects and the kernel's text; they happen once per boot at most, so their
// size does not matter.
#![allow(clippy::result_large_err)]

pub mod claim;
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
pub mod watchdog;

use cmdline::{BootConfig, CmdlineError};
use exec::Executor;
use kmsg::Log;
use lower::block::BlockError;
use lower::nfs::NfsError;
use lower::zfs::ZfsError;
use net::arp::ArpError;
use net::dhcp::DhcpError;
use net::netlink::NetlinkError;
use net::nic::NetError;
use overlay::OverlayError;
use plan::{Action, Plan};
use root::Root;

/// Exit codes. The source of the list: `docs/contracts.md`, `clusterroot --help`, and the
/// hooks that explain a code (mkinitcpio's runtime hook, dracut's mount hook) are checked
/// against it (`every_exit_code_is_explained_everywhere`, below).
pub mod exit {
    pub const OK: u8 = 0;
    pub const INTERNAL: u8 = 1;
    pub const CMDLINE: u8 = 2;
    pub const NETWORK: u8 = 3;
    pub const LOWER: u8 = 4;
    pub const OVERLAY: u8 = 5;
    /// The environment: `/proc/cmdline` cannot be read (`/proc` not mounted).
    pub const ENVIRONMENT: u8 = 6;
    /// The node files a named source (`clusterroot.nodefiles=`) should give could not be had.
    pub const NODEFILES: u8 = 7;
    pub const USAGE: u8 = 64;
    /// Every code above.
    pub const ALL: &[u8] = &[OK, INTERNAL, CMDLINE, NETWORK, LOWER, OVERLAY, ENVIRONMENT, NODEFILES, USAGE];
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    ReadCmdline(#[from] root::CmdlineUnreadable),
    #[error(transparent)]
    Cmdline(#[from] CmdlineError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Dhcp(#[from] DhcpError),
    #[error(transparent)]
    Arp(#[from] ArpError),
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
    #[error(transparent)]
    Fetch(#[from] crate::lower::fetch::FetchError),
    #[error(transparent)]
    Loop(#[from] crate::lower::loopdev::LoopError),
    /// A squashfs image on NFS: every replica failed (each one's failure, in one line).
    #[error("{0}")]
    NfsImage(String),
    #[error("the plan has {step} before the boot NIC is known (a bug: please report it)")]
    Order { step: &'static str },
    /// A named node-files source failed this node: see [`exec::NodeFilesRequired`].
    #[error(transparent)]
    NodeFiles(#[from] exec::NodeFilesRequired),
}

impl Error {
    /// The documented exit code for this failure.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Order { .. } => exit::INTERNAL,
            Error::ReadCmdline(_) => exit::ENVIRONMENT,
            Error::Cmdline(_) => exit::CMDLINE,
            Error::Net(_) | Error::Netlink(_) | Error::Dhcp(_) | Error::Arp(_) => exit::NETWORK,
            Error::NfsSource(_) => exit::LOWER,
            Error::Nfs(_) | Error::Block(_) | Error::Zfs(_) | Error::Image(_) => exit::LOWER,
            Error::Fetch(_) | Error::Loop(_) | Error::NfsImage(_) => exit::LOWER,
            Error::Overlay(_) => exit::OVERLAY,
            Error::NodeFiles(_) => exit::NODEFILES,
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
    // Bytes, not text: a byte that is not UTF-8 in someone else's parameter (console=, a boot
    // menu's encoding) is no reason to fail the boot; the parser judges only its own keys.
    let bytes = opts.root.read_cmdline()?;
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

#[cfg(test)]
mod tests {
    use super::exit;

    /// Each exit code has its row in docs/contracts.md, its place in `--help`, and its own
    /// explanation in both hooks that explain codes; none of them names a code that is not one.
    #[test]
    fn every_exit_code_is_explained_everywhere() {
        let contracts = include_str!("../../docs/contracts.md");
        let usage = include_str!("main.rs");
        let usage = &usage[usage.find("Exit codes:").expect("--help lists the exit codes")..];
        let usage = &usage[..usage.find("\";").expect("the end of USAGE")];
        // Each hook's case statement that explains a code, from the line that starts it.
        let hooks = [
            ("hooks/hooks/clusterroot", include_str!("../../hooks/hooks/clusterroot"), "clusterroot_reason() {"),
            (
                "dracut/90clusterroot/clusterroot-mount.sh",
                include_str!("../../dracut/90clusterroot/clusterroot-mount.sh"),
                "case $_clusterroot_rc in",
            ),
        ];
        let rows: Vec<u8> =
            contracts.lines().filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok()).collect();
        assert_eq!(rows, exit::ALL, "docs/contracts.md's exit code table");
        // README's Troubleshooting: a row for every failure, most common first.
        let readme = include_str!("../../README.md");
        let readme = &readme[readme.find("## Troubleshooting").expect("README's Troubleshooting")..];
        let readme = &readme[readme.find("| code |").expect("its exit code table")..];
        let mut rows: Vec<u8> = readme
            .lines()
            .take_while(|l| l.starts_with('|'))
            .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
            .collect();
        rows.sort_unstable();
        assert_eq!(rows, &exit::ALL[1..], "README's exit code table (Troubleshooting)");
        for code in exit::ALL {
            assert!(usage.contains(&format!(" {code} ")), "clusterroot --help's exit codes lack {code}: {usage}");
        }
        // The man page's EXIT STATUS: a tagged paragraph per code, in order.
        let man = include_str!("../clusterroot.8");
        let man = &man[man.find(".SH EXIT STATUS").expect("clusterroot.8 has an EXIT STATUS")..];
        let man = &man[..man[1..].find(".SH ").map_or(man.len(), |i| i + 1)];
        let lines: Vec<&str> = man.lines().collect();
        let tags: Vec<u8> =
            lines.windows(2).filter(|w| w[0] == ".TP").filter_map(|w| w[1].strip_prefix(".B ")?.parse().ok()).collect();
        assert_eq!(tags, exit::ALL, "clusterroot.8's EXIT STATUS");
        for (name, text, start) in hooks {
            let text = &text[text.find(start).unwrap_or_else(|| panic!("{name} has no {start:?}"))..];
            let text = &text[..text.find("esac").unwrap_or(text.len())];
            let cases: Vec<u8> = text
                .lines()
                .filter_map(|l| l.trim_start().split_once(") ")?.0.split(" | ").next()?.parse().ok())
                .filter(|c| *c < 126)
                .collect();
            let want: Vec<u8> = exit::ALL.iter().copied().filter(|c| *c != exit::OK).collect();
            assert_eq!(cases, want, "the exit codes {name} explains");
        }
    }
}
