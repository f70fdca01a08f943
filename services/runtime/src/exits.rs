//! Exits: the watchers that learn them from the shims, recording them, and `docker wait`.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use berth_proto::runtime::v1 as pb;
use berth_shim_proto::v1 as shimpb;
use tokio::sync::watch;

use crate::{
    changes::{Change, on_changes},
    container::{Container, Status, now_nanos, parse_nanos},
    container_error::ContainerError,
    lifecycle::Containers,
    shim,
};

impl Containers {
    /// A background task that learns the exit of a running container from its shim (or,
    /// when the shim is gone, from exit.json) and records it. A shim that died under a running
    /// container (killed, crashed, before or while the runtime was down) leaves the container
    /// unsupervised: like containerd's dead-shim cleanup, `berth-shim delete` kills what is
    /// left of it through its cgroup, removes the cgroup and the shim's files, and writes the
    /// exit (137 when it killed something).
    pub(crate) fn watch_exit(self: &Arc<Self>, id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let bundle = this.bundle(&id);
            let exit = match wait_on_shim(&bundle).await {
                Some(exit) => exit,
                None => {
                    tracing::warn!(id, "the container's shim is gone; cleaning up after it");
                    delete_dead_shim(&bundle).await;
                    // As containerd's dead-shim cleanup: 137, as if SIGKILLed.
                    shim::exit_file(&bundle).unwrap_or((137, String::new(), false))
                }
            };
            match this.record_exit(&id, exit).await {
                // Recorded: what the run held is released, then the shim, which has nothing
                // left to tell, exits.
                Ok(c) => {
                    if let Some(c) = c {
                        crate::failpoint::hit("exit-before-release");
                        this.release_run(&c).await;
                    }
                    crate::failpoint::hit("exit-after-record");
                    this.release_shim(&id).await;
                }
                // Kept, so that the exit can be learned again from it.
                Err(e) => tracing::error!(error = %e, id, "recording an exit"),
            }
            let auto_remove = matches!(this.store.get(&id), Ok(Some(c))
                if !c.state.running() && c.auto_remove());
            if auto_remove {
                let req = pb::RemoveRequest {
                    id: id.clone(),
                    force: false,
                    // As dockerd: --rm takes the anonymous volumes along.
                    volumes: true,
                };
                if let Err(e) = this.remove(&req).await {
                    tracing::warn!(error = %e, id, "auto-remove");
                }
            } else if let Err(e) = this.apply_restart_policy(&id).await {
                tracing::warn!(error = %e, id, "restart policy");
            }
        });
    }

    /// Records the exit of `id` if it is recorded as running, and marks it settling: the
    /// record (with its `die`) is durable before anything is released, and the records' lock
    /// is held for the record alone. The container recorded, when it was.
    pub(crate) async fn record_exit(
        &self,
        id: &str,
        (code, at, oom): (i64, String, bool),
    ) -> Result<Option<Container>, ContainerError> {
        let _guard = self.lock.lock().await;
        let Some(mut c) = self.store.get(id)? else {
            return Ok(None);
        };
        if !c.state.running() {
            return Ok(None);
        }
        c.state.status = Status::Exited;
        c.state.paused = false;
        c.state.pid = 0;
        c.state.exit_code = code;
        c.state.oom_killed = oom;
        c.state.finished_at = parse_nanos(&at).unwrap_or_else(now_nanos);
        c.state.exits += 1;
        if let Some(h) = &mut c.state.health {
            h.stopped();
        }
        // The run's network goes with it; its endpoints are unplugged right after (and by the
        // next start if the runtime dies first).
        c.network = None;
        // Written with the exit (and published before waiters wake, so that `die` comes before
        // the `stop` they publish).
        let die = self.container_event(&c, "die", &[("exitCode", code.to_string())]);
        self.store.put_with(&c, &die)?;
        self.set_settling(id, Some(crate::settle::Settling::Resources));
        Ok(Some(c))
    }

    /// After the exit's record, outside the records' lock: the network unplugged and the
    /// volumes unmounted, then the waiters woken (so that a restart finds the network free).
    pub(crate) async fn release_run(&self, c: &Container) {
        self.network_down(&c.id).await;
        self.unmount_volumes(&c.id, Vec::new()).await;
        self.volume_events(c, "unmount");
        self.set_settling(&c.id, None);
    }

    /// On start: watch the containers recorded as running (their shims outlive us).
    pub(crate) fn reconnect(self: &Arc<Self>) -> Result<(), ContainerError> {
        for c in self.store.all()? {
            if c.state.running() {
                // Probes resume where they were: the record holds the health so far.
                self.monitor_health(&c);
                self.watch_exit(c.id);
            }
        }
        Ok(())
    }

    /// Waits until `id` is not running; false when the deadline passed first.
    pub(crate) async fn wait_stopped(
        &self,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<bool, ContainerError> {
        let deadline = deadline.map(tokio::time::Instant::from_std);
        let stopped = on_changes(self.changed.subscribe(), id, deadline, || {
            Ok(match self.store.get(id)? {
                Some(c) if c.state.running() || self.exit_settling(id) => None,
                _ => Some(()),
            })
        })
        .await?;
        Ok(stopped.is_some())
    }

    /// Registers a wait (the condition is checked against changes from now on); `finish`
    /// returns when it is met.
    pub(crate) fn wait_start(&self, req: &pb::WaitRequest) -> Result<Waiter, ContainerError> {
        let cond = wait_condition(&req.condition)?;
        let rx = self.changed.subscribe();
        let last = self.find(&req.id)?;
        Ok(Waiter {
            cond,
            rx,
            exits: last.state.exits,
            last,
        })
    }

    /// docker wait.
    pub(crate) async fn finish(&self, w: Waiter) -> Result<pb::WaitResponse, ContainerError> {
        let Waiter {
            cond,
            rx,
            exits,
            mut last,
        } = w;
        let id = last.id.clone();
        let done = on_changes(rx, &id, None, || {
            let Some(c) = self.store.get(&last.id)? else {
                if self.still_removing(&last.id) {
                    return Ok(None);
                }
                // Removed: its last exit.
                let state = self.removed_state(&last.id).unwrap_or(last.state.clone());
                return Ok(Some(pb::WaitResponse {
                    status_code: state.exit_code,
                    error: String::new(),
                }));
            };
            let met = !self.exit_settling(&c.id)
                && match cond {
                    "not-running" => !c.state.running(),
                    "next-exit" => c.state.exits > exits,
                    _ => false,
                };
            last = c;
            Ok(met.then(|| pb::WaitResponse {
                status_code: last.state.exit_code,
                error: last.state.error.clone(),
            }))
        })
        .await?;
        Ok(done.unwrap_or_default())
    }
}

