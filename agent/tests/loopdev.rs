//! A squashfs image attached read-only to a real loop device, mounted, read, unmounted and
//! freed, in a private mount namespace; needs root, the loop driver, squashfs and mksquashfs.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clusterroot::lower::loopdev::{self, LoopError, LoopPaths};
use rustix::io::Errno;

mod common;

/// Where the tests work: a tmpfs of their own on `/run`, as the agent's downloaded image sits
/// in a tmpfs.
const WORK: &str = "/run/crloopdev";

/// [`common::in_private_run`] (a tmpfs on `/run`) with [`WORK`] made in it.
fn in_private_run(f: impl FnOnce() -> Result<(), String> + Send + 'static) {
    common::in_private_run(move || {
        fs::create_dir_all(WORK).map_err(|e| format!("creating {WORK}: {e}"))?;
        f()
    })
}

fn check(cond: bool, what: &str) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(what.to_string())
    }
}

/// `mksquashfs src image -noappend -comp gzip`: gzip, which every kernel's squashfs reads.
fn mksquashfs(src: &Path, image: &Path) -> Result<(), String> {
    let out = Command::new("mksquashfs")
        .arg(src)
        .arg(image)
        .args(["-noappend", "-quiet", "-no-progress", "-comp", "gzip"])
        .output()
        .map_err(|e| format!("running mksquashfs failed: {e}; install it (apt-get install squashfs-tools)"))?;
    check(out.status.success(), &format!("mksquashfs failed: {}", String::from_utf8_lossy(&out.stderr)))
}

/// A small squashfs image of `etc/hostname` and `usr/share/doc/readme`.
fn image(name: &str) -> Result<PathBuf, String> {
    let src = Path::new(WORK).join(format!("{name}-src"));
    fs::create_dir_all(src.join("etc")).map_err(|e| e.to_string())?;
    fs::create_dir_all(src.join("usr/share/doc")).map_err(|e| e.to_string())?;
    fs::write(src.join("etc/hostname"), "shared\n").map_err(|e| e.to_string())?;
    fs::write(src.join("usr/share/doc/readme"), "x".repeat(100_000)).map_err(|e| e.to_string())?;
    let image = Path::new(WORK).join(format!("{name}.sqfs"));
    mksquashfs(&src, &image)?;
    Ok(image)
}

fn sys(number: u32, rel: &str) -> PathBuf {
    PathBuf::from(format!("/sys/block/loop{number}/{rel}"))
}

/// What `/sys/block/loopN/loop/backing_file` says, `None` when the device is unbound.
fn backing_file(number: u32) -> Option<String> {
    fs::read_to_string(sys(number, "loop/backing_file")).ok().map(|s| s.trim_end().to_string())
}

