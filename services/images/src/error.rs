use std::path::Path;

use berth_errors::HasKind;
use berth_types::ErrorKind;

/// Errors of the images domain. Messages are what a Docker user reads after
/// `Error response from daemon:`.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error("image store")]
    Store(#[source] anyhow::Error),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Verify(String),
    /// The filesystem is down to the reserve Berth keeps free (`berth_service::FreeSpace`).
    #[error("{0}")]
    NoSpace(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Registry(String),
    #[error("{0}")]
    Unsupported(String),
    /// An error of another service (the runtime's, for RUN), its kind kept.
    #[error("{message}")]
    Remote { kind: ErrorKind, message: String },
}

impl ImagesError {
    /// The out-of-space error when `e` (or an error it wraps) is the disk running down to
    /// Berth's free-space reserve, else what `otherwise` makes of `e`.
    pub(crate) fn unless_full(
        e: std::io::Error,
        otherwise: impl FnOnce(std::io::Error) -> ImagesError,
    ) -> ImagesError {
        match berth_service::storage_full(&e) {
            Some(msg) => ImagesError::NoSpace(msg),
            None => otherwise(e),
        }
    }

    pub(crate) fn io(path: &Path, source: std::io::Error) -> ImagesError {
        Self::unless_full(source, |source| ImagesError::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// `e` as an invalid upload (`what` it was meant to be), unless the disk ran out of space
    /// while it was written.
    pub(crate) fn invalid_upload(what: &str, e: std::io::Error) -> ImagesError {
        Self::unless_full(e, |e| {
            ImagesError::InvalidArgument(format!("invalid {what}: {e}"))
        })
    }

    pub(crate) fn store(e: impl Into<anyhow::Error>) -> ImagesError {
        ImagesError::Store(e.into())
    }
}

impl HasKind for ImagesError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImagesError::Store(_)
            | ImagesError::Io { .. }
            | ImagesError::Verify(_)
            | ImagesError::NoSpace(_) => ErrorKind::Internal,
            ImagesError::NotFound(_) => ErrorKind::NotFound,
            ImagesError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            ImagesError::Conflict(_) => ErrorKind::Conflict,
            ImagesError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            ImagesError::Unauthorized(_) => ErrorKind::Unauthorized,
            ImagesError::Registry(_) => ErrorKind::Internal,
            ImagesError::Unsupported(_) => ErrorKind::NotImplemented,
            ImagesError::Remote { kind, .. } => *kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn full() -> io::Error {
        io::Error::new(io::ErrorKind::StorageFull, "no space left: 10 MiB reserve")
    }

    #[test]
    fn out_of_space_wins_over_each_fallback() {
        // Wrapped as a tar reader wraps the writer's error.
        let wrapped = || io::Error::other(full());
        for e in [
            ImagesError::io(Path::new("/x"), full()),
            ImagesError::invalid_upload("tar", wrapped()),
            ImagesError::unless_full(full(), |_| ImagesError::Verify("other".into())),
        ] {
            assert!(
                matches!(&e, ImagesError::NoSpace(m) if m.contains("reserve")),
                "{e:?}"
            );
        }
        let other = || io::Error::other("truncated");
        assert_eq!(
            ImagesError::io(Path::new("/x"), other()).to_string(),
            "/x: truncated"
        );
        let e = ImagesError::invalid_upload("tar", other());
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(e.to_string(), "invalid tar: truncated");
    }
}
