//! The network service's records, in its own transactional store: networks, endpoints and the
//! addresses handed out. An endpoint and its address are written (and released) in one
//! transaction, so an address is never handed out twice, also across restarts.

use std::{collections::BTreeSet, net::Ipv4Addr, path::Path, sync::Arc};

use berth_bus::{EventPublisher, StoreEvents};
use berth_proto::network::v1 as pb;
use berth_types::Event;
use prost::Message;
use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::{NetworkError, ipam::Pool, ipam6::Want6};

/// Networks by ID; the value is the encoded `Network` message.
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");
/// Endpoints by `<network id>/<container id>`; the value is the encoded `Endpoint`.
const ENDPOINTS: TableDefinition<&str, &[u8]> = TableDefinition::new("endpoints");
/// `<container id>/<network id>` for every endpoint (the container's side of the index).
const BY_CONTAINER: TableDefinition<&str, &[u8]> = TableDefinition::new("by_container");
/// `<network id>/<address as 8 hex digits>` → the container holding it.
const ADDRESSES: TableDefinition<&str, &str> = TableDefinition::new("addresses");
/// The last address handed out on a network (allocation is sequential).
const LAST: TableDefinition<&str, u32> = TableDefinition::new("last_address");

pub(crate) struct Store {
    db: Arc<redb::Database>,
    /// Once attached: the events given to a write are written in its transaction (the outbox).
    events: StoreEvents,
}

fn store_err(e: impl Into<anyhow::Error>) -> NetworkError {
    NetworkError::Store(e.into())
}

fn addr_key(network: &str, ip: Ipv4Addr) -> String {
    format!("{network}/{:08x}", u32::from(ip))
}

fn endpoints_under(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    prefix: &str,
) -> anyhow::Result<Vec<pb::Endpoint>> {
    let start = format!("{prefix}/");
    let mut out = Vec::new();
    for row in table.range(start.as_str()..)? {
        let (k, v) = row?;
        if !k.value().starts_with(&start) {
            break;
        }
        out.push(pb::Endpoint::decode(v.value())?);
    }
    Ok(out)
}

fn keys_under<V: redb::Value + 'static>(
    table: &impl ReadableTable<&'static str, V>,
    prefix: &str,
) -> anyhow::Result<Vec<String>> {
    let start = format!("{prefix}/");
    let mut out = Vec::new();
    for row in table.range(start.as_str()..)? {
        let (k, _) = row?;
        let key = k.value().to_owned();
        if !key.starts_with(&start) {
            break;
        }
        out.push(key);
    }
    Ok(out)
}

/// Why an endpoint got no address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoAddress {
    /// Every address of the pools is taken.
    Exhausted,
    /// The fixed address asked for is taken.
    InUse,
    /// The fixed address asked for is in none of the network's subnets.
    OutOfRange,
    /// Every address of the IPv6 subnet is taken.
    Exhausted6,
    /// The fixed IPv6 address asked for is outside the network's IPv6 subnet.
    OutOfRange6,
}

/// A new endpoint written in a transaction not committed yet, with its events.
pub(crate) struct Staged {
    tx: redb::WriteTransaction,
    events: Vec<Event>,
}

