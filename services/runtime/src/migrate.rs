//! Container records as the first Berth stored them (JSON with Docker's Config and HostConfig)
//! become typed records. Only what that Berth acted on is carried over: it honored nothing
//! else.

use std::collections::HashMap;

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;

use crate::container::{Container, State, Status, parse_nanos};

/// A record is legacy when it is a JSON object.
pub(crate) fn is_legacy(bytes: &[u8]) -> bool {
    bytes.first() == Some(&b'{')
}

#[derive(Deserialize)]
struct Legacy {
    id: String,
    name: String,
    created: String,
    path: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    config: LegacyConfig,
    #[serde(default)]
    host_config: LegacyHostConfig,
    #[serde(default)]
    image: String,
    #[serde(default)]
    image_id: String,
    #[serde(default)]
    rootfs: Option<LegacyMount>,
    state: LegacyState,
    #[serde(default)]
    restart_count: u64,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LegacyConfig {
    hostname: String,
    domainname: String,
    user: String,
    env: Vec<String>,
    cmd: Option<Vec<String>>,
    entrypoint: Option<Vec<String>>,
    working_dir: String,
    labels: HashMap<String, String>,
    stop_signal: String,
    stop_timeout: Option<i32>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LegacyHostConfig {
    network_mode: String,
    auto_remove: bool,
    init: Option<bool>,
    console_size: Option<[u32; 2]>,
    log_config: LegacyLog,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct LegacyLog {
    #[serde(rename = "Type")]
    kind: String,
    config: HashMap<String, String>,
}

#[derive(Deserialize)]
struct LegacyMount {
    #[serde(rename = "type")]
    kind: String,
    source: String,
    #[serde(default)]
    options: Vec<String>,
}

#[derive(Deserialize)]
struct LegacyState {
    status: String,
    #[serde(default)]
    pid: u32,
    #[serde(default)]
    exit_code: i64,
    #[serde(default)]
    error: String,
    #[serde(default)]
    started_at: String,
    #[serde(default)]
    finished_at: String,
    #[serde(default)]
    oom_killed: bool,
    #[serde(default)]
    exits: u64,
}

/// The typed record of a legacy one.
pub(crate) fn container(bytes: &[u8]) -> anyhow::Result<Container> {
    let l: Legacy = serde_json::from_slice(bytes)?;
    let cfg = l.config;
    let hc = l.host_config;
    let [height, width] = hc.console_size.unwrap_or_default();
    let mode = match hc.network_mode.as_str() {
        "" | "default" => "bridge".to_owned(),
        m => m.to_owned(),
    };
    let spec = pb::ContainerSpec {
        image: l.image,
        process: Some(pb::Process {
            entrypoint: cfg.entrypoint.map(|values| pb::StringList { values }),
            cmd: cfg.cmd.map(|values| pb::StringList { values }),
            env: cfg.env,
            working_dir: cfg.working_dir,
            user: cfg.user,
            tty: cfg.tty,
            open_stdin: cfg.open_stdin,
            stdin_once: cfg.stdin_once,
            attach_stdin: cfg.attach_stdin,
            attach_stdout: cfg.attach_stdout,
            attach_stderr: cfg.attach_stderr,
            console_height: height,
            console_width: width,
            ..Default::default()
        }),
        hostname: cfg.hostname,
        domainname: cfg.domainname,
        labels: cfg.labels,
        stop_signal: cfg.stop_signal,
        stop_timeout: cfg.stop_timeout,
        auto_remove: hc.auto_remove,
        init: hc.init.unwrap_or(false),
        network: Some(pb::NetworkSpec {
            mode,
            ..Default::default()
        }),
        log: Some(pb::LogSpec {
            driver: hc.log_config.kind,
            options: hc.log_config.config,
        }),
        ..Default::default()
    };
    let status = match l.state.status.as_str() {
        "created" => Status::Created,
        "running" => Status::Running,
        _ => Status::Exited,
    };
    Ok(Container {
        id: l.id,
        name: l.name,
        created: parse_nanos(&l.created).unwrap_or(0),
        spec,
        path: l.path,
        args: l.args,
        image_id: l.image_id,
        rootfs: l.rootfs.map(|m| pb::RootfsMount {
            r#type: m.kind,
            source: m.source,
            options: m.options,
        }),
        state: State {
            status,
            pid: l.state.pid,
            exit_code: l.state.exit_code,
            error: l.state.error,
            started_at: parse_nanos(&l.state.started_at).unwrap_or(0),
            finished_at: parse_nanos(&l.state.finished_at).unwrap_or(0),
            oom_killed: l.state.oom_killed,
            exits: l.state.exits,
            stopped_by_user: false,
            manually_stopped: false,
            health: None,
            paused: false,
            cgroup_path: String::new(),
        },
        restart_count: l.restart_count,
        network: None,
        mount_points: Vec::new(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record as the first Berth wrote it.
    pub(crate) const LEGACY: &str = r#"{"id":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","name":"/old","created":"2026-11-28T10:00:00.123456789Z","path":"sleep","args":["60"],"config":{"Hostname":"aaaaaaaaaaaa","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":["PATH=/bin"],"Cmd":["sleep","60"],"Image":"busybox","WorkingDir":"","Entrypoint":null,"Labels":{"a":"b"},"StopSignal":"SIGINT"},"host_config":{"NetworkMode":"default","AutoRemove":false,"ConsoleSize":[0,0],"LogConfig":{"Type":"json-file","Config":{}},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"Privileged":false},"image":"busybox","image_id":"sha256:abcd","rootfs":{"type":"overlay","source":"overlay","options":["lowerdir=/l","upperdir=/u","workdir=/w"]},"state":{"status":"running","pid":4242,"exit_code":0,"error":"","started_at":"2026-11-28T10:00:01Z","finished_at":"0001-01-01T00:00:00Z","oom_killed":false,"exits":0},"restart_count":0}"#;

    #[test]
    fn a_legacy_record_keeps_what_it_had() {
        assert!(is_legacy(LEGACY.as_bytes()));
        let c = container(LEGACY.as_bytes()).unwrap();
        assert_eq!(c.name, "/old");
        assert_eq!(c.image(), "busybox");
        assert_eq!(c.stop_signal(), "SIGINT");
        assert_eq!(c.network_mode(), "bridge");
        assert_eq!(c.spec.labels.get("a").map(String::as_str), Some("b"));
        assert!(c.process().entrypoint.is_none());
        assert_eq!(c.state.status, Status::Running);
        assert_eq!(c.state.pid, 4242);
        assert!(c.state.started_at > 0 && c.state.finished_at == 0);
        assert_eq!(c.rootfs.unwrap().options.len(), 3);
    }
}
