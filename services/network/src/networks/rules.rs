//! What the firewall and IPAM need from a network and its endpoints.

use std::net::{Ipv4Addr, Ipv6Addr};

use berth_proto::network::v1 as pb;

use crate::{
    NetworkError,
    firewall::{EndpointRule, NetRule},
    ipam::{Ipv4Net, Pool},
    ipam6::{Ipv6Net, Want6},
    ports::{Plan6, PortRule, plan6},
};

/// Whether an IPAM configuration is the IPv6 one of a network with IPv6.
pub(crate) fn is_v6(c: &pb::IpamConfig) -> bool {
    c.subnet.contains(':') || (c.subnet.is_empty() && c.gateway.contains(':'))
}

/// The IPv4 IPAM pools of a network.
pub(crate) fn pools_of(n: &pb::NetworkRecord) -> Result<Vec<Pool>, NetworkError> {
    let bad = |e: String| NetworkError::Store(anyhow::anyhow!("network {}: {e}", n.name));
    n.ipam
        .iter()
        .filter(|c| !is_v6(c))
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

/// The IPv6 subnet of a network with IPv6, its gateway and auxiliary addresses (`fixed`: the
/// address an endpoint asks for). None for an IPv4-only network.
pub(crate) fn want6_of(
    n: &pb::NetworkRecord,
    fixed: Option<Ipv6Addr>,
) -> Result<Option<Want6>, NetworkError> {
    let Some(c) = n.ipam.iter().find(|c| is_v6(c)).filter(|_| n.enable_ipv6) else {
        return Ok(None);
    };
    let bad = |e: String| NetworkError::Store(anyhow::anyhow!("network {}: {e}", n.name));
    let subnet: Ipv6Net = c.subnet.parse().map_err(bad)?;
    let gateway: Ipv6Addr = c.gateway.parse().map_err(|_| bad(c.gateway.clone()))?;
    let range = if c.ip_range.is_empty() {
        subnet
    } else {
        c.ip_range.parse().map_err(bad)?
    };
    Ok(Some(Want6 {
        subnet,
        range,
        gateway,
        reserved: c
            .aux_addresses
            .values()
            .filter_map(|a| a.parse().ok())
            .collect(),
        fixed,
    }))
}

pub(super) fn rule_of(n: &pb::NetworkRecord) -> Option<NetRule> {
    let subnet = n.ipam.iter().find(|c| !is_v6(c))?.subnet.parse().ok()?;
    let subnet6 = n
        .ipam
        .iter()
        .find(|c| is_v6(c))
        .filter(|_| n.enable_ipv6)
        .and_then(|c| c.subnet.parse().ok());
    (n.driver == "bridge").then(|| NetRule {
        bridge: n.bridge.clone(),
        subnet,
        subnet6,
        internal: n.internal,
    })
}

/// The DNAT elements of an endpoint's published ports: IPv4 host addresses to its IPv4
/// address, IPv6 ones to its IPv6 address where the kernel can forward them (see
/// [`crate::ports::plan6`]; the rest goes through a proxy task).
pub(super) fn port_rules(e: &pb::Endpoint) -> Vec<PortRule> {
    let v4 = e.ipv4_address.parse::<Ipv4Addr>().ok();
    let v6 = e.ipv6_address.parse::<Ipv6Addr>().ok();
    e.ports
        .iter()
        .filter_map(|p| {
            let target: std::net::IpAddr = match p.host_ip.parse().ok()? {
                std::net::IpAddr::V4(_) => v4?.into(),
                std::net::IpAddr::V6(h) => match plan6(&p.protocol, h, v4, v6) {
                    Plan6::Kernel { to, .. } => to.into(),
                    Plan6::Proxy(_) | Plan6::None => return None,
                },
            };
            PortRule::of(target, p)
        })
        .collect()
}

pub(super) fn endpoint_rule(n: &pb::NetworkRecord, e: &pb::Endpoint) -> Option<EndpointRule> {
    Some(EndpointRule {
        bridge: n.bridge.clone(),
        ip: e.ipv4_address.parse().ok()?,
        more: std::iter::once(&e.ipv6_address)
            .chain(&e.link_local_ips)
            .filter_map(|a| a.parse().ok())
            .collect(),
    })
}
