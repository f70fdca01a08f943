//! Deprecated: the Docker image inspect JSON for `InspectResponse.json`, which only the runtime
//! still reads (for the image's `Config` and `Size`). The gateway renders the API's JSON from
//! `InspectResponse.image` (`services/api-gateway/src/docker/image.rs`); this module is a frozen
//! copy of that rendering and goes, with the field, once the runtime reads `image`.

use berth_proto::images::v1 as pb;
use serde_json::{Map, Value, json};

/// The inspect JSON of `i`, as the gateway renders it.
pub(crate) fn render(i: &pb::Image) -> String {
    let mut graph = Map::new();
    if !i.upper_dir.is_empty() {
        graph.insert("UpperDir".to_owned(), json!(i.upper_dir));
    }
    if !i.lower_dir.is_empty() {
        graph.insert("LowerDir".to_owned(), json!(i.lower_dir));
    }
    let last_tag_time = if i.last_tag_time.is_empty() {
        "0001-01-01T00:00:00Z"
    } else {
        &i.last_tag_time
    };
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
        "Metadata": {"LastTagTime": last_tag_time},
    });
    if !i.os_version.is_empty() {
        v["OsVersion"] = json!(i.os_version);
    }
    v.to_string()
}

fn config(c: &pb::ImageConfig) -> Value {
    let mut m = Map::new();
    let set = |keys: &[String]| -> Value {
        Value::Object(keys.iter().map(|k| (k.clone(), json!({}))).collect())
    };
    let mut put = |key: &str, keep: bool, v: Value| {
        if keep {
            m.insert(key.to_owned(), v);
        }
    };
    put("User", !c.user.is_empty(), json!(c.user));
    put(
        "ExposedPorts",
        !c.exposed_ports.is_empty(),
        set(&c.exposed_ports),
    );
    put("Env", !c.env.is_empty(), json!(c.env));
    if let Some(e) = &c.entrypoint {
        put("Entrypoint", true, json!(e.values));
    }
    if let Some(cmd) = &c.cmd {
        put("Cmd", true, json!(cmd.values));
    }
    put("Volumes", !c.volumes.is_empty(), set(&c.volumes));
    put(
        "WorkingDir",
        !c.working_dir.is_empty(),
        json!(c.working_dir),
    );
    put("Labels", !c.labels.is_empty(), json!(c.labels));
    put(
        "StopSignal",
        !c.stop_signal.is_empty(),
        json!(c.stop_signal),
    );
    put("ArgsEscaped", c.args_escaped, json!(true));
    if let Some(h) = &c.healthcheck {
        let mut hm = Map::new();
        if !h.test.is_empty() {
            hm.insert("Test".to_owned(), json!(h.test));
        }
        for (key, n) in [
            ("Interval", h.interval),
            ("Timeout", h.timeout),
            ("StartPeriod", h.start_period),
            ("StartInterval", h.start_interval),
            ("Retries", h.retries),
        ] {
            if n != 0 {
                hm.insert(key.to_owned(), json!(n));
            }
        }
        put("Healthcheck", true, Value::Object(hm));
    }
    put("OnBuild", !c.on_build.is_empty(), json!(c.on_build));
    if let Some(s) = &c.shell {
        put("Shell", true, json!(s.values));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same image and expected JSON as the gateway's `renders_what_the_service_rendered`.
    #[test]
    fn matches_the_gateway() {
        let i = pb::Image {
            id: "sha256:aa".to_owned(),
            repo_tags: vec!["busybox:latest".to_owned()],
            repo_digests: vec!["busybox@sha256:bb".to_owned()],
            created: "2024-09-26T21:31:42Z".to_owned(),
            config: Some(pb::ImageConfig {
                env: vec!["PATH=/bin".to_owned()],
                cmd: Some(pb::StringList {
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
        };
        let v: Value = serde_json::from_str(&render(&i)).unwrap();
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
    }
}
