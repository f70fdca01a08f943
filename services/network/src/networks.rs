//! Networks and endpoints: the predefined networks, `docker network create/ls/inspect/rm/prune`,
//! and a container's Attach and Detach. The store is written first, then the kernel (links,
//! then the firewall's set elements; a new endpoint's commit goes on with its kernel work,
//! which is taken back if the commit fails); every operation is serialized by one lock.

use std::{net::Ipv4Addr, sync::Arc};

use berth_config::DaemonConfig;
use berth_proto::network::v1 as pb;
use berth_types::{Actor, Event, EventType};

use crate::{
    NetworkError, dns,
    firewall::Firewall,
    ipam::{self, Ipv4Net},
    netlink::Links,
    ports::Held,
    store::Store,
};

mod attach;
mod connect;
mod create;
mod files;
mod gateway;
mod lifecycle;
mod links;
mod manage;
mod opts;
mod publish;
mod rules;

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

impl Networks {
    pub(crate) fn new(store: Arc<Store>, links: Links, settings: Settings) -> Networks {
        Networks {
            store,
            links,
            fw: Firewall::new(settings.table()),
            settings,
            held: Held::default(),
            dns: dns::Servers::default(),
            lock: tokio::sync::Mutex::new(()),
        }
    }

    /// A network event (none if `action` is malformed), written with the change it reports.
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
