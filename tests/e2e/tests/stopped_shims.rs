//! A stopped container costs no process, as with dockerd (which deletes the task when the
//! process exits): once the exit is recorded its `berth-shim` is gone, while `ps -a`, `logs`,
//! `cp`, `diff`, `start`, `rm`, `wait` and the restart policies work as before. And `docker
//! kill` against the restart policies, as dockerd's killWithSignal decides. A runtime killed
//! between an exit's record and the shim's release releases it when it is back.

use std::time::{Duration, Instant};

use berth_testutil::{BusyboxEngine, EngineOptions, eventually, processes_with};

/// The live `berth-shim` processes whose command line names the container.
fn shims_of(id: &str) -> usize {
    processes_with(id)
        .into_iter()
        .filter(|(pid, _)| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "berth-shim")
        })
        .count()
}

/// (status, restart count, exit code) from inspect.
fn state(s: &BusyboxEngine, id: &str) -> (String, u64, i64) {
    let v = s.inspect(id);
    (
        v["State"]["Status"].as_str().unwrap_or_default().to_owned(),
        v["RestartCount"].as_u64().unwrap_or(0),
        v["State"]["ExitCode"].as_i64().unwrap_or(-1),
    )
}

/// Waits until no shim names any of `ids` (the exits are recorded by then: the shim goes only
/// after that).
fn no_shims_left(ids: &[String]) {
    eventually("the shims of the stopped containers to exit", || {
        ids.iter().all(|id| shims_of(id) == 0).then_some(())
    });
}

#[test]
fn stopped_containers_hold_no_shim() {
    let s = BusyboxEngine::new();
    let ids: Vec<String> = (0..5)
        .map(|i| {
            let script = format!("echo made > /f{i}; echo out-{i}; echo err-{i} >&2; exit {i}");
            s.docker(&[
                "run",
                "-d",
                "--name",
                &format!("done{i}"),
                &s.image,
                "sh",
                "-c",
                &script,
            ])
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(s.docker(&["wait", id]), i.to_string());
    }
    no_shims_left(&ids);
    // Nothing of theirs runs at all: no process names them.
    for id in &ids {
        assert_eq!(processes_with(id), Vec::new(), "{id}");
    }

    // What a stopped container offers is all there.
    let ps = s.docker(&[
        "ps",
        "-a",
        "--filter",
        "name=done",
        "--format",
        "{{.Names}} {{.Status}}",
    ]);
    for i in 0..5 {
        assert!(
            ps.lines()
                .any(|l| l.starts_with(&format!("done{i} Exited ({i}) "))),
            "{ps}"
        );
    }
    for (i, id) in ids.iter().enumerate() {
        let c = s.inspect(id);
        assert_eq!(c["State"]["Status"], "exited", "{c}");
        assert_eq!(c["State"]["ExitCode"], i as i64, "{c}");
        assert_eq!(c["State"]["OOMKilled"], false, "{c}");
        assert_eq!(c["State"]["Pid"], 0, "{c}");
        assert!(
            !c["State"]["FinishedAt"]
                .as_str()
                .unwrap_or("0001")
                .starts_with("0001"),
            "{c}"
        );
        let (code, out, err) = s.status(&["logs", id]);
        assert_eq!(code, 0);
        assert_eq!(out.trim(), format!("out-{i}"));
        assert_eq!(err.trim(), format!("err-{i}"));
        // Its filesystem: cp and diff.
        let (code, out, err) = s.status(&["cp", &format!("{id}:/f{i}"), "-"]);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("made"), "{out:?}");
        assert!(
            s.docker(&["diff", id])
                .lines()
                .any(|l| l == format!("A /f{i}")),
            "{id}"
        );
    }

    // docker start spawns a new shim, which goes again with the exit.
    let (code, out, err) = s.status(&["start", "-a", &ids[3]]);
    assert_eq!((code, out.trim(), err.trim()), (3, "out-3", "err-3"));
    no_shims_left(&ids[3..4]);
    let (_, out, _) = s.status(&["logs", &ids[3]]);
    assert_eq!(out, "out-3\nout-3\n");
    assert_eq!(s.docker(&["wait", &ids[3]]), "3");

    // A running container keeps its shim, and a stop ends it.
    let long = s.docker(&["run", "-d", &s.image, "sleep", "1000"]);
    assert_eq!(shims_of(&long), 1);
    s.docker(&["stop", "-t", "1", &long]);
    no_shims_left(std::slice::from_ref(&long));
    assert_eq!(state(&s, &long).0, "exited");

    let mut all = ids.clone();
    all.push(long);
    let mut rm = vec!["rm"];
    rm.extend(all.iter().map(String::as_str));
    s.docker(&rm);
    assert_eq!(
        s.docker(&["ps", "-aq", "--filter", "name=done"]),
        "",
        "removed"
    );
    assert_eq!(s.engine.shim_pids(), Vec::<i32>::new());
}

