//! Docker's container shapes rendered from the runtime's typed records: inspect
//! (`GET /containers/{id}/json`), the summary (`GET /containers/json`, `/system/df`), and
//! the `Status` text.

use std::time::{SystemTime, UNIX_EPOCH};

use berth_proto::runtime::v1 as pb;
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value, json};

/// Docker's zero time, for StartedAt/FinishedAt that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Nanoseconds since the epoch as RFC 3339 with nanoseconds; the zero time for 0.
pub fn rfc3339(nanos: i64) -> String {
    if nanos <= 0 {
        return ZERO_TIME.to_owned();
    }
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ZERO_TIME.to_owned())
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// Docker's `units.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
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

type Status = pb::container_state::Status;

/// `created`, `running`, `exited`, ... as Docker's State.Status.
pub fn status_name(s: Status) -> &'static str {
    match s {
        Status::Created => "created",
        Status::Running => "running",
        Status::Paused => "paused",
        Status::Restarting => "restarting",
        Status::Removing => "removing",
        Status::Exited => "exited",
        Status::Dead => "dead",
    }
}

fn status_of(c: &pb::Container) -> (Status, &pb::ContainerState) {
    static NONE: std::sync::LazyLock<pb::ContainerState> =
        std::sync::LazyLock::new(pb::ContainerState::default);
    let st = c.state.as_ref().unwrap_or(&NONE);
    (Status::try_from(st.status).unwrap_or(Status::Dead), st)
}

/// "Up 3 seconds", "Exited (0) 2 seconds ago", "Created".
pub fn status_text(c: &pb::Container) -> String {
    let (status, st) = status_of(c);
    let ago = |nanos: i64| (nanos > 0).then(|| now_secs() - nanos / 1_000_000_000);
    match status {
        Status::Created => "Created".to_owned(),
        Status::Running => format!(
            "Up {}{}",
            human_duration(ago(st.started_at).unwrap_or(0)),
            crate::docker::health::status_suffix(st.health.as_ref())
        ),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(ago(st.started_at).unwrap_or(0))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            st.exit_code,
            human_duration(ago(st.finished_at).unwrap_or(0))
        ),
        Status::Removing => "Removal In Progress".to_owned(),
        Status::Dead => "Dead".to_owned(),
        Status::Exited => match ago(st.finished_at) {
            Some(s) => format!("Exited ({}) {} ago", st.exit_code, human_duration(s)),
            None => format!("Exited ({})", st.exit_code),
        },
    }
}

/// The summary's Command: the path and the arguments, those with a space in single quotes
/// (as moby shows them).
pub fn command(c: &pb::Container) -> String {
    let len = c.path.len() + c.args.iter().map(|a| a.len() + 3).sum::<usize>();
    let mut out = String::with_capacity(len);
    out.push_str(&c.path);
    for a in &c.args {
        out.push(' ');
        if a.contains(' ') {
            out.push('\'');
            out.push_str(a);
            out.push('\'');
        } else {
            out.push_str(a);
        }
    }
    out
}

fn network_mode(spec: Option<&pb::ContainerSpec>) -> &str {
    spec.and_then(|s| s.network.as_ref())
        .map_or("bridge", |n| n.mode.as_str())
}

/// One entry of `NetworkSettings.Networks`: the endpoint while the container runs, the
/// settings asked for alone (empty operational fields) when it does not. Typed, so that a list
/// of a thousand summaries is written without building a map per entry.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings<'a> {
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<IpamConfig<'a>>,
    links: Option<()>,
    aliases: Option<&'a [String]>,
    mac_address: &'a str,
    driver_opts: Option<&'a HashMap<String, String>>,
    gw_priority: i64,
    #[serde(rename = "NetworkID")]
    network_id: &'a str,
    #[serde(rename = "EndpointID")]
    endpoint_id: &'a str,
    gateway: &'a str,
    #[serde(rename = "IPAddress")]
    ip_address: &'a str,
    #[serde(rename = "IPPrefixLen")]
    ip_prefix_len: u32,
    #[serde(rename = "IPv6Gateway")]
    ipv6_gateway: &'a str,
    #[serde(rename = "GlobalIPv6Address")]
    global_ipv6_address: &'a str,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    global_ipv6_prefix_len: u32,
    #[serde(rename = "DNSNames")]
    dns_names: Option<&'a [String]>,
}

