//! The master's ZFS lower: import the pool with the zfs hook's `zpool`, mount the dataset by syscall.
//!
//! Importing a pool is libzfs's job (device scan, labels, hostid checks), so the agent runs the
//! `zpool` the zfs hook puts in the image, as that hook does, but with a deadline. The dataset
//! is then mounted through `fsopen("zfs")`, read-only unless `rw`.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::mount::{self, MountError};
use crate::root::Root;

/// Where the zfs hooks put their tools in the image.
const TOOL_DIRS: [&str; 4] = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"];
/// Pause between import attempts while the pool's disks are not there yet.
const RETRY: Duration = Duration::from_millis(500);

#[derive(Debug, thiserror::Error)]
pub enum ZfsError {
    #[error("{tool} is not in the initramfs (looked in {looked}); add the zfs hook to HOOKS before clusterroot, it installs the ZFS tools and modules")]
    NoTool { tool: &'static str, looked: String },
    #[error("loading the zfs module failed ({said}); the zfs hook puts it in the image: is zfs in HOOKS before clusterroot, and built for this kernel?")]
    Module { said: String },
    #[error("running {command} failed: {cause}")]
    Spawn { command: String, cause: std::io::Error },
    #[error("ZFS pool {pool} was not found within clusterroot.timeout={secs} s ({said}); check the pool name in {param} and that the pool's disks and their drivers are in the initramfs (zpool import lists the pools it can see)")]
    NoPool { pool: String, secs: u64, said: String, param: String },
    #[error("importing ZFS pool {pool} failed: {said}{hint}")]
    Import { pool: String, said: String, hint: &'static str },
    #[error("reading the mountpoint of ZFS dataset {dataset} failed: {said}; check the dataset name in {param} (zfs list shows the datasets)")]
    Property { dataset: String, said: String, param: String },
    #[error("mounting ZFS dataset {dataset} on {target} failed: {cause}")]
    Mount { dataset: String, target: String, cause: MountError },
}

/// A ZFS dataset as the command line names it: `<pool>[/<child>...]`, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dataset(String);

impl Dataset {
    /// The name rules of `zfs(8)`: the pool starts with a letter; components are non-empty and
    /// made of letters, digits, `_-.: `; no snapshot (`@`) or bookmark (`#`).
    pub fn parse(name: &str) -> Result<Dataset, String> {
        let name = name.trim_end_matches('/');
        if name.is_empty() {
            return Err("names no dataset; write <pool>/<dataset>".into());
        }
        if name.contains(['@', '#']) {
            return Err("names a snapshot or bookmark; the lower must be a filesystem dataset, <pool>/<dataset>".into());
        }
        if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return Err("a pool name starts with a letter; write <pool>/<dataset>".into());
        }
        for part in name.split('/') {
            if part.is_empty() || part == "." || part == ".." {
                return Err(format!("has an empty or relative component in {name:?}; write <pool>/<dataset>"));
            }
            if let Some(c) = part.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.: ".contains(*c))) {
                return Err(format!("has {c:?}, which ZFS does not allow in a name (letters, digits and _-.: only)"));
            }
        }
        Ok(Dataset(name.to_string()))
    }

