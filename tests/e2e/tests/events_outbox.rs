//! Events outlive an outage of NATS and a crash of the service that wrote them: each is
//! written in the service's store with the change it reports (the outbox), published when NATS
//! returns, and appears exactly once.

use std::collections::BTreeMap;

use berth_testutil::{BusyboxEngine, EngineOptions, Nats, eventually, unix_now};
use nix::sys::signal::Signal;

/// `(type, action, actor id)` → how many times, for the events since `since`.
fn counted(s: &BusyboxEngine, since: u64) -> BTreeMap<(String, String, String), usize> {
    let out = s.docker(&[
        "events",
        "--since",
        &since.to_string(),
        "--until",
        &(unix_now() + 1).to_string(),
        "--format",
        "{{.Type}} {{.Action}} {{.Actor.ID}}",
    ]);
    let mut seen = BTreeMap::new();
    for line in out.lines() {
        let mut f = line.split(' ');
        let (Some(t), Some(a), Some(id)) = (f.next(), f.next(), f.next()) else {
            continue;
        };
        *seen
            .entry((t.to_owned(), a.to_owned(), id.to_owned()))
            .or_default() += 1;
    }
    seen
}

#[test]
fn events_of_an_outage_survive_a_killed_service_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut nats = Nats::start(dir.path().join("nats"));
    let s = BusyboxEngine::with_options(
        &[],
        EngineOptions {
            nats_url: Some(nats.url()),
            ..Default::default()
        },
    );
    let since = unix_now();

    nats.kill();
    s.docker(&["volume", "create", "outbox-vol"]);
    s.docker(&["volume", "rm", "outbox-vol"]);
    let id = s.docker(&["create", "--name", "outbox-c", &s.image, "true"]);
    s.docker(&["rm", &id]);

    // Crashes while the events wait: in memory they would be lost.
    for service in ["berth-volumes", "berth-runtime"] {
        let before = s.engine.pid_of(service).expect(service);
        s.engine.signal(service, Signal::SIGKILL);
        eventually(&format!("a new {service}"), || {
            s.engine.pid_of(service).filter(|p| *p != before)
        });
    }
    nats.restart();

    let want = [
        ("volume", "create", "outbox-vol"),
        ("volume", "destroy", "outbox-vol"),
        ("container", "create", id.as_str()),
        ("container", "destroy", id.as_str()),
    ]
    .map(|(t, a, i)| (t.to_owned(), a.to_owned(), i.to_owned()));
    let seen = eventually("the events written during the outage", || {
        let seen = counted(&s, since);
        want.iter().all(|k| seen.contains_key(k)).then_some(seen)
    });
    // Killed again with NATS up: nothing left in the outboxes is published a second time.
    for service in ["berth-volumes", "berth-runtime"] {
        let before = s.engine.pid_of(service).expect(service);
        s.engine.signal(service, Signal::SIGKILL);
        eventually(&format!("a new {service}"), || {
            s.engine.pid_of(service).filter(|p| *p != before)
        });
    }
    s.docker(&["volume", "create", "outbox-after"]);
    eventually("the event after the restarts", || {
        let seen = counted(&s, since);
        seen.contains_key(&(
            "volume".to_owned(),
            "create".to_owned(),
            "outbox-after".to_owned(),
        ))
        .then_some(())
    });
    s.docker(&["volume", "rm", "outbox-after"]);
    let again = counted(&s, since);
    for k in &want {
        assert_eq!(seen.get(k), Some(&1), "{k:?} in {seen:?}");
        assert_eq!(again.get(k), Some(&1), "{k:?} in {again:?}");
    }
}
