//! What an exit leaves is released outside the records' lock. The exit is recorded first
//! (durable, with its `die` event), under the lock; then the container is marked *settling*,
//! and its network endpoints, volume mounts and shim are released by calls to other services
//! and to the shim, which may be slow or down: meanwhile every other container's changes go on.
//! A start or a removal of the same container waits until it has settled (so a release never
//! undoes the next run's network or deletes its shim), and so do the waiters of its exit (so
//! that what they do next, a start on the same ports for one, finds everything free), as
//! dockerd wakes them after its cleanup. A runtime that dies meanwhile finishes the release
//! at its next start (`reconcile_networks`, `reconcile_volumes`, `release_stopped_shims`).

use berth_types::ErrorKind;
use tokio::sync::MutexGuard;

use crate::{changes::on_changes, container_error::ContainerError, lifecycle::Containers};

/// What is being released after a container's exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Settling {
    /// Its network and volume mounts: its exit's waiters are not woken yet.
    Resources,
    /// Its shim (told to clean up and exit).
    Shim,
}

impl Containers {
    /// What is being released of `id`'s last run, if anything.
    pub(crate) fn settling(&self, id: &str) -> Option<Settling> {
        self.settling
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .copied()
    }

    /// Marks (or with None unmarks) `id` as settling. Marking happens under the records' lock,
    /// after the record it follows; unmarking wakes the waiters.
    pub(crate) fn set_settling(&self, id: &str, s: Option<Settling>) {
        {
            let mut map = self
                .settling
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match s {
                Some(s) => map.insert(id.to_owned(), s),
                None => map.remove(id),
            };
        }
        if s.is_none() {
            self.bump(id);
        }
    }

    /// Whether an exit of `id` is recorded but its waiters are not to be woken yet.
    pub(crate) fn exit_settling(&self, id: &str) -> bool {
        self.settling(id) == Some(Settling::Resources)
    }

    /// The records' lock, taken once nothing of `id`'s last run is being released: what a
    /// start or a removal of `id` holds.
    pub(crate) async fn lock_settled(
        &self,
        id: &str,
    ) -> Result<MutexGuard<'_, ()>, ContainerError> {
        loop {
            // Subscribed before the check: an unmark in between is not missed.
            let rx = self.changed.subscribe();
            let guard = self.lock.lock().await;
            if self.settling(id).is_none() {
                return Ok(guard);
            }
            drop(guard);
            on_changes(rx, id, None, || {
                Ok(self.settling(id).is_none().then_some(()))
            })
            .await?
            .ok_or_else(|| ContainerError::new(ErrorKind::Unavailable, "shutting down"))?;
        }
    }
}

#[cfg(test)]
#[path = "settle_tests.rs"]
mod tests;
