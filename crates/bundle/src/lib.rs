//! The bundle directory shared by the runtime and `berth-shim`: one typed definition of the
//! files both sides read and write, so that neither builds nor parses them by hand.
//!
//! | file               | written by | type                                |
//! |--------------------|------------|-------------------------------------|
//! | `config.json`      | runtime    | [`Config`] ([`Config::write`], [`Config::read`]) |
//! | `exit.json`        | shim       | [`ExitStatus`] ([`ExitStatus::write`], [`ExitStatus::read`]) |
//! | `start-error.json` | shim       | [`StartError`] ([`StartError::write`], [`StartError::read`]) |
//! | `address`          | shim       | `unix://<socket>` ([`ADDRESS_FILE`]) |
//! | `shim.pid`         | shim       | the shim's pid ([`PID_FILE`])       |
//!
//! The runtime builds a [`Config`] (from [`Config::new`], then sets what it needs) and writes
//! it with [`Config::write`]; the shim reads it with [`Config::read`], which also runs the
//! structural checks of [`Config::validate`] (the shim adds its own: capability and rlimit
//! names). After the shim ran, the runtime reads `exit.json` with [`ExitStatus::read`] and
//! `start-error.json` with [`StartError::read`].
//!
//! Dependencies are serde, serde_json and thiserror only: the shim is built static and its
//! memory is what every container costs.

pub mod config;
pub mod devices;
mod error;
pub mod exit;
mod fs;
mod path;
pub mod resources;
pub mod seccomp;
pub mod start_error;

pub use config::{
    ALL_CAPABILITIES, BindMount, CONFIG_FILE, Config, ConsoleSize, DEFAULT_CAPABILITIES,
    DEFAULT_MASKED_PATHS, DEFAULT_PATH, DEFAULT_READONLY_PATHS, EtcFiles, LogConfig, Mount,
    Namespaces, NetNs, Process, Rlimit, SOCKET_FILE, TmpfsMount, User, config_path,
    validate_cgroup_path, validate_process,
};
pub use devices::{DeviceKind, DeviceNode, DeviceRule, default_device_rules};
pub use error::BundleError;
pub use exit::{EXIT_FILE, ExitStatus, exit_path, rfc3339_nano};
pub use fs::{write_atomic, write_atomic_mode};
pub use path::secure_join;
pub use resources::{DeviceRate, DeviceWeight, Resources, blkio_to_io_weight, shares_to_weight};
pub use seccomp::{BpfInsn, Seccomp};
pub use start_error::{START_ERROR_FILE, StartError, StartErrorKind, start_error_path};

/// `<bundle>/address`: `unix://<socket path>`, written by the shim once it serves; the
/// runtime reconnects through it after a restart.
pub const ADDRESS_FILE: &str = "address";

/// `<bundle>/shim.pid`: the shim's pid.
pub const PID_FILE: &str = "shim.pid";
