//! Files on the master: written whole (a reader sees the old content or the new, never a
//! mix), and compared as entries.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Replaces `path` with `data` (mode `mode`): a temporary file in the same directory, synced,
/// then renamed over it; the directory is created if missing. On failure `path` is untouched.
pub fn replace(path: &Path, data: &[u8], mode: u32) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.crctl-{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(mode).open(&tmp)?;
        f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether `a` and `b` are the same entry: type, mode, owner, and content (a symlink's
/// target). Directories compare by type, mode and owner only.
pub fn same(a: &Path, b: &Path) -> std::io::Result<bool> {
    let (ma, mb) = (std::fs::symlink_metadata(a)?, std::fs::symlink_metadata(b)?);
    if ma.file_type() != mb.file_type() || (ma.mode(), ma.uid(), ma.gid()) != (mb.mode(), mb.uid(), mb.gid()) {
        return Ok(false);
    }
    if ma.file_type().is_symlink() {
        return Ok(std::fs::read_link(a)? == std::fs::read_link(b)?);
    }
    if ma.is_file() {
        return Ok(ma.len() == mb.len() && std::fs::read(a)? == std::fs::read(b)?);
    }
    Ok(true)
}