/// Each restart by the policy runs in a new shim, and none is left once the policy gives up
/// (or a stop ends it).
#[test]
fn restart_policies_start_a_new_shim_for_each_run() {
    let s = BusyboxEngine::new();
    let flaky = s.docker(&[
        "run",
        "-d",
        "--restart",
        "on-failure:2",
        &s.image,
        "sh",
        "-c",
        "echo run; exit 3",
    ]);
    let busy = s.docker(&[
        "run",
        "-d",
        "--restart",
        "always",
        &s.image,
        "sh",
        "-c",
        "echo up; sleep 0.3",
    ]);
    eventually("two restarts of each", || {
        (state(&s, &flaky) == ("exited".to_owned(), 2, 3) && state(&s, &busy).1 >= 2).then_some(())
    });
    // The policy gave up: nothing of the flaky one runs.
    no_shims_left(std::slice::from_ref(&flaky));
    assert_eq!(s.docker(&["logs", &flaky]), "run\nrun\nrun");
    assert_eq!(s.docker(&["wait", &flaky]), "3");
    // Still restarted, and stopped for good by docker stop.
    // RestartCount counts a run once it is started: its output may come a moment later.
    eventually("the third run's output", || {
        (s.docker(&["logs", &busy]).lines().count() >= 3).then_some(())
    });
    s.docker(&["stop", "-t", "1", &busy]);
    no_shims_left(std::slice::from_ref(&busy));
    assert_eq!(state(&s, &busy).0, "exited");
    s.docker(&["rm", &flaky, &busy]);
    assert_eq!(s.engine.shim_pids(), Vec::<i32>::new());
}

/// `docker kill` and the restart policies, as dockerd's killWithSignal (daemon/kill.go): a
/// kill cancels the policy when it is SIGKILL, when the container has no stop signal of its
/// own, or when it is that stop signal; any other kill still counts as a manual stop, which
/// `unless-stopped` honors and `always` does not.
#[test]
fn kill_and_restart_policies_as_dockerd() {
    let s = BusyboxEngine::new();
    let script = "trap 'exit 7' TERM HUP; while true; do sleep 0.1; done";
    let run = |policy: &str, stop_signal: Option<&str>| {
        let mut args = vec!["run", "-d", "--restart", policy];
        if let Some(sig) = stop_signal {
            args.extend(["--stop-signal", sig]);
        }
        args.extend([s.image.as_str(), "sh", "-c", script]);
        s.docker(&args)
    };
    // Canceled: HUP with no stop signal of its own; SIGKILL.
    let hup = run("always", None);
    let killed = run("always", None);
    // Not canceled (its stop signal is USR1): `always` restarts, `unless-stopped` does not.
    let always = run("always", Some("SIGUSR1"));
    let unless = run("unless-stopped", Some("SIGUSR1"));
    let all = [&hup, &killed, &always, &unless];
    for id in all {
        eventually("the trap to be set", || {
            s.docker(&["top", id]).contains("sleep").then_some(())
        });
    }
    s.docker(&["kill", "-s", "HUP", &hup]);
    s.docker(&["kill", &killed]);
    s.docker(&["kill", "-s", "TERM", &always]);
    s.docker(&["kill", "-s", "TERM", &unless]);

    eventually("the always container to be restarted", || {
        let (status, count, _) = state(&s, &always);
        (status == "running" && count == 1).then_some(())
    });
    // The others stay stopped: watched for ten times the policy's first delay.
    let until = Instant::now() + Duration::from_secs(1);
    loop {
        assert_eq!(state(&s, &hup), ("exited".to_owned(), 0, 7), "HUP");
        assert_eq!(state(&s, &killed), ("exited".to_owned(), 0, 137), "KILL");
        assert_eq!(
            state(&s, &unless),
            ("exited".to_owned(), 0, 7),
            "unless-stopped"
        );
        if Instant::now() > until {
            break;
        }
    }
    no_shims_left(&[hup.clone(), killed.clone(), unless.clone()]);
    let mut rm = vec!["rm", "-f"];
    rm.extend(all.iter().map(|s| s.as_str()));
    s.docker(&rm);
    assert_eq!(s.engine.shim_pids(), Vec::<i32>::new());
}

