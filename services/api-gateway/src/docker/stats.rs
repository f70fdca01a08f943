//! `GET /containers/{id}/stats`: the runtime's samples in dockerd's StatsResponse shape
//! (moby api/types/container/stats.go, daemon/stats_unix.go), for cgroup v1 and v2: v1 with
//! per-CPU usage, max_usage and the eight blkio lists; v2 with io.stat's bytes only. Go's
//! omitempty on numbers and maps is kept (structs are always there).

use berth_proto::runtime::v1 as pb;
use serde_json::{Map, Value, json};

use crate::docker::container::rfc3339;

/// The memory.stat keys dockerd shows on cgroup v1 (daemon/stats_unix.go statsV1).
const V1_MEMORY_KEYS: &[&str] = &[
    "cache",
    "rss",
    "rss_huge",
    "mapped_file",
    "dirty",
    "writeback",
    "pgpgin",
    "pgpgout",
    "pgfault",
    "pgmajfault",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "hierarchical_memory_limit",
    "hierarchical_memsw_limit",
    "total_cache",
    "total_rss",
    "total_rss_huge",
    "total_mapped_file",
    "total_dirty",
    "total_writeback",
    "total_pgpgin",
    "total_pgpgout",
    "total_pgfault",
    "total_pgmajfault",
    "total_inactive_anon",
    "total_active_anon",
    "total_inactive_file",
    "total_active_file",
    "total_unevictable",
];

/// The memory.stat keys dockerd shows on cgroup v2 (statsV2).
const V2_MEMORY_KEYS: &[&str] = &[
    "anon",
    "file",
    "kernel_stack",
    "slab",
    "sock",
    "shmem",
    "file_mapped",
    "file_dirty",
    "file_writeback",
    "anon_thp",
    "inactive_anon",
    "active_anon",
    "inactive_file",
    "active_file",
    "unevictable",
    "slab_reclaimable",
    "slab_unreclaimable",
    "pgfault",
    "pgmajfault",
    "workingset_refault",
    "workingset_activate",
    "workingset_nodereclaim",
    "pgrefill",
    "pgscan",
    "pgsteal",
    "pgactivate",
    "pgdeactivate",
    "pglazyfree",
    "pglazyfreed",
    "thp_fault_alloc",
    "thp_collapse_alloc",
];

/// One StatsResponse.
pub fn render(s: &pb::StatsSample) -> Value {
    let mut out = Map::new();
    out.insert("name".into(), json!(s.name));
    out.insert("id".into(), json!(s.id));
    out.insert("os_type".into(), json!("linux"));
    out.insert("read".into(), json!(rfc3339(s.read)));
    out.insert("preread".into(), json!(rfc3339(s.preread)));
    out.insert("pids_stats".into(), pids(s.pids.as_ref()));
    out.insert(
        "blkio_stats".into(),
        blkio(s.cgroup_version, s.blkio.as_ref()),
    );
    out.insert("num_procs".into(), json!(s.num_procs));
    out.insert("storage_stats".into(), json!({}));
    out.insert("cpu_stats".into(), cpu(s.cpu.as_ref()));
    out.insert("precpu_stats".into(), cpu(s.precpu.as_ref()));
    out.insert(
        "memory_stats".into(),
        memory(s.cgroup_version, s.memory.as_ref()),
    );
    if !s.networks.is_empty() {
        let mut names: Vec<&String> = s.networks.keys().collect();
        names.sort();
        let nets: Map<String, Value> = names
            .into_iter()
            .map(|n| {
                let v = &s.networks[n];
                (
                    n.clone(),
                    json!({
                        "rx_bytes": v.rx_bytes, "rx_packets": v.rx_packets,
                        "rx_errors": v.rx_errors, "rx_dropped": v.rx_dropped,
                        "tx_bytes": v.tx_bytes, "tx_packets": v.tx_packets,
                        "tx_errors": v.tx_errors, "tx_dropped": v.tx_dropped,
                    }),
                )
            })
            .collect();
        out.insert("networks".into(), Value::Object(nets));
    }
    Value::Object(out)
}

