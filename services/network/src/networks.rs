//! Networks and endpoints: the predefined networks, `docker network create/ls/inspect/rm/prune`,
//! and a container's Attach and Detach. The store is written first, then the kernel (links,
//! then the firewall's set elements); every operation is serialized by one lock.

use std::{
    collections::BTreeSet,
    net::{Ipv4Addr, SocketAddrV4},
    path::PathBuf,
    sync::Arc,
};

use berth_bus::EventPublisher;
use berth_config::DaemonConfig;
use berth_proto::network::v1 as pb;
use berth_types::{Actor, Event, EventType};

use crate::{
    NetworkError, dns,
    firewall::{EndpointRule, Firewall, NetRule},
    ipam::{self, Ipv4Net, Pool},
    netlink::{self, Inside, Links, VETH_PREFIX},
    ports::{self, Held, Holder, PortRule},
    store::{NoAddress, Refusal, Store},
};

mod connect;

/// The container an operation is for.
pub(crate) struct Who<'a> {
    pub(crate) id: &'a str,
    /// Without the slash.
    pub(crate) name: &'a str,
    pub(crate) hostname: &'a str,
}

/// The default bridge network's interface when daemon.json names none.
pub(crate) const DEFAULT_BRIDGE: &str = "berth0";
/// User-defined networks' bridges: this prefix and 9 hex digits of the network ID.
const BRIDGE_PREFIX: &str = "berth-";
const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
const OPT_MTU: &str = "com.docker.network.driver.mtu";
const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";

/// What daemon.json says about networking.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) default_bridge: String,
    pub(crate) bip: Option<(Ipv4Addr, u8)>,
    pub(crate) pools: Vec<(Ipv4Net, u8)>,
    pub(crate) mtu: u32,
}

impl Settings {
    pub(crate) fn from_config(cfg: &DaemonConfig) -> Settings {
        let configured: Vec<(Ipv4Net, u8)> = cfg
            .default_address_pools
            .iter()
            .filter_map(|p| Ipv4Net::new(p.base.addr, p.base.prefix).map(|n| (n, p.size)))
            .collect();
        Settings {
            default_bridge: cfg
                .bridge
                .clone()
                .unwrap_or_else(|| DEFAULT_BRIDGE.to_owned()),
            bip: cfg.bip.map(|b| (b.addr, b.prefix)),
            pools: ipam::default_pools(&configured),
            mtu: cfg.mtu.unwrap_or(1500),
        }
    }

    /// Berth's nftables table: `berth` for the default bridge `berth0`, else one per bridge
    /// name, so that two engines on one host (tests) keep out of each other's table.
    pub(crate) fn table(&self) -> String {
        if self.default_bridge == DEFAULT_BRIDGE {
            "berth".to_owned()
        } else {
            format!("berth_{}", self.default_bridge.replace(['-', '.'], "_"))
        }
    }
}

pub(crate) struct Networks {
    store: Arc<Store>,
    links: Links,
    fw: Firewall,
    events: EventPublisher,
    settings: Settings,
    /// The sockets that reserve published host ports.
    held: Held,
    /// The embedded DNS servers of containers on user-defined networks.
    dns: dns::Servers,
    lock: tokio::sync::Mutex<()>,
}

/// Where engines on one host serialize picking a subnet and making its bridge, so that two
/// starting at once do not both take the same free subnet.
const HOST_LOCK: &str = "/run/berth-network.lock";

/// Holds the host-wide lock (best effort: without /run, no lock).
async fn host_lock() -> Option<nix::fcntl::Flock<std::fs::File>> {
    tokio::task::spawn_blocking(|| {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(HOST_LOCK)
            .ok()?;
        nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusive).ok()
    })
    .await
    .ok()
    .flatten()
}

/// 64 random lowercase hex digits.
fn new_id() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn now_nanos() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

fn kernel(e: anyhow::Error) -> NetworkError {
    NetworkError::Kernel(e)
}

