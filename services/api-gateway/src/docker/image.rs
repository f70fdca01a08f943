//! `GET /images/{name}/json`: Docker's image inspect JSON, rendered from the images service's
//! typed [`images::Image`].

use berth_proto::images::v1 as images;
use serde_json::{Map, Value, json};

/// What Go's zero `time.Time` marshals to: `Metadata.LastTagTime` of a never-tagged image.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// The image inspect object. `Variant` is null when the image has none; `OsVersion` appears
/// only when set; `Config` is null when the image config has no `config` section.
pub fn inspect(i: &images::Image) -> Value {
    let mut graph = Map::new();
    if !i.upper_dir.is_empty() {
        graph.insert("UpperDir".to_owned(), json!(i.upper_dir));
    }
    if !i.lower_dir.is_empty() {
        graph.insert("LowerDir".to_owned(), json!(i.lower_dir));
    }
    let mut v = json!({
        "Id": i.id,
        "RepoTags": i.repo_tags,
        "RepoDigests": i.repo_digests,
        "Parent": i.parent,
        "Comment": i.comment,
        "Created": i.created,
        "DockerVersion": i.docker_version,
        "Author": i.author,
        "Config": i.config.as_ref().map(config),
        "Architecture": i.architecture,
        "Variant": (!i.variant.is_empty()).then_some(&i.variant),
        "Os": i.os,
        "Size": i.size,
        "GraphDriver": {"Name": "overlay2", "Data": graph},
        "RootFS": {"Type": "layers", "Layers": i.layers},
        "Metadata": {
            "LastTagTime": if i.last_tag_time.is_empty() { ZERO_TIME } else { &i.last_tag_time },
        },
    });
    if !i.os_version.is_empty() {
        v["OsVersion"] = json!(i.os_version);
    }
    v
}

/// The image's `Config` (moby's DockerOCIImageConfig): empty fields are left out, as Go's
/// `omitempty` does, except that a present `Entrypoint`, `Cmd` or `Shell` shows even when empty.
pub fn config(c: &images::ImageConfig) -> Value {
    let mut m = Map::new();
    let mut put = |key: &str, v: Value| {
        m.insert(key.to_owned(), v);
    };
    let set = |keys: &[String]| -> Value {
        Value::Object(keys.iter().map(|k| (k.clone(), json!({}))).collect())
    };
    if !c.user.is_empty() {
        put("User", json!(c.user));
    }
    if !c.exposed_ports.is_empty() {
        put("ExposedPorts", set(&c.exposed_ports));
    }
    if !c.env.is_empty() {
        put("Env", json!(c.env));
    }
    if let Some(e) = &c.entrypoint {
        put("Entrypoint", json!(e.values));
    }
    if let Some(cmd) = &c.cmd {
        put("Cmd", json!(cmd.values));
    }
    if !c.volumes.is_empty() {
        put("Volumes", set(&c.volumes));
    }
    if !c.working_dir.is_empty() {
        put("WorkingDir", json!(c.working_dir));
    }
    if !c.labels.is_empty() {
        put("Labels", json!(c.labels));
    }
    if !c.stop_signal.is_empty() {
        put("StopSignal", json!(c.stop_signal));
    }
    if c.args_escaped {
        put("ArgsEscaped", json!(true));
    }
    if let Some(h) = &c.healthcheck {
        put("Healthcheck", health(h));
    }
    if !c.on_build.is_empty() {
        put("OnBuild", json!(c.on_build));
    }
    if let Some(s) = &c.shell {
        put("Shell", json!(s.values));
    }
    Value::Object(m)
}

