//! Where containers' cgroups live and what containers see of them, with the real docker CLI:
//! `--cgroup-parent` (made as dockerd makes it, left in place as dockerd leaves it),
//! `--cgroupns` (host by default on this cgroup v1 host, private on request), the container's
//! own cgroup read-only at /sys/fs/cgroup, the per-device block I/O throttles, and the
//! cgroup driver chosen in daemon.json.

use std::{os::unix::fs::MetadataExt, path::Path};

use berth_testutil::{BusyboxEngine, EngineOptions, bin, run, text};

/// Removes a test's cgroup parent from every v1 hierarchy (and the unified one) when dropped:
/// dockerd leaves a `--cgroup-parent` in place, so the test cleans it up itself.
struct Parent(String);

impl Parent {
    fn new(tag: &str) -> Parent {
        Parent(format!("berth-e2e-{tag}-{}", std::process::id()))
    }

    fn dirs(&self) -> Vec<std::path::PathBuf> {
        std::fs::read_dir("/sys/fs/cgroup")
            .map(|d| d.flatten().map(|e| e.path().join(&self.0)).collect())
            .unwrap_or_default()
    }
}

impl Drop for Parent {
    fn drop(&mut self) {
        for d in self.dirs() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// The line of /proc/self/cgroup (as the container prints it) for `controller`: its path.
fn cgroup_line<'a>(text: &'a str, controller: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, c, path) = (parts.next()?, parts.next()?, parts.next()?);
            (c == controller).then_some(path)
        })
        .unwrap_or_else(|| panic!("no {controller} line in {text}"))
}

