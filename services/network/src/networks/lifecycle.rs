//! The service's start (forwarding on, predefined networks, bridges up, the firewall table
//! rewritten from the store, published ports and DNS servers of running containers back,
//! orphaned veths removed) and its clean stop; the bridges.

use std::{collections::BTreeSet, path::PathBuf};

use berth_proto::network::v1 as pb;

use super::{
    Networks, OPT_BRIDGE_NAME, OPT_DEFAULT_BRIDGE, OPT_MTU, host_lock, kernel, new_id, now_nanos,
    rules::{endpoint_rule, pools_of, port_rules, rule_of, want6_of},
};
use crate::{
    NetworkError,
    firewall::{EndpointRule, NetRule},
    ipam::{self, Ipv4Net},
    netlink::VETH_PREFIX,
    ports::PortRule,
    store::Refusal,
};

impl Networks {
    /// At start: IP forwarding on, the predefined networks recorded, every bridge up with its
    /// address, the firewall table rewritten from the store, veths nobody owns removed.
    pub(crate) async fn start(&self) -> anyhow::Result<()> {
        let _g = self.lock.lock().await;
        if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() != "1")
            && let Err(e) = std::fs::write("/proc/sys/net/ipv4/ip_forward", "1")
        {
            tracing::warn!(error = %e, "could not turn IPv4 forwarding on");
        }
        let host = host_lock().await;
        self.predefined().await?;
        let networks = self.store.networks()?;
        let endpoints = self.store.all_endpoints()?;
        for n in networks.iter().filter(|n| n.driver == "bridge") {
            self.bridge_up(n).await?;
        }
        drop(host);
        let rules: Vec<NetRule> = networks.iter().filter_map(rule_of).collect();
        let eps: Vec<EndpointRule> = endpoints
            .iter()
            .filter_map(|e| {
                let n = networks.iter().find(|n| n.id == e.network_id)?;
                endpoint_rule(n, e)
            })
            .collect();
        let port_rules: Vec<PortRule> = endpoints.iter().flat_map(port_rules).collect();
        self.fw.reset(&rules, &eps, &port_rules).await?;
        // The published ports of containers that kept running stay reserved.
        for e in &endpoints {
            let fds = e
                .ports
                .iter()
                .filter_map(|p| match super::publish::rehold(e, p) {
                    Ok(h) => h,
                    Err(err) => {
                        tracing::warn!(error = %err, container = e.container_id, "re-reserving a published port");
                        None
                    }
                })
                .collect();
            self.held.keep(&e.container_id, fds);
            // The embedded DNS server of a container that kept running serves again.
            if !e.dns_netns.is_empty() && std::path::Path::new(&e.dns_netns).exists() {
                let netns = PathBuf::from(&e.dns_netns);
                if let Err(err) = self.dns.start(
                    self.store.clone(),
                    &e.container_id,
                    None,
                    netns,
                    &e.dns_servers,
                ) {
                    tracing::warn!(error = %err, container = e.container_id, "reopening the embedded DNS server");
                }
            }
        }
        let owned: BTreeSet<&str> = endpoints
            .iter()
            .map(|e| e.host_interface.as_str())
            .collect();
        let mut bridges = Vec::new();
        for n in networks.iter().filter(|n| n.driver == "bridge") {
            if let Some(i) = self.links.index(&n.bridge).await {
                bridges.push(i);
            }
        }
        for name in self.links.ports_with_prefix(VETH_PREFIX, &bridges).await? {
            if !owned.contains(name.as_str()) {
                tracing::info!(link = name, "removing a veth no endpoint owns");
                self.links.delete(&name).await?;
            }
        }
        Ok(())
    }

    /// At a clean stop with no endpoint left, the host is left as found: bridges, table and
    /// DOCKER-USER rules go. With endpoints (containers keep running), everything stays.
    pub(crate) async fn stop(&self) {
        let _g = self.lock.lock().await;
        match self.store.all_endpoints() {
            Ok(e) if e.is_empty() => {}
            _ => return,
        }
        let Ok(networks) = self.store.networks() else {
            return;
        };
        for n in networks.iter().filter(|n| n.driver == "bridge") {
            if let Err(e) = self.links.delete(&n.bridge).await {
                tracing::warn!(error = %e, bridge = n.bridge, "removing a bridge at stop");
            }
            self.fw.forget_in_docker_user(&n.bridge).await;
        }
        if let Err(e) = self.fw.remove_table().await {
            tracing::warn!(error = %e, "removing the nftables table at stop");
        }
    }

    /// The network's bridge up ([`Networks::bridge_ready`]) with its accept in another engine's
    /// DOCKER-USER chain. Its index.
    pub(super) async fn bridge_up(&self, n: &pb::NetworkRecord) -> Result<u32, NetworkError> {
        let index = self.bridge_ready(n).await?;
        self.fw.allow_in_docker_user(&n.bridge).await;
        Ok(index)
    }

    /// The network's bridge up with its addresses and settings (made when missing). Its index.
    /// A bridge made ready before is not looked at again (a third of an attach's kernel work):
    /// one that turns out to be gone when a veth is plugged into it is forgotten, and made
    /// ready again by the next call.
    pub(super) async fn bridge_ready(&self, n: &pb::NetworkRecord) -> Result<u32, NetworkError> {
        if let Some(index) = self.links.ready_bridge(&n.bridge) {
            return Ok(index);
        }
        let pool = pools_of(n)?
            .into_iter()
            .next()
            .ok_or_else(|| NetworkError::Store(anyhow::anyhow!("{} has no subnet", n.name)))?;
        let v6 = want6_of(n, None)?;
        let gateway6 = v6.as_ref().map(|w| (w.gateway, w.subnet.prefix()));
        if v6.is_some() {
            crate::sysctl::ipv6_forwarding_on();
        }
        let index = self
            .links
            .ensure_bridge(
                &n.bridge,
                pool.gateway,
                pool.subnet.prefix(),
                gateway6,
                n.mtu,
            )
            .await
            .map_err(kernel)?;
        crate::sysctl::bridge_accept_ra_off(&n.bridge);
        // Published ports answer on 127.0.0.1: loopback-sourced packets may leave through it.
        let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge);
        if std::fs::read_to_string(&localnet).is_ok_and(|v| v.trim() != "1")
            && let Err(e) = std::fs::write(&localnet, "1")
        {
            tracing::warn!(error = %e, bridge = n.bridge, "could not set route_localnet");
        }
        self.links.bridge_is_ready(&n.bridge, index);
        Ok(index)
    }

    /// Subnets that a new network must not overlap: the host's routes and other networks'.
    pub(super) async fn taken_subnets(
        &self,
        own_bridges: &[String],
    ) -> Result<Vec<Ipv4Net>, NetworkError> {
        let mut taken = self.links.routes_v4().await.map_err(kernel)?;
        for n in self.store.networks()? {
            if own_bridges.contains(&n.bridge) {
                continue;
            }
            for p in pools_of(&n)? {
                taken.push(p.subnet);
            }
        }
        Ok(taken)
    }

    /// bridge (on the default bridge), host and none, made once.
    pub(super) async fn predefined(&self) -> Result<(), NetworkError> {
        let existing = self.store.networks()?;
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            if existing.iter().any(|n| n.name == name) {
                continue;
            }
            let mut n = pb::NetworkRecord {
                id: new_id(),
                name: name.to_owned(),
                driver: driver.to_owned(),
                created: now_nanos(),
                predefined: true,
                ..Default::default()
            };
            if name == "bridge" {
                let (subnet, gateway) = match self.settings.bip {
                    Some((addr, prefix)) => (
                        Ipv4Net::new(addr, prefix)
                            .ok_or_else(|| NetworkError::invalid("invalid bip"))?,
                        addr,
                    ),
                    None => {
                        let taken = self
                            .taken_subnets(std::slice::from_ref(&self.settings.default_bridge))
                            .await?;
                        let subnet =
                            ipam::pick_subnet(&self.settings.pools, &taken).ok_or_else(|| {
                                NetworkError::invalid(
                                    "could not find an available, non-overlapping IPv4 address \
                                     pool among the defaults to assign to the network",
                                )
                            })?;
                        (subnet, subnet.first_host().unwrap_or(subnet.addr()))
                    }
                };
                n.bridge = self.settings.default_bridge.clone();
                n.mtu = self.settings.mtu;
                n.ipam = vec![pb::IpamConfig {
                    subnet: subnet.to_string(),
                    gateway: gateway.to_string(),
                    ..Default::default()
                }];
                n.options = [
                    (OPT_DEFAULT_BRIDGE.to_owned(), "true".to_owned()),
                    (OPT_BRIDGE_NAME.to_owned(), n.bridge.clone()),
                    (OPT_MTU.to_owned(), n.mtu.to_string()),
                ]
                .into();
            }
            if let Err(Refusal::NameTaken(_)) = self.store.create_network(&n, &[])? {
                continue;
            }
            tracing::info!(name, id = n.id, "created a predefined network");
        }
        Ok(())
    }
}
