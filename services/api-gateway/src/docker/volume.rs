//! Docker's volume shapes: the create body into the volumes service's typed request, the
//! `filters` of `GET /volumes` and `POST /volumes/prune` into typed filters, and the `Volume`
//! object rendered from the typed record.

use std::collections::HashMap;

use berth_proto::volumes::v1 as pb;
use berth_types::Filters;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{docker::keys, error::ApiError};

/// Filter keys `GET /volumes` accepts.
const LIST_FILTERS: &[&str] = &["dangling", "driver", "label", "name"];
/// Filter keys `POST /volumes/prune` accepts.
const PRUNE_FILTERS: &[&str] = &["label", "label!", "all"];

fn label(v: &str) -> pb::LabelFilter {
    let (key, value) = super::split_label(v);
    pb::LabelFilter { key, value }
}

/// `filters` of `GET /volumes`.
pub fn list_filters(text: &str) -> Result<pb::VolumeFilters, ApiError> {
    let f = Filters::parse(text)?;
    f.validate(LIST_FILTERS)?;
    let strings = |key: &str| f.values(key).map(str::to_owned).collect::<Vec<_>>();
    Ok(pb::VolumeFilters {
        dangling: f.bool_value("dangling")?,
        drivers: strings("driver"),
        labels: f.values("label").map(label).collect(),
        names: strings("name"),
        labels_not: Vec::new(),
    })
}

/// `filters` of `POST /volumes/prune`: the filters, and whether named volumes go too
/// (`all`, API 1.42 and later; older APIs prune every unused volume).
pub fn prune_filters(text: &str) -> Result<(pb::VolumeFilters, bool), ApiError> {
    let f = Filters::parse(text)?;
    f.validate(PRUNE_FILTERS)?;
    let all = f.bool_value("all")?.unwrap_or(false);
    Ok((
        pb::VolumeFilters {
            labels: f.values("label").map(label).collect(),
            labels_not: f.values("label!").map(label).collect(),
            ..Default::default()
        },
        all,
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    driver_opts: Option<HashMap<String, String>>,
    labels: Option<HashMap<String, String>>,
    cluster_volume_spec: Option<Value>,
}

/// `POST /volumes/create`'s body.
pub fn create_request(body: Value) -> Result<pb::CreateRequest, ApiError> {
    let b: CreateBody = keys::parse(body).map_err(ApiError::invalid)?;
    if b.cluster_volume_spec.is_some_and(|v| !v.is_null()) {
        return Err(ApiError::invalid(
            "cluster volumes are not supported by Berth (ClusterVolumeSpec)",
        ));
    }
    Ok(pb::CreateRequest {
        name: b.name,
        driver: b.driver,
        labels: b.labels.unwrap_or_default(),
        options: b.driver_opts.unwrap_or_default(),
        anonymous: false,
    })
}

fn map_or_null(m: &HashMap<String, String>) -> Value {
    if m.is_empty() { Value::Null } else { json!(m) }
}

/// The `Volume` object.
pub fn inspect(v: &pb::Volume) -> Value {
    json!({
        "CreatedAt": v.created_at,
        "Driver": v.driver,
        "Labels": map_or_null(&v.labels),
        "Mountpoint": v.mountpoint,
        "Name": v.name,
        "Options": map_or_null(&v.options),
        "Scope": "local",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_as_docker_takes_them() {
        let f = list_filters(r#"{"dangling":{"true":true},"label":{"a=b":true}}"#).unwrap();
        assert_eq!(f.dangling, Some(true));
        assert_eq!(f.labels[0].value.as_deref(), Some("b"));
        assert_eq!(
            list_filters(r#"{"until":{"1h":true}}"#)
                .unwrap_err()
                .message,
            "invalid filter 'until'"
        );
        let (_, all) = prune_filters(r#"{"all":{"true":true}}"#).unwrap();
        assert!(all);
        let (f, all) = prune_filters(r#"{"label!":["k"]}"#).unwrap();
        assert!(!all && f.labels_not.len() == 1);
    }

    #[test]
    fn create_body_and_shape() {
        let r =
            create_request(json!({"Name": "v", "Labels": {"a": "b"}, "DriverOpts": null})).unwrap();
        assert_eq!(r.name, "v");
        let v = inspect(&pb::Volume {
            name: "v".to_owned(),
            driver: "local".to_owned(),
            ..Default::default()
        });
        assert_eq!(v["Scope"], "local");
        assert_eq!(v["Labels"], Value::Null);
    }
}
