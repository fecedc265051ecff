//! The writable layer: a tmpfs holding `upper/` and `work/`, and the overlay over the lower.

use rustix::fd::OwnedFd;
use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use rustix::mount::MountAttrFlags;

use crate::kmsg::Log;
use crate::mount::{self, FsContext, MountError};
use crate::plan::{LOWER, OVERLAY_OPTIONS, UPPER, WORK};

#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    #[error("mounting the tmpfs upper on {target}: {cause}{}", size_hint(.size))]
    Tmpfs { target: String, size: Option<String>, cause: MountError },
    #[error("mounting the overlay on {target}: {cause}; check that the overlay module is in the initramfs and that the lower at {LOWER} is a directory tree overlayfs accepts")]
    Overlay { target: String, cause: MountError },
    #[error("preparing {path}: {op} failed: {errno}")]
    Upper { path: String, op: &'static str, errno: Errno },
    #[error("{cause}")]
    Move { cause: MountError },
    #[error("making {path} private (mode 0700) failed: {cause}")]
    Private { path: String, cause: String },
}

fn size_hint(size: &Option<String>) -> String {
    match size {
        Some(s) => format!(" (clusterroot.size={s}: use a size such as 2G or 50%)"),
        None => String::new(),
    }
}

/// Mounts a tmpfs (mode 0755, `size=` when given) on `target`.
pub fn mount_tmpfs(size: Option<&str>, target: &str) -> Result<(), OverlayError> {
    let err = |cause| OverlayError::Tmpfs { target: target.to_string(), size: size.map(str::to_string), cause };
    mount::mkdir_p(target).map_err(err)?;
    let ctx = FsContext::open("tmpfs").map_err(err)?;
    ctx.set("source", Some("cowspace")).map_err(err)?;
    ctx.set("mode", Some("0755")).map_err(err)?;
    if let Some(s) = size {
        ctx.set("size", Some(s)).map_err(err)?;
    }
    ctx.create("cowspace").map_err(err)?;
    let mnt = ctx.mount(MountAttrFlags::MOUNT_ATTR_NODEV).map_err(err)?;
    mount::attach(&mnt, "tmpfs", target).map_err(err)
}

fn upper_err<'a>(path: &'a str, op: &'static str) -> impl Fn(Errno) -> OverlayError + 'a {
    move |errno| OverlayError::Upper { path: path.to_string(), op, errno }
}

