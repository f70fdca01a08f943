//! Container endpoints: create, start, wait, list, inspect, logs, kill, stop, restart,
//! rename, remove. The runtime service builds the Docker JSON; this layer maps parameters,
//! bodies and errors.

use std::collections::HashMap;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{delete, get, post},
};
use berth_proto::runtime::v1 as pb;
use berth_types::ErrorKind;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    error::{ApiError, json_response},
    routes::images::bool_param,
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}", delete(remove))
}

type Q = Query<HashMap<String, String>>;

fn status(e: &tonic::Status) -> ApiError {
    ApiError::from_status(e)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A JSON text built by the runtime, answered as is.
fn raw_json(text: String) -> Response {
    let mut res = (StatusCode::OK, text).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

/// moby's CheckForJSON: a body must be sent as application/json.
fn check_json(headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if body.is_empty() {
        return Ok(());
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let media = ct.split(';').next().unwrap_or_default().trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "unsupported Content-Type header ({ct}): must be 'application/json'"
        )))
    }
}

/// `POST /containers/create?name=`.
async fn create(
    State(st): State<AppState>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_json(&headers, &body)?;
    let config: Value = if body.is_empty() {
        return Err(ApiError::invalid("invalid JSON: EOF"));
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?
    };
    if !config.is_object() {
        return Err(ApiError::invalid("invalid JSON: not an object"));
    }
    let r = st
        .containers
        .create(pb::CreateRequest {
            name: q.get("name").cloned().unwrap_or_default(),
            body_json: config.to_string(),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": r.id, "Warnings": r.warnings}),
    ))
}

/// `GET /containers/json?all=&limit=&size=&filters=`.
async fn list(State(st): State<AppState>, Query(q): Q) -> Result<Response, ApiError> {
    let limit = match q.get("limit").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::invalid(format!("invalid limit: {l}")))?,
        None => 0,
    };
    let json = st
        .containers
        .list(pb::ListRequest {
            all: bool_param(&q, "all"),
            limit,
            filters: q.get("filters").cloned().unwrap_or_default(),
            size: bool_param(&q, "size"),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(raw_json(json))
}

async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let json = st.containers.inspect(id).await.map_err(|e| status(&e))?;
    Ok(raw_json(json))
}

async fn start(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    st.containers.start(id).await.map_err(|e| status(&e))?;
    Ok(no_content())
}

/// `POST /containers/{id}/wait?condition=`: the headers go out once the wait is registered,
/// the body when the condition is met.
async fn wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let mut stream = st
        .containers
        .wait(pb::WaitRequest {
            id,
            condition: q.get("condition").cloned().unwrap_or_default(),
        })
        .await
        .map_err(|e| status(&e))?;
    let body = async_stream_once(async move {
        let v = match stream.next().await {
            Some(Ok(r)) => json!({
                "StatusCode": r.status_code,
                "Error": if r.error.is_empty() { Value::Null } else { json!({"Message": r.error}) },
            }),
            Some(Err(e)) => json!({"StatusCode": -1, "Error": {"Message": e.message()}}),
            None => json!({"StatusCode": -1, "Error": {"Message": "the wait ended"}}),
        };
        let mut bytes = v.to_string().into_bytes();
        bytes.push(b'\n');
        bytes
    });
    let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// A body of one chunk produced by `fut`.
fn async_stream_once(
    fut: impl std::future::Future<Output = Vec<u8>> + Send + 'static,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::once(async move { Ok(Bytes::from(fut.await)) })
}

/// Docker's timestamps: seconds with an optional fraction (`1700000000.5`); RFC 3339 also.
fn parse_time(s: &str) -> Result<i64, ApiError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(0);
    }
    let bad = || ApiError::invalid(format!("invalid timestamp {s:?}"));
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t.unix_timestamp_nanos() as i64);
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    let mut nanos = 0i64;
    if !frac.is_empty() {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        nanos = digits.parse().map_err(|_| bad())?;
    }
    Ok(secs * 1_000_000_000 + nanos)
}

/// One frame of the multiplexed stream: `[stream, 0, 0, 0, size BE u32]` then the payload.
pub fn frame(stream: u8, data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(8 + data.len());
    out.push(stream);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    Bytes::from(out)
}

