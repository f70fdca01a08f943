//! One mapping from [`ErrorKind`] to gRPC and to the Docker API's HTTP status (moby's
//! `httpstatus.FromError`). The kind rides in the `x-error-kind` metadata key so that classes
//! with no gRPC code of their own (Conflict, NotModified) survive the hop between services.

use berth_types::ErrorKind;
use http::StatusCode;
use tonic::{Code, Status, metadata::MetadataValue};

/// The gRPC metadata key that carries the [`ErrorKind`] name.
pub const KIND_KEY: &str = "x-error-kind";

/// Implemented by every domain error: which class it belongs to.
pub trait HasKind {
    fn kind(&self) -> ErrorKind;
}

pub fn grpc_code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::Conflict | ErrorKind::NotModified => Code::FailedPrecondition,
        ErrorKind::AlreadyExists => Code::AlreadyExists,
        ErrorKind::Unauthorized => Code::Unauthenticated,
        ErrorKind::Forbidden => Code::PermissionDenied,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::NotImplemented => Code::Unimplemented,
        ErrorKind::Internal => Code::Internal,
    }
}

pub fn http_status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::InvalidArgument => StatusCode::BAD_REQUEST,
        ErrorKind::Conflict | ErrorKind::AlreadyExists => StatusCode::CONFLICT,
        ErrorKind::NotModified => StatusCode::NOT_MODIFIED,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Forbidden => StatusCode::FORBIDDEN,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Builds the `Status` a service returns: the code for the kind, the message, and the kind itself.
pub fn to_status(kind: ErrorKind, message: impl Into<String>) -> Status {
    let mut status = Status::new(grpc_code(kind), message);
    status
        .metadata_mut()
        .insert(KIND_KEY, MetadataValue::from_static(kind.as_str()));
    status
}

/// Converts any domain error into a `Status`.
pub fn status_from<E: HasKind + std::fmt::Display>(err: &E) -> Status {
    to_status(err.kind(), err.to_string())
}

/// The gRPC reply for a domain result: the value, or the error as a `Status` with its kind.
pub fn respond<T, E: HasKind + std::fmt::Display>(
    result: Result<T, E>,
) -> Result<tonic::Response<T>, Status> {
    result
        .map(tonic::Response::new)
        .map_err(|e| status_from(&e))
}

/// Recovers the kind from a `Status` received from another service. Falls back to the gRPC code
/// when the peer did not send the metadata (a transport error, for instance).
pub fn kind_of(status: &Status) -> ErrorKind {
    if let Some(kind) = status
        .metadata()
        .get(KIND_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorKind::parse)
    {
        return kind;
    }
    match status.code() {
        Code::NotFound => ErrorKind::NotFound,
        Code::InvalidArgument | Code::OutOfRange => ErrorKind::InvalidArgument,
        Code::FailedPrecondition | Code::Aborted => ErrorKind::Conflict,
        Code::AlreadyExists => ErrorKind::AlreadyExists,
        Code::Unauthenticated => ErrorKind::Unauthorized,
        Code::PermissionDenied => ErrorKind::Forbidden,
        // Without the kind, Unknown is tonic's own: the connection to the service broke
        // mid-call (it was killed or restarted), so the service did not answer.
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Unknown => {
            ErrorKind::Unavailable
        }
        Code::Unimplemented => ErrorKind::NotImplemented,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let table = [
            (ErrorKind::NotFound, Code::NotFound, 404),
            (ErrorKind::InvalidArgument, Code::InvalidArgument, 400),
            (ErrorKind::Conflict, Code::FailedPrecondition, 409),
            (ErrorKind::AlreadyExists, Code::AlreadyExists, 409),
            (ErrorKind::NotModified, Code::FailedPrecondition, 304),
            (ErrorKind::Unauthorized, Code::Unauthenticated, 401),
            (ErrorKind::Forbidden, Code::PermissionDenied, 403),
            (ErrorKind::Unavailable, Code::Unavailable, 503),
            (ErrorKind::NotImplemented, Code::Unimplemented, 501),
            (ErrorKind::Internal, Code::Internal, 500),
        ];
        assert_eq!(table.len(), ErrorKind::ALL.len());
        for (kind, code, http) in table {
            assert_eq!(grpc_code(kind), code, "{kind}");
            assert_eq!(http_status(kind).as_u16(), http, "{kind}");
            let status = to_status(kind, "boom");
            assert_eq!(kind_of(&status), kind, "kind survives the hop: {kind}");
            assert_eq!(status.message(), "boom");
        }
    }

    #[test]
    fn kind_falls_back_to_code() {
        assert_eq!(
            kind_of(&Status::unavailable("down")),
            ErrorKind::Unavailable
        );
        assert_eq!(kind_of(&Status::not_found("x")), ErrorKind::NotFound);
        assert_eq!(kind_of(&Status::internal("x")), ErrorKind::Internal);
        // tonic's status for a connection that broke mid-call: the service is not there.
        assert_eq!(
            kind_of(&Status::unknown("transport error")),
            ErrorKind::Unavailable
        );
    }
}
