use berth_errors::HasKind;
use berth_types::ErrorKind;

/// Errors of the network domain.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("network store")]
    Store(#[source] anyhow::Error),
    /// A client error of the given kind, with Docker's message.
    #[error("{1}")]
    Client(ErrorKind, String),
    /// The kernel refused (netlink, nft).
    #[error("{0:#}")]
    Kernel(anyhow::Error),
}

impl NetworkError {
    pub(crate) fn not_found(msg: impl Into<String>) -> NetworkError {
        NetworkError::Client(ErrorKind::NotFound, msg.into())
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> NetworkError {
        NetworkError::Client(ErrorKind::InvalidArgument, msg.into())
    }

    pub(crate) fn forbidden(msg: impl Into<String>) -> NetworkError {
        NetworkError::Client(ErrorKind::Forbidden, msg.into())
    }

    pub(crate) fn conflict(msg: impl Into<String>) -> NetworkError {
        NetworkError::Client(ErrorKind::Conflict, msg.into())
    }
}

impl HasKind for NetworkError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetworkError::Store(_) | NetworkError::Kernel(_) => ErrorKind::Internal,
            NetworkError::Client(k, _) => *k,
        }
    }
}
