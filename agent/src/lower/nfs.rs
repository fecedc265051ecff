//! The NFS lower: per-node NFSv4 identity, then the kernel's NFS client through `fsopen`,
//! stepping down NFSv4 minor versions and retrying with jittered backoff until the deadline.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rustix::event::{poll, PollFd, PollFlags};
use rustix::fd::OwnedFd;
use rustix::io::Errno;
use rustix::mount::MountAttrFlags;
use rustix::net::{AddressFamily, SocketFlags, SocketType};

use crate::kmsg::Log;
use crate::mac::MacAddress;
use crate::mount::{self, FsContext, MountError};
use crate::root::Root;

/// The per-network-namespace NFSv4 client identifier (Linux 5.18+).
pub const IDENTIFIER: &str = "/sys/fs/nfs/net/nfs_client/identifier";
/// The older module-wide uniquifier, `nfs.nfs4_unique_id=`.
pub const UNIQUE_ID_PARAM: &str = "/sys/module/nfs/parameters/nfs4_unique_id";

#[derive(Debug, thiserror::Error)]
pub enum NfsError {
    #[error("NFS server {server} did not answer for {server}:{path} within clusterroot.timeout={secs} s (last attempt: {last}); check that the server is up, exports {path}, and is reachable from {client}, or raise clusterroot.timeout=")]
    Unreachable { server: Ipv4Addr, path: String, secs: u64, last: String, client: Ipv4Addr },
    #[error("NFS server {server} refused NFS version {tried} for {server}:{path}{kernel}; if it only speaks NFSv3 add vers=3 to the nfsroot= options")]
    VersionRefused { server: Ipv4Addr, path: String, tried: String, kernel: String },
    #[error("mounting NFS {server}:{path} failed: {cause}; {hint}")]
    Mount { server: Ipv4Addr, path: String, cause: MountError, hint: &'static str },
    #[error("setting the NFSv4 client identity in {path} failed: {errno}")]
    Identity { path: String, errno: Errno },
    #[error("preparing {path}: {cause}")]
    Target { path: String, cause: MountError },
}

/// NFS protocol version wanted for the lower.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NfsVersion {
    /// Nothing asked: try 4.2, then 4.1, then 4.0.
    Default,
    /// `vers=4`: any NFSv4 minor version, newest first.
    V4Any,
    /// `vers=4.N`: exactly that minor version.
    V4(u8),
    /// `vers=3`: NFSv3, mounted with `nolock` (no statd in the initramfs).
    V3,
}

impl NfsVersion {
    /// Exactly the version a mount answered in (`4.2`, `4.1`, `4.0`, `3`).
    pub fn exactly(vers: &str) -> NfsVersion {
        match vers {
            "3" => NfsVersion::V3,
            "4.0" => NfsVersion::V4(0),
            "4.1" => NfsVersion::V4(1),
            _ => NfsVersion::V4(2),
        }
    }

    /// The `vers=` values to try, in order.
    pub fn attempts(self) -> &'static [&'static str] {
        match self {
            NfsVersion::Default | NfsVersion::V4Any => &["4.2", "4.1", "4.0"],
            NfsVersion::V4(0) => &["4.0"],
            NfsVersion::V4(1) => &["4.1"],
            NfsVersion::V4(_) => &["4.2"],
            NfsVersion::V3 => &["3"],
        }
    }
}

/// One NFS mount option passed through to the kernel: `key` or `key=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsOption {
    pub key: String,
    pub value: Option<String>,
}

/// The NFS lower, before the client address is known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NfsMount {
    pub server: Ipv4Addr,
    /// Export path; may still hold `%s` when the client address comes from the interface.
    pub path: String,
    pub version: NfsVersion,
    pub options: Vec<NfsOption>,
    pub target: String,
}

