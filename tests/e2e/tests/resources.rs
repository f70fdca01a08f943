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
