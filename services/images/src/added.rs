//! What one `load` or `import` adds to the store before its images are recorded: blobs in the
//! content store and unpacked layers. When the operation ends, whatever no image (or snapshot)
//! uses is removed again, so a failed operation leaves nothing behind and a successful one keeps
//! only what its images need.

use std::collections::HashSet;

use berth_types::{Digest, Sha256Digester};

use crate::{ImagesError, compression, layers::chain_ids, service::ImageService};

/// Blobs and layers an operation created (not those that existed before).
#[derive(Debug, Default)]
pub(crate) struct Added {
    pub(crate) blobs: Vec<Digest>,
    pub(crate) layers: Vec<Digest>,
}

impl ImageService {
    /// Stores small bytes (a config, a manifest) whose digest is known or computed.
    pub(crate) fn put_tracked(
        &self,
        added: &mut Added,
        bytes: &[u8],
        digest: Option<&Digest>,
    ) -> Result<Digest, ImagesError> {
        let want = digest.cloned().unwrap_or_else(|| Digest::sha256_of(bytes));
        if self.content.exists(&want) {
            return Ok(want);
        }
        let d = self.content.put(bytes, Some(&want))?;
        added.blobs.push(d.clone());
        Ok(d)
    }

    /// Unpacks the layer blobs `blobs` (bottom first) as the layers `diff_ids`, in chain order;
    /// a blob whose content is not its diff_id fails. A layer unpacked already is not unpacked
    /// again, but with `verify_existing` its blob is still checked against the diff_id (the
    /// blob is kept with the image, and saved and pushed as that layer). Returns the chain IDs
    /// and the unpacked size. Blocking.
    pub(crate) fn unpack_chain(
        &self,
        diff_ids: &[Digest],
        blobs: &[Digest],
        verify_existing: bool,
        added: &mut Added,
    ) -> Result<(Vec<Digest>, u64), ImagesError> {
        let chain = chain_ids(diff_ids);
        let mut size = 0;
        for (i, blob) in blobs.iter().enumerate() {
            let existed =
                self.store.layer(&chain[i])?.is_some() && self.layers.diff_dir(&chain[i]).is_dir();
            if existed && verify_existing {
                self.verify_diff_id(blob, &diff_ids[i])?;
            }
            let file = self.content.open_blob(blob)?;
            let parent = i.checked_sub(1).map(|p| chain[p].clone());
            let rec = self
                .layers
                .ensure(&self.store, &chain[i], &diff_ids[i], parent.as_ref(), file)
                .map_err(|e| match e {
                    ImagesError::Verify(m) => ImagesError::InvalidArgument(m),
                    other => other,
                })?;
            if !existed {
                added.layers.push(chain[i].clone());
            }
            size += rec.size;
        }
        Ok((chain, size))
    }

    /// Checks that the blob's uncompressed content is the layer `diff_id`, without unpacking.
    fn verify_diff_id(&self, blob: &Digest, diff_id: &Digest) -> Result<(), ImagesError> {
        let path = self.content.path(blob);
        let file = self.content.open_blob(blob)?;
        let mut d = compression::decompressed(file)?;
        let mut digester = Sha256Digester::new();
        std::io::copy(&mut d.reader, &mut digester).map_err(|e| ImagesError::io(&path, e))?;
        let actual = digester.finish();
        if actual != *diff_id {
            return Err(ImagesError::InvalidArgument(format!(
                "failed to register layer: layer content {actual} does not match the image's diff_id {diff_id}"
            )));
        }
        Ok(())
    }

    /// Removes the blobs and layers of `added` that no image or snapshot uses.
    pub(crate) fn release(&self, added: Added) {
        let Ok(images) = self.store.images() else {
            tracing::warn!("cannot list images: what a failed operation added stays");
            return;
        };
        let used_blobs: HashSet<&Digest> = images
            .iter()
            .flat_map(|i| i.blobs.iter().chain([&i.id]))
            .collect();
        let used_layers: HashSet<&Digest> = images.iter().flat_map(|i| &i.chain).collect();
        for c in added.layers.iter().rev() {
            if used_layers.contains(c) || self.snapshot_uses(c).unwrap_or(true) {
                continue;
            }
            if let Err(e) = self.layers.remove(&self.store, c) {
                tracing::warn!(layer = %c, error = %e, "removing an unused layer");
            }
        }
        for b in &added.blobs {
            if !used_blobs.contains(b)
                && let Err(e) = self.content.delete(b)
            {
                tracing::warn!(blob = %b, error = %e, "removing an unused blob");
            }
        }
    }
}