/// The addresses a user fixed for an endpoint (`--ip`, `--ip6`).
#[derive(Serialize)]
pub struct IpamConfig<'a> {
    #[serde(rename = "IPv4Address", skip_serializing_if = "str::is_empty")]
    ipv4: &'a str,
    #[serde(rename = "IPv6Address", skip_serializing_if = "str::is_empty")]
    ipv6: &'a str,
    #[serde(rename = "LinkLocalIPs", skip_serializing_if = "<[String]>::is_empty")]
    link_local: &'a [String],
}

static NO_ENDPOINT: std::sync::LazyLock<pb::EndpointSpec> =
    std::sync::LazyLock::new(pb::EndpointSpec::default);

fn endpoint_settings<'a>(
    e: Option<&'a pb::ContainerEndpoint>,
    want: &'a pb::EndpointSpec,
) -> EndpointSettings<'a> {
    let non_empty = |v: &&[String]| !v.is_empty();
    let fixed = !want.ipv4_address.is_empty()
        || !want.ipv6_address.is_empty()
        || !want.link_local_ips.is_empty();
    let aliases = match e {
        Some(e) if !e.aliases.is_empty() => e.aliases.as_slice(),
        _ => want.aliases.as_slice(),
    };
    EndpointSettings {
        ipam_config: fixed.then_some(IpamConfig {
            ipv4: &want.ipv4_address,
            ipv6: &want.ipv6_address,
            link_local: &want.link_local_ips,
        }),
        links: None,
        aliases: Some(aliases).filter(non_empty),
        mac_address: e.map_or("", |e| e.mac_address.as_str()),
        driver_opts: Some(&want.driver_opts).filter(|o| !o.is_empty()),
        gw_priority: want.gw_priority,
        network_id: e.map_or("", |e| e.network_id.as_str()),
        endpoint_id: e.map_or("", |e| e.endpoint_id.as_str()),
        gateway: e.map_or("", |e| e.gateway.as_str()),
        ip_address: e.map_or("", |e| e.ipv4_address.as_str()),
        ip_prefix_len: e.map_or(0, |e| e.ipv4_prefix_len),
        ipv6_gateway: e.map_or("", |e| e.ipv6_gateway.as_str()),
        global_ipv6_address: e.map_or("", |e| e.ipv6_address.as_str()),
        global_ipv6_prefix_len: e.map_or(0, |e| e.ipv6_prefix_len),
        dns_names: e.map(|e| e.dns_names.as_slice()).filter(non_empty),
    }
}

/// `NetworkSettings.Networks`: the container's networks by name (its list, else its mode),
/// each with its endpoint while it runs.
fn networks(c: &pb::Container) -> BTreeMap<&str, EndpointSettings<'_>> {
    let mode = network_mode(c.spec.as_ref());
    let eps = c
        .network
        .as_ref()
        .map(|n| n.endpoints.as_slice())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    if mode.starts_with("container:") {
        return out;
    }
    let net = c.spec.as_ref().and_then(|s| s.network.as_ref());
    let listed = net.map_or(&[][..], |n| n.endpoints.as_slice());
    if listed.is_empty() && !net.is_some_and(|n| n.endpoints_listed) {
        let e = eps.iter().find(|e| e.network_name == mode);
        out.insert(mode, endpoint_settings(e, &NO_ENDPOINT));
    }
    for want in listed {
        let e = eps.iter().find(|e| e.network_name == want.network);
        out.insert(want.network.as_str(), endpoint_settings(e, want));
    }
    for e in eps {
        if !out.contains_key(e.network_name.as_str()) {
            out.insert(
                e.network_name.as_str(),
                endpoint_settings(Some(e), &NO_ENDPOINT),
            );
        }
    }
    out
}

