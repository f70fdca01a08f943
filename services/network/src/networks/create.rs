//! `docker network create`: the request checked and turned into a network record (driver,
//! options, IPAM), then recorded, its bridge made and its rules added.

use std::{fmt::Display, str::FromStr};

use berth_proto::network::v1 as pb;

use super::{
    BRIDGE_PREFIX, Networks, OPT_BRIDGE_NAME, OPT_MTU, host_lock, kernel, new_id, now_nanos,
    rules::is_v6,
    rules::{pools_of, rule_of},
};
use crate::{
    NetworkError,
    ipam::{self, Ipv4Net},
    ipam6::{self, Ipv6Net},
    store::Refusal,
};

fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// The gateway of an IPAM configuration (default: `first`, the subnet's first address) with
/// its auxiliary addresses checked: each an address of the subnet (`contains`).
fn gateway_and_aux<A: FromStr + Display + Copy>(
    c: &pb::IpamConfig,
    first: A,
    contains: impl Fn(A) -> bool,
) -> Result<A, NetworkError> {
    let gateway = if c.gateway.is_empty() {
        first
    } else {
        let g: A = c
            .gateway
            .parse()
            .map_err(|_| NetworkError::invalid(format!("invalid gateway {}", c.gateway)))?;
        if !contains(g) {
            return Err(NetworkError::invalid(format!(
                "no matching subnet for gateway {g}"
            )));
        }
        g
    };
    for (k, a) in &c.aux_addresses {
        let ip: A = a
            .parse()
            .map_err(|_| NetworkError::invalid(format!("invalid auxiliary address {k}={a}")))?;
        if !contains(ip) {
            return Err(NetworkError::invalid(format!(
                "no matching subnet for aux-address {ip}"
            )));
        }
    }
    Ok(gateway)
}

/// The IPv6 subnets of the networks with IPv6.
fn subnets6(networks: &[pb::NetworkRecord]) -> Vec<Ipv6Net> {
    networks
        .iter()
        .filter(|n| n.enable_ipv6)
        .flat_map(|n| &n.ipam)
        .filter(|c| is_v6(c))
        .filter_map(|c| c.subnet.parse().ok())
        .collect()
}

/// A network's IPv6 IPAM configuration checked: the subnet (a /126 at most, overlapping no
/// other network's), the gateway (default: its first address), the auxiliary addresses.
fn check_ipam6(
    c: &pb::IpamConfig,
    others: &[pb::NetworkRecord],
) -> Result<pb::IpamConfig, NetworkError> {
    if c.subnet.is_empty() {
        return Err(NetworkError::invalid(
            "a gateway, an IP range or auxiliary addresses need a subnet (--subnet)",
        ));
    }
    let subnet: Ipv6Net = c.subnet.parse().map_err(NetworkError::invalid)?;
    if subnet.prefix() > ipam6::MAX_PREFIX {
        return Err(NetworkError::invalid(format!(
            "subnet {subnet} is too small: at least a /{} is needed",
            ipam6::MAX_PREFIX
        )));
    }
    if !c.ip_range.is_empty() {
        let r: Ipv6Net = c.ip_range.parse().map_err(NetworkError::invalid)?;
        if !subnet.covers(&r) {
            return Err(NetworkError::invalid(format!(
                "no matching subnet for range {r}"
            )));
        }
    }
    for o in others.iter().filter(|o| o.enable_ipv6) {
        for p in subnets6(std::slice::from_ref(o)) {
            if p.overlaps(&subnet) {
                return Err(NetworkError::forbidden(format!(
                    "invalid pool request: Pool overlaps with other one on this address space ({p} of network {})",
                    o.name
                )));
            }
        }
    }
    let first = subnet
        .first_host()
        .ok_or_else(|| NetworkError::invalid("invalid subnet"))?;
    let gateway = gateway_and_aux(c, first, |ip| subnet.contains(ip))?;
    Ok(pb::IpamConfig {
        subnet: subnet.to_string(),
        ip_range: c
            .ip_range
            .parse::<Ipv6Net>()
            .map(|r| r.to_string())
            .unwrap_or_default(),
        gateway: gateway.to_string(),
        aux_addresses: c.aux_addresses.clone(),
    })
}

