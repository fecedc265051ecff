//! The boot order: the files a node's boot reads, read ahead from a squashfs image on NFS
//! in one pass, so that its boot finds them in memory.
//!
//! `crctl image` lays the files of the store's boot order first in each squashfs file
//! (mksquashfs `-sort`), in the list's order, and the list lies beside the files:
//! `<store>/squashfs/boot-order`, one path in the image a line (`/usr/lib/systemd/systemd`).
//! Read in that order, the files come off the image file as one run from its start, which the
//! NFS client reads in a few large READs (with the mount's raised read-ahead, `readahead`)
//! rather than in hundreds of small ones at whatever moment each is first needed, as
//! systemd-readahead once replayed a boot's reads. A path the image lacks is passed over;
//! without the list nothing is read ahead. Shell: `while read -r p; do cat "$LOWER$p"; done
//! <boot-order >/dev/null`.
//!
//! The list is parsed here with no I/O ([`paths`], [`relative`], which crctl shares);
//! [`read_ahead`] reads.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

/// The list's name, beside the image files.
pub const FILE: &str = "boot-order";
/// The longest list read: a boot reads thousands of files, each path under 4 KiB.
pub const MAX_LIST_BYTES: u64 = 8 << 20;
/// At most this much is read ahead, however long the list.
pub const MAX_BYTES: u64 = 512 << 20;

#[derive(Debug, thiserror::Error)]
pub enum BootOrderError {
    #[error("reading the boot order {path} failed: {errno}")]
    Read { path: String, errno: Errno },
    #[error("the boot order {path} is larger than {max} bytes; crctl writes it from one boot's reads")]
    TooLarge { path: String, max: u64 },
    #[error("opening the lower {path} failed: {errno}")]
    Lower { path: String, errno: Errno },
}

/// What a read-ahead did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadAhead {
    /// Files read.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Paths the image lacks, or that are not regular files there.
    pub passed: usize,
    pub took: Duration,
    /// Why it stopped before the end of the list (the deadline, the byte limit), if it did.
    pub stopped: Option<&'static str>,
}

/// A line of the list as a path below the image's top (`usr/lib/x`), or None: only plain
/// names (no `.`, `..` or empty components), none with white space, a backslash or a control
/// character (which mksquashfs's sort file cannot carry). No I/O.
pub fn relative(line: &str) -> Option<&str> {
    if line.chars().any(|c| c.is_whitespace() || c == '\\' || c.is_control()) {
        return None;
    }
    let rel = line.trim_start_matches('/');
    if rel.is_empty() || rel.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        return None;
    }
    Some(rel)
}

/// A list, parsed: what the agent reads ahead and crctl lays out first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct List<'a> {
    /// The paths ([`relative`]), in the list's order, each once.
    pub paths: Vec<&'a str>,
    /// Lines that are neither blank, nor a `#` comment, nor a plain path.
    pub not_plain: usize,
}

/// Parses the list: one path a line (a trailing CR dropped), blank lines and `#` comments
/// skipped, a path named twice taken once. No I/O.
pub fn parse(text: &str) -> List<'_> {
    let mut list = List::default();
    let mut seen = std::collections::HashSet::new();
    for line in text.lines().map(|l| l.strip_suffix('\r').unwrap_or(l)) {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        match relative(line) {
            Some(rel) if seen.insert(rel) => list.paths.push(rel),
            Some(_) => {}
            None => list.not_plain += 1,
        }
    }
    list
}

/// The paths of the list, in its order, each once ([`parse`]). No I/O.
pub fn paths(text: &str) -> Vec<&str> {
    parse(text).paths
}

