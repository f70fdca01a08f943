//! RUN containers through the runtime service over gRPC, as moby's `containerManager`:
//! created from the step's image with the build's network, hosts, resources, shm size and
//! ulimits, attached before the start, waited for, removed with their anonymous volumes.
//! The channel connects lazily, so the images service works without the runtime; a RUN then
//! fails saying the runtime is unavailable.

use berth_errors::kind_of;
use berth_proto::runtime::v1::{self as rpb, runtime_client::RuntimeClient};
use berth_service::Channel;
use berth_types::ErrorKind;
use serde_json::Value;

use super::runner::{RunOutput, RunStep, StepRunner};
use crate::ImagesError;

pub(crate) struct RuntimeRunner {
    client: RuntimeClient<Channel>,
    rt: tokio::runtime::Handle,
    /// The build's output: once its reader is gone (the client went away), a running step's
    /// container is removed, as moby does on cancellation.
    output: tokio::sync::mpsc::Sender<berth_proto::images::v1::BuildMessage>,
    /// Which service instance made the container ([`super::reap`]).
    labels: std::collections::HashMap<String, String>,
}

impl RuntimeRunner {
    pub(crate) fn new(
        channel: Channel,
        rt: tokio::runtime::Handle,
        output: tokio::sync::mpsc::Sender<berth_proto::images::v1::BuildMessage>,
        labels: std::collections::HashMap<String, String>,
    ) -> RuntimeRunner {
        RuntimeRunner {
            client: RuntimeClient::new(channel),
            rt,
            output,
            labels,
        }
    }
}

