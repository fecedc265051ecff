//! systemd generator: the units that run the agent in a systemd-based initramfs.
//!
//! In an image built with mkinitcpio's `systemd` hook, `/init` is systemd and mkinitcpio's
//! runtime hooks never run. The install hook links the agent as
//! `/usr/lib/systemd/system-generators/clusterroot-generator`; systemd runs every generator
//! first thing at boot (and on each daemon-reload) with three output directories
//! (`systemd.generator(7)`). For a root the agent mounts itself ([`crate::claim`], the rule
//! every flavor asks), this writes:
//!
//! - `clusterroot.service` (normal directory): runs `clusterroot mount /sysroot` before
//!   `initrd-root-fs.target`, failing into `emergency.target`;
//! - `initrd-root-fs.target.requires/clusterroot.service`: pulls it into the boot;
//! - `sysroot.mount` (early directory, which takes precedence over the normal one, where
//!   systemd-fstab-generator writes its own for `root=LABEL=...` and the like): a unit that
//!   requires `clusterroot.service` and is ordered after it. By the time it starts, the agent
//!   has mounted `/sysroot`, so systemd finds it mounted and does nothing; its type
//!   `clusterroot` is none the kernel knows, so should systemd ever try to mount it itself,
//!   that fails loudly instead of stacking a second mount. It conflicts with `umount.target`
//!   and is ordered after the agent's other mounts, so at shutdown the overlay goes first,
//!   then the upper and the lower.
//!
//! Any other root is left to systemd, with a warning that it gets no overlay.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::claim::{claims, Params, CLAIMED_ROOTS};
use crate::kmsg::Log;
use crate::root::Root;

/// The name systemd runs the agent by (`argv[0]`'s last component).
pub const GENERATOR_NAME: &str = "clusterroot-generator";
/// The unit the generator writes, and the path systemd switches root to.
pub const SERVICE: &str = "clusterroot.service";
pub const SYSROOT: &str = "/sysroot";
/// What the agent waits for at most, per step, without `clusterroot.timeout=` (the busybox
/// hook's default too).
const DEFAULT_TIMEOUT_S: u64 = 60;
/// systemd's own limit on the service, on top of `clusterroot.timeout=`: the agent keeps its
/// deadline itself; this only stops a hung agent (a bug) from hanging the boot.
const SAFETY_MARGIN_S: u64 = 90;

#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    #[error("usage: {GENERATOR_NAME} NORMAL-DIR [EARLY-DIR [LATE-DIR]] (systemd runs it with three)")]
    Usage,
    #[error(transparent)]
    ReadCmdline(#[from] crate::root::CmdlineUnreadable),
    #[error("writing {path} failed: {cause}")]
    Write { path: String, cause: std::io::Error },
}

impl GeneratorError {
    /// The documented exit code: usage, or the environment (no `/proc/cmdline`, an output
    /// directory that cannot be written). systemd logs it; the boot goes on without the units.
    pub fn exit_code(&self) -> u8 {
        match self {
            GeneratorError::Usage => crate::exit::USAGE,
            GeneratorError::ReadCmdline(_) | GeneratorError::Write { .. } => crate::exit::ENVIRONMENT,
        }
    }
}

/// One thing the generator writes: a unit file, or a symlink to a unit file in the same
/// directory (`path` and `target` relative to it).
#[derive(Debug, PartialEq, Eq)]
pub enum Output {
    File { dir: Dir, path: &'static str, text: String },
    Symlink { dir: Dir, path: &'static str, target: &'static str },
}

/// The generator's three output directories.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    Normal,
    Early,
}

