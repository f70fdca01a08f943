//! Manifests and indexes as registries serve them: OCI and Docker schema 2, read leniently
//! with serde (only the fields a pull needs), with their media types checked.

use berth_types::Digest;
use serde::Deserialize;

use crate::ImagesError;

pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// What a pull asks the registry for.
pub(crate) const ACCEPTED: [&str; 4] = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST];

/// Layer media types Berth can unpack.
const LAYER_TYPES: [&str; 6] = [
    "application/vnd.oci.image.layer.v1.tar",
    "application/vnd.oci.image.layer.v1.tar+gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
];

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub(crate) struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub(crate) media_type: String,
    pub(crate) digest: Digest,
    pub(crate) size: u64,
    #[serde(default)]
    pub(crate) platform: Option<PlatformField>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub(crate) struct PlatformField {
    pub(crate) os: String,
    pub(crate) architecture: String,
    #[serde(default)]
    pub(crate) variant: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct Raw {
    #[serde(rename = "schemaVersion", default)]
    schema_version: u32,
    #[serde(rename = "mediaType", default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// A parsed manifest or index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Parsed {
    Index(Vec<Descriptor>),
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

pub(crate) fn parse(bytes: &[u8]) -> Result<Parsed, ImagesError> {
    let raw: Raw = serde_json::from_slice(bytes)
        .map_err(|e| ImagesError::Registry(format!("invalid manifest: {e}")))?;
    if raw.schema_version != 2 {
        return Err(ImagesError::Unsupported(format!(
            "unsupported manifest schema version {}: only schema 2 and OCI manifests are supported",
            raw.schema_version
        )));
    }
    match (raw.manifests, raw.config, raw.layers) {
        (Some(m), _, _) => Ok(Parsed::Index(m)),
        (None, Some(config), Some(layers)) => {
            if let Some(bad) = layers
                .iter()
                .find(|l| !LAYER_TYPES.contains(&l.media_type.as_str()))
            {
                return Err(ImagesError::Unsupported(format!(
                    "unsupported layer media type {} ({})",
                    bad.media_type, bad.digest
                )));
            }
            Ok(Parsed::Image { config, layers })
        }
        _ => Err(ImagesError::Registry(format!(
            "invalid manifest of type {}",
            raw.media_type.unwrap_or_default()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn image_and_index() {
        let m = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"{D}","size":1}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"{D}","size":2}}]}}"#
        );
        let Parsed::Image { layers, .. } = parse(m.as_bytes()).unwrap() else {
            panic!("an image")
        };
        assert_eq!(layers[0].size, 2);
        let i = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{D}","size":3,"platform":{{"os":"linux","architecture":"arm64","variant":"v8"}}}}]}}"#
        );
        let Parsed::Index(m) = parse(i.as_bytes()).unwrap() else {
            panic!("an index")
        };
        assert_eq!(
            m[0].platform.as_ref().unwrap().variant.as_deref(),
            Some("v8")
        );
        assert!(parse(br#"{"schemaVersion":1}"#).is_err());
        let foreign =
            m_with_layer_type("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip");
        assert!(
            parse(foreign.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("unsupported layer")
        );
    }

    fn m_with_layer_type(t: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"config":{{"digest":"{D}","size":1}},"layers":[{{"mediaType":"{t}","digest":"{D}","size":2}}]}}"#
        )
    }
}
