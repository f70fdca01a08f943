//! Restart policies (moby's restartmanager): after an exit, `always`, `unless-stopped` and
//! `on-failure[:max]` start the container again, unless a user stopped or killed it, after a
//! delay that starts at 100 ms, doubles with each restart and stays under a minute, and goes
//! back to 100 ms once the container ran 10 s. While it waits the container is `restarting`.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use berth_proto::runtime::v1 as pb;

use crate::{
    container::{Container, Status},
    container_error::ContainerError,
    lifecycle::Containers,
};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
/// A run this long resets the delay.
const RESET_AFTER: Duration = Duration::from_secs(10);

type Mode = pb::restart_policy::Mode;

/// Whether the policy restarts `c` after the exit just recorded.
pub(crate) fn should_restart(c: &Container) -> bool {
    let Some(p) = c.spec.restart_policy else {
        return false;
    };
    if c.state.stopped_by_user || c.auto_remove() {
        return false;
    }
    match Mode::try_from(p.mode).unwrap_or(Mode::No) {
        Mode::No => false,
        Mode::Always => true,
        Mode::UnlessStopped => !c.state.manually_stopped,
        Mode::OnFailure => {
            c.state.exit_code != 0
                && (p.maximum_retry_count <= 0
                    || c.restart_count < u64::try_from(p.maximum_retry_count).unwrap_or(0))
        }
    }
}

/// Whether a user's kill with `signal` cancels the restart policy, as dockerd's
/// killWithSignal decides (daemon/kill.go, `ExitOnNext`): SIGKILL does, and so does any
/// signal when the container has no stop signal of its own (from its config or its image);
/// with one, only that signal does. Any other kill still counts as a manual stop for
/// `unless-stopped`.
pub(crate) fn kill_cancels_restart(own_stop_signal: &str, signal: i32) -> bool {
    const SIGKILL: i32 = 9;
    signal == SIGKILL
        || own_stop_signal.is_empty()
        || crate::lifecycle::parse_signal(own_stop_signal).ok() == Some(signal)
}

/// The next delay after `previous`, given how long the last run lasted.
pub(crate) fn next_delay(previous: Option<Duration>, ran: Duration) -> Duration {
    match previous {
        Some(d) if ran < RESET_AFTER => (d * 2).min(MAX_DELAY),
        _ => FIRST_DELAY,
    }
}

impl Containers {
    /// After an exit: schedules the restart the policy asks for. The container is
    /// `restarting` (durably, with its count raised) until it is started again.
    pub(crate) async fn apply_restart_policy(
        self: &Arc<Self>,
        id: &str,
    ) -> Result<(), ContainerError> {
        let delay = {
            let _guard = self.lock.lock().await;
            let Some(mut c) = self.store.get(id)? else {
                return Ok(());
            };
            if c.state.running() || !should_restart(&c) {
                return Ok(());
            }
            c.state.status = Status::Restarting;
            c.restart_count += 1;
            self.store.put(&c)?;
            self.bump(&c.id);
            let mut delays = self
                .restart_delays
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let ran = Duration::from_nanos(
                u64::try_from(c.state.finished_at.saturating_sub(c.state.started_at)).unwrap_or(0),
            );
            let d = next_delay(delays.get(id).map(|(d, _)| *d), ran);
            delays.insert(id.to_owned(), (d, Instant::now()));
            d
        };
        self.schedule_restart(id.to_owned(), delay);
        Ok(())
    }