impl NfsMount {
    /// The full option list for one attempt, as the kernel's NFS client gets it.
    pub fn options_for(&self, vers: &str, client: Ipv4Addr) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = vec![("vers".into(), Some(vers.into()))];
        let has = |k: &str| self.options.iter().any(|o| o.key == k);
        if !has("addr") {
            out.push(("addr".into(), Some(self.server.to_string())));
        }
        if vers.starts_with('4') && !has("clientaddr") {
            out.push(("clientaddr".into(), Some(client.to_string())));
        }
        if vers == "3" && !has("nolock") && !has("lock") {
            out.push(("nolock".into(), None));
        }
        out.extend(self.options.iter().map(|o| (o.key.clone(), o.value.clone())));
        out
    }

    /// A warning when the options make the root fail while its server is away (a reboot of
    /// the master): `soft` and `softerr` turn the wait into errors in every process. The
    /// last of `soft`, `softerr` and `hard` wins, as in the kernel.
    pub fn outage_warning(&self) -> Option<String> {
        let last = self
            .options
            .iter()
            .rev()
            .find(|o| o.value.is_none() && matches!(o.key.as_str(), "soft" | "softerr" | "hard"))?;
        (last.key != "hard").then(|| {
            format!(
                "NFS root option {}: while the server is away (a reboot of the master) every process reading the root gets an error instead of waiting; drop it (hard is the default)",
                last.key
            )
        })
    }

    pub fn source(&self, client: Option<Ipv4Addr>) -> String {
        let path = match client {
            Some(ip) => self.path.replace("%s", &ip.to_string()),
            None => self.path.clone(),
        };
        format!("{}:{}", self.server, path)
    }
}

/// Sets a per-node NFSv4 client identity before the first NFSv4 mount. Without it, every
/// node booting the same image presents the same identity and the server lets them steal
/// each other's open and lock state. An identity given as `nfs.nfs4_unique_id=` is kept.
/// A node booting an image version carries it: `clusterroot-<mac>@<version>`.
pub fn set_identity(
    root: &Root,
    mac: MacAddress,
    given: Option<&str>,
    version: Option<&str>,
    log: &Log,
) -> Result<String, NfsError> {
    // fsopen("nfs") makes the kernel load the nfs module, which creates the sysfs files.
    drop(FsContext::open("nfs").map_err(|cause| NfsError::Target { path: "nfs".into(), cause })?);
    let write = |path: &str, value: &str| {
        std::fs::write(root.path(path), value).map_err(|e| NfsError::Identity {
            path: path.to_string(),
            errno: Errno::from_raw_os_error(e.raw_os_error().unwrap_or(libc_eio())),
        })
    };
    if let Some(id) = given {
        let current = std::fs::read_to_string(root.path(UNIQUE_ID_PARAM)).unwrap_or_default();
        if current.trim() != id {
            write(UNIQUE_ID_PARAM, id)?;
        }
        log.info(&format!("NFSv4 client identity {id} (from nfs.nfs4_unique_id=)"));
        return Ok(id.to_string());
    }
    let id = identity(mac, version);
    if root.path(IDENTIFIER).exists() {
        write(IDENTIFIER, &id)?;
    } else {
        write(UNIQUE_ID_PARAM, &id)?;
    }
    log.info(&format!("NFSv4 client identity {id}"));
    Ok(id)
}

/// `clusterroot-<mac>`, or `clusterroot-<mac>@<version>` once a version is pinned.
pub fn identity(mac: MacAddress, version: Option<&str>) -> String {
    match version {
        Some(v) => format!("clusterroot-{}@{v}", mac.hex()),
        None => format!("clusterroot-{}", mac.hex()),
    }
}

fn libc_eio() -> i32 {
    Errno::IO.raw_os_error()
}

/// Errors after which trying again may help: the server is booting, the network settling.
fn is_transient(errno: Errno) -> bool {
    [
        Errno::TIMEDOUT,
        Errno::CONNREFUSED,
        Errno::HOSTUNREACH,
        Errno::NETUNREACH,
        Errno::AGAIN,
        Errno::IO,
        Errno::NOTCONN,
        Errno::CONNRESET,
        Errno::HOSTDOWN,
        Errno::NETDOWN,
        Errno::INTR,
    ]
    .contains(&errno)
}

