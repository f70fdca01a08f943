//! The volumes service's records, in its own transactional store.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::VolumesError;

/// Volumes by name; the value is the volume record (JSON).
const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");

/// One volume as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct VolumeRecord {
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) created_at: String,
    #[serde(default)]
    pub(crate) labels: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) options: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) ref_count: i64,
}

pub(crate) struct Store {
    db: redb::Database,
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        tx.open_table(VOLUMES)?;
        tx.commit()?;
        Ok(Store { db })
    }

    pub(crate) fn count(&self) -> Result<u64, VolumesError> {
        let read = || -> anyhow::Result<u64> {
            let tx = self.db.begin_read()?;
            Ok(tx.open_table(VOLUMES)?.len()?)
        };
        read().map_err(VolumesError::Store)
    }

    pub(crate) fn list(&self) -> Result<Vec<VolumeRecord>, VolumesError> {
        let read = || -> anyhow::Result<Vec<VolumeRecord>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(VOLUMES)?;
            table
                .iter()?
                .map(|row| Ok(serde_json::from_slice(row?.1.value())?))
                .collect()
        };
        read().map_err(VolumesError::Store)
    }

    #[cfg(test)]
    pub(crate) fn put(&self, v: &VolumeRecord) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(VOLUMES)?
            .insert(v.name.as_str(), serde_json::to_vec(v)?.as_slice())?;
        tx.commit()?;
        Ok(())
    }
}
