//! RUN containers through the runtime service over gRPC, as moby's `containerManager`:
//! created from the step's image with the build's network, hosts, resources, shm size and
//! ulimits, attached before the start, waited for, removed with their anonymous volumes.
//! The channel connects lazily, so the images service works without the runtime; a RUN then
//! fails saying the runtime is unavailable.

use berth_errors::kind_of;
use berth_proto::runtime::v1::{self as rpb, runtime_client::RuntimeClient};
use berth_types::ErrorKind;
use serde_json::Value;
use tonic::transport::Channel;

use super::runner::{RunOutput, RunStep, StepRunner};
use crate::ImagesError;

pub(crate) struct RuntimeRunner {
    client: RuntimeClient<Channel>,
    rt: tokio::runtime::Handle,
}

impl RuntimeRunner {
    pub(crate) fn new(channel: Channel, rt: tokio::runtime::Handle) -> RuntimeRunner {
        RuntimeRunner {
            client: RuntimeClient::new(channel),
            rt,
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
        let req = rpb::CreateRequest {
            name: String::new(),
            spec: Some(spec_of(step)),
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
        // `out` blocks on the build's stream: called outside the runtime.
        while let Some(f) = self.rt.block_on(frames.message()).map_err(|s| remote(&s))? {
            let text = String::from_utf8_lossy(&f.data).into_owned();
            out(if f.stream == 2 {
                RunOutput::Stderr(text)
            } else {
                RunOutput::Stdout(text)
            });
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
