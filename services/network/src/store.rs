//! The network service's records, in its own transactional store.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

use crate::NetworkError;

/// Networks by ID; the value is the network record (JSON).
const NETWORKS: TableDefinition<&str, &[u8]> = TableDefinition::new("networks");

pub(crate) struct Store {
    db: redb::Database,
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        tx.open_table(NETWORKS)?;
        tx.commit()?;
        Ok(Store { db })
    }

    pub(crate) fn count(&self) -> Result<u64, NetworkError> {
        let read = || -> anyhow::Result<u64> {
            let tx = self.db.begin_read()?;
            Ok(tx.open_table(NETWORKS)?.len()?)
        };
        read().map_err(NetworkError::Store)
    }
}
