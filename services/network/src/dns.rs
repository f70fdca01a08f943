//! The embedded DNS server of user-defined networks, as dockerd wires it: a UDP and a TCP
//! socket on 127.0.0.11:53 inside each container's netns (opened by a thread that joins the
//! netns, then served from tokio), answering the names of the containers on the container's
//! networks (name, `--network-alias`, short ID, `name.network`), and forwarding every other
//! query to the container's upstreams (`--dns`, else the host's name servers, loopback ones
//! included: the forwarding socket lives in the host's namespace).

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{
        RData, Record, RecordType,
        rdata::{A, AAAA},
    },
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, UdpSocket},
    task::JoinHandle,
};

use crate::store::Store;

/// Where the resolver listens in the container.
pub(crate) const RESOLVER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);
const TTL: u32 = 600;
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(3);

/// The name servers of a resolv.conf text.
pub(crate) fn nameservers(resolv_conf: &str) -> Vec<String> {
    resolv_conf
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some("nameserver"))
                .then(|| w.next())
                .flatten()
                .map(str::to_owned)
        })
        .collect()
}

/// The container's resolv.conf. `base` is what the default bridge gets from the host's file
/// (loopback servers dropped); with the embedded server, its address instead, `ndots:0` as
/// dockerd writes it. `--dns` replaces the servers of the default bridge (on user networks it
/// is the embedded server's upstreams), `--dns-search` and `--dns-option` the search and
/// options lines.
pub(crate) fn resolv_conf(
    base: &str,
    embedded: bool,
    dns: &[String],
    search: &[String],
    options: &[String],
) -> String {
    let lines = |key: &str| -> Vec<String> {
        base.lines()
            .filter(|l| l.split_whitespace().next() == Some(key))
            .map(str::to_owned)
            .collect()
    };
    let mut out = String::new();
    if embedded {
        out.push_str(&format!("nameserver {RESOLVER}\n"));
    } else if dns.is_empty() {
        for l in lines("nameserver") {
            out.push_str(&l);
            out.push('\n');
        }
    } else {
        for d in dns {
            out.push_str(&format!("nameserver {d}\n"));
        }
    }
    if search.is_empty() {
        for l in lines("search").into_iter().chain(lines("domain")) {
            out.push_str(&l);
            out.push('\n');
        }
    } else {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    let mut opts: Vec<String> = if options.is_empty() {
        lines("options")
            .iter()
            .flat_map(|l| l.split_whitespace().skip(1).map(str::to_owned))
            .collect()
    } else {
        options.to_vec()
    };
    if embedded && !opts.iter().any(|o| o.starts_with("ndots:")) {
        opts.insert(0, "ndots:0".to_owned());
    }
    if !opts.is_empty() {
        out.push_str(&format!("options {}\n", opts.join(" ")));
    }
    out
}

/// `--add-host` entries as /etc/hosts lines (`name:ip`; `host-gateway` is `gateway`).
pub(crate) fn extra_hosts(entries: &[String], gateway: &str) -> Result<String, String> {
    let mut out = String::new();
    for e in entries {
        // name:ip, where ip may be IPv6 (name:::1) or host-gateway; also name=ip.
        let (name, ip) = e
            .split_once('=')
            .or_else(|| e.split_once(':'))
            .ok_or_else(|| format!("invalid argument {e:?} for \"--add-host\" flag"))?;
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        let ip = if ip == "host-gateway" { gateway } else { ip };
        if name.is_empty() || ip.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("invalid IP address in add-host: {ip:?}"));
        }
        out.push_str(&format!("{ip}\t{name}\n"));
    }
    Ok(out)
}

/// The records that answer a query of `kind` for a name with these addresses: A for IPv4,
/// AAAA for IPv6 (both for ANY). A name known without an address of the kind asked gets an
/// empty answer (no error), as dockerd's resolver gives.
fn answers(kind: RecordType, ips: &[IpAddr]) -> Vec<RData> {
    ips.iter()
        .filter_map(|ip| match (kind, ip) {
            (RecordType::A | RecordType::ANY, IpAddr::V4(v4)) => Some(RData::A(A(*v4))),
            (RecordType::AAAA | RecordType::ANY, IpAddr::V6(v6)) => Some(RData::AAAA(AAAA(*v6))),
            _ => None,
        })
        .collect()
}

/// Answers names from the store for one container.
pub(crate) struct Resolver {
    store: Arc<Store>,
    container: String,
    upstreams: Vec<SocketAddr>,
}