/// Go's omitempty for a number.
fn put_nonzero(m: &mut Map<String, Value>, key: &str, v: u64) {
    if v != 0 {
        m.insert(key.into(), json!(v));
    }
}

fn cpu(c: Option<&pb::CpuStats>) -> Value {
    let c = c.cloned().unwrap_or_default();
    let mut usage = Map::new();
    usage.insert("total_usage".into(), json!(c.total_usage));
    if !c.percpu_usage.is_empty() {
        usage.insert("percpu_usage".into(), json!(c.percpu_usage));
    }
    usage.insert("usage_in_kernelmode".into(), json!(c.usage_in_kernelmode));
    usage.insert("usage_in_usermode".into(), json!(c.usage_in_usermode));
    let mut out = Map::new();
    out.insert("cpu_usage".into(), Value::Object(usage));
    put_nonzero(&mut out, "system_cpu_usage", c.system_cpu_usage);
    put_nonzero(&mut out, "online_cpus", u64::from(c.online_cpus));
    out.insert(
        "throttling_data".into(),
        json!({
            "periods": c.throttling_periods,
            "throttled_periods": c.throttled_periods,
            "throttled_time": c.throttled_time,
        }),
    );
    Value::Object(out)
}

fn memory(version: u32, m: Option<&pb::MemoryStats>) -> Value {
    let mut out = Map::new();
    let Some(m) = m.filter(|_| version != 0) else {
        return Value::Object(out);
    };
    put_nonzero(&mut out, "usage", m.usage);
    // v2 has no max_usage in dockerd's answer.
    if version == 1 {
        put_nonzero(&mut out, "max_usage", m.max_usage);
    }
    let keys = if version == 1 {
        V1_MEMORY_KEYS
    } else {
        V2_MEMORY_KEYS
    };
    let stats: Map<String, Value> = keys
        .iter()
        .map(|k| {
            (
                (*k).to_owned(),
                json!(m.stats.get(*k).copied().unwrap_or(0)),
            )
        })
        .collect();
    out.insert("stats".into(), Value::Object(stats));
    put_nonzero(&mut out, "failcnt", m.failcnt);
    put_nonzero(&mut out, "limit", m.limit);
    Value::Object(out)
}

fn pids(p: Option<&pb::PidsStats>) -> Value {
    let mut out = Map::new();
    if let Some(p) = p {
        put_nonzero(&mut out, "current", p.current);
        put_nonzero(&mut out, "limit", p.limit);
    }
    Value::Object(out)
}

