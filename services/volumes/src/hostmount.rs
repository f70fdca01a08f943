//! The filesystems of volumes made with the local driver's `type`/`device`/`o`: mounted once
//! on the host at the volume's data path when its first container starts, unmounted when the
//! last one exits, as moby's local driver does. Who uses a volume now is a durable set of
//! container IDs in its record (moby keeps a count in memory), so a repeated call is harmless
//! and a restart of this service finds the mounts as they should be (`reconcile_mounts`).

use std::collections::BTreeSet;

use berth_proto::volumes::v1 as pb;
use berth_types::ErrorKind;

use crate::{VolumesError, info::Volumes, local, store::VolumeRecord};

impl Volumes {
    /// Mounts the volume's filesystem at its data path unless it is mounted already.
    fn mount_fs(&self, v: &VolumeRecord) -> Result<bool, VolumesError> {
        let path = self.mountpoint(&v.name);
        if !local::needs_mount(&v.options) || local::is_mounted(&path) {
            return Ok(false);
        }
        local::mount(&v.options, &path).map_err(|e| {
            VolumesError::Client(
                ErrorKind::Internal,
                format!("error while mounting volume '{}': {e}", path.display()),
            )
        })?;
        tracing::info!(volume = %v.name, "mounted the volume's filesystem");
        Ok(true)
    }

    /// Unmounts the volume's own filesystem, if it has one and it is mounted. A failure is
    /// logged (as dockerd, the user is gone whatever the kernel says).
    pub(crate) fn unmount_fs(&self, v: &VolumeRecord) {
        let path = self.mountpoint(&v.name);
        if !local::needs_mount(&v.options) || !local::is_mounted(&path) {
            return;
        }
        match local::unmount(&path) {
            Ok(()) => tracing::info!(volume = %v.name, "unmounted the volume's filesystem"),
            Err(e) => tracing::warn!(volume = %v.name, error = %e, "unmounting a volume"),
        }
    }

    /// A container starts using the named volumes.
    pub(crate) fn mount(&self, req: &pb::MountRequest) -> Result<pb::MountResponse, VolumesError> {
        let _g = self.lock();
        let mut fresh = Vec::new();
        let r = self.store.write(|tx| {
            for name in &req.names {
                let Some(mut v) = tx.get(name)? else {
                    return Err(VolumesError::not_found(name));
                };
                if self.mount_fs(&v)? {
                    fresh.push(v.clone());
                }
                if v.mounted_by.insert(req.container_id.clone()) {
                    tx.put(&v)?;
                }
            }
            Ok(())
        });
        if r.is_err() {
            // Nothing recorded: what this call mounted goes again.
            for v in &fresh {
                self.unmount_fs(v);
            }
        }
        r.map(|()| pb::MountResponse {})
    }

    /// A container stops using volumes (the named ones, or all it uses).
    pub(crate) fn unmount(
        &self,
        req: &pb::UnmountRequest,
    ) -> Result<pb::UnmountResponse, VolumesError> {
        let _g = self.lock();
        let names: BTreeSet<&str> = req.names.iter().map(String::as_str).collect();
        let last = self.store.write(|tx| {
            let mut last = Vec::new();
            for mut v in tx.all()? {
                if (!names.is_empty() && !names.contains(v.name.as_str()))
                    || !v.mounted_by.remove(&req.container_id)
                {
                    continue;
                }
                tx.put(&v)?;
                if v.mounted_by.is_empty() {
                    last.push(v);
                }
            }
            Ok(last)
        })?;
        for v in &last {
            self.unmount_fs(v);
        }
        Ok(pb::UnmountResponse {})
    }

