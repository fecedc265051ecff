//! `root=live:<url>` (dracut's spelling) and `clusterroot.live=<url>[,<url>...]`: the lower
//! is one squashfs file, downloaded into RAM over HTTP or read where it lies on NFS.
//!
//! A URL is `http://<server-ip>[:<port>]/<path>` or `nfs://<server-ip>/<path>`; its last
//! component is the file (`<version>-<sha256>.squashfs`, as crctl names them) or a pointer
//! file naming one (crctl's `default`). A list names replicas holding the same files, tried
//! in order; all in one scheme. `clusterroot.sha256=` gives the hash the file must have
//! (else the file's name does).

use std::net::Ipv4Addr;

use super::{bad, CmdlineError};
use crate::lower::fetch::HttpUrl;

/// The longest list taken: more replicas than any cluster has, few enough to try in turn.
pub const MAX_URLS: usize = 16;

/// Where the squashfs file comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveSource {
    /// Downloaded into RAM from the first server of the list that serves it whole.
    Http(Vec<HttpUrl>),
    /// Loop-mounted where it lies, on the NFS export of the first server that mounts.
    Nfs(Vec<NfsFile>),
}

/// `nfs://<server-ip>/<dir>/<name>`: the file `<name>` in the NFS export `<dir>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsFile {
    pub server: Ipv4Addr,
    /// The directory mounted: an absolute path, without a trailing `/`.
    pub dir: String,
    /// The file in it: one path component.
    pub name: String,
}

impl std::fmt::Display for NfsFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "nfs://{}{}/{}", self.server, self.dir, self.name)
    }
}

/// Parses the URL list of `param` (`root=live:...` or `clusterroot.live=...`), with no I/O.
pub(super) fn parse_live(param: &str, value: &str) -> Result<LiveSource, CmdlineError> {
    let fail = |reason: String| bad(param, Some(value), reason);
    let urls: Vec<&str> = value.split(',').collect();
    if urls.iter().any(|u| u.is_empty()) {
        return Err(fail(
            "holds an empty URL; give http://<server-ip>/<path> or nfs://<server-ip>/<path>, comma-separated".into(),
        ));
    }
    if urls.len() > MAX_URLS {
        return Err(fail(format!("names {} URLs; the most is {MAX_URLS}", urls.len())));
    }
    if urls.iter().all(|u| u.starts_with("http://")) {
        let parsed = urls.iter().map(|u| HttpUrl::parse(u).map_err(|e| fail(format!("{u}: {e}"))));
        return Ok(LiveSource::Http(parsed.collect::<Result<_, _>>()?));
    }
    if urls.iter().all(|u| u.starts_with("nfs://")) {
        let parsed = urls.iter().map(|u| parse_nfs_url(u).map_err(|e| fail(format!("{u}: {e}"))));
        return Ok(LiveSource::Nfs(parsed.collect::<Result<_, _>>()?));
    }
    let odd = urls.iter().find(|u| !u.starts_with("http://") && !u.starts_with("nfs://")).unwrap_or(&"");
    Err(fail(match odd.is_empty() {
        true => "mixes http:// and nfs:// URLs; give replicas of one kind".into(),
        false => format!(
            "{odd}: expected http://<server-ip>[:<port>]/<path> or nfs://<server-ip>/<path> (https and host names are not supported: the initramfs has no TLS and no DNS)"
        ),
    }))
}