impl Resolver {
    /// The addresses `name` has on the container's networks: None when no container there
    /// has that name.
    fn lookup(&self, name: &str) -> Option<Vec<IpAddr>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let mine = self.store.container_endpoints(&self.container).ok()?;
        let mut out = Vec::new();
        for own in &mine {
            let Ok(peers) = self.store.network_endpoints(&own.network_id) else {
                continue;
            };
            let net = own.network_name.to_ascii_lowercase();
            for e in peers {
                let mut names: Vec<String> = vec![e.container_name.to_ascii_lowercase()];
                names.extend(e.aliases.iter().map(|a| a.to_ascii_lowercase()));
                names.push(e.container_id.chars().take(12).collect());
                if !e.hostname.is_empty() {
                    names.push(e.hostname.to_ascii_lowercase());
                }
                let hit = names
                    .iter()
                    .any(|n| *n == name || format!("{n}.{net}") == name);
                // A legacy link of the asking container names a peer on this network.
                let linked = own.links.iter().any(|l| {
                    l.split_once(':').is_some_and(|(to, alias)| {
                        to == e.container_name && {
                            let alias = alias.to_ascii_lowercase();
                            alias == name || format!("{alias}.{net}") == name
                        }
                    })
                });
                if hit || linked {
                    out.extend(e.ipv4_address.parse::<Ipv4Addr>().ok().map(IpAddr::V4));
                    out.extend(e.ipv6_address.parse::<Ipv6Addr>().ok().map(IpAddr::V6));
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Whether the container is on a network that is not internal.
    fn external(&self) -> bool {
        let (Ok(mine), Ok(networks)) = (
            self.store.container_endpoints(&self.container),
            self.store.networks(),
        ) else {
            return false;
        };
        mine.iter()
            .any(|e| networks.iter().any(|n| n.id == e.network_id && !n.internal))
    }

    /// The reply to one query message (None: not a query worth answering).
    async fn answer(&self, packet: &[u8]) -> Option<Vec<u8>> {
        let req = Message::from_vec(packet).ok()?;
        if req.metadata.message_type != MessageType::Query {
            return None;
        }
        let q = req.queries.first()?.clone();
        let name = q.name().to_ascii();
        if let Some(ips) = self.lookup(&name) {
            let mut resp = Message::response(req.metadata.id, req.metadata.op_code);
            resp.metadata.recursion_desired = req.metadata.recursion_desired;
            resp.metadata.recursion_available = true;
            resp.metadata.authoritative = true;
            resp.add_query(q.clone());
            for rdata in answers(q.query_type(), &ips) {
                resp.add_answer(Record::from_rdata(q.name().clone(), TTL, rdata));
            }
            return resp.to_vec().ok();
        }
        // As dockerd: a container only on internal networks has no way out, not even
        // through the resolver's forwarding from the host's namespace.
        let forwarded = if self.external() {
            self.forward(packet).await
        } else {
            None
        };
        match forwarded {
            Some(r) => Some(r),
            None => {
                let mut resp = Message::error_msg(
                    req.metadata.id,
                    req.metadata.op_code,
                    ResponseCode::ServFail,
                );
                resp.metadata.recursion_desired = req.metadata.recursion_desired;
                resp.add_query(q);
                resp.to_vec().ok()
            }
        }
    }

    /// Asks the upstreams in turn, from the host's namespace.
    async fn forward(&self, packet: &[u8]) -> Option<Vec<u8>> {
        for up in &self.upstreams {
            let Ok(sock) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).await else {
                continue;
            };
            if sock.send_to(packet, up).await.is_err() {
                continue;
            }
            let mut buf = vec![0u8; 65535];
            if let Ok(Ok((n, from))) =
                tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv_from(&mut buf)).await
                && from == *up
            {
                buf.truncate(n);
                return Some(buf);
            }
        }
        None
    }
}

/// The resolver's sockets, opened inside a container's netns.
pub(crate) type Sockets = (std::net::UdpSocket, std::net::TcpListener);

/// Opens the resolver's sockets in the netns the calling thread is in.
pub(crate) fn open_here() -> std::io::Result<Sockets> {
    let udp = std::net::UdpSocket::bind((RESOLVER, 53))?;
    let tcp = std::net::TcpListener::bind((RESOLVER, 53))?;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

/// Opens the resolver's sockets inside the netns at `netns` (a thread joins it).
fn open_in(netns: &Path) -> std::io::Result<Sockets> {
    let netns = netns.to_owned();
    std::thread::Builder::new()
        .name("netns-dns".to_owned())
        .spawn(move || {
            let f = std::fs::File::open(&netns)?;
            nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(std::io::Error::from)?;
            open_here()
        })?
        .join()
        .map_err(|_| std::io::Error::other("the netns thread panicked"))?
}

async fn serve_udp(sock: UdpSocket, r: Arc<Resolver>) {
    let sock = Arc::new(sock);
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            continue;
        };
        let packet = buf[..n].to_vec();
        let (sock, r) = (sock.clone(), r.clone());
        tokio::spawn(async move {
            if let Some(reply) = r.answer(&packet).await {
                let _ = sock.send_to(&reply, from).await;
            }
        });
    }
}

