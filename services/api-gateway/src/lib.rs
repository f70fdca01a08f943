//! The API gateway: the Docker Engine API over unix sockets and TCP (with mutual TLS), routed
//! to the backend services over gRPC, with `/events` served from NATS. It keeps no state.
#![recursion_limit = "256"]

pub mod api_version;
pub mod backends;
pub mod df;
pub mod docker;
pub mod error;
pub mod events;
pub mod host;
mod http_metrics;
pub mod info;
pub mod jsonmessage;
mod listen;
pub mod panics;
pub mod registry_auth;
pub mod routes;
pub mod state;
mod tls;

use std::sync::{Arc, atomic::AtomicI64};

use axum::{
    Router,
    extract::Request,
    http::Method,
    middleware,
    response::{IntoResponse, Response},
};
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

use crate::{backends::GrpcBackends, error::ApiError, host::HostFacts, state::AppState};

/// The whole API as one router: version prefixes stripped, engine headers on every answer,
/// `OPTIONS` answered, unknown routes and methods `404 page not found`.
pub fn app(state: AppState, metrics: Option<&berth_telemetry::Metrics>) -> Router {
    let mut routes = Router::new()
        .merge(routes::system::router())
        .merge(routes::images::router())
        .merge(routes::archive::router())
        .merge(routes::containers::router())
        .merge(routes::container_fs::router())
        .merge(routes::resources::router())
        .merge(routes::exec::router())
        .merge(routes::swarm::router())
        .merge(routes::plugins::router())
        .merge(routes::distribution::router())
        .merge(routes::buildkit::router())
        .merge(routes::build::router())
        .merge(routes::build_control::router())
        .merge(routes::networks::router())
        .merge(routes::volumes::router())
        .fallback(not_found)
        .method_not_allowed_fallback(not_found)
        .with_state(state);
    if let Some(m) = metrics {
        let m = http_metrics::HttpMetrics::register(m);
        routes = routes.layer(middleware::from_fn_with_state(m, http_metrics::record));
    }
    let routes = routes
        .layer(middleware::from_fn(too_large_as_json))
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(trace_request))
        .layer(middleware::from_fn(panics::catch));
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(options_then_next))
        .layer(middleware::from_fn(api_version::middleware))
}

/// One span per API call, a child of the caller's trace when it sent `traceparent`.
async fn trace_request(req: Request, next: middleware::Next) -> Response {
    let span = tracing::info_span!("api", method = %req.method(), path = %req.uri().path());
    berth_telemetry::set_parent_from_http(&span, req.headers());
    tracing::Instrument::instrument(next.run(req), span).await
}

/// The most a handler buffers of a request body (create bodies, exec, auth, ...); uploads
/// (load, import) are streamed, not buffered.
pub const BODY_LIMIT: usize = 4 << 20;

/// A body over [`BODY_LIMIT`] is a Docker-style JSON 413, not axum's plain text.
async fn too_large_as_json(req: Request, next: middleware::Next) -> Response {
    let res = next.run(req).await;
    let json = res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v == "application/json");
    if res.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE && !json {
        return error::json_response(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            &serde_json::json!({
                "message": format!("request body too large: the limit is {BODY_LIMIT} bytes")
            }),
        );
    }
    res
}

async fn options_then_next(req: Request, next: middleware::Next) -> Response {
    if req.method() == Method::OPTIONS {
        return api_version::options_ok();
    }
    next.run(req).await
}

async fn not_found() -> Response {
    ApiError::not_found("page not found").into_response()
}

/// Runs the gateway until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(ServiceName::ApiGateway, launch).await?;
    panics::install_hook();
    let cfg = Arc::new(ctx.cfg.clone());
    let backends = Arc::new(GrpcBackends::new(berth_service::connect_all(&cfg)?)?);
    let state = AppState {
        backends: backends.clone(),
        images: backends.clone(),
        containers: backends.clone(),
        networks: backends.clone(),
        volumes: backends,
        bus: ctx.bus.clone(),
        host: Arc::new(HostFacts::read()),
        cfg: cfg.clone(),
        event_listeners: Arc::new(AtomicI64::new(0)),
        spool: routes::spool::SpoolDir::open(&cfg).map(Arc::new),
    };
    let router = app(state, Some(&ctx.metrics));
    let tls = tls::server_config(&cfg)?;
    let listeners = listen::bind(&cfg.api_hosts(), tls, cfg.tls_off_accepted).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut servers = tokio::task::JoinSet::new();
    for (name, listener) in listeners {
        tracing::info!(host = %name, "serving the Docker API");
        servers.spawn(listen::serve(
            name,
            listener,
            router.clone(),
            stop_rx.clone(),
        ));
    }
    // The gateway's own gRPC server carries the health service only.
    let result = ctx.serve(RoutesBuilder::default()).await;
    let _ = stop_tx.send(true);
    while servers.join_next().await.is_some() {}
    for host in cfg.api_hosts() {
        if let berth_config::Host::Unix(p) = host {
            let _ = std::fs::remove_file(p);
        }
    }
    result
}
