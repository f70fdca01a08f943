//! What the firewall and IPAM need from a network and its endpoints.

use std::net::Ipv4Addr;

use berth_proto::network::v1 as pb;

use crate::{
    NetworkError,
    firewall::{EndpointRule, NetRule},
    ipam::{Ipv4Net, Pool},
    ports::PortRule,
};

/// The IPAM pools of a network.
pub(crate) fn pools_of(n: &pb::NetworkRecord) -> Result<Vec<Pool>, NetworkError> {
    let bad = |e: String| NetworkError::Store(anyhow::anyhow!("network {}: {e}", n.name));
    n.ipam
        .iter()
        .map(|c| {
            let subnet: Ipv4Net = c.subnet.parse().map_err(bad)?;
            let range = if c.ip_range.is_empty() {
                subnet
            } else {
                c.ip_range.parse().map_err(bad)?
            };
            let gateway: Ipv4Addr = c.gateway.parse().map_err(|_| bad(c.gateway.clone()))?;
            let reserved = c
                .aux_addresses
                .values()
                .filter_map(|a| a.parse().ok())
                .collect();
            Ok(Pool {
                subnet,
                range,
                gateway,
                reserved,
            })
        })
        .collect()
}

pub(super) fn rule_of(n: &pb::NetworkRecord) -> Option<NetRule> {
    let subnet = n.ipam.first()?.subnet.parse().ok()?;
    (n.driver == "bridge").then(|| NetRule {
        bridge: n.bridge.clone(),
        subnet,
        internal: n.internal,
    })
}

/// The DNAT elements of an endpoint's published ports.
pub(super) fn port_rules(e: &pb::Endpoint) -> Vec<PortRule> {
    let Ok(target) = e.ipv4_address.parse() else {
        return Vec::new();
    };
    e.ports
        .iter()
        .filter_map(|p| PortRule::of(target, p))
        .collect()
}

pub(super) fn endpoint_rule(n: &pb::NetworkRecord, e: &pb::Endpoint) -> Option<EndpointRule> {
    Some(EndpointRule {
        bridge: n.bridge.clone(),
        ip: e.ipv4_address.parse().ok()?,
    })
}
