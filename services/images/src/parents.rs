//! The classic builder's cache is its intermediate images: untagged images that are another
//! image's parent. As in moby (`imageDeleteHelper` with `prune`, `ImagesPrune`), they are
//! kept while an image below them lives, and go with the last image that needs them: deleting
//! an image deletes its parent when nothing else keeps it (a reference, another child, a
//! container), and so on up the chain.

use std::collections::HashSet;

use berth_proto::images::v1 as pb;
use berth_types::Digest;

use crate::{ImagesError, service::ImageService, store::ImageRecord};

impl ImageService {
    /// Deletes `parent` and its ancestors while nothing keeps them (moby deletes them quietly:
    /// the first one kept ends the walk).
    pub(crate) fn prune_parents(
        &self,
        parent: Option<Digest>,
    ) -> Result<Vec<pb::Deleted>, ImagesError> {
        let mut out = Vec::new();
        let mut next = parent;
        while let Some(id) = next {
            let Some(rec) = self.store.image(&id)? else {
                break;
            };
            let images = self.store.images()?;
            if is_referenced(&rec)
                || has_children(&images, &id)
                || !self.snapshots_of(&id)?.is_empty()
            {
                break;
            }
            next = rec.parent.clone();
            out.extend(self.delete_image(&rec)?);
        }
        Ok(out)
    }
}

pub(crate) fn is_referenced(rec: &ImageRecord) -> bool {
    !rec.repo_tags.is_empty() || !rec.repo_digests.is_empty()
}

pub(crate) fn has_children(images: &[ImageRecord], id: &Digest) -> bool {
    images.iter().any(|i| i.parent.as_ref() == Some(id))
}

/// The intermediate images (untagged parents) among `images`: a prune leaves them to the
/// image they lead to, as moby's `ImagesPrune` does.
pub(crate) fn intermediates(images: &[ImageRecord]) -> HashSet<Digest> {
    images
        .iter()
        .filter(|i| !is_referenced(i) && has_children(images, &i.id))
        .map(|i| i.id.clone())
        .collect()
}
