//! Links through rtnetlink: bridges, veth pairs whose container end is created directly in the
//! container's netns, addresses and routes, and the host's routes (to pick subnets that
//! overlap nothing). Inside a container's netns the work runs on a dedicated thread that joined
//! it, with its own netlink socket (a socket stays in the netns it was created in).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::AsRawFd,
    path::{Path, PathBuf},
};

use futures::TryStreamExt;
use netlink_packet_route::{
    address::AddressHeaderFlags,
    link::{InfoData, InfoKind, InfoVeth, LinkAttribute, LinkMessage},
    route::{RouteAddress, RouteAttribute},
};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
    new_connection,
};

use crate::ipam::Ipv4Net;

/// The host side of veth pairs starts with this (then 12 hex digits of the endpoint ID).
pub(crate) const VETH_PREFIX: &str = "bth";

/// A netlink handle in the service's (the host's) network namespace.
#[derive(Clone)]
pub(crate) struct Links {
    handle: Handle,
    /// The bridges made ready (up, with their addresses) since the service started, by name:
    /// their indexes. A bridge deleted through [`Links::delete`] or [`Links::forget`] leaves.
    ready: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<String, u32>>>,
}

/// What the container side of an endpoint gets.
#[derive(Debug, Clone)]
pub(crate) struct Inside {
    pub(crate) interface: String,
    pub(crate) ip: Ipv4Addr,
    pub(crate) prefix: u8,
    /// The default route (the first endpoint only).
    pub(crate) gateway: Option<Ipv4Addr>,
    /// On a network with IPv6: the address and prefix length, and the default IPv6 route's
    /// gateway (with `gateway`).
    pub(crate) ip6: Option<(Ipv6Addr, u8)>,
    pub(crate) gateway6: Option<Ipv6Addr>,
    /// More addresses (`--link-local-ip`) with their prefix lengths.
    pub(crate) link_local: Vec<(IpAddr, u8)>,
    /// Interface sysctls (`com.docker.network.endpoint.sysctls`): the file under `/proc/sys`
    /// (with the interface's name in it) and the value.
    pub(crate) sysctls: Vec<(String, String)>,
}

/// An endpoint's IPv6 address and prefix length, on a network with IPv6.
pub(crate) fn ip6_of(e: &berth_proto::network::v1::Endpoint) -> Option<(Ipv6Addr, u8)> {
    let ip = e.ipv6_address.parse().ok()?;
    Some((ip, u8::try_from(e.ipv6_prefix_len).ok()?))
}

/// Adds an address (an existing one is fine). IPv6 addresses skip duplicate address
/// detection: the subnet's addresses are handed out by the service, and an address still
/// tentative could not be used at once (dockerd sets the same flag).
async fn add_address(handle: &Handle, index: u32, ip: IpAddr, prefix: u8) -> Result<(), String> {
    let mut req = handle.address().add(index, ip, prefix);
    if ip.is_ipv6() {
        req.message_mut().header.flags = AddressHeaderFlags::Nodad;
    }
    match req.execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(EEXIST) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}

const EEXIST: i32 = 17;

fn name_of(m: &LinkMessage) -> Option<String> {
    m.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })
}

impl Links {
    /// Opens the netlink socket (in the calling thread's netns: the host's).
    pub(crate) fn connect() -> anyhow::Result<Links> {
        let (conn, handle, _) = new_connection()?;
        tokio::spawn(conn);
        Ok(Links {
            handle,
            ready: Default::default(),
        })
    }