    /// Starts `id` after `delay` if it is still waiting to (not stopped, started or removed
    /// meanwhile).
    pub(crate) fn schedule_restart(self: &Arc<Self>, id: String, delay: Duration) {
        let this = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let waiting = matches!(this.store.get(&id), Ok(Some(c))
                if c.state.status == Status::Restarting && !c.state.stopped_by_user);
            if !waiting {
                return;
            }
            if let Err(e) = this.start_by_policy(&id).await {
                tracing::warn!(error = %e, id, "restart by policy");
            }
        });
    }

    /// Containers that were waiting to restart when the runtime stopped: scheduled again.
    pub(crate) fn resume_restarts(self: &Arc<Self>) -> Result<(), ContainerError> {
        for c in self.store.all()? {
            if c.state.status == Status::Restarting && !c.state.stopped_by_user {
                self.schedule_restart(c.id, FIRST_DELAY);
            }
        }
        Ok(())
    }

    /// Marks a user's stop or kill, so that the policy does not undo it; a container waiting
    /// to restart is stopped for good. True when it was waiting.
    pub(crate) async fn mark_stopped_by_user(&self, id: &str) -> Result<bool, ContainerError> {
        self.mark_signalled_by_user(id, true).await
    }

    /// Marks a user's kill or stop (dockerd's killWithSignal): `unless-stopped` leaves the
    /// container from now on; with `cancel` (see `kill_cancels_restart`) every policy does,
    /// and a container waiting to restart is stopped for good. True when it was waiting.
    pub(crate) async fn mark_signalled_by_user(
        &self,
        id: &str,
        cancel: bool,
    ) -> Result<bool, ContainerError> {
        let _guard = self.lock.lock().await;
        let Some(mut c) = self.store.get(id)? else {
            return Ok(false);
        };
        c.state.manually_stopped = true;
        let waiting = cancel && c.state.status == Status::Restarting;
        if waiting {
            c.state.status = Status::Exited;
        }
        c.state.stopped_by_user |= cancel;
        self.store.put(&c)?;
        self.bump(&c.id);
        Ok(waiting)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::tests::sample;

    fn with_policy(mode: Mode, max: i32, exit: i64, count: u64) -> Container {
        let mut c = sample('a', "x");
        c.spec.restart_policy = Some(pb::RestartPolicy {
            mode: mode as i32,
            maximum_retry_count: max,
        });
        c.state.status = Status::Exited;
        c.state.exit_code = exit;
        c.restart_count = count;
        c
    }

    #[test]
    fn policies_as_docker_applies_them() {
        assert!(!should_restart(&with_policy(Mode::No, 0, 1, 0)));
        assert!(should_restart(&with_policy(Mode::Always, 0, 0, 5)));
        assert!(should_restart(&with_policy(Mode::UnlessStopped, 0, 0, 0)));
        assert!(!should_restart(&with_policy(Mode::OnFailure, 0, 0, 0)));
        assert!(should_restart(&with_policy(Mode::OnFailure, 2, 3, 1)));
        assert!(!should_restart(&with_policy(Mode::OnFailure, 2, 3, 2)));
        assert!(should_restart(&with_policy(Mode::OnFailure, 0, 3, 99)));
        let mut c = with_policy(Mode::Always, 0, 0, 0);
        c.state.stopped_by_user = true;
        assert!(!should_restart(&c));
    }

    /// A kill that does not cancel the policy still counts as a manual stop: `always` and
    /// `on-failure` restart, `unless-stopped` does not (moby's restartmanager).
    #[test]
    fn a_manual_stop_leaves_only_unless_stopped() {
        for (mode, exit, restarts) in [
            (Mode::Always, 0, true),
            (Mode::OnFailure, 1, true),
            (Mode::UnlessStopped, 0, false),
        ] {
            let mut c = with_policy(mode, 0, exit, 0);
            c.state.manually_stopped = true;
            assert_eq!(should_restart(&c), restarts, "{mode:?}");
        }
    }

    #[test]
    fn which_kills_cancel_the_policy_as_dockerd() {
        // No stop signal of its own: every kill cancels.
        assert!(kill_cancels_restart("", 9));
        assert!(kill_cancels_restart("", 15));
        assert!(kill_cancels_restart("", 1));
        // Its own stop signal: that one and SIGKILL.
        assert!(kill_cancels_restart("SIGUSR1", 9));
        assert!(kill_cancels_restart("SIGUSR1", 10));
        assert!(kill_cancels_restart("USR1", 10));
        assert!(!kill_cancels_restart("SIGUSR1", 15));
        assert!(!kill_cancels_restart("SIGUSR1", 1));
    }

    #[test]
    fn delays_double_and_reset() {
        let quick = Duration::from_secs(1);
        assert_eq!(next_delay(None, quick), FIRST_DELAY);
        assert_eq!(
            next_delay(Some(FIRST_DELAY), quick),
            Duration::from_millis(200)
        );
        assert_eq!(next_delay(Some(Duration::from_secs(40)), quick), MAX_DELAY);
        assert_eq!(
            next_delay(Some(Duration::from_secs(40)), RESET_AFTER),
            FIRST_DELAY
        );
    }
}
