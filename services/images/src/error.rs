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
    pub(crate) fn io(path: &Path, source: std::io::Error) -> ImagesError {
        ImagesError::Io {
            path: path.display().to_string(),
            source,
        }
    }

    pub(crate) fn store(e: impl Into<anyhow::Error>) -> ImagesError {
        ImagesError::Store(e.into())
    }
}

impl HasKind for ImagesError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImagesError::Store(_) | ImagesError::Io { .. } | ImagesError::Verify(_) => {
                ErrorKind::Internal
            }
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
