//! docker stats, pause/unpause and update with the real docker CLI (and the API where the CLI
//! hides the JSON): the numbers come from the container's cgroup and network namespace,
//! a paused container stops making progress, and an update lands in the cgroup and the
//! record.

use std::io::{Read, Write};

use berth_testutil::{BusyboxEngine, eventually, eventually_explained, unix_now};
use serde_json::Value;

/// A value of the container's cgroup, read on the host (v1 hierarchies, as on this host).
fn cgroup_value(controller: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))
        .unwrap_or_else(|e| panic!("{controller}/{file}: {e}"))
        .trim()
        .to_owned()
}

/// A raw request on the API socket: (status line and headers, body).
fn api(s: &BusyboxEngine, method: &str, path: &str, body: &str) -> (String, String) {
    let mut sock = s.engine.api_socket();
    write!(
        sock,
        "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    sock.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    (head.to_owned(), body.to_owned())
}

#[test]
fn stats_show_the_limit_usage_and_network() {
    let s = BusyboxEngine::new();
    let id = s.docker(&[
        "run",
        "-d",
        "--name",
        "busy",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        &s.image,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    // The CLI's table, and its JSON format with the percentages it computes.
    let table = s.docker(&["stats", "--no-stream", "busy"]);
    assert!(table.contains("busy"), "{table}");
    let line = s.docker(&["stats", "--no-stream", "--format", "{{json .}}", "busy"]);
    let row: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(row["Name"], "busy");
    assert_eq!(row["ID"], &id[..12]);
    let mem = row["MemUsage"].as_str().unwrap();
    assert!(mem.ends_with(" / 64MiB"), "{row}");
    assert!(!mem.starts_with("0B"), "{row}");
    assert_ne!(row["PIDs"], "0", "{row}");
    let cpu: f64 = row["CPUPerc"]
        .as_str()
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    // A busy loop held to half a CPU by its quota.
    assert!(cpu > 5.0 && cpu <= 65.0, "{row}");
    assert!(row["NetIO"].as_str().unwrap().contains(" / "), "{row}");
    assert!(row["BlockIO"].as_str().unwrap().contains(" / "), "{row}");

    // The API's JSON, cgroup v1 (this host): two samples, the first as precpu.
    let v = s.api_get(&format!("/containers/{id}/stats?stream=0"));
    assert_eq!(v["name"], "/busy");
    assert_eq!(v["id"], id.as_str());
    assert_ne!(v["preread"], "0001-01-01T00:00:00Z", "{v}");
    let total = |k: &str| v[k]["cpu_usage"]["total_usage"].as_u64().unwrap();
    assert!(total("cpu_stats") > total("precpu_stats"), "{v}");
    assert!(v["cpu_stats"]["system_cpu_usage"].as_u64().unwrap() > 0);
    assert!(v["cpu_stats"]["online_cpus"].as_u64().unwrap() > 0);
    assert!(
        v["cpu_stats"]["cpu_usage"]["percpu_usage"].is_array(),
        "{v}"
    );
    assert!(
        v["cpu_stats"]["throttling_data"]["periods"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(v["memory_stats"]["limit"], 67_108_864);
    assert!(v["memory_stats"]["usage"].as_u64().unwrap() > 0);
    assert!(
        v["memory_stats"]["stats"]["total_inactive_file"].is_u64(),
        "{v}"
    );
    assert!(v["pids_stats"]["current"].as_u64().unwrap() >= 1);
    assert!(v["blkio_stats"]["io_service_bytes_recursive"].is_array());
    assert!(v["networks"]["eth0"]["rx_bytes"].is_u64(), "{v}");
    assert!(v["networks"].get("lo").is_none());
    // one-shot: at once, without precpu.
    let v = s.api_get(&format!("/containers/{id}/stats?stream=0&one-shot=1"));
    assert_eq!(v["preread"], "0001-01-01T00:00:00Z");
    let (head, body) = api(
        &s,
        "GET",
        &format!("/containers/{id}/stats?stream=1&one-shot=1"),
        "",
    );
    assert!(head.contains(" 400 "), "{head}");
    assert!(
        body.contains("cannot have stream=true and one-shot=true"),
        "{body}"
    );

    // Streamed: a sample a second, each carrying the one before.
    let mut sock = s.engine.api_socket();
    write!(
        sock,
        "GET /containers/{id}/stats HTTP/1.1\r\nHost: docker\r\n\r\n"
    )
    .unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 65536];
    while frame_lines(&seen).len() < 2 {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "the stream ended: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(
        seen.to_lowercase().contains("transfer-encoding: chunked"),
        "{seen}"
    );
    let samples: Vec<Value> = frame_lines(&seen)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(samples[0]["preread"], "0001-01-01T00:00:00Z");
    assert_eq!(samples[1]["preread"], samples[0]["read"]);
    drop(sock);

    // A stopped container: dockerd's zeroed answer.
    s.docker(&["kill", "busy"]);
    let v = s.api_get(&format!("/containers/{id}/stats?stream=0"));
    assert_eq!(v["read"], "0001-01-01T00:00:00Z");
    assert_eq!(v["memory_stats"], serde_json::json!({}));
    s.docker(&["rm", "busy"]);
}

/// The seconds of the day of an RFC 3339 UTC time with nanoseconds (`...T22:13:20.5Z`).
fn seconds_of_day(t: &str) -> f64 {
    let clock = t
        .split_once('T')
        .map_or("", |(_, c)| c)
        .trim_end_matches('Z');
    let mut parts = clock.split(':');
    let mut field = || {
        parts
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    let (h, m, s) = (field(), field(), field());
    h * 3600.0 + m * 60.0 + s
}

/// The CPU percentage `docker stats --no-stream` shows for `name`.
fn cli_cpu(s: &BusyboxEngine, name: &str) -> f64 {
    let out = s.docker(&["stats", "--no-stream", "--format", "{{.CPUPerc}}", name]);
    out.trim_end_matches('%')
        .parse()
        .unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `--no-stream` answers after a short CPU window (not dockerd's two one-second ticks) and
/// its percentages are right: a busy loop shows a good share of a CPU, a sleeper none.
#[test]
fn no_stream_has_a_short_window_and_sane_percentages() {
    let s = BusyboxEngine::new();
    let busy = s.docker(&[
        "run",
        "-d",
        "--name",
        "spin",
        &s.image,
        "sh",
        "-c",
        "while :; do :; done",
    ]);
    s.sleeper("idle", &[]);
    let v = s.api_get(&format!("/containers/{busy}/stats?stream=0"));
    let (read, preread) = (v["read"].as_str().unwrap(), v["preread"].as_str().unwrap());
    let mut window = seconds_of_day(read) - seconds_of_day(preread);
    if window < 0.0 {
        window += 86_400.0;
    }
    assert!((0.1..0.9).contains(&window), "a window of {window} s: {v}");
    let total = |k: &str| v[k]["cpu_usage"]["total_usage"].as_u64().unwrap();
    let system = |k: &str| v[k]["system_cpu_usage"].as_u64().unwrap();
    assert!(total("cpu_stats") > total("precpu_stats"), "{v}");
    assert!(system("cpu_stats") > system("precpu_stats"), "{v}");
    // A loaded host shares its CPUs: one of a few windows shows the loop's share.
    let mut seen = Vec::new();
    eventually_explained("the busy loop above 20% CPU", || {
        let cpu = cli_cpu(&s, "spin");
        seen.push(cpu);
        (cpu > 20.0)
            .then_some(())
            .ok_or_else(|| format!("{seen:?}"))
    });
    let idle = cli_cpu(&s, "idle");
    assert!(idle < 5.0, "the sleeper at {idle}%");

    // Two streams of one container (one collector samples it for both): each frame carries
    // the one before it, at least half a second back.
    let mut socks: Vec<_> = (0..2)
        .map(|_| {
            let mut sock = s.engine.api_socket();
            write!(
                sock,
                "GET /containers/{busy}/stats HTTP/1.0\r\nHost: docker\r\n\r\n"
            )
            .unwrap();
            sock
        })
        .collect();
    for sock in &mut socks {
        let mut seen = String::new();
        let mut buf = [0u8; 65536];
        while frame_lines(&seen).len() < 3 {
            let n = sock.read(&mut buf).unwrap();
            assert!(n > 0, "the stream ended: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        let frames: Vec<Value> = frame_lines(&seen)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(frames[0]["preread"], "0001-01-01T00:00:00Z");
        for w in frames.windows(2).take(2) {
            assert_eq!(w[1]["preread"], w[0]["read"]);
            let gap = seconds_of_day(w[1]["read"].as_str().unwrap())
                - seconds_of_day(w[0]["read"].as_str().unwrap());
            assert!(gap.rem_euclid(86_400.0) >= 0.5, "frames {gap} s apart");
        }
    }
    drop(socks);
    s.docker(&["rm", "-f", "spin", "idle"]);
}

#[test]
fn a_paused_container_stops_making_progress() {
    let s = BusyboxEngine::new();
    let since = unix_now();
    let id = s.docker(&[
        "run",
        "-d",
        "--name",
        "counter",
        &s.image,
        "sh",
        "-c",
        "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; done",
    ]);
    let pid = s.inspect(&id)["State"]["Pid"].as_i64().unwrap();
    let count = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/root/tmp/n"))
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0)
    };
    eventually("the counter to run", || (count() > 0).then_some(()));
    s.docker(&["pause", "counter"]);
    assert_eq!(cgroup_value("freezer", &id, "freezer.state"), "FROZEN");
    let st = s.inspect(&id)["State"].clone();
    assert_eq!(
        (&st["Status"], &st["Paused"], &st["Running"]),
        (
            &Value::from("paused"),
            &Value::from(true),
            &Value::from(true)
        )
    );
    let ps = s.docker(&["ps", "--format", "{{.Status}}", "--filter", "status=paused"]);
    assert!(ps.ends_with("(Paused)"), "{ps}");
    let frozen_at = count();
    // Time passes (a few round trips through the engine): the counter stays where it was.
    for _ in 0..5 {
        s.docker(&["inspect", &id]);
    }
    assert_eq!(count(), frozen_at);
    // dockerd's refusals.
    let (_, e) = s.fails(&["exec", "counter", "true"]);
    assert!(
        e.contains(&format!(
            "Container {id} is paused, unpause the container before exec"
        )),
        "{e}"
    );
    let (_, e) = s.fails(&["pause", "counter"]);
    assert!(
        e.contains(&format!("Container {id} is already paused")),
        "{e}"
    );
    let (_, e) = s.fails(&["rm", "counter"]);
    assert!(
        e.contains("container is paused and must be unpaused first"),
        "{e}"
    );

    s.docker(&["unpause", "counter"]);
    eventually("the counter to move again", || {
        (count() > frozen_at).then_some(())
    });
    assert_eq!(s.inspect(&id)["State"]["Status"], "running");
    let (_, e) = s.fails(&["unpause", "counter"]);
    assert!(e.contains(&format!("Container {id} is not paused")), "{e}");
    // Events travel through the bus: they show up shortly.
    eventually("the pause and unpause events", || {
        let actions: Vec<String> = s
            .container_events(since, "counter")
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        (actions.iter().any(|a| a == "pause") && actions.iter().any(|a| a == "unpause"))
            .then_some(())
    });

    // Paused, then stopped: the stop signal is delivered once thawed, as with dockerd.
    s.docker(&["pause", "counter"]);
    s.docker(&["stop", "-t", "1", "counter"]);
    let st = s.inspect(&id)["State"].clone();
    assert_eq!(
        (&st["Status"], &st["Paused"]),
        (&Value::from("exited"), &Value::from(false))
    );
    let (_, e) = s.fails(&["pause", "counter"]);
    assert!(e.contains(&format!("container {id} is not running")), "{e}");
    s.docker(&["rm", "counter"]);

    // Paused, then removed by force: SIGKILL reaches it (the v1 freezer holds even SIGKILL
    // until the cgroup is thawed), and its cgroup goes.
    let id = s.docker(&["run", "-d", &s.image, "sleep", "600"]);
    s.docker(&["pause", &id]);
    s.docker(&["rm", "-f", &id]);
    assert!(s.docker(&["ps", "-aq"]).is_empty());
    eventually("the paused container's cgroup to go", || {
        (!std::path::Path::new(&format!("/sys/fs/cgroup/freezer/berth/{id}")).exists())
            .then_some(())
    });
}

#[test]
fn update_changes_the_cgroup_and_the_record() {
    let s = BusyboxEngine::new();
    let since = unix_now();
    let id = s.docker(&[
        "run", "-d", "--name", "upd", "--memory", "64m", &s.image, "sleep", "600",
    ]);
    s.docker(&[
        "update",
        "--memory",
        "128m",
        "--memory-swap",
        "256m",
        "--pids-limit",
        "20",
        "upd",
    ]);
    assert_eq!(
        cgroup_value("memory", &id, "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(
        cgroup_value("memory", &id, "memory.memsw.limit_in_bytes"),
        "268435456"
    );
    assert_eq!(cgroup_value("pids", &id, "pids.max"), "20");
    s.docker(&[
        "update",
        "--cpus",
        "0.5",
        "--restart",
        "on-failure:3",
        "upd",
    ]);
    assert_eq!(cgroup_value("cpu", &id, "cpu.cfs_quota_us"), "50000");
    let hc = s.inspect(&id)["HostConfig"].clone();
    assert_eq!(hc["Memory"], 134_217_728);
    assert_eq!(hc["MemorySwap"], 268_435_456);
    assert_eq!(hc["PidsLimit"], 20);
    assert_eq!(hc["NanoCpus"], 500_000_000);
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");
    assert_eq!(hc["RestartPolicy"]["MaximumRetryCount"], 3);
    // dockerd's checks, in its words.
    let (_, e) = s.fails(&["update", "--memory", "512m", "upd"]);
    assert!(
        e.contains(&format!("Cannot update container {id}: Memory limit should be smaller than already set memoryswap limit")),
        "{e}"
    );
    let (_, e) = s.fails(&["update", "--cpu-quota", "20000", "upd"]);
    assert!(
        e.contains("CPU Quota cannot be updated as NanoCPUs has already been set"),
        "{e}"
    );
    let (_, e) = s.fails(&["update", "--memory", "1m", "upd"]);
    assert!(e.contains("Minimum memory limit allowed is 6MB"), "{e}");
    // What an update cannot change is refused, named.
    let (head, body) = api(
        &s,
        "POST",
        &format!("/containers/{id}/update"),
        r#"{"CpuRealtimeRuntime":1000}"#,
    );
    assert!(head.contains(" 400 "), "{head}");
    assert!(body.contains("--cpu-rt-runtime"), "{body}");
    eventually("the update event", || {
        s.container_events(since, "upd")
            .iter()
            .any(|(a, _)| a == "update")
            .then_some(())
    });

    // The record holds: across a restart of the container and of the runtime.
    s.docker(&["restart", "-t", "0", "upd"]);
    assert_eq!(
        cgroup_value("memory", &id, "memory.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(cgroup_value("pids", &id, "pids.max"), "20");
    let runtime = s.engine.pid_of("berth-runtime").unwrap();
    s.engine
        .signal("berth-runtime", nix::sys::signal::Signal::SIGKILL);
    eventually("the runtime to come back", || {
        s.engine.pid_of("berth-runtime").filter(|p| *p != runtime)
    });
    let hc = eventually_explained("inspect after the runtime's restart", || {
        let out = s.engine.docker(&["inspect", &id]);
        // The CLI prints `[]` with its error while the runtime is not back.
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
        Ok(v[0]["HostConfig"].clone())
    });
    assert_eq!(hc["Memory"], 134_217_728);
    assert_eq!(hc["RestartPolicy"]["Name"], "on-failure");

    // --blkio-weight where the kernel has a weight file; dockerd's warning where not.
    let weight_file = ["blkio.weight", "blkio.bfq.weight"].iter().find(|f| {
        std::path::Path::new("/sys/fs/cgroup/blkio")
            .join(f)
            .exists()
    });
    let (code, w, err) = s.status(&[
        "run",
        "-d",
        "--blkio-weight",
        "300",
        &s.image,
        "sleep",
        "60",
    ]);
    assert_eq!(code, 0, "{err}");
    match weight_file {
        Some(f) => assert_eq!(cgroup_value("blkio", w.trim(), f), "300"),
        None => assert!(
            err.contains("Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."),
            "{err}"
        ),
    }
    s.docker(&["rm", "-f", w.trim()]);

    // A container that does not run: the record only, applied at its start.
    let st = s.docker(&["create", "--name", "later", &s.image, "sleep", "600"]);
    let out = s.docker(&["update", "--memory", "32m", "--memory-swap", "64m", "later"]);
    assert_eq!(out, "later");
    s.docker(&["start", "later"]);
    assert_eq!(
        cgroup_value("memory", &st, "memory.limit_in_bytes"),
        "33554432"
    );
    s.docker(&["rm", "-f", "upd", "later"]);
}

/// docker-py: stats(stream=False) keys, pause(), update().
#[test]
fn docker_py_stats_pause_and_update() {
    let s = BusyboxEngine::new();
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
ctr = c.containers.run(sys.argv[2], ["sleep", "600"], detach=True, mem_limit="64m", name="py")
st = ctr.stats(stream=False)
for k in ["name", "id", "read", "preread", "cpu_stats", "precpu_stats", "memory_stats",
          "blkio_stats", "pids_stats", "networks", "num_procs"]:
    assert k in st, (k, st)
assert st["name"] == "/py", st["name"]
assert st["memory_stats"]["limit"] == 64 * 1024 * 1024, st["memory_stats"]
assert st["precpu_stats"]["system_cpu_usage"] > 0, st["precpu_stats"]
ctr.pause()
ctr.reload()
assert ctr.status == "paused", ctr.status
ctr.unpause()
ctr.reload()
assert ctr.status == "running", ctr.status
r = ctr.update(mem_limit="128m", memswap_limit="256m", restart_policy={"Name": "always"})
assert "Warnings" in r, r
ctr.reload()
assert ctr.attrs["HostConfig"]["Memory"] == 128 * 1024 * 1024
assert ctr.attrs["HostConfig"]["RestartPolicy"]["Name"] == "always"
ctr.remove(force=True)
print("ok")
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, &s.engine.docker_host, &s.image])
        .output()
        .expect("python3");
    let (o, e) = berth_testutil::text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    assert_eq!(o.trim(), "ok");
}

/// The JSON lines of a stats stream read so far, whole lines only (a frame may come in two
/// reads).
fn frame_lines(seen: &str) -> Vec<String> {
    seen.split_inclusive('\n')
        .filter(|l| l.starts_with('{') && l.ends_with('\n'))
        .map(str::to_owned)
        .collect()
}