fn hint_for(errno: Errno) -> &'static str {
    match errno {
        Errno::NOENT => "the server does not export that path: check /etc/exports on the server (exportfs -v) and the path in nfsroot=",
        Errno::ACCESS | Errno::PERM => "the server refused this client: check that /etc/exports allows its address",
        Errno::INVAL => "check the options in nfsroot=",
        Errno::NODEV => "the nfs/nfsv4 modules are missing from the initramfs",
        _ => "check the server and the nfsroot= options",
    }
}

/// Backoff jitter, seeded per node so nodes do not retry in lockstep.
struct Jitter(crate::rng::XorShift);

impl Jitter {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// `base` scaled by a random factor in [0.5, 1.5).
    fn spread(&mut self, base: Duration) -> Duration {
        let ms = base.as_millis() as u64;
        Duration::from_millis(ms / 2 + self.next() % ms.max(1))
    }
}

/// Checks that something listens on the server's NFS port before asking the kernel to mount:
/// a kernel mount against a dead host can block far longer than our deadline.
fn probe(server: Ipv4Addr, within: Duration) -> Result<(), String> {
    let addr = SocketAddrV4::new(server, 2049);
    let fail = |what: &str, e: Errno| format!("connecting to {addr}: {what}{e}");
    let fd = rustix::net::socket_with(
        AddressFamily::INET,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )
    .map_err(|e| fail("", e))?;
    match rustix::net::connect(&fd, &addr) {
        Ok(()) => return Ok(()),
        Err(Errno::INPROGRESS) => {}
        Err(e) => return Err(fail("", e)),
    }
    let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
    let ts = rustix::time::Timespec { tv_sec: within.as_secs() as i64, tv_nsec: within.subsec_nanos() as _ };
    match poll(&mut fds, Some(&ts)) {
        Ok(0) => Err(format!("connecting to {addr}: no answer within {} ms", within.as_millis())),
        Ok(_) => match rustix::net::sockopt::socket_error(&fd) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) | Err(e) => Err(fail("", e)),
        },
        Err(e) => Err(fail("poll: ", e)),
    }
}

/// One mount attempt with one `vers=`; returns the detached mount.
fn attempt(source: &str, options: &[(String, Option<String>)]) -> Result<OwnedFd, MountError> {
    let ctx = FsContext::open("nfs")?;
    ctx.set("source", Some(source))?;
    for (k, v) in options {
        ctx.set(k, v.as_deref())?;
    }
    // Read-only at the superblock and at the mount: the agent never writes to the lower.
    ctx.set("ro", None)?;
    ctx.create(source)?;
    ctx.mount(MountAttrFlags::MOUNT_ATTR_RDONLY)
}

/// What was mounted.
pub struct Mounted {
    pub source: String,
    pub vers: &'static str,
    pub attempts: u32,
}

