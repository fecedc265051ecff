//! The services the master runs for the cluster: the one list that sync (enabling them in the
//! master's node files), generalize (moving their enable links out of the image) and help read.

use std::path::Path;

/// The init system that runs the master's services: which enable links and network file
/// sync writes for it, and how apply loads a change on the running master.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    Systemd,
    Runit,
}

impl Init {
    /// `systemd` or `runit`, as the inventory's `init` line names it.
    pub fn parse(s: &str) -> Result<Init, String> {
        match s {
            "systemd" => Ok(Init::Systemd),
            "runit" => Ok(Init::Runit),
            other => Err(format!("'{other}' is not systemd or runit")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Init::Systemd => "systemd",
            Init::Runit => "runit",
        }
    }

    /// The init of the image `root`: what its `/sbin/init` (or `/usr/sbin/init`,
    /// `/usr/bin/init`) links to, when that names systemd or runit; else runit when it has
    /// `/etc/runit/runsvdir`, systemd when it has systemd itself; None when neither. The link
    /// comes first: Debian's openssh-server ships `/etc/runit/runsvdir/default/ssh` on systemd
    /// systems too.
    pub fn detect(root: &Path) -> Option<Init> {
        for init in ["sbin/init", "usr/sbin/init", "usr/bin/init"] {
            let Ok(target) = std::fs::read_link(root.join(init)) else { continue };
            let target = target.to_string_lossy();
            if target.contains("systemd") {
                return Some(Init::Systemd);
            }
            if target.contains("runit") {
                return Some(Init::Runit);
            }
        }
        if root.join("etc/runit/runsvdir").is_dir() {
            return Some(Init::Runit);
        }
        let systemd = ["lib/systemd/systemd", "usr/lib/systemd/systemd"];
        systemd.iter().any(|p| root.join(p).exists()).then_some(Init::Systemd)
    }

    /// The init of the running system `live`: systemd when `/run/systemd/system` is a
    /// directory (as `sd_booted(3)` tells), runit when `/run/runit` or `/etc/runit/runsvdir`
    /// is; None when neither (what would load a file is then only named).
    pub fn running(live: &Path) -> Option<Init> {
        let dir = |p: &str| live.join(p).is_dir();
        if dir("run/systemd/system") {
            Some(Init::Systemd)
        } else if dir("run/runit") || dir("etc/runit/runsvdir") {
            Some(Init::Runit)
        } else {
            None
        }
    }
}

/// A service of the master, under each init system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Service {
    /// The name the admin knows it by, as help prints it.
    pub name: &'static str,
    /// systemd: the unit sync enables in the master's node files
    /// (`systemd/system/multi-user.target.wants/UNIT`); None when another unit pulls it in
    /// or a socket starts it.
    pub systemd_unit: Option<&'static str>,
    /// systemd: other names of the same service (Debian's aliases, units pulled in) whose
    /// enable links generalize moves too.
    pub systemd_aliases: &'static [&'static str],
    /// runit: its directory under `/etc/sv`, enabled in `runit/runsvdir/default/`.
    pub runit: Option<&'static str>,
    /// Clients must not run it: generalize moves its enable links out of the image. A service
    /// that is not master-only (rpcbind, statd: NFS clients' locking) is only enabled for the
    /// master and left alone in the image.
    pub master_only: bool,
}

/// Every service the master needs, in the order they are enabled.
pub const SERVICES: [Service; 7] = [
    Service { name: "rpcbind", systemd_unit: None, systemd_aliases: &[], runit: Some("rpcbind"), master_only: false },
    Service { name: "statd", systemd_unit: None, systemd_aliases: &[], runit: Some("statd"), master_only: false },
    Service {
        name: "nfs-server",
        systemd_unit: Some("nfs-server.service"),
        // Debian's name of the unit, and the mount daemon it pulls in.
        systemd_aliases: &["nfs-kernel-server.service", "nfs-mountd.service"],
        runit: Some("nfs-server"),
        master_only: true,
    },
    Service {
        // The NFSv4 client tracking daemon: nfs-server.service pulls it in; runit has no
        // service for it, so sync writes one (sv/nfsdcld/run).
        name: "nfsdcld",
        systemd_unit: None,
        systemd_aliases: &["nfsdcld.service"],
        runit: Some("nfsdcld"),
        master_only: true,
    },
    Service {
        name: "dnsmasq",
        systemd_unit: Some("dnsmasq.service"),
        systemd_aliases: &[],
        runit: Some("dnsmasq"),
        master_only: true,
    },
    Service {
        name: "lighttpd",
        systemd_unit: Some("lighttpd.service"),
        systemd_aliases: &[],
        runit: Some("lighttpd"),
        master_only: true,
    },
    Service {
        // The master's static addresses (runit: a core-services script instead).
        name: "systemd-networkd",
        systemd_unit: Some("systemd-networkd.service"),
        systemd_aliases: &[],
        runit: None,
        master_only: false,
    },
];