/// What the generator writes for `cmdline`, without writing it; the warning to log, if any.
pub fn plan(cmdline: &str) -> (Vec<Output>, Option<String>) {
    let p = Params::parse(cmdline);
    if !claims(&p) {
        let off = matches!(p.get("clusterroot"), "off" | "0" | "no");
        let root = p.get("root");
        let warning = (!off).then(|| {
            let what = if root.is_empty() { "no root= (and no nfsroot= or ip=dhcp)".to_string() } else { format!("root={root}") };
            format!("{what} is not a root clusterroot mounts ({CLAIMED_ROOTS}): systemd boots it without the clusterroot overlay")
        });
        return (Vec::new(), warning);
    }
    let timeout = match p.get("clusterroot.timeout").parse::<u64>() {
        Ok(t) if (1..=3600).contains(&t) => t,
        _ => DEFAULT_TIMEOUT_S,
    };
    let outputs = vec![
        Output::File { dir: Dir::Normal, path: SERVICE, text: service_unit(timeout + SAFETY_MARGIN_S) },
        Output::Symlink {
            dir: Dir::Normal,
            path: "initrd-root-fs.target.requires/clusterroot.service",
            target: SERVICE,
        },
        Output::File { dir: Dir::Early, path: "sysroot.mount", text: sysroot_unit() },
    ];
    (outputs, None)
}

fn service_unit(timeout_s: u64) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "\
# Written by {GENERATOR_NAME}: the kernel command line names a root that clusterroot mounts.
[Unit]
Description=clusterroot: lower, upper, overlay and node files on {SYSROOT}
Documentation=man:mkinitcpio(8)
SourcePath=/proc/cmdline
DefaultDependencies=no
ConditionPathExists=/etc/initrd-release
# NIC drivers and the /dev/disk links come from udev, MODULES= from systemd-modules-load; the
# agent waits (within clusterroot.timeout=) for the NIC or disk it needs to show up.
Wants=systemd-udev-trigger.service
After=systemd-udev-trigger.service systemd-modules-load.service systemd-tmpfiles-setup-dev.service
# In a dracut image: after its cmdline hooks, and after rd.break=pre-mount's shell.
After=dracut-cmdline.service dracut-pre-mount.service
Before=initrd-root-fs.target sysroot.mount
OnFailure=emergency.target
OnFailureJobMode=replace-irreversibly

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/clusterroot mount {SYSROOT}
# clusterroot.timeout= plus a margin: the agent keeps its deadline itself.
TimeoutStartSec={timeout_s}
"
    );
    s
}

fn sysroot_unit() -> String {
    format!(
        "\
# Written by {GENERATOR_NAME}. {SERVICE} mounts the node's root on {SYSROOT} (the overlay, or
# the lower itself with clusterroot=off); this unit only waits for it. systemd finds {SYSROOT}
# mounted when this starts and does nothing; the type clusterroot exists nowhere, so a mount
# by systemd itself fails loudly rather than stacking a second one.
[Unit]
Description=The node's root (mounted by {SERVICE})
SourcePath=/proc/cmdline
DefaultDependencies=no
Requires={SERVICE}
After={SERVICE} run-rootfs-lower.mount run-rootfs-cowspace.mount
Before=initrd-root-fs.target
# Unmounted at shutdown, and (being ordered after them) before the lower and the upper; without
# default dependencies only these lines give it the conflict with umount.target that does so.
Conflicts=umount.target
Before=umount.target

[Mount]
What=clusterroot
Where={SYSROOT}
Type=clusterroot
"
    )
}

/// Runs as systemd's generator: `args` are the normal, early and late output directories.
pub fn run(root: &Root, args: &[String], log: &Log) -> Result<(), GeneratorError> {
    let (normal, early) = match args {
        [n] => (PathBuf::from(n), PathBuf::from(n)),
        [n, e, ..] => (PathBuf::from(n), PathBuf::from(e)),
        [] => return Err(GeneratorError::Usage),
    };
    let bytes = root.read_cmdline()?;
    // A byte that is not UTF-8 becomes U+FFFD, which is neither a space nor a quote: the words
    // and their keys are the agent's (`split_words_bytes`). Someone else's word is then ignored
    // as before; one of ours keeps a value, so the agent still runs and reports the bad bytes
    // (exit 2) from the service, with the emergency shell after it.
    let cmdline = String::from_utf8_lossy(&bytes);
    let (outputs, warning) = plan(&cmdline);
    if let Some(w) = warning {
        log.warn(&w);
    }
    for out in &outputs {
        write(out, &normal, &early)?;
    }
    Ok(())
}

