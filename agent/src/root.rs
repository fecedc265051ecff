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
}
