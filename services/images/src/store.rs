//! The images service's records, in its own transactional store: images, the references that
//! name them, and unpacked layers with their reference counts. One write transaction per state
//! change, so a crash leaves either the old state or the new one.

use std::{path::Path, sync::Arc};

use berth_bus::{EventPublisher, StoreEvents};
use berth_types::{Digest, Event};
use redb::{
    MultimapTableDefinition, MultimapTableHandle, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, TableDefinition,
};
use serde::{Deserialize, Serialize};

use crate::{ImagesError, snapshot::SnapshotRecord};

/// Images by ID (`sha256:<hex>` of the config); the value is an [`ImageRecord`] (JSON).
const IMAGES: TableDefinition<&str, &[u8]> = TableDefinition::new("images");
/// `name:tag` and `name@digest` (fully qualified) → image ID.
const REFS: TableDefinition<&str, &str> = TableDefinition::new("refs");
/// Layers by chain ID; the value is a [`LayerRecord`] (JSON).
const LAYERS: TableDefinition<&str, &[u8]> = TableDefinition::new("layers");
/// Container snapshots by key; the value is a [`SnapshotRecord`] (JSON).
const SNAPSHOTS: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshots");
/// RUN containers a build kept on purpose (a failed step's without `forcerm`, any step's
/// with `rm=false`): the restarted service's reaper leaves them, as dockerd keeps them.
const KEPT_RUN: TableDefinition<&str, u8> = TableDefinition::new("kept_run_containers");
/// The build cache's index: [`cache_slot`] of (parent, step key) → the IDs of the images that
/// step made on that parent. A step's look-up reads its slot, not every image.
const BUILD_CACHE: MultimapTableDefinition<&str, &str> =
    MultimapTableDefinition::new("build_cache");

/// The key of a (parent, step key) pair in [`BUILD_CACHE`]: a digest, whatever the step key's
/// length.
fn cache_slot(parent: Option<&Digest>, key: &str) -> String {
    let parent = parent.map(Digest::to_string).unwrap_or_default();
    Digest::sha256_of(format!("{parent}\n{key}").as_bytes()).to_string()
}

/// The slot of [`BUILD_CACHE`] an image is in: none for an image no build step made.
fn slot_of(rec: &ImageRecord) -> Option<String> {
    rec.build_key
        .as_deref()
        .map(|key| cache_slot(rec.parent.as_ref(), key))
}

/// One image.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct ImageRecord {
    pub(crate) id: Digest,
    /// Fully qualified `name:tag` references, in the order they were added.
    pub(crate) repo_tags: Vec<String>,
    /// Fully qualified `name@sha256:...` references (the manifest digest per repository).
    pub(crate) repo_digests: Vec<String>,
    /// The manifest this image was pulled or loaded with, if any.
    pub(crate) manifest: Option<Digest>,
    /// Chain IDs of the layers, bottom first.
    pub(crate) chain: Vec<Digest>,
    /// Uncompressed diff IDs, bottom first.
    pub(crate) diff_ids: Vec<Digest>,
    /// Sum of the layers' unpacked sizes.
    pub(crate) size: u64,
    /// The config's `created` (RFC 3339), as the image says.
    pub(crate) created: Option<String>,
    /// Unix seconds when the image entered the store.
    pub(crate) added_at: i64,
    /// Every blob this image holds in the content store: manifests, config, layer blobs.
    #[serde(default)]
    pub(crate) blobs: Vec<Digest>,
    /// Unix seconds of the last tag change (`Metadata.LastTagTime`).
    #[serde(default)]
    pub(crate) last_tag_time: Option<i64>,
    /// The image a build step made this one from (Docker's `Parent`).
    #[serde(default)]
    pub(crate) parent: Option<Digest>,
    /// The build step that made it (its cache key), for the builder's cache.
    #[serde(default)]
    pub(crate) build_key: Option<String>,
}

/// One unpacked layer, shared by every image whose chain contains it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct LayerRecord {
    pub(crate) chain_id: Digest,
    pub(crate) diff_id: Digest,
    pub(crate) parent: Option<Digest>,
    pub(crate) size: u64,
}