/// The exit from the shim's Wait; None once the shim is gone. While the shim lives, a failed
/// connection or call is retried: only a dead shim may be cleaned up after (the cleanup kills
/// the container).
async fn wait_on_shim(bundle: &Path) -> Option<(i64, String, bool)> {
    let mut pause = Duration::from_millis(20);
    loop {
        if let Some(address) = shim::address(bundle)
            && let Ok(client) = shim::connect(&address).await
            && let Ok(r) = client.wait(shimpb::WaitRequest {}).await
        {
            return Some((r.exit_code as i64, r.exited_at, r.oom_killed));
        }
        if !shim_alive(bundle) {
            return None;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Whether the process in the bundle's shim.pid is still this bundle's berth-shim.
pub(crate) fn shim_alive(bundle: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(bundle.join("shim.pid"))
        .ok()
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        return false;
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let id = bundle.file_name().map(|n| n.to_string_lossy().into_owned());
    comm.trim() == "berth-shim"
        && !matches!(state, None | Some('Z' | 'X'))
        && id.is_some_and(|id| String::from_utf8_lossy(&cmdline).contains(&id))
}

/// `berth-shim delete --bundle DIR` for a bundle whose shim died.
pub(crate) async fn delete_dead_shim(bundle: &Path) {
    let out = tokio::process::Command::new(shim::shim_binary())
        .args(["delete", "--bundle"])
        .arg(bundle)
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => {}
        Ok(o) => tracing::error!(
            bundle = %bundle.display(),
            stderr = %String::from_utf8_lossy(&o.stderr).trim(),
            "berth-shim delete failed"
        ),
        Err(e) => {
            tracing::error!(error = %e, bundle = %bundle.display(), "running berth-shim delete")
        }
    }
}

fn wait_condition(c: &str) -> Result<&'static str, ContainerError> {
    match c {
        "" | "not-running" => Ok("not-running"),
        "next-exit" => Ok("next-exit"),
        "removed" => Ok("removed"),
        other => Err(ContainerError::invalid(format!(
            "invalid condition: {other:?}"
        ))),
    }
}

/// A registered `docker wait`.
pub(crate) struct Waiter {
    cond: &'static str,
    rx: watch::Receiver<Change>,
    exits: u64,
    last: Container,
}
