//! Dockerfile instructions applied to an image's container config, as `docker import --change`
//! and `docker commit --change` take them (moby's `BuildFromConfig`): CMD, ENTRYPOINT, ENV,
//! EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR. Each line is
//! parsed by the Dockerfile parser (`berth_dockerfile`) and its variables expanded from the
//! config's Env, as the builder does for these instructions.

use berth_dockerfile::{Instruction, ShellCommand, lex::EnvList};
use serde_json::{Map, Value, json};

use crate::ImagesError;

/// Every Dockerfile instruction; the others are parse errors.
const INSTRUCTIONS: &[&str] = &[
    "add",
    "arg",
    "cmd",
    "copy",
    "entrypoint",
    "env",
    "expose",
    "from",
    "healthcheck",
    "label",
    "maintainer",
    "onbuild",
    "run",
    "shell",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// The instructions a change may use.
const ALLOWED: &[&str] = &[
    "cmd",
    "entrypoint",
    "env",
    "expose",
    "healthcheck",
    "label",
    "onbuild",
    "stopsignal",
    "user",
    "volume",
    "workdir",
];

/// The container config of an image made from nothing, as moby marshals an empty one.
pub(crate) fn empty_config() -> Map<String, Value> {
    let v = json!({
        "Hostname": "", "Domainname": "", "User": "",
        "AttachStdin": false, "AttachStdout": false, "AttachStderr": false,
        "Tty": false, "OpenStdin": false, "StdinOnce": false,
        "Env": null, "Cmd": null, "Image": "", "Volumes": null, "WorkingDir": "",
        "Entrypoint": null, "OnBuild": null, "Labels": null,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

fn invalid(msg: impl Into<String>) -> ImagesError {
    ImagesError::InvalidArgument(msg.into())
}

/// Applies `changes` to `config` in order. Errors are Docker's: `dockerfile parse error on line
/// 1: unknown instruction: FOO`, `RUN is not a valid change command`.
pub(crate) fn apply(
    config: &mut Map<String, Value>,
    changes: &[String],
) -> Result<(), ImagesError> {
    let mut cmd_set = false;
    let mut line_no = 0;
    for change in changes {
        for line in change.lines() {
            line_no += 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let word = line.split(char::is_whitespace).next().unwrap_or(line);
            let instruction = word.to_lowercase();
            if !INSTRUCTIONS.contains(&instruction.as_str()) {
                return Err(invalid(format!(
                    "dockerfile parse error on line {line_no}: unknown instruction: {}",
                    word.to_uppercase()
                )));
            }
            if !ALLOWED.contains(&instruction.as_str()) {
                return Err(invalid(format!(
                    "{} is not a valid change command",
                    word.to_uppercase()
                )));
            }
            if line[word.len()..].trim().is_empty() {
                return Err(invalid(format!(
                    "{} requires at least one argument",
                    word.to_uppercase()
                )));
            }
            // The Dockerfile parser's words, quotes and variables (from the config's Env as
            // it is before the instruction), as the builder's dispatch sees them.
            let mut parsed = berth_dockerfile::parse_trigger(line)
                .map_err(|e| invalid(e.message))?
                .instruction;
            parsed
                .expand('\\', &EnvList(env_of(config)))
                .map_err(invalid)?;
            apply_one(config, parsed, &mut cmd_set)?;
        }
    }
    Ok(())
}

/// CMD/ENTRYPOINT: the exec form's words, or the shell form run by the config's SHELL
/// (`/bin/sh -c` without one).
fn command(config: &Map<String, Value>, c: ShellCommand) -> Vec<String> {
    if !c.prepend_shell {
        return c.args;
    }
    let mut shell = strings(config.get("Shell"));
    if shell.is_empty() {
        shell = vec!["/bin/sh".to_owned(), "-c".to_owned()];
    }
    shell.push(c.args.join(" "));
    shell
}

fn apply_one(
    config: &mut Map<String, Value>,
    instruction: Instruction,
    cmd_set: &mut bool,
) -> Result<(), ImagesError> {
    match instruction {
        Instruction::Cmd(c) => {
            let cmd = command(config, c);
            config.insert("Cmd".to_owned(), json!(cmd));
            *cmd_set = true;
        }
        Instruction::Entrypoint(c) => {
            let entrypoint = command(config, c);
            config.insert("Entrypoint".to_owned(), json!(entrypoint));
            // As in a build: an ENTRYPOINT resets a CMD this change set did not give.
            if !*cmd_set {
                config.insert("Cmd".to_owned(), Value::Null);
            }
        }
        Instruction::Env(kvs) => {
            let mut env = env_of(config);
            for kv in kvs {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != kv.key);
                env.push(format!("{}={}", kv.key, kv.value));
            }
            config.insert("Env".to_owned(), json!(env));
        }
        Instruction::Label(kvs) => {
            let mut labels = match config.remove("Labels") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for kv in kvs {
                labels.insert(kv.key, json!(kv.value));
            }
            config.insert("Labels".to_owned(), Value::Object(labels));
        }
        Instruction::Expose(specs) => {
            let mut ports = match config.remove("ExposedPorts") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for spec in specs {
                for p in port_specs(&spec)? {
                    ports.insert(p, json!({}));
                }
            }
            config.insert("ExposedPorts".to_owned(), Value::Object(ports));
        }
        Instruction::User(user) => {
            config.insert("User".to_owned(), json!(user));
        }
        Instruction::Volume(list) => {
            let mut volumes = match config.remove("Volumes") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for v in list {
                let v = v.trim().to_owned();
                if v.is_empty() {
                    return Err(invalid("VOLUME specified can not be an empty string"));
                }
                volumes.insert(v, json!({}));
            }
            config.insert("Volumes".to_owned(), Value::Object(volumes));
        }
        Instruction::Workdir(dir) => {
            let current = config["WorkingDir"].as_str().unwrap_or_default().to_owned();
            config.insert("WorkingDir".to_owned(), json!(workdir(&current, &dir)));
        }
        Instruction::StopSignal(sig) => {
            if !valid_signal(&sig) {
                return Err(invalid(format!("Invalid signal: {sig}")));
            }
            config.insert("StopSignal".to_owned(), json!(sig));
        }
        Instruction::Onbuild(trigger) => {
            let mut list: Vec<Value> = config["OnBuild"].as_array().cloned().unwrap_or_default();
            list.push(json!(trigger));
            config.insert("OnBuild".to_owned(), Value::Array(list));
        }
        Instruction::Healthcheck(h) => {
            // moby's HealthConfig: zero fields are left out.
            let mut hc = Map::new();
            hc.insert("Test".to_owned(), json!(h.test));
            for (key, v) in [
                ("Interval", h.interval),
                ("Timeout", h.timeout),
                ("StartPeriod", h.start_period),
                ("StartInterval", h.start_interval),
                ("Retries", h.retries),
            ] {
                if v != 0 {
                    hc.insert(key.to_owned(), json!(v));
                }
            }
            config.insert("Healthcheck".to_owned(), Value::Object(hc));
        }
        other => {
            return Err(invalid(format!(
                "{} is not a valid change command",
                other.name()
            )));
        }
    }
    Ok(())
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn env_of(config: &Map<String, Value>) -> Vec<String> {
    strings(config.get("Env"))
}

/// `80`, `80/udp`, `8000-8002/tcp` → `80/tcp`, ...
fn port_specs(spec: &str) -> Result<Vec<String>, ImagesError> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(invalid(format!("invalid proto: {proto}")));
    }
    let bad = || invalid(format!("invalid containerPort: {ports}"));
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if hi < lo {
        return Err(invalid(format!(
            "invalid range specified for container port: {ports}"
        )));
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// `WORKDIR` relative to the current one, cleaned.
fn workdir(current: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_owned()
    } else {
        format!("/{current}/{dir}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

fn valid_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let upper = s.to_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(changes: &[&str]) -> Map<String, Value> {
        let mut c = empty_config();
        let changes: Vec<String> = changes.iter().map(|s| (*s).to_owned()).collect();
        apply(&mut c, &changes).unwrap();
        c
    }

    fn err(changes: &[&str]) -> String {
        let mut c = empty_config();
        let changes: Vec<String> = changes.iter().map(|s| (*s).to_owned()).collect();
        apply(&mut c, &changes).unwrap_err().to_string()
    }

    #[test]
    fn every_allowed_instruction() {
        let c = applied(&[
            r#"CMD ["sh", "-c", "echo hi"]"#,
            "ENV A=1",
            "ENV B=\"two words\" C=${A}x D=$B",
            "ENV LEGACY some value",
            "EXPOSE 80 53/udp 8000-8001",
            "LABEL com.example.a=b \"x y\"=z",
            "USER nobody",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
            "WORKDIR /srv",
            "WORKDIR app",
            "STOPSIGNAL SIGKILL",
            "ONBUILD RUN echo built",
            "HEALTHCHECK --interval=30s --retries=3 CMD wget -q localhost",
        ]);
        assert_eq!(c["Cmd"], json!(["sh", "-c", "echo hi"]));
        // Variables are those from before the instruction: D does not see this line's B.
        assert_eq!(
            c["Env"],
            json!(["A=1", "B=two words", "C=1x", "D=", "LEGACY=some value"])
        );
        assert_eq!(
            c["ExposedPorts"],
            json!({"80/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}})
        );
        assert_eq!(c["Labels"], json!({"com.example.a": "b", "x y": "z"}));
        assert_eq!(c["User"], "nobody");
        assert_eq!(
            c["Volumes"],
            json!({"/data": {}, "/logs": {}, "/cache": {}})
        );
        assert_eq!(c["WorkingDir"], "/srv/app");
        assert_eq!(c["StopSignal"], "SIGKILL");
        assert_eq!(c["OnBuild"], json!(["RUN echo built"]));
        assert_eq!(
            c["Healthcheck"],
            json!({"Interval": 30_000_000_000i64, "Retries": 3, "Test": ["CMD-SHELL", "wget -q localhost"]})
        );
    }

    #[test]
    fn shell_forms_entrypoint_and_env_overrides() {
        let c = applied(&["CMD echo $HOME", "ENTRYPOINT [\"/bin/app\"]"]);
        assert_eq!(c["Cmd"], json!(["/bin/sh", "-c", "echo $HOME"]));
        assert_eq!(c["Entrypoint"], json!(["/bin/app"]));
        let c = applied(&["ENTRYPOINT /bin/app --flag"]);
        assert_eq!(c["Cmd"], Value::Null, "an ENTRYPOINT alone resets CMD");
        assert_eq!(c["Entrypoint"], json!(["/bin/sh", "-c", "/bin/app --flag"]));
        let c = applied(&["ENV A=1", "ENV A=2", "env b='$A'"]);
        assert_eq!(c["Env"], json!(["A=2", "b=$A"]));
        let c = applied(&["HEALTHCHECK NONE"]);
        assert_eq!(c["Healthcheck"], json!({"Test": ["NONE"]}));
    }

    #[test]
    fn errors_read_like_dockers() {
        assert_eq!(
            err(&["FOO bar"]),
            "dockerfile parse error on line 1: unknown instruction: FOO"
        );
        assert_eq!(err(&["RUN echo"]), "RUN is not a valid change command");
        assert_eq!(err(&["from busybox"]), "FROM is not a valid change command");
        assert_eq!(err(&["CMD"]), "CMD requires at least one argument");
        assert!(err(&["EXPOSE eighty"]).contains("invalid containerPort"));
        assert!(err(&["ENV A=\"open"]).contains("matching double-quote"));
        assert!(err(&["ONBUILD ONBUILD RUN x"]).contains("isn't allowed"));
        assert!(err(&["HEALTHCHECK --interval=soon CMD x"]).contains("invalid duration"));
        // The builder's lexer, and its words.
        assert!(
            err(&["LABEL a=${B"]).starts_with(r#"failed to process "${B": unsupported modifier"#)
        );
        assert!(err(&["STOPSIGNAL kill me"]).contains("Invalid signal"));
    }

    #[test]
    fn workdirs() {
        assert_eq!(workdir("", "app"), "/app");
        assert_eq!(workdir("/a/b", "../c"), "/a/c");
        assert_eq!(workdir("/a", "/x/./y/"), "/x/y");
    }
}