fn blkio(version: u32, b: Option<&pb::BlkioStats>) -> Value {
    let list = |l: &[pb::BlkioEntry], present: bool| -> Value {
        if !present {
            return Value::Null;
        }
        Value::Array(
            l.iter()
                .map(|e| json!({"major": e.major, "minor": e.minor, "op": e.op, "value": e.value}))
                .collect(),
        )
    };
    let b = b.cloned().unwrap_or_default();
    // v1: every list (empty ones as []); v2: bytes only, null when no device; none: nulls.
    let v1 = version == 1;
    let v2_bytes = version == 2 && !b.io_service_bytes_recursive.is_empty();
    json!({
        "io_service_bytes_recursive": list(&b.io_service_bytes_recursive, v1 || v2_bytes),
        "io_serviced_recursive": list(&b.io_serviced_recursive, v1),
        "io_queue_recursive": list(&b.io_queue_recursive, v1),
        "io_service_time_recursive": list(&b.io_service_time_recursive, v1),
        "io_wait_time_recursive": list(&b.io_wait_time_recursive, v1),
        "io_merged_recursive": list(&b.io_merged_recursive, v1),
        "io_time_recursive": list(&b.io_time_recursive, v1),
        "sectors_recursive": list(&b.sectors_recursive, v1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(version: u32) -> pb::StatsSample {
        let mut stats = std::collections::HashMap::new();
        stats.insert("total_inactive_file".to_owned(), 1024);
        stats.insert("inactive_file".to_owned(), 2048);
        stats.insert("swap".to_owned(), 1);
        pb::StatsSample {
            id: "c".repeat(64),
            name: "/web".to_owned(),
            read: 1_700_000_000_000_000_001,
            cgroup_version: version,
            cpu: Some(pb::CpuStats {
                total_usage: 100,
                percpu_usage: if version == 1 { vec![60, 40] } else { vec![] },
                system_cpu_usage: 1000,
                online_cpus: 2,
                ..Default::default()
            }),
            memory: Some(pb::MemoryStats {
                usage: 4096,
                max_usage: 8192,
                limit: 1 << 30,
                failcnt: 0,
                stats,
            }),
            pids: Some(pb::PidsStats {
                current: 3,
                limit: 0,
            }),
            blkio: Some(pb::BlkioStats {
                io_service_bytes_recursive: vec![pb::BlkioEntry {
                    major: 8,
                    minor: 0,
                    op: if version == 1 { "Read" } else { "read" }.to_owned(),
                    value: 4096,
                }],
                ..Default::default()
            }),
            networks: [(
                "eth0".to_owned(),
                pb::NetworkStats {
                    rx_bytes: 10,
                    tx_bytes: 20,
                    ..Default::default()
                },
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn v1_shape() {
        let v = render(&sample(1));
        assert_eq!(v["name"], "/web");
        assert_eq!(v["read"], "2023-11-14T22:13:20.000000001Z");
        assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["percpu_usage"], json!([60, 40]));
        assert_eq!(v["cpu_stats"]["online_cpus"], 2);
        // precpu of the first sample: zero, without the omitempty numbers.
        assert_eq!(
            v["precpu_stats"],
            json!({"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0},
                   "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}})
        );
        let m = &v["memory_stats"];
        assert_eq!(
            (m["usage"].as_u64(), m["max_usage"].as_u64()),
            (Some(4096), Some(8192))
        );
        assert_eq!(m["stats"]["total_inactive_file"], 1024);
        assert_eq!(m["stats"]["cache"], 0);
        assert!(m["stats"].get("swap").is_none() && m["stats"].get("anon").is_none());
        assert!(m.get("failcnt").is_none());
        assert_eq!(v["pids_stats"], json!({"current": 3}));
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][0]["op"],
            "Read"
        );
        assert_eq!(v["blkio_stats"]["sectors_recursive"], json!([]));
        assert_eq!(v["networks"]["eth0"]["tx_bytes"], 20);
    }

    #[test]
    fn v2_shape() {
        let v = render(&sample(2));
        assert!(v["cpu_stats"]["cpu_usage"].get("percpu_usage").is_none());
        let m = &v["memory_stats"];
        assert!(m.get("max_usage").is_none());
        assert_eq!(m["stats"]["inactive_file"], 2048);
        assert!(m["stats"].get("total_inactive_file").is_none());
        assert_eq!(m["stats"].as_object().unwrap().len(), V2_MEMORY_KEYS.len());
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][0]["op"],
            "read"
        );
        assert_eq!(v["blkio_stats"]["io_serviced_recursive"], Value::Null);
    }

    /// A container that does not run: its name and ID, zero times, empty sections.
    #[test]
    fn stopped() {
        let v = render(&pb::StatsSample {
            id: "c".repeat(64),
            name: "/web".to_owned(),
            ..Default::default()
        });
        assert_eq!(v["read"], "0001-01-01T00:00:00Z");
        assert_eq!(v["memory_stats"], json!({}));
        assert_eq!(v["pids_stats"], json!({}));
        assert_eq!(v["blkio_stats"]["io_service_bytes_recursive"], Value::Null);
        assert!(v.get("networks").is_none());
    }
}
