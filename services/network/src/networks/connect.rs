//! `docker network connect` and `disconnect` on a running container (one endpoint plugged in
//! or out while it runs), the checks of an endpoint's settings that dockerd makes at create and
//! connect, and `docker rename` (the names the embedded DNS server answers).

use std::{
    net::{Ipv4Addr, Ipv6Addr},
    path::PathBuf,
};

use berth_proto::network::v1 as pb;

use super::{
    Networks, Who,
    files::resolv_conf,
    kernel,
    rules::{endpoint_rule, port_rules},
};
use crate::{NetworkError, dns, ipam, phases::Phases};

/// An endpoint's settings checked against its network: the fixed address and MAC asked for.
pub(crate) fn check_endpoint(
    n: &pb::NetworkRecord,
    want: &pb::EndpointRequest,
) -> Result<(Option<Ipv4Addr>, Option<[u8; 6]>), NetworkError> {
    if !want.aliases.is_empty() && n.predefined {
        return Err(NetworkError::invalid(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    let fixed = if want.ipv4_address.is_empty() {
        None
    } else {
        let ip: Ipv4Addr = want.ipv4_address.parse().map_err(|_| {
            NetworkError::invalid(format!("invalid IPv4 address: {}", want.ipv4_address))
        })?;
        if ip.is_unspecified() {
            return Err(NetworkError::invalid(format!("invalid IPv4 address: {ip}")));
        }
        if n.predefined {
            return Err(NetworkError::invalid(
                "user specified IP address is supported on user defined networks only",
            ));
        }
        if !n.subnet_given {
            return Err(NetworkError::invalid(
                "user specified IP address is supported only when connecting to networks with \
                 user configured subnets",
            ));
        }
        Some(ip)
    };
    let mac = if want.mac_address.is_empty() {
        None
    } else {
        Some(ipam::parse_mac(&want.mac_address).ok_or_else(|| {
            NetworkError::invalid(format!("{} is not a valid mac address", want.mac_address))
        })?)
    };
    Ok((fixed, mac))
}

/// The fixed IPv6 address an endpoint asks for (`--ip6`), checked against its network: one
/// with IPv6 and a subnet the user gave, as dockerd requires.
pub(crate) fn check_ipv6(
    n: &pb::NetworkRecord,
    want: &pb::EndpointRequest,
) -> Result<Option<Ipv6Addr>, NetworkError> {
    if want.ipv6_address.is_empty() {
        return Ok(None);
    }
    let ip: Ipv6Addr = want.ipv6_address.parse().map_err(|_| {
        NetworkError::invalid(format!("invalid IPv6 address: {}", want.ipv6_address))
    })?;
    if ip.is_unspecified() {
        return Err(NetworkError::invalid(format!("invalid IPv6 address: {ip}")));
    }
    if n.predefined {
        return Err(NetworkError::invalid(
            "user specified IP address is supported on user defined networks only",
        ));
    }
    if !n.enable_ipv6 {
        return Err(NetworkError::invalid(format!(
            "network {} does not have IPv6 enabled (--ipv6): --ip6 {ip} cannot be used",
            n.name
        )));
    }
    if !n.subnet6_given {
        return Err(NetworkError::invalid(
            "user specified IP address is supported only when connecting to networks with \
             user configured subnets",
        ));
    }
    Ok(Some(ip))
}

/// The container ID of the endpoint on a network that `who` names: its container's ID, a
/// unique ID prefix, or its name.
fn stale_owner(eps: &[pb::Endpoint], who: &str) -> Option<String> {
    if who.is_empty() || eps.iter().any(|e| e.container_id == who) {
        return None;
    }
    if let Some(e) = eps
        .iter()
        .find(|e| e.container_name == who.trim_start_matches('/'))
    {
        return Some(e.container_id.clone());
    }
    match eps
        .iter()
        .filter(|e| e.container_id.starts_with(who))
        .collect::<Vec<_>>()
        .as_slice()
    {
        [one] => Some(one.container_id.clone()),
        _ => None,
    }
}

fn check_container(id: &str, netns: &str) -> Result<PathBuf, NetworkError> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(NetworkError::invalid(format!(
            "invalid container ID {id:?}"
        )));
    }
    let netns = PathBuf::from(netns);
    if !netns.is_absolute() || !netns.exists() {
        return Err(NetworkError::invalid(format!(
            "no network namespace at {:?}",
            netns.display()
        )));
    }
    Ok(netns)
}

impl Networks {
    /// The network an endpoint would join, its settings checked.
    pub(crate) fn check(
        &self,
        want: &pb::EndpointRequest,
    ) -> Result<pb::NetworkRecord, NetworkError> {
        let n = self.find(&want.network)?;
        check_endpoint(&n, want)?;
        check_ipv6(&n, want)?;
        super::opts::check(want)?;
        super::opts::link_local(want)?;
        Ok(n)
    }

    /// docker network connect on a running container.
    pub(crate) async fn connect(
        &self,
        req: &pb::ConnectRequest,
    ) -> Result<pb::ConnectResponse, NetworkError> {
        let mut phases = Phases::start();
        let cid = req.container_id.as_str();
        let netns = check_container(cid, &req.netns_path)?;
        let want = req.endpoint.clone().unwrap_or_default();
        let _g = self.lock.lock().await;
        phases.mark("lock");
        let n = self.find(&want.network)?;
        let mine = self.store.container_endpoints(cid)?;
        if mine.iter().any(|e| e.network_id == n.id) {
            return Err(NetworkError::forbidden(format!(
                "endpoint with name {} already exists in network {}",
                req.container_name, n.name
            )));
        }
        let who = Who {
            id: cid,
            name: &req.container_name,
            hostname: &req.hostname,
        };
        // The first user-defined network of a container brings the embedded DNS server.
        let serving = mine.iter().any(|e| !e.dns_netns.is_empty());
        let dns = (!n.predefined && !serving).then(|| {
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            let upstreams = if req.dns.is_empty() {
                dns::nameservers(&host)
            } else {
                req.dns.clone()
            };
            (host, upstreams)
        });
        let serve = dns.as_ref().map(|(_, up)| up.as_slice());
        let (ep, sockets) = match self.plug(&who, &netns, &want, serve).await {
            Ok(ep) => ep,
            Err(e) => {
                self.unplug(cid, &n, &netns).await;
                return Err(e);
            }
        };
        phases.mark("plug");
        let mut resolv = String::new();
        if let Some((host, upstreams)) = dns {
            let started =
                self.dns
                    .start(self.store.clone(), cid, sockets, netns.clone(), &upstreams);
            if let Err(e) = started {
                self.unplug(cid, &n, &netns).await;
                return Err(kernel(anyhow::anyhow!(
                    "starting the embedded DNS server: {e}"
                )));
            }
            resolv = dns::resolv_conf(
                &resolv_conf(&host),
                true,
                &req.dns,
                &req.dns_search,
                &req.dns_options,
            );
        }
        phases.mark("dns");
        phases.log("connect", cid);
        Ok(pb::ConnectResponse {
            endpoint: Some(ep),
            resolv_conf: resolv,
        })
    }

    /// docker network disconnect on a running container: the endpoint removed.
    pub(crate) async fn disconnect(
        &self,
        req: &pb::DisconnectRequest,
    ) -> Result<pb::Endpoint, NetworkError> {
        let netns = PathBuf::from(&req.netns_path);
        let _g = self.lock.lock().await;
        let n = self.find(&req.network)?;
        // dockerd's ForceEndpointDelete: a stale endpoint whose container is gone is named by
        // the container's name (or ID prefix) that it was made for.
        let eps = self.store.network_endpoints(&n.id)?;
        let cid = stale_owner(&eps, &req.container_id).unwrap_or(req.container_id.clone());
        self.unplug(&cid, &n, &netns).await.ok_or_else(|| {
            NetworkError::Client(
                berth_types::ErrorKind::Internal,
                format!(
                    "container {} is not connected to network {}",
                    req.container_id, n.name
                ),
            )
        })
    }

    /// Removes the container's endpoint on `n`: its ports, link, element and address. The
    /// embedded DNS server and the default route move to the endpoints left. What was removed.
    async fn unplug(
        &self,
        cid: &str,
        n: &pb::NetworkRecord,
        netns: &std::path::Path,
    ) -> Option<pb::Endpoint> {
        let disconnected = self.network_event(n, "disconnect", Some(cid));
        let ep = match self.store.remove_endpoint(cid, &n.id, &disconnected) {
            Ok(ep) => ep?,
            Err(e) => {
                tracing::error!(error = %e, container = cid, "releasing an endpoint");
                return None;
            }
        };
        if !ep.ports.is_empty() {
            let text: String = port_rules(&ep)
                .iter()
                .map(|r| self.fw.remove_port_text(r))
                .collect();
            if let Err(e) = self.fw.nft(&text).await {
                tracing::warn!(error = %e, container = cid, "removing published ports' elements");
            }
            self.held.release(cid).await;
        }
        if let Err(e) = self.links.delete(&ep.host_interface).await {
            tracing::warn!(error = %e, link = ep.host_interface, "removing a veth");
        }
        if let Some(rule) = endpoint_rule(n, &ep)
            && let Err(e) = self.fw.nft(&self.fw.remove_endpoint_text(&rule)).await
        {
            tracing::warn!(error = %e, "removing an endpoint's element");
        }
        let rest = self.store.container_endpoints(cid).unwrap_or_default();
        // (A connect that failed before its DNS server started has none to move.)
        if !ep.dns_netns.is_empty() && self.dns.serves(cid) {
            match rest.first() {
                Some(other) => {
                    let moved = pb::Endpoint {
                        dns_netns: ep.dns_netns.clone(),
                        dns_servers: ep.dns_servers.clone(),
                        ..other.clone()
                    };
                    if let Err(e) = self.store.update_endpoint(&moved) {
                        tracing::warn!(error = %e, container = cid, "moving the DNS record");
                    }
                }
                None => self.dns.stop(cid),
            }
        }
        if (ep.default_route || ep.default_route6) && netns.exists() {
            let routes = self.routes_of(&rest);
            self.apply_routes(cid, &rest, &routes, Some(netns)).await;
        }
        Some(ep)
    }

    /// docker rename: the endpoints take the new name, which DNS answers from now on.
    pub(crate) async fn rename(
        &self,
        req: &pb::RenameContainerRequest,
    ) -> Result<(), NetworkError> {
        let _g = self.lock.lock().await;
        self.store.rename_container(&req.container_id, &req.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_settings_are_checked_as_dockerd_does() {
        let user = pb::NetworkRecord {
            name: "mynet".to_owned(),
            subnet_given: true,
            ..Default::default()
        };
        let picked = pb::NetworkRecord {
            subnet_given: false,
            ..user.clone()
        };
        let bridge = pb::NetworkRecord {
            predefined: true,
            ..picked.clone()
        };
        let want = |ip: &str, mac: &str| pb::EndpointRequest {
            ipv4_address: ip.to_owned(),
            mac_address: mac.to_owned(),
            ..Default::default()
        };
        let err = |n: &pb::NetworkRecord, w: pb::EndpointRequest| {
            check_endpoint(n, &w).unwrap_err().to_string()
        };
        assert_eq!(
            check_endpoint(&user, &want("10.1.0.9", "02:42:0a:01:00:63")).unwrap(),
            (
                Some(Ipv4Addr::new(10, 1, 0, 9)),
                Some([2, 0x42, 10, 1, 0, 0x63])
            )
        );
        assert!(err(&bridge, want("10.1.0.9", "")).contains("on user defined networks only"));
        assert!(err(&picked, want("10.1.0.9", "")).contains("user configured subnets"));
        assert!(err(&user, want("10.1.0", "")).contains("invalid IPv4 address"));
        assert!(err(&user, want("", "02:42")).contains("not a valid mac address"));
        let aliased = pb::EndpointRequest {
            aliases: vec!["db".to_owned()],
            ..Default::default()
        };
        assert!(err(&bridge, aliased.clone()).contains("network-scoped alias"));
        assert!(check_endpoint(&user, &aliased).is_ok());
        let six = pb::EndpointRequest {
            ipv6_address: "fd00::5".to_owned(),
            ..Default::default()
        };
        let err6 = |n: &pb::NetworkRecord, w: &pb::EndpointRequest| {
            check_ipv6(n, w).unwrap_err().to_string()
        };
        assert!(err6(&user, &six).contains("does not have IPv6 enabled (--ipv6)"));
        let v6 = pb::NetworkRecord {
            enable_ipv6: true,
            subnet6_given: true,
            ..user.clone()
        };
        assert_eq!(
            check_ipv6(&v6, &six).unwrap(),
            Some("fd00::5".parse().unwrap())
        );
        assert_eq!(check_ipv6(&v6, &aliased).unwrap(), None);
        let v6_picked = pb::NetworkRecord {
            subnet6_given: false,
            ..v6.clone()
        };
        assert!(err6(&v6_picked, &six).contains("user configured subnets"));
        let bad = pb::EndpointRequest {
            ipv6_address: "fd00::zz".to_owned(),
            ..Default::default()
        };
        assert!(err6(&v6, &bad).contains("invalid IPv6 address"));
        // IPv4 checks do not look at --ip6.
        assert!(check_endpoint(&user, &six).is_ok());
    }

    #[test]
    fn stale_endpoints_are_found_by_name_or_id_prefix() {
        let ep = |id: &str, name: &str| pb::Endpoint {
            container_id: id.to_owned(),
            container_name: name.to_owned(),
            ..Default::default()
        };
        let eps = [ep("abc123", "web"), ep("abd456", "db")];
        assert_eq!(stale_owner(&eps, "web").as_deref(), Some("abc123"));
        assert_eq!(stale_owner(&eps, "/db").as_deref(), Some("abd456"));
        assert_eq!(stale_owner(&eps, "abc").as_deref(), Some("abc123"));
        assert_eq!(stale_owner(&eps, "ab"), None, "ambiguous");
        assert_eq!(stale_owner(&eps, "abc123"), None, "already an ID");
        assert_eq!(stale_owner(&eps, "nosuch"), None);
    }
}
