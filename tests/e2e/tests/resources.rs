//! Resource limits with the real docker CLI: the values land in the container's cgroup (as
//! the container itself sees it), hold (an OOM kill, a fork limit), and show in inspect; bad
//! values get dockerd's words.

use berth_testutil::BusyboxEngine;

/// A value of the running container's cgroup, read on the host (v1 hierarchies).
fn cgroup_value(controller: &str, id: &str, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/{controller}/berth/{id}/{file}"))
        .unwrap_or_else(|e| panic!("{controller}/{file}: {e}"))
        .trim()
        .to_owned()
}

#[test]
fn limits_land_in_the_cgroup_and_show_in_inspect() {
    let s = BusyboxEngine::new();
    let id = s.docker(&[
        "run",
        "-d",
        "--memory",
        "64m",
        "--cpus",
        "0.5",
        "--pids-limit",
        "50",
        "--cpu-shares",
        "512",
        &s.image,
        "sleep",
        "60",
    ]);
    assert_eq!(
        cgroup_value("memory", &id, "memory.limit_in_bytes"),
        "67108864"
    );
    // Twice the memory: dockerd's default swap.
    assert_eq!(
        cgroup_value("memory", &id, "memory.memsw.limit_in_bytes"),
        "134217728"
    );
    assert_eq!(cgroup_value("cpu", &id, "cpu.cfs_quota_us"), "50000");
    assert_eq!(cgroup_value("cpu", &id, "cpu.cfs_period_us"), "100000");
    assert_eq!(cgroup_value("cpu", &id, "cpu.shares"), "512");
    assert_eq!(cgroup_value("pids", &id, "pids.max"), "50");
    s.docker(&["rm", "-f", &id]);
    let id = s.docker(&[
        "create",
        "--memory",
        "64m",
        "--memory-swap",
        "100m",
        "--cpus",
        "1.5",
        &s.image,
    ]);
    let hc = s.inspect(&id)["HostConfig"].clone();
    assert_eq!(hc["Memory"], 67_108_864);
    assert_eq!(hc["MemorySwap"], 104_857_600);
    assert_eq!(hc["NanoCpus"], 1_500_000_000);
    s.docker(&["rm", &id]);
}

#[test]
fn an_oom_kill_and_a_fork_limit_hold() {
    let s = BusyboxEngine::new();
    let (code, _, _) = s.status(&[
        "run",
        "--name",
        "hog",
        "--memory",
        "16m",
        "--memory-swap",
        "16m",
        &s.image,
        "sh",
        "-c",
        "x=$(head -c 64m /dev/zero | tr '\\0' a); echo survived",
    ]);
    assert_eq!(code, 137);
    let state = s.inspect("hog")["State"].clone();
    assert_eq!(state["OOMKilled"], true, "{state}");
    assert_eq!(state["ExitCode"], 137);
    s.docker(&["rm", "hog"]);
    // Ten processes at most: a fork past them fails.
    let (code, _, err) = s.status(&[
        "run",
        "--rm",
        "--pids-limit",
        "10",
        &s.image,
        "sh",
        "-c",
        "for i in $(seq 20); do sleep 5 & done; echo all-forked",
    ]);
    assert_ne!(code, 0);
    assert!(err.contains("can't fork"), "{err}");
}

#[test]
fn bad_values_get_dockerds_words() {
    let s = BusyboxEngine::new();
    let refused = |flags: &[&str], words: &str| {
        let mut args = vec!["create"];
        args.extend_from_slice(flags);
        args.push(&s.image);
        let (_, out) = s.fails(&args);
        assert!(out.contains(words), "{flags:?}: {out}");
    };
    refused(&["--memory", "1m"], "Minimum memory limit allowed is 6MB");
    refused(
        &["--memory", "20m", "--memory-swap", "10m"],
        "Minimum memoryswap limit should be larger than memory limit",
    );
    refused(&["--cpus", "64"], "Range of CPUs is from 0.01 to");
    refused(
        &["--cpu-quota", "500"],
        "CPU cfs quota can not be less than 1ms",
    );
    refused(&["--cpuset-cpus", "99"], "Requested CPUs are not available");
    refused(
        &["--cpus", "1", "--cpu-period", "100000"],
        "Conflicting options: Nano CPUs and CPU Period cannot both be set",
    );
}

