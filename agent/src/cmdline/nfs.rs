//! The NFS root: `nfsroot=` in the kernel's syntax, and dracut's `root=nfs:`/`root=nfs4:`.

use std::net::Ipv4Addr;

use super::{bad, CmdlineError};
use crate::lower::nfs::{NfsOption, NfsVersion};

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

/// dracut's NFS root, `root=nfs:[<server-ip>:]<root-dir>[:<nfs-options>]` or `root=nfs4:...`
/// (`dracut.cmdline(7)`), in `nfsroot=`'s form: `<server-ip>:<root-dir>[,<nfs-options>]`, with
/// `vers=4` added for `nfs4:` unless the options name a version. `None` for any other root.
pub(super) fn dracut_nfs_root(root: &str) -> Option<String> {
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
pub(super) fn parse_nfs_target(key: &'static str, given: &str, raw: &str) -> Result<NfsRoot, CmdlineError> {
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
    use crate::cmdline::tests::ip;
    use crate::cmdline::{BootConfig, RootSpec};

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
}
