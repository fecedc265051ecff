//! The shared root's read-only lower layer: over NFS on the clients, from the master's own
//! disk (`block`) or ZFS dataset (`zfs`); with `clusterroot.image=`, one version of an image store
//! (`image`); or one squashfs file per version, downloaded into RAM over HTTP (`fetch`) or read
//! on NFS, attached to a loop device and mounted (`loopdev`).

pub mod block;
pub mod fetch;
pub mod image;
pub mod loopdev;
pub mod nfs;
pub mod zfs;
