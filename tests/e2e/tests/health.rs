//! Health checks and `docker container prune` through the real docker CLI and docker-py: a
//! check that fails turns `(unhealthy)` after its retries and heals, the ps filter and the
//! `health_status` events follow it, a probe past its timeout is killed, an image's HEALTHCHECK
//! runs unless `--no-healthcheck`, probes resume after the runtime restarts; prune removes the
//! stopped containers its filters select and nothing else.

use std::process::Command;

use berth_testutil::{BusyboxEngine, eventually, eventually_explained, images, text, unix_now};
use serde_json::Value;

type Setup = BusyboxEngine;

/// The container's `State.Health` (null when it has none).
fn health(s: &Setup, id: &str) -> Value {
    s.inspect(id)["State"]["Health"].clone()
}

/// Waits for the health status of `id` to be `want`; its `State.Health` then.
fn wait_health(s: &Setup, id: &str, want: &str) -> Value {
    eventually_explained(&format!("{id} to be {want}"), || {
        let h = health(s, id);
        if h["Status"] == want {
            Ok(h)
        } else {
            Err(h.to_string())
        }
    })
}

/// `docker ps` names with `filter` (all containers).
fn ps_names(s: &Setup, filter: &str) -> Vec<String> {
    let out = s.docker(&["ps", "-a", "--filter", filter, "--format", "{{.Names}}"]);
    let mut names: Vec<String> = out.lines().map(str::to_owned).collect();
    names.sort();
    names
}

fn ps_status(s: &Setup, name: &str) -> String {
    s.docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=^{name}$"),
        "--format",
        "{{.Status}}",
    ])
}

#[test]
fn a_failing_check_turns_unhealthy_after_its_retries_and_heals() {
    let s = Setup::new();
    let since = unix_now();
    let id = s.docker(&[
        "run",
        "-d",
        "--name",
        "hc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "2",
        &s.image,
        "sleep",
        "1000",
    ]);
    let cfg = &s.inspect(&id)["Config"]["Healthcheck"];
    assert_eq!(
        cfg["Test"],
        serde_json::json!(["CMD-SHELL", "test -f /tmp/ok"])
    );
    assert_eq!(
        (cfg["Interval"].as_i64(), cfg["Retries"].as_i64()),
        (Some(1_000_000_000), Some(2))
    );
    // The first probe is a second away and one failure is not enough.
    assert_eq!(health(&s, &id)["Status"], "starting");
    assert!(ps_status(&s, "hc").ends_with("(health: starting)"));
    assert_eq!(ps_names(&s, "health=starting"), ["hc"]);

    let h = wait_health(&s, &id, "unhealthy");
    assert!(h["FailingStreak"].as_i64().unwrap() >= 2, "{h}");
    let log = h["Log"].as_array().unwrap();
    assert!((2..=5).contains(&log.len()), "{h}");
    assert_eq!(log[0]["ExitCode"], 1);
    assert!(log[0]["Start"].as_str().unwrap() <= log[0]["End"].as_str().unwrap());
    assert!(ps_status(&s, "hc").ends_with("(unhealthy)"));
    assert_eq!(ps_names(&s, "health=unhealthy"), ["hc"]);

    s.docker(&["exec", "hc", "touch", "/tmp/ok"]);
    let h = wait_health(&s, &id, "healthy");
    assert_eq!(h["FailingStreak"], 0);
    let last = h["Log"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (last["ExitCode"].as_i64(), last["Output"].as_str()),
        (Some(0), Some(""))
    );
    let status = ps_status(&s, "hc");
    assert!(
        status.starts_with("Up ") && status.ends_with(" (healthy)"),
        "{status}"
    );
    assert_eq!(ps_names(&s, "health=healthy"), ["hc"]);
    assert!(ps_names(&s, "health=unhealthy").is_empty());
    assert!(ps_names(&s, "health=none").is_empty());

    // The transitions, and the probes' exec events, as dockerd publishes them.
    let actions: Vec<String> = s
        .container_events(since, "hc")
        .into_iter()
        .map(|(a, _)| a)
        .collect();
    let health_events: Vec<&String> = actions
        .iter()
        .filter(|a| a.starts_with("health_status"))
        .collect();
    assert_eq!(
        health_events,
        ["health_status: unhealthy", "health_status: healthy"]
    );
    assert!(actions.contains(&"exec_create: /bin/sh -c test -f /tmp/ok".to_owned()));
    assert!(actions.contains(&"exec_start: /bin/sh -c test -f /tmp/ok".to_owned()));
    assert!(actions.iter().any(|a| a == "exec_die"));
    let filtered = s.docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(unix_now() + 1).to_string(),
        "--filter",
        "event=health_status",
        "--format",
        "{{.Action}}",
    ]);
    assert_eq!(
        filtered.lines().collect::<Vec<_>>(),
        ["health_status: unhealthy", "health_status: healthy"]
    );

    // A stopped container's monitor stops, and dockerd leaves it unhealthy.
    s.docker(&["stop", "-t", "0", "hc"]);
    assert_eq!(health(&s, &id)["Status"], "unhealthy");
    assert!(ps_status(&s, "hc").starts_with("Exited ("));
    assert_eq!(ps_names(&s, "health=unhealthy"), ["hc"]);
}

