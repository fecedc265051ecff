//! Boot settings → an ordered list of steps, printable with `--dry-run`; no I/O.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::Duration;

use crate::cmdline::{BootConfig, CmdlineError, IpConfig, Mode, NfsOption, NfsVersion, StaticIp};
use crate::mac::MacAddress;

/// Where the layers live; `/run` moves into the new root at `switch_root`, so they stay visible.
pub const LOWER: &str = "/run/rootfs/lower";
pub const COWSPACE: &str = "/run/rootfs/cowspace";
pub const UPPER: &str = "/run/rootfs/cowspace/upper";
pub const WORK: &str = "/run/rootfs/cowspace/work";
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

/// How the boot NIC is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NicChoice {
    BootIf(MacAddress),
    Device(String),
    /// The only Ethernet NIC with a link; an error listing NICs otherwise.
    SingleWithLink,
}

impl fmt::Display for NicChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NicChoice::BootIf(mac) => write!(f, "the NIC with MAC {mac} (BOOTIF=)"),
            NicChoice::Device(d) => write!(f, "{d} (device in ip=)"),
            NicChoice::SingleWithLink => f.write_str("the only Ethernet NIC with a link"),
        }
    }
}

/// How the boot NIC gets its address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addressing {
    Static(StaticIp),
    /// Use the address the interface already has (another hook configured it).
    Existing {
        because: &'static str,
    },
}

/// The NFS lower, before the client address is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsMount {
    pub server: Ipv4Addr,
    /// Export path; may still hold `%s` when the client address comes from the interface.
    pub path: String,
    pub version: NfsVersion,
    pub options: Vec<NfsOption>,
    pub target: String,
}

