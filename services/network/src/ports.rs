//! Published ports: the service binds each host port itself (TCP sockets are bound, never
//! listened on, so nothing reaches them; they only reserve the port, as a port another process
//! holds makes the bind fail at once) and the kernel forwards through the DNAT maps of the
//! firewall module. The sockets are held per container until its Detach. IPv6 host addresses
//! are forwarded by the kernel too when the container has an IPv6 address; what it cannot
//! forward (`[::1]`, having no `route_localnet`, or an IPv4-only container) goes through a
//! proxy task listening on the host port (see [`Plan6`]).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6},
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
/// `host_ip` 0.0.0.0 (or `::`): every local address. `host_ip` and `target` are of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PortRule {
    pub(crate) host_ip: IpAddr,
    pub(crate) protocol: String,
    pub(crate) host_port: u16,
    pub(crate) target: IpAddr,
    pub(crate) container_port: u16,
}

impl PortRule {
    /// The rule for a published port of an endpoint at `target`; None for a bad record or one
    /// of the other family.
    pub(crate) fn of(target: IpAddr, p: &pb::PublishedPort) -> Option<PortRule> {
        let host_ip: IpAddr = p.host_ip.parse().ok()?;
        if host_ip.is_ipv4() != target.is_ipv4() {
            return None;
        }
        Some(PortRule {
            host_ip,
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

/// Binds `ip:port` for `protocol` (`port` 0: an ephemeral one); the socket and the port. An
/// IPv6 socket is IPv6 only, so that `[::]` and `0.0.0.0` are separate spaces. A TCP socket
/// that `listens` (for a proxy task) reuses its address: one of its connections still closing
/// when it stops does not keep the port from being bound again (a listener still conflicts).
fn bind_port(
    protocol: &str,
    ip: IpAddr,
    port: u16,
    listens: bool,
) -> Result<(OwnedFd, u16), Errno> {
    let kind = if protocol == "udp" {
        SockType::Datagram
    } else {
        SockType::Stream
    };
    let flags = if listens {
        SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK
    } else {
        SockFlag::SOCK_CLOEXEC
    };
    let family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let fd = socket(family, kind, flags, None)?;
    if listens {
        setsockopt(&fd, sockopt::ReuseAddr, &true)?;
    }
    let bound = match ip {
        IpAddr::V4(ip) => {
            bind(
                fd.as_raw_fd(),
                &SockaddrIn::from(SocketAddrV4::new(ip, port)),
            )?;
            getsockname::<SockaddrIn>(fd.as_raw_fd())?.port()
        }
        IpAddr::V6(ip) => {
            setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
            bind(
                fd.as_raw_fd(),
                &SockaddrIn6::from(SocketAddrV6::new(ip, port, 0, 0)),
            )?;
            getsockname::<SockaddrIn6>(fd.as_raw_fd())?.port()
        }
    };
    if listens {
        listen(&fd, Backlog::new(128)?)?;
    }
    Ok((fd, bound))
}

/// How an IPv6 host address reaches a container (dockerd 28 with its userland proxy: the
/// kernel where it can, the proxy for the rest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan6 {
    /// A DNAT element to the container's IPv6 address `to`. On `[::]` (TCP) a proxy task to
    /// it also listens, for `[::1]`, which the kernel cannot forward.
    Kernel { to: Ipv6Addr, proxy: bool },
    /// Only the proxy task (`[::1]`, or an IPv4-only container), to this address.
    Proxy(IpAddr),
    /// Nothing can forward it (UDP without an IPv6 container address, or on `[::1]`).
    None,
}

/// The plan for publishing `protocol` on the IPv6 `host` address of a container with these
/// addresses.
pub(crate) fn plan6(
    protocol: &str,
    host: Ipv6Addr,
    container4: Option<Ipv4Addr>,
    container6: Option<Ipv6Addr>,
) -> Plan6 {
    let tcp = protocol != "udp";
    match container6 {
        Some(to) if !host.is_loopback() => Plan6::Kernel {
            to,
            proxy: tcp && host.is_unspecified(),
        },
        Some(c6) if tcp => Plan6::Proxy(c6.into()),
        None if tcp => container4.map_or(Plan6::None, |c4| Plan6::Proxy(c4.into())),
        _ => Plan6::None,
    }
}

/// The host address of a request: empty is 0.0.0.0 (its `[::]` twin is the caller's).
pub(crate) fn host_ip(req: &pb::PortRequest) -> Result<IpAddr, NetworkError> {
    match req.host_ip.trim_start_matches('[').trim_end_matches(']') {
        "" => Ok(Ipv4Addr::UNSPECIFIED.into()),
        s => s
            .parse()
            .map_err(|_| NetworkError::invalid(format!("invalid host IP {s:?}"))),
    }
}

/// `ip:port` as dockerd shows it in its messages (`[::]:8080`).
fn shown(ip: IpAddr, port: &str) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}"),
        IpAddr::V6(ip) => format!("[{ip}]:{port}"),
    }
}

