//! crctl: the clusterroot master's tool. The inventory of nodes, and every config of the
//! cluster rendered from it.

pub mod apply;
pub mod cli;
pub mod diff;
pub mod files;
pub mod generalize;
pub mod identity;
pub mod image;
pub mod inventory;
pub mod place;
pub mod preview;
pub mod render;
pub mod services;
pub mod sync;