#[test]
fn a_probe_past_its_timeout_is_killed_and_fails_and_the_start_period_forgives() {
    let s = Setup::new();
    let since = unix_now();
    let id = s.docker(&[
        "run",
        "-d",
        "--health-cmd",
        "echo started; sleep 30",
        "--health-interval",
        "1s",
        "--health-timeout",
        "1s",
        "--health-retries",
        "1",
        &s.image,
        "sleep",
        "1000",
    ]);
    let h = wait_health(&s, &id, "unhealthy");
    let probe = &h["Log"][0];
    assert_eq!(probe["ExitCode"], -1, "{h}");
    assert_eq!(
        probe["Output"],
        "Health check exceeded timeout (1s): started\n"
    );
    // The probe was killed at its timeout (SIGKILL: 137), not left to end by itself.
    eventually("a killed probe's exec_die", || {
        s.container_events(since, &id)
            .iter()
            .any(|(a, attrs)| a == "exec_die" && attrs["exitCode"] == "137")
            .then_some(())
    });

    // A probe that cannot run (no such command, exec form through the API) fails with the
    // error, as dockerd's does.
    let body = serde_json::json!({"Image": s.image, "Cmd": ["sleep", "1000"],
        "Healthcheck": {"Test": ["CMD", "/nonexistent"], "Interval": 200_000_000, "Retries": 1}});
    let created: Value =
        serde_json::from_str(&s.api_post("/containers/create", &body.to_string())).unwrap();
    let missing = created["Id"].as_str().unwrap().to_owned();
    s.docker(&["start", &missing]);
    let h = wait_health(&s, &missing, "unhealthy");
    assert_eq!(h["Log"][0]["ExitCode"], -1, "{h}");
    let out = h["Log"][0]["Output"].as_str().unwrap();
    assert!(
        out.starts_with("OCI runtime exec failed") && !out.ends_with('\n'),
        "{h}"
    );

    // Failures within the start period do not count.
    let id = s.docker(&[
        "run",
        "-d",
        "--health-cmd",
        "false",
        "--health-interval",
        "1s",
        "--health-start-period",
        "60s",
        "--health-start-interval",
        "200ms",
        "--health-retries",
        "1",
        &s.image,
        "sleep",
        "1000",
    ]);
    let h = eventually_explained("two probes in the start period", || {
        let h = health(&s, &id);
        match h["Log"].as_array() {
            Some(l) if l.len() >= 2 => Ok(h),
            _ => Err(h.to_string()),
        }
    });
    assert_eq!(
        (h["Status"].as_str(), h["FailingStreak"].as_i64()),
        (Some("starting"), Some(0))
    );
}

