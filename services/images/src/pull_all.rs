//! `docker pull --all-tags`: every tag of a repository, one after another.

use std::sync::Arc;

use crate::{
    ImagesError,
    progress::ProgressSink,
    pull::PullSpec,
    registry::{oci_reference, registry_error},
    service::ImageService,
};

impl ImageService {
    /// Pulls every tag of `spec.reference`'s repository (which must carry no tag or digest).
    pub(crate) async fn pull_all_tags(
        self: &Arc<Self>,
        spec: PullSpec,
        progress: ProgressSink,
    ) -> Result<(), ImagesError> {
        let r = spec.reference.clone();
        if !r.is_name_only() {
            return Err(ImagesError::InvalidArgument(
                "tag can't be used with --all-tags/-a".to_owned(),
            ));
        }
        // As dockerd: Docker Hub mirrors first, then the registry itself; the first that
        // answers lists the tags.
        let mut tags = None;
        let mut last_error = None;
        for endpoint in self.registries.endpoints(&r) {
            let client = self.registries.client(&endpoint);
            let reference = oci_reference(&r.clone().with_default_tag(), &endpoint);
            match client
                .list_tags(&reference, &spec.credentials.to_auth(), None, None)
                .await
            {
                Ok(list) => {
                    tags = Some(list.tags);
                    break;
                }
                Err(e) => {
                    tracing::debug!(registry = endpoint.registry, error = %e, "listing tags");
                    last_error = Some(e);
                }
            }
        }
        let tags = match (tags, last_error) {
            (Some(tags), _) => tags,
            (None, Some(e)) => return Err(registry_error(&r, e)),
            (None, None) => Vec::new(),
        };
        if tags.is_empty() {
            return Err(ImagesError::NotFound(format!(
                "repository {} has no tags",
                r.familiar_name()
            )));
        }
        for tag in tags {
            let tagged = r.clone().with_tag(&tag).map_err(|e| {
                ImagesError::Registry(format!("registry listed an invalid tag {tag:?}: {e}"))
            })?;
            self.pull(
                PullSpec {
                    reference: tagged,
                    platform: spec.platform.clone(),
                    credentials: spec.credentials.clone(),
                },
                progress.clone(),
            )
            .await?;
        }
        Ok(())
    }
}
