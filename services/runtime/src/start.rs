//! Starting a container: the bundle, `berth-shim start`, the queued attaches, the release.

use std::{sync::Arc, time::Duration};

use berth_errors::HasKind;
use berth_proto::runtime::v1 as pb;
use berth_shim_proto::v1 as shimpb;
use berth_types::ErrorKind;
use serde_json::{Value, json};

use crate::{
    attach::subscribe,
    container::{Status, now_rfc3339},
    container_error::ContainerError,
    lifecycle::{Containers, delete_shim},
    shim,
    user::process_user,
};

impl Containers {
    /// Starts a created or stopped container. A container that fails to start is removed
    /// when it has AutoRemove (`docker run --rm`), as the CLI's wait for removal expects.
    pub(crate) async fn start(self: &Arc<Self>, name: &str) -> Result<(), ContainerError> {
        let r = self.start_locked(name).await;
        if let Err(e) = &r
            && !matches!(e.kind(), ErrorKind::NotModified | ErrorKind::NotFound)
            && let Ok(c) = self.find(name)
            && !c.state.running()
            && c.host_config["AutoRemove"].as_bool() == Some(true)
        {
            let req = pb::RemoveRequest {
                id: c.id.clone(),
                force: true,
                volumes: true,
            };
            if let Err(e) = self.remove(&req).await {
                tracing::warn!(error = %e, id = %c.id, "auto-remove after a failed start");
            }
        }
        r
    }

    async fn start_locked(self: &Arc<Self>, name: &str) -> Result<(), ContainerError> {
        let _guard = self.lock.lock().await;
        let mut c = self.find(name)?;
        if c.state.running() {
            return Err(ContainerError::new(ErrorKind::NotModified, ""));
        }
        if c.rootfs.is_null() {
            return Err(ContainerError::conflict(format!(
                "container {} has no root filesystem",
                c.id
            )));
        }
        let bundle = self.bundle(&c.id);
        delete_shim(&bundle).await;
        // Execs belong to one run of the container.
        self.forget_execs(&c.id);
        let net = match c.network_mode().as_str() {
            "default" | "none" => Value::from("new"),
            "host" => Value::from("host"),
            other => {
                return Err(ContainerError::invalid(format!(
                    "network mode {other:?} is not supported yet: use \"none\" or \"host\""
                )));
            }
        };
        let user = process_user(c.config["User"].as_str().unwrap_or_default());
        let tty = c.config["Tty"].as_bool().unwrap_or(false);
        let env = crate::exec::exec_env(&crate::exec::strings(&c.config["Env"]), &[], tty);
        let cwd = match c.config["WorkingDir"].as_str().unwrap_or_default() {
            "" => "/".to_owned(),
            w => w.to_owned(),
        };
        let mut process = json!({
            "args": std::iter::once(c.path.clone()).chain(c.args.iter().cloned()).collect::<Vec<_>>(),
            "env": env,
            "cwd": cwd,
            "user": {"uid": user.uid, "gid": user.gid, "additional_gids": user.additional_gids, "name": user.name},
            "terminal": tty,
            "stdin": c.config["OpenStdin"].as_bool().unwrap_or(false),
        });
        // HostConfig.ConsoleSize is [height, width].
        let size = &c.host_config["ConsoleSize"];
        if let (true, Some(h), Some(w)) = (tty, size[0].as_u64(), size[1].as_u64())
            && h > 0
            && w > 0
        {
            process["console_size"] = json!({"width": w, "height": h});
        }
        let hostname = match c.config["Hostname"].as_str().unwrap_or_default() {
            "" => c.id[..12].to_owned(),
            h => h.to_owned(),
        };
        let log_path = self.log_path(&c.id);
        let spec = shim::BundleSpec {
            id: &c.id,
            rootfs: &c.rootfs,
            process,
            hostname,
            init: c.host_config["Init"].as_bool().unwrap_or(false),
            net,
            log_path: &log_path,
            max_size: self.log_max_size,
            max_file: self.log_max_file,
            stop_signal: c.stop_signal(),
            socket: self.socket_dir.join(format!("{}.sock", &c.id[..20])),
        };
        shim::write_bundle(&bundle, &spec)?;
        // Taken now: if the start fails they are dropped, which ends their streams.
        let attachers = self
            .pending_attaches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&c.id)
            .unwrap_or_default();
        match shim::start(&bundle).await {
            Err((kind, message)) => {
                let code = match kind.as_str() {
                    "not-found" => 127,
                    "permission" => 126,
                    _ => 125,
                };
                let text = format!("failed to create task for container: {message}");
                c.state.exit_code = code;
                c.state.error = text.clone();
                self.store.put(&c)?;
                self.bump();
                Err(ContainerError::new(
                    if code == 125 {
                        ErrorKind::Internal
                    } else {
                        ErrorKind::InvalidArgument
                    },
                    text,
                ))
            }
            Ok(address) => {
                let client = shim::connect(&address).await?;
                for a in attachers {
                    subscribe(&client, "", a).await;
                }
                let started = client
                    .start(shimpb::StartRequest {})
                    .await
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim start: {e}")))?;
                if let Some(err) = started.error {
                    let code = match err.kind.as_str() {
                        "not-found" => 127,
                        "permission" => 126,
                        _ => 125,
                    };
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        client.wait(shimpb::WaitRequest {}),
                    )
                    .await;
                    delete_shim(&bundle).await;
                    let text = format!("failed to create task for container: {}", err.message);
                    c.state.exit_code = code;
                    c.state.error = text.clone();
                    self.store.put(&c)?;
                    self.bump();
                    return Err(ContainerError::new(
                        if code == 125 {
                            ErrorKind::Internal
                        } else {
                            ErrorKind::InvalidArgument
                        },
                        text,
                    ));
                }
                let st = client
                    .state(shimpb::StateRequest {})
                    .await
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim state: {e}")))?;
                c.state.status = Status::Running;
                c.state.pid = st.pid;
                c.state.exit_code = 0;
                c.state.error.clear();
                c.state.oom_killed = false;
                c.state.started_at = now_rfc3339();
                self.store.put(&c)?;
                self.bump();
                self.event(&c, "start", &[]);
                self.watch_exit(c.id.clone());
                Ok(())
            }
        }
    }
}
