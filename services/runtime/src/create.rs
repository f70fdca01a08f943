//! docker create: the spec checked, the image's defaults merged in, the record, the snapshot.

use std::sync::Arc;

use berth_proto::{images::v1 as images, runtime::v1 as pb};
use berth_service::Channel;

use crate::{
    container::{Container, State, now_nanos},
    container_error::ContainerError,
    failpoint,
    lifecycle::Containers,
    names,
    spec::{self, ImageDefaults},
};

/// The image's size, from the images service's answer.
pub(crate) fn image_size(inspected: &images::InspectResponse) -> i64 {
    inspected.image.as_ref().map_or(0, |i| i.size)
}

/// A create under way, in `Containers::creating` until dropped (after the record is written,
/// or the create failed).
struct Creating<'a> {
    containers: &'a Containers,
    id: String,
}

impl<'a> Creating<'a> {
    fn new(containers: &'a Containers, id: &str) -> Creating<'a> {
        containers
            .creating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.to_owned());
        Creating {
            containers,
            id: id.to_owned(),
        }
    }
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.containers
            .creating
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&self.id);
    }
}

impl Containers {
    /// Records a new container with its name, in one transaction.
    fn record(&self, c: &Container) -> Result<(), ContainerError> {
        match self
            .store
            .create(c, &self.container_event(c, "create", &[]))?
        {
            Ok(()) => Ok(()),
            Err(other) => Err(names::conflict(&c.name, &other)),
        }
    }

    /// Removes a container's snapshot. While the images service cannot be reached (restarted,
    /// say) the removal is retried in the background, for a while; what is still left then
    /// is collected at the runtime's next start.
    pub(crate) async fn remove_snapshot(&self, id: &str) {
        let client = self.images_client();
        if let Err(e) = remove_snapshot_with(client.clone(), id).await {
            tracing::warn!(error = %e, id, "removing a snapshot; retried in the background");
            tokio::spawn(retry_snapshot_removal(client, id.to_owned()));
        }
    }

