//! Every field of Docker's create body (Config, HostConfig, NetworkingConfig) and what Berth
//! does with it: honored, or refused with a 400 that names the option until the work that
//! implements it lands. A field counts as set when it differs from Docker's default (the CLI
//! always sends `Memory: 0`, `NetworkMode: "default"`, empty lists). This table is the one
//! place that says so; `create.rs` checks a body against it and a test sends every row.

use serde_json::Value;

use crate::docker::keys::Schema;

/// What Berth does with a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Applied to the container, and shown by inspect.
    Honored,
    /// Refused when set, until the named work lands.
    Refused(Pending),
    /// Read by the client only (the CLI's `--cidfile`), or meaningless on Linux, where dockerd
    /// ignores it as well.
    Ignored,
}

/// The work that will honor a refused field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    /// Bridge networks, ports, DNS (the network service).
    Network,
    /// Volumes, binds, tmpfs (the volumes service).
    Volumes,
    /// cgroup limits, restart policies, health checks (runtime II).
    Resources,
    /// Capabilities, seccomp, devices, namespaces (runtime III).
    Security,
    /// Nothing planned yet.
    Unplanned,
}

/// One field: its path in the body, the `docker run` flag that sets it, what Berth does, and
/// a sample value that counts as set (for the test that walks the table).
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub path: &'static str,
    pub flag: &'static str,
    pub support: Support,
    pub sample: &'static str,
}

use Pending::*;
use Support::*;

const fn f(
    path: &'static str,
    flag: &'static str,
    support: Support,
    sample: &'static str,
) -> Field {
    Field {
        path,
        flag,
        support,
        sample,
    }
}

