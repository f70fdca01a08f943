//! The health monitor of a running container (moby `daemon/health.go` `monitor`): one task per
//! run that waits for the next probe, runs it as an exec in the container (with the
//! `exec_create`/`exec_start`/`exec_die` events dockerd publishes for it), kills it when its
//! timeout passes, records the result in the container's record and publishes
//! `health_status: <status>` when the status changes. The task ends when the run it was
//! started for ends; after a runtime restart `reconnect` starts it again.

use std::{sync::Arc, time::Duration};

use berth_proto::runtime::v1 as pb;
use berth_shim_proto::v1 as shimpb;

use crate::{
    attach::AttachReceiver,
    container::{Container, Status, now_nanos},
    container_error::ContainerError,
    health::{self, Health, HealthStatus, Output, Probe, Settings},
    lifecycle::Containers,
};

/// How long a killed probe has to show its exit before the monitor moves on.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How long starting the probe's exec may take (dockerd's separate start timeout).
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// One way of running a probe: the exec in the container, or a fake in tests.
pub(crate) trait Prober {
    /// Starts a run; Err (the text becomes the result's output) when it could not start.
    fn start(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// Reads the run's output into `out` until it exits; its exit code.
    fn finish(&mut self, out: &mut Output) -> impl Future<Output = Result<i64, String>> + Send;
    /// Kills the run (its timeout passed).
    fn kill(&mut self) -> impl Future<Output = ()> + Send;
}

/// Runs one probe begun at `start` (nanoseconds): its exit code and output, or -1 with
/// dockerd's message when it could not run or outlived `timeout` (then it is killed). The
/// timeout counts from the moment the probe runs, not from the exec's setup.
pub(crate) async fn run_probe<P: Prober>(p: &mut P, timeout: Duration, start: i64) -> Probe {
    let failed = |output: String| Probe {
        start,
        end: now_nanos(),
        exit_code: -1,
        output,
    };
    if let Err(e) = p.start().await {
        return failed(e);
    }
    let mut out = Output::default();
    match tokio::time::timeout(timeout, p.finish(&mut out)).await {
        Ok(Ok(exit_code)) => Probe {
            start,
            end: now_nanos(),
            exit_code,
            output: out.text(),
        },
        Ok(Err(e)) => failed(e),
        Err(_) => {
            p.kill().await;
            // Waits for it to go, so that dying probes do not pile up.
            let _ = tokio::time::timeout(KILL_WAIT, p.finish(&mut Output::default())).await;
            failed(health::timed_out(timeout, &out.text()))
        }
    }
}

/// A probe run as an exec in the container, through the runtime's own exec machinery.
struct ExecProber {
    containers: Arc<Containers>,
    container_id: String,
    cmd: Vec<String>,
    exec: Option<(String, AttachReceiver)>,
}

impl ExecProber {
    /// exec_create then exec_start; the exec's ID and its output.
    async fn exec(&self) -> Result<(String, AttachReceiver), String> {
        let created = self
            .containers
            .exec_create(&pb::ExecCreateRequest {
                id: self.container_id.clone(),
                spec: Some(pb::ExecSpec {
                    cmd: self.cmd.clone(),
                    attach_stdout: true,
                    attach_stderr: true,
                    ..Default::default()
                }),
            })
            .await
            .map_err(|e| e.to_string())?;
        let rx = self
            .containers
            .exec_start(&pb::ExecStartRequest {
                exec_id: created.id.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| e.to_string())?;
        Ok((created.id, rx))
    }
}

impl Prober for ExecProber {
    async fn start(&mut self) -> Result<(), String> {
        if self.cmd.is_empty() {
            return Err(format!(
                "healthcheck for container {} has no command",
                self.container_id
            ));
        }
        let exec = tokio::time::timeout(START_TIMEOUT, self.exec())
            .await
            .map_err(|_| {
                format!(
                    "timed out starting health check for container {}",
                    self.container_id
                )
            })??;
        self.exec = Some(exec);
        Ok(())
    }

