//! The engine's one cgroup implementation, plain cgroupfs reads and writes with a backend per
//! version: `v1` (one hierarchy per controller, as on this hybrid host) and `v2` (the unified
//! hierarchy, alone or beside v1). A [`Cgroup`] is one container's directory in every
//! mounted hierarchy; it is created and limited by the shim at start, and frozen, updated and
//! read for stats by the runtime.
//!
//! Every file operation takes the directory it works on, so that both backends are tested
//! against fixture trees (files in a temp dir) as well as the real hierarchies.

// The only module with `unsafe` (the bpf(2) calls), each with SAFETY.
#[allow(unsafe_code)]
mod bpf;
mod cgroup;
pub mod devices;
mod error;
mod host;
mod mountinfo;
pub mod stats;
pub mod v1;
pub mod v2;
mod view;

pub use cgroup::{Cgroup, Freezer};
pub use error::Error;
pub use host::{CgroupDriver, CgroupInfo, CgroupVersion};
pub use stats::Stats;
pub use view::{ViewMount, container_view, host_view};

/// Reads a whole cgroup file.
pub(crate) fn read(dir: &std::path::Path, file: &str) -> std::io::Result<String> {
    std::fs::read_to_string(dir.join(file))
}

/// Writes `value` into a cgroup file (on cgroupfs the kernel made it; in a fixture tree it is
/// made).
pub(crate) fn write(dir: &std::path::Path, file: &str, value: &str) -> Result<(), Error> {
    let path = dir.join(file);
    std::fs::write(&path, value).map_err(|e| {
        let mut err = Error::io(&path, e);
        err.reason = format!("writing {value:?}: {}", err.reason);
        err
    })
}

/// Waits `d` without a runtime (the callers are synchronous: the shim before its runtime
/// exists, the runtime in a blocking task): a poll on no descriptors that times out.
pub(crate) fn pause(d: std::time::Duration) {
    let ms = u16::try_from(d.as_millis()).unwrap_or(u16::MAX).max(1);
    let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::from(ms));
}

/// A number from a cgroup file; "max" is `u64::MAX`.
pub(crate) fn read_u64(dir: &std::path::Path, file: &str) -> Option<u64> {
    let s = read(dir, file).ok()?;
    parse_u64(s.trim())
}

pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    if s == "max" {
        return Some(u64::MAX);
    }
    s.parse().ok()
}
