//! The master's own node files: its fstab, its cluster NIC's static addresses, the links that
//! enable its services, and nfsdcld's service; pure functions of the inventory and of what
//! `crctl sync` found in the image ([`Image`]).

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use super::sizing::{self, Sizing};
use super::{stamp, Config};
use crate::inventory::Inventory;
use crate::place::{in_lower, LOWER};
use crate::services::{self, Init};

/// What the master's node files (and where sync writes the TFTP root's) depend on beyond the
/// inventory: facts of the image, found by `crctl sync` (I/O), so that rendering stays pure.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    /// The master's init: the inventory's `init`, else the image's. None: neither is known.
    pub init: Option<Init>,
    /// systemd: each unit of [`services::systemd_enabled`] the image has, and where
    /// (`/lib/systemd/system/nfs-server.service`).
    pub units: Vec<(&'static str, String)>,
    /// runit: each service of [`services::runit_enabled`] the image has in `/etc/sv`.
    pub runit: Vec<&'static str>,
    /// The image store is a ZFS dataset: it mounts itself (no fstab line), and its versions'
    /// exports are written at each boot (`crctl image export`).
    pub zfs_store: bool,
    /// The image store has a working copy (`<store>/edit`): sync writes the TFTP root's files
    /// into it, the next version, rather than into the tree `--root` names.
    pub working_copy: bool,
}

/// One node file of the master, its path relative to the master's node directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub path: String,
    pub what: String,
    pub body: Body,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A file, mode 0644.
    Text(String),
    /// A script, mode 0755.
    Script(String),
    /// A symlink to this target (in the image, as the master sees it at boot).
    Link(String),
}

/// With an image store, the mode of `/run/rootfs` on the master: traversable, not listable.
/// The agent makes it root's alone (0700), and the master's dnsmasq and lighttpd, which run as
/// nobody, serve the default version's TFTP root below it ([`Inventory::served_tftp`]).
pub const ROOTFS_MODE: &str = "0711";

/// The node file that sets [`ROOTFS_MODE`] at each boot, for each init.
pub const ROOTFS_FILES: [(Init, &str); 2] =
    [(Init::Systemd, "tmpfiles.d/clusterroot.conf"), (Init::Runit, "runit/core-services/61-clusterroot-rootfs.sh")];

/// What sets [`ROOTFS_MODE`] now (`crctl apply`).
pub fn rootfs_chmod() -> Vec<String> {
    ["chmod", ROOTFS_MODE, RUN_ROOTFS].map(String::from).to_vec()
}

/// `/run/rootfs`, where the agent keeps the layers (and the master the store, below the lower).
const RUN_ROOTFS: &str = "/run/rootfs";

/// With an image store: the node file that lets the master's TFTP and HTTP servers through
/// `/run/rootfs` ([`ROOTFS_MODE`]), for `init`.
fn rootfs_file(inv: &Inventory, init: Init) -> File {
    let path = ROOTFS_FILES.iter().find(|(i, _)| *i == init).map_or("", |(_, p)| p).to_string();
    let why = format!(
        "{}# The master's dnsmasq and lighttpd, as nobody, serve the image store's default version's\n\
         # TFTP root, {}; the agent makes {RUN_ROOTFS} root's alone (0700).\n\
         # {ROOTFS_MODE} lets them through it without listing it; what lies below keeps its modes.\n",
        stamp("#"),
        inv.served_tftp()
    );
    let what = format!("{RUN_ROOTFS} mode {ROOTFS_MODE}, for the servers of the store's boot files");
    match init {
        Init::Systemd => {
            File { path, what, body: Body::Text(format!("{why}z {RUN_ROOTFS} {ROOTFS_MODE} root root -\n")) }
        }
        Init::Runit => File {
            path,
            what,
            body: Body::Script(format!(
                "{}# runit's stage 1 sources this (/etc/runit/core-services).\nchmod {ROOTFS_MODE} {RUN_ROOTFS}\n",
                why
            )),
        },
    }
}

/// The runit service sync writes itself: no package ships one.
const NFSDCLD_SV: &str = "nfsdcld";

/// nfsdcld's records, as nfs.conf names them (README "The master").
fn nfsdcld_dir(inv: &Inventory) -> String {
    format!("{LOWER}{}/nfsdcld", inv.settings.nodefiles)
}