pub(crate) struct Store {
    db: Arc<redb::Database>,
    /// Once attached: the events of an update are written in its transaction (the outbox).
    events: StoreEvents,
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, ImagesError> {
    serde_json::to_vec(v).map_err(ImagesError::store)
}

fn parse<T: for<'de> Deserialize<'de>>(b: &[u8]) -> Result<T, ImagesError> {
    serde_json::from_slice(b).map_err(ImagesError::store)
}

impl Store {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Store> {
        let db = berth_service::open_store(dir)?;
        let tx = db.begin_write()?;
        tx.open_table(IMAGES)?;
        tx.open_table(REFS)?;
        tx.open_table(LAYERS)?;
        tx.open_table(SNAPSHOTS)?;
        tx.open_table(KEPT_RUN)?;
        // A store from before the index: the index is made from the images, once.
        let indexed = tx
            .list_multimap_tables()?
            .any(|t| t.name() == BUILD_CACHE.name());
        {
            let mut index = tx.open_multimap_table(BUILD_CACHE)?;
            if !indexed {
                let images = tx.open_table(IMAGES)?;
                for row in images.iter()? {
                    let (_, v) = row?;
                    let rec: ImageRecord = serde_json::from_slice(v.value())?;
                    if let Some(slot) = slot_of(&rec) {
                        index.insert(slot.as_str(), rec.id.to_string().as_str())?;
                    }
                }
            }
        }
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

    /// Records a RUN container its build keeps (see [`KEPT_RUN`]).
    pub(crate) fn keep_run_container(&self, id: &str) -> Result<(), ImagesError> {
        let tx = self.db.begin_write().map_err(ImagesError::store)?;
        tx.open_table(KEPT_RUN)
            .map_err(ImagesError::store)?
            .insert(id, 1)
            .map_err(ImagesError::store)?;
        tx.commit().map_err(ImagesError::store)
    }

    /// The kept RUN containers among `existing`; the others (removed since) are forgotten.
    pub(crate) fn kept_run_containers(
        &self,
        existing: &std::collections::HashSet<String>,
    ) -> Result<std::collections::HashSet<String>, ImagesError> {
        let tx = self.db.begin_write().map_err(ImagesError::store)?;
        let mut kept = std::collections::HashSet::new();
        {
            let mut t = tx.open_table(KEPT_RUN).map_err(ImagesError::store)?;
            let mut gone = Vec::new();
            for row in t.iter().map_err(ImagesError::store)? {
                let id = row.map_err(ImagesError::store)?.0.value().to_owned();
                if existing.contains(&id) {
                    kept.insert(id);
                } else {
                    gone.push(id);
                }
            }
            for id in gone {
                t.remove(id.as_str()).map_err(ImagesError::store)?;
            }
        }
        tx.commit().map_err(ImagesError::store)?;
        Ok(kept)
    }

    pub(crate) fn count(&self) -> Result<u64, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(IMAGES).map_err(ImagesError::store)?;
        t.len().map_err(ImagesError::store)
    }

    pub(crate) fn images(&self) -> Result<Vec<ImageRecord>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(IMAGES).map_err(ImagesError::store)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(ImagesError::store)? {
            let (_, v) = row.map_err(ImagesError::store)?;
            out.push(parse(v.value())?);
        }
        Ok(out)
    }

