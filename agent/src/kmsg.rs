//! Logging to `/dev/kmsg` (so messages land in `dmesg` with the boot) and to the console.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

/// Writes `clusterroot: ...` lines to kmsg and stderr. Never fails: a line that cannot be
/// written is dropped, because logging must not break the boot.
pub struct Log {
    kmsg: Option<File>,
    console: bool,
    pub debug: bool,
}

impl Log {
    /// Opens `kmsg` (normally `/dev/kmsg`); without it, logs go to stderr only.
    pub fn open(kmsg: &Path, console: bool) -> Log {
        let kmsg = OpenOptions::new().write(true).open(kmsg).ok();
        Log {
            kmsg,
            console,
            debug: false,
        }
    }

    /// A logger for tests and `--dry-run`: stderr only.
    pub fn stderr() -> Log {
        Log {
            kmsg: None,
            console: true,
            debug: false,
        }
    }

    fn line(&self, level: u8, prefix: &str, msg: &str) {
        if let Some(mut k) = self.kmsg.as_ref() {
            // One write per record: kmsg takes each write() as one message.
            let _ = k.write_all(format!("<{level}>clusterroot: {prefix}{msg}\n").as_bytes());
        }
        if self.console || self.kmsg.is_none() {
            let _ = std::io::stderr().write_all(format!("clusterroot: {prefix}{msg}\n").as_bytes());
        }
    }

    pub fn info(&self, msg: &str) {
        self.line(6, "", msg);
    }

    pub fn warn(&self, msg: &str) {
        self.line(4, "warning: ", msg);
    }

    pub fn error(&self, msg: &str) {
        self.line(3, "error: ", msg);
    }

    pub fn debug(&self, msg: &str) {
        if self.debug {
            self.line(7, "debug: ", msg);
        }
    }
}
