//! import, save and load against real stores in temporary directories (root: layers are
//! unpacked with their owners): round trips, Docker's legacy archive format, and bad archives
//! that must leave nothing behind.

use std::{io::Write, path::Path, sync::Arc};

use berth_types::Digest;
use serde_json::json;

use crate::{
    ImagesError, compression::Compression, import::ImportSpec, service::ImageService,
    store::ImageRecord,
};

pub(crate) async fn service(dir: &Path) -> Arc<ImageService> {
    let bus = berth_bus::Bus::connect("nats://127.0.0.1:1", "test")
        .await
        .unwrap();
    let events = berth_bus::EventPublisher::spawn(bus, Default::default());
    let cfg = berth_config::DaemonConfig::parse(Path::new("d.json"), "{}").unwrap();
    ImageService::open(dir, &cfg, events).unwrap()
}

fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

fn rootfs() -> Vec<u8> {
    tar_of(&[("etc/hostname", b"imported\n"), ("data/a.txt", b"alpha\n")])
}

fn import(svc: &ImageService, repo: &str, changes: &[&str], body: &[u8]) -> ImageRecord {
    let spec = ImportSpec {
        repo: repo.to_owned(),
        changes: changes.iter().map(|c| (*c).to_owned()).collect(),
        source: "-".to_owned(),
        ..Default::default()
    };
    svc.import(spec.plan().unwrap(), body).unwrap()
}

fn save(svc: &ImageService, names: &[&str]) -> Vec<u8> {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let plan = svc.plan_save(&names).unwrap();
    let mut out = Vec::new();
    svc.write_save(&plan, &mut out).unwrap();
    out
}

fn entries(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut a = tar::Archive::new(archive);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let p = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut data).unwrap();
            (p, data)
        })
        .collect()
}

