//! The container record as stored, its state, and the Docker JSON shapes built from it
//! (inspect and list summary).

use std::{
    collections::BTreeMap,
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Docker's zero time, for StartedAt/FinishedAt that never happened.
pub(crate) const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Container {
    pub(crate) id: String,
    /// With the leading slash.
    pub(crate) name: String,
    /// RFC 3339 with nanoseconds.
    pub(crate) created: String,
    pub(crate) path: String,
    pub(crate) args: Vec<String>,
    /// Docker's Config (after the image's defaults are merged).
    pub(crate) config: Value,
    pub(crate) host_config: Value,
    /// The image as the user named it.
    pub(crate) image: String,
    pub(crate) image_id: String,
    /// The root filesystem mount from images.Prepare.
    pub(crate) rootfs: Value,
    pub(crate) state: State,
    #[serde(default)]
    pub(crate) restart_count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Status {
    #[default]
    Created,
    Running,
    Exited,
}

impl Status {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) status: Status,
    pub(crate) pid: u32,
    pub(crate) exit_code: i64,
    pub(crate) error: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    pub(crate) oom_killed: bool,
    /// How many exits have been recorded (for `wait --condition next-exit`).
    #[serde(default)]
    pub(crate) exits: u64,
}

impl Default for State {
    fn default() -> State {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: ZERO_TIME.to_owned(),
            finished_at: ZERO_TIME.to_owned(),
            oom_killed: false,
            exits: 0,
        }
    }
}

/// A container's disk usage: the bytes in its writable layer, and those plus its image's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Sizes {
    pub(crate) rw: i64,
    pub(crate) root_fs: i64,
}

impl State {
    pub(crate) fn running(&self) -> bool {
        self.status == Status::Running
    }
}

/// Now as RFC 3339 with nanoseconds, UTC.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| ZERO_TIME.to_owned())
}

/// Nanoseconds since the epoch of an RFC 3339 time; None for the zero time or garbage.
pub(crate) fn parse_nanos(t: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()?;
    let n = t.unix_timestamp_nanos();
    (n > 0).then_some(n as i64)
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Docker's `units.HumanDuration`.
pub(crate) fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h) = (s / 60, s / 3600);
    if s < 1 {
        "Less than a second".to_owned()
    } else if s == 1 {
        "1 second".to_owned()
    } else if s < 60 {
        format!("{s} seconds")
    } else if m == 1 {
        "About a minute".to_owned()
    } else if m < 60 {
        format!("{m} minutes")
    } else if h.max(1) == 1 && m < 120 {
        "About an hour".to_owned()
    } else if h < 48 {
        format!("{h} hours")
    } else if h < 24 * 7 * 2 {
        format!("{} days", h / 24)
    } else if h < 24 * 30 * 2 {
        format!("{} weeks", h / 24 / 7)
    } else if h < 24 * 365 * 2 {
        format!("{} months", h / 24 / 30)
    } else {
        format!("{} years", h / 24 / 365)
    }
}

impl Container {
    pub(crate) fn short_name(&self) -> &str {
        self.name.trim_start_matches('/')
    }

