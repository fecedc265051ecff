//! `http://<server-ip>[:<port>]/<path>` checked with no I/O, and crctl's image file names
//! (`<version>-<sha256>.squashfs`), which carry the hash the file must have.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::lower::image;

/// The longest URL taken: a path on a web server, not a document.
pub const MAX_URL: usize = 1024;
/// What the name of an image file ends in; a URL whose name does not names a pointer file.
pub const SUFFIX: &str = ".squashfs";
/// How much of a text taken from outside (a URL, a pointer file) an error message quotes.
const QUOTE: usize = 100;

/// An `http://` URL the agent can fetch without DNS or TLS: the server as an IPv4 address,
/// an optional port, and a path naming a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// The URL as written, for messages.
    text: String,
    /// `<server-ip>[:<port>]` as written: the request's `Host:`.
    authority: String,
    host: Ipv4Addr,
    port: u16,
    /// The path and query, as the request line sends them.
    path: String,
}

impl HttpUrl {
    /// Parses `http://<server-ip>[:<port>]/<path>`, with no I/O (the `http` crate splits it).
    /// The error is the reason, for the caller's message, which names the URL.
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        if s.len() > MAX_URL {
            return Err(format!("is {} bytes long; the most taken is {MAX_URL}", s.len()));
        }
        if !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("holds a space, a control or a non-ASCII character; percent-encode it (%20 for a space)".into());
        }
        if !s.starts_with("http://") {
            return Err(match s.get(..8).is_some_and(|p| p.eq_ignore_ascii_case("https://")) {
                true => "https is not supported: the initramfs has no TLS; serve the files over http://".into(),
                false => "not an http:// URL; write http://<server-ip>[:<port>]/<path>".into(),
            });
        }
        if s.contains('#') {
            return Err("holds a fragment (#...), which HTTP never sends to the server; drop it".into());
        }
        let uri: http::Uri = s.parse().map_err(|e| format!("not a valid URL ({e})"))?;
        let authority = uri.authority().map(|a| a.as_str()).unwrap_or("");
        if authority.contains('@') {
            return Err("holds a user name (user@server); the agent sends no credentials: drop it".into());
        }
        if authority.starts_with('[') {
            return Err("names an IPv6 address; the agent fetches over IPv4: write the server's IPv4 address".into());
        }
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        let host = host.parse::<Ipv4Addr>().map_err(|_| {
            format!(
                "'{}' is not an IPv4 address (the initramfs has no DNS: write the server's address, as in http://10.0.0.1/images/default)",
                quote(host)
            )
        })?;
        let port = match port {
            None => 80,
            Some(p) => parse_port(p).ok_or_else(|| format!("'{}' is not a port (1 to 65535)", quote(p)))?,
        };
        let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("");
        let url = HttpUrl { text: s.to_string(), authority: authority.to_string(), host, port, path: path.to_string() };
        if !path.starts_with('/') || url.file_name().is_empty() {
            return Err("names no file; write http://<server-ip>[:<port>]/<dir>/<file>".into());
        }
        Ok(url)
    }

    /// The server's address.
    pub fn host(&self) -> Ipv4Addr {
        self.host
    }

    /// The server's port (80 unless the URL names one).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddrV4 {
        SocketAddrV4::new(self.host, self.port)
    }

    /// `<server-ip>[:<port>]` as written: what `Host:` sends.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The path and query (`/images/3-<hex>.squashfs`): what `GET` sends.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The path's last component, without the query: the file the URL names.
    pub fn file_name(&self) -> &str {
        let path = self.path.split('?').next().unwrap_or("");
        path.rsplit('/').next().unwrap_or("")
    }

    /// The image file name the URL ends in, with its version and hash, if it is one.
    pub fn image_name(&self) -> Option<ImageName> {
        ImageName::parse(self.file_name()).ok()
    }

    /// Whether the URL names a pointer file (crctl's `default`) rather than an image file: its
    /// name does not end in `.squashfs`.
    pub fn is_pointer(&self) -> bool {
        !self.file_name().ends_with(SUFFIX)
    }

    /// The file `name` in this URL's directory, on the same server (a pointer file names its
    /// image file so); the query is dropped.
    pub fn sibling(&self, name: &ImageName) -> HttpUrl {
        let path = self.path.split('?').next().unwrap_or("");
        let dir = path.rsplit_once('/').map(|(dir, _)| dir).unwrap_or("");
        let path = format!("{dir}/{name}");
        HttpUrl {
            text: format!("http://{}{path}", self.authority),
            authority: self.authority.clone(),
            host: self.host,
            port: self.port,
            path,
        }
    }
}

