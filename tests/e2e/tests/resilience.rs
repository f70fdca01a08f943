//! Failures: NATS killed and restarted, a service killed, two engines side by side, stop.

use berth_testutil::{Engine, EngineOptions, Nats, eventually, text};
use nix::sys::signal::Signal;

#[test]
fn nats_down_commands_keep_working_and_buffered_events_arrive_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(dir.path().join("nats"));
    let engine = Engine::up(EngineOptions {
        nats_url: Some(nats.url()),
        ..Default::default()
    });
    let since = engine
        .docker_ok(&["info", "--format", "{{.SystemTime}}"])
        .trim()
        .to_owned();

    nats.kill();
    // The gateway notices the loss, answers, and says so in /info.
    let stderr = eventually("a NATS warning in docker info", || {
        let out = engine.docker(&["info"]);
        assert!(out.status.success(), "{:?}", text(&out));
        let (_, stderr) = text(&out);
        stderr
            .contains("event bus (NATS) is unreachable")
            .then_some(stderr)
    });
    assert!(stderr.contains("WARNING"));
    engine.docker_ok(&["version"]);
    // An event published while NATS is down is buffered by the service.
    engine.signal("berth-runtime", Signal::SIGHUP);
    engine.signal("berth-images", Signal::SIGHUP);

    nats.restart();
    let found = eventually("the buffered events after NATS returned", || {
        let until = engine.docker_ok(&["info", "--format", "{{.SystemTime}}"]);
        let out = engine.docker_ok(&[
            "events",
            "--since",
            &since,
            "--until",
            until.trim(),
            "--format",
            "{{json .}}",
        ]);
        let services: Vec<&str> = ["runtime", "images"]
            .into_iter()
            .filter(|s| out.contains(&format!("\"service\":\"{s}\"")))
            .collect();
        (services.len() == 2).then_some(out)
    });
    assert_eq!(
        found.lines().filter(|l| l.contains("\"reload\"")).count(),
        2,
        "{found}"
    );
    // And the warning is gone once reconnected.
    eventually("docker info without the NATS warning", || {
        let out = engine.docker(&["info"]);
        (!text(&out).1.contains("event bus")).then_some(())
    });
}

#[test]
fn a_killed_service_is_restarted_by_berth_up() {
    let engine = Engine::up(EngineOptions::default());
    engine.kill_and_await_restart("berth-images");
    eventually("docker info without warnings about images", || {
        let out = engine.docker(&["info"]);
        (out.status.success() && !text(&out).1.contains("images service")).then_some(())
    });
}

#[test]
fn two_engines_side_by_side_and_a_clean_stop() {
    let a = Engine::up(EngineOptions::default());
    let mut b = Engine::up(EngineOptions::default());
    let id_a = a.docker_ok(&["info", "--format", "{{.ID}}"]);
    let id_b = b.docker_ok(&["info", "--format", "{{.ID}}"]);
    assert_ne!(id_a, id_b, "each engine has its own data root");
    assert!(b.stop(), "berth up stops on SIGTERM");
    // b left nothing behind: no process, no socket.
    assert!(b.pid_of("berth-api-gateway").is_none());
    assert!(!b.run_root.join("docker.sock").exists());
    assert!(!b.run_root.join("runtime.sock").exists());
    // a is undisturbed.
    a.docker_ok(&["info"]);
    a.docker_ok(&["version"]);
}
