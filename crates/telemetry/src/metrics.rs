//! The Prometheus registry each service serves on `/metrics`, in the classic text format
//! (0.0.4) that every Prometheus and `promtool check metrics` read.

use std::sync::{Arc, RwLock};

use axum::{Router, http::header, response::IntoResponse, routing::get};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, prometheus_text},
    metrics::{counter::ConstCounter, family::Family, gauge::ConstGauge, gauge::Gauge},
    registry::{Metric, Registry},
};

/// A shared registry. Metrics are registered at start-up and encoded on every scrape.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<RwLock<Registry>>,
}

impl Metrics {
    /// A registry holding the process metrics and `berth_service_info{berth_service,version} 1`
    /// (not `service`: scrape configs give every target a `service` label, which Prometheus
    /// would keep and rename this one to `exported_service`).
    pub fn new(service: &str, version: &str) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector));
        let info = Family::<Vec<(String, String)>, Gauge>::default();
        info.get_or_create(&vec![
            ("berth_service".to_owned(), service.to_owned()),
            ("version".to_owned(), version.to_owned()),
        ])
        .set(1);
        registry.register("berth_service_info", "Which Berth service this is", info);
        Metrics {
            registry: Arc::new(RwLock::new(registry)),
        }
    }

    /// Registers one metric (or family) under `name`.
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    /// Registers a collector that is asked for its values at each scrape.
    pub fn register_collector(&self, collector: impl Collector) {
        self.registry
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .register_collector(Box::new(collector));
    }

    /// The exposition text.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.read().unwrap_or_else(|e| e.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &registry);
        out
    }
}

/// `GET /metrics` for this registry.
pub fn metrics_router(metrics: Metrics) -> Router {
    Router::new().route(
        "/metrics",
        get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(header::CONTENT_TYPE, prometheus_text::CONTENT_TYPE)],
                    metrics.encode(),
                )
                    .into_response()
            }
        }),
    )
}

/// The standard `process_*` metrics, read from `/proc/self` at each scrape.
#[derive(Debug, Clone, Copy)]
pub struct ProcessCollector;

#[derive(Debug, Default, PartialEq)]
struct ProcStat {
    cpu_seconds: f64,
    start_time_seconds: f64,
    virtual_bytes: i64,
    resident_bytes: i64,
}

/// Parses `/proc/<pid>/stat` (fields after the command, which may hold spaces).
fn parse_stat(stat: &str, ticks: f64, page: i64, boot_time: f64) -> Option<ProcStat> {
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state): utime = 14, stime = 15, starttime = 22, vsize = 23, rss = 24.
    let field = |n: usize| f.get(n - 3).and_then(|s| s.parse::<f64>().ok());
    Some(ProcStat {
        cpu_seconds: (field(14)? + field(15)?) / ticks,
        start_time_seconds: boot_time + field(22)? / ticks,
        virtual_bytes: field(23)? as i64,
        resident_bytes: field(24)? as i64 * page,
    })
}

fn boot_time() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

fn sysconf(var: nix::unistd::SysconfVar, fallback: i64) -> i64 {
    nix::unistd::sysconf(var)
        .ok()
        .flatten()
        .map_or(fallback, i64::from)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let ticks = sysconf(nix::unistd::SysconfVar::CLK_TCK, 100) as f64;
        let page = sysconf(nix::unistd::SysconfVar::PAGE_SIZE, 4096);
        let Some(stat) = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| parse_stat(&s, ticks, page, boot_time().unwrap_or(0.0)))
        else {
            return Ok(());
        };
        let fds = std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as i64);

        let cpu = ConstCounter::new(stat.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges: [(&str, &str, f64); 4] = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                stat.resident_bytes as f64,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                stat.virtual_bytes as f64,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the epoch in seconds",
                stat.start_time_seconds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                fds as f64,
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_stat_with_spaces_in_comm() {
        let line = "1234 (berth api (x)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 4 0 1000 104857600 2560 18446744073709551615";
        let s = parse_stat(line, 100.0, 4096, 1_700_000_000.0).unwrap();
        assert_eq!(
            s,
            ProcStat {
                cpu_seconds: 3.0,
                start_time_seconds: 1_700_000_010.0,
                virtual_bytes: 104_857_600,
                resident_bytes: 2560 * 4096,
            }
        );
    }

    #[test]
    fn exposition_has_process_and_info_metrics() {
        let m = Metrics::new("images", "0.1.0");
        let text = m.encode();
        assert!(
            text.contains("# TYPE process_cpu_seconds_total counter"),
            "{text}"
        );
        assert!(text.contains("process_resident_memory_bytes "), "{text}");
        assert!(
            text.contains(r#"berth_service_info{berth_service="images",version="0.1.0"} 1"#),
            "{text}"
        );
    }
}