/// `docker inspect` of `name` as (Status, RestartCount).
fn state(s: &BusyboxEngine, name: &str) -> (String, u64) {
    let v = s.inspect(name);
    (
        v["State"]["Status"].as_str().unwrap_or_default().to_owned(),
        v["RestartCount"].as_u64().unwrap_or(0),
    )
}

#[test]
fn restart_policies_restart_until_told_not_to() {
    let s = BusyboxEngine::new();
    // on-failure:2 restarts a failing container twice, then leaves it exited.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        &s.image,
        "sh",
        "-c",
        "exit 3",
    ]);
    berth_testutil::eventually("two restarts, then exited", || {
        (state(&s, "flaky") == ("exited".to_owned(), 2)).then_some(())
    });
    assert_eq!(s.inspect("flaky")["State"]["ExitCode"], 3);
    assert_eq!(
        s.inspect("flaky")["HostConfig"]["RestartPolicy"],
        serde_json::json!({"Name": "on-failure", "MaximumRetryCount": 2})
    );
    // on-failure does not restart a success.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        &s.image,
        "true",
    ]);
    s.docker(&["wait", "fine"]);
    assert_eq!(state(&s, "fine"), ("exited".to_owned(), 0));

    // always: an exit is followed by a start; docker stop ends it for good.
    s.docker(&[
        "run",
        "-d",
        "--name",
        "forever",
        "--restart",
        "always",
        &s.image,
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    berth_testutil::eventually("a restart", || (state(&s, "forever").1 >= 2).then_some(()));
    s.docker(&["stop", "-t", "1", "forever"]);
    let (status, count) = state(&s, "forever");
    assert_eq!(status, "exited");
    // Started again by hand, it is under its policy again; a kill ends that too.
    s.docker(&["start", "forever"]);
    berth_testutil::eventually("restarts after a start", || {
        (state(&s, "forever").1 > count).then_some(())
    });
    // (A kill while it waits for its restart delay answers that it is not running.)
    let _ = s.status(&["kill", "forever"]);
    s.docker(&["stop", "forever"]);
    assert_eq!(state(&s, "forever").0, "exited");
    let (_, out) = s.fails(&["create", "--restart", "always", "--rm", &s.image]);
    assert!(out.contains("conflicting options"), "{out}");
}

#[test]
fn oom_score_adj_is_inherited_by_every_process_and_shown() {
    let s = BusyboxEngine::new();
    let out = s.docker(&[
        "run",
        "--rm",
        "--oom-score-adj",
        "500",
        &s.image,
        "cat",
        "/proc/self/oom_score_adj",
    ]);
    assert_eq!(out, "500");
    let id = s.docker(&[
        "run",
        "-d",
        "--oom-score-adj",
        "300",
        &s.image,
        "sleep",
        "60",
    ]);
    assert_eq!(s.inspect(&id)["HostConfig"]["OomScoreAdj"], 300);
    // An exec, and the children of an exec, have the container's value.
    let exec = s.docker(&[
        "exec",
        &id,
        "sh",
        "-c",
        "cat /proc/self/oom_score_adj; sh -c 'cat /proc/self/oom_score_adj'",
    ]);
    assert_eq!(exec, "300\n300");
    s.docker(&["rm", "-f", &id]);
    // Not asked: 0, as dockerd writes it.
    let out = s.docker(&["run", "--rm", &s.image, "cat", "/proc/self/oom_score_adj"]);
    assert_eq!(out, "0");
    for bad in ["1001", "-1001"] {
        let (code, out) = s.fails(&["run", "--oom-score-adj", bad, &s.image, "true"]);
        assert_eq!(code, 125, "{out}");
        assert!(
            out.contains(&format!(
                "Error response from daemon: Invalid value {bad}, range for oom score adj is \
                 [-1000, 1000]"
            )),
            "{out}"
        );
    }
    assert_eq!(s.docker(&["ps", "-aq"]), "");
}