/// `Healthcheck` (moby's HealthConfig, every field `omitempty`).
fn health(h: &images::HealthConfig) -> Value {
    let mut m = Map::new();
    if !h.test.is_empty() {
        m.insert("Test".to_owned(), json!(h.test));
    }
    for (key, n) in [
        ("Interval", h.interval),
        ("Timeout", h.timeout),
        ("StartPeriod", h.start_period),
        ("StartInterval", h.start_interval),
        ("Retries", h.retries),
    ] {
        if n != 0 {
            m.insert(key.to_owned(), json!(n));
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn busybox() -> images::Image {
        images::Image {
            id: "sha256:aa".to_owned(),
            repo_tags: vec!["busybox:latest".to_owned()],
            repo_digests: vec!["busybox@sha256:bb".to_owned()],
            created: "2024-09-26T21:31:42Z".to_owned(),
            config: Some(images::ImageConfig {
                env: vec!["PATH=/bin".to_owned()],
                cmd: Some(images::StringList {
                    values: vec!["sh".to_owned()],
                }),
                ..Default::default()
            }),
            architecture: "amd64".to_owned(),
            os: "linux".to_owned(),
            size: 4_261_550,
            layers: vec!["sha256:cc".to_owned(), "sha256:dd".to_owned()],
            upper_dir: "/l/2/diff".to_owned(),
            lower_dir: "/l/1/diff".to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn renders_what_the_service_rendered() {
        let v = inspect(&busybox());
        let want = json!({
            "Id": "sha256:aa",
            "RepoTags": ["busybox:latest"],
            "RepoDigests": ["busybox@sha256:bb"],
            "Parent": "",
            "Comment": "",
            "Created": "2024-09-26T21:31:42Z",
            "DockerVersion": "",
            "Author": "",
            "Config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]},
            "Architecture": "amd64",
            "Variant": null,
            "Os": "linux",
            "Size": 4_261_550,
            "GraphDriver": {"Name": "overlay2", "Data": {"UpperDir": "/l/2/diff", "LowerDir": "/l/1/diff"}},
            "RootFS": {"Type": "layers", "Layers": ["sha256:cc", "sha256:dd"]},
            "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
        });
        assert_eq!(v, want);
        assert!(v.get("OsVersion").is_none());
    }

    #[test]
    fn optional_parts() {
        let mut i = busybox();
        i.variant = "v8".to_owned();
        i.os_version = "10.0".to_owned();
        i.last_tag_time = "2025-01-02T03:04:05Z".to_owned();
        i.lower_dir.clear();
        i.config = None;
        let v = inspect(&i);
        assert_eq!(v["Variant"], "v8");
        assert_eq!(v["OsVersion"], "10.0");
        assert_eq!(v["Metadata"]["LastTagTime"], "2025-01-02T03:04:05Z");
        assert_eq!(v["GraphDriver"]["Data"], json!({"UpperDir": "/l/2/diff"}));
        assert_eq!(v["Config"], Value::Null);
        i.upper_dir.clear();
        assert_eq!(inspect(&i)["GraphDriver"]["Data"], json!({}));
    }

    #[test]
    fn config_fields() {
        let c = images::ImageConfig {
            user: "nobody".to_owned(),
            exposed_ports: vec!["53/udp".to_owned(), "80/tcp".to_owned()],
            entrypoint: Some(images::StringList { values: vec![] }),
            volumes: vec!["/data".to_owned()],
            working_dir: "/srv".to_owned(),
            labels: [("k".to_owned(), "v".to_owned())].into(),
            stop_signal: "SIGINT".to_owned(),
            args_escaped: true,
            healthcheck: Some(images::HealthConfig {
                test: vec!["CMD-SHELL".to_owned(), "true".to_owned()],
                interval: 30_000_000_000,
                retries: 3,
                ..Default::default()
            }),
            on_build: vec!["RUN x".to_owned()],
            shell: Some(images::StringList {
                values: vec!["/bin/bash".to_owned(), "-c".to_owned()],
            }),
            ..Default::default()
        };
        assert_eq!(
            config(&c),
            json!({
                "User": "nobody",
                "ExposedPorts": {"53/udp": {}, "80/tcp": {}},
                "Entrypoint": [],
                "Volumes": {"/data": {}},
                "WorkingDir": "/srv",
                "Labels": {"k": "v"},
                "StopSignal": "SIGINT",
                "ArgsEscaped": true,
                "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 30_000_000_000i64, "Retries": 3},
                "OnBuild": ["RUN x"],
                "Shell": ["/bin/bash", "-c"],
            })
        );
        assert_eq!(config(&images::ImageConfig::default()), json!({}));
    }
}
