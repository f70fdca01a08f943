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
    /// A client error of the given kind, with Docker's message.
    #[error("{1}")]
    Client(ErrorKind, String),
    /// The filesystem refused (a data directory).
    #[error("{0:#}")]
    Fs(anyhow::Error),
}

impl VolumesError {
    pub(crate) fn invalid(msg: impl Into<String>) -> VolumesError {
        VolumesError::Client(ErrorKind::InvalidArgument, msg.into())
    }

    pub(crate) fn not_found(name: &str) -> VolumesError {
        VolumesError::Client(ErrorKind::NotFound, format!("get {name}: no such volume"))
    }

    pub(crate) fn conflict(msg: impl Into<String>) -> VolumesError {
        VolumesError::Client(ErrorKind::Conflict, msg.into())
    }
}

impl From<anyhow::Error> for VolumesError {
    fn from(e: anyhow::Error) -> VolumesError {
        VolumesError::Store(e)
    }
}

impl HasKind for VolumesError {
    fn kind(&self) -> ErrorKind {
        match self {
            VolumesError::Store(_) | VolumesError::Io { .. } | VolumesError::Fs(_) => {
                ErrorKind::Internal
            }
            VolumesError::Client(k, _) => *k,
        }
    }
}
