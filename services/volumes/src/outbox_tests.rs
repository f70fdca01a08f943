//! Each volume event is written in the transaction of the change it reports: a write that
//! commits leaves its event in the outbox (published when NATS is reachable, here never), a
//! refused one leaves none.

use berth_bus::{Bus, EventPublisher};
use berth_proto::volumes::v1 as pb;

use crate::{info::Volumes, store::Store};

#[tokio::test]
async fn events_are_stored_with_the_change_they_report() {
    let dir = tempfile::tempdir().unwrap();
    // NATS is not reachable: nothing leaves the outbox.
    let bus = Bus::connect("nats://127.0.0.1:1", "test").await.unwrap();
    let events = EventPublisher::spawn(bus, Default::default());
    let store = Store::open(dir.path()).unwrap();
    store.attach_events(events.clone()).unwrap();
    let v = Volumes::new(store, dir.path().to_owned(), Some(events.clone()));
    let create = |name: &str| pb::CreateRequest {
        name: name.to_owned(),
        ..Default::default()
    };

    v.create(create("data")).unwrap();
    assert_eq!(events.waiting(), Some(1), "create");
    v.create(create("data")).unwrap();
    assert_eq!(
        events.waiting(),
        Some(1),
        "an existing volume is not created again"
    );
    v.acquire(pb::AcquireRequest {
        container_id: "c1".to_owned(),
        claims: vec![
            pb::Claim {
                name: "data".to_owned(),
                ..Default::default()
            },
            pb::Claim::default(),
        ],
    })
    .unwrap();
    assert_eq!(events.waiting(), Some(2), "the anonymous volume's create");
    v.remove("data", false).unwrap_err();
    v.remove("missing", false).unwrap_err();
    assert_eq!(
        events.waiting(),
        Some(2),
        "refused removals publish nothing"
    );
    v.release(&pb::ReleaseRequest {
        container_id: "c1".to_owned(),
        remove_anonymous: true,
    })
    .unwrap();
    assert_eq!(events.waiting(), Some(3), "the anonymous volume's destroy");
    v.remove("data", false).unwrap();
    assert_eq!(events.waiting(), Some(4), "destroy");
}