/// Config (the top level of the body) and HostConfig. NetworkingConfig is checked in
/// `create.rs` (its keys are network names).
pub const FIELDS: &[Field] = &[
    f("Hostname", "--hostname", Honored, r#""box""#),
    f("Domainname", "--domainname", Honored, r#""example.org""#),
    f("User", "--user", Honored, r#""nobody""#),
    f("AttachStdin", "--attach stdin", Honored, "true"),
    f("AttachStdout", "--attach stdout", Honored, "true"),
    f("AttachStderr", "--attach stderr", Honored, "true"),
    f("ExposedPorts", "--expose", Honored, r#"{"80/tcp": {}}"#),
    f("Tty", "--tty", Honored, "true"),
    f("OpenStdin", "--interactive", Honored, "true"),
    f("StdinOnce", "--interactive", Honored, "true"),
    f("Env", "--env", Honored, r#"["A=1"]"#),
    f("Cmd", "COMMAND", Honored, r#"["true"]"#),
    f(
        "Healthcheck",
        "--health-cmd",
        Honored,
        r#"{"Test": ["CMD", "true"]}"#,
    ),
    f("ArgsEscaped", "ArgsEscaped", Ignored, "true"),
    f("Image", "IMAGE", Honored, r#""busybox""#),
    f("Volumes", "--volume", Honored, r#"{"/data": {}}"#),
    f("WorkingDir", "--workdir", Honored, r#""/tmp""#),
    f("Entrypoint", "--entrypoint", Honored, r#"["/bin/sh"]"#),
    f(
        "NetworkDisabled",
        "--network-disabled",
        Refused(Network),
        "true",
    ),
    f(
        "MacAddress",
        "--mac-address",
        Honored,
        r#""02:42:ac:11:00:02""#,
    ),
    f("OnBuild", "ONBUILD", Ignored, r#"["RUN true"]"#),
    f("Labels", "--label", Honored, r#"{"a": "b"}"#),
    f("StopSignal", "--stop-signal", Honored, r#""SIGINT""#),
    f("StopTimeout", "--stop-timeout", Honored, "5"),
    f("Shell", "SHELL", Honored, r#"["/bin/sh", "-c"]"#),
    // HostConfig
    f("HostConfig.Binds", "--volume", Honored, r#"["/tmp:/host"]"#),
    f(
        "HostConfig.ContainerIDFile",
        "--cidfile",
        Ignored,
        r#""/tmp/cid""#,
    ),
    f(
        "HostConfig.LogConfig",
        "--log-driver",
        Honored,
        r#"{"Type": "json-file", "Config": {"max-size": "1m"}}"#,
    ),
    f("HostConfig.NetworkMode", "--network", Honored, r#""none""#),
    f(
        "HostConfig.PortBindings",
        "--publish",
        Honored,
        r#"{"80/tcp": [{"HostPort": "8080"}]}"#,
    ),
    f(
        "HostConfig.RestartPolicy",
        "--restart",
        Honored,
        r#"{"Name": "always"}"#,
    ),
    f("HostConfig.AutoRemove", "--rm", Honored, "true"),
    f(
        "HostConfig.VolumeDriver",
        "--volume-driver",
        Honored,
        r#""local""#,
    ),
    f(
        "HostConfig.VolumesFrom",
        "--volumes-from",
        Honored,
        r#"["other"]"#,
    ),
    f(
        "HostConfig.Mounts",
        "--mount",
        Honored,
        r#"[{"Type": "tmpfs", "Target": "/t"}]"#,
    ),
    f("HostConfig.ConsoleSize", "--tty", Honored, "[24, 80]"),
    f(
        "HostConfig.Annotations",
        "--annotation",
        Refused(Unplanned),
        r#"{"a": "b"}"#,
    ),
    f(
        "HostConfig.CapAdd",
        "--cap-add",
        Honored,
        r#"["NET_ADMIN"]"#,
    ),
    f("HostConfig.CapDrop", "--cap-drop", Honored, r#"["CHOWN"]"#),
    f(
        "HostConfig.CgroupnsMode",
        "--cgroupns",
        Honored,
        r#""host""#,
    ),
    f("HostConfig.Dns", "--dns", Honored, r#"["1.1.1.1"]"#),
    f(
        "HostConfig.DnsOptions",
        "--dns-option",
        Honored,
        r#"["ndots:2"]"#,
    ),
    f(
        "HostConfig.DnsSearch",
        "--dns-search",
        Honored,
        r#"["example.org"]"#,
    ),
    f(
        "HostConfig.ExtraHosts",
        "--add-host",
        Honored,
        r#"["h:1.2.3.4"]"#,
    ),
    f(
        "HostConfig.GroupAdd",
        "--group-add",
        Honored,
        r#"["audio"]"#,
    ),
    f("HostConfig.IpcMode", "--ipc", Honored, r#""host""#),
    f(
        "HostConfig.Cgroup",
        "--cgroup",
        Refused(Resources),
        r#""container:x""#,
    ),
    f("HostConfig.Links", "--link", Honored, r#"["db:db"]"#),
    f("HostConfig.OomScoreAdj", "--oom-score-adj", Honored, "100"),
    f("HostConfig.PidMode", "--pid", Honored, r#""host""#),
    f("HostConfig.Privileged", "--privileged", Honored, "true"),
    f(
        "HostConfig.PublishAllPorts",
        "--publish-all",
        Honored,
        "true",
    ),
    f("HostConfig.ReadonlyRootfs", "--read-only", Honored, "true"),
    f(
        "HostConfig.SecurityOpt",
        "--security-opt",
        Honored,
        r#"["no-new-privileges"]"#,
    ),
    f(
        "HostConfig.StorageOpt",
        "--storage-opt",
        Refused(Unplanned),
        r#"{"size": "1G"}"#,
    ),
    f("HostConfig.Tmpfs", "--tmpfs", Honored, r#"{"/t": ""}"#),
    f("HostConfig.UTSMode", "--uts", Honored, r#""host""#),
    f(
        "HostConfig.UsernsMode",
        "--userns",
        Refused(Security),
        r#""host""#,
    ),
    f("HostConfig.ShmSize", "--shm-size", Honored, "1048576"),
    f(
        "HostConfig.Sysctls",
        "--sysctl",
        Honored,
        r#"{"net.ipv4.ip_forward": "1"}"#,
    ),
    f("HostConfig.Runtime", "--runtime", Honored, r#""runc""#),
    f(
        "HostConfig.Isolation",
        "--isolation",
        Honored,
        r#""default""#,
    ),
    f("HostConfig.CpuShares", "--cpu-shares", Honored, "512"),
    f("HostConfig.Memory", "--memory", Honored, "10485760"),
    f("HostConfig.NanoCpus", "--cpus", Honored, "500000000"),
    f(
        "HostConfig.CgroupParent",
        "--cgroup-parent",
        Honored,
        r#""mine""#,
    ),
    f("HostConfig.BlkioWeight", "--blkio-weight", Honored, "500"),
    f(
        "HostConfig.BlkioWeightDevice",
        "--blkio-weight-device",
        Honored,
        r#"[{"Path": "/dev/sda", "Weight": 10}]"#,
    ),
    f(
        "HostConfig.BlkioDeviceReadBps",
        "--device-read-bps",
        Honored,
        r#"[{"Path": "/dev/sda", "Rate": 1}]"#,
    ),
    f(
        "HostConfig.BlkioDeviceWriteBps",
        "--device-write-bps",
        Honored,
        r#"[{"Path": "/dev/sda", "Rate": 1}]"#,
    ),
    f(
        "HostConfig.BlkioDeviceReadIOps",
        "--device-read-iops",
        Honored,
        r#"[{"Path": "/dev/sda", "Rate": 1}]"#,
    ),
    f(
        "HostConfig.BlkioDeviceWriteIOps",
        "--device-write-iops",
        Honored,
        r#"[{"Path": "/dev/sda", "Rate": 1}]"#,
    ),
    f("HostConfig.CpuPeriod", "--cpu-period", Honored, "100000"),
    f("HostConfig.CpuQuota", "--cpu-quota", Honored, "50000"),
    f(
        "HostConfig.CpuRealtimePeriod",
        "--cpu-rt-period",
        Refused(Resources),
        "1000",
    ),
    f(
        "HostConfig.CpuRealtimeRuntime",
        "--cpu-rt-runtime",
        Refused(Resources),
        "1000",
    ),
    f("HostConfig.CpusetCpus", "--cpuset-cpus", Honored, r#""0""#),
    f("HostConfig.CpusetMems", "--cpuset-mems", Honored, r#""0""#),
    f(
        "HostConfig.Devices",
        "--device",
        Honored,
        r#"[{"PathOnHost": "/dev/null", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}]"#,
    ),
    f(
        "HostConfig.DeviceCgroupRules",
        "--device-cgroup-rule",
        Honored,
        r#"["c 1:3 rwm"]"#,
    ),
    f(
        "HostConfig.DeviceRequests",
        "--gpus",
        Refused(Unplanned),
        r#"[{"Count": -1, "Capabilities": [["gpu"]]}]"#,
    ),
    f(
        "HostConfig.KernelMemory",
        "--kernel-memory",
        Refused(Resources),
        "10485760",
    ),
    f(
        "HostConfig.KernelMemoryTCP",
        "KernelMemoryTCP",
        Refused(Resources),
        "10485760",
    ),
    f(
        "HostConfig.MemoryReservation",
        "--memory-reservation",
        Honored,
        "10485760",
    ),
    f(
        "HostConfig.MemorySwap",
        "--memory-swap",
        Honored,
        "20971520",
    ),
    f(
        "HostConfig.MemorySwappiness",
        "--memory-swappiness",
        Honored,
        "10",
    ),
    f(
        "HostConfig.OomKillDisable",
        "--oom-kill-disable",
        Honored,
        "true",
    ),
    f("HostConfig.PidsLimit", "--pids-limit", Honored, "10"),
    f(
        "HostConfig.Ulimits",
        "--ulimit",
        Honored,
        r#"[{"Name": "nofile", "Soft": 10, "Hard": 10}]"#,
    ),
    f(
        "HostConfig.CpuCount",
        "--cpu-count",
        Refused(Resources),
        "1",
    ),
    f(
        "HostConfig.CpuPercent",
        "--cpu-percent",
        Refused(Resources),
        "50",
    ),
    f(
        "HostConfig.IOMaximumIOps",
        "--io-maxiops",
        Refused(Resources),
        "10",
    ),
    f(
        "HostConfig.IOMaximumBandwidth",
        "--io-maxbandwidth",
        Refused(Resources),
        "10",
    ),
    f(
        "HostConfig.MaskedPaths",
        "--security-opt systempaths=unconfined",
        Honored,
        r#"["/proc/kcore"]"#,
    ),
    f(
        "HostConfig.ReadonlyPaths",
        "--security-opt systempaths=unconfined",
        Honored,
        r#"["/proc/sys"]"#,
    ),
    f("HostConfig.Init", "--init", Honored, "true"),
];

/// The table's fields as a key schema (see `keys.rs`): those that no type reads (the
/// refused ones) are known all the same, so that a refused field sent in another case is
/// refused like any other.
pub fn schema() -> Schema {
    FIELDS
        .iter()
        .fold(Schema::fields([]), |s, f| s.with(f.path, Schema::Leaf))
}

/// The value at a dotted path (`HostConfig.Memory`); None when absent.
pub fn lookup<'a>(body: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(body, |v, key| v.get(key))
}

/// Whether `value` differs from Docker's default for the field at `path`: null, false, 0, "",
/// empty lists and objects are the default everywhere; a few fields have their own.
pub fn is_set(path: &str, value: &Value) -> bool {
    let zero = match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    };
    if zero {
        return false;
    }
    match path {
        // -1 is "unset" for these (docker-py and older CLIs send it).
        "HostConfig.MemorySwappiness" | "HostConfig.PidsLimit" => value.as_i64() != Some(-1),
        "HostConfig.ConsoleSize" => value
            .as_array()
            .is_some_and(|a| a.iter().any(|n| n.as_u64() != Some(0))),
        "HostConfig.RestartPolicy" => {
            let name = value["Name"].as_str().unwrap_or_default();
            !matches!(name, "" | "no") || is_set("", &value["MaximumRetryCount"])
        }
        "HostConfig.LogConfig" => is_set("", &value["Type"]) || is_set("", &value["Config"]),
        _ => true,
    }
}

/// The 400 message for a refused field.
pub fn refusal(field: &Field) -> String {
    format!(
        "{} is not supported by Berth yet ({})",
        field.flag, field.path
    )
}
