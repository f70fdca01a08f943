//! One router per Docker API area.

pub mod archive;
pub mod build;
pub mod build_control;
pub mod buildkit;
pub mod container_fs;
pub mod containers;
pub mod distribution;
pub mod exec;
mod gather;
pub mod hijack;
pub mod images;
pub mod networks;
pub mod plugins;
mod pump;
pub mod resources;
pub mod spool;
pub mod swarm;
pub mod system;
pub mod volumes;