    fn ready_bridges(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, u32>> {
        self.ready
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The index of the bridge `name` if it was made ready and not deleted or forgotten since.
    pub(crate) fn ready_bridge(&self, name: &str) -> Option<u32> {
        self.ready_bridges().get(name).copied()
    }

    /// Records the bridge `name` as ready, at `index`.
    pub(crate) fn bridge_is_ready(&self, name: &str, index: u32) {
        self.ready_bridges().insert(name.to_owned(), index);
    }

    /// Forgets that the link `name` was a ready bridge (it is checked again at its next use).
    pub(crate) fn forget(&self, name: &str) {
        self.ready_bridges().remove(name);
    }

    /// The destinations of the host's IPv4 routes, the default route left out.
    pub(crate) async fn routes_v4(&self) -> anyhow::Result<Vec<Ipv4Net>> {
        let mut routes = self
            .handle
            .route()
            .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
            .execute();
        let mut out = Vec::new();
        while let Some(r) = routes.try_next().await? {
            let len = r.header.destination_prefix_length;
            if len == 0 {
                continue;
            }
            for a in &r.attributes {
                if let RouteAttribute::Destination(RouteAddress::Inet(ip)) = a
                    && let Some(n) = Ipv4Net::new(*ip, len)
                {
                    out.push(n);
                }
            }
        }
        Ok(out)
    }

    /// The index of the link named `name` in the host's netns.
    pub(crate) async fn index(&self, name: &str) -> Option<u32> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(m)) => Some(m.header.index),
            _ => None,
        }
    }

    /// Names of the host's links that start with `prefix` and are ports of one of the bridges
    /// `masters` (another engine's veths, on its own bridges, are not ours to judge).
    pub(crate) async fn ports_with_prefix(
        &self,
        prefix: &str,
        masters: &[u32],
    ) -> anyhow::Result<Vec<String>> {
        let mut links = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(m) = links.try_next().await? {
            let on_ours = m
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::Controller(i) if masters.contains(i)));
            if on_ours && let Some(n) = name_of(&m).filter(|n| n.starts_with(prefix)) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// The bridge `name`, up, with `gateway/prefix` on it: made when missing. Its index.
    pub(crate) async fn ensure_bridge(
        &self,
        name: &str,
        gateway: Ipv4Addr,
        prefix: u8,
        gateway6: Option<(Ipv6Addr, u8)>,
        mtu: u32,
    ) -> anyhow::Result<u32> {
        let index = match self.index(name).await {
            Some(i) => i,
            None => {
                let add = self
                    .handle
                    .link()
                    .add(LinkBridge::new(name).mtu(mtu).build())
                    .execute()
                    .await;
                match add {
                    Ok(()) => {}
                    Err(e) if errno(&e) == Some(EEXIST) => {}
                    Err(e) => anyhow::bail!("creating the bridge {name}: {e}"),
                }
                self.index(name)
                    .await
                    .ok_or_else(|| anyhow::anyhow!("the bridge {name} vanished"))?
            }
        };
        add_address(&self.handle, index, IpAddr::V4(gateway), prefix)
            .await
            .map_err(|e| anyhow::anyhow!("adding {gateway}/{prefix} to {name}: {e}"))?;
        if let Some((gw6, prefix6)) = gateway6 {
            add_address(&self.handle, index, IpAddr::V6(gw6), prefix6)
                .await
                .map_err(|e| anyhow::anyhow!("adding {gw6}/{prefix6} to {name}: {e}"))?;
        }
        self.handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await
            .map_err(|e| anyhow::anyhow!("setting {name} up: {e}"))?;
        Ok(index)
    }

    /// Deletes a link of the host's netns; a missing one is fine.
    pub(crate) async fn delete(&self, name: &str) -> anyhow::Result<()> {
        self.forget(name);
        let Some(index) = self.index(name).await else {
            return Ok(());
        };
        match self.handle.link().del(index).execute().await {
            Ok(()) => Ok(()),
            Err(e) if errno(&e) == Some(19) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("deleting {name}: {e}")),
        }
    }

    /// Points the host's neighbour entry for `ip` on `bridge` at `mac`, as stale (checked at
    /// its first use). An endpoint that gets its IPv6 address back with another MAC address (a
    /// restart that changed its IPv4 address, from which the MAC comes) skips duplicate
    /// address detection and announces nothing: without this, the host keeps sending to the
    /// previous MAC address and the container stays unreachable.
    pub(crate) async fn refresh_neighbour(
        &self,
        bridge: u32,
        ip: IpAddr,
        mac: [u8; 6],
    ) -> anyhow::Result<()> {
        self.handle
            .neighbours()
            .add(bridge, ip)
            .link_layer_address(&mac)
            .state(netlink_packet_route::neighbour::NeighbourState::Stale)
            .replace()
            .execute()
            .await
            .map_err(|e| anyhow::anyhow!("updating the neighbour {ip}: {e}"))
    }

    /// A veth pair: `host` on the bridge, up; its peer created directly in the netns at
    /// `netns` as `inside`, with `mac`.
    pub(crate) async fn add_veth(
        &self,
        host: &str,
        bridge: u32,
        netns: &Path,
        inside: &str,
        mac: [u8; 6],
        mtu: u32,
    ) -> anyhow::Result<()> {
        let ns = std::fs::File::open(netns)
            .map_err(|e| anyhow::anyhow!("opening the netns {}: {e}", netns.display()))?;
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(inside.to_owned())
            .address(mac.to_vec())
            .mtu(mtu)
            .setns_by_fd(ns.as_raw_fd())
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_owned())
            .mtu(mtu)
            .controller(bridge)
            .up()
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(|e| anyhow::anyhow!("creating the veth pair {host}: {e}"))?;
        drop(ns);
        Ok(())
    }
}

/// Configures the container's side inside its netns: `lo` up, each interface's address, up,
/// and the default route. Runs on a thread of its own that joins the netns.
pub(crate) async fn configure_inside(netns: PathBuf, ifaces: Vec<Inside>) -> anyhow::Result<()> {
    prepare_inside(netns, || ())?.configure(ifaces).await
}

/// A thread in a container's netns, made ready (joined, `lo` up, its netlink socket open,
/// `then` run there) while the interfaces it is to configure are still being made.
pub(crate) struct Prepared<T> {
    ifaces: std::sync::mpsc::Sender<Vec<Inside>>,
    done: tokio::sync::oneshot::Receiver<anyhow::Result<T>>,
}

