//! The images service's records, in its own transactional store.

use std::path::Path;

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

use crate::ImagesError;

/// Images by ID (`sha256:<hex>`); the value is the image record (JSON).
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");

pub(crate) struct Store {
    db: redb::Database,
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        tx.open_table(IMAGES)?;
        tx.commit()?;
        Ok(Store { db })
    }

    pub(crate) fn count(&self) -> Result<u64, ImagesError> {
        let read = || -> anyhow::Result<u64> {
            let tx = self.db.begin_read()?;
            Ok(tx.open_table(IMAGES)?.len()?)
        };
        read().map_err(ImagesError::Store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_store() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(Store::open(dir.path()).unwrap().count().unwrap(), 0);
    }
}