/// Inspect's `NetworkSettings`: the networks, the netns (SandboxKey), and the legacy top-level
/// fields, which dockerd fills from the default bridge network's endpoint.
fn network_settings(c: &pb::Container) -> Value {
    let net = c
        .spec
        .as_ref()
        .and_then(|s| s.network.clone())
        .unwrap_or_default();
    let ports = super::ports::network_settings(&net, c.network.as_ref());
    let state = c.network.clone().unwrap_or_default();
    let bridge = state
        .endpoints
        .iter()
        .find(|e| e.network_name == "bridge")
        .cloned()
        .unwrap_or_default();
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": state.sandbox_key,
        "Ports": ports,
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": bridge.endpoint_id,
        "Gateway": bridge.gateway,
        "GlobalIPv6Address": bridge.ipv6_address,
        "GlobalIPv6PrefixLen": bridge.ipv6_prefix_len,
        "IPAddress": bridge.ipv4_address,
        "IPPrefixLen": bridge.ipv4_prefix_len,
        "IPv6Gateway": bridge.ipv6_gateway,
        "MacAddress": bridge.mac_address,
        "Networks": networks(c),
    })
}

/// GET /containers/json: one summary, with SizeRw and SizeRootFs when known and not zero (as
/// moby leaves them out).
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary<'a> {
    id: &'a str,
    names: [String; 1],
    image: &'a str,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    command: String,
    created: i64,
    ports: Value,
    labels: &'a HashMap<String, String>,
    state: &'static str,
    status: String,
    host_config: SummaryHostConfig<'a>,
    network_settings: SummaryNetworks<'a>,
    mounts: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_rw: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size_root_fs: Option<i64>,
}

#[derive(Serialize)]
pub struct SummaryHostConfig<'a> {
    #[serde(rename = "NetworkMode")]
    network_mode: &'a str,
}

#[derive(Serialize)]
pub struct SummaryNetworks<'a> {
    #[serde(rename = "Networks")]
    networks: BTreeMap<&'a str, EndpointSettings<'a>>,
}

static NO_CONTAINER: std::sync::LazyLock<pb::Container> =
    std::sync::LazyLock::new(pb::Container::default);
static NO_LABELS: std::sync::LazyLock<HashMap<String, String>> =
    std::sync::LazyLock::new(HashMap::new);

/// GET /containers/json's list, each summary made as it is written (none held in a list).
pub struct Summaries<'a>(pub &'a [pb::ContainerInfo]);

impl Serialize for Summaries<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(summary))
    }
}

pub fn summary(info: &pb::ContainerInfo) -> Summary<'_> {
    let c = info.container.as_ref().unwrap_or(&NO_CONTAINER);
    let spec = c.spec.as_ref();
    let (status, _) = status_of(c);
    let no_net = pb::NetworkSpec::default();
    Summary {
        id: &c.id,
        names: [format!("/{}", c.name)],
        image: spec.map_or("", |s| s.image.as_str()),
        image_id: &c.image_id,
        command: command(c),
        created: c.created / 1_000_000_000,
        ports: super::ports::summary(
            spec.and_then(|s| s.network.as_ref()).unwrap_or(&no_net),
            c.network.as_ref(),
        ),
        labels: spec.map_or(&NO_LABELS, |s| &s.labels),
        state: status_name(status),
        status: status_text(c),
        host_config: SummaryHostConfig {
            network_mode: network_mode(spec),
        },
        network_settings: SummaryNetworks {
            networks: networks(c),
        },
        mounts: crate::docker::mounts::inspect_mounts(c),
        size_rw: info.size_rw.filter(|n| *n != 0),
        size_root_fs: info.size_root_fs.filter(|n| *n != 0),
    }
}

fn list_or_null(v: Option<&pb::StringList>) -> Value {
    v.map_or(Value::Null, |l| json!(l.values))
}

