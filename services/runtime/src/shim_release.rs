//! A stopped container holds no process, as dockerd deletes the task when the process exits:
//! once the exit is recorded (the record is the shim's acknowledgment), the shim is asked to
//! clean up and exit, and the run's systemd scope (the systemd driver) is stopped. `docker start` spawns a new one; the logs, the bundle's exit.json and the
//! snapshot (for `cp`, `diff`, `export` and `commit` of a stopped container) stay.

use std::{sync::Arc, time::Duration};

use crate::{lifecycle::Containers, settle::Settling, shim};

/// How long a shim has to answer Delete; a shim that does not is left for `docker rm` or the
/// next start (both delete it again); meanwhile only a start or a removal of that container
/// waits.
const DELETE_TIMEOUT: Duration = Duration::from_secs(10);

impl Containers {
    /// Deletes the shim of `id` if the container is recorded as stopped. Checked and marked
    /// settling under the records' lock, deleted outside it: a start (which waits until the
    /// container has settled) cannot be under way meanwhile, so the shim deleted is the
    /// stopped run's, never a new one at the same socket; and a shim that hangs holds up no
    /// other container.
    pub(crate) async fn release_shim(&self, id: &str) {
        let holds;
        {
            let _guard = self.lock.lock().await;
            match self.store.get(id) {
                Ok(Some(c)) if !c.state.running() => {}
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, id, "releasing the shim: reading the record");
                    return;
                }
            }
            // Another release of this container's leftovers is under way.
            if self.settling(id).is_some() {
                return;
            }
            holds = holds_shim(&self.bundle(id));
            // With the systemd driver the run's scope is left to stop even when its shim is
            // gone (a dead shim's cleanup removed its cgroup).
            if !holds && self.systemd.is_none() {
                return;
            }
            self.set_settling(id, Some(Settling::Shim));
        }
        if holds {
            self.delete_stopped_shim(id).await;
        }
        // After the shim's cleanup (which kills what is left), and before a new start can
        // begin: a new run's scope has the same name.
        self.stop_scope(id).await;
        self.set_settling(id, None);
    }

    async fn delete_stopped_shim(&self, id: &str) {
        let bundle = self.bundle(id);
        if !crate::exits::shim_alive(&bundle) {
            // Killed after the exit: what it would have removed (its cgroup, its files) goes
            // as for any dead shim.
            crate::exits::delete_dead_shim(&bundle).await;
            return;
        }
        let deleted =
            tokio::time::timeout(DELETE_TIMEOUT, crate::lifecycle::delete_shim(&bundle)).await;
        if deleted.is_err() {
            tracing::warn!(id, "the shim of a stopped container did not answer Delete");
        }
    }

    /// On start: the shims of containers recorded as stopped (the runtime died between an
    /// exit's record and the shim's release) are released.
    pub(crate) fn release_stopped_shims(
        self: &Arc<Self>,
    ) -> Result<(), crate::container_error::ContainerError> {
        for c in self.store.all()? {
            if !c.state.running() && holds_shim(&self.bundle(&c.id)) {
                let this = self.clone();
                tokio::spawn(async move { this.release_shim(&c.id).await });
            }
        }
        Ok(())
    }
}

/// Whether the bundle still has a shim's files (a shim that exited after Delete removed them).
fn holds_shim(bundle: &std::path::Path) -> bool {
    shim::address(bundle).is_some() || bundle.join(berth_bundle::PID_FILE).exists()
}
