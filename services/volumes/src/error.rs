use berth_errors::HasKind;
use berth_types::ErrorKind;

/// Errors of the volumes domain.
#[derive(Debug, thiserror::Error)]
pub enum VolumesError {
    #[error("volume store")]
    Store(#[source] anyhow::Error),
    #[error("measuring {path}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl HasKind for VolumesError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumesError::Store(_) | VolumesError::Io { .. } => ErrorKind::Internal,
        }
    }
}