/// Binds the host port a request asks for on `ip` (the first free one of a range); `listens`:
/// a listening socket for a proxy task.
pub(crate) fn bind_request(
    req: &pb::PortRequest,
    ip: IpAddr,
    listens: bool,
) -> Result<(OwnedFd, pb::PublishedPort), NetworkError> {
    let protocol = valid_protocol(&req.protocol)?;
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
        result = bind_port(protocol, ip, p, listens);
        if !matches!(result, Err(Errno::EADDRINUSE)) {
            break;
        }
    }
    let shown = if first == last {
        shown(ip, &first.to_string())
    } else {
        shown(ip, &format!("{first}-{last}"))
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

/// Binds a recorded port again (at the service's start, so that it stays reserved);
/// `listens`: for a proxy task.
pub(crate) fn rebind(p: &pb::PublishedPort, listens: bool) -> Result<OwnedFd, NetworkError> {
    let ip: IpAddr = p
        .host_ip
        .parse()
        .map_err(|_| NetworkError::invalid(format!("invalid host IP {:?}", p.host_ip)))?;
    let port = u16::try_from(p.host_port)
        .map_err(|_| NetworkError::invalid(format!("invalid port {}", p.host_port)))?;
    bind_port(valid_protocol(&p.protocol)?, ip, port, listens)
        .map(|(fd, _)| fd)
        .map_err(|e| {
            NetworkError::Kernel(anyhow::anyhow!(
                "Bind for {} failed: {e}",
                shown(ip, &port.to_string())
            ))
        })
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

/// A proxy task on a listening socket of [`bind_request`] or [`rebind`]: each connection
/// spliced to `target` by a task of the service, as dockerd's userland proxy does for what the
/// kernel does not forward (`[::1]`, host IPv6 to an IPv4-only container).
pub(crate) fn proxy(fd: OwnedFd, target: SocketAddr) -> Result<Proxy, NetworkError> {
    let listener = tokio::net::TcpListener::from_std(std::net::TcpListener::from(fd))
        .map_err(|e| NetworkError::Kernel(e.into()))?;
    Ok(Proxy(Some(tokio::spawn(async move {
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
    }))))
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
        let ip: IpAddr = Ipv4Addr::LOCALHOST.into();
        let (_fd, p) = bind_request(&req(0, 0), ip, false).unwrap();
        assert!(p.host_port > 0);
        assert_eq!(p.host_ip, "127.0.0.1");
        let taken = p.host_port;
        let e = bind_request(&req(taken, taken), ip, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for 127.0.0.1:{taken} failed: port is already allocated")
        );
        if taken < 65535
            && let Ok((_fd2, p2)) = bind_request(&req(taken, taken + 1), ip, false)
        {
            assert_eq!(p2.host_port, taken + 1);
        }
        // UDP is a separate space.
        let mut udp = req(taken, taken);
        udp.protocol = "udp".to_owned();
        let _ = bind_request(&udp, ip, false);
        assert!(
            bind_request(
                &pb::PortRequest {
                    protocol: "sctp".to_owned(),
                    ..req(0, 0)
                },
                ip,
                false
            )
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
        // A rule joins one family: [::] to an IPv6 address, never to an IPv4 one.
        assert!(PortRule::of("fd00::2".parse().unwrap(), &p).is_none());
        let v6 = pb::PublishedPort {
            host_ip: "::".to_owned(),
            ..p
        };
        assert!(PortRule::of("172.18.0.2".parse().unwrap(), &v6).is_none());
        let r = PortRule::of("fd00::2".parse().unwrap(), &v6).unwrap();
        assert_eq!(r.target, "fd00::2".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn ipv6_host_addresses_go_to_the_kernel_where_it_can_forward() {
        let c4: Option<Ipv4Addr> = "172.18.0.2".parse().ok();
        let c6: Option<Ipv6Addr> = "fd00::2".parse().ok();
        let any = Ipv6Addr::UNSPECIFIED;
        let lo = Ipv6Addr::LOCALHOST;
        let addr: Ipv6Addr = "fd00::1".parse().unwrap();
        // [::]: DNAT, and a proxy listener for [::1] (TCP only).
        let to = c6.unwrap();
        assert_eq!(plan6("tcp", any, c4, c6), Plan6::Kernel { to, proxy: true });
        assert_eq!(
            plan6("udp", any, c4, c6),
            Plan6::Kernel { to, proxy: false }
        );
        assert_eq!(
            plan6("tcp", addr, c4, c6),
            Plan6::Kernel { to, proxy: false }
        );
        // [::1] has no route_localnet: the proxy, to the IPv6 address.
        assert_eq!(
            plan6("tcp", lo, c4, c6),
            Plan6::Proxy("fd00::2".parse().unwrap())
        );
        assert_eq!(plan6("udp", lo, c4, c6), Plan6::None);
        // An IPv4-only container: the proxy to its IPv4 address (dockerd's userland proxy).
        assert_eq!(
            plan6("tcp", any, c4, None),
            Plan6::Proxy("172.18.0.2".parse().unwrap())
        );
        assert_eq!(plan6("udp", any, c4, None), Plan6::None);
    }

    #[test]
    fn ipv6_ports_are_their_own_space() {
        if std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
            .map_or(true, |v| v.trim() != "0")
        {
            return;
        }
        let lo6: IpAddr = Ipv6Addr::LOCALHOST.into();
        let (_fd, p) = bind_request(&req(0, 0), lo6, true).unwrap();
        assert_eq!(p.host_ip, "::1");
        let taken = p.host_port;
        let e = bind_request(&req(taken, taken), lo6, false).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("Bind for [::1]:{taken} failed: port is already allocated")
        );
        let r = pb::PortRequest {
            host_ip: "[::1]".to_owned(),
            ..req(0, 0)
        };
        assert_eq!(host_ip(&r).unwrap(), lo6);
        assert!(
            host_ip(&pb::PortRequest {
                host_ip: "x".to_owned(),
                ..req(0, 0)
            })
            .is_err()
        );
        // The IPv4 space is separate (V6ONLY).
        let v4: IpAddr = Ipv4Addr::LOCALHOST.into();
        let _ = bind_request(&req(taken, taken), v4, false);
    }
}
