//! The runtime's records, in its own transactional store: each container as its
//! `berth.runtime.v1.Container` message, and an index of names. A container and its name are
//! written and removed in one transaction; lookups by ID, name or ID prefix go through the
//! ordered keys, never through every record. Records an earlier Berth wrote as JSON are
//! migrated when the store opens.

use std::{
    collections::BTreeMap,
    path::Path,
    sync::{Arc, RwLock, RwLockWriteGuard},
};

use berth_bus::{EventPublisher, StoreEvents};
use berth_types::Event;

use berth_proto::runtime::v1 as pb;
use prost::Message;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{RuntimeError, container::Container, migrate};

/// Containers by ID; the value is the encoded `Container` message.
const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");
/// Container IDs by name (without the leading slash).
const NAMES: TableDefinition<&str, &str> = TableDefinition::new("names");

pub(crate) struct Store {
    db: Arc<redb::Database>,
    /// Once attached: events are written in the outbox in the transaction of their change.
    events: StoreEvents,
    /// Every record, decoded, once a list has asked for them all: written through by every
    /// write while its transaction commits (the lock is held across both), so that `docker ps`
    /// of thousands neither reads nor decodes them again.
    cache: RwLock<Option<BTreeMap<String, Arc<Container>>>>,
}

type Cache = Option<BTreeMap<String, Arc<Container>>>;

/// How many containers are in each state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) total: u64,
    pub(crate) running: u64,
    pub(crate) paused: u64,
}

/// What a lookup by ID prefix found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Prefix {
    None,
    One(String),
    Many,
}

fn decode(bytes: &[u8]) -> anyhow::Result<Container> {
    Ok(Container::from_proto(pb::Container::decode(bytes)?))
}

