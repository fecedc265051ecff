//! Node files against real syscalls in a scratch tree: archives, directories, and escapes.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use clusterroot::kmsg::Log;
use clusterroot::mac::MacAddress;
use clusterroot::nodefiles;

const MAC: &str = "52:54:00:77:00:0b";

static N: AtomicU32 = AtomicU32::new(0);

/// `lower/` (the shared root, holding etc/overlays) and `new/` (the new root) in a fresh dir.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("crnode-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("lower/etc/overlays")).unwrap();
        fs::create_dir_all(dir.join("new/etc")).unwrap();
        fs::write(dir.join("new/etc/hostname"), "shared\n").unwrap();
        Scratch { dir }
    }

    fn overlays(&self) -> PathBuf {
        self.dir.join("lower/etc/overlays")
    }

    fn new_root(&self) -> PathBuf {
        self.dir.join("new")
    }

    fn apply(&self) -> Vec<String> {
        let mac: MacAddress = MAC.parse().unwrap();
        nodefiles::apply(
            self.dir.join("lower").to_str().unwrap(),
            "/etc/overlays",
            &mac,
            self.new_root().to_str().unwrap(),
            std::time::Instant::now() + std::time::Duration::from_secs(60),
            &Log::stderr(),
        )
        .unwrap()
    }

    /// Every path in the scratch dir outside `new/` and `lower/`, for escape checks.
    fn outside_new_root(&self) -> Vec<String> {
        let mut out = Vec::new();
        walk(&self.dir, &mut |p| {
            let rel = p.strip_prefix(&self.dir).unwrap().to_string_lossy().into_owned();
            if !(rel.starts_with("new") || rel.starts_with("lower")) {
                out.push(rel);
            }
        });
        out.sort();
        out
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn walk(p: &Path, f: &mut dyn FnMut(&Path)) {
    if let Ok(rd) = fs::read_dir(p) {
        for e in rd.flatten() {
            f(&e.path());
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                walk(&e.path(), f);
            }
        }
    }
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A tar built entry by entry, with raw names (so `../x` and `/x` can be written).
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, name: &str, size: u64, mode: u32) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        // Raw name bytes: set_path would refuse `..`.
        let bytes = name.as_bytes();
        h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        h.set_cksum();
        h
    }

    fn file(mut self, name: &str, data: &str, mode: u32) -> Tar {
        let h = Self::header(tar::EntryType::Regular, name, data.len() as u64, mode);
        self.0.append(&h, data.as_bytes()).unwrap();
        self
    }

    fn dir(mut self, name: &str, mode: u32) -> Tar {
        let h = Self::header(tar::EntryType::Directory, name, 0, mode);
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    fn symlink(mut self, name: &str, target: &str) -> Tar {
        let mut h = Self::header(tar::EntryType::Symlink, name, 0, 0o777);
        h.set_link_name(target).unwrap();
        h.set_cksum();
        self.0.append(&h, &[][..]).unwrap();
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }

    fn gz(self) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&self.bytes()).unwrap();
        e.finish().unwrap()
    }
}

