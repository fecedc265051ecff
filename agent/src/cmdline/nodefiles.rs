//! Where a node's files are: `clusterroot.nodefiles=` and `clusterroot.overlays=`.

use std::net::Ipv4Addr;

use super::{bad, CmdlineError};

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

/// The parameter's value, as an admin writes it ("the lower's overlays" for the default).
impl std::fmt::Display for NodeFilesSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NodeFilesSource::Lower => f.write_str("the lower's overlays"),
            NodeFilesSource::Nfs { server: Some(s), dir } => write!(f, "{s}:{dir}"),
            NodeFilesSource::Nfs { server: None, dir } => f.write_str(dir),
            NodeFilesSource::Device(d) => write!(f, "{d}"),
            NodeFilesSource::Zfs(ds) => write!(f, "zfs:{ds}"),
            NodeFilesSource::None => f.write_str("none"),
        }
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
pub(super) fn parse_overlays(v: Option<&str>) -> Result<String, CmdlineError> {
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
pub(super) fn parse_nodefiles(v: Option<&str>) -> Result<NodeFilesSource, CmdlineError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::tests::{bad_param, ip};
    use crate::cmdline::{BootConfig, DEFAULT_OVERLAYS};

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
}
