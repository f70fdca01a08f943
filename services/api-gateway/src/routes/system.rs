//! System endpoints: `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::{
    collections::HashMap,
    sync::{Arc, atomic::Ordering},
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{Query, RawQuery, State},
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use berth_bus::{Next, Start, event_cursor};
use berth_service::SETTLE_BOUND;
use berth_types::ServiceName;
use bytes::Bytes;
use futures::Stream;

use crate::{
    api_version::{ENGINE_VERSION, MAX, MIN},
    df::{self, Wanted},
    error::{ApiError, json_response},
    events::EventQuery,
    info::{self, Local, Parts},
    state::AppState,
};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/_ping", get(ping).head(ping_head))
        .route("/version", get(version))
        .route("/info", get(info))
        .route("/events", get(events))
        .route("/system/df", get(system_df))
}

fn ping_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
}

async fn ping() -> Response {
    let mut res = (StatusCode::OK, "OK").into_response();
    ping_headers(&mut res);
    res
}

async fn ping_head() -> Response {
    let mut res = (StatusCode::OK, Body::empty()).into_response();
    ping_headers(&mut res);
    res.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    res
}

/// The commit Berth was built from, when the build says so.
const GIT_COMMIT: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

async fn version(State(st): State<AppState>) -> Response {
    let h = &st.host;
    let details = serde_json::json!({
        "ApiVersion": MAX.to_string(),
        "MinAPIVersion": MIN.to_string(),
        "GitCommit": GIT_COMMIT,
        "GoVersion": "n/a (rust)",
        "Os": "linux",
        "Arch": h.go_arch(),
        "KernelVersion": h.kernel,
        "Experimental": "false",
        "BuildTime": "",
    });
    // The legacy top-level fields repeat the Engine's details (Experimental as a bool there).
    let mut body = details.clone();
    body["Experimental"] = serde_json::json!(false);
    body["Version"] = serde_json::json!(ENGINE_VERSION);
    body["Platform"] = serde_json::json!({"Name": format!("Berth {}", berth_service::VERSION)});
    body["Components"] = serde_json::json!([
        {"Name": "Engine", "Version": ENGINE_VERSION, "Details": details},
        {"Name": "Berth", "Version": berth_service::VERSION, "Details": {"GitCommit": GIT_COMMIT}},
    ]);
    json_response(StatusCode::OK, &body)
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

async fn info(State(st): State<AppState>) -> Response {
    let b = &st.backends;
    let (runtime, images, network, volumes) = tokio::join!(
        b.runtime_info(),
        b.images_info(),
        b.network_info(),
        b.volumes_info()
    );
    let env = |k: &str| {
        std::env::var(k)
            .or_else(|_| std::env::var(k.to_lowercase()))
            .unwrap_or_default()
    };
    let data_root = st.cfg.data_root.display().to_string();
    let body = info::compose(
        Parts {
            runtime,
            images,
            network,
            volumes,
        },
        Local {
            host: &st.host,
            data_root: &data_root,
            debug: st.cfg.debug,
            labels: &st.cfg.labels,
            live_restore: st.cfg.live_restore,
            event_listeners: st.event_listeners.load(Ordering::SeqCst),
            tasks: tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks(),
            fds: std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()),
            system_time: now_rfc3339(),
            proxies: [env("HTTP_PROXY"), env("HTTPS_PROXY"), env("NO_PROXY")],
            bus_connected: st.bus.is_connected(),
        },
    );
    json_response(StatusCode::OK, &body)
}

async fn system_df(
    State(st): State<AppState>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    // `type` may repeat (`type=image&type=volume`).
    let types: Vec<String> = form_urlencoded::parse(q.as_deref().unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "type")
        .map(|(_, v)| v.into_owned())
        .collect();
    let wanted = Wanted::from_types(types.iter().map(String::as_str))?;
    let b = &st.backends;
    let (imgs, ctrs, vols) = tokio::join!(
        async {
            if wanted.images {
                Some(b.images_usage().await)
            } else {
                None
            }
        },
        async {
            // Images count the containers that use them.
            if wanted.containers || wanted.images {
                Some(b.containers_usage().await)
            } else {
                None
            }
        },
        async {
            if wanted.volumes {
                Some(b.volumes_usage().await)
            } else {
                None
            }
        },
    );
    let err = |s: tonic::Status| ApiError::from_status(&s);
    let body = df::compose(
        wanted,
        imgs.transpose().map_err(err)?,
        ctrs.transpose().map_err(err)?,
        vols.transpose().map_err(err)?,
    );
    Ok(json_response(StatusCode::OK, &body))
}

/// Decrements the listener count when the stream ends or the client goes away.
struct ListenerGuard(Arc<std::sync::atomic::AtomicI64>);

impl Drop for ListenerGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn events(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let query = EventQuery::new(
        q.get("since").map(String::as_str),
        q.get("until").map(String::as_str),
        q.get("filters").map(String::as_str),
    )?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let start = query.since.map_or(Start::Now, Start::Since);
    let ends_when_caught_up = query.until.is_some_and(|u| u <= now);
    let deadline = query
        .until
        .filter(|u| *u > now)
        // `until` is the client's number: a time past u64 nanoseconds from now waits as long.
        .map(|u| {
            let wait = u64::try_from(u - now).unwrap_or(u64::MAX);
            tokio::time::Instant::now() + Duration::from_nanos(wait)
        });
    if query.since.is_some() {
        // The history holds every event of the calls answered so far.
        let services = ServiceName::ALL
            .into_iter()
            .filter(|s| *s != ServiceName::ApiGateway);
        berth_bus::settle(&st.bus, services, SETTLE_BOUND).await;
    }
    st.event_listeners.fetch_add(1, Ordering::SeqCst);
    let guard = ListenerGuard(st.event_listeners.clone());
    let cursor = event_cursor(&st.bus, start);
    let body = Body::from_stream(event_stream(
        cursor,
        query,
        ends_when_caught_up,
        deadline,
        guard,
    ));
    let mut res = (StatusCode::OK, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(res)
}

fn event_stream(
    cursor: berth_bus::EventCursor,
    query: EventQuery,
    ends_when_caught_up: bool,
    deadline: Option<tokio::time::Instant>,
    guard: ListenerGuard,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::unfold(
        (cursor, query, guard),
        move |(mut cursor, query, guard)| async move {
            loop {
                let next = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, cursor.next()).await {
                        Ok(n) => n,
                        Err(_) => return None,
                    },
                    None => cursor.next().await,
                };
                match next {
                    Next::CaughtUp if ends_when_caught_up => return None,
                    Next::CaughtUp => continue,
                    Next::Event(ev) => {
                        if !query.wants(&ev) {
                            continue;
                        }
                        let mut line = serde_json::to_vec(&*ev).unwrap_or_default();
                        line.push(b'\n');
                        return Some((Ok(Bytes::from(line)), (cursor, query, guard)));
                    }
                }
            }
        },
    )
}
