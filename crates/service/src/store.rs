use std::path::Path;

/// Opens (creating if needed) the service's transactional store, `<dir>/state.redb`.
pub fn open_store(dir: &Path) -> anyhow::Result<redb::Database> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("state.redb");
    redb::Database::create(&path)
        .map_err(|e| anyhow::anyhow!("opening the store {}: {e}", path.display()))
}
