//! The local driver's volumes: create, list, inspect, remove, prune, and the references that
//! containers hold (acquire and release). The store is written in one transaction per
//! operation; a volume's directory is made before its record is committed and removed after
//! its record is gone, so a crash leaves at worst an empty directory nobody lists.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use berth_proto::volumes::v1 as pb;
use berth_types::{Actor, ErrorKind, Event, EventType};

use crate::{
    VolumesError,
    info::Volumes,
    store::{Tx, VolumeRecord},
};

/// The label dockerd puts on anonymous volumes (`docker volume prune` removes only these).
pub(crate) const ANONYMOUS_LABEL: &str = "com.docker.volume.anonymous";
/// The one driver.
pub(crate) const LOCAL: &str = "local";

/// 64 random lowercase hex digits.
fn new_name() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn now_nanos() -> i64 {
    i64::try_from(time::OffsetDateTime::now_utc().unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// moby's check of a local volume's name (`volume/local.validateName`): it names a directory
/// under the root, so nothing but `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub(crate) fn validate_name(name: &str) -> Result<(), VolumesError> {
    if name.len() == 1 {
        return Err(VolumesError::invalid(format!(
            "create {name}: volume name is too short, names should be at least two \
             alphanumeric characters"
        )));
    }
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !first_ok || !rest_ok {
        return Err(VolumesError::invalid(format!(
            "create {name}: {name:?} includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        )));
    }
    if name == "state.redb" {
        return Err(VolumesError::invalid(format!(
            "create {name}: the name is reserved by Berth's volume store"
        )));
    }
    Ok(())
}

/// The driver and its options, checked as the local driver checks them.
fn check_driver(
    name: &str,
    driver: &str,
    options: &BTreeMap<String, String>,
) -> Result<(), VolumesError> {
    if !matches!(driver, "" | LOCAL) {
        return Err(VolumesError::Client(
            ErrorKind::NotFound,
            format!(
                "create {name}: error looking up volume plugin {driver}: plugin \"{driver}\" not found"
            ),
        ));
    }
    crate::local::validate(options)
        .map_err(|e| VolumesError::invalid(format!("create {name}: {e}")))
}

/// Whether a volume passes the filters.
pub(crate) fn matches(f: &pb::VolumeFilters, v: &VolumeRecord) -> bool {
    let any = |values: &[String], pred: &dyn Fn(&str) -> bool| {
        values.is_empty() || values.iter().any(|x| pred(x))
    };
    let label_ok = |l: &pb::LabelFilter| match (&l.value, v.labels.get(&l.key)) {
        (None, Some(_)) => true,
        (Some(want), Some(have)) => want == have,
        _ => false,
    };
    f.dangling.is_none_or(|d| d == v.containers.is_empty())
        && any(&f.drivers, &|d| d == v.driver)
        && any(&f.names, &|n| v.name.contains(n))
        && f.labels.iter().all(label_ok)
        && !f.labels_not.iter().any(label_ok)
}

impl Volumes {
    /// `<root>/<name>`, the volume's own directory.
    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub(crate) fn to_proto(&self, v: &VolumeRecord) -> pb::Volume {
        pb::Volume {
            name: v.name.clone(),
            driver: v.driver.clone(),
            mountpoint: self.mountpoint(&v.name).display().to_string(),
            created_at: v.created_at.clone(),
            labels: v.labels.clone().into_iter().collect(),
            options: v.options.clone().into_iter().collect(),
            anonymous: v.anonymous,
            containers: v.containers.iter().cloned().collect(),
            mounted_by: v.mounted_by.iter().cloned().collect(),
        }
    }

    /// Publishes an event that reports no stored change.
    fn event(&self, action: &str, name: &str, attrs: &[(&str, String)]) {
        let Some(events) = &self.events else { return };
        if let Some(ev) = volume_event(action, name, attrs) {
            events.publish(&ev);
        }
    }

    /// Makes `<root>/<name>/_data` (0755 in a 0701 directory, as dockerd).
    fn make_dirs(&self, name: &str) -> Result<(), VolumesError> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = self.dir(name);
        if self.spares.take(&dir) {
            self.spares.made(name, &dir);
            return Ok(());
        }
        let data = dir.join("_data");
        let fs = |e: std::io::Error, p: &Path| {
            VolumesError::Fs(anyhow::anyhow!("creating {}: {e}", p.display()))
        };
        let made = match std::fs::DirBuilder::new().mode(0o701).create(&dir) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => return Err(fs(e, &dir)),
        };
        if std::fs::symlink_metadata(&dir)
            .map_err(|e| fs(e, &dir))?
            .is_symlink()
        {
            return Err(VolumesError::Fs(anyhow::anyhow!(
                "{} is a symlink",
                dir.display()
            )));
        }
        match std::fs::DirBuilder::new().mode(0o755).create(&data) {
            Ok(()) => {
                std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| fs(e, &data))?;
                // Both made now, empty: a spare when removed untouched.
                if made {
                    self.spares.made(name, &dir);
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(fs(e, &data)),
        }
    }

    /// Removes a volume's directory, its own filesystem unmounted first (never the files
    /// of a device bound there); a failure is logged (the record is already gone).
    fn remove_dirs(&self, v: &VolumeRecord) {
        let name = v.name.as_str();
        self.unmount_fs(v);
        // A plain volume nothing touched is kept for the next one (`spare`).
        if self
            .spares
            .keep(name, &self.dir(name), v.options.is_empty())
        {
            return;
        }
        // A volume never written to goes at once, with no look at the mount table (its read
        // was a good part of a `docker volume rm`): a mount point is never removed there.
        if crate::trash::remove_if_empty(&self.dir(name)) {
            return;
        }
        if crate::local::is_mounted(&self.mountpoint(name)) {
            tracing::warn!(volume = name, "a volume's data path is still mounted: kept");
            return;
        }
        crate::trash::remove(&self.root, &self.dir(name));
    }

    /// A new record, its directory made.
    fn new_record(
        &self,
        name: &str,
        anonymous: bool,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
    ) -> Result<VolumeRecord, VolumesError> {
        self.make_dirs(name)?;
        let mut labels = labels;
        if anonymous {
            labels.insert(ANONYMOUS_LABEL.to_owned(), String::new());
        }
        Ok(VolumeRecord {
            name: name.to_owned(),
            driver: LOCAL.to_owned(),
            created_at: now_rfc3339(),
            labels,
            options,
            anonymous,
            ..Default::default()
        })
    }

    /// docker volume create.
    pub(crate) fn create(&self, req: pb::CreateRequest) -> Result<pb::Volume, VolumesError> {
        let _g = self.lock();
        self.create_locked(req)
    }

    /// docker volume create, the caller holding the lock.
    pub(crate) fn create_locked(&self, req: pb::CreateRequest) -> Result<pb::Volume, VolumesError> {
        let name = if req.name.is_empty() {
            new_name()
        } else {
            req.name.clone()
        };
        validate_name(&name)?;
        let options: BTreeMap<String, String> = req.options.into_iter().collect();
        check_driver(&name, &req.driver, &options)?;
        let v = self.store.write(|tx| {
            if let Some(v) = tx.get(&name)? {
                return Ok(v);
            }
            let v = self.new_record(
                &name,
                req.anonymous,
                req.labels.into_iter().collect(),
                options,
            )?;
            tx.put(&v)?;
            tx.emit(volume_event(
                "create",
                &v.name,
                &[("driver", v.driver.clone())],
            ));
            Ok(v)
        })?;
        Ok(self.to_proto(&v))
    }

    pub(crate) fn list(&self, f: &pb::VolumeFilters) -> Result<pb::ListResponse, VolumesError> {
        let volumes = self
            .store
            .list()?
            .iter()
            .filter(|v| matches(f, v))
            .map(|v| self.to_proto(v))
            .collect();
        Ok(pb::ListResponse { volumes })
    }

    pub(crate) fn inspect(&self, name: &str) -> Result<pb::Volume, VolumesError> {
        match self.store.get(name)? {
            Some(v) => Ok(self.to_proto(&v)),
            None => Err(VolumesError::not_found(name)),
        }
    }

    fn in_use(name: &str, v: &VolumeRecord) -> VolumesError {
        let ids: Vec<&str> = v.containers.iter().map(String::as_str).collect();
        VolumesError::conflict(format!(
            "remove {name}: volume is in use - [{}]",
            ids.join(" ")
        ))
    }

    /// docker volume rm: refused while referenced; `force` only forgives a missing volume.
    pub(crate) fn remove(&self, name: &str, force: bool) -> Result<(), VolumesError> {
        let _g = self.lock();
        self.remove_locked(name, force)
    }

    /// Whether removing `name` is quick: no filesystem of its own to unmount (a missing
    /// volume is quick too: nothing to do).
    pub(crate) fn removal_is_quick(&self, name: &str) -> bool {
        !matches!(self.store.get(name), Ok(Some(v)) if crate::local::needs_mount(&v.options))
    }

    /// docker volume rm, the caller holding the lock.
    pub(crate) fn remove_locked(&self, name: &str, force: bool) -> Result<(), VolumesError> {
        let removed = self.store.write(|tx| {
            let Some(v) = tx.get(name)? else {
                return if force {
                    Ok(None)
                } else {
                    Err(VolumesError::not_found(name))
                };
            };
            if !v.containers.is_empty() {
                return Err(Self::in_use(name, &v));
            }
            tx.delete(name)?;
            tx.emit(volume_event(
                "destroy",
                name,
                &[("driver", LOCAL.to_owned())],
            ));
            Ok(Some(v))
        })?;
        if let Some(v) = removed {
            self.remove_dirs(&v);
        }
        Ok(())
    }

    /// docker volume prune: unreferenced volumes that match, anonymous ones unless `all`.
    pub(crate) fn prune(&self, req: &pb::PruneRequest) -> Result<pb::PruneResponse, VolumesError> {
        let _g = self.lock();
        let f = req.filters.clone().unwrap_or_default();
        let gone = self.store.write(|tx| {
            let mut gone = Vec::new();
            for v in tx.all()? {
                if v.containers.is_empty() && (req.all || v.anonymous) && matches(&f, &v) {
                    tx.delete(&v.name)?;
                    tx.emit(volume_event(
                        "destroy",
                        &v.name,
                        &[("driver", LOCAL.to_owned())],
                    ));
                    gone.push(v);
                }
            }
            Ok(gone)
        })?;
        let mut reclaimed = 0u64;
        for v in &gone {
            reclaimed += berth_service::disk_usage(&self.mountpoint(&v.name)).unwrap_or(0);
            self.remove_dirs(v);
        }
        let gone: Vec<String> = gone.into_iter().map(|v| v.name).collect();
        self.event("prune", "", &[("reclaimed", reclaimed.to_string())]);
        Ok(pb::PruneResponse {
            deleted: gone,
            space_reclaimed: reclaimed,
        })
    }

    /// A container's references, its volumes created when missing.
    pub(crate) fn acquire(
        &self,
        req: pb::AcquireRequest,
    ) -> Result<pb::AcquireResponse, VolumesError> {
        let container = req.container_id;
        if container.is_empty() || !container.bytes().all(|c| c.is_ascii_alphanumeric()) {
            return Err(VolumesError::invalid(format!(
                "invalid container ID {container:?}"
            )));
        }
        let claims: Vec<(String, bool, pb::Claim)> = req
            .claims
            .into_iter()
            .map(|c| {
                let anonymous = c.name.is_empty();
                let name = if anonymous {
                    new_name()
                } else {
                    c.name.clone()
                };
                validate_name(&name)?;
                let options: BTreeMap<String, String> = c.options.clone().into_iter().collect();
                check_driver(&name, &c.driver, &options)?;
                Ok((name, anonymous, c))
            })
            .collect::<Result<_, VolumesError>>()?;
        let _g = self.lock();
        let acquired = self.store.write(|tx| {
            let mut out = Vec::new();
            for (name, anonymous, claim) in claims {
                let (mut v, created) = match tx.get(&name)? {
                    Some(v) => (v, false),
                    None => (
                        self.new_record(
                            &name,
                            anonymous,
                            claim.labels.into_iter().collect(),
                            claim.options.into_iter().collect(),
                        )?,
                        true,
                    ),
                };
                v.containers.insert(container.clone());
                tx.put(&v)?;
                if created {
                    tx.emit(volume_event(
                        "create",
                        &name,
                        &[("driver", v.driver.clone())],
                    ));
                }
                out.push(pb::Acquired {
                    own_filesystem: crate::local::needs_mount(&v.options),
                    mountpoint: self.mountpoint(&name).display().to_string(),
                    name,
                    driver: v.driver,
                    created,
                });
            }
            Ok(out)
        })?;
        Ok(pb::AcquireResponse { volumes: acquired })
    }

    /// Drops a container's references; its anonymous volumes go too when asked.
    pub(crate) fn release(
        &self,
        req: &pb::ReleaseRequest,
    ) -> Result<pb::ReleaseResponse, VolumesError> {
        let _g = self.lock();
        let removed = self.store.write(|tx: &mut Tx<'_>| {
            let mut removed = Vec::new();
            let mut unused = Vec::new();
            for mut v in tx.all()? {
                let was_user = v.mounted_by.remove(&req.container_id);
                if !v.containers.remove(&req.container_id) && !was_user {
                    continue;
                }
                if req.remove_anonymous && v.anonymous && v.containers.is_empty() {
                    tx.delete(&v.name)?;
                    tx.emit(volume_event(
                        "destroy",
                        &v.name,
                        &[("driver", LOCAL.to_owned())],
                    ));
                    removed.push(v);
                } else {
                    tx.put(&v)?;
                    if was_user && v.mounted_by.is_empty() {
                        unused.push(v);
                    }
                }
            }
            Ok((removed, unused))
        })?;
        let (removed, unused) = removed;
        for v in &unused {
            self.unmount_fs(v);
        }
        for v in &removed {
            self.remove_dirs(v);
        }
        let removed = removed.into_iter().map(|v| v.name).collect();
        Ok(pb::ReleaseResponse { removed })
    }
}

/// A volume event (none if `action` is malformed).
fn volume_event(action: &str, name: &str, attrs: &[(&str, String)]) -> Option<Event> {
    let mut actor = Actor {
        id: name.to_owned(),
        ..Actor::default()
    };
    for (k, v) in attrs {
        actor.attributes.insert((*k).to_owned(), v.clone());
    }
    match action.parse() {
        Ok(a) => Some(Event::new(EventType::Volume, a, actor, now_nanos())),
        Err(e) => {
            tracing::error!(error = %e, "bad event action");
            None
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

    fn claim(name: &str) -> pb::Claim {
        pb::Claim {
            name: name.to_owned(),
            ..Default::default()
        }
    }

    #[test]
    fn names_that_would_escape_are_refused() {
        for bad in [
            "a/b",
            "..",
            "../x",
            "/abs",
            "x",
            ".hidden",
            "a b",
            "state.redb",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(
            validate_name("a/b").unwrap_err().to_string(),
            "create a/b: \"a/b\" includes invalid characters for a local volume name, only \
             \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host \
             directory, use absolute path"
        );
        validate_name("my-vol_1.x").unwrap();
    }

    #[test]
    fn create_is_idempotent_and_makes_the_directory() {
        let (dir, v) = volumes();
        let a = v
            .create(pb::CreateRequest {
                name: "data".to_owned(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(a.driver, "local");
        assert!(dir.path().join("data/_data").is_dir());
        std::fs::write(dir.path().join("data/_data/f"), "x").unwrap();
        let b = v
            .create(pb::CreateRequest {
                name: "data".to_owned(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(a.created_at, b.created_at);
        assert!(dir.path().join("data/_data/f").exists());
        let anon = v.create(pb::CreateRequest::default()).unwrap();
        assert_eq!(anon.name.len(), 64);
        let e = v
            .create(pb::CreateRequest {
                name: "o".to_owned() + "pts",
                options: [("o".to_owned(), "bind".to_owned())].into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "create opts: missing required option: \"device\""
        );
        let e = v
            .create(pb::CreateRequest {
                name: "opts".to_owned(),
                options: [("bogus".to_owned(), "1".to_owned())].into(),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.to_string(), "create opts: invalid option: \"bogus\"");
    }

    #[test]
    fn references_are_sets_and_guard_removal() {
        let (dir, v) = volumes();
        let c1 = "a".repeat(64);
        let c2 = "b".repeat(64);
        let req = |c: &str| pb::AcquireRequest {
            container_id: c.to_owned(),
            claims: vec![claim("shared"), claim("")],
        };
        let first = v.acquire(req(&c1)).unwrap();
        assert!(first.volumes.iter().all(|a| a.created));
        let anon = first.volumes[1].name.clone();
        // A repeated acquire names the volume again but adds nothing.
        v.acquire(pb::AcquireRequest {
            container_id: c1.clone(),
            claims: vec![claim("shared"), claim(&anon)],
        })
        .unwrap();
        v.acquire(pb::AcquireRequest {
            container_id: c2.clone(),
            claims: vec![claim("shared")],
        })
        .unwrap();
        assert_eq!(
            v.inspect("shared").unwrap().containers,
            [c1.clone(), c2.clone()]
        );
        let e = v.remove("shared", true).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            e.to_string(),
            format!("remove shared: volume is in use - [{c1} {c2}]")
        );
        let f = pb::VolumeFilters {
            dangling: Some(true),
            ..Default::default()
        };
        assert!(v.list(&f).unwrap().volumes.is_empty());
        let rel = pb::ReleaseRequest {
            container_id: c1.clone(),
            remove_anonymous: true,
        };
        assert_eq!(
            v.release(&rel).unwrap().removed,
            std::slice::from_ref(&anon)
        );
        assert!(v.release(&rel).unwrap().removed.is_empty());
        assert!(!dir.path().join(&anon).exists());
        assert_eq!(
            v.inspect("shared").unwrap().containers,
            std::slice::from_ref(&c2)
        );
        v.release(&pb::ReleaseRequest {
            container_id: c2,
            remove_anonymous: true,
        })
        .unwrap();
        // Named volumes outlive their containers.
        assert!(v.inspect("shared").unwrap().containers.is_empty());
        v.remove("shared", false).unwrap();
        assert_eq!(
            v.inspect("shared").unwrap_err().to_string(),
            "get shared: no such volume"
        );
        v.remove("shared", true).unwrap();
        assert_eq!(
            v.remove("shared", false).unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn prune_takes_anonymous_unused_volumes_unless_all() {
        let (_dir, v) = volumes();
        v.acquire(pb::AcquireRequest {
            container_id: "c".repeat(64),
            claims: vec![claim("used"), claim("")],
        })
        .unwrap();
        v.release(&pb::ReleaseRequest {
            container_id: "c".repeat(64),
            remove_anonymous: false,
        })
        .unwrap();
        v.acquire(pb::AcquireRequest {
            container_id: "d".repeat(64),
            claims: vec![claim("used")],
        })
        .unwrap();
        v.create(pb::CreateRequest {
            name: "named".to_owned(),
            labels: [("k".to_owned(), "v".to_owned())].into(),
            ..Default::default()
        })
        .unwrap();
        let out = v.prune(&pb::PruneRequest::default()).unwrap();
        assert_eq!(out.deleted.len(), 1);
        assert_eq!(out.deleted[0].len(), 64);
        let keep = pb::PruneRequest {
            all: true,
            filters: Some(pb::VolumeFilters {
                labels_not: vec![pb::LabelFilter {
                    key: "k".to_owned(),
                    value: None,
                }],
                ..Default::default()
            }),
        };
        assert!(v.prune(&keep).unwrap().deleted.is_empty());
        let all = pb::PruneRequest {
            all: true,
            ..Default::default()
        };
        assert_eq!(v.prune(&all).unwrap().deleted, ["named"]);
        let names: Vec<String> = v
            .list(&pb::VolumeFilters::default())
            .unwrap()
            .volumes
            .into_iter()
            .map(|v| v.name)
            .collect();
        assert_eq!(names, ["used"]);
    }

    #[test]
    fn records_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let v = Volumes::new(
                Store::open(dir.path()).unwrap(),
                dir.path().to_owned(),
                None,
            );
            v.acquire(pb::AcquireRequest {
                container_id: "e".repeat(64),
                claims: vec![claim("kept")],
            })
            .unwrap();
        }
        let v = Volumes::new(
            Store::open(dir.path()).unwrap(),
            dir.path().to_owned(),
            None,
        );
        assert_eq!(v.inspect("kept").unwrap().containers, ["e".repeat(64)]);
    }
}
