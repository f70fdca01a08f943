//! list, inspect and prune with typed filters, against a real store in a temporary directory
//! (root: imported layers are unpacked with their owners).

use std::path::Path;

use berth_proto::images::v1 as pb;

use crate::{import::ImportSpec, service::ImageService, store::ImageRecord};

async fn service(dir: &Path) -> std::sync::Arc<ImageService> {
    let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
        .await
        .unwrap();
    let events = berth_bus::EventPublisher::spawn(bus, Default::default());
    let cfg = berth_config::DaemonConfig::parse(Path::new("d.json"), "{}").unwrap();
    ImageService::open(dir, &cfg, events).unwrap()
}

/// A one-file rootfs (distinct per `name`, so each import is its own image).
fn import(svc: &ImageService, repo: &str, name: &str, changes: &[&str]) -> ImageRecord {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(name.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_entry_type(tar::EntryType::Regular);
    b.append_data(&mut h, "name", name.as_bytes()).unwrap();
    let spec = ImportSpec {
        repo: repo.to_owned(),
        changes: changes.iter().map(|c| (*c).to_owned()).collect(),
        source: "-".to_owned(),
        ..Default::default()
    };
    svc.import(spec.plan().unwrap(), &b.into_inner().unwrap()[..])
        .unwrap()
}

fn label(key: &str, value: Option<&str>) -> pb::LabelFilter {
    pb::LabelFilter {
        key: key.to_owned(),
        value: value.map(str::to_owned),
    }
}

fn ids(images: &[pb::ImageSummary]) -> Vec<String> {
    let mut ids: Vec<String> = images.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_and_prune_apply_typed_filters() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let web = import(&svc, "test/web:v1", "web", &["LABEL tier=front keep=1"]);
    let db = import(&svc, "test/db:v1", "db", &["LABEL tier=back"]);
    let loose = import(&svc, "", "loose", &["LABEL tier=back"]);
    let mut all = vec![web.id.to_string(), db.id.to_string(), loose.id.to_string()];
    all.sort();
    let list = |f: pb::ImageFilters| ids(&svc.list(false, &f).unwrap());

    assert_eq!(list(pb::ImageFilters::default()), all);
    let dangling = list(pb::ImageFilters {
        dangling: Some(true),
        ..Default::default()
    });
    assert_eq!(dangling, [loose.id.to_string()]);
    let back = list(pb::ImageFilters {
        labels: vec![label("tier", Some("back"))],
        dangling: Some(false),
        ..Default::default()
    });
    assert_eq!(back, [db.id.to_string()]);
    let by_key = list(pb::ImageFilters {
        labels: vec![label("keep", None)],
        ..Default::default()
    });
    assert_eq!(by_key, [web.id.to_string()]);
    let by_ref = list(pb::ImageFilters {
        references: vec!["test/w*".to_owned()],
        ..Default::default()
    });
    assert_eq!(by_ref, [web.id.to_string()]);
    let before_epoch = list(pb::ImageFilters {
        until: Some(0),
        ..Default::default()
    });
    assert!(before_epoch.is_empty());
    let err = svc
        .list(
            false,
            &pb::ImageFilters {
                before: vec!["nope".to_owned()],
                ..Default::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.to_string(), "No such image: nope");

    // Prune: only dangling images by default; `labels_not` spares the matching ones.
    let (deleted, _) = svc.prune(&pb::ImageFilters::default()).unwrap();
    assert!(
        deleted.iter().any(|d| d.deleted == loose.id.to_string()),
        "{deleted:?}"
    );
    let (deleted, _) = svc
        .prune(&pb::ImageFilters {
            dangling: Some(false),
            labels_not: vec![label("keep", Some("1"))],
            ..Default::default()
        })
        .unwrap();
    let gone: Vec<&str> = deleted.iter().map(|d| d.deleted.as_str()).collect();
    assert!(gone.contains(&db.id.to_string().as_str()), "{deleted:?}");
    assert_eq!(list(pb::ImageFilters::default()), [web.id.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_is_typed() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let rec = import(
        &svc,
        "test/app:v1",
        "app",
        &[
            "CMD [\"sh\"]",
            "ENV A=1",
            "WORKDIR /data",
            "LABEL k=v",
            "EXPOSE 8080",
            "HEALTHCHECK --interval=30s CMD true",
        ],
    );
    let i = svc.inspect("test/app:v1").unwrap();
    assert_eq!(i.id, rec.id.to_string());
    assert_eq!(i.repo_tags, ["test/app:v1"]);
    assert_eq!(i.comment, "Imported from -");
    assert_eq!(i.os, "linux");
    assert_eq!(i.layers, [rec.diff_ids[0].to_string()]);
    assert_eq!(
        i.upper_dir,
        svc.layers.diff_dir(&rec.chain[0]).display().to_string()
    );
    assert!(i.lower_dir.is_empty());
    let c = i.config.clone().unwrap();
    assert_eq!(
        c.cmd,
        Some(pb::StringList {
            values: vec!["sh".to_owned()]
        })
    );
    assert_eq!(c.entrypoint, None);
    assert_eq!(c.env, ["A=1"]);
    assert_eq!(c.working_dir, "/data");
    assert_eq!(c.labels.get("k").map(String::as_str), Some("v"));
    assert_eq!(c.exposed_ports, ["8080/tcp"]);
    let h = c.healthcheck.unwrap();
    assert_eq!(h.test, ["CMD-SHELL", "true"]);
    assert_eq!(h.interval, 30_000_000_000);

    assert!(i.last_tag_time.ends_with('Z'), "{}", i.last_tag_time);
    let untagged = import(&svc, "", "untagged", &[]);
    let u = svc.inspect(&untagged.id.to_string()).unwrap();
    assert!(u.last_tag_time.is_empty() && u.repo_tags.is_empty());
}

/// The classic builder's cache: intermediate images stay while the image below them lives, go
/// with the dangling image they lead to (prune) or the image removed (rmi, unless noprune).
#[tokio::test]
async fn intermediate_images_go_with_the_image_they_lead_to() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let base = import(&svc, "test/base:1", "base", &[]);
    let mid1 = import(&svc, "", "mid1", &[]);
    let mid2 = import(&svc, "", "mid2", &[]);
    let top = import(&svc, "test/top:1", "top", &[]);
    let stage_mid = import(&svc, "", "stage-mid", &[]);
    let stage = import(&svc, "", "stage", &[]);
    let link = |child: &ImageRecord, parent: &ImageRecord| {
        let mut c = svc.store.image(&child.id).unwrap().unwrap();
        c.parent = Some(parent.id.clone());
        svc.store.update(|tx| tx.put_image(&c)).unwrap();
    };
    link(&mid1, &base);
    link(&mid2, &mid1);
    link(&top, &mid2);
    link(&stage_mid, &base);
    link(&stage, &stage_mid);
    let exists = |r: &ImageRecord| svc.store.image(&r.id).unwrap().is_some();

    let (deleted, _) = svc.prune(&pb::ImageFilters::default()).unwrap();
    let deleted: Vec<&str> = deleted.iter().map(|d| d.deleted.as_str()).collect();
    assert!(
        deleted.contains(&stage.id.to_string().as_str()),
        "{deleted:?}"
    );
    assert!(
        deleted.contains(&stage_mid.id.to_string().as_str()),
        "{deleted:?}"
    );
    assert!(!exists(&stage) && !exists(&stage_mid));
    assert!(
        exists(&mid1) && exists(&mid2),
        "a tagged image's cache stays"
    );

    // prune -a: the built image with its cache, then its base, now without children; an
    // untagged image too.
    let loose = import(&svc, "", "loose", &[]);
    let (deleted, _) = svc
        .prune(&pb::ImageFilters {
            dangling: Some(false),
            ..Default::default()
        })
        .unwrap();
    assert!(!deleted.is_empty());
    for r in [&base, &mid1, &mid2, &top, &loose] {
        assert!(!exists(r), "{} left", r.id);
    }
}

/// docker rmi: the untagged parents go too, unless noprune; a tagged parent stays.
#[tokio::test]
async fn rmi_prunes_untagged_parents_unless_told_not_to() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let base = import(&svc, "test/base:1", "base", &[]);
    let mid1 = import(&svc, "", "mid1", &[]);
    let mid2 = import(&svc, "", "mid2", &[]);
    let top = import(&svc, "test/top:1", "top", &[]);
    for (child, parent) in [(&mid1, &base), (&mid2, &mid1), (&top, &mid2)] {
        let mut c = svc.store.image(&child.id).unwrap().unwrap();
        c.parent = Some(parent.id.clone());
        svc.store.update(|tx| tx.put_image(&c)).unwrap();
    }
    let exists = |r: &ImageRecord| svc.store.image(&r.id).unwrap().is_some();
    svc.remove_pruning("test/top:1", false, false).unwrap();
    assert!(!exists(&top) && exists(&mid2));
    svc.remove(&mid2.id.to_string(), false).unwrap();
    assert!(!exists(&mid2) && !exists(&mid1));
    assert!(exists(&base), "a tagged parent stays");
}

/// Image events as moby's `LogImageEvent` writes them: the image's labels beside `name` (which
/// wins over a label of that key), none once the image is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_events_carry_the_image_labels() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let rec = import(&svc, "test/lab:v1", "lab", &["LABEL team=blue name=label"]);
    let id = rec.id.to_string();
    let attrs = |action: &str, id: &str, name: &str| {
        let ev = svc.image_event(action, id, name).unwrap();
        ev.actor.attributes.into_iter().collect::<Vec<_>>()
    };
    let own = |v: &[(&str, &str)]| {
        v.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        attrs("tag", &id, "test/lab:v2"),
        own(&[("name", "test/lab:v2"), ("team", "blue")])
    );
    // A pull names the image by its reference.
    assert_eq!(
        attrs("pull", "test/lab:v1", "test/lab"),
        own(&[("name", "test/lab"), ("team", "blue")])
    );
    assert_eq!(attrs("delete", &id, &id), own(&[("name", &id)]));
    assert_eq!(attrs("prune", "", ""), own(&[]));
}
