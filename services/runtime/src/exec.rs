//! docker exec: execs registered with the container's shim, started attached or detached,
//! their exits recorded (and published as `exec_die`) before an attached start ends.
//!
//! Exec records live in memory, as in Docker: they are not part of a container's durable state.

use std::sync::Arc;

use berth_proto::runtime::v1 as pb;
use berth_shim_proto::v1 as shimpb;
use tokio::sync::mpsc;

use crate::{
    attach::{AttachReceiver, Attacher, subscribe},
    changes::on_changes,
    container::Container,
    container_error::ContainerError,
    lifecycle::Containers,
    names,
    user::process_user,
};

/// One exec as Docker describes it.
#[derive(Debug, Clone)]
pub(crate) struct ExecRecord {
    pub(crate) id: String,
    pub(crate) container_id: String,
    pub(crate) cmd: Vec<String>,
    pub(crate) user: String,
    pub(crate) tty: bool,
    pub(crate) privileged: bool,
    pub(crate) attach_stdin: bool,
    pub(crate) attach_stdout: bool,
    pub(crate) attach_stderr: bool,
    pub(crate) detach_keys: String,
    pub(crate) started: bool,
    pub(crate) running: bool,
    pub(crate) pid: u32,
    pub(crate) exit_code: Option<i64>,
    created: std::time::Instant,
}

/// How many finished execs a container keeps for inspection (health checks exec often).
const FINISHED_KEPT: usize = 100;

impl ExecRecord {
    /// GET /exec/{id}/json.
    fn info(&self) -> pb::ExecInfo {
        pb::ExecInfo {
            id: self.id.clone(),
            container_id: self.container_id.clone(),
            spec: Some(pb::ExecSpec {
                cmd: self.cmd.clone(),
                user: self.user.clone(),
                tty: self.tty,
                attach_stdin: self.attach_stdin,
                attach_stdout: self.attach_stdout,
                attach_stderr: self.attach_stderr,
                privileged: self.privileged,
                detach_keys: self.detach_keys.clone(),
                ..Default::default()
            }),
            running: self.running,
            exit_code: self.exit_code,
            pid: self.pid,
        }
    }

    /// The action of `exec_create` / `exec_start` events: `exec_create: ls -l`.
    fn action(&self, base: &str) -> String {
        format!("{base}: {}", self.cmd.join(" "))
    }
}

/// The container's Env with the exec's on top (same key: the exec's wins).
pub(crate) fn exec_env(container: &[String], exec: &[String], tty: bool) -> Vec<String> {
    let mut env: Vec<String> = container.to_vec();
    for e in exec {
        let key = e.split('=').next().unwrap_or(e);
        env.retain(|x| x.split('=').next().unwrap_or(x) != key);
        env.push(e.clone());
    }
    if tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".to_owned());
    }
    env
}

impl Containers {
    pub(crate) fn exec_record(&self, exec_id: &str) -> Result<ExecRecord, ContainerError> {
        self.execs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(exec_id)
            .cloned()
            .ok_or_else(|| ContainerError::not_found(format!("No such exec instance: {exec_id}")))
    }

    fn update_exec(&self, exec_id: &str, f: impl FnOnce(&mut ExecRecord)) {
        let container = self
            .execs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get_mut(exec_id)
            .map(|r| {
                f(r);
                r.container_id.clone()
            });
        if let Some(id) = container {
            self.bump(&id);
        }
    }

