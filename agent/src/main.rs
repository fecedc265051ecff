//! `clusterroot` command line: arguments → [`clusterroot::Options`], then [`clusterroot::run`].

use std::process::ExitCode;

use clusterroot::kmsg::Log;
use clusterroot::plan::Action;
use clusterroot::root::Root;
use clusterroot::{exit, generator, Options};

const USAGE: &str = "\
usage: clusterroot [--dry-run] [--root DIR] mount NEWROOT
       clusterroot [--dry-run] [--root DIR] overlay NEWROOT
       clusterroot --help | --version
       clusterroot-generator NORMAL-DIR EARLY-DIR LATE-DIR   (systemd runs it so)

  mount NEWROOT    mount the NFS lower, a tmpfs upper and the overlay on NEWROOT (mount handler)
  overlay NEWROOT  NEWROOT already holds a root: move it to /run/rootfs/lower, overlay NEWROOT (late hook)
  --dry-run        print the plan from /proc/cmdline and change nothing
  --root DIR       read /proc, /sys, /dev and /run under DIR (tests)

As clusterroot-generator (a symlink), it is systemd's generator in a systemd-based initramfs:
it writes clusterroot.service, which runs `clusterroot mount /sysroot`, when the kernel
command line names a root clusterroot mounts.

Boot parameters: mkinitcpio -H clusterroot, or README.md's Boot parameters.
Exit codes: 0 done, 1 internal error, 2 bad kernel parameter, 3 network, 4 lower layer,
            5 upper/overlay, 64 usage.
";

fn parse_args(args: &[String]) -> Result<Option<Options>, String> {
    let mut dry_run = false;
    let mut root = Root::default();
    let mut rest = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--version" | "-V" => {
                println!("clusterroot {}", env!("CARGO_PKG_VERSION"));
                return Ok(None);
            }
            "--dry-run" | "-n" => dry_run = true,
            "--root" => root = Root::new(it.next().ok_or("--root needs a directory")?),
            s if s.starts_with('-') => return Err(format!("unknown option {s}")),
            s => rest.push(s.to_string()),
        }
    }
    let (action, newroot) = match rest.as_slice() {
        [a, r] if a == "mount" => (Action::Mount, r.clone()),
        [a, r] if a == "overlay" => (Action::Overlay, r.clone()),
        _ => return Err("expected: mount NEWROOT or overlay NEWROOT".into()),
    };
    if !newroot.starts_with('/') {
        return Err(format!("NEWROOT must be an absolute path, not {newroot}"));
    }
    Ok(Some(Options { action, newroot, dry_run, root }))
}

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // In a systemd-based initramfs, systemd runs the agent as its generator (a symlink named
    // clusterroot-generator) with the three output directories.
    if std::path::Path::new(&argv0).file_name().is_some_and(|n| n == generator::GENERATOR_NAME) {
        let log = Log::open(&Root::default().path("/dev/kmsg"));
        return match generator::run(&Root::default(), &args, &log) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                log.error(&e.to_string());
                ExitCode::from(exit::INTERNAL)
            }
        };
    }
    let opts = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => return ExitCode::SUCCESS,
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
