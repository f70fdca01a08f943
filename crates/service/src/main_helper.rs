//! The body of every service's `main`: flags, configuration, runtime, telemetry, serve.

use std::{future::Future, sync::Arc};

use berth_config::{CommonFlags, DaemonConfig};
use berth_telemetry::TelemetryConfig;
use berth_types::ServiceName;
use clap::{CommandFactory, FromArgMatches};

use crate::{Launch, VERSION, shutdown_signal};

#[derive(Debug, clap::Parser)]
struct Args {
    #[command(flatten)]
    common: CommonFlags,
    /// Write log lines as JSON (for journald and log shippers).
    #[arg(long)]
    log_json: bool,
}

/// Parses the flags, loads daemon.json, starts telemetry and runs `serve` until SIGTERM.
pub fn main<F, Fut>(service: ServiceName, serve: F) -> anyhow::Result<()>
where
    F: FnOnce(Launch) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    // One TLS provider for the whole process (see STACK.md).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let matches = Args::command()
        .name(service.binary())
        .version(VERSION)
        .about(format!("The Berth {service} service"))
        .get_matches();
    let args = Args::from_arg_matches(&matches)?;
    let cfg = DaemonConfig::load(&args.common)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let level = if cfg.debug {
            "debug"
        } else {
            cfg.log_level.as_filter()
        };
        let telemetry = berth_telemetry::init(TelemetryConfig {
            service: service.as_str(),
            level,
            otlp_endpoint: cfg.berth.otlp_endpoint.as_deref(),
            json: args.log_json,
        })?;
        let flags = args.common.clone();
        let launch = Launch {
            cfg,
            shutdown: Box::pin(shutdown_signal()),
            reload: Some(Arc::new(move || DaemonConfig::load(&flags))),
            log_level: Some(telemetry.level_handle()),
        };
        serve(launch).await
    })
}
