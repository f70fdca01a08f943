//! Docker's `EndpointSettings` (a create body's `NetworkingConfig.EndpointsConfig` entries and
//! `POST /networks/{id}/connect`'s `EndpointConfig`) into Berth's endpoint spec: aliases, a
//! fixed address (`--ip`, `--ip6`), link-local addresses (`--link-local-ip`), a MAC address,
//! driver options (`--driver-opt`, checked by the network service) and the gateway priority
//! (`--gw-priority`). The operational fields (`IPAddress`, `EndpointID`, ... that clients
//! echo back from an inspect) are ignored, as dockerd ignores them.

use std::collections::HashMap;

use berth_proto::runtime::v1 as pb;
use serde_json::Value;

use crate::error::ApiError;

fn text(v: &Value, what: &str) -> Result<String, ApiError> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        _ => Err(ApiError::invalid(format!(
            "invalid JSON: {what}: not a string"
        ))),
    }
}

/// One endpoint's settings for `network` (as the client named it).
pub fn spec(network: &str, v: &Value) -> Result<pb::EndpointSpec, ApiError> {
    if !(v.is_null() || v.is_object()) {
        return Err(ApiError::invalid(
            "invalid JSON: EndpointSettings: not an object",
        ));
    }
    let ipam = &v["IPAMConfig"];
    let list = |v: &Value, what: &str| -> Result<Vec<String>, ApiError> {
        match v {
            Value::Null => Ok(Vec::new()),
            Value::Array(a) => a.iter().map(|x| text(x, what)).collect(),
            _ => Err(ApiError::invalid(format!(
                "invalid JSON: {what}: not a list"
            ))),
        }
    };
    let aliases = list(&v["Aliases"], "Aliases")?;
    let link_local_ips = list(&ipam["LinkLocalIPs"], "LinkLocalIPs")?;
    let driver_opts = match &v["DriverOpts"] {
        Value::Null => HashMap::new(),
        Value::Object(m) => m
            .iter()
            .map(|(k, x)| Ok((k.clone(), text(x, "DriverOpts")?)))
            .collect::<Result<_, ApiError>>()?,
        _ => return Err(ApiError::invalid("invalid JSON: DriverOpts: not a map")),
    };
    let gw_priority = match &v["GwPriority"] {
        Value::Null => 0,
        x => x
            .as_i64()
            .filter(|p| i32::try_from(*p).is_ok())
            .ok_or_else(|| ApiError::invalid("invalid JSON: GwPriority: not an integer"))?,
    };
    // Legacy links on a user-defined network (the CLI copies --link here): names the
    // embedded DNS server answers for this container.
    let links = match &v["Links"] {
        Value::Null => Vec::new(),
        Value::Array(a) => super::links::parse(
            a.iter()
                .map(|x| text(x, "Links"))
                .collect::<Result<_, _>>()?,
        )?,
        _ => return Err(ApiError::invalid("invalid JSON: Links: not a list")),
    };
    Ok(pb::EndpointSpec {
        network: network.to_owned(),
        aliases,
        links,
        ipv4_address: text(&ipam["IPv4Address"], "IPv4Address")?,
        ipv6_address: text(&ipam["IPv6Address"], "IPv6Address")?,
        mac_address: text(&v["MacAddress"], "MacAddress")?,
        link_local_ips,
        driver_opts,
        gw_priority,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn settings_become_a_spec_or_a_refusal() {
        let s = spec(
            "mynet",
            &json!({"Aliases": ["db"], "IPAMConfig": {"IPv4Address": "10.0.0.5"},
                    "MacAddress": "02:42:0a:00:00:05", "IPAddress": "1.2.3.4",
                    "EndpointID": "x", "Links": null, "GwPriority": 0}),
        )
        .unwrap();
        assert_eq!(s.network, "mynet");
        assert_eq!(s.aliases, ["db"]);
        assert_eq!(s.ipv4_address, "10.0.0.5");
        assert_eq!(s.mac_address, "02:42:0a:00:00:05");
        assert_eq!(spec("n", &Value::Null).unwrap().network, "n");
        let s = spec(
            "n",
            &json!({"GwPriority": -3, "IPAMConfig": {"LinkLocalIPs": ["169.254.0.1"]},
                    "DriverOpts": {"com.docker.network.endpoint.ifname": "foo0"}}),
        )
        .unwrap();
        assert_eq!(s.gw_priority, -3);
        assert_eq!(s.link_local_ips, ["169.254.0.1"]);
        assert_eq!(s.driver_opts["com.docker.network.endpoint.ifname"], "foo0");
        let err = |v: Value| spec("n", &v).unwrap_err().message;
        assert!(err(json!({"GwPriority": "3"})).contains("GwPriority"));
        assert!(err(json!({"DriverOpts": {"a": 1}})).contains("DriverOpts"));
        assert!(err(json!({"Aliases": "x"})).contains("Aliases"));
    }
}