fn fstab_line(out: &mut String, spec: &str, dir: &str, fstype: &str, options: &str, pass: u8) {
    let _ = writeln!(out, "{spec:<18} {dir:<32} {fstype:<5} {options:<22} 0 {pass}");
}

/// The master's `/etc/fstab`: `/home`, the trees nfsd exports bound below its rootdir, and
/// the node-files filesystem, read-write.
pub fn fstab(inv: &Inventory, image: &Image) -> String {
    let s = &inv.settings;
    let mut out = stamp("#");
    out.push_str(
        "\
# The master's /etc/fstab (a node file). Its / is the overlay the agent built, so there is no
# line for it. nfsd exports only what is below its rootdir (nfs.conf: /run/rootfs/lower), so
# the trees it exports are mounted there: the shared root (or the image store), /home, and the
# node-files filesystem, read-write: nfsdcld keeps nfsd's client records on it and crctl sync
# writes node files there (noexec: nothing runs from it).
",
    );
    match &s.homefs {
        Some(home) => fstab_line(&mut out, &home.spec, "/home", home.fstype(), "rw", 2),
        None => out.push_str("# /home: homefs none in the inventory (it mounts itself, e.g. a ZFS dataset)\n"),
    }
    if !inv.uses_store() {
        fstab_line(&mut out, LOWER, &in_lower(&s.root), "none", "bind", 0);
    } else if image.zfs_store {
        let _ = writeln!(out, "# The image store {}: a ZFS dataset, mounted by zfs mount -a", in_lower(&s.images));
    } else {
        fstab_line(&mut out, "LABEL=cluster", &in_lower(&s.images), "ext4", "rw", 0);
    }
    fstab_line(&mut out, "/home", &in_lower(&s.home), "none", "bind", 0);
    let nf = &s.nodefilesfs;
    fstab_line(&mut out, &nf.spec, &in_lower(&s.nodefiles), nf.fstype(), "rw,nosuid,nodev,noexec", 0);
    out
}

/// The master's address in the advertised IPv6 prefix (`<prefix>::1`), if there is one.
fn ipv6_address(inv: &Inventory) -> Option<Ipv6Addr> {
    inv.ipv6_prefix().map(|p| Ipv6Addr::from(u128::from(p) | 1))
}

/// The static addresses of the master's cluster NIC, for its init: (path, text).
pub fn network(inv: &Inventory, init: Init) -> (&'static str, String) {
    let mac = inv.master().mac;
    let v4 = format!("{}/{}", inv.master_address(), inv.settings.network.prefix);
    let v6 = ipv6_address(inv).map(|a| format!("{a}/64"));
    match init {
        Init::Systemd => {
            let mut out = stamp("#");
            let _ = write!(
                out,
                "\
# systemd-networkd: the master's cluster NIC, by its MAC, and its static addresses (the
# IPv6 one in the prefix its dnsmasq advertises). No router advertisements taken; networkd
# never takes the addresses away (KeepConfiguration): clients mount their root over them.
[Match]
MACAddress={mac}

[Network]
Address={v4}
"
            );
            if let Some(v6) = v6 {
                let _ = writeln!(out, "Address={v6}");
            }
            out.push_str("LinkLocalAddressing=ipv6\nIPv6AcceptRA=no\nKeepConfiguration=yes\n");
            ("systemd/network/10-clusterroot.network", out)
        }
        Init::Runit => {
            let mut out = stamp("#");
            let _ = write!(
                out,
                "\
# runit's stage 1 sources this (/etc/runit/core-services): the master's cluster NIC, found by
# its MAC, up with its static addresses (the IPv6 one in the prefix its dnsmasq advertises).
for clusterroot_nic in /sys/class/net/*; do
    [ \"$(cat \"$clusterroot_nic/address\" 2>/dev/null)\" = {mac} ] || continue
    clusterroot_nic=${{clusterroot_nic##*/}}
    ip link set dev \"$clusterroot_nic\" up
    ip addr replace {v4} dev \"$clusterroot_nic\"
"
            );
            if let Some(v6) = v6 {
                let _ = writeln!(out, "    ip -6 addr replace {v6} dev \"$clusterroot_nic\"");
            }
            out.push_str("    break\ndone\nunset clusterroot_nic\n");
            ("runit/core-services/60-clusterroot-net.sh", out)
        }
    }
}

