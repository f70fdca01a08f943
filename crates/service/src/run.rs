//! Running a service: everything around the domain code.

use std::{future::Future, net::SocketAddr, path::PathBuf, pin::Pin, sync::Arc, time::Duration};

use berth_bus::{Bus, EventPublisher, Heartbeat, PublisherMetrics, TaskGuard, spawn_heartbeat};
use berth_config::{ConfigError, DaemonConfig, ServiceAddress};
use berth_telemetry::{LevelHandle, Metrics};
use berth_types::{Actor, EngineId, Event, EventType, ServiceName};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tonic::{service::RoutesBuilder, transport::Server};

use crate::{
    GrpcMetricsLayer, SETTLE_BOUND, SettleEventsLayer, bind_unix, engine_id, write_atomic,
};

/// Berth's version, reported by every service.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Resolves when the service should stop.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Re-reads the configuration on SIGHUP.
pub type Reloader = Arc<dyn Fn() -> Result<DaemonConfig, ConfigError> + Send + Sync>;

/// What a service's `serve()` is started with: by `main`, or in-process by a test.
pub struct Launch {
    pub cfg: DaemonConfig,
    pub shutdown: Shutdown,
    pub reload: Option<Reloader>,
    pub log_level: Option<LevelHandle>,
}

impl Launch {
    pub fn new(cfg: DaemonConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Launch {
        Launch {
            cfg,
            shutdown: Box::pin(shutdown),
            reload: None,
            log_level: None,
        }
    }
}

/// What the domain code of a service gets: its configuration, directory, bus and metrics.
pub struct ServiceContext {
    pub service: ServiceName,
    pub cfg: DaemonConfig,
    /// `<data-root>/<service>`, created.
    pub data_dir: PathBuf,
    pub engine_id: EngineId,
    pub bus: Bus,
    pub events: EventPublisher,
    pub metrics: Metrics,
    shutdown: Shutdown,
    reload: Option<Reloader>,
    log_level: Option<LevelHandle>,
    started_at: i64,
    /// gRPC paths answered before their events are stored.
    answering_first: Vec<String>,
}

impl ServiceContext {
    /// Prepares directories, metrics and the bus (which connects in the background).
    pub async fn start(service: ServiceName, launch: Launch) -> anyhow::Result<ServiceContext> {
        let cfg = launch.cfg;
        let data_dir = cfg.service_data_dir(service);
        // The gateway keeps no state of its own.
        if service != ServiceName::ApiGateway {
            std::fs::create_dir_all(&data_dir)?;
        }
        std::fs::create_dir_all(&cfg.exec_root)?;
        let engine_id = engine_id(&cfg.data_root)?;
        let metrics = Metrics::new(service.as_str(), VERSION);
        let bus = Bus::connect(cfg.nats_url(), &format!("berth-{service}")).await?;
        let events = EventPublisher::spawn(bus.clone(), PublisherMetrics::register(&metrics));
        for key in &cfg.ignored_keys {
            tracing::debug!(key, "daemon.json key accepted but not used by Berth yet");
        }
        Ok(ServiceContext {
            service,
            cfg,
            data_dir,
            engine_id,
            bus,
            events,
            metrics,
            shutdown: launch.shutdown,
            reload: launch.reload,
            log_level: launch.log_level,
            started_at: time::OffsetDateTime::now_utc().unix_timestamp(),
            answering_first: Vec::new(),
        })
    }

    /// The calls at `paths` (`/package.Service/Method`) are answered without waiting for
    /// their events to be stored in NATS; the reader of the history waits for them instead
    /// (`berth_bus::settle`). Only for calls no other service makes, or that it makes for the
    /// gateway without writing events of its own after them: a service's call that waits for
    /// its events keeps the history in the order of the calls across services.
    pub fn answer_first(&mut self, paths: impl IntoIterator<Item = String>) {
        self.answering_first.extend(paths);
    }

