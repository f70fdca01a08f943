//! An image's config blob (the OCI image config with Docker's extensions), read into types.
//! Blobs come from registries and archives, so reading is lenient: a field of an unexpected
//! type reads as absent, and a blob that is not a JSON object reads as an empty config.

use std::collections::BTreeMap;

use berth_proto::images::v1 as pb;
use serde::{Deserialize, Deserializer, de::IgnoredAny};

/// The parts of a config blob the catalog shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct ConfigBlob {
    #[serde(deserialize_with = "lenient")]
    pub(crate) author: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) architecture: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) variant: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) os: String,
    #[serde(rename = "os.version", deserialize_with = "lenient")]
    pub(crate) os_version: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) config: Option<RunConfig>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) docker_version: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) comment: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) history: Vec<HistoryItem>,
}

/// The config's `config` section: how a container of the image runs.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct RunConfig {
    #[serde(deserialize_with = "lenient")]
    pub(crate) user: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) exposed_ports: BTreeMap<String, IgnoredAny>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) env: Vec<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) entrypoint: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) cmd: Option<Vec<String>>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) volumes: BTreeMap<String, IgnoredAny>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) working_dir: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) stop_signal: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) args_escaped: bool,
    #[serde(deserialize_with = "lenient")]
    pub(crate) healthcheck: Option<Health>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) on_build: Vec<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) shell: Option<Vec<String>>,
}

/// `Healthcheck`: durations in nanoseconds.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub(crate) struct Health {
    #[serde(deserialize_with = "lenient")]
    pub(crate) test: Vec<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) interval: i64,
    #[serde(deserialize_with = "lenient")]
    pub(crate) timeout: i64,
    #[serde(deserialize_with = "lenient")]
    pub(crate) start_period: i64,
    #[serde(deserialize_with = "lenient")]
    pub(crate) start_interval: i64,
    #[serde(deserialize_with = "lenient")]
    pub(crate) retries: i64,
}

/// One `history` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct HistoryItem {
    #[serde(deserialize_with = "lenient")]
    pub(crate) created: Option<String>,
    #[serde(deserialize_with = "lenient")]
    pub(crate) created_by: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) comment: String,
    #[serde(deserialize_with = "lenient")]
    pub(crate) empty_layer: bool,
}

impl ConfigBlob {
    /// The blob's fields; an unreadable blob has none.
    pub(crate) fn parse(bytes: &[u8]) -> ConfigBlob {
        serde_json::from_slice(bytes).unwrap_or_default()
    }

    /// The image's labels (none when the config has no `config` section).
    pub(crate) fn labels(&self) -> BTreeMap<String, String> {
        self.config
            .as_ref()
            .map(|c| c.labels.clone())
            .unwrap_or_default()
    }
}

/// The value, or the type's default when the JSON holds something else (null, another type).
fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either<T> {
        Value(T),
        Other(IgnoredAny),
    }
    Ok(match Either::<T>::deserialize(d)? {
        Either::Value(v) => v,
        Either::Other(_) => T::default(),
    })
}

fn string_list(v: &Option<Vec<String>>) -> Option<pb::StringList> {
    v.as_ref().map(|values| pb::StringList {
        values: values.clone(),
    })
}

impl From<&RunConfig> for pb::ImageConfig {
    fn from(c: &RunConfig) -> pb::ImageConfig {
        pb::ImageConfig {
            user: c.user.clone(),
            exposed_ports: c.exposed_ports.keys().cloned().collect(),
            env: c.env.clone(),
            entrypoint: string_list(&c.entrypoint),
            cmd: string_list(&c.cmd),
            volumes: c.volumes.keys().cloned().collect(),
            working_dir: c.working_dir.clone(),
            labels: c.labels.clone().into_iter().collect(),
            stop_signal: c.stop_signal.clone(),
            args_escaped: c.args_escaped,
            healthcheck: c.healthcheck.as_ref().map(|h| pb::HealthConfig {
                test: h.test.clone(),
                interval: h.interval,
                timeout: h.timeout,
                start_period: h.start_period,
                start_interval: h.start_interval,
                retries: h.retries,
            }),
            on_build: c.on_build.clone(),
            shell: string_list(&c.shell),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_field_and_tolerates_odd_types() {
        let blob = br#"{
            "architecture": "arm64", "variant": "v8", "os": "linux", "os.version": "1",
            "author": "me", "comment": 7, "docker_version": null,
            "config": {
                "Hostname": "", "User": "nobody", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                "Env": ["A=1"], "Entrypoint": null, "Cmd": [], "Volumes": {"/data": {}},
                "WorkingDir": "/w", "Labels": {"k": "v"}, "StopSignal": "SIGINT",
                "ArgsEscaped": true, "OnBuild": ["RUN x"], "Shell": ["/bin/bash", "-c"],
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000, "Retries": 3}
            },
            "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "x", "empty_layer": true}]
        }"#;
        let b = ConfigBlob::parse(blob);
        assert_eq!(
            (
                b.architecture.as_str(),
                b.variant.as_str(),
                b.os_version.as_str()
            ),
            ("arm64", "v8", "1")
        );
        assert_eq!((b.comment.as_str(), b.docker_version.as_str()), ("", ""));
        let c = pb::ImageConfig::from(b.config.as_ref().unwrap());
        assert_eq!(c.exposed_ports, ["53/udp", "80/tcp"]);
        assert_eq!(c.entrypoint, None);
        assert_eq!(c.cmd, Some(pb::StringList { values: vec![] }));
        assert_eq!(c.volumes, ["/data"]);
        assert!(c.args_escaped);
        let h = c.healthcheck.unwrap();
        assert_eq!((h.interval, h.retries, h.timeout), (30_000_000_000, 3, 0));
        assert!(b.history[0].empty_layer);
        assert!(ConfigBlob::parse(b"not json").config.is_none());
        assert!(
            ConfigBlob::parse(br#"{"config": {"Labels": [1]}}"#)
                .labels()
                .is_empty()
        );
    }
}