/// Waits until loopN no longer holds `image` (another process may take the device at once).
fn wait_freed(number: u32, image: &Path) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while backing_file(number).as_deref() == Some(&image.display().to_string()) {
        if Instant::now() > deadline {
            return Err(format!(
                "/dev/loop{number} still holds {} after 5 s: autoclear did not free it",
                image.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[test]
#[ignore = "needs root, the loop driver, squashfs and mksquashfs; as root: cargo test -- --include-ignored (scripts/test does)"]
fn an_image_mounts_read_only_and_its_device_frees_itself_at_unmount() {
    in_private_run(|| {
        let image = image("root")?;
        let dev = loopdev::attach_read_only(&LoopPaths::default(), &image, soon()).map_err(|e| e.to_string())?;
        let n = dev.number();
        check(dev.path() == Path::new(&format!("/dev/loop{n}")), &format!("device path {}", dev.path().display()))?;
        check(dev.to_string() == format!("/dev/loop{n} (read-only, backed by {})", image.display()), &dev.to_string())?;
        check(backing_file(n).as_deref() == Some(&image.display().to_string()), "backing_file names the image")?;
        let ro = fs::read_to_string(sys(n, "ro")).map_err(|e| e.to_string())?;
        check(ro.trim() == "1", &format!("/sys/block/loop{n}/ro is {ro:?}, not 1"))?;
        let autoclear = fs::read_to_string(sys(n, "loop/autoclear")).map_err(|e| e.to_string())?;
        check(autoclear.trim() == "1", &format!("/sys/block/loop{n}/loop/autoclear is {autoclear:?}, not 1"))?;

        // Not created here: mount_squashfs makes the mount point, as the agent's LOWER is.
        let target = Path::new(WORK).join("lower");
        loopdev::mount_squashfs(&dev, &target).map_err(|e| e.to_string())?;
        // The mount holds the device now; ours goes, as the agent's does.
        drop(dev);
        check(backing_file(n).is_some(), "the mounted device stays bound after the LoopDevice is dropped")?;

        let hostname = fs::read_to_string(target.join("etc/hostname")).map_err(|e| e.to_string())?;
        check(hostname == "shared\n", &format!("etc/hostname read back as {hostname:?}"))?;
        let readme = fs::read(target.join("usr/share/doc/readme")).map_err(|e| e.to_string())?;
        check(readme.len() == 100_000 && readme.iter().all(|&b| b == b'x'), "usr/share/doc/readme read back whole")?;
        let write = fs::write(target.join("etc/new"), "x");
        check(
            write.as_ref().err().and_then(|e| e.raw_os_error()) == Some(Errno::ROFS.raw_os_error()),
            &format!("writing into the mount: {write:?}, not EROFS"),
        )?;

        rustix::mount::unmount(&target, rustix::mount::UnmountFlags::empty())
            .map_err(|e| format!("unmounting {}: {e}", target.display()))?;
        wait_freed(n, &image)
    });
}

#[test]
#[ignore = "needs root, the loop driver, squashfs and mksquashfs; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_file_that_is_not_squashfs_is_named_in_one_line_and_leaves_no_device() {
    in_private_run(|| {
        let file = Path::new(WORK).join("not.sqfs");
        fs::write(&file, "not a squashfs image\n".repeat(6_000)).map_err(|e| e.to_string())?;
        let dev = loopdev::attach_read_only(&LoopPaths::default(), &file, soon()).map_err(|e| e.to_string())?;
        let n = dev.number();
        let target = Path::new(WORK).join("lower");
        let err = match loopdev::mount_squashfs(&dev, &target) {
            Ok(()) => return Err(format!("{} mounted as squashfs", file.display())),
            Err(err) => err,
        };
        drop(dev);
        let text = err.to_string();
        check(matches!(err, LoopError::NotSquashfs { .. }), &format!("not NotSquashfs: {text}"))?;
        check(!text.contains('\n'), &format!("one line: {text}"))?;
        let head = format!("{} is not a squashfs image this kernel can mount (/dev/loop{n}: ", file.display());
        check(text.starts_with(&head), &format!("names the file and device: {text}"))?;
        check(text.ends_with(&format!("unsquashfs -s {})", file.display())), &format!("gives the check: {text}"))?;
        eprintln!("the error: {text}");
        wait_freed(n, &file)
    });
}

#[test]
#[ignore = "needs root, the loop driver, squashfs and mksquashfs; as root: cargo test -- --include-ignored (scripts/test does)"]
fn concurrent_attaches_each_get_a_device_of_their_own() {
    in_private_run(|| {
        let image = image("many")?;
        const THREADS: usize = 4;
        let barrier = Arc::new(Barrier::new(THREADS));
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let (barrier, image) = (barrier.clone(), image.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    loopdev::attach_read_only(&LoopPaths::default(), &image, soon()).map_err(|e| e.to_string())
                })
            })
            .collect();
        let mut devs = Vec::new();
        for t in threads {
            devs.push(t.join().map_err(|_| "attaching thread panicked".to_string())??);
        }
        let mut numbers: Vec<u32> = devs.iter().map(|d| d.number()).collect();
        numbers.sort_unstable();
        numbers.dedup();
        check(numbers.len() == THREADS, &format!("{THREADS} attaches got devices {numbers:?}"))?;
        for &n in &numbers {
            check(
                backing_file(n).as_deref() == Some(&image.display().to_string()),
                &format!("loop{n} holds the image"),
            )?;
        }
        // Never mounted: dropping them frees them.
        drop(devs);
        numbers.iter().try_for_each(|&n| wait_freed(n, &image))
    });
}

#[test]
#[ignore = "needs root, the loop driver, squashfs and mksquashfs; as root: cargo test -- --include-ignored (scripts/test does)"]
fn a_device_node_that_never_appears_ends_at_the_deadline() {
    assert!(rustix::process::geteuid().is_root(), "loop tests need root: run them as root");
    let dir = std::env::temp_dir().join(format!("crloopdev-nodev-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let file = dir.join("root.sqfs");
    fs::write(&file, "x".repeat(4096)).unwrap();
    // The real control device, but an empty directory where its nodes should appear.
    let paths = LoopPaths { control: PathBuf::from("/dev/loop-control"), dev_dir: dir.clone() };
    let start = Instant::now();
    let err = loopdev::attach_read_only(&paths, &file, start + Duration::from_millis(200)).unwrap_err();
    let waited = start.elapsed();
    fs::remove_dir_all(&dir).unwrap();
    let text = err.to_string();
    assert!(matches!(err, LoopError::NoDeviceNode { .. }), "{text}");
    assert!(waited >= Duration::from_millis(200), "gave up after {waited:?}, before the deadline");
    assert!(text.ends_with(&format!("is devtmpfs mounted on {}?", dir.display())), "{text}");
}