/// An image with a HEALTHCHECK (made by `docker import --change`): its check runs, and
/// `--no-healthcheck` turns it off.
#[test]
fn an_images_healthcheck_runs_unless_no_healthcheck() {
    let s = Setup::new();
    let dir = tempfile::tempdir().unwrap();
    let rootfs = dir.path().join("rootfs.tar");
    std::fs::write(&rootfs, images::layer_tar(&images::busybox_entries())).unwrap();
    s.docker(&[
        "import",
        "--change",
        "HEALTHCHECK --interval=1s --retries=1 CMD test -d /tmp",
        rootfs.to_str().unwrap(),
        "checked:1",
    ]);
    let with = s.docker(&["run", "-d", "checked:1", "sleep", "1000"]);
    assert_eq!(
        s.inspect(&with)["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["CMD-SHELL", "test -d /tmp"])
    );
    wait_health(&s, &with, "healthy");

    let without = s.docker(&[
        "run",
        "-d",
        "--no-healthcheck",
        "checked:1",
        "sleep",
        "1000",
    ]);
    let v = s.inspect(&without);
    assert_eq!(
        v["Config"]["Healthcheck"]["Test"],
        serde_json::json!(["NONE"])
    );
    assert!(v["State"]["Health"].is_null(), "{}", v["State"]);
    assert_eq!(ps_names(&s, "health=none").len(), 1);
    let status = s.docker(&[
        "ps",
        "--filter",
        &format!("id={without}"),
        "--format",
        "{{.Status}}",
    ]);
    assert!(
        status.starts_with("Up ") && !status.contains('('),
        "{status}"
    );

    // Retries alone keep the image's test (dockerd merges the two field by field).
    let merged = s.docker(&["create", "--health-retries", "7", "checked:1", "true"]);
    let hc = &s.inspect(&merged)["Config"]["Healthcheck"];
    assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "test -d /tmp"]));
    assert_eq!(
        (hc["Retries"].as_i64(), hc["Interval"].as_i64()),
        (Some(7), Some(1_000_000_000))
    );
}

/// The health so far is in the record: after the runtime restarts the container is still
/// healthy, its log kept, and the probes resume.
#[test]
fn probes_resume_after_the_runtime_restarts() {
    let s = Setup::new();
    let id = s.docker(&[
        "run",
        "-d",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
        &s.image,
        "sh",
        "-c",
        "touch /tmp/ok; exec sleep 1000",
    ]);
    wait_health(&s, &id, "healthy");
    let runtime = s.engine.pid_of("berth-runtime").expect("runtime running");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runtime),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("berth up to restart the runtime", || {
        s.engine.pid_of("berth-runtime").filter(|p| *p != runtime)
    });
    let h = eventually("inspect after the restart", || {
        let out = s.engine.docker(&["inspect", &id]);
        let v: Value = serde_json::from_str(&text(&out).0).ok()?;
        Some(v[0]["State"]["Health"].clone())
    });
    assert_eq!(h["Status"], "healthy");
    assert!(!h["Log"].as_array().unwrap().is_empty(), "{h}");
    s.docker(&["exec", &id, "rm", "/tmp/ok"]);
    wait_health(&s, &id, "unhealthy");
}

#[test]
fn prune_removes_the_stopped_containers_its_filters_select() {
    let s = Setup::new();
    let since = unix_now();
    let img = s.image.as_str();
    let running = s.docker(&["run", "-d", "--name", "running", img, "sleep", "1000"]);
    let created = s.docker(&["create", "--name", "created", img, "true"]);
    let exited = s.docker(&[
        "run",
        "-d",
        "--name",
        "exited",
        "-v",
        "/data",
        img,
        "sh",
        "-c",
        "head -c 200000 /dev/zero > /big",
    ]);
    let labelled = s.docker(&[
        "run", "-d", "--name", "labelled", "--label", "x=1", img, "true",
    ]);
    for id in [&exited, &labelled] {
        assert_eq!(s.docker(&["wait", id]), "0");
    }
    let volumes = s.docker(&["volume", "ls", "-q"]);
    assert_eq!(volumes.lines().count(), 1, "{volumes}");

    let (_, out) = s.fails(&["container", "prune", "-f", "--filter", "status=exited"]);
    assert!(out.contains("invalid filter 'status'"), "{out}");

    // label=: only the labelled one; until= an hour ago: none (all are newer).
    let out = s.docker(&["container", "prune", "-f", "--filter", "label=x"]);
    assert!(out.contains(&labelled), "{out}");
    assert_eq!(ps_names(&s, "status=exited"), ["exited"]);
    let out = s.docker(&["container", "prune", "-f", "--filter", "until=1h"]);
    assert!(!out.contains(&exited) && !out.contains(&created), "{out}");
    let out = s.docker(&["container", "prune", "-f", "--filter", "label!=keep"]);
    assert!(out.contains(&exited) && out.contains(&created), "{out}");
    assert!(!out.contains(&running), "{out}");
    assert!(out.contains("Total reclaimed space: "), "{out}");
    assert!(!out.contains("Total reclaimed space: 0B"), "{out}");
    assert_eq!(ps_names(&s, "status=running"), ["running"]);
    assert_eq!(s.docker(&["ps", "-aq"]).lines().count(), 1);
    // The anonymous volume stays, as with dockerd.
    assert_eq!(s.docker(&["volume", "ls", "-q"]), volumes);

    // The API's shape, and the reclaimed bytes of the writable layer.
    let again = s.docker(&[
        "run",
        "-d",
        img,
        "sh",
        "-c",
        "head -c 200000 /dev/zero > /big",
    ]);
    assert_eq!(s.docker(&["wait", &again]), "0");
    let body = s.api_post("/containers/prune", "");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ContainersDeleted"], serde_json::json!([again]));
    assert!(v["SpaceReclaimed"].as_u64().unwrap() >= 200_000, "{v}");
    let body = s.api_post("/containers/prune", "");
    assert_eq!(
        body.trim(),
        r#"{"ContainersDeleted":null,"SpaceReclaimed":0}"#
    );

    let prunes = s.docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(unix_now() + 1).to_string(),
        "--filter",
        "type=container",
        "--filter",
        "event=prune",
        "--format",
        "{{.Action}} {{index .Actor.Attributes \"reclaimed\"}}",
    ]);
    // One per prune (the refused one aside), with the bytes it reclaimed.
    let lines: Vec<&str> = prunes.lines().collect();
    assert_eq!(lines.len(), 5, "{prunes}");
    assert_eq!(lines[3], format!("prune {}", v["SpaceReclaimed"]));
    assert_eq!(lines[4], "prune 0");
}

