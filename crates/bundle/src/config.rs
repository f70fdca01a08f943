//! `config.json`: what the runtime writes into the bundle directory before running
//! `berth-shim start --bundle DIR`. Everything the shim needs to create one container.
//!
//! ```json
//! {
//!   "id": "4f3c…",                              // container ID: [A-Za-z0-9][A-Za-z0-9_.-]*
//!   "rootfs": {"type": "overlay", "source": "overlay",
//!              "options": ["lowerdir=/l2:/l1", "upperdir=/u", "workdir=/w"]},
//!   "process": {"args": ["sh"], "env": ["PATH=/bin"], "cwd": "/",
//!               "user": {"uid": 0, "gid": 0, "additional_gids": [],
//!                        "name": "app:staff"},  // optional: Docker's -u, see `User`
//!               "terminal": false, "stdin": false,
//!               "console_size": {"width": 80, "height": 24}},   // optional, terminal only
//!   "hostname": "4f3c0a1b2c3d",                 // default: the first 12 characters of id
//!   "domainname": "",
//!   "namespaces": {"pid": true, "uts": true, "ipc": true, "cgroup": true,
//!                  "net": "new" | "host" | {"path": "/run/berth/netns/4f3c…"}},
//!   "mounts": [{"source": "/var/lib/berth/volumes/v/_data", "destination": "/data",
//!               "options": ["rbind", "ro"]}],
//!   "etc_files": {"hostname": "/run/…/hostname", "hosts": "/run/…/hosts",
//!                 "resolv_conf": "/run/…/resolv.conf"},
//!   "masked_paths": [...],                      // default: Docker's (DEFAULT_MASKED_PATHS)
//!   "readonly_paths": [...],                    // default: Docker's (DEFAULT_READONLY_PATHS)
//!   "readonly_rootfs": false,                   // docker run --read-only
//!   "cgroup_path": "berth/4f3c…",               // relative to every hierarchy's root
//!   "rlimits": [{"type": "nofile", "soft": 1024, "hard": 4096}],   // empty: inherit the host's
//!   "log": {"path": "/var/lib/berth/…/4f3c…-json.log", "max_size": 10485760, "max_file": 3},
//!   "stop_signal": "SIGTERM",
//!   "init": false,                              // docker run --init
//!   "wait_for_start": false,                    // hold before exec until the Start call
//!   "capabilities": null,                       // null: Docker's default set
//!   "no_new_privileges": false,
//!   "socket": null,                             // default: <bundle>/shim.sock
//!   "shm_size": 0,                              // bytes of /dev/shm; 0: 64 MiB
//!   "sysctls": {"net.ipv4.ip_forward": "1"},    // namespaced ones, written inside
//!   "devices": [{"path": "/dev/xvdc", "type": "b", "major": 8, "minor": 0, "file_mode": 432,
//!                "uid": 0, "gid": 6}],          // nodes besides the standard ones
//!   "writable_sysfs": false,                    // docker run --privileged
//!   "resources": {"memory": 10485760, "cpu_quota": 50000, "cpu_period": 100000,
//!                 "pids_limit": 100},           // cgroup limits; absent ones unset
//!   "device_rules": [{"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
//!                                               // on top of nothing allowed; default: Docker's
//!   "seccomp": {"filter": "2000…", "flags": 0}, // compiled BPF; null: unconfined (see `seccomp`)
//!   "oom_score_adj": 500                        // -1000 to 1000, the container's processes';
//!                                               // null: the shim's own, inherited
//! }
//! ```
//!
//! The mount namespace is always new (the root filesystem is entered with pivot_root).
//!
//! The runtime builds a [`Config`] with [`Config::new`] (the same defaults as the JSON's),
//! sets what it needs and writes it with [`Config::write`]; the shim reads it with
//! [`Config::read`]. [`Config::validate`] is the structural check both sides can run; the
//! shim adds the names only it knows (capabilities, rlimit resources).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::BundleError;

/// `<bundle>/config.json`.
pub const CONFIG_FILE: &str = "config.json";