#[test]
fn cgroup_parent_namespace_and_the_containers_own_view() {
    let s = BusyboxEngine::with_options(
        &[],
        EngineOptions {
            config: Some(serde_json::json!({"exec-opts": ["native.cgroupdriver=cgroupfs"]})),
            ..Default::default()
        },
    );
    // daemon.json's cgroupfs driver is accepted and shown.
    assert_eq!(
        s.docker(&["info", "--format", "{{.CgroupDriver}}"]),
        "cgroupfs"
    );
    let parent = Parent::new("parent");
    let id = s.docker(&[
        "run",
        "-d",
        "--cgroup-parent",
        &parent.0,
        "--memory",
        "64m",
        &s.image,
        "sleep",
        "60",
    ]);
    let host_dir = Path::new("/sys/fs/cgroup/memory").join(&parent.0).join(&id);
    assert_eq!(
        std::fs::read_to_string(host_dir.join("memory.limit_in_bytes"))
            .unwrap()
            .trim(),
        "67108864"
    );
    let hc = s.inspect(&id)["HostConfig"].clone();
    assert_eq!(hc["CgroupParent"], parent.0.as_str());
    // dockerd's default on cgroup v1: the host's cgroup namespace.
    assert_eq!(hc["CgroupnsMode"], "host");
    let own = s.docker(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(
        cgroup_line(&own, "memory"),
        format!("/{}/{id}", parent.0),
        "{own}"
    );
    // Its own cgroup at /sys/fs/cgroup, read-only.
    assert_eq!(
        s.docker(&[
            "exec",
            &id,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        ]),
        "67108864"
    );
    let (code, _, err) = s.status(&[
        "exec",
        &id,
        "sh",
        "-c",
        "echo 1g > /sys/fs/cgroup/memory/memory.limit_in_bytes",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    let (code, _, err) = s.status(&["exec", &id, "mkdir", "/sys/fs/cgroup/x"]);
    assert_ne!(code, 0);
    assert!(err.contains("Read-only file system"), "{err}");
    let listing = s.docker(&["exec", &id, "ls", "/sys/fs/cgroup"]);
    for h in ["memory", "pids", "cpu", "freezer"] {
        assert!(listing.lines().any(|l| l == h), "{h} missing: {listing}");
    }
    assert!(!listing.contains("unified"), "{listing}");
    s.docker(&["rm", "-f", &id]);
    // The container's cgroup goes; the parent the user named stays, as with dockerd.
    assert!(!host_dir.exists());
    assert!(host_dir.parent().unwrap().is_dir());

    // A private cgroup namespace: rooted at the container's cgroup, the view mounted afresh.
    let out = s.docker(&[
        "run",
        "--name",
        "private",
        "--cgroupns",
        "private",
        "--memory",
        "32m",
        &s.image,
        "sh",
        "-c",
        "cat /proc/self/cgroup; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; \
         echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes || echo refused",
    ]);
    assert_eq!(cgroup_line(&out, "memory"), "/", "{out}");
    assert!(out.lines().any(|l| l == "33554432"), "{out}");
    assert!(out.lines().any(|l| l == "refused"), "{out}");
    assert_eq!(
        s.inspect("private")["HostConfig"]["CgroupnsMode"],
        "private"
    );
    s.docker(&["rm", "private"]);
}

/// A block device of this host (the first disk /sys/block lists with a node in /dev).
fn block_device() -> String {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .expect("/sys/block")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("loop") && !n.starts_with("ram"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|n| format!("/dev/{n}"))
        .find(|p| Path::new(p).exists())
        .expect("a block device")
}

#[test]
fn device_throttles_land_in_blkio_and_the_rest_is_warned_about() {
    let s = BusyboxEngine::new();
    let dev = block_device();
    let rdev = std::fs::metadata(&dev).unwrap().rdev();
    let numbers = format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    );
    let (code, id, err) = s.status(&[
        "run",
        "-d",
        "--device-read-bps",
        &format!("{dev}:1mb"),
        "--device-write-bps",
        &format!("{dev}:2mb"),
        "--device-read-iops",
        &format!("{dev}:100"),
        "--device-write-iops",
        &format!("{dev}:50"),
        "--blkio-weight-device",
        &format!("{dev}:300"),
        &s.image,
        "sleep",
        "60",
    ]);
    assert_eq!(code, 0, "{err}");
    let id = id.trim();
    let host = Path::new("/sys/fs/cgroup/blkio/berth").join(id);
    for (file, rate) in [
        ("read_bps_device", "1048576"),
        ("write_bps_device", "2097152"),
        ("read_iops_device", "100"),
        ("write_iops_device", "50"),
    ] {
        let got = std::fs::read_to_string(host.join(format!("blkio.throttle.{file}"))).unwrap();
        assert_eq!(got.trim(), format!("{numbers} {rate}"), "{file}");
    }
    // The container reads its own throttles.
    assert_eq!(
        s.docker(&[
            "exec",
            id,
            "cat",
            "/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device"
        ]),
        format!("{numbers} 1048576")
    );
    let hc = s.inspect(id)["HostConfig"].clone();
    assert_eq!(
        hc["BlkioDeviceReadBps"],
        serde_json::json!([{"Path": dev, "Rate": 1_048_576}])
    );
    assert_eq!(
        hc["BlkioDeviceWriteIOps"],
        serde_json::json!([{"Path": dev, "Rate": 50}])
    );
    // Weight devices need CFQ/BFQ: where the kernel has no weight_device file, dockerd's
    // warning and the weight is discarded.
    let weight_file = Path::new("/sys/fs/cgroup/blkio/blkio.weight_device").exists()
        || Path::new("/sys/fs/cgroup/blkio/blkio.bfq.weight_device").exists();
    if weight_file {
        assert_eq!(hc["BlkioWeightDevice"][0]["Weight"], 300);
    } else {
        assert!(err.contains("Weight-device discarded"), "{err}");
        assert_eq!(hc["BlkioWeightDevice"], serde_json::json!([]));
    }
    s.docker(&["rm", "-f", id]);
    // A device that is not there fails the start with dockerd's words.
    let (code, _, err) = s.status(&[
        "run",
        "--rm",
        "--device-read-bps",
        "/dev/berth-no-such-disk:1mb",
        &s.image,
        "true",
    ]);
    assert_ne!(code, 0);
    assert!(
        err.contains("stat /dev/berth-no-such-disk: no such file or directory"),
        "{err}"
    );
}

#[test]
fn the_systemd_cgroup_driver_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("daemon.json");
    std::fs::write(&path, r#"{"exec-opts": ["native.cgroupdriver=systemd"]}"#).unwrap();
    let out = run(std::process::Command::new(bin("berth-runtime"))
        .arg("--config")
        .arg(&path)
        .arg("--data-root")
        .arg(dir.path().join("data"))
        .arg("--run-root")
        .arg(dir.path().join("run")));
    assert!(!out.status.success());
    let err = text(&out).1;
    assert!(err.contains("native.cgroupdriver=systemd"), "{err}");
    if !Path::new("/run/systemd/system").is_dir() {
        assert!(err.contains("systemd is not running on this host"), "{err}");
    }
    std::fs::write(&path, r#"{"exec-opts": ["native.cgroupdriver=lxc"]}"#).unwrap();
    let out = run(std::process::Command::new(bin("berth-runtime"))
        .arg("--config")
        .arg(&path));
    assert!(!out.status.success());
    let err = text(&out).1;
    assert!(
        err.contains("native.cgroupdriver option lxc not supported"),
        "{err}"
    );
}

/// The runtime's /metrics has each running container's numbers from its cgroup, labelled by
/// ID and name; a stopped container drops out.
#[test]
fn per_container_metrics_on_the_runtime() {
    let s = BusyboxEngine::new();
    let id = s.docker(&[
        "run",
        "-d",
        "--name",
        "metered",
        "--memory",
        "64m",
        &s.image,
        "sh",
        "-c",
        "sleep 60 & sleep 60",
    ]);
    let url = s.engine.metrics_url("runtime");
    let labels = format!(r#"{{id="{id}",name="metered"}}"#);
    let value = |text: &str, metric: &str| -> Option<f64> {
        let prefix = format!("{metric}{labels} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix)?.parse().ok())
    };
    let text = berth_testutil::eventually_explained("the container's metrics", || {
        let text = berth_testutil::http_get(&url);
        if value(&text, "berth_container_pids").is_some_and(|p| p >= 2.0) {
            Ok(text)
        } else {
            Err(text)
        }
    });
    assert_eq!(
        value(&text, "berth_container_memory_limit_bytes"),
        Some(67_108_864.0),
        "{text}"
    );
    assert!(value(&text, "berth_container_memory_usage_bytes").is_some_and(|m| m > 0.0));
    assert!(value(&text, "berth_container_cpu_seconds_total").is_some());
    assert_eq!(value(&text, "berth_container_restarts_total"), Some(0.0));
    assert_eq!(value(&text, "berth_container_oom_kills_total"), Some(0.0));
    s.docker(&["rm", "-f", &id]);
    let text = berth_testutil::http_get(&url);
    assert!(!text.contains(&labels), "{text}");
}

/// docker-py sets the cgroup namespace, parent, a device throttle and the OOM score
/// adjustment and reads them back; a bad namespace mode or score is dockerd's 400.
#[test]
fn docker_py_sets_cgroupns_parent_throttles_and_oom_score() {
    let s = BusyboxEngine::new();
    let parent = Parent::new("py");
    let dev = block_device();
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
image, parent, dev = sys.argv[2], sys.argv[3], sys.argv[4]
out = c.containers.run(image, ["sh", "-c", "cat /proc/self/cgroup; cat /sys/fs/cgroup/blkio/blkio.throttle.write_bps_device; cat /proc/self/oom_score_adj"],
                       cgroupns="private", cgroup_parent=parent, name="py", oom_score_adj=250,
                       device_write_bps=[{"Path": dev, "Rate": 4096}])
lines = out.decode().splitlines()
assert any(l.endswith(":memory:/") for l in lines), lines
assert any(l.endswith(" 4096") for l in lines), lines
assert lines[-1] == "250", lines
hc = c.containers.get("py").attrs["HostConfig"]
assert hc["CgroupnsMode"] == "private", hc["CgroupnsMode"]
assert hc["CgroupParent"] == parent, hc["CgroupParent"]
assert hc["BlkioDeviceWriteBps"] == [{"Path": dev, "Rate": 4096}], hc["BlkioDeviceWriteBps"]
assert hc["OomScoreAdj"] == 250, hc["OomScoreAdj"]
c.containers.get("py").remove()
try:
    c.containers.create(image, "true", cgroupns="shared")
except docker.errors.APIError as e:
    assert e.status_code == 400, e.status_code
    assert e.explanation == "invalid cgroup namespace mode: shared", e.explanation
else:
    raise AssertionError("accepted cgroupns=shared")
try:
    c.containers.create(image, "true", oom_score_adj=2000)
except docker.errors.APIError as e:
    assert e.status_code == 400, e.status_code
    assert e.explanation == "Invalid value 2000, range for oom score adj is [-1000, 1000]", e.explanation
else:
    raise AssertionError("accepted oom_score_adj=2000")
assert c.containers.list(all=True) == []
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            script,
            &s.engine.docker_host,
            &s.image,
            &parent.0,
            &dev,
        ])
        .output()
        .expect("python3");
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}
