//! Container endpoints: create, start, wait, list, inspect, logs, kill, stop, restart,
//! rename, remove, prune. The runtime service builds the Docker JSON; this layer maps parameters,
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
use futures::StreamExt;
use serde_json::{Value, json};

use crate::{
    api_version::ApiVersion,
    backends::AttachStream,
    docker,
    error::{ApiError, json_response, json_response_sized},
    routes::{hijack, images::bool_param},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/containers/create", post(create))
        .route("/containers/json", get(list))
        .route("/containers/prune", post(prune))
        .route("/containers/{id}/json", get(inspect))
        .route("/containers/{id}/start", post(start))
        .route("/containers/{id}/wait", post(wait))
        .route("/containers/{id}/logs", get(logs))
        .route("/containers/{id}/attach", post(attach))
        .route("/containers/{id}/resize", post(resize))
        .route("/containers/{id}/top", get(top))
        .route("/containers/{id}/kill", post(kill))
        .route("/containers/{id}/stop", post(stop))
        .route("/containers/{id}/restart", post(restart))
        .route("/containers/{id}/rename", post(rename))
        .route("/containers/{id}", delete(remove))
}

type Q = Query<HashMap<String, String>>;

pub fn status(e: &tonic::Status) -> ApiError {
    ApiError::from_status(e)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// moby's CheckForJSON: a body must be sent as application/json.
pub fn check_json(headers: &HeaderMap, body: &[u8]) -> Result<(), ApiError> {
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

/// `POST /containers/create?name=&platform=`.
async fn create(
    State(st): State<AppState>,
    Query(q): Q,
    version: Option<axum::Extension<ApiVersion>>,
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
    let version = version.map_or(crate::api_version::MAX, |v| v.0);
    let platform = q.get("platform").map(String::as_str).unwrap_or_default();
    let mut spec = docker::create::spec(config, version, platform)?;
    // Every network must exist, with the endpoint's settings valid on it (a fixed address in
    // its subnet, ...); each is recorded by its name.
    if let Some(net) = spec.network.as_mut() {
        if let Some(other) = net.mode.strip_prefix("container:") {
            // The container whose netns it will share must exist (dockerd checks at create).
            st.containers
                .inspect(other.to_owned())
                .await
                .map_err(|e| status(&e))?;
        }
        for e in &mut net.endpoints {
            let plain = e.aliases.is_empty()
                && e.ipv4_address.is_empty()
                && e.ipv6_address.is_empty()
                && e.mac_address.is_empty()
                && e.link_local_ips.is_empty()
                && e.driver_opts.is_empty();
            if plain && matches!(e.network.as_str(), "bridge" | "host" | "none") {
                // The predefined networks exist; nothing to check (no call on the hot path).
                continue;
            }
            let n = st
                .networks
                .check_endpoint(berth_proto::network::v1::EndpointRequest {
                    network: e.network.clone(),
                    aliases: e.aliases.clone(),
                    ipv4_address: e.ipv4_address.clone(),
                    mac_address: e.mac_address.clone(),
                    ipv6_address: e.ipv6_address.clone(),
                    links: Vec::new(),
                    gw_priority: e.gw_priority,
                    link_local_ips: e.link_local_ips.clone(),
                    driver_opts: e.driver_opts.clone(),
                })
                .await
                .map_err(|e| status(&e))?;
            if e.network == net.mode {
                net.mode.clone_from(&n.name);
            }
            e.network = n.name;
        }
    }
    let name = q.get("name").cloned().unwrap_or_default();
    let r = st
        .containers
        .create(pb::CreateRequest {
            name: name.strip_prefix('/').map(str::to_owned).unwrap_or(name),
            spec: Some(spec),
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": r.id, "Warnings": r.warnings}),
    ))
}

/// `GET /containers/json?all=&limit=&size=&filters=`.
/// `POST /containers/prune?filters=`: `{"ContainersDeleted": [...], "SpaceReclaimed": N}`.
async fn prune(State(st): State<AppState>, Query(q): Q) -> Result<Response, ApiError> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let filters =
        docker::ps_filters::prune(q.get("filters").map(String::as_str).unwrap_or(""), now)?;
    let res = st.containers.prune(filters).await.map_err(|e| status(&e))?;
    // moby's report leaves an empty list as null.
    let deleted = if res.deleted.is_empty() {
        Value::Null
    } else {
        json!(res.deleted)
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": res.space_reclaimed}),
    ))
}

