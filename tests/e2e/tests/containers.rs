//! Container lifecycle through the real docker CLI: run, ps, inspect, logs, wait, stop, kill,
//! rm, rename, create/start, start errors, and a runtime killed under running containers.

use std::path::Path;

use berth_testutil::{BusyboxEngine, Engine, eventually, text, unix_now};

/// The container fixture: an engine with busybox pulled from a private registry.
type Setup = BusyboxEngine;

fn is_live(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
    !stat.is_empty() && !matches!(state, Some('Z' | 'X'))
}

/// Nothing of container `id` remains: shim, mounts, cgroup dirs, bundle.
fn assert_gone(engine: &Engine, id: &str, shim_pid: Option<i32>) {
    if let Some(pid) = shim_pid {
        eventually("the shim to exit", || (!is_live(pid)).then_some(()));
    }
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    for root in [&engine.data_root, &engine.run_root] {
        let r = root.display().to_string();
        assert!(
            !mi.lines().any(|l| l.contains(&r) && l.contains(id)),
            "a mount of {id} under {r} remains"
        );
    }
    if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
        for d in dirs.flatten() {
            assert!(!d.path().join("berth").join(id).exists(), "cgroup remains");
        }
    }
    assert!(
        !Path::new("/sys/fs/cgroup/berth").join(id).exists(),
        "cgroup remains"
    );
    let bundle = engine.run_root.join("runtime/containers").join(id);
    assert!(!bundle.exists(), "bundle {} remains", bundle.display());
}

fn shim_pid(engine: &Engine, id: &str) -> Option<i32> {
    std::fs::read_to_string(
        engine
            .run_root
            .join("runtime/containers")
            .join(id)
            .join("shim.pid"),
    )
    .ok()?
    .trim()
    .parse()
    .ok()
}

