//! The images service's part of `/info` and `/system/df`.

use std::path::PathBuf;

use berth_config::DaemonConfig;
use berth_proto::images::v1 as pb;

use crate::{ImagesError, registry_config::registry_config, storage, store::Store};

pub(crate) struct Images {
    store: Store,
    root: PathBuf,
    registry: pb::RegistryConfig,
    driver_status: Vec<pb::KeyValue>,
    warnings: Vec<String>,
}

impl Images {
    /// Probes the layer filesystem once: its facts do not change while the service runs.
    pub(crate) fn new(
        store: Store,
        root: PathBuf,
        cfg: &DaemonConfig,
    ) -> Result<Images, ImagesError> {
        let layers = root.join("overlay2");
        let io = |source| ImagesError::Io {
            path: layers.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&layers).map_err(io)?;
        let d_type = storage::supports_d_type(&layers).map_err(io)?;
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
        Ok(Images {
            store,
            registry: registry_config(cfg),
            driver_status: vec![
                kv("Backing Filesystem", storage::backing_filesystem(&layers)),
                kv("Supports d_type", d_type.to_string()),
                kv("Using metacopy", "false".to_owned()),
                kv("Native Overlay Diff", "true".to_owned()),
                kv("userxattr", "false".to_owned()),
            ],
            warnings,
            root,
        })
    }

    fn layers_dir(&self) -> PathBuf {
        self.root.join("overlay2")
    }

    pub(crate) fn info(&self) -> Result<pb::InfoResponse, ImagesError> {
        Ok(pb::InfoResponse {
            images: self.store.count()?,
            driver: "overlay2".to_owned(),
            driver_status: self.driver_status.clone(),
            registry_config: Some(self.registry.clone()),
            root_dir: self.root.display().to_string(),
            warnings: self.warnings.clone(),
        })
    }

    pub(crate) fn disk_usage(&self) -> Result<pb::DiskUsageResponse, ImagesError> {
        let layers = self.layers_dir();
        let size = berth_service::disk_usage(&layers).map_err(|source| ImagesError::Io {
            path: layers.display().to_string(),
            source,
        })?;
        Ok(pb::DiskUsageResponse {
            layers_size: size as i64,
            images: Vec::new(),
        })
    }
}
