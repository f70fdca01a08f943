//! Pull work from NATS. Every images instance subscribes to `berth.jobs.pull` in the queue group
//! `berth-images`, so each job goes to one of them and more instances share the load. A job is
//! a request (with a reply subject) whose payload is JSON:
//!
//! ```json
//! {"reference": "127.0.0.1:5000/busybox:latest", "platform": "linux/amd64",
//!  "auth": {"username": "u", "password": "p"}, "id": "job-42"}
//! ```
//!
//! `platform`, `auth` and `id` are optional. While it pulls, the instance publishes Docker's
//! JSONMessage progress lines on `berth.jobs.pull.<id>.progress` (subscribe before sending the
//! job to see them all); then it replies
//! `{"job": "<id>", "id": "sha256:<image id>", "error": "", "instance": "<uuid>", "pid": N}`,
//! with `error` (and `error_kind`) set and `id` empty when the pull failed. `instance` is
//! unique per process start and `pid` matches the process's heartbeat.

use std::sync::Arc;

use berth_bus::{Bus, subjects::JOBS_PULL};
use berth_errors::HasKind;
use berth_types::ImageRef;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::{Semaphore, mpsc};

use crate::{
    ImagesError,
    platform::Platform,
    progress::{Progress, ProgressSink},
    pull::PullSpec,
    registry::Credentials,
    service::ImageService,
};

/// The queue group every images instance joins.
pub(crate) const QUEUE_GROUP: &str = "berth-images";
/// Jobs one instance runs at once; more wait in its subscription.
const MAX_RUNNING: usize = 4;

#[derive(Debug, Default, Deserialize)]
struct JobAuth {
    #[serde(default, alias = "Username")]
    username: String,
    #[serde(default, alias = "Password")]
    password: String,
    #[serde(default, alias = "registrytoken", alias = "RegistryToken")]
    registry_token: String,
}

/// One job as sent on `berth.jobs.pull`.
#[derive(Debug, Deserialize)]
struct PullJob {
    reference: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    auth: Option<JobAuth>,
    #[serde(default)]
    id: Option<String>,
}

/// The reply to a job.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct JobResult {
    pub(crate) job: String,
    /// The pulled image's ID; empty on failure.
    pub(crate) id: String,
    pub(crate) error: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) error_kind: String,
    pub(crate) instance: String,
    pub(crate) pid: u32,
}

/// A job ID is one subject token.
fn valid_job_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The subject a job's progress is published on.
pub(crate) fn progress_subject(job: &str) -> String {
    format!("{JOBS_PULL}.{job}.progress")
}