/// Writes one output into the normal or the early directory.
fn write(out: &Output, normal: &Path, early: &Path) -> Result<(), GeneratorError> {
    let dir = |d: Dir| match d {
        Dir::Normal => normal,
        Dir::Early => early,
    };
    let (path, result) = match out {
        Output::File { dir: d, path, text } => {
            let path = dir(*d).join(path);
            let r = create_parent(&path).and_then(|()| std::fs::write(&path, text));
            (path, r)
        }
        Output::Symlink { dir: d, path, target } => {
            let path = dir(*d).join(path);
            let target = dir(*d).join(target);
            let r = create_parent(&path).and_then(|()| {
                // A daemon-reload runs the generator into fresh directories; a leftover link
                // (a test re-running it) is replaced.
                let _ = std::fs::remove_file(&path);
                std::os::unix::fs::symlink(&target, &path)
            });
            (path, r)
        }
    };
    result.map_err(|cause| GeneratorError::Write { path: path.display().to_string(), cause })
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(p) => std::fs::create_dir_all(p),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claimed_root_gets_the_service_its_requirement_and_sysroot_mount() {
        let (out, warning) = plan("root=LABEL=cluster rw clusterroot.timeout=10");
        assert_eq!(warning, None);
        assert_eq!(out.len(), 3);
        match &out[0] {
            Output::File { dir: Dir::Normal, path: "clusterroot.service", text } => {
                assert!(text.contains("ExecStart=/usr/bin/clusterroot mount /sysroot\n"));
                assert!(text.contains("Before=initrd-root-fs.target sysroot.mount\n"));
                assert!(text.contains("OnFailure=emergency.target\n"));
                assert!(text.contains("TimeoutStartSec=100\n"));
            }
            other => panic!("not the service: {other:?}"),
        }
        assert!(matches!(
            &out[1],
            Output::Symlink { dir: Dir::Normal, path: "initrd-root-fs.target.requires/clusterroot.service", .. }
        ));
        match &out[2] {
            Output::File { dir: Dir::Early, path: "sysroot.mount", text } => {
                assert!(text.contains("Requires=clusterroot.service\n"));
                assert!(text.contains("Where=/sysroot\n"));
                assert!(text.contains("Type=clusterroot\n"));
                assert!(text.contains("Conflicts=umount.target\n"));
            }
            other => panic!("not sysroot.mount: {other:?}"),
        }
    }

    #[test]
    fn a_malformed_timeout_is_left_to_the_agent() {
        let (out, _) = plan("nfsroot=10.0.0.1:/srv/root clusterroot.timeout=soon");
        let Output::File { text, .. } = &out[0] else { panic!("no service") };
        assert!(text.contains(&format!("TimeoutStartSec={}\n", DEFAULT_TIMEOUT_S + SAFETY_MARGIN_S)));
    }

    #[test]
    fn other_roots_are_left_to_systemd_with_a_warning() {
        let (out, warning) = plan("root=gpt-auto");
        assert!(out.is_empty());
        assert!(warning.unwrap().starts_with("root=gpt-auto is not a root clusterroot mounts"));
        let (out, warning) = plan("root=tmpfs clusterroot=off");
        assert!(out.is_empty());
        assert_eq!(warning, None);
    }

    #[test]
    fn writes_the_units_into_the_generator_directories() {
        let tmp = std::env::temp_dir().join(format!("crgen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let fixture = tmp.join("root");
        std::fs::create_dir_all(fixture.join("proc")).unwrap();
        std::fs::write(fixture.join("proc/cmdline"), "console=ttyS0 ip=dhcp\n").unwrap();
        let dirs: Vec<String> = ["normal", "early", "late"].iter().map(|d| tmp.join(d).display().to_string()).collect();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        run(&Root::new(&fixture), &dirs, &Log::stderr()).unwrap();
        let normal = tmp.join("normal");
        assert!(std::fs::read_to_string(normal.join("clusterroot.service")).unwrap().contains("ExecStart="));
        assert_eq!(
            std::fs::read_link(normal.join("initrd-root-fs.target.requires/clusterroot.service")).unwrap(),
            normal.join("clusterroot.service")
        );
        assert!(tmp.join("early/sysroot.mount").is_file());
        assert_eq!(std::fs::read_dir(tmp.join("late")).unwrap().count(), 0);
        // Run again, as a daemon-reload would into the same directories.
        run(&Root::new(&fixture), &dirs, &Log::stderr()).unwrap();
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