/// Docker's Config, from the effective spec.
fn config(spec: &pb::ContainerSpec) -> Value {
    let p = spec.process.clone().unwrap_or_default();
    let net = spec.network.clone().unwrap_or_default();
    let mut v = json!({
        "Hostname": spec.hostname,
        "Domainname": spec.domainname,
        "User": p.user,
        "AttachStdin": p.attach_stdin,
        "AttachStdout": p.attach_stdout,
        "AttachStderr": p.attach_stderr,
        "Tty": p.tty,
        "OpenStdin": p.open_stdin,
        "StdinOnce": p.stdin_once,
        "Env": p.env,
        "Cmd": list_or_null(p.cmd.as_ref()),
        "Image": spec.image,
        "Volumes": null,
        "WorkingDir": p.working_dir,
        "Entrypoint": list_or_null(p.entrypoint.as_ref()),
        "OnBuild": null,
        "Labels": spec.labels,
    });
    if !net.exposed_ports.is_empty() {
        let ports: Map<String, Value> = net
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        v["ExposedPorts"] = Value::Object(ports);
    }
    if !spec.image_volumes.is_empty() {
        let vols: Map<String, Value> = spec
            .image_volumes
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        v["Volumes"] = Value::Object(vols);
    }
    if !p.shell.is_empty() {
        v["Shell"] = json!(p.shell);
    }
    if let Some(h) = &spec.health_check {
        let mut hc = json!({"Test": h.test});
        for (k, n) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("StartInterval", h.start_interval),
            ("Retries", i64::from(h.retries)),
        ] {
            if n != 0 {
                hc[k] = n.into();
            }
        }
        v["Healthcheck"] = hc;
    }
    if !spec.stop_signal.is_empty() {
        v["StopSignal"] = spec.stop_signal.clone().into();
    }
    if let Some(t) = spec.stop_timeout {
        v["StopTimeout"] = t.into();
    }
    v
}

/// Docker's HostConfig, from the spec: every key dockerd shows, with what Berth applies.
fn host_config(spec: &pb::ContainerSpec) -> Value {
    let mut v = host_config_keys(spec);
    crate::docker::mounts::host_config(spec, &mut v);
    if let Some(s) = spec.security.as_ref().filter(|s| !s.sysctls.is_empty()) {
        v["Sysctls"] = json!(s.sysctls);
    }
    v
}

/// The HostConfig keys dockerd always shows.
fn host_config_keys(spec: &pb::ContainerSpec) -> Value {
    let net = spec.network.clone().unwrap_or_default();
    let p = spec.process.clone().unwrap_or_default();
    let log = spec.log.clone().unwrap_or_default();
    let sec = spec.security.clone().unwrap_or_default();
    let ns = spec.namespaces.clone().unwrap_or_default();
    let list_or_null = |l: &[String]| if l.is_empty() { Value::Null } else { json!(l) };
    let ulimits: Vec<Value> = p
        .rlimits
        .iter()
        .map(|r| json!({"Name": r.name, "Soft": r.soft, "Hard": r.hard}))
        .collect();
    let res = spec.resources.clone().unwrap_or_default();
    let devices: Vec<Value> = res
        .devices
        .iter()
        .map(|d| {
            json!({"PathOnHost": d.path_on_host, "PathInContainer": d.path_in_container,
                   "CgroupPermissions": d.cgroup_permissions})
        })
        .collect();
    let paths = |l: Option<&pb::StringList>, default: &[&str]| {
        l.map_or_else(|| json!(default), |l| json!(l.values))
    };
    json!({
        "Binds": null,
        "ContainerIDFile": "",
        "LogConfig": {"Type": log.driver, "Config": log.options},
        "NetworkMode": network_mode(Some(spec)),
        "PortBindings": super::ports::host_config(&spec.network.clone().unwrap_or_default()),
        "RestartPolicy": restart_policy(spec.restart_policy.as_ref()),
        "AutoRemove": spec.auto_remove,
        "VolumeDriver": "",
        "VolumesFrom": if spec.volumes_from.is_empty() {
            Value::Null
        } else {
            json!(spec.volumes_from)
        },
        "ConsoleSize": [p.console_height, p.console_width],
        "CapAdd": list_or_null(&sec.cap_add),
        "CapDrop": list_or_null(&sec.cap_drop),
        // Stored at create (the host's default filled in); older records ran private.
        "CgroupnsMode": if ns.cgroup.is_empty() { "private" } else { ns.cgroup.as_str() },
        "Dns": net.dns,
        "DnsOptions": net.dns_options,
        "DnsSearch": net.dns_search,
        "ExtraHosts": list_or_null(&net.extra_hosts),
        "GroupAdd": list_or_null(&p.additional_groups),
        "IpcMode": if ns.ipc.is_empty() { "private" } else { ns.ipc.as_str() },
        "Cgroup": "",
        "Links": null,
        "OomScoreAdj": res.oom_score_adj,
        "PidMode": ns.pid,
        "Privileged": sec.privileged,
        "PublishAllPorts": spec.network.as_ref().is_some_and(|n| n.publish_all),
        "ReadonlyRootfs": sec.readonly_rootfs,
        "SecurityOpt": list_or_null(&sec.security_opt),
        "UTSMode": ns.uts,
        "UsernsMode": "",
        // 64 MiB unless asked.
        "ShmSize": spec
            .resources
            .as_ref()
            .map(|r| r.shm_size)
            .filter(|n| *n > 0)
            .unwrap_or(67_108_864),
        "Runtime": "runc",
        "Isolation": "",
        "CpuShares": res.cpu_shares,
        "Memory": res.memory,
        "NanoCpus": res.nano_cpus,
        "CgroupParent": res.cgroup_parent,
        "BlkioWeight": res.blkio_weight,
        "BlkioWeightDevice": res.blkio_weight_devices.iter()
            .map(|d| json!({"Path": d.path, "Weight": d.weight}))
            .collect::<Vec<_>>(),
        "BlkioDeviceReadBps": throttle_json(&res.read_bps),
        "BlkioDeviceWriteBps": throttle_json(&res.write_bps),
        "BlkioDeviceReadIOps": throttle_json(&res.read_iops),
        "BlkioDeviceWriteIOps": throttle_json(&res.write_iops),
        "CpuPeriod": res.cpu_period,
        "CpuQuota": res.cpu_quota,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": res.cpuset_cpus,
        "CpusetMems": res.cpuset_mems,
        "Devices": devices,
        "DeviceCgroupRules": list_or_null(&res.device_cgroup_rules),
        "DeviceRequests": null,
        "MemoryReservation": res.memory_reservation,
        "MemorySwap": res.memory_swap,
        "MemorySwappiness": res.memory_swappiness,
        "OomKillDisable": res.oom_kill_disable,
        "PidsLimit": res.pids_limit,
        "Ulimits": ulimits,
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        // Docker's by default, which the shim applies.
        "MaskedPaths": if sec.privileged { json!([]) } else {
            paths(sec.masked_paths.as_ref(), berth_bundle::DEFAULT_MASKED_PATHS)
        },
        "ReadonlyPaths": if sec.privileged { json!([]) } else {
            paths(sec.readonly_paths.as_ref(), berth_bundle::DEFAULT_READONLY_PATHS)
        },
        "Init": spec.init.then_some(true),
    })
}

