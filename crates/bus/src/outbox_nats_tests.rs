//! The outbox against a real nats-server: rows published again after a crash (same message
//! IDs) are stored once.

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use berth_types::{Actor, Event, EventType};

use super::*;
use crate::subjects;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn ev(action: &str, id: &str) -> Event {
    let actor = Actor {
        id: id.to_owned(),
        ..Actor::default()
    };
    Event::new(EventType::Container, action.parse().unwrap(), actor, 1)
}

async fn nats(dir: &std::path::Path) -> (Server, Bus) {
    let port = free_port();
    let child = Command::new("nats-server")
        .args(["--jetstream", "--store_dir"])
        .arg(dir.join("nats"))
        .args(["--addr", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (apt-get install nats-server)");
    let server = Server(child);
    let bus = Bus::connect(&format!("nats://127.0.0.1:{port}"), "outbox-test")
        .await
        .unwrap();
    (server, bus)
}

/// Messages in the event stream (0 before it exists).
async fn stored(bus: &Bus) -> u64 {
    match bus.jetstream().get_stream(subjects::EVENTS_STREAM).await {
        Ok(mut s) => s.info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// A connected bus on a nats-server of its own, and an outbox in a store beside it, whose
/// first event (`create first`) is stored: the event stream exists.
struct Harness {
    _server: Server,
    bus: Bus,
    db: Arc<redb::Database>,
    publisher: crate::EventPublisher,
    store: crate::StoreEvents,
}

async fn harness(dir: &std::path::Path) -> Harness {
    let (server, bus) = nats(dir).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while !bus.is_connected() {
        assert!(Instant::now() < deadline, "never connected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let db = Arc::new(redb::Database::create(dir.join("state.redb")).unwrap());
    let publisher = crate::EventPublisher::spawn(bus.clone(), Default::default());
    let store = crate::StoreEvents::new(db.clone());
    store.attach(publisher.clone()).unwrap();
    // The stream is created by the first publication; let it exist first.
    let tx = db.begin_write().unwrap();
    store.commit(tx, &[ev("create", "first")]).unwrap();
    assert!(publisher.settled(Duration::from_secs(20)).await);
    Harness {
        _server: server,
        bus,
        db,
        publisher,
        store,
    }
}

#[tokio::test]
async fn once_settled_every_committed_event_is_in_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let Harness {
        _server,
        bus,
        db,
        publisher,
        store,
    } = harness(dir.path()).await;
    for round in 0..50u64 {
        let tx = db.begin_write().unwrap();
        store
            .commit(tx, &[ev("start", "a"), ev("die", "a")])
            .unwrap();
        // What a call's reply waits for: no polling after it.
        assert!(publisher.settled(Duration::from_secs(20)).await);
        assert_eq!(stored(&bus).await, 3 + 2 * round, "round {round}");
    }
    // Nothing is pending: settled answers at once.
    assert!(publisher.settled(Duration::ZERO).await);
    assert!(publisher.close(Duration::from_secs(5)).await);
    assert_eq!(publisher.waiting(), Some(0));
}

/// A reader that asks for the services' events to be settled finds every event they
/// committed before, though nothing waited for them after their commit.
#[tokio::test]
async fn a_settle_request_answers_once_the_events_are_stored() {
    use berth_types::ServiceName;
    let dir = tempfile::tempdir().unwrap();
    let Harness {
        _server,
        bus,
        db,
        publisher,
        store,
    } = harness(dir.path()).await;
    let _answers = crate::answer_settle(
        bus.clone(),
        ServiceName::Volumes,
        publisher.clone(),
        Duration::from_secs(20),
    );
    // The answering task subscribes first.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let ask = bus
            .client()
            .request(subjects::settle(ServiceName::Volumes), "".into());
        if ask.await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "settle requests never answered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for round in 0..20u64 {
        let tx = db.begin_write().unwrap();
        store
            .commit(tx, &[ev("start", "a"), ev("die", "a")])
            .unwrap();
        // A service that does not answer (none here) is not waited for beyond the bound.
        let services = [ServiceName::Volumes, ServiceName::Images];
        crate::settle(&bus, services, Duration::from_secs(5)).await;
        assert_eq!(stored(&bus).await, 3 + 2 * round, "round {round}");
    }
    assert!(publisher.close(Duration::from_secs(5)).await);
}

#[tokio::test]
async fn rows_sent_again_after_a_crash_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_server, bus) = nats(dir.path()).await;
    let db = redb::Database::create(dir.path().join("state.redb")).unwrap();
    let outbox = Outbox::open(Arc::new(db)).unwrap();
    outbox
        .append(&[ev("create", "a"), ev("start", "a"), ev("die", "a")])
        .unwrap();
    let rows: Vec<Row> = outbox
        .pending(10)
        .unwrap()
        .into_iter()
        .map(|(_, r)| r)
        .collect();

    // Published and acknowledged, then the process dies before deleting the rows.
    let mut first = JetStreamSink::new(bus.clone());
    let deadline = Instant::now() + Duration::from_secs(20);
    while first.send(&rows).await < rows.len() {
        assert!(Instant::now() < deadline, "NATS never stored the events");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(outbox.len().unwrap(), 3);

    // The next run publishes them again, with the same IDs, and deletes them.
    let mut second = JetStreamSink::new(bus.clone());
    assert_eq!(
        step(&outbox, &mut second, &Progress::default())
            .await
            .unwrap(),
        Step::Sent {
            acked: 3,
            of: 3,
            through: Some(3)
        }
    );
    assert_eq!(outbox.len().unwrap(), 0);
    assert_eq!(stored(&bus).await, 3, "each event stored once");
}