    /// Serves `routes` (plus `grpc.health.v1`) and `/metrics` until shutdown, then flushes the
    /// events still buffered and removes the socket.
    pub async fn serve(self, mut routes: RoutesBuilder) -> anyhow::Result<()> {
        let ServiceContext {
            service,
            cfg,
            engine_id,
            bus,
            events,
            metrics,
            shutdown,
            reload,
            log_level,
            started_at,
            answering_first,
            ..
        } = self;

        let (health, health_service) = tonic_health::server::health_reporter();
        health
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        routes.add_service(health_service);
        let routes = routes.routes();

        // Served until the run ends, an early error's included.
        let (metrics_addr, _metrics_server) = serve_metrics(service, &cfg, metrics.clone()).await?;
        let address = cfg.service_address(service);
        let hb = Heartbeat {
            service: service.as_str().to_owned(),
            instance: uuid::Uuid::new_v4().to_string(),
            pid: std::process::id(),
            version: VERSION.to_owned(),
            started_at,
            time: started_at,
            grpc: address.to_string(),
            metrics: format!("http://{metrics_addr}/metrics"),
            interval_ms: cfg.berth.heartbeat_interval.as_millis() as u64,
        };
        let _heartbeat = spawn_heartbeat(bus.clone(), service, hb, cfg.berth.heartbeat_interval);
        let _settle = berth_bus::answer_settle(bus.clone(), service, events.clone(), SETTLE_BOUND);

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stop = async {
            let _ = stop_rx.await;
        };
        // Receive windows large enough for bulk uploads (a build context, an image load) to
        // stream without waiting for a window update every 64 KiB, in frames of up to
        // `MAX_FRAME` (HTTP/2's default, 16 KiB, makes a 20 MiB context some 1,300 frames
        // and twice as many reads).
        let mut builder = Server::builder()
            .initial_stream_window_size(Some(2 << 20))
            .initial_connection_window_size(Some(8 << 20))
            .max_frame_size(Some(crate::client::MAX_FRAME))
            .trace_fn(move |req| {
                let span =
                    tracing::info_span!("grpc", service = %service, method = %req.uri().path());
                berth_telemetry::set_parent_from_http(&span, req.headers());
                span
            })
            .layer(GrpcMetricsLayer::register(&metrics))
            .layer(
                SettleEventsLayer::new(events.clone(), SETTLE_BOUND)
                    .answering_first(&answering_first),
            );
        let server = match &address {
            ServiceAddress::Unix(path) => {
                let listener = bind_unix(path, 0o660)?;
                tracing::info!(service = %service, address = %address, metrics = %metrics_addr, "serving");
                let incoming = UnixListenerStream::new(listener);
                tokio::spawn(
                    builder
                        .add_routes(routes)
                        .serve_with_incoming_shutdown(incoming, stop),
                )
            }
            ServiceAddress::Tcp { host, port } => {
                let tls = cfg
                    .berth
                    .service_tls
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("tcp:// services need berth.tls"))?;
                builder = builder.tls_config(crate::server_tls(tls)?)?;
                let listener = tokio::net::TcpListener::bind((host.as_str(), *port)).await?;
                tracing::info!(service = %service, address = %address, metrics = %metrics_addr, "serving with mutual TLS");
                let incoming = TcpListenerStream::new(listener);
                tokio::spawn(
                    builder
                        .add_routes(routes)
                        .serve_with_incoming_shutdown(incoming, stop),
                )
            }
        };

        let mut hup = crate::reload_signal();
        let mut shutdown = shutdown;
        loop {
            let hup_recv = async {
                match hup.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut shutdown => break,
                _ = hup_recv => {
                    if let Some(reload) = &reload {
                        reloaded(service, &engine_id, reload, log_level.as_ref(), &events);
                    }
                }
            }
        }

        health
            .set_service_status("", tonic_health::ServingStatus::NotServing)
            .await;
        let _ = stop_tx.send(());
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "gRPC server failed"),
            Err(e) => tracing::error!(error = %e, "gRPC server task failed"),
        }
        if !events.close(Duration::from_secs(2)).await {
            tracing::warn!("stopping with events not yet stored in NATS");
        }
        if let ServiceAddress::Unix(path) = &address {
            let _ = std::fs::remove_file(path);
        }
        let _ = std::fs::remove_file(metrics_file(&cfg, service));
        tracing::info!(service = %service, "stopped");
        Ok(())
    }
}