/// Reads the files `list` names under `lower` from start to end, in the list's order, until
/// `deadline` or [`MAX_BYTES`]; a missing list is `Ok(None)`. A path is resolved beneath
/// `lower` without following symbolic links, and only a regular file is read.
pub fn read_ahead(list: &Path, lower: &Path, deadline: Instant) -> Result<Option<ReadAhead>, BootOrderError> {
    let started = Instant::now();
    let shown = || list.display().to_string();
    let text = match read_list(list) {
        Ok(t) => t,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::FBIG) => return Err(BootOrderError::TooLarge { path: shown(), max: MAX_LIST_BYTES }),
        Err(errno) => return Err(BootOrderError::Read { path: shown(), errno }),
    };
    let top = rustix::fs::open(lower, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|errno| BootOrderError::Lower { path: lower.display().to_string(), errno })?;
    let mut done = ReadAhead::default();
    let mut buf = vec![0u8; 1 << 20];
    let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
    let beneath = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV;
    for rel in paths(&String::from_utf8_lossy(&text)) {
        if Instant::now() >= deadline {
            done.stopped = Some("the deadline");
            break;
        }
        let file = match rustix::fs::openat2(&top, rel, flags, Mode::empty(), beneath) {
            Ok(fd)
                if rustix::fs::fstat(&fd).is_ok_and(|st| rustix::fs::FileType::from_raw_mode(st.st_mode).is_file()) =>
            {
                fd
            }
            _ => {
                done.passed += 1;
                continue;
            }
        };
        let mut file = std::fs::File::from(file);
        loop {
            let want = usize::try_from(MAX_BYTES - done.bytes).unwrap_or(buf.len()).min(buf.len());
            if want == 0 {
                break;
            }
            match file.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => done.bytes += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                // An unreadable block is the boot's to meet and report; here it only ends
                // this file.
                Err(_) => break,
            }
        }
        done.files += 1;
        if done.bytes >= MAX_BYTES {
            done.stopped = Some("its byte limit");
            break;
        }
    }
    done.took = started.elapsed();
    Ok(Some(done))
}

/// The list's bytes, at most [`MAX_LIST_BYTES`] (`EFBIG` beyond).
fn read_list(path: &Path) -> Result<Vec<u8>, Errno> {
    let fd = rustix::fs::open(path, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC, Mode::empty())?;
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_LIST_BYTES + 1)
        .read_to_end(&mut text)
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))?;
    if text.len() as u64 > MAX_LIST_BYTES {
        return Err(Errno::FBIG);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_plain_paths_in_order_each_once() {
        let text = "# one boot\n/usr/bin/a\n\nusr/lib/b\n/usr/bin/a\n/a b\n/c\\x20d\n/../etc/shadow\n/usr/./x\n//\n";
        assert_eq!(paths(text), ["usr/bin/a", "usr/lib/b"]);
        let list = parse("/usr/bin/a\r\n  \n/a b\r\n//\n#x y\n/usr/bin/a\n");
        assert_eq!(list, List { paths: vec!["usr/bin/a"], not_plain: 2 });
    }

    #[test]
    fn files_are_read_beneath_the_lower_only() {
        let base = std::env::temp_dir().join(format!("clusterroot-bootorder-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let lower = base.join("lower");
        std::fs::create_dir_all(lower.join("usr/lib")).unwrap();
        std::fs::write(lower.join("usr/lib/a"), vec![7u8; 3 << 20]).unwrap();
        std::fs::write(base.join("outside"), b"secret").unwrap();
        std::os::unix::fs::symlink("../../outside", lower.join("usr/lib/out")).unwrap();
        std::os::unix::fs::symlink("usr/lib", lower.join("lib")).unwrap();
        std::fs::create_dir(lower.join("dir")).unwrap();
        let list = base.join(FILE);
        std::fs::write(&list, "/usr/lib/a\n/usr/lib/out\n/lib/a\n/dir\n/gone\n").unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        let r = read_ahead(&list, &lower, far).unwrap().unwrap();
        assert_eq!((r.files, r.bytes, r.passed, r.stopped), (1, 3 << 20, 4, None));
        // The deadline passed: nothing read, and said why.
        let r = read_ahead(&list, &lower, Instant::now()).unwrap().unwrap();
        assert_eq!((r.files, r.stopped), (0, Some("the deadline")));
        assert_eq!(read_ahead(&base.join("none"), &lower, far).unwrap(), None);
        let e = read_ahead(&list, &base.join("nolower"), far).unwrap_err().to_string();
        assert!(e.starts_with("opening the lower ") && e.contains("nolower"), "{e}");
        std::fs::write(&list, vec![b'a'; (MAX_LIST_BYTES + 1) as usize]).unwrap();
        let e = read_ahead(&list, &lower, far).unwrap_err().to_string();
        assert!(e.contains("is larger than 8388608 bytes"), "{e}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
