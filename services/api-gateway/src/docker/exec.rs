//! `POST /containers/{id}/exec` bodies as Berth's exec spec, and `GET /exec/{id}/json`
//! rendered from the runtime's record.

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{docker::keys, error::ApiError};

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecConfig {
    user: String,
    privileged: bool,
    tty: bool,
    console_size: Option<[u32; 2]>,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    detach_keys: String,
    env: Option<Vec<String>>,
    working_dir: String,
    cmd: Option<Vec<String>>,
}

/// The exec spec for a create body.
pub fn spec(body: Value) -> Result<pb::ExecSpec, ApiError> {
    let e: ExecConfig = keys::parse(body).map_err(ApiError::invalid)?;
    if e.privileged {
        return Err(ApiError::invalid(
            "--privileged is not supported by Berth yet (Privileged)",
        ));
    }
    let [console_height, console_width] = e.console_size.unwrap_or_default();
    Ok(pb::ExecSpec {
        cmd: e.cmd.unwrap_or_default(),
        env: e.env.unwrap_or_default(),
        user: e.user,
        working_dir: e.working_dir,
        tty: e.tty,
        attach_stdin: e.attach_stdin,
        attach_stdout: e.attach_stdout,
        attach_stderr: e.attach_stderr,
        privileged: false,
        detach_keys: e.detach_keys,
        console_height,
        console_width,
    })
}

/// The body of `POST /exec/{id}/start`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ExecStartConfig {
    detach: bool,
    tty: bool,
    console_size: Option<[u32; 2]>,
}

/// What an exec start asks for.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ExecStart {
    pub detach: bool,
    /// The output is written raw (no multiplexing): moby's router frames it by the start
    /// request's `Tty`, not the exec's.
    pub tty: bool,
    /// `ConsoleSize`, `[height, width]`; 0 when not given.
    pub height: u32,
    pub width: u32,
}

/// An exec start body (`{}` when empty).
pub fn start(body: Value) -> Result<ExecStart, ApiError> {
    let s: ExecStartConfig = keys::parse(body).map_err(ApiError::invalid)?;
    let [height, width] = s.console_size.unwrap_or_default();
    Ok(ExecStart {
        detach: s.detach,
        tty: s.tty,
        height,
        width,
    })
}

/// GET /exec/{id}/json.
pub fn inspect(info: &pb::ExecInfo) -> Value {
    let s = info.spec.clone().unwrap_or_default();
    json!({
        "ID": info.id,
        "Running": info.running,
        "ExitCode": info.exit_code,
        "ProcessConfig": {
            "tty": s.tty,
            "entrypoint": s.cmd.first().cloned().unwrap_or_default(),
            "arguments": s.cmd.iter().skip(1).collect::<Vec<_>>(),
            "privileged": s.privileged,
            "user": s.user,
        },
        "OpenStdin": s.attach_stdin,
        "OpenStderr": s.attach_stderr,
        "OpenStdout": s.attach_stdout,
        "CanRemove": false,
        "ContainerID": info.container_id,
        "DetachKeys": s.detach_keys,
        "Pid": info.pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_and_refusals() {
        let s = spec(
            json!({"Cmd": ["ls", "-l"], "Tty": true, "ConsoleSize": [24, 80],
            "Env": ["A=1"], "WorkingDir": "/tmp", "User": "nobody"}),
        )
        .unwrap();
        assert_eq!(s.cmd, ["ls", "-l"]);
        assert_eq!((s.console_height, s.console_width), (24, 80));
        assert_eq!(s.working_dir, "/tmp");
        let e = spec(json!({"Cmd": ["ls"], "Privileged": true})).unwrap_err();
        assert_eq!(
            e.message,
            "--privileged is not supported by Berth yet (Privileged)"
        );
        assert!(
            spec(json!({"Cmd": "ls"}))
                .unwrap_err()
                .message
                .starts_with("invalid JSON: Cmd")
        );
    }

    #[test]
    fn start_bodies() {
        assert_eq!(start(json!({})).unwrap(), ExecStart::default());
        let s = start(json!({"Detach": false, "Tty": true, "ConsoleSize": [24, 80]})).unwrap();
        assert_eq!((s.tty, s.height, s.width), (true, 24, 80));
        assert!(start(json!({"ConsoleSize": null})).is_ok());
        // A size past u32 is refused, not wrapped.
        let e = start(json!({"ConsoleSize": [4294967297u64, 80]})).unwrap_err();
        assert!(
            e.message.starts_with("invalid JSON: ConsoleSize"),
            "{}",
            e.message
        );
        assert!(start(json!({"Tty": "yes"})).is_err());
    }

    #[test]
    fn inspect_shape() {
        let v = inspect(&pb::ExecInfo {
            id: "e".to_owned(),
            container_id: "c".to_owned(),
            spec: Some(pb::ExecSpec {
                cmd: vec!["ls".to_owned(), "-l".to_owned()],
                ..Default::default()
            }),
            running: false,
            exit_code: Some(2),
            pid: 7,
        });
        assert_eq!(v["ProcessConfig"]["entrypoint"], "ls");
        assert_eq!(v["ProcessConfig"]["arguments"], json!(["-l"]));
        assert_eq!(v["ExitCode"], 2);
        let v = inspect(&pb::ExecInfo::default());
        assert_eq!(v["ExitCode"], Value::Null);
    }
}
