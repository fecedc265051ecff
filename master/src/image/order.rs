//! The boot order: the paths a node's boot reads, laid out first in each new squashfs file
//! (mksquashfs `-sort`), so that a node reading its image file on NFS reads its boot in one
//! run from the start of the file (the agent reads the list's files ahead, in its order:
//! `clusterroot::lower::bootorder`) rather than in hundreds of reads scattered over it.
//!
//! `<store>/squashfs/boot-order` holds one path per line as a booted node sees it
//! (`/usr/lib/systemd/systemd`), the first to be laid out first; blank lines and lines
//! starting with `#` are skipped. It belongs to the store, not to a version: it goes on from
//! version to version, and each build leaves out what its version lacks. It lies beside the
//! files, where the nodes that read them on NFS find it. README ("The boot order") says how
//! to record it on a booted node with util-linux `fincore`.
//!
//! Which lines are taken is worked out here with no I/O ([`plan`], with the agent's rule for
//! a line, `bootorder::relative`); [`read`] reads the file and looks each path up in the
//! version's tree.

use std::fmt;
use std::path::{Component, Path, PathBuf};

use clusterroot::lower::bootorder;

/// The file, in the store's squashfs directory: the agent's name for it.
pub const FILE: &str = bootorder::FILE;
/// mksquashfs's highest priority: the first path gets it, each next one one less, down to 1
/// (everything the file does not name has mksquashfs's default, 0, and comes after).
const TOP: u32 = 32767;

#[derive(Debug, thiserror::Error)]
pub enum OrderError {
    #[error("reading the boot order {path} failed: {source}; fix it or remove it (files are then laid out in directory order)")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the boot order {path} is not text: line {line} is not UTF-8; it lists paths in the image, one per line (README: The boot order)")]
    NotText { path: PathBuf, line: usize },
    #[error("the boot order {path} is larger than the {max} bytes a node reads of it; it lists what one boot reads (README: The boot order)")]
    TooLong { path: PathBuf, max: u64 },
}

/// What a version's build takes from the boot order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Order {
    /// Paths relative to the version's top (`usr/lib/systemd/systemd`), first first.
    pub paths: Vec<String>,
    /// Lines left out: a path the version lacks, that leaves the tree, passes a symbolic
    /// link, or holds white space or a backslash (which mksquashfs's sort file cannot carry).
    pub left_out: usize,
}

impl Order {
    /// mksquashfs's sort file: `PATH PRIORITY` lines, relative to the source directory.
    pub fn sort_file(&self) -> String {
        let mut out = String::new();
        for (i, p) in self.paths.iter().enumerate() {
            let prio = TOP.saturating_sub(u32::try_from(i).unwrap_or(u32::MAX)).max(1);
            out.push_str(&format!("{p} {prio}\n"));
        }
        out
    }
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} paths of the boot order laid out first", self.paths.len())?;
        if self.left_out > 0 {
            write!(
                f,
                " ({} left out: not in this version, through a symbolic link, or not a plain name)",
                self.left_out
            )?;
        }
        Ok(())
    }
}

/// The paths of `text` taken, in order, each once: those the agent's rule takes
/// (`bootorder::parse`) that `present(rel)` says the version has, as a regular file or a
/// directory reached through directories only. No I/O.
pub fn plan(text: &str, present: impl Fn(&str) -> bool) -> Order {
    let list = bootorder::parse(text);
    let mut order = Order { paths: Vec::new(), left_out: list.not_plain };
    for rel in list.paths {
        if present(rel) {
            order.paths.push(rel.to_string());
        } else {
            order.left_out += 1;
        }
    }
    order
}

/// The store's boot order for the version at `src`, or None when the store has none.
pub fn read(file: &Path, src: &Path) -> Result<Option<Order>, OrderError> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(OrderError::Read { path: file.to_path_buf(), source }),
    };
    if bytes.len() as u64 > bootorder::MAX_LIST_BYTES {
        return Err(OrderError::TooLong { path: file.to_path_buf(), max: bootorder::MAX_LIST_BYTES });
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let line = e.as_bytes()[..e.utf8_error().valid_up_to()].iter().filter(|b| **b == b'\n').count() + 1;
        OrderError::NotText { path: file.to_path_buf(), line }
    })?;
    Ok(Some(plan(&text, |rel| in_tree(src, rel))))
}

/// Whether `src/rel` is a regular file or a directory reached through directories only: a
/// symbolic link on the way would be followed by mksquashfs from the master's own root.
fn in_tree(src: &Path, rel: &str) -> bool {
    let mut at = src.to_path_buf();
    let parts: Vec<Component> = Path::new(rel).components().collect();
    for (i, c) in parts.iter().enumerate() {
        at.push(c.as_os_str());
        let Ok(meta) = std::fs::symlink_metadata(&at) else { return false };
        let last = i + 1 == parts.len();
        if !(meta.is_dir() || (last && meta.is_file())) {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_priorities_first_highest() {
        let o = plan("# boot\n/usr/bin/a\n\nusr/lib/b\n/usr/bin/a\n", |_| true);
        assert_eq!(o.paths, ["usr/bin/a", "usr/lib/b"]);
        assert_eq!(o.left_out, 0);
        assert_eq!(o.sort_file(), "usr/bin/a 32767\nusr/lib/b 32766\n");
    }

    #[test]
    fn what_the_sort_file_cannot_carry_is_left_out() {
        let o = plan("/a b\n/c\\x20d\n/../etc/shadow\n/usr/./x\n//\n/ok\n/gone\n", |rel| rel != "gone");
        assert_eq!(o.paths, ["ok"]);
        assert_eq!(o.left_out, 6);
        assert!(o.to_string().contains("6 left out"), "{o}");
    }

    #[test]
    fn a_list_the_agent_would_not_read_is_refused() {
        let file = std::env::temp_dir().join(format!("crctl-order-big-{}", std::process::id()));
        std::fs::write(&file, vec![b'#'; bootorder::MAX_LIST_BYTES as usize + 1]).unwrap();
        let e = read(&file, Path::new("/nonexistent")).unwrap_err().to_string();
        std::fs::remove_file(&file).unwrap();
        assert!(e.contains("larger than the 8388608 bytes a node reads"), "{e}");
    }

    #[test]
    fn priorities_stop_at_one() {
        let text: String = (0..32_770).map(|i| format!("f{i}\n")).collect();
        let o = plan(&text, |_| true);
        assert!(o.sort_file().ends_with("f32766 1\nf32767 1\nf32768 1\nf32769 1\n"));
    }

    #[test]
    fn the_tree_is_looked_up_without_following_links() {
        let dir = std::env::temp_dir().join(format!("crctl-order-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let top = dir.as_path();
        std::fs::create_dir_all(top.join("usr/lib")).unwrap();
        std::fs::write(top.join("usr/lib/libc.so.6"), b"x").unwrap();
        std::os::unix::fs::symlink("usr/lib", top.join("lib")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", top.join("usr/lib/out")).unwrap();
        let file = top.join(FILE);
        std::fs::write(&file, "/usr/lib/libc.so.6\n/lib/libc.so.6\n/usr/lib/out\n/usr/lib\n").unwrap();
        let o = read(&file, top).unwrap().unwrap();
        assert_eq!(o.paths, ["usr/lib/libc.so.6", "usr/lib"]);
        assert_eq!(o.left_out, 2);
        assert!(read(&top.join("none"), top).unwrap().is_none());
        std::fs::write(&file, b"/a\n/b\xff\n").unwrap();
        let e = read(&file, top).unwrap_err().to_string();
        assert!(e.contains("line 2 is not UTF-8"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
