//! Docker-style errors: `{"message": ...}` with `Content-Type: application/json` exactly, and
//! the status code from the error's kind (one mapping, in berth-errors).

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use berth_types::ErrorKind;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ApiError {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorKind::NotFound, message)
    }

    /// An error from a backend service, with its kind carried across gRPC.
    pub fn from_status(status: &tonic::Status) -> ApiError {
        let kind = berth_errors::kind_of(status);
        let message = match kind {
            ErrorKind::Unavailable => format!("service unavailable: {}", status.message()),
            _ => status.message().to_owned(),
        };
        ApiError::new(kind, message)
    }
}

/// A JSON response with the exact content type the Docker clients test for.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    json_response_sized(status, body, 128)
}

/// [`json_response`] written into a buffer of `capacity` bytes to start with: a large body
/// (`docker ps -a` of a thousand containers is some 700 KB) is not copied as it grows.
pub fn json_response_sized(
    status: StatusCode,
    body: &impl serde::Serialize,
    capacity: usize,
) -> Response {
    let mut bytes = Vec::with_capacity(capacity);
    if serde_json::to_writer(&mut bytes, body).is_err() {
        bytes = b"{}".to_vec();
    }
    let mut res = (status, bytes).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

impl From<berth_types::InvalidFilter> for ApiError {
    fn from(e: berth_types::InvalidFilter) -> ApiError {
        ApiError::invalid(e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = berth_errors::http_status(self.kind);
        if status.is_server_error() {
            tracing::error!(kind = %self.kind, message = %self.message, "request failed");
        }
        if status == StatusCode::NOT_MODIFIED {
            return status.into_response();
        }
        json_response(status, &serde_json::json!({ "message": self.message }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_and_content_type() {
        let res = ApiError::not_found("No such container: x").into_response();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], br#"{"message":"No such container: x"}"#);
    }

    #[test]
    fn not_modified_has_no_body() {
        let res = ApiError::new(ErrorKind::NotModified, "").into_response();
        assert_eq!(res.status(), StatusCode::NOT_MODIFIED);
        assert!(!res.headers().contains_key(header::CONTENT_TYPE));
    }

    #[test]
    fn unavailable_backend() {
        let e = ApiError::from_status(&tonic::Status::unavailable("connection refused"));
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(e.message.contains("connection refused"));
    }
}
