//! Per-container metrics on the runtime's `/metrics`, read from each running container's
//! cgroup at scrape time (nothing is sampled in between): CPU seconds, memory usage and limit,
//! processes, OOM kills, and the restarts the restart policy made, labelled by container ID
//! and name.

use std::{fmt, sync::Arc};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric},
    metrics::{counter::ConstCounter, gauge::ConstGauge},
};

use crate::{container::Container, lifecycle::Containers, store::Store};

/// One running container's numbers.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Sample {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) cpu_seconds: f64,
    pub(crate) memory_bytes: u64,
    /// None when unlimited.
    pub(crate) memory_limit_bytes: Option<u64>,
    pub(crate) pids: u64,
    pub(crate) oom_kills: u64,
    pub(crate) restarts: u64,
}

impl Sample {
    /// `c`'s numbers from its cgroup.
    fn of(c: &Container) -> Option<Sample> {
        let cg = Containers::cgroup(c).ok()?;
        let st = cg.stats();
        Some(Sample {
            id: c.id.clone(),
            name: c.short_name().to_owned(),
            cpu_seconds: st.cpu.total as f64 / 1e9,
            memory_bytes: st.memory.usage,
            // v1 shows "unlimited" as a page-rounded i64::MAX.
            memory_limit_bytes: Some(st.memory.limit).filter(|l| *l < (i64::MAX as u64) / 2),
            pids: st.pids.current,
            oom_kills: cg.oom_kills(),
            restarts: c.restart_count,
        })
    }
}

/// Where the samples come from: the store's running containers, or a fixed list in tests.
type Source = Arc<dyn Fn() -> Vec<Sample> + Send + Sync>;

/// The collector the runtime registers.
pub(crate) struct ContainerCollector {
    source: Source,
}

impl fmt::Debug for ContainerCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ContainerCollector")
    }
}

impl ContainerCollector {
    /// Samples the running containers of `store` at each scrape.
    pub(crate) fn new(store: Arc<Store>) -> ContainerCollector {
        ContainerCollector {
            source: Arc::new(move || {
                store
                    .all_shared()
                    .unwrap_or_default()
                    .iter()
                    .filter(|c| c.state.running())
                    .filter_map(|c| Sample::of(c))
                    .collect()
            }),
        }
    }

    #[cfg(test)]
    fn fixed(samples: Vec<Sample>) -> ContainerCollector {
        ContainerCollector {
            source: Arc::new(move || samples.clone()),
        }
    }
}

/// A metric's value for one sample (None: not reported for it).
type Value = fn(&Sample) -> Option<f64>;

const COUNTERS: &[(&str, &str, Value)] = &[
    (
        "berth_container_cpu_seconds",
        "CPU time the container's processes used, in seconds",
        |s| Some(s.cpu_seconds),
    ),
    (
        "berth_container_oom_kills",
        "Processes of the container the kernel's OOM killer killed",
        |s| Some(s.oom_kills as f64),
    ),
    (
        "berth_container_restarts",
        "Times the restart policy restarted the container",
        |s| Some(s.restarts as f64),
    ),
];

const GAUGES: &[(&str, &str, Value)] = &[
    (
        "berth_container_memory_usage_bytes",
        "Memory the container's cgroup uses, page cache included",
        |s| Some(s.memory_bytes as f64),
    ),
    (
        "berth_container_memory_limit_bytes",
        "The container's memory limit (absent when unlimited)",
        |s| s.memory_limit_bytes.map(|l| l as f64),
    ),
    (
        "berth_container_pids",
        "Processes (and threads) in the container's cgroup",
        |s| Some(s.pids as f64),
    ),
];

impl Collector for ContainerCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let samples = (self.source)();
        if samples.is_empty() {
            return Ok(());
        }
        let labels = |s: &Sample| [("id", s.id.clone()), ("name", s.name.clone())];
        for (name, help, value) in COUNTERS {
            let c = ConstCounter::new(0.0);
            let mut m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            for s in &samples {
                if let Some(v) = value(s) {
                    let l = labels(s);
                    ConstCounter::new(v).encode(m.encode_family(&l)?)?;
                }
            }
        }
        for (name, help, value) in GAUGES {
            let g = ConstGauge::new(0.0);
            let mut m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            for s in &samples {
                if let Some(v) = value(s) {
                    let l = labels(s);
                    ConstGauge::new(v).encode(m.encode_family(&l)?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_container_is_labelled_by_id_and_name() {
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(ContainerCollector::fixed(vec![
            Sample {
                id: "abc".to_owned(),
                name: "web".to_owned(),
                cpu_seconds: 1.5,
                memory_bytes: 1000,
                memory_limit_bytes: Some(67_108_864),
                pids: 3,
                oom_kills: 1,
                restarts: 2,
            },
            Sample {
                id: "def".to_owned(),
                name: "db".to_owned(),
                ..Default::default()
            },
        ])));
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"berth_container_cpu_seconds_total{id="abc",name="web"} 1.5"#,
            r#"berth_container_memory_usage_bytes{id="abc",name="web"} 1000.0"#,
            r#"berth_container_memory_limit_bytes{id="abc",name="web"} 67108864.0"#,
            r#"berth_container_pids{id="abc",name="web"} 3.0"#,
            r#"berth_container_oom_kills_total{id="abc",name="web"} 1.0"#,
            r#"berth_container_restarts_total{id="abc",name="web"} 2.0"#,
            r#"berth_container_pids{id="def",name="db"} 0.0"#,
            "# TYPE berth_container_cpu_seconds counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
        }
        // Unlimited memory has no limit sample.
        assert!(!text.contains(r#"berth_container_memory_limit_bytes{id="def""#));
    }
}