fn metrics_file(cfg: &DaemonConfig, service: ServiceName) -> PathBuf {
    cfg.exec_root.join(format!("{service}.metrics-addr"))
}

/// Serves `/metrics` on the configured address, or an ephemeral port on 127.0.0.1, and records
/// the address in `<exec-root>/<service>.metrics-addr`. The address, and the server, which
/// stops when dropped.
async fn serve_metrics(
    service: ServiceName,
    cfg: &DaemonConfig,
    metrics: Metrics,
) -> anyhow::Result<(SocketAddr, TaskGuard)> {
    let want = cfg
        .metrics_addr(service)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let listener = tokio::net::TcpListener::bind(want)
        .await
        .map_err(|e| anyhow::anyhow!("binding the metrics address {want}: {e}"))?;
    let addr = listener.local_addr()?;
    write_atomic(
        &metrics_file(cfg, service),
        addr.to_string().as_bytes(),
        0o644,
    )?;
    let task = TaskGuard::spawn(async move {
        if let Err(e) = axum::serve(listener, berth_telemetry::metrics_router(metrics)).await {
            tracing::error!(error = %e, "metrics server failed");
        }
    });
    Ok((addr, task))
}

/// Applies a reloaded configuration (what can change at run time: the log level) and
/// publishes `daemon reload`, as dockerd does on SIGHUP.
fn reloaded(
    service: ServiceName,
    engine_id: &EngineId,
    reload: &Reloader,
    log_level: Option<&LevelHandle>,
    events: &EventPublisher,
) {
    let cfg = match reload() {
        Ok(cfg) => cfg,
        Err(e) => {
            tracing::error!(error = %e, "configuration not reloaded");
            return;
        }
    };
    let level = if cfg.debug {
        "debug"
    } else {
        cfg.log_level.as_filter()
    };
    if let Some(handle) = log_level
        && let Err(e) = handle.set(level)
    {
        tracing::error!(error = %e, "log level not changed");
    }
    let mut actor = Actor {
        id: engine_id.to_string(),
        ..Actor::default()
    };
    let hostname = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    for (k, v) in [
        ("name", hostname),
        ("service", service.as_str().to_owned()),
        ("debug", cfg.debug.to_string()),
        ("log-level", level.to_owned()),
        ("labels", format!("{:?}", cfg.labels)),
        ("live-restore", cfg.live_restore.to_string()),
    ] {
        actor.attributes.insert(k.to_owned(), v);
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64;
    events.publish(&Event::new(
        EventType::Daemon,
        "reload".parse().expect("a valid action"),
        actor,
        now,
    ));
    tracing::info!(service = %service, "configuration reloaded");
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A service served in-process leaves nothing behind when its run ends: neither its
    /// socket nor its `/metrics` listener.
    #[tokio::test]
    async fn a_run_leaves_no_listener() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = DaemonConfig::parse(std::path::Path::new("d.json"), "{}").unwrap();
        cfg.data_root = dir.path().join("data");
        cfg.exec_root = dir.path().join("run");
        cfg.berth.nats_url = Some("nats://127.0.0.1:1".to_owned());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let launch = Launch::new(cfg.clone(), async {
            let _ = stopped.await;
        });
        let ctx = ServiceContext::start(ServiceName::Volumes, launch)
            .await
            .unwrap();
        let run = tokio::spawn(ctx.serve(RoutesBuilder::default()));
        let file = metrics_file(&cfg, ServiceName::Volumes);
        let addr: SocketAddr = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Ok(a) = std::fs::read_to_string(&file) {
                    break a.parse().unwrap();
                }
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("the metrics address written");
        tokio::net::TcpStream::connect(addr).await.unwrap();
        stop.send(()).unwrap();
        run.await.unwrap().unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
        assert!(!file.exists());
    }
}
