//! Image endpoints: `/images/...` and `/auth`. Names may contain `/` and `:`, so the routes
//! under `/images/{*rest}` are matched on their suffix, as moby does.

use std::collections::HashMap;

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use berth_proto::images::v1 as pb;
use serde_json::{Value, json};

use crate::{
    api_version::ApiVersion,
    docker::{self, image_filters},
    error::{ApiError, json_response},
    jsonmessage, registry_auth,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/images/create", post(create))
        .route("/images/json", get(list))
        .route("/images/prune", post(prune))
        .route(
            "/images/{*rest}",
            get(get_suffix).post(post_suffix).delete(remove),
        )
        .route("/auth", post(auth))
}

type Q = Query<HashMap<String, String>>;

/// moby's BoolValue: "", "0", "no", "false", "none" are false; anything else is true.
pub fn bool_param(q: &HashMap<String, String>, key: &str) -> bool {
    q.get(key).is_some_and(|v| {
        !matches!(
            v.trim().to_lowercase().as_str(),
            "" | "0" | "no" | "false" | "none"
        )
    })
}

fn status(e: &tonic::Status) -> ApiError {
    ApiError::from_status(e)
}

/// `POST /images/create?fromImage=&tag=&platform=`: docker pull.
async fn create(
    State(st): State<AppState>,
    Query(q): Q,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let Some(from) = q.get("fromImage").filter(|s| !s.is_empty()) else {
        return super::archive::import(st, &uri, body).await;
    };
    let tag = q.get("tag").map(String::as_str).unwrap_or_default();
    let reference = match tag {
        "" => from.clone(),
        t if t.starts_with("sha256:") => format!("{from}@{t}"),
        t => format!("{from}:{t}"),
    };
    let auth = registry_auth::decode(headers.get("X-Registry-Auth").and_then(|v| v.to_str().ok()))?;
    let stream = st
        .images
        .pull(pb::PullRequest {
            reference,
            platform: q.get("platform").cloned().unwrap_or_default(),
            auth: Some(auth),
            all_tags: tag.is_empty(),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(jsonmessage::respond(stream).await)
}

/// `GET /images/json`.
async fn list(
    State(st): State<AppState>,
    Query(q): Q,
    version: Option<axum::Extension<ApiVersion>>,
) -> Result<Response, ApiError> {
    let res = st
        .images
        .list(pb::ListRequest {
            all: bool_param(&q, "all"),
            filters: Some(image_filters::list(
                q.get("filters").map(String::as_str).unwrap_or_default(),
            )?),
            digests: bool_param(&q, "digests"),
        })
        .await
        .map_err(|e| status(&e))?;
    let old = version.is_some_and(|v| v.0 < "1.44".parse().expect("version"));
    let body: Vec<Value> = res
        .images
        .iter()
        .map(|i| {
            let mut v = crate::df::image(i);
            if old {
                v["VirtualSize"] = json!(i.size);
            }
            v
        })
        .collect();
    Ok(json_response(StatusCode::OK, &body))
}

/// `GET /images/{name}/json` and `/images/{name}/history`.
async fn get_suffix(
    State(st): State<AppState>,
    Path(rest): Path<String>,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/json") {
        let res = st
            .images
            .inspect(name.to_owned())
            .await
            .map_err(|e| status(&e))?;
        let image = res.image.ok_or_else(|| {
            ApiError::new(
                berth_types::ErrorKind::Internal,
                "the images service sent no image",
            )
        })?;
        return Ok(json_response(
            StatusCode::OK,
            &docker::image::inspect(&image),
        ));
    }
    if let Some(name) = rest.strip_suffix("/get") {
        return super::archive::save(st, vec![name.to_owned()]).await;
    }
    if let Some(name) = rest.strip_suffix("/history") {
        let res = st
            .images
            .history(name.to_owned())
            .await
            .map_err(|e| status(&e))?;
        let body: Vec<Value> = res
            .entries
            .iter()
            .map(|h| {
                json!({
                    "Id": h.id, "Created": h.created, "CreatedBy": h.created_by,
                    "Tags": if h.tags.is_empty() { Value::Null } else { json!(h.tags) },
                    "Size": h.size, "Comment": h.comment,
                })
            })
            .collect();
        return Ok(json_response(StatusCode::OK, &body));
    }
    Err(ApiError::not_found("page not found"))
}

/// `POST /images/{name}/tag?repo=&tag=`.
async fn post_suffix(
    State(st): State<AppState>,
    Path(rest): Path<String>,
    Query(q): Q,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(name) = rest.strip_suffix("/push") {
        return super::archive::push(st, name, &q, &headers).await;
    }
    if let Some(name) = rest.strip_suffix("/tag") {
        st.images
            .tag(pb::TagRequest {
                source: name.to_owned(),
                repo: q.get("repo").cloned().unwrap_or_default(),
                tag: q.get("tag").cloned().unwrap_or_default(),
            })
            .await
            .map_err(|e| status(&e))?;
        return Ok(StatusCode::CREATED.into_response());
    }
    Err(ApiError::not_found("page not found"))
}

fn deleted(items: &[pb::Deleted]) -> Vec<Value> {
    items
        .iter()
        .map(|d| {
            if d.untagged.is_empty() {
                json!({"Deleted": d.deleted})
            } else {
                json!({"Untagged": d.untagged})
            }
        })
        .collect()
}

/// `DELETE /images/{name}?force=&noprune=`.
async fn remove(
    State(st): State<AppState>,
    Path(name): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let res = st
        .images
        .remove(pb::RemoveRequest {
            name,
            force: bool_param(&q, "force"),
            no_prune: bool_param(&q, "noprune"),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(StatusCode::OK, &deleted(&res.items)))
}

/// `POST /images/prune?filters=`.
async fn prune(State(st): State<AppState>, Query(q): Q) -> Result<Response, ApiError> {
    let filters = image_filters::prune(q.get("filters").map(String::as_str).unwrap_or_default())?;
    let res = st.images.prune(filters).await.map_err(|e| status(&e))?;
    let items = deleted(&res.items);
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "ImagesDeleted": if items.is_empty() { Value::Null } else { json!(items) },
            "SpaceReclaimed": res.space_reclaimed,
        }),
    ))
}

/// `POST /auth`: docker login.
async fn auth(State(st): State<AppState>, body: axum::body::Bytes) -> Result<Response, ApiError> {
    let cfg: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    let cfg = registry_auth::parse(cfg).map_err(ApiError::invalid)?;
    let res = st.images.login(cfg.into()).await.map_err(|e| status(&e))?;
    Ok(json_response(
        StatusCode::OK,
        &json!({"Status": res.status, "IdentityToken": res.identity_token}),
    ))
}
