//! `image edit`'s command: run chrooted in the working copy with the host's `/proc`, `/sys`,
//! `/dev` and `/dev/pts` bound into it, as the seed's `enter` script (xchroot) does, and a
//! fresh tmpfs on `/run`, as arch-chroot does.
//!
//! The mounts are made by the child, in a mount namespace of its own whose mounts propagate
//! nowhere: the host never sees them, and they go away with the last process in that
//! namespace, whatever way crctl or the command ends, so the working copy is never published
//! or deleted with `/dev` still bound into it.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use rustix::mount::{MountFlags, MountPropagationFlags};
use rustix::thread::UnshareFlags;

/// What is bound into the copy, in order (`/dev/pts` after `/dev`: it lands in the bound
/// `/dev`, so the copy needs no `dev/pts` directory of its own).
pub const BINDS: [&str; 4] = ["/proc", "/sys", "/dev", "/dev/pts"];

/// Where a fresh tmpfs is mounted in the copy (mode 0755, nosuid, nodev), never the host's:
/// tools check that it is a mount point (Debian's dracut turns host-only mode off without one,
/// and builds a generic image for minutes), and the host's `/run/systemd/system` would make
/// tools in the chroot talk to the host's systemd.
pub const TMPFS: &str = "/run";

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("{path} in the working copy is {what}, not a directory; a mount there would land elsewhere: fix it with a plain directory")]
    BadTarget { path: PathBuf, what: &'static str },
    #[error("making {path} in the working copy failed: {source}")]
    MakeTarget { path: PathBuf, source: std::io::Error },
    #[error("a path has a NUL byte: {path}")]
    Nul { path: PathBuf },
    #[error("running {cmd} chrooted in {dir} failed: {source}{hint}")]
    Run { cmd: String, dir: PathBuf, source: std::io::Error, hint: &'static str },
}

/// How the command ended, in words: `exited with status 3`, `was killed by signal 9`.
pub fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with status {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => "ended".into(),
    }
}

/// The command to run: the one given, else `$SHELL` if the copy `dir` has it, else `/bin/sh`.
pub fn command_or_shell(cmd: &[String], dir: &Path) -> Vec<String> {
    if !cmd.is_empty() {
        return cmd.to_vec();
    }
    let shell = std::env::var("SHELL").ok().filter(|s| s.starts_with('/'));
    let in_copy = |s: &String| std::fs::symlink_metadata(dir.join(s.trim_start_matches('/'))).is_ok();
    vec![shell.filter(in_copy).unwrap_or_else(|| "/bin/sh".into())]
}

/// The command as a shell would take it: words with anything special in single quotes.
pub fn show(cmd: &[String]) -> String {
    let word = |w: &String| {
        let plain = !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric() || b"_./:=@%+,-".contains(&b));
        if plain {
            w.clone()
        } else {
            format!("'{}'", w.replace('\'', "'\\''"))
        }
    };
    cmd.iter().map(word).collect::<Vec<_>>().join(" ")
}

fn cstring(p: &Path) -> Result<CString, EditError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| EditError::Nul { path: p.to_path_buf() })
}

/// One bind: the host's directory and where it goes in the copy, ready for the child.
pub type Bind = (CString, CString);

/// What the child mounts in the copy, as strings made before the fork.
#[derive(Clone, Debug)]
pub struct Mounts {
    pub binds: Vec<Bind>,
    /// Where the tmpfs goes: [`TMPFS`] in the copy.
    pub tmpfs: CString,
}

/// `target` in the copy as a directory: made (0755) where missing, refused where something
/// else is there. Whether it was made.
fn target_dir(target: &Path) -> Result<bool, EditError> {
    match std::fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => Ok(false),
        Ok(m) => {
            let what = if m.file_type().is_symlink() { "a symlink" } else { "a file" };
            Err(EditError::BadTarget { path: target.to_path_buf(), what })
        }
        Err(_) => {
            std::fs::DirBuilder::new()
                .mode(0o755)
                .create(target)
                .map_err(|source| EditError::MakeTarget { path: target.to_path_buf(), source })?;
            Ok(true)
        }
    }
}

