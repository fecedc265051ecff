//! The shared root's read-only lower layer: over NFS on the clients, from the master's own
//! disk (`block`) or ZFS dataset (`zfs`).

pub mod block;
pub mod nfs;
pub mod zfs;
