//! Telemetry for every Berth binary: structured logs, OpenTelemetry traces exported over OTLP
//! when an endpoint is configured, W3C trace context carried across gRPC and NATS, and the
//! Prometheus registry behind each service's `/metrics`.

mod metrics;
mod propagation;

pub use metrics::{Metrics, ProcessCollector, metrics_router};
pub use propagation::{
    TRACEPARENT, extract_context, extract_from_http, inject_context, inject_into_http,
    set_parent_from_http,
};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::{Resource, propagation::TraceContextPropagator, trace::SdkTracerProvider};
use tracing_subscriber::{
    EnvFilter, Registry, layer::SubscriberExt, reload, util::SubscriberInitExt,
};

/// What to set up.
#[derive(Debug, Clone)]
pub struct TelemetryConfig<'a> {
    /// `service.name` of the traces, and the `service` field of every log line.
    pub service: &'a str,
    /// A tracing filter directive such as `info` or `debug`; `RUST_LOG` overrides it.
    pub level: &'a str,
    /// OTLP/gRPC endpoint (`http://host:4317`); traces are only exported when set.
    pub otlp_endpoint: Option<&'a str>,
    /// JSON log lines (for journald and log shippers) instead of human-readable ones.
    pub json: bool,
}

/// Flushes and stops the trace exporter when dropped.
#[must_use = "dropping the guard stops trace export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    level: LevelHandle,
}

impl TelemetryGuard {
    /// A handle to change the log level at run time (configuration reload).
    pub fn level_handle(&self) -> LevelHandle {
        self.level.clone()
    }
}

/// Changes the log filter of the running process.
#[derive(Clone, Debug)]
pub struct LevelHandle(reload::Handle<EnvFilter, Registry>);

impl LevelHandle {
    pub fn set(&self, directive: &str) -> anyhow::Result<()> {
        self.0
            .reload(EnvFilter::new(directive))
            .map_err(|e| anyhow::anyhow!("changing the log level: {e}"))
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Installs the global subscriber and propagator. Call once, from `main`, inside the runtime.
pub fn init(cfg: TelemetryConfig<'_>) -> anyhow::Result<TelemetryGuard> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(cfg.level));

    let provider = match cfg.otlp_endpoint {
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build()?;
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(
                        Resource::builder()
                            .with_service_name(format!("berth-{}", cfg.service))
                            .build(),
                    )
                    .build(),
            )
        }
        None => None,
    };
    let otel = provider.as_ref().map(|p| {
        opentelemetry::global::set_tracer_provider(p.clone());
        tracing_opentelemetry::layer().with_tracer(p.tracer("berth"))
    });

    let (filter, level) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = if cfg.json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init()
    } else {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            )
            .try_init()
    };
    result.map_err(|e| anyhow::anyhow!("installing the log subscriber: {e}"))?;
    Ok(TelemetryGuard {
        provider,
        level: LevelHandle(level),
    })
}
