//! The system API through the real docker CLI: version, info, events, metrics.

use berth_testutil::{Engine, EngineOptions, eventually, run, text};
use nix::sys::signal::Signal;

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn docker_version_reports_engine_and_api_1_50_without_downgrade() {
    let engine = Engine::up(EngineOptions::default());
    let v = json(&engine.docker_ok(&["version", "--format", "{{json .}}"]));
    assert_eq!(
        v["Client"]["ApiVersion"], "1.50",
        "the client did not downgrade: {v}"
    );
    assert_eq!(v["Server"]["ApiVersion"], "1.50");
    assert_eq!(v["Server"]["MinAPIVersion"], "1.24");
    assert_eq!(v["Server"]["Os"], "linux");
    let engine_component = v["Server"]["Components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["Name"] == "Engine"))
        .unwrap_or_else(|| panic!("no Engine component: {v}"));
    assert_eq!(engine_component["Details"]["ApiVersion"], "1.50");
    let plain = engine.docker_ok(&["version"]);
    assert!(plain.contains("Server: Berth"), "{plain}");
}

#[test]
fn docker_info_succeeds_with_real_figures() {
    let engine = Engine::up(EngineOptions::default());
    let out = engine.docker(&["info"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("Storage Driver: overlay2"), "{stdout}");
    assert!(!stderr.contains("service is unavailable"), "{stderr}");
    let info = json(&engine.docker_ok(&["info", "--format", "{{json .}}"]));
    assert_eq!(info["Containers"], 0);
    assert_eq!(info["Images"], 0);
    assert_eq!(info["Swarm"]["LocalNodeState"], "inactive");
    assert!(
        ["1", "2"].contains(&info["CgroupVersion"].as_str().unwrap()),
        "{info}"
    );
    assert_eq!(
        info["DockerRootDir"],
        engine.data_root.display().to_string()
    );
    assert_eq!(
        info["NCPU"],
        std::thread::available_parallelism().unwrap().get()
    );
    let id = info["ID"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "{id}");
    // The ID is stable: kept under the data root.
    let again = json(&engine.docker_ok(&["info", "--format", "{{json .}}"]));
    assert_eq!(again["ID"], id.as_str());
    let df = engine.docker_ok(&["system", "df"]);
    assert!(
        df.contains("Images") && df.contains("Local Volumes"),
        "{df}"
    );
}

/// `berth up` says "up" once the first `docker info` is clean: no service or event bus
/// reported unreachable while they are still connecting.
#[test]
fn the_first_info_after_up_has_no_readiness_warning() {
    for _ in 0..3 {
        let e = Engine::up(EngineOptions::default());
        let out = e.docker(&["info"]);
        let (o, err) = text(&out);
        assert!(out.status.success(), "{o}\n{err}");
        assert!(
            !err.contains("event bus") && !err.contains("is unavailable"),
            "{err}"
        );
    }
}

#[test]
fn a_backend_down_is_a_warning_and_info_still_succeeds() {
    let engine = Engine::up(EngineOptions::default());
    // Stop the volumes service for good: SIGSTOP keeps berth up from restarting it, and its
    // gRPC calls time out; SIGKILL would restart it.
    engine.signal("berth-volumes", Signal::SIGSTOP);
    let out = engine.docker(&["info"]);
    engine.signal("berth-volumes", Signal::SIGCONT);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the volumes service is unavailable"),
        "{stderr}"
    );
}

#[test]
fn events_since_until_replays_an_event_a_service_published() {
    let engine = Engine::up(EngineOptions::default());
    let since = engine.docker_ok(&["info", "--format", "{{.SystemTime}}"]);
    let since = since.trim().to_owned();
    // SIGHUP makes the runtime service reload its configuration and publish `daemon reload`.
    engine.signal("berth-runtime", Signal::SIGHUP);
    let line = eventually("the reload event in docker events", || {
        let until = engine.docker_ok(&["info", "--format", "{{.SystemTime}}"]);
        let out = engine.docker_ok(&[
            "system",
            "events",
            "--since",
            &since,
            "--until",
            until.trim(),
            "--filter",
            "type=daemon",
            "--format",
            "{{json .}}",
        ]);
        out.lines()
            .find(|l| l.contains("\"reload\"") && l.contains("\"service\":\"runtime\""))
            .map(str::to_owned)
    });
    let ev = json(&line);
    assert_eq!(ev["Type"], "daemon");
    assert_eq!(ev["Action"], "reload");
    assert_eq!(ev["scope"], "local");
    assert!(ev["timeNano"].as_i64().unwrap() > 0);
    // A filter that excludes it.
    let until = engine.docker_ok(&["info", "--format", "{{.SystemTime}}"]);
    let none = engine.docker_ok(&[
        "events",
        "--since",
        &since,
        "--until",
        until.trim(),
        "--filter",
        "type=container",
    ]);
    assert!(none.trim().is_empty(), "{none}");
    // Bad filters are a 400 with Docker's message.
    let bad = engine.docker(&[
        "events",
        "--since",
        &since,
        "--until",
        until.trim(),
        "--filter",
        "colour=red",
    ]);
    assert!(!bad.status.success());
    assert!(
        text(&bad).1.contains("invalid filter 'colour'"),
        "{:?}",
        text(&bad)
    );
}

#[test]
fn every_service_metrics_pass_promtool() {
    let engine = Engine::up(EngineOptions::default());
    engine.docker_ok(&["info"]);
    for service in ["api-gateway", "runtime", "images", "network", "volumes"] {
        let url = engine.metrics_url(service);
        let body = berth_testutil::http_get(&url);
        assert!(
            body.contains("process_resident_memory_bytes"),
            "{service}: {body}"
        );
        assert!(
            body.contains(&format!("service=\"{service}\"")),
            "{service}: {body}"
        );
        let mut promtool = std::process::Command::new("promtool");
        promtool
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = promtool
            .spawn()
            .expect("promtool (apt-get install prometheus)");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(body.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{service}: promtool: {:?}\n{body}",
            text(&out)
        );
    }
    let gw = berth_testutil::http_get(&engine.metrics_url("api-gateway"));
    assert!(
        gw.contains("berth_http_requests_total{method=\"GET\",route=\"/info\",code=\"200\"}"),
        "{gw}"
    );
    let rt = berth_testutil::http_get(&engine.metrics_url("runtime"));
    assert!(
        rt.contains(
            "berth_grpc_requests_total{method=\"/berth.runtime.v1.Runtime/Info\",code=\"OK\"}"
        ),
        "{rt}"
    );
}

#[test]
fn unknown_routes_and_versions_answer_like_docker() {
    let engine = Engine::up(EngineOptions::default());
    let sock = engine.docker_host.trim_start_matches("unix://").to_owned();
    let curl = |path: &str| {
        let out = run(std::process::Command::new("curl")
            .args(["-s", "-i", "--unix-socket", &sock])
            .arg(format!("http://localhost{path}")));
        text(&out).0
    };
    let r = curl("/v1.50/nope");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    assert!(r.contains("{\"message\":\"page not found\"}"), "{r}");
    assert!(
        r.to_lowercase()
            .contains("content-type: application/json\r\n"),
        "{r}"
    );
    let r = curl("/v1.51/info");
    assert!(
        r.contains("client version 1.51 is too new. Maximum supported API version is 1.50"),
        "{r}"
    );
    let r = curl("/v1.23/info");
    assert!(
        r.contains("client version 1.23 is too old. Minimum supported API version is 1.24"),
        "{r}"
    );
    let r = curl("/v1.24/_ping");
    assert!(r.starts_with("HTTP/1.1 200") && r.ends_with("OK"), "{r}");
    assert!(r.to_lowercase().contains("api-version: 1.50"), "{r}");
    assert!(
        r.to_lowercase().contains("server: docker/28.2.2 (linux)"),
        "{r}"
    );
}

/// Swarm and plugins, which Berth does not have, answer as dockerd with them off: the CLI
/// prints dockerd's messages, `docker inspect` of nothing ends in "No such object", and
/// docker-py's `swarm.leave(force=True)` (which takes dockerd's 503 for "not in a swarm")
/// does not raise.
#[test]
fn swarm_and_plugins_answer_as_dockerd_with_them_off() {
    let engine = Engine::up(EngineOptions::default());
    let fails = |args: &[&str]| {
        let out = engine.docker(args);
        let (o, e) = text(&out);
        assert!(
            !out.status.success(),
            "docker {args:?} succeeded:\n{o}\n{e}"
        );
        e
    };
    let e = fails(&["swarm", "leave", "--force"]);
    assert!(e.contains("This node is not part of a swarm"), "{e}");
    for args in [
        &["node", "ls"][..],
        &["service", "ls"],
        &["secret", "ls"],
        &["config", "ls"],
    ] {
        let e = fails(args);
        assert!(
            e.contains("This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again."),
            "{args:?}: {e}"
        );
    }
    assert_eq!(engine.docker_ok(&["plugin", "ls", "-q"]).trim(), "");
    let e = fails(&["plugin", "inspect", "vieux/sshfs"]);
    assert!(e.contains("plugin \"vieux/sshfs\" not found"), "{e}");
    let e = fails(&["inspect", "nothing-by-that-name"]);
    assert!(e.contains("No such object: nothing-by-that-name"), "{e}");

    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
c.swarm.leave(force=True)
assert c.plugins.list() == []
try:
    c.swarm.init()
except docker.errors.APIError as e:
    assert e.status_code == 501, e
else:
    raise AssertionError("swarm init succeeded")
print("ok")
"#;
    let out = run(std::process::Command::new("python3").args(["-c", script, &engine.docker_host]));
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}
