//! `POST /containers/create`: Docker's body (Config at the top level, HostConfig,
//! NetworkingConfig), for every API version the gateway negotiates, checked against the field
//! table and turned into Berth's container spec.

use std::collections::HashMap;

use berth_proto::runtime::v1 as pb;
use serde::Deserialize;
use serde_json::Value;

use crate::{
    api_version::ApiVersion,
    docker::{
        endpoint,
        fields::{self, FIELDS, Support},
        health,
        keys::Schema,
        mounts, ports, security,
    },
    error::ApiError,
};

/// Docker's StrSlice: a string is one element, null is absent.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(untagged)]
enum StrSlice {
    #[default]
    Null,
    One(String),
    Many(Vec<String>),
}

impl StrSlice {
    fn list(self) -> Option<Vec<String>> {
        match self {
            StrSlice::Null => None,
            StrSlice::One(s) => Some(vec![s]),
            StrSlice::Many(v) => Some(v),
        }
    }
}

/// The honored fields of Config, as Go decodes them (keys in any case: see `keys.rs`).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct Config {
    hostname: String,
    domainname: String,
    user: String,
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    exposed_ports: Option<HashMap<String, serde::de::IgnoredAny>>,
    tty: bool,
    open_stdin: bool,
    stdin_once: bool,
    env: Option<Vec<String>>,
    cmd: StrSlice,
    image: String,
    working_dir: String,
    entrypoint: StrSlice,
    labels: Option<HashMap<String, String>>,
    stop_signal: String,
    stop_timeout: Option<i32>,
    healthcheck: Option<health::HealthConfig>,
    shell: Option<Vec<String>>,
    #[serde(rename = "HostConfig")]
    host_config: HostConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct HostConfig {
    log_config: LogConfig,
    network_mode: String,
    auto_remove: bool,
    console_size: Option<[u32; 2]>,
    readonly_rootfs: bool,
    runtime: String,
    isolation: String,
    init: Option<bool>,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    security_opt: Option<Vec<String>>,
    ulimits: Option<Vec<security::Ulimit>>,
    pid_mode: String,
    ipc_mode: String,
    #[serde(rename = "UTSMode")]
    uts_mode: String,
    masked_paths: Option<Vec<String>>,
    readonly_paths: Option<Vec<String>>,
    group_add: Option<Vec<String>>,
    shm_size: i64,
    sysctls: Option<HashMap<String, String>>,
    privileged: bool,
    restart_policy: RestartPolicy,
    memory: i64,
    memory_swap: i64,
    memory_reservation: i64,
    memory_swappiness: Option<i64>,
    oom_kill_disable: Option<bool>,
    nano_cpus: i64,
    cpu_shares: i64,
    cpu_period: i64,
    cpu_quota: i64,
    cpuset_cpus: String,
    cpuset_mems: String,
    pids_limit: Option<i64>,
    blkio_weight: u16,
    blkio_weight_device: Option<Vec<WeightDevice>>,
    blkio_device_read_bps: Option<Vec<ThrottleDevice>>,
    blkio_device_write_bps: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceReadIOps")]
    blkio_device_read_iops: Option<Vec<ThrottleDevice>>,
    #[serde(rename = "BlkioDeviceWriteIOps")]
    blkio_device_write_iops: Option<Vec<ThrottleDevice>>,
    cgroup_parent: String,
    oom_score_adj: i64,
    cgroupns_mode: String,
    devices: Option<Vec<DeviceMapping>>,
    device_cgroup_rules: Option<Vec<String>>,
    port_bindings: Option<ports::PortBindings>,
    publish_all_ports: bool,
    dns: Option<Vec<String>>,
    dns_search: Option<Vec<String>>,
    dns_options: Option<Vec<String>>,
    extra_hosts: Option<Vec<String>>,
    links: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct RestartPolicy {
    name: String,
    maximum_retry_count: i32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct WeightDevice {
    path: String,
    weight: u16,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct ThrottleDevice {
    path: String,
    rate: u64,
}

fn throttles(l: Option<Vec<ThrottleDevice>>) -> Vec<pb::ThrottleDevice> {
    l.unwrap_or_default()
        .into_iter()
        .map(|d| pb::ThrottleDevice {
            path: d.path,
            rate: d.rate,
        })
        .collect()
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct DeviceMapping {
    path_on_host: String,
    path_in_container: String,
    cgroup_permissions: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
struct LogConfig {
    #[serde(rename = "Type")]
    kind: String,
    config: Option<HashMap<String, String>>,
}

/// Log drivers dockerd knows. Berth has json-file and none.
const LOG_DRIVERS: &[&str] = &[
    "json-file",
    "none",
    "local",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "etwlogs",
    "gcplogs",
    "logentries",
];

/// json-file's options (moby `daemon/logger/jsonfilelog`), and those Berth applies.
const JSON_FILE_OPTS: &[&str] = &[
    "max-size",
    "max-file",
    "compress",
    "labels",
    "labels-regex",
    "env",
    "env-regex",
    "tag",
];
const JSON_FILE_HONORED: &[&str] = &["max-size", "max-file"];

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::invalid(msg.into())
}

/// The body with the fields an API version ignores cleared, as moby's router does.
fn for_version(body: &mut Value, version: ApiVersion) {
    let older = |minor: u32| version < ApiVersion { major: 1, minor };
    if older(48)
        && let Some(eps) = body["NetworkingConfig"]["EndpointsConfig"].as_object_mut()
    {
        // Before 1.48 every endpoint had the same priority (moby's router resets it).
        for ep in eps.values_mut().filter_map(Value::as_object_mut) {
            ep.remove("GwPriority");
        }
    }
    let hc = &mut body["HostConfig"];
    if !hc.is_object() {
        return;
    }
    if older(25) {
        hc["AutoRemove"] = Value::Bool(false);
    }
    if older(42) {
        hc["ConsoleSize"] = Value::Null;
    }
    if older(44)
        && let Some(h) = body.get_mut("Healthcheck").and_then(Value::as_object_mut)
    {
        h.remove("StartInterval");
    }
    if older(40)
        && let Some(list) = body["HostConfig"]["Mounts"].as_array_mut()
    {
        for b in list.iter_mut().filter_map(|m| m.get_mut("BindOptions")) {
            if let Some(b) = b.as_object_mut() {
                b.remove("NonRecursive");
            }
        }
    }
}

/// Before API 1.44 read-only binds were read-only only at the top, and a client asking to
/// force them recursively read-only is refused rather than ignored (moby's router).
fn read_only_recursion(body: &Value, version: ApiVersion) -> Result<bool, ApiError> {
    if version
        >= (ApiVersion {
            major: 1,
            minor: 44,
        })
    {
        return Ok(false);
    }
    let forced = body["HostConfig"]["Mounts"].as_array().is_some_and(|l| {
        l.iter().any(|m| {
            m["Type"] == "bind" && m["BindOptions"]["ReadOnlyForceRecursive"] == Value::Bool(true)
        })
    });
    if forced {
        return Err(invalid(
            "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer",
        ));
    }
    Ok(true)
}

/// Every field set in `body` that Berth does not honor yet: the first one is refused.
fn check_fields(body: &Value) -> Result<(), ApiError> {
    for field in FIELDS {
        if let (Support::Refused(_), Some(v)) = (field.support, fields::lookup(body, field.path))
            && fields::is_set(field.path, v)
        {
            return Err(invalid(fields::refusal(field)));
        }
    }
    Ok(())
}

/// NetworkingConfig: every network the container joins, its own (the mode) first, with its
/// settings; the container-wide `MacAddress` of older API versions goes to the first one.
fn endpoints(body: &Value, mode: &str, mac: &str) -> Result<Vec<pb::EndpointSpec>, ApiError> {
    let mut out: Vec<pb::EndpointSpec> = Vec::new();
    if let Some(eps) = body["NetworkingConfig"]["EndpointsConfig"].as_object() {
        for (name, ep) in eps {
            let name = if name == "default" { "bridge" } else { name };
            let e = endpoint::spec(name, ep)?;
            if name == mode {
                out.insert(0, e);
            } else {
                out.push(e);
            }
        }
    }
    let user_defined =
        !matches!(mode, "bridge" | "host" | "none") && !mode.starts_with("container:");
    if out.len() > 1 && !user_defined {
        let names: Vec<&str> = out.iter().map(|e| e.network.as_str()).collect();
        return Err(invalid(format!(
            "Container cannot be connected to network endpoints: {}",
            names.join(", ")
        )));
    }
    if let Some(other) = out.iter().find(|e| e.network != mode)
        && !user_defined
    {
        return Err(invalid(format!(
            "--network {} with endpoint settings is not supported with --network {mode} \
             (NetworkingConfig.EndpointsConfig)",
            other.network
        )));
    }
    if out.iter().any(|e| !e.aliases.is_empty()) && !user_defined {
        return Err(invalid(
            "network-scoped alias is supported only for containers in user defined networks",
        ));
    }
    if mode.starts_with("container:") {
        return Ok(Vec::new());
    }
    if out.first().is_none_or(|e| e.network != mode) {
        out.insert(
            0,
            pb::EndpointSpec {
                network: mode.to_owned(),
                ..Default::default()
            },
        );
    }
    if let Some(first) = out.first_mut()
        && first.mac_address.is_empty()
    {
        mac.clone_into(&mut first.mac_address);
    }
    Ok(out)
}

/// dockerd's refusals of options that `--network container:<id>` makes meaningless.
fn container_mode_conflicts(body: &Value) -> Result<(), ApiError> {
    let hc = &body["HostConfig"];
    let mode = hc["NetworkMode"].as_str().unwrap_or_default();
    if !mode.starts_with("container:") {
        return Ok(());
    }
    let set = |v: &Value| fields::is_set("", v);
    let conflicts = [
        (
            set(&body["Hostname"]),
            "conflicting options: hostname and the network mode",
        ),
        (
            set(&hc["Links"]),
            "conflicting options: container type network can't be used with links. This would \
             result in undefined behavior",
        ),
        (
            set(&hc["Dns"]),
            "conflicting options: dns and the network mode",
        ),
        (
            set(&hc["ExtraHosts"]),
            "conflicting options: custom host-to-IP mapping and the network mode",
        ),
        (
            set(&body["MacAddress"]),
            "conflicting options: mac-address and the network mode",
        ),
        (
            set(&hc["PortBindings"]) || set(&hc["PublishAllPorts"]),
            "conflicting options: port publishing and the container type network mode",
        ),
        (
            set(&body["ExposedPorts"]),
            "conflicting options: port exposing and the container type network mode",
        ),
    ];
    match conflicts.iter().find(|(c, _)| *c) {
        Some((_, msg)) => Err(invalid(*msg)),
        None => Ok(()),
    }
}

/// The default network, none, host, `container:<id>`, or a user-defined network's name or ID
/// (the route resolves it to the network's name).
fn network_mode(mode: &str) -> Result<String, ApiError> {
    match mode {
        "" | "default" | "bridge" => Ok("bridge".to_owned()),
        "container:" => Err(invalid("invalid container format container:<name|id>")),
        m => Ok(m.to_owned()),
    }
}

fn log_spec(log: LogConfig) -> Result<Option<pb::LogSpec>, ApiError> {
    let options = log.config.unwrap_or_default();
    if log.kind.is_empty() && options.is_empty() {
        return Ok(None);
    }
    if !log.kind.is_empty() && !LOG_DRIVERS.contains(&log.kind.as_str()) {
        return Err(invalid(format!(
            "logger: no log driver named '{}' is registered",
            log.kind
        )));
    }
    if !matches!(log.kind.as_str(), "" | "json-file" | "none") {
        return Err(invalid(format!(
            "--log-driver {} is not supported by Berth yet (HostConfig.LogConfig.Type)",
            log.kind
        )));
    }
    let mut keys: Vec<&String> = options.keys().collect();
    keys.sort();
    for k in keys {
        if log.kind == "none" {
            return Err(invalid(format!(
                "unknown log opt '{k}' for none log driver"
            )));
        }
        if !JSON_FILE_OPTS.contains(&k.as_str()) {
            return Err(invalid(format!(
                "unknown log opt '{k}' for json-file log driver"
            )));
        }
        if !JSON_FILE_HONORED.contains(&k.as_str()) {
            return Err(invalid(format!(
                "--log-opt {k} is not supported by Berth yet (HostConfig.LogConfig.Config)"
            )));
        }
    }
    if let Some(size) = options.get("max-size")
        && berth_types::parse_size(size).is_none()
    {
        return Err(invalid(format!("invalid max-size: {size}")));
    }
    if let Some(n) = options.get("max-file")
        && n.parse::<u32>().ok().filter(|n| *n > 0).is_none()
    {
        return Err(invalid(format!("invalid max-file: {n}")));
    }
    Ok(Some(pb::LogSpec {
        driver: log.kind,
        options,
    }))
}

/// Docker's checks of a valid restart policy (moby `validateRestartPolicy`).
fn check_restart(body: &Value) -> Result<(), ApiError> {
    check_restart_policy(&body["HostConfig"]["RestartPolicy"])
}

/// moby's validateRestartPolicy of one `RestartPolicy` object (create and update).
pub fn check_restart_policy(rp: &Value) -> Result<(), ApiError> {
    let name = rp["Name"].as_str().unwrap_or_default();
    let retries = rp["MaximumRetryCount"].as_i64().unwrap_or(0);
    match name {
        "" | "no" | "always" | "unless-stopped" if retries != 0 => Err(invalid(
            "invalid restart policy: maximum retry count can only be used with 'on-failure'",
        )),
        "" | "no" | "always" | "unless-stopped" => Ok(()),
        "on-failure" if retries < 0 => Err(invalid(
            "invalid restart policy: maximum retry count cannot be negative",
        )),
        "on-failure" => Ok(()),
        other => Err(invalid(format!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', \
             'on-failure', or 'unless-stopped'"
        ))),
    }
}

/// The policy of a body `check_restart` accepted; None for "no".
fn restart_policy(p: &RestartPolicy) -> Option<pb::RestartPolicy> {
    use pb::restart_policy::Mode;
    let mode = match p.name.as_str() {
        "always" => Mode::Always,
        "unless-stopped" => Mode::UnlessStopped,
        "on-failure" => Mode::OnFailure,
        _ => return None,
    };
    Some(pb::RestartPolicy {
        mode: mode as i32,
        maximum_retry_count: p.maximum_retry_count,
    })
}

/// `--device` mappings (moby's validation of the path and the permissions).
fn devices(list: Option<Vec<DeviceMapping>>) -> Result<Vec<pb::DeviceMapping>, ApiError> {
    list.unwrap_or_default()
        .into_iter()
        .map(|d| {
            if !d.path_on_host.starts_with('/') {
                return Err(invalid(format!(
                    "{} is not an absolute path",
                    d.path_on_host
                )));
            }
            if !d.path_in_container.is_empty() && !d.path_in_container.starts_with('/') {
                return Err(invalid(format!(
                    "{} is not an absolute path",
                    d.path_in_container
                )));
            }
            let p = &d.cgroup_permissions;
            if p.len() > 3 || !p.chars().all(|c| matches!(c, 'r' | 'w' | 'm')) {
                return Err(invalid(format!("invalid device mode: {p}")));
            }
            Ok(pb::DeviceMapping {
                path_on_host: d.path_on_host,
                path_in_container: d.path_in_container,
                cgroup_permissions: d.cgroup_permissions,
            })
        })
        .collect()
}

/// The value without its null members, recursively: to Go, a null is the zero value (or an
/// absent pointer), which is what an absent key gives serde's defaults.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Every key of a create body Berth knows, at every level: the typed Config, the table's
/// rows, the mounts and the endpoint settings (read apart from Config).
fn body_schema() -> &'static Schema {
    static SCHEMA: std::sync::OnceLock<Schema> = std::sync::OnceLock::new();
    SCHEMA.get_or_init(|| {
        Schema::of::<Config>()
            .merge(fields::schema())
            .with("HostConfig.Mounts", mounts::schema())
            .with(
                "NetworkingConfig.EndpointsConfig",
                Schema::Map(Box::new(endpoint::schema())),
            )
    })
}

/// The spec for a create body. `platform` is the query parameter.
pub fn spec(
    mut body: Value,
    version: ApiVersion,
    platform: &str,
) -> Result<pb::ContainerSpec, ApiError> {
    if !body.is_object() {
        return Err(invalid("invalid JSON: not an object"));
    }
    body_schema()
        .canonicalize(&mut body)
        .map_err(|e| invalid(format!("invalid JSON: {e}")))?;
    for_version(&mut body, version);
    if version
        < (ApiVersion {
            major: 1,
            minor: 45,
        })
        && body["HostConfig"]["Mounts"].as_array().is_some_and(|l| {
            l.iter().any(|m| {
                m["VolumeOptions"]["Subpath"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            })
        })
    {
        return Err(invalid("VolumeOptions.Subpath needs API v1.45 or newer"));
    }
    let default_read_only_non_recursive = read_only_recursion(&body, version)?;
    check_restart(&body)?;
    if body["HostConfig"]["AutoRemove"].as_bool() == Some(true)
        && fields::is_set(
            "HostConfig.RestartPolicy",
            &body["HostConfig"]["RestartPolicy"],
        )
    {
        return Err(invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    check_fields(&body)?;
    if !matches!(platform, "" | "linux" | "linux/amd64") {
        return Err(invalid(format!(
            "--platform {platform} is not supported by Berth yet"
        )));
    }
    container_mode_conflicts(&body)?;
    let endpoints = body["NetworkingConfig"].clone();
    let mac = body["MacAddress"].as_str().unwrap_or_default().to_owned();
    strip_nulls(&mut body);
    let parsed_mounts = mounts::parse(&body)?;
    let cfg: Config = serde_path_to_error::deserialize(body)
        .map_err(|e| invalid(format!("invalid JSON: {}: {}", e.path(), e.inner())))?;
    let hc = cfg.host_config;
    if cfg.image.is_empty() {
        return Err(invalid("no image specified"));
    }
    let mode = network_mode(&hc.network_mode)?;
    let endpoints = self::endpoints(
        &serde_json::json!({ "NetworkingConfig": endpoints }),
        &mode,
        &mac,
    )?;
    if !matches!(hc.runtime.as_str(), "" | "runc") {
        return Err(invalid(format!(
            "unknown or invalid runtime name: {}",
            hc.runtime
        )));
    }
    if !matches!(hc.isolation.as_str(), "" | "default") {
        return Err(invalid(format!(
            "invalid isolation '{}' on linux",
            hc.isolation
        )));
    }
    if let Some(t) = cfg.stop_timeout
        && t < -1
    {
        return Err(invalid(format!("invalid stop timeout: {t}")));
    }
    let uts = security::namespace_mode("UTS", "--uts", &hc.uts_mode)?;
    if uts == "host" && !cfg.hostname.is_empty() {
        return Err(invalid("conflicting options: hostname and the UTS mode"));
    }
    let namespaces = pb::NamespaceSpec {
        pid: security::namespace_mode("PID", "--pid", &hc.pid_mode)?,
        ipc: security::namespace_mode("IPC", "--ipc", &hc.ipc_mode)?,
        uts,
        cgroup: hc.cgroupns_mode,
        ..Default::default()
    };
    let paths = |p: Option<Vec<String>>| -> Result<Option<pb::StringList>, ApiError> {
        let Some(values) = p else { return Ok(None) };
        if let Some(bad) = values.iter().find(|v| !v.starts_with('/')) {
            return Err(invalid(format!("path {bad:?} is not absolute")));
        }
        Ok(Some(pb::StringList { values }))
    };
    let sec = pb::SecuritySpec {
        readonly_rootfs: hc.readonly_rootfs,
        cap_add: security::capabilities(hc.cap_add)?,
        cap_drop: security::capabilities(hc.cap_drop)?,
        security_opt: security::security_opts(hc.security_opt)?,
        masked_paths: paths(hc.masked_paths)?,
        readonly_paths: paths(hc.readonly_paths)?,
        sysctls: hc.sysctls.unwrap_or_default(),
        privileged: hc.privileged,
        ..Default::default()
    };
    if hc.shm_size < 0 {
        return Err(invalid("SHM size can not be less than 0"));
    }
    // Wider than the spec's field: dockerd's message names the value as sent (the range
    // itself is the runtime's check).
    let oom_score_adj = i32::try_from(hc.oom_score_adj).map_err(|_| {
        invalid(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            hc.oom_score_adj
        ))
    })?;
    let resources = pb::Resources {
        memory: hc.memory,
        memory_swap: hc.memory_swap,
        memory_reservation: hc.memory_reservation,
        // -1 is "unset" as the CLI and docker-py send it.
        memory_swappiness: hc.memory_swappiness.filter(|s| *s != -1),
        oom_kill_disable: hc.oom_kill_disable.filter(|d| *d),
        nano_cpus: hc.nano_cpus,
        cpu_shares: hc.cpu_shares,
        cpu_period: hc.cpu_period,
        cpu_quota: hc.cpu_quota,
        cpuset_cpus: hc.cpuset_cpus,
        cpuset_mems: hc.cpuset_mems,
        // 0 and -1 are unlimited.
        pids_limit: hc.pids_limit.filter(|n| *n > 0),
        blkio_weight: u32::from(hc.blkio_weight),
        blkio_weight_devices: hc
            .blkio_weight_device
            .unwrap_or_default()
            .into_iter()
            .map(|d| pb::WeightDevice {
                path: d.path,
                weight: u32::from(d.weight),
            })
            .collect(),
        read_bps: throttles(hc.blkio_device_read_bps),
        write_bps: throttles(hc.blkio_device_write_bps),
        read_iops: throttles(hc.blkio_device_read_iops),
        write_iops: throttles(hc.blkio_device_write_iops),
        cgroup_parent: hc.cgroup_parent,
        oom_score_adj,
        shm_size: hc.shm_size,
        devices: devices(hc.devices)?,
        device_cgroup_rules: hc.device_cgroup_rules.unwrap_or_default(),
        ..Default::default()
    };
    for r in &resources.device_cgroup_rules {
        berth_bundle::DeviceRule::parse(r).map_err(invalid)?;
    }
    let resources = (resources != pb::Resources::default()).then_some(resources);
    let rlimits = security::ulimits(hc.ulimits)?;
    let [height, width] = hc.console_size.unwrap_or_default();
    let mut exposed: Vec<String> = cfg
        .exposed_ports
        .unwrap_or_default()
        .into_keys()
        .map(|p| {
            if p.contains('/') {
                p
            } else {
                format!("{p}/tcp")
            }
        })
        .collect();
    exposed.sort();
    Ok(pb::ContainerSpec {
        image: cfg.image,
        process: Some(pb::Process {
            entrypoint: cfg
                .entrypoint
                .list()
                .map(|values| pb::StringList { values }),
            cmd: cfg.cmd.list().map(|values| pb::StringList { values }),
            env: cfg.env.unwrap_or_default(),
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
            rlimits,
            additional_groups: hc.group_add.unwrap_or_default(),
            // The shell of CMD-SHELL health checks.
            shell: cfg.shell.unwrap_or_default(),
            ..Default::default()
        }),
        hostname: cfg.hostname,
        domainname: cfg.domainname,
        labels: cfg.labels.unwrap_or_default(),
        stop_signal: cfg.stop_signal,
        stop_timeout: cfg.stop_timeout,
        health_check: health::spec(cfg.healthcheck)?,
        network: Some(pb::NetworkSpec {
            port_bindings: ports::for_mode(&mode, ports::parse(hc.port_bindings)?)?,
            publish_all: hc.publish_all_ports,
            endpoints,
            dns: ports::dns_servers(hc.dns)?,
            dns_search: hc.dns_search.unwrap_or_default(),
            dns_options: hc.dns_options.unwrap_or_default(),
            extra_hosts: ports::extra_hosts(hc.extra_hosts)?,
            links: super::links::parse(hc.links.unwrap_or_default())?,
            mode,
            exposed_ports: exposed,
            ..Default::default()
        }),
        security: (sec != pb::SecuritySpec::default()).then_some(sec),
        namespaces: (namespaces != pb::NamespaceSpec::default()).then_some(namespaces),
        resources,
        log: log_spec(hc.log_config)?,
        auto_remove: hc.auto_remove,
        restart_policy: restart_policy(&hc.restart_policy),
        mounts: parsed_mounts.mounts,
        image_volumes: parsed_mounts.volumes,
        volumes_from: parsed_mounts.volumes_from,
        tmpfs: parsed_mounts.tmpfs,
        default_read_only_non_recursive,
        init: hc.init.unwrap_or(false),
        platform: platform.to_owned(),
        ..Default::default()
    })
}

#[cfg(test)]
#[path = "create_tests.rs"]
mod tests;
