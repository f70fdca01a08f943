//! Volume endpoints: `/volumes`, `/volumes/{name}`, create, remove, prune. The volumes service
//! answers with typed records; Docker's JSON is made in `docker::volume`.

use std::collections::HashMap;

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Value, json};

use crate::{
    api_version::ApiVersion,
    docker::volume,
    error::{ApiError, json_response},
    routes::containers::check_json,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/volumes", get(list))
        .route("/volumes/create", post(create))
        .route("/volumes/prune", post(prune))
        .route("/volumes/{name}", get(inspect).delete(remove).put(update))
}

type Q = Query<HashMap<String, String>>;

fn status(e: &tonic::Status) -> ApiError {
    ApiError::from_status(e)
}

/// `GET /volumes?filters=`.
async fn list(State(st): State<AppState>, Query(q): Q) -> Result<Response, ApiError> {
    let filters = volume::list_filters(q.get("filters").map(String::as_str).unwrap_or(""))?;
    let vols = st
        .volumes
        .list_volumes(filters)
        .await
        .map_err(|e| status(&e))?;
    let list: Vec<Value> = vols.iter().map(volume::inspect).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"Volumes": list, "Warnings": null}),
    ))
}

/// `GET /volumes/{name}`.
async fn inspect(
    State(st): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let v = st
        .volumes
        .inspect_volume(name)
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(StatusCode::OK, &volume::inspect(&v)))
}

/// `POST /volumes/create`.
async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: Value = if body.is_empty() {
        json!({})
    } else {
        check_json(&headers, &body)?;
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?
    };
    let req = volume::create_request(body)?;
    let v = st
        .volumes
        .create_volume(req)
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(StatusCode::CREATED, &volume::inspect(&v)))
}

/// `DELETE /volumes/{name}?force=`.
async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let force = q
        .get("force")
        .is_some_and(|v| matches!(v.as_str(), "1" | "true" | "True"));
    st.volumes
        .remove_volume(name, force)
        .await
        .map_err(|e| status(&e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /volumes/prune?filters=`.
async fn prune(
    State(st): State<AppState>,
    Query(q): Q,
    version: Option<axum::Extension<ApiVersion>>,
) -> Result<Response, ApiError> {
    let (filters, all) = volume::prune_filters(q.get("filters").map(String::as_str).unwrap_or(""))?;
    // Before API 1.42 prune took named volumes too.
    let version = version.map_or(crate::api_version::MAX, |v| v.0);
    let all = all
        || version
            < ApiVersion {
                major: 1,
                minor: 42,
            };
    let (deleted, reclaimed) = st
        .volumes
        .prune_volumes(filters, all)
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

/// `PUT /volumes/{name}`: only cluster volumes can be updated.
async fn update() -> ApiError {
    ApiError::invalid("volume update is only for cluster volumes, which Berth does not have")
}
