//! One instruction of a stage, as moby's `dispatchers.go` does it: the config change, the
//! `#(nop)` command that keys the cache and names the history entry, then a cache probe and,
//! on a miss, a new image (with a layer for COPY, ADD and a new WORKDIR).

use berth_dockerfile::{Health, Instruction, ShellCommand};
use serde_json::{Map, Value, json};

use super::{
    Builder,
    state::{StageState, nop_cmd},
};
use crate::ImagesError;

fn invalid(msg: impl Into<String>) -> ImagesError {
    ImagesError::InvalidArgument(msg.into())
}

/// Go's `%q` of a string list: `["a" "b"]`.
fn go_quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a string list: `[a b]`.
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Go's `time.Duration.String()` for the whole-millisecond-ish values HEALTHCHECK takes.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_owned();
    }
    let neg = ns < 0;
    let ns = ns.unsigned_abs();
    let mut out = String::new();
    if ns < 1_000_000_000 {
        let (v, unit) = if ns < 1_000 {
            (ns as f64, "ns")
        } else if ns < 1_000_000 {
            (ns as f64 / 1e3, "µs")
        } else {
            (ns as f64 / 1e6, "ms")
        };
        out = format!("{}{unit}", trim_float(v));
    } else {
        let h = ns / 3_600_000_000_000;
        let m = (ns / 60_000_000_000) % 60;
        let s = (ns % 60_000_000_000) as f64 / 1e9;
        if h > 0 {
            out.push_str(&format!("{h}h"));
        }
        if h > 0 || m > 0 {
            out.push_str(&format!("{m}m"));
        }
        out.push_str(&format!("{}s", trim_float(s)));
    }
    if neg { format!("-{out}") } else { out }
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.9}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn health_json(h: &Health) -> Value {
    let mut m = Map::new();
    m.insert("Test".to_owned(), json!(h.test));
    for (k, v) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
        ("Retries", h.retries),
    ] {
        if v != 0 {
            m.insert(k.to_owned(), json!(v));
        }
    }
    Value::Object(m)
}

fn valid_signal(s: &str) -> bool {
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ",
    ];
    if let Ok(n) = s.parse::<u32>() {
        return n > 0 && n <= 64;
    }
    let up = s.to_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    NAMES.contains(&name)
        || name
            .strip_prefix("RTMIN")
            .or_else(|| name.strip_prefix("RTMAX"))
            .is_some_and(|r| {
                r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u32>().is_ok()
            })
}

