//! A container's network around its run: the runtime makes the container's netns (a bind mount
//! at `<exec-root>/netns/<id>`, as `ip netns add` does), asks the network service to plug it
//! into its network (Attach, which returns the resolv.conf and hosts to use), hands the shim the
//! netns path, and at the exit or removal asks it to unplug (Detach) and removes the netns.

use std::path::{Path, PathBuf};

use berth_proto::{network::v1 as netpb, runtime::v1 as pb};
use berth_service::Channel;
use nix::mount::{MntFlags, MsFlags};

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

/// The content of the container's /etc/resolv.conf and /etc/hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EtcContent {
    pub(crate) resolv_conf: String,
    pub(crate) hosts: String,
}

/// What a start hands the shim and records.
pub(crate) struct NetworkUp {
    pub(crate) netns: berth_bundle::NetNs,
    /// None: the defaults (networks none and host).
    pub(crate) etc: Option<EtcContent>,
    pub(crate) state: Option<pb::NetworkState>,
}

/// Makes a persistent network namespace at `path`: a thread unshares its netns and
/// bind-mounts it onto the file; the namespace lives as long as the mount.
pub(crate) fn create_netns(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    remove_netns(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let target = path.to_owned();
    let made = std::thread::Builder::new()
        .name("netns".to_owned())
        .spawn(move || -> nix::Result<()> {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)?;
            nix::mount::mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
        })?
        .join()
        .map_err(|_| std::io::Error::other("the netns thread panicked"))?;
    if let Err(e) = made {
        let _ = std::fs::remove_file(path);
        return Err(std::io::Error::other(format!(
            "making the network namespace {}: {e}",
            path.display()
        )));
    }
    Ok(())
}

/// Unmounts and removes a netns file; a missing one is fine.
pub(crate) fn remove_netns(path: &Path) {
    let _ = nix::mount::umount2(path, MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(path);
}

fn client(ch: &Channel) -> netpb::network_client::NetworkClient<Channel> {
    netpb::network_client::NetworkClient::new(ch.clone())
}

pub(crate) fn endpoint(e: netpb::Endpoint) -> pb::ContainerEndpoint {
    let dns_names = if e.network_name == "bridge" {
        Vec::new()
    } else {
        std::iter::once(e.container_name.clone())
            .chain(e.aliases.iter().cloned())
            .chain(std::iter::once(e.container_id.chars().take(12).collect()))
            .chain((!e.hostname.is_empty()).then(|| e.hostname.clone()))
            .fold(Vec::new(), |mut names: Vec<String>, n| {
                // dockerd's order, each name once.
                if !names.contains(&n) {
                    names.push(n);
                }
                names
            })
    };
    pb::ContainerEndpoint {
        dns_names,
        aliases: e.aliases,
        network_name: e.network_name,
        network_id: e.network_id,
        endpoint_id: e.endpoint_id,
        ipv4_address: e.ipv4_address,
        ipv4_prefix_len: e.ipv4_prefix_len,
        gateway: e.gateway,
        mac_address: e.mac_address,
        interface: e.interface,
        ipv6_address: e.ipv6_address,
        ipv6_prefix_len: e.ipv6_prefix_len,
        ipv6_gateway: e.ipv6_gateway,
    }
}

/// A host port or range ("8080", "8000-8010"; empty or "0": an ephemeral port).
fn host_ports(s: &str) -> Result<(u32, u32), ContainerError> {
    let bad = || ContainerError::invalid(format!("invalid host port {s:?}"));
    let one = |p: &str| p.trim().parse::<u16>().map(u32::from).map_err(|_| bad());
    match s.split_once('-') {
        _ if s.is_empty() => Ok((0, 0)),
        None => one(s).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (one(a)?, one(b)?);
            if a > b || a == 0 {
                return Err(bad());
            }
            Ok((a, b))
        }
    }
}

