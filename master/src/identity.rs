//! Per-node identity, made once on the master and kept in the node's files: its host name,
//! a machine-id of its own and ssh host keys no other node has. Never made again once there.

use std::io::Read as _;
use std::path::Path;
use std::process::Command;

/// The ssh host key types a node gets, as `ssh-keygen -A` makes them for sshd's default
/// `HostKey` list.
pub const SSH_KEY_TYPES: [&str; 3] = ["ed25519", "ecdsa", "rsa"];

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("reading 16 random bytes from /dev/urandom for {path} failed: {source}")]
    Random { path: String, source: std::io::Error },
    #[error("writing {path} failed: {source}")]
    Write { path: String, source: std::io::Error },
    #[error("running ssh-keygen for {path} failed: {source}; install OpenSSH's ssh-keygen on the master")]
    Spawn { path: String, source: std::io::Error },
    #[error("ssh-keygen for {path} failed ({status}): {stderr}")]
    Keygen { path: String, status: std::process::ExitStatus, stderr: String },
}

/// A new machine-id: 128 random bits as 32 lowercase hex digits and a newline, marked as a
/// version 4 UUID (machine-id(5)).
pub fn new_machine_id(path: &Path) -> Result<String, IdentityError> {
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|source| IdentityError::Random { path: path.display().to_string(), source })?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect::<String>() + "\n")
}

/// Writes a new machine-id to `path` (mode 0444).
pub fn write_machine_id(path: &Path) -> Result<(), IdentityError> {
    let id = new_machine_id(path)?;
    crate::files::replace(path, id.as_bytes(), 0o444)
        .map_err(|source| IdentityError::Write { path: path.display().to_string(), source })
}

/// `ssh-keygen -q -t TYPE -N '' -C root@NAME -f PATH`: a new key pair, the private key 0600.
pub fn ssh_keygen(kind: &str, host: &str, path: &Path) -> Result<(), IdentityError> {
    let shown = path.display().to_string();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| IdentityError::Write { path: shown.clone(), source })?;
    }
    let out = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", &format!("root@{host}"), "-f"])
        .arg(path)
        .output()
        .map_err(|source| IdentityError::Spawn { path: shown.clone(), source })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        return Err(IdentityError::Keygen { path: shown, status: out.status, stderr });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids_are_fresh_uuid_v4() {
        let a = new_machine_id(Path::new("a")).unwrap();
        let b = new_machine_id(Path::new("b")).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 33);
        assert!(a.trim_end().bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(&a[12..13], "4");
    }
}
