//! The build cache's index for one build: the images that have a step key, by parent and key,
//! read from the store in one read transaction when the build first probes, instead of one
//! scan of every image per step. It is read again after a miss (the build commits that step,
//! and a later step, or another stage, may be its hit).

use std::collections::HashMap;

use berth_types::Digest;

use crate::{ImagesError, store::ImageRecord};

/// The newest image for each (parent, step key).
#[derive(Default)]
pub(crate) struct CacheIndex {
    by_key: Option<HashMap<(Option<Digest>, String), ImageRecord>>,
}

impl CacheIndex {
    /// The newest image made by the step `key` on `parent`; `load` lists the images when the
    /// index is not read yet (or any more).
    pub(crate) fn lookup(
        &mut self,
        parent: Option<&Digest>,
        key: &str,
        load: impl FnOnce() -> Result<Vec<ImageRecord>, ImagesError>,
    ) -> Result<Option<ImageRecord>, ImagesError> {
        let map = match &mut self.by_key {
            Some(m) => m,
            slot @ None => slot.insert(index(load()?)),
        };
        // The key is borrowed for the look-up: a tuple key needs an owned one.
        let hit = map.get(&(parent.cloned(), key.to_owned())).cloned();
        if hit.is_none() {
            self.by_key = None;
        }
        Ok(hit)
    }
}

fn index(images: Vec<ImageRecord>) -> HashMap<(Option<Digest>, String), ImageRecord> {
    let mut map: HashMap<(Option<Digest>, String), ImageRecord> = HashMap::new();
    for rec in images {
        let Some(key) = rec.build_key.clone() else {
            continue;
        };
        match map.entry((rec.parent.clone(), key)) {
            std::collections::hash_map::Entry::Occupied(mut e) => {
                if rec.added_at > e.get().added_at {
                    e.insert(rec);
                }
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(rec);
            }
        }
    }
    map
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

    #[test]
    fn one_read_while_steps_hit_and_a_new_read_after_a_miss() {
        let mut idx = CacheIndex::default();
        let loads = std::cell::Cell::new(0);
        let images = || {
            loads.set(loads.get() + 1);
            Ok(vec![
                rec("old", Some("base"), Some("k1"), 1),
                rec("new", Some("base"), Some("k1"), 2),
                rec("next", Some("new"), Some("k2"), 3),
                rec("pulled", None, None, 4),
            ])
        };
        let base = Digest::sha256_of(b"base");
        let hit = idx.lookup(Some(&base), "k1", images).unwrap().unwrap();
        assert_eq!(hit.id, Digest::sha256_of(b"new"), "the newest of two");
        let hit = idx.lookup(Some(&hit.id), "k2", images).unwrap().unwrap();
        assert_eq!(hit.id, Digest::sha256_of(b"next"));
        assert_eq!(loads.get(), 1, "one read for the hits");
        assert!(idx.lookup(Some(&hit.id), "k3", images).unwrap().is_none());
        // The miss's step is committed: the next probe reads the images again.
        assert!(idx.lookup(None, "k1", images).unwrap().is_none());
        assert_eq!(loads.get(), 2, "read again after the miss");
        assert!(idx.lookup(Some(&base), "k1", images).unwrap().is_some());
        assert_eq!(loads.get(), 3, "and again after the next one");
    }
}
