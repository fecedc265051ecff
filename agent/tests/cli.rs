//! The `clusterroot` binary against fixture roots: `--dry-run`, exit codes, error lines.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

static N: AtomicU32 = AtomicU32::new(0);

/// A fresh fixture root whose /proc/cmdline holds `cmdline` and a newline, as the kernel's does.
fn fixture(cmdline: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("crcli-{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst)));
    std::fs::create_dir_all(dir.join("proc")).unwrap();
    std::fs::create_dir_all(dir.join("dev")).unwrap();
    std::fs::write(dir.join("proc/cmdline"), [cmdline, b"\n"].concat()).unwrap();
    dir
}

/// Runs `clusterroot --root <fixture> args...` with `cmdline` as the fixture's /proc/cmdline.
fn run(cmdline: &str, args: &[&str]) -> (i32, String, String) {
    run_bytes(cmdline.as_bytes(), args)
}

/// [`run`] with a command line that need not be UTF-8.
fn run_bytes(cmdline: &[u8], args: &[&str]) -> (i32, String, String) {
    let dir = fixture(cmdline);
    let out = Command::new(env!("CARGO_BIN_EXE_clusterroot")).arg("--root").arg(&dir).args(args).output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn dry_run_prints_the_plan() {
    let (code, out, _) = run(
        "console=ttyS0 ip=10.77.0.11::10.77.0.1:255.255.255.0:node1::off nfsroot=10.77.0.1:/srv/root",
        &["--dry-run", "mount", "/sysroot"],
    );
    assert_eq!(code, 0);
    assert!(out.starts_with("clusterroot plan (mount /sysroot):\n"), "{out}");
    assert!(out.contains("\n  1. load NIC drivers: modprobe the modalias of each network device"), "{out}");
    assert!(out.contains("\n  2. boot NIC: "), "{out}");
    assert!(out.contains("mount nfs 10.77.0.1:/srv/root on /run/rootfs/lower read-only"), "{out}");
    assert!(out.contains("mount overlay on /sysroot"), "{out}");
}

#[test]
fn malformed_parameters_exit_2_naming_the_parameter() {
    let cases = [
        ("ip=10.77.0.300::10.77.0.1:255.255.255.0::::off nfsroot=10.77.0.1:/srv/root", "clusterroot: error: ip=10.77.0.300::10.77.0.1:255.255.255.0::::off: client-ip '10.77.0.300' is not an IPv4 address"),
        ("nfsroot=master:/srv/root", "clusterroot: error: nfsroot=master:/srv/root: server 'master' is not an IPv4 address"),
        ("nfsroot=10.0.0.1:/r clusterroot.timeout=soon", "clusterroot: error: clusterroot.timeout=soon: "),
        ("root=/dev/nfs", "clusterroot: error: root=/dev/nfs: needs nfsroot="),
        ("nfsroot=10.0.0.1:/r clusterroot.size=0", "clusterroot: error: clusterroot.size=0: is zero"),
        ("nfsroot=10.0.0.1:/r clusterroot.size=101%", "clusterroot: error: clusterroot.size=101%: "),
        ("nfsroot=10.0.0.1:/r clusterroot.size=4096", "clusterroot: error: clusterroot.size=4096: is 4096 bytes"),
        ("nfsroot=10.0.0.1:/r clusterroot.overlays=/usr", "clusterroot: error: clusterroot.overlays=/usr: /usr is not below /etc"),
        ("nfsroot=10.0.0.1:/r clusterroot.overlays=/etc/.", "clusterroot: error: clusterroot.overlays=/etc/.: is /etc itself"),
        ("nfsroot=10.0.0.1:/r clusterroot.nodefiles=master:/n", "clusterroot: error: clusterroot.nodefiles=master:/n: server 'master'"),
        ("root=LABEL=cluster rw clusterroot=off", "clusterroot: error: clusterroot=off with rw: the booted system would write its host keys and machine-id into the shared image; boot clusterroot=off ro for maintenance, and change the image from a normal boot (chroot /run/rootfs/lower, or crctl image edit)"),
    ];
    for (cmdline, want) in cases {
        // Not a dry run: the agent must fail before touching anything.
        let (code, _, err) = run(cmdline, &["mount", "/sysroot"]);
        assert_eq!(code, 2, "{cmdline}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with(want), "{cmdline}:\n{err}");
    }
}

/// clusterroot.8's SYNOPSIS and OPTIONS name every command and option `--help` does, and no
/// other (its KERNEL PARAMETERS are scripts/check-sources' rule, its EXIT STATUS the exit
/// code test's).
#[test]
fn the_man_page_names_what_help_does() {
    let (code, help, _) = run("", &["--help"]);
    assert_eq!(code, 0);
    let usage: std::collections::BTreeSet<String> = help
        .lines()
        .take_while(|l| !l.is_empty())
        .flat_map(|l| l.split_whitespace())
        .map(|w| w.trim_matches(|c| c == '[' || c == ']'))
        .filter(|w| w.starts_with("--") || ["mount", "overlay", "claims"].contains(w))
        .map(String::from)
        .collect();
    let man = include_str!("../clusterroot.8");
    let section = |name: &str| {
        let s = &man[man.find(&format!(".SH {name}\n")).unwrap_or_else(|| panic!("clusterroot.8 has no {name}"))..];
        s[4..].find(".SH ").map_or(s, |i| &s[..i + 4]).to_string()
    };
    let words = |text: &str| -> std::collections::BTreeSet<String> {
        text.replace("\\-", "-")
            .split_whitespace()
            .filter(|w| w.starts_with("--") || ["mount", "overlay", "claims"].contains(w))
            .map(String::from)
            .collect()
    };
    assert_eq!(words(&section("SYNOPSIS")), usage, "clusterroot.8's SYNOPSIS (left) and --help (right)");
    let documented = words(&format!("{}{}", section("COMMANDS"), section("OPTIONS")));
    assert!(
        usage.is_subset(&documented),
        "clusterroot.8's COMMANDS and OPTIONS lack some of {usage:?}: {documented:?}"
    );
}

#[test]
fn usage_errors_exit_64() {
    let (code, _, err) = run("", &["mount"]);
    assert_eq!(code, 64);
    assert!(err.contains("usage: clusterroot"));
    let (code, _, _) = run("", &["--frobnicate", "mount", "/x"]);
    assert_eq!(code, 64);
    let (code, out, _) = run("", &["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Exit codes"));
}

#[test]
fn latehook_plan() {
    let (code, out, _) = run("root=LABEL=croot rw", &["--dry-run", "overlay", "/sysroot"]);
    assert_eq!(code, 0);
    assert!(out.contains("move the root mounted on /sysroot to /run/rootfs/lower"), "{out}");
}

/// A byte that is not UTF-8 in someone else's parameter is ignored; in one of ours it is a bad
/// parameter (exit 2) named by its key, not an internal error.
#[test]
fn bytes_that_are_not_utf8() {
    let (code, out, err) = run_bytes(
        b"console=tty\xffS0 ip=10.77.0.11::10.77.0.1:255.255.255.0:node1::off nfsroot=10.77.0.1:/srv/root",
        &["--dry-run", "mount", "/sysroot"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mount nfs 10.77.0.1:/srv/root on /run/rootfs/lower read-only"), "{out}");
    for args in [&["--dry-run", "mount", "/sysroot"][..], &["mount", "/sysroot"]] {
        let (code, _, err) =
            run_bytes(b"console=ttyS0 ip=10.77.0.11:::::eth0:off nfsroot=10.77.0.1:/srv/r\xc3oot quiet", args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(err.starts_with("clusterroot: error: nfsroot: holds bytes that are not UTF-8"), "{err}");
    }
}

#[test]
fn size_is_normalized_for_tmpfs() {
    let (code, out, err) = run(
        "nfsroot=10.77.0.1:/srv/root ip=10.77.0.11:::::eth0:off clusterroot.size=0002g",
        &["--dry-run", "mount", "/sysroot"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("mount tmpfs on /run/rootfs/cowspace (size 2G)"), "{out}");
}

/// The systemd generator reads the same bytes: it neither fails on them nor drops a root it
/// mounts because of them (the agent reports the bad parameter from the service).
#[test]
fn generator_tolerates_bytes_that_are_not_utf8() {
    use clusterroot::generator;
    use clusterroot::kmsg::Log;
    use clusterroot::root::Root;
    for (cmdline, ours) in [
        (&b"console=tty\xffS0 ip=dhcp"[..], true),
        (b"console=ttyS0 nfsroot=10.0.0.1:/r\xff", true),
        (b"console=tty\xffS0 root=gpt-auto", false),
    ] {
        let dir = fixture(cmdline);
        let dirs: Vec<String> = ["normal", "early", "late"].iter().map(|d| dir.join(d).display().to_string()).collect();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        generator::run(&Root::new(&dir), &dirs, &Log::stderr()).unwrap();
        let wrote = dir.join("normal").join(generator::SERVICE).is_file();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(wrote, ours, "{}", String::from_utf8_lossy(cmdline));
    }
}

/// Without /proc/cmdline (proc not mounted) the agent names the file and the fix and exits 6,
/// the environment's code, not 1 (a bug); `claims` too, which the hooks then report.
#[test]
fn a_missing_proc_cmdline_is_the_environment() {
    let dir = fixture(b"ip=dhcp");
    std::fs::remove_file(dir.join("proc/cmdline")).unwrap();
    for args in [&["--dry-run", "mount", "/sysroot"][..], &["claims"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_clusterroot")).arg("--root").arg(&dir).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(6), "{args:?}: {err}");
        assert!(err.contains("clusterroot: error: reading the kernel command line from "), "{args:?}: {err}");
        assert!(err.contains("mount -t proc proc /proc"), "{args:?}: {err}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `claims` answers with its exit status alone, from the command line under --root.
#[test]
fn claims_answers_by_exit_status() {
    for (cmdline, want) in [("ip=dhcp", 0), ("root=LABEL=cluster rw", 0), ("zfs=bootfs", 1), ("root=tmpfs", 1)] {
        let (code, out, err) = run(cmdline, &["claims"]);
        assert_eq!((code, out.as_str(), err.as_str()), (want, "", ""), "{cmdline}");
    }
    let (code, _, err) = run("ip=dhcp", &["--dry-run", "claims"]);
    assert_eq!(code, 64, "{err}");
}
