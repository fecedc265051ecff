//! Where a node's files come from, other than the lower: its own NFS export, or a local
//! filesystem (a disk or a ZFS dataset of the master), mounted read-only on
//! [`NODEFILES`] for the copy and unmounted again before `switch_root`.
//!
//! Keeping node files out of the shared root is what keeps them secret: every client mounts
//! the shared root's export, and root on a client can read anything on that filesystem. A
//! per-node export is exported to that node's address only (see the README's threat model).

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rustix::io::Errno;
use rustix::mount::UnmountFlags;

use crate::kmsg::Log;
use crate::lower::block::{self, BlockError, DeviceRef};
use crate::lower::nfs::{self, NfsError, NfsMount, NfsOption, NfsVersion};
use crate::lower::zfs::{self, Dataset, ImportOptions, ZfsError};
use crate::mac::MacAddress;
use crate::root::Root;

pub use crate::plan::NODEFILES;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("the node files' NFS export {source_name} could not be mounted: {cause}; export it read-only to this node's address on the master (see the README's node-file section)")]
    Nfs { source_name: String, cause: NfsError },
    #[error("the node-files device {device}: {cause}")]
    Device { device: String, cause: BlockError },
    #[error("the node-files dataset {dataset}: {cause}")]
    Zfs { dataset: String, cause: ZfsError },
    #[error("no NFS server known for clusterroot.nodefiles={dir}: write clusterroot.nodefiles=<server-ip>:{dir}")]
    NoServer { dir: String },
    #[error("unmounting the node files from {path} failed: {errno}")]
    Unmount { path: String, errno: Errno },
}

/// What a mounted source holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One node's files (its own export), laid over `/etc` as they are.
    Tree,
    /// Every node's, as in `/etc/overlays`: `<mac>/` and `<mac>*.tar*`.
    PerMac,
}

/// A node-files source mounted on [`NODEFILES`]; unmounted when dropped, so no path to it is
/// left for the running system even when the copy fails half-way.
pub struct Mounted {
    /// How warnings name it: `172.23.199.225:/srv/nfs/nodes/52:54:00:77:00:0b`, `LABEL=nodefiles`.
    pub label: String,
    pub layout: Layout,
    unmounted: bool,
}

impl Mounted {
    fn new(label: String, layout: Layout) -> Mounted {
        Mounted { label, layout, unmounted: false }
    }

    /// Unmounts it, lazily if something still holds it (nothing should).
    pub fn unmount(mut self) -> Result<(), SourceError> {
        self.unmounted = true;
        detach()
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if !self.unmounted {
            let _ = detach();
        }
    }
}

fn detach() -> Result<(), SourceError> {
    let err = |errno| SourceError::Unmount { path: NODEFILES.to_string(), errno };
    match rustix::mount::unmount(NODEFILES, UnmountFlags::empty()) {
        Ok(()) => Ok(()),
        Err(Errno::BUSY) => rustix::mount::unmount(NODEFILES, UnmountFlags::DETACH).map_err(err),
        Err(errno) => Err(err(errno)),
    }
}

/// The NFS version the root was mounted with (`4.2`, `3`), for the node's export: the same
/// server, so the same version works.
fn version_of(vers: &str) -> NfsVersion {
    match vers {
        "3" => NfsVersion::V3,
        "4.0" => NfsVersion::V4(0),
        "4.1" => NfsVersion::V4(1),
        _ => NfsVersion::V4(2),
    }
}

/// The node's own export, `<server>:<dir>/<mac>`, mounted read-only on [`NODEFILES`].
#[allow(clippy::too_many_arguments)]
pub fn mount_nfs(
    server: Option<Ipv4Addr>,
    dir: &str,
    mac: MacAddress,
    root_server: Option<Ipv4Addr>,
    root_vers: &str,
    client: Ipv4Addr,
    deadline: Instant,
    timeout: Duration,
    log: &Log,
) -> Result<Mounted, SourceError> {
    let server = server.or(root_server).ok_or_else(|| SourceError::NoServer { dir: dir.to_string() })?;
    let m = NfsMount {
        server,
        path: format!("{}/{mac}", dir.trim_end_matches('/')),
        version: version_of(root_vers),
        // soft: a server that stops answering while the files are copied makes the reads fail
        // (after about 3 × 5 s) instead of hanging the boot, which the deadline cannot break.
        options: [("soft", None), ("timeo", Some("50")), ("retrans", Some("2"))]
            .into_iter()
            .map(|(k, v)| NfsOption { key: k.into(), value: v.map(Into::into) })
            .collect(),
        target: NODEFILES.to_string(),
    };
    let label = m.source(None);
    nfs::mount(&m, client, mac.seed(), deadline, timeout, log)
        .map_err(|cause| SourceError::Nfs { source_name: label.clone(), cause })?;
    Ok(Mounted::new(label, Layout::Tree))
}

/// A local filesystem laid out as `/etc/overlays` is, mounted read-only on [`NODEFILES`]
/// once its device is there.
pub fn mount_device(
    root: &Root,
    device: &DeviceRef,
    deadline: Instant,
    timeout: Duration,
) -> Result<Mounted, SourceError> {
    let err = |cause| SourceError::Device { device: device.to_string(), cause };
    let path: PathBuf = block::wait(root, device, deadline, timeout).map_err(err)?;
    let fstype =
        block::probe_fstype(&path).ok_or_else(|| err(BlockError::UnknownFs { device: path.display().to_string() }))?;
    block::mount_device(&path, fstype, None, false, NODEFILES).map_err(err)?;
    Ok(Mounted::new(format!("{device}"), Layout::PerMac))
}

/// A dataset laid out as `/etc/overlays` is, mounted read-only on [`NODEFILES`]; its pool is
/// imported first unless it is already (it usually holds the root too).
pub fn mount_zfs(
    root: &Root,
    dataset: &Dataset,
    options: &ImportOptions,
    deadline: Instant,
    timeout: Duration,
) -> Result<Mounted, SourceError> {
    let param = format!("clusterroot.nodefiles=zfs:{dataset}");
    let err = |cause| SourceError::Zfs { dataset: dataset.to_string(), cause };
    zfs::import(root, dataset.pool(), options, &param, deadline, timeout).map_err(err)?;
    let mountpoint = zfs::mountpoint(root, dataset, &param, deadline).map_err(err)?;
    zfs::mount_dataset(dataset, mountpoint != "legacy", false, NODEFILES).map_err(err)?;
    Ok(Mounted::new(format!("zfs:{dataset}"), Layout::PerMac))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_version_carries_over() {
        assert_eq!(version_of("3"), NfsVersion::V3);
        assert_eq!(version_of("4.1"), NfsVersion::V4(1));
        assert_eq!(version_of("4.2"), NfsVersion::V4(2));
    }
}