/// The mount targets in `dir` as directories: made (0755) where missing, refused where
/// something else is there. Returns the mounts the child makes, and the directories made.
pub fn prepare(dir: &Path) -> Result<(Mounts, Vec<PathBuf>), EditError> {
    let (mut binds, mut made) = (Vec::new(), Vec::new());
    for src in BINDS {
        if !Path::new(src).is_dir() {
            continue; // e.g. no devpts on this host
        }
        let target = dir.join(src.trim_start_matches('/'));
        if src != "/dev/pts" && target_dir(&target)? {
            made.push(target.clone());
        }
        binds.push((cstring(Path::new(src))?, cstring(&target)?));
    }
    let tmpfs = dir.join(TMPFS.trim_start_matches('/'));
    if target_dir(&tmpfs)? {
        made.push(tmpfs.clone());
    }
    Ok((Mounts { binds, tmpfs: cstring(&tmpfs)? }, made))
}

/// In the forked child, before exec: a private mount namespace, the binds, the tmpfs, the
/// chroot. Only system calls on strings made before the fork: nothing here allocates or locks.
fn enter(root: &CStr, mounts: &Mounts) -> std::io::Result<()> {
    // SAFETY: the child of fork(2) has a single thread, so no other thread shares its file
    // descriptor table or filesystem context that unsharing could take away from under it.
    unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }?;
    // mount --make-rprivate /: nothing mounted from here on reaches the host.
    rustix::mount::mount_change(c"/", MountPropagationFlags::PRIVATE | MountPropagationFlags::REC)?;
    for (src, target) in &mounts.binds {
        // mount --bind /dev $dir/dev (not recursive: only what the tools inside need).
        rustix::mount::mount_bind(src.as_c_str(), target.as_c_str())?;
    }
    // mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs $dir/run
    let flags = MountFlags::NOSUID | MountFlags::NODEV;
    rustix::mount::mount(c"tmpfs", mounts.tmpfs.as_c_str(), c"tmpfs", flags, c"mode=0755")?;
    rustix::process::chroot(root)?;
    rustix::process::chdir(c"/")?;
    Ok(())
}

/// Ignores SIGINT and SIGQUIT while it lives, as system(3) does while its command runs: a
/// Ctrl-C at the shell inside must not kill crctl under it.
struct IgnoreInterrupts([libc::sighandler_t; 2]);

impl IgnoreInterrupts {
    fn new() -> IgnoreInterrupts {
        // SAFETY: SIG_IGN installs no handler code; signal(2) only changes the disposition.
        unsafe {
            IgnoreInterrupts([libc::signal(libc::SIGINT, libc::SIG_IGN), libc::signal(libc::SIGQUIT, libc::SIG_IGN)])
        }
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        // SAFETY: puts back the dispositions signal(2) returned above.
        unsafe {
            libc::signal(libc::SIGINT, self.0[0]);
            libc::signal(libc::SIGQUIT, self.0[1]);
        }
    }
}

/// Runs `cmd` (looked up on `PATH` inside the copy) chrooted in `dir` with the mounts, and
/// waits for it. The environment and standard streams are crctl's.
pub fn run(dir: &Path, cmd: &[String], mounts: &Mounts) -> Result<ExitStatus, EditError> {
    let root = cstring(dir)?;
    let mounts = mounts.clone();
    let mut command = std::process::Command::new(&cmd[0]);
    command.args(&cmd[1..]);
    // SAFETY: the closure runs in the forked child before exec and only makes system calls on
    // data prepared before the fork (see `enter`), as pre_exec requires.
    unsafe {
        command.pre_exec(move || enter(&root, &mounts));
    }
    let err = |source: std::io::Error| {
        let hint = match source.kind() {
            std::io::ErrorKind::NotFound => "; name a command the working copy has after --",
            std::io::ErrorKind::PermissionDenied => "; crctl image edit needs root (mounts, chroot)",
            _ => "",
        };
        EditError::Run { cmd: show(cmd), dir: dir.to_path_buf(), source, hint }
    };
    let mut child = command.spawn().map_err(err)?;
    let _quiet = IgnoreInterrupts::new();
    child.wait().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_commands_as_a_shell_takes_them() {
        let cmd: Vec<String> = ["sh", "-c", "echo it's; exit 4", ""].map(String::from).to_vec();
        assert_eq!(show(&cmd), "sh -c 'echo it'\\''s; exit 4' ''");
        assert_eq!(show(&["xbps-install".into(), "-Su".into()]), "xbps-install -Su");
        assert_eq!(describe(ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert_eq!(describe(ExitStatus::from_raw(9)), "was killed by signal 9");
        let dir = std::env::temp_dir();
        assert_eq!(command_or_shell(&["ls".into()], &dir), ["ls"]);
    }
}