/// A throttle list as Docker shows it (`[{"Path": ..., "Rate": ...}]`).
fn throttle_json(l: &[pb::ThrottleDevice]) -> Vec<Value> {
    l.iter()
        .map(|d| json!({"Path": d.path, "Rate": d.rate}))
        .collect()
}

/// Docker's RestartPolicy object.
fn restart_policy(p: Option<&pb::RestartPolicy>) -> Value {
    use pb::restart_policy::Mode;
    let (name, max) = match p {
        Some(p) => (
            match Mode::try_from(p.mode).unwrap_or(Mode::No) {
                Mode::No => "no",
                Mode::Always => "always",
                Mode::UnlessStopped => "unless-stopped",
                Mode::OnFailure => "on-failure",
            },
            p.maximum_retry_count,
        ),
        None => ("no", 0),
    };
    json!({"Name": name, "MaximumRetryCount": max})
}

/// LowerDir/UpperDir/WorkDir of an overlay mount.
fn graph_data(rootfs: Option<&pb::RootfsMount>) -> Value {
    let mut data = Map::new();
    for o in rootfs.iter().flat_map(|m| &m.options) {
        let Some((k, v)) = o.split_once('=') else {
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

/// GET /containers/{id}/json.
pub fn inspect(info: &pb::ContainerInfo) -> Value {
    let c = info.container.clone().unwrap_or_default();
    let spec = c.spec.clone().unwrap_or_default();
    let (status, s) = status_of(&c);
    let running = matches!(
        status,
        Status::Running | Status::Paused | Status::Restarting
    );
    let mut v = json!({
        "Id": c.id,
        "Created": rfc3339(c.created),
        "Path": c.path,
        "Args": c.args,
        "State": {
            "Status": status_name(status),
            "Running": running,
            "Paused": status == Status::Paused,
            "Restarting": status == Status::Restarting,
            "OOMKilled": s.oom_killed,
            "Dead": status == Status::Dead,
            "Pid": if running { s.pid } else { 0 },
            "ExitCode": s.exit_code,
            "Error": s.error,
            "StartedAt": rfc3339(s.started_at),
            "FinishedAt": rfc3339(s.finished_at),
        },
        "Image": c.image_id,
        "ResolvConfPath": info.resolv_conf_path,
        "HostnamePath": info.hostname_path,
        "HostsPath": info.hosts_path,
        "LogPath": info.log_path,
        "Name": format!("/{}", c.name),
        "RestartCount": c.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": if info.exec_ids.is_empty() { Value::Null } else { json!(info.exec_ids) },
        "HostConfig": host_config(&spec),
        "GraphDriver": {"Name": "overlay2", "Data": graph_data(c.rootfs.as_ref())},
        "Mounts": crate::docker::mounts::inspect_mounts(&c),
        "Config": config(&spec),
        "NetworkSettings": network_settings(&c),
    });
    if let Some(h) = &s.health {
        v["State"]["Health"] = crate::docker::health::inspect(h);
    }
    if let Some(links) = spec
        .network
        .as_ref()
        .map(|n| super::links::inspect(&n.links, &c.name))
        .filter(|l| !l.is_empty())
    {
        v["HostConfig"]["Links"] = json!(links);
    }
    if let Some(rw) = info.size_rw {
        v["SizeRw"] = rw.into();
    }
    if let Some(root) = info.size_root_fs {
        v["SizeRootFs"] = root.into();
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> pb::ContainerInfo {
        pb::ContainerInfo {
            container: Some(pb::Container {
                id: "a".repeat(64),
                name: "w".to_owned(),
                created: 1_700_000_000_123_456_789,
                spec: Some(pb::ContainerSpec {
                    image: "busybox".to_owned(),
                    labels: [("k".to_owned(), "v".to_owned())].into(),
                    process: Some(pb::Process {
                        cmd: Some(pb::StringList {
                            values: vec!["echo hi".to_owned()],
                        }),
                        ..Default::default()
                    }),
                    network: Some(pb::NetworkSpec {
                        mode: "none".to_owned(),
                        exposed_ports: vec!["80/tcp".to_owned()],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                path: "sh".to_owned(),
                args: vec!["-c".to_owned(), "echo hi".to_owned()],
                image_id: "sha256:1234".to_owned(),
                rootfs: Some(pb::RootfsMount {
                    r#type: "overlay".to_owned(),
                    source: "overlay".to_owned(),
                    options: vec!["lowerdir=/l".to_owned(), "upperdir=/u".to_owned()],
                }),
                state: Some(pb::ContainerState {
                    status: Status::Exited as i32,
                    exit_code: 3,
                    started_at: 1_700_000_001_000_000_000,
                    finished_at: 1_700_000_002_000_000_000,
                    ..Default::default()
                }),
                restart_count: 0,
                network: None,
                mount_points: vec![pb::MountPoint {
                    r#type: pb::mount_spec::Type::Volume as i32,
                    name: "data".to_owned(),
                    source: "/var/lib/berth/volumes/data/_data".to_owned(),
                    destination: "/data".to_owned(),
                    driver: "local".to_owned(),
                    mode: "z".to_owned(),
                    ..Default::default()
                }],
            }),
            ..Default::default()
        }
    }

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
        let mut i = info();
        let s = serde_json::to_value(summary(&i)).unwrap();
        assert_eq!(s["Command"], "sh -c 'echo hi'");
        assert_eq!(s["Names"], json!(["/w"]));
        assert_eq!(s["Labels"], json!({"k": "v"}));
        assert_eq!(s["State"], "exited");
        assert!(s["Status"].as_str().unwrap().starts_with("Exited (3) "));
        assert_eq!(s["Created"], 1_700_000_000);
        assert_eq!(s["HostConfig"]["NetworkMode"], "none");
        assert!(s.get("SizeRw").is_none() && s.get("SizeRootFs").is_none());
        i.size_rw = Some(0);
        i.size_root_fs = Some(42);
        let s = serde_json::to_value(summary(&i)).unwrap();
        assert!(s.get("SizeRw").is_none());
        assert_eq!(s["SizeRootFs"], 42);
        // The list is the summaries, written one after the other.
        let list = [info(), i];
        let all = serde_json::to_value(Summaries(&list)).unwrap();
        assert_eq!(all, json!([summary(&list[0]), summary(&list[1])]));
    }

    #[test]
    fn inspect_shows_what_applies() {
        let v = inspect(&info());
        assert_eq!(v["Name"], "/w");
        assert_eq!(v["Created"], "2023-11-14T22:13:20.123456789Z");
        assert_eq!(v["State"]["Status"], "exited");
        assert_eq!(v["State"]["Running"], false);
        assert_eq!(v["State"]["StartedAt"], "2023-11-14T22:13:21Z");
        assert_eq!(v["Config"]["Cmd"], json!(["echo hi"]));
        assert_eq!(v["Config"]["Entrypoint"], Value::Null);
        assert_eq!(v["Config"]["ExposedPorts"], json!({"80/tcp": {}}));
        assert_eq!(v["HostConfig"]["NetworkMode"], "none");
        assert_eq!(v["HostConfig"]["Memory"], 0);
        assert_eq!(
            v["Mounts"][0],
            json!({"Type": "volume", "Name": "data", "Source": "/var/lib/berth/volumes/data/_data",
                   "Destination": "/data", "Driver": "local", "Mode": "z", "RW": true,
                   "Propagation": ""})
        );
        assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "no");
        assert_eq!(v["ExecIDs"], Value::Null);
        assert_eq!(v["GraphDriver"]["Data"]["UpperDir"], "/u");
        assert_eq!(rfc3339(0), ZERO_TIME);
        assert_eq!(v["NetworkSettings"]["Networks"]["none"]["IPAddress"], "");
        assert_eq!(v["NetworkSettings"]["SandboxKey"], "");
    }

    #[test]
    fn health_shows_in_inspect_and_in_the_running_status() {
        let mut i = info();
        assert!(inspect(&i)["State"].get("Health").is_none());
        let c = i.container.as_mut().unwrap();
        c.spec.as_mut().unwrap().process.as_mut().unwrap().shell =
            vec!["/bin/bash".to_owned(), "-c".to_owned()];
        let st = c.state.as_mut().unwrap();
        st.status = Status::Running as i32;
        st.health = Some(pb::HealthState {
            status: "healthy".to_owned(),
            ..Default::default()
        });
        let v = inspect(&i);
        assert_eq!(v["State"]["Health"]["Status"], "healthy");
        assert_eq!(v["State"]["Health"]["Log"], json!([]));
        assert_eq!(v["Config"]["Shell"], json!(["/bin/bash", "-c"]));
        let status = serde_json::to_value(summary(&i)).unwrap()["Status"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            status.starts_with("Up ") && status.ends_with(" (healthy)"),
            "{status}"
        );
    }

    #[test]
    fn network_settings_show_the_endpoint() {
        let mut i = info();
        let c = i.container.as_mut().unwrap();
        c.spec.as_mut().unwrap().network.as_mut().unwrap().mode = "bridge".to_owned();
        c.network = Some(pb::NetworkState {
            sandbox_key: "/run/berth/netns/x".to_owned(),
            endpoints: vec![pb::ContainerEndpoint {
                network_name: "bridge".to_owned(),
                network_id: "n".repeat(64),
                endpoint_id: "e".repeat(64),
                ipv4_address: "172.18.0.2".to_owned(),
                ipv4_prefix_len: 16,
                gateway: "172.18.0.1".to_owned(),
                mac_address: "02:42:ac:12:00:02".to_owned(),
                ..Default::default()
            }],
            ports: Vec::new(),
        });
        let v = inspect(&i);
        let ns = &v["NetworkSettings"];
        assert_eq!(ns["SandboxKey"], "/run/berth/netns/x");
        assert_eq!(ns["IPAddress"], "172.18.0.2");
        assert_eq!(ns["Gateway"], "172.18.0.1");
        assert_eq!(ns["Networks"]["bridge"]["IPPrefixLen"], 16);
        assert_eq!(ns["Networks"]["bridge"]["MacAddress"], "02:42:ac:12:00:02");
        assert_eq!(ns["Networks"]["bridge"]["NetworkID"], "n".repeat(64));
        let s = serde_json::to_value(summary(&i)).unwrap();
        assert_eq!(
            s["NetworkSettings"]["Networks"]["bridge"]["IPAddress"],
            "172.18.0.2"
        );
    }
}