/// `<bundle>/shim.sock`: where the shim listens when the config names no socket.
pub const SOCKET_FILE: &str = "shim.sock";

/// Docker's masked paths (moby `oci/defaults.go`): files get /dev/null bound over them,
/// directories an empty read-only tmpfs.
pub const DEFAULT_MASKED_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's read-only paths: bound onto themselves read-only.
pub const DEFAULT_READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's default capability set.
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Every capability Linux defines (as of 5.9), in number order: what `--cap-add ALL` and
/// `--privileged` ask for (the shim keeps those its own bounding set has).
pub const ALL_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// The PATH used to find `args[0]` when the container's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `<bundle>/config.json` (the JSON is in the module doc). Fields left out of the JSON take
/// the defaults [`Config::new`] gives.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub id: String,
    pub rootfs: Mount,
    pub process: Process,
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub domainname: String,
    #[serde(default)]
    pub namespaces: Namespaces,
    #[serde(default)]
    pub mounts: Vec<BindMount>,
    /// tmpfs mounts (volumes' `--mount type=tmpfs` and `--tmpfs`), mounted with the bind
    /// mounts, parents first.
    #[serde(default)]
    pub tmpfs: Vec<TmpfsMount>,
    #[serde(default)]
    pub etc_files: EtcFiles,
    #[serde(default = "default_masked")]
    pub masked_paths: Vec<String>,
    #[serde(default = "default_readonly")]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub readonly_rootfs: bool,
    pub cgroup_path: String,
    /// The parents of `cgroup_path` are the user's (`--cgroup-parent`): made when missing and
    /// left in place at removal, as dockerd leaves them. Otherwise (Berth's own `berth`
    /// parent) they go when the last container leaves them empty.
    #[serde(default)]
    pub cgroup_keep_parents: bool,
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// None: output is not logged (`--log-driver none`).
    #[serde(default)]
    pub log: Option<LogConfig>,
    #[serde(default = "default_stop_signal")]
    pub stop_signal: String,
    #[serde(default)]
    pub init: bool,
    #[serde(default)]
    pub wait_for_start: bool,
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub no_new_privileges: bool,
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Bytes of the /dev/shm tmpfs; 0: 64 MiB.
    #[serde(default)]
    pub shm_size: u64,
    /// Namespaced kernel parameters (`net.ipv4.ip_forward`), written in the container's
    /// namespaces before /proc/sys is made read-only.
    #[serde(default)]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// cgroup limits.
    #[serde(default)]
    pub resources: crate::resources::Resources,
    /// Device nodes made in the container besides the standard ones.
    #[serde(default)]
    pub devices: Vec<crate::devices::DeviceNode>,
    /// /sys writable (`--privileged`); read-only otherwise.
    #[serde(default)]
    pub writable_sysfs: bool,
    /// The device cgroup rules, on top of nothing allowed; default: Docker's.
    #[serde(default = "crate::devices::default_device_rules")]
    pub device_rules: Vec<crate::devices::DeviceRule>,
    /// The compiled seccomp filter, loaded just before exec; None: unconfined.
    #[serde(default)]
    pub seccomp: Option<crate::seccomp::Seccomp>,
    /// `/proc/<pid>/oom_score_adj` of the container's init and its execs (`--oom-score-adj`),
    /// written before exec so that their children inherit it; None: inherited from the shim.
    #[serde(default)]
    pub oom_score_adj: Option<i32>,
}

/// One mount for mount(2), as the images service's `Prepare` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: String,
    pub source: String,
    #[serde(default)]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Process {
    pub args: Vec<String>,
    #[serde(default)]
    pub env: Vec<String>,
    #[serde(default = "default_cwd")]
    pub cwd: String,
    #[serde(default)]
    pub user: User,
    #[serde(default)]
    pub terminal: bool,
    /// stdin is a pipe the shim writes to; otherwise /dev/null.
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub console_size: Option<ConsoleSize>,
}

