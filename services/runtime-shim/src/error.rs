//! The shim's errors, and the start error that tells the runtime which of Docker's exit codes
//! (127 not found, 126 cannot execute, 125 other) a failed start maps to.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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
    #[error("cgroup {path}: {reason}")]
    Cgroup { path: PathBuf, reason: String },
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

/// Which Docker exit code a failed start maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StartErrorKind {
    /// The executable does not exist (Docker: 127).
    NotFound,
    /// The executable exists but cannot be executed (Docker: 126).
    Permission,
    /// Anything else (Docker: 125).
    Other,
}

impl StartErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StartErrorKind::NotFound => "not-found",
            StartErrorKind::Permission => "permission",
            StartErrorKind::Other => "other",
        }
    }

    /// Docker's exit code for this failure.
    pub fn exit_code(self) -> i32 {
        match self {
            StartErrorKind::NotFound => 127,
            StartErrorKind::Permission => 126,
            StartErrorKind::Other => 125,
        }
    }

    /// How an errno from execve(2) is classified.
    pub fn from_exec_errno(e: nix::Error) -> StartErrorKind {
        use nix::errno::Errno;
        match e {
            Errno::ENOENT | Errno::ENOTDIR => StartErrorKind::NotFound,
            Errno::EACCES | Errno::EPERM | Errno::ENOEXEC | Errno::EISDIR => {
                StartErrorKind::Permission
            }
            _ => StartErrorKind::Other,
        }
    }
}

/// `start-error.json` in the bundle: `{"kind": "not-found"|"permission"|"other", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct StartError {
    pub kind: StartErrorKind,
    pub message: String,
}

impl StartError {
    pub fn other(message: impl Into<String>) -> StartError {
        StartError {
            kind: StartErrorKind::Other,
            message: message.into(),
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
        assert_eq!(
            StartErrorKind::from_exec_errno(Errno::ENOENT).exit_code(),
            127
        );
        assert_eq!(
            StartErrorKind::from_exec_errno(Errno::EACCES).exit_code(),
            126
        );
        assert_eq!(
            StartErrorKind::from_exec_errno(Errno::ENOMEM).exit_code(),
            125
        );
        let e = StartError {
            kind: StartErrorKind::NotFound,
            message: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"not-found","message":"x"}"#
        );
    }
}
