//! Harness for the shim's privileged tests: a busybox root filesystem used as the only
//! lowerdir of a real overlay, bundles in temporary directories, clients on the shim's socket,
//! and a guard that cleans up whatever a failed test leaves (shim, container
//! processes, cgroups).

#![allow(dead_code, unreachable_pub)]

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use berth_shim_proto::{AttachStream, ShimClient, v1 as pb};
use serde_json::{Value, json};

/// The tests need root (namespaces, mounts, cgroups). They fail, loudly, without it.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "needs root: the berth-shim tests create namespaces, mounts and cgroups; run them as root"
    );
}

/// The shim binary: `BERTH_SHIM_BIN` (e.g. a release build) or the one cargo built.
pub fn shim_bin() -> PathBuf {
    std::env::var_os("BERTH_SHIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_berth-shim")))
}

/// How long to wait for things that should happen: `BERTH_TEST_PATIENCE_MS`, default 20 s.
pub fn patience() -> Duration {
    std::env::var("BERTH_TEST_PATIENCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(Duration::from_secs(20))
}

/// Polls `f` until it returns Some, or panics after the patience with `what`.
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn busybox() -> PathBuf {
    let p = PathBuf::from("/bin/busybox");
    assert!(
        p.exists(),
        "/bin/busybox is missing: apt-get install busybox-static"
    );
    p
}

/// A busybox root filesystem as a plain directory: /bin/busybox and its applets as symlinks,
/// /etc (with [`PASSWD`] and [`GROUP`]), /tmp, and /bin/noexec, a file without execute
/// permission.
fn make_rootfs(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for d in ["etc", "tmp", "root"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    std::fs::copy(busybox(), bin.join("busybox")).unwrap();
    let list = Command::new(busybox()).arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.contains('/') {
            let _ = std::os::unix::fs::symlink("busybox", bin.join(applet));
        }
    }
    std::fs::write(bin.join("noexec"), "#!/bin/sh\necho no\n").unwrap();
    std::fs::set_permissions(bin.join("noexec"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::write(dir.join("etc/passwd"), PASSWD).unwrap();
    std::fs::write(dir.join("etc/group"), GROUP).unwrap();
}

/// The rootfs's /etc/passwd: busybox's first entries and nobody, plus `app`.
pub const PASSWD: &str = "\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
app:x:1000:1000:app:/home/app:/bin/sh
nobody:x:65534:65534:nobody:/home:/bin/false
";

/// The rootfs's /etc/group: `app` is a member of wheel and users.
pub const GROUP: &str = "\
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
wheel:x:10:root,app
staff:x:50:
users:x:100:app
app:x:1000:
nogroup:x:65534:
";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// One container's bundle. Dropping it kills and removes whatever is left.
pub struct Bundle {
    pub tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub id: String,
    pub cgroup_path: String,
    pub config: Value,
}

impl Bundle {
    /// A bundle running `args` on a fresh busybox overlay.
    pub fn new(args: &[&str]) -> Bundle {
        require_root();
        let tmp = tempfile::Builder::new()
            .prefix("berth-shim-test-")
            .tempdir()
            .unwrap();
        let root = tmp.path();
        let id = format!(
            "t{}x{}c{:08x}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::SeqCst),
            rand_u32()
        );
        let lower = root.join("lower");
        make_rootfs(&lower);
        for d in ["upper", "work", "bundle"] {
            std::fs::create_dir_all(root.join(d)).unwrap();
        }
        std::fs::write(root.join("hostname"), "from-file\n").unwrap();
        std::fs::write(root.join("hosts"), "127.0.0.1 localhost\n").unwrap();
        std::fs::write(root.join("resolv.conf"), "nameserver 127.0.0.53\n").unwrap();
        let dir = root.join("bundle");
        let cgroup_path = format!("berth-test/{id}");
        let config = json!({
            "id": id,
            "rootfs": {
                "type": "overlay",
                "source": "overlay",
                "options": [
                    format!("lowerdir={}", lower.display()),
                    format!("upperdir={}", root.join("upper").display()),
                    format!("workdir={}", root.join("work").display()),
                ]
            },
            "process": {"args": args, "env": ["PATH=/bin", "HOME=/root"], "cwd": "/"},
            "etc_files": {
                "hostname": root.join("hostname"),
                "hosts": root.join("hosts"),
                "resolv_conf": root.join("resolv.conf"),
            },
            "cgroup_path": cgroup_path,
            "log": {"path": dir.join("container-json.log")},
        });
        Bundle {
            tmp,
            dir,
            id,
            cgroup_path,
            config,
        }
    }

    /// Changes the config (`f` gets the JSON).
    pub fn with(mut self, f: impl FnOnce(&mut Value)) -> Bundle {
        f(&mut self.config);
        self
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("container-json.log")
    }

    /// `berth-shim start --bundle`: the address, or (exit code, stderr).
    pub fn start(&self) -> Result<String, (i32, String)> {
        std::fs::write(
            self.dir.join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
        let out = Command::new(shim_bin())
            .args(["start", "--bundle"])
            .arg(&self.dir)
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err((
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ))
        }
    }

    /// Starts and connects; panics with the shim's error if start failed.
    pub async fn run(&self) -> ShimClient {
        let address = match self.start() {
            Ok(a) => a,
            Err((code, err)) => panic!(
                "start failed ({code}): {err}\nshim.log: {}",
                std::fs::read_to_string(self.dir.join("shim.log")).unwrap_or_default()
            ),
        };
        connect(&address).await
    }

    pub fn shim_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("shim.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    pub fn read_json(&self, name: &str) -> Option<Value> {
        let text = std::fs::read(self.dir.join(name)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// The log entries, oldest first.
    pub fn log(&self) -> Vec<Value> {
        read_log(&self.log_path())
    }

    /// The text of every stdout entry in the log.
    pub fn stdout(&self) -> String {
        self.log()
            .iter()
            .filter(|e| e["stream"] == "stdout")
            .map(|e| e["log"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    pub fn cgroup_dirs(&self) -> Vec<PathBuf> {
        cgroup_mounts()
            .into_iter()
            .map(|m| m.join(&self.cgroup_path))
            .collect()
    }

    /// Asserts that nothing of the container remains: no shim, no cgroup, no mount of the
    /// bundle or its root filesystem, no socket.
    pub async fn assert_gone(&self, shim_pid: i32) {
        eventually("the shim to exit", || {
            (!is_berth_shim(shim_pid)).then_some(())
        })
        .await;
        for d in self.cgroup_dirs() {
            assert!(!d.exists(), "cgroup {} remains", d.display());
        }
        let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = self.tmp.path().display().to_string();
        assert!(!mi.contains(&root), "a mount under {root} remains:\n{mi}");
        assert!(!self.dir.join("shim.sock").exists(), "socket remains");
        assert!(!self.dir.join("rootfs").exists(), "rootfs dir remains");
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid()
            && is_berth_shim(pid)
        {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let dirs = self.cgroup_dirs();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut left = false;
            for d in &dirs {
                let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap_or_default();
                for p in procs.lines().filter_map(|l| l.trim().parse().ok()) {
                    left = true;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(p),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
                if !left {
                    let _ = std::fs::remove_dir(d);
                }
            }
            if dirs.iter().all(|d| !d.exists()) || Instant::now() > deadline {
                break;
            }
            // A guard in Drop cannot await; a blocking poll with a timeout is the wait.
            let _ = nix::poll::poll(&mut [], nix::poll::PollTimeout::from(20u16));
        }
    }
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    t.subsec_nanos() ^ (t.as_secs() as u32).rotate_left(7)
}

/// Whether `pid` is a live (not zombie) berth-shim.
pub fn is_berth_shim(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, r)| r.chars().next());
    stat.contains("(berth-shim)") && !matches!(state, Some(Some('Z' | 'X')))
}

/// Mount points of every cgroup hierarchy.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    mi.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let pre: Vec<&str> = pre.split(' ').collect();
            (matches!(fstype, "cgroup" | "cgroup2") && pre.get(3) == Some(&"/"))
                .then(|| PathBuf::from(pre[4]))
        })
        .collect()
}

pub fn read_log(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every log line is JSON"))
        .collect()
}

/// A client on the shim's socket (`unix:///path`).
pub async fn connect(address: &str) -> ShimClient {
    assert!(
        address.starts_with("unix://"),
        "a unix:// address: {address}"
    );
    ShimClient::connect(address)
        .await
        .expect("connect to the shim")
}

/// Attaches to a registered exec, then starts it: its output stream (whole, from the first
/// byte) and the start's answer.
pub async fn attach_and_start(
    c: &ShimClient,
    exec_id: &str,
) -> (AttachStream, pb::ExecStartResponse) {
    let stream = c
        .attach(pb::AttachRequest {
            exec_id: exec_id.to_owned(),
        })
        .await
        .unwrap();
    let started = c
        .exec_start(pb::ExecStartRequest {
            exec_id: exec_id.to_owned(),
        })
        .await
        .unwrap();
    (stream, started)
}

/// The end of a test's container: SIGKILL to the main process, its exit, then Delete.
pub async fn kill_and_delete(c: &ShimClient) -> pb::ExitStatus {
    let kill = pb::KillRequest {
        exec_id: String::new(),
        signal: 9,
        all: false,
    };
    c.kill(kill).await.unwrap();
    let exit = c.wait(pb::WaitRequest {}).await.unwrap();
    c.delete(pb::DeleteRequest {}).await.unwrap();
    exit
}

/// Reads an Attach stream to its end: (stdout, stderr).
pub async fn collect(mut stream: AttachStream) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    while let Some(c) = tokio::time::timeout(patience(), stream.message())
        .await
        .expect("attach stream stalled")
        .expect("attach stream error")
    {
        if c.stream == pb::Stream::Stderr as i32 {
            err.extend(c.data);
        } else {
            out.extend(c.data);
        }
    }
    (
        String::from_utf8_lossy(&out).into_owned(),
        String::from_utf8_lossy(&err).into_owned(),
    )
}

/// A process's memory in KiB: VmRSS, RssAnon, RssFile (from /proc/<pid>/status) and Pss,
/// Private_Clean + Private_Dirty (from /proc/<pid>/smaps_rollup).
pub fn rss_kib(pid: i32) -> [u64; 5] {
    let read =
        |file: &str| std::fs::read_to_string(format!("/proc/{pid}/{file}")).unwrap_or_default();
    let (status, smaps) = (read("status"), read("smaps_rollup"));
    let field = |text: &str, name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    [
        field(&status, "VmRSS:"),
        field(&status, "RssAnon:"),
        field(&status, "RssFile:"),
        field(&smaps, "Pss:"),
        field(&smaps, "Private_Clean:") + field(&smaps, "Private_Dirty:"),
    ]
}
