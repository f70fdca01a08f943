//! pause with a freezer the test holds: the records' lock stays free while the cgroup
//! freezes, and a container that ends meanwhile is thawed and not recorded as paused.

use std::sync::{Arc, Mutex};

use berth_types::ServiceName;
use tokio::sync::Notify;

use crate::{
    container::{Container, Status, tests::sample},
    lifecycle::Containers,
};

/// A runtime over a store in `dir`, with services and NATS that are never reached.
async fn containers(dir: &std::path::Path) -> Containers {
    let mut cfg = berth_config::DaemonConfig::parse(std::path::Path::new("t"), "{}").unwrap();
    cfg.exec_root = dir.join("run");
    let store = Arc::new(crate::store::Store::open(&dir.join("data")).unwrap());
    let channel = |s| berth_service::channel(&cfg.service_address(s), None).unwrap();
    let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
        .await
        .unwrap();
    let metrics = berth_telemetry::Metrics::new("runtime", "test");
    let events =
        berth_bus::EventPublisher::spawn(bus, berth_bus::PublisherMetrics::register(&metrics));
    Containers::new(
        store,
        channel(ServiceName::Images),
        channel(ServiceName::Network),
        channel(ServiceName::Volumes),
        events,
        &cfg,
        dir.join("data"),
    )
}

fn running(id: char, name: &str) -> Container {
    let mut c = sample(id, name);
    c.state.status = Status::Running;
    c.state.pid = 4242;
    c.state.exits = 3;
    c
}

/// A freezer that reports each call, then waits for the test to let it finish.
#[derive(Clone, Default)]
struct HeldFreezer {
    calls: Arc<Mutex<Vec<bool>>>,
    entered: Arc<Notify>,
    release: Arc<Notify>,
}

/// What the freezer's calls answer.
type Frozen = std::pin::Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

impl HeldFreezer {
    fn freeze(&self) -> impl Fn(&Container, bool) -> Frozen + use<> {
        let me = self.clone();
        move |_c, frozen| {
            let me = me.clone();
            Box::pin(async move {
                me.calls.lock().unwrap().push(frozen);
                if frozen {
                    me.entered.notify_one();
                    me.release.notified().await;
                }
                Ok(())
            })
        }
    }
}

#[tokio::test]
async fn the_records_stay_free_while_a_container_freezes() {
    let dir = tempfile::tempdir().unwrap();
    let cs = Arc::new(containers(dir.path()).await);
    let a = running('a', "a");
    cs.store.put(&a).unwrap();
    cs.store.put(&sample('b', "b")).unwrap();
    let f = HeldFreezer::default();
    let pausing = {
        let (cs, freeze, id) = (cs.clone(), f.freeze(), a.id.clone());
        tokio::spawn(async move { cs.pause_with(&id, freeze).await })
    };
    f.entered.notified().await;
    // Frozen halfway: the rest of the engine goes on (the records' lock is what starts,
    // exits and creates of other containers take; inspect and ps read the store).
    assert!(
        cs.lock.try_lock().is_ok(),
        "the records' lock is held while the cgroup freezes"
    );
    assert_eq!(cs.find("b").unwrap().name, "/b");
    assert!(!cs.find("a").unwrap().state.paused);
    f.release.notify_one();
    pausing.await.unwrap().unwrap();
    assert!(cs.find("a").unwrap().state.paused);
    assert_eq!(*f.calls.lock().unwrap(), [true]);
}

#[tokio::test]
async fn a_container_that_ends_while_freezing_is_thawed_and_not_paused() {
    let dir = tempfile::tempdir().unwrap();
    let cs = Arc::new(containers(dir.path()).await);
    let a = running('a', "a");
    cs.store.put(&a).unwrap();
    let f = HeldFreezer::default();
    let pausing = {
        let (cs, freeze, id) = (cs.clone(), f.freeze(), a.id.clone());
        tokio::spawn(async move { cs.pause_with(&id, freeze).await })
    };
    f.entered.notified().await;
    // Its exit is recorded meanwhile (which takes the records' lock).
    {
        let _guard = cs.lock.try_lock().expect("the records' lock is free");
        let mut ended = cs.find("a").unwrap();
        ended.state.status = Status::Exited;
        ended.state.exits += 1;
        cs.store.put(&ended).unwrap();
    }
    f.release.notify_one();
    let e = pausing.await.unwrap().unwrap_err();
    assert_eq!(e.to_string(), format!("container {} is not running", a.id));
    assert!(!cs.find("a").unwrap().state.paused);
    assert_eq!(*f.calls.lock().unwrap(), [true, false]);
}
