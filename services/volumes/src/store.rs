//! The volumes service's records, in its own transactional store. A volume's record carries
//! the set of containers that reference it, so that a reference and the volume it needs are
//! written in one transaction.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::Arc,
};

use berth_bus::{EventPublisher, StoreEvents};
use berth_types::Event;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use crate::VolumesError;

/// Volumes by name; the value is the volume record (JSON).
const VOLUMES: TableDefinition<&str, &[u8]> = TableDefinition::new("volumes");

/// One volume as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub(crate) struct VolumeRecord {
    pub(crate) name: String,
    pub(crate) driver: String,
    pub(crate) created_at: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) options: BTreeMap<String, String>,
    /// Kept for records written before references were sets; not read.
    #[serde(default)]
    pub(crate) ref_count: i64,
    #[serde(default)]
    pub(crate) anonymous: bool,
    /// IDs of the containers that reference the volume.
    #[serde(default)]
    pub(crate) containers: BTreeSet<String>,
    /// IDs of the containers using it now (between their start and their exit): while there
    /// is one, a volume with a filesystem of its own has it mounted at its data path.
    #[serde(default)]
    pub(crate) mounted_by: BTreeSet<String>,
}

pub(crate) struct Store {
    db: Arc<redb::Database>,
    /// Once attached: the events of a write are written in its transaction (the outbox).
    events: StoreEvents,
}

/// A write transaction's view of the volumes table.
pub(crate) struct Tx<'a> {
    table: redb::Table<'a, &'static str, &'static [u8]>,
    events: Vec<Event>,
}

impl Tx<'_> {
    /// Events that report this transaction's change, stored with it.
    pub(crate) fn emit(&mut self, events: impl IntoIterator<Item = Event>) {
        self.events.extend(events);
    }

    pub(crate) fn get(&self, name: &str) -> anyhow::Result<Option<VolumeRecord>> {
        match self.table.get(name)? {
            Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
            None => Ok(None),
        }
    }

    pub(crate) fn put(&mut self, v: &VolumeRecord) -> anyhow::Result<()> {
        self.table
            .insert(v.name.as_str(), serde_json::to_vec(v)?.as_slice())?;
        Ok(())
    }

    pub(crate) fn delete(&mut self, name: &str) -> anyhow::Result<()> {
        self.table.remove(name)?;
        Ok(())
    }

    pub(crate) fn all(&self) -> anyhow::Result<Vec<VolumeRecord>> {
        self.table
            .iter()?
            .map(|row| Ok(serde_json::from_slice(row?.1.value())?))
            .collect()
    }
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        tx.open_table(VOLUMES)?;
        tx.commit()?;
        let db = Arc::new(db);
        Ok(Store {
            events: StoreEvents::new(db.clone()),
            db,
        })
    }

    /// From now on the events given to [`Tx::emit`] go through `events`, from this store.
    pub(crate) fn attach_events(&self, events: EventPublisher) -> anyhow::Result<()> {
        Ok(self.events.attach(events)?)
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

    pub(crate) fn get(&self, name: &str) -> Result<Option<VolumeRecord>, VolumesError> {
        let read = || -> anyhow::Result<Option<VolumeRecord>> {
            let tx = self.db.begin_read()?;
            let table = tx.open_table(VOLUMES)?;
            match table.get(name)? {
                Some(v) => Ok(Some(serde_json::from_slice(v.value())?)),
                None => Ok(None),
            }
        };
        read().map_err(VolumesError::Store)
    }

    /// Runs `f` in one write transaction, committed when it returns Ok.
    pub(crate) fn write<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, VolumesError>,
    ) -> Result<T, VolumesError> {
        let tx = self
            .db
            .begin_write()
            .map_err(|e| VolumesError::Store(e.into()))?;
        let (out, events) = {
            let table = tx
                .open_table(VOLUMES)
                .map_err(|e| VolumesError::Store(e.into()))?;
            let mut t = Tx {
                table,
                events: Vec::new(),
            };
            let out = f(&mut t)?;
            (out, t.events)
        };
        self.events
            .commit(tx, &events)
            .map_err(|e| VolumesError::Store(e.into()))?;
        Ok(out)
    }

    #[cfg(test)]
    pub(crate) fn put(&self, v: &VolumeRecord) -> anyhow::Result<()> {
        self.write(|t| t.put(v).map_err(VolumesError::Store))?;
        Ok(())
    }
}
