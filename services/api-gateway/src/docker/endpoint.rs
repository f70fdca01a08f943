//! Docker's `EndpointSettings` (a create body's `NetworkingConfig.EndpointsConfig` entries and
//! `POST /networks/{id}/connect`'s `EndpointConfig`) into Berth's endpoint spec: aliases, a
//! fixed address (`--ip`, `--ip6`), link-local addresses (`--link-local-ip`), a MAC address,
//! driver options (`--driver-opt`, checked by the network service) and the gateway priority
//! (`--gw-priority`). The operational fields (`IPAddress`, `EndpointID`, ... that clients
//! echo back from an inspect) are ignored, as dockerd ignores them.

use std::collections::HashMap;

use berth_proto::runtime::v1 as pb;
use serde::{Deserialize, de::IgnoredAny};
use serde_json::Value;

use crate::{docker::keys, error::ApiError};

/// Docker's EndpointSettings. The operational fields a client echoes back from an inspect are
/// listed so that they are known keys, and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct EndpointSettings {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<IpamConfig>,
    links: Option<Vec<String>>,
    aliases: Option<Vec<String>>,
    mac_address: String,
    driver_opts: Option<HashMap<String, String>>,
    gw_priority: i64,
    #[serde(rename = "NetworkID")]
    network_id: IgnoredAny,
    #[serde(rename = "EndpointID")]
    endpoint_id: IgnoredAny,
    gateway: IgnoredAny,
    #[serde(rename = "IPAddress")]
    ip_address: IgnoredAny,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: IgnoredAny,
    #[serde(rename = "IPv6Gateway")]
    ipv6_gateway: IgnoredAny,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: IgnoredAny,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    global_ipv6_prefix_len: IgnoredAny,
    #[serde(rename = "DNSNames")]
    dns_names: IgnoredAny,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IpamConfig {
    #[serde(rename = "IPv4Address")]
    ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    ipv6_address: String,
    #[serde(rename = "LinkLocalIPs")]
    link_local_ips: Option<Vec<String>>,
}

/// The keys of an EndpointSettings object (see `keys.rs`).
pub fn schema() -> keys::Schema {
    keys::Schema::of::<EndpointSettings>()
}

/// One endpoint's settings for `network` (as the client named it).
pub fn spec(network: &str, v: &Value) -> Result<pb::EndpointSpec, ApiError> {
    if !(v.is_null() || v.is_object()) {
        return Err(ApiError::invalid(
            "invalid JSON: EndpointSettings: not an object",
        ));
    }
    let e: EndpointSettings = if v.is_null() {
        EndpointSettings::default()
    } else {
        keys::parse(v.clone()).map_err(ApiError::invalid)?
    };
    let gw_priority = i32::try_from(e.gw_priority)
        .map_err(|_| ApiError::invalid("invalid JSON: GwPriority: not a 32-bit integer"))?;
    let ipam = e.ipam_config.unwrap_or_default();
    // Legacy links on a user-defined network (the CLI copies --link here): names the
    // embedded DNS server answers for this container.
    let links = super::links::parse(e.links.unwrap_or_default())?;
    Ok(pb::EndpointSpec {
        network: network.to_owned(),
        aliases: e.aliases.unwrap_or_default(),
        links,
        ipv4_address: ipam.ipv4_address,
        ipv6_address: ipam.ipv6_address,
        mac_address: e.mac_address,
        link_local_ips: ipam.link_local_ips.unwrap_or_default(),
        driver_opts: e.driver_opts.unwrap_or_default(),
        gw_priority: gw_priority.into(),
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
        assert!(spec("n", &json!({"GwPriority": "3"})).is_err());
        assert!(spec("n", &json!({"DriverOpts": {"a": 1}})).is_err());
        assert!(err(json!({"GwPriority": 1i64 << 40})).contains("GwPriority"));
        assert!(err(json!({"Aliases": "x"})).contains("Aliases"));
        // Keys in another case are the fields they name, as Go decodes them.
        let s = spec(
            "n",
            &json!({"aliases": ["db"], "ipamconfig": {"ipv4address": "10.0.0.5"},
                    "MACADDRESS": "02:42:0a:00:00:05", "ipaddress": null}),
        )
        .unwrap();
        assert_eq!(s.aliases, ["db"]);
        assert_eq!(s.ipv4_address, "10.0.0.5");
        assert_eq!(s.mac_address, "02:42:0a:00:00:05");
        assert_eq!(spec("n", &json!({"gwpriority": 3})).unwrap().gw_priority, 3);
    }
}
