//! Publishing a container's ports: host ports bound and held, DNAT elements added.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use berth_proto::network::v1 as pb;
use berth_types::ErrorKind;

use super::{Networks, kernel, rules::port_rules};
use crate::{
    NetworkError,
    ports::{self, Holder, Plan6, plan6},
};

/// The addresses of an endpoint, as the ports see them.
struct Addrs {
    v4: Option<Ipv4Addr>,
    v6: Option<Ipv6Addr>,
}

impl Addrs {
    fn of(ep: &pb::Endpoint) -> Addrs {
        Addrs {
            v4: ep.ipv4_address.parse().ok(),
            v6: ep.ipv6_address.parse().ok(),
        }
    }
}

/// Binds a request on the IPv6 host address `host` as `plan` says: the holder of the port
/// (its socket, or the proxy task listening on it) and the published port; None where
/// nothing can forward it.
fn bind6(
    req: &pb::PortRequest,
    host: Ipv6Addr,
    plan: Plan6,
) -> Result<Option<(Holder, pb::PublishedPort)>, NetworkError> {
    let proxy_to = match plan {
        Plan6::Kernel { proxy: false, .. } => None,
        Plan6::Kernel { to, proxy: true } => Some(IpAddr::from(to)),
        Plan6::Proxy(to) => Some(to),
        Plan6::None => return Ok(None),
    };
    let (fd, port) = ports::bind_request(req, host.into(), proxy_to.is_some())?;
    let holder = match proxy_to {
        Some(to) => Holder::Proxy(ports::proxy(
            fd,
            SocketAddr::new(to, container_port(req.container_port)),
        )?),
        None => Holder::Socket(fd),
    };
    Ok(Some((holder, port)))
}

fn container_port(p: u32) -> u16 {
    u16::try_from(p).unwrap_or(0)
}

/// Holds a recorded port again (at the service's start): its socket, or its proxy task.
pub(super) fn rehold(
    ep: &pb::Endpoint,
    p: &pb::PublishedPort,
) -> Result<Option<Holder>, NetworkError> {
    let addrs = Addrs::of(ep);
    let proxy_to = match p.host_ip.parse::<IpAddr>() {
        Ok(IpAddr::V6(h)) => match plan6(&p.protocol, h, addrs.v4, addrs.v6) {
            Plan6::Kernel { proxy: false, .. } => None,
            Plan6::Kernel { to, proxy: true } => Some(IpAddr::from(to)),
            Plan6::Proxy(to) => Some(to),
            Plan6::None => return Ok(None),
        },
        _ => None,
    };
    let fd = ports::rebind(p, proxy_to.is_some())?;
    Ok(Some(match proxy_to {
        Some(to) => Holder::Proxy(ports::proxy(
            fd,
            SocketAddr::new(to, container_port(p.container_port)),
        )?),
        None => Holder::Socket(fd),
    }))
}

impl Networks {
    /// Binds the host ports the request asks for and forwards them to `ep`: the sockets held,
    /// the ports recorded on the endpoint, the map elements added in one transaction. A repeated
    /// Attach keeps what the first one published.
    pub(super) async fn publish(
        &self,
        req: &pb::AttachRequest,
        ep: &mut pb::Endpoint,
    ) -> Result<Vec<pb::PublishedPort>, NetworkError> {
        if !ep.ports.is_empty() {
            return Ok(ep.ports.clone());
        }
        let failed = |e: NetworkError| match e {
            NetworkError::Client(_, msg) => NetworkError::Client(
                ErrorKind::Internal,
                format!(
                    "driver failed programming external connectivity on endpoint {} ({}): {msg}",
                    req.container_name, ep.endpoint_id
                ),
            ),
            other => other,
        };
        let addrs = Addrs::of(ep);
        let mut fds = Vec::new();
        let mut published = Vec::new();
        for p in &req.ports {
            let host = ports::host_ip(p).map_err(failed)?;
            let protocol = if p.protocol == "udp" { "udp" } else { "tcp" };
            match host {
                IpAddr::V4(_) => {
                    let (fd, port) = ports::bind_request(p, host, false).map_err(failed)?;
                    fds.push(Holder::Socket(fd));
                    let chosen = port.host_port;
                    published.push(port);
                    // No host address: every IPv6 one too, on the same port (dockerd 28).
                    if !p.host_ip.is_empty() {
                        continue;
                    }
                    let twin = pb::PortRequest {
                        host_port_first: chosen,
                        host_port_last: chosen,
                        ..p.clone()
                    };
                    let any = Ipv6Addr::UNSPECIFIED;
                    let plan = plan6(protocol, any, addrs.v4, addrs.v6);
                    match bind6(&twin, any, plan) {
                        Ok(Some((holder, port))) => {
                            fds.push(holder);
                            published.push(port);
                        }
                        Ok(None) => {}
                        Err(e @ NetworkError::Client(ErrorKind::Conflict, _)) => {
                            return Err(failed(e));
                        }
                        // A host without IPv6.
                        Err(e) => {
                            tracing::info!(error = %e, "no IPv6 binding for a published port")
                        }
                    }
                }
                IpAddr::V6(h) => {
                    let plan = plan6(protocol, h, addrs.v4, addrs.v6);
                    let Some((holder, port)) = bind6(p, h, plan).map_err(failed)? else {
                        return Err(failed(NetworkError::invalid(format!(
                            "publishing {protocol} ports on [{h}] to this container is not \
                             supported by Berth yet (the kernel cannot forward them)"
                        ))));
                    };
                    fds.push(holder);
                    published.push(port);
                }
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
}
