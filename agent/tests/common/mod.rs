//! Helpers shared by the integration tests that need root.

/// Runs `f` in a thread of its own that first unshares `flags`, so only that thread's
/// namespaces change (the commands it forks inherit them); skipped, with the reason printed,
/// when the kernel refuses (an error of `f`'s that starts with "skip: " too); fails when not
/// root. The tests that call this are #[ignore]d: they run only when asked, as root.
pub fn in_thread_namespaces(
    flags: rustix::thread::UnshareFlags,
    what: &str,
    f: impl FnOnce() -> Result<(), String> + Send + 'static,
) {
    assert!(rustix::process::geteuid().is_root(), "{what} need root: run them as root");
    let result = std::thread::spawn(move || {
        // SAFETY: only this thread's namespaces and fs state change; it touches no memory
        // shared with other threads and ends right after the test body.
        unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(|e| format!("skip: unshare({flags:?}): {e}"))?;
        f()
    })
    .join()
    .expect("test thread panicked");
    match result {
        Ok(()) => {}
        Err(e) if e.starts_with("skip: ") => eprintln!("skipped: the kernel refused: {}", &e[6..]),
        Err(e) => panic!("{e}"),
    }
}

/// Runs `f` in a thread with a private mount namespace, so the host's mounts are never
/// touched ([`in_thread_namespaces`]).
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn in_private_namespace(f: impl FnOnce() -> Result<(), String> + Send + 'static) {
    use rustix::mount::{mount_change, MountPropagationFlags};
    in_thread_namespaces(rustix::thread::UnshareFlags::NEWNS, "mount tests", move || {
        mount_change("/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE)
            .map_err(|e| format!("skip: making / private: {e}"))?;
        f()
    })
}

/// [`in_private_namespace`] with a tmpfs of its own on `/run`, where the agent works.
#[allow(dead_code)] // not every test file that includes this module uses it
pub fn in_private_run(f: impl FnOnce() -> Result<(), String> + Send + 'static) {
    in_private_namespace(move || {
        let ctx = clusterroot::mount::FsContext::open("tmpfs").map_err(|e| format!("skip: {e}"))?;
        ctx.create("run").map_err(|e| format!("skip: {e}"))?;
        let mnt = ctx.mount(rustix::mount::MountAttrFlags::empty()).map_err(|e| format!("skip: {e}"))?;
        clusterroot::mount::attach(&mnt, "tmpfs", "/run").map_err(|e| format!("skip: {e}"))?;
        f()
    })
}
