//! A fake systemd for the systemd cgroup driver's tests: a private `dbus-daemon` (Debian's
//! `dbus-daemon` package, installed by scripts/setup-debian.sh) on which the fake owns
//! `org.freedesktop.systemd1` and serves the part of the Manager the driver uses, behaving as
//! systemd does for it: StartTransientUnit makes the scope's cgroup (its slice expanded by
//! its dashes) in every hierarchy root it was given, moves the unit's PIDs into it, writes
//! the memory, CPU quota and tasks limits systemd itself writes, and ends the job with a
//! `JobRemoved` signal; StopUnit kills what is left in the scope and removes its cgroup
//! (slices stay, as systemd keeps them); a unit started twice is `UnitExists`, an unknown one
//! `NoSuchUnit`. The calls are recorded, with each property's value as D-Bus text.
//!
//! It runs on a thread of its own (with its own tokio runtime), so that synchronous tests can
//! use it; dropping it stops the bus.

use std::{
    collections::HashSet,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use zbus::{
    object_server::SignalEmitter,
    zvariant::{ObjectPath, OwnedObjectPath, OwnedValue, Value},
};

/// A call the fake received; properties as (name, value as D-Bus text, e.g. `uint64 5`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SystemdCall {
    Subscribe,
    Start {
        name: String,
        mode: String,
        properties: Vec<(String, String)>,
    },
    SetProperties {
        name: String,
        properties: Vec<(String, String)>,
    },
    Stop {
        name: String,
        mode: String,
    },
    ResetFailed {
        name: String,
    },
}

