//! Debian's dockerd on its own socket, data root and exec root (and so its own containerd,
//! which dockerd starts with its state under the exec and data roots), on a bridge of its own
//! (with `--bridge none` dockerd deletes the host's docker0), no iptables, no IP forwarding:
//! it touches no firewall rule and no link but its bridge, removed with it.
//! With [`Networking::Default`] (the network benchmark) it runs as Docker's default
//! configuration does: iptables, IP forwarding, IP masquerade and the userland proxy, still on
//! a bridge of its own; what it adds to iptables is taken out again on stop
//! ([`crate::iptables::undo`]), and `ip_forward` set back.
//! Stopped, unmounted and removed by [`Dockerd::stop`] (or on drop).

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};
use nix::{sys::signal::Signal, unistd::Pid};

use crate::host;

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";
/// dockerd with iptables loads br_netfilter, whose default is 1 here (bridged traffic goes
/// through iptables).
const BRIDGE_NF: &str = "/proc/sys/net/bridge/bridge-nf-call-iptables";

/// Files and directories dockerd 20.10 creates outside its roots whatever its flags say.
const HOST_PATHS: [&str; 3] = ["/etc/docker/key.json", "/run/docker/plugins", "/run/docker"];

/// How dockerd's networking is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Networking {
    /// No iptables, no IP forwarding, no masquerade: it touches nothing but its bridge.
    Isolated,
    /// Docker's defaults (iptables, IP forwarding, masquerade, userland proxy) on its bridge.
    Default,
}

/// The host's firewall and forwarding as they were before dockerd started with
/// [`Networking::Default`].
struct HostNet {
    iptables: String,
    ip_forward: String,
    /// `None`: br_netfilter was not loaded.
    bridge_nf: Option<String>,
}

pub(crate) struct Dockerd {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
    child: Option<Child>,
    /// `unix://<dir>/docker.sock`.
    pub(crate) host: String,
    /// Which of [`HOST_PATHS`] did not exist before dockerd started (removed on stop).
    absent_before: Vec<&'static str>,
    /// With [`Networking::Default`]: what to put back on stop.
    host_net: Option<HostNet>,
    /// Its bridge's name.
    bridge: String,
    /// Its bridge, removed on drop (after dockerd stopped: fields drop after `drop`).
    _bridge: berth_testutil::TestBridge,
}

/// What tearing dockerd down took.
#[derive(Debug, Default, Clone)]
pub(crate) struct Teardown {
    pub(crate) notes: Vec<String>,
    pub(crate) problems: Vec<String>,
}

impl Dockerd {
    /// Starts `dockerd` and waits until the docker CLI `cli` gets an answer from it.
    pub(crate) fn start(
        dockerd: &Path,
        cli: &Path,
        registry: &str,
        networking: Networking,
    ) -> anyhow::Result<Dockerd> {
        if !dockerd.is_file() {
            bail!(
                "{} is missing (apt-get install docker.io)",
                dockerd.display()
            );
        }
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-dockerd")
            .tempdir()
            .context("dockerd tempdir")?;
        let path = dir.path().to_owned();
        let config = path.join("daemon.json");
        // Its own (empty) configuration: /etc/docker/daemon.json is not read.
        std::fs::write(&config, "{}\n")?;
        let absent_before = HOST_PATHS
            .into_iter()
            .filter(|p| !Path::new(p).exists())
            .collect();
        let log = std::fs::File::create(path.join("dockerd.log"))?;
        let host = format!("unix://{}", path.join("docker.sock").display());
        let bridge = berth_testutil::TestBridge::create().context("a bridge for dockerd")?;
        let (host_net, net_flags): (_, &[&str]) = match networking {
            Networking::Isolated => (
                None,
                &[
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-forward=false",
                    "--ip-masq=false",
                ],
            ),
            Networking::Default => (
                Some(HostNet {
                    iptables: crate::iptables::save()?,
                    ip_forward: std::fs::read_to_string(IP_FORWARD)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                    bridge_nf: std::fs::read_to_string(BRIDGE_NF)
                        .ok()
                        .map(|v| v.trim().to_owned()),
                }),
                &["--iptables=true", "--ip-forward=true", "--ip-masq=true"],
            ),
        };
        let child = Command::new(dockerd)
            .arg("--config-file")
            .arg(&config)
            .arg("--host")
            .arg(&host)
            .arg("--data-root")
            .arg(path.join("data"))
            .arg("--exec-root")
            .arg(path.join("exec"))
            .arg("--pidfile")
            .arg(path.join("docker.pid"))
            .args(["--storage-driver", "overlay2", "--bridge", &bridge.name])
            .args(net_flags)
            .args([
                "--containerd-namespace",
                "berth-bench",
                "--containerd-plugins-namespace",
                "berth-bench-plugins",
                "--insecure-registry",
                registry,
            ])
            .env_remove("DOCKER_HOST")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", dockerd.display()))?;
        let mut d = Dockerd {
            dir: Some(dir),
            path,
            child: Some(child),
            host,
            absent_before,
            host_net,
            bridge: bridge.name.clone(),
            _bridge: bridge,
        };
        let ready = host::poll_until("dockerd to answer", Duration::from_secs(25), || {
            if let Some(Ok(Some(_))) = d.child.as_mut().map(Child::try_wait) {
                return true;
            }
            Command::new(cli)
                .args(["version", "--format", "{{.Server.Version}}"])
                .env("DOCKER_HOST", &d.host)
                .env("DOCKER_CONFIG", d.path.join("cli-config"))
                .stdin(Stdio::null())
                .output()
                .is_ok_and(|o| o.status.success())
        });
        let exited = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        if !ready || exited.is_some() {
            let log = d.log();
            d.stop();
            bail!("dockerd did not start ({exited:?}):\n{log}");
        }
        Ok(d)
    }