    /// docker create.
    pub(crate) async fn create(
        self: &Arc<Self>,
        req: &pb::CreateRequest,
    ) -> Result<pb::CreateResponse, ContainerError> {
        let mut spec = req.spec.clone().unwrap_or_default();
        if spec.image.is_empty() {
            return Err(ContainerError::invalid("no image specified"));
        }
        if let Some(e) = spec
            .security
            .iter()
            .flat_map(|s| s.sysctls.keys())
            .find_map(|k| spec::sysctl_error(&spec, k))
        {
            return Err(ContainerError::invalid(e));
        }
        if let Some(sec) = &spec.security {
            // A bad profile is refused now rather than at start; the program is cached.
            self.seccomp
                .check(sec, spec::capabilities(sec).as_deref())?;
        }
        let mut limit_warnings = Vec::new();
        if let Some(r) = spec.resources.as_mut() {
            let host = crate::limits::Host {
                cgroups: &self.cgroups,
                cpus: self.cpus,
                update: false,
            };
            limit_warnings = crate::limits::check(r, &host).map_err(ContainerError::invalid)?;
        }
        crate::cgroup_place::resolve(&mut spec, &self.cgroups).map_err(ContainerError::invalid)?;
        crate::cgroup_place::check_parent(&spec, self.cgroups.driver)
            .map_err(ContainerError::invalid)?;
        if let Some(field) = spec::unsupported(&spec) {
            return Err(ContainerError::invalid(format!(
                "{field} is not supported by Berth yet"
            )));
        }
        self.resolve_links(&mut spec)?;
        let requested = if req.name.is_empty() {
            None
        } else {
            let n = names::validate(&req.name)?;
            if let Some(other) = self.store.id_by_name(n.trim_start_matches('/'))? {
                return Err(names::conflict(&n, &other));
            }
            Some(n)
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
        let warnings = limit_warnings;
        let (path, args) = argv
            .split_first()
            .map(|(p, a)| (p.clone(), a.to_vec()))
            .unwrap_or_default();
        // The snapshot first: a container is recorded only with its root filesystem. A
        // snapshot left by a create that died before the record is collected at the next
        // start (`Containers::collect_garbage`).
        let _creating = Creating::new(self, &id);
        let prepared = self
            .images_client()
            .prepare(images::PrepareRequest {
                key: id.clone(),
                image: spec.image.clone(),
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner();
        failpoint::hit("create-after-snapshot");
        let rootfs = prepared.mounts.first().map(|m| pb::RootfsMount {
            r#type: m.r#type.clone(),
            source: m.source.clone(),
            options: m.options.clone(),
        });
        let mount_points = match self.resolve_mounts(&id, &spec, rootfs.as_ref()).await {
            Ok(m) => m,
            Err(e) => {
                self.remove_snapshot(&id).await;
                return Err(e);
            }
        };
        let image_id = if prepared.image_id.is_empty() {
            inspected.id.clone()
        } else {
            prepared.image_id
        };
        let mut c = Container {
            id: id.clone(),
            name: String::new(),
            created: now_nanos(),
            spec,
            path,
            args,
            image_id,
            rootfs,
            state: State::default(),
            restart_count: 0,
            network: None,
            mount_points,
        };
        let recorded = match (&c.rootfs, requested) {
            (None, _) => Err(ContainerError::Internal(anyhow::anyhow!(
                "images.Prepare returned no mount"
            ))),
            (Some(_), Some(n)) => {
                c.name = n;
                self.record(&c)
            }
            (Some(_), None) => {
                // A random name; another try when it is taken.
                let mut r = Ok(());
                for retry in 0..10 {
                    c.name = format!("/{}", names::random_name(retry));
                    r = self.record(&c);
                    if r.is_ok() {
                        break;
                    }
                }
                r
            }
        };
        if let Err(e) = recorded {
            self.release_volumes(&id, true).await;
            self.remove_snapshot(&id).await;
            return Err(e);
        }
        failpoint::hit("create-after-record");
        self.bump(&id);
        Ok(pb::CreateResponse { id, warnings })
    }
}

/// One removal of the snapshot `key`; one already gone counts as removed.
async fn remove_snapshot_with(
    mut client: images::images_client::ImagesClient<Channel>,
    key: &str,
) -> Result<(), tonic::Status> {
    match client
        .remove_snapshot(images::SnapshotKey {
            key: key.to_owned(),
        })
        .await
    {
        Err(e) if e.code() != tonic::Code::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The delays between retries of a snapshot removal: doubling from 1 s up to a minute, about
/// a quarter of an hour in all.
fn snapshot_retry_delays() -> impl Iterator<Item = std::time::Duration> {
    (0..20).map(|i| {
        std::time::Duration::from_secs(1u64 << i.min(6)).min(std::time::Duration::from_secs(60))
    })
}

async fn retry_snapshot_removal(client: images::images_client::ImagesClient<Channel>, key: String) {
    for delay in snapshot_retry_delays() {
        tokio::time::sleep(delay).await;
        match remove_snapshot_with(client.clone(), &key).await {
            Ok(()) => {
                tracing::info!(key, "removed a snapshot after the images service came back");
                return;
            }
            Err(e) => tracing::debug!(error = %e, key, "removing a snapshot: still failing"),
        }
    }
    tracing::warn!(
        key,
        "a snapshot is left for the next start's garbage collection"
    );
}

#[cfg(test)]
mod snapshot_retry_tests {
    #[test]
    fn retries_back_off_to_a_minute_for_about_a_quarter_hour() {
        let d: Vec<u64> = super::snapshot_retry_delays()
            .map(|d| d.as_secs())
            .collect();
        assert_eq!(&d[..8], &[1, 2, 4, 8, 16, 32, 60, 60]);
        let total: u64 = d.iter().sum();
        assert!((600..=1200).contains(&total), "{total}");
    }
}