    pub(crate) fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(IMAGES).map_err(ImagesError::store)?;
        t.get(id.to_string().as_str())
            .map_err(ImagesError::store)?
            .map(|v| parse(v.value()))
            .transpose()
    }

    /// The build cache's hit: the newest image the step `key` made on `parent`.
    pub(crate) fn build_cache_hit(
        &self,
        parent: Option<&Digest>,
        key: &str,
    ) -> Result<Option<ImageRecord>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let index = tx
            .open_multimap_table(BUILD_CACHE)
            .map_err(ImagesError::store)?;
        let images = tx.open_table(IMAGES).map_err(ImagesError::store)?;
        let mut hit: Option<ImageRecord> = None;
        for id in index
            .get(cache_slot(parent, key).as_str())
            .map_err(ImagesError::store)?
        {
            let id = id.map_err(ImagesError::store)?;
            let Some(v) = images.get(id.value()).map_err(ImagesError::store)? else {
                continue;
            };
            let rec: ImageRecord = parse(v.value())?;
            let same = rec.parent.as_ref() == parent && rec.build_key.as_deref() == Some(key);
            if same && hit.as_ref().is_none_or(|h| rec.added_at > h.added_at) {
                hit = Some(rec);
            }
        }
        Ok(hit)
    }

    /// The image a fully qualified reference names.
    pub(crate) fn resolve(&self, reference: &str) -> Result<Option<Digest>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(REFS).map_err(ImagesError::store)?;
        t.get(reference)
            .map_err(ImagesError::store)?
            .map(|v| v.value().parse().map_err(ImagesError::store))
            .transpose()
    }

    pub(crate) fn layer(&self, chain_id: &Digest) -> Result<Option<LayerRecord>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(LAYERS).map_err(ImagesError::store)?;
        t.get(chain_id.to_string().as_str())
            .map_err(ImagesError::store)?
            .map(|v| parse(v.value()))
            .transpose()
    }

    pub(crate) fn layers(&self) -> Result<Vec<LayerRecord>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(LAYERS).map_err(ImagesError::store)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(ImagesError::store)? {
            let (_, v) = row.map_err(ImagesError::store)?;
            out.push(parse(v.value())?);
        }
        Ok(out)
    }

    pub(crate) fn snapshot(&self, key: &str) -> Result<Option<SnapshotRecord>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(SNAPSHOTS).map_err(ImagesError::store)?;
        t.get(key)
            .map_err(ImagesError::store)?
            .map(|v| parse(v.value()))
            .transpose()
    }

    pub(crate) fn snapshots(&self) -> Result<Vec<SnapshotRecord>, ImagesError> {
        let tx = self.db.begin_read().map_err(ImagesError::store)?;
        let t = tx.open_table(SNAPSHOTS).map_err(ImagesError::store)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(ImagesError::store)? {
            let (_, v) = row.map_err(ImagesError::store)?;
            out.push(parse(v.value())?);
        }
        Ok(out)
    }

    /// Applies `f` to the tables in one write transaction.
    pub(crate) fn update<T>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, ImagesError>,
    ) -> Result<T, ImagesError> {
        let tx = self.db.begin_write().map_err(ImagesError::store)?;
        let (out, events) = {
            let mut t = Tx {
                images: tx.open_table(IMAGES).map_err(ImagesError::store)?,
                refs: tx.open_table(REFS).map_err(ImagesError::store)?,
                layers: tx.open_table(LAYERS).map_err(ImagesError::store)?,
                snapshots: tx.open_table(SNAPSHOTS).map_err(ImagesError::store)?,
                build_cache: tx
                    .open_multimap_table(BUILD_CACHE)
                    .map_err(ImagesError::store)?,
                events: Vec::new(),
            };
            let out = f(&mut t)?;
            (out, t.events)
        };
        self.events
            .commit(tx, &events)
            .map_err(ImagesError::store)?;
        Ok(out)
    }
}

/// The tables inside one write transaction.
pub(crate) struct Tx<'a> {
    images: redb::Table<'a, &'static str, &'static [u8]>,
    refs: redb::Table<'a, &'static str, &'static str>,
    layers: redb::Table<'a, &'static str, &'static [u8]>,
    snapshots: redb::Table<'a, &'static str, &'static [u8]>,
    build_cache: redb::MultimapTable<'a, &'static str, &'static str>,
    events: Vec<Event>,
}

