//! Network events are written in the transaction of the record they report: a change that
//! commits leaves its event in the outbox (published when NATS is reachable, here never), a
//! refused or idle one leaves none.

use berth_bus::{Bus, EventPublisher};
use berth_proto::network::v1 as pb;
use berth_types::{Actor, Event, EventType};

use super::{
    Store,
    tests::{make, network, pool},
};

fn ev(action: &str, id: &str) -> Vec<Event> {
    let actor = Actor {
        id: id.to_owned(),
        ..Actor::default()
    };
    vec![Event::new(
        EventType::Network,
        action.parse().unwrap(),
        actor,
        1,
    )]
}

#[tokio::test]
async fn create_connect_and_disconnect_are_stored_with_their_records() {
    let dir = tempfile::tempdir().unwrap();
    // NATS is not reachable: nothing leaves the outbox.
    let bus = Bus::connect("nats://127.0.0.1:1", "test").await.unwrap();
    let events = EventPublisher::spawn(bus, Default::default());
    let s = Store::open(dir.path()).unwrap();
    s.attach_events(events.clone()).unwrap();
    let n = network("n1", "a");
    s.create_network(&n, &ev("create", "n1")).unwrap().unwrap();
    assert_eq!(events.waiting(), Some(1), "create");
    let taken = pb::NetworkRecord {
        id: "n2".to_owned(),
        ..n.clone()
    };
    s.create_network(&taken, &ev("create", "n2"))
        .unwrap()
        .unwrap_err();
    assert_eq!(events.waiting(), Some(1), "a refused create has no event");

    let plug = |c: &'static str| {
        s.add_endpoint_at(&n, c, &pool(), None, None, make(c), &ev("connect", "n1"))
            .unwrap()
            .unwrap()
    };
    plug("c1");
    assert_eq!(events.waiting(), Some(2), "connect");
    plug("c1");
    assert_eq!(events.waiting(), Some(2), "an endpoint recorded already");
    plug("c2");
    assert_eq!(events.waiting(), Some(3));

    assert!(
        s.remove_endpoint("c1", "n1", &ev("disconnect", "n1"))
            .unwrap()
            .is_some()
    );
    assert_eq!(events.waiting(), Some(4), "disconnect");
    assert!(
        s.remove_endpoint("c1", "n1", &ev("disconnect", "n1"))
            .unwrap()
            .is_none()
    );
    assert_eq!(events.waiting(), Some(4), "nothing removed, no event");
    let removed = s
        .remove_endpoints("c2", |n, ep| {
            assert_eq!((n.id.as_str(), ep.container_id.as_str()), ("n1", "c2"));
            ev("disconnect", &n.id)
        })
        .unwrap();
    assert_eq!(removed.len(), 1);
    assert_eq!(events.waiting(), Some(5), "the disconnect of each endpoint");
    s.remove_network("n1", &ev("destroy", "n1"))
        .unwrap()
        .unwrap();
    assert_eq!(events.waiting(), Some(6), "destroy");
    events.close(std::time::Duration::ZERO).await;
}