/// EXPOSE's port specs as `port/proto` keys.
fn exposed_ports(specs: &[String]) -> Result<Vec<String>, ImagesError> {
    let mut out = Vec::new();
    for raw in specs {
        let container = raw.rsplit(':').next().unwrap_or(raw);
        let (port, proto) = container.split_once('/').unwrap_or((container, "tcp"));
        if port.is_empty() {
            return Err(invalid(format!("no port specified: {raw}<empty>")));
        }
        let proto = proto.to_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(invalid(format!("invalid proto: {proto}")));
        }
        let (start, end) = port.split_once('-').unwrap_or((port, port));
        let bad = || invalid(format!("invalid containerPort: {port}"));
        let start: u16 = start.parse().map_err(|_| bad())?;
        let end: u16 = end.parse().map_err(|_| bad())?;
        if end < start {
            return Err(bad());
        }
        for p in start..=end {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// The command a shell-dependent instruction stores: exec form as is, shell form wrapped.
pub(super) fn resolve_cmd(cmd: &ShellCommand, st: &StageState) -> Option<Vec<String>> {
    if cmd.prepend_shell {
        if cmd.args.is_empty() {
            return None;
        }
        let mut v = st.shell();
        v.extend(cmd.args.iter().cloned());
        Some(v)
    } else {
        Some(cmd.args.clone())
    }
}

pub(super) fn requires_buildkit(flag: &str) -> ImagesError {
    invalid(format!(
        "the --{flag} option requires BuildKit. Refer to https://docs.docker.com/go/buildkit/ to learn how to build images with BuildKit enabled"
    ))
}

impl Builder<'_> {
    /// Probes the cache for the step keyed by `comment`, else commits it (with `layer`
    /// computed only then).
    fn metadata_step(
        &mut self,
        st: &mut StageState,
        comment: &str,
        split: bool,
    ) -> Result<(), ImagesError> {
        let cmd = nop_cmd(&st.shell(), comment, split);
        let (cc, key) = crate::service::ImageService::step_key(st, &cmd);
        if self.probe(st, &key)? {
            return Ok(());
        }
        self.commit_in_container(st, cc, key, &cmd.join(" "), None)
    }

    /// Commits a step that dockerd commits from a container (metadata steps, WORKDIR): the
    /// container is created (` ---> Running in`) and removed as the rm options say. On
    /// scratch there is no image to create one from: the step is committed alone.
    pub(super) fn commit_in_container(
        &mut self,
        st: &mut StageState,
        cc: serde_json::Map<String, serde_json::Value>,
        key: String,
        created_by: &str,
        layer: Option<super::state::NewLayer>,
    ) -> Result<(), ImagesError> {
        let Some(image) = st.image.as_ref().map(|i| i.id.clone()) else {
            return self.svc.commit_step(st, cc, key, created_by, layer);
        };
        let id = self.intermediate(&image, &cc)?;
        let r = self.svc.commit_step(st, cc, key, created_by, layer);
        self.release_intermediate(&id, r.is_ok());
        r
    }

    pub(super) fn probe(&mut self, st: &mut StageState, key: &str) -> Result<bool, ImagesError> {
        if self.spec.no_cache || !self.svc.probe_cache(st, key)? {
            tracing::debug!("build: cache miss");
            return Ok(false);
        }
        tracing::debug!("build: cache hit");
        self.out.stream(" ---> Using cache\n");
        Ok(true)
    }

    /// Dispatches one instruction (already expanded).
    pub(super) fn dispatch(
        &mut self,
        st: &mut StageState,
        ins: Instruction,
    ) -> Result<(), (ImagesError, i32)> {
        let no_code = |e: ImagesError| (e, 0);
        match ins {
            Instruction::Run(run) => self.run(st, run),
            other => self.dispatch_other(st, other).map_err(no_code),
        }
    }

    fn dispatch_other(&mut self, st: &mut StageState, ins: Instruction) -> Result<(), ImagesError> {
        match ins {
            Instruction::Env(kvs) => {
                let mut env = st.env();
                let mut comment = "ENV".to_owned();
                for kv in &kvs {
                    let var = kv.to_string();
                    comment.push(' ');
                    comment.push_str(&var);
                    match env
                        .iter_mut()
                        .find(|e| e.split('=').next() == Some(kv.key.as_str()))
                    {
                        Some(slot) => *slot = var,
                        None => env.push(var),
                    }
                }
                st.config_mut().insert("Env".to_owned(), json!(env));
                self.metadata_step(st, &comment, true)
            }
            Instruction::Label(kvs) => {
                let cfg = st.config_mut();
                if !cfg.get("Labels").is_some_and(Value::is_object) {
                    cfg.insert("Labels".to_owned(), json!({}));
                }
                let mut comment = "LABEL".to_owned();
                for kv in &kvs {
                    if let Some(Value::Object(l)) = st.config_mut().get_mut("Labels") {
                        l.insert(kv.key.clone(), json!(kv.value));
                    }
                    comment.push(' ');
                    comment.push_str(&kv.to_string());
                }
                self.metadata_step(st, &comment, true)
            }
            Instruction::Maintainer(m) => {
                st.maintainer = Some(m.clone());
                self.metadata_step(st, &format!("MAINTAINER {m}"), true)
            }
            Instruction::Onbuild(expr) => {
                let cfg = st.config_mut();
                let mut list: Vec<Value> = cfg
                    .get("OnBuild")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                list.push(json!(expr));
                cfg.insert("OnBuild".to_owned(), Value::Array(list));
                self.metadata_step(st, &format!("ONBUILD {expr}"), true)
            }
            Instruction::Cmd(c) => {
                let cmd = resolve_cmd(&c, st);
                st.config_mut().insert("Cmd".to_owned(), json!(cmd));
                st.config_mut()
                    .insert("ArgsEscaped".to_owned(), json!(false));
                if !c.args.is_empty() {
                    st.cmd_set = true;
                }
                self.metadata_step(
                    st,
                    &format!("CMD {}", go_quoted_list(&cmd.unwrap_or_default())),
                    true,
                )
            }
            Instruction::Entrypoint(c) => {
                let ep = resolve_cmd(&c, st).filter(|v| !(v.is_empty() && c.prepend_shell));
                st.config_mut().insert("Entrypoint".to_owned(), json!(ep));
                st.config_mut()
                    .insert("ArgsEscaped".to_owned(), json!(false));
                if !st.cmd_set {
                    st.config_mut().insert("Cmd".to_owned(), Value::Null);
                }
                self.metadata_step(
                    st,
                    &format!("ENTRYPOINT {}", go_quoted_list(&ep.unwrap_or_default())),
                    true,
                )
            }
            Instruction::Healthcheck(h) => {
                if let Some(old) = st
                    .config()
                    .get("Healthcheck")
                    .and_then(|h| h.get("Test"))
                    .and_then(Value::as_array)
                {
                    let old: Vec<String> = old
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    if old.first().is_some_and(|t| t != "NONE") {
                        self.out.stream(format!(
                            "Note: overriding previous HEALTHCHECK: {}\n",
                            go_list(&old)
                        ));
                    }
                }
                st.config_mut()
                    .insert("Healthcheck".to_owned(), health_json(&h));
                let comment = format!(
                    "HEALTHCHECK &{{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
                    go_list(&h.test),
                    go_duration(h.interval),
                    go_duration(h.timeout),
                    go_duration(h.start_period),
                    go_duration(h.start_interval),
                    h.retries
                );
                self.metadata_step(st, &comment, true)
            }
            Instruction::Expose(ports) => {
                let keys = exposed_ports(&ports)?;
                let cfg = st.config_mut();
                if !cfg.get("ExposedPorts").is_some_and(Value::is_object) {
                    cfg.insert("ExposedPorts".to_owned(), json!({}));
                }
                if let Some(Value::Object(m)) = cfg.get_mut("ExposedPorts") {
                    for k in keys {
                        m.insert(k, json!({}));
                    }
                }
                self.metadata_step(st, &format!("EXPOSE {}", ports.join(" ")), true)
            }
            Instruction::User(u) => {
                st.config_mut().insert("User".to_owned(), json!(u));
                self.metadata_step(st, &format!("USER {u}"), true)
            }
            Instruction::Volume(vols) => {
                let cfg = st.config_mut();
                if !cfg.get("Volumes").is_some_and(Value::is_object) {
                    cfg.insert("Volumes".to_owned(), json!({}));
                }
                for v in &vols {
                    if v.is_empty() {
                        return Err(invalid("VOLUME specified can not be an empty string"));
                    }
                    if let Some(Value::Object(m)) = st.config_mut().get_mut("Volumes") {
                        m.insert(v.clone(), json!({}));
                    }
                }
                self.metadata_step(st, &format!("VOLUME {}", go_list(&vols)), true)
            }
            Instruction::StopSignal(s) => {
                if !valid_signal(&s) {
                    return Err(invalid(format!("Invalid signal: {s}")));
                }
                st.config_mut().insert("StopSignal".to_owned(), json!(s));
                self.metadata_step(st, &format!("STOPSIGNAL {s}"), true)
            }
            Instruction::Arg(defs) => {
                let mut parts = Vec::new();
                for d in defs {
                    parts.push(match &d.value {
                        Some(v) => format!("{}={v}", d.key),
                        None => d.key.clone(),
                    });
                    st.args.add_arg(&d.key, d.value);
                }
                self.metadata_step(st, &format!("ARG {}", parts.join(" ")), true)
            }
            Instruction::Shell(shell) => {
                st.config_mut().insert("Shell".to_owned(), json!(shell));
                self.metadata_step(st, &format!("SHELL {}", go_list(&shell)), true)
            }
            Instruction::Workdir(dir) => self.workdir(st, &dir),
            Instruction::Copy(c) => self.copy(st, c, false),
            Instruction::Add(c) => self.copy(st, c, true),
            Instruction::Run(_) => unreachable!("RUN is dispatched above"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_formats() {
        assert_eq!(go_duration(30_000_000_000), "30s");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(5_000_000), "5ms");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(
            go_quoted_list(&["a b".to_owned(), "c".to_owned()]),
            r#"["a b" "c"]"#
        );
        assert_eq!(
            exposed_ports(&["80".into(), "53/udp".into(), "1-2/tcp".into()]).unwrap(),
            ["80/tcp", "53/udp", "1/tcp", "2/tcp"]
        );
        assert_eq!(
            exposed_ports(&["80/xx".into()]).unwrap_err().to_string(),
            "invalid proto: xx"
        );
        assert!(
            valid_signal("SIGTERM")
                && valid_signal("kill")
                && valid_signal("9")
                && valid_signal("SIGRTMIN+3")
        );
        assert!(!valid_signal("SIGFOO") && !valid_signal("0"));
    }
}
