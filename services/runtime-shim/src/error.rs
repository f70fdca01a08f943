//! The shim's errors, and the start error that tells the runtime which of Docker's exit codes
//! (127 not found, 126 cannot execute, 125 other) a failed start maps to (`StartError`, the
//! record of start-error.json, is `berth_bundle`'s, shared with the runtime).

use std::path::{Path, PathBuf};

use berth_bundle::BundleError;
pub use berth_bundle::{StartError, StartErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{what}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    Cgroup(#[from] berth_cgroup::Error),
    #[error(transparent)]
    Start(#[from] StartError),
    #[error("{0}")]
    Precondition(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
}

impl ShimError {
    pub fn io(path: &Path, source: std::io::Error) -> ShimError {
        ShimError::Io {
            path: path.to_owned(),
            source,
        }
    }

    pub fn sys(what: impl Into<String>, source: nix::Error) -> ShimError {
        ShimError::Sys {
            what: what.into(),
            source,
        }
    }

    /// The full message with its causes, for logs and start-error.json.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur: Option<&dyn std::error::Error> = std::error::Error::source(self);
        while let Some(e) = cur {
            s.push_str(": ");
            s.push_str(&e.to_string());
            cur = e.source();
        }
        s
    }
}

/// How an errno from execve(2) is classified.
pub fn exec_errno_kind(e: nix::Error) -> StartErrorKind {
    use nix::errno::Errno;
    match e {
        Errno::ENOENT | Errno::ENOTDIR => StartErrorKind::NotFound,
        Errno::EACCES | Errno::EPERM | Errno::ENOEXEC | Errno::EISDIR => StartErrorKind::Permission,
        _ => StartErrorKind::Other,
    }
}

impl From<BundleError> for ShimError {
    fn from(e: BundleError) -> ShimError {
        match e {
            BundleError::Io { path, source } => ShimError::Io { path, source },
            BundleError::Invalid { path, reason } => ShimError::Config { path, reason },
        }
    }
}

impl From<ShimError> for StartError {
    fn from(e: ShimError) -> StartError {
        match e {
            ShimError::Start(s) => s,
            e => StartError::other(e.chain()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_docker_codes() {
        use nix::errno::Errno;
        assert_eq!(exec_errno_kind(Errno::ENOENT).exit_code(), 127);
        assert_eq!(exec_errno_kind(Errno::EACCES).exit_code(), 126);
        assert_eq!(exec_errno_kind(Errno::ENOMEM).exit_code(), 125);
    }
}
