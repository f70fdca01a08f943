//! Docker's network shapes: the create body parsed into the network service's typed request,
//! the `filters` of `GET /networks` and `POST /networks/prune` into typed filters, and
//! `NetworkInspect` rendered from the typed record.

use std::collections::HashMap;

use berth_proto::network::v1 as pb;
use berth_types::Filters;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    docker::{container::rfc3339, keys},
    error::ApiError,
};

/// Filter keys `GET /networks` accepts.
const LIST_FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];
/// Filter keys `POST /networks/prune` accepts.
const PRUNE_FILTERS: &[&str] = &["until", "label", "label!"];

fn label(v: &str) -> pb::LabelFilter {
    let (key, value) = super::split_label(v);
    pb::LabelFilter { key, value }
}

/// `filters` of `GET /networks`.
pub fn list_filters(text: &str) -> Result<pb::NetworkFilters, ApiError> {
    let f = Filters::parse(text)?;
    f.validate(LIST_FILTERS)?;
    for t in f.values("type") {
        if !matches!(t, "custom" | "builtin") {
            return Err(ApiError::invalid(format!("invalid filter: 'type'='{t}'")));
        }
    }
    let strings = |key: &str| f.values(key).map(str::to_owned).collect::<Vec<_>>();
    Ok(pb::NetworkFilters {
        dangling: f.bool_value("dangling")?,
        drivers: strings("driver"),
        ids: strings("id"),
        labels: f.values("label").map(label).collect(),
        names: strings("name"),
        scopes: strings("scope"),
        types: strings("type"),
        labels_not: Vec::new(),
        until: None,
    })
}

/// `filters` of `POST /networks/prune`.
pub fn prune_filters(text: &str, now: i64) -> Result<pb::NetworkFilters, ApiError> {
    let f = Filters::parse(text)?;
    f.validate(PRUNE_FILTERS)?;
    let until = f
        .values("until")
        .map(|v| crate::docker::image_filters::parse_until(v, now))
        .collect::<Result<Vec<i64>, _>>()?
        .into_iter()
        .min();
    Ok(pb::NetworkFilters {
        labels: f.values("label").map(label).collect(),
        labels_not: f.values("label!").map(label).collect(),
        until,
        ..Default::default()
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct CreateBody {
    name: String,
    driver: String,
    scope: String,
    #[serde(rename = "EnableIPv4")]
    enable_ipv4: Option<bool>,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<Ipam>,
    internal: bool,
    attachable: bool,
    ingress: bool,
    config_only: bool,
    config_from: Option<ConfigFrom>,
    options: Option<HashMap<String, String>>,
    labels: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Ipam {
    driver: String,
    options: Option<HashMap<String, String>>,
    config: Option<Vec<IpamConfig>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfig {
    subnet: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    gateway: String,
    auxiliary_addresses: Option<HashMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ConfigFrom {
    network: String,
}

/// `POST /networks/{id}/connect`'s and `/disconnect`'s body.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AttachBody {
    pub container: String,
    /// Connect: the EndpointSettings (`endpoint::spec` reads them).
    pub endpoint_config: Value,
    /// Disconnect.
    pub force: bool,
}

/// A connect or disconnect body, keys in any case as Go decodes them.
pub fn attach_body(body: Value) -> Result<AttachBody, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("invalid JSON: not an object"));
    }
    keys::parse(body).map_err(ApiError::invalid)
}

/// `POST /networks/create`'s body.
pub fn create_request(body: Value) -> Result<pb::CreateNetworkRequest, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("invalid JSON: not an object"));
    }
    let b: CreateBody = keys::parse(body).map_err(ApiError::invalid)?;
    if b.name.trim().is_empty() {
        return Err(ApiError::invalid("network name must not be empty"));
    }
    let refuse = |what: &str| {
        Err(ApiError::invalid(format!(
            "{what} is not supported by Berth"
        )))
    };
    if b.ingress {
        return refuse("--ingress (a swarm feature)");
    }
    if b.config_only
        || b.config_from
            .as_ref()
            .is_some_and(|c| !c.network.is_empty())
    {
        return refuse("--config-only and --config-from (swarm features)");
    }
    if !matches!(b.scope.as_str(), "" | "local") {
        return refuse(&format!("--scope {}", b.scope));
    }
    if b.enable_ipv4 == Some(false) {
        return refuse("--ipv4=false");
    }
    let ipam = b.ipam.unwrap_or_default();
    Ok(pb::CreateNetworkRequest {
        name: b.name,
        driver: b.driver,
        internal: b.internal,
        attachable: b.attachable,
        enable_ipv6: b.enable_ipv6.unwrap_or(false),
        ipam_driver: ipam.driver,
        ipam_options: ipam.options.unwrap_or_default(),
        ipam: ipam
            .config
            .unwrap_or_default()
            .into_iter()
            .map(|c| pb::IpamConfig {
                subnet: c.subnet,
                ip_range: c.ip_range,
                gateway: c.gateway,
                aux_addresses: c.auxiliary_addresses.unwrap_or_default(),
            })
            .collect(),
        options: b.options.unwrap_or_default(),
        labels: b.labels.unwrap_or_default(),
    })
}