    pub fn pool(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }

    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How to import, from `zfs_force=` and `zfs_import_dir=` (the zfs hook's own parameters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportOptions {
    pub force: bool,
    pub dir: Option<String>,
}

impl ImportOptions {
    /// `zpool import` arguments for `pool`: never mount anything (`-N`).
    pub fn args<'a>(&'a self, pool: &'a str) -> Vec<&'a str> {
        let mut args = vec!["import", "-N"];
        if self.force {
            args.push("-f");
        }
        if let Some(d) = &self.dir {
            args.extend(["-d", d.as_str()]);
        }
        args.push(pool);
        args
    }
}

/// One of the zfs hook's tools, found in the image.
pub fn find_tool(root: &Root, tool: &'static str) -> Result<PathBuf, ZfsError> {
    TOOL_DIRS
        .iter()
        .map(|d| root.path(&format!("{d}/{tool}")))
        .find(|p| p.is_file())
        .ok_or_else(|| ZfsError::NoTool { tool, looked: TOOL_DIRS.map(|d| format!("{d}/{tool}")).join(", ") })
}

/// How a tool run ended.
#[derive(Debug)]
pub enum Ran {
    Ok(String),
    Failed(String),
    /// Still running at the deadline; it was killed.
    TimedOut,
}

/// Runs `tool args` and waits for it until `deadline`; stdout on success, else the first line
/// of what it said on stderr (stdout when stderr is empty).
pub fn run_tool(tool: &Path, args: &[&str], deadline: Instant) -> Result<Ran, ZfsError> {
    let command = format!("{} {}", tool.display(), args.join(" "));
    let mut child = Command::new(tool)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|cause| ZfsError::Spawn { command: command.clone(), cause })?;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(Ran::TimedOut);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(cause) => return Err(ZfsError::Spawn { command, cause }),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    if status.success() {
        return Ok(Ran::Ok(out));
    }
    let said = if err.trim().is_empty() { out } else { err };
    let first = said.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("").to_string();
    Ok(Ran::Failed(if first.is_empty() { format!("{command} exited with {status}") } else { first }))
}

/// Whether a failed import may succeed later: the pool's disks have not shown up yet.
fn not_there_yet(said: &str) -> bool {
    said.contains("no such pool") || said.contains("no pools available")
}

fn import_hint(said: &str) -> &'static str {
    if said.contains("another system") || said.contains("-f") {
        "; if no other machine uses the pool, add zfs_force=1 to the kernel command line once (then export the pool cleanly or keep /etc/hostid in the master's node files)"
    } else {
        "; the emergency shell has zpool to look into it"
    }
}

