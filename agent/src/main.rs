//! `clusterroot` command line: arguments → a [`Command`], then [`clusterroot::run`] or the
//! root claim.

use std::process::ExitCode;

use clusterroot::kmsg::Log;
use clusterroot::plan::Action;
use clusterroot::root::Root;
use clusterroot::{claim, exit, generator, Options};

const USAGE: &str = "\
usage: clusterroot [--dry-run] [--root DIR] mount NEWROOT
       clusterroot [--dry-run] [--root DIR] overlay NEWROOT
       clusterroot [--root DIR] claims
       clusterroot --help | --version
       clusterroot-generator NORMAL-DIR EARLY-DIR LATE-DIR   (systemd runs it so)

  mount NEWROOT    mount the NFS lower, a tmpfs upper and the overlay on NEWROOT (mount handler)
  overlay NEWROOT  NEWROOT already holds a root: move it to /run/rootfs/lower, overlay NEWROOT (late hook)
  claims           exit 0 if the kernel command line names a root clusterroot mounts itself,
                   1 if another handler's (the hooks of mkinitcpio and dracut ask so)
  --dry-run        print the plan from /proc/cmdline and change nothing
  --root DIR       read /proc, /sys, /dev and /run under DIR (tests)

As clusterroot-generator (a symlink), it is systemd's generator in a systemd-based initramfs:
it writes clusterroot.service, which runs `clusterroot mount /sysroot`, when the kernel
command line names a root clusterroot mounts.

Boot parameters: mkinitcpio -H clusterroot, or README.md's Boot parameters.
Exit codes: 0 done, 1 internal error, 2 bad kernel parameter, 3 network, 4 lower layer,
            5 upper/overlay, 6 environment (no /proc/cmdline), 7 node files (a named
            clusterroot.nodefiles= source failed), 64 usage.
";

/// What the arguments ask for.
enum Command {
    /// `mount` or `overlay` (or their dry run).
    Boot(Options),
    /// `claims`: whether the root is the agent's.
    Claims(Root),
    /// `--help` or `--version`, already printed.
    Done,
}

fn parse_args(args: &[std::ffi::OsString]) -> Result<Command, String> {
    let mut dry_run = false;
    let mut root = Root::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        // Options and actions are ASCII; only --root's directory may be any bytes.
        let Some(a) = arg.to_str() else {
            return Err(format!("unexpected argument {} (not UTF-8)", arg.to_string_lossy()));
        };
        match a {
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(Command::Done);
            }
            "--version" | "-V" => {
                println!("clusterroot {}", env!("CARGO_PKG_VERSION"));
                return Ok(Command::Done);
            }
            "--dry-run" | "-n" => dry_run = true,
            "--root" => root = Root::new(it.next().ok_or("--root needs a directory")?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => rest.push(s.to_string()),
        }
    }
    let (action, newroot) = match rest.as_slice() {
        [a] if a == "claims" && !dry_run => return Ok(Command::Claims(root)),
        [a, r] if a == "mount" => (Action::Mount, r.clone()),
        [a, r] if a == "overlay" => (Action::Overlay, r.clone()),
        _ => return Err("expected: mount NEWROOT, overlay NEWROOT or claims".into()),
    };
    if !newroot.starts_with('/') {
        return Err(format!("NEWROOT must be an absolute path, not {newroot}"));
    }
    Ok(Command::Boot(Options { action, newroot, dry_run, root }))
}

fn main() -> ExitCode {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    // In a systemd-based initramfs, systemd runs the agent as its generator (a symlink named
    // clusterroot-generator) with the three output directories.
    if std::path::Path::new(&argv0).file_name().is_some_and(|n| n == generator::GENERATOR_NAME) {
        let log = Log::open(&Root::default().path("/dev/kmsg"));
        let args: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return match generator::run(&Root::default(), &args, &log) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log.error(&e.to_string());
                ExitCode::from(e.exit_code())
            }
        };
    }
    let opts = match parse_args(&args) {
        Ok(Command::Boot(o)) => o,
        Ok(Command::Claims(root)) => return claims(&root),
        Ok(Command::Done) => return ExitCode::SUCCESS,
        Err(e) => {
            eprint!("clusterroot: {e}\n{USAGE}");
            return ExitCode::from(exit::USAGE);
        }
    };
    let mut log = if opts.dry_run { Log::stderr() } else { Log::open(&opts.root.path("/dev/kmsg")) };
    match clusterroot::run(&opts, &mut log) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            log.error(&e.to_string());
            ExitCode::from(e.exit_code())
        }
    }
}

/// `clusterroot claims`: 0 when the agent mounts the root itself, 1 when it does not; an
/// unreadable command line is reported (on stderr, which the hooks show) with its own code.
fn claims(root: &Root) -> ExitCode {
    match root.read_cmdline() {
        Ok(bytes) if claim::claims_cmdline(&String::from_utf8_lossy(&bytes)) => ExitCode::SUCCESS,
        Ok(_) => ExitCode::from(1),
        Err(e) => {
            Log::stderr().error(&e.to_string());
            ExitCode::from(exit::ENVIRONMENT)
        }
    }
}
