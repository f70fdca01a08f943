//! docker pause and unpause: the container's cgroup frozen and thawed through
//! `berth_cgroup` (the v1 freezer where the host mounts it, else v2 `cgroup.freeze`), and the
//! record's `paused` flag, with dockerd's errors and events.

use berth_cgroup::Cgroup;
use berth_types::ErrorKind;

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

/// The container's cgroup below every hierarchy's root: the shim makes it at start, the
/// runtime pauses, updates and reads it.
pub(crate) fn cgroup_path(id: &str) -> String {
    format!("berth/{id}")
}

impl Containers {
    /// The container's cgroup in every hierarchy.
    pub(crate) fn cgroup(c: &Container) -> Result<Cgroup, ContainerError> {
        Cgroup::at(&cgroup_path(&c.id)).map_err(|e| ContainerError::Internal(e.into()))
    }

    /// docker pause.
    pub(crate) async fn pause(&self, id: &str) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let mut c = self.find(id)?;
        if !c.state.running() {
            return Err(ContainerError::conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        if c.state.paused {
            return Err(ContainerError::conflict(format!(
                "Container {} is already paused",
                c.id
            )));
        }
        set_frozen(&c, true)
            .await
            .map_err(|e| internal(format!("Cannot pause container {}: {e}", c.id)))?;
        c.state.paused = true;
        self.store
            .put_with(&c, &self.container_event(&c, "pause", &[]))?;
        self.bump();
        Ok(())
    }

    /// docker unpause.
    pub(crate) async fn unpause(&self, id: &str) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let mut c = self.find(id)?;
        if !(c.state.running() && c.state.paused) {
            // Untyped in dockerd: a 500.
            return Err(internal(format!("Container {} is not paused", c.id)));
        }
        set_frozen(&c, false)
            .await
            .map_err(|e| internal(format!("Cannot unpause container {}: {e}", c.id)))?;
        c.state.paused = false;
        self.store
            .put_with(&c, &self.container_event(&c, "unpause", &[]))?;
        self.bump();
        Ok(())
    }

    /// After a signal that ends the container: thaws it if paused, so that the signal is
    /// delivered (the v1 freezer holds even SIGKILL). No event, as dockerd.
    pub(crate) async fn thaw_for_exit(&self, id: &str) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let Some(mut c) = self.store.get(id)? else {
            return Ok(());
        };
        if !c.state.paused {
            return Ok(());
        }
        set_frozen(&c, false)
            .await
            .map_err(|e| internal(format!("Cannot unpause container {}: {e}", c.id)))?;
        c.state.paused = false;
        self.store.put(&c)?;
        self.bump();
        Ok(())
    }
}

fn internal(message: String) -> ContainerError {
    ContainerError::new(ErrorKind::Internal, message)
}

/// Freezes or thaws in a blocking task (the kernel may take a while to freeze).
async fn set_frozen(c: &Container, frozen: bool) -> Result<(), String> {
    let cg = Containers::cgroup(c).map_err(|e| e.to_string())?;
    tokio::task::spawn_blocking(move || cg.set_frozen(frozen))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}