impl Process {
    /// `args` with the JSON's defaults for the rest: no env, cwd `/`, root, no terminal, no
    /// stdin.
    pub fn new(args: Vec<String>) -> Process {
        Process {
            args,
            env: Vec::new(),
            cwd: default_cwd(),
            user: User::default(),
            terminal: false,
            stdin: false,
            console_size: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsoleSize {
    pub width: u16,
    pub height: u16,
}

/// The process's user. A non-empty `name` is Docker's `-u` value (`user`, `user:group`,
/// `uid:gid`, `user:gid`, `uid:group`), resolved inside the container's root against its
/// /etc/passwd and /etc/group (by the shim, see its `user.rs`); it replaces `uid` and `gid`, and
/// `additional_gids` are kept after the groups it gives.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    #[serde(default)]
    pub uid: u32,
    #[serde(default)]
    pub gid: u32,
    #[serde(default)]
    pub additional_gids: Vec<u32>,
    #[serde(default)]
    pub name: String,
    /// Docker's `--group-add`: names (looked up in the container's /etc/group) or numbers,
    /// added after the others.
    #[serde(default)]
    pub additional_groups: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Namespaces {
    #[serde(default = "yes")]
    pub pid: bool,
    #[serde(default = "yes")]
    pub uts: bool,
    #[serde(default = "yes")]
    pub ipc: bool,
    #[serde(default = "yes")]
    pub cgroup: bool,
    #[serde(default)]
    pub net: NetNs,
}

impl Default for Namespaces {
    fn default() -> Self {
        Namespaces {
            pid: true,
            uts: true,
            ipc: true,
            cgroup: true,
            net: NetNs::New,
        }
    }
}

/// `"new"`, `"host"` or `{"path": "/run/berth/netns/<id>"}` (join an existing netns).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetNs {
    #[default]
    New,
    Host,
    Path(PathBuf),
}

/// A bind mount from the host. Options: `ro`/`rw` (default rw), `rro` (read-only with every
/// submount, through mount_setattr), `rbind`/`bind` (default rbind), `nosuid`, `nodev`,
/// `noexec`, and at most one propagation (`PROPAGATIONS`; default `rprivate`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    #[serde(default)]
    pub options: Vec<String>,
    /// A path under `source` to bind instead of `source` itself (a volume's subpath), opened
    /// by the shim without following any symlink and without leaving `source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}

/// The propagations a bind mount may have.
pub const PROPAGATIONS: &[&str] = &[
    "shared", "rshared", "slave", "rslave", "private", "rprivate",
];

impl BindMount {
    pub fn has(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
    }

    /// Its propagation (`rprivate` unless an option says otherwise).
    pub fn propagation(&self) -> &str {
        self.options
            .iter()
            .map(String::as_str)
            .find(|o| PROPAGATIONS.contains(o))
            .unwrap_or("rprivate")
    }
}

/// A tmpfs in the container. Options: `ro`, `nosuid`, `nodev`, `noexec` (flags), and data
/// for the kernel (`size=65536k`, `mode=1777`, `uid=`, `gid=`, `nr_inodes=`); without
/// `mode=` the tmpfs is 1777.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TmpfsMount {
    pub destination: String,
    #[serde(default)]
    pub options: Vec<String>,
}

/// Host files bound over /etc/hostname, /etc/hosts, /etc/resolv.conf.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct EtcFiles {
    #[serde(default)]
    pub hostname: Option<PathBuf>,
    #[serde(default)]
    pub hosts: Option<PathBuf>,
    #[serde(default)]
    pub resolv_conf: Option<PathBuf>,
}

/// `type` is the resource name without `RLIMIT_`, lowercase (`nofile`, `nproc`, `core`, ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rlimit {
    #[serde(rename = "type")]
    pub kind: String,
    pub soft: u64,
    pub hard: u64,
}

/// The json-file log driver. `max_size` 0 means unlimited; `max_file` is how many files are
/// kept including the current one (Docker's `max-file`, default 1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    pub path: PathBuf,
    #[serde(default)]
    pub max_size: u64,
    #[serde(default = "one")]
    pub max_file: u32,
}

