//! The volumes service's part of `/info` and `/system/df`.

use std::path::PathBuf;

use berth_proto::volumes::v1 as pb;

use berth_bus::EventPublisher;

use crate::{VolumesError, store::Store};

pub(crate) struct Volumes {
    pub(crate) store: Store,
    pub(crate) root: PathBuf,
    pub(crate) events: Option<EventPublisher>,
    /// Serializes the operations that write (a record and its directory go together).
    lock: std::sync::Mutex<()>,
    /// Volume directories kept for the next volumes.
    pub(crate) spares: crate::spare::Spares,
}

impl Volumes {
    pub(crate) fn new(store: Store, root: PathBuf, events: Option<EventPublisher>) -> Volumes {
        Volumes {
            spares: crate::spare::Spares::open(&root),
            store,
            root,
            events,
            lock: std::sync::Mutex::new(()),
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The lock, if no other operation holds it.
    pub(crate) fn try_lock(&self) -> Option<std::sync::MutexGuard<'_, ()>> {
        match self.lock.try_lock() {
            Ok(g) => Some(g),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    /// `<root>/<name>/_data`, where a local volume's files live.
    pub(crate) fn mountpoint(&self, name: &str) -> PathBuf {
        self.root.join(name).join("_data")
    }

    pub(crate) fn info(&self) -> Result<pb::InfoResponse, VolumesError> {
        Ok(pb::InfoResponse {
            volumes: self.store.count()?,
            drivers: vec!["local".to_owned()],
            warnings: Vec::new(),
        })
    }

    pub(crate) fn disk_usage(&self) -> Result<pb::DiskUsageResponse, VolumesError> {
        let volumes = self
            .store
            .list()?
            .into_iter()
            .map(|v| {
                let mountpoint = self.mountpoint(&v.name);
                let size =
                    berth_service::disk_usage(&mountpoint).map_err(|source| VolumesError::Io {
                        path: mountpoint.display().to_string(),
                        source,
                    })?;
                Ok(pb::VolumeUsage {
                    mountpoint: mountpoint.display().to_string(),
                    name: v.name,
                    driver: v.driver,
                    created_at: v.created_at,
                    scope: "local".to_owned(),
                    labels: v.labels.into_iter().collect(),
                    options: v.options.into_iter().collect(),
                    size: size as i64,
                    ref_count: v.containers.len() as i64,
                })
            })
            .collect::<Result<_, VolumesError>>()?;
        Ok(pb::DiskUsageResponse { volumes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::VolumeRecord;

    #[test]
    fn disk_usage_measures_each_volume() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put(&VolumeRecord {
                name: "data".to_owned(),
                driver: "local".to_owned(),
                created_at: "2026-11-27T00:00:00Z".to_owned(),
                labels: Default::default(),
                options: Default::default(),
                ..Default::default()
            })
            .unwrap();
        std::fs::create_dir_all(dir.path().join("data/_data")).unwrap();
        std::fs::write(dir.path().join("data/_data/f"), [1u8; 300]).unwrap();
        let v = Volumes::new(store, dir.path().to_owned(), None);
        assert_eq!(v.info().unwrap().volumes, 1);
        let du = v.disk_usage().unwrap();
        assert_eq!(du.volumes.len(), 1);
        assert_eq!(du.volumes[0].size, 300);
        assert!(du.volumes[0].mountpoint.ends_with("data/_data"));
    }
}
