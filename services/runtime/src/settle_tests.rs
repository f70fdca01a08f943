//! A release that hangs (a network service or a shim that accepts and never answers) holds up
//! only the container it is about: the records' lock is free meanwhile, and the exit's waiters
//! and a start or removal of that container wait for it.

use std::{
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use berth_config::{DaemonConfig, ServiceAddress};
use berth_proto::runtime::v1 as pb;
use tokio::{net::UnixListener, sync::mpsc, task::JoinHandle};

use crate::{
    container::{Container, Status},
    lifecycle::Containers,
    store::Store,
};

/// A server that accepts connections and never answers; each accept is reported. Aborting
/// the task closes them.
fn hanging_server(path: &Path) -> (JoinHandle<()>, mpsc::UnboundedReceiver<()>) {
    let listener = UnixListener::bind(path).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    (task, rx)
}

async fn containers(dir: &Path, network: &Path) -> Arc<Containers> {
    let store = Arc::new(Store::open(&dir.join("data")).unwrap());
    // NATS is not reachable: events stay in the outbox.
    let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
        .await
        .unwrap();
    let events = berth_bus::EventPublisher::spawn(bus, Default::default());
    store.attach_events(events.clone()).unwrap();
    let mut cfg = DaemonConfig::parse(Path::new("d.json"), "{}").unwrap();
    cfg.exec_root = dir.join("run");
    let channel = |p: &Path| berth_service::channel(&ServiceAddress::Unix(p.to_owned()), None);
    Arc::new(Containers::new(
        store,
        channel(&dir.join("images.sock")).unwrap(),
        channel(network).unwrap(),
        channel(&dir.join("volumes.sock")).unwrap(),
        events,
        &cfg,
        dir.join("data"),
    ))
}

fn record(c: &Containers, id: char, name: &str, status: Status) -> Container {
    let mut rec = crate::container::tests::sample(id, name);
    rec.state.status = status;
    c.store.create(&rec, &[]).unwrap().unwrap();
    rec
}

/// The records' lock is free (a rename of another container goes through) within a second.
async fn others_go_on(c: &Containers, other: &Container, new_name: &str) {
    let t = Instant::now();
    tokio::time::timeout(
        Duration::from_secs(5),
        c.rename(&pb::RenameRequest {
            id: other.id.clone(),
            name: new_name.to_owned(),
        }),
    )
    .await
    .expect("a rename of another container waited for the release")
    .unwrap();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// Whether `id`'s lock for a start or removal is still held back after a moment.
async fn held_back(c: &Containers, id: &str) -> bool {
    tokio::time::timeout(Duration::from_millis(200), c.lock_settled(id))
        .await
        .is_err()
}

#[tokio::test]
async fn an_exit_whose_network_detach_hangs_holds_up_no_other_container() {
    let dir = tempfile::tempdir().unwrap();
    let net_sock = dir.path().join("network.sock");
    let (server, mut accepted) = hanging_server(&net_sock);
    let c = containers(dir.path(), &net_sock).await;
    let a = record(&c, 'a', "a", Status::Running);
    let b = record(&c, 'b', "b", Status::Exited);
    // Its netns, so that the exit asks the network service to unplug it.
    std::fs::create_dir_all(&c.netns_dir).unwrap();
    std::fs::write(c.netns_path(&a.id), "").unwrap();

    let this = c.clone();
    let id = a.id.clone();
    let exit = tokio::spawn(async move {
        let rec = this.record_exit(&id, (3, String::new(), false)).await;
        this.release_run(&rec.unwrap().unwrap()).await;
    });
    // The Detach is under way, and hangs.
    tokio::time::timeout(Duration::from_secs(10), accepted.recv())
        .await
        .expect("no Detach came");

    // The exit is recorded (durably, before anything is released), the lock is free.
    let now = c.store.get(&a.id).unwrap().unwrap();
    assert_eq!((now.state.status, now.state.exit_code), (Status::Exited, 3));
    others_go_on(&c, &b, "b2").await;
    // Its waiters, and a start or removal of it, wait for the release.
    let soon = Instant::now() + Duration::from_millis(200);
    assert!(!c.wait_stopped(&a.id, Some(soon)).await.unwrap());
    assert!(held_back(&c, &a.id).await);

    // The network service answers (here: goes away): the release ends.
    server.abort();
    tokio::time::timeout(Duration::from_secs(10), exit)
        .await
        .expect("the release did not end")
        .unwrap();
    assert!(c.wait_stopped(&a.id, Some(Instant::now())).await.unwrap());
    assert!(!held_back(&c, &a.id).await);
    assert!(!c.netns_path(&a.id).exists());
}

#[tokio::test]
async fn a_hung_shim_holds_up_no_other_container() {
    let dir = tempfile::tempdir().unwrap();
    let c = containers(dir.path(), &dir.path().join("network.sock")).await;
    let a = record(&c, 'a', "a", Status::Exited);
    let b = record(&c, 'b', "b", Status::Exited);
    // A live "berth-shim" of a's bundle (its comm and its command line are what is checked)
    // whose socket accepts and never answers.
    let bundle = c.bundle(&a.id);
    std::fs::create_dir_all(&bundle).unwrap();
    let shim_sock = dir.path().join("shim.sock");
    let (server, mut accepted) = hanging_server(&shim_sock);
    std::fs::write(bundle.join("address"), shim_sock.display().to_string()).unwrap();
    let fake = dir.path().join("berth-shim");
    std::os::unix::fs::symlink("/bin/sh", &fake).unwrap();
    #[allow(clippy::disallowed_methods)] // a stand-in process is the point
    let mut shim = std::process::Command::new(&fake)
        .args(["-c", "read x", "berth-shim"])
        .arg(&bundle)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::fs::write(bundle.join("shim.pid"), shim.id().to_string()).unwrap();
    // Spawned means exec'd.
    assert!(crate::exits::shim_alive(&bundle));

    let this = c.clone();
    let id = a.id.clone();
    let release = tokio::spawn(async move { this.release_shim(&id).await });
    // Connected, then Delete sent: the second connection hangs.
    for _ in 0..2 {
        tokio::time::timeout(Duration::from_secs(10), accepted.recv())
            .await
            .expect("no Delete came");
    }
    others_go_on(&c, &b, "b2").await;
    assert!(held_back(&c, &a.id).await);

    server.abort();
    tokio::time::timeout(Duration::from_secs(10), release)
        .await
        .expect("the release did not end")
        .unwrap();
    assert!(!held_back(&c, &a.id).await);
    let _ = shim.kill();
    let _ = shim.wait();
}
