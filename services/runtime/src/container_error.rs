//! Errors of the container calls.

use berth_errors::HasKind;
use berth_types::ErrorKind;

use crate::RuntimeError;

/// Errors of the container calls: Docker's class and exact message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ContainerError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A Docker-visible error with its class and exact message.
    #[error("{message}")]
    Api { kind: ErrorKind, message: String },
    #[error("{0:#}")]
    Internal(anyhow::Error),
}

impl ContainerError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> ContainerError {
        ContainerError::Api {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn not_found(message: impl Into<String>) -> ContainerError {
        ContainerError::new(ErrorKind::NotFound, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> ContainerError {
        ContainerError::new(ErrorKind::InvalidArgument, message)
    }

    pub(crate) fn conflict(message: impl Into<String>) -> ContainerError {
        ContainerError::new(ErrorKind::Conflict, message)
    }

    /// An error answered by another service, keeping its class and message.
    pub(crate) fn upstream(status: &tonic::Status) -> ContainerError {
        ContainerError::new(berth_errors::kind_of(status), status.message())
    }

    /// An error answered by a shim, or the failure to reach it.
    pub(crate) fn shim(e: &berth_shim_proto::CallError) -> ContainerError {
        use berth_shim_proto::Code;
        let kind = match e.code() {
            Code::NotFound => ErrorKind::NotFound,
            Code::FailedPrecondition => ErrorKind::Conflict,
            Code::InvalidArgument => ErrorKind::InvalidArgument,
            Code::Unavailable => ErrorKind::Unavailable,
            Code::Internal => ErrorKind::Internal,
        };
        ContainerError::new(kind, e.message())
    }
}

impl From<anyhow::Error> for ContainerError {
    fn from(e: anyhow::Error) -> ContainerError {
        ContainerError::Internal(e)
    }
}

impl From<std::io::Error> for ContainerError {
    fn from(e: std::io::Error) -> ContainerError {
        ContainerError::Internal(e.into())
    }
}

impl HasKind for ContainerError {
    fn kind(&self) -> ErrorKind {
        match self {
            ContainerError::Runtime(e) => e.kind(),
            ContainerError::Internal(_) => ErrorKind::Internal,
            ContainerError::Api { kind, .. } => *kind,
        }
    }
}
