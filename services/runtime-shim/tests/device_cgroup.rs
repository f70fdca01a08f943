//! The device program on a v2 cgroup alone (root): a process in the cgroup may use the
//! devices Docker allows and no other, whatever the v1 devices controller says.

use std::{path::PathBuf, process::Command};

use berth_cgroup::devices as device_cgroup;

/// A v2 cgroup of the test's own, removed on drop.
struct TestCgroup(PathBuf);

impl Drop for TestCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// The cgroup2 mount point: /sys/fs/cgroup/unified (hybrid) or /sys/fs/cgroup (unified).
fn cgroup2_root() -> Option<PathBuf> {
    let mi = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mi.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if !post.starts_with("cgroup2 ") {
            return None;
        }
        pre.split(' ').nth(4).map(PathBuf::from)
    })
}

/// Runs `script` in a shell that first moves itself into the cgroup; (success, stderr).
fn in_cgroup(cg: &TestCgroup, script: &str) -> (bool, String) {
    let procs = cg.0.join("cgroup.procs");
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("echo $$ > {} && {script}", procs.display()))
        .output()
        .expect("sh");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn the_default_rules_allow_only_dockers_devices() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let root = cgroup2_root().expect("a cgroup2 hierarchy");
    let cg = TestCgroup(root.join(format!("berth-device-test-{}", std::process::id())));
    std::fs::create_dir(&cg.0).unwrap();
    device_cgroup::attach_v2(&cg.0, &berth_bundle::default_device_rules()).unwrap();

    let (ok, err) = in_cgroup(
        &cg,
        ": < /dev/null && : < /dev/urandom && echo x > /dev/zero",
    );
    assert!(ok, "{err}");
    // /dev/kmsg is c 1:11, not in the list: no read, no write.
    let (ok, err) = in_cgroup(&cg, ": < /dev/kmsg");
    assert!(!ok);
    assert!(err.contains("Operation not permitted"), "{err}");
    // Creating a node is allowed; using it is not.
    let dir = tempfile::tempdir().unwrap();
    let node = dir.path().join("k");
    let (ok, err) = in_cgroup(
        &cg,
        &format!("mknod {} c 1 11 && : < {}", node.display(), node.display()),
    );
    assert!(!ok);
    assert!(node.exists(), "mknod was refused: {err}");
    assert!(err.contains("Operation not permitted"), "{err}");
}
