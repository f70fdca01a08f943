//! The systemd cgroup driver's D-Bus side (`exec-opts native.cgroupdriver=systemd`), as
//! runc's systemd managers do it: a container's cgroup is the transient scope
//! `berth-<id>.scope` in `berth.slice` (or the `--cgroup-parent` slice), started through
//! systemd's manager with the container's init as its PID, `Delegate=yes`, its device allow
//! list and the resource properties systemd itself writes; the rest of the limits go through
//! cgroupfs into the scope's directory, as with the cgroupfs driver. The scope is stopped with
//! StopUnit when the container's run ends.
//!
//! `unit` holds the names and slice rules, `properties` and `devices` what a scope is started
//! with, and `manager` the D-Bus client (zbus on tokio).

mod devices;
mod error;
mod manager;
pub mod properties;
pub mod unit;

pub use devices::device_properties;
pub use error::Error;
pub use manager::{Systemd, system_bus_address};
pub use properties::{Prop, limit_properties, scope_properties};
pub use unit::{DEFAULT_SLICE, expand_slice, parent_slice, scope_cgroup, scope_name};
