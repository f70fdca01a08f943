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

#[tokio::test]
async fn rows_sent_again_after_a_crash_are_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new("nats-server")
        .args(["--jetstream", "--store_dir"])
        .arg(dir.path().join("nats"))
        .args(["--addr", "127.0.0.1", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nats-server (apt-get install nats-server)");
    let _server = Server(child);
    let bus = Bus::connect(&format!("nats://127.0.0.1:{port}"), "outbox-test")
        .await
        .unwrap();
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
        step(&outbox, &mut second).await.unwrap(),
        Step::Sent { acked: 3, of: 3 }
    );
    assert_eq!(outbox.len().unwrap(), 0);
    let mut stream = bus
        .jetstream()
        .get_stream(subjects::EVENTS_STREAM)
        .await
        .unwrap();
    let info = stream.info().await.unwrap();
    assert_eq!(info.state.messages, 3, "each event stored once");
}