/// The runtime's error, its kind kept; a runtime that cannot be reached says so.
fn remote(s: &tonic::Status) -> ImagesError {
    let kind = kind_of(s);
    let message = if kind == ErrorKind::Unavailable {
        format!(
            "the runtime service is unavailable (RUN needs it): {}",
            s.message()
        )
    } else {
        s.message().to_owned()
    };
    ImagesError::Remote { kind, message }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn string(v: Option<&Value>) -> String {
    v.and_then(Value::as_str).unwrap_or_default().to_owned()
}

/// `pending` and `data` as text, but an incomplete character at the end, kept in `pending`.
fn utf8_prefix(pending: &mut Vec<u8>, data: &[u8]) -> String {
    pending.extend_from_slice(data);
    let keep = match std::str::from_utf8(pending) {
        Err(e) if e.error_len().is_none() => pending.len() - e.valid_up_to(),
        _ => 0,
    };
    let rest = pending.split_off(pending.len() - keep);
    let text = String::from_utf8_lossy(pending).into_owned();
    *pending = rest;
    text
}

/// The container spec of a RUN step (moby's `hostConfigFromOptions` and the run config).
pub(crate) fn spec_of(step: &RunStep<'_>) -> rpb::ContainerSpec {
    let c = step.config;
    let o = step.options;
    let mode = match o.network_mode.as_str() {
        "" | "default" => "bridge".to_owned(),
        m => m.to_owned(),
    };
    rpb::ContainerSpec {
        image: step.image.to_string(),
        process: Some(rpb::Process {
            entrypoint: Some(rpb::StringList { values: vec![] }),
            cmd: Some(rpb::StringList {
                values: strings(c.get("Cmd")),
            }),
            env: strings(c.get("Env")),
            working_dir: string(c.get("WorkingDir")),
            user: string(c.get("User")),
            shell: strings(c.get("Shell")),
            rlimits: o
                .ulimits
                .iter()
                .map(|u| rpb::Rlimit {
                    name: u.name.clone(),
                    soft: u.soft,
                    hard: u.hard,
                })
                .collect(),
            ..Default::default()
        }),
        resources: Some(rpb::Resources {
            memory: o.memory,
            memory_swap: o.memory_swap,
            cpu_shares: o.cpu_shares,
            cpu_period: o.cpu_period,
            cpu_quota: o.cpu_quota,
            cpuset_cpus: o.cpuset_cpus.clone(),
            cpuset_mems: o.cpuset_mems.clone(),
            cgroup_parent: o.cgroup_parent.clone(),
            shm_size: o.shm_size,
            ..Default::default()
        }),
        network: Some(rpb::NetworkSpec {
            mode,
            extra_hosts: o.extra_hosts.clone(),
            ..Default::default()
        }),
        // As moby's build containers: no log is kept (the output is the build's).
        log: Some(rpb::LogSpec {
            driver: "none".to_owned(),
            ..Default::default()
        }),
        // No health check runs in a build container.
        health_check: Some(rpb::HealthCheck {
            test: vec!["NONE".to_owned()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl StepRunner for RuntimeRunner {
    fn create(&self, step: &RunStep<'_>) -> Result<String, ImagesError> {
        let mut client = self.client.clone();
        let mut spec = spec_of(step);
        spec.labels.extend(self.labels.clone());
        let req = rpb::CreateRequest {
            name: String::new(),
            spec: Some(spec),
        };
        self.rt
            .block_on(client.create(req))
            .map(|r| r.into_inner().id)
            .map_err(|s| remote(&s))
    }

    fn run(&self, id: &str, out: &mut dyn FnMut(RunOutput)) -> Result<i64, ImagesError> {
        let mut client = self.client.clone();
        let mut frames = self.rt.block_on(async {
            let frames = client
                .attach(rpb::AttachRequest {
                    id: id.to_owned(),
                    stdout: true,
                    stderr: true,
                })
                .await
                .map_err(|s| remote(&s))?
                .into_inner();
            client
                .start(rpb::ContainerRef { id: id.to_owned() })
                .await
                .map_err(|s| remote(&s))?;
            Ok::<_, ImagesError>(frames)
        })?;
        // `out` blocks on the build's stream: called outside the runtime. A character split
        // between two frames waits for its end.
        let (mut pending_out, mut pending_err) = (Vec::new(), Vec::new());
        loop {
            let next = self.rt.block_on(async {
                tokio::select! {
                    m = frames.message() => Some(m),
                    () = self.output.closed() => None,
                }
            });
            let Some(next) = next else {
                self.remove(id)?;
                return Err(ImagesError::Remote {
                    kind: ErrorKind::Unavailable,
                    message: "build cancelled".to_owned(),
                });
            };
            let Some(f) = next.map_err(|s| remote(&s))? else {
                break;
            };
            let (pending, wrap): (_, fn(String) -> RunOutput) = if f.stream == 2 {
                (&mut pending_err, RunOutput::Stderr)
            } else {
                (&mut pending_out, RunOutput::Stdout)
            };
            let text = utf8_prefix(pending, &f.data);
            if !text.is_empty() {
                out(wrap(text));
            }
        }
        if !pending_out.is_empty() {
            out(RunOutput::Stdout(
                String::from_utf8_lossy(&pending_out).into_owned(),
            ));
        }
        if !pending_err.is_empty() {
            out(RunOutput::Stderr(
                String::from_utf8_lossy(&pending_err).into_owned(),
            ));
        }
        self.rt.block_on(async {
            let mut wait = client
                .wait(rpb::WaitRequest {
                    id: id.to_owned(),
                    condition: "not-running".to_owned(),
                })
                .await
                .map_err(|s| remote(&s))?
                .into_inner();
            let w = wait
                .message()
                .await
                .map_err(|s| remote(&s))?
                .ok_or_else(|| ImagesError::Remote {
                    kind: ErrorKind::Unavailable,
                    message: format!("waiting for container {id}: the runtime ended the call"),
                })?;
            Ok(w.status_code)
        })
    }

    fn remove(&self, id: &str) -> Result<(), ImagesError> {
        let mut client = self.client.clone();
        let req = rpb::RemoveRequest {
            id: id.to_owned(),
            force: true,
            volumes: true,
        };
        match self.rt.block_on(client.remove(req)) {
            Ok(_) => Ok(()),
            Err(s) if kind_of(&s) == ErrorKind::NotFound => Ok(()),
            Err(s) => Err(remote(&s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use berth_proto::images::v1 as pb;
    use serde_json::json;

    use super::*;

    #[test]
    fn spec_carries_the_config_and_the_build_options() {
        let config = json!({"Cmd": ["/bin/sh", "-c", "echo hi"], "Env": ["A=b"],
            "WorkingDir": "/w", "User": "1000", "Shell": ["/bin/sh", "-c"]});
        let options = pb::BuildRunOptions {
            network_mode: "default".to_owned(),
            extra_hosts: vec!["h:10.0.0.1".to_owned()],
            memory: 1 << 26,
            shm_size: 1 << 20,
            cpuset_cpus: "0".to_owned(),
            ulimits: vec![pb::BuildUlimit {
                name: "nofile".to_owned(),
                soft: 10,
                hard: 20,
            }],
            ..Default::default()
        };
        let image: berth_types::Digest = format!("sha256:{}", "a".repeat(64)).parse().unwrap();
        let spec = spec_of(&RunStep {
            image: &image,
            config: config.as_object().unwrap(),
            options: &options,
        });
        let p = spec.process.unwrap();
        assert_eq!(p.entrypoint.unwrap().values, Vec::<String>::new());
        assert_eq!(p.cmd.unwrap().values, ["/bin/sh", "-c", "echo hi"]);
        assert_eq!(
            (p.env, p.working_dir, p.user),
            (vec!["A=b".to_owned()], "/w".to_owned(), "1000".to_owned())
        );
        assert_eq!((p.rlimits[0].soft, p.rlimits[0].hard), (10, 20));
        let n = spec.network.unwrap();
        assert_eq!((n.mode.as_str(), n.extra_hosts.len()), ("bridge", 1));
        let r = spec.resources.unwrap();
        assert_eq!(
            (r.memory, r.shm_size, r.cpuset_cpus.as_str()),
            (1 << 26, 1 << 20, "0")
        );
        assert_eq!(spec.image, image.to_string());
        assert_eq!(spec.log.unwrap().driver, "none");
    }

    #[test]
    fn characters_split_across_frames_are_kept_whole() {
        let mut pending = Vec::new();
        let e = "é".as_bytes();
        assert_eq!(utf8_prefix(&mut pending, &[b'a', e[0]]), "a");
        assert_eq!(utf8_prefix(&mut pending, &[e[1], b'b']), "éb");
        assert!(pending.is_empty());
        assert_eq!(utf8_prefix(&mut pending, &[0xff, b'c']), "\u{fffd}c");
    }

    #[test]
    fn an_unreachable_runtime_is_named() {
        let e = remote(&tonic::Status::unavailable("connection refused"));
        assert_eq!(
            e.to_string(),
            "the runtime service is unavailable (RUN needs it): connection refused"
        );
        let e = remote(&berth_errors::to_status(
            ErrorKind::NotFound,
            "No such image: x",
        ));
        assert_eq!(e.to_string(), "No such image: x");
        assert_eq!(berth_errors::HasKind::kind(&e), ErrorKind::NotFound);
    }
}
