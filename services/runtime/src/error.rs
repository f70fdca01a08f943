use berth_errors::HasKind;
use berth_types::ErrorKind;

/// Errors of the runtime's domain.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("container store")]
    Store(#[source] anyhow::Error),
}

impl HasKind for RuntimeError {
    fn kind(&self) -> ErrorKind {
        match self {
            RuntimeError::Store(_) => ErrorKind::Internal,
        }
    }
}