#[test]
fn run_ps_inspect_stop_kill_rm() {
    let s = Setup::with_tags(&["other"]);
    let start = unix_now();
    let id = s.docker(&["run", "-d", "--name", "web", &s.image, "sleep", "1000"]);
    assert_eq!(id.len(), 64, "{id}");
    let ps = s.docker(&["ps", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Up"), "{ps}");
    let c = s.inspect("web");
    assert_eq!(c["State"]["Running"], true);
    assert!(c["State"]["Pid"].as_i64().unwrap() > 0);
    assert_eq!(c["Name"], "/web");
    assert_eq!(c["Id"], id.as_str());

    // The name is taken.
    let (_, err) = s.fails(&["run", "-d", "--name", "web", &s.image, "true"]);
    assert!(
        err.contains(&format!(
            "Conflict. The container name \"/web\" is already in use by container \"{id}\". You have to remove (or rename) that container to be able to reuse that name."
        )),
        "{err}"
    );

    // A running container is not removed without force.
    let (_, err) = s.fails(&["rm", "web"]);
    assert!(
        err.contains("cannot remove container \"/web\": container is running: stop the container before removing or force remove"),
        "{err}"
    );

    // sleep as PID 1 ignores SIGTERM: SIGKILL after the timeout.
    s.docker(&["stop", "-t", "1", "web"]);
    let c = s.inspect("web");
    assert_eq!(c["State"]["Status"], "exited");
    assert_eq!(c["State"]["ExitCode"], 137);
    let ps = s.docker(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(ps.starts_with("web Exited (137)"), "{ps}");

    // Every durable change was published.
    let actions = eventually("the container's events", || {
        let got: Vec<String> = s
            .container_events(start, "web")
            .into_iter()
            .map(|(action, _)| action)
            .collect();
        (got.len() >= 6).then_some(got)
    });
    // The SIGKILL's kill event and die race (both follow the signal); the rest is ordered.
    assert_eq!(actions[..3], ["create", "start", "kill"], "{actions:?}");
    let mut tail = actions[3..5].to_vec();
    tail.sort();
    assert_eq!(tail, ["die", "kill"], "{actions:?}");
    assert_eq!(actions[5..], ["stop"], "{actions:?}");

    // Start again, then kill.
    s.docker(&["start", "web"]);
    assert_eq!(s.inspect("web")["State"]["Running"], true);
    s.docker(&["kill", "web"]);
    assert_eq!(s.docker(&["wait", "web"]), "137");
    let (_, err) = s.fails(&["kill", "web"]);
    assert!(err.contains("is not running"), "{err}");

    // Rename.
    s.docker(&["rename", "web", "web2"]);
    assert_eq!(s.inspect(&id)["Name"], "/web2");

    // rm -f of a running container leaves nothing behind.
    s.docker(&["start", "web2"]);
    let pid = shim_pid(&s.engine, &id);
    assert!(pid.is_some());
    s.docker(&["rm", "-f", "web2"]);
    assert_gone(&s.engine, &id, pid);
    let (_, err) = s.fails(&["inspect", "web2"]);
    assert!(err.contains("No such"), "{err}");
}

/// docker kill (SIGKILL) returns once the exit is recorded, as dockerd's does (it waits for
/// the container to stop): an rm right after succeeds, and an inspect right after shows it
/// exited with 137. Other signals return at once.
#[test]
fn kill_returns_once_the_container_has_exited() {
    let s = Setup::new();
    for i in 0..10 {
        let name = format!("k{i}");
        s.docker(&["run", "-d", "--name", &name, &s.image, "sleep", "1000"]);
        s.docker(&["kill", &name]);
        s.docker(&["rm", &name]);
    }
    // Through the API, with nothing between the two calls.
    for i in 0..10 {
        let name = format!("a{i}");
        s.docker(&["run", "-d", "--name", &name, &s.image, "sleep", "1000"]);
        // SIGKILL by default and by any of its names.
        let signal = ["", "?signal=KILL", "?signal=9", "?signal=SIGKILL"][i % 4];
        s.api_post(&format!("/containers/{name}/kill{signal}"), "");
        let c = s.api_get(&format!("/containers/{name}/json"));
        assert_eq!(c["State"]["Status"], "exited", "{i}: {}", c["State"]);
        assert_eq!(c["State"]["ExitCode"], 137, "{i}: {}", c["State"]);
    }
    // A signal the process ignores: the kill returns, the container runs on.
    s.docker(&["run", "-d", "--name", "term", &s.image, "sleep", "1000"]);
    s.docker(&["kill", "-s", "TERM", "term"]);
    assert_eq!(s.inspect("term")["State"]["Running"], true);
}

#[test]
fn logs_wait_create_start_and_start_errors() {
    let s = Setup::with_tags(&["other"]);
    let id = s.docker(&["run", "-d", &s.image, "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(s.docker(&["wait", &id]), "0");
    let out = s.engine.docker(&["logs", &id]);
    let (o, e) = text(&out);
    assert_eq!(o.trim(), "out");
    assert_eq!(e.trim(), "err");
    let out = s.engine.docker(&["logs", "--tail", "1", &id]);
    let (o, e) = text(&out);
    assert_eq!(format!("{o}{e}").trim(), "err");

    let id = s.docker(&["run", "-d", &s.image, "sh", "-c", "exit 3"]);
    assert_eq!(s.docker(&["wait", &id]), "3");

    let id = s.docker(&["create", "--name", "later", &s.image, "sh", "-c", "echo hi"]);
    assert_eq!(s.inspect("later")["State"]["Status"], "created");
    s.docker(&["start", "later"]);
    assert_eq!(s.docker(&["wait", &id]), "0");
    assert_eq!(s.docker(&["logs", "later"]), "hi");

    // logs --follow ends when the container stops and the file is drained.
    let id = s.docker(&["run", "-d", &s.image, "sh", "-c", "echo a; sleep 1; echo b"]);
    assert_eq!(s.docker(&["logs", "-f", &id]), "a\nb");
    s.docker(&["restart", "-t", "1", &id]);
    assert_eq!(s.docker(&["wait", &id]), "0");
    assert_eq!(s.docker(&["logs", "--tail", "2", &id]), "a\nb");
    // docker restart publishes start then restart.
    let actions = eventually("the restart event", || {
        let got: Vec<String> = s
            .container_events(0, &id)
            .into_iter()
            .map(|(action, _)| action)
            .collect();
        got.iter().any(|a| a == "restart").then_some(got)
    });
    let at = actions
        .iter()
        .position(|a| a == "restart")
        .unwrap_or_default();
    assert_eq!(actions[at - 1..=at], ["start", "restart"], "{actions:?}");

    // An image that is not here is pulled by the CLI after the 404.
    let other = s.image.replace(":latest", ":other");
    let pulled = s.docker(&["run", "-d", &other, "echo", "pulled"]);
    let pulled = pulled.lines().last().unwrap_or_default().to_owned();
    assert_eq!(s.docker(&["wait", &pulled]), "0");
    assert_eq!(s.docker(&["logs", &pulled]), "pulled");

    let (code, err) = s.fails(&["run", "-d", &s.image, "nope"]);
    assert_eq!(code, 127, "{err}");
    assert!(
        err.contains("exec: \"nope\": executable file not found in $PATH"),
        "{err}"
    );
}

#[test]
fn containers_survive_a_killed_runtime() {
    let s = Setup::with_tags(&["other"]);
    let id = s.docker(&["run", "-d", "--name", "long", &s.image, "sleep", "1000"]);
    let quick = s.docker(&["run", "-d", &s.image, "sh", "-c", "sleep 2; exit 7"]);
    s.engine.kill_and_await_restart("berth-runtime");
    eventually("docker ps to answer again", || {
        let out = s
            .engine
            .docker(&["ps", "--format", "{{.Names}} {{.Status}}"]);
        (out.status.success() && text(&out).0.contains("long Up")).then_some(())
    });
    assert_eq!(s.docker(&["wait", &quick]), "7");
    s.docker(&["stop", "-t", "1", &id]);
    assert_eq!(s.inspect(&id)["State"]["ExitCode"], 137);
}

#[test]
fn foreground_run_prints_output_and_exit_code() {
    let s = Setup::with_tags(&["other"]);
    let out = s.engine.docker(&["run", "--rm", &s.image, "echo", "hello"]);
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{o}\n{e}");
    assert_eq!(o, "hello\n", "stderr: {e}");

    let out = s.engine.docker(&[
        "run",
        &s.image,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(3), "{o}\n{e}");
    assert_eq!(o, "out\n", "stderr: {e}");
    assert!(e.contains("err\n"), "{e}");

    // docker attach to a running container: its later output and its exit code.
    let id = s.docker(&[
        "run",
        "-d",
        &s.image,
        "sh",
        "-c",
        "sleep 2; echo late; exit 4",
    ]);
    let out = s.engine.docker(&["attach", &id]);
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(4), "{o}\n{e}");
    assert_eq!(o, "late\n", "stderr: {e}");
}

#[test]
fn foreground_run_rm_leaves_nothing() {
    let s = Setup::with_tags(&["other"]);
    let dir = tempfile::tempdir().unwrap();
    let cidfile = dir.path().join("cid");
    let cid_arg = cidfile.display().to_string();
    let out = s.engine.docker(&[
        "run",
        "--rm",
        "--cidfile",
        &cid_arg,
        &s.image,
        "sh",
        "-c",
        "echo bye; exit 5",
    ]);
    let (o, e) = text(&out);
    assert_eq!(out.status.code(), Some(5), "{o}\n{e}");
    assert_eq!(o, "bye\n", "stderr: {e}");
    let id = std::fs::read_to_string(&cidfile).unwrap().trim().to_owned();
    assert_eq!(id.len(), 64, "{id:?}");
    assert_eq!(s.docker(&["ps", "-aq"]), "");
    eventually("no shim of the container", || {
        let shims = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|d| {
                let cmd = std::fs::read(d.path().join("cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmd).contains(&id)
            })
            .count();
        (shims == 0).then_some(())
    });
    assert_gone(&s.engine, &id, None);
}