/// The runtime dies (at its failpoint) after recording an exit and before releasing the shim:
/// back, it releases the shim of the container recorded as stopped, which then works as any.
#[test]
fn a_shim_left_by_a_runtime_killed_after_the_exit_is_released_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("fired");
    let s = BusyboxEngine::with_options(
        &[],
        EngineOptions {
            env: vec![(
                "BERTH_RUNTIME_FAILPOINT".to_owned(),
                format!("exit-after-record:{}", marker.display()),
            )],
            ..Default::default()
        },
    );
    let id = s.docker(&["run", "-d", &s.image, "sh", "-c", "echo once; exit 5"]);
    eventually("the failpoint to fire", || marker.exists().then_some(()));
    eventually("the runtime to answer again", || {
        let (code, _, _) = s.status(&["ps", "-a"]);
        (code == 0).then_some(())
    });
    no_shims_left(std::slice::from_ref(&id));
    assert_eq!(state(&s, &id), ("exited".to_owned(), 0, 5));
    assert_eq!(s.docker(&["logs", &id]), "once");
    let (code, out, _) = s.status(&["start", "-a", &id]);
    assert_eq!((code, out.as_str()), (5, "once\n"));
    no_shims_left(std::slice::from_ref(&id));
    s.docker(&["rm", &id]);
    assert_eq!(s.engine.shim_pids(), Vec::<i32>::new());
}

/// A container in the host's pid namespace whose main process exits with a child still
/// running: the child is killed (as containerd's shim kills all on the exit of such a
/// container), so that the shim can remove the cgroup and go.
#[test]
fn what_outlives_a_host_pid_container_goes_with_its_shim() {
    let s = BusyboxEngine::new();
    let id = s.docker(&[
        "run",
        "-d",
        "--pid",
        "host",
        &s.image,
        "sh",
        "-c",
        "sleep 1000 & echo $!",
    ]);
    assert_eq!(s.docker(&["wait", &id]), "0");
    let child: i32 = eventually("the child's pid in the log", || {
        s.docker(&["logs", &id]).trim().parse().ok()
    });
    let _left = KillLeftover(child, id.clone());
    no_shims_left(std::slice::from_ref(&id));
    eventually("the child to be gone", || {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, r)| r.chars().next());
        matches!(state, None | Some('Z' | 'X')).then_some(())
    });
    s.docker(&["rm", &id]);
    assert_eq!(s.engine.shim_pids(), Vec::<i32>::new());
}

/// Kills a process of the container that the test leaves running if it fails (a process in
/// the host's pid namespace outlives the engine).
struct KillLeftover(i32, String);

impl Drop for KillLeftover {
    fn drop(&mut self) {
        let ours = std::fs::read_to_string(format!("/proc/{}/cgroup", self.0))
            .is_ok_and(|c| c.contains(&self.1));
        if ours {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(self.0),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