impl SystemdCall {
    /// The value of property `name` of a Start or SetProperties call.
    pub fn property(&self, name: &str) -> Option<&str> {
        let props = match self {
            SystemdCall::Start { properties, .. }
            | SystemdCall::SetProperties { properties, .. } => properties,
            _ => return None,
        };
        props
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// systemd's own error names.
#[derive(Debug, zbus::DBusError)]
#[zbus(prefix = "org.freedesktop.systemd1")]
enum SystemdError {
    #[zbus(error)]
    ZBus(zbus::Error),
    NoSuchUnit(String),
    UnitExists(String),
    Failed(String),
}

#[derive(Default)]
struct State {
    calls: Vec<SystemdCall>,
    /// Units started and not stopped, with their cgroup below the roots.
    active: Vec<(String, String)>,
    /// Units systemd still knows (started once, not reset).
    known: HashSet<String>,
    jobs: u32,
}

struct Manager {
    state: Arc<Mutex<State>>,
    /// The hierarchy roots where scopes' cgroups are made.
    roots: Vec<PathBuf>,
    /// The result the next jobs end with.
    result: Arc<Mutex<String>>,
}

impl Manager {
    fn job(&self) -> (u32, OwnedObjectPath) {
        let mut st = self.state.lock().unwrap();
        st.jobs += 1;
        let path = format!("/org/freedesktop/systemd1/job/{}", st.jobs);
        (st.jobs, ObjectPath::try_from(path).unwrap().into())
    }

    fn record(&self, call: SystemdCall) {
        self.state.lock().unwrap().calls.push(call);
    }

    /// Writes the limits systemd itself writes on v1 into the scope's cgroup (best effort,
    /// as systemd only logs a failed write).
    fn write_limits(&self, cgroup: &str, props: &[(String, String)]) {
        for (k, v) in props {
            let Some(n) = v
                .strip_prefix("uint64 ")
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let (file, value) = match k.as_str() {
                "MemoryLimit" => ("memory/memory.limit_in_bytes", n.to_string()),
                "TasksMax" => ("pids/pids.max", n.to_string()),
                "CPUQuotaPerSecUSec" if n != u64::MAX => {
                    ("cpu/cpu.cfs_quota_us", (n / 10).to_string())
                }
                _ => continue,
            };
            let (hierarchy, file) = file.split_once('/').unwrap();
            for root in &self.roots {
                let name = root.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.is_some_and(|n| n.split(',').any(|c| c == hierarchy)) {
                    let _ = std::fs::write(root.join(cgroup).join(file), &value);
                }
            }
        }
    }
}

fn text(props: &[(String, OwnedValue)]) -> Vec<(String, String)> {
    props
        .iter()
        .map(|(k, v)| (k.clone(), Value::to_string(v)))
        .collect()
}

/// A slice's cgroup below a root, by systemd's rules: `a-b.slice` is `a.slice/a-b.slice`.
fn slice_dir(slice: &str) -> String {
    let stem = slice.strip_suffix(".slice").unwrap_or(slice);
    if stem == "-" || stem.is_empty() {
        return String::new();
    }
    let parts: Vec<&str> = stem.split('-').collect();
    (1..=parts.len())
        .map(|n| format!("{}.slice", parts[..n].join("-")))
        .collect::<Vec<_>>()
        .join("/")
}

#[zbus::interface(name = "org.freedesktop.systemd1.Manager")]
impl Manager {
    async fn subscribe(&self) {
        self.record(SystemdCall::Subscribe);
    }

    async fn start_transient_unit(
        &self,
        name: String,
        mode: String,
        properties: Vec<(String, OwnedValue)>,
        _aux: Vec<(String, Vec<(String, OwnedValue)>)>,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedObjectPath, SystemdError> {
        if self.state.lock().unwrap().known.contains(&name) {
            return Err(SystemdError::UnitExists(format!(
                "Unit {name} was already loaded or has a fragment file."
            )));
        }
        let slice = properties
            .iter()
            .find(|(k, _)| k == "Slice")
            .and_then(|(_, v)| <&str>::try_from(&**v).ok().map(str::to_owned))
            .unwrap_or_else(|| "system.slice".to_owned());
        let pids: Vec<u32> = properties
            .iter()
            .find(|(k, _)| k == "PIDs")
            .and_then(|(_, v)| Vec::<u32>::try_from(v.try_clone().ok()?).ok())
            .unwrap_or_default();
        let parent = slice_dir(&slice);
        let cgroup = if parent.is_empty() {
            name.clone()
        } else {
            format!("{parent}/{name}")
        };
        let props = text(&properties);
        for root in &self.roots {
            let dir = root.join(&cgroup);
            std::fs::create_dir_all(&dir)
                .map_err(|e| SystemdError::Failed(format!("{}: {e}", dir.display())))?;
            if dir.join("cgroup.procs").exists() {
                for pid in &pids {
                    std::fs::write(dir.join("cgroup.procs"), pid.to_string())
                        .map_err(|e| SystemdError::Failed(format!("{}: {e}", dir.display())))?;
                }
            }
        }
        self.write_limits(&cgroup, &props);
        {
            let mut st = self.state.lock().unwrap();
            st.known.insert(name.clone());
            st.active.push((name.clone(), cgroup));
        }
        self.record(SystemdCall::Start {
            name: name.clone(),
            mode,
            properties: props,
        });
        let (id, job) = self.job();
        // systemd may finish the job before its reply goes out: the signal comes first.
        let result = self.result.lock().unwrap().clone();
        Self::job_removed(&emitter, id, job.as_ref(), &name, &result).await?;
        Ok(job)
    }

    async fn set_unit_properties(
        &self,
        name: String,
        _runtime: bool,
        properties: Vec<(String, OwnedValue)>,
    ) -> Result<(), SystemdError> {
        let cgroup = self
            .state
            .lock()
            .unwrap()
            .active
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, c)| c.clone())
            .ok_or_else(|| SystemdError::NoSuchUnit(format!("Unit {name} not loaded.")))?;
        let props = text(&properties);
        self.write_limits(&cgroup, &props);
        self.record(SystemdCall::SetProperties {
            name,
            properties: props,
        });
        Ok(())
    }

    async fn stop_unit(
        &self,
        name: String,
        mode: String,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> Result<OwnedObjectPath, SystemdError> {
        let cgroup = {
            let mut st = self.state.lock().unwrap();
            if !st.known.contains(&name) {
                return Err(SystemdError::NoSuchUnit(format!("Unit {name} not loaded.")));
            }
            let at = st.active.iter().position(|(n, _)| *n == name);
            at.map(|i| st.active.remove(i).1)
        };
        if let Some(cgroup) = cgroup {
            remove_scope(&self.roots, &cgroup);
        }
        self.state.lock().unwrap().known.remove(&name);
        self.record(SystemdCall::Stop {
            name: name.clone(),
            mode,
        });
        let (id, job) = self.job();
        let emitter = emitter.to_owned();
        let path = job.clone();
        // Here the reply goes first and the signal after it.
        tokio::spawn(async move {
            let _ = Self::job_removed(&emitter, id, path.as_ref(), &name, "done").await;
        });
        Ok(job)
    }

    async fn reset_failed_unit(&self, name: String) -> Result<(), SystemdError> {
        self.record(SystemdCall::ResetFailed { name: name.clone() });
        if self.state.lock().unwrap().known.remove(&name) {
            Ok(())
        } else {
            Err(SystemdError::NoSuchUnit(format!("Unit {name} not loaded.")))
        }
    }

    #[zbus(signal)]
    async fn job_removed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        job: ObjectPath<'_>,
        unit: &str,
        result: &str,
    ) -> zbus::Result<()>;
}

/// Kills what is left in the scope (systemd's KillMode=control-group) and removes its
/// cgroup from every root.
fn remove_scope(roots: &[PathBuf], cgroup: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    for root in roots {
        let dir = root.join(cgroup);
        while dir.exists() {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if std::fs::remove_dir(&dir).is_ok() || Instant::now() > deadline {
                break;
            }
            crate::wait(Duration::from_millis(10));
        }
    }
}

/// A dbus-daemon of the test's own, killed on drop.
struct Bus {
    child: Child,
    address: String,
    _dir: tempfile::TempDir,
}

impl Bus {
    fn start() -> Bus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
                dir.path().join("bus").display()
            ),
        )
        .unwrap();
        #[allow(clippy::disallowed_methods)]
        let mut child = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address=1"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("dbus-daemon (Debian package dbus-daemon; scripts/setup-debian.sh)");
        // The address is printed once the bus listens.
        let mut address = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        assert!(address.starts_with("unix:"), "dbus-daemon said {address:?}");
        Bus {
            child,
            address: address.trim().to_owned(),
            _dir: dir,
        }
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fake systemd (see the module doc). Stopped on drop.
pub struct FakeSystemd {
    state: Arc<Mutex<State>>,
    result: Arc<Mutex<String>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    bus: Bus,
}

