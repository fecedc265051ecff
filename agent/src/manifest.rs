//! `/run/clusterroot/node-files`: the files a boot's node files put in `/etc`, one line each
//! (kind, mode, sha256, path), which `crctl diff` holds against what the master would give now.
//!
//! The lines name digests of secrets (ssh host keys), so the file is the owner's alone (0600):
//! a digest lets anyone holding it test guesses of a weak secret.

use std::fmt::Write as _;
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::root::Root;

pub const MANIFEST_FILE: &str = "/run/clusterroot/node-files";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {path} failed: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("writing {path} failed: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("line {line} of the node-files record is not `f|l MODE SHA256 /etc/PATH`: {text:?}")]
    Parse { line: usize, text: String },
}

/// What a path is: the digest is of a file's contents, or of a symlink's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    File,
    Link,
}

/// One file or symlink the node files put in `/etc`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Entry {
    /// Absolute, `/etc/...`.
    pub path: String,
    pub kind: Kind,
    /// Permission bits (`0o7777`); 0 for a symlink.
    pub mode: u32,
    /// sha256, lower-case hex.
    pub digest: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Every file and symlink below `etc` (a node-files tree, or the upper's `etc` right after the
/// node files were applied), sorted by path. Directories and whiteouts are left out: the node
/// files only add and replace files. Symlinks are read, never followed.
pub fn scan(etc: &Path) -> Result<Vec<Entry>, ManifestError> {
    let mut out = Vec::new();
    if std::fs::symlink_metadata(etc).is_err() {
        return Ok(out);
    }
    walk(etc, Path::new(""), &mut out)?;
    out.sort();
    Ok(out)
}

fn walk(etc: &Path, rel: &Path, out: &mut Vec<Entry>) -> Result<(), ManifestError> {
    let dir = etc.join(rel);
    let read = |path: &Path, source| ManifestError::Read { path: path.to_path_buf(), source };
    for dent in std::fs::read_dir(&dir).map_err(|e| read(&dir, e))? {
        let dent = dent.map_err(|e| read(&dir, e))?;
        let (r, path) = (rel.join(dent.file_name()), dent.path());
        let meta = std::fs::symlink_metadata(&path).map_err(|e| read(&path, e))?;
        let ft = meta.file_type();
        let name = format!("/etc/{}", r.display());
        if ft.is_dir() {
            walk(etc, &r, out)?;
        } else if ft.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| read(&path, e))?;
            let digest = hex(&Sha256::digest(target.as_os_str().as_encoded_bytes()));
            out.push(Entry { path: name, kind: Kind::Link, mode: 0, digest });
        } else if ft.is_file() {
            // O_NOFOLLOW: the path was a file a moment ago; it must still be one.
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)
                .map_err(|e| read(&path, e))?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = f.read(&mut buf).map_err(|e| read(&path, e))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            let mode = meta.permissions().mode() & 0o7777;
            out.push(Entry { path: name, kind: Kind::File, mode, digest: hex(&h.finalize()) });
        }
        // Anything else is left out: the whiteout that hides the per-node directories.
    }
    Ok(())
}

/// The record's text: `f 0600 <sha256> /etc/ssh/ssh_host_ed25519_key`, `l 0000 <sha256>
/// /etc/localtime`. The path comes last, so it may hold blanks; a newline in it is written as
/// `\n`, a backslash as `\\`.
pub fn render(entries: &[Entry]) -> String {
    let mut out = String::new();
    for e in entries {
        let kind = match e.kind {
            Kind::File => 'f',
            Kind::Link => 'l',
        };
        let path = e.path.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(out, "{kind} {:04o} {} {path}", e.mode, e.digest);
    }
    out
}

/// Reads [`render`]'s text back.
pub fn parse(text: &str) -> Result<Vec<Entry>, ManifestError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let bad = || ManifestError::Parse { line: i + 1, text: line.chars().take(120).collect() };
        let mut parts = line.splitn(4, ' ');
        let (Some(kind), Some(mode), Some(digest), Some(path)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let kind = match kind {
            "f" => Kind::File,
            "l" => Kind::Link,
            _ => return Err(bad()),
        };
        let mode = u32::from_str_radix(mode, 8).ok().filter(|m| *m <= 0o7777).ok_or_else(bad)?;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(bad());
        }
        if !path.starts_with("/etc/") {
            return Err(bad());
        }
        let path = unescape(path);
        out.push(Entry { path, kind, mode, digest: digest.to_string() });
    }
    Ok(out)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

/// Writes the record below `root`, readable by its owner only.
pub fn write(root: &Root, entries: &[Entry]) -> Result<(), ManifestError> {
    use std::io::Write as _;
    let path = root.path(MANIFEST_FILE);
    let written = (|| {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        // A new file, so the mode is 0600 from the start.
        let _ = std::fs::remove_file(&path);
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path)?;
        f.write_all(render(entries).as_bytes())
    })();
    written.map_err(|source| ManifestError::Write { path, source })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cr-manifest-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn scans_files_and_links_sorted_with_modes() {
        let d = tmp("scan");
        std::fs::create_dir_all(d.join("ssh")).unwrap();
        std::fs::write(d.join("hostname"), "node1\n").unwrap();
        std::fs::write(d.join("ssh/key"), "secret").unwrap();
        std::fs::set_permissions(d.join("ssh/key"), std::fs::Permissions::from_mode(0o600)).unwrap();
        std::os::unix::fs::symlink("/usr/share/zoneinfo/UTC", d.join("localtime")).unwrap();
        let got = scan(&d).unwrap();
        let paths: Vec<&str> = got.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/etc/hostname", "/etc/localtime", "/etc/ssh/key"]);
        assert_eq!(got[2].mode, 0o600);
        assert_eq!(got[1].kind, Kind::Link);
        assert_eq!(got[0].digest, hex(&Sha256::digest(b"node1\n")));
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn missing_etc_is_empty() {
        assert!(scan(Path::new("/nonexistent/clusterroot/etc")).unwrap().is_empty());
    }

    #[test]
    fn render_and_parse_round_trip_odd_paths() {
        let e = vec![
            Entry { path: "/etc/a b".into(), kind: Kind::File, mode: 0o644, digest: "0".repeat(64) },
            Entry { path: "/etc/x\ny\\z".into(), kind: Kind::Link, mode: 0, digest: "a".repeat(64) },
        ];
        let text = render(&e);
        assert_eq!(text.lines().count(), 2);
        assert_eq!(parse(&text).unwrap(), e);
    }

    #[test]
    fn parse_names_the_bad_line() {
        for bad in ["x 0644 {d} /etc/a", "f 99999 {d} /etc/a", "f 0644 abc /etc/a", "f 0644 {d} /tmp/a", "f 0644"] {
            let line = bad.replace("{d}", &"0".repeat(64));
            let text = format!("f 0644 {} /etc/ok\n{line}\n", "0".repeat(64));
            match parse(&text) {
                Err(ManifestError::Parse { line: 2, .. }) => {}
                other => panic!("{line}: {other:?}"),
            }
        }
    }

    #[test]
    fn written_for_the_owner_only() {
        let d = tmp("write");
        let root = Root::new(&d);
        write(&root, &[]).unwrap();
        write(&root, &[]).unwrap();
        let m = std::fs::metadata(root.path(MANIFEST_FILE)).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o600);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