/// Nothing half-written, nothing unreferenced: no ingest file, no temporary layer, and only
/// the blobs and layers the images use.
pub(crate) fn assert_clean(dir: &Path, svc: &ImageService) {
    let ingest: Vec<_> = std::fs::read_dir(dir.join("ingest")).unwrap().collect();
    assert!(ingest.is_empty(), "ingest: {ingest:?}");
    let images = svc.store.images().unwrap();
    let mut used: Vec<Digest> = images
        .iter()
        .flat_map(|i| i.blobs.iter().cloned().chain([i.id.clone()]))
        .collect();
    used.sort_by_key(ToString::to_string);
    used.dedup();
    let mut stored = svc.content.list();
    stored.sort_by_key(ToString::to_string);
    assert_eq!(stored, used, "blobs");
    let mut layer_dirs: Vec<String> = std::fs::read_dir(dir.join("overlay2"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    layer_dirs.sort();
    let mut chains: Vec<String> = images
        .iter()
        .flat_map(|i| i.chain.iter().map(|c| c.hex().to_owned()))
        .collect();
    chains.sort();
    chains.dedup();
    assert_eq!(layer_dirs, chains, "layers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_then_save_then_load_into_another_store() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = service(d1.path()).await;
    let tar = rootfs();
    let rec = import(
        &a,
        "test/imported:v1",
        &["CMD [\"sh\"]", "ENV A=1", "WORKDIR /data", "LABEL k=v"],
        &gzip(&tar),
    );
    assert_eq!(rec.diff_ids, [Digest::sha256_of(&tar)]);
    assert_eq!(rec.repo_tags, ["docker.io/test/imported:v1"]);
    let config: serde_json::Value =
        serde_json::from_slice(&a.content.read(&rec.id).unwrap()).unwrap();
    assert_eq!(config["config"]["Cmd"], json!(["sh"]));
    assert_eq!(config["config"]["Env"], json!(["A=1"]));
    assert_eq!(config["config"]["WorkingDir"], "/data");
    assert_eq!(config["config"]["Labels"], json!({"k": "v"}));
    assert_eq!(config["comment"], "Imported from -");
    assert_eq!(config["history"][0]["comment"], "Imported from -");
    assert_eq!(
        std::fs::read(a.layers.diff_dir(&rec.chain[0]).join("data/a.txt")).unwrap(),
        b"alpha\n"
    );
    // The gzip body is the layer blob, as uploaded.
    let m = a.complete_manifest(&rec).unwrap();
    assert_eq!(
        m.layers[0].media_type,
        Compression::Gzip.layer_media_type(false)
    );
    assert_clean(d1.path(), &a);

    let archive = save(&a, &["test/imported:v1"]);
    let files = entries(&archive);
    let names: Vec<&str> = files.iter().map(|(p, _)| p.as_str()).collect();
    for want in ["index.json", "manifest.json", "oci-layout", "repositories"] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let get = |n: &str| &files.iter().find(|(p, _)| p == n).unwrap().1;
    let legacy: serde_json::Value = serde_json::from_slice(get("manifest.json")).unwrap();
    assert_eq!(legacy[0]["RepoTags"], json!(["test/imported:v1"]));
    assert_eq!(
        legacy[0]["Config"],
        format!("blobs/sha256/{}", rec.id.hex())
    );
    let index: serde_json::Value = serde_json::from_slice(get("index.json")).unwrap();
    let annotations = &index["manifests"][0]["annotations"];
    assert_eq!(
        annotations["io.containerd.image.name"],
        "docker.io/test/imported:v1"
    );
    assert_eq!(annotations["org.opencontainers.image.ref.name"], "v1");
    assert_eq!(index["manifests"][0]["digest"], m.digest.to_string());
    for (path, data) in &files {
        if let Some(hex) = path.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(Digest::sha256_of(data).hex(), hex, "{path}");
        }
    }

    let b = service(d2.path()).await;
    let lines = b.load(&archive[..]).unwrap();
    assert_eq!(lines, ["Loaded image: test/imported:v1\n"]);
    let loaded = b.find("test/imported:v1").unwrap();
    assert_eq!(loaded.id, rec.id);
    assert_eq!(loaded.chain, rec.chain);
    assert_eq!(b.complete_manifest(&loaded).unwrap().digest, m.digest);
    assert_clean(d2.path(), &b);
    // Loading again changes nothing.
    assert_eq!(b.load(&archive[..]).unwrap(), lines);
    assert_eq!(b.store.count().unwrap(), 1);
    assert_clean(d2.path(), &b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_images_and_an_untagged_one_in_one_archive() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = service(d1.path()).await;
    let one = import(&a, "one", &[], &rootfs());
    let two = import(&a, "two:x", &["CMD [\"true\"]"], &rootfs());
    let three = import(&a, "", &["USER nobody"], &gzip(&rootfs()));
    assert_eq!(one.chain, two.chain, "one layer, shared");
    let archive = save(&a, &["one", "two:x", three.id.hex()]);
    let b = service(d2.path()).await;
    let mut lines = b.load(&archive[..]).unwrap();
    lines.sort();
    assert_eq!(
        lines,
        [
            format!("Loaded image ID: {}\n", three.id),
            "Loaded image: one:latest\n".to_owned(),
            "Loaded image: two:x\n".to_owned(),
        ]
    );
    for r in [&one, &two, &three] {
        assert_eq!(b.find(&r.id.to_string()).unwrap().diff_ids, r.diff_ids);
    }
    assert_clean(d2.path(), &b);
}

/// `docker save` of dockerd 20.10: `<v1 id>/layer.tar` (uncompressed), `<v1 id>/json` and
/// `VERSION`, the config as `<id>.json`, a second image reusing the layer through a symlink,
/// and `manifest.json` last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_docker_archive() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let layer = rootfs();
    let diff_id = Digest::sha256_of(&layer);
    let config = |cmd: &str| {
        serde_json::to_vec(&json!({
            "architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": [cmd]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        }))
        .unwrap()
    };
    let (c1, c2) = (config("sh"), config("true"));
    let (id1, id2) = (Digest::sha256_of(&c1), Digest::sha256_of(&c2));
    let v1 = "a".repeat(64);
    let v2 = "b".repeat(64);
    let manifest = json!([
        {"Config": format!("{}.json", id1.hex()), "RepoTags": ["legacy:1"], "Layers": [format!("{v1}/layer.tar")]},
        {"Config": format!("{}.json", id2.hex()), "RepoTags": null, "Layers": [format!("{v2}/layer.tar")]},
    ]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    add(&format!("{v1}/VERSION"), b"1.0");
    add(&format!("{v1}/json"), b"{}");
    add(&format!("{v1}/layer.tar"), &layer);
    add(&format!("{}.json", id1.hex()), &c1);
    add(&format!("{}.json", id2.hex()), &c2);
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_link(
        &mut h,
        format!("{v2}/layer.tar"),
        format!("../{v1}/layer.tar"),
    )
    .unwrap();
    let mut add = |path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    };
    add("manifest.json", &serde_json::to_vec(&manifest).unwrap());
    add("repositories", br#"{"legacy":{"1":"aaaa"}}"#);
    let archive = b.into_inner().unwrap();

    let lines = svc.load(&archive[..]).unwrap();
    assert_eq!(
        lines,
        [
            "Loaded image: legacy:1\n".to_owned(),
            format!("Loaded image ID: {id2}\n")
        ]
    );
    let rec = svc.find("legacy:1").unwrap();
    assert_eq!(rec.id, id1);
    assert_eq!(rec.diff_ids, std::slice::from_ref(&diff_id));
    assert_eq!(svc.find(&id2.to_string()).unwrap().chain, rec.chain);
    // A manifest was written for it: the layer is the uncompressed tar.
    let m = svc.complete_manifest(&rec).unwrap();
    assert_eq!(m.layers[0].digest, diff_id);
    assert_eq!(
        m.layers[0].media_type,
        Compression::None.layer_media_type(false)
    );
    assert_clean(dir.path(), &svc);
    // Compressed as a whole (docker save | gzip), it loads too.
    let again = tempfile::tempdir().unwrap();
    let other = service(again.path()).await;
    assert_eq!(other.load(&gzip(&archive)[..]).unwrap(), lines);

    // A push needs it compressed: gzipped into the store once, then the same manifest.
    let pushed = svc.push_manifest(&rec).unwrap();
    assert_eq!(
        pushed.layers[0].media_type,
        Compression::Gzip.layer_media_type(false)
    );
    assert!(svc.content.exists(&pushed.layers[0].digest));
    let rec = svc.find("legacy:1").unwrap();
    assert_eq!(svc.push_manifest(&rec).unwrap().digest, pushed.digest);
    assert_clean(dir.path(), &svc);
}

fn err(r: Result<Vec<String>, ImagesError>) -> String {
    let e = r.unwrap_err();
    assert!(matches!(e, ImagesError::InvalidArgument(_)), "{e:?}");
    e.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_archives_are_refused_and_leave_nothing() {
    let (d1, d2) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = service(d1.path()).await;
    let rec = import(&a, "good", &[], &rootfs());
    let archive = save(&a, &["good"]);
    let b = service(d2.path()).await;

    assert!(err(b.load(&b"this is not a tar"[..])).contains("invalid"));
    assert!(err(b.load(&[0x42u8; 4096][..])).contains("invalid tar archive"));
    assert!(err(b.load(&b""[..])).contains("empty"));
    assert!(err(b.load(&tar_of(&[("hello.txt", b"hi")])[..])).contains("manifest.json"));

    // A blob whose content is not what its name says.
    let mut files = entries(&archive);
    let layer = format!(
        "blobs/sha256/{}",
        a.complete_manifest(&rec).unwrap().layers[0].digest.hex()
    );
    files
        .iter_mut()
        .find(|(p, _)| *p == layer)
        .unwrap()
        .1
        .extend_from_slice(b"tampered");
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, d)| (p.as_str(), &d[..])).collect();
    assert!(err(b.load(&tar_of(&files)[..])).contains("does not hold the blob its name says"));

    // A layer that is not what the config's diff_ids say: unpacked, refused, removed.
    let other = rootfs_with("other");
    let config = serde_json::to_vec(&json!({"os": "linux", "architecture": "amd64",
        "rootfs": {"type": "layers", "diff_ids": [Digest::sha256_of(rootfs()).to_string()]}}))
    .unwrap();
    let manifest = json!([{"Config": "c.json", "RepoTags": ["liar:1"], "Layers": ["l/layer.tar"]}]);
    let liar = tar_of(&[
        ("l/layer.tar", &other),
        ("c.json", &config),
        ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ]);
    assert!(err(b.load(&liar[..])).contains("does not match the image's diff_id"));

    // More layers than diff_ids, and a tag that is no reference.
    let manifest = json!([{"Config": "c.json", "RepoTags": ["x:1"], "Layers": ["l/layer.tar", "l/layer.tar"]}]);
    let extra = tar_of(&[
        ("l/layer.tar", &rootfs()),
        ("c.json", &config),
        ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ]);
    assert!(err(b.load(&extra[..])).contains("2 layers but its config lists 1"));
    let manifest =
        json!([{"Config": "c.json", "RepoTags": ["UPPER:1"], "Layers": ["l/layer.tar"]}]);
    let bad_tag = tar_of(&[
        ("l/layer.tar", &rootfs()),
        ("c.json", &config),
        ("manifest.json", &serde_json::to_vec(&manifest).unwrap()),
    ]);
    assert!(err(b.load(&bad_tag[..])).contains("invalid reference"));
    let missing = tar_of(&[("manifest.json", &serde_json::to_vec(&manifest).unwrap())]);
    assert!(err(b.load(&missing[..])).contains("not in it"));

    assert_eq!(b.store.count().unwrap(), 0);
    assert!(b.content.list().is_empty(), "{:?}", b.content.list());
    assert_clean(d2.path(), &b);
}

fn rootfs_with(content: &str) -> Vec<u8> {
    tar_of(&[("etc/hostname", content.as_bytes())])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_refuses_bad_input_before_and_after_reading() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let plan = |repo: &str, changes: &[&str]| {
        ImportSpec {
            repo: repo.to_owned(),
            changes: changes.iter().map(|c| (*c).to_owned()).collect(),
            source: "-".to_owned(),
            ..Default::default()
        }
        .plan()
    };
    assert!(plan("UPPER", &[]).is_err());
    assert!(
        plan(
            "x@sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            &[]
        )
        .unwrap_err()
        .to_string()
        .contains("digest")
    );
    assert_eq!(
        plan("x", &["RUN true"]).unwrap_err().to_string(),
        "RUN is not a valid change command"
    );
    for body in [&b""[..], b"garbage that is not a tar", &[0x42u8; 2048]] {
        let e = svc.import(plan("x", &[]).unwrap(), body).unwrap_err();
        assert!(matches!(e, ImagesError::InvalidArgument(_)), "{e:?}");
    }
    let escape = {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        let name = b"../escape";
        h.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        b.into_inner().unwrap()
    };
    assert!(svc.import(plan("x", &[]).unwrap(), &escape[..]).is_err());
    assert_eq!(svc.store.count().unwrap(), 0);
    assert_clean(dir.path(), &svc);
}
