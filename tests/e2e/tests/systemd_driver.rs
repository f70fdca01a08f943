//! The systemd cgroup driver (`exec-opts native.cgroupdriver=systemd`) with the real docker
//! CLI. This host runs no systemd, so the engine talks to a fake one on a private D-Bus
//! (`berth_testutil::FakeSystemd`, its address given as `DBUS_SYSTEM_BUS_ADDRESS`, and
//! `BERTH_SYSTEMD_DIR` standing for /run/systemd/system), which behaves as systemd does for
//! the driver: it makes each scope's cgroup in the host's hierarchies, moves its PIDs in, and
//! removes it at StopUnit. (Without systemd the driver's clear error: cgroups.rs.)

use std::path::{Path, PathBuf};

use berth_testutil::{BusyboxEngine, EngineOptions, FakeSystemd, SystemdCall, eventually};

/// Removes the test's slices (deepest first) from every hierarchy when dropped: systemd keeps
/// slices, the fake does too, and the host is left as it was.
struct Slices(Vec<&'static str>);

impl Drop for Slices {
    fn drop(&mut self) {
        for root in FakeSystemd::host_hierarchies() {
            for slice in &self.0 {
                let _ = std::fs::remove_dir(root.join(slice));
            }
        }
    }
}

/// The scope's directories in every hierarchy that still exist.
fn scope_dirs(rel: &str) -> Vec<PathBuf> {
    FakeSystemd::host_hierarchies()
        .into_iter()
        .map(|r| r.join(rel))
        .filter(|d| d.exists())
        .collect()
}

fn read(dir: &Path, file: &str) -> String {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.join(file).display()))
        .trim()
        .to_owned()
}

/// The path of /proc/self/cgroup's `controller` line.
fn cgroup_line(text: &str, controller: &str) -> String {
    text.lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, c, path) = (parts.next()?, parts.next()?, parts.next()?);
            (c == controller).then(|| path.to_owned())
        })
        .unwrap_or_else(|| panic!("no {controller} line in {text}"))
}

