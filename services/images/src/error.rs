use berth_errors::HasKind;
use berth_types::ErrorKind;

/// Errors of the images domain.
#[derive(Debug, thiserror::Error)]
pub enum ImagesError {
    #[error("image store")]
    Store(#[source] anyhow::Error),
    #[error("reading {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for ImagesError {
    fn kind(&self) -> ErrorKind {
        match self {
            ImagesError::Store(_) | ImagesError::Io { .. } => ErrorKind::Internal,
        }
    }
}
