use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use nix::{sys::signal::Signal, unistd::Pid};

use crate::{bin, bin_dir, eventually, run, text};

/// How to start an engine.
#[derive(Debug, Clone, Default)]
pub struct EngineOptions {
    /// Extra daemon.json keys (a JSON object); merged over the test defaults.
    pub config: Option<serde_json::Value>,
    /// Use this NATS instead of the one `berth up` starts.
    pub nats_url: Option<String>,
    /// More API listeners (`tcp://127.0.0.1:port`); the engine's unix socket stays first.
    pub extra_hosts: Vec<String>,
    /// Environment variables for `berth up` and the services it starts.
    pub env: Vec<(String, String)>,
    /// Put the data root on a tmpfs of this many MiB (a small disk), unmounted on stop.
    pub data_root_mib: Option<u64>,
}

/// A whole engine started with `berth up` in temporary roots. Stopped on drop.
pub struct Engine {
    pub dir: tempfile::TempDir,
    pub data_root: PathBuf,
    pub run_root: PathBuf,
    pub config_path: PathBuf,
    pub docker_host: String,
    /// The default bridge network's interface: one per engine, so that engines side by side
    /// (tests run in parallel) do not share one.
    pub bridge: String,
    docker_config: PathBuf,
    up_log: PathBuf,
    child: Option<Child>,
    /// The data root is a tmpfs this engine mounted.
    data_root_mounted: bool,
}

