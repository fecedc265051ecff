//! tmpfs upper, whiteout, overlay and node files on the real kernel, in a private mount
//! namespace (one thread unshares it, so the host's mounts are never touched).
//! Skipped, with the reason printed, when not root or when the kernel refuses.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use clusterroot::kmsg::Log;
use clusterroot::mac::MacAddress;
use clusterroot::plan::{COWSPACE, LOWER, UPPER};
use clusterroot::{nodefiles, overlay};

mod common;

const MAC: &str = "52:54:00:77:00:0b";

/// [`common::in_private_run`]: a private mount namespace with a tmpfs of its own on `/run`.
fn in_private_namespace(f: impl FnOnce() -> Result<(), String> + Send + 'static) {
    common::in_private_run(f)
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn overlay_root_keeps_the_lower_untouched() {
    in_private_namespace(|| {
        let node = format!("{LOWER}/etc/overlays/{MAC}");
        fs::create_dir_all(&node).map_err(|e| e.to_string())?;
        fs::write(format!("{LOWER}/etc/hostname"), "shared\n").map_err(|e| e.to_string())?;
        fs::write(format!("{node}/hostname"), "node1\n").map_err(|e| e.to_string())?;
        fs::set_permissions(LOWER, fs::Permissions::from_mode(0o750)).map_err(|e| e.to_string())?;
        // Not created here: the agent creates the mount point, as systemd's /sysroot is
        // missing from mkinitcpio's images.
        let newroot = "/run/newroot";

        overlay::mount_tmpfs(Some("64M"), COWSPACE).map_err(|e| e.to_string())?;
        let hidden = overlay::prepare_upper("/etc/overlays", &Log::stderr()).map_err(|e| e.to_string())?;
        check(hidden, "node files directory was hidden")?;
        match overlay::mount_overlay(newroot) {
            Ok(()) => {}
            Err(e) if !std::path::Path::new(newroot).is_dir() => {
                return Err(format!("the mount point {newroot} was not created: {e}"))
            }
            Err(e) => return Err(format!("skip: {e}")),
        }
        let mac: MacAddress = MAC.parse().unwrap();
        let applied = nodefiles::apply(
            LOWER,
            "/etc/overlays",
            &mac,
            newroot,
            std::time::Instant::now() + std::time::Duration::from_secs(60),
            &Log::stderr(),
        )
        .map_err(|e| e.to_string())?;
        check(applied == [format!("{MAC}/")], "directory applied")?;
        // What the agent records for crctl diff: the upper's /etc right after the node files,
        // the whiteout that hides /etc/overlays left out.
        let record =
            clusterroot::manifest::scan(std::path::Path::new(&format!("{UPPER}/etc"))).map_err(|e| e.to_string())?;
        let paths: Vec<&str> = record.iter().map(|e| e.path.as_str()).collect();
        check(paths == ["/etc/hostname"], &format!("node-files record lists the node's files only: {paths:?}"))?;

        let root_meta = fs::metadata(newroot).map_err(|e| e.to_string())?;
        check(root_meta.mode() & 0o7777 == 0o750, "overlay root has the lower root's mode")?;
        check(fs::read_to_string(format!("{newroot}/etc/hostname")).unwrap() == "node1\n", "node hostname")?;
        check(!std::path::Path::new(&format!("{newroot}/etc/overlays")).exists(), "/etc/overlays hidden")?;
        fs::write(format!("{newroot}/written-by-node"), "x").map_err(|e| e.to_string())?;
        check(!std::path::Path::new(&format!("{LOWER}/written-by-node")).exists(), "write stays in the upper")?;
        check(std::path::Path::new(&format!("{UPPER}/written-by-node")).exists(), "write lands in the upper")?;
        check(fs::read_to_string(format!("{LOWER}/etc/hostname")).unwrap() == "shared\n", "lower hostname untouched")?;
        let mounts = fs::read_to_string("/proc/thread-self/mounts").map_err(|e| e.to_string())?;
        check(
            mounts
                .lines()
                .any(|l| l.starts_with("overlay /run/newroot overlay ") && l.contains("lowerdir=/run/rootfs/lower")),
            &format!("overlay mount on /run/newroot in:\n{mounts}"),
        )?;
        check(mounts.lines().any(|l| l.starts_with("cowspace /run/rootfs/cowspace tmpfs ")), "tmpfs cowspace")?;
        Ok(())
    });
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn latehook_moves_the_root_under_run() {
    in_private_namespace(|| {
        let newroot = "/run/sysroot";
        fs::create_dir_all(newroot).map_err(|e| e.to_string())?;
        let ctx = clusterroot::mount::FsContext::open("tmpfs").map_err(|e| e.to_string())?;
        ctx.set("source", Some("fakedisk")).map_err(|e| e.to_string())?;
        ctx.create("fakedisk").map_err(|e| e.to_string())?;
        let mnt = ctx.mount(rustix::mount::MountAttrFlags::empty()).map_err(|e| e.to_string())?;
        clusterroot::mount::attach(&mnt, "tmpfs", newroot).map_err(|e| e.to_string())?;
        fs::write(format!("{newroot}/marker"), "disk\n").map_err(|e| e.to_string())?;

        overlay::move_root(newroot, LOWER).map_err(|e| e.to_string())?;
        check(fs::read_to_string(format!("{LOWER}/marker")).unwrap() == "disk\n", "root moved to the lower")?;
        check(!std::path::Path::new(&format!("{newroot}/marker")).exists(), "new root is empty after the move")?;
        Ok(())
    });
}

/// A root another hook "mounted" on `newroot` (a tmpfs), holding `/etc/overlays/<MAC>/hostname`
/// and the symlinks `/etc/ov -> overlays` and `/etc/out -> /usr/share`; and a command line.
fn latehook_root(newroot: &str, cmdline: &str) -> Result<clusterroot::Options, String> {
    fs::create_dir_all(newroot).map_err(|e| e.to_string())?;
    let ctx = clusterroot::mount::FsContext::open("tmpfs").map_err(|e| e.to_string())?;
    ctx.create("fakedisk").map_err(|e| e.to_string())?;
    let mnt = ctx.mount(rustix::mount::MountAttrFlags::empty()).map_err(|e| e.to_string())?;
    clusterroot::mount::attach(&mnt, "tmpfs", newroot).map_err(|e| e.to_string())?;
    fs::create_dir_all(format!("{newroot}/etc/overlays/{MAC}")).map_err(|e| e.to_string())?;
    fs::create_dir_all(format!("{newroot}/usr/share")).map_err(|e| e.to_string())?;
    fs::write(format!("{newroot}/etc/overlays/{MAC}/hostname"), "node1\n").map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("overlays", format!("{newroot}/etc/ov")).map_err(|e| e.to_string())?;
    std::os::unix::fs::symlink("/usr/share", format!("{newroot}/etc/out")).map_err(|e| e.to_string())?;
    // The command line, under --root; /proc itself stays the real one (for /proc/self/fd).
    let fake = "/run/fake-root";
    fs::create_dir_all(format!("{fake}/proc")).map_err(|e| e.to_string())?;
    fs::write(format!("{fake}/proc/cmdline"), cmdline).map_err(|e| e.to_string())?;
    Ok(clusterroot::Options {
        action: clusterroot::plan::Action::Overlay,
        newroot: newroot.to_string(),
        dry_run: false,
        root: clusterroot::root::Root::new(fake),
    })
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_symlinked_overlays_alias_is_hidden_where_it_leads() {
    in_private_namespace(|| {
        let newroot = "/run/sysroot";
        let opts = latehook_root(
            newroot,
            &format!("root=LABEL=x BOOTIF=01-{} clusterroot.overlays=/etc/ov\n", MAC.replace(':', "-")),
        )?;
        match clusterroot::run(&opts, &mut Log::stderr()) {
            Ok(()) => {}
            Err(e) if e.exit_code() == clusterroot::exit::OVERLAY => return Err(format!("skip: {e}")),
            Err(e) => return Err(format!("the late hook failed: {e}")),
        }
        check(
            fs::read_to_string(format!("{newroot}/etc/hostname")).ok().as_deref() == Some("node1\n"),
            "node files read through the alias",
        )?;
        check(
            !std::path::Path::new(&format!("{newroot}/etc/overlays")).exists(),
            "the directory the alias leads to is hidden",
        )?;
        let mode = fs::metadata("/run/rootfs").map_err(|e| e.to_string())?.mode() & 0o7777;
        check(mode == 0o700, &format!("/run/rootfs is root's alone (mode {mode:o})"))?;
        Ok(())
    });
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn an_overlays_alias_that_leaves_etc_is_a_parameter_error() {
    in_private_namespace(|| {
        let opts =
            latehook_root("/run/sysroot", "root=LABEL=x BOOTIF=01-52-54-00-77-00-0b clusterroot.overlays=/etc/out\n")?;
        match clusterroot::run(&opts, &mut Log::stderr()) {
            Err(e) if e.exit_code() == clusterroot::exit::CMDLINE => {
                let text = e.to_string();
                check(
                    text.starts_with("clusterroot.overlays=/etc/out: resolves to /usr/share"),
                    &format!("the error names the parameter and where it leads: {text}"),
                )
            }
            Err(e) if e.exit_code() == clusterroot::exit::OVERLAY => Err(format!("skip: {e}")),
            other => Err(format!("expected exit 2, got {other:?}")),
        }
    });
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_named_node_files_source_that_fails_stops_the_boot() {
    in_private_namespace(|| {
        // The device never appears: exit 7, one line naming the source, the MAC and the fix.
        let cmdline = format!(
            "root=LABEL=x BOOTIF=01-{} clusterroot.nodefiles=LABEL=nope clusterroot.timeout=1\n",
            MAC.replace(':', "-")
        );
        let opts = latehook_root("/run/sysroot", &cmdline)?;
        match clusterroot::run(&opts, &mut Log::stderr()) {
            Err(e) if e.exit_code() == clusterroot::exit::NODEFILES => {
                let text = e.to_string();
                check(text.lines().count() == 1, &format!("one line: {text}"))?;
                check(
                    text.starts_with(&format!("node files for {MAC} from clusterroot.nodefiles=LABEL=nope: ")),
                    &format!("the error names the MAC and the source: {text}"),
                )?;
                check(text.ends_with("or boot it with clusterroot.nodefiles=none"), &format!("and the fix: {text}"))
            }
            Err(e) if e.exit_code() == clusterroot::exit::OVERLAY => Err(format!("skip: {e}")),
            other => Err(format!("expected exit 7, got {other:?}")),
        }
    });
}

#[test]
#[ignore = "mounts in a private mount namespace need root; as root: cargo test -- --include-ignored (scripts/test does)"]
fn node_files_none_boots_without_them() {
    in_private_namespace(|| {
        let newroot = "/run/sysroot";
        let cmdline = format!("root=LABEL=x BOOTIF=01-{} clusterroot.nodefiles=none\n", MAC.replace(':', "-"));
        let opts = latehook_root(newroot, &cmdline)?;
        match clusterroot::run(&opts, &mut Log::stderr()) {
            Ok(()) => {}
            Err(e) if e.exit_code() == clusterroot::exit::OVERLAY => return Err(format!("skip: {e}")),
            Err(e) => return Err(format!("the late hook failed: {e}")),
        }
        // The lower's own overlays are not read either.
        check(!std::path::Path::new(&format!("{newroot}/etc/hostname")).exists(), "no node files applied")
    });
}
