//! The runtime's records, in its own transactional store.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

use crate::RuntimeError;

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
        let read = || -> anyhow::Result<Counts> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(CONTAINERS)?;
            Ok(Counts {
                total: table.len()?,
                // Containers with a running process are added with the lifecycle (runtime I).
                running: 0,
                paused: 0,
            })
        };
        read().map_err(RuntimeError::Store)
    }

    /// The IDs of every container, in ID order.
    pub(crate) fn ids(&self) -> Result<Vec<String>, RuntimeError> {
        let read = || -> anyhow::Result<Vec<String>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(CONTAINERS)?;
            table
                .iter()?
                .map(|row| Ok(row?.0.value().to_owned()))
                .collect()
        };
        read().map_err(RuntimeError::Store)
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
        assert!(store.ids().unwrap().is_empty());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.counts().unwrap().total, 0);
    }
}
