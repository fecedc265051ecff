//! The one injectable root under which `/proc`, `/sys`, `/dev` and `/run` are found.

use std::path::{Path, PathBuf};

/// Prefix for every kernel interface path the agent reads or writes. `/` in the initramfs;
/// a fixture tree in tests (`clusterroot --root DIR`).
#[derive(Clone, Debug)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    pub fn new(base: impl Into<PathBuf>) -> Root {
        Root { base: base.into() }
    }

    /// `abs` (such as `/proc/cmdline`) under this root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.base.join(abs.trim_start_matches('/'))
    }

    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The bytes of `/proc/cmdline` under this root. Missing when `/proc` is not mounted: the
    /// environment's fault, not the agent's, and said so.
    pub fn read_cmdline(&self) -> Result<Vec<u8>, CmdlineUnreadable> {
        let path = self.path("/proc/cmdline");
        std::fs::read(&path).map_err(|cause| CmdlineUnreadable { path: path.display().to_string(), cause })
    }
}

/// `/proc/cmdline` could not be read (exit code 6, `exit::ENVIRONMENT`).
#[derive(Debug, thiserror::Error)]
#[error(
    "reading the kernel command line from {path} failed: {cause}; clusterroot runs in an initramfs whose init has mounted /proc (mount -t proc proc /proc), or with --root DIR holding DIR/proc/cmdline"
)]
pub struct CmdlineUnreadable {
    pub path: String,
    #[source]
    pub cause: std::io::Error,
}

impl Default for Root {
    fn default() -> Root {
        Root::new("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_absolute_paths_under_the_base() {
        assert_eq!(Root::new("/tmp/x").path("/proc/cmdline"), PathBuf::from("/tmp/x/proc/cmdline"));
        assert_eq!(Root::default().path("/sys/class/net"), PathBuf::from("/sys/class/net"));
    }

    #[test]
    fn a_missing_proc_cmdline_names_the_path_and_the_fix() {
        let err = Root::new("/nonexistent-clusterroot-root").read_cmdline().unwrap_err().to_string();
        assert!(
            err.starts_with("reading the kernel command line from /nonexistent-clusterroot-root/proc/cmdline failed: "),
            "{err}"
        );
        assert!(err.contains("mount -t proc proc /proc"), "{err}");
    }
}