/// docker-py: `containers.prune()` and `attrs['State']['Health']`.
#[test]
fn docker_py_sees_health_and_prunes() {
    let s = Setup::new();
    let script = r#"
import sys, time, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
image = sys.argv[2]
ct = c.containers.run(image, ["sleep", "1000"], detach=True,
                      healthcheck={"test": ["CMD", "true"], "interval": 200000000, "retries": 1})
deadline = time.monotonic() + 30
while True:
    ct.reload()
    health = ct.attrs["State"].get("Health")
    if health and health["Status"] == "healthy":
        break
    assert time.monotonic() < deadline, ct.attrs["State"]
    time.sleep(0.1)
assert health["FailingStreak"] == 0 and health["Log"][-1]["ExitCode"] == 0, health
done = c.containers.run(image, ["true"], detach=True)
done.wait()
report = c.containers.prune()
assert sorted(report) == ["ContainersDeleted", "SpaceReclaimed"], report
assert report["ContainersDeleted"] == [done.id], report
assert [x.id for x in c.containers.list(all=True)] == [ct.id]
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", script, &s.engine.docker_host, &s.image])
        .output()
        .expect("python3");
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}

/// A paused container is not probed (dockerd stops its health monitor until unpause): no
/// failing streak, its status and log stay as they were while another container's probes go
/// on, and the probes resume after unpause.
#[test]
fn a_paused_container_is_not_probed() {
    let s = Setup::new();
    let run = |name: &str| {
        s.docker(&[
            "run",
            "-d",
            "--name",
            name,
            "--health-cmd",
            "true",
            "--health-interval",
            "100ms",
            "--health-retries",
            "1",
            &s.image,
            "sleep",
            "60",
        ])
    };
    run("frozen");
    run("clock");
    wait_health(&s, "frozen", "healthy");
    wait_health(&s, "clock", "healthy");
    let since = unix_now();
    s.docker(&["pause", "frozen"]);
    let before = health(&s, "frozen");
    let probes = |name: &str| {
        s.container_events(since, name)
            .iter()
            .filter(|(a, _)| a == "exec_die")
            .count()
    };
    // The other container's probes are the clock: three more of them, at the same interval,
    // give the paused one's monitor time for as many.
    let start = probes("clock");
    eventually("three more probes of the running container", || {
        (probes("clock") >= start + 3).then_some(())
    });
    let during = health(&s, "frozen");
    assert_eq!(during, before, "probed while paused");
    assert_eq!(during["Status"], "healthy");
    assert_eq!(during["FailingStreak"], 0);
    s.docker(&["unpause", "frozen"]);
    eventually_explained("probes to resume after unpause", || {
        let h = health(&s, "frozen");
        if h["Log"] != before["Log"] && h["Status"] == "healthy" {
            Ok(())
        } else {
            Err(h.to_string())
        }
    });
    s.docker(&["rm", "-f", "frozen", "clock"]);
}
