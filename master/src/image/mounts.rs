//! `/proc/self/mountinfo`: what is mounted where (the ZFS dataset behind the store, and mounts
//! that a removal must not descend into).

use std::path::{Path, PathBuf};

/// One mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub point: PathBuf,
    pub fstype: String,
    /// The mount source: a device, `server:/path`, or a ZFS dataset's name.
    pub source: String,
}

/// Undoes the kernel's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Three octal digits of a byte: \000 to \377 (the kernel writes no other).
        let oct = b
            .get(i + 1..i + 4)
            .filter(|d| (b'0'..=b'3').contains(&d[0]) && d[1..].iter().all(|c| (b'0'..=b'7').contains(c)));
        match (b[i], oct) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses mountinfo's text (proc(5)): `ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - TYPE
/// SOURCE SUPEROPTIONS`. Malformed lines are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    let mut mounts = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else { continue };
        let (Some(point), mut rest) = (left.split(' ').nth(4), right.split(' ')) else { continue };
        let (Some(fstype), Some(source)) = (rest.next(), rest.next()) else { continue };
        mounts.push(Mount {
            point: PathBuf::from(unescape(point)),
            fstype: unescape(fstype),
            source: unescape(source),
        });
    }
    mounts
}

/// The mount points strictly below `dir` (and `dir` itself when `with_self`).
pub fn below(mounts: &[Mount], dir: &Path, with_self: bool) -> Vec<PathBuf> {
    mounts
        .iter()
        .filter(|m| m.point.starts_with(dir) && (with_self || m.point != dir))
        .map(|m| m.point.clone())
        .collect()
}

/// The mount exactly at `dir` (the last one: it hides those under it).
pub fn at<'a>(mounts: &'a [Mount], dir: &Path) -> Option<&'a Mount> {
    mounts.iter().rev().find(|m| m.point == dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "\
22 1 0:21 / / rw,relatime shared:1 - ext4 /dev/vda rw
40 22 0:45 / /srv/nfs/images rw,noatime shared:20 - zfs tank/images rw,xattr,posixacl
41 40 0:46 / /srv/nfs/images/1 ro,noatime shared:21 - zfs tank/images/1 ro,xattr,posixacl
42 22 0:47 / /mnt/with\\040space rw - tmpfs tmpfs rw
garbage
";

    #[test]
    fn parses_points_types_and_sources() {
        let m = parse(INFO);
        assert_eq!(m.len(), 4);
        assert_eq!(at(&m, Path::new("/srv/nfs/images")).unwrap().source, "tank/images");
        assert_eq!(at(&m, Path::new("/srv/nfs/images/1")).unwrap().fstype, "zfs");
        assert_eq!(m[3].point, Path::new("/mnt/with space"));
        assert_eq!(below(&m, Path::new("/srv/nfs/images"), false), [PathBuf::from("/srv/nfs/images/1")]);
        assert_eq!(below(&m, Path::new("/srv/nfs/images/1"), true).len(), 1);
        assert!(below(&m, Path::new("/srv/nfs/images/1"), false).is_empty());
        // A prefix of the name is not a parent.
        assert!(below(&m, Path::new("/srv/nfs/imag"), true).is_empty());
    }

    /// An escape beyond a byte (\400 and up) is kept as it is written, not overflowed.
    #[test]
    fn escapes_beyond_a_byte_stay_text() {
        assert_eq!(unescape("a\\377b\\400c\\777"), "a\u{fffd}b\\400c\\777");
    }
}
