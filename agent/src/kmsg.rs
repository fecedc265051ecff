//! Logging to `/dev/kmsg`: messages land in `dmesg` and, by the kernel's echo, on the console.

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The kernel rate-limits each open `/dev/kmsg` file to 10 lines per 5 s (`printk.devkmsg`);
/// a fresh open gets a fresh budget, so we reopen before it runs out and no line is dropped.
const LINES_PER_OPEN: u32 = 8;

/// Writes `clusterroot: ...` lines to kmsg, or to stderr when kmsg is unavailable (never both:
/// the kernel already echoes kmsg to the console, so both would print every line twice).
/// Never fails: logging must not break the boot.
pub struct Log {
    kmsg: RefCell<Option<(File, u32)>>,
    path: Option<PathBuf>,
    pub debug: bool,
    /// Info lines are left out (warnings and errors still go out).
    quiet: bool,
}

impl Log {
    /// Logs to `kmsg` (normally `/dev/kmsg`), falling back to stderr.
    pub fn open(kmsg: &Path) -> Log {
        let log = Log { kmsg: RefCell::new(None), path: Some(kmsg.to_path_buf()), debug: false, quiet: false };
        log.reopen();
        log
    }

    /// Another logger to the same place, with the same settings: for a thread of its own
    /// (a `Log` is not shared between threads).
    pub fn fresh(&self) -> Log {
        let log = Log { kmsg: RefCell::new(None), path: self.path.clone(), debug: self.debug, quiet: self.quiet };
        log.reopen();
        log
    }

    /// A logger for tests and `--dry-run`: stderr only.
    pub fn stderr() -> Log {
        Log { kmsg: RefCell::new(None), path: None, debug: false, quiet: false }
    }

    /// Warnings and errors to stderr, nothing else: for the master's tool, which runs the
    /// agent's code and has its own output.
    pub fn stderr_warnings() -> Log {
        Log { quiet: true, ..Log::stderr() }
    }

    fn reopen(&self) {
        let file = self.path.as_ref().and_then(|p| OpenOptions::new().write(true).open(p).ok());
        *self.kmsg.borrow_mut() = file.map(|f| (f, 0));
    }

    fn line(&self, level: u8, prefix: &str, msg: &str) {
        if matches!(&*self.kmsg.borrow(), Some((_, n)) if *n >= LINES_PER_OPEN) {
            self.reopen();
        }
        let mut slot = self.kmsg.borrow_mut();
        if let Some((k, n)) = slot.as_mut() {
            // One write per record: kmsg takes each write() as one message.
            if k.write_all(format!("<{level}>clusterroot: {prefix}{msg}\n").as_bytes()).is_ok() {
                *n += 1;
                return;
            }
        }
        let _ = std::io::stderr().write_all(format!("clusterroot: {prefix}{msg}\n").as_bytes());
    }

    pub fn info(&self, msg: &str) {
        if !self.quiet {
            self.line(6, "", msg);
        }
    }

    pub fn warn(&self, msg: &str) {
        self.line(4, "warning: ", msg);
    }

    pub fn error(&self, msg: &str) {
        self.line(3, "error: ", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            // Level 6, not 7: clusterroot.debug is asked for explicitly and should be seen.
            self.line(6, "debug: ", msg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_records_and_reopens() {
        let path = std::env::temp_dir().join(format!("crkmsg-{}", std::process::id()));
        std::fs::write(&path, "").unwrap();
        let log = Log::open(&path);
        for i in 0..20 {
            log.info(&format!("line {i}"));
        }
        log.error("bad");
        let text = std::fs::read_to_string(&path).unwrap();
        // A regular file opened without append: each reopen starts at offset 0 again, so only
        // the writes after the last reopen remain at the start; the record format is what
        // matters here.
        assert!(text.starts_with("<6>clusterroot: line 16\n"), "{text}");
        assert!(text.contains("<3>clusterroot: error: bad\n"), "{text}");
        std::fs::remove_file(&path).unwrap();
    }
}
