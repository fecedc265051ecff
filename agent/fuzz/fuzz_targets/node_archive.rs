//! Fuzz target: a node-file archive, tried as plain tar, gzip and zstd, unpacked into a
//! scratch new root whose `/etc` holds symlinks out of it; nothing may change outside `/etc`.
#![no_main]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clusterroot::kmsg::Log;
use clusterroot::nodefiles::{unpack, Compression, EtcWriter};
use libfuzzer_sys::fuzz_target;

static N: AtomicU64 = AtomicU64::new(0);

/// Every path under `dir`, relative to it, not descending into `skip`.
fn listing(dir: &Path, rel: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = fs::read_dir(dir.join(rel)) else { return };
    for e in rd.flatten() {
        let r = rel.join(e.file_name());
        out.push(r.clone());
        if r != skip && e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            listing(dir, &r, skip, out);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let base =
        std::env::temp_dir().join(format!("crfuzz-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let new = base.join("new");
    // The shared image: /etc with symlinks leading out of it (relative, absolute and to the
    // new root), and places outside /etc a write could be led to.
    fs::create_dir_all(new.join("etc/ssh")).unwrap();
    fs::create_dir_all(new.join("usr/bin")).unwrap();
    fs::create_dir_all(base.join("outside")).unwrap();
    fs::write(new.join("secret"), "s").unwrap();
    symlink("../../outside", new.join("etc/out")).unwrap();
    symlink("/usr/bin", new.join("etc/bin")).unwrap();
    symlink("..", new.join("etc/up")).unwrap();
    symlink(&base, new.join("etc/host")).unwrap();
    let mut before = Vec::new();
    listing(&base, Path::new(""), Path::new("new/etc"), &mut before);
    before.sort();

    // Warnings go nowhere: thousands of runs a second would drown libFuzzer's own output.
    let log = Log::open(Path::new("/dev/null"));
    for kind in [Compression::None, Compression::Gzip, Compression::Zstd] {
        if let Ok(mut out) = EtcWriter::open(new.to_str().unwrap(), Instant::now() + Duration::from_secs(5)) {
            // The scratch root is on a big filesystem; a bomb should stop as on a small upper.
            out.limit_space(8 << 20);
            let _ = unpack(data, kind, "fuzz", &mut out, &log);
            out.close(&log);
        }
    }

    let mut after = Vec::new();
    listing(&base, Path::new(""), Path::new("new/etc"), &mut after);
    after.sort();
    assert_eq!(before, after, "something was created or removed outside the new root's /etc");
    assert_eq!(fs::read(new.join("secret")).unwrap(), b"s", "a file outside /etc changed");
    fs::remove_dir_all(&base).unwrap();
});
