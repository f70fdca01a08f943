//! Dockerfile instructions applied to an image's container config, as `docker import --change`
//! and `docker commit --change` take them (moby's `BuildFromConfig`): CMD, ENTRYPOINT, ENV,
//! EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR. Words are split
//! and unquoted as the Dockerfile shell lexer does, with `$VAR`/`${VAR}` taken from the config's
//! Env for the instructions that expand them.

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
            let (word, rest) = line
                .split_once(char::is_whitespace)
                .map_or((line, ""), |(w, r)| (w, r.trim()));
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
            if rest.is_empty() {
                return Err(invalid(format!(
                    "{} requires at least one argument",
                    word.to_uppercase()
                )));
            }
            apply_one(config, &instruction, rest, &mut cmd_set)?;
        }
    }
    Ok(())
}

fn apply_one(
    config: &mut Map<String, Value>,
    instruction: &str,
    rest: &str,
    cmd_set: &mut bool,
) -> Result<(), ImagesError> {
    let env = env_of(config);
    match instruction {
        "cmd" => {
            config.insert("Cmd".to_owned(), json!(command(rest)));
            *cmd_set = true;
        }
        "entrypoint" => {
            config.insert("Entrypoint".to_owned(), json!(command(rest)));
            // As in a build: an ENTRYPOINT resets a CMD this change set did not give.
            if !*cmd_set {
                config.insert("Cmd".to_owned(), Value::Null);
            }
        }
        "env" => {
            let mut env = env;
            for (k, v) in pairs(rest, &env, "ENV")? {
                env.retain(|e| e.split_once('=').map_or(e.as_str(), |(ek, _)| ek) != k);
                env.push(format!("{k}={v}"));
            }
            config.insert("Env".to_owned(), json!(env));
        }
        "label" => {
            let mut labels = match config.remove("Labels") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (k, v) in pairs(rest, &env, "LABEL")? {
                labels.insert(k, json!(v));
            }
            config.insert("Labels".to_owned(), Value::Object(labels));
        }
        "expose" => {
            let mut ports = match config.remove("ExposedPorts") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for spec in words(rest, Some(&env))? {
                for p in port_specs(&spec)? {
                    ports.insert(p, json!({}));
                }
            }
            config.insert("ExposedPorts".to_owned(), Value::Object(ports));
        }
        "user" => {
            let user = words(rest, Some(&env))?.join(" ");
            config.insert("User".to_owned(), json!(user));
        }
        "volume" => {
            let list = match json_array(rest) {
                Some(a) => a,
                None => words(rest, Some(&env))?,
            };
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
        "workdir" => {
            let dir = words(rest, Some(&env))?.join(" ");
            let current = config["WorkingDir"].as_str().unwrap_or_default().to_owned();
            config.insert("WorkingDir".to_owned(), json!(workdir(&current, &dir)));
        }
        "stopsignal" => {
            let sig = words(rest, Some(&env))?.join(" ");
            if !valid_signal(&sig) {
                return Err(invalid(format!("Invalid signal: {sig}")));
            }
            config.insert("StopSignal".to_owned(), json!(sig));
        }
        "onbuild" => {
            let (trigger, _) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            match trigger.to_lowercase().as_str() {
                "onbuild" => {
                    return Err(invalid(
                        "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                    ));
                }
                t @ ("from" | "maintainer") => {
                    return Err(invalid(format!(
                        "{} isn't allowed as an ONBUILD trigger",
                        t.to_uppercase()
                    )));
                }
                t if !INSTRUCTIONS.contains(&t) => {
                    return Err(invalid(format!(
                        "unknown instruction: {}",
                        t.to_uppercase()
                    )));
                }
                _ => {}
            }
            let mut list: Vec<Value> = config["OnBuild"].as_array().cloned().unwrap_or_default();
            list.push(json!(rest));
            config.insert("OnBuild".to_owned(), Value::Array(list));
        }
        "healthcheck" => {
            config.insert("Healthcheck".to_owned(), healthcheck(rest)?);
        }
        _ => unreachable!("only allowed instructions reach here"),
    }
    Ok(())
}

fn env_of(config: &Map<String, Value>) -> Vec<String> {
    config
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `["a","b"]` as strings; `None` if it is not a JSON array of strings.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str(s).ok()
}

/// CMD/ENTRYPOINT: the JSON (exec) form, or the shell form run by `/bin/sh -c`.
fn command(rest: &str) -> Vec<String> {
    json_array(rest).unwrap_or_else(|| vec!["/bin/sh".to_owned(), "-c".to_owned(), rest.to_owned()])
}

/// `k=v k2="v 2"` pairs, or the legacy `KEY value with spaces`.
fn pairs(rest: &str, env: &[String], what: &str) -> Result<Vec<(String, String)>, ImagesError> {
    let first = rest.split_whitespace().next().unwrap_or_default();
    if !first.contains('=') {
        let (k, v) = rest
            .split_once(char::is_whitespace)
            .ok_or_else(|| invalid(format!("{what} must have two arguments")))?;
        let v = words(v.trim(), Some(env))?.join(" ");
        return Ok(vec![(k.to_owned(), v)]);
    }
    let mut out = Vec::new();
    for w in raw_words(rest)? {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| invalid(format!("{what} names can not be blank: {w}")))?;
        let k = unquote(k, None)?;
        if k.is_empty() {
            return Err(invalid(format!("{what} names can not be blank")));
        }
        out.push((k, unquote(v, Some(env))?));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, keeping quotes and escapes in the words.
fn raw_words(s: &str) -> Result<Vec<String>, ImagesError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                cur.push(c);
            }
            (Some(q), c) if c == q => {
                quote = None;
                cur.push(c);
            }
            (q, '\\') if q != Some('\'') => {
                cur.push(c);
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (_, c) => cur.push(c),
        }
    }
    if quote.is_some() {
        return Err(invalid(format!(
            "unexpected end of statement while looking for matching quote: {s}"
        )));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

/// Words with quotes removed and, given an environment, variables expanded.
fn words(s: &str, env: Option<&[String]>) -> Result<Vec<String>, ImagesError> {
    raw_words(s)?.iter().map(|w| unquote(w, env)).collect()
}

/// Removes quotes and escapes from one word; expands `$VAR`/`${VAR}` outside single quotes.
fn unquote(w: &str, env: Option<&[String]>) -> Result<String, ImagesError> {
    let mut out = String::new();
    let mut quote: Option<char> = None;
    let mut chars = w.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => out.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            (_, '$') if env.is_some() => {
                let braced = chars.peek() == Some(&'{');
                if braced {
                    chars.next();
                }
                let mut name = String::new();
                while let Some(&n) = chars.peek() {
                    if n.is_ascii_alphanumeric() || n == '_' {
                        name.push(n);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if braced && chars.next() != Some('}') {
                    return Err(invalid(format!("missing '}}' in {w}")));
                }
                if name.is_empty() {
                    out.push('$');
                    continue;
                }
                let prefix = format!("{name}=");
                if let Some(v) = env
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .find_map(|e| e.strip_prefix(&prefix))
                {
                    out.push_str(v);
                }
            }
            (_, c) => out.push(c),
        }
    }
    Ok(out)
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

/// A Go duration (`1m30s`, `500ms`) in nanoseconds.
fn go_duration(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let n: f64 = num.parse().ok()?;
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = next;
    }
    Some(total as i64)
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=..] [--timeout=..] [--start-period=..]
/// [--start-interval=..] [--retries=..] CMD command`.
fn healthcheck(rest: &str) -> Result<Value, ImagesError> {
    if rest.eq_ignore_ascii_case("none") {
        return Ok(json!({"Test": ["NONE"]}));
    }
    let mut hc = Map::new();
    let mut rest = rest.trim_start();
    while let Some(flag) = rest.strip_prefix("--") {
        let (f, tail) = flag.split_once(char::is_whitespace).unwrap_or((flag, ""));
        rest = tail.trim_start();
        let (name, value) = f
            .split_once('=')
            .ok_or_else(|| invalid(format!("missing a value on flag: --{f}")))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: i64 = value
                    .parse()
                    .map_err(|_| invalid(format!("invalid value for --retries: {value}")))?;
                hc.insert("Retries".to_owned(), json!(n));
                continue;
            }
            other => return Err(invalid(format!("unknown flag: --{other}"))),
        };
        let ns = go_duration(value)
            .ok_or_else(|| invalid(format!("time: invalid duration \"{value}\"")))?;
        hc.insert(key.to_owned(), json!(ns));
    }
    let (word, cmd) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    if !word.eq_ignore_ascii_case("cmd") {
        return Err(invalid(format!(
            "Unknown type \"{}\" in HEALTHCHECK (try CMD)",
            word.to_uppercase()
        )));
    }
    let cmd = cmd.trim();
    if cmd.is_empty() {
        return Err(invalid("Missing command after HEALTHCHECK CMD"));
    }
    let test: Vec<String> = match json_array(cmd) {
        Some(a) => std::iter::once("CMD".to_owned()).chain(a).collect(),
        None => vec!["CMD-SHELL".to_owned(), cmd.to_owned()],
    };
    hc.insert("Test".to_owned(), json!(test));
    Ok(Value::Object(hc))
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
        assert!(err(&["ENV A=\"open"]).contains("matching quote"));
        assert!(err(&["ONBUILD ONBUILD RUN x"]).contains("isn't allowed"));
        assert!(err(&["HEALTHCHECK --interval=soon CMD x"]).contains("invalid duration"));
        assert!(err(&["STOPSIGNAL kill me"]).contains("Invalid signal"));
    }

    #[test]
    fn durations_and_workdirs() {
        assert_eq!(go_duration("1m30s"), Some(90_000_000_000));
        assert_eq!(go_duration("500ms"), Some(500_000_000));
        assert_eq!(go_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(go_duration("5x"), None);
        assert_eq!(workdir("", "app"), "/app");
        assert_eq!(workdir("/a/b", "../c"), "/a/c");
        assert_eq!(workdir("/a", "/x/./y/"), "/x/y");
    }
}
