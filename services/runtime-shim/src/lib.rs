//! `berth-shim`: one process per container, its parent and subreaper. It creates the
//! container (namespaces, the overlay root filesystem entered with pivot_root, cgroups,
//! capabilities), holds its stdio, writes the json-file log, records the exit status on disk,
//! and serves `berth.shim.v1.Shim` on its own unix socket. It outlives the runtime that
//! started it: the runtime reconnects through `<bundle>/address` after a restart.
//!
//! Layout: `start` (detach, report) → `daemon` (the shim's main) → `process` (clone, exec,
//! the child side in `process::child`) with `rootfs`, `devices`, `capabilities`, `rlimits`,
//! `user` (`-u user[:group]` from the container's /etc/passwd and /etc/group); the cgroup is
//! `berth_cgroup`'s, the engine's one implementation;
//! `shim` is the domain, `rpc` its call layer (`berth_shim_proto` on the socket); `stdio` and `logfile` move the output;
//! `reaper` collects exits; `exit` writes them; `cleanup` is `berth-shim delete`.

pub mod capabilities;
mod cgroupfs;
pub mod cleanup;
pub mod config;
mod convert;
mod daemon;
mod devices;
pub mod error;
pub mod exit;
pub mod logfile;
mod oom;
pub mod pathutil;
pub mod probe;
mod process;
mod reaper;
pub mod rlimits;
mod rootfs;
mod rpc;
mod shim;
pub mod start;
pub mod stdio;
// The only module with `unsafe` (fork/clone, ioctls, fd registration), each with SAFETY.
#[allow(unsafe_code)]
mod sys;
mod user;

pub use config::Config;
pub use error::{ShimError, StartError, StartErrorKind};
pub use exit::ExitStatus;

/// Files the shim keeps in the bundle directory.
pub mod files {
    pub use crate::config::CONFIG_FILE;
    pub use crate::daemon::{ADDRESS_FILE, PID_FILE};
    pub use crate::exit::EXIT_FILE;
    pub use crate::start::START_ERROR_FILE;
}
