//! Published ports: the service binds each host port itself (TCP sockets are bound, never
//! listened on, so nothing reaches them; they only reserve the port, as a port another process
//! holds makes the bind fail at once) and the kernel forwards through the DNAT maps of the
//! firewall module. The sockets are held per container until its Detach.

use std::{
    collections::HashMap,
    net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6},
    os::fd::{AsRawFd, OwnedFd},
    sync::Mutex,
};

use berth_proto::network::v1 as pb;
use nix::{
    errno::Errno,
    sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, SockaddrIn6, bind, getsockname,
        listen, setsockopt, socket, sockopt,
    },
};

use crate::NetworkError;

/// One forwarding as the rules see it: `host_ip:host_port/proto` to `target:container_port`.
/// `host_ip` 0.0.0.0: every local address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortRule {
    pub(crate) host_ip: Ipv4Addr,
    pub(crate) protocol: String,
    pub(crate) host_port: u16,
    pub(crate) target: Ipv4Addr,
    pub(crate) container_port: u16,
}

impl PortRule {
    /// The rule for a published port of an endpoint at `target`; None for a bad record.
    pub(crate) fn of(target: Ipv4Addr, p: &pb::PublishedPort) -> Option<PortRule> {
        Some(PortRule {
            host_ip: p.host_ip.parse().ok()?,
            protocol: valid_protocol(&p.protocol).ok()?.to_owned(),
            host_port: u16::try_from(p.host_port).ok()?,
            target,
            container_port: u16::try_from(p.container_port).ok()?,
        })
    }
}

fn valid_protocol(p: &str) -> Result<&'static str, NetworkError> {
    match p {
        "" | "tcp" => Ok("tcp"),
        "udp" => Ok("udp"),
        other => Err(NetworkError::invalid(format!(
            "publishing {other} ports is not supported by Berth yet"
        ))),
    }
}

/// Binds `ip:port` for `protocol` (`port` 0: an ephemeral one); the socket and the port.
fn bind_port(protocol: &str, ip: Ipv4Addr, port: u16) -> Result<(OwnedFd, u16), Errno> {
    let kind = if protocol == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let fd = socket(AddressFamily::Inet, kind, SockFlag::SOCK_CLOEXEC, None)?;
    bind(
        fd.as_raw_fd(),
        &SockaddrIn::from(SocketAddrV4::new(ip, port)),
    )?;
    let bound: SockaddrIn = getsockname(fd.as_raw_fd())?;
    Ok((fd, bound.port()))
}

/// Binds the host port a request asks for (the first free one of a range).
pub(crate) fn bind_request(
    req: &pb::PortRequest,
) -> Result<(OwnedFd, pb::PublishedPort), NetworkError> {
    let protocol = valid_protocol(&req.protocol)?;
    let ip: Ipv4Addr = match req.host_ip.as_str() {
        "" => Ipv4Addr::UNSPECIFIED,
        s => s.parse().map_err(|_| {
            if s.parse::<std::net::Ipv6Addr>().is_ok() {
                NetworkError::invalid(format!(
                    "publishing on the IPv6 address {s} is not supported by Berth yet"
                ))
            } else {
                NetworkError::invalid(format!("invalid host IP {s:?}"))
            }
        })?,
    };
    let port = |n: u32| {
        u16::try_from(n)
            .map_err(|_| NetworkError::invalid(format!("invalid port {n}: out of range")))
    };
    let container_port = port(req.container_port)?;
    if container_port == 0 {
        return Err(NetworkError::invalid("invalid container port 0"));
    }
    let first = port(req.host_port_first)?;
    let last = port(req.host_port_last)?.max(first);
    let mut result = Err(Errno::EADDRINUSE);
    for p in first..=last {
        result = bind_port(protocol, ip, p);
        if !matches!(result, Err(Errno::EADDRINUSE)) {
            break;
        }
    }
    let shown = if first == last {
        format!("{ip}:{first}")
    } else {
        format!("{ip}:{first}-{last}")
    };
    match result {
        Ok((fd, host_port)) => Ok((
            fd,
            pb::PublishedPort {
                container_port: u32::from(container_port),
                protocol: protocol.to_owned(),
                host_ip: ip.to_string(),
                host_port: u32::from(host_port),
            },
        )),
        Err(Errno::EADDRINUSE) => Err(NetworkError::conflict(format!(
            "Bind for {shown} failed: port is already allocated"
        ))),
        Err(Errno::EADDRNOTAVAIL) => Err(NetworkError::invalid(format!(
            "Bind for {shown} failed: cannot assign requested address"
        ))),
        Err(e) => Err(NetworkError::Kernel(anyhow::anyhow!(
            "Bind for {shown} failed: {e}"
        ))),
    }
}

/// Binds a recorded port again (at the service's start, so that it stays reserved).
pub(crate) fn rebind(p: &pb::PublishedPort) -> Result<OwnedFd, NetworkError> {
    let ip: Ipv4Addr = p
        .host_ip
        .parse()
        .map_err(|_| NetworkError::invalid(format!("invalid host IP {:?}", p.host_ip)))?;
    let port = u16::try_from(p.host_port)
        .map_err(|_| NetworkError::invalid(format!("invalid port {}", p.host_port)))?;
    bind_port(valid_protocol(&p.protocol)?, ip, port)
        .map(|(fd, _)| fd)
        .map_err(|e| NetworkError::Kernel(anyhow::anyhow!("Bind for {ip}:{port} failed: {e}")))
}