impl fmt::Display for HttpUrl {
    /// The URL as it was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A port: 1 to 5 digits (no sign, which the `http` crate lets through), 1 to 65535.
fn parse_port(p: &str) -> Option<u16> {
    let digits = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| p.parse::<u16>().ok()).flatten().filter(|&port| port != 0)
}

/// The name crctl gives an image file: `<version>-<sha256>.squashfs`, the version a name
/// [`image::check_name`] takes (a letter or digit, then letters, digits, `.`, `_`, `-`, at
/// most 32), the hash 64 lowercase hex digits. One path component by construction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageName {
    version: String,
    sha256: [u8; 32],
}

impl ImageName {
    /// Parses a file name, strictly; the error is the reason, for the caller's message.
    pub fn parse(s: &str) -> Result<ImageName, String> {
        let bad = || {
            format!(
                "\"{}\" is not an image file name (<version>-<64 lowercase hex digits>.squashfs, as crctl names them)",
                quote(s)
            )
        };
        let stem = s.strip_suffix(SUFFIX).ok_or_else(bad)?;
        let (version, hex) = stem.rsplit_once('-').ok_or_else(bad)?;
        let lowercase_hex = hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !lowercase_hex || image::check_name(version).is_err() {
            return Err(bad());
        }
        let sha256 = parse_sha256_hex(hex).ok_or_else(bad)?;
        Ok(ImageName { version: version.to_string(), sha256 })
    }

    /// The image version (`3`), as `crctl image list` shows it.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The SHA-256 of the file's contents.
    pub fn sha256(&self) -> [u8; 32] {
        self.sha256
    }
}

impl fmt::Display for ImageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}{SUFFIX}", self.version, sha256_hex(&self.sha256))
    }
}

/// A SHA-256 written as 64 hex digits (either case: `clusterroot.sha256=` is typed by hand).
pub fn parse_sha256_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.as_bytes();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let digit = |c: u8| char::from(c).to_digit(16);
        *byte = u8::try_from(digit(pair[0])? * 16 + digit(pair[1])?).ok()?;
    }
    Some(out)
}

/// A SHA-256 as 64 lowercase hex digits, as `sha256sum` prints it.
pub fn sha256_hex(sha256: &[u8; 32]) -> String {
    sha256.iter().map(|b| format!("{b:02x}")).collect()
}

