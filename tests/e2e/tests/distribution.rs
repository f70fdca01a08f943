//! `GET /distribution/{name}/json` through docker-py's `images.get_registry_data`, against a
//! private registry: an index answers its descriptor and its platforms, an image manifest the
//! platform of its config, a missing tag a 404; nothing is pulled.

use std::process::Command;

use berth_testutil::{
    Engine, EngineOptions, MediaTypes, Registry,
    images::{busybox_layout, two_platform_index},
    push_layout, run, text,
};

/// docker-py's view of `reference`: `media digest size platform...` on one line, or the error.
fn registry_data(engine: &Engine, reference: &str) -> String {
    let script = r#"
import sys, docker
c = docker.DockerClient(base_url=sys.argv[1], version="auto")
try:
    d = c.images.get_registry_data(sys.argv[2])
except docker.errors.NotFound as e:
    print("NotFound", e.explanation)
else:
    a = d.attrs
    plats = ["/".join(x for x in (p["os"], p["architecture"], p.get("variant", "")) if x) for p in a["Platforms"]]
    print(a["Descriptor"]["mediaType"], d.id, a["Descriptor"]["size"], *plats, d.has_platform("linux/amd64"))
"#;
    let out = run(Command::new("python3").args(["-c", script, &engine.docker_host, reference]));
    let (o, e) = text(&out);
    assert!(out.status.success(), "{o}\n{e}");
    o.trim().to_owned()
}

#[test]
fn registry_data_without_a_pull() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let index = two_platform_index(&dir.path().join("index"), MediaTypes::Oci);
    push_layout(&index.layout, "multi:latest", &reg, None).unwrap();
    let single = busybox_layout(&dir.path().join("single"), MediaTypes::Docker);
    push_layout(&single.layout, "busybox:latest", &reg, None).unwrap();
    let engine = Engine::up(EngineOptions::default());

    assert_eq!(
        registry_data(&engine, &reg.image("multi:latest")),
        format!(
            "{} {} {} linux/amd64 linux/arm64/v8 True",
            index.media_type, index.digest, index.size
        )
    );
    assert_eq!(
        registry_data(&engine, &reg.image("busybox")),
        format!(
            "{} {} {} linux/amd64 True",
            single.manifest_media_type, single.manifest_digest, single.manifest_size
        )
    );
    let missing = registry_data(&engine, &reg.image("busybox:nope"));
    assert!(
        missing.starts_with("NotFound") && missing.contains("manifest unknown"),
        "{missing}"
    );
    // Nothing was pulled.
    assert_eq!(engine.docker_ok(&["images", "-q"]).trim(), "");
}