/// runit: the nfs-server service's settings file. Void's `/etc/sv/nfs-server/run` sources it
/// and starts nfsd with `rpc.nfsd -- ${PROCESSES:=4}`: a count on rpc.nfsd's command line
/// overrides nfs.conf's `[nfsd] threads`, so this gives it the same count.
pub const NFS_SERVER_CONF: &str = "conf.d/nfs-server.conf";

fn nfs_server_conf(sizing: &Sizing) -> String {
    format!(
        "{}# Void's /etc/sv/nfs-server/run sources this and starts nfsd with rpc.nfsd -- $PROCESSES (4\n\
         # without it): a count on rpc.nfsd's command line overrides nfs.conf's [nfsd] threads, so\n\
         # this is the same count (nfs.conf says why that many).\n\
         PROCESSES={}\n",
        stamp("#"),
        sizing.nfsd_threads
    )
}

/// systemd: dnsmasq's open-file limit for its `tftp-max`, when the usual one is too low.
fn dnsmasq_nofile(sizing: &Sizing, nofile: u64) -> String {
    format!(
        "{}# dnsmasq.conf's tftp-max={tftp} lets as many TFTP transfers run at once, and dnsmasq runs as\n\
         # many as its open-file limit less {reserve}: the usual {usual} would cut them to {cut}. Two\n\
         # descriptors a transfer (its socket, and the file it sends), and {spare} more.\n\
         [Service]\nLimitNOFILE={nofile}\n",
        stamp("#"),
        tftp = sizing.tftp_max,
        reserve = sizing::DNSMASQ_FD_RESERVE,
        usual = sizing::DEFAULT_NOFILE,
        cut = sizing::DEFAULT_NOFILE - sizing::DNSMASQ_FD_RESERVE,
        spare = sizing::HTTP_SPARE,
    )
}

/// runit: nfsdcld's `run`, which no package ships. nfsd waits one second for nfsdcld once it
/// starts, so nfsdcld must run first: the nfs-server service starts after it here only if
/// its own `run` checks (`sv check nfsdcld`).
fn nfsdcld_run(inv: &Inventory) -> String {
    let mut out = String::from("#!/bin/sh\n");
    out.push_str(&stamp("#"));
    let _ = write!(
        out,
        "\
# nfsdcld keeps nfsd's NFSv4 client records on the node-files filesystem (nfs.conf's
# storagedir), so that clients reclaim their locks after the master reboots. It needs
# rpc_pipefs, and that filesystem mounted.
exec 2>&1
mkdir -p /var/lib/nfs/rpc_pipefs
mountpoint -q /var/lib/nfs/rpc_pipefs || mount -t rpc_pipefs rpc_pipefs /var/lib/nfs/rpc_pipefs || exit 1
mountpoint -q {nodefiles} || {{ echo 'nfsdcld: {nodefiles} is not mounted yet'; sleep 1; exit 1; }}
install -d -m 0700 {dir}
exec nfsdcld --foreground
",
        nodefiles = in_lower(&inv.settings.nodefiles),
        dir = nfsdcld_dir(inv),
    );
    out
}