impl NfsMount {
    /// The full option list for one attempt, as the kernel's NFS client gets it.
    pub fn options_for(&self, vers: &str, client: Ipv4Addr) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = vec![("vers".into(), Some(vers.into()))];
        let has = |k: &str| self.options.iter().any(|o| o.key == k);
        if !has("addr") {
            out.push(("addr".into(), Some(self.server.to_string())));
        }
        if vers.starts_with('4') && !has("clientaddr") {
            out.push(("clientaddr".into(), Some(client.to_string())));
        }
        if vers == "3" && !has("nolock") && !has("lock") {
            out.push(("nolock".into(), None));
        }
        out.extend(self.options.iter().map(|o| (o.key.clone(), o.value.clone())));
        out
    }

    pub fn source(&self, client: Option<Ipv4Addr>) -> String {
        let path = match client {
            Some(ip) => self.path.replace("%s", &ip.to_string()),
            None => self.path.clone(),
        };
        format!("{}:{}", self.server, path)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Find the boot NIC, give it its address and route, wait for its link.
    Network {
        nic: NicChoice,
        addressing: Addressing,
        timeout: Duration,
    },
    /// Find the boot NIC's MAC without configuring anything (for node files).
    FindBootMac {
        nic: NicChoice,
    },
    /// Per-node NFSv4 client identity, set before the first NFSv4 mount.
    NfsIdentity {
        given: Option<String>,
    },
    MountNfs(NfsMount),
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
    /// Plain mode: the lower itself becomes the root.
    MoveLowerToRoot {
        target: String,
    },
    NodeFiles {
        overlays: String,
        target: String,
    },
    WriteState,
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
        let mut steps = Vec::new();
        let nic = nic_choice(cfg);
        match action {
            Action::Mount => {
                let Some(nfs) = &cfg.nfsroot else {
                    if cfg.wants_nfs() {
                        return Err(CmdlineError::BadParam {
                            param: "root=/dev/nfs".into(),
                            reason: "needs nfsroot=<server-ip>:<root-dir> naming the export".into(),
                        });
                    }
                    return Err(CmdlineError::BadParam {
                        param: "nfsroot".into(),
                        reason: "is missing: the clusterroot mount handler mounts an NFS lower; give nfsroot=<server-ip>:<root-dir>".into(),
                    });
                };
                let Some(server) = cfg.nfs_server() else {
                    return Err(CmdlineError::BadParam {
                        param: format!("nfsroot={}", nfs.path),
                        reason: format!("names no server and ip= gives none; write nfsroot=<server-ip>:{}", nfs.path),
                    });
                };
                let addressing = match &cfg.ip {
                    IpConfig::Static(s) => Addressing::Static(s.clone()),
                    IpConfig::Unset => Addressing::Existing { because: "no ip= given" },
                    IpConfig::Off { .. } => Addressing::Existing { because: "ip=off" },
                    IpConfig::Dhcp { .. } => Addressing::Existing {
                        because: "ip= asks for DHCP, which only another hook (net) provides for now",
                    },
                };
                let path = match &cfg.ip {
                    IpConfig::Static(s) => nfs.path_for(Some(s.client)),
                    _ => nfs.path.clone(),
                };
                steps.push(Step::Network { nic, addressing, timeout: cfg.timeout });
                if nfs.version != NfsVersion::V3 {
                    steps.push(Step::NfsIdentity { given: cfg.nfs4_unique_id.clone() });
                }
                let target = match cfg.mode {
                    Mode::Overlay => LOWER.to_string(),
                    Mode::Plain => LOWER.to_string(),
                };
                steps.push(Step::MountNfs(NfsMount {
                    server,
                    path,
                    version: nfs.version,
                    options: nfs.options.clone(),
                    target,
                }));
                if cfg.mode == Mode::Plain {
                    steps.push(Step::MoveLowerToRoot { target: newroot.to_string() });
                    steps.push(Step::WriteState);
                    return Ok(Plan { action, newroot: newroot.to_string(), steps });
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
        steps.push(Step::NodeFiles { overlays: cfg.overlays.clone(), target: newroot.to_string() });
        steps.push(Step::WriteState);
        Ok(Plan { action, newroot: newroot.to_string(), steps })
    }
}

fn nic_choice(cfg: &BootConfig) -> NicChoice {
    if let Some(mac) = cfg.bootif {
        NicChoice::BootIf(mac)
    } else if let Some(dev) = cfg.ip.device() {
        NicChoice::Device(dev.to_string())
    } else {
        NicChoice::SingleWithLink
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Network { nic, addressing, timeout } => {
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
                    Addressing::Existing { because } => write!(f, "use the address it already has ({because})")?,
                }
                write!(f, "; wait up to {} s for link", timeout.as_secs())
            }
            Step::FindBootMac { nic } => write!(f, "boot MAC for node files: {nic}"),
            Step::NfsIdentity { given: Some(id) } => {
                write!(f, "NFSv4 client identity: {id} (nfs.nfs4_unique_id= on the command line)")
            }
            Step::NfsIdentity { given: None } => {
                f.write_str("NFSv4 client identity: clusterroot-<boot MAC> in /sys/fs/nfs/net/nfs_client/identifier")
            }
            Step::MountNfs(m) => {
                let vers = m.version.attempts().join(", then ");
                write!(f, "mount nfs {} on {} read-only, vers={vers}", m.source(None), m.target)?;
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
                write!(f, ", addr={}", m.server)
            }
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
            Step::MoveLowerToRoot { target } => write!(f, "move {LOWER} to {target} (clusterroot=off: no overlay)"),
            Step::NodeFiles { overlays, target } => write!(
                f,
                "node files: {overlays}/<boot MAC>*.tar, .tar.gz, .tgz, .tar.zst (sorted), then {overlays}/<boot MAC>/, onto {target}/etc"
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

    fn plan(cmdline: &str, action: Action) -> Result<Plan, CmdlineError> {
        Plan::new(&BootConfig::parse(cmdline).unwrap(), action, "/sysroot")
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
  1. boot NIC: the NIC with MAC 52:54:00:77:00:0b (BOOTIF=); address 10.77.0.11/24, default route via 10.77.0.1, host name node1; wait up to 60 s for link
  2. NFSv4 client identity: clusterroot-<boot MAC> in /sys/fs/nfs/net/nfs_client/identifier
  3. mount nfs 10.77.0.1:/srv/10.77.0.11 on /run/rootfs/lower read-only, vers=4.2, then 4.1, then 4.0, options rsize=32768, addr=10.77.0.1
  4. mount tmpfs on /run/rootfs/cowspace (size tmpfs default)
  5. create /run/rootfs/cowspace/upper and /run/rootfs/cowspace/work, owned like the lower root; hide /etc/overlays (whiteout)
  6. mount overlay on /sysroot: lowerdir=/run/rootfs/lower,upperdir=/run/rootfs/cowspace/upper,workdir=/run/rootfs/cowspace/work,index=off,xino=off,redirect_dir=off,metacopy=off
  7. node files: /etc/overlays/<boot MAC>*.tar, .tar.gz, .tgz, .tar.zst (sorted), then /etc/overlays/<boot MAC>/, onto /sysroot/etc
  8. write /run/clusterroot/state
";
        assert_eq!(text, want);
    }

    #[test]
    fn nic_choice_order() {
        let p =
            plan("nfsroot=10.0.0.1:/r ip=10.0.0.2:::::eno1:off BOOTIF=01-52-54-00-00-00-01", Action::Mount).unwrap();
        assert!(matches!(&p.steps[0], Step::Network { nic: NicChoice::BootIf(_), .. }));
        let p = plan("nfsroot=10.0.0.1:/r ip=10.0.0.2:::::eno1:off", Action::Mount).unwrap();
        assert!(matches!(&p.steps[0], Step::Network { nic: NicChoice::Device(d), .. } if d == "eno1"));
        let p = plan("nfsroot=10.0.0.1:/r", Action::Mount).unwrap();
        assert!(matches!(
            &p.steps[0],
            Step::Network { nic: NicChoice::SingleWithLink, addressing: Addressing::Existing { .. }, .. }
        ));
    }

    #[test]
    fn plain_mode_has_no_overlay() {
        let p = plan("nfsroot=10.0.0.1:/r ip=10.0.0.2 clusterroot=off", Action::Mount).unwrap();
        assert!(p.steps.iter().any(|s| matches!(s, Step::MoveLowerToRoot { .. })));
        assert!(!p.steps.iter().any(|s| matches!(s, Step::MountOverlay { .. } | Step::NodeFiles { .. })));
    }

    #[test]
    fn v3_skips_the_v4_identity_and_adds_nolock() {
        let p = plan("nfsroot=10.0.0.1:/r,vers=3 ip=10.0.0.2", Action::Mount).unwrap();
        assert!(!p.steps.iter().any(|s| matches!(s, Step::NfsIdentity { .. })));
        let Some(Step::MountNfs(m)) = p.steps.iter().find(|s| matches!(s, Step::MountNfs(_))) else { panic!() };
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
    fn latehook_plan_moves_the_root() {
        let p = plan("root=LABEL=croot", Action::Overlay).unwrap();
        assert_eq!(p.steps[0], Step::MoveRoot { from: "/sysroot".into(), to: LOWER.into() });
        assert!(matches!(p.steps[1], Step::FindBootMac { .. }));
    }
}