fn merge(base: &mut serde_json::Value, extra: &serde_json::Value) {
    match (base, extra) {
        (serde_json::Value::Object(b), serde_json::Value::Object(e)) => {
            for (k, v) in e {
                merge(b.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (b, e) => *b = e.clone(),
    }
}

impl Engine {
    pub fn up(opts: EngineOptions) -> Engine {
        let dir = tempfile::Builder::new()
            .prefix("berth-e2e")
            .tempdir()
            .expect("tempdir");
        let data_root = dir.path().join("data");
        let run_root = dir.path().join("run");
        let docker_config = dir.path().join("docker-cli");
        std::fs::create_dir_all(&docker_config).expect("docker config dir");
        if let Some(mib) = opts.data_root_mib {
            std::fs::create_dir_all(&data_root).expect("data root");
            nix::mount::mount(
                Some("tmpfs"),
                &data_root,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some(format!("size={mib}m").as_str()),
            )
            .expect("mount the data root's tmpfs");
        }
        let suffix: String = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
            .chars()
            .rev()
            .filter(char::is_ascii_alphanumeric)
            .take(8)
            .collect();
        let mut config = serde_json::json!({
            "berth": {"heartbeat-interval-ms": 500},
            "bridge": format!("bt{suffix}"),
        });
        if let Some(url) = &opts.nats_url {
            merge(
                &mut config,
                &serde_json::json!({"berth": {"nats-url": url}}),
            );
        }
        if !opts.extra_hosts.is_empty() {
            let mut hosts = vec![format!("unix://{}", run_root.join("docker.sock").display())];
            hosts.extend(opts.extra_hosts.iter().cloned());
            merge(&mut config, &serde_json::json!({ "hosts": hosts }));
        }
        if let Some(extra) = &opts.config {
            merge(&mut config, extra);
        }
        let bridge = config["bridge"].as_str().unwrap_or("berth0").to_owned();
        let config_path = dir.path().join("daemon.json");
        std::fs::write(
            &config_path,
            serde_json::to_vec_pretty(&config).expect("json"),
        )
        .expect("write daemon.json");
        let up_log = dir.path().join("berth-up.log");
        let log = std::fs::File::create(&up_log).expect("log file");
        let child = Command::new(bin("berth"))
            .arg("up")
            .arg("--config")
            .arg(&config_path)
            .arg("--data-root")
            .arg(&data_root)
            .arg("--run-root")
            .arg(&run_root)
            .arg("--bin-dir")
            .arg(bin_dir())
            .envs(opts.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("berth up");
        let mut engine = Engine {
            dir,
            data_root,
            run_root,
            config_path,
            docker_host: String::new(),
            bridge,
            docker_config,
            up_log,
            child: Some(child),
            data_root_mounted: opts.data_root_mib.is_some(),
        };
        let log_path = engine.up_log.clone();
        let host = eventually("berth up to print DOCKER_HOST", || {
            if let Some(Ok(Some(status))) = engine.child.as_mut().map(Child::try_wait) {
                panic!("berth up exited ({status}):\n{}", engine.logs());
            }
            std::fs::read_to_string(&log_path).ok().and_then(|t| {
                t.lines()
                    .find_map(|l| l.trim().strip_prefix("export DOCKER_HOST="))
                    .map(str::to_owned)
            })
        });
        engine.docker_host = host;
        engine
    }

    /// The real docker CLI against this engine, with a private client config.
    /// A connection to the engine's Docker API socket, reads bounded by [`crate::patience`].
    pub fn api_socket(&self) -> std::os::unix::net::UnixStream {
        let path = self
            .docker_host
            .strip_prefix("unix://")
            .expect("a unix DOCKER_HOST");
        let sock = std::os::unix::net::UnixStream::connect(path).expect("connect to the API");
        sock.set_read_timeout(Some(crate::patience()))
            .expect("read timeout");
        sock
    }

    pub fn docker_cmd(&self) -> Command {
        let mut c = Command::new("docker");
        c.env("DOCKER_HOST", &self.docker_host)
            .env("DOCKER_CONFIG", &self.docker_config)
            .env_remove("DOCKER_API_VERSION")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_TLS_VERIFY")
            .env_remove("DOCKER_CERT_PATH")
            .stdin(Stdio::null());
        c
    }

    pub fn docker(&self, args: &[&str]) -> Output {
        run(self.docker_cmd().args(args))
    }

    /// Runs docker and asserts it succeeded; returns stdout.
    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "docker {args:?} failed ({}):\n{stdout}\n{stderr}\n--- engine logs ---\n{}",
            out.status,
            self.logs()
        );
        stdout
    }

    /// The pid of a running service of this engine (from /proc).
    pub fn pid_of(&self, binary: &str) -> Option<i32> {
        let root = self.run_root.to_string_lossy().into_owned();
        processes_with(&root)
            .into_iter()
            .find(|(_, cmd)| {
                cmd.first()
                    .is_some_and(|c| Path::new(c).file_name().is_some_and(|n| n == binary))
            })
            .map(|(pid, _)| pid)
    }

    /// The live `berth-shim` processes of this engine's containers (told apart from other
    /// engines' by the bundle path under this engine's run root on their command line).
    pub fn shim_pids(&self) -> Vec<i32> {
        let root = self.run_root.to_string_lossy().into_owned();
        processes_with(&root)
            .into_iter()
            .filter(|(pid, _)| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "berth-shim")
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    pub fn signal(&self, binary: &str, sig: Signal) {
        let pid = self
            .pid_of(binary)
            .unwrap_or_else(|| panic!("{binary} is not running"));
        nix::sys::signal::kill(Pid::from_raw(pid), sig).expect("kill");
    }

    /// SIGKILLs a service and waits until `berth up` has started it again; its new pid.
    pub fn kill_and_await_restart(&self, binary: &str) -> i32 {
        let before = self
            .pid_of(binary)
            .unwrap_or_else(|| panic!("{binary} is not running"));
        nix::sys::signal::kill(Pid::from_raw(before), Signal::SIGKILL).expect("kill");
        eventually(&format!("berth up to restart {binary}"), || {
            self.pid_of(binary).filter(|p| *p != before)
        })
    }

    /// `http://<addr>/metrics` of a service.
    pub fn metrics_url(&self, service: &str) -> String {
        let f = self.run_root.join(format!("{service}.metrics-addr"));
        let addr = eventually("the metrics address file", || {
            std::fs::read_to_string(&f).ok()
        });
        format!("http://{}/metrics", addr.trim())
    }

    /// Everything the engine logged, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = std::fs::read_to_string(&self.up_log).unwrap_or_default();
        if let Ok(dir) = std::fs::read_dir(&self.run_root) {
            for e in dir.flatten() {
                if e.path().extension().is_some_and(|x| x == "log") {
                    out += &format!("\n== {} ==\n", e.path().display());
                    out += &std::fs::read_to_string(e.path()).unwrap_or_default();
                }
            }
        }
        out
    }

    /// Stops `berth up` with SIGTERM and waits for it; returns whether it stopped in time.
    pub fn stop(&mut self) -> bool {
        let Some(mut child) = self.child.take() else {
            return true;
        };
        let _ = nix::sys::signal::kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        let stopped = loop {
            match child.try_wait() {
                Ok(Some(_)) => break true,
                _ if Instant::now() > deadline => break false,
                _ => crate::wait(Duration::from_millis(20)),
            }
        };
        if !stopped {
            let _ = child.kill();
            let _ = child.wait();
        }
        // Nothing of this engine may outlive it.
        let root = self.run_root.to_string_lossy().into_owned();
        for (pid, _) in processes_with(&root) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        self.remove_network_leftovers();
        if std::mem::take(&mut self.data_root_mounted) {
            let _ = nix::mount::umount2(&self.data_root, nix::mount::MntFlags::MNT_DETACH);
        }
        stopped
    }

    /// The nftables table of this engine's networks (see the network service).
    pub fn nft_table(&self) -> String {
        if self.bridge == "berth0" {
            "berth".to_owned()
        } else {
            format!("berth_{}", self.bridge.replace(['-', '.'], "_"))
        }
    }

    /// What an engine stopped with containers on its networks leaves on the host: the netns
    /// mounts, its bridges (the default one and user-defined ones, `berth-*`, made under this
    /// engine's table) and its nftables table. A clean stop leaves none of it.
    fn remove_network_leftovers(&self) {
        if let Ok(dir) = std::fs::read_dir(self.run_root.join("netns")) {
            for e in dir.flatten() {
                let _ = nix::mount::umount2(&e.path(), nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(e.path());
            }
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.bridge])
            .stderr(Stdio::null())
            .status();
        let _ = Command::new("nft")
            .args(["delete", "table", "inet", &self.nft_table()])
            .stderr(Stdio::null())
            .status();
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Processes whose command line mentions `needle`, with their argv.
pub fn processes_with(needle: &str) -> Vec<(i32, Vec<String>)> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    let me = std::process::id() as i32;
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(raw) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if argv.iter().any(|a| a.contains(needle)) {
            out.push((pid, argv));
        }
    }
    out
}
