//! `docker load` of an archive in the layout before Docker 1.10 (root: layers are unpacked
//! with their owners).

use berth_types::Digest;
use serde_json::json;

use crate::archive_tests::service;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pre_1_10_archive_loads_each_tag_with_its_parents() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path()).await;
    let (base, top) = ("1".repeat(64), "2".repeat(64));
    let base_layer = tar_of(&[("etc/hostname", b"old\n")]);
    let top_layer = tar_of(&[("data/b.txt", b"beta\n")]);
    let base_json = json!({
        "id": base, "created": "2015-06-01T00:00:00Z", "architecture": "amd64", "os": "linux",
        "container_config": {"Cmd": ["/bin/sh", "-c", "#(nop) ADD file in /"]},
        "config": {"Cmd": ["sh"]}, "Size": 4,
    });
    let top_json = json!({
        "id": top, "parent": base, "created": "2015-06-02T00:00:00Z", "author": "someone",
        "architecture": "amd64", "os": "linux",
        "container_config": {"Cmd": ["/bin/sh", "-c", "echo beta > /data/b.txt"]},
        "config": {"Cmd": ["sh"], "Env": ["A=1"]}, "Size": 5,
    });
    let repositories = json!({"old": {"v1": top, "base": base}});
    let (bj, tj, rj) = (
        base_json.to_string(),
        top_json.to_string(),
        repositories.to_string(),
    );
    let archive = tar_of(&[
        (&format!("{base}/VERSION"), b"1.0"),
        (&format!("{base}/json"), bj.as_bytes()),
        (&format!("{base}/layer.tar"), &base_layer),
        (&format!("{top}/VERSION"), b"1.0"),
        (&format!("{top}/json"), tj.as_bytes()),
        (&format!("{top}/layer.tar"), &top_layer),
        ("repositories", rj.as_bytes()),
    ]);

    let lines = svc.load(&archive[..]).unwrap();
    assert_eq!(
        lines,
        ["Loaded image: old:base\n", "Loaded image: old:v1\n"]
    );
    let rec = svc.find("old:v1").unwrap();
    let diff_ids = [
        Digest::sha256_of(&base_layer),
        Digest::sha256_of(&top_layer),
    ];
    assert_eq!(rec.diff_ids, diff_ids);
    assert_eq!(svc.find("old:base").unwrap().diff_ids, diff_ids[..1]);
    let config: serde_json::Value =
        serde_json::from_slice(&svc.content.read(&rec.id).unwrap()).unwrap();
    for v1_only in ["id", "parent", "Size"] {
        assert!(config.get(v1_only).is_none(), "{v1_only} in {config}");
    }
    assert_eq!(config["config"]["Env"], json!(["A=1"]));
    assert_eq!(config["rootfs"]["type"], "layers");
    assert_eq!(
        config["history"][1]["created_by"],
        "/bin/sh -c echo beta > /data/b.txt"
    );
    assert_eq!(config["history"][1]["author"], "someone");
    assert_eq!(config["history"][0]["created"], "2015-06-01T00:00:00Z");

    // A tag naming an image the archive does not hold is refused, and leaves nothing.
    let other = tempfile::tempdir().unwrap();
    let svc = service(other.path()).await;
    let missing = json!({"old": {"v1": "3".repeat(64)}}).to_string();
    let e = svc
        .load(&tar_of(&[("repositories", missing.as_bytes())])[..])
        .unwrap_err();
    assert!(e.to_string().contains("is not in it"), "{e}");
    assert!(svc.store.images().unwrap().is_empty());
}