/// `nfs://<server-ip>/<dir>/<name>`.
fn parse_nfs_url(url: &str) -> Result<NfsFile, String> {
    let rest = url.strip_prefix("nfs://").unwrap_or(url);
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let server = host
        .parse::<Ipv4Addr>()
        .map_err(|_| format!("'{host}' is not an IPv4 address (the initramfs has no DNS; ports are not taken)"))?;
    let Some((dir, name)) = path.rsplit_once('/') else {
        return Err("names no file; write nfs://<server-ip>/<export>/<file>".into());
    };
    let components_ok = path.split('/').skip(1).all(|c| !c.is_empty() && c != "." && c != "..");
    if dir.is_empty() || name.is_empty() || !components_ok {
        return Err("needs a file in an exported directory, nfs://<server-ip>/<export>/<file>, without empty, . or .. components".into());
    }
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ' || b == b',' || b == b':') {
        return Err("holds a space, comma, colon or control character".into());
    }
    Ok(NfsFile { server, dir: dir.to_string(), name: name.to_string() })
}

/// `clusterroot.sha256=<64 hex digits>`.
pub(super) fn parse_sha256(v: Option<&str>) -> Result<[u8; 32], CmdlineError> {
    let raw = v.unwrap_or("");
    crate::lower::fetch::parse_sha256_hex(raw).ok_or_else(|| {
        bad(
            "clusterroot.sha256",
            v,
            "expected the file's SHA-256 as 64 hexadecimal digits (sha256sum prints it; crctl image list too)",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmdline::tests::bad_param;
    use crate::cmdline::BootConfig;

    #[test]
    fn nfs_urls() {
        let f = parse_nfs_url("nfs://10.0.0.1/srv/nfs/images/squashfs/default").unwrap();
        assert_eq!(f.server, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(f.dir, "/srv/nfs/images/squashfs");
        assert_eq!(f.name, "default");
        assert_eq!(f.to_string(), "nfs://10.0.0.1/srv/nfs/images/squashfs/default");
        for bad in [
            "nfs://10.0.0.1",
            "nfs://10.0.0.1/",
            "nfs://10.0.0.1/file",
            "nfs://10.0.0.1/srv/",
            "nfs://10.0.0.1/srv//f",
            "nfs://10.0.0.1/srv/../f",
            "nfs://master/srv/f",
            "nfs://10.0.0.1:2049/srv/f",
            "nfs://10.0.0.1/srv/a:b",
        ] {
            assert!(parse_nfs_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists() {
        let c = BootConfig::parse("clusterroot.live=nfs://10.0.0.1/srv/a/f,nfs://10.0.0.2/srv/a/f").unwrap();
        match c.live {
            Some(LiveSource::Nfs(v)) => assert_eq!(v.len(), 2),
            other => panic!("{other:?}"),
        }
        for (line, want) in [
            ("clusterroot.live=nfs://10.0.0.1/srv/a/f,,nfs://10.0.0.2/srv/a/f", "empty URL"),
            ("clusterroot.live=http://10.0.0.1/a/f,nfs://10.0.0.2/srv/a/f", "mixes"),
            ("clusterroot.live=ftp://10.0.0.1/a/f", "ftp://10.0.0.1/a/f: expected"),
            ("root=live:https://10.0.0.1/a/f", "no TLS"),
        ] {
            let param = line.split_whitespace().next().unwrap();
            let msg = bad_param(line.as_bytes(), param);
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        // Another root beside the image: refused, naming it, rather than silently lost.
        for (line, want) in [
            ("clusterroot.live=http://10.0.0.1/a/f root=LABEL=croot", "drop root=LABEL=croot"),
            ("clusterroot.live=http://10.0.0.1/a/f root=/dev/nfs", "drop root=/dev/nfs"),
            ("clusterroot.live=http://10.0.0.1/a/f nfsroot=10.0.0.1:/srv", "drop nfsroot="),
            ("clusterroot.live=http://10.0.0.1/a/f zfs=tank/root", "drop zfs="),
        ] {
            let msg = bad_param(line.as_bytes(), "clusterroot.live");
            assert!(msg.contains(want), "{msg} lacks {want}");
        }
        let many = vec!["nfs://10.0.0.1/srv/a/f"; MAX_URLS + 1].join(",");
        let line = format!("clusterroot.live={many}");
        assert!(bad_param(line.as_bytes(), &line).contains("the most is 16"));
    }
}
