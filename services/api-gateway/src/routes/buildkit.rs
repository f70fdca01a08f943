//! BuildKit's endpoints, `POST /session` and `POST /grpc`: dockerd upgrades these to HTTP/2
//! for BuildKit. Berth builds with the classic builder only (`/_ping` says
//! `Builder-Version: 1`), so they are refused with a message that says so.

use axum::{Router, routing::post};
use berth_types::ErrorKind;

use crate::{error::ApiError, state::AppState};

/// The answer of both endpoints.
pub const NO_BUILDKIT: &str = "BuildKit sessions are not supported by Berth: it builds with the classic builder only (DOCKER_BUILDKIT=0)";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/session", post(refuse))
        .route("/grpc", post(refuse))
}

async fn refuse() -> ApiError {
    ApiError::new(ErrorKind::NotImplemented, NO_BUILDKIT)
}