fn encode(c: &Container) -> Vec<u8> {
    c.to_proto().encode_to_vec()
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        {
            let mut table = tx.open_table(CONTAINERS)?;
            let mut names = tx.open_table(NAMES)?;
            // Records of an earlier Berth (JSON) are rewritten as messages, and every record's
            // name is indexed, in the same transaction.
            let mut rewrite = Vec::new();
            let mut index = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                let c = if migrate::is_legacy(v.value()) {
                    let c = migrate::container(v.value())?;
                    rewrite.push(c.clone());
                    c
                } else {
                    decode(v.value())?
                };
                index.push((c.short_name().to_owned(), k.value().to_owned()));
            }
            for c in rewrite {
                tracing::info!(id = c.id, "migrating a container record");
                table.insert(c.id.as_str(), encode(&c).as_slice())?;
            }
            for (name, id) in index {
                names.insert(name.as_str(), id.as_str())?;
            }
        }
        tx.commit()?;
        let db = Arc::new(db);
        Ok(Store {
            events: StoreEvents::new(db.clone()),
            db,
            cache: RwLock::new(None),
        })
    }

    /// Events given to the writes below go through `events`, from the outbox of this store.
    pub(crate) fn attach_events(&self, events: EventPublisher) -> anyhow::Result<()> {
        Ok(self.events.attach(events)?)
    }

    fn cache_write(&self) -> RwLockWriteGuard<'_, Cache> {
        self.cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Every record, shared with the cache (filled on the first call).
    pub(crate) fn all_shared(&self) -> Result<Vec<Arc<Container>>, RuntimeError> {
        {
            let cache = self
                .cache
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(map) = cache.as_ref() {
                return Ok(map.values().cloned().collect());
            }
        }
        let mut cache = self.cache_write();
        if cache.is_none() {
            let read = || -> anyhow::Result<BTreeMap<String, Arc<Container>>> {
                let tx = self.db.begin_read()?;
                let table = tx.open_table(CONTAINERS)?;
                table
                    .iter()?
                    .map(|row| {
                        let row = row?;
                        Ok((row.0.value().to_owned(), Arc::new(decode(row.1.value())?)))
                    })
                    .collect()
            };
            *cache = Some(read().map_err(RuntimeError::Store)?);
        }
        Ok(cache
            .as_ref()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default())
    }

    pub(crate) fn counts(&self) -> Result<Counts, RuntimeError> {
        let all = self.all_shared()?;
        Ok(Counts {
            total: all.len() as u64,
            running: all
                .iter()
                .filter(|c| c.state.running() && !c.state.paused)
                .count() as u64,
            paused: all.iter().filter(|c| c.state.paused).count() as u64,
        })
    }

    /// Every container record, in ID order.
    pub(crate) fn all(&self) -> Result<Vec<Container>, RuntimeError> {
        Ok(self
            .all_shared()?
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect())
    }

    pub(crate) fn get(&self, id: &str) -> Result<Option<Container>, RuntimeError> {
        let read = || -> anyhow::Result<Option<Container>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(CONTAINERS)?;
            match table.get(id)? {
                Some(v) => Ok(Some(decode(v.value())?)),
                None => Ok(None),
            }
        };
        read().map_err(RuntimeError::Store)
    }

    /// The ID of the container named `name` (without the slash).
    pub(crate) fn id_by_name(&self, name: &str) -> Result<Option<String>, RuntimeError> {
        let read = || -> anyhow::Result<Option<String>> {
            let tx = self.db.begin_read()?;
            let names = tx.open_table(NAMES)?;
            Ok(names.get(name)?.map(|v| v.value().to_owned()))
        };
        read().map_err(RuntimeError::Store)
    }

    /// The IDs that start with `prefix`: none, one, or more than one.
    pub(crate) fn by_prefix(&self, prefix: &str) -> Result<Prefix, RuntimeError> {
        let read = || -> anyhow::Result<Prefix> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(CONTAINERS)?;
            let mut ids = table
                .range(prefix..)?
                .map(|row| row.map(|(k, _)| k.value().to_owned()))
                .take_while(|k| k.as_ref().map_or(true, |k| k.starts_with(prefix)));
            Ok(match (ids.next().transpose()?, ids.next().transpose()?) {
                (None, _) => Prefix::None,
                (Some(id), None) => Prefix::One(id),
                (Some(_), Some(_)) => Prefix::Many,
            })
        };
        read().map_err(RuntimeError::Store)
    }

    /// Records a new container and reserves its name, in one transaction. Err(id) when the
    /// name belongs to container `id`.
    pub(crate) fn create(
        &self,
        c: &Container,
        events: &[Event],
    ) -> Result<Result<(), String>, RuntimeError> {
        self.write_named(c, None, events)
    }

    /// Writes `c`'s record with its name reserved (and `old`, its previous name, released), in
    /// one transaction. Err(id) when the name belongs to container `id`.
    fn write_named(
        &self,
        c: &Container,
        old: Option<&str>,
        events: &[Event],
    ) -> Result<Result<(), String>, RuntimeError> {
        let mut cache = self.cache_write();
        let write = || -> anyhow::Result<Result<(), String>> {
            let tx = self.db.begin_write()?;
            {
                let mut names = tx.open_table(NAMES)?;
                if let Some(other) = names.get(c.short_name())? {
                    return Ok(Err(other.value().to_owned()));
                }
                if let Some(old) = old {
                    names.remove(old)?;
                }
                names.insert(c.short_name(), c.id.as_str())?;
                let mut table = tx.open_table(CONTAINERS)?;
                table.insert(c.id.as_str(), encode(c).as_slice())?;
            }
            self.events.commit(tx, events)?;
            Ok(Ok(()))
        };
        let done = write().map_err(RuntimeError::Store)?;
        if let (Ok(()), Some(map)) = (&done, cache.as_mut()) {
            map.insert(c.id.clone(), Arc::new(c.clone()));
        }
        Ok(done)
    }

    /// Writes the record durably (its name unchanged).
    pub(crate) fn put(&self, c: &Container) -> Result<(), RuntimeError> {
        self.put_with(c, &[])
    }

    /// Writes the record durably (its name unchanged) with the events that report the change.
    pub(crate) fn put_with(&self, c: &Container, events: &[Event]) -> Result<(), RuntimeError> {
        let bytes = encode(c);
        let mut cache = self.cache_write();
        let write = || -> anyhow::Result<()> {
            let tx = self.db.begin_write()?;
            {
                let mut table = tx.open_table(CONTAINERS)?;
                table.insert(c.id.as_str(), bytes.as_slice())?;
            }
            self.events.commit(tx, events)?;
            Ok(())
        };
        write().map_err(RuntimeError::Store)?;
        if let Some(map) = cache.as_mut() {
            map.insert(c.id.clone(), Arc::new(c.clone()));
        }
        Ok(())
    }

    /// Renames `c` (whose record holds the new name) from `old`, in one transaction.
    /// Err(id) when the new name belongs to container `id`.
    pub(crate) fn rename(
        &self,
        c: &Container,
        old: &str,
        events: &[Event],
    ) -> Result<Result<(), String>, RuntimeError> {
        self.write_named(c, Some(old), events)
    }

    /// Removes the record and its name, with the events that report it, in one transaction.
    pub(crate) fn delete(&self, c: &Container, events: &[Event]) -> Result<(), RuntimeError> {
        let mut cache = self.cache_write();
        let write = || -> anyhow::Result<()> {
            let tx = self.db.begin_write()?;
            {
                let mut names = tx.open_table(NAMES)?;
                let mine = names
                    .get(c.short_name())?
                    .is_some_and(|v| v.value() == c.id);
                if mine {
                    names.remove(c.short_name())?;
                }
                let mut table = tx.open_table(CONTAINERS)?;
                table.remove(c.id.as_str())?;
            }
            self.events.commit(tx, events)?;
            Ok(())
        };
        write().map_err(RuntimeError::Store)?;
        if let Some(map) = cache.as_mut() {
            map.remove(&c.id);
        }
        Ok(())
    }

    /// Writes raw bytes under an ID (tests: a record as an earlier Berth wrote it).
    #[cfg(test)]
    fn put_raw(&self, id: &str, bytes: &[u8]) {
        *self.cache_write() = None;
        let tx = self.db.begin_write().unwrap();
        tx.open_table(CONTAINERS)
            .unwrap()
            .insert(id, bytes)
            .unwrap();
        tx.commit().unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::{Status, tests::sample};

    #[test]
    fn empty_store_counts_zero_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.counts().unwrap(), Counts::default());
        assert!(store.all().unwrap().is_empty());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.counts().unwrap().total, 0);
    }

    #[test]
    fn records_round_trip_and_legacy_json_is_migrated_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut c = sample('b', "new");
        c.state.status = Status::Running;
        store.create(&c, &[]).unwrap().unwrap();
        assert_eq!(store.get(&c.id).unwrap(), Some(c.clone()));
        store.put_raw(&"a".repeat(64), migrate::tests::LEGACY.as_bytes());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let all = store.all().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].name, "/old");
        assert_eq!(all[0].process().cmd.unwrap().values, ["sleep", "60"]);
        assert_eq!(all[1], c);
        assert_eq!(store.counts().unwrap().running, 2);
        // The migrated record's name is indexed.
        assert_eq!(store.id_by_name("old").unwrap(), Some("a".repeat(64)));
    }

    /// Each event is written in the transaction of the change it reports (the outbox): a
    /// write refused for a taken name leaves none.
    #[tokio::test]
    async fn events_are_stored_with_their_change() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // NATS is not reachable: nothing leaves the outbox.
        let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
            .await
            .unwrap();
        let events = EventPublisher::spawn(bus, Default::default());
        store.attach_events(events.clone()).unwrap();
        let ev = |c: &Container, action: &str| {
            let actor = berth_types::Actor {
                id: c.id.clone(),
                ..Default::default()
            };
            vec![Event::new(
                berth_types::EventType::Container,
                action.parse().unwrap(),
                actor,
                1,
            )]
        };
        let a = sample('a', "web");
        let b = sample('b', "web");
        store.create(&a, &ev(&a, "create")).unwrap().unwrap();
        assert_eq!(events.waiting(), Some(1));
        assert!(store.create(&b, &ev(&b, "create")).unwrap().is_err());
        assert_eq!(events.waiting(), Some(1), "a refused create has no event");
        store.put_with(&a, &ev(&a, "start")).unwrap();
        store.delete(&a, &ev(&a, "destroy")).unwrap();
        assert_eq!(events.waiting(), Some(3));
    }

    #[test]
    fn names_are_reserved_with_their_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = sample('a', "web");
        let b = sample('b', "web");
        store.create(&a, &[]).unwrap().unwrap();
        assert_eq!(store.create(&b, &[]).unwrap(), Err(a.id.clone()));
        assert_eq!(store.get(&b.id).unwrap(), None);
        assert_eq!(store.id_by_name("web").unwrap(), Some(a.id.clone()));

        let mut renamed = a.clone();
        renamed.name = "/api".to_owned();
        store.rename(&renamed, "web", &[]).unwrap().unwrap();
        assert_eq!(store.id_by_name("web").unwrap(), None);
        assert_eq!(store.id_by_name("api").unwrap(), Some(a.id.clone()));
        store.create(&b, &[]).unwrap().unwrap();
        let mut clash = renamed.clone();
        clash.name = "/web".to_owned();
        assert_eq!(store.rename(&clash, "api", &[]).unwrap(), Err(b.id.clone()));

        store.delete(&renamed, &[]).unwrap();
        assert_eq!(store.id_by_name("api").unwrap(), None);
        assert_eq!(store.get(&a.id).unwrap(), None);
        assert_eq!(store.id_by_name("web").unwrap(), Some(b.id.clone()));
    }

    #[test]
    fn prefixes_through_the_ordered_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut a = sample('a', "one");
        a.id = format!("ab{}", "0".repeat(62));
        let mut b = sample('a', "two");
        b.id = format!("ac{}", "0".repeat(62));
        store.create(&a, &[]).unwrap().unwrap();
        store.create(&b, &[]).unwrap().unwrap();
        assert_eq!(store.by_prefix("ab").unwrap(), Prefix::One(a.id.clone()));
        assert_eq!(store.by_prefix("a").unwrap(), Prefix::Many);
        assert_eq!(store.by_prefix("b").unwrap(), Prefix::None);
        assert_eq!(store.by_prefix("ac0").unwrap(), Prefix::One(b.id.clone()));
    }

    /// The records a list sees (from the cache once filled) are always those on disk: each
    /// write, rename and delete goes through to the cache, and a refused name changes nothing.
    #[test]
    fn cached_records_follow_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let on_disk = |store: &Store| {
            let tx = store.db.begin_read().unwrap();
            let table = tx.open_table(CONTAINERS).unwrap();
            table
                .iter()
                .unwrap()
                .map(|r| decode(r.unwrap().1.value()).unwrap())
                .collect::<Vec<_>>()
        };
        let a = sample('a', "web");
        store.create(&a, &[]).unwrap().unwrap();
        assert_eq!(store.all().unwrap(), on_disk(&store));
        let mut b = sample('b', "db");
        store.create(&b, &[]).unwrap().unwrap();
        b.state.status = Status::Running;
        store.put(&b).unwrap();
        assert_eq!(store.counts().unwrap().running, 1);
        let clash = sample('c', "web");
        assert_eq!(store.create(&clash, &[]).unwrap(), Err(a.id.clone()));
        let mut renamed = a.clone();
        renamed.name = "/api".to_owned();
        store.rename(&renamed, "web", &[]).unwrap().unwrap();
        assert_eq!(store.all().unwrap(), on_disk(&store));
        assert_eq!(store.all().unwrap(), vec![renamed.clone(), b.clone()]);
        store.delete(&renamed, &[]).unwrap();
        assert_eq!(store.all().unwrap(), on_disk(&store));
        assert_eq!(store.all().unwrap(), vec![b]);
    }
}
