//! The shared root's read-only lower layer: over NFS on the clients, from the master's own
//! disk (`block`) or ZFS dataset (`zfs`); with `clusterroot.image=`, one version of an image store
//! (`image`).

pub mod block;
pub mod image;
pub mod nfs;
pub mod zfs;
