//! `POST /containers/{id}/update`: Docker's UpdateConfig (the Resources fields and a
//! RestartPolicy) into the runtime's typed update. The CLI sends every field, zero when not
//! asked for; a field Berth cannot change on a container is refused naming its option when it
//! is set, never dropped.

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    docker::{create::check_restart_policy, fields, keys},
    error::ApiError,
};

/// The fields an update changes (case-insensitively, as Go decodes them).
const HONORED: &[&str] = &[
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "BlkioWeight",
    "RestartPolicy",
];

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct UpdateConfig {
    memory: i64,
    memory_swap: i64,
    memory_reservation: i64,
    nano_cpus: i64,
    cpu_shares: i64,
    cpu_period: i64,
    cpu_quota: i64,
    cpuset_cpus: String,
    cpuset_mems: String,
    pids_limit: Option<i64>,
    blkio_weight: u16,
    restart_policy: Option<RestartPolicy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartPolicy {
    name: String,
    maximum_retry_count: i32,
}

/// The typed update for a body; `id` names the container.
pub fn parse(id: String, body: &Value) -> Result<pb::UpdateRequest, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid("invalid JSON: not an object"));
    };
    // Keys as Go would match them onto the struct's fields.
    let mut canonical = serde_json::Map::new();
    for (k, v) in obj {
        let known = HONORED.iter().find(|h| h.eq_ignore_ascii_case(k));
        match known {
            Some(h) => {
                if !v.is_null() {
                    canonical.insert((*h).to_owned(), v.clone());
                }
            }
            None => refuse_if_set(k, v)?,
        }
    }
    // And so inside the RestartPolicy object.
    let mut canonical = Value::Object(canonical);
    keys::Schema::of::<UpdateConfig>()
        .canonicalize(&mut canonical)
        .map_err(|e| ApiError::invalid(format!("invalid JSON: {e}")))?;
    if let Some(rp) = canonical.get("RestartPolicy") {
        check_restart_policy(rp)?;
    }
    let u: UpdateConfig = keys::parse(canonical).map_err(ApiError::invalid)?;
    let restart_policy = u.restart_policy.filter(|p| !p.name.is_empty()).map(|p| {
        use pb::restart_policy::Mode;
        let mode = match p.name.as_str() {
            "always" => Mode::Always,
            "unless-stopped" => Mode::UnlessStopped,
            "on-failure" => Mode::OnFailure,
            _ => Mode::No,
        };
        pb::RestartPolicy {
            mode: mode as i32,
            maximum_retry_count: p.maximum_retry_count,
        }
    });
    Ok(pb::UpdateRequest {
        id,
        resources: Some(pb::Resources {
            memory: u.memory,
            memory_swap: u.memory_swap,
            memory_reservation: u.memory_reservation,
            nano_cpus: u.nano_cpus,
            cpu_shares: u.cpu_shares,
            cpu_period: u.cpu_period,
            cpu_quota: u.cpu_quota,
            cpuset_cpus: u.cpuset_cpus,
            cpuset_mems: u.cpuset_mems,
            pids_limit: u.pids_limit,
            blkio_weight: u32::from(u.blkio_weight),
            ..Default::default()
        }),
        restart_policy,
    })
}

/// A field an update cannot change: refused when set, named by its `docker run` option.
fn refuse_if_set(key: &str, value: &Value) -> Result<(), ApiError> {
    let field = fields::FIELDS.iter().find(|f| {
        f.path
            .strip_prefix("HostConfig.")
            .is_some_and(|p| p.eq_ignore_ascii_case(key))
    });
    let Some(field) = field else {
        // Not a Resources field: Go's decoder ignores it, and so does dockerd.
        return Ok(());
    };
    if fields::is_set(field.path, value) {
        return Err(ApiError::invalid(format!(
            "{} is not supported by docker update in Berth ({})",
            field.flag, field.path
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// What `docker update -m 64m --restart always` sends (every field, most zero).
    fn cli_body() -> Value {
        json!({
            "CpuShares": 0, "Memory": 67_108_864, "NanoCpus": 0, "CgroupParent": "",
            "BlkioWeight": 0, "BlkioWeightDevice": null, "BlkioDeviceReadBps": null,
            "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
            "CpusetCpus": "", "CpusetMems": "", "Devices": null, "DeviceCgroupRules": null,
            "DeviceRequests": null, "KernelMemory": 0, "KernelMemoryTCP": 0,
            "MemoryReservation": 0, "MemorySwap": 0, "MemorySwappiness": null,
            "OomKillDisable": null, "PidsLimit": null, "Ulimits": null, "CpuCount": 0,
            "CpuPercent": 0, "IOMaximumIOps": 0, "IOMaximumBandwidth": 0,
            "RestartPolicy": {"Name": "always", "MaximumRetryCount": 0}
        })
    }

    #[test]
    fn the_clis_body() {
        let u = parse("x".to_owned(), &cli_body()).unwrap();
        let r = u.resources.unwrap();
        assert_eq!((r.memory, r.pids_limit), (64 << 20, None));
        assert_eq!(
            u.restart_policy.unwrap().mode,
            pb::restart_policy::Mode::Always as i32
        );
    }

    #[test]
    fn what_cannot_be_updated_is_named() {
        let mut b = cli_body();
        b["KernelMemory"] = json!(1 << 20);
        let e = parse("x".to_owned(), &b).unwrap_err();
        assert!(e.message.contains("--kernel-memory"), "{e:?}");
        let mut b = cli_body();
        b["CpuRealtimeRuntime"] = json!(1000);
        assert!(parse("x".to_owned(), &b).is_err());
        let mut b = cli_body();
        b["RestartPolicy"] = json!({"Name": "sometimes"});
        let e = parse("x".to_owned(), &b).unwrap_err();
        assert!(e.message.contains("unknown policy 'sometimes'"), "{e:?}");
        // No restart policy: unchanged.
        let mut b = cli_body();
        b["RestartPolicy"] = json!({"Name": "", "MaximumRetryCount": 0});
        assert!(parse("x".to_owned(), &b).unwrap().restart_policy.is_none());
        // A nested key in another case is the field it names, as Go decodes it.
        let mut b = cli_body();
        b["restartpolicy"] = json!({"name": "on-failure", "maximumretrycount": 3});
        b.as_object_mut().unwrap().remove("RestartPolicy");
        let p = parse("x".to_owned(), &b).unwrap().restart_policy.unwrap();
        assert_eq!(p.mode, pb::restart_policy::Mode::OnFailure as i32);
        assert_eq!(p.maximum_retry_count, 3);
        b["restartpolicy"] = json!({"name": "sometimes"});
        let e = parse("x".to_owned(), &b).unwrap_err();
        assert!(e.message.contains("unknown policy 'sometimes'"), "{e:?}");
    }
}