/// Why a network could not be recorded or removed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Another network has this name (its ID).
    NameTaken(String),
    /// The network has endpoints (their container IDs).
    InUse(Vec<String>),
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        tx.open_table(NETWORKS)?;
        tx.open_table(ENDPOINTS)?;
        tx.open_table(BY_CONTAINER)?;
        tx.open_table(ADDRESSES)?;
        tx.open_table(LAST)?;
        tx.commit()?;
        let db = Arc::new(db);
        Ok(Store {
            events: StoreEvents::new(db.clone()),
            db,
        })
    }

    /// From now on the events given to writes go through `events`, from this store.
    pub(crate) fn attach_events(&self, events: EventPublisher) -> anyhow::Result<()> {
        Ok(self.events.attach(events)?)
    }

    pub(crate) fn count(&self) -> Result<u64, NetworkError> {
        let read = || -> anyhow::Result<u64> {
            let tx = self.db.begin_read()?;
            Ok(tx.open_table(NETWORKS)?.len()?)
        };
        read().map_err(NetworkError::Store)
    }

    /// Every network, in ID order.
    pub(crate) fn networks(&self) -> Result<Vec<pb::NetworkRecord>, NetworkError> {
        let read = || -> anyhow::Result<Vec<pb::NetworkRecord>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(NETWORKS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                out.push(pb::NetworkRecord::decode(row?.1.value())?);
            }
            Ok(out)
        };
        read().map_err(NetworkError::Store)
    }

    /// Records a new network (with the events that report it); its name must be free.
    pub(crate) fn create_network(
        &self,
        n: &pb::NetworkRecord,
        events: &[Event],
    ) -> Result<Result<(), Refusal>, NetworkError> {
        let write = || -> anyhow::Result<Result<(), Refusal>> {
            let tx = self.db.begin_write()?;
            {
                let mut table = tx.open_table(NETWORKS)?;
                for row in table.iter()? {
                    let other = pb::NetworkRecord::decode(row?.1.value())?;
                    if other.name == n.name {
                        return Ok(Err(Refusal::NameTaken(other.id)));
                    }
                }
                table.insert(n.id.as_str(), n.encode_to_vec().as_slice())?;
            }
            self.events.commit(tx, events)?;
            Ok(Ok(()))
        };
        write().map_err(store_err)
    }

    /// Removes a network without endpoints, with its allocation state (and the events that
    /// report it).
    pub(crate) fn remove_network(
        &self,
        id: &str,
        events: &[Event],
    ) -> Result<Result<(), Refusal>, NetworkError> {
        let write = || -> anyhow::Result<Result<(), Refusal>> {
            let tx = self.db.begin_write()?;
            {
                let eps = tx.open_table(ENDPOINTS)?;
                let users = endpoints_under(&eps, id)?;
                if !users.is_empty() {
                    return Ok(Err(Refusal::InUse(
                        users.into_iter().map(|e| e.container_id).collect(),
                    )));
                }
                let mut addrs = tx.open_table(ADDRESSES)?;
                for k in keys_under(&addrs, id)? {
                    addrs.remove(k.as_str())?;
                }
                tx.open_table(LAST)?.remove(id)?;
                tx.open_table(NETWORKS)?.remove(id)?;
            }
            self.events.commit(tx, events)?;
            Ok(Ok(()))
        };
        write().map_err(store_err)
    }

    pub(crate) fn network_endpoints(&self, id: &str) -> Result<Vec<pb::Endpoint>, NetworkError> {
        let read = || -> anyhow::Result<Vec<pb::Endpoint>> {
            let tx = self.db.begin_read()?;
            endpoints_under(&tx.open_table(ENDPOINTS)?, id)
        };
        read().map_err(NetworkError::Store)
    }

    pub(crate) fn all_endpoints(&self) -> Result<Vec<pb::Endpoint>, NetworkError> {
        let read = || -> anyhow::Result<Vec<pb::Endpoint>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(ENDPOINTS)?;
            let mut out = Vec::new();
            for row in table.iter()? {
                out.push(pb::Endpoint::decode(row?.1.value())?);
            }
            Ok(out)
        };
        read().map_err(NetworkError::Store)
    }

    pub(crate) fn container_endpoints(
        &self,
        container: &str,
    ) -> Result<Vec<pb::Endpoint>, NetworkError> {
        let read = || -> anyhow::Result<Vec<pb::Endpoint>> {
            let tx = self.db.begin_read()?;
            let index = tx.open_table(BY_CONTAINER)?;
            let eps = tx.open_table(ENDPOINTS)?;
            let mut out = Vec::new();
            for k in keys_under(&index, container)? {
                let network = k.rsplit('/').next().unwrap_or_default();
                if let Some(v) = eps.get(format!("{network}/{container}").as_str())? {
                    out.push(pb::Endpoint::decode(v.value())?);
                }
            }
            Ok(out)
        };
        read().map_err(NetworkError::Store)
    }

    /// The container's endpoint on `network`: the one recorded, or a new one with the next
    /// free address of `pools`, recorded with its address in one transaction. `make` fills the
    /// endpoint from (address, prefix length, gateway). None when the pools are exhausted.
    #[cfg(test)]
    pub(crate) fn add_endpoint(
        &self,
        network: &pb::NetworkRecord,
        container: &str,
        pools: &[Pool],
        make: impl FnOnce(Ipv4Addr, u8, Ipv4Addr) -> pb::Endpoint,
    ) -> Result<Option<pb::Endpoint>, NetworkError> {
        match self.add_endpoint_at(network, container, pools, None, None, make, &[])? {
            Ok(ep) => Ok(Some(ep)),
            Err(_) => Ok(None),
        }
    }

    /// As [`Store::add_endpoint`], with `fixed`: that address (inside a pool's subnet) or the
    /// refusal (taken: by another endpoint, the gateway, an auxiliary address). With `v6` (a
    /// network with IPv6), the endpoint also gets an IPv6 address in the same transaction: the
    /// fixed one, or the lowest free one (the network's other endpoints hold theirs). A new
    /// endpoint is recorded with `events` (its connect).
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_endpoint_at(
        &self,
        network: &pb::NetworkRecord,
        container: &str,
        pools: &[Pool],
        fixed: Option<Ipv4Addr>,
        v6: Option<&Want6>,
        make: impl FnOnce(Ipv4Addr, u8, Ipv4Addr) -> pb::Endpoint,
        events: &[Event],
    ) -> Result<Result<pb::Endpoint, NoAddress>, NetworkError> {
        self.add_endpoint_routed(network, container, pools, fixed, v6, make, events, &[])
    }

    /// As [`Store::add_endpoint_at`]; a new endpoint is recorded with `routes`, the default
    /// route flags (IPv4, IPv6) of the container's endpoints on other networks (by network
    /// ID) that it changes: one transaction.
    #[cfg(test)]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn add_endpoint_routed(
        &self,
        network: &pb::NetworkRecord,
        container: &str,
        pools: &[Pool],
        fixed: Option<Ipv4Addr>,
        v6: Option<&Want6>,
        make: impl FnOnce(Ipv4Addr, u8, Ipv4Addr) -> pb::Endpoint,
        events: &[Event],
        routes: &[(String, bool, bool)],
    ) -> Result<Result<pb::Endpoint, NoAddress>, NetworkError> {
        match self.stage_endpoint(network, container, pools, fixed, v6, make, events, routes)? {
            Ok((ep, Some(w))) => {
                self.commit(w)?;
                Ok(Ok(ep))
            }
            Ok((ep, None)) => Ok(Ok(ep)),
            Err(no) => Ok(Err(no)),
        }
    }

    /// As [`Store::add_endpoint_routed`], but a new endpoint is written and not committed
    /// yet: the write to [`Store::commit`] (no other write begins until it is committed or
    /// dropped). A recorded endpoint comes without a write.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn stage_endpoint(
        &self,
        network: &pb::NetworkRecord,
        container: &str,
        pools: &[Pool],
        fixed: Option<Ipv4Addr>,
        v6: Option<&Want6>,
        make: impl FnOnce(Ipv4Addr, u8, Ipv4Addr) -> pb::Endpoint,
        events: &[Event],
        routes: &[(String, bool, bool)],
    ) -> Result<Result<(pb::Endpoint, Option<Staged>), NoAddress>, NetworkError> {
        let write = || -> anyhow::Result<Result<(pb::Endpoint, Option<Staged>), NoAddress>> {
            let key = format!("{}/{container}", network.id);
            let tx = self.db.begin_write()?;
            let ep = {
                let mut eps = tx.open_table(ENDPOINTS)?;
                if let Some(v) = eps.get(key.as_str())? {
                    return Ok(Ok((pb::Endpoint::decode(v.value())?, None)));
                }
                let mut addrs = tx.open_table(ADDRESSES)?;
                let mut last_table = tx.open_table(LAST)?;
                let last = last_table
                    .get(network.id.as_str())?
                    .map(|v| Ipv4Addr::from(v.value()));
                // Each candidate address is looked up, not every address of the network read:
                // an attach costs the same with 500 endpoints on the network as with one.
                let failed = std::cell::RefCell::new(None);
                let used = |ip: Ipv4Addr| match addrs.get(addr_key(&network.id, ip).as_str()) {
                    Ok(v) => v.is_some(),
                    Err(e) => {
                        failed.borrow_mut().get_or_insert(e);
                        true
                    }
                };
                let picked = match fixed {
                    Some(ip) => match pools.iter().find(|p| p.subnet.contains(ip)) {
                        None => return Ok(Err(NoAddress::OutOfRange)),
                        Some(p) if !p.is_free(ip, used) => Err(NoAddress::InUse),
                        Some(p) => Ok(Some((ip, p))),
                    },
                    None => Ok(pools
                        .iter()
                        .find_map(|p| p.allocate(used, last).map(|ip| (ip, p)))),
                };
                if let Some(e) = failed.into_inner() {
                    return Err(e.into());
                }
                let picked = match picked {
                    Ok(p) => p,
                    Err(e) => return Ok(Err(e)),
                };
                let Some((ip, pool)) = picked else {
                    return Ok(Err(NoAddress::Exhausted));
                };
                let mut ep = make(ip, pool.subnet.prefix(), pool.gateway);
                if let Some(w) = v6 {
                    let mut used: BTreeSet<std::net::Ipv6Addr> =
                        endpoints_under(&eps, &network.id)?
                            .iter()
                            .filter_map(|e| e.ipv6_address.parse().ok())
                            .collect();
                    used.insert(w.gateway);
                    used.extend(w.reserved.iter().copied());
                    let ip6 = match w.fixed {
                        Some(ip6) if !w.subnet.contains(ip6) => {
                            return Ok(Err(NoAddress::OutOfRange6));
                        }
                        Some(ip6) if used.contains(&ip6) => return Ok(Err(NoAddress::InUse)),
                        Some(ip6) => ip6,
                        None => match w.subnet.allocate_in(&w.range, &used) {
                            Some(ip6) => ip6,
                            None => return Ok(Err(NoAddress::Exhausted6)),
                        },
                    };
                    ep.ipv6_address = ip6.to_string();
                    ep.ipv6_prefix_len = u32::from(w.subnet.prefix());
                    ep.ipv6_gateway = w.gateway.to_string();
                    ep.fixed_ipv6 = w.fixed.is_some();
                }
                addrs.insert(addr_key(&network.id, ip).as_str(), container)?;
                if fixed.is_none() {
                    last_table.insert(network.id.as_str(), u32::from(ip))?;
                }
                eps.insert(key.as_str(), ep.encode_to_vec().as_slice())?;
                for (other, v4, v6) in routes {
                    let key = format!("{other}/{container}");
                    let found = eps.get(key.as_str())?.map(|v| v.value().to_vec());
                    if let Some(v) = found {
                        let mut e = pb::Endpoint::decode(v.as_slice())?;
                        (e.default_route, e.default_route6) = (*v4, *v6);
                        eps.insert(key.as_str(), e.encode_to_vec().as_slice())?;
                    }
                }
                tx.open_table(BY_CONTAINER)?.insert(
                    format!("{container}/{}", network.id).as_str(),
                    [].as_slice(),
                )?;
                ep
            };
            let staged = Staged {
                tx,
                events: events.to_vec(),
            };
            Ok(Ok((ep, Some(staged))))
        };
        write().map_err(store_err)
    }

    /// Commits a staged write with its events: durable once this returns.
    pub(crate) fn commit(&self, w: Staged) -> Result<(), NetworkError> {
        self.events.commit(w.tx, &w.events).map_err(store_err)
    }

    /// Rewrites a recorded endpoint (its published ports). Nothing when it is gone.
    pub(crate) fn update_endpoint(&self, ep: &pb::Endpoint) -> Result<(), NetworkError> {
        let write = || -> anyhow::Result<()> {
            let key = format!("{}/{}", ep.network_id, ep.container_id);
            let tx = self.db.begin_write()?;
            {
                let mut eps = tx.open_table(ENDPOINTS)?;
                if eps.get(key.as_str())?.is_some() {
                    eps.insert(key.as_str(), ep.encode_to_vec().as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        write().map_err(store_err)
    }

    /// Removes the container's endpoint on `network` and releases its address, in one
    /// transaction with `events` (its disconnect). What was removed (None: there was none,
    /// and no event).
    pub(crate) fn remove_endpoint(
        &self,
        container: &str,
        network: &str,
        events: &[Event],
    ) -> Result<Option<pb::Endpoint>, NetworkError> {
        let write = || -> anyhow::Result<Option<pb::Endpoint>> {
            let tx = self.db.begin_write()?;
            let removed = {
                tx.open_table(BY_CONTAINER)?
                    .remove(format!("{container}/{network}").as_str())?;
                let mut eps = tx.open_table(ENDPOINTS)?;
                let bytes = eps
                    .remove(format!("{network}/{container}").as_str())?
                    .map(|v| v.value().to_vec());
                match bytes {
                    None => None,
                    Some(b) => {
                        let ep = pb::Endpoint::decode(b.as_slice())?;
                        if let Ok(ip) = ep.ipv4_address.parse::<Ipv4Addr>() {
                            tx.open_table(ADDRESSES)?
                                .remove(addr_key(network, ip).as_str())?;
                        }
                        Some(ep)
                    }
                }
            };
            let events = if removed.is_some() { events } else { &[] };
            self.events.commit(tx, events)?;
            Ok(removed)
        };
        write().map_err(store_err)
    }

    /// Gives every endpoint of the container its new name (docker rename).
    pub(crate) fn rename_container(&self, container: &str, name: &str) -> Result<(), NetworkError> {
        let write = || -> anyhow::Result<()> {
            let tx = self.db.begin_write()?;
            {
                let index = tx.open_table(BY_CONTAINER)?;
                let mut eps = tx.open_table(ENDPOINTS)?;
                for k in keys_under(&index, container)? {
                    let network = k.rsplit('/').next().unwrap_or_default();
                    let key = format!("{network}/{container}");
                    let Some(bytes) = eps.get(key.as_str())?.map(|v| v.value().to_vec()) else {
                        continue;
                    };
                    let mut ep = pb::Endpoint::decode(bytes.as_slice())?;
                    ep.container_name = name.to_owned();
                    eps.insert(key.as_str(), ep.encode_to_vec().as_slice())?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        write().map_err(store_err)
    }

    /// Removes every endpoint of the container and releases their addresses, in one
    /// transaction with the events `events_of` gives for each (on its network). Returns what
    /// was removed.
    pub(crate) fn remove_endpoints(
        &self,
        container: &str,
        events_of: impl Fn(&pb::NetworkRecord, &pb::Endpoint) -> Vec<Event>,
    ) -> Result<Vec<pb::Endpoint>, NetworkError> {
        let write = || -> anyhow::Result<Vec<pb::Endpoint>> {
            let tx = self.db.begin_write()?;
            let mut removed = Vec::new();
            let mut events = Vec::new();
            {
                let networks = tx.open_table(NETWORKS)?;
                let mut index = tx.open_table(BY_CONTAINER)?;
                let mut eps = tx.open_table(ENDPOINTS)?;
                let mut addrs = tx.open_table(ADDRESSES)?;
                for k in keys_under(&index, container)? {
                    index.remove(k.as_str())?;
                    let network = k.rsplit('/').next().unwrap_or_default().to_owned();
                    let Some(bytes) = eps
                        .remove(format!("{network}/{container}").as_str())?
                        .map(|v| v.value().to_vec())
                    else {
                        continue;
                    };
                    let ep = pb::Endpoint::decode(bytes.as_slice())?;
                    if let Ok(ip) = ep.ipv4_address.parse::<Ipv4Addr>() {
                        addrs.remove(addr_key(&network, ip).as_str())?;
                    }
                    if let Some(n) = networks.get(network.as_str())? {
                        events.extend(events_of(&pb::NetworkRecord::decode(n.value())?, &ep));
                    }
                    removed.push(ep);
                }
            }
            self.events.commit(tx, &events)?;
            Ok(removed)
        };
        write().map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ipam::Ipv4Net;

    pub(super) fn network(id: &str, name: &str) -> pb::NetworkRecord {
        pb::NetworkRecord {
            id: id.to_owned(),
            name: name.to_owned(),
            driver: "bridge".to_owned(),
            ..Default::default()
        }
    }

    pub(super) fn pool() -> Vec<Pool> {
        let subnet: Ipv4Net = "10.9.0.0/29".parse().unwrap();
        vec![Pool {
            subnet,
            range: subnet,
            gateway: "10.9.0.1".parse().unwrap(),
            reserved: BTreeSet::new(),
        }]
    }

    pub(super) fn make(c: &str) -> impl FnOnce(Ipv4Addr, u8, Ipv4Addr) -> pb::Endpoint + '_ {
        move |ip, prefix, gw| pb::Endpoint {
            container_id: c.to_owned(),
            network_id: "n1".to_owned(),
            ipv4_address: ip.to_string(),
            ipv4_prefix_len: u32::from(prefix),
            gateway: gw.to_string(),
            ..Default::default()
        }
    }

    #[test]
    fn names_are_unique_and_networks_in_use_stay() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        s.create_network(&network("n1", "a"), &[]).unwrap().unwrap();
        assert_eq!(
            s.create_network(&network("n2", "a"), &[]).unwrap(),
            Err(Refusal::NameTaken("n1".to_owned()))
        );
        let n = network("n1", "a");
        s.add_endpoint(&n, "c1", &pool(), make("c1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            s.remove_network("n1", &[]).unwrap(),
            Err(Refusal::InUse(vec!["c1".to_owned()]))
        );
        s.remove_endpoints("c1", |_, _| Vec::new()).unwrap();
        s.remove_network("n1", &[]).unwrap().unwrap();
        assert_eq!(s.count().unwrap(), 0);
    }

    #[test]
    fn a_staged_endpoint_is_recorded_only_once_committed() {
        let dir = tempfile::tempdir().unwrap();
        let n = network("n1", "a");
        let s = Store::open(dir.path()).unwrap();
        s.create_network(&n, &[]).unwrap().unwrap();
        let stage = |c: &str| {
            s.stage_endpoint(&n, c, &pool(), None, None, make(c), &[], &[])
                .unwrap()
                .unwrap()
        };
        // Dropped (a failed attach): neither the endpoint nor its address is kept.
        let (dropped, w) = stage("c1");
        assert_eq!(dropped.ipv4_address, "10.9.0.2");
        drop(w);
        assert!(s.container_endpoints("c1").unwrap().is_empty());
        let (a, w) = stage("c1");
        assert!(s.container_endpoints("c1").unwrap().is_empty(), "not yet");
        s.commit(w.expect("a new endpoint")).unwrap();
        assert_eq!(
            s.container_endpoints("c1").unwrap(),
            std::slice::from_ref(&a)
        );
        // Recorded: staged again, it comes without a write.
        let (again, w) = stage("c1");
        assert_eq!((again, w.is_none()), (a, true));
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let (b, _) = s
            .stage_endpoint(&n, "c2", &pool(), None, None, make("c2"), &[], &[])
            .unwrap()
            .unwrap();
        assert_eq!(b.ipv4_address, "10.9.0.3", "the committed address survives");
    }

    #[test]
    fn addresses_survive_a_reopen_and_are_never_given_twice() {
        let dir = tempfile::tempdir().unwrap();
        let n = network("n1", "a");
        {
            let s = Store::open(dir.path()).unwrap();
            s.create_network(&n, &[]).unwrap().unwrap();
            let a = s
                .add_endpoint(&n, "c1", &pool(), make("c1"))
                .unwrap()
                .unwrap();
            assert_eq!(a.ipv4_address, "10.9.0.2");
            // Attach again: the same endpoint.
            let again = s
                .add_endpoint(&n, "c1", &pool(), make("c1"))
                .unwrap()
                .unwrap();
            assert_eq!(again, a);
        }
        let s = Store::open(dir.path()).unwrap();
        let b = s
            .add_endpoint(&n, "c2", &pool(), make("c2"))
            .unwrap()
            .unwrap();
        assert_eq!(b.ipv4_address, "10.9.0.3");
        for c in ["c3", "c4", "c5"] {
            s.add_endpoint(&n, c, &pool(), make(c)).unwrap().unwrap();
        }
        // .2–.6 are taken: the /29 is full.
        assert_eq!(s.add_endpoint(&n, "c6", &pool(), make("c6")).unwrap(), None);
        assert_eq!(
            s.remove_endpoints("c2", |_, _| Vec::new()).unwrap().len(),
            1
        );
        assert!(
            s.remove_endpoints("c2", |_, _| Vec::new())
                .unwrap()
                .is_empty()
        );
        let c = s
            .add_endpoint(&n, "c6", &pool(), make("c6"))
            .unwrap()
            .unwrap();
        assert_eq!(c.ipv4_address, "10.9.0.3");
        assert_eq!(s.container_endpoints("c6").unwrap(), vec![c]);
        // A fixed address: taken, out of range, then free once its holder left.
        let at = |c: &str, ip: &str| {
            s.add_endpoint_at(
                &network("n2", "b"),
                c,
                &pool(),
                ip.parse().ok(),
                None,
                make(c),
                &[],
            )
            .unwrap()
        };
        assert_eq!(at("f1", "10.9.0.1"), Err(NoAddress::InUse));
        assert_eq!(at("f1", "10.8.0.5"), Err(NoAddress::OutOfRange));
        assert_eq!(at("f1", "10.9.0.5").unwrap().ipv4_address, "10.9.0.5");
        assert_eq!(at("f2", "10.9.0.5"), Err(NoAddress::InUse));
        let gone = s.remove_endpoint("f1", "n2", &[]).unwrap().unwrap();
        assert_eq!(gone.ipv4_address, "10.9.0.5");
        assert_eq!(s.remove_endpoint("f1", "n2", &[]).unwrap(), None);
        assert_eq!(at("f2", "10.9.0.5").unwrap().ipv4_address, "10.9.0.5");
        s.rename_container("f2", "new").unwrap();
        assert_eq!(
            s.container_endpoints("f2").unwrap()[0].container_name,
            "new"
        );
        assert_eq!(s.network_endpoints("n1").unwrap().len(), 5);
        // And f2 on n2.
        assert_eq!(s.all_endpoints().unwrap().len(), 6);
    }

    #[test]
    fn ipv6_addresses_are_given_once_with_the_endpoint() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let n = network("n1", "a");
        s.create_network(&n, &[]).unwrap().unwrap();
        let want = |fixed: Option<&str>| Want6 {
            subnet: "fd00:9::/126".parse().unwrap(),
            range: "fd00:9::/126".parse().unwrap(),
            gateway: "fd00:9::1".parse().unwrap(),
            reserved: BTreeSet::new(),
            fixed: fixed.map(|f| f.parse().unwrap()),
        };
        let add = |c: &str, fixed: Option<&str>| {
            s.add_endpoint_at(&n, c, &pool(), None, Some(&want(fixed)), make(c), &[])
                .unwrap()
        };
        let a = add("c1", None).unwrap();
        assert_eq!(
            (
                a.ipv6_address.as_str(),
                a.ipv6_prefix_len,
                a.ipv6_gateway.as_str()
            ),
            ("fd00:9::2", 126, "fd00:9::1")
        );
        assert!(!a.fixed_ipv6);
        assert_eq!(add("c2", Some("fd00:9::2")), Err(NoAddress::InUse));
        assert_eq!(add("c2", Some("fd00:9::1")), Err(NoAddress::InUse));
        assert_eq!(add("c2", Some("fd00:8::5")), Err(NoAddress::OutOfRange6));
        let b = add("c2", Some("fd00:9::3")).unwrap();
        assert!(b.fixed_ipv6);
        assert_eq!(add("c3", None), Err(NoAddress::Exhausted6));
        // A failed endpoint holds nothing: its IPv4 address is free again.
        assert_eq!(s.container_endpoints("c3").unwrap(), vec![]);
        s.remove_endpoints("c1", |_, _| Vec::new()).unwrap();
        assert_eq!(add("c3", None).unwrap().ipv6_address, "fd00:9::2");
    }

    #[test]
    fn a_new_endpoint_takes_the_default_routes_in_its_own_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let (n1, n2) = (network("n1", "a"), network("n2", "b"));
        s.create_network(&n1, &[]).unwrap().unwrap();
        s.create_network(&n2, &[]).unwrap().unwrap();
        let routed = |e: pb::Endpoint| pb::Endpoint {
            default_route: true,
            default_route6: true,
            ..e
        };
        let first = move |ip, prefix, gw| routed(make("c1")(ip, prefix, gw));
        s.add_endpoint(&n1, "c1", &pool(), first).unwrap().unwrap();
        let second = |ip, prefix, gw| pb::Endpoint {
            network_id: "n2".to_owned(),
            ..routed(make("c1")(ip, prefix, gw))
        };
        let changed = [
            ("n1".to_owned(), false, true),
            ("gone".to_owned(), false, false),
        ];
        let b = s
            .add_endpoint_routed(&n2, "c1", &pool(), None, None, second, &[], &changed)
            .unwrap()
            .unwrap();
        let now = s.container_endpoints("c1").unwrap();
        let on = |id: &str| now.iter().find(|e| e.network_id == id).unwrap();
        assert_eq!(
            (on("n1").default_route, on("n1").default_route6),
            (false, true)
        );
        assert_eq!(on("n2"), &b);
        assert_eq!(now.len(), 2, "no endpoint made for a network it is not on");
    }
}

#[cfg(test)]
#[path = "store_events_tests.rs"]
mod events_tests;
