//! Swarm mode, which Berth does not have: every `/swarm`, `/nodes`, `/services`, `/tasks`,
//! `/secrets` and `/configs` route answers as dockerd does on a node that is in no swarm
//! (daemon/cluster/cluster.go `errNoManager`, swarm.go `Leave`): 503 with its message.
//! docker-py counts on that: `Swarm()` and `leave_swarm(force=True)` take a 503 as "no swarm".

use std::collections::HashMap;

use axum::{
    Router,
    extract::Query,
    routing::{get, post},
};
use berth_types::ErrorKind;

use crate::{error::ApiError, routes::images::bool_param, state::AppState};

/// dockerd's answer to a cluster call on a node that is in no swarm.
pub const NOT_A_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";

/// dockerd's answer to `POST /swarm/leave` on a node that is in no swarm.
pub const NOT_IN_A_SWARM: &str = "This node is not part of a swarm";

/// Berth's answer to `docker swarm init` and `docker swarm join`, which dockerd would carry out.
pub const NO_SWARM_MODE: &str = "swarm mode is not supported by Berth";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/swarm", get(not_a_manager))
        .route("/swarm/init", post(no_swarm_mode))
        .route("/swarm/join", post(no_swarm_mode))
        .route("/swarm/leave", post(leave))
        .route("/swarm/unlockkey", get(not_a_manager))
        .route("/swarm/update", post(not_a_manager))
        .route("/swarm/unlock", post(not_a_manager))
        .route("/nodes", get(not_a_manager))
        .route("/nodes/{id}", get(not_a_manager).delete(not_a_manager))
        .route("/nodes/{id}/update", post(not_a_manager))
        .route("/services", get(not_a_manager))
        .route("/services/create", post(not_a_manager))
        .route("/services/{id}", get(not_a_manager).delete(not_a_manager))
        .route("/services/{id}/update", post(not_a_manager))
        .route("/services/{id}/logs", get(logs))
        .route("/tasks", get(not_a_manager))
        .route("/tasks/{id}", get(not_a_manager))
        .route("/tasks/{id}/logs", get(logs))
        .route("/secrets", get(not_a_manager))
        .route("/secrets/create", post(not_a_manager))
        .route("/secrets/{id}", get(not_a_manager).delete(not_a_manager))
        .route("/secrets/{id}/update", post(not_a_manager))
        .route("/configs", get(not_a_manager))
        .route("/configs/create", post(not_a_manager))
        .route("/configs/{id}", get(not_a_manager).delete(not_a_manager))
        .route("/configs/{id}/update", post(not_a_manager))
}

fn unavailable(message: &str) -> ApiError {
    ApiError::new(ErrorKind::Unavailable, message)
}

async fn not_a_manager() -> ApiError {
    unavailable(NOT_A_MANAGER)
}

async fn leave() -> ApiError {
    unavailable(NOT_IN_A_SWARM)
}

async fn no_swarm_mode() -> ApiError {
    ApiError::new(ErrorKind::NotImplemented, NO_SWARM_MODE)
}

/// `GET /services/{id}/logs`, `GET /tasks/{id}/logs`: the stream check comes first, as in
/// moby's `swarmLogs`.
async fn logs(Query(q): Query<HashMap<String, String>>) -> ApiError {
    if !bool_param(&q, "stdout") && !bool_param(&q, "stderr") {
        return ApiError::invalid("Bad parameters: you must choose at least one stream");
    }
    unavailable(NOT_A_MANAGER)
}