/// Every node file of the master this module renders, and notes on what it left out.
pub fn files(inv: &Inventory, image: &Image) -> (Vec<File>, Vec<String>) {
    let mut files = vec![File {
        path: "fstab".into(),
        what: "the master's /etc/fstab".into(),
        body: Body::Text(fstab(inv, image)),
    }];
    let mut notes = Vec::new();
    let Some(init) = image.init else {
        notes.push(
            "the image has no init crctl knows (no /etc/runit/runsvdir, no systemd): the master's addresses and \
             service links are not written; name one with an init line in the inventory"
                .to_string(),
        );
        return (files, notes);
    };
    let (path, text) = network(inv, init);
    let what = format!("the master's cluster NIC addresses, for {}", init.name());
    files.push(File {
        path: path.into(),
        what,
        body: if init == Init::Runit { Body::Script(text) } else { Body::Text(text) },
    });
    if inv.uses_store() {
        files.push(rootfs_file(inv, init));
    }
    let sizing = Sizing::of(inv);
    match init {
        Init::Systemd => {
            for unit in services::systemd_enabled() {
                match image.units.iter().find(|(u, _)| *u == unit) {
                    Some((_, target)) => files.push(File {
                        path: format!("systemd/system/multi-user.target.wants/{unit}"),
                        what: format!("the master's {unit}, enabled"),
                        body: Body::Link(target.clone()),
                    }),
                    None => {
                        notes.push(format!("the image has no {unit}: not enabled (install its package in the image)"))
                    }
                }
            }
            files.push(File {
                path: "systemd/system/nfsdcld.service.d/clusterroot.conf".into(),
                what: "nfsdcld after the node-files filesystem".into(),
                body: Body::Text(format!(
                    "{}# nfsdcld keeps nfsd's client records on the node-files filesystem (nfs.conf); Debian's\n\
                     # nfsdcld.service has no default dependencies: mount that filesystem first.\n\
                     [Unit]\nRequiresMountsFor={}\n",
                    stamp("#"),
                    nfsdcld_dir(inv)
                )),
            });
            if let Some(nofile) = sizing.dnsmasq_nofile {
                files.push(File {
                    path: super::dnsmasq::NOFILE_DROPIN.into(),
                    what: "dnsmasq's open-file limit, for its TFTP transfers".into(),
                    body: Body::Text(dnsmasq_nofile(&sizing, nofile)),
                });
            }
            if image.zfs_store {
                files.push(File {
                    path: "systemd/system/nfs-server.service.d/clusterroot.conf".into(),
                    what: "the ZFS store's version exports at nfsd's start".into(),
                    body: Body::Text(format!(
                        "{}# The ZFS image store's versions are datasets, which its export does not reach: write\n\
                         # an export line for each once nfsd runs (crctl image export).\n\
                         [Service]\nExecStartPost=/usr/bin/crctl image export\n",
                        stamp("#")
                    )),
                });
            }
        }
        Init::Runit => {
            files.push(File {
                path: format!("sv/{NFSDCLD_SV}/run"),
                what: "the master's nfsdcld service".into(),
                body: Body::Script(nfsdcld_run(inv)),
            });
            files.push(File {
                path: NFS_SERVER_CONF.into(),
                what: "nfsd's thread count, for the runit nfs-server service".into(),
                body: Body::Text(nfs_server_conf(&sizing)),
            });
            if let Some(nofile) = sizing.dnsmasq_nofile {
                notes.push(format!(
                    "dnsmasq's tftp-max {} needs an open-file limit of {nofile} (it runs that limit less {} \
                     transfers at once): raise it in its runit service (ulimit -n {nofile})",
                    sizing.tftp_max,
                    sizing::DNSMASQ_FD_RESERVE
                ));
            }
            for sv in services::runit_enabled() {
                if sv == NFSDCLD_SV || image.runit.contains(&sv) {
                    files.push(File {
                        path: format!("runit/runsvdir/default/{sv}"),
                        what: format!("the master's {sv} service, enabled"),
                        body: Body::Link(format!("/etc/sv/{sv}")),
                    });
                } else {
                    notes
                        .push(format!("the image has no /etc/sv/{sv}: not enabled (install its package in the image)"));
                }
            }
            if image.zfs_store {
                notes.push(
                    "the ZFS store's version exports: run crctl image export after exportfs in the nfs-server \
                     service's run (runit)"
                        .into(),
                );
            }
        }
    }
    (files, notes)
}