#[test]
fn containers_run_in_systemd_scopes() {
    let fake = FakeSystemd::start(FakeSystemd::host_hierarchies());
    let systemd_dir = tempfile::tempdir().unwrap();
    let _slices = Slices(vec![
        "berth.slice",
        "berthe2e.slice/berthe2e-web.slice",
        "berthe2e.slice",
    ]);
    let s = BusyboxEngine::with_options(
        &[],
        EngineOptions {
            config: Some(serde_json::json!({"exec-opts": ["native.cgroupdriver=systemd"]})),
            env: vec![
                (
                    "BERTH_SYSTEMD_DIR".to_owned(),
                    systemd_dir.path().display().to_string(),
                ),
                (
                    "DBUS_SYSTEM_BUS_ADDRESS".to_owned(),
                    fake.address().to_owned(),
                ),
            ],
            ..Default::default()
        },
    );
    assert_eq!(
        s.docker(&["info", "--format", "{{.CgroupDriver}}"]),
        "systemd"
    );
    let id = s.docker(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        &s.image,
        "sleep",
        "1000",
    ]);
    let scope = format!("berth.slice/berth-{id}.scope");
    let memory = Path::new("/sys/fs/cgroup/memory").join(&scope);
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "67108864");
    assert_eq!(
        read(
            &Path::new("/sys/fs/cgroup/cpu").join(&scope),
            "cpu.cfs_quota_us"
        ),
        "50000"
    );
    assert_eq!(
        read(&Path::new("/sys/fs/cgroup/pids").join(&scope), "pids.max"),
        "50"
    );
    // systemd was asked for the scope, with the container's init and its limits.
    let unit = format!("berth-{id}.scope");
    let calls = fake.calls();
    let start = calls
        .iter()
        .find(|c| matches!(c, SystemdCall::Start { name, .. } if *name == unit))
        .unwrap_or_else(|| panic!("no StartTransientUnit of {unit}: {calls:?}"));
    let pid = s.inspect(&id)["State"]["Pid"].as_u64().unwrap();
    assert!(
        start.property("PIDs").unwrap().contains(&pid.to_string()),
        "{start:?}"
    );
    for (k, v) in [
        ("Slice", r#""berth.slice""#),
        ("Delegate", "true"),
        ("MemoryLimit", "uint64 67108864"),
        ("CPUQuotaPerSecUSec", "uint64 500000"),
        ("TasksMax", "uint64 50"),
        ("DevicePolicy", r#""strict""#),
    ] {
        assert_eq!(start.property(k), Some(v), "{k}: {start:?}");
    }
    assert!(matches!(start, SystemdCall::Start { mode, .. } if mode == "replace"));
    // The container is in its scope and reads its limit there.
    let own = s.docker(&["exec", &id, "cat", "/proc/self/cgroup"]);
    assert_eq!(cgroup_line(&own, "memory"), format!("/{scope}"), "{own}");
    assert_eq!(
        s.docker(&[
            "exec",
            &id,
            "cat",
            "/sys/fs/cgroup/memory/memory.limit_in_bytes"
        ]),
        "67108864"
    );
    // stats, pause and update go to the scope's cgroup.
    let usage = s.docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &id]);
    assert!(usage.ends_with("/ 64MiB"), "{usage}");
    let freezer = Path::new("/sys/fs/cgroup/freezer").join(&scope);
    s.docker(&["pause", &id]);
    assert_eq!(read(&freezer, "freezer.state"), "FROZEN");
    s.docker(&["unpause", &id]);
    assert_eq!(read(&freezer, "freezer.state"), "THAWED");
    s.docker(&["update", "--memory", "128m", "--memory-swap", "256m", &id]);
    assert_eq!(read(&memory, "memory.limit_in_bytes"), "134217728");
    let set = fake
        .calls()
        .into_iter()
        .find(|c| matches!(c, SystemdCall::SetProperties { name, .. } if *name == unit))
        .expect("SetUnitProperties at update");
    assert_eq!(set.property("MemoryLimit"), Some("uint64 134217728"));
    // A runtime started again finds the scope's cgroup.
    s.engine
        .signal("berth-runtime", nix::sys::signal::Signal::SIGKILL);
    eventually("the runtime back, pausing in the scope", || {
        let (code, _, _) = s.status(&["pause", &id]);
        (code == 0).then_some(())
    });
    assert_eq!(read(&freezer, "freezer.state"), "FROZEN");
    s.docker(&["unpause", &id]);
    // rm -f: the unit stopped, no cgroup left.
    s.docker(&["rm", "-f", &id]);
    assert!(
        fake.calls()
            .iter()
            .any(|c| matches!(c, SystemdCall::Stop { name, .. } if *name == unit))
    );
    assert_eq!(scope_dirs(&scope), Vec::<PathBuf>::new());
    assert!(fake.active_units().is_empty(), "{:?}", fake.active_units());

    // A --cgroup-parent slice, expanded by its dashes as systemd does.
    let out = s.docker(&[
        "run",
        "--rm",
        "--cgroup-parent",
        "berthe2e-web.slice",
        &s.image,
        "cat",
        "/proc/self/cgroup",
    ]);
    let path = cgroup_line(&out, "memory");
    assert!(
        path.starts_with("/berthe2e.slice/berthe2e-web.slice/berth-") && path.ends_with(".scope"),
        "{out}"
    );
    eventually("the --rm container's scope stopped", || {
        (fake.active_units().is_empty() && scope_dirs(&path[1..]).is_empty()).then_some(())
    });
    // A device rule systemd cannot express is refused by name, and the held init and its
    // cgroup go.
    let (_, err) = s.fails(&[
        "run",
        "--name",
        "anyminor",
        "--device-cgroup-rule",
        "c *:5 rwm",
        &s.image,
        "true",
    ]);
    assert!(
        err.contains("\"c *:5 rwm\"") && err.contains("native.cgroupdriver=systemd"),
        "{err}"
    );
    let failed = s.docker(&["inspect", "--format", "{{.Id}}", "anyminor"]);
    assert_eq!(
        scope_dirs(&format!("berth.slice/berth-{failed}.scope")),
        Vec::<PathBuf>::new()
    );
    s.docker(&["rm", "anyminor"]);
    // A parent that is no slice: dockerd's words.
    let (_, err) = s.fails(&["run", "--cgroup-parent", "foo", &s.image, "true"]);
    assert!(
        err.contains(
            "cgroup-parent for systemd cgroup should be a valid slice named as \"xxx.slice\""
        ),
        "{err}"
    );
}
