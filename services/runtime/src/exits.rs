//! Exits: the watchers that learn them from the shims, recording them, and `docker wait`.

use std::{sync::Arc, time::Instant};

use berth_proto::{runtime::v1 as pb, shim::v1 as shimpb};
use berth_types::ErrorKind;
use tokio::sync::watch;

use crate::{
    container::{Container, Status, now_rfc3339},
    container_error::ContainerError,
    lifecycle::Containers,
    shim,
};

impl Containers {
    /// A background task that learns the exit of a running container from its shim (or,
    /// when the shim is gone, from exit.json) and records it.
    pub(crate) fn watch_exit(self: &Arc<Self>, id: String) {
        let this = self.clone();
        tokio::spawn(async move {
            let bundle = this.bundle(&id);
            let mut exit = None;
            if let Some(address) = shim::address(&bundle)
                && let Ok(mut client) = shim::connect(&address).await
                && let Ok(r) = client.wait(shimpb::WaitRequest {}).await
            {
                let r = r.into_inner();
                exit = Some((r.exit_code as i64, r.exited_at, r.oom_killed));
            }
            let exit =
                exit.or_else(|| shim::exit_file(&bundle))
                    .unwrap_or((255, String::new(), false));
            if let Err(e) = this.record_exit(&id, exit).await {
                tracing::error!(error = %e, id, "recording an exit");
            }
            let auto_remove = matches!(this.store.get(&id), Ok(Some(c))
                if !c.state.running() && c.host_config["AutoRemove"].as_bool() == Some(true));
            if auto_remove {
                let req = pb::RemoveRequest {
                    id: id.clone(),
                    force: false,
                    volumes: false,
                };
                if let Err(e) = this.remove(&req).await {
                    tracing::warn!(error = %e, id, "auto-remove");
                }
            }
        });
    }

    async fn record_exit(
        &self,
        id: &str,
        (code, at, oom): (i64, String, bool),
    ) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let Some(mut c) = self.store.get(id)? else {
            return Ok(());
        };
        if !c.state.running() {
            return Ok(());
        }
        c.state.status = Status::Exited;
        c.state.pid = 0;
        c.state.exit_code = code;
        c.state.oom_killed = oom;
        c.state.finished_at = if at.is_empty() { now_rfc3339() } else { at };
        c.state.exits += 1;
        self.store.put(&c)?;
        self.bump();
        self.event(&c, "die", &[("exitCode", code.to_string())]);
        Ok(())
    }

    /// On start: watch the containers recorded as running (their shims outlive us).
    pub(crate) fn reconnect(self: &Arc<Self>) -> Result<(), ContainerError> {
        for c in self.store.all()? {
            if c.state.running() {
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
        let mut rx = self.changed.subscribe();
        loop {
            match self.store.get(id)? {
                Some(c) if c.state.running() => {}
                _ => return Ok(true),
            }
            match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
                        return Ok(false);
                    }
                }
                None => {
                    let _ = rx.changed().await;
                }
            }
        }
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
            mut rx,
            exits,
            mut last,
        } = w;
        loop {
            match self.store.get(&last.id)? {
                None => {
                    return Ok(pb::WaitResponse {
                        status_code: last.state.exit_code,
                        error: String::new(),
                    });
                }
                Some(c) => {
                    let done = match cond {
                        "not-running" => !c.state.running(),
                        "next-exit" => c.state.exits > exits,
                        _ => false,
                    };
                    last = c;
                    if done {
                        return Ok(pb::WaitResponse {
                            status_code: last.state.exit_code,
                            error: last.state.error.clone(),
                        });
                    }
                }
            }
            if rx.changed().await.is_err() {
                return Err(ContainerError::new(ErrorKind::Unavailable, "shutting down"));
            }
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
    rx: watch::Receiver<u64>,
    exits: u64,
    last: Container,
}