/// The master's configs `crctl show` prints: `fstab`, and `network` when the init is known.
pub fn configs(inv: &Inventory, image: &Image) -> Vec<Config> {
    let mut out = vec![Config { name: "fstab", what: "the master's /etc/fstab", text: fstab(inv, image) }];
    if let Some(init) = image.init {
        let what = match init {
            Init::Systemd => "the master's /etc/systemd/network/10-clusterroot.network",
            Init::Runit => "the master's /etc/runit/core-services/60-clusterroot-net.sh",
        };
        out.push(Config { name: "network", what, text: network(inv, init).1 });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::example;

    fn systemd() -> Image {
        let units = services::systemd_enabled().map(|u| (u, format!("/lib/systemd/system/{u}"))).collect();
        Image { init: Some(Init::Systemd), units, ..Image::default() }
    }

    #[test]
    fn the_fstab_is_readme_s() {
        let out = fstab(&example::inventory(), &systemd());
        let lines: Vec<&str> = out.lines().filter(|l| !l.starts_with('#')).collect();
        assert_eq!(
            lines,
            [
                "LABEL=home         /home                            ext4  rw                     0 2",
                "/run/rootfs/lower  /run/rootfs/lower/srv/nfs/root   none  bind                   0 0",
                "/home              /run/rootfs/lower/home           none  bind                   0 0",
                "LABEL=nodefiles    /run/rootfs/lower/srv/nfs/nodes  ext4  rw,nosuid,nodev,noexec 0 0",
            ]
        );
        // A store, homefs none, another node-files filesystem.
        let text = example::CLUSTER.replace(
            "master master\n",
            "master master\nimages /srv/nfs/images\nhomefs none\nnodefilesfs tank/nodes zfs\n",
        );
        let inv = Inventory::parse(&text).unwrap();
        let out = fstab(&inv, &Image::default());
        assert!(out.contains("\n# /home: homefs none"), "{out}");
        assert!(out.contains("\nLABEL=cluster      /run/rootfs/lower/srv/nfs/images ext4  rw "), "{out}");
        assert!(out.contains("\ntank/nodes         /run/rootfs/lower/srv/nfs/nodes  zfs   rw,nosuid"), "{out}");
        assert!(!out.contains("/srv/nfs/root"), "{out}");
        let zfs = fstab(&inv, &Image { zfs_store: true, ..Image::default() });
        assert!(!zfs.contains("LABEL=cluster") && zfs.contains("mounted by zfs mount -a"), "{zfs}");
    }

    #[test]
    fn the_cluster_nic_s_addresses() {
        let inv = example::inventory();
        let prefix = inv.ipv6_prefix().unwrap();
        let (path, out) = network(&inv, Init::Systemd);
        assert_eq!(path, "systemd/network/10-clusterroot.network");
        assert!(
            out.contains("\n[Match]\nMACAddress=52:54:00:77:00:e1\n\n[Network]\nAddress=172.23.199.225/24\n"),
            "{out}"
        );
        assert!(out.contains(&format!(
            "\nAddress={prefix}1/64\nLinkLocalAddressing=ipv6\nIPv6AcceptRA=no\nKeepConfiguration=yes\n"
        )));
        let (path, out) = network(&inv, Init::Runit);
        assert_eq!(path, "runit/core-services/60-clusterroot-net.sh");
        assert!(out.contains("= 52:54:00:77:00:e1 ] || continue\n"), "{out}");
        assert!(out.contains("\n    ip addr replace 172.23.199.225/24 dev \"$clusterroot_nic\"\n"), "{out}");
        assert!(out.contains(&format!("\n    ip -6 addr replace {prefix}1/64 dev")), "{out}");
        let none =
            Inventory::parse(&example::CLUSTER.replace("master master\n", "master master\nipv6 none\n")).unwrap();
        assert!(!network(&none, Init::Systemd).1.contains("::"));
    }

    #[test]
    fn the_services_are_enabled_by_links_into_the_image() {
        let inv = example::inventory();
        let (files, notes) = files(&inv, &systemd());
        assert!(notes.is_empty(), "{notes:?}");
        let links: Vec<(String, String)> = files
            .iter()
            .filter_map(|f| match &f.body {
                Body::Link(t) => Some((f.path.clone(), t.clone())),
                _ => None,
            })
            .collect();
        assert_eq!(links.len(), 4);
        assert_eq!(
            links[0],
            (
                "systemd/system/multi-user.target.wants/nfs-server.service".into(),
                "/lib/systemd/system/nfs-server.service".into()
            )
        );
        let dropin = files.iter().find(|f| f.path == "systemd/system/nfsdcld.service.d/clusterroot.conf").unwrap();
        assert!(
            matches!(&dropin.body, Body::Text(t) if t.ends_with("[Unit]\nRequiresMountsFor=/run/rootfs/lower/srv/nfs/nodes/nfsdcld\n"))
        );
        assert!(!files.iter().any(|f| f.path.contains("nfs-server.service.d")));
        let zfs = super::files(&inv, &Image { zfs_store: true, ..systemd() }).0;
        assert!(zfs.iter().any(|f| f.path == "systemd/system/nfs-server.service.d/clusterroot.conf"));
        // A unit the image lacks: named, not linked.
        let mut lacking = systemd();
        lacking.units.retain(|(u, _)| *u != "lighttpd.service");
        let (files, notes) = super::files(&inv, &lacking);
        assert_eq!(notes, ["the image has no lighttpd.service: not enabled (install its package in the image)"]);
        assert!(!files.iter().any(|f| f.path.ends_with("lighttpd.service")));
    }

    #[test]
    fn runit_gets_its_links_and_an_nfsdcld_service() {
        let inv = example::inventory();
        let image = Image {
            init: Some(Init::Runit),
            runit: vec!["rpcbind", "statd", "nfs-server", "dnsmasq"],
            ..Image::default()
        };
        let (files, notes) = files(&inv, &image);
        let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "fstab",
                "runit/core-services/60-clusterroot-net.sh",
                "sv/nfsdcld/run",
                "conf.d/nfs-server.conf",
                "runit/runsvdir/default/rpcbind",
                "runit/runsvdir/default/statd",
                "runit/runsvdir/default/nfs-server",
                "runit/runsvdir/default/nfsdcld",
                "runit/runsvdir/default/dnsmasq",
            ]
        );
        assert_eq!(notes, ["the image has no /etc/sv/lighttpd: not enabled (install its package in the image)"]);
        assert!(
            matches!(&files[2].body, Body::Script(t) if t.starts_with("#!/bin/sh\n") && t.ends_with("exec nfsdcld --foreground\n"))
        );
        assert!(matches!(&files[3].body, Body::Text(t) if t.ends_with("nfs.conf says why that many).\nPROCESSES=8\n")));
        assert_eq!(files[4].body, Body::Link("/etc/sv/rpcbind".into()));
    }

    #[test]
    fn dnsmasq_gets_the_files_its_tftp_transfers_need() {
        let small = files(&example::inventory(), &systemd()).0;
        assert!(!small.iter().any(|f| f.path.starts_with("systemd/system/dnsmasq")), "{small:?}");
        let text = example::CLUSTER
            .replace("network 172.23.199.0/24", "network 172.23.0.0/16")
            .replace("range 172.23.199.100 172.23.199.199", "range 172.23.1.0 172.23.8.255");
        let inv = Inventory::parse(&text).unwrap();
        let (big, notes) = files(&inv, &systemd());
        let dropin = big.iter().find(|f| f.path == "systemd/system/dnsmasq.service.d/clusterroot.conf").unwrap();
        assert!(
            matches!(&dropin.body, Body::Text(t) if t.contains("tftp-max=2050 lets") && t.ends_with("\n[Service]\nLimitNOFILE=4164\n")),
            "{dropin:?}"
        );
        assert!(notes.is_empty(), "{notes:?}");
        let (_, notes) = files(&inv, &Image { init: Some(Init::Runit), ..Image::default() });
        assert!(
            notes.iter().any(|n| n.starts_with("dnsmasq's tftp-max 2050 needs an open-file limit of 4164")),
            "{notes:?}"
        );
    }

    #[test]
    fn with_a_store_the_servers_get_through_run_rootfs() {
        let inv =
            Inventory::parse(&example::CLUSTER.replace("master master\n", "master master\nimages /srv/nfs/images\n"))
                .unwrap();
        let (units, _) = files(&inv, &systemd());
        let conf = units.iter().find(|f| f.path == "tmpfiles.d/clusterroot.conf").unwrap();
        assert!(
            matches!(&conf.body, Body::Text(t) if t.contains("\n# TFTP root, /run/rootfs/lower/srv/nfs/images/default/srv/tftp; ")
                && t.ends_with("\nz /run/rootfs 0711 root root -\n")),
            "{conf:?}"
        );
        let (runit, _) = files(&inv, &Image { init: Some(Init::Runit), ..Image::default() });
        let script = runit.iter().find(|f| f.path == "runit/core-services/61-clusterroot-rootfs.sh").unwrap();
        assert!(matches!(&script.body, Body::Script(t) if t.ends_with("\nchmod 0711 /run/rootfs\n")), "{script:?}");
        // Without a store, /run/rootfs stays root's alone.
        for image in [systemd(), Image { init: Some(Init::Runit), ..Image::default() }] {
            assert!(!files(&example::inventory(), &image)
                .0
                .iter()
                .any(|f| ROOTFS_FILES.iter().any(|(_, p)| *p == f.path)));
        }
    }

    #[test]
    fn without_an_init_only_the_fstab() {
        let (files, notes) = files(&example::inventory(), &Image::default());
        assert_eq!(files.len(), 1);
        assert!(notes[0].starts_with("the image has no init crctl knows"), "{notes:?}");
    }
}