impl Networks {
    /// The network a create request describes, checked (nothing recorded yet).
    pub(super) async fn plan(
        &self,
        req: &pb::CreateNetworkRequest,
    ) -> Result<pb::NetworkRecord, NetworkError> {
        let name = req.name.as_str();
        if name.is_empty() {
            return Err(NetworkError::invalid("network name must not be empty"));
        }
        if !name
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        {
            return Err(NetworkError::invalid(format!(
                "invalid network name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
            )));
        }
        match req.driver.as_str() {
            "" | "bridge" => {}
            "host" | "null" => {
                return Err(NetworkError::forbidden(format!(
                    "only one instance of \"{}\" network is allowed",
                    req.driver
                )));
            }
            d => return Err(NetworkError::not_found(format!("plugin \"{d}\" not found"))),
        }
        if !matches!(req.ipam_driver.as_str(), "" | "default") {
            return Err(NetworkError::not_found(format!(
                "plugin \"{}\" not found",
                req.ipam_driver
            )));
        }
        if let Some(k) = req.ipam_options.keys().next() {
            return Err(NetworkError::invalid(format!(
                "--ipam-opt {k} is not supported by Berth yet"
            )));
        }
        let id = new_id();
        let mut bridge = format!("{BRIDGE_PREFIX}{}", &id[..9]);
        let mut mtu = self.settings.mtu;
        for (k, v) in &req.options {
            match k.as_str() {
                OPT_BRIDGE_NAME => {
                    if !valid_ifname(v) {
                        return Err(NetworkError::invalid(format!("invalid bridge name {v:?}")));
                    }
                    bridge = v.clone();
                }
                OPT_MTU => {
                    mtu = v
                        .parse()
                        .ok()
                        .filter(|m| (68..=65535).contains(m))
                        .ok_or_else(|| NetworkError::invalid(format!("invalid MTU {v:?}")))?;
                }
                other => {
                    return Err(NetworkError::invalid(format!(
                        "--opt {other} is not supported by Berth yet"
                    )));
                }
            }
        }
        let others = self.store.networks()?;
        if let Some(o) = others
            .iter()
            .find(|o| o.driver == "bridge" && o.bridge == bridge)
        {
            return Err(NetworkError::conflict(format!(
                "bridge name {bridge} is already used by network {}",
                o.name
            )));
        }
        let (v6, v4): (Vec<&pb::IpamConfig>, Vec<&pb::IpamConfig>) =
            req.ipam.iter().partition(|c| is_v6(c));
        if v4.len() > 1 || v6.len() > 1 {
            return Err(NetworkError::invalid(
                "more than one IPAM configuration per address family is not supported by Berth yet",
            ));
        }
        if let Some(c) = v6.first()
            && !req.enable_ipv6
        {
            return Err(NetworkError::invalid(format!(
                "IPv6 subnet {} given, but IPv6 is not enabled on the network (--ipv6)",
                c.subnet
            )));
        }
        let ipam6 = if req.enable_ipv6 {
            Some(match v6.first() {
                Some(c) => check_ipam6(c, &others)?,
                None => {
                    let taken = subnets6(&others);
                    let subnet = ipam6::pick_ula(&taken).ok_or_else(|| {
                        NetworkError::forbidden(
                            "could not find an available, non-overlapping IPv6 address pool \
                             among the defaults to assign to the network",
                        )
                    })?;
                    pb::IpamConfig {
                        subnet: subnet.to_string(),
                        gateway: subnet
                            .first_host()
                            .map(|g| g.to_string())
                            .unwrap_or_default(),
                        ..Default::default()
                    }
                }
            })
        } else {
            None
        };
        let ipam = match v4.first().copied() {
            None => {
                let taken = self.taken_subnets(&[]).await?;
                let subnet = ipam::pick_subnet(&self.settings.pools, &taken).ok_or_else(|| {
                    NetworkError::forbidden(
                        "all predefined address pools have been fully subnetted",
                    )
                })?;
                pb::IpamConfig {
                    subnet: subnet.to_string(),
                    gateway: subnet.first_host().unwrap_or(subnet.addr()).to_string(),
                    ..Default::default()
                }
            }
            Some(c) => self.check_ipam(c, &others)?,
        };
        Ok(pb::NetworkRecord {
            id,
            name: name.to_owned(),
            driver: "bridge".to_owned(),
            created: now_nanos(),
            internal: req.internal,
            attachable: req.attachable,
            enable_ipv6: req.enable_ipv6,
            ipam: std::iter::once(ipam).chain(ipam6).collect(),
            options: req.options.clone(),
            labels: req.labels.clone(),
            bridge,
            mtu,
            predefined: false,
            subnet_given: !v4.is_empty(),
            subnet6_given: !v6.is_empty(),
        })
    }

