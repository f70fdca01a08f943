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
        let endpoint = self
            .registries
            .endpoints(&r)
            .pop()
            .expect("the registry itself is always an endpoint");
        let client = self.registries.client(&endpoint);
        let reference = oci_reference(&r.clone().with_default_tag(), &endpoint);
        let tags = client
            .list_tags(&reference, &spec.credentials.to_auth(), None, None)
            .await
            .map_err(|e| registry_error(&r, e))?
            .tags;
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