fn valid_ifname(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 15
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

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

fn rule_of(n: &pb::NetworkRecord) -> Option<NetRule> {
    let subnet = n.ipam.first()?.subnet.parse().ok()?;
    (n.driver == "bridge").then(|| NetRule {
        bridge: n.bridge.clone(),
        subnet,
        internal: n.internal,
    })
}

/// The DNAT elements of an endpoint's published ports.
fn port_rules(e: &pb::Endpoint) -> Vec<PortRule> {
    let Ok(target) = e.ipv4_address.parse() else {
        return Vec::new();
    };
    e.ports
        .iter()
        .filter_map(|p| PortRule::of(target, p))
        .collect()
}

fn endpoint_rule(n: &pb::NetworkRecord, e: &pb::Endpoint) -> Option<EndpointRule> {
    Some(EndpointRule {
        bridge: n.bridge.clone(),
        ip: e.ipv4_address.parse().ok()?,
    })
}

/// The host's resolv.conf for a container on a bridge: loopback name servers cannot be reached
/// from its netns, so they are dropped; with none left, Docker's defaults (8.8.8.8, 8.8.4.4).
pub(crate) fn resolv_conf(host: &str) -> String {
    let mut out = String::new();
    let mut servers = 0;
    for line in host.lines() {
        let mut words = line.split_whitespace();
        if words.next() == Some("nameserver") {
            let ip = words.next().unwrap_or_default();
            let loopback = ip
                .parse::<std::net::IpAddr>()
                .map_or(true, |a| a.is_loopback());
            if loopback {
                continue;
            }
            servers += 1;
        }
        out.push_str(line);
        out.push('\n');
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

/// /etc/hosts as dockerd writes it, with the container's addresses.
pub(crate) fn hosts(hostname: &str, domainname: &str, addresses: &[String]) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\n\
         ff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    let names = if domainname.is_empty() {
        hostname.to_owned()
    } else {
        format!("{hostname}.{domainname} {hostname}")
    };
    for a in addresses {
        out.push_str(&format!("{a}\t{names}\n"));
    }
    out
}

/// Whether a network passes the filters (`endpoints`: how many it has).
pub(crate) fn matches(f: &pb::NetworkFilters, n: &pb::NetworkRecord, endpoints: usize) -> bool {
    let any = |values: &[String], pred: &dyn Fn(&str) -> bool| {
        values.is_empty() || values.iter().any(|v| pred(v))
    };
    let label_ok = |l: &pb::LabelFilter| match (&l.value, n.labels.get(&l.key)) {
        (None, Some(_)) => true,
        (Some(want), Some(have)) => want == have,
        _ => false,
    };
    let dangling_ok = match f.dangling {
        None => true,
        Some(true) => !n.predefined && endpoints == 0,
        Some(false) => n.predefined || endpoints > 0,
    };
    dangling_ok
        && any(&f.drivers, &|d| d == n.driver)
        && any(&f.ids, &|id| n.id.starts_with(id))
        && any(&f.names, &|name| n.name.contains(name))
        && any(&f.scopes, &|s| s == "local")
        && any(&f.types, &|t| match t {
            "custom" => !n.predefined,
            "builtin" => n.predefined,
            _ => false,
        })
        && f.labels.iter().all(label_ok)
        && !f.labels_not.iter().any(label_ok)
        && f.until.is_none_or(|u| n.created / 1_000_000_000 <= u)
}

impl Networks {
    pub(crate) fn new(
        store: Arc<Store>,
        links: Links,
        events: EventPublisher,
        settings: Settings,
    ) -> Networks {
        Networks {
            store,
            links,
            fw: Firewall::new(settings.table()),
            events,
            settings,
            held: Held::default(),
            dns: dns::Servers::default(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Publishes a network event (durably, through the store's outbox once attached).
    fn event(&self, n: &pb::NetworkRecord, action: &str, container: Option<&str>) {
        for ev in self.network_event(n, action, container) {
            self.events.publish(&ev);
        }
    }

    /// A network event (none if `action` is malformed).
    fn network_event(
        &self,
        n: &pb::NetworkRecord,
        action: &str,
        container: Option<&str>,
    ) -> Vec<Event> {
        let mut actor = Actor {
            id: n.id.clone(),
            ..Actor::default()
        };
        actor.attributes.insert("name".to_owned(), n.name.clone());
        actor.attributes.insert("type".to_owned(), n.driver.clone());
        if let Some(c) = container {
            actor
                .attributes
                .insert("container".to_owned(), c.to_owned());
        }
        match action.parse() {
            Ok(a) => vec![Event::new(EventType::Network, a, actor, now_nanos())],
            Err(e) => {
                tracing::error!(error = %e, "bad event action");
                Vec::new()
            }
        }
    }

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
            let target: Ipv4Addr = e.ipv4_address.parse().unwrap_or(Ipv4Addr::UNSPECIFIED);
            let fds = e
                .ports
                .iter()
                .filter_map(|p| match p.host_ip.as_str() {
                    "::" => u16::try_from(p.host_port).ok().and_then(|port| {
                        let to = SocketAddrV4::new(target, u16::try_from(p.container_port).ok()?);
                        ports::proxy_v6(port, to).ok().flatten().map(Holder::Proxy)
                    }),
                    _ => match ports::rebind(p) {
                    Ok(fd) => Some(Holder::Socket(fd)),
                    Err(err) => {
                        tracing::warn!(error = %err, container = e.container_id, "re-reserving a published port");
                        None
                    }
                    },
                })
                .collect();
            self.held.keep(&e.container_id, fds);
            // The embedded DNS server of a container that kept running serves again.
            if !e.dns_netns.is_empty() && std::path::Path::new(&e.dns_netns).exists() {
                let netns = PathBuf::from(&e.dns_netns);
                if let Err(err) =
                    self.dns
                        .start(self.store.clone(), &e.container_id, netns, &e.dns_servers)
                {
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

    async fn bridge_up(&self, n: &pb::NetworkRecord) -> Result<u32, NetworkError> {
        let pool = pools_of(n)?
            .into_iter()
            .next()
            .ok_or_else(|| NetworkError::Store(anyhow::anyhow!("{} has no subnet", n.name)))?;
        let index = self
            .links
            .ensure_bridge(&n.bridge, pool.gateway, pool.subnet.prefix(), n.mtu)
            .await
            .map_err(kernel)?;
        // Published ports answer on 127.0.0.1: loopback-sourced packets may leave through it.
        let localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", n.bridge);
        if std::fs::read_to_string(&localnet).is_ok_and(|v| v.trim() != "1")
            && let Err(e) = std::fs::write(&localnet, "1")
        {
            tracing::warn!(error = %e, bridge = n.bridge, "could not set route_localnet");
        }
        self.fw.allow_in_docker_user(&n.bridge).await;
        Ok(index)
    }

    /// Subnets that a new network must not overlap: the host's routes and other networks'.
    async fn taken_subnets(&self, own_bridges: &[String]) -> Result<Vec<Ipv4Net>, NetworkError> {
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
    async fn predefined(&self) -> Result<(), NetworkError> {
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
            if let Err(Refusal::NameTaken(_)) = self.store.create_network(&n)? {
                continue;
            }
            tracing::info!(name, id = n.id, "created a predefined network");
        }
        Ok(())
    }

    /// Full ID, exact name, or unique ID prefix (moby's order).
    pub(crate) fn find(&self, r: &str) -> Result<pb::NetworkRecord, NetworkError> {
        let all = self.store.networks()?;
        if let Some(n) = all.iter().find(|n| n.id == r) {
            return Ok(n.clone());
        }
        if let Some(n) = all.iter().find(|n| n.name == r) {
            return Ok(n.clone());
        }
        let by_prefix: Vec<&pb::NetworkRecord> = if r.is_empty() {
            Vec::new()
        } else {
            all.iter().filter(|n| n.id.starts_with(r)).collect()
        };
        match by_prefix.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(NetworkError::not_found(format!("network {r} not found"))),
            _ => Err(NetworkError::invalid(format!(
                "network {r} is ambiguous ({} matches found based on ID prefix)",
                by_prefix.len()
            ))),
        }
    }

    fn info(&self, n: pb::NetworkRecord) -> Result<pb::NetworkInfo, NetworkError> {
        let endpoints = self.store.network_endpoints(&n.id)?;
        Ok(pb::NetworkInfo {
            network: Some(n),
            endpoints,
        })
    }

    pub(crate) fn inspect(&self, r: &str) -> Result<pb::NetworkInfo, NetworkError> {
        let n = self.find(r)?;
        self.info(n)
    }

    pub(crate) fn list(
        &self,
        f: &pb::NetworkFilters,
    ) -> Result<Vec<pb::NetworkInfo>, NetworkError> {
        let mut out = Vec::new();
        for n in self.store.networks()? {
            let info = self.info(n)?;
            let n = info.network.as_ref().expect("set above");
            if matches(f, n, info.endpoints.len()) {
                out.push(info);
            }
        }
        out.sort_by(|a, b| {
            let name = |i: &pb::NetworkInfo| i.network.as_ref().map(|n| n.name.clone());
            name(a).cmp(&name(b))
        });
        Ok(out)
    }

    /// The network a create request describes, checked (nothing recorded yet).
    async fn plan(
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
        if req.enable_ipv6 {
            return Err(NetworkError::invalid(
                "--ipv6 is not supported by Berth yet (EnableIPv6)",
            ));
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
        if req.ipam.len() > 1 {
            return Err(NetworkError::invalid(
                "more than one IPAM configuration is not supported by Berth yet",
            ));
        }
        let ipam = match req.ipam.first() {
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
            enable_ipv6: false,
            ipam: vec![ipam],
            options: req.options.clone(),
            labels: req.labels.clone(),
            bridge,
            mtu,
            predefined: false,
            subnet_given: !req.ipam.is_empty(),
        })
    }

    fn check_ipam(
        &self,
        c: &pb::IpamConfig,
        others: &[pb::NetworkRecord],
    ) -> Result<pb::IpamConfig, NetworkError> {
        if c.subnet.is_empty() {
            return Err(NetworkError::invalid(
                "a gateway, an IP range or auxiliary addresses need a subnet (--subnet)",
            ));
        }
        if c.subnet.contains(':') {
            return Err(NetworkError::invalid(
                "IPv6 subnets are not supported by Berth yet",
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
        let gateway = if c.gateway.is_empty() {
            subnet.first_host().unwrap_or(subnet.addr())
        } else {
            let g: Ipv4Addr = c
                .gateway
                .parse()
                .map_err(|_| NetworkError::invalid(format!("invalid gateway {}", c.gateway)))?;
            if !subnet.contains(g) {
                return Err(NetworkError::invalid(format!(
                    "no matching subnet for gateway {g}"
                )));
            }
            g
        };
        if !c.ip_range.is_empty() {
            let r: Ipv4Net = c.ip_range.parse().map_err(NetworkError::invalid)?;
            if !subnet.covers(&r) {
                return Err(NetworkError::invalid(format!(
                    "no matching subnet for range {r}"
                )));
            }
        }
        for (k, a) in &c.aux_addresses {
            let ip: Ipv4Addr = a
                .parse()
                .map_err(|_| NetworkError::invalid(format!("invalid auxiliary address {k}={a}")))?;
            if !subnet.contains(ip) {
                return Err(NetworkError::invalid(format!(
                    "no matching subnet for aux-address {ip}"
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
        if let Err(Refusal::NameTaken(_)) = self.store.create_network(&n)? {
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
            let _ = self.store.remove_network(&n.id, &[]);
            return Err(e);
        }
        self.event(&n, "create", None);
        self.info(n)
    }

    /// docker network rm.
    pub(crate) async fn remove(&self, r: &str) -> Result<(), NetworkError> {
        let _g = self.lock.lock().await;
        let n = self.find(r)?;
        self.remove_locked(&n).await
    }

    async fn remove_locked(&self, n: &pb::NetworkRecord) -> Result<(), NetworkError> {
        if n.predefined {
            return Err(NetworkError::forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                n.name
            )));
        }
        let destroyed = self.network_event(n, "destroy", None);
        if let Err(Refusal::InUse(_)) = self.store.remove_network(&n.id, &destroyed)? {
            return Err(NetworkError::forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                n.name, n.id
            )));
        }
        if let Some(rule) = rule_of(n) {
            self.fw
                .nft(&self.fw.remove_network_text(&rule))
                .await
                .map_err(kernel)?;
        }
        self.fw.forget_in_docker_user(&n.bridge).await;
        self.links.delete(&n.bridge).await.map_err(kernel)?;
        Ok(())
    }

    /// docker network prune: the user-defined networks without endpoints that the filters
    /// select. Their names.
    pub(crate) async fn prune(&self, f: &pb::NetworkFilters) -> Result<Vec<String>, NetworkError> {
        let _g = self.lock.lock().await;
        let mut out = Vec::new();
        for n in self.store.networks()? {
            if n.predefined || !self.store.network_endpoints(&n.id)?.is_empty() {
                continue;
            }
            if !matches(f, &n, 0) {
                continue;
            }
            self.remove_locked(&n).await?;
            out.push(n.name);
        }
        Ok(out)
    }

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
        let mut endpoints = Vec::new();
        for want in &req.endpoints {
            match self.plug(&who, &netns, want).await {
                Ok(ep) => endpoints.push(ep),
                Err(e) => {
                    self.detach_locked(cid).await;
                    return Err(e);
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
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let gateway = endpoints
            .first()
            .map(|e| e.gateway.clone())
            .unwrap_or_default();
        let extra = dns::extra_hosts(&req.extra_hosts, &gateway).map_err(NetworkError::invalid);
        let extra = match extra {
            Ok(e) => e,
            Err(e) => {
                self.detach_locked(cid).await;
                return Err(e);
            }
        };
        // Containers on a user-defined network get the embedded DNS server; the first such
        // endpoint records where it serves.
        let mut user_network = None;
        for (i, e) in endpoints.iter().enumerate() {
            if !self.find(&e.network_id)?.predefined {
                user_network = Some(i);
                break;
            }
        }
        if let Some(first) = user_network.and_then(|i| endpoints.get_mut(i)) {
            let upstreams = if req.dns.is_empty() {
                dns::nameservers(&host)
            } else {
                req.dns.clone()
            };
            first.dns_netns = req.netns_path.clone();
            first.dns_servers = upstreams.clone();
            let started = self.store.update_endpoint(first).and_then(|()| {
                self.dns
                    .start(self.store.clone(), cid, netns.clone(), &upstreams)
                    .map_err(|e| kernel(anyhow::anyhow!("starting the embedded DNS server: {e}")))
            });
            if let Err(e) = started {
                self.detach_locked(cid).await;
                return Err(e);
            }
        }
        let addresses: Vec<String> = endpoints.iter().map(|e| e.ipv4_address.clone()).collect();
        Ok(pb::AttachResponse {
            resolv_conf: dns::resolv_conf(
                &resolv_conf(&host),
                user_network.is_some(),
                &req.dns,
                &req.dns_search,
                &req.dns_options,
            ),
            hosts: hosts(&req.hostname, &req.domainname, &addresses) + &extra,
            endpoints,
            ports: published,
        })
    }

    /// Binds the host ports the request asks for and forwards them to `ep`: the sockets held,
    /// the ports recorded on the endpoint, the map elements added in one transaction. A repeated
    /// Attach keeps what the first one published.
    async fn publish(
        &self,
        req: &pb::AttachRequest,
        ep: &mut pb::Endpoint,
    ) -> Result<Vec<pb::PublishedPort>, NetworkError> {
        if !ep.ports.is_empty() {
            return Ok(ep.ports.clone());
        }
        let mut fds = Vec::new();
        let mut published = Vec::new();
        for p in &req.ports {
            let (fd, port) = ports::bind_request(p).map_err(|e| match e {
                NetworkError::Client(_, msg) => NetworkError::Client(
                    berth_types::ErrorKind::Internal,
                    format!(
                        "driver failed programming external connectivity on endpoint {} ({}): {msg}",
                        req.container_name, ep.endpoint_id
                    ),
                ),
                other => other,
            })?;
            fds.push(Holder::Socket(fd));
            // Every address: IPv6 clients too, through a proxy task.
            if port.host_ip == "0.0.0.0" && port.protocol == "tcp" {
                let target: Ipv4Addr = ep
                    .ipv4_address
                    .parse()
                    .map_err(|_| NetworkError::Store(anyhow::anyhow!("bad endpoint address")))?;
                let to = SocketAddrV4::new(
                    target,
                    u16::try_from(port.container_port).unwrap_or_default(),
                );
                let host_port = u16::try_from(port.host_port).unwrap_or_default();
                let v6 = pb::PublishedPort {
                    host_ip: "::".to_owned(),
                    ..port.clone()
                };
                published.push(port);
                if let Some(proxy) = ports::proxy_v6(host_port, to)? {
                    fds.push(Holder::Proxy(proxy));
                    published.push(v6);
                }
            } else {
                published.push(port);
            }
        }
        // Hairpin: with br_netfilter, a connection from the container to its own published
        // port is DNATed on the bridge and sent back out of the port it came in through.
        let hairpin = format!("/sys/class/net/{}/brport/hairpin_mode", ep.host_interface);
        if let Err(e) = std::fs::write(&hairpin, "1") {
            tracing::warn!(error = %e, link = ep.host_interface, "could not turn hairpin mode on");
        }
        ep.ports = published.clone();
        self.store.update_endpoint(ep)?;
        let text: String = port_rules(ep)
            .iter()
            .map(|r| self.fw.add_port_text(r))
            .collect();
        self.fw.nft(&text).await.map_err(kernel)?;
        self.held.keep(&req.container_id, fds);
        Ok(published)
    }

    /// Plugs the container into one network: its endpoint recorded with its address (the
    /// fixed one asked for, or the next free one), the veth made with its peer in the netns
    /// (the next free ethN), the address and, when the container has no default route yet and
    /// the network is not internal, the default route; the endpoint's element added.
    async fn plug(
        &self,
        who: &Who<'_>,
        netns: &std::path::Path,
        want: &pb::EndpointRequest,
    ) -> Result<pb::Endpoint, NetworkError> {
        let n = self.find(&want.network)?;
        if n.driver != "bridge" {
            return Err(NetworkError::invalid(format!(
                "container cannot be attached to network {}: it is not a bridge network",
                n.name
            )));
        }
        let (fixed, mac) = connect::check_endpoint(&n, want)?;
        let pools = pools_of(&n)?;
        let others = self.store.container_endpoints(who.id)?;
        let interface = (0..)
            .map(|i| format!("eth{i}"))
            .find(|name| {
                !others
                    .iter()
                    .any(|e| e.network_id != n.id && e.interface == *name)
            })
            .unwrap_or_default();
        let default_route = !n.internal && !others.iter().any(|e| e.default_route);
        let endpoint_id = new_id();
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
            dns_netns: String::new(),
            dns_servers: Vec::new(),
            fixed_address: fixed.is_some(),
            default_route,
            hostname: who.hostname.to_owned(),
        };
        let ep = match self
            .store
            .add_endpoint_at(&n, who.id, &pools, fixed, make)?
        {
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
        };
        let ip: Ipv4Addr = ep
            .ipv4_address
            .parse()
            .map_err(|_| NetworkError::Store(anyhow::anyhow!("bad address in the store")))?;
        let mac = ipam::parse_mac(&ep.mac_address).unwrap_or_else(|| ipam::mac_for(ip));
        let bridge = self.bridge_up(&n).await?;
        if self.links.index(&ep.host_interface).await.is_none() {
            self.links
                .add_veth(&ep.host_interface, bridge, netns, &ep.interface, mac, n.mtu)
                .await
                .map_err(kernel)?;
        }
        let gateway = ep.gateway.parse().ok().filter(|_| ep.default_route);
        netlink::configure_inside(
            netns.to_owned(),
            vec![Inside {
                interface: ep.interface.clone(),
                ip,
                prefix: u8::try_from(ep.ipv4_prefix_len).unwrap_or(32),
                gateway,
            }],
        )
        .await
        .map_err(kernel)?;
        if let Some(rule) = endpoint_rule(&n, &ep) {
            self.fw
                .nft(&self.fw.add_endpoint_text(&rule))
                .await
                .map_err(kernel)?;
        }
        self.event(&n, "connect", Some(who.id));
        Ok(ep)
    }

    /// Unplugs every endpoint of a container.
    pub(crate) async fn detach(&self, container: &str) -> Result<(), NetworkError> {
        let _g = self.lock.lock().await;
        self.detach_locked(container).await;
        Ok(())
    }

    async fn detach_locked(&self, container: &str) {
        let removed = match self.store.remove_endpoints(container) {
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
            self.event(&n, "disconnect", Some(container));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_drops_loopback_servers() {
        let host = "nameserver 127.0.0.53\nsearch example.org\noptions ndots:2\n";
        assert_eq!(
            resolv_conf(host),
            "search example.org\noptions ndots:2\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
        assert_eq!(
            resolv_conf("nameserver 10.0.0.2\nnameserver ::1\n"),
            "nameserver 10.0.0.2\n"
        );
    }

    #[test]
    fn hosts_name_the_container() {
        let h = hosts("abc", "", &["172.18.0.2".to_owned()]);
        assert!(h.starts_with("127.0.0.1\tlocalhost\n"));
        assert!(h.ends_with("172.18.0.2\tabc\n"));
        let h = hosts("web", "example.org", &["10.0.0.3".to_owned()]);
        assert!(h.ends_with("10.0.0.3\tweb.example.org web\n"));
    }

    #[test]
    fn filters_select_as_docker_does() {
        let n = pb::NetworkRecord {
            id: "abcdef".to_owned(),
            name: "mynet".to_owned(),
            driver: "bridge".to_owned(),
            created: 10_000_000_000,
            labels: [("a".to_owned(), "1".to_owned())].into(),
            ..Default::default()
        };
        let f = |f: pb::NetworkFilters| matches(&f, &n, 0);
        assert!(f(pb::NetworkFilters::default()));
        assert!(f(pb::NetworkFilters {
            ids: vec!["abc".to_owned()],
            names: vec!["net".to_owned()],
            types: vec!["custom".to_owned()],
            dangling: Some(true),
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            types: vec!["builtin".to_owned()],
            ..Default::default()
        }));
        let label = |k: &str, v: Option<&str>| pb::LabelFilter {
            key: k.to_owned(),
            value: v.map(str::to_owned),
        };
        assert!(f(pb::NetworkFilters {
            labels: vec![label("a", Some("1"))],
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            labels: vec![label("a", Some("2"))],
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            labels_not: vec![label("a", None)],
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            until: Some(9),
            ..Default::default()
        }));
        assert!(!f(pb::NetworkFilters {
            scopes: vec!["swarm".to_owned()],
            ..Default::default()
        }));
    }

    #[test]
    fn table_names_follow_the_bridge() {
        let mut s = Settings {
            default_bridge: DEFAULT_BRIDGE.to_owned(),
            bip: None,
            pools: Vec::new(),
            mtu: 1500,
        };
        assert_eq!(s.table(), "berth");
        s.default_bridge = "bt-e2e.1".to_owned();
        assert_eq!(s.table(), "berth_bt_e2e_1");
    }
}
