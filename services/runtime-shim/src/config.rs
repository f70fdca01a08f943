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
//!   "socket": null                              // default: <bundle>/shim.sock
//! }
//! ```
//!
//! The mount namespace is always new (the root filesystem is entered with pivot_root).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ShimError;

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

/// The PATH used to find `args[0]` when the container's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Debug, Clone, Serialize, Deserialize)]
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
    #[serde(default)]
    pub etc_files: EtcFiles,
    #[serde(default = "default_masked")]
    pub masked_paths: Vec<String>,
    #[serde(default = "default_readonly")]
    pub readonly_paths: Vec<String>,
    #[serde(default)]
    pub readonly_rootfs: bool,
    pub cgroup_path: String,
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

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct ConsoleSize {
    pub width: u16,
    pub height: u16,
}

/// The process's user. A non-empty `name` is Docker's `-u` value (`user`, `user:group`,
/// `uid:gid`, `user:gid`, `uid:group`), resolved inside the container's root against its
/// /etc/passwd and /etc/group (see `user.rs`); it replaces `uid` and `gid`, and
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

/// A bind mount from the host. Options: `ro`/`rw` (default rw), `rbind`/`bind` (default
/// rbind), `nosuid`, `nodev`, `noexec`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    #[serde(default)]
    pub options: Vec<String>,
}

impl BindMount {
    pub fn has(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
    }
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
    /// Reads and validates `<bundle>/config.json`.
    pub fn load(bundle: &Path) -> Result<Config, ShimError> {
        let path = bundle.join("config.json");
        let text = std::fs::read(&path).map_err(|e| ShimError::io(&path, e))?;
        let cfg: Config = serde_json::from_slice(&text).map_err(|e| ShimError::Config {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        cfg.validate()
            .map_err(|reason| ShimError::Config { path, reason })?;
        Ok(cfg)
    }

    /// The hostname inside the container: the configured one, or the short ID.
    pub fn effective_hostname(&self) -> &str {
        if self.hostname.is_empty() {
            &self.id[..self.id.len().min(12)]
        } else {
            &self.hostname
        }
    }

    /// Where the shim listens.
    pub fn socket_path(&self, bundle: &Path) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| bundle.join("shim.sock"))
    }

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
            for o in &m.options {
                if !["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec"].contains(&o.as_str())
                {
                    return Err(format!(
                        "unsupported option {o:?} for mount {:?}",
                        m.destination
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
        if let Some(caps) = &self.capabilities {
            for c in caps {
                c.parse::<caps::Capability>()
                    .map_err(|_| format!("unknown capability {c:?}"))?;
            }
        }
        for r in &self.rlimits {
            crate::rlimits::resource(&r.kind)?;
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

fn validate_cgroup_path(p: &str) -> Result<(), String> {
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
                serde_json::json!([{"source": "/a", "destination": "/b", "options": ["shared"]}]),
            ),
            ("capabilities", serde_json::json!(["CAP_NOPE"])),
            (
                "rlimits",
                serde_json::json!([{"type": "nofile", "soft": 2, "hard": 1}]),
            ),
            (
                "rlimits",
                serde_json::json!([{"type": "bogus", "soft": 1, "hard": 1}]),
            ),
            ("log", serde_json::json!({"path": "/l", "max_file": 0})),
        ] {
            let mut j = minimal();
            j[key] = val.clone();
            let cfg: Config = serde_json::from_value(j).unwrap();
            assert!(cfg.validate().is_err(), "{key}={val} accepted");
        }
    }
}
