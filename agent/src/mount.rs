//! The kernel's new mount API (`fsopen`, `fsconfig`, `fsmount`, `move_mount`) with its error text.
//!
//! See `Documentation/filesystems/mount_api.rst`. Unlike `mount(2)`, a failed `fsconfig`
//! leaves the kernel's own explanation readable on the context fd; we put it in the error.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, CWD};
use rustix::io::Errno;
use rustix::mount::{
    fsconfig_create, fsconfig_set_flag, fsconfig_set_string, fsmount, fsopen, move_mount, FsMountFlags, FsOpenFlags,
    MountAttrFlags, MoveMountFlags,
};

#[derive(Debug, thiserror::Error)]
pub enum MountError {
    #[error("opening a {fstype} filesystem context failed: {errno}{}", hint_module(fstype, *errno))]
    Open { fstype: String, errno: Errno },
    #[error("{fstype} option {option} was refused: {errno}{}", kernel_text(kernel))]
    Config { fstype: String, option: String, errno: Errno, kernel: String },
    #[error("mounting {fstype} {what} failed: {errno}{}", kernel_text(kernel))]
    Create { fstype: String, what: String, errno: Errno, kernel: String },
    #[error("attaching the {fstype} mount failed: {errno}")]
    Attach { fstype: String, errno: Errno },
    #[error("moving the mount from {from} to {to} failed: {errno}")]
    Move { from: String, to: String, errno: Errno },
    #[error("creating directory {path} failed: {errno}")]
    Mkdir { path: String, errno: Errno },
}

impl MountError {
    /// The errno behind the failure, for retry decisions.
    pub fn errno(&self) -> Errno {
        match self {
            MountError::Open { errno, .. }
            | MountError::Config { errno, .. }
            | MountError::Create { errno, .. }
            | MountError::Attach { errno, .. }
            | MountError::Move { errno, .. }
            | MountError::Mkdir { errno, .. } => *errno,
        }
    }

    /// What the kernel said about the failure, if anything.
    pub fn kernel(&self) -> &str {
        match self {
            MountError::Config { kernel, .. } | MountError::Create { kernel, .. } => kernel,
            _ => "",
        }
    }
}

fn kernel_text(kernel: &str) -> String {
    if kernel.is_empty() {
        String::new()
    } else {
        format!(" (kernel: {kernel})")
    }
}

fn hint_module(fstype: &str, errno: Errno) -> String {
    if errno == Errno::NODEV {
        format!("; is the {fstype} module in the initramfs? (mkinitcpio: the filesystems hook; dracut: the master's image, not the clients')")
    } else {
        String::new()
    }
}

/// One filesystem being configured through `fsopen(2)`.
pub struct FsContext {
    fd: OwnedFd,
    fstype: String,
}

impl FsContext {
    /// `fsopen(fstype, FSOPEN_CLOEXEC)`; the kernel loads the filesystem module on demand.
    pub fn open(fstype: &str) -> Result<FsContext, MountError> {
        let fd = fsopen(fstype, FsOpenFlags::FSOPEN_CLOEXEC)
            .map_err(|errno| MountError::Open { fstype: fstype.to_string(), errno })?;
        Ok(FsContext { fd, fstype: fstype.to_string() })
    }

    /// `fsconfig(FSCONFIG_SET_STRING)` for `key=value`, `FSCONFIG_SET_FLAG` for a bare `key`.
    pub fn set(&self, key: &str, value: Option<&str>) -> Result<(), MountError> {
        let r = match value {
            Some(v) => fsconfig_set_string(self.fd.as_fd(), key, v),
            None => fsconfig_set_flag(self.fd.as_fd(), key),
        };
        r.map_err(|errno| MountError::Config {
            fstype: self.fstype.clone(),
            option: match value {
                Some(v) => format!("{key}={v}"),
                None => key.to_string(),
            },
            errno,
            kernel: self.kernel_messages(),
        })
    }

    /// `fsconfig(FSCONFIG_CMD_CREATE)`: the moment the filesystem is really mounted (for NFS:
    /// contacted). `source` is only for the error message.
    pub fn create(&self, source: &str) -> Result<(), MountError> {
        fsconfig_create(self.fd.as_fd()).map_err(|errno| MountError::Create {
            fstype: self.fstype.clone(),
            what: source.to_string(),
            errno,
            kernel: self.kernel_messages(),
        })
    }

    /// `fsmount(2)`: a detached mount, to be attached with [`attach`].
    pub fn mount(&self, attrs: MountAttrFlags) -> Result<OwnedFd, MountError> {
        fsmount(self.fd.as_fd(), FsMountFlags::FSMOUNT_CLOEXEC, attrs)
            .map_err(|errno| MountError::Attach { fstype: self.fstype.clone(), errno })
    }

    /// Everything the kernel logged on this context (`e `/`w `/`i ` lines), joined with `; `.
    pub fn kernel_messages(&self) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut buf = [0u8; 1024];
        // The kernel keeps at most 8 messages per context; read until ENODATA.
        for _ in 0..16 {
            match rustix::io::read(self.fd.as_fd(), &mut buf) {
                Ok(n) if n > 0 => {
                    let s = String::from_utf8_lossy(&buf[..n]);
                    let s = s.trim_end();
                    let s = s.get(2..).filter(|_| s.as_bytes().get(1) == Some(&b' ')).unwrap_or(s);
                    out.push(s.to_string());
                }
                _ => break,
            }
        }
        out.join("; ")
    }

    pub fn fd(&self) -> &OwnedFd {
        &self.fd
    }
}

/// `move_mount(mnt, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH)`: attach a detached mount.
pub fn attach(mnt: &OwnedFd, fstype: &str, target: &str) -> Result<(), MountError> {
    move_mount(mnt.as_fd(), "", CWD, target, MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH)
        .map_err(|errno| MountError::Move { from: format!("new {fstype} mount"), to: target.to_string(), errno })
}

/// Mounts a local lower (the master's disk or dataset) on `target`: `source`, then `options`
/// (`key=value` or a bare flag), read-only (superblock and mount) unless `rw`.
pub fn mount_local(
    fstype: &str,
    source: &str,
    options: &[(&str, Option<&str>)],
    rw: bool,
    target: &str,
) -> Result<(), MountError> {
    mkdir_p(target)?;
    let ctx = FsContext::open(fstype)?;
    ctx.set("source", Some(source))?;
    for (key, value) in options {
        ctx.set(key, *value)?;
    }
    if !rw {
        ctx.set("ro", None)?;
    }
    ctx.create(source)?;
    let attrs = if rw { MountAttrFlags::empty() } else { MountAttrFlags::MOUNT_ATTR_RDONLY };
    let mnt = ctx.mount(attrs)?;
    attach(&mnt, fstype, target)
}

/// `move_mount(AT_FDCWD, from, AT_FDCWD, to, 0)`: like `mount --move from to`.
pub fn move_path(from: &str, to: &str) -> Result<(), MountError> {
    move_mount(CWD, from, CWD, to, MoveMountFlags::empty()).map_err(|errno| MountError::Move {
        from: from.to_string(),
        to: to.to_string(),
        errno,
    })
}

/// `mkdir -p path` with mode 0755 for what it creates.
pub fn mkdir_p(path: &str) -> Result<(), MountError> {
    let mut cur = String::new();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        cur.push('/');
        cur.push_str(comp);
        match rustix::fs::mkdir(cur.as_str(), Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => return Err(MountError::Mkdir { path: cur, errno }),
        }
    }
    Ok(())
}