    /// Forgets the execs of a removed container.
    pub(crate) fn forget_execs(&self, container_id: &str) {
        self.execs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, r| r.container_id != container_id);
    }

    /// POST /containers/{id}/exec.
    pub(crate) async fn exec_create(
        &self,
        req: &pb::ExecCreateRequest,
    ) -> Result<pb::ExecCreateResponse, ContainerError> {
        let spec = req.spec.clone().unwrap_or_default();
        let cmd = spec.cmd.clone();
        if cmd.is_empty() {
            return Err(ContainerError::invalid("No exec command specified"));
        }
        if spec.privileged {
            return Err(ContainerError::invalid(
                "privileged is not supported by Berth yet",
            ));
        }
        let c = self.find(&req.id)?;
        refuse_paused(&c)?;
        let client = self.running_shim(&c).await?;
        let p = c.process();
        let tty = spec.tty;
        let user = match spec.user.as_str() {
            "" => p.user.clone(),
            u => u.to_owned(),
        };
        let cwd = [&spec.working_dir, &p.working_dir]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or_else(|| "/".to_owned(), Clone::clone);
        let record = ExecRecord {
            id: names::new_id(),
            container_id: c.id.clone(),
            cmd: cmd.clone(),
            user: user.clone(),
            tty,
            privileged: spec.privileged,
            attach_stdin: spec.attach_stdin,
            attach_stdout: spec.attach_stdout,
            attach_stderr: spec.attach_stderr,
            detach_keys: spec.detach_keys.clone(),
            started: false,
            running: false,
            pid: 0,
            exit_code: None,
            created: std::time::Instant::now(),
        };
        // Legacy links' variables, as the container's process has them (dockerd's exec).
        let mut env = p.env.clone();
        env.extend(self.links_env(&c)?);
        let process = shimpb::ProcessSpec {
            args: cmd,
            env: exec_env(&env, &spec.env, tty),
            cwd,
            user: Some(process_user(&user, &p.additional_groups)),
            terminal: tty,
            stdin: record.attach_stdin,
        };
        client
            .exec(shimpb::ExecRequest {
                exec_id: record.id.clone(),
                process: Some(process),
            })
            .await
            .map_err(|e| ContainerError::shim(&e))?;
        {
            let mut execs = self
                .execs
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut finished: Vec<(std::time::Instant, String)> = execs
                .values()
                .filter(|r| r.container_id == c.id && r.exit_code.is_some())
                .map(|r| (r.created, r.id.clone()))
                .collect();
            if finished.len() >= FINISHED_KEPT {
                finished.sort();
                for (_, id) in &finished[..=finished.len() - FINISHED_KEPT] {
                    execs.remove(id);
                }
            }
            execs.insert(record.id.clone(), record.clone());
        }
        self.event(
            &c,
            &record.action("exec_create"),
            &[("execID", record.id.clone())],
        );
        Ok(pb::ExecCreateResponse { id: record.id })
    }

    /// POST /exec/{id}/start. Attached, the output is returned and the stream ends once the
    /// exit code is recorded.
    pub(crate) async fn exec_start(
        self: &Arc<Self>,
        req: &pb::ExecStartRequest,
    ) -> Result<AttachReceiver, ContainerError> {
        let record = self.exec_record(&req.exec_id)?;
        if record.running {
            return Err(ContainerError::conflict(format!(
                "Error: Exec command {} is already running",
                record.id
            )));
        }
        if record.started {
            return Err(ContainerError::conflict(format!(
                "Error: Exec command {} has already run",
                record.id
            )));
        }
        let c = self.find(&record.container_id)?;
        refuse_paused(&c)?;
        let client = self.running_shim(&c).await?;
        self.update_exec(&record.id, |r| r.started = true);
        let (tx, rx) = mpsc::channel(64);
        let (out_tx, mut out_rx) = mpsc::channel(64);
        if !req.detach {
            let a = Attacher {
                tx: out_tx,
                stdout: record.attach_stdout || record.tty,
                stderr: record.attach_stderr,
            };
            subscribe(&client, &record.id, a).await;
        } else {
            drop(out_tx);
        }
        let started = client
            .exec_start(shimpb::ExecStartRequest {
                exec_id: record.id.clone(),
            })
            .await
            .map_err(|e| ContainerError::shim(&e))?;
        if let Some(err) = &started.error {
            let text = crate::oci_error::exec_failure(&err.message);
            let _ = tx
                .send(Ok(pb::AttachFrame {
                    stream: 1,
                    data: format!("{text}\r\n").into_bytes(),
                }))
                .await;
        } else {
            self.update_exec(&record.id, |r| {
                r.running = true;
                r.pid = started.pid;
            });
            self.event(
                &c,
                &record.action("exec_start"),
                &[("execID", record.id.clone())],
            );
            if req.width > 0 && req.height > 0 && record.tty {
                let _ = client
                    .resize(shimpb::ResizeRequest {
                        exec_id: record.id.clone(),
                        width: req.width,
                        height: req.height,
                    })
                    .await;
            }
        }
        let this = self.clone();
        let detach = req.detach;
        tokio::spawn(async move {
            let exit = client
                .exec_wait(shimpb::ExecWaitRequest {
                    exec_id: record.id.clone(),
                })
                .await
                .map(|r| r.exit_code as i64)
                // The shim went away with the container: its processes were killed.
                .unwrap_or(137);
            this.update_exec(&record.id, |r| {
                r.running = false;
                r.exit_code = Some(exit);
            });
            this.event(
                &c,
                "exec_die",
                &[
                    ("execID", record.id.clone()),
                    ("exitCode", exit.to_string()),
                ],
            );
        });
        if !detach {
            let this = self.clone();
            let exec_id = req.exec_id.clone();
            tokio::spawn(async move {
                while let Some(f) = out_rx.recv().await {
                    if tx.send(f).await.is_err() {
                        break;
                    }
                }
                // The output is flushed: answer once the exit code is there.
                let _ = this.exec_exited(&exec_id).await;
            });
        }
        Ok(rx)
    }

    /// Returns once the exec's exit code is recorded.
    async fn exec_exited(&self, exec_id: &str) -> Result<(), ContainerError> {
        let rx = self.changed.subscribe();
        let container = self.exec_record(exec_id)?.container_id;
        on_changes(rx, &container, None, || {
            Ok(self.exec_record(exec_id)?.exit_code.map(drop))
        })
        .await
        .map(drop)
    }

    /// GET /exec/{id}/json.
    pub(crate) fn exec_inspect(&self, exec_id: &str) -> Result<pb::ExecInfo, ContainerError> {
        Ok(self.exec_record(exec_id)?.info())
    }

    /// The IDs of a container's execs that are running (inspect's ExecIDs).
    pub(crate) fn running_execs(&self, c: &Container) -> Vec<String> {
        self.execs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .filter(|r| r.container_id == c.id && r.running)
            .map(|r| r.id.clone())
            .collect()
    }
}

/// dockerd's refusal of an exec into a paused container (daemon/errors.go errExecPaused).
fn refuse_paused(c: &crate::container::Container) -> Result<(), ContainerError> {
    if c.state.running() && c.state.paused {
        return Err(ContainerError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            c.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_env_overrides_and_term() {
        let env = exec_env(
            &["PATH=/bin".to_owned(), "A=1".to_owned()],
            &["A=2".to_owned()],
            true,
        );
        assert_eq!(env, ["PATH=/bin", "A=2", "TERM=xterm"]);
        let env = exec_env(&["TERM=vt100".to_owned()], &[], true);
        assert_eq!(env, ["TERM=vt100"]);
        assert_eq!(exec_env(&[], &[], false), Vec::<String>::new());
    }
}
