//! `start-error.json`: why `berth-shim start` failed, and which of Docker's exit codes (127
//! not found, 126 cannot execute, 125 other) the failure maps to. The shim also prints the
//! message on stderr and exits with that code.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BundleError;

pub const START_ERROR_FILE: &str = "start-error.json";

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
    /// As in the JSON: `not-found`, `permission`, `other`.
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

    /// The exit code of an exec whose process could not be started, as moby's
    /// `setExitCodeFromError` sets it (the CLI's `docker exec` exits with it): 127 and 126 as
    /// for a container, 128 (its `exitUnknown`) for anything else, such as a missing user.
    pub fn exec_exit_code(self) -> i32 {
        match self {
            StartErrorKind::Other => 128,
            k => k.exit_code(),
        }
    }

    /// The kind for the exit code of a failed `berth-shim start` (the inverse of
    /// [`StartErrorKind::exit_code`]; anything else is `Other`).
    pub fn from_exit_code(code: i32) -> StartErrorKind {
        match code {
            127 => StartErrorKind::NotFound,
            126 => StartErrorKind::Permission,
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

    /// Reads `<bundle>/start-error.json`; `Ok(None)` when there is none.
    pub fn read(bundle: &Path) -> Result<Option<StartError>, BundleError> {
        crate::fs::read_json(&start_error_path(bundle))
    }

    /// Writes `<bundle>/start-error.json` atomically.
    pub fn write(&self, bundle: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        crate::fs::write_atomic(&start_error_path(bundle), &bytes)
    }
}

/// `<bundle>/start-error.json`.
pub fn start_error_path(bundle: &Path) -> PathBuf {
    bundle.join(START_ERROR_FILE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_form() {
        let e = StartError {
            kind: StartErrorKind::NotFound,
            message: "x".into(),
        };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"kind":"not-found","message":"x"}"#
        );
        for k in [
            StartErrorKind::NotFound,
            StartErrorKind::Permission,
            StartErrorKind::Other,
        ] {
            assert_eq!(StartErrorKind::from_exit_code(k.exit_code()), k);
            assert_eq!(
                serde_json::to_value(k).unwrap(),
                serde_json::json!(k.as_str())
            );
        }
        assert_eq!(StartErrorKind::from_exit_code(1), StartErrorKind::Other);
    }

    #[test]
    fn exit_codes_of_a_container_and_of_an_exec() {
        use StartErrorKind::*;
        let codes = |f: fn(StartErrorKind) -> i32| [f(NotFound), f(Permission), f(Other)];
        assert_eq!(codes(StartErrorKind::exit_code), [127, 126, 125]);
        assert_eq!(codes(StartErrorKind::exec_exit_code), [127, 126, 128]);
        for k in [NotFound, Permission, Other] {
            assert_eq!(StartErrorKind::from_exit_code(k.exit_code()), k);
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert!(StartError::read(dir.path()).unwrap().is_none());
        let e = StartError {
            kind: StartErrorKind::Permission,
            message: "exec: \"/x\": permission denied".into(),
        };
        e.write(dir.path()).unwrap();
        assert_eq!(StartError::read(dir.path()).unwrap(), Some(e));
    }
}