async fn list(State(st): State<AppState>, Query(q): Q) -> Result<Response, ApiError> {
    let limit = match q.get("limit").map(|s| s.trim()).filter(|s| !s.is_empty()) {
        Some(l) => l
            .parse::<i64>()
            .map_err(|_| ApiError::invalid(format!("invalid limit: {l}")))?,
        None => 0,
    };
    let filters = docker::ps_filters::parse(q.get("filters").map(String::as_str).unwrap_or(""))?;
    let res = st
        .containers
        .list(pb::ListRequest {
            all: bool_param(&q, "all"),
            limit,
            filters: Some(filters),
            size: bool_param(&q, "size"),
        })
        .await
        .map_err(|e| status(&e))?;
    // About 700 bytes a summary: the buffer grows once or twice, not twenty times.
    let capacity = 2 + res.containers.len() * 768;
    Ok(json_response_sized(
        StatusCode::OK,
        &docker::container::Summaries(&res.containers),
        capacity,
    ))
}

async fn inspect(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let info = st.containers.inspect(id).await.map_err(|e| status(&e))?;
    Ok(json_response(
        StatusCode::OK,
        &docker::container::inspect(&info),
    ))
}

async fn start(State(st): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    st.containers.start(id).await.map_err(|e| status(&e))?;
    Ok(no_content())
}

/// How long a wait whose runtime went away keeps trying to register again.
const WAIT_RECONNECT: std::time::Duration = std::time::Duration::from_secs(60);

