//! deploy/: the systemd units verify, the Prometheus configuration loads, the sample
//! daemon.json is accepted by Berth's own parser, and the dashboard is valid JSON.

use std::path::{Path, PathBuf};

use berth_testutil::{run, text};

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

#[test]
fn systemd_units_verify() {
    let out = run(std::process::Command::new("bash").arg(deploy().join("verify-units.sh")));
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn prometheus_config_loads() {
    let out = run(std::process::Command::new("promtool")
        .args(["check", "config"])
        .arg(deploy().join("prometheus/prometheus.yml")));
    assert!(out.status.success(), "{:?}", text(&out));
}

#[test]
fn sample_daemon_json_is_accepted() {
    let path = deploy().join("daemon.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = berth_config::DaemonConfig::parse(&path, &text).unwrap();
    assert!(
        cfg.metrics_addr(berth_types::ServiceName::ApiGateway)
            .is_some()
    );
    for s in berth_types::ServiceName::backends() {
        assert!(cfg.metrics_addr(s).is_some(), "{s} has a metrics address");
    }
}

#[test]
fn grafana_dashboard_is_json_with_panels() {
    let text = std::fs::read_to_string(deploy().join("grafana/berth-dashboard.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["panels"].as_array().is_some_and(|p| p.len() >= 5), "{v}");
    // The containers row plots the runtime's per-container metrics.
    assert!(text.contains(r#""title": "Containers (runtime)""#));
    for metric in [
        "berth_container_cpu_seconds_total",
        "berth_container_memory_usage_bytes",
        "berth_container_restarts_total",
        "berth_container_oom_kills_total",
    ] {
        assert!(text.contains(metric), "{metric} is not plotted");
    }
}
