//! The container filesystem API: docker cp (`HEAD`/`GET`/`PUT /containers/{id}/archive`),
//! docker export (`GET /containers/{id}/export`), docker diff (`GET /containers/{id}/changes`)
//! and docker commit (`POST /commit`), as moby's `copy.go` and `container_routes.go` answer.

use std::collections::HashMap;

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{Path, Query, RawQuery, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use base64::Engine;
use berth_proto::runtime::v1 as pb;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    docker::{container::rfc3339, health::HealthConfig, keys::Schema},
    error::{ApiError, json_response},
    routes::{
        containers::{check_json, status},
        images::bool_param,
        pump::{Pump, body_bytes},
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/containers/{id}/archive",
            get(get_archive).head(head_archive).put(put_archive),
        )
        .route("/containers/{id}/export", get(export))
        .route("/containers/{id}/changes", get(changes))
        .route("/commit", post(commit))
}

type Q = Query<HashMap<String, String>>;

/// moby's `ArchiveFormValues`: the path is required.
fn path_param(q: &HashMap<String, String>) -> Result<String, ApiError> {
    match q.get("path") {
        Some(p) if !p.is_empty() => Ok(p.clone()),
        _ => Err(ApiError::invalid("bad parameter: path cannot be empty")),
    }
}

/// `X-Docker-Container-Path-Stat`: standard base64 of the PathStat JSON.
fn stat_header(s: &pb::PathStat) -> HeaderValue {
    let body = json!({
        "name": s.name,
        "size": s.size,
        "mode": s.mode,
        "mtime": rfc3339(s.mtime),
        "linkTarget": s.link_target,
    });
    let encoded = base64::engine::general_purpose::STANDARD.encode(body.to_string());
    HeaderValue::from_str(&encoded).unwrap_or_else(|_| HeaderValue::from_static(""))
}

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

async fn head_archive(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let path = path_param(&q)?;
    let s = st
        .containers
        .stat_path(pb::PathRequest { id, path })
        .await
        .map_err(|e| status(&e))?;
    let mut res = StatusCode::OK.into_response();
    res.headers_mut().insert(STAT_HEADER, stat_header(&s));
    Ok(res)
}

fn tar_body(
    stream: crate::backends::ArchiveStream,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    stream.map(|c| {
        c.map(|c| Bytes::from(c.data))
            .map_err(|s| std::io::Error::other(s.message().to_owned()))
    })
}

async fn get_archive(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let path = path_param(&q)?;
    let mut stream = st
        .containers
        .archive_path(pb::PathRequest { id, path })
        .await
        .map_err(|e| status(&e))?;
    // The first message carries the stat (or the error, before any header went out).
    let first = match stream.next().await {
        Some(Ok(c)) => c,
        Some(Err(e)) => return Err(status(&e)),
        None => {
            return Err(ApiError::from_status(&tonic::Status::internal(
                "no archive",
            )));
        }
    };
    let stat = first.stat.unwrap_or_default();
    let rest = futures::stream::iter([Ok(first.data)])
        .chain(stream.map(|c| c.map(|c| c.data)))
        .map(|c| {
            c.map(|d| pb::ArchiveChunk {
                stat: None,
                data: d,
            })
        });
    let mut res = (StatusCode::OK, Body::from_stream(tar_body(Box::pin(rest)))).into_response();
    res.headers_mut().insert(STAT_HEADER, stat_header(&stat));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(res)
}

/// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: the body is a tar.
async fn put_archive(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
    body: Body,
) -> Result<Response, ApiError> {
    let path = path_param(&q)?;
    let head = pb::ExtractChunk {
        options: Some(pb::ExtractOptions {
            id,
            path,
            // moby: refused only when the parameter is present and true.
            no_overwrite_dir_non_dir: bool_param(&q, "noOverwriteDirNonDir"),
            copy_uid_gid: bool_param(&q, "copyUIDGID"),
        }),
        data: Vec::new(),
        upload_error: String::new(),
    };
    let mut pump = Pump::start(
        body_bytes(body),
        head,
        |p| pb::ExtractChunk {
            options: None,
            data: p.data.into(),
            upload_error: p.upload_error,
        },
        None,
    );
    match pump
        .call(|upload| st.containers.extract_to_dir(upload))
        .await
    {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(e) => {
            pump.finish().await;
            Err(status(&e))
        }
    }
}

async fn export(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let stream = st.containers.export(id).await.map_err(|e| status(&e))?;
    let mut res = (StatusCode::OK, Body::from_stream(tar_body(stream))).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-tar"),
    );
    Ok(res)
}

