//! The shim's errors, and the start error that tells the runtime which of Docker's exit codes
//! (127 not found, 126 cannot execute, 125 other) a failed start maps to (`StartError`, the
//! record of start-error.json, is `berth_bundle`'s, shared with the runtime).

use std::path::{Path, PathBuf};

use berth_bundle::BundleError;
pub use berth_bundle::{StartError, StartErrorKind};

#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    #[error("{}: {}", path.display(), source.go_text())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}: {reason}")]
    Config { path: PathBuf, reason: String },
    #[error("{what}: {}", source.go_text())]
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

    /// The full message with its causes (each once), for logs and start-error.json.
    pub fn chain(&self) -> String {
        let mut s = self.to_string();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(self);
        while let Some(e) = cur {
            let text = dyn_go_text(e);
            if !s.ends_with(&text) {
                s.push_str(": ");
                s.push_str(&text);
            }
            cur = e.source();
        }
        s
    }
}

/// An error's text as dockerd's (Go's) reads, which clients match: an errno is its lowercase
/// description alone (`no such file or directory`, `permission denied`), never Rust's
/// `No such file or directory (os error 2)` nor nix's `ENOENT: No such file or directory`.
/// The docker CLI picks `docker run`'s exit code from these words (127 for "no such file or
/// directory", 126 for "permission denied" and "is a directory").
pub trait GoText {
    fn go_text(&self) -> String;
}

impl GoText for std::io::Error {
    fn go_text(&self) -> String {
        match self.raw_os_error() {
            Some(n) => errno_text(nix::errno::Errno::from_raw(n)),
            None => self.to_string(),
        }
    }
}

impl GoText for nix::Error {
    fn go_text(&self) -> String {
        errno_text(*self)
    }
}

impl GoText for caps::errors::CapsError {
    fn go_text(&self) -> String {
        self.to_string()
    }
}

impl GoText for String {
    fn go_text(&self) -> String {
        self.clone()
    }
}

impl GoText for &str {
    fn go_text(&self) -> String {
        (*self).to_owned()
    }
}

impl GoText for berth_cgroup::Error {
    fn go_text(&self) -> String {
        self.to_string()
    }
}

/// Go's text of an errno: the C library's description with a lowercase first letter.
pub fn errno_text(e: nix::errno::Errno) -> String {
    let desc = e.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("errno {}", e as i32),
    }
}

fn dyn_go_text(e: &(dyn std::error::Error + 'static)) -> String {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
        io.go_text()
    } else if let Some(n) = e.downcast_ref::<nix::Error>() {
        n.go_text()
    } else {
        e.to_string()
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

    /// Errors read as dockerd's, with the words the docker CLI picks exit codes from.
    #[test]
    fn errors_read_as_go_does() {
        use nix::errno::Errno;
        let io = std::io::Error::from_raw_os_error(2);
        assert_eq!(io.go_text(), "no such file or directory");
        assert_eq!(Errno::EACCES.go_text(), "permission denied");
        assert_eq!(Errno::EISDIR.go_text(), "is a directory");
        assert_eq!(Errno::ENOTDIR.go_text(), "not a directory");
        let e = ShimError::io(Path::new("/x"), std::io::Error::from_raw_os_error(17));
        assert_eq!(e.chain(), "/x: file exists");
        let e = ShimError::sys("chdir /w", Errno::ENOTDIR);
        assert_eq!(e.chain(), "chdir /w: not a directory");
        assert!(!StartError::from(e).message.contains("os error"));
    }
}
