//! Network events are written in the transaction of the record they report: a change that
//! commits leaves its event in the outbox (published when NATS is reachable, here never), a
//! refused or idle one leaves none.

use std::{collections::BTreeSet, net::Ipv4Addr};

use berth_bus::{Bus, EventPublisher};
use berth_proto::network::v1 as pb;
use berth_types::{Actor, Event, EventType};

use super::Store;
use crate::ipam::{Ipv4Net, Pool};

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

fn pool() -> Vec<Pool> {
    let subnet: Ipv4Net = "10.9.0.0/29".parse().unwrap();
    vec![Pool {
        subnet,
        range: subnet,
        gateway: "10.9.0.1".parse().unwrap(),
        reserved: BTreeSet::new(),
    }]
}

fn endpoint(c: &str) -> impl FnOnce(Ipv4Addr, u8, Ipv4Addr) -> pb::Endpoint + '_ {
    move |ip, prefix, gw| pb::Endpoint {
        container_id: c.to_owned(),
        network_id: "n1".to_owned(),
        ipv4_address: ip.to_string(),
        ipv4_prefix_len: u32::from(prefix),
        gateway: gw.to_string(),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_connect_and_disconnect_are_stored_with_their_records() {
    let dir = tempfile::tempdir().unwrap();
    // NATS is not reachable: nothing leaves the outbox.
    let bus = Bus::connect("nats://127.0.0.1:1", "test").await.unwrap();
    let events = EventPublisher::spawn(bus, Default::default());
    let s = Store::open(dir.path()).unwrap();
    s.attach_events(events.clone()).unwrap();
    let n = pb::NetworkRecord {
        id: "n1".to_owned(),
        name: "a".to_owned(),
        driver: "bridge".to_owned(),
        ..Default::default()
    };
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
        s.add_endpoint_at(
            &n,
            c,
            &pool(),
            None,
            None,
            endpoint(c),
            &ev("connect", "n1"),
        )
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
