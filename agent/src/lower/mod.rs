//! The shared root's read-only lower layer: over NFS on the clients, from the master's own
//! disk (`block`) or ZFS dataset (`zfs`); with `clusterroot.image=`, one version of an image store
//! (`image`); or one squashfs file per version, downloaded into RAM over HTTP (`fetch`) or read
//! on NFS (its mount's read-ahead raised: `readahead`), attached to a loop device and mounted
//! (`loopdev`), the files of the boot order read ahead (`bootorder`).

pub mod block;
pub mod bootorder;
pub mod fetch;
pub mod image;
pub mod loopdev;
pub mod nfs;
pub mod readahead;
pub mod zfs;
