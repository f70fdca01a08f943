//! Events outlive an outage of NATS and a crash of the service that wrote them: each is
//! written in the service's store with the change it reports (the outbox), published when NATS
//! returns, and appears exactly once.

use std::collections::BTreeMap;

use berth_testutil::{BusyboxEngine, EngineOptions, Nats, eventually, unix_now};

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
        s.engine.kill_and_await_restart(service);
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
        s.engine.kill_and_await_restart(service);
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

/// A request on the engine's API socket, as a client that sends the next one at once: (status
/// line, body).
fn raw(s: &BusyboxEngine, method: &str, path: &str, body: &str) -> (String, String) {
    use std::io::{Read, Write};
    let mut sock = s.engine.api_socket();
    write!(
        sock,
        "{method} {path} HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .expect("request");
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).expect("response");
    let buf = String::from_utf8_lossy(&buf);
    let (head, body) = buf.split_once("\r\n\r\n").unwrap_or((&buf, ""));
    let status = head.lines().next().unwrap_or_default().to_owned();
    (status, body.to_owned())
}

/// Now, as `seconds.nanoseconds`.
fn now() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    format!("{}.{:09}", t.as_secs(), t.subsec_nanos())
}

/// The events since `since` up to now whose `key` filter matches `value` (one JSON a line),
/// asked right after the call they should report returned.
fn history(s: &BusyboxEngine, since: &str, key: &str, value: &str) -> String {
    let filters = format!("%7B%22{key}%22%3A%5B%22{value}%22%5D%7D");
    let path = format!("/events?since={since}&until={}&filters={filters}", now());
    let (status, body) = raw(s, "GET", &path, "");
    assert!(status.contains(" 200 "), "{status}: {body}");
    body
}

fn asserted(call: (String, String), want: &str) {
    assert!(call.0.contains(want), "{} {}", call.0, call.1);
}

/// dockerd logs a call's events before it answers, and clients rely on it: `docker events
/// --until now` right after a call shows the call's event. Each service holds the end of its
/// answer until its events are stored; here with calls in parallel, each followed at once by
/// the history up to that instant.
#[test]
fn a_calls_events_are_in_the_history_once_it_has_returned() {
    let s = BusyboxEngine::new();
    let since = now();
    s.docker(&["run", "-d", "--name", "evc", &s.image, "sleep", "300"]);
    let image = s.docker(&["inspect", "--format", "{{.Id}}", &s.image]);
    let s = &s;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let since = since.clone();
            scope.spawn(move || {
                for i in 0..10 {
                    let name = format!("evv-{t}-{i}");
                    let body = format!(r#"{{"Name":"{name}"}}"#);
                    asserted(raw(s, "POST", "/volumes/create", &body), " 201 ");
                    let ev = history(s, &since, "volume", &name);
                    assert!(ev.contains(r#""Action":"create""#), "{name}: [{ev}]");
                }
            });
        }
    });
    for i in 0..10 {
        // The call that was seen without its event: a streamed answer.
        let path = "/containers/evc/archive?path=/etc/hostname";
        asserted(raw(s, "GET", path, ""), " 200 ");
        let ev = history(s, &since, "container", "evc");
        assert_eq!(
            ev.matches(r#""Action":"archive-path""#).count(),
            i + 1,
            "[{ev}]"
        );

        let tag = format!("/images/{image}/tag?repo=evtag&tag=t{i}");
        asserted(raw(s, "POST", &tag, ""), " 201 ");
        let ev = history(s, &since, "type", "image");
        assert!(ev.contains(&format!("evtag:t{i}")), "t{i}: [{ev}]");
    }
    // The network service's events are written with the change they report.
    for i in 0..3 {
        let name = format!("evn{i}");
        let body = format!(r#"{{"Name":"{name}"}}"#);
        asserted(raw(s, "POST", "/networks/create", &body), " 201 ");
        let ev = history(s, &since, "network", &name);
        assert!(ev.contains(r#""Action":"create""#), "{name}: [{ev}]");
        let evc = r#"{"Container":"evc"}"#;
        let connect = format!("/networks/{name}/connect");
        asserted(raw(s, "POST", &connect, evc), " 200 ");
        let ev = history(s, &since, "network", &name);
        assert!(ev.contains(r#""Action":"connect""#), "{name}: [{ev}]");
        let disconnect = format!("/networks/{name}/disconnect");
        asserted(raw(s, "POST", &disconnect, evc), " 200 ");
        let ev = history(s, &since, "network", &name);
        assert!(ev.contains(r#""Action":"disconnect""#), "{name}: [{ev}]");
        asserted(raw(s, "DELETE", &format!("/networks/{name}"), ""), " 204 ");
        let ev = history(s, &since, "network", &name);
        assert!(ev.contains(r#""Action":"destroy""#), "{name}: [{ev}]");
    }
    s.docker(&["rm", "-f", "evc"]);
}

/// The lines of a live `/events` stream (no `since`), as they come: read by a thread of
/// their own until the stream ends.
fn live_events(s: &BusyboxEngine, until: u64) -> std::sync::mpsc::Receiver<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut sock = s.engine.api_socket();
    write!(
        sock,
        "GET /events?until={until} HTTP/1.0\r\nHost: docker\r\n\r\n"
    )
    .expect("request");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        // The body of an HTTP/1.0 answer is the stream itself: one JSON a line.
        for line in BufReader::new(sock).lines().map_while(Result::ok) {
            if line.starts_with('{') && tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line of `rx` for which `want` holds, within `wait`.
fn first_line(
    rx: &std::sync::mpsc::Receiver<String>,
    wait: std::time::Duration,
    want: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = std::time::Instant::now() + wait;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        let line = rx.recv_timeout(left).ok()?;
        if want(&line) {
            return Some(line);
        }
    }
}

/// `docker network connect` and `disconnect` of a running container answer before their
/// events are stored: a listener following the stream live still gets them, and `docker
/// events --since` right after each call shows it.
#[test]
fn connect_events_are_seen_live_and_right_after_the_call() {
    let s = BusyboxEngine::new();
    s.docker(&["network", "create", "evlive"]);
    let id = s.docker(&["run", "-d", "--name", "evl", &s.image, "sleep", "300"]);
    let live = live_events(&s, unix_now() + 120);
    // The stream follows once a change made after it was opened shows up on it.
    let mut pings = 0;
    eventually("the live stream to follow", || {
        pings += 1;
        let name = format!("evping{pings}");
        s.docker(&["volume", "create", &name]);
        let seen = first_line(&live, std::time::Duration::from_millis(500), |l| {
            l.contains(&name)
        });
        s.docker(&["volume", "rm", &name]);
        seen.map(|_| ())
    });
    let since = now();
    for action in ["connect", "disconnect"] {
        s.docker(&["network", action, "evlive", "evl"]);
        let cli = s.docker(&[
            "events",
            "--since",
            &since,
            "--until",
            &now(),
            "--filter",
            "network=evlive",
            "--format",
            "{{.Action}} {{.Actor.Attributes.container}}",
        ]);
        assert!(cli.contains(&format!("{action} {id}")), "{action}: [{cli}]");
        let seen = first_line(&live, berth_testutil::patience(), |l| {
            l.contains(r#""Type":"network""#)
                && l.contains(&format!(r#""Action":"{action}""#))
                && l.contains(&id)
        });
        assert!(seen.is_some(), "{action} not on the live stream");
    }
    s.docker(&["rm", "-f", "evl"]);
    s.docker(&["network", "rm", "evlive"]);
}
