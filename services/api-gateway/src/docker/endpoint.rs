//! Docker's `EndpointSettings` (a create body's `NetworkingConfig.EndpointsConfig` entries and
//! `POST /networks/{id}/connect`'s `EndpointConfig`) into Berth's endpoint spec: aliases, a
//! fixed address (`--ip`, `--ip6`) and a MAC address; what Berth cannot do yet is refused by
//! the flag that sets it. The operational fields (`IPAddress`, `EndpointID`, ... that clients
//! echo back from an inspect) are ignored, as dockerd ignores them.

use berth_proto::runtime::v1 as pb;
use serde_json::Value;

use crate::{docker::fields, error::ApiError};

/// Settings Berth refuses until it implements them: the key, and the flag named.
const REFUSED: &[(&str, &str)] = &[
    ("DriverOpts", "--driver-opt"),
    ("GwPriority", "--gw-priority"),
];

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
    for (key, flag) in REFUSED {
        if fields::is_set(key, &v[key]) {
            return Err(ApiError::invalid(format!(
                "{flag} is not supported by Berth yet (EndpointSettings.{key})"
            )));
        }
    }
    let ipam = &v["IPAMConfig"];
    if fields::is_set("", &ipam["LinkLocalIPs"]) {
        return Err(ApiError::invalid(
            "--link-local-ip is not supported by Berth yet (IPAMConfig.LinkLocalIPs)",
        ));
    }
    let aliases = match &v["Aliases"] {
        Value::Null => Vec::new(),
        Value::Array(a) => a
            .iter()
            .map(|x| text(x, "Aliases"))
            .collect::<Result<_, _>>()?,
        _ => return Err(ApiError::invalid("invalid JSON: Aliases: not a list")),
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
        ..Default::default()
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
        let err = |v: Value| spec("n", &v).unwrap_err().message;
        assert!(err(json!({"GwPriority": 3})).contains("--gw-priority"));
        assert!(
            err(json!({"IPAMConfig": {"LinkLocalIPs": ["169.254.0.1"]}}))
                .contains("--link-local-ip")
        );
        assert!(err(json!({"Aliases": "x"})).contains("Aliases"));
    }
}