/// The host ports to publish: `-p` bindings, and with `-P` every exposed port without one on
/// an ephemeral host port.
pub(crate) fn port_requests(
    net: &pb::NetworkSpec,
) -> Result<Vec<netpb::PortRequest>, ContainerError> {
    let mut out = Vec::new();
    for b in &net.port_bindings {
        let (first, last) = host_ports(&b.host_port)?;
        out.push(netpb::PortRequest {
            container_port: b.container_port,
            protocol: b.protocol.clone(),
            host_ip: b.host_ip.clone(),
            host_port_first: first,
            host_port_last: last,
        });
    }
    if net.publish_all {
        for e in &net.exposed_ports {
            let (port, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            let bound = net
                .port_bindings
                .iter()
                .any(|b| b.container_port == u32::from(port) && b.protocol == proto);
            if !bound {
                out.push(netpb::PortRequest {
                    container_port: u32::from(port),
                    protocol: proto.to_owned(),
                    ..Default::default()
                });
            }
        }
    }
    Ok(out)
}

fn published(p: netpb::PublishedPort) -> pb::PublishedPort {
    pb::PublishedPort {
        container_port: p.container_port,
        protocol: p.protocol,
        host_ip: p.host_ip,
        host_port: p.host_port,
    }
}

impl Containers {
    pub(crate) fn netns_path(&self, id: &str) -> PathBuf {
        self.netns_dir.join(id)
    }

    /// Before the shim starts: the netns for the bundle, and for a container on a network
    /// (the default bridge or a user-defined one) its netns made and plugged in.
    pub(crate) async fn network_up(&self, c: &Container) -> Result<NetworkUp, ContainerError> {
        match c.network_mode() {
            "none" => {
                return Ok(NetworkUp {
                    netns: berth_bundle::NetNs::New,
                    etc: None,
                    state: None,
                });
            }
            "host" => {
                return Ok(NetworkUp {
                    netns: berth_bundle::NetNs::Host,
                    etc: None,
                    state: None,
                });
            }
            m if m.starts_with("container:") => return self.join_netns(m),
            _ => {}
        }
        // A previous run's leftovers (a runtime that died before its Detach) go first.
        self.network_down(&c.id).await;
        let net = c.spec.network.clone().unwrap_or_default();
        let ports = port_requests(&net)?;
        // Every network of its list (connect and disconnect change it), the mode's first.
        let mut endpoints: Vec<netpb::EndpointRequest> = crate::connect::networks_of(&c.spec)
            .into_iter()
            .filter(|e| !matches!(e.network.as_str(), "none" | "host"))
            .map(|e| netpb::EndpointRequest {
                network: e.network,
                aliases: e.aliases,
                ipv4_address: e.ipv4_address,
                mac_address: e.mac_address,
                ipv6_address: e.ipv6_address,
                links: e.links,
                gw_priority: e.gw_priority,
                link_local_ips: e.link_local_ips,
                driver_opts: e.driver_opts,
            })
            .collect();
        // Legacy links (HostConfig.Links) go with the mode's network (the container's first).
        if let Some(first) = endpoints.first_mut() {
            for l in &net.links {
                if !first.links.contains(l) {
                    first.links.push(l.clone());
                }
            }
        }
        if let Some(first) = endpoints.first_mut()
            && first.mac_address.is_empty()
        {
            // The container-wide --mac-address of API versions before 1.44.
            first.mac_address.clone_from(&net.mac_address);
        }

        let path = self.netns_path(&c.id);
        create_netns(&path)?;
        let req = netpb::AttachRequest {
            container_id: c.id.clone(),
            container_name: c.short_name().to_owned(),
            netns_path: path.display().to_string(),
            endpoints,
            dns: net.dns.clone(),
            dns_search: net.dns_search.clone(),
            dns_options: net.dns_options.clone(),
            extra_hosts: net.extra_hosts.clone(),
            hostname: c.spec.hostname.clone(),
            domainname: c.spec.domainname.clone(),
            ports,
        };
        let r = match client(&self.network).attach(req).await {
            Ok(r) => r.into_inner(),
            Err(e) => {
                remove_netns(&path);
                return Err(ContainerError::new(
                    berth_errors::kind_of(&e),
                    e.message().to_owned(),
                ));
            }
        };
        Ok(NetworkUp {
            netns: berth_bundle::NetNs::Path(path.clone()),
            etc: Some(EtcContent {
                resolv_conf: r.resolv_conf,
                hosts: r.hosts,
            }),
            state: Some(pb::NetworkState {
                sandbox_key: path.display().to_string(),
                endpoints: r.endpoints.into_iter().map(endpoint).collect(),
                ports: r.ports.into_iter().map(published).collect(),
            }),
        })
    }

    /// `--network container:<id>`: the other container's netns (it must run), its hosts and
    /// resolv.conf.
    fn join_netns(&self, mode: &str) -> Result<NetworkUp, ContainerError> {
        let other = self.find(mode.trim_start_matches("container:"))?;
        if !other.state.running() {
            return Err(ContainerError::conflict(format!(
                "cannot join network of a non running container: {}",
                other.id
            )));
        }
        let netns = match other.network_mode() {
            "host" => berth_bundle::NetNs::Host,
            _ if self.netns_path(&other.id).exists() => {
                berth_bundle::NetNs::Path(self.netns_path(&other.id))
            }
            _ => berth_bundle::NetNs::Path(PathBuf::from(format!(
                "/proc/{}/ns/net",
                other.state.pid
            ))),
        };
        let etc = self.bundle(&other.id).join("etc");
        let read = |f: &str| std::fs::read_to_string(etc.join(f)).ok();
        let etc = match (read("resolv.conf"), read("hosts")) {
            (Some(resolv_conf), Some(hosts)) => Some(EtcContent { resolv_conf, hosts }),
            _ => None,
        };
        Ok(NetworkUp {
            netns,
            etc,
            state: None,
        })
    }

    /// After the exit, at removal, after a failed start: the endpoints unplugged and the netns
    /// removed. Harmless when there is nothing.
    pub(crate) async fn network_down(&self, id: &str) {
        let path = self.netns_path(id);
        if !path.exists() {
            return;
        }
        let req = netpb::DetachRequest {
            container_id: id.to_owned(),
        };
        if let Err(e) = client(&self.network).detach(req).await {
            tracing::warn!(error = %e, id, "network detach");
        }
        remove_netns(&path);
    }

    /// At start: containers that do not run (or are gone) hold no network. What a runtime that
    /// died between an exit and its Detach left is released.
    pub(crate) async fn reconcile_networks(&self) {
        let Ok(entries) = std::fs::read_dir(&self.netns_dir) else {
            return;
        };
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let running = matches!(self.store.get(&id), Ok(Some(c)) if c.state.running());
            if !running {
                tracing::info!(id, "releasing the network of a container that does not run");
                self.network_down(&id).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bindings_and_publish_all_become_requests() {
        let net = pb::NetworkSpec {
            exposed_ports: vec!["53/udp".to_owned(), "80/tcp".to_owned()],
            port_bindings: vec![pb::PortBinding {
                container_port: 80,
                protocol: "tcp".to_owned(),
                host_ip: String::new(),
                host_port: "8000-8010".to_owned(),
            }],
            publish_all: true,
            ..Default::default()
        };
        let r = port_requests(&net).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].host_port_first, r[0].host_port_last), (8000, 8010));
        assert_eq!((r[1].container_port, r[1].protocol.as_str()), (53, "udp"));
        assert_eq!(r[1].host_port_first, 0);
        assert!(host_ports("x").is_err());
        assert_eq!(host_ports("8080").unwrap(), (8080, 8080));
    }
}
