//! The runtime's records, in its own transactional store.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use crate::{RuntimeError, container::Container};

/// Containers by ID; the value is the container record (JSON).
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

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        tx.open_table(CONTAINERS)?;
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
            table
                .iter()?
                .map(|row| Ok(serde_json::from_slice(row?.1.value())?))
                .collect()
        };
        read().map_err(RuntimeError::Store)
    }

    pub(crate) fn get(&self, id: &str) -> Result<Option<Container>, RuntimeError> {
        let read = || -> anyhow::Result<Option<Container>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(CONTAINERS)?;
            match table.get(id)? {
                Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
                None => Ok(None),
            }
        };
        read().map_err(RuntimeError::Store)
    }

    /// Writes the record durably.
    pub(crate) fn put(&self, c: &Container) -> Result<(), RuntimeError> {
        let write = || -> anyhow::Result<()> {
            let bytes = serde_json::to_vec(c)?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