impl LogConfig {
    /// The log at `path`, unlimited (`max_size` 0, `max_file` 1).
    pub fn new(path: impl Into<PathBuf>) -> LogConfig {
        LogConfig {
            path: path.into(),
            max_size: 0,
            max_file: one(),
        }
    }
}

fn yes() -> bool {
    true
}
fn one() -> u32 {
    1
}
fn default_cwd() -> String {
    "/".to_owned()
}
fn default_stop_signal() -> String {
    "SIGTERM".to_owned()
}
fn default_masked() -> Vec<String> {
    DEFAULT_MASKED_PATHS
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}
fn default_readonly() -> Vec<String> {
    DEFAULT_READONLY_PATHS
        .iter()
        .map(|s| (*s).to_owned())
        .collect()
}

impl Config {
    /// A config with every optional field at the default the JSON gives it when absent:
    /// hostname from the ID, all namespaces new, Docker's masked and read-only paths and
    /// capabilities, no mounts, etc files, rlimits or log, SIGTERM, the socket in the bundle.
    pub fn new(
        id: impl Into<String>,
        rootfs: Mount,
        process: Process,
        cgroup_path: impl Into<String>,
    ) -> Config {
        Config {
            id: id.into(),
            rootfs,
            process,
            hostname: String::new(),
            domainname: String::new(),
            namespaces: Namespaces::default(),
            mounts: Vec::new(),
            tmpfs: Vec::new(),
            etc_files: EtcFiles::default(),
            masked_paths: default_masked(),
            readonly_paths: default_readonly(),
            readonly_rootfs: false,
            cgroup_path: cgroup_path.into(),
            cgroup_keep_parents: false,
            rlimits: Vec::new(),
            log: None,
            stop_signal: default_stop_signal(),
            init: false,
            wait_for_start: false,
            capabilities: None,
            no_new_privileges: false,
            socket: None,
            device_rules: crate::devices::default_device_rules(),
            shm_size: 0,
            sysctls: std::collections::BTreeMap::new(),
            devices: Vec::new(),
            writable_sysfs: false,
            resources: crate::resources::Resources::default(),
            seccomp: None,
            oom_score_adj: None,
        }
    }

    /// Reads `<bundle>/config.json` and runs [`Config::validate`] on it. The shim checks more
    /// (capability and rlimit names) on top.
    pub fn read(bundle: &Path) -> Result<Config, BundleError> {
        let path = config_path(bundle);
        let text = std::fs::read(&path).map_err(|source| BundleError::Io {
            path: path.clone(),
            source,
        })?;
        let cfg: Config = serde_json::from_slice(&text).map_err(|e| BundleError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        cfg.validate()
            .map_err(|reason| BundleError::Invalid { path, reason })?;
        Ok(cfg)
    }

    /// Runs [`Config::validate`], then writes `<bundle>/config.json` (pretty-printed)
    /// atomically, readable by its owner only (the environment may hold secrets). The bundle
    /// directory must exist.
    pub fn write(&self, bundle: &Path) -> Result<(), BundleError> {
        let path = config_path(bundle);
        self.validate().map_err(|reason| BundleError::Invalid {
            path: path.clone(),
            reason,
        })?;
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| BundleError::Invalid {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        crate::fs::write_atomic_mode(&path, &bytes, 0o600)
            .map_err(|source| BundleError::Io { path, source })
    }

    /// The hostname inside the container: the configured one, or the short ID.
    pub fn effective_hostname(&self) -> &str {
        if self.hostname.is_empty() {
            &self.id[..self.id.len().min(12)]
        } else {
            &self.hostname
        }
    }

    /// Where the shim listens: `socket`, or `<bundle>/shim.sock`.
    pub fn socket_path(&self, bundle: &Path) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| bundle.join(SOCKET_FILE))
    }

