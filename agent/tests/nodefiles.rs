//! Node files against real syscalls in a scratch tree: archives, directories, and escapes.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use clusterroot::kmsg::Log;
use clusterroot::mac::MacAddress;
use clusterroot::nodefiles;

mod common;
use common::in_private_namespace;

const MAC: &str = "52:54:00:77:00:0b";

static N: AtomicU32 = AtomicU32::new(0);

/// `lower/` (the shared root, holding etc/overlays) and `new/` (the new root) in a fresh dir.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        Scratch::new_in(&std::env::temp_dir())
    }

    /// A scratch dir under `base`: `/dev/shm` for tests timed against the code, not the disk
    /// (ext4 under load can take a millisecond per mkdir).
    fn new_in(base: &Path) -> Scratch {
        let dir = base.join(format!("crnode-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
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
        self.apply_until(Instant::now() + Duration::from_secs(60), &Log::stderr())
    }

    fn apply_until(&self, deadline: Instant, log: &Log) -> Vec<String> {
        let mac: MacAddress = MAC.parse().unwrap();
        nodefiles::apply(
            self.dir.join("lower").to_str().unwrap(),
            "/etc/overlays",
            &mac,
            self.new_root().to_str().unwrap(),
            deadline,
            log,
        )
        .unwrap()
    }

    /// Applies the node files and returns what was logged.
    fn apply_logged(&self) -> String {
        captured(|log| self.apply_until(Instant::now() + Duration::from_secs(60), log)).1
    }

    /// Every path in `new/` outside `new/etc`, for escape checks.
    fn new_root_outside_etc(&self) -> Vec<String> {
        let new = self.new_root();
        let mut out = Vec::new();
        walk(&new, &mut |p| {
            let rel = p.strip_prefix(&new).unwrap().to_string_lossy().into_owned();
            if rel != "etc" && !rel.starts_with("etc/") {
                out.push(rel);
            }
        });
        out.sort();
        out
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

/// Runs `f` with a log whose lines are returned (and echoed to stderr). The log writes to a
/// FIFO that a thread drains: `Log::open` on a regular file would reopen it from offset 0
/// every few lines, as it does for `/dev/kmsg`.
fn captured<T>(f: impl FnOnce(&Log) -> T) -> (T, String) {
    let fifo = std::env::temp_dir().join(format!("crlog-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, rustix::fs::Mode::from_raw_mode(0o600), 0)
        .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            fs::File::open(fifo).unwrap().read_to_string(&mut text).unwrap();
            text
        })
    };
    let log = Log::open(&fifo);
    let out = f(&log);
    drop(log);
    let text = reader.join().unwrap();
    fs::remove_file(&fifo).unwrap();
    eprint!("{text}");
    (out, text)
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// The owner the archives' entries name: root's as root, else this user's, whose own files
/// the agent may chown to it (a package's check() runs these tests as a user; the agent,
/// which chowns every entry and drops one it cannot, runs as root in the initramfs).
fn owner() -> (u64, u64) {
    (rustix::process::geteuid().as_raw().into(), rustix::process::getegid().as_raw().into())
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
        h.set_uid(owner().0);
        h.set_gid(owner().1);
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

    fn hardlink(mut self, name: &str, target: &str) -> Tar {
        let mut h = Self::header(tar::EntryType::Link, name, 0, 0o644);
        let bytes = target.as_bytes();
        h.as_old_mut().linkname[..bytes.len()].copy_from_slice(bytes);
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

    let log = s.apply_logged();
    let new = s.new_root();
    // Writes through a symlink that leads out of /etc are refused, naming the entry.
    for entry in ["x/escaped", "up/escaped3", "abs/escaped4"] {
        assert!(log.contains(&format!("entry '{entry}' goes through a symlink out of /etc; skipped")), "{log}");
    }
    assert!(!new.join("escaped").exists() && !new.join("escaped3").exists());
    assert!(!new.join(outside.strip_prefix("/").unwrap()).exists());
    assert_eq!(fs::read_to_string(new.join("etc/hostname")).unwrap(), "absolute\n");
    assert!(fs::read_dir(&outside).unwrap().next().is_none(), "nothing written to the real outside dir");
    assert!(!s.dir.join("escaped2").exists() && !new.join("escaped2").exists());
    // The symlinks themselves are written, as symlinks.
    assert_eq!(fs::read_link(new.join("etc/x")).unwrap(), PathBuf::from("/"));
    assert_eq!(fs::read_link(new.join("etc/y")).unwrap(), PathBuf::from("/"));
    assert_eq!(s.outside_new_root(), ["outside"]);
    assert_eq!(s.new_root_outside_etc(), Vec::<String>::new());
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

#[test]
fn writes_through_symlinks_out_of_etc_are_refused() {
    let s = Scratch::new();
    let new = s.new_root();
    for d in ["root", "usr/local/bin"] {
        fs::create_dir_all(new.join(d)).unwrap();
    }
    fs::write(new.join("secret"), "shadow\n").unwrap();
    // A symlink in the shared image's /etc that leads out, and an archive writing through it.
    symlink("/root", new.join("etc/pre")).unwrap();
    let tar = Tar::new()
        .symlink("r", "/root")
        .file("r/.ssh/authorized_keys", "ssh-ed25519 AAAA attacker\n", 0o600)
        .symlink("rel", "../../root")
        .file("rel/x", "x\n", 0o644)
        .symlink("bin", "/usr/local/bin")
        .file("bin/x", "setuid\n", 0o4755)
        .file("pre/authorized_keys", "pre\n", 0o600)
        .symlink("up", "..")
        .hardlink("hl-through", "up/secret")
        .hardlink("hl-dotdot", "../secret")
        .hardlink("r/hl-placed-out", "hostname")
        .hardlink("hl-abs", "/secret")
        .dir("ssh", 0o755)
        .hardlink("hl-dir", "ssh");
    fs::write(s.overlays().join(format!("{MAC}.tar")), tar.bytes()).unwrap();

    let log = s.apply_logged();
    for entry in ["r/.ssh/authorized_keys", "rel/x", "bin/x", "pre/authorized_keys", "r/hl-placed-out"] {
        assert!(log.contains(&format!("entry '{entry}' goes through a symlink out of /etc; skipped")), "{entry}");
    }
    assert!(log.contains("hard link 'hl-through' -> 'up/secret': its target goes through a symlink out of /etc"));
    assert!(log.contains("hard link 'hl-dotdot' -> '../secret': contains '..'; skipped"));
    assert!(log.contains("hard link 'hl-abs' -> 'secret': its target is not a regular file in /etc"), "{log}");
    assert!(log.contains("hard link 'hl-dir' -> 'ssh': its target is not a regular file in /etc"));
    // Nothing new outside the new root's /etc, and nothing of the archive's there.
    assert_eq!(s.new_root_outside_etc(), ["root", "secret", "usr", "usr/local", "usr/local/bin"]);
    assert_eq!(fs::metadata(new.join("secret")).unwrap().nlink(), 1);
    assert_eq!(s.outside_new_root(), Vec::<String>::new());
    for name in ["hl-through", "hl-dotdot", "hl-abs", "hl-dir"] {
        assert!(fs::symlink_metadata(new.join("etc").join(name)).is_err(), "{name}");
    }
    // The symlinks themselves are written as they are.
    assert_eq!(fs::read_link(new.join("etc/r")).unwrap(), PathBuf::from("/root"));
    assert_eq!(fs::read_link(new.join("etc/bin")).unwrap(), PathBuf::from("/usr/local/bin"));
}

#[test]
fn symlinks_that_stay_inside_etc_are_followed() {
    let s = Scratch::new();
    let new = s.new_root();
    let tar = Tar::new()
        .dir("b", 0o755)
        .symlink("a", "b")
        .file("a/x", "x\n", 0o644)
        .symlink("c", "./b/../b")
        .file("c/y", "y\n", 0o644)
        .symlink("d", "/etc/b")
        .file("d/z", "z\n", 0o644)
        .dir("b/sub", 0o755)
        .symlink("b/sub/up", "../..")
        .file("b/sub/up/hostname", "node\n", 0o644)
        .hardlink("hl", "a/x")
        .symlink("localtime", "/usr/share/zoneinfo/UTC");
    fs::write(s.overlays().join(format!("{MAC}.tar.gz")), tar.gz()).unwrap();
    let log = s.apply_logged();
    assert!(!log.contains("warning"), "{log}");
    let etc = new.join("etc");
    for (f, data) in [("b/x", "x\n"), ("b/y", "y\n"), ("b/z", "z\n"), ("hostname", "node\n")] {
        assert_eq!(fs::read_to_string(etc.join(f)).unwrap(), data, "{f}");
    }
    assert_eq!(fs::metadata(etc.join("hl")).unwrap().ino(), fs::metadata(etc.join("b/x")).unwrap().ino());
    assert_eq!(fs::read_link(etc.join("localtime")).unwrap(), PathBuf::from("/usr/share/zoneinfo/UTC"));
    assert_eq!(s.new_root_outside_etc(), Vec::<String>::new());
}

#[test]
fn a_file_never_replaces_a_directory_and_nothing_temporary_stays() {
    let s = Scratch::new();
    let etc = s.new_root().join("etc");
    fs::create_dir_all(etc.join("ssh")).unwrap();
    fs::write(etc.join("ssh/sshd_config"), "shared\n").unwrap();
    let tar = Tar::new().file("ssh", "file\n", 0o644).symlink("ssh", "/x").file("motd", "hi\n", 0o644);
    fs::write(s.overlays().join(format!("{MAC}.tar")), tar.bytes()).unwrap();
    let log = s.apply_logged();
    assert!(log.contains("/etc/ssh: is a directory in the shared image; a file does not replace it"), "{log}");
    assert!(log.contains("/etc/ssh: is a directory in the shared image; a symlink does not replace it"), "{log}");
    assert_eq!(fs::read_to_string(etc.join("ssh/sshd_config")).unwrap(), "shared\n");
    assert_eq!(fs::read_to_string(etc.join("motd")).unwrap(), "hi\n");
    let names: Vec<String> =
        fs::read_dir(&etc).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    assert!(names.iter().all(|n| !n.starts_with(".clusterroot")), "{names:?}");
}

/// `depth` nested directories `d/d/...`, each holding a file `f`, as a gzipped tar.
fn deep_archive(depth: usize) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut path = String::new();
    for _ in 0..depth {
        path.push_str("d/");
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_uid(owner().0);
        h.set_gid(owner().1);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        b.append_data(&mut h, &path, &[][..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_uid(owner().0);
        h.set_gid(owner().1);
        h.set_size(2);
        b.append_data(&mut h, format!("{path}f"), &b"f\n"[..]).unwrap();
    }
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&b.into_inner().unwrap()).unwrap();
    e.finish().unwrap()
}

#[test]
fn depth_does_not_make_archives_slow() {
    const DEPTH: usize = 2000;
    let shm = Path::new("/dev/shm");
    let s = if shm.is_dir() { Scratch::new_in(shm) } else { Scratch::new() };
    let archive = deep_archive(DEPTH);
    // The cost, counted rather than timed: directory steps per entry stay bounded whatever
    // the depth (the old code reopened every prefix of every entry: DEPTH² / 2 steps).
    let mut out =
        nodefiles::EtcWriter::open(s.new_root().to_str().unwrap(), Instant::now() + Duration::from_secs(600)).unwrap();
    let entries =
        nodefiles::unpack(&archive[..], nodefiles::Compression::Gzip, "deep.tar.gz", &mut out, &Log::stderr()).unwrap();
    let steps = out.steps();
    out.close(&Log::stderr());
    eprintln!("{DEPTH} nested directories: {entries} entries, {steps} directory steps");
    assert_eq!(entries, 2 * DEPTH);
    assert!(steps <= 2 * entries as u64, "{steps} directory steps for {entries} entries: not linear");
    // The same through apply(), with its progress lines (timed for the record only).
    let s = if shm.is_dir() { Scratch::new_in(shm) } else { Scratch::new() };
    fs::write(s.overlays().join(format!("{MAC}.tar.gz")), archive).unwrap();
    let start = Instant::now();
    let log = s.apply_logged();
    eprintln!("{DEPTH} nested directories through apply() took {:?}", start.elapsed());
    assert!(log.contains(&format!("{MAC}.tar.gz: {} entries\n", 2 * DEPTH)), "{log}");
    assert!(log.contains(": 1000 entries, "), "a progress line: {log}");
    // Walk down by fd: the whole path is longer than PATH_MAX.
    use rustix::fs::{openat, statat, AtFlags, Mode, OFlags, CWD};
    let mut dir = openat(CWD, s.new_root().join("etc"), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
    for level in 0..DEPTH {
        dir = openat(&dir, "d", OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW, Mode::empty())
            .unwrap_or_else(|e| panic!("level {level}: {e}"));
        let st = statat(&dir, "f", AtFlags::SYMLINK_NOFOLLOW).unwrap_or_else(|e| panic!("level {level}: {e}"));
        assert_eq!(st.st_size, 2);
        if is_root() {
            let st = statat(&dir, ".", AtFlags::empty()).unwrap();
            assert_eq!(st.st_mtime, 1_600_000_000, "directory times are set last, at level {level}");
        }
    }
}

#[test]
fn a_passed_deadline_stops_node_files_at_once() {
    let s = Scratch::new();
    let mut tar = Tar::new();
    for i in 0..100 {
        tar = tar.file(&format!("f{i}"), "x\n", 0o644);
    }
    fs::write(s.overlays().join(format!("{MAC}.tar")), tar.bytes()).unwrap();
    fs::create_dir_all(s.overlays().join(MAC)).unwrap();
    fs::write(s.overlays().join(MAC).join("hostname"), "node1\n").unwrap();
    let (applied, log) = captured(|log| s.apply_until(Instant::now(), log));
    assert!(applied.is_empty(), "{applied:?}");
    assert!(
        log.contains(&format!(
            "node files: /etc/overlays/{MAC}.tar: clusterroot.timeout reached after 0 entries; the rest is skipped"
        )),
        "{log}"
    );
    assert_eq!(log.matches("timeout").count(), 1, "one warning: {log}");
    assert_eq!(fs::read_to_string(s.new_root().join("etc/hostname")).unwrap(), "shared\n");
    assert!(!s.new_root().join("etc/f0").exists());

    // The same for a node's own tree.
    let (n, log) = captured(|log| {
        let src = s.overlays().join(MAC);
        nodefiles::apply_tree(
            src.to_str().unwrap(),
            "node:/export",
            s.new_root().to_str().unwrap(),
            Instant::now(),
            log,
        )
        .unwrap()
    });
    assert_eq!(n, 0);
    assert!(log.contains("node files: node:/export: clusterroot.timeout reached after 0 entries"), "{log}");
}

/// Mounts a tmpfs of `size` on `at` (in the caller's private namespace).
fn mount_small_tmpfs(at: &Path, size: &str) -> Result<(), String> {
    let skip = |e: clusterroot::mount::MountError| format!("skip: {e}");
    let ctx = clusterroot::mount::FsContext::open("tmpfs").map_err(skip)?;
    ctx.set("size", Some(size)).map_err(skip)?;
    ctx.create("small").map_err(skip)?;
    let mnt = ctx.mount(rustix::mount::MountAttrFlags::empty()).map_err(skip)?;
    clusterroot::mount::attach(&mnt, "tmpfs", at.to_str().unwrap()).map_err(skip)
}

fn free_bytes(p: &Path) -> u64 {
    let v = rustix::fs::statvfs(p).unwrap();
    v.f_bavail * v.f_frsize
}

/// Whether `p`'s filesystem gets back to at least `free` bytes free (less 64 KiB of slack)
/// within 2 s. Not at once: a child that another test thread is spawning holds copies of
/// this process's descriptors from its fork to its exec, and so may keep a removed file's
/// pages allocated for a moment (CI failed on it once, under load).
fn gets_back_to(p: &Path, free: u64) -> bool {
    let until = Instant::now() + Duration::from_secs(2);
    loop {
        if free_bytes(p) + (64 << 10) >= free {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

const PASSWD: &str = "root:x:0:0::/root:/bin/sh\n";

/// Names in `dir` that look like our temporary files.
fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".clusterroot"))
        .collect()
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_file_that_does_not_fit_leaves_the_shared_version() {
    let s = Scratch::new();
    let (new, overlays) = (s.new_root(), s.overlays());
    in_private_namespace(move || {
        let etc = new.join("etc");
        mount_small_tmpfs(&etc, "4M")?;
        fs::write(etc.join("passwd"), PASSWD).unwrap();
        let free = free_bytes(&etc);
        // 6 MiB of passwd: more than the archive may unpack to.
        let big = "x".repeat(6 << 20);
        let tar = Tar::new().file("hostname", "node1\n", 0o644).file("passwd", &big, 0o644);
        fs::write(overlays.join(format!("{MAC}.tar")), tar.bytes()).unwrap();
        let mac: MacAddress = MAC.parse().unwrap();
        let lower = overlays.parent().unwrap().parent().unwrap();
        let (applied, log) = captured(|log| {
            let deadline = Instant::now() + Duration::from_secs(60);
            nodefiles::apply(lower.to_str().unwrap(), "/etc/overlays", &mac, new.to_str().unwrap(), deadline, log)
        });
        check(applied.is_ok(), "apply goes on")?;
        check(fs::read_to_string(etc.join("passwd")).unwrap() == PASSWD, "passwd byte for byte as it was")?;
        check(fs::read_to_string(etc.join("hostname")).unwrap() == "node1\n", "what came before applies")?;
        check(
            log.contains("/etc/passwd: write failed: No space left on device")
                && log.contains("; the shared image's version stays"),
            &format!("a warning names /etc/passwd: {log}"),
        )?;
        check(log.contains(&format!("reading /etc/overlays/{MAC}.tar failed: it holds more than the")), &log)?;
        check(temporaries(&etc).is_empty(), "no temporary files remain")?;
        check(gets_back_to(&etc, free), "the tmpfs is not left full")?;

        // The disk filling up under a write (the writer's own budget not yet spent).
        let mut out = nodefiles::EtcWriter::open(new.to_str().unwrap(), Instant::now() + Duration::from_secs(60))
            .map_err(|e| e.to_string())?;
        let filler = etc.join("filler");
        let mut f = fs::File::create(&filler).unwrap();
        while f.write_all(&[0u8; 1 << 16]).is_ok() {}
        drop(f);
        let meta = nodefiles::Meta { mode: 0o644, uid: 0, gid: 0, mtime: (0, 0) };
        let path = nodefiles::EtcPath::parse(b"passwd").unwrap();
        let err = out.file(&path, &mut &vec![b'y'; 1 << 20][..], &meta).err().map(|e| e.to_string());
        let err = err.unwrap_or_default();
        check(err.starts_with("/etc/passwd: write failed: No space left on device"), &err)?;
        fs::remove_file(&filler).unwrap();
        check(fs::read_to_string(etc.join("passwd")).unwrap() == PASSWD, "passwd still as it was")?;
        check(temporaries(&etc).is_empty(), "no temporary files remain after ENOSPC")?;
        check(gets_back_to(&etc, free), "the tmpfs is not left full after ENOSPC")?;
        Ok(())
    });
}

/// A tar holding one file of `size` zero bytes, compressed by the `zstd` tool; `None` when the
/// tool is missing.
fn zstd_bomb(size: u64) -> Option<Vec<u8>> {
    use std::process::{Command, Stdio};
    let mut child =
        Command::new("zstd").args(["-q", "-c", "-1"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().ok()?;
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        let mut h = Tar::header(tar::EntryType::Regular, "bomb", size, 0o644);
        h.set_cksum();
        stdin.write_all(h.as_bytes()).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let mut left = size;
        while left > 0 {
            let n = left.min(zeros.len() as u64);
            stdin.write_all(&zeros[..n as usize]).unwrap();
            left -= n;
        }
        stdin.write_all(&[0u8; 1024]).unwrap();
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap();
    child.wait().ok()?.success().then_some(out)
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn an_archive_expanding_past_the_free_space_stops_early() {
    let Some(bomb) = zstd_bomb(1 << 30) else {
        eprintln!("skipped: no zstd tool to make the archive");
        return;
    };
    eprintln!("1 GiB of tar in {} bytes of zstd", bomb.len());
    let s = Scratch::new();
    let (new, overlays) = (s.new_root(), s.overlays());
    fs::write(overlays.join(format!("{MAC}.tar.zst")), bomb).unwrap();
    in_private_namespace(move || {
        let etc = new.join("etc");
        mount_small_tmpfs(&etc, "4M")?;
        let free = free_bytes(&etc);
        let mac: MacAddress = MAC.parse().unwrap();
        let lower = overlays.parent().unwrap().parent().unwrap();
        let start = Instant::now();
        let (applied, log) = captured(|log| {
            let deadline = Instant::now() + Duration::from_secs(60);
            nodefiles::apply(lower.to_str().unwrap(), "/etc/overlays", &mac, new.to_str().unwrap(), deadline, log)
        });
        let took = start.elapsed();
        eprintln!("stopped after {took:?}");
        check(applied.map(|a| a.is_empty()).unwrap_or(false), "nothing applied")?;
        check(
            log.contains(&format!("reading /etc/overlays/{MAC}.tar.zst failed: it holds more than the")),
            &format!("an error names the archive: {log}"),
        )?;
        check(temporaries(&etc).is_empty(), "no temporary files remain")?;
        check(gets_back_to(&etc, free), "the tmpfs is not left full")?;
        Ok(())
    });
}

#[test]
fn warnings_are_capped_per_archive() {
    // A hostile archive of 25 unsafe entries: ten warnings, then one line counting the rest,
    // so it cannot flood the console; a good entry after them still lands.
    let s = Scratch::new();
    let mut tar = Tar::new();
    for i in 0..25 {
        tar = tar.file(&format!("../bad{i}"), "x\n", 0o644);
    }
    fs::write(s.overlays().join(format!("{MAC}.tar")), tar.file("good", "g\n", 0o644).bytes()).unwrap();
    let log = s.apply_logged();
    assert_eq!(log.matches("is unsafe (contains '..'); skipped").count(), 10, "{log}");
    assert!(log.contains(&format!("/etc/overlays/{MAC}.tar: 15 more warnings not shown")), "{log}");
    assert_eq!(fs::read_to_string(s.new_root().join("etc/good")).unwrap(), "g\n");
}