    pub(super) fn check_ipam(
        &self,
        c: &pb::IpamConfig,
        others: &[pb::NetworkRecord],
    ) -> Result<pb::IpamConfig, NetworkError> {
        if c.subnet.is_empty() {
            return Err(NetworkError::invalid(
                "a gateway, an IP range or auxiliary addresses need a subnet (--subnet)",
            ));
        }
        let subnet: Ipv4Net = c.subnet.parse().map_err(NetworkError::invalid)?;
        if subnet.prefix() > 30 {
            return Err(NetworkError::invalid(format!(
                "subnet {subnet} is too small: at least a /30 is needed"
            )));
        }
        for o in others {
            for p in pools_of(o)? {
                if p.subnet.overlaps(&subnet) {
                    return Err(NetworkError::forbidden(format!(
                        "invalid pool request: Pool overlaps with other one on this address space ({} of network {})",
                        p.subnet, o.name
                    )));
                }
            }
        }
        let gateway = gateway_and_aux(c, subnet.first_host().unwrap_or(subnet.addr()), |ip| {
            subnet.contains(ip)
        })?;
        if !c.ip_range.is_empty() {
            let r: Ipv4Net = c.ip_range.parse().map_err(NetworkError::invalid)?;
            if !subnet.covers(&r) {
                return Err(NetworkError::invalid(format!(
                    "no matching subnet for range {r}"
                )));
            }
        }
        Ok(pb::IpamConfig {
            subnet: subnet.to_string(),
            ip_range: c.ip_range.clone(),
            gateway: gateway.to_string(),
            aux_addresses: c.aux_addresses.clone(),
        })
    }

    /// docker network create.
    pub(crate) async fn create(
        &self,
        req: &pb::CreateNetworkRequest,
    ) -> Result<pb::NetworkInfo, NetworkError> {
        let _g = self.lock.lock().await;
        let _host = host_lock().await;
        let n = self.plan(req).await?;
        // The record is the truth (a restart brings its bridge up): its event goes with it. A
        // failure of the kernel work below removes it again, reported by a destroy.
        let created = self.network_event(&n, "create", None);
        if let Err(Refusal::NameTaken(_)) = self.store.create_network(&n, &created)? {
            return Err(NetworkError::conflict(format!(
                "network with name {} already exists",
                n.name
            )));
        }
        let up = async {
            self.bridge_up(&n).await?;
            if let Some(rule) = rule_of(&n) {
                self.fw
                    .nft(&self.fw.add_network_text(&rule))
                    .await
                    .map_err(kernel)?;
            }
            Ok::<(), NetworkError>(())
        };
        if let Err(e) = up.await {
            let _ = self.links.delete(&n.bridge).await;
            let destroyed = self.network_event(&n, "destroy", None);
            let _ = self.store.remove_network(&n.id, &destroyed);
            return Err(e);
        }
        self.info(n)
    }
}