fn open_dir(path: &str) -> Result<OwnedFd, OverlayError> {
    rustix::fs::open(path, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(upper_err(path, "open"))
}

/// Creates `upper/` and `work/`, gives `upper/` the lower root's mode and owner (otherwise
/// `/` would change mode after boot), and hides `hide` (the node-files directory) from the
/// running system with a whiteout. Done before the overlay is mounted, because changing an
/// upper layer under a mounted overlay is undefined.
/// Returns whether something was hidden.
pub fn prepare_upper(hide: &str, log: &Log) -> Result<bool, OverlayError> {
    for dir in [UPPER, WORK] {
        match rustix::fs::mkdir(dir, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(errno) => return Err(OverlayError::Upper { path: dir.into(), op: "mkdir", errno }),
        }
    }
    let st = rustix::fs::stat(LOWER).map_err(upper_err(LOWER, "stat"))?;
    copy_owner_mode(CWD, UPPER, &st)?;

    let comps: Vec<&str> = hide.split('/').filter(|c| !c.is_empty()).collect();
    let Some((last, parents)) = comps.split_last() else {
        return Ok(false);
    };
    let mut lower = open_dir(LOWER)?;
    let mut upper = open_dir(UPPER)?;
    let mut lower_path = LOWER.to_string();
    for comp in parents {
        lower_path = format!("{lower_path}/{comp}");
        match rustix::fs::statat(&lower, *comp, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => {
                match rustix::fs::mkdirat(&upper, *comp, Mode::from_raw_mode(0o755)) {
                    Ok(()) => copy_owner_mode(&upper, comp, &s)?,
                    Err(Errno::EXIST) => {}
                    Err(errno) => {
                        return Err(OverlayError::Upper { path: format!("{UPPER}/{comp}"), op: "mkdir", errno })
                    }
                }
                lower = rustix::fs::openat(
                    &lower,
                    *comp,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(upper_err(&lower_path, "open"))?;
                upper = rustix::fs::openat(
                    &upper,
                    *comp,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(upper_err(&lower_path, "open in upper"))?;
            }
            Ok(_) => {
                log.warn(&format!("{lower_path} in the lower is not a plain directory; {hide} stays visible"));
                return Ok(false);
            }
            Err(_) => return Ok(false),
        }
    }
    if rustix::fs::statat(&lower, *last, AtFlags::SYMLINK_NOFOLLOW).is_err() {
        return Ok(false);
    }
    // A whiteout is a character device 0/0 in the upper: overlayfs then hides the lower entry.
    rustix::fs::mknodat(&upper, *last, FileType::CharacterDevice, Mode::empty(), rustix::fs::makedev(0, 0))
        .map_err(upper_err(hide, "creating the whiteout"))?;
    Ok(true)
}

/// Creates `path` (and its parents) and makes it root's alone: mode 0700, whatever it was.
pub fn private_dir(path: &str) -> Result<(), OverlayError> {
    mount::mkdir_p(path).map_err(|cause| OverlayError::Private { path: path.to_string(), cause: cause.to_string() })?;
    rustix::fs::chmod(path, Mode::from_raw_mode(0o700)).map_err(upper_err(path, "chmod 0700"))
}

/// What `path` (absolute, in the shared root) is in the lower once symlinks are followed
/// within it, e.g. `/etc/ov` → `/etc/overlays`; `None` when it does not exist. Read from
/// `/proc/self/fd`, so it needs `/proc` (the initramfs has it).
pub fn resolve_in_lower(path: &str) -> Result<Option<String>, OverlayError> {
    use rustix::fd::AsRawFd;
    let lower = open_dir(LOWER)?;
    let rel = path.trim_start_matches('/');
    let how = rustix::fs::ResolveFlags::IN_ROOT | rustix::fs::ResolveFlags::NO_MAGICLINKS;
    let fd = match rustix::fs::openat2(&lower, rel, OFlags::PATH | OFlags::CLOEXEC, Mode::empty(), how) {
        Ok(fd) => fd,
        Err(Errno::NOENT) | Err(Errno::NOTDIR) => return Ok(None),
        Err(errno) => return Err(OverlayError::Upper { path: format!("{LOWER}{path}"), op: "resolving", errno }),
    };
    let where_is = |raw: i32, what: &str| {
        rustix::fs::readlink(format!("/proc/self/fd/{raw}"), Vec::new())
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(upper_err(what, "reading /proc/self/fd"))
    };
    let base = where_is(lower.as_raw_fd(), LOWER)?;
    let real = where_is(fd.as_raw_fd(), path)?;
    let inside = if base == "/" { real.as_str() } else { real.strip_prefix(base.as_str()).unwrap_or("") };
    Ok(Some(if inside.is_empty() { "/".to_string() } else { inside.to_string() }))
}

fn copy_owner_mode<Fd: rustix::fd::AsFd>(dir: Fd, name: &str, st: &rustix::fs::Stat) -> Result<(), OverlayError> {
    let uid = rustix::fs::Uid::from_raw(st.st_uid);
    let gid = rustix::fs::Gid::from_raw(st.st_gid);
    rustix::fs::chownat(&dir, name, Some(uid), Some(gid), AtFlags::empty()).map_err(upper_err(name, "chown"))?;
    rustix::fs::chmodat(&dir, name, Mode::from_raw_mode(st.st_mode & 0o7777), AtFlags::empty())
        .map_err(upper_err(name, "chmod"))
}

/// Mounts the overlay of the lower and the upper on `target`, creating `target` first as
/// systemd does for a mount point: mkinitcpio's images have `/new_root` but no `/sysroot`.
pub fn mount_overlay(target: &str) -> Result<(), OverlayError> {
    let err = |cause| OverlayError::Overlay { target: target.to_string(), cause };
    mount::mkdir_p(target).map_err(err)?;
    let ctx = FsContext::open("overlay").map_err(err)?;
    ctx.set("source", Some("overlay")).map_err(err)?;
    ctx.set("lowerdir", Some(LOWER)).map_err(err)?;
    ctx.set("upperdir", Some(UPPER)).map_err(err)?;
    ctx.set("workdir", Some(WORK)).map_err(err)?;
    for (k, v) in OVERLAY_OPTIONS {
        ctx.set(k, Some(v)).map_err(err)?;
    }
    ctx.create("overlay").map_err(err)?;
    let mnt = ctx.mount(MountAttrFlags::empty()).map_err(err)?;
    mount::attach(&mnt, "overlay", target).map_err(err)
}

/// Moves a mount (`mount --move from to`), creating `to` first.
pub fn move_root(from: &str, to: &str) -> Result<(), OverlayError> {
    mount::mkdir_p(to).map_err(|cause| OverlayError::Move { cause })?;
    mount::move_path(from, to).map_err(|cause| OverlayError::Move { cause })
}
