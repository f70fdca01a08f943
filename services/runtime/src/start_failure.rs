//! What a failed start leaves behind, as dockerd's `containerStart` cleans up: the error and an
//! exit code recorded (128 unless one is set), the attaches queued for this start ended, the
//! network and volumes taken for it released, and the container removed when it has
//! AutoRemove (`docker run --rm` waits for that removal).
//!
//! Any error counts, whatever its class: a missing volume subpath or network is a 404 like
//! a missing container, and the container is known here by the ID found before the start.

use berth_proto::runtime::v1 as pb;

use crate::{container_error::ContainerError, lifecycle::Containers};

/// dockerd's `exitUnknown`, the exit code of a start that failed before the process ran.
pub(crate) const EXIT_UNKNOWN: i64 = 128;

/// The state a start that failed with `error` leaves: the error recorded, the exit code set
/// unless the failure set one (127 and 126 from the shim) or a previous run did.
pub(crate) fn record(state: &mut crate::container::State, error: &str) {
    state.error = error.to_owned();
    if state.exit_code == 0 {
        state.exit_code = EXIT_UNKNOWN;
    }
}

impl Containers {
    /// Cleans up after a start of container `id` that failed with `error`.
    pub(crate) async fn after_failed_start(&self, id: &str, error: &ContainerError) {
        let c = {
            let _guard = self.lock.lock().await;
            let Ok(Some(mut c)) = self.store.get(id) else {
                return;
            };
            if c.state.running() {
                return;
            }
            record(&mut c.state, &error.to_string());
            if let Err(e) = self.store.put(&c) {
                tracing::warn!(error = %e, id, "recording a failed start");
            }
            self.bump(id);
            // Dropping them ends their streams.
            self.pending_attaches
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(id);
            c
        };
        self.network_down(id).await;
        self.unmount_volumes(id, Vec::new()).await;
        if c.auto_remove() {
            let req = pb::RemoveRequest {
                id: id.to_owned(),
                force: true,
                volumes: true,
            };
            if let Err(e) = self.remove(&req).await {
                tracing::warn!(error = %e, id, "auto-remove after a failed start");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_start_keeps_an_exit_code_already_set() {
        let mut s = crate::container::State::default();
        record(&mut s, "cannot access path /v/x");
        assert_eq!(
            (s.exit_code, s.error.as_str()),
            (128, "cannot access path /v/x")
        );
        s.exit_code = 127;
        record(&mut s, "exec: not found");
        assert_eq!((s.exit_code, s.error.as_str()), (127, "exec: not found"));
    }
}
