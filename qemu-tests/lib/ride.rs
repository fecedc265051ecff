//! crtest-ride: the workloads that must ride out a reboot of the master, for the cluster
//! test's reboot steps (qemu-tests/cluster). Built by lib/make-cluster-root with rustc for
//! the musl target (one static file, no crates) and installed in the test image only.
//!
//!     crtest-ride write FILE NAME    takes an exclusive lock on FILE (flock(2): on NFS the
//!                                    kernel sends it to the server as a whole-file lock),
//!                                    then appends a record "NAME SEQ\n" (SEQ from 1, ten
//!                                    digits) every 200 ms, fsync(2) after each, and prints
//!                                    "CRTEST ride NAME: fsynced SEQ" once fsync returned
//!     crtest-ride read DIR NAME      reads every file of DIR again and again (each open asks
//!                                    the server, close-to-open), checks each pass reads what
//!                                    the first did, prints "CRTEST ride NAME: pass N" per pass
//!     crtest-ride check FILE NAME    the file holds records NAME 1..K and nothing else:
//!                                    "CRTEST ride-check FILE: ok K" or "... bad: <what>"
//!
//! write and read run until SIGTERM ("CRTEST ride NAME: stopped after SEQ|N"); any failed
//! system call ends them with "CRTEST ride NAME: error: <call>: <error>" (EIO, ESTALE, ...):
//! the test fails on such a line.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const LOCK_EX: i32 = 2;
const SIGTERM: i32 = 15;
const PERIOD: Duration = Duration::from_millis(200);

extern "C" {
    fn flock(fd: i32, operation: i32) -> i32;
    fn signal(signum: i32, handler: extern "C" fn(i32)) -> usize;
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: i32) {
    STOP.store(true, Ordering::SeqCst);
}

/// One line on stdout (the console), flushed at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "CRTEST {line}");
    let _ = out.flush();
}

fn fail(name: &str, call: &str, e: std::io::Error) -> ! {
    say(&format!("ride {name}: error: {call}: {e}"));
    std::process::exit(1)
}

fn record(name: &str, seq: u64) -> String {
    format!("{name} {seq:010}\n")
}

fn write(path: &str, name: &str) {
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| fail(name, &format!("open {path}"), e));
    // SAFETY: f's descriptor is open for the whole call; flock takes no pointers.
    if unsafe { flock(f.as_raw_fd(), LOCK_EX) } != 0 {
        fail(name, &format!("flock {path}"), std::io::Error::last_os_error());
    }
    say(&format!("ride {name}: locked {path}"));
    let mut seq = 0;
    while !STOP.load(Ordering::SeqCst) {
        seq += 1;
        f.write_all(record(name, seq).as_bytes()).unwrap_or_else(|e| fail(name, "write", e));
        f.sync_all().unwrap_or_else(|e| fail(name, "fsync", e));
        say(&format!("ride {name}: fsynced {seq}"));
        std::thread::sleep(PERIOD);
    }
    say(&format!("ride {name}: stopped after {seq}"));
}

fn read(dir: &str, name: &str) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| fail(name, &format!("readdir {dir}"), e))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.symlink_metadata().map(|m| m.is_file()).unwrap_or(false))
        .collect();
    files.sort();
    let mut first: Vec<Vec<u8>> = Vec::new();
    let mut pass = 0;
    while !STOP.load(Ordering::SeqCst) {
        pass += 1;
        for (i, p) in files.iter().enumerate() {
            let mut data = Vec::new();
            File::open(p)
                .and_then(|mut f| f.read_to_end(&mut data))
                .unwrap_or_else(|e| fail(name, &format!("read {}", p.display()), e));
            if pass == 1 {
                first.push(data);
            } else if first[i] != data {
                say(&format!("ride {name}: error: {} changed between passes", p.display()));
                std::process::exit(1);
            }
        }
        say(&format!("ride {name}: pass {pass} ({} files)", files.len()));
        std::thread::sleep(PERIOD);
    }
    say(&format!("ride {name}: stopped after {pass}"));
}

fn check(path: &str, name: &str) {
    let mut data = Vec::new();
    if let Err(e) = File::open(path).and_then(|mut f| f.read_to_end(&mut data)) {
        say(&format!("ride-check {path}: bad: {e}"));
        return;
    }
    let mut seq = 0;
    let mut at = 0;
    while at < data.len() {
        let want = record(name, seq + 1);
        let got = &data[at..data.len().min(at + want.len())];
        if got != want.as_bytes() {
            let shown = String::from_utf8_lossy(got).escape_debug().to_string();
            say(&format!("ride-check {path}: bad: record {} at byte {at} is \"{shown}\"", seq + 1));
            return;
        }
        seq += 1;
        at += want.len();
    }
    say(&format!("ride-check {path}: ok {seq}"));
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 3 {
        eprintln!("usage: crtest-ride write|read|check PATH NAME");
        std::process::exit(2);
    }
    // SAFETY: on_term only stores to an atomic, which is async-signal-safe.
    unsafe { signal(SIGTERM, on_term) };
    match args[0].as_str() {
        "write" => write(&args[1], &args[2]),
        "read" => read(&args[1], &args[2]),
        "check" => check(&args[1], &args[2]),
        other => {
            eprintln!("crtest-ride: unknown mode {other}");
            std::process::exit(2);
        }
    }
}