impl Tx<'_> {
    /// Events that report this transaction's change, stored with it.
    pub(crate) fn emit(&mut self, events: impl IntoIterator<Item = Event>) {
        self.events.extend(events);
    }

    pub(crate) fn image(&self, id: &Digest) -> Result<Option<ImageRecord>, ImagesError> {
        self.images
            .get(id.to_string().as_str())
            .map_err(ImagesError::store)?
            .map(|v| parse(v.value()))
            .transpose()
    }

    pub(crate) fn put_image(&mut self, rec: &ImageRecord) -> Result<(), ImagesError> {
        let id = rec.id.to_string();
        let before = self
            .images
            .insert(id.as_str(), json(rec)?.as_slice())
            .map_err(ImagesError::store)?
            .map(|v| parse::<ImageRecord>(v.value()))
            .transpose()?;
        let slot = slot_of(rec);
        // The same image made by another step (or by none) before: that step's slot goes.
        if let Some(old) = before.as_ref().and_then(slot_of)
            && Some(&old) != slot.as_ref()
        {
            self.build_cache
                .remove(old.as_str(), id.as_str())
                .map_err(ImagesError::store)?;
        }
        if let Some(slot) = slot {
            self.build_cache
                .insert(slot.as_str(), id.as_str())
                .map_err(ImagesError::store)?;
        }
        Ok(())
    }

    pub(crate) fn delete_image(&mut self, id: &Digest) -> Result<(), ImagesError> {
        let id = id.to_string();
        let gone = self
            .images
            .remove(id.as_str())
            .map_err(ImagesError::store)?
            .map(|v| parse::<ImageRecord>(v.value()))
            .transpose()?;
        if let Some(slot) = gone.as_ref().and_then(slot_of) {
            self.build_cache
                .remove(slot.as_str(), id.as_str())
                .map_err(ImagesError::store)?;
        }
        Ok(())
    }

    pub(crate) fn resolve(&self, reference: &str) -> Result<Option<Digest>, ImagesError> {
        self.refs
            .get(reference)
            .map_err(ImagesError::store)?
            .map(|v| v.value().parse().map_err(ImagesError::store))
            .transpose()
    }

    pub(crate) fn put_ref(&mut self, reference: &str, id: &Digest) -> Result<(), ImagesError> {
        self.refs
            .insert(reference, id.to_string().as_str())
            .map_err(ImagesError::store)?;
        Ok(())
    }

    pub(crate) fn delete_ref(&mut self, reference: &str) -> Result<(), ImagesError> {
        self.refs.remove(reference).map_err(ImagesError::store)?;
        Ok(())
    }

    pub(crate) fn put_layer(&mut self, rec: &LayerRecord) -> Result<(), ImagesError> {
        self.layers
            .insert(rec.chain_id.to_string().as_str(), json(rec)?.as_slice())
            .map_err(ImagesError::store)?;
        Ok(())
    }

    pub(crate) fn delete_layer(&mut self, chain_id: &Digest) -> Result<(), ImagesError> {
        self.layers
            .remove(chain_id.to_string().as_str())
            .map_err(ImagesError::store)?;
        Ok(())
    }

    pub(crate) fn snapshot(&self, key: &str) -> Result<Option<SnapshotRecord>, ImagesError> {
        self.snapshots
            .get(key)
            .map_err(ImagesError::store)?
            .map(|v| parse(v.value()))
            .transpose()
    }

    pub(crate) fn put_snapshot(&mut self, rec: &SnapshotRecord) -> Result<(), ImagesError> {
        self.snapshots
            .insert(rec.key.as_str(), json(rec)?.as_slice())
            .map_err(ImagesError::store)?;
        Ok(())
    }

    pub(crate) fn delete_snapshot(&mut self, key: &str) -> Result<(), ImagesError> {
        self.snapshots.remove(key).map_err(ImagesError::store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, parent: Option<&str>, key: Option<&str>, added_at: i64) -> ImageRecord {
        ImageRecord {
            id: Digest::sha256_of(id.as_bytes()),
            parent: parent.map(|p| Digest::sha256_of(p.as_bytes())),
            build_key: key.map(str::to_owned),
            added_at,
            repo_tags: Vec::new(),
            repo_digests: Vec::new(),
            manifest: None,
            chain: Vec::new(),
            diff_ids: Vec::new(),
            size: 0,
            created: None,
            blobs: Vec::new(),
            last_tag_time: None,
        }
    }

    fn put(store: &Store, recs: &[ImageRecord]) {
        store
            .update(|tx| recs.iter().try_for_each(|r| tx.put_image(r)))
            .unwrap();
    }

    fn hit(store: &Store, parent: &str, key: &str) -> Option<Digest> {
        let parent = Digest::sha256_of(parent.as_bytes());
        store
            .build_cache_hit(Some(&parent), key)
            .unwrap()
            .map(|r| r.id)
    }

    #[test]
    fn the_build_cache_hits_the_newest_image_of_a_step_on_its_parent() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        put(
            &store,
            &[
                rec("old", Some("base"), Some("k1"), 1),
                rec("new", Some("base"), Some("k1"), 2),
                rec("other", Some("elsewhere"), Some("k1"), 3),
                rec("pulled", None, None, 4),
            ],
        );
        assert_eq!(hit(&store, "base", "k1"), Some(Digest::sha256_of(b"new")));
        assert_eq!(hit(&store, "base", "k2"), None);
        assert_eq!(store.build_cache_hit(None, "k1").unwrap(), None);
        // The newest goes: the older one is the hit; then none.
        store
            .update(|tx| tx.delete_image(&Digest::sha256_of(b"new")))
            .unwrap();
        assert_eq!(hit(&store, "base", "k1"), Some(Digest::sha256_of(b"old")));
        store
            .update(|tx| tx.delete_image(&Digest::sha256_of(b"old")))
            .unwrap();
        assert_eq!(hit(&store, "base", "k1"), None);
        // An image put again by another step leaves the first step's slot.
        put(&store, &[rec("other", Some("base"), Some("k9"), 3)]);
        assert_eq!(hit(&store, "elsewhere", "k1"), None);
        assert_eq!(hit(&store, "base", "k9"), Some(Digest::sha256_of(b"other")));
    }

    #[test]
    fn a_store_from_before_the_index_is_indexed_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            put(&store, &[rec("built", Some("base"), Some("k1"), 1)]);
            let tx = store.db.begin_write().unwrap();
            tx.delete_multimap_table(BUILD_CACHE).unwrap();
            tx.commit().unwrap();
            assert!(store.build_cache_hit(None, "k1").is_err(), "no index");
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(hit(&store, "base", "k1"), Some(Digest::sha256_of(b"built")));
    }
}
