//! The images service's part of `/info` and `/system/df`.

use std::path::Path;

use berth_config::DaemonConfig;
use berth_proto::images::v1 as pb;

use crate::{ImagesError, registry_config::registry_config, service::ImageService, storage};

/// Facts probed once at start: the layer filesystem does not change while the service runs.
pub(crate) struct InfoFacts {
    registry: pb::RegistryConfig,
    driver_status: Vec<pb::KeyValue>,
    warnings: Vec<String>,
}

impl InfoFacts {
    pub(crate) fn probe(root: &Path, cfg: &DaemonConfig) -> Result<InfoFacts, ImagesError> {
        let layers = root.join("overlay2");
        std::fs::create_dir_all(&layers).map_err(|e| ImagesError::io(&layers, e))?;
        let d_type = storage::supports_d_type(&layers).map_err(|e| ImagesError::io(&layers, e))?;
        let kv = |k: &str, v: String| pb::KeyValue {
            key: k.to_owned(),
            value: v,
        };
        let mut warnings = Vec::new();
        if !d_type {
            warnings.push(
                "WARNING: overlay2: the backing filesystem is formatted without d_type support"
                    .to_owned(),
            );
        }
        Ok(InfoFacts {
            registry: registry_config(cfg),
            driver_status: vec![
                kv("Backing Filesystem", storage::backing_filesystem(&layers)),
                kv("Supports d_type", d_type.to_string()),
                kv("Using metacopy", "false".to_owned()),
                kv("Native Overlay Diff", "true".to_owned()),
                kv("userxattr", "false".to_owned()),
            ],
            warnings,
        })
    }
}

impl ImageService {
    pub(crate) fn info(&self) -> Result<pb::InfoResponse, ImagesError> {
        Ok(pb::InfoResponse {
            images: self.store.count()?,
            driver: "overlay2".to_owned(),
            driver_status: self.facts.driver_status.clone(),
            registry_config: Some(self.facts.registry.clone()),
            root_dir: self.root.display().to_string(),
            warnings: self.facts.warnings.clone(),
        })
    }

    pub(crate) fn disk_usage(&self) -> Result<pb::DiskUsageResponse, ImagesError> {
        let layers: u64 = self.store.layers()?.iter().map(|l| l.size).sum();
        // As dockerd: the images `docker images` lists, not the builds' intermediate images
        // (their layers count in `layers_size`).
        let images = self.summaries(false)?;
        Ok(pb::DiskUsageResponse {
            layers_size: layers as i64,
            images,
        })
    }
}