/// Mounts the NFS lower read-only on `m.target`, before `deadline`.
pub fn mount(
    m: &NfsMount,
    client: Ipv4Addr,
    seed: u64,
    deadline: Instant,
    timeout: Duration,
    log: &Log,
) -> Result<Mounted, NfsError> {
    let source = m.source(Some(client));
    let path = source.split_once(':').map(|(_, p)| p.to_string()).unwrap_or_default();
    mount::mkdir_p(&m.target).map_err(|cause| NfsError::Target { path: m.target.clone(), cause })?;
    let versions = m.version.attempts();
    let mut vi = 0;
    let mut backoff = Duration::from_millis(250);
    let mut jitter = Jitter(crate::rng::XorShift::new(seed));
    let mut last = String::from("none");
    let mut attempts = 0;
    let secs = || timeout.as_secs();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(NfsError::Unreachable { server: m.server, path, secs: secs(), last, client });
        }
        let remaining = deadline - now;
        match probe(m.server, remaining.min(Duration::from_secs(3))) {
            Err(why) => {
                log.debug(&format!("server not reachable yet: {why}"));
                last = why;
            }
            Ok(()) => {
                let vers = versions[vi];
                let options = m.options_for(vers, client);
                attempts += 1;
                log.debug(&format!("mounting {source} with {options:?}"));
                // The kernel may block in the mount for long; wait for it only until the deadline.
                // A thread still stuck in the kernel when we give up dies with the process.
                let (tx, rx) = mpsc::channel();
                let (src, opts) = (source.clone(), options.clone());
                std::thread::spawn(move || {
                    let _ = tx.send(attempt(&src, &opts));
                });
                let outcome = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
                match outcome {
                    Err(_) => {
                        last = format!("the kernel's mount with vers={vers} was still waiting for the server");
                        continue;
                    }
                    Ok(Ok(mnt)) => {
                        mount::attach(&mnt, "nfs", &m.target)
                            .map_err(|cause| NfsError::Target { path: m.target.clone(), cause })?;
                        return Ok(Mounted { source, vers, attempts });
                    }
                    Ok(Err(e)) if e.errno() == Errno::PROTONOSUPPORT => {
                        if vi + 1 < versions.len() {
                            log.info(&format!("server {} refused NFS {vers}; trying {}", m.server, versions[vi + 1]));
                            vi += 1;
                            continue;
                        }
                        let kernel =
                            if e.kernel().is_empty() { String::new() } else { format!(" (kernel: {})", e.kernel()) };
                        return Err(NfsError::VersionRefused {
                            server: m.server,
                            path,
                            tried: versions.join(", "),
                            kernel,
                        });
                    }
                    Ok(Err(e)) if is_transient(e.errno()) => {
                        log.debug(&format!("mount attempt failed, will retry: {e}"));
                        last = e.to_string();
                    }
                    Ok(Err(e)) => {
                        let hint = hint_for(e.errno());
                        return Err(NfsError::Mount { server: m.server, path, cause: e, hint });
                    }
                }
            }
        }
        let pause = jitter.spread(backoff).min(deadline.saturating_duration_since(Instant::now()));
        std::thread::sleep(pause);
        backoff = (backoff * 2).min(Duration::from_secs(4));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range() {
        let mut j = Jitter(crate::rng::XorShift::new(42));
        for _ in 0..1000 {
            let d = j.spread(Duration::from_millis(1000));
            assert!(d >= Duration::from_millis(500) && d < Duration::from_millis(1500), "{d:?}");
        }
    }

    #[test]
    fn transient_errors() {
        assert!(is_transient(Errno::TIMEDOUT));
        assert!(is_transient(Errno::HOSTUNREACH));
        assert!(!is_transient(Errno::NOENT));
        assert!(!is_transient(Errno::ACCESS));
        assert!(!is_transient(Errno::PROTONOSUPPORT));
    }

    #[test]
    fn probe_reports_refusal_on_loopback() {
        // Nothing listens on 127.0.0.1:2049 in a test environment (or something does: both fine,
        // but the answer must come back well within the limit either way).
        let t = Instant::now();
        let _ = probe(Ipv4Addr::LOCALHOST, Duration::from_millis(500));
        assert!(t.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn soft_roots_are_warned_about() {
        let with = |opts: &[&str]| NfsMount {
            server: Ipv4Addr::new(10, 0, 0, 1),
            path: "/srv/root".into(),
            version: NfsVersion::Default,
            options: opts.iter().map(|k| NfsOption { key: (*k).into(), value: None }).collect(),
            target: "/run/rootfs/lower".into(),
        };
        assert_eq!(with(&[]).outage_warning(), None);
        assert_eq!(with(&["hard"]).outage_warning(), None);
        assert_eq!(with(&["soft", "hard"]).outage_warning(), None);
        let w = with(&["hard", "softerr"]).outage_warning().unwrap();
        assert!(w.starts_with("NFS root option softerr: while the server is away"), "{w}");
        assert!(with(&["soft"]).outage_warning().unwrap().contains("drop it (hard is the default)"));
    }

    #[test]
    fn identity_is_derived_from_the_mac() {
        let mac: MacAddress = "52:54:00:77:00:0b".parse().unwrap();
        assert_eq!(identity(mac, None), "clusterroot-52540077000b");
        assert_eq!(identity(mac, Some("3")), "clusterroot-52540077000b@3");
        assert_eq!(NfsVersion::exactly("4.1").attempts(), &["4.1"]);
        assert_eq!(NfsVersion::exactly("3").attempts(), &["3"]);
    }
}
