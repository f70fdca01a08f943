//! Health checks in Docker's dialect: `Config.Healthcheck` of a create body (moby's
//! HealthConfig) checked as dockerd checks it (`validateHealthCheck`) and turned into the
//! runtime's typed check; `State.Health` for inspect; the `(healthy)` of `docker ps`.

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{docker::container::rfc3339, error::ApiError};

/// Docker's `MinimumDuration` for the check's durations, in nanoseconds (1ms).
const MINIMUM_DURATION: i64 = 1_000_000;

/// `Config.Healthcheck` as the CLI and the SDKs send it; durations in nanoseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HealthConfig {
    test: Option<Vec<String>>,
    interval: i64,
    timeout: i64,
    start_period: i64,
    start_interval: i64,
    retries: i64,
}

/// The typed check of a create body's `Healthcheck`; None when it has none (the image's
/// applies). What is left unset is the image's, field by field.
pub fn spec(h: Option<HealthConfig>) -> Result<Option<pb::HealthCheck>, ApiError> {
    let Some(h) = h else { return Ok(None) };
    for (name, d) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
    ] {
        if d != 0 && d < MINIMUM_DURATION {
            return Err(ApiError::invalid(format!(
                "{name} in Healthcheck cannot be less than 1ms"
            )));
        }
    }
    if h.retries < 0 {
        return Err(ApiError::invalid(
            "Retries in Healthcheck cannot be negative",
        ));
    }
    Ok(Some(pb::HealthCheck {
        test: h.test.unwrap_or_default(),
        interval: h.interval,
        timeout: h.timeout,
        start_period: h.start_period,
        start_interval: h.start_interval,
        retries: i32::try_from(h.retries).unwrap_or(i32::MAX),
    }))
}

/// inspect's `State.Health`: `{Status, FailingStreak, Log: [{Start, End, ExitCode, Output}]}`.
pub fn inspect(h: &pb::HealthState) -> Value {
    let log: Vec<Value> = h
        .log
        .iter()
        .map(|p| {
            json!({
                "Start": rfc3339(p.start),
                "End": rfc3339(p.end),
                "ExitCode": p.exit_code,
                "Output": p.output,
            })
        })
        .collect();
    json!({
        "Status": status(h),
        "FailingStreak": h.failing_streak,
        "Log": log,
    })
}

fn status(h: &pb::HealthState) -> &str {
    match h.status.as_str() {
        s @ ("starting" | "healthy") => s,
        _ => "unhealthy",
    }
}

/// What `docker ps` adds to a running container's status: ` (healthy)`, ` (health: starting)`.
pub fn status_suffix(h: Option<&pb::HealthState>) -> String {
    match h.map(status) {
        None => String::new(),
        Some("starting") => " (health: starting)".to_owned(),
        Some(s) => format!(" ({s})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Option<pb::HealthCheck>, String> {
        spec(serde_json::from_value(v).unwrap()).map_err(|e| e.message)
    }

    #[test]
    fn checks_as_dockerd_checks_them() {
        let h = parse(
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 1_000_000_000i64,
            "Retries": 2, "StartInterval": 5_000_000}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.test, ["CMD-SHELL", "true"]);
        assert_eq!(
            (h.interval, h.retries, h.start_interval),
            (1_000_000_000, 2, 5_000_000)
        );
        assert_eq!(
            parse(json!({"Test": ["NONE"]})).unwrap().unwrap().test,
            ["NONE"]
        );
        for (field, msg) in [
            (
                "Interval",
                "Interval in Healthcheck cannot be less than 1ms",
            ),
            ("Timeout", "Timeout in Healthcheck cannot be less than 1ms"),
            (
                "StartPeriod",
                "StartPeriod in Healthcheck cannot be less than 1ms",
            ),
            (
                "StartInterval",
                "StartInterval in Healthcheck cannot be less than 1ms",
            ),
        ] {
            assert_eq!(parse(json!({ field: 999_999 })).unwrap_err(), msg);
            assert_eq!(parse(json!({ field: -5 })).unwrap_err(), msg);
        }
        assert_eq!(
            parse(json!({"Retries": -1})).unwrap_err(),
            "Retries in Healthcheck cannot be negative"
        );
        assert_eq!(spec(None).unwrap(), None);
    }

    #[test]
    fn inspect_and_ps_show_it_as_docker_does() {
        let h = pb::HealthState {
            status: "starting".to_owned(),
            failing_streak: 1,
            log: vec![pb::HealthProbe {
                start: 1_700_000_000_000_000_000,
                end: 1_700_000_001_000_000_000,
                exit_code: 1,
                output: "no\n".to_owned(),
            }],
        };
        let v = inspect(&h);
        assert_eq!(v["Status"], "starting");
        assert_eq!(v["FailingStreak"], 1);
        assert_eq!(v["Log"][0]["ExitCode"], 1);
        assert_eq!(v["Log"][0]["Output"], "no\n");
        assert_eq!(v["Log"][0]["Start"], "2023-11-14T22:13:20Z");
        assert_eq!(status_suffix(Some(&h)), " (health: starting)");
        let healthy = pb::HealthState {
            status: "healthy".to_owned(),
            ..Default::default()
        };
        assert_eq!(status_suffix(Some(&healthy)), " (healthy)");
        assert_eq!(
            status_suffix(Some(&pb::HealthState::default())),
            " (unhealthy)"
        );
        assert_eq!(status_suffix(None), "");
    }
}
