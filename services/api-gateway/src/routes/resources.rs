//! What keeps containers in their lane and shows them: `GET /containers/{id}/stats`,
//! `POST /containers/{id}/pause` and `/unpause`, `POST /containers/{id}/update`.

use std::collections::HashMap;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use berth_proto::runtime::v1 as pb;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    docker,
    error::{ApiError, json_response},
    routes::{
        containers::{check_json, status},
        images::bool_param,
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/stats", get(stats))
        .route("/containers/{id}/pause", post(pause))
        .route("/containers/{id}/unpause", post(unpause))
        .route("/containers/{id}/update", post(update))
}

type Q = Query<HashMap<String, String>>;

/// `GET /containers/{id}/stats?stream=&one-shot=`: one JSON object per line, a second apart
/// when streamed.
async fn stats(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    // BoolValueOrDefault: absent or empty is the default (streamed).
    let stream = match q.get("stream").map(|s| s.trim()) {
        None | Some("") => true,
        Some(_) => bool_param(&q, "stream"),
    };
    let one_shot = bool_param(&q, "one-shot");
    if stream && one_shot {
        return Err(ApiError::invalid(
            "cannot have stream=true and one-shot=true",
        ));
    }
    let samples = st
        .containers
        .stats(pb::StatsRequest {
            id,
            stream,
            one_shot,
        })
        .await
        .map_err(|e| status(&e))?;
    let body = samples.map(|r| match r {
        Ok(s) => {
            let mut line = serde_json::to_vec(&docker::stats::render(&s)).unwrap_or_default();
            line.push(b'\n');
            Ok(Bytes::from(line))
        }
        Err(e) => Err(std::io::Error::other(e.message().to_owned())),
    });
    let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

async fn pause(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    st.containers.pause(id).await.map_err(|e| status(&e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn unpause(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    st.containers.unpause(id).await.map_err(|e| status(&e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /containers/{id}/update`: 200 `{"Warnings": [...]}` (null when none, as dockerd).
async fn update(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_json(&headers, &body)?;
    let config: Value = if body.is_empty() {
        json!({})
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?
    };
    let req = docker::update::parse(id, &config)?;
    let r = st.containers.update(req).await.map_err(|e| status(&e))?;
    let warnings = if r.warnings.is_empty() {
        Value::Null
    } else {
        json!(r.warnings)
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "Warnings": warnings }),
    ))
}