/// `s`, cut to [`QUOTE`] characters, with control characters escaped: a text from outside,
/// fit for a one-line message.
pub(super) fn quote(s: &str) -> String {
    let mut out: String = s.chars().take(QUOTE).flat_map(char::escape_default).collect();
    if s.chars().nth(QUOTE).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn urls_the_agent_fetches() {
        let u = HttpUrl::parse("http://172.23.199.225/images/3-x.squashfs").unwrap();
        assert_eq!((u.host(), u.port()), (Ipv4Addr::new(172, 23, 199, 225), 80));
        assert_eq!(u.authority(), "172.23.199.225");
        assert_eq!(u.path(), "/images/3-x.squashfs");
        assert_eq!(u.file_name(), "3-x.squashfs");
        assert!(!u.is_pointer());
        assert_eq!(u.image_name(), None);
        assert_eq!(u.to_string(), "http://172.23.199.225/images/3-x.squashfs");

        let u = HttpUrl::parse("http://10.0.0.1:8080/srv/images/default?v=1").unwrap();
        assert_eq!((u.port(), u.authority()), (8080, "10.0.0.1:8080"));
        assert_eq!((u.path(), u.file_name()), ("/srv/images/default?v=1", "default"));
        assert!(u.is_pointer());
        assert_eq!(u.addr().to_string(), "10.0.0.1:8080");

        let name = ImageName::parse(&format!("2026.1-{HEX}.squashfs")).unwrap();
        let s = u.sibling(&name);
        assert_eq!(s.to_string(), format!("http://10.0.0.1:8080/srv/images/2026.1-{HEX}.squashfs"));
        assert_eq!(s.path(), format!("/srv/images/2026.1-{HEX}.squashfs"));
        assert_eq!(s.image_name(), Some(name.clone()));
        assert_eq!(HttpUrl::parse(&s.to_string()), Ok(s));
        let top = HttpUrl::parse("http://10.0.0.1/default").unwrap().sibling(&name);
        assert_eq!(top.path(), format!("/2026.1-{HEX}.squashfs"));
    }

    #[test]
    fn urls_refused_with_the_reason() {
        for (url, why) in [
            ("https://10.0.0.1/a.squashfs", "no TLS"),
            ("HTTPS://10.0.0.1/a.squashfs", "no TLS"),
            ("ftp://10.0.0.1/a", "not an http:// URL"),
            ("HTTP://10.0.0.1/a", "not an http:// URL"),
            ("http://master/images/default", "'master' is not an IPv4 address (the initramfs has no DNS"),
            ("http://10.0.0.1.5/a", "not an IPv4 address"),
            ("http://010.0.0.1/a", "not an IPv4 address"),
            ("http://user@10.0.0.1/a", "user name"),
            ("http://u:p@10.0.0.1/a", "user name"),
            ("http://[::1]/a", "IPv6"),
            ("http://10.0.0.1:0/a", "'0' is not a port"),
            ("http://10.0.0.1:+80/a", "'+80' is not a port"),
            ("http://10.0.0.1:65536/a", "not a port"),
            ("http://10.0.0.1:/a", "'' is not a port"),
            ("http://10.0.0.1", "names no file"),
            ("http://10.0.0.1/", "names no file"),
            ("http://10.0.0.1/images/", "names no file"),
            ("http://10.0.0.1?x", "names no file"),
            ("http://10.0.0.1/a#b", "fragment"),
            ("http://10.0.0.1/a b", "space"),
            ("http://10.0.0.1/a\r\nHost: x", "control"),
            ("http://10.0.0.1/\u{e9}", "non-ASCII"),
            ("http://10.0.0.1/a<b", "not a valid URL"),
            ("http:///a", "not a valid URL"),
            ("", "not an http:// URL"),
        ] {
            let err = HttpUrl::parse(url).unwrap_err();
            assert!(err.contains(why), "{url:?}: {err}");
        }
        let long = format!("http://10.0.0.1/{}", "a".repeat(MAX_URL));
        assert!(HttpUrl::parse(&long).unwrap_err().contains("the most taken is 1024"));
    }

    #[test]
    fn image_names() {
        let n = ImageName::parse(&format!("3-{HEX}.squashfs")).unwrap();
        assert_eq!(n.version(), "3");
        assert_eq!(sha256_hex(&n.sha256()), HEX);
        assert_eq!(n.to_string(), format!("3-{HEX}.squashfs"));
        let n = ImageName::parse(&format!("2026-12-01.a_b-{HEX}.squashfs")).unwrap();
        assert_eq!(n.version(), "2026-12-01.a_b");
        let upper = HEX.to_ascii_uppercase();
        let v33 = "9".repeat(33);
        for bad in [
            String::new(),
            format!("3-{HEX}"),
            format!("3-{HEX}.squashfs.part"),
            format!("3_{HEX}.squashfs"),
            format!("-{HEX}.squashfs"),
            format!("3-{upper}.squashfs"),
            format!("3-{}.squashfs", &HEX[1..]),
            format!("3-{HEX}0.squashfs"),
            format!("3-{}g.squashfs", &HEX[1..]),
            format!("{v33}-{HEX}.squashfs"),
            format!(".hidden-{HEX}.squashfs"),
            format!("../3-{HEX}.squashfs"),
            format!("a/3-{HEX}.squashfs"),
            format!("3 -{HEX}.squashfs"),
            format!("3\n-{HEX}.squashfs"),
            format!("3-{HEX}.squashfs\n"),
            "3-.squashfs".to_string(),
        ] {
            let err = ImageName::parse(&bad).unwrap_err();
            assert!(err.contains("is not an image file name"), "{bad:?}: {err}");
        }
        assert!(ImageName::parse(&"x".repeat(5000)).unwrap_err().contains("xxx..."));
    }

    #[test]
    fn hashes_in_hex() {
        let h = parse_sha256_hex(HEX).unwrap();
        assert_eq!(h[0], 0x01);
        assert_eq!(h[31], 0xef);
        assert_eq!(sha256_hex(&h), HEX);
        assert_eq!(parse_sha256_hex(&HEX.to_ascii_uppercase()), Some(h));
        for bad in ["", &HEX[2..], "+123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "é"] {
            assert_eq!(parse_sha256_hex(bad), None, "{bad}");
        }
        assert_eq!(parse_sha256_hex(&format!("{}\u{e9}", &HEX[..62])), None);
    }
}