/// Starts the thread of [`Prepared`]; dropped unused, the thread ends.
pub(crate) fn prepare_inside<T: Send + 'static>(
    netns: PathBuf,
    then: impl FnOnce() -> T + Send + 'static,
) -> anyhow::Result<Prepared<T>> {
    let (tx, done) = tokio::sync::oneshot::channel();
    let (ifaces, rx) = std::sync::mpsc::channel::<Vec<Inside>>();
    std::thread::Builder::new()
        .name("netns".to_owned())
        .spawn(move || {
            let ready = enter(&netns).map(|(rt, links)| (rt, links, then()));
            let (rt, links, t) = match ready {
                Ok(r) => r,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            // None: the attach gave up before its interfaces were made.
            if let Ok(ifaces) = rx.recv() {
                let _ = tx.send(rt.block_on(configure(&links, ifaces)).map(|()| t));
            }
        })?;
    Ok(Prepared { ifaces, done })
}

impl<T> Prepared<T> {
    /// Configures `ifaces` (made by now) on the prepared thread; `then`'s result.
    pub(crate) async fn configure(self, ifaces: Vec<Inside>) -> anyhow::Result<T> {
        // A thread that failed to get ready has answered already.
        let _ = self.ifaces.send(ifaces);
        self.done
            .await
            .map_err(|_| anyhow::anyhow!("the netns thread ended early"))?
    }
}

/// Writes an interface sysctl of the netns the calling thread is in (`/proc/sys/net` follows
/// the thread's netns), as dockerd does: a value already right is not written again.
fn set_sysctl(path: &str, value: &str) -> anyhow::Result<()> {
    let path = Path::new(path);
    let cur = std::fs::read_to_string(path)
        .map_err(|_| anyhow::anyhow!("{} is not a sysctl file", path.display()))?;
    if cur.trim() != value {
        std::fs::write(path, value)
            .map_err(|e| anyhow::anyhow!("unable to write to '{}': {e}", path.display()))?;
    }
    Ok(())
}

/// Joins the netns at `netns` (the calling thread, for good) and brings `lo` up: a runtime
/// and a netlink handle of that netns.
fn enter(netns: &Path) -> anyhow::Result<(tokio::runtime::Runtime, Links)> {
    let ns = std::fs::File::open(netns)
        .map_err(|e| anyhow::anyhow!("opening the netns {}: {e}", netns.display()))?;
    nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| anyhow::anyhow!("joining the netns {}: {e}", netns.display()))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let links = rt.block_on(async {
        let links = Links::connect()?;
        let lo = links
            .index("lo")
            .await
            .ok_or_else(|| anyhow::anyhow!("no lo in the netns"))?;
        links
            .handle
            .link()
            .set(LinkUnspec::new_with_index(lo).up().build())
            .execute()
            .await?;
        Ok::<_, anyhow::Error>(links)
    })?;
    Ok((rt, links))
}

/// Configures `ifaces` through `links`, a handle of their netns.
async fn configure(links: &Links, ifaces: Vec<Inside>) -> anyhow::Result<()> {
    for i in ifaces {
        let index = links
            .index(&i.interface)
            .await
            .ok_or_else(|| anyhow::anyhow!("no {} in the netns", i.interface))?;
        add_address(&links.handle, index, IpAddr::V4(i.ip), i.prefix)
            .await
            .map_err(|e| anyhow::anyhow!("adding {}/{} to {}: {e}", i.ip, i.prefix, i.interface))?;
        if let Some((ip6, prefix6)) = i.ip6 {
            add_address(&links.handle, index, IpAddr::V6(ip6), prefix6)
                .await
                .map_err(|e| anyhow::anyhow!("adding {ip6}/{prefix6} to {}: {e}", i.interface))?;
        }
        for &(ll, prefix) in &i.link_local {
            add_address(&links.handle, index, ll, prefix)
                .await
                .map_err(|e| anyhow::anyhow!("adding {ll}/{prefix} to {}: {e}", i.interface))?;
        }
        for (key, value) in &i.sysctls {
            set_sysctl(key, value)?;
        }
        links
            .handle
            .link()
            .set(LinkUnspec::new_with_index(index).up().build())
            .execute()
            .await?;
        // Replacing: the default route moves here from another interface (a higher
        // --gw-priority), as dockerd moves it.
        if let Some(gw) = i.gateway {
            let route = RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .build();
            match links.handle.route().add(route).replace().execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => anyhow::bail!("the default route via {gw}: {e}"),
            }
        }
        if let Some(gw6) = i.gateway6 {
            let route = RouteMessageBuilder::<Ipv6Addr>::new()
                .gateway(gw6)
                .output_interface(index)
                .build();
            match links.handle.route().add(route).replace().execute().await {
                Ok(()) => {}
                Err(e) if errno(&e) == Some(EEXIST) => {}
                Err(e) => anyhow::bail!("the default IPv6 route via {gw6}: {e}"),
            }
        }
    }
    Ok(())
}
