//! Network endpoints: `/networks`, `/networks/{id}`, create, remove, prune. The network service
//! answers with typed records; Docker's JSON is made in `docker::network`.

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

use berth_proto::runtime::v1 as runtime;

use crate::{
    docker::{endpoint, network},
    error::{ApiError, json_response},
    routes::containers::check_json,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

type Q = Query<HashMap<String, String>>;

fn status(e: &tonic::Status) -> ApiError {
    ApiError::from_status(e)
}

/// `GET /networks?filters=`.
async fn list(State(st): State<AppState>, Query(q): Q) -> Result<Response, ApiError> {
    let filters = network::list_filters(q.get("filters").map(String::as_str).unwrap_or(""))?;
    let nets = st
        .networks
        .list_networks(filters)
        .await
        .map_err(|e| status(&e))?;
    let body: Vec<Value> = nets.iter().map(|n| network::inspect(n, false)).collect();
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /networks/{id}?verbose=&scope=`.
async fn inspect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    if let Some(scope) = q.get("scope").filter(|s| !s.is_empty() && *s != "local") {
        return Err(ApiError::not_found(format!(
            "network {id} not found (scope {scope})"
        )));
    }
    let info = st
        .networks
        .inspect_network(id)
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(
        StatusCode::OK,
        &network::inspect(&info, true),
    ))
}

/// `POST /networks/create`.
async fn create(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_json(&headers, &body)?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    let req = network::create_request(body)?;
    let info = st
        .networks
        .create_network(req)
        .await
        .map_err(|e| status(&e))?;
    let id = info.network.map(|n| n.id).unwrap_or_default();
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": id, "Warning": ""}),
    ))
}

/// `DELETE /networks/{id}`.
async fn remove(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    st.networks
        .remove_network(id)
        .await
        .map_err(|e| status(&e))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /networks/prune?filters=`.
async fn prune(State(st): State<AppState>, Query(q): Q) -> Result<Response, ApiError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let filters = network::prune_filters(q.get("filters").map(String::as_str).unwrap_or(""), now)?;
    let deleted = st
        .networks
        .prune_networks(filters)
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({ "NetworksDeleted": deleted }),
    ))
}

/// `POST /networks/{id}/connect`: `{"Container": ..., "EndpointConfig": {...}}`.
async fn connect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_json(&headers, &body)?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    let body = network::attach_body(body)?;
    let endpoint = endpoint::spec(&id, &body.endpoint_config)?;
    st.containers
        .network_connect(runtime::ConnectRequest {
            id: body.container,
            endpoint: Some(endpoint),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(StatusCode::OK.into_response())
}

/// `POST /networks/{id}/disconnect`: `{"Container": ..., "Force": false}`.
async fn disconnect(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_json(&headers, &body)?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    let body = network::attach_body(body)?;
    st.containers
        .network_disconnect(runtime::DisconnectRequest {
            id: body.container,
            network: id,
            force: body.force,
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(StatusCode::OK.into_response())
}
