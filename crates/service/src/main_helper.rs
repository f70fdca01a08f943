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
    let runtime = runtime(cfg.worker_threads(service))?;
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

/// A tokio runtime with `workers` worker threads; with one, everything runs on the main thread
/// (no worker thread, its stack and its malloc arena), which is all an idle-most-of-the-time
/// service needs.
fn runtime(workers: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = if workers <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(workers);
        b
    };
    builder.enable_all().build()
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    use super::*;

    #[test]
    fn network_and_volumes_run_on_the_main_thread_the_others_on_a_worker_per_core() {
        let cfg = DaemonConfig::parse(std::path::Path::new("daemon.json"), "{}").unwrap();
        let flavor = |s| {
            runtime(cfg.worker_threads(s))
                .unwrap()
                .handle()
                .runtime_flavor()
        };
        assert_eq!(flavor(ServiceName::Network), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(ServiceName::Volumes), RuntimeFlavor::CurrentThread);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        for s in [
            ServiceName::ApiGateway,
            ServiceName::Runtime,
            ServiceName::Images,
        ] {
            assert_eq!(cfg.worker_threads(s), cores);
            if cores > 1 {
                assert_eq!(flavor(s), RuntimeFlavor::MultiThread);
            }
        }
        // The knob: berth.services.<name>.worker-threads.
        let cfg = DaemonConfig::parse(
            std::path::Path::new("daemon.json"),
            r#"{"berth": {"services": {"network": {"worker-threads": 3}}}}"#,
        )
        .unwrap();
        assert_eq!(cfg.worker_threads(ServiceName::Network), 3);
        let rt = runtime(3).unwrap();
        assert_eq!(rt.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(rt.metrics().num_workers(), 3);
    }
}
