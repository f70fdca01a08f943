//! `registry-mirrors`: a Docker Hub name is pulled from the mirror. The mirror holds the image,
//! so nothing is fetched from Docker Hub itself (no traffic leaves the machine).

use berth_testutil::{
    Engine, EngineOptions, Registry,
    images::{MediaTypes, busybox_layout, push_layout},
};

#[test]
fn docker_hub_names_are_pulled_from_the_mirror() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let info = busybox_layout(&dir.path().join("busybox"), MediaTypes::Docker);
    push_layout(&info.layout, "library/busybox:latest", &registry, None).unwrap();

    let engine = Engine::up(EngineOptions {
        config: Some(serde_json::json!({ "registry-mirrors": [registry.url()] })),
        ..Default::default()
    });
    let out = engine.docker_ok(&["pull", "busybox"]);
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    let id = engine.docker_ok(&["image", "inspect", "busybox", "--format", "{{.Id}}"]);
    assert_eq!(id.trim(), info.config_digest);
    let mirrors = engine.docker_ok(&["info", "--format", "{{json .RegistryConfig.Mirrors}}"]);
    assert!(mirrors.contains(&registry.url()), "{mirrors}");
}

/// `docker pull --all-tags` of a Docker Hub name lists the tags at the mirror too, as dockerd
/// does (Docker Hub itself is not reachable from the tests).
#[test]
fn all_tags_of_a_docker_hub_name_are_listed_and_pulled_from_the_mirror() {
    let registry = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let info = busybox_layout(&dir.path().join("busybox"), MediaTypes::Docker);
    for tag in ["latest", "v2"] {
        push_layout(
            &info.layout,
            &format!("library/busybox:{tag}"),
            &registry,
            None,
        )
        .unwrap();
    }
    let engine = Engine::up(EngineOptions {
        config: Some(serde_json::json!({ "registry-mirrors": [registry.url()] })),
        ..Default::default()
    });
    let out = engine.docker_ok(&["pull", "--all-tags", "busybox"]);
    assert!(out.contains("busybox:v2"), "{out}");
    let tags = engine.docker_ok(&["images", "busybox", "--format", "{{.Tag}}"]);
    let mut tags: Vec<&str> = tags.lines().collect();
    tags.sort();
    assert_eq!(tags, ["latest", "v2"]);
}
