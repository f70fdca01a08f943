//! Exec endpoints: create, start (detached or hijacked), resize, inspect. The runtime keeps
//! the execs; this layer maps bodies, parameters and the hijacked stream.

use std::collections::HashMap;

use axum::{
    Router,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
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
        containers::{check_json, resize_pty, status},
        hijack,
    },
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/containers/{id}/exec", post(create))
        .route("/exec/{id}/start", post(start))
        .route("/exec/{id}/resize", post(resize))
        .route("/exec/{id}/json", get(inspect))
}

/// A JSON object body; an empty body is `{}` when `empty_ok`.
fn object(headers: &HeaderMap, body: &[u8], empty_ok: bool) -> Result<Value, ApiError> {
    check_json(headers, body)?;
    if body.is_empty() {
        return if empty_ok {
            Ok(json!({}))
        } else {
            Err(ApiError::invalid("invalid JSON: EOF"))
        };
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    if v.is_object() {
        Ok(v)
    } else {
        Err(ApiError::invalid("invalid JSON: not an object"))
    }
}

/// `POST /containers/{id}/exec`.
async fn create(
    State(st): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec = docker::exec::spec(object(&headers, &body, false)?)?;
    let id = st
        .containers
        .exec_create(pb::ExecCreateRequest {
            id,
            spec: Some(spec),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(StatusCode::CREATED, &json!({"Id": id})))
}

/// `POST /exec/{id}/start`: detached → 200 once it runs; otherwise the hijacked stream,
/// closed after the exit code is recorded.
async fn start(
    State(st): State<AppState>,
    Path(exec_id): Path<String>,
    headers: HeaderMap,
    mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let body = axum::body::to_bytes(std::mem::take(req.body_mut()), 1 << 20)
        .await
        .map_err(|e| ApiError::invalid(format!("reading the body: {e}")))?;
    let opts = docker::exec::start(object(&headers, &body, true)?)?;
    // As moby's router: only an exec that does not exist is refused before the upgrade; any
    // other failure (the runtime restarting, say) is the start's error, written in the stream
    // once the client has its 101, where the CLI prints it.
    let exec = match st.containers.exec_inspect(exec_id.clone()).await {
        Ok(exec) => exec,
        Err(e) if opts.detach || berth_errors::kind_of(&e) == berth_types::ErrorKind::NotFound => {
            return Err(status(&e));
        }
        Err(e) => {
            let e = tonic::Status::new(e.code(), status(&e).message);
            let session = hijack::Session::failed(opts.tty, e);
            return Ok(hijack::respond(st.containers.clone(), &mut req, session));
        }
    };
    let info = exec.spec.clone().unwrap_or_default();
    let start = pb::ExecStartRequest {
        exec_id: exec_id.clone(),
        detach: opts.detach,
        height: opts.height,
        width: opts.width,
    };
    let fresh = !exec.running && exec.exit_code.is_none();
    if opts.detach || !fresh {
        // Detached, the stream ends once the process runs; an exec that already ran is
        // refused by the runtime, with its error as the answer.
        let mut output = st
            .containers
            .exec_start(start)
            .await
            .map_err(|e| status(&e))?;
        while output.next().await.is_some() {}
        return Ok(StatusCode::OK.into_response());
    }
    let backend = st.containers.clone();
    let deferred: hijack::Deferred = Box::pin(async move { backend.exec_start(start).await });
    let tty = info.tty;
    let session = hijack::Session {
        output: None,
        deferred: Some(deferred),
        tty,
        // Framed by the start request's Tty, as moby's postContainerExecStart does: an exec
        // created with a TTY and started with `Tty: false` (docker-py's default) is
        // multiplexed.
        raw: opts.tty,
        input: info.attach_stdin.then(|| pb::InputChunk {
            exec_id,
            ..Default::default()
        }),
        // As in Docker: a TTY's stdin is never closed by the client's end (a detached shell
        // stays); a pipe is closed at the client's EOF.
        close_stdin_on_eof: !tty,
        // The exec create body's DetachKeys, kept with the exec.
        detach_keys: hijack::parse_detach_keys(&info.detach_keys)?,
    };
    Ok(hijack::respond(st.containers.clone(), &mut req, session))
}

/// `POST /exec/{id}/resize?h=&w=`.
async fn resize(
    State(st): State<AppState>,
    Path(exec_id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    resize_pty(&st, String::new(), exec_id, &q).await
}

/// `GET /exec/{id}/json`.
async fn inspect(
    State(st): State<AppState>,
    Path(exec_id): Path<String>,
) -> Result<Response, ApiError> {
    let info = st
        .containers
        .exec_inspect(exec_id)
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(StatusCode::OK, &docker::exec::inspect(&info)))
}