impl PullJob {
    fn parse(payload: &[u8]) -> Result<(String, PullSpec), ImagesError> {
        let job: PullJob = serde_json::from_slice(payload)
            .map_err(|e| ImagesError::InvalidArgument(format!("invalid pull job: {e}")))?;
        let id = match job.id {
            Some(id) if valid_job_id(&id) => id,
            Some(id) => {
                return Err(ImagesError::InvalidArgument(format!(
                    "invalid job id {id:?}: only letters, digits, - and _ are allowed"
                )));
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let reference: ImageRef =
            job.reference
                .parse()
                .map_err(|e: berth_types::ReferenceError| {
                    ImagesError::InvalidArgument(e.to_string())
                })?;
        let auth = job.auth.unwrap_or_default();
        Ok((
            id,
            PullSpec {
                reference,
                platform: Platform::parse(&job.platform)?,
                credentials: Credentials {
                    username: auth.username,
                    password: auth.password,
                    registry_token: auth.registry_token,
                },
            },
        ))
    }
}

fn progress_json(p: &Progress) -> Vec<u8> {
    let mut v = if p.total > 0 {
        json!({"status": p.status, "progressDetail": {"current": p.current, "total": p.total}})
    } else {
        json!({"status": p.status, "progressDetail": {}})
    };
    if !p.id.is_empty() {
        v["id"] = json!(p.id);
    }
    serde_json::to_vec(&v).expect("a JSON value serializes")
}

/// Subscribes to `berth.jobs.pull` in the queue group and runs the jobs that arrive, until the
/// process ends. The subscription survives NATS restarts (the client re-subscribes).
pub(crate) fn spawn(domain: Arc<ImageService>, bus: Bus) -> tokio::task::JoinHandle<()> {
    let instance = uuid::Uuid::new_v4().to_string();
    tokio::spawn(async move {
        let client = bus.client().clone();
        let mut jobs = match client
            .queue_subscribe(JOBS_PULL, QUEUE_GROUP.to_owned())
            .await
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot subscribe to pull jobs");
                return;
            }
        };
        tracing::info!(subject = JOBS_PULL, queue = QUEUE_GROUP, %instance, "taking pull jobs");
        let running = Arc::new(Semaphore::new(MAX_RUNNING));
        while let Some(msg) = jobs.next().await {
            let Ok(permit) = running.clone().acquire_owned().await else {
                break;
            };
            let (domain, client, instance) = (domain.clone(), client.clone(), instance.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let (tx, mut rx) = mpsc::channel::<Progress>(64);
                let parsed = PullJob::parse(&msg.payload);
                let name = job_name(&msg.payload);
                let job = parsed
                    .as_ref()
                    .map_or_else(|_| String::new(), |(id, _)| id.clone());
                let subject = progress_subject(&job);
                let forward = {
                    let client = client.clone();
                    async move {
                        while let Some(p) = rx.recv().await {
                            let _ = client
                                .publish(subject.clone(), progress_json(&p).into())
                                .await;
                        }
                    }
                };
                let work = async move {
                    let (_, spec) = parsed?;
                    tracing::info!(reference = %name, "pull job");
                    domain.pull(spec, ProgressSink::new(tx)).await
                };
                let (result, ()) = tokio::join!(work, forward);
                let reply = JobResult {
                    job,
                    id: result
                        .as_ref()
                        .map_or_else(|_| String::new(), |r| r.id.to_string()),
                    error: result
                        .as_ref()
                        .err()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    error_kind: result
                        .as_ref()
                        .err()
                        .map(|e| e.kind().as_str().to_owned())
                        .unwrap_or_default(),
                    instance,
                    pid: std::process::id(),
                };
                if let Some(to) = msg.reply {
                    let body = serde_json::to_vec(&reply).expect("a result serializes");
                    if let Err(e) = client.publish(to, body.into()).await {
                        tracing::warn!(error = %e, "cannot reply to a pull job");
                    }
                }
            });
        }
    })
}

/// The reference a job names, for logs.
fn job_name(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v["reference"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_parse_and_check_their_ids() {
        let (id, spec) = PullJob::parse(
            br#"{"reference": "127.0.0.1:5000/bb:1", "auth": {"username": "u", "password": "p"}, "id": "job-1"}"#,
        )
        .unwrap();
        assert_eq!(id, "job-1");
        assert_eq!(spec.reference.to_string(), "127.0.0.1:5000/bb:1");
        assert_eq!(spec.credentials.username, "u");
        assert_eq!(spec.platform, Platform::host());
        let (generated, _) = PullJob::parse(br#"{"reference": "busybox"}"#).unwrap();
        assert!(valid_job_id(&generated));
        for bad in [
            &br#"{"reference": "busybox", "id": "a.b"}"#[..],
            br#"{"reference": "Not Valid"}"#,
            br#"{"ref": "busybox"}"#,
            b"not json",
        ] {
            assert!(
                PullJob::parse(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(progress_subject("j1"), "berth.jobs.pull.j1.progress");
        let p = progress_json(&Progress {
            id: "abc".to_owned(),
            status: "Downloading".to_owned(),
            current: 1,
            total: 2,
        });
        let v: serde_json::Value = serde_json::from_slice(&p).unwrap();
        assert_eq!(v["progressDetail"]["total"], 2);
        assert_eq!(v["id"], "abc");
    }
}