/// The systemd unit names whose enable links belong to the master alone.
pub fn master_only_units() -> impl Iterator<Item = &'static str> {
    SERVICES
        .iter()
        .filter(|s| s.master_only)
        .flat_map(|s| s.systemd_unit.into_iter().chain(s.systemd_aliases.iter().copied()))
}

/// The runit service names that belong to the master alone.
pub fn master_only_runit() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().filter(|s| s.master_only).filter_map(|s| s.runit)
}

/// The systemd units sync enables on the master.
pub fn systemd_enabled() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().filter_map(|s| s.systemd_unit)
}

/// The runit services sync enables on the master.
pub fn runit_enabled() -> impl Iterator<Item = &'static str> {
    SERVICES.iter().filter_map(|s| s.runit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_only_names() {
        let units: Vec<_> = master_only_units().collect();
        assert_eq!(
            units,
            [
                "nfs-server.service",
                "nfs-kernel-server.service",
                "nfs-mountd.service",
                "nfsdcld.service",
                "dnsmasq.service",
                "lighttpd.service"
            ]
        );
        assert_eq!(master_only_runit().collect::<Vec<_>>(), ["nfs-server", "nfsdcld", "dnsmasq", "lighttpd"]);
    }

    #[test]
    fn enabled_on_the_master() {
        assert_eq!(
            systemd_enabled().collect::<Vec<_>>(),
            ["nfs-server.service", "dnsmasq.service", "lighttpd.service", "systemd-networkd.service"]
        );
        assert_eq!(
            runit_enabled().collect::<Vec<_>>(),
            ["rpcbind", "statd", "nfs-server", "nfsdcld", "dnsmasq", "lighttpd"]
        );
    }

    #[test]
    fn the_init_is_found_in_the_image() {
        let root = std::env::temp_dir().join(format!("crctl-services-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("usr/lib/systemd")).unwrap();
        assert_eq!(Init::detect(&root), None);
        std::fs::write(root.join("usr/lib/systemd/systemd"), "").unwrap();
        assert_eq!(Init::detect(&root), Some(Init::Systemd));
        // Both, and no /sbin/init link (a tree without one): runit's directory wins.
        std::fs::create_dir_all(root.join("etc/runit/runsvdir")).unwrap();
        assert_eq!(Init::detect(&root), Some(Init::Runit));
        // /sbin/init names the init: Debian 12 with systemd has /etc/runit/runsvdir/default/ssh
        // from openssh-server, and Debian with runit-init still has systemd installed.
        std::fs::create_dir_all(root.join("sbin")).unwrap();
        std::os::unix::fs::symlink("/lib/systemd/systemd", root.join("sbin/init")).unwrap();
        assert_eq!(Init::detect(&root), Some(Init::Systemd));
        std::fs::remove_file(root.join("sbin/init")).unwrap();
        std::os::unix::fs::symlink("/lib/runit/runit-init", root.join("sbin/init")).unwrap();
        std::fs::remove_dir_all(root.join("etc/runit")).unwrap();
        assert_eq!(Init::detect(&root), Some(Init::Runit));
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(Init::parse("runit"), Ok(Init::Runit));
        assert_eq!(Init::parse("openrc").unwrap_err(), "'openrc' is not systemd or runit");
    }

    /// The running system's init is what runs now, not what its image would boot: the image's
    /// systemd binary alone says nothing.
    #[test]
    fn the_running_init_is_what_runs_now() {
        let live = std::env::temp_dir().join(format!("crctl-services-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&live);
        std::fs::create_dir_all(live.join("usr/lib/systemd")).unwrap();
        std::fs::write(live.join("usr/lib/systemd/systemd"), "").unwrap();
        assert_eq!(Init::running(&live), None);
        std::fs::create_dir_all(live.join("run/runit")).unwrap();
        assert_eq!(Init::running(&live), Some(Init::Runit));
        std::fs::create_dir_all(live.join("run/systemd/system")).unwrap();
        assert_eq!(Init::running(&live), Some(Init::Systemd));
        std::fs::remove_dir_all(&live).unwrap();
    }

    #[test]
    fn names_are_unique() {
        let mut all: Vec<_> =
            SERVICES.iter().flat_map(|s| s.systemd_unit.into_iter().chain(s.systemd_aliases.iter().copied())).collect();
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n);
    }
}
