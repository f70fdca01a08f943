//! The runtime's records, in its own transactional store: each container as its
//! `berth.runtime.v1.Container` message. Records an earlier Berth wrote as JSON are
//! migrated when the store opens.

use std::path::Path;

use berth_proto::runtime::v1 as pb;
use prost::Message;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{RuntimeError, container::Container, migrate};

/// Containers by ID; the value is the encoded `Container` message.
const CONTAINERS: TableDefinition<&str, &[u8]> = TableDefinition::new("containers");

pub(crate) struct Store {
    db: redb::Database,
}

/// How many containers are in each state.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) total: u64,
    pub(crate) running: u64,
    pub(crate) paused: u64,
}

fn decode(bytes: &[u8]) -> anyhow::Result<Container> {
    Ok(Container::from_proto(pb::Container::decode(bytes)?))
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        {
            let mut table = tx.open_table(CONTAINERS)?;
            // Records of an earlier Berth (JSON), rewritten as messages in the same transaction.
            let mut legacy = Vec::new();
            for row in table.iter()? {
                let (k, v) = row?;
                if migrate::is_legacy(v.value()) {
                    legacy.push((k.value().to_owned(), migrate::container(v.value())?));
                }
            }
            for (id, c) in legacy {
                tracing::info!(id, "migrating a container record");
                table.insert(id.as_str(), c.to_proto().encode_to_vec().as_slice())?;
            }
        }
        tx.commit()?;
        Ok(Store { db })
    }

    pub(crate) fn counts(&self) -> Result<Counts, RuntimeError> {
        let all = self.all()?;
        Ok(Counts {
            total: all.len() as u64,
            running: all.iter().filter(|c| c.state.running()).count() as u64,
            paused: 0,
        })
    }

    /// Every container record, in ID order.
    pub(crate) fn all(&self) -> Result<Vec<Container>, RuntimeError> {
        let read = || -> anyhow::Result<Vec<Container>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(CONTAINERS)?;
            table.iter()?.map(|row| decode(row?.1.value())).collect()
        };
        read().map_err(RuntimeError::Store)
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

    /// Writes the record durably.
    pub(crate) fn put(&self, c: &Container) -> Result<(), RuntimeError> {
        let write = || -> anyhow::Result<()> {
            let bytes = c.to_proto().encode_to_vec();
            let tx = self.db.begin_write()?;
            {
                let mut table = tx.open_table(CONTAINERS)?;
                table.insert(c.id.as_str(), bytes.as_slice())?;
            }
            tx.commit()?;
            Ok(())
        };
        write().map_err(RuntimeError::Store)
    }

    pub(crate) fn delete(&self, id: &str) -> Result<(), RuntimeError> {
        let write = || -> anyhow::Result<()> {
            let tx = self.db.begin_write()?;
            {
                let mut table = tx.open_table(CONTAINERS)?;
                table.remove(id)?;
            }
            tx.commit()?;
            Ok(())
        };
        write().map_err(RuntimeError::Store)
    }

    /// Writes raw bytes under an ID (tests: a record as an earlier Berth wrote it).
    #[cfg(test)]
    fn put_raw(&self, id: &str, bytes: &[u8]) {
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
        store.put(&c).unwrap();
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
    }
}
