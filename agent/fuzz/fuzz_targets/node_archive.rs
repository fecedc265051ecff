//! Fuzz target: a node-file archive, unpacked into a scratch new root; nothing may be
//! written outside it.
#![no_main]

use std::sync::atomic::{AtomicU64, Ordering};

use clusterroot::kmsg::Log;
use clusterroot::nodefiles::{unpack, EtcWriter};
use libfuzzer_sys::fuzz_target;

static N: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let base = std::env::temp_dir().join(format!("crfuzz-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let root = base.join("new");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    if let Ok(mut out) = EtcWriter::open(root.to_str().unwrap()) {
        let _ = unpack(data, "fuzz.tar", &mut out, &Log::stderr());
        let _ = out.close();
    }
    // Only new/ may exist under base.
    for entry in std::fs::read_dir(&base).unwrap() {
        assert_eq!(entry.unwrap().file_name(), "new", "a write escaped the new root");
    }
    std::fs::remove_dir_all(&base).unwrap();
});
