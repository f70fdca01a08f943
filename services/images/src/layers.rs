//! Unpacked layers: `overlay2/<chain-id hex>/diff`, one per chain ID, shared by every image
//! (and snapshot) whose chain contains it. A layer is unpacked into a private directory and
//! renamed into place only once complete and verified against its diff_id.

use std::path::{Path, PathBuf};

use berth_types::Digest;

use crate::{
    ImagesError,
    store::{LayerRecord, Store},
    unpack,
};

/// `chain(0) = diff(0)`, `chain(n) = sha256(chain(n-1) + " " + diff(n))` (OCI image spec).
pub(crate) fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(parent) => Digest::sha256_of(format!("{parent} {d}")),
        };
        out.push(next);
    }
    out
}

#[derive(Debug, Clone)]
pub(crate) struct LayerDirs {
    root: PathBuf,
}

impl LayerDirs {
    pub(crate) fn new(root: &Path) -> Result<LayerDirs, ImagesError> {
        let root = root.join("overlay2");
        std::fs::create_dir_all(&root).map_err(|e| ImagesError::io(&root, e))?;
        // Half-unpacked layers from an interrupted run never entered the store.
        if let Ok(entries) = std::fs::read_dir(&root) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("tmp-") {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(LayerDirs { root })
    }

    /// The layer's `diff` directory (a lower dir of overlay mounts).
    pub(crate) fn diff_dir(&self, chain_id: &Digest) -> PathBuf {
        self.root.join(chain_id.hex()).join("diff")
    }

    /// Unpacks `blob` as the layer `chain_id` unless it exists; records it in the store.
    /// Blocking: call from `spawn_blocking`.
    pub(crate) fn ensure(
        &self,
        store: &Store,
        chain_id: &Digest,
        diff_id: &Digest,
        parent: Option<&Digest>,
        blob: impl std::io::Read,
    ) -> Result<LayerRecord, ImagesError> {
        if let Some(rec) = store.layer(chain_id)?
            && self.diff_dir(chain_id).is_dir()
        {
            return Ok(rec);
        }
        let tmp = self.root.join(format!("tmp-{}", uuid::Uuid::new_v4()));
        let diff = tmp.join("diff");
        std::fs::create_dir_all(&diff).map_err(|e| ImagesError::io(&diff, e))?;
        let result = unpack::unpack_layer(blob, &diff);
        let stats = match result {
            Ok(s) => s,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                if let Some(msg) = e.storage_full() {
                    return Err(ImagesError::NoSpace(format!(
                        "failed to register layer: {msg}"
                    )));
                }
                return Err(ImagesError::Verify(format!(
                    "failed to register layer: {e}"
                )));
            }
        };
        if stats.diff_id != diff_id.to_string() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ImagesError::Verify(format!(
                "failed to register layer: layer content {} does not match the image's diff_id {diff_id}",
                stats.diff_id
            )));
        }
        // Durable before it is renamed into place and recorded: the unpacked files and
        // directories (one syncfs of the layer store's filesystem), then, after the rename,
        // the directory that holds it.
        let durable = std::fs::File::open(&tmp)
            .and_then(|d| nix::unistd::syncfs(&d).map_err(std::io::Error::from));
        if let Err(e) = durable {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(ImagesError::io(&tmp, e));
        }
        let fin = self.root.join(chain_id.hex());
        if let Err(e) = std::fs::rename(&tmp, &fin) {
            // Another pull unpacked the same layer meanwhile: keep theirs.
            let _ = std::fs::remove_dir_all(&tmp);
            if !fin.join("diff").is_dir() {
                return Err(ImagesError::io(&fin, e));
            }
        }
        std::fs::File::open(&self.root)
            .and_then(|d| d.sync_all())
            .map_err(|e| ImagesError::io(&self.root, e))?;
        let rec = LayerRecord {
            chain_id: chain_id.clone(),
            diff_id: diff_id.clone(),
            parent: parent.cloned(),
            size: stats.size,
        };
        store.update(|tx| tx.put_layer(&rec))?;
        Ok(rec)
    }

    /// Removes a layer's directory and record.
    pub(crate) fn remove(&self, store: &Store, chain_id: &Digest) -> Result<(), ImagesError> {
        store.update(|tx| tx.delete_layer(chain_id))?;
        let dir = self.root.join(chain_id.hex());
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(ImagesError::io(&dir, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let a = Digest::sha256_of(b"a");
        let b = Digest::sha256_of(b"b");
        let chain = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(chain[0], a);
        assert_eq!(chain[1], Digest::sha256_of(format!("{a} {b}")));
        assert!(chain_ids(&[]).is_empty());
    }
}