    async fn finish(&mut self, out: &mut Output) -> Result<i64, String> {
        let Some((exec_id, rx)) = self.exec.as_mut() else {
            return Err("the health check did not start".to_owned());
        };
        while let Some(frame) = rx.recv().await {
            if let Ok(f) = frame {
                out.push(&f.data);
            }
        }
        // The stream ends once the exit code is recorded.
        let record = self.containers.exec_record(exec_id).ok();
        if record.as_ref().is_some_and(|r| r.pid == 0) {
            // The exec never ran (no such command): dockerd's probe fails with the error.
            return Err(out.text().trim_end().to_owned());
        }
        record.and_then(|r| r.exit_code).ok_or_else(|| {
            format!(
                "healthcheck for container {} has no exit code",
                self.container_id
            )
        })
    }

    async fn kill(&mut self) {
        let Some((exec_id, _)) = &self.exec else {
            return;
        };
        let Ok(c) = self.containers.find(&self.container_id) else {
            return;
        };
        if let Ok(client) = self.containers.running_shim(&c).await
            && let Err(e) = client
                .kill(shimpb::KillRequest {
                    exec_id: exec_id.clone(),
                    signal: 9,
                    all: false,
                })
                .await
        {
            tracing::debug!(error = %e, exec_id, "killing a health probe");
        }
    }
}

impl Containers {
    /// Starts the health monitor of `c`'s current run, if it has a health check.
    pub(crate) fn monitor_health(self: &Arc<Self>, c: &crate::container::Container) {
        let Some(settings) = Settings::of(&c.spec) else {
            return;
        };
        let this = self.clone();
        let (id, started_at) = (c.id.clone(), c.state.started_at);
        tokio::spawn(async move { this.health_loop(id, started_at, settings).await });
    }

    async fn health_loop(self: Arc<Self>, id: String, started_at: i64, s: Settings) {
        loop {
            let Some((status, paused)) = self.run_health(&id, started_at) else {
                return;
            };
            let since = Duration::from_nanos(
                u64::try_from(now_nanos().saturating_sub(started_at)).unwrap_or(0),
            );
            tokio::time::sleep(s.next_delay(since, status)).await;
            // A paused container is not probed (dockerd stops its monitor until unpaused).
            if paused || !matches!(self.run_health(&id, started_at), Some((_, false))) {
                continue;
            }
            let mut prober = ExecProber {
                containers: self.clone(),
                container_id: id.clone(),
                cmd: s.cmd.clone(),
                exec: None,
            };
            let probe = run_probe(&mut prober, s.timeout, now_nanos()).await;
            match self.record_probe(&id, started_at, probe, &s).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => tracing::warn!(error = %e, id, "recording a health probe"),
            }
        }
    }

    /// The health status of the run started at `started_at` and whether it is paused; None
    /// once that run is over.
    fn run_health(&self, id: &str, started_at: i64) -> Option<(HealthStatus, bool)> {
        run_health_of(&self.store.get(id).ok().flatten()?, started_at)
    }

