//! Starting a container: the bundle, `berth-shim start`, the queued attaches, the release.

use std::{sync::Arc, time::Duration};

use berth_proto::shim::v1 as shimpb;
use berth_types::ErrorKind;
use serde_json::Value;

use crate::{
    attach::subscribe,
    container::{Status, now_rfc3339},
    container_error::ContainerError,
    lifecycle::{Containers, delete_shim},
    shim,
};

impl Containers {
    /// Starts a created or stopped container.
    pub(crate) async fn start(self: &Arc<Self>, name: &str) -> Result<(), ContainerError> {
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
        let net = match c.network_mode().as_str() {
            "default" | "none" => Value::from("new"),
            "host" => Value::from("host"),
            other => {
                return Err(ContainerError::invalid(format!(
                    "network mode {other:?} is not supported yet: use \"none\" or \"host\""
                )));
            }
        };
        let (uid, gid) = parse_user(c.config["User"].as_str().unwrap_or_default())?;
        let env = c.config["Env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let cwd = match c.config["WorkingDir"].as_str().unwrap_or_default() {
            "" => "/".to_owned(),
            w => w.to_owned(),
        };
        let log_path = self.log_path(&c.id);
        let spec = shim::BundleSpec {
            id: &c.id,
            rootfs: &c.rootfs,
            args: std::iter::once(c.path.clone())
                .chain(c.args.iter().cloned())
                .collect(),
            env,
            cwd,
            uid,
            gid,
            net,
            log_path: &log_path,
            max_size: self.log_max_size,
            max_file: self.log_max_file,
            stop_signal: c.stop_signal(),
            socket: self.socket_dir.join(format!("{}.sock", &c.id[..20])),
        };
        shim::write_bundle(&bundle, &spec)?;
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
                let mut client = shim::connect(&address).await?;
                let attachers = self
                    .pending_attaches
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .remove(&c.id)
                    .unwrap_or_default();
                for a in attachers {
                    subscribe(&mut client, a).await;
                }
                let started = client
                    .start(shimpb::StartRequest {})
                    .await
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim start: {e}")))?
                    .into_inner();
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
                    .map_err(|e| ContainerError::Internal(anyhow::anyhow!("shim state: {e}")))?
                    .into_inner();
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

/// Numeric `uid[:gid]`, or `root`.
fn parse_user(user: &str) -> Result<(u32, u32), ContainerError> {
    if user.is_empty() {
        return Ok((0, 0));
    }
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    let num = |s: &str| -> Result<u32, ContainerError> {
        match s {
            "" | "root" => Ok(0),
            s => s.parse().map_err(|_| {
                ContainerError::invalid(format!(
                    "unable to find user {s}: only numeric users are supported yet"
                ))
            }),
        }
    };
    let uid = num(u)?;
    let gid = if g.is_empty() { uid } else { num(g)? };
    Ok((uid, gid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users() {
        assert_eq!(parse_user("").unwrap(), (0, 0));
        assert_eq!(parse_user("1000").unwrap(), (1000, 1000));
        assert_eq!(parse_user("1:2").unwrap(), (1, 2));
        assert!(parse_user("nobody").is_err());
    }
}
