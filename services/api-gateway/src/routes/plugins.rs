//! Plugins, which Berth does not have: the list is empty, every named plugin is one that does
//! not exist (dockerd's 404 `plugin "x" not found`, plugin/errors.go), and installing or
//! creating one is refused by name. Names may contain `/` and `:` (moby routes
//! `/plugins/{name:.*}/...`), so `/plugins/{*rest}` is matched on its suffix.

use std::collections::HashMap;

use axum::{
    Router,
    body::Body,
    extract::{Path, Query},
    http::StatusCode,
    response::Response,
    routing::{get, post},
};
use berth_types::{ErrorKind, Filters};
use futures::StreamExt;

use crate::{
    error::{ApiError, json_response},
    state::AppState,
};

/// The filters `GET /plugins` accepts (moby's `acceptedPluginFilterTags`).
const ACCEPTED_FILTERS: &[&str] = &["enabled", "capability"];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plugins", get(list))
        .route("/plugins/privileges", get(privileges))
        .route("/plugins/pull", post(pull))
        .route("/plugins/create", post(create))
        .route(
            "/plugins/{*rest}",
            get(get_suffix).post(post_suffix).delete(remove),
        )
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("plugin {name:?} not found"))
}

fn page_not_found() -> ApiError {
    ApiError::not_found("page not found")
}

fn unsupported(what: &str) -> ApiError {
    ApiError::new(
        ErrorKind::NotImplemented,
        format!("plugins are not supported by Berth: cannot {what}"),
    )
}

/// `GET /plugins?filters=`: none.
async fn list(Query(q): Query<HashMap<String, String>>) -> Result<Response, ApiError> {
    let f = Filters::parse(q.get("filters").map(String::as_str).unwrap_or_default())?;
    f.validate(ACCEPTED_FILTERS)?;
    Ok(json_response(StatusCode::OK, &serde_json::json!([])))
}

fn remote(q: &HashMap<String, String>) -> &str {
    q.get("remote").map(String::as_str).unwrap_or_default()
}

/// `GET /plugins/privileges?remote=`: the first call of `docker plugin install`.
async fn privileges(Query(q): Query<HashMap<String, String>>) -> ApiError {
    unsupported(&format!("install {}", remote(&q)))
}

/// `POST /plugins/pull?remote=&name=`.
async fn pull(Query(q): Query<HashMap<String, String>>) -> ApiError {
    unsupported(&format!("install {}", remote(&q)))
}

/// `POST /plugins/create?name=`: the body (the plugin's context) is read to its end first, so
/// that the client gets the answer rather than a broken pipe.
async fn create(Query(q): Query<HashMap<String, String>>, body: Body) -> ApiError {
    let mut data = body.into_data_stream();
    while let Some(Ok(_)) = data.next().await {}
    let name = q.get("name").map(String::as_str).unwrap_or_default();
    unsupported(&format!("create {name}"))
}

/// `GET /plugins/{name}/json`.
async fn get_suffix(Path(rest): Path<String>) -> ApiError {
    match rest.strip_suffix("/json") {
        Some(name) => not_found(name),
        None => page_not_found(),
    }
}

/// `POST /plugins/{name}/{enable,disable,push,upgrade,set}`.
async fn post_suffix(Path(rest): Path<String>) -> ApiError {
    let name = ["/enable", "/disable", "/push", "/upgrade", "/set"]
        .iter()
        .find_map(|s| rest.strip_suffix(s));
    match name {
        Some(name) => not_found(name),
        None => page_not_found(),
    }
}

/// `DELETE /plugins/{name}`.
async fn remove(Path(rest): Path<String>) -> ApiError {
    not_found(&rest)
}
