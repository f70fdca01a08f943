//! Helpers for tests that drive real processes: the engine started with `berth up` in
//! temporary roots, a nats-server of the test's own, the real `docker` CLI, a fake systemd on
//! a private D-Bus, and `eventually`.
//! Every helper cleans up after itself on drop.

mod bridge;
mod containers;
mod dockerd;
mod engine;
pub mod images;
mod nats;
pub mod registry;
mod systemd;

pub use bridge::{TestBridge, link_exists};
pub use containers::BusyboxEngine;
pub use dockerd::{DOCKERD, Dockerd};
pub use engine::{Engine, EngineOptions, processes_with};
pub use images::{ImageInfo, IndexInfo, MediaTypes, push_layout};
pub use nats::Nats;
pub use registry::Registry;
pub use systemd::{FakeSystemd, SystemdCall};

use std::{
    path::PathBuf,
    process::{Command, Output},
    time::{Duration, Instant},
};

/// Seconds since the Unix epoch, as `docker events --since/--until` take them.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// How long `eventually` waits; `BERTH_TEST_PATIENCE_MS` overrides it on slow machines.
pub fn patience() -> Duration {
    std::env::var("BERTH_TEST_PATIENCE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(30), Duration::from_millis)
}

/// Polls `f` until it returns `Some`, or fails the test after `patience()`.
pub fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + patience();
    let mut pause = Duration::from_millis(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        wait(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// Like `eventually`, but `f` says why the condition is not met yet (`Err`), and the failure
/// message ends with the last reason.
pub fn eventually_explained<T>(what: &str, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + patience();
    let mut pause = Duration::from_millis(10);
    loop {
        let why = match f() {
            Ok(v) => return v,
            Err(why) => why,
        };
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {why}"
        );
        wait(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

/// The pause between two polls of `eventually`.
#[allow(clippy::disallowed_methods)]
fn wait(d: Duration) {
    std::thread::sleep(d);
}

/// The directory holding the workspace's binaries (the test executable's `target/<profile>`).
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BERTH_BIN_DIR") {
        return d.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test>-<hash>
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_owned()
}

/// A workspace binary, which must have been built (`cargo build --workspace --bins`).
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(
        p.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        p.display()
    );
    p
}

/// Whether the host runs IPv6 at all (a kernel booted with ipv6.disable=1 has no such file).
pub fn host_has_ipv6() -> bool {
    std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|v| v.trim() == "0")
}

/// The major and minor of the block device holding the host's root filesystem.
pub fn root_disk() -> (u32, u32) {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let line = mi
        .lines()
        .find(|l| l.split(' ').nth(4) == Some("/"))
        .expect("the root mount");
    let (major, minor) = line
        .split(' ')
        .nth(2)
        .and_then(|d| d.split_once(':'))
        .expect("major:minor");
    (major.parse().expect("major"), minor.parse().expect("minor"))
}

/// Output as text, for assertions and failure messages.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a command and returns its output.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP GET on loopback (`http://127.0.0.1:port/path`); returns the body.
pub fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (addr, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let mut s =
        std::net::TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut buf = String::new();
    s.read_to_string(&mut buf).expect("response");
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{head}"
    );
    body.to_owned()
}
