//! The manifests in the content store that describe an image (the one it was pulled or loaded
//! with, those written for a push), and new manifests for images that came without one or whose
//! layers changed. `save` and `push` start from here.

use std::io::Read;

use berth_types::Digest;
use serde_json::json;

use crate::{
    ImagesError,
    compression::{Compression, OCI_LAYER},
    manifest::{self, DOCKER_MANIFEST, Descriptor, OCI_MANIFEST, Parsed},
    service::ImageService,
    store::ImageRecord,
};

pub(crate) const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Manifests are small; anything larger in the store is a layer.
const MAX_MANIFEST: u64 = 4 << 20;

/// An image manifest (not an index) as bytes, with what it says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredManifest {
    pub(crate) digest: Digest,
    pub(crate) bytes: Vec<u8>,
    pub(crate) media_type: String,
    pub(crate) layers: Vec<Descriptor>,
}

impl StoredManifest {
    /// Docker's schema 2 media types, rather than OCI's.
    pub(crate) fn is_docker(&self) -> bool {
        self.media_type == DOCKER_MANIFEST
    }

    /// Parses `bytes` as an image manifest whose config is `config`; `None` if it is anything
    /// else (an index, another image's manifest, not a manifest).
    pub(crate) fn parse(bytes: Vec<u8>, config: &Digest) -> Option<StoredManifest> {
        let Ok(Parsed::Image { config: c, layers }) = manifest::parse(&bytes) else {
            return None;
        };
        if c.digest != *config {
            return None;
        }
        let media_type = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v["mediaType"].as_str().map(str::to_owned))
            .unwrap_or_else(|| OCI_MANIFEST.to_owned());
        Some(StoredManifest {
            digest: Digest::sha256_of(&bytes),
            bytes,
            media_type,
            layers,
        })
    }

    /// A new manifest for the config `config` (of `config_size` bytes) and `layers`, in the
    /// Docker or the OCI family; the layers' media types are named in that family.
    pub(crate) fn build(
        docker: bool,
        config: &Digest,
        config_size: u64,
        layers: &[Descriptor],
    ) -> StoredManifest {
        let (media_type, config_type) = if docker {
            (DOCKER_MANIFEST, DOCKER_CONFIG)
        } else {
            (OCI_MANIFEST, OCI_CONFIG)
        };
        let layers: Vec<Descriptor> = layers
            .iter()
            .map(|l| Descriptor {
                media_type: Compression::of_media_type(&l.media_type)
                    .layer_media_type(docker)
                    .to_owned(),
                digest: l.digest.clone(),
                size: l.size,
                platform: None,
            })
            .collect();
        let v = json!({
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {"mediaType": config_type, "digest": config.to_string(), "size": config_size},
            "layers": layers.iter().map(|l| json!({
                "mediaType": l.media_type, "digest": l.digest.to_string(), "size": l.size,
            })).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec(&v).expect("a JSON value serializes");
        StoredManifest {
            digest: Digest::sha256_of(&bytes),
            bytes,
            media_type: media_type.to_owned(),
            layers,
        }
    }
}

impl ImageService {
    /// The size of a stored blob.
    pub(crate) fn blob_size(&self, d: &Digest) -> Result<u64, ImagesError> {
        let path = self.content.path(d);
        std::fs::metadata(&path)
            .map(|m| m.len())
            .map_err(|e| ImagesError::io(&path, e))
    }

    /// A small blob that starts like JSON, read whole; `None` for anything else.
    fn small_json_blob(&self, digest: &Digest) -> Option<Vec<u8>> {
        let path = self.content.path(digest);
        let meta = std::fs::metadata(&path).ok()?;
        if meta.len() > MAX_MANIFEST {
            return None;
        }
        let mut f = std::fs::File::open(&path).ok()?;
        let mut first = [0u8; 1];
        f.read_exact(&mut first).ok()?;
        if first[0] != b'{' {
            return None;
        }
        self.content.read(digest).ok()
    }

    /// The image manifests in the content store that describe `rec`: the one it was pulled or
    /// loaded with first, then the others it holds (another repository's, one written for a
    /// push).
    pub(crate) fn manifests_of(&self, rec: &ImageRecord) -> Vec<StoredManifest> {
        let mut seen = Vec::new();
        let mut out = Vec::new();
        for d in rec.manifest.iter().chain(&rec.blobs) {
            if *d == rec.id || seen.contains(d) {
                continue;
            }
            seen.push(d.clone());
            if let Some(m) = self
                .small_json_blob(d)
                .and_then(|b| StoredManifest::parse(b, &rec.id))
                && m.layers.len() == rec.diff_ids.len()
            {
                out.push(m);
            }
        }
        out
    }

    /// A stored blob holding the layer `diff_id`, from any image that has one.
    fn layer_blob_by_diff_id(&self, diff_id: &Digest) -> Option<Descriptor> {
        if self.content.exists(diff_id) {
            return Some(Descriptor {
                media_type: OCI_LAYER.to_owned(),
                digest: diff_id.clone(),
                size: self.blob_size(diff_id).ok()?,
                platform: None,
            });
        }
        let images = self.store.images().ok()?;
        images.iter().find_map(|img| {
            let i = img.diff_ids.iter().position(|d| d == diff_id)?;
            self.manifests_of(img)
                .into_iter()
                .filter_map(|m| m.layers.get(i).cloned())
                .find(|l| self.content.exists(&l.digest))
        })
    }

    /// A manifest of `rec` whose layer blobs are all in the content store: a stored one if
    /// there is, else a new one (not stored) made of the blobs found for each layer.
    pub(crate) fn complete_manifest(
        &self,
        rec: &ImageRecord,
    ) -> Result<StoredManifest, ImagesError> {
        let all = self.manifests_of(rec);
        if let Some(m) = all
            .iter()
            .find(|m| m.layers.iter().all(|l| self.content.exists(&l.digest)))
        {
            return Ok(m.clone());
        }
        let mut layers = Vec::new();
        for (i, diff_id) in rec.diff_ids.iter().enumerate() {
            let found = all
                .iter()
                .filter_map(|m| m.layers.get(i))
                .find(|l| self.content.exists(&l.digest))
                .cloned()
                .or_else(|| self.layer_blob_by_diff_id(diff_id))
                .ok_or_else(|| {
                    ImagesError::NotFound(format!(
                        "the blob of layer {diff_id} of image {} is not in the content store",
                        rec.id
                    ))
                })?;
            layers.push(found);
        }
        let config_size = self.blob_size(&rec.id)?;
        let docker = all.first().is_some_and(StoredManifest::is_docker);
        Ok(StoredManifest::build(docker, &rec.id, config_size, &layers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_manifests_parse_back() {
        let config = Digest::sha256_of(b"{}");
        let layer = Descriptor {
            media_type: crate::compression::DOCKER_LAYER_GZIP.to_owned(),
            digest: Digest::sha256_of(b"layer"),
            size: 5,
            platform: None,
        };
        let m = StoredManifest::build(false, &config, 2, std::slice::from_ref(&layer));
        assert_eq!(m.media_type, OCI_MANIFEST);
        assert_eq!(
            m.layers[0].media_type,
            crate::compression::OCI_LAYER_GZIP,
            "named in the OCI family"
        );
        let back = StoredManifest::parse(m.bytes.clone(), &config).unwrap();
        assert_eq!(back, m);
        assert!(StoredManifest::parse(m.bytes.clone(), &Digest::sha256_of(b"other")).is_none());
        let d = StoredManifest::build(true, &config, 2, &[layer]);
        assert!(d.is_docker());
        assert_eq!(
            d.layers[0].media_type,
            crate::compression::DOCKER_LAYER_GZIP
        );
        let v: serde_json::Value = serde_json::from_slice(&d.bytes).unwrap();
        assert_eq!(v["config"]["mediaType"], DOCKER_CONFIG);
    }
}
