//! `docker load` of an archive in the layout before Docker 1.10 (`repositories`, `<id>/json`,
//! `<id>/layer.tar`, no `manifest.json`), as SDK test fixtures still ship them: loaded as
//! dockerd loads it, each tag with its chain of parents, and runnable.

use berth_testutil::{
    Engine, EngineOptions,
    images::{Entry, busybox_entries, layer_tar},
};
use serde_json::json;

fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

#[test]
fn a_pre_1_10_archive_loads_and_runs() {
    let (base, top) = ("a1".repeat(32), "b2".repeat(32));
    let v1 = |id: &str, parent: Option<&str>, cmd: &str| {
        let mut v = json!({
            "id": id, "created": "2015-06-01T00:00:00Z", "architecture": "amd64", "os": "linux",
            "container_config": {"Cmd": ["/bin/sh", "-c", cmd]},
            "config": {"Cmd": ["cat", "/data/b.txt"], "Env": ["PATH=/bin"]},
        });
        if let Some(p) = parent {
            v["parent"] = json!(p);
        }
        v.to_string().into_bytes()
    };
    let archive = tar_of(&[
        (format!("{base}/VERSION"), b"1.0".to_vec()),
        (
            format!("{base}/json"),
            v1(&base, None, "#(nop) ADD busybox"),
        ),
        (format!("{base}/layer.tar"), layer_tar(&busybox_entries())),
        (format!("{top}/json"), v1(&top, Some(&base), "echo beta")),
        (
            format!("{top}/layer.tar"),
            layer_tar(&[
                Entry::dir("data", 0o755),
                Entry::file("data/b.txt", 0o644, "beta\n"),
            ]),
        ),
        (
            "repositories".to_owned(),
            json!({"oldformat": {"v1": top}}).to_string().into_bytes(),
        ),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.tar");
    std::fs::write(&path, archive).unwrap();

    let engine = Engine::up(EngineOptions::default());
    let out = engine.docker_ok(&["load", "-i", path.to_str().unwrap()]);
    assert!(out.contains("Loaded image: oldformat:v1"), "{out}");
    let history = engine.docker_ok(&[
        "history",
        "--no-trunc",
        "--format",
        "{{.CreatedBy}}",
        "oldformat:v1",
    ]);
    assert_eq!(
        history.lines().collect::<Vec<_>>(),
        ["/bin/sh -c echo beta", "/bin/sh -c #(nop) ADD busybox"]
    );
    let ran = engine.docker_ok(&["run", "--rm", "--network", "none", "oldformat:v1"]);
    assert_eq!(ran, "beta\n");
    engine.docker_ok(&["rmi", "oldformat:v1"]);
}