    /// At start: each volume's filesystem mounted while a container uses it, and not
    /// otherwise (a crash between a record and its mount, a mount left by an old instance).
    pub(crate) fn reconcile_mounts(&self) {
        let all = match self.store.list() {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "volume mounts: reading the store");
                return;
            }
        };
        for v in all.iter().filter(|v| local::needs_mount(&v.options)) {
            if v.mounted_by.is_empty() {
                self.unmount_fs(v);
            } else if let Err(e) = self.mount_fs(v) {
                tracing::warn!(volume = %v.name, error = %e, "mounting a volume in use");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use berth_errors::HasKind;

    fn volumes() -> (tempfile::TempDir, Volumes) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let v = Volumes::new(store, dir.path().to_owned(), None);
        (dir, v)
    }

    fn tmpfs_volume(v: &Volumes, name: &str) -> std::path::PathBuf {
        v.create(pb::CreateRequest {
            name: name.to_owned(),
            options: [
                ("type".to_owned(), "tmpfs".to_owned()),
                ("device".to_owned(), "tmpfs".to_owned()),
                ("o".to_owned(), "size=1m,mode=0750".to_owned()),
            ]
            .into(),
            ..Default::default()
        })
        .unwrap();
        v.mountpoint(name)
    }

    fn mount(v: &Volumes, c: &str, names: &[&str]) -> Result<(), VolumesError> {
        v.mount(&pb::MountRequest {
            container_id: c.to_owned(),
            names: names.iter().map(|n| (*n).to_owned()).collect(),
        })
        .map(|_| ())
    }

    fn unmount(v: &Volumes, c: &str) {
        v.unmount(&pb::UnmountRequest {
            container_id: c.to_owned(),
            names: Vec::new(),
        })
        .unwrap();
    }

    #[test]
    fn the_filesystem_is_mounted_from_the_first_user_to_the_last() {
        let (dir, v) = volumes();
        let data = tmpfs_volume(&v, "shared");
        assert!(!local::is_mounted(&data));
        mount(&v, "c1", &["shared"]).unwrap();
        assert!(local::is_mounted(&data));
        std::fs::write(data.join("f"), "x").unwrap();
        // A second user, and a repeated call, share the one mount.
        mount(&v, "c2", &["shared"]).unwrap();
        mount(&v, "c2", &["shared"]).unwrap();
        assert_eq!(v.inspect("shared").unwrap().mounted_by, ["c1", "c2"]);
        unmount(&v, "c1");
        assert!(data.join("f").exists());
        unmount(&v, "c1");
        assert!(local::is_mounted(&data));
        unmount(&v, "c2");
        assert!(!local::is_mounted(&data));
        assert!(!data.join("f").exists());
        // A plain volume is never mounted.
        v.create(pb::CreateRequest {
            name: "plain".to_owned(),
            ..Default::default()
        })
        .unwrap();
        mount(&v, "c3", &["plain"]).unwrap();
        assert!(!local::is_mounted(&v.mountpoint("plain")));
        unmount(&v, "c3");
        let e = mount(&v, "c3", &["nosuch"]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        drop(v);
        assert!(!local::is_mounted(&dir.path().join("shared/_data")));
    }

    #[test]
    fn a_restart_remounts_what_is_in_use_and_unmounts_the_rest() {
        let (dir, v) = volumes();
        let used = tmpfs_volume(&v, "used");
        let idle = tmpfs_volume(&v, "idle");
        mount(&v, "c1", &["used", "idle"]).unwrap();
        // As if the service died after recording c1's exit from "idle" only, and "used" lost
        // its mount.
        v.store
            .write(|tx| {
                let mut r = tx.get("idle")?.unwrap();
                r.mounted_by.clear();
                tx.put(&r)?;
                Ok(())
            })
            .unwrap();
        local::unmount(&used).unwrap();
        drop(v);
        let v = Volumes::new(
            crate::store::Store::open(dir.path()).unwrap(),
            dir.path().to_owned(),
            None,
        );
        v.reconcile_mounts();
        assert!(local::is_mounted(&used));
        assert!(!local::is_mounted(&idle));
        unmount(&v, "c1");
        assert!(!local::is_mounted(&used));
    }

    #[test]
    fn a_bind_volume_needs_its_device_and_a_failed_mount_records_nothing() {
        let (dir, v) = volumes();
        let dev = dir.path().join("dev");
        v.create(pb::CreateRequest {
            name: "bv".to_owned(),
            options: [
                ("type".to_owned(), "none".to_owned()),
                ("device".to_owned(), dev.display().to_string()),
                ("o".to_owned(), "bind".to_owned()),
            ]
            .into(),
            ..Default::default()
        })
        .unwrap();
        let data = v.mountpoint("bv");
        let e = mount(&v, "c1", &["bv"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "error while mounting volume '{}': failed to mount local volume: mount {}:{}, \
                 flags: 0x1000: no such file or directory",
                data.display(),
                dev.display(),
                data.display()
            )
        );
        assert!(v.inspect("bv").unwrap().mounted_by.is_empty());
        std::fs::create_dir(&dev).unwrap();
        std::fs::write(dev.join("host"), "h").unwrap();
        mount(&v, "c1", &["bv"]).unwrap();
        assert_eq!(std::fs::read_to_string(data.join("host")).unwrap(), "h");
        // Removing the volume while it is mounted unmounts it first: the device's files
        // stay.
        v.remove("bv", false).unwrap();
        assert!(!local::is_mounted(&data));
        assert_eq!(std::fs::read_to_string(dev.join("host")).unwrap(), "h");
    }
}