async fn serve_tcp(listener: TcpListener, r: Arc<Resolver>) {
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        let r = r.clone();
        tokio::spawn(async move {
            loop {
                let Ok(len) = conn.read_u16().await else {
                    return;
                };
                let mut packet = vec![0u8; usize::from(len)];
                if conn.read_exact(&mut packet).await.is_err() {
                    return;
                }
                let Some(reply) = r.answer(&packet).await else {
                    return;
                };
                let Ok(len) = u16::try_from(reply.len()) else {
                    return;
                };
                if conn.write_u16(len).await.is_err() || conn.write_all(&reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// The resolvers that serve running containers, by container.
#[derive(Default)]
pub(crate) struct Servers {
    tasks: Mutex<HashMap<String, Vec<JoinHandle<()>>>>,
}

impl Servers {
    /// Starts serving the container (a second call replaces the first) on `opened`, the
    /// sockets already opened in its netns, or on sockets opened there now.
    pub(crate) fn start(
        &self,
        store: Arc<Store>,
        container: &str,
        opened: Option<Sockets>,
        netns: PathBuf,
        upstreams: &[String],
    ) -> std::io::Result<()> {
        self.stop(container);
        let sockets = match opened {
            Some(s) => s,
            None => open_in(&netns)?,
        };
        self.serve(store, container, sockets, upstreams)
    }

    /// Serves the container on `sockets` (from [`open_here`] in its netns).
    pub(crate) fn serve(
        &self,
        store: Arc<Store>,
        container: &str,
        (udp, tcp): Sockets,
        upstreams: &[String],
    ) -> std::io::Result<()> {
        self.stop(container);
        let upstreams = upstreams
            .iter()
            .filter_map(|s| s.parse::<std::net::IpAddr>().ok())
            .map(|ip| SocketAddr::new(ip, 53))
            .collect();
        let r = Arc::new(Resolver {
            store,
            container: container.to_owned(),
            upstreams,
        });
        let udp = UdpSocket::from_std(udp)?;
        let tcp = TcpListener::from_std(tcp)?;
        let tasks = vec![
            tokio::spawn(serve_udp(udp, r.clone())),
            tokio::spawn(serve_tcp(tcp, r)),
        ];
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(container.to_owned(), tasks);
        Ok(())
    }

    /// Whether the container is served.
    pub(crate) fn serves(&self, container: &str) -> bool {
        self.tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(container)
    }

    /// Stops serving the container: its sockets close.
    pub(crate) fn stop(&self, container: &str) {
        let tasks = self
            .tasks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(container);
        for t in tasks.into_iter().flatten() {
            t.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_as_dockerd_writes_it() {
        let base = "nameserver 10.0.0.2\nsearch example.org\noptions edns0\n";
        assert_eq!(
            resolv_conf(base, true, &[], &[], &[]),
            "nameserver 127.0.0.11\nsearch example.org\noptions ndots:0 edns0\n"
        );
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            resolv_conf(
                base,
                false,
                &s(&["1.1.1.1"]),
                &s(&["a.b"]),
                &s(&["ndots:2"])
            ),
            "nameserver 1.1.1.1\nsearch a.b\noptions ndots:2\n"
        );
        assert_eq!(resolv_conf(base, false, &[], &[], &[]), base);
        assert_eq!(
            extra_hosts(
                &s(&["h:1.2.3.4", "g:host-gateway", "six:::1"]),
                "172.18.0.1"
            )
            .unwrap(),
            "1.2.3.4\th\n172.18.0.1\tg\n::1\tsix\n"
        );
        assert!(extra_hosts(&s(&["nocolon"]), "").is_err());
    }

    #[test]
    fn nameservers_are_read() {
        assert_eq!(
            nameservers("search x\nnameserver 127.0.0.53\nnameserver 10.0.0.1 # c\n"),
            ["127.0.0.53", "10.0.0.1"]
        );
    }

    #[test]
    fn names_get_a_and_aaaa_records_by_the_kind_asked() {
        let v4: IpAddr = "172.18.0.2".parse().unwrap();
        let v6: IpAddr = "fd00:1::2".parse().unwrap();
        let both = [v4, v6];
        assert_eq!(
            answers(RecordType::A, &both),
            vec![RData::A(A("172.18.0.2".parse().unwrap()))]
        );
        assert_eq!(
            answers(RecordType::AAAA, &both),
            vec![RData::AAAA(AAAA("fd00:1::2".parse().unwrap()))]
        );
        assert_eq!(answers(RecordType::ANY, &both).len(), 2);
        // Known, but without an IPv6 address: no records (NOERROR), not a forward.
        assert!(answers(RecordType::AAAA, &[v4]).is_empty());
        assert!(answers(RecordType::MX, &both).is_empty());
    }
}