/// What holds a published port: its bound socket, or the proxy task listening on it. Never
/// read: dropping it frees the port.
#[allow(dead_code)]
pub(crate) enum Holder {
    Socket(OwnedFd),
    Proxy(Proxy),
}

/// A proxy task; it stops (and its listener closes) when this is dropped, or, waited for,
/// with [`Proxy::stop`].
pub(crate) struct Proxy(Option<tokio::task::JoinHandle<()>>);

impl Proxy {
    /// Stops the task and returns once its listener is closed: the port is free.
    pub(crate) async fn stop(mut self) {
        if let Some(h) = self.0.take() {
            h.abort();
            // A cancelled task's future (and so its listener) is dropped before its handle
            // resolves.
            let _ = h.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(h) = &self.0 {
            h.abort();
        }
    }
}

/// What the kernel does not forward: `[::]:port` (IPv6 clients, `[::1]`) to the container's
/// IPv6 address (`target`; an IPv4-only container's IPv4 one), as dockerd's userland proxy
/// does. A listener on `[::]` only (V6ONLY, so the IPv4 socket keeps its own space), each
/// connection spliced to `target` by a task of the service. None where the host has no IPv6.
pub(crate) fn proxy_v6(
    port: u16,
    target: std::net::SocketAddr,
) -> Result<Option<Proxy>, NetworkError> {
    let open = || -> Result<OwnedFd, Errno> {
        let fd = socket(
            AddressFamily::Inet6,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK,
            None,
        )?;
        setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
        // Its accepted connections inherit this: one still closing when the proxy stops does
        // not keep the port from being bound again (a listener still conflicts).
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        bind(
            fd.as_raw_fd(),
            &SockaddrIn6::from(SocketAddrV6::new(Ipv6Addr::UNSPECIFIED, port, 0, 0)),
        )?;
        listen(&fd, Backlog::new(128)?)?;
        Ok(fd)
    };
    let fd = match open() {
        Ok(fd) => fd,
        Err(Errno::EADDRINUSE) => {
            return Err(NetworkError::conflict(format!(
                "Bind for [::]:{port} failed: port is already allocated"
            )));
        }
        Err(e) => {
            tracing::info!(error = %e, port, "no IPv6 listener for a published port");
            return Ok(None);
        }
    };
    let listener = tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
        .map_err(|e| NetworkError::Kernel(e.into()))?;
    Ok(Some(Proxy(Some(tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                if let Ok(mut upstream) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
            });
        }
    })))))
}

/// The sockets that hold published ports, by container.
#[derive(Default)]
pub(crate) struct Held {
    sockets: Mutex<HashMap<String, Vec<Holder>>>,
}

impl Held {
    pub(crate) fn keep(&self, container: &str, fds: Vec<Holder>) {
        if fds.is_empty() {
            return;
        }
        let mut map = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(container.to_owned()).or_default().extend(fds);
    }

    /// Closes the container's sockets and stops its proxies: its host ports are free again
    /// when this returns.
    pub(crate) async fn release(&self, container: &str) {
        let held = {
            let mut map = self.sockets.lock().unwrap_or_else(|e| e.into_inner());
            map.remove(container).unwrap_or_default()
        };
        for h in held {
            if let Holder::Proxy(p) = h {
                p.stop().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(first: u32, last: u32) -> pb::PortRequest {
        pb::PortRequest {
            container_port: 80,
            protocol: "tcp".to_owned(),
            host_ip: "127.0.0.1".to_owned(),
            host_port_first: first,
            host_port_last: last,
        }
    }

    #[test]
    fn a_held_port_is_refused_and_a_range_takes_the_next() {
        let (_fd, p) = bind_request(&req(0, 0)).unwrap();
        assert!(p.host_port > 0);
        assert_eq!(p.host_ip, "127.0.0.1");
        let taken = p.host_port;
        let e = bind_request(&req(taken, taken)).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{taken} failed: port is already allocated")
        );
        if taken < 65535
            && let Ok((_fd2, p2)) = bind_request(&req(taken, taken + 1))
        {
            assert_eq!(p2.host_port, taken + 1);
        }
        // UDP is a separate space.
        let mut udp = req(taken, taken);
        udp.protocol = "udp".to_owned();
        let _ = bind_request(&udp);
        assert!(
            bind_request(&pb::PortRequest {
                protocol: "sctp".to_owned(),
                ..req(0, 0)
            })
            .is_err()
        );
    }

    #[test]
    fn rules_come_from_records() {
        let p = pb::PublishedPort {
            container_port: 80,
            protocol: "tcp".to_owned(),
            host_ip: "0.0.0.0".to_owned(),
            host_port: 18080,
        };
        let r = PortRule::of("172.18.0.2".parse().unwrap(), &p).unwrap();
        assert_eq!(r.host_port, 18080);
        assert!(r.host_ip.is_unspecified());
    }
}