impl FakeSystemd {
    /// A fake whose scopes' cgroups are made below each of `roots` (fixture directories, or
    /// the host's hierarchies: [`FakeSystemd::host_hierarchies`]).
    pub fn start(roots: Vec<PathBuf>) -> FakeSystemd {
        let bus = Bus::start();
        let state = Arc::new(Mutex::new(State::default()));
        let result = Arc::new(Mutex::new("done".to_owned()));
        let manager = Manager {
            state: state.clone(),
            roots,
            result: result.clone(),
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let address = bus.address.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let conn = zbus::connection::Builder::address(address.as_str())
                    .and_then(|b| b.name("org.freedesktop.systemd1"))
                    .and_then(|b| b.serve_at("/org/freedesktop/systemd1", manager));
                let conn = match conn {
                    Ok(b) => b.build().await,
                    Err(e) => Err(e),
                };
                let _ = ready_tx.send(conn.as_ref().map(|_| ()).map_err(|e| e.to_string()));
                let _ = stop_rx.await;
                drop(conn);
            });
        });
        ready_rx
            .recv()
            .expect("the fake systemd's thread")
            .expect("the fake systemd on its bus");
        FakeSystemd {
            state,
            result,
            stop: Some(stop_tx),
            thread: Some(thread),
            bus,
        }
    }

    /// Every cgroup hierarchy mounted under /sys/fs/cgroup (each v1 controller's, named ones,
    /// the unified one), as systemd makes a scope's cgroup in each.
    pub fn host_hierarchies() -> Vec<PathBuf> {
        let Ok(dir) = std::fs::read_dir("/sys/fs/cgroup") else {
            return Vec::new();
        };
        let mut roots: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.join("cgroup.procs").exists()
                    && !std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_symlink())
            })
            .collect();
        if roots.is_empty() && Path::new("/sys/fs/cgroup/cgroup.procs").exists() {
            roots.push(PathBuf::from("/sys/fs/cgroup"));
        }
        roots.sort();
        roots
    }

    /// The bus's address (for `DBUS_SYSTEM_BUS_ADDRESS`).
    pub fn address(&self) -> &str {
        &self.bus.address
    }

    /// The calls so far, in order.
    pub fn calls(&self) -> Vec<SystemdCall> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The units started and not stopped.
    pub fn active_units(&self) -> Vec<String> {
        let st = self.state.lock().unwrap();
        st.active.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The result the next jobs end with (`done`, `failed`, ...).
    pub fn set_job_result(&self, result: &str) {
        *self.result.lock().unwrap() = result.to_owned();
    }
}

impl Drop for FakeSystemd {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_expand_as_systemd_expands_them() {
        assert_eq!(slice_dir("berth.slice"), "berth.slice");
        assert_eq!(slice_dir("a-b-c.slice"), "a.slice/a-b.slice/a-b-c.slice");
        assert_eq!(slice_dir("-.slice"), "");
    }
}