/// `POST /containers/{id}/attach`: checks the container, registers the attach with the
/// runtime (so that a start after the answer loses no output), then hijacks the connection
/// (`101`, `Upgrade: tcp`) and writes the output, multiplexed unless the container has a TTY,
/// until the process's output ends; then closes the connection.
async fn attach(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
    mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let json = st
        .containers
        .inspect(id.clone())
        .await
        .map_err(|e| status(&e))?;
    let info: Value = serde_json::from_str(&json).unwrap_or_default();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stream_wanted = bool_param(&q, "stream");
    let (stdout, stderr) = (bool_param(&q, "stdout"), bool_param(&q, "stderr"));
    let stream = if stream_wanted && (stdout || stderr) {
        Some(
            st.containers
                .attach(pb::AttachRequest {
                    id: info["Id"].as_str().unwrap_or(&id).to_owned(),
                    stdout,
                    stderr,
                })
                .await
                .map_err(|e| status(&e))?,
        )
    } else {
        None
    };
    let content_type = if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    };
    let encode = move |f: pb::AttachFrame| -> Bytes {
        if tty {
            Bytes::from(f.data)
        } else {
            frame(f.stream as u8, &f.data)
        }
    };
    let wants_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"));
    if !wants_upgrade {
        let body = futures::stream::iter(stream)
            .flatten()
            .map(move |r| match r {
                Ok(f) => Ok(encode(f)),
                Err(e) => Err(std::io::Error::other(e.message().to_owned())),
            });
        let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return Ok(res);
    }
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "attach: upgrade");
                return;
            }
        };
        let mut io = hyper_util::rt::TokioIo::new(upgraded);
        if let Some(mut stream) = stream {
            while let Some(item) = stream.next().await {
                let Ok(f) = item else { break };
                if io.write_all(&encode(f)).await.is_err() {
                    return;
                }
                let _ = io.flush().await;
            }
        }
        let _ = io.shutdown().await;
    });
    let mut res = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = res.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(res)
}

/// `GET /containers/{id}/logs`.
async fn logs(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let (stdout, stderr) = (bool_param(&q, "stdout"), bool_param(&q, "stderr"));
    if !stdout && !stderr {
        return Err(ApiError::invalid(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let req = pb::LogsRequest {
        id,
        stdout,
        stderr,
        follow: bool_param(&q, "follow"),
        tail: q.get("tail").cloned().unwrap_or_else(|| "all".to_owned()),
        since: parse_time(q.get("since").map(String::as_str).unwrap_or_default())?,
        until: parse_time(q.get("until").map(String::as_str).unwrap_or_default())?,
        timestamps: bool_param(&q, "timestamps"),
    };
    let stream = st.containers.logs(req).await.map_err(|e| status(&e))?;
    let body = stream.map(|r| match r {
        Ok(e) => Ok(frame(e.stream as u8, &e.data)),
        Err(e) => Err(std::io::Error::other(e.message().to_owned())),
    });
    let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.multiplexed-stream"),
    );
    Ok(res)
}

async fn kill(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    st.containers
        .kill(pb::KillRequest {
            id,
            signal: q.get("signal").cloned().unwrap_or_default(),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(no_content())
}

fn stop_request(id: String, q: &HashMap<String, String>) -> Result<pb::StopRequest, ApiError> {
    let timeout = match q.get("t").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(t) => Some(
            t.parse::<i32>()
                .map_err(|_| ApiError::invalid(format!("invalid value for t: {t}")))?,
        ),
        None => None,
    };
    Ok(pb::StopRequest {
        id,
        timeout,
        signal: q.get("signal").cloned().unwrap_or_default(),
    })
}

async fn stop(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    st.containers
        .stop(stop_request(id, &q)?)
        .await
        .map_err(|e| status(&e))?;
    Ok(no_content())
}

async fn restart(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    if let Err(e) = st.containers.stop(stop_request(id.clone(), &q)?).await {
        let e = status(&e);
        if e.kind != ErrorKind::NotModified {
            return Err(e);
        }
    }
    st.containers.start(id).await.map_err(|e| status(&e))?;
    Ok(no_content())
}

async fn rename(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    st.containers
        .rename(pb::RenameRequest {
            id,
            name: q.get("name").cloned().unwrap_or_default(),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(no_content())
}

async fn remove(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    st.containers
        .remove(pb::RemoveRequest {
            id,
            force: bool_param(&q, "force"),
            volumes: bool_param(&q, "v"),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(no_content())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_times() {
        assert_eq!(&frame(2, b"hi")[..], &[2, 0, 0, 0, 0, 0, 0, 2, b'h', b'i']);
        assert_eq!(parse_time("").unwrap(), 0);
        assert_eq!(parse_time("1.5").unwrap(), 1_500_000_000);
        assert_eq!(parse_time("10").unwrap(), 10_000_000_000);
        assert!(parse_time("x").is_err());
    }
}