#[test]
fn directory_and_archives_are_laid_over_etc() {
    let s = Scratch::new();
    let node = s.overlays().join(MAC);
    fs::create_dir_all(node.join("ssh")).unwrap();
    fs::write(node.join("hostname"), "node1\n").unwrap();
    fs::write(node.join("ssh/sshd_config"), "Port 22\n").unwrap();
    fs::set_permissions(node.join("ssh/sshd_config"), fs::Permissions::from_mode(0o640)).unwrap();
    symlink("../run/resolv.conf", node.join("resolv.conf")).unwrap();
    fs::write(
        s.overlays().join(format!("{MAC}.tar.gz")),
        Tar::new().dir("motd.d", 0o755).file("motd.d/node", "gz\n", 0o644).gz(),
    )
    .unwrap();
    fs::write(s.overlays().join(format!("{MAC}.tar")), Tar::new().file("hostname", "from-tar\n", 0o644).bytes())
        .unwrap();
    let zst = ruzstd::encoding::compress_to_vec(
        &Tar::new().file("zst-file", "zst\n", 0o600).bytes()[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    );
    fs::write(s.overlays().join(format!("{MAC}.tar.zst")), zst).unwrap();
    // Another node's files must not be applied.
    fs::write(s.overlays().join("52:54:00:77:00:0c.tar"), Tar::new().file("other", "no\n", 0o644).bytes()).unwrap();

    let applied = s.apply();
    assert_eq!(applied, [format!("{MAC}.tar"), format!("{MAC}.tar.gz"), format!("{MAC}.tar.zst"), format!("{MAC}/")]);
    let etc = s.new_root().join("etc");
    // The directory comes last, so it wins over the archive.
    assert_eq!(fs::read_to_string(etc.join("hostname")).unwrap(), "node1\n");
    assert_eq!(fs::read_to_string(etc.join("motd.d/node")).unwrap(), "gz\n");
    assert_eq!(fs::read_to_string(etc.join("zst-file")).unwrap(), "zst\n");
    assert_eq!(fs::read_to_string(etc.join("ssh/sshd_config")).unwrap(), "Port 22\n");
    assert_eq!(fs::symlink_metadata(etc.join("ssh/sshd_config")).unwrap().mode() & 0o7777, 0o640);
    assert_eq!(fs::read_link(etc.join("resolv.conf")).unwrap(), PathBuf::from("../run/resolv.conf"));
    assert!(!etc.join("other").exists());
    if is_root() {
        assert_eq!(fs::metadata(etc.join("motd.d/node")).unwrap().mtime(), 1_600_000_000);
        assert_eq!(fs::metadata(etc.join("motd.d")).unwrap().mtime(), 1_600_000_000);
    }
    assert_eq!(s.outside_new_root(), Vec::<String>::new());
}

#[test]
fn no_overlays_dir_means_no_node_files() {
    let s = Scratch::new();
    fs::remove_dir_all(s.overlays()).unwrap();
    assert!(s.apply().is_empty());
    assert_eq!(fs::read_to_string(s.new_root().join("etc/hostname")).unwrap(), "shared\n");
}

#[test]
fn symlink_escapes_stay_inside_the_new_root() {
    let s = Scratch::new();
    let outside = s.dir.join("outside");
    fs::create_dir_all(&outside).unwrap();
    let tar = Tar::new()
        .symlink("x", "/")
        .file("x/escaped", "1\n", 0o644)
        .symlink("up", "../../../..")
        .file("up/escaped3", "3\n", 0o644)
        .symlink("abs", outside.to_str().unwrap())
        .file("abs/escaped4", "4\n", 0o644)
        .file("../escaped2", "2\n", 0o644)
        .file("/hostname", "absolute\n", 0o644);
    fs::write(s.overlays().join(format!("{MAC}.tar")), tar.bytes()).unwrap();
    // And the directory form: a symlink in the node directory, copied as a symlink.
    let node = s.overlays().join(MAC);
    fs::create_dir_all(&node).unwrap();
    symlink("/", node.join("y")).unwrap();

    s.apply();
    let new = s.new_root();
    // Symlinks resolve with the new root as "/": x/escaped and up/escaped3 land at its top,
    // with a warning, and never above it.
    assert_eq!(fs::read_to_string(new.join("escaped")).unwrap(), "1\n");
    assert_eq!(fs::read_to_string(new.join("escaped3")).unwrap(), "3\n");
    // An absolute symlink to a host path means that path inside the new root (absent here).
    assert!(!new.join(outside.strip_prefix("/").unwrap()).join("escaped4").exists());
    assert_eq!(fs::read_to_string(new.join("etc/hostname")).unwrap(), "absolute\n");
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "nothing written to the real outside dir");
    assert!(!s.dir.join("escaped2").exists() && !new.join("escaped2").exists());
    assert_eq!(fs::read_link(new.join("etc/y")).unwrap(), PathBuf::from("/"));
    assert_eq!(s.outside_new_root(), ["outside"]);
}

#[test]
fn absolute_symlinks_inside_etc_mean_the_new_roots_etc() {
    // Void's runit: /etc/runit/runsvdir/current -> /etc/runit/runsvdir/default.
    let s = Scratch::new();
    let new = s.new_root();
    fs::create_dir_all(new.join("etc/runit/runsvdir/default")).unwrap();
    symlink("/etc/runit/runsvdir/default", new.join("etc/runit/runsvdir/current")).unwrap();
    let tar = Tar::new().symlink("runit/runsvdir/current/sshd", "/etc/sv/sshd");
    fs::write(s.overlays().join(format!("{MAC}.tar")), tar.bytes()).unwrap();
    s.apply();
    assert_eq!(fs::read_link(new.join("etc/runit/runsvdir/default/sshd")).unwrap(), PathBuf::from("/etc/sv/sshd"));
    assert_eq!(s.outside_new_root(), Vec::<String>::new());
}

#[test]
fn a_broken_archive_warns_and_the_rest_applies() {
    let s = Scratch::new();
    let mut good = Tar::new().file("a", "a\n", 0o644).bytes();
    good.truncate(512 + 100); // header of a plus part of its data block
    fs::write(s.overlays().join(format!("{MAC}.tar")), good).unwrap();
    fs::write(s.overlays().join(format!("{MAC}.tgz")), b"not gzip at all").unwrap();
    fs::write(s.overlays().join(format!("{MAC}.tar.zst")), b"\x28\xb5\x2f\xfdgarbage").unwrap();
    fs::create_dir_all(s.overlays().join(MAC)).unwrap();
    fs::write(s.overlays().join(MAC).join("hostname"), "node1\n").unwrap();
    let applied = s.apply();
    assert_eq!(applied, [format!("{MAC}/")]);
    assert_eq!(fs::read_to_string(s.new_root().join("etc/hostname")).unwrap(), "node1\n");
}

#[test]
fn files_replace_symlinks_without_following_them() {
    let s = Scratch::new();
    let victim = s.dir.join("victim");
    fs::write(&victim, "untouched\n").unwrap();
    symlink(&victim, s.new_root().join("etc/passwd")).unwrap();
    fs::write(s.overlays().join(format!("{MAC}.tar")), Tar::new().file("passwd", "node\n", 0o644).bytes()).unwrap();
    s.apply();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "untouched\n");
    let p = s.new_root().join("etc/passwd");
    assert!(fs::symlink_metadata(&p).unwrap().file_type().is_file());
    assert_eq!(fs::read_to_string(p).unwrap(), "node\n");
}
