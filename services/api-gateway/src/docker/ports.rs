//! Published ports in Docker's dialect: `HostConfig.PortBindings` parsed into the spec's
//! bindings, and rendered back for inspect (`HostConfig.PortBindings`, `NetworkSettings.Ports`)
//! and for `docker ps` (the summary's `Ports`).

use std::collections::{BTreeMap, HashMap};

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::ApiError;

/// One entry of a PortBindings list.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HostBinding {
    host_ip: String,
    host_port: String,
}

/// `HostConfig.PortBindings`: `{"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}`.
pub type PortBindings = HashMap<String, Option<Vec<HostBinding>>>;

fn invalid(msg: String) -> ApiError {
    ApiError::invalid(msg)
}

/// "80/tcp" (or "80", tcp) into the port and protocol.
pub fn container_port(key: &str) -> Result<(u32, String), ApiError> {
    let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid(format!("invalid proto: {proto}")));
    }
    if proto == "sctp" {
        return Err(invalid(format!(
            "publishing {key}: sctp ports are not supported by Berth yet"
        )));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| invalid(format!("invalid containerPort: {port}")))?;
    Ok((u32::from(port), proto))
}

fn host_port(s: &str) -> Result<(), ApiError> {
    let bad = || invalid(format!("invalid hostPort: {s}"));
    let one = |p: &str| p.parse::<u16>().map_err(|_| bad());
    match s.split_once('-') {
        _ if s.is_empty() => Ok(()),
        None => one(s).map(|_| ()),
        Some((a, b)) => {
            if one(a)? > one(b)? {
                return Err(bad());
            }
            Ok(())
        }
    }
}

/// The bindings of a create body, checked, in a stable order (port, protocol, as given).
pub fn parse(bindings: Option<PortBindings>) -> Result<Vec<pb::PortBinding>, ApiError> {
    let mut out = Vec::new();
    let mut keys: Vec<(String, Option<Vec<HostBinding>>)> =
        bindings.unwrap_or_default().into_iter().collect();
    keys.sort_by(|a, b| a.0.cmp(&b.0));
    for (key, list) in keys {
        let (port, protocol) = container_port(&key)?;
        for b in list.unwrap_or_default() {
            let ip = b.host_ip.trim_start_matches('[').trim_end_matches(']');
            if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
                return Err(invalid(format!("invalid IP address: {ip}")));
            }
            host_port(&b.host_port)?;
            out.push(pb::PortBinding {
                container_port: port,
                protocol: protocol.clone(),
                host_ip: ip.to_owned(),
                host_port: b.host_port,
            });
        }
    }
    Ok(out)
}

/// Ports are published on a network: with `--network host` or `none` there is none to publish
/// on (dockerd discards them with a warning; Berth refuses them).
pub fn for_mode(
    mode: &str,
    bindings: Vec<pb::PortBinding>,
) -> Result<Vec<pb::PortBinding>, ApiError> {
    if !bindings.is_empty() && matches!(mode, "host" | "none") {
        return Err(invalid(format!(
            "published ports (--publish) are not supported with --network {mode}"
        )));
    }
    Ok(bindings)
}

/// `--dns`: IP addresses (dockerd: "<ip> is not an ip address").
pub fn dns_servers(v: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let v = v.unwrap_or_default();
    if let Some(bad) = v.iter().find(|s| s.parse::<std::net::IpAddr>().is_err()) {
        return Err(invalid(format!("{bad} is not an ip address")));
    }
    Ok(v)
}

/// `--add-host`: `name:ip` (or `name=ip`; ip may be `host-gateway` or IPv6).
pub fn extra_hosts(v: Option<Vec<String>>) -> Result<Vec<String>, ApiError> {
    let v = v.unwrap_or_default();
    for e in &v {
        let ok = e
            .split_once('=')
            .or_else(|| e.split_once(':'))
            .is_some_and(|(n, ip)| {
                let ip = ip.trim_start_matches('[').trim_end_matches(']');
                !n.is_empty() && (ip == "host-gateway" || ip.parse::<std::net::IpAddr>().is_ok())
            });
        if !ok {
            return Err(invalid(format!("invalid IP address in add-host: {e:?}")));
        }
    }
    Ok(v)
}

fn key(port: u32, protocol: &str) -> String {
    format!("{port}/{protocol}")
}

