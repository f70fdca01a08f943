//! A reference dockerd (Debian's docker.io 20.10) of a test's own, to compare Berth with.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use crate::{eventually, run, text};

pub const DOCKERD: &str = "/usr/sbin/dockerd";

/// A dockerd of the test's own: socket, data root and exec root in a temporary directory, no
/// bridge, no iptables. Stopped, with its containerd and any mount left, on drop.
pub struct Dockerd {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Its bridge (with `--bridge none` dockerd would delete the host's docker0).
    pub bridge: crate::TestBridge,
    /// Whether the host had a docker0 before: it must still have it after.
    pub docker0: bool,
    config: PathBuf,
    /// Files dockerd writes outside its roots whatever its flags; removed on drop unless they
    /// were there before.
    host_leftovers: Vec<PathBuf>,
}

/// What dockerd 20.10 creates outside its data and exec roots.
const DOCKERD_HOST_FILES: [&str; 2] = ["/etc/docker/key.json", "/run/docker"];

impl Dockerd {
    pub fn start() -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("berth-dk")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let host_leftovers = DOCKERD_HOST_FILES
            .iter()
            .map(PathBuf::from)
            .filter(|p| !p.exists())
            .collect();
        let log = std::fs::File::create(d.join("dockerd.log")).unwrap();
        std::fs::write(d.join("daemon.json"), "{}").unwrap();
        let docker0 = crate::link_exists("docker0");
        let bridge = crate::TestBridge::create().expect("a bridge for dockerd");
        let child = Command::new(DOCKERD)
            .arg("--config-file")
            .arg(d.join("daemon.json"))
            .arg("--host")
            .arg(format!("unix://{}", d.join("docker.sock").display()))
            .arg("--data-root")
            .arg(d.join("data"))
            .arg("--exec-root")
            .arg(d.join("exec"))
            .arg("--pidfile")
            .arg(d.join("pid"))
            .args([
                "--bridge",
                &bridge.name,
                "--iptables=false",
                "--ip6tables=false",
            ])
            .args(["--ip-forward=false", "--ip-masq=false"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd");
        let config = d.join("cli");
        std::fs::create_dir_all(&config).unwrap();
        let mut dk = Dockerd {
            dir,
            child: Some(child),
            bridge,
            docker0,
            config,
            host_leftovers,
        };
        eventually("dockerd to answer", || {
            if let Some(Ok(Some(status))) = dk.child.as_mut().map(Child::try_wait) {
                panic!("dockerd exited ({status}):\n{}", dk.logs());
            }
            dk.docker(&["version"]).status.success().then_some(())
        });
        dk
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// The docker CLI pointed at this dockerd.
    pub fn docker_cmd(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env(
            "DOCKER_HOST",
            format!("unix://{}", self.dir.path().join("docker.sock").display()),
        )
        .env("DOCKER_CONFIG", &self.config)
        .env_remove("DOCKER_API_VERSION")
        .stdin(Stdio::null());
        cmd
    }

    pub fn docker(&self, args: &[&str]) -> std::process::Output {
        run(self.docker_cmd().args(args))
    }

    pub fn docker_ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "dockerd: docker {args:?}: {stdout}\n{stderr}\n{}",
            self.logs()
        );
        stdout
    }
}

/// Processes whose command line mentions `needle`.
fn pids_mentioning(needle: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = std::fs::read(e.path().join("cmdline"))
            && String::from_utf8_lossy(&cmd).contains(needle)
        {
            out.push(pid);
        }
    }
    out
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let stopped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                eventually("dockerd to stop", || child.try_wait().ok().flatten())
            }));
            if stopped.is_err() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Its containerd (and shims) have our directory on their command lines.
        let root = self.dir.path().to_string_lossy().into_owned();
        for pid in pids_mentioning(&root) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in &self.host_leftovers {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
        }
        for p in points {
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}
