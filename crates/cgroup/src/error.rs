use std::path::{Path, PathBuf};

/// A cgroup file or directory that could not be read, written, made or removed.
#[derive(Debug, thiserror::Error)]
#[error("cgroup {path}: {reason}")]
pub struct Error {
    pub path: PathBuf,
    pub reason: String,
    /// The OS error, when there was one (EBUSY on a cgroup still holding processes).
    pub errno: Option<i32>,
}

impl Error {
    pub fn new(path: &Path, reason: impl std::fmt::Display) -> Error {
        Error {
            path: path.to_owned(),
            reason: reason.to_string(),
            errno: None,
        }
    }

    pub(crate) fn io(path: &Path, e: std::io::Error) -> Error {
        Error {
            path: path.to_owned(),
            errno: e.raw_os_error(),
            reason: e.to_string(),
        }
    }
}
