use berth_errors::HasKind;
use berth_types::ErrorKind;

/// Errors of the network domain.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network store")]
    Store(#[source] anyhow::Error),
}

impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::Store(_) => ErrorKind::Internal,
        }
    }
}