    pub(crate) fn dir(&self) -> &Path {
        &self.path
    }

    pub(crate) fn data_root(&self) -> PathBuf {
        self.path.join("data")
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.path.join("dockerd.log")).unwrap_or_default()
    }

    /// dockerd's pid.
    pub(crate) fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    /// The containerd dockerd started (its configuration is under our exec root).
    pub(crate) fn containerd_pid(&self) -> Option<i32> {
        let needle = self.path.to_string_lossy().into_owned();
        host::processes_with(&needle)
            .into_iter()
            .find(|(_, argv)| {
                argv.first()
                    .is_some_and(|a| Path::new(a).file_name().is_some_and(|n| n == "containerd"))
            })
            .map(|(pid, _)| pid)
    }

    /// Stops dockerd (SIGTERM; it stops its containerd), kills anything left that mentions its
    /// directory, unmounts everything under it, removes it and the host paths dockerd created.
    pub(crate) fn stop(&mut self) -> Teardown {
        let mut t = Teardown::default();
        let Some(dir) = self.dir.take() else {
            return t;
        };
        let needle = self.path.to_string_lossy().into_owned();
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let stopped = host::poll_until("dockerd to stop", Duration::from_secs(20), || {
                matches!(child.try_wait(), Ok(Some(_)))
            });
            if stopped {
                t.notes.push("dockerd stopped on SIGTERM".to_owned());
            } else {
                t.problems
                    .push("dockerd did not stop within 20 s of SIGTERM; killed".to_owned());
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        let stragglers =
            host::kill_processes_with(&needle, Signal::SIGTERM, Duration::from_secs(10));
        if !stragglers.is_empty() {
            t.problems.push(format!(
                "processes left after dockerd stopped (killed): {stragglers:?}"
            ));
        }
        let mounts = host::unmount_under(&self.path);
        if !mounts.is_empty() {
            t.notes.push(format!(
                "unmounted {} mount(s) dockerd left under its root",
                mounts.len()
            ));
        }
        let left = host::mounts_under(&self.path);
        if !left.is_empty() {
            t.problems.push(format!(
                "mounts still under {}: {left:?}",
                self.path.display()
            ));
        }
        for p in &self.absent_before {
            let p = Path::new(p);
            let removed = if p.is_dir() {
                // Only if empty: something else may have started using it meanwhile.
                std::fs::remove_dir(p).is_ok()
            } else {
                std::fs::remove_file(p).is_ok()
            };
            if removed {
                t.notes
                    .push(format!("removed {} (dockerd created it)", p.display()));
            } else if p.exists() {
                t.problems.push(format!("could not remove {}", p.display()));
            }
        }
        if let Some(net) = self.host_net.take() {
            self.restore_host_net(&net, &mut t);
        }
        let path = dir.keep();
        if let Err(e) = std::fs::remove_dir_all(&path) {
            t.problems.push(format!("removing {}: {e}", path.display()));
        }
        t
    }
}

impl Dockerd {
    /// Takes out of iptables what dockerd added (its chains, the rules naming them or its
    /// bridge, the FORWARD policy) and sets `ip_forward` back.
    fn restore_host_net(&self, net: &HostNet, t: &mut Teardown) {
        let after = match crate::iptables::save() {
            Ok(a) => a,
            Err(e) => {
                t.problems
                    .push(format!("reading iptables after dockerd: {e:#}"));
                return;
            }
        };
        let script = crate::iptables::undo(&net.iptables, &after, &self.bridge);
        if !script.is_empty() {
            match crate::iptables::restore(&script) {
                Ok(()) => t.notes.push(format!(
                    "removed dockerd's iptables chains and rules ({} lines of iptables-restore)",
                    script.lines().count()
                )),
                Err(e) => t.problems.push(format!("{e:#}")),
            }
        }
        // On the nf_tables backend a table iptables created stays, empty.
        for table in crate::iptables::new_tables(&net.iptables, &after) {
            let ok = Command::new("nft")
                .args(["delete", "table", "ip", &table])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                t.notes.push(format!(
                    "removed the iptables table {table} dockerd created"
                ));
            }
        }
        let nf_now = std::fs::read_to_string(BRIDGE_NF).ok();
        match (&net.bridge_nf, nf_now) {
            (Some(was), Some(now)) if now.trim() != was => match std::fs::write(BRIDGE_NF, was) {
                Ok(()) => t
                    .notes
                    .push(format!("bridge-nf-call-iptables set back to {was}")),
                Err(e) => t
                    .problems
                    .push(format!("setting bridge-nf-call-iptables back: {e}")),
            },
            (None, Some(now)) => t.notes.push(format!(
                "dockerd loaded br_netfilter (bridge-nf-call-iptables {}); left loaded",
                now.trim()
            )),
            _ => {}
        }
        let now = std::fs::read_to_string(IP_FORWARD).unwrap_or_default();
        if !net.ip_forward.is_empty() && now.trim() != net.ip_forward {
            match std::fs::write(IP_FORWARD, &net.ip_forward) {
                Ok(()) => t.notes.push(format!(
                    "net.ipv4.ip_forward set back to {} (dockerd turned it on)",
                    net.ip_forward
                )),
                Err(e) => t.problems.push(format!("setting ip_forward back: {e}")),
            }
        }
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        let t = self.stop();
        for p in t.problems {
            eprintln!("berth-bench: dockerd teardown: {p}");
        }
    }
}