    pub(crate) fn stop_signal(&self) -> String {
        self.config["StopSignal"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("SIGTERM")
            .to_owned()
    }

    pub(crate) fn network_mode(&self) -> String {
        match self.host_config["NetworkMode"].as_str().unwrap_or_default() {
            "" => "default".to_owned(),
            m => m.to_owned(),
        }
    }

    /// "Up 3 seconds", "Exited (0) 2 seconds ago", "Created".
    pub(crate) fn status_text(&self) -> String {
        let since = |t: &str| parse_nanos(t).map(|n| now_secs() - n / 1_000_000_000);
        match self.state.status {
            Status::Created => "Created".to_owned(),
            Status::Running => format!(
                "Up {}",
                human_duration(since(&self.state.started_at).unwrap_or(0))
            ),
            Status::Exited => match since(&self.state.finished_at) {
                Some(s) => format!(
                    "Exited ({}) {} ago",
                    self.state.exit_code,
                    human_duration(s)
                ),
                None => format!("Exited ({})", self.state.exit_code),
            },
        }
    }

    /// The summary's Command: the path and the arguments, those with a space in single quotes
    /// (as moby shows them).
    pub(crate) fn command(&self) -> String {
        std::iter::once(self.path.clone())
            .chain(self.args.iter().map(|a| {
                if a.contains(' ') {
                    format!("'{a}'")
                } else {
                    a.clone()
                }
            }))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Seconds since the epoch of the creation.
    pub(crate) fn created_secs(&self) -> i64 {
        parse_nanos(&self.created).unwrap_or(0) / 1_000_000_000
    }

    /// Config.Labels as strings.
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        self.config["Labels"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect()
    }

    /// GET /containers/json: one summary, with SizeRw and SizeRootFs when `sizes` are given
    /// (absent when zero, as moby leaves them).
    pub(crate) fn summary(&self, sizes: Option<Sizes>) -> Value {
        let mut v = json!({
            "Id": self.id,
            "Names": [self.name],
            "Image": self.image,
            "ImageID": self.image_id,
            "Command": self.command(),
            "Created": self.created_secs(),
            "Ports": [],
            "Labels": self.labels(),
            "State": self.state.status.as_str(),
            "Status": self.status_text(),
            "HostConfig": {"NetworkMode": self.network_mode()},
            "NetworkSettings": {"Networks": {}},
            "Mounts": [],
        });
        if let Some(s) = sizes {
            if s.rw != 0 {
                v["SizeRw"] = s.rw.into();
            }
            if s.root_fs != 0 {
                v["SizeRootFs"] = s.root_fs.into();
            }
        }
        v
    }

    /// GET /containers/{id}/json.
    pub(crate) fn inspect(&self, log_path: &str, bundle: &std::path::Path) -> Value {
        let etc = |f: &str| bundle.join("etc").join(f).display().to_string();
        let s = &self.state;
        json!({
            "Id": self.id,
            "Created": self.created,
            "Path": self.path,
            "Args": self.args,
            "State": {
                "Status": s.status.as_str(),
                "Running": s.running(),
                "Paused": false,
                "Restarting": false,
                "OOMKilled": s.oom_killed,
                "Dead": false,
                "Pid": if s.running() { s.pid } else { 0 },
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": s.started_at,
                "FinishedAt": s.finished_at,
            },
            "Image": self.image_id,
            "ResolvConfPath": etc("resolv.conf"),
            "HostnamePath": etc("hostname"),
            "HostsPath": etc("hosts"),
            "LogPath": log_path,
            "Name": self.name,
            "RestartCount": self.restart_count,
            "Driver": "overlay2",
            "Platform": "linux",
            "MountLabel": "",
            "ProcessLabel": "",
            "AppArmorProfile": "",
            "ExecIDs": null,
            "HostConfig": self.host_config,
            "GraphDriver": {"Name": "overlay2", "Data": graph_data(&self.rootfs)},
            "Mounts": [],
            "Config": self.config,
            "NetworkSettings": {
                "Bridge": "",
                "SandboxID": "",
                "SandboxKey": "",
                "Ports": {},
                "Networks": {},
            },
        })
    }
}

/// LowerDir/UpperDir/WorkDir of an overlay mount.
fn graph_data(rootfs: &Value) -> Value {
    let mut data = serde_json::Map::new();
    for o in rootfs["options"].as_array().into_iter().flatten() {
        let Some((k, v)) = o.as_str().and_then(|o| o.split_once('=')) else {
            continue;
        };
        let key = match k {
            "lowerdir" => "LowerDir",
            "upperdir" => "UpperDir",
            "workdir" => "WorkDir",
            _ => continue,
        };
        data.insert(key.to_owned(), Value::String(v.to_owned()));
    }
    Value::Object(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_match_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(3), "3 seconds");
        assert_eq!(human_duration(61), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3700), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
    }

    #[test]
    fn summary_quotes_arguments_and_carries_sizes() {
        let c = Container {
            id: "a".repeat(64),
            name: "/w".to_owned(),
            created: now_rfc3339(),
            path: "sh".to_owned(),
            args: vec!["-c".to_owned(), "echo hi".to_owned()],
            config: json!({"Labels": {"k": "v"}}),
            host_config: json!({}),
            image: "busybox".to_owned(),
            image_id: "sha256:1234".to_owned(),
            rootfs: Value::Null,
            state: State::default(),
            restart_count: 0,
        };
        let s = c.summary(None);
        assert_eq!(s["Command"], "sh -c 'echo hi'");
        assert_eq!(s["Labels"], json!({"k": "v"}));
        assert!(s.get("SizeRw").is_none() && s.get("SizeRootFs").is_none());
        let s = c.summary(Some(Sizes { rw: 0, root_fs: 42 }));
        assert!(s.get("SizeRw").is_none());
        assert_eq!(s["SizeRootFs"], 42);
        let s = c.summary(Some(Sizes { rw: 7, root_fs: 49 }));
        assert_eq!(
            (s["SizeRw"].as_i64(), s["SizeRootFs"].as_i64()),
            (Some(7), Some(49))
        );
        assert_eq!(c.labels().get("k").map(String::as_str), Some("v"));
    }

    #[test]
    fn times_round_trip() {
        let now = now_rfc3339();
        assert!(parse_nanos(&now).unwrap() > 0);
        assert_eq!(parse_nanos(ZERO_TIME), None);
    }
}
