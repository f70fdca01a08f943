//! docker pause and unpause: the container's cgroup frozen and thawed through
//! `berth_cgroup` (the v1 freezer where the host mounts it, else v2 `cgroup.freeze`), and the
//! record's `paused` flag, with dockerd's errors and events.

use std::{future::Future, sync::Arc};

use berth_cgroup::Cgroup;
use berth_types::ErrorKind;

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

impl Containers {
    /// The container's cgroup in every hierarchy (where its last start placed it): the shim
    /// makes it at start, the runtime pauses, updates and reads it.
    pub(crate) fn cgroup(c: &Container) -> Result<Cgroup, ContainerError> {
        let (path, keep) = crate::cgroup_place::recorded(c);
        Cgroup::at(&path)
            .map(|cg| cg.keeping_parents(keep))
            .map_err(|e| ContainerError::Internal(e.into()))
    }

    /// The lock that serializes freezing and thawing one container (pause, unpause, the
    /// thaw before an ending signal), so that none of them holds the records' lock while the
    /// kernel freezes the cgroup.
    fn freezer(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.freeze_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(id.to_owned())
            .or_default()
            .clone()
    }

    /// Forgets a removed container's freezer lock.
    pub(crate) fn forget_freezer(&self, id: &str) {
        self.freeze_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(id);
    }

    /// The record of container `id` (a full ID), which may have been removed meanwhile.
    fn current(&self, id: &str) -> Result<Container, ContainerError> {
        self.store
            .get(id)?
            .ok_or_else(|| ContainerError::not_found(format!("No such container: {id}")))
    }

    /// docker pause. The freeze (which may take seconds) runs outside the records' lock, so
    /// that the rest of the engine goes on meanwhile.
    pub(crate) async fn pause(&self, id: &str) -> Result<(), ContainerError> {
        self.pause_with(id, set_frozen).await
    }

    /// docker pause with `freeze` freezing and thawing the cgroup (the tests' seam).
    async fn pause_with<F: Future<Output = Result<(), String>>>(
        &self,
        id: &str,
        freeze: impl Fn(&Container, bool) -> F,
    ) -> Result<(), ContainerError> {
        let id = self.find(id)?.id;
        let freezer = self.freezer(&id);
        let _freezing = freezer.lock().await;
        let c = self.current(&id)?;
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
        freeze(&c, true)
            .await
            .map_err(|e| internal(format!("Cannot pause container {}: {e}", c.id)))?;
        let _guard = self.lock.lock().await;
        let mut now = self.current(&id)?;
        if !(now.state.running() && now.state.exits == c.state.exits) {
            // It ended while freezing: nothing of that run is left to pause.
            let _ = freeze(&c, false).await;
            return Err(ContainerError::conflict(format!(
                "container {} is not running",
                c.id
            )));
        }
        now.state.paused = true;
        self.store
            .put_with(&now, &self.container_event(&now, "pause", &[]))?;
        self.bump(&now.id);
        Ok(())
    }

    /// docker unpause.
    pub(crate) async fn unpause(&self, id: &str) -> Result<(), ContainerError> {
        let id = self.find(id)?.id;
        let freezer = self.freezer(&id);
        let _thawing = freezer.lock().await;
        let c = self.current(&id)?;
        if !(c.state.running() && c.state.paused) {
            // Untyped in dockerd: a 500.
            return Err(internal(format!("Container {} is not paused", c.id)));
        }
        set_frozen(&c, false)
            .await
            .map_err(|e| internal(format!("Cannot unpause container {}: {e}", c.id)))?;
        let _guard = self.lock.lock().await;
        let mut now = self.current(&id)?;
        if !now.state.paused {
            // It ended meanwhile (its exit cleared the flag): nothing to record.
            return Ok(());
        }
        now.state.paused = false;
        self.store
            .put_with(&now, &self.container_event(&now, "unpause", &[]))?;
        self.bump(&now.id);
        Ok(())
    }

    /// After a signal that ends the container: thaws it if paused, so that the signal is
    /// delivered (the v1 freezer holds even SIGKILL). No event, as dockerd. Waits for a
    /// pause under way, so that a container being frozen is thawed too.
    pub(crate) async fn thaw_for_exit(&self, id: &str) -> Result<(), ContainerError> {
        let freezer = self.freezer(id);
        let _thawing = freezer.lock().await;
        let Some(c) = self.store.get(id)? else {
            return Ok(());
        };
        if !c.state.paused {
            return Ok(());
        }
        set_frozen(&c, false)
            .await
            .map_err(|e| internal(format!("Cannot unpause container {}: {e}", c.id)))?;
        let _guard = self.lock.lock().await;
        if let Some(mut now) = self.store.get(id)?
            && now.state.paused
        {
            now.state.paused = false;
            self.store.put(&now)?;
            self.bump(&now.id);
        }
        Ok(())
    }

    /// Runs `work` (a commit) with the container paused, as dockerd's commit does when asked
    /// to: only a running container that is not paused already, a failed pause ignored (the
    /// work runs anyway), and unpaused after the work whatever its outcome.
    pub(crate) async fn paused_during<T>(
        &self,
        c: &Container,
        pause: bool,
        work: impl Future<Output = T>,
    ) -> T {
        let pause = pause && c.state.running() && !c.state.paused;
        around(
            pause,
            async {
                match self.pause(&c.id).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, id = c.id, "pause for commit");
                        false
                    }
                }
            },
            work,
            async {
                if let Err(e) = self.unpause(&c.id).await {
                    tracing::warn!(error = %e, id = c.id, "unpause after commit");
                }
            },
        )
        .await
    }
}

/// `work` between `pause` (when asked; it tells whether it paused) and `unpause` (only when
/// it did), whatever `work` returns.
async fn around<T>(
    asked: bool,
    pause: impl Future<Output = bool>,
    work: impl Future<Output = T>,
    unpause: impl Future<Output = ()>,
) -> T {
    let paused = asked && pause.await;
    let out = work.await;
    if paused {
        unpause.await;
    }
    out
}

fn internal(message: String) -> ContainerError {
    ContainerError::new(ErrorKind::Internal, message)
}

/// Freezes or thaws in a blocking task (the kernel may take a while to freeze).
fn set_frozen(c: &Container, frozen: bool) -> impl Future<Output = Result<(), String>> + use<> {
    let cg = Containers::cgroup(c).map_err(|e| e.to_string());
    async move {
        let cg = cg?;
        tokio::task::spawn_blocking(move || cg.set_frozen(frozen))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod freeze_tests;

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// The steps `around` takes, with `work` failing and the pause failing or not.
    async fn steps(asked: bool, pause_ok: bool) -> (Vec<&'static str>, Result<(), &'static str>) {
        let log = Mutex::new(Vec::new());
        let step = |s| log.lock().unwrap().push(s);
        let out = around(
            asked,
            async {
                step("pause");
                pause_ok
            },
            async {
                step("commit");
                Err("layer write failed")
            },
            async { step("unpause") },
        )
        .await;
        (log.into_inner().unwrap(), out)
    }

    #[tokio::test]
    async fn unpaused_after_a_failed_commit() {
        assert_eq!(
            steps(true, true).await,
            (
                vec!["pause", "commit", "unpause"],
                Err("layer write failed")
            )
        );
        // A pause that failed is not undone; the commit runs anyway (dockerd ignores it).
        assert_eq!(
            steps(true, false).await,
            (vec!["pause", "commit"], Err("layer write failed"))
        );
        // --pause=false.
        assert_eq!(
            steps(false, true).await,
            (vec!["commit"], Err("layer write failed"))
        );
    }
}