async fn changes(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let r = st.containers.changes(id).await.map_err(|e| status(&e))?;
    // dockerd answers `null` when nothing changed.
    let body: Value = if r.changes.is_empty() {
        Value::Null
    } else {
        r.changes
            .iter()
            .map(|c| json!({"Path": c.path, "Kind": c.kind}))
            .collect()
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// The values of `key` in a query string (`changes=a&changes=b`).
fn all(query: &str, key: &str) -> Vec<String> {
    form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .collect()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn keys(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_object)
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn string_list(v: Option<&Value>) -> Option<pb::StringList> {
    match v {
        None | Some(Value::Null) => None,
        v => Some(pb::StringList { values: strings(v) }),
    }
}

/// The Config of a POST /commit body. Fields that only matter to a container (and that
/// Berth does not carry into the image) are refused when set, naming them.
fn commit_config(v: &Value) -> Result<Option<pb::CommitConfig>, ApiError> {
    const HONORED: &[&str] = &[
        "User",
        "ExposedPorts",
        "Env",
        "Entrypoint",
        "Cmd",
        "Volumes",
        "WorkingDir",
        "Labels",
        "StopSignal",
        "Healthcheck",
        "OnBuild",
        "Shell",
    ];
    // Keys in any case, as Go decodes them (see `docker/keys.rs`).
    let mut v = v.clone();
    HONORED
        .iter()
        .fold(Schema::fields([]), |s, k| s.with(k, Schema::Leaf))
        .with("Healthcheck", Schema::of::<HealthConfig>())
        .canonicalize(&mut v)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    let Some(o) = v.as_object() else {
        return if v.is_null() {
            Ok(None)
        } else {
            Err(ApiError::invalid(
                "invalid JSON: the commit config must be an object",
            ))
        };
    };
    for (k, val) in o {
        let set = match val {
            Value::Null | Value::Bool(false) => false,
            Value::String(s) => !s.is_empty(),
            Value::Array(a) => !a.is_empty(),
            Value::Object(m) => !m.is_empty(),
            Value::Number(n) => n.as_f64() != Some(0.0),
            Value::Bool(true) => true,
        };
        if set && !HONORED.contains(&k.as_str()) {
            return Err(ApiError::invalid(format!(
                "commit Config.{k} is not supported by Berth yet"
            )));
        }
    }
    let s = |k: &str| {
        o.get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let h = o.get("Healthcheck").and_then(Value::as_object);
    let n = |k: &str| {
        h.and_then(|h| h.get(k))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    Ok(Some(pb::CommitConfig {
        user: s("User"),
        exposed_ports: keys(o.get("ExposedPorts")),
        env: strings(o.get("Env")),
        entrypoint: string_list(o.get("Entrypoint")),
        cmd: string_list(o.get("Cmd")),
        volumes: keys(o.get("Volumes")),
        working_dir: s("WorkingDir"),
        labels: o
            .get("Labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default(),
        stop_signal: s("StopSignal"),
        health_check: h.map(|h| pb::HealthCheck {
            test: strings(h.get("Test")),
            interval: n("Interval"),
            timeout: n("Timeout"),
            start_period: n("StartPeriod"),
            start_interval: n("StartInterval"),
            retries: i32::try_from(n("Retries")).unwrap_or(0),
        }),
        on_build: strings(o.get("OnBuild")),
        shell: strings(o.get("Shell")),
    }))
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&pause=&changes=`; the body may be a
/// Config. 201 `{"Id":"sha256:..."}`.
async fn commit(
    State(st): State<AppState>,
    RawQuery(raw): RawQuery,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    check_json(&headers, &body)?;
    let config = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
        commit_config(&v)?
    };
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let r = st
        .containers
        .commit(pb::CommitRequest {
            id: get("container"),
            repo: get("repo"),
            tag: get("tag"),
            comment: get("comment"),
            author: get("author"),
            pause: !q.contains_key("pause") || bool_param(&q, "pause"),
            changes: all(&raw.unwrap_or_default(), "changes"),
            config,
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": r.id})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_config_takes_the_image_fields_and_refuses_the_others() {
        let c = commit_config(&json!({"Cmd": ["sh"], "Env": ["A=1"], "Hostname": ""}))
            .unwrap()
            .unwrap();
        assert_eq!(c.cmd.unwrap().values, ["sh"]);
        assert_eq!(c.env, ["A=1"]);
        assert!(commit_config(&json!(null)).unwrap().is_none());
        let e = commit_config(&json!({"Tty": true})).unwrap_err();
        assert!(e.message.contains("Config.Tty"), "{}", e.message);
        // Keys in another case are the fields they name, nested ones too.
        let c = commit_config(
            &json!({"cmd": ["sh"], "healthcheck": {"test": ["CMD", "true"], "retries": 2}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.cmd.unwrap().values, ["sh"]);
        assert_eq!(c.health_check.unwrap().retries, 2);
    }

    #[test]
    fn the_stat_header_is_base64_json() {
        let h = stat_header(&pb::PathStat {
            name: "f".into(),
            size: 12,
            mode: 0o644,
            mtime: 1_700_000_000_000_000_000,
            link_target: String::new(),
        });
        let raw = base64::engine::general_purpose::STANDARD
            .decode(h.as_bytes())
            .unwrap();
        let v: Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(v["name"], "f");
        assert_eq!(v["mode"], 0o644);
        assert_eq!(v["mtime"], "2023-11-14T22:13:20Z");
        assert_eq!(v["linkTarget"], "");
    }
}