    /// Records a probe of the run started at `started_at`: written to the record, then
    /// `health_status` published when the status changed. False when that run is over (the
    /// result is dropped, as dockerd drops a probe cancelled by the stop).
    async fn record_probe(
        &self,
        id: &str,
        started_at: i64,
        probe: Probe,
        s: &Settings,
    ) -> Result<bool, ContainerError> {
        {
            let _guard = self.lock.lock().await;
            let Some(mut c) = self.store.get(id)? else {
                return Ok(false);
            };
            let Some((_, paused)) = run_health_of(&c, started_at) else {
                return Ok(false);
            };
            if paused {
                // Paused while the probe ran: dropped, as dockerd's pause cancels the probe
                // (its exec is refused or frozen); no failing streak from a pause.
                return Ok(true);
            }
            let h = c.state.health.get_or_insert_with(|| Health::starting(None));
            let changed = h.record(probe, s, started_at);
            let events = match changed {
                Some(status) => {
                    self.container_event(&c, &format!("health_status: {}", status.as_str()), &[])
                }
                None => Vec::new(),
            };
            self.store.put_with(&c, &events)?;
        }
        self.bump(id);
        Ok(true)
    }
}

/// The health status of `c`'s run started at `started_at`, and whether it is paused (a paused
/// container stays Running in the record, with its flag); None once that run is over.
fn run_health_of(c: &Container, started_at: i64) -> Option<(HealthStatus, bool)> {
    let live = matches!(c.state.status, Status::Running | Status::Paused);
    (live && c.state.started_at == started_at).then(|| {
        let status = c.state.health.as_ref().map(|h| h.status);
        (
            status.unwrap_or(HealthStatus::Starting),
            c.state.paused || c.state.status == Status::Paused,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A paused container (Running with its flag, as the store gives it back) is not probed,
    /// and a stopped one or another run ends the monitor.
    #[test]
    fn a_paused_run_is_not_probed() {
        let mut c = crate::container::tests::sample('a', "h");
        c.state.status = Status::Running;
        c.state.started_at = 5;
        assert_eq!(run_health_of(&c, 5), Some((HealthStatus::Starting, false)));
        c.state.paused = true;
        let back = Container::from_proto(c.to_proto());
        assert_eq!(
            run_health_of(&back, 5),
            Some((HealthStatus::Starting, true))
        );
        assert_eq!(run_health_of(&back, 6), None);
        c.state.status = Status::Exited;
        assert_eq!(run_health_of(&c, 5), None);
    }

    /// A probe that exits with `code` after writing `out`, or never exits until killed.
    struct Fake {
        code: Option<i64>,
        out: &'static [u8],
        start_error: Option<&'static str>,
        killed: bool,
    }

    impl Fake {
        fn exits(code: i64, out: &'static [u8]) -> Fake {
            Fake {
                code: Some(code),
                out,
                start_error: None,
                killed: false,
            }
        }
    }

    impl Prober for Fake {
        async fn start(&mut self) -> Result<(), String> {
            self.start_error.map_or(Ok(()), |e| Err(e.to_owned()))
        }

        async fn finish(&mut self, out: &mut Output) -> Result<i64, String> {
            out.push(self.out);
            if self.killed {
                return Ok(137);
            }
            match self.code {
                Some(c) => Ok(c),
                None => std::future::pending().await,
            }
        }

        async fn kill(&mut self) {
            self.killed = true;
        }
    }

    #[tokio::test]
    async fn a_probe_gives_its_exit_code_and_output() {
        let mut p = Fake::exits(1, b"not yet\n");
        let r = run_probe(&mut p, Duration::from_secs(5), 7).await;
        assert_eq!((r.start, r.exit_code), (7, 1));
        assert_eq!(r.output, "not yet\n");
        assert!(r.end >= r.start);
    }

    #[tokio::test]
    async fn a_probe_past_its_timeout_is_killed_and_fails() {
        let mut p = Fake {
            code: None,
            out: b"partial",
            start_error: None,
            killed: false,
        };
        let r = run_probe(&mut p, Duration::from_millis(20), 0).await;
        assert!(p.killed);
        assert_eq!(r.exit_code, -1);
        assert_eq!(r.output, "Health check exceeded timeout (20ms): partial");
    }

    #[tokio::test]
    async fn a_probe_that_cannot_start_fails_with_the_reason() {
        let mut p = Fake {
            start_error: Some("container is not running"),
            ..Fake::exits(0, b"")
        };
        let r = run_probe(&mut p, Duration::from_secs(1), 0).await;
        assert_eq!(r.exit_code, -1);
        assert_eq!(r.output, "container is not running");
    }

    /// The monitor's decisions end to end with a fake prober: retries failures make it
    /// unhealthy after the start period, a timeout counts as a failure, a success heals.
    #[tokio::test]
    async fn probes_drive_the_state_machine() {
        let s = Settings {
            cmd: vec!["x".to_owned()],
            interval: Duration::from_millis(1),
            timeout: Duration::from_millis(10),
            start_period: Duration::ZERO,
            start_interval: Duration::from_millis(1),
            retries: 2,
        };
        let mut h = Health::starting(None);
        let mut hung = Fake {
            code: None,
            out: b"",
            start_error: None,
            killed: false,
        };
        let r = run_probe(&mut hung, s.timeout, 1).await;
        assert_eq!(h.record(r, &s, 0), None);
        let r = run_probe(&mut Fake::exits(1, b""), s.timeout, 2).await;
        assert_eq!(h.record(r, &s, 0), Some(HealthStatus::Unhealthy));
        let r = run_probe(&mut Fake::exits(0, b"ok"), s.timeout, 3).await;
        assert_eq!(h.record(r, &s, 0), Some(HealthStatus::Healthy));
        assert_eq!(h.log.len(), 3);
        assert_eq!(h.log[2].output, "ok");
    }
}
