//! Berth's configuration: `/etc/berth/daemon.json` with Docker's daemon.json keys plus a `berth`
//! section, and the flags every Berth binary accepts.
//!
//! Like dockerd, an unknown key or a bad value is an error that names the key.

mod daemon;
mod flags;
mod host;
mod net;
mod raw;
mod seccomp;

pub use daemon::{
    AddressPool, BerthConfig, CgroupDriver, DEFAULT_NATS_URL, DaemonConfig, LogLevel,
    ServiceEndpoint, ServiceTls, TlsFiles,
};
pub use flags::CommonFlags;
pub use host::{Host, ServiceAddress};
pub use net::Ipv4Cidr;
pub use seccomp::SeccompProfile;

use std::path::{Path, PathBuf};

/// Where daemon.json is read from when no `--config` is given.
pub const DEFAULT_CONFIG_FILE: &str = "/etc/berth/daemon.json";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_EXEC_ROOT: &str = "/run/berth";

/// A configuration error. Each names the file and the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unable to read configuration file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error(
        "{path}: the following directives don't match any configuration option: {}",
        keys.join(", ")
    )]
    UnknownKeys { path: PathBuf, keys: Vec<String> },
    #[error("{path}: invalid value for \"{key}\": {reason}")]
    InvalidValue {
        path: PathBuf,
        key: String,
        reason: String,
    },
}

impl DaemonConfig {
    /// Reads the configuration file named by the flags (or the default one), then applies the
    /// flags on top. A missing default file means the defaults; a missing named file is an error.
    pub fn load(flags: &CommonFlags) -> Result<DaemonConfig, ConfigError> {
        let (path, required) = match &flags.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let mut cfg = match std::fs::read_to_string(&path) {
            Ok(text) => DaemonConfig::parse(&path, &text)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                DaemonConfig::parse(&path, "{}")?
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        flags.apply(&mut cfg);
        Ok(cfg)
    }

    /// Parses daemon.json text. `path` is only used in error messages.
    pub fn parse(path: &Path, text: &str) -> Result<DaemonConfig, ConfigError> {
        raw::parse(path, text)
    }
}