/// `POST /containers/{id}/wait?condition=`: the headers go out once the wait is registered,
/// the body when the condition is met. If the runtime restarts meanwhile, the wait is
/// registered again (except `next-exit`, which could miss an exit); if that fails, the body
/// is cut off so that the client reports an error rather than a made-up status.
async fn wait(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let req = pb::WaitRequest {
        id,
        condition: q.get("condition").cloned().unwrap_or_default(),
    };
    let mut stream = st
        .containers
        .wait(req.clone())
        .await
        .map_err(|e| status(&e))?;
    let containers = st.containers.clone();
    let body = futures::stream::once(async move {
        let deadline = tokio::time::Instant::now() + WAIT_RECONNECT;
        loop {
            let v = match stream.next().await {
                Some(Ok(r)) => json!({
                    "StatusCode": r.status_code,
                    "Error": if r.error.is_empty() { Value::Null } else { json!({"Message": r.error}) },
                }),
                Some(Err(e)) if e.code() == tonic::Code::NotFound => {
                    json!({"StatusCode": -1, "Error": {"Message": e.message()}})
                }
                _ if req.condition == "next-exit" => {
                    return Err(std::io::Error::other(
                        "the runtime went away during the wait",
                    ));
                }
                _ => {
                    stream = rewait(&*containers, &req, deadline).await?;
                    continue;
                }
            };
            let mut bytes = v.to_string().into_bytes();
            bytes.push(b'\n');
            return Ok(Bytes::from(bytes));
        }
    });
    let mut res = (StatusCode::OK, Body::from_stream(body)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

/// Registers `req` again once the runtime answers, backing off until `deadline`.
async fn rewait(
    containers: &dyn crate::backends::ContainersBackend,
    req: &pb::WaitRequest,
    deadline: tokio::time::Instant,
) -> Result<crate::backends::WaitStream, std::io::Error> {
    let mut delay = std::time::Duration::from_millis(50);
    loop {
        match containers.wait(req.clone()).await {
            Ok(s) => return Ok(s),
            Err(e) if e.code() == tonic::Code::NotFound => {
                return Err(std::io::Error::other(e.message().to_owned()));
            }
            Err(_) if tokio::time::Instant::now() + delay < deadline => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(std::time::Duration::from_secs(1));
            }
            Err(e) => return Err(std::io::Error::other(e.message().to_owned())),
        }
    }
}

/// Docker's timestamps: seconds with an optional fraction (`1700000000.5`); RFC 3339 also.
use crate::docker::timestamp::parse_i64 as parse_time;

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
/// (`101`, `Upgrade: tcp`): output multiplexed unless the container has a TTY, stdin relayed
/// when asked, until the process's output ends.
async fn attach(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
    mut req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let info = st
        .containers
        .inspect(id.clone())
        .await
        .map_err(|e| status(&e))?;
    let c = info.container.unwrap_or_default();
    let full_id = c.id;
    let p = c.spec.and_then(|s| s.process).unwrap_or_default();
    let tty = p.tty;
    let detach_keys =
        hijack::parse_detach_keys(q.get("detachKeys").map(String::as_str).unwrap_or_default())?;
    let (stdout, stderr) = (bool_param(&q, "stdout"), bool_param(&q, "stderr"));
    let mut output: Option<AttachStream> = None;
    if bool_param(&q, "stream") && (stdout || stderr) {
        output = Some(
            st.containers
                .attach(pb::AttachRequest {
                    id: full_id.clone(),
                    stdout,
                    stderr,
                })
                .await
                .map_err(|e| status(&e))?,
        );
    }
    if bool_param(&q, "logs") && (stdout || stderr) {
        let past = st
            .containers
            .logs(pb::LogsRequest {
                id: full_id.clone(),
                stdout,
                stderr,
                tail: "all".to_owned(),
                ..Default::default()
            })
            .await
            .map_err(|e| status(&e))?
            .map(|r| {
                r.map(|e| pb::AttachFrame {
                    stream: e.stream,
                    data: e.data,
                })
            });
        let live = futures::stream::iter(output).flatten();
        output = Some(Box::pin(past.chain(live)));
    }
    let input = (bool_param(&q, "stdin") && p.open_stdin).then(|| pb::InputChunk {
        id: full_id,
        ..Default::default()
    });
    let session = hijack::Session {
        output,
        deferred: None,
        tty,
        raw: tty,
        input,
        close_stdin_on_eof: p.stdin_once && !tty,
        detach_keys,
    };
    Ok(hijack::respond(st.containers.clone(), &mut req, session))
}

/// `POST /containers/{id}/resize?h=&w=`.
async fn resize(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    resize_pty(&st, id, String::new(), &q).await
}

/// Sets the pty size of a container's main process (empty `exec_id`) or of an exec from the
/// `h` and `w` parameters; 200 with an empty body.
pub async fn resize_pty(
    st: &AppState,
    id: String,
    exec_id: String,
    q: &HashMap<String, String>,
) -> Result<Response, ApiError> {
    let (height, width) = size_params(q)?;
    st.containers
        .resize(pb::ResizeRequest {
            id,
            exec_id,
            height,
            width,
        })
        .await
        .map_err(|e| status(&e))?;
    Ok(StatusCode::OK.into_response())
}

/// The `h` and `w` of a resize.
fn size_params(q: &HashMap<String, String>) -> Result<(u32, u32), ApiError> {
    let get = |k: &str| -> Result<u32, ApiError> {
        let v = q.get(k).map(|s| s.trim()).unwrap_or_default();
        if v.is_empty() {
            return Ok(0);
        }
        v.parse()
            .map_err(|_| ApiError::invalid(format!("strconv.Atoi: parsing {v:?}: invalid syntax")))
    };
    Ok((get("h")?, get("w")?))
}

/// `GET /containers/{id}/top?ps_args=`.
async fn top(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let top = st
        .containers
        .top(pb::TopRequest {
            id,
            ps_args: q.get("ps_args").cloned().unwrap_or_default(),
        })
        .await
        .map_err(|e| status(&e))?;
    let processes: Vec<&Vec<String>> = top.processes.iter().map(|p| &p.values).collect();
    Ok(json_response(
        StatusCode::OK,
        &json!({"Titles": top.titles, "Processes": processes}),
    ))
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
    st.containers
        .restart(stop_request(id, &q)?)
        .await
        .map_err(|e| status(&e))?;
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
        assert_eq!(parse_time("-1.5").unwrap(), -500_000_000);
        // As dockerd: RFC 3339 is the CLI's to convert, not the API's.
        assert!(parse_time("2023-11-14T22:13:20.5Z").is_err());
    }

    /// Client numbers that do not fit nanoseconds in an i64 are refused, not wrapped (or a
    /// panic, with overflow checks on).
    #[test]
    fn timestamps_out_of_range_are_invalid() {
        for s in [
            "9223372036854775807",
            "9223372037",
            "-9223372037",
            "9223372036.854775808",
            "99999999999999999999",
            "1.-5",
            "1.+5",
            "1.5x",
        ] {
            let e = parse_time(s).unwrap_err();
            assert_eq!(e.message, format!("invalid timestamp: {s:?}"), "{s}");
        }
        assert_eq!(parse_time("9223372036.854775807").unwrap(), i64::MAX);
    }
}