/// `NetworkInspect`; `containers`: with the endpoints (inspect) or `{}` (list).
pub fn inspect(info: &pb::NetworkInfo, containers: bool) -> Value {
    let n = info.network.clone().unwrap_or_default();
    let config: Vec<Value> = n
        .ipam
        .iter()
        .map(|c| {
            let mut v = json!({"Subnet": c.subnet, "Gateway": c.gateway});
            if !c.ip_range.is_empty() {
                v["IPRange"] = json!(c.ip_range);
            }
            if !c.aux_addresses.is_empty() {
                v["AuxiliaryAddresses"] = json!(c.aux_addresses);
            }
            v
        })
        .collect();
    let mut eps = Map::new();
    if containers {
        for e in &info.endpoints {
            eps.insert(
                e.container_id.clone(),
                json!({
                    "Name": e.container_name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac_address,
                    "IPv4Address": format!("{}/{}", e.ipv4_address, e.ipv4_prefix_len),
                    "IPv6Address": if e.ipv6_address.is_empty() {
                        String::new()
                    } else {
                        format!("{}/{}", e.ipv6_address, e.ipv6_prefix_len)
                    },
                }),
            );
        }
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": rfc3339(n.created),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": eps,
        "Options": n.options,
        "Labels": n.labels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_body_becomes_a_request() {
        let body = json!({"Name": "mynet", "CheckDuplicate": true, "Driver": "bridge",
            "Scope": "", "EnableIPv6": false, "IPAM": {"Driver": "default", "Options": {},
            "Config": [{"Subnet": "10.7.0.0/24", "IPRange": "10.7.0.128/25", "Gateway": "10.7.0.1",
            "AuxiliaryAddresses": {"a": "10.7.0.5"}}]}, "Internal": false, "Attachable": false,
            "Ingress": false, "ConfigOnly": false, "ConfigFrom": null, "Options": {},
            "Labels": {"k": "v"}});
        let r = create_request(body).unwrap();
        assert_eq!(r.name, "mynet");
        assert_eq!(r.ipam[0].ip_range, "10.7.0.128/25");
        assert_eq!(r.ipam[0].aux_addresses["a"], "10.7.0.5");
        assert_eq!(r.labels["k"], "v");
        let e = create_request(json!({"Name": "x", "Ingress": true})).unwrap_err();
        assert!(e.message.contains("--ingress"), "{}", e.message);
        assert!(create_request(json!({"Name": ""})).is_err());
        assert!(create_request(json!({"Name": 3})).is_err());
        assert!(create_request(json!([1])).is_err());
    }

    #[test]
    fn filters_are_checked() {
        let f = list_filters(r#"{"type":{"custom":true},"name":{"my":true}}"#).unwrap();
        assert_eq!(f.types, ["custom"]);
        assert_eq!(f.names, ["my"]);
        assert!(list_filters(r#"{"type":{"other":true}}"#).is_err());
        assert!(list_filters(r#"{"until":{"1h":true}}"#).is_err());
        let p = prune_filters(r#"{"until":["100"],"label!":["a=b"]}"#, 1000).unwrap();
        assert_eq!(p.until, Some(100));
        assert_eq!(p.labels_not[0].value.as_deref(), Some("b"));
        assert!(prune_filters(r#"{"name":["x"]}"#, 0).is_err());
    }

    #[test]
    fn inspect_has_docker_keys() {
        let info = pb::NetworkInfo {
            network: Some(pb::NetworkRecord {
                id: "a".repeat(64),
                name: "bridge".to_owned(),
                driver: "bridge".to_owned(),
                created: 1_700_000_000_000_000_000,
                ipam: vec![pb::IpamConfig {
                    subnet: "172.18.0.0/16".to_owned(),
                    gateway: "172.18.0.1".to_owned(),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            endpoints: vec![pb::Endpoint {
                container_id: "c".repeat(64),
                container_name: "web".to_owned(),
                ipv4_address: "172.18.0.2".to_owned(),
                ipv4_prefix_len: 16,
                ..Default::default()
            }],
        };
        let v = inspect(&info, true);
        assert_eq!(v["IPAM"]["Config"][0]["Subnet"], "172.18.0.0/16");
        assert_eq!(
            v["Containers"]["c".repeat(64)]["IPv4Address"],
            "172.18.0.2/16"
        );
        assert_eq!(v["Created"], "2023-11-14T22:13:20Z");
        assert_eq!(inspect(&info, false)["Containers"], json!({}));
    }
}
