//! A container's Attach (its endpoints plugged in, ports published, the embedded DNS server
//! started, its resolv.conf and hosts returned) and Detach.

use std::{net::Ipv4Addr, path::PathBuf};

use berth_proto::network::v1 as pb;

use super::{
    Networks, Who, connect, files, kernel, new_id, opts,
    rules::{endpoint_rule, pools_of, port_rules, want6_of},
};
use crate::{
    NetworkError, dns, ipam,
    netlink::{self, Inside, VETH_PREFIX},
    phases::Phases,
    store::NoAddress,
};

impl Networks {
    /// Plugs the container into its networks; see the proto.
    pub(crate) async fn attach(
        &self,
        req: &pb::AttachRequest,
    ) -> Result<pb::AttachResponse, NetworkError> {
        let cid = req.container_id.as_str();
        if cid.len() != 64 || !cid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NetworkError::invalid(format!(
                "invalid container ID {cid:?}"
            )));
        }
        let netns = PathBuf::from(&req.netns_path);
        if !netns.is_absolute() || !netns.exists() {
            return Err(NetworkError::invalid(format!(
                "no network namespace at {:?}",
                req.netns_path
            )));
        }
        let _g = self.lock.lock().await;
        let who = Who {
            id: cid,
            name: &req.container_name,
            hostname: &req.hostname,
        };
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        // Containers on a user-defined network get the embedded DNS server; the first such
        // endpoint records where it serves.
        let user_network = req
            .endpoints
            .iter()
            .position(|w| self.find(&w.network).is_ok_and(|n| !n.predefined));
        let upstreams = if req.dns.is_empty() {
            dns::nameservers(&host)
        } else {
            req.dns.clone()
        };
        let mut endpoints = Vec::new();
        let mut sockets = None;
        for (i, want) in req.endpoints.iter().enumerate() {
            let serve = (user_network == Some(i)).then_some(upstreams.as_slice());
            match self.plug(&who, &netns, want, serve).await {
                Ok((ep, s)) => {
                    endpoints.push(ep);
                    sockets = sockets.or(s);
                }
                Err(e) => {
                    self.detach_locked(cid).await;
                    return Err(e);
                }
            }
        }
        // A later endpoint may have taken the default routes over from an earlier one.
        if endpoints.len() > 1
            && let Ok(stored) = self.store.container_endpoints(cid)
        {
            for e in &mut endpoints {
                if let Some(s) = stored.iter().find(|s| s.network_id == e.network_id) {
                    e.default_route = s.default_route;
                    e.default_route6 = s.default_route6;
                }
            }
        }
        let published = match endpoints.first_mut() {
            Some(first) if !req.ports.is_empty() => match self.publish(req, first).await {
                Ok(p) => p,
                Err(e) => {
                    self.detach_locked(cid).await;
                    return Err(e);
                }
            },
            _ => Vec::new(),
        };
        let gateway = endpoints
            .first()
            .map(|e| e.gateway.clone())
            .unwrap_or_default();
        let extra = dns::extra_hosts(&req.extra_hosts, &gateway)
            .map_err(NetworkError::invalid)
            .and_then(|e| Ok(e + &self.link_hosts(&endpoints, &req.endpoints)?));
        let extra = match extra {
            Ok(e) => e,
            Err(e) => {
                self.detach_locked(cid).await;
                return Err(e);
            }
        };
        if user_network.is_some() {
            let started =
                self.dns
                    .start(self.store.clone(), cid, sockets, netns.clone(), &upstreams);
            if let Err(e) = started {
                self.detach_locked(cid).await;
                return Err(kernel(anyhow::anyhow!(
                    "starting the embedded DNS server: {e}"
                )));
            }
        }
        let addresses: Vec<String> = endpoints
            .iter()
            .flat_map(|e| [e.ipv4_address.clone(), e.ipv6_address.clone()])
            .filter(|a| !a.is_empty())
            .collect();
        Ok(pb::AttachResponse {
            resolv_conf: dns::resolv_conf(
                &files::resolv_conf(&host),
                user_network.is_some(),
                &req.dns,
                &req.dns_search,
                &req.dns_options,
            ),
            hosts: files::hosts(&req.hostname, &req.domainname, &addresses) + &extra,
            endpoints,
            ports: published,
        })
    }

    /// Plugs the container into one network: its endpoint recorded with its address (the
    /// fixed one asked for, or the next free one), the veth made with its peer in the netns
    /// (the next free ethN), the address and, when the container has no default route yet and
    /// the network is not internal, the default route; the endpoint's element added.
    pub(super) async fn plug(
        &self,
        who: &Who<'_>,
        netns: &std::path::Path,
        want: &pb::EndpointRequest,
        dns: Option<&[String]>,
    ) -> Result<(pb::Endpoint, Option<dns::Sockets>), NetworkError> {
        let mut phases = Phases::start();
        let n = self.find(&want.network)?;
        if n.driver != "bridge" {
            return Err(NetworkError::invalid(format!(
                "container cannot be attached to network {}: it is not a bridge network",
                n.name
            )));
        }
        let (fixed, mac) = connect::check_endpoint(&n, want)?;
        let v6 = want6_of(&n, connect::check_ipv6(&n, want)?)?;
        opts::check(want)?;
        let link_local = opts::link_local(want)?;
        let pools = pools_of(&n)?;
        let mut others = self.store.container_endpoints(who.id)?;
        others.retain(|e| e.network_id != n.id);
        let taken = |name: &str| others.iter().any(|e| e.interface == name);
        let interface = match want.driver_opts.get(opts::IFNAME) {
            Some(name) if taken(name) => {
                return Err(NetworkError::invalid(format!(
                    "network interface name {name} is already in use in the container"
                )));
            }
            Some(name) => name.clone(),
            None => (0..)
                .map(|i| format!("eth{i}"))
                .find(|name| !taken(name))
                .unwrap_or_default(),
        };
        let sysctls = opts::sysctls(want, &interface)?;
        // The default routes: this endpoint's (a higher --gw-priority takes them over) and
        // the ones the others keep.
        others.push(pb::Endpoint {
            network_id: n.id.clone(),
            gw_priority: want.gw_priority,
            ..Default::default()
        });
        let routes = self.routes_of(&others);
        others.pop();
        let (default_route, default_route6) = routes.last().copied().unwrap_or_default();
        // The others lose the routes this endpoint takes over (recorded with it; the kernel's
        // are replaced by its own).
        let changed: Vec<(String, bool, bool)> = others
            .iter()
            .zip(&routes)
            .filter(|(e, r)| (e.default_route, e.default_route6) != **r)
            .map(|(e, &(v4, v6))| (e.network_id.clone(), v4, v6))
            .collect();
        // The thread that configures the container's side joins its netns meanwhile. The
        // embedded DNS server's sockets are opened by it; one that cannot be opened there is
        // opened again when it starts serving.
        let serve = dns.is_some();
        let prepared = netlink::prepare_inside(netns.to_owned(), move || {
            serve.then(|| dns::open_here().ok()).flatten()
        })
        .map_err(kernel)?;
        let endpoint_id = new_id();
        // Recorded with the endpoint (a failure of the kernel work below removes it again,
        // with its disconnect).
        let connected = self.network_event(&n, "connect", Some(who.id));
        let make = |ip: Ipv4Addr, prefix: u8, gw: Ipv4Addr| pb::Endpoint {
            host_interface: format!("{VETH_PREFIX}{}", &endpoint_id[..12]),
            endpoint_id: endpoint_id.clone(),
            network_id: n.id.clone(),
            network_name: n.name.clone(),
            container_id: who.id.to_owned(),
            container_name: who.name.to_owned(),
            interface: interface.clone(),
            ipv4_address: ip.to_string(),
            ipv4_prefix_len: u32::from(prefix),
            gateway: gw.to_string(),
            mac_address: ipam::mac_string(mac.unwrap_or_else(|| ipam::mac_for(ip))),
            ports: Vec::new(),
            aliases: want.aliases.clone(),
            // The embedded DNS server's record, when this endpoint brings it.
            dns_netns: dns.map_or_else(String::new, |_| netns.display().to_string()),
            dns_servers: dns.map(<[String]>::to_vec).unwrap_or_default(),
            fixed_address: fixed.is_some(),
            default_route,
            default_route6,
            gw_priority: want.gw_priority,
            link_local_ips: want.link_local_ips.clone(),
            hostname: who.hostname.to_owned(),
            links: if n.predefined {
                Vec::new()
            } else {
                want.links.clone()
            },
            ..Default::default()
        };
        let (ep, staged) = match self.store.stage_endpoint(
            &n,
            who.id,
            &pools,
            fixed,
            v6.as_ref(),
            make,
            &connected,
            &changed,
        )? {
            Ok(ep) => ep,
            Err(NoAddress::Exhausted) => {
                return Err(NetworkError::forbidden(format!(
                    "no available IPv4 addresses on this network's address pools: {} ({})",
                    n.name, n.id
                )));
            }
            Err(NoAddress::InUse) => {
                return Err(NetworkError::forbidden("Address already in use"));
            }
            Err(NoAddress::OutOfRange) => {
                return Err(NetworkError::invalid(format!(
                    "no configured subnet contains IP address {}",
                    want.ipv4_address
                )));
            }
            Err(NoAddress::Exhausted6) => {
                return Err(NetworkError::forbidden(format!(
                    "no available IPv6 addresses on this network's address pools: {} ({})",
                    n.name, n.id
                )));
            }
            Err(NoAddress::OutOfRange6) => {
                return Err(NetworkError::invalid(format!(
                    "no configured subnet contains IP address {}",
                    want.ipv6_address
                )));
            }
        };
        phases.mark("stage");
        let ip: Ipv4Addr = ep
            .ipv4_address
            .parse()
            .map_err(|_| NetworkError::Store(anyhow::anyhow!("bad address in the store")))?;
        let mac = ipam::parse_mac(&ep.mac_address).unwrap_or_else(|| ipam::mac_for(ip));
        // The element (an nft process) and the links (netlink, then a thread in the netns)
        // are independent: both at once.
        let rules = async {
            let started = std::time::Instant::now();
            if let Some(rule) = endpoint_rule(&n, &ep) {
                self.fw
                    .nft(&self.fw.add_endpoint_text(&rule))
                    .await
                    .map_err(kernel)?;
            }
            Ok::<_, NetworkError>(started.elapsed())
        };
        let links = async {
            let mut phases = Phases::start();
            let mut bridge = self.bridge_ready(&n).await?;
            self.fw.allow_in_docker_user_soon(&n.bridge);
            phases.mark("bridge");
            let veth = |bridge| {
                self.links
                    .add_veth(&ep.host_interface, bridge, netns, &ep.interface, mac, n.mtu)
            };
            // The veth of a repeated attach is there already; otherwise the bridge may have
            // gone since it was made ready: once more with the bridge made ready again.
            if let Err(e) = veth(bridge).await
                && self.links.index(&ep.host_interface).await.is_none()
            {
                tracing::debug!(error = %e, bridge = n.bridge, "checking the bridge again");
                self.links.forget(&n.bridge);
                bridge = self.bridge_ready(&n).await?;
                veth(bridge).await.map_err(kernel)?;
            }
            if let Some((ip6, _)) = netlink::ip6_of(&ep)
                && let Err(e) = self.links.refresh_neighbour(bridge, ip6.into(), mac).await
            {
                tracing::warn!(error = %e, link = ep.host_interface, "updating the host's neighbour");
            }
            phases.mark("veth");
            let gateway = ep.gateway.parse().ok().filter(|_| ep.default_route);
            let inside = Inside {
                interface: ep.interface.clone(),
                ip,
                prefix: u8::try_from(ep.ipv4_prefix_len).unwrap_or(32),
                gateway,
                ip6: netlink::ip6_of(&ep),
                gateway6: ep.ipv6_gateway.parse().ok().filter(|_| ep.default_route6),
                link_local,
                sysctls,
            };
            let sockets = prepared.configure(vec![inside]).await.map_err(kernel)?;
            phases.mark("inside");
            Ok::<_, NetworkError>((sockets, phases))
        };
        // The endpoint and its address are made durable while the kernel work goes on: no
        // one learns of the address before both are done, and what the kernel got for an
        // endpoint not committed (a crash meanwhile) is removed as orphaned at the next start.
        let commit = async {
            let started = std::time::Instant::now();
            if let Some(w) = staged {
                let store = self.store.clone();
                tokio::task::spawn_blocking(move || store.commit(w))
                    .await
                    .map_err(|e| NetworkError::Store(anyhow::anyhow!("committing: {e}")))??;
            }
            Ok::<_, NetworkError>(started.elapsed())
        };
        let (committed, rules, links) = tokio::join!(commit, rules, links);
        let committed = match committed {
            Ok(d) => d,
            Err(e) => {
                // Not recorded: what the kernel got is taken back here.
                self.unmake(&n, &ep).await;
                return Err(e);
            }
        };
        let (rules, (sockets, inner)) = (rules?, links?);
        phases.mark("kernel");
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(
                container = who.id,
                "plug: {}; kernel: {}, rules {:.2}ms, commit {:.2}ms",
                phases.summary(),
                inner.summary(),
                rules.as_secs_f64() * 1e3,
                committed.as_secs_f64() * 1e3
            );
        }
        Ok((ep, sockets))
    }

    /// Takes back the link and the element of the endpoint `ep` on `n`, which is not
    /// recorded.
    async fn unmake(&self, n: &pb::NetworkRecord, ep: &pb::Endpoint) {
        if let Err(e) = self.links.delete(&ep.host_interface).await {
            tracing::warn!(error = %e, link = ep.host_interface, "removing a veth");
        }
        if let Some(rule) = endpoint_rule(n, ep)
            && let Err(e) = self.fw.nft(&self.fw.remove_endpoint_text(&rule)).await
        {
            tracing::warn!(error = %e, "removing an endpoint's element");
        }
    }

    /// Unplugs every endpoint of a container.
    pub(crate) async fn detach(&self, container: &str) -> Result<(), NetworkError> {
        let _g = self.lock.lock().await;
        self.detach_locked(container).await;
        Ok(())
    }

    pub(super) async fn detach_locked(&self, container: &str) {
        let removed = match self.store.remove_endpoints(container, |n, _| {
            self.network_event(n, "disconnect", Some(container))
        }) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, container, "releasing endpoints");
                return;
            }
        };
        let ports: String = removed
            .iter()
            .flat_map(port_rules)
            .map(|r| self.fw.remove_port_text(&r))
            .collect();
        if let Err(e) = self.fw.nft(&ports).await {
            tracing::warn!(error = %e, container, "removing published ports' elements");
        }
        self.held.release(container).await;
        self.dns.stop(container);
        for ep in removed {
            if let Err(e) = self.links.delete(&ep.host_interface).await {
                tracing::warn!(error = %e, link = ep.host_interface, "removing a veth");
            }
            let Ok(n) = self.find(&ep.network_id) else {
                continue;
            };
            if let Some(rule) = endpoint_rule(&n, &ep)
                && let Err(e) = self.fw.nft(&self.fw.remove_endpoint_text(&rule)).await
            {
                tracing::warn!(error = %e, "removing an endpoint's element");
            }
        }
    }
}