/// Loads the zfs module with the image's `modprobe` unless `/sys/module/zfs` shows it loaded,
/// and waits for `/dev/zfs`, which libzfs needs (it does not load modules itself by default).
/// `/dev/zfs` alone proves nothing: with mkinitcpio's udev hook, `kmod static-nodes` and
/// systemd-tmpfiles create it at early boot, before the module is loaded, and `zpool import`
/// then fails with "The ZFS modules are not loaded".
pub fn load_module(root: &Root, deadline: Instant) -> Result<(), ZfsError> {
    let dev = root.path("/dev/zfs");
    if !root.path("/sys/module/zfs").exists() {
        let modprobe = find_tool(root, "modprobe")?;
        match run_tool(&modprobe, &["zfs"], deadline)? {
            Ran::Ok(_) => {}
            Ran::Failed(said) => return Err(ZfsError::Module { said }),
            Ran::TimedOut => {
                return Err(ZfsError::Module { said: "modprobe zfs was still running at the deadline".into() })
            }
        }
    }
    while !dev.exists() {
        if Instant::now() >= deadline {
            return Err(ZfsError::Module { said: "the module is loaded but /dev/zfs did not appear".into() });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Whether `pool` is imported already (by the module from a `zpool.cache` in the image, say):
/// the zfs module keeps a `state` kstat per imported pool.
pub fn imported(root: &Root, pool: &str) -> bool {
    root.path(&format!("/proc/spl/kstat/zfs/{pool}/state")).is_file()
}

/// Imports `pool` without mounting anything, retrying while its disks are not there yet.
/// A pool that is already imported is left as it is. Returns whether this call imported it.
pub fn import(
    root: &Root,
    pool: &str,
    opts: &ImportOptions,
    param: &str,
    deadline: Instant,
    timeout: Duration,
) -> Result<bool, ZfsError> {
    let zpool = find_tool(root, "zpool")?;
    load_module(root, deadline)?;
    let no_pool = |said: String| ZfsError::NoPool {
        pool: pool.to_string(),
        secs: timeout.as_secs(),
        said,
        param: param.to_string(),
    };
    if imported(root, pool) {
        return Ok(false);
    }
    loop {
        match run_tool(&zpool, &opts.args(pool), deadline)? {
            Ran::Ok(_) => return Ok(true),
            Ran::TimedOut => return Err(no_pool("zpool import was still running at the deadline".into())),
            Ran::Failed(said) if not_there_yet(&said) => {
                if Instant::now() + RETRY >= deadline {
                    return Err(no_pool(said));
                }
                std::thread::sleep(RETRY);
            }
            Ran::Failed(said) if said.contains("already exists") => return Ok(false),
            Ran::Failed(said) => {
                let hint = import_hint(&said);
                return Err(ZfsError::Import { pool: pool.to_string(), said, hint });
            }
        }
    }
}

/// The dataset's `mountpoint` property: `legacy` datasets mount like any filesystem, the others
/// only with `zfsutil`, as `zfs mount` does.
pub fn mountpoint(root: &Root, ds: &Dataset, param: &str, deadline: Instant) -> Result<String, ZfsError> {
    let zfs = find_tool(root, "zfs")?;
    let err = |said: String| ZfsError::Property { dataset: ds.to_string(), said, param: param.to_string() };
    match run_tool(&zfs, &["get", "-H", "-o", "value", "mountpoint", ds.name()], deadline)? {
        Ran::Ok(out) => Ok(out.trim().to_string()),
        Ran::Failed(said) => Err(err(said)),
        Ran::TimedOut => Err(err("zfs get was still running at the deadline".into())),
    }
}

/// Mounts `ds` on `target`, read-only unless `rw`.
pub fn mount_dataset(ds: &Dataset, zfsutil: bool, rw: bool, target: &str) -> Result<(), ZfsError> {
    let options: &[(&str, Option<&str>)] = if zfsutil { &[("zfsutil", None)] } else { &[] };
    mount::mount_local("zfs", ds.name(), options, rw, target).map_err(|cause| ZfsError::Mount {
        dataset: ds.to_string(),
        target: target.to_string(),
        cause,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn dataset_names() {
        let ds = Dataset::parse("tank/os/void").unwrap();
        assert_eq!((ds.pool(), ds.name()), ("tank", "tank/os/void"));
        assert_eq!(Dataset::parse("tank/").unwrap().name(), "tank");
        assert_eq!(Dataset::parse("rpool").unwrap().pool(), "rpool");
        assert!(Dataset::parse("my pool/ROOT/a:b.c_d-e").is_ok());
        for bad in ["", "/tank/root", "tank//root", "tank/../x", "tank/root@snap", "tank/r#b", "1tank/root", "tank/r$"]
        {
            assert!(Dataset::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn import_arguments() {
        assert_eq!(ImportOptions::default().args("tank"), ["import", "-N", "tank"]);
        let o = ImportOptions { force: true, dir: Some("/dev/disk/by-id".into()) };
        assert_eq!(o.args("tank"), ["import", "-N", "-f", "-d", "/dev/disk/by-id", "tank"]);
    }

    /// `/usr/bin/<name>` in the tree `dir` as a shell script.
    fn tool(dir: &Path, name: &str, script: &str) {
        std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
        let tool = dir.join("usr/bin").join(name);
        std::fs::write(&tool, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// A tree with the zfs module loaded and `/usr/bin/zpool` as a shell script, for the
    /// process handling (the real zpool runs in the QEMU ZFS scenario).
    fn fixture(name: &str, script: &str) -> (PathBuf, Root) {
        let dir = std::env::temp_dir().join(format!("crzfs-{name}-{}", std::process::id()));
        tool(&dir, "zpool", script);
        std::fs::create_dir_all(dir.join("sys/module/zfs")).unwrap();
        std::fs::create_dir_all(dir.join("dev")).unwrap();
        std::fs::write(dir.join("dev/zfs"), "").unwrap();
        let root = Root::new(&dir);
        (dir, root)
    }

    /// `import` with default options, a deadline `budget` from now and a timeout of `secs`.
    fn import_within(root: &Root, pool: &str, param: &str, budget: Duration, secs: u64) -> Result<bool, ZfsError> {
        import(root, pool, &ImportOptions::default(), param, Instant::now() + budget, Duration::from_secs(secs))
    }

    #[test]
    fn missing_tool_names_the_zfs_hook() {
        let root = Root::new("/nonexistent-clusterroot");
        let err = find_tool(&root, "zpool").unwrap_err().to_string();
        assert!(err.starts_with("zpool is not in the initramfs (looked in /usr/bin/zpool,"), "{err}");
        assert!(err.contains("add the zfs hook to HOOKS before clusterroot"), "{err}");
    }

    #[test]
    fn a_static_dev_zfs_does_not_mean_the_module_is_loaded() {
        // With mkinitcpio's udev hook, kmod static-nodes and systemd-tmpfiles create /dev/zfs
        // at early boot, before anything loads the module: only /sys/module/zfs tells.
        let (dir, root) = fixture("static-node", "exit 0");
        std::fs::remove_dir_all(dir.join("sys/module/zfs")).unwrap();
        let module = dir.join("sys/module/zfs");
        tool(&dir, "modprobe", &format!("echo \"$@\" > \"$0.ran\"; mkdir -p '{}'", module.display()));
        load_module(&root, Instant::now() + Duration::from_secs(5)).unwrap();
        let ran = std::fs::read_to_string(dir.join("usr/bin/modprobe.ran")).unwrap_or_default();
        assert_eq!(ran.trim(), "zfs", "modprobe zfs did not run");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn retries_until_the_pool_appears() {
        // Fails twice as zpool does before the disk shows up, then succeeds.
        let (dir, root) = fixture(
            "retry",
            r#"n=$(cat "$0.count" 2>/dev/null || echo 0); echo $((n+1)) > "$0.count"
[ "$n" -ge 2 ] && exit 0
echo "cannot import 'tank': no such pool available" >&2; exit 1"#,
        );
        let imported = import_within(&root, "tank", "zfs=tank/root", Duration::from_secs(10), 10).unwrap();
        assert!(imported);
        assert_eq!(std::fs::read_to_string(dir.join("usr/bin/zpool.count")).unwrap().trim(), "3");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_imported_pool_is_left_alone() {
        // zpool would fail: it must not run at all.
        let (dir, root) = fixture("imported", "echo ran > \"$0.ran\"; exit 1");
        std::fs::create_dir_all(dir.join("proc/spl/kstat/zfs/tank")).unwrap();
        std::fs::write(dir.join("proc/spl/kstat/zfs/tank/state"), "ONLINE\n").unwrap();
        assert!(!import_within(&root, "tank", "zfs=tank/root", Duration::from_secs(5), 5).unwrap());
        assert!(!dir.join("usr/bin/zpool.ran").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn gives_up_at_the_deadline_naming_the_pool() {
        let (dir, root) = fixture("deadline", r#"echo "cannot import 'nope': no such pool available" >&2; exit 1"#);
        let t = Instant::now();
        let err =
            import_within(&root, "nope", "root=zfs:nope/root", Duration::from_secs(1), 1).unwrap_err().to_string();
        assert!(t.elapsed() < Duration::from_secs(3));
        assert!(err.starts_with("ZFS pool nope was not found within clusterroot.timeout=1 s (cannot import 'nope': no such pool available); check the pool name in root=zfs:nope/root"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn other_failures_stop_at_once_with_a_hint() {
        let (dir, root) = fixture(
            "inuse",
            r#"echo "cannot import 'tank': pool was previously in use from another system." >&2; exit 1"#,
        );
        let t = Instant::now();
        let err = import_within(&root, "tank", "zfs=tank", Duration::from_secs(30), 30).unwrap_err().to_string();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(err.contains("previously in use from another system"), "{err}");
        assert!(err.contains("add zfs_force=1"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_hung_tool_is_killed_at_the_deadline() {
        let (dir, root) = fixture("hang", "exec sleep 30");
        let t = Instant::now();
        let err = import_within(&root, "tank", "zfs=tank", Duration::from_millis(300), 1).unwrap_err().to_string();
        assert!(t.elapsed() < Duration::from_secs(5));
        assert!(err.contains("still running at the deadline"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
