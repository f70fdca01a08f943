//! docker create: the spec checked, the image's defaults merged in, the record, the snapshot.

use std::sync::Arc;

use berth_proto::{images::v1 as images, runtime::v1 as pb};

use crate::{
    container::{Container, State, now_nanos},
    container_error::ContainerError,
    lifecycle::Containers,
    names,
    spec::{self, ImageDefaults},
};

/// The image's size, from the images service's answer.
pub(crate) fn image_size(inspected: &images::InspectResponse) -> i64 {
    inspected.image.as_ref().map_or(0, |i| i.size)
}

impl Containers {
    /// docker create.
    pub(crate) async fn create(
        self: &Arc<Self>,
        req: &pb::CreateRequest,
    ) -> Result<pb::CreateResponse, ContainerError> {
        let mut spec = req.spec.clone().unwrap_or_default();
        if spec.image.is_empty() {
            return Err(ContainerError::invalid("no image specified"));
        }
        if let Some(field) = spec::unsupported(&spec) {
            return Err(ContainerError::invalid(format!(
                "{field} is not supported by Berth yet"
            )));
        }
        let requested = if req.name.is_empty() {
            None
        } else {
            Some(names::validate(&req.name)?)
        };
        let inspected = self
            .images_client()
            .inspect(images::InspectRequest {
                name: spec.image.clone(),
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner();
        let defaults: ImageDefaults = inspected
            .image
            .as_ref()
            .and_then(|i| i.config.clone())
            .unwrap_or_default();
        let id = names::new_id();
        let argv = spec::merge_image(
            &mut spec,
            &defaults,
            &id[..12],
            &self.log_driver,
            &self.log_opts,
        )?;
        let warnings = spec::warnings(&spec);
        let (path, args) = argv
            .split_first()
            .map(|(p, a)| (p.clone(), a.to_vec()))
            .unwrap_or_default();

        let _guard = self.lock.lock().await;
        let all = self.store.all()?;
        let name = match requested {
            Some(n) => {
                if let Some(other) = all.iter().find(|c| c.name == n) {
                    return Err(names::conflict(&n, &other.id));
                }
                n
            }
            None => (0..)
                .map(|retry| format!("/{}", names::random_name(retry)))
                .find(|n| !all.iter().any(|c| &c.name == n))
                .unwrap_or_default(),
        };
        let image = spec.image.clone();
        let mut c = Container {
            id: id.clone(),
            name,
            created: now_nanos(),
            spec,
            path,
            args,
            image_id: inspected.id.clone(),
            rootfs: None,
            state: State::default(),
            restart_count: 0,
        };
        self.store.put(&c)?;
        let prepared = self
            .images_client()
            .prepare(images::PrepareRequest {
                key: id.clone(),
                image,
            })
            .await;
        let prepared = match prepared {
            Ok(p) => p.into_inner(),
            Err(e) => {
                self.store.delete(&id)?;
                return Err(ContainerError::upstream(&e));
            }
        };
        let Some(m) = prepared.mounts.first() else {
            self.store.delete(&id)?;
            return Err(ContainerError::Internal(anyhow::anyhow!(
                "images.Prepare returned no mount"
            )));
        };
        c.rootfs = Some(pb::RootfsMount {
            r#type: m.r#type.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        });
        if !prepared.image_id.is_empty() {
            c.image_id = prepared.image_id;
        }
        self.store.put(&c)?;
        self.bump();
        self.event(&c, "create", &[]);
        Ok(pb::CreateResponse { id, warnings })
    }
}