    /// The structural checks: the ID's form, the process, absolute paths, the cgroup path,
    /// mount options, `log.max_file`, rlimits' soft ≤ hard. Capability and rlimit names are
    /// not checked here (the shim does, with the tables it applies them with).
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = !self.id.is_empty()
            && self.id.len() <= 128
            && self.id.as_bytes()[0].is_ascii_alphanumeric()
            && self
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
        if !id_ok {
            return Err(format!("invalid container id {:?}", self.id));
        }
        validate_process(&self.process)?;
        for r in &self.device_rules {
            r.validate()?;
        }
        for d in &self.devices {
            d.validate()?;
        }
        self.resources.validate()?;
        if let Some(n) = self.oom_score_adj
            && !(-1000..=1000).contains(&n)
        {
            return Err(format!("oom_score_adj {n} is outside -1000 to 1000"));
        }
        if let Some(s) = &self.seccomp {
            s.validate()?;
        }
        for (k, v) in &self.sysctls {
            let ok = !k.is_empty()
                && k.split('.').all(|c| {
                    !c.is_empty()
                        && c != ".."
                        && c.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
                });
            if !ok || v.contains(['\n', '\0']) {
                return Err(format!("invalid sysctl {k:?}"));
            }
        }
        if self.rootfs.kind.is_empty() {
            return Err("rootfs.type is empty".to_owned());
        }
        validate_cgroup_path(&self.cgroup_path)?;
        for m in &self.mounts {
            if !m.destination.starts_with('/') {
                return Err(format!(
                    "mount destination {:?} is not absolute",
                    m.destination
                ));
            }
            if !m.source.is_absolute() {
                return Err(format!("mount source {:?} is not absolute", m.source));
            }
            if let Some(sub) = &m.subpath
                && (sub.is_empty() || sub.starts_with('/') || sub.split('/').any(|c| c == ".."))
            {
                return Err(format!(
                    "mount subpath {sub:?} of {:?} is not below its source",
                    m.destination
                ));
            }
            if m.options
                .iter()
                .filter(|o| PROPAGATIONS.contains(&o.as_str()))
                .count()
                > 1
            {
                return Err(format!(
                    "more than one propagation for mount {:?}",
                    m.destination
                ));
            }
            for o in &m.options {
                if ![
                    "ro", "rro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec",
                ]
                .contains(&o.as_str())
                    && !PROPAGATIONS.contains(&o.as_str())
                {
                    return Err(format!(
                        "unsupported option {o:?} for mount {:?}",
                        m.destination
                    ));
                }
            }
        }
        for t in &self.tmpfs {
            if !t.destination.starts_with('/') {
                return Err(format!(
                    "mount destination {:?} is not absolute",
                    t.destination
                ));
            }
            for o in &t.options {
                let key = o.split_once('=').map_or(o.as_str(), |(k, _)| k);
                let flag = ["ro", "rw", "nosuid", "nodev", "noexec"].contains(&o.as_str());
                let data = o.contains('=')
                    && ["size", "mode", "uid", "gid", "nr_inodes", "nr_blocks"].contains(&key)
                    && !o.contains([',', '\n', '\0']);
                if !flag && !data {
                    return Err(format!(
                        "unsupported option {o:?} for tmpfs {:?}",
                        t.destination
                    ));
                }
            }
        }
        for p in self.masked_paths.iter().chain(&self.readonly_paths) {
            if !p.starts_with('/') {
                return Err(format!("path {p:?} is not absolute"));
            }
        }
        if let Some(log) = &self.log
            && log.max_file == 0
        {
            return Err("log.max_file must be at least 1".to_owned());
        }
        for r in &self.rlimits {
            if r.soft > r.hard {
                return Err(format!("rlimit {}: soft limit above hard limit", r.kind));
            }
        }
        if let NetNs::Path(p) = &self.namespaces.net
            && !p.is_absolute()
        {
            return Err(format!("netns path {p:?} is not absolute"));
        }
        Ok(())
    }
}

/// `<bundle>/config.json`.
pub fn config_path(bundle: &Path) -> PathBuf {
    bundle.join(CONFIG_FILE)
}

/// The checks of a process's args, env and cwd (also for the processes of exec).
pub fn validate_process(p: &Process) -> Result<(), String> {
    if p.args.is_empty() || p.args[0].is_empty() {
        return Err("process.args is empty".to_owned());
    }
    if !p.cwd.starts_with('/') {
        return Err(format!("process.cwd {:?} is not absolute", p.cwd));
    }
    if p.args.iter().chain(&p.env).any(|a| a.contains('\0')) {
        return Err("process args and env may not contain NUL".to_owned());
    }
    Ok(())
}

