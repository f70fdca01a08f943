//! Which containers use their volumes now: the volumes service is told at each start and each
//! exit (it mounts a volume's own filesystem, the local driver's `type`/`device`/`o`, for its
//! first user and unmounts it after the last), and at start the runtime makes its record agree
//! with which containers run.

use std::collections::BTreeSet;

use berth_proto::volumes::v1 as volumes;

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

/// The names of the container's volumes.
pub(crate) fn volume_names(c: &Container) -> Vec<String> {
    let names: BTreeSet<&str> = c
        .mount_points
        .iter()
        .filter(|m| !m.name.is_empty())
        .map(|m| m.name.as_str())
        .collect();
    names.into_iter().map(str::to_owned).collect()
}

impl Containers {
    /// The container starts using `names` (their filesystems mounted if need be).
    pub(crate) async fn mount_volumes(
        &self,
        id: &str,
        names: Vec<String>,
    ) -> Result<(), ContainerError> {
        if names.is_empty() {
            return Ok(());
        }
        self.volumes_client()
            .mount(volumes::MountRequest {
                container_id: id.to_owned(),
                names,
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?;
        Ok(())
    }

    /// The container stops using `names` (all its volumes when empty). A failure is logged:
    /// the runtime's next start puts it right.
    pub(crate) async fn unmount_volumes(&self, id: &str, names: Vec<String>) {
        if let Err(e) = self
            .volumes_client()
            .unmount(volumes::UnmountRequest {
                container_id: id.to_owned(),
                names,
            })
            .await
        {
            tracing::warn!(error = %e, id, "telling volumes a container stopped using them");
        }
    }

    /// At start, under the lifecycle lock (so no start or exit runs meanwhile): each running
    /// container is a user of its volumes, and nothing else is.
    pub(crate) async fn reconcile_volume_users(&self) {
        let _guard = self.lock.lock().await;
        let vols = match self
            .volumes_client()
            .list(volumes::ListRequest::default())
            .await
        {
            Ok(r) => r.into_inner().volumes,
            Err(e) => {
                tracing::warn!(error = %e, "volume users not reconciled");
                return;
            }
        };
        let recorded = match self.store.all() {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "volume users: reading the store");
                return;
            }
        };
        let running: BTreeSet<&str> = recorded
            .iter()
            .filter(|c| c.state.running())
            .map(|c| c.id.as_str())
            .collect();
        for v in &vols {
            for id in v
                .mounted_by
                .iter()
                .filter(|id| !running.contains(id.as_str()))
            {
                self.unmount_volumes(id, vec![v.name.clone()]).await;
            }
        }
        for c in recorded.iter().filter(|c| c.state.running()) {
            let missing: Vec<String> = volume_names(c)
                .into_iter()
                .filter(|n| {
                    !vols
                        .iter()
                        .any(|v| v.name == *n && v.mounted_by.contains(&c.id))
                })
                .collect();
            if let Err(e) = self.mount_volumes(&c.id, missing).await {
                tracing::warn!(error = %e, id = %c.id, "mounting a running container's volumes");
            }
        }
    }
}