/// `HostConfig.PortBindings` as the create body gave it.
pub fn host_config(net: &pb::NetworkSpec) -> Value {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for b in &net.port_bindings {
        out.entry(key(b.container_port, &b.protocol))
            .or_default()
            .push(json!({"HostIp": b.host_ip, "HostPort": b.host_port}));
    }
    json!(out)
}

/// Every port of the container with what is published on it: exposed ports and bound ones.
fn published(net: &pb::NetworkSpec, state: &pb::NetworkState) -> BTreeMap<String, Vec<Value>> {
    let mut out: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for e in &net.exposed_ports {
        out.entry(e.clone()).or_default();
    }
    for b in &net.port_bindings {
        out.entry(key(b.container_port, &b.protocol)).or_default();
    }
    for p in &state.ports {
        out.entry(key(p.container_port, &p.protocol))
            .or_default()
            .push(json!({"HostIp": p.host_ip, "HostPort": p.host_port.to_string()}));
    }
    out
}

/// Inspect's `NetworkSettings.Ports`: while it runs, every port with its host bindings (null
/// when not published); `{}` when it does not run.
pub fn network_settings(net: &pb::NetworkSpec, state: Option<&pb::NetworkState>) -> Value {
    let Some(state) = state else {
        return json!({});
    };
    let map: Map<String, Value> = published(net, state)
        .into_iter()
        .map(|(k, v)| (k, if v.is_empty() { Value::Null } else { json!(v) }))
        .collect();
    Value::Object(map)
}

/// The summary's `Ports`: one entry per published port, one per unpublished exposed port.
pub fn summary(net: &pb::NetworkSpec, state: Option<&pb::NetworkState>) -> Value {
    let Some(state) = state else {
        return json!([]);
    };
    let mut out = Vec::new();
    for (k, bindings) in published(net, state) {
        let (port, proto) = k.split_once('/').unwrap_or((k.as_str(), "tcp"));
        let port: u64 = port.parse().unwrap_or_default();
        if bindings.is_empty() {
            out.push(json!({"PrivatePort": port, "Type": proto}));
        }
        for b in bindings {
            let public: u64 = b["HostPort"].as_str().unwrap_or("0").parse().unwrap_or(0);
            out.push(json!({"IP": b["HostIp"], "PrivatePort": port, "PublicPort": public, "Type": proto}));
        }
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Option<PortBindings> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn bindings_parse_and_render_as_dockerd() {
        let b = parse(body(json!({
            "80/tcp": [{"HostIp": "", "HostPort": "18080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": ""}],
            "90": null,
        })))
        .unwrap();
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].container_port, b[0].protocol.as_str()), (53, "udp"));
        assert_eq!(b[1].host_port, "18080");
        assert!(parse(body(json!({"x/tcp": []}))).is_err());
        assert!(parse(body(json!({"80/tcp": [{"HostPort": "9-1"}]}))).is_err());
        assert!(parse(body(json!({"80/tcp": [{"HostIp": "::1:x"}]}))).is_err());
        // IPv6 host addresses are published (brackets as the CLI may send them dropped).
        let v6 = parse(body(
            json!({"80/tcp": [{"HostIp": "[::]", "HostPort": "8080"}]}),
        ))
        .unwrap();
        assert_eq!(v6[0].host_ip, "::");

        let net = pb::NetworkSpec {
            exposed_ports: vec!["443/tcp".to_owned(), "80/tcp".to_owned()],
            port_bindings: b,
            ..Default::default()
        };
        assert_eq!(
            host_config(&net)["80/tcp"],
            json!([{"HostIp": "", "HostPort": "18080"}])
        );
        assert_eq!(network_settings(&net, None), json!({}));
        let state = pb::NetworkState {
            ports: vec![pb::PublishedPort {
                container_port: 80,
                protocol: "tcp".to_owned(),
                host_ip: "0.0.0.0".to_owned(),
                host_port: 18080,
            }],
            ..Default::default()
        };
        let ns = network_settings(&net, Some(&state));
        assert_eq!(
            ns["80/tcp"],
            json!([{"HostIp": "0.0.0.0", "HostPort": "18080"}])
        );
        assert_eq!(ns["443/tcp"], Value::Null);
        assert_eq!(ns["53/udp"], Value::Null);
        let s = summary(&net, Some(&state));
        assert!(s.as_array().unwrap().contains(
            &json!({"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 18080, "Type": "tcp"})
        ));
        assert!(
            s.as_array()
                .unwrap()
                .contains(&json!({"PrivatePort": 443, "Type": "tcp"}))
        );
    }
}