/// A cgroup path relative to every hierarchy's root, with no empty, `.` or `..` components.
pub fn validate_cgroup_path(p: &str) -> Result<(), String> {
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && p.split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\0'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid cgroup_path {p:?}: relative, no empty, '.' or '..' components"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> serde_json::Value {
        serde_json::json!({
            "id": "abc123def4567890",
            "rootfs": {"type": "overlay", "source": "overlay", "options": ["lowerdir=/a"]},
            "process": {"args": ["sh"]},
            "cgroup_path": "berth/abc123def4567890"
        })
    }

    fn minimal_new() -> Config {
        Config::new(
            "abc123def4567890",
            Mount {
                kind: "overlay".to_owned(),
                source: "overlay".to_owned(),
                options: vec!["lowerdir=/a".to_owned()],
            },
            Process::new(vec!["sh".to_owned()]),
            "berth/abc123def4567890",
        )
    }

    #[test]
    fn defaults_are_dockers() {
        let cfg: Config = serde_json::from_value(minimal()).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.masked_paths.len(), DEFAULT_MASKED_PATHS.len());
        assert!(cfg.readonly_paths.contains(&"/proc/sys".to_owned()));
        assert_eq!(cfg.namespaces, Namespaces::default());
        assert_eq!(cfg.process.cwd, "/");
        assert_eq!(cfg.effective_hostname(), "abc123def456");
        assert_eq!(cfg.stop_signal, "SIGTERM");
        assert!(cfg.log.is_none());
        assert_eq!(
            cfg.socket_path(Path::new("/b")),
            PathBuf::from("/b/shim.sock")
        );
    }

    #[test]
    fn new_has_the_json_defaults() {
        let from_json: Config = serde_json::from_value(minimal()).unwrap();
        assert_eq!(minimal_new(), from_json);
        let log: LogConfig = serde_json::from_value(serde_json::json!({"path": "/l"})).unwrap();
        assert_eq!(log, LogConfig::new("/l"));
    }

    #[test]
    fn write_then_read() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let mut cfg = minimal_new();
        cfg.hostname = "web1".to_owned();
        cfg.process.env = vec!["SECRET=x".to_owned()];
        cfg.process.user = User {
            uid: 1,
            gid: 2,
            additional_gids: vec![3],
            name: "app:staff".to_owned(),
            additional_groups: Vec::new(),
        };
        cfg.process.terminal = true;
        cfg.process.console_size = Some(ConsoleSize {
            width: 80,
            height: 24,
        });
        cfg.namespaces.net = NetNs::Path("/run/berth/netns/x".into());
        cfg.namespaces.ipc = false;
        cfg.mounts = vec![BindMount {
            source: "/v".into(),
            destination: "/data".to_owned(),
            options: vec!["rbind".to_owned(), "ro".to_owned()],
            subpath: None,
        }];
        cfg.etc_files = EtcFiles {
            hostname: Some("/e/hostname".into()),
            hosts: Some("/e/hosts".into()),
            resolv_conf: None,
        };
        cfg.rlimits = vec![Rlimit {
            kind: "nofile".to_owned(),
            soft: 1024,
            hard: 4096,
        }];
        cfg.log = Some(LogConfig {
            max_size: 10 << 20,
            max_file: 3,
            ..LogConfig::new("/l/x-json.log")
        });
        cfg.capabilities = Some(vec!["CAP_CHOWN".to_owned()]);
        cfg.socket = Some("/run/berth/s/x.sock".into());
        cfg.wait_for_start = true;
        cfg.oom_score_adj = Some(-1000);
        cfg.write(dir.path()).unwrap();

        let path = dir.path().join(CONFIG_FILE);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = Config::read(dir.path()).unwrap();
        assert_eq!(back, cfg);
        assert_eq!(back.effective_hostname(), "web1");
        assert_eq!(
            back.socket_path(dir.path()),
            PathBuf::from("/run/berth/s/x.sock")
        );
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            json["namespaces"]["net"],
            serde_json::json!({"path": "/run/berth/netns/x"})
        );
        assert_eq!(json["rootfs"]["type"], "overlay");
        assert_eq!(json["rlimits"][0]["type"], "nofile");
    }

    #[test]
    fn write_and_read_reject_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = minimal_new();
        cfg.cgroup_path = "/abs".to_owned();
        assert!(matches!(
            cfg.write(dir.path()),
            Err(BundleError::Invalid { .. })
        ));
        assert!(!dir.path().join(CONFIG_FILE).exists());
        assert!(matches!(
            Config::read(dir.path()),
            Err(BundleError::Io { .. })
        ));
        let mut j = minimal();
        j["id"] = serde_json::json!("../x");
        std::fs::write(dir.path().join(CONFIG_FILE), j.to_string()).unwrap();
        let e = Config::read(dir.path()).unwrap_err();
        assert!(e.to_string().contains("invalid container id"), "{e}");
        j = minimal();
        j["bogus"] = serde_json::json!(1);
        std::fs::write(dir.path().join(CONFIG_FILE), j.to_string()).unwrap();
        assert!(matches!(
            Config::read(dir.path()),
            Err(BundleError::Invalid { .. })
        ));
    }

    #[test]
    fn user_name_alone_is_enough() {
        let mut j = minimal();
        j["process"]["user"] = serde_json::json!({"name": "nobody:users"});
        let cfg: Config = serde_json::from_value(j).unwrap();
        assert_eq!(cfg.process.user.name, "nobody:users");
        assert_eq!((cfg.process.user.uid, cfg.process.user.gid), (0, 0));
        let cfg: Config = serde_json::from_value(minimal()).unwrap();
        assert_eq!(cfg.process.user.name, "");
    }

    #[test]
    fn net_namespace_forms() {
        for (v, want) in [
            (serde_json::json!("new"), NetNs::New),
            (serde_json::json!("host"), NetNs::Host),
            (
                serde_json::json!({"path": "/run/netns/x"}),
                NetNs::Path("/run/netns/x".into()),
            ),
        ] {
            let mut j = minimal();
            j["namespaces"] = serde_json::json!({ "net": v });
            let cfg: Config = serde_json::from_value(j).unwrap();
            assert_eq!(cfg.namespaces.net, want);
            assert!(cfg.namespaces.pid);
        }
    }

    #[test]
    fn rejects_bad_values() {
        for (key, val) in [
            ("id", serde_json::json!("../x")),
            ("cgroup_path", serde_json::json!("/abs")),
            ("cgroup_path", serde_json::json!("a/../b")),
            ("process", serde_json::json!({"args": []})),
            ("process", serde_json::json!({"args": ["x"], "cwd": "rel"})),
            (
                "mounts",
                serde_json::json!([{"source": "/a", "destination": "b"}]),
            ),
            (
                "mounts",
                serde_json::json!([{"source": "/a", "destination": "/b", "options": ["bogus"]}]),
            ),
            (
                "mounts",
                serde_json::json!([{"source": "/a", "destination": "/b", "options": ["shared", "slave"]}]),
            ),
            (
                "mounts",
                serde_json::json!([{"source": "/a", "destination": "/b", "subpath": "x/../../y"}]),
            ),
            (
                "rlimits",
                serde_json::json!([{"type": "nofile", "soft": 2, "hard": 1}]),
            ),
            ("log", serde_json::json!({"path": "/l", "max_file": 0})),
            ("namespaces", serde_json::json!({"net": {"path": "rel"}})),
            ("oom_score_adj", serde_json::json!(1001)),
            ("oom_score_adj", serde_json::json!(-1001)),
        ] {
            let mut j = minimal();
            j[key] = val.clone();
            let cfg: Config = serde_json::from_value(j).unwrap();
            assert!(cfg.validate().is_err(), "{key}={val} accepted");
        }
    }
}
