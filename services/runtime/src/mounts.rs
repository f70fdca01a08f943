//! A container's mounts: resolved at create (volumes acquired from the volumes service, bind
//! sources checked or made, a fresh volume filled from the image), put into the bundle at each
//! start, released at remove. The volumes service owns the volumes' directories; the runtime
//! only copies the image's content into a fresh volume's data path it was handed.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use berth_errors::HasKind;
use berth_proto::{runtime::v1 as pb, volumes::v1 as volumes};
use berth_service::Channel;

use crate::{container::Container, container_error::ContainerError, lifecycle::Containers};

type Kind = pb::mount_spec::Type;

/// What of the mounts this runtime cannot honor yet, by its spec name.
pub(crate) fn unsupported(spec: &pb::ContainerSpec) -> Option<String> {
    spec.mounts.iter().find_map(|m| {
        let kind = Kind::try_from(m.r#type).unwrap_or(Kind::Unspecified);
        if !matches!(kind, Kind::Bind | Kind::Volume | Kind::Tmpfs) {
            return Some(format!("mounts.type {}", kind.as_str_name()));
        }
        if !m.propagation.is_empty()
            && !berth_bundle::config::PROPAGATIONS.contains(&m.propagation.as_str())
        {
            return Some(format!("mounts.propagation {}", m.propagation));
        }
        if !m.subpath.is_empty() && kind != Kind::Volume {
            return Some(format!("mounts.subpath of a {} mount", kind.as_str_name()));
        }
        if (m.read_only_non_recursive || m.read_only_force_recursive) && kind != Kind::Bind {
            return Some(format!(
                "mounts.read_only_*_recursive of a {} mount",
                kind.as_str_name()
            ));
        }
        None
    })
}

/// The `volume` filter of docker ps: a mount's volume name or destination (moby).
pub(crate) fn uses_volume(c: &Container, values: &[String]) -> bool {
    c.mount_points.iter().any(|m| {
        values
            .iter()
            .any(|v| (!m.name.is_empty() && *v == m.name) || *v == m.destination)
    })
}

/// The error dockerd gives for two mounts on one path.
fn duplicate(dest: &str) -> ContainerError {
    ContainerError::invalid(format!("Duplicate mount point: {dest}"))
}

/// `/a/b/` → `/a/b`, as Go's filepath.Clean for the paths compared.
fn clean(p: &str) -> String {
    let parts: Vec<&str> = p
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    format!("/{}", parts.join("/"))
}

/// The mode dockerd shows for a mount.
fn mode_of(m: &pb::MountSpec, kind: Kind) -> String {
    if !m.from_binds {
        return String::new();
    }
    let mut parts: Vec<&str> = Vec::new();
    if m.read_only {
        parts.push("ro");
    }
    if !m.relabel.is_empty() {
        parts.push(&m.relabel);
    } else if kind == Kind::Volume {
        parts.push("z");
    }
    if !m.propagation.is_empty() {
        parts.push(&m.propagation);
    }
    if m.no_copy {
        parts.push("nocopy");
    }
    parts.join(",")
}

impl Containers {
    pub(crate) fn volumes_client(&self) -> volumes::volumes_client::VolumesClient<Channel> {
        volumes::volumes_client::VolumesClient::new(self.volumes.clone())
    }

    /// The container's mounts resolved: the volumes (the spec's, and an anonymous one for
    /// each of the image's VOLUMEs no other mount covers) acquired for `id`, bind sources
    /// checked, fresh volumes filled from the image. On error nothing stays acquired.
    pub(crate) async fn resolve_mounts(
        &self,
        id: &str,
        spec: &pb::ContainerSpec,
        rootfs: Option<&pb::RootfsMount>,
    ) -> Result<Vec<pb::MountPoint>, ContainerError> {
        let r = self.resolve(id, spec, rootfs).await;
        if r.is_err() {
            self.release_volumes(id, true).await;
        }
        r
    }

    async fn resolve(
        &self,
        id: &str,
        spec: &pb::ContainerSpec,
        rootfs: Option<&pb::RootfsMount>,
    ) -> Result<Vec<pb::MountPoint>, ContainerError> {
        let mut seen = BTreeSet::new();
        let mut points = Vec::new();
        let mut claims = Vec::new();
        // (index in points, no_copy)
        let mut volume_at = Vec::new();
        for t in spec.tmpfs.keys() {
            if !seen.insert(clean(t)) {
                return Err(duplicate(t));
            }
        }
        for m in &spec.mounts {
            let kind = Kind::try_from(m.r#type).unwrap_or(Kind::Unspecified);
            if !m.target.starts_with('/') {
                return Err(ContainerError::invalid(format!(
                    "invalid mount config for type {:?}: mount path must be absolute",
                    kind.as_str_name()
                        .trim_start_matches("TYPE_")
                        .to_lowercase()
                )));
            }
            if !seen.insert(clean(&m.target)) {
                return Err(duplicate(&m.target));
            }
            let mut p = pb::MountPoint {
                r#type: m.r#type,
                destination: m.target.clone(),
                mode: mode_of(m, kind),
                read_only: m.read_only,
                non_recursive: m.non_recursive,
                read_only_non_recursive: m.read_only_non_recursive
                    || (kind == Kind::Bind && m.read_only && spec.default_read_only_non_recursive),
                read_only_force_recursive: m.read_only_force_recursive,
                ..Default::default()
            };
            match kind {
                Kind::Bind => {
                    bind_source(m).await?;
                    p.source = m.source.clone();
                    p.propagation = if m.propagation.is_empty() {
                        "rprivate".to_owned()
                    } else {
                        m.propagation.clone()
                    };
                }
                Kind::Volume => {
                    p.anonymous = m.source.is_empty();
                    p.subpath = m.subpath.clone();
                    volume_at.push((points.len(), m.no_copy));
                    claims.push(volumes::Claim {
                        name: m.source.clone(),
                        driver: m.volume_driver.clone(),
                        labels: m.volume_labels.clone(),
                        options: m.volume_options.clone(),
                    });
                }
                _ => {
                    p.tmpfs_size = m.tmpfs_size;
                    p.tmpfs_mode = m.tmpfs_mode;
                }
            }
            points.push(p);
        }
        let from = self.volumes_from(spec)?;
        for p in crate::volumes_from::inherit(&from, &seen, clean) {
            seen.insert(clean(&p.destination));
            if p.r#type == Kind::Volume as i32 && !p.name.is_empty() {
                // Referenced by this container too; never copied into.
                volume_at.push((points.len(), true));
                claims.push(volumes::Claim {
                    name: p.name.clone(),
                    driver: p.driver.clone(),
                    ..Default::default()
                });
            }
            points.push(p);
        }
        for path in &spec.image_volumes {
            if !seen.insert(clean(path)) {
                continue;
            }
            volume_at.push((points.len(), false));
            claims.push(volumes::Claim::default());
            points.push(pb::MountPoint {
                r#type: Kind::Volume as i32,
                destination: path.clone(),
                anonymous: true,
                ..Default::default()
            });
        }
        if claims.is_empty() {
            return Ok(points);
        }
        let acquired = self
            .volumes_client()
            .acquire(volumes::AcquireRequest {
                container_id: id.to_owned(),
                claims,
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner()
            .volumes;
        crate::failpoint::hit("create-after-volumes");
        if acquired.len() != volume_at.len() {
            return Err(ContainerError::Internal(anyhow::anyhow!(
                "volumes.Acquire answered {} volumes for {} claims",
                acquired.len(),
                volume_at.len()
            )));
        }
        let mut copies = Vec::new();
        // (container path, volume name) of the volumes with a filesystem of their own.
        let mut own = Vec::new();
        for ((i, no_copy), a) in volume_at.into_iter().zip(acquired) {
            let p = &mut points[i];
            p.name = a.name;
            p.driver = a.driver;
            p.source = a.mountpoint;
            if !no_copy {
                copies.push((p.destination.clone(), PathBuf::from(&p.source)));
                if a.own_filesystem {
                    own.push((p.destination.clone(), p.name.clone()));
                }
            }
        }
        if let Some(rootfs) = rootfs
            && !copies.is_empty()
        {
            let scratch = self.data_dir.join(id).join("copy-up");
            let mounted = self.mount_for_copy(id, rootfs, &scratch, own).await?;
            let rootfs = rootfs.clone();
            let r = blocking(move || crate::copyup::copy_up(&rootfs, &scratch, copies)).await;
            if !mounted.is_empty() {
                self.unmount_volumes(id, mounted).await;
            }
            r.map_err(|e| {
                ContainerError::Internal(anyhow::anyhow!(
                    "copying the image's content into a volume: {e:#}"
                ))
            })?;
        }
        Ok(points)
    }

    /// As dockerd: a volume with a filesystem of its own that is to be filled from an image
    /// directory is mounted for the copy (and unmounted after it, unless another container
    /// uses it). Returns the volumes mounted.
    async fn mount_for_copy(
        &self,
        id: &str,
        rootfs: &pb::RootfsMount,
        scratch: &Path,
        own: Vec<(String, String)>,
    ) -> Result<Vec<String>, ContainerError> {
        if own.is_empty() {
            return Ok(Vec::new());
        }
        let (rootfs, scratch) = (rootfs.clone(), scratch.to_owned());
        let dests = own.iter().map(|(d, _)| d.clone()).collect();
        let dirs = blocking(move || crate::copyup::image_dirs(&rootfs, &scratch, dests))
            .await
            .map_err(|e| {
                ContainerError::Internal(anyhow::anyhow!("reading the image's directories: {e:#}"))
            })?;
        let names: Vec<String> = own
            .into_iter()
            .zip(dirs)
            .filter_map(|((_, name), dir)| dir.then_some(name))
            .collect();
        if let Err(e) = self.mount_volumes(id, names.clone()).await {
            self.unmount_volumes(id, names).await;
            return Err(ContainerError::new(
                e.kind(),
                format!("failed to populate volume: {e}"),
            ));
        }
        Ok(names)
    }

    /// At start: the volumes service's references made to agree with the records. A
    /// container it lists that has no record (a create that died between Acquire and its
    /// record, a remove that died before Release) is released; its anonymous volumes are kept
    /// (which of the two it was is not known, and `rm` without `-v` keeps them), dangling
    /// for `docker volume prune`. A recorded container's volume that lacks its reference is
    /// acquired again.
    pub(crate) async fn reconcile_volumes(&self) {
        let mut delay = std::time::Duration::from_millis(100);
        let vols = loop {
            match self
                .volumes_client()
                .list(volumes::ListRequest::default())
                .await
            {
                Ok(r) => break r.into_inner().volumes,
                Err(e) if delay < std::time::Duration::from_secs(30) => {
                    tracing::debug!(error = %e, "volume references: volumes not ready");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "volume references not reconciled");
                    return;
                }
            }
        };
        let recorded = match self.store.all() {
            Ok(all) => all,
            Err(e) => {
                tracing::error!(error = %e, "volume references: reading the store");
                return;
            }
        };
        let ids: BTreeSet<&str> = recorded.iter().map(|c| c.id.as_str()).collect();
        let orphans: BTreeSet<&str> = vols
            .iter()
            .flat_map(|v| v.containers.iter().map(String::as_str))
            .filter(|id| !ids.contains(id))
            .collect();
        for id in orphans {
            let creating = self
                .creating
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(id);
            if !creating {
                tracing::info!(
                    id,
                    "releasing the volumes of a container that has no record"
                );
                self.release_volumes(id, false).await;
            }
        }
        for c in &recorded {
            let claims: Vec<volumes::Claim> = c
                .mount_points
                .iter()
                .filter(|m| !m.name.is_empty())
                .filter(|m| {
                    !vols
                        .iter()
                        .any(|v| v.name == m.name && v.containers.contains(&c.id))
                })
                .map(|m| volumes::Claim {
                    name: m.name.clone(),
                    driver: m.driver.clone(),
                    ..Default::default()
                })
                .collect();
            if claims.is_empty() {
                continue;
            }
            if let Err(e) = self
                .volumes_client()
                .acquire(volumes::AcquireRequest {
                    container_id: c.id.clone(),
                    claims,
                })
                .await
            {
                tracing::warn!(error = %e, id = %c.id, "acquiring a container's volumes again");
            }
        }
        self.reconcile_volume_users().await;
    }

    /// dockerd's volume `mount` and `unmount` events, one per volume of the container.
    pub(crate) fn volume_events(&self, c: &Container, action: &str) {
        let Ok(a) = action.parse::<berth_types::EventAction>() else {
            return;
        };
        for m in c.mount_points.iter().filter(|m| !m.name.is_empty()) {
            let mut actor = berth_types::Actor {
                id: m.name.clone(),
                ..Default::default()
            };
            let attrs = &mut actor.attributes;
            attrs.insert("container".to_owned(), c.id.clone());
            attrs.insert("driver".to_owned(), m.driver.clone());
            if action == "mount" {
                attrs.insert("destination".to_owned(), m.destination.clone());
                attrs.insert("propagation".to_owned(), m.propagation.clone());
                attrs.insert("read/write".to_owned(), (!m.read_only).to_string());
            }
            self.events.publish(&berth_types::Event::new(
                berth_types::EventType::Volume,
                a.clone(),
                actor,
                crate::container::now_nanos(),
            ));
        }
    }

    /// Drops the container's volume references (and with `anonymous`, its anonymous
    /// volumes). A failure is logged: the references stay until the next release.
    pub(crate) async fn release_volumes(&self, id: &str, anonymous: bool) {
        if let Err(e) = self
            .volumes_client()
            .release(volumes::ReleaseRequest {
                container_id: id.to_owned(),
                remove_anonymous: anonymous,
            })
            .await
        {
            tracing::warn!(error = %e, id, "releasing the container's volumes");
        }
    }
}

/// A bind source: made when asked (`-v`), else it must exist (`--mount`).
async fn bind_source(m: &pb::MountSpec) -> Result<(), ContainerError> {
    if !m.source.starts_with('/') {
        return Err(ContainerError::invalid(format!(
            "invalid mount config for type \"bind\": invalid mount path: '{}' mount path must be absolute",
            m.source
        )));
    }
    match tokio::fs::symlink_metadata(&m.source).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && m.create_source => {
            tokio::fs::create_dir_all(&m.source).await.map_err(|e| {
                ContainerError::invalid(format!(
                    "error while creating mount source path '{}': {e}",
                    m.source
                ))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(ContainerError::invalid(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                m.source
            )))
        }
        Err(e) => Err(ContainerError::invalid(format!(
            "invalid mount config for type \"bind\": {}: {e}",
            m.source
        ))),
    }
}

/// The bundle's mounts for a container: binds of volumes' data and bind sources, tmpfs
/// mounts from `--mount type=tmpfs` and `--tmpfs`.
pub(crate) fn into_bundle(
    c: &Container,
    config: &mut berth_bundle::Config,
) -> Result<(), ContainerError> {
    for p in &c.mount_points {
        let kind = Kind::try_from(p.r#type).unwrap_or(Kind::Unspecified);
        if kind == Kind::Tmpfs {
            let mut options = Vec::new();
            if p.read_only {
                options.push("ro".to_owned());
            }
            options.extend(["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()]);
            if p.tmpfs_size > 0 {
                options.push(format!("size={}", p.tmpfs_size));
            }
            if p.tmpfs_mode != 0 {
                options.push(format!("mode={:o}", p.tmpfs_mode));
            }
            config.tmpfs.push(berth_bundle::TmpfsMount {
                destination: p.destination.clone(),
                options,
            });
            continue;
        }
        let mut options = vec![if p.non_recursive { "bind" } else { "rbind" }.to_owned()];
        if p.read_only {
            options.push(crate::read_only::option(p)?.to_owned());
        }
        if berth_bundle::config::PROPAGATIONS.contains(&p.propagation.as_str()) {
            options.push(p.propagation.clone());
        }
        config.mounts.push(berth_bundle::BindMount {
            source: PathBuf::from(&p.source),
            destination: p.destination.clone(),
            options,
            subpath: (!p.subpath.is_empty()).then(|| p.subpath.clone()),
        });
    }
    for (dest, opts) in &c.spec.tmpfs {
        // Docker's defaults for --tmpfs: noexec, nosuid, nodev; the options given on top.
        let mut options = vec!["nosuid".to_owned(), "nodev".to_owned(), "noexec".to_owned()];
        for o in opts.split(',').filter(|o| !o.is_empty()) {
            match o {
                "exec" => options.retain(|x| x != "noexec"),
                "suid" => options.retain(|x| x != "nosuid"),
                "dev" => options.retain(|x| x != "nodev"),
                o if !options.iter().any(|x| x == o) => options.push(o.to_owned()),
                _ => {}
            }
        }
        config.tmpfs.push(berth_bundle::TmpfsMount {
            destination: dest.clone(),
            options,
        });
    }
    Ok(())
}

/// Runs blocking work on the blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| anyhow::anyhow!("copy-up task: {e}"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_mounts_from_the_resolved_points() {
        let mut c = crate::container::tests::sample('a', "c");
        c.mount_points = vec![
            pb::MountPoint {
                r#type: Kind::Volume as i32,
                source: "/v/_data".to_owned(),
                destination: "/data".to_owned(),
                read_only: true,
                read_only_non_recursive: true,
                ..Default::default()
            },
            pb::MountPoint {
                r#type: Kind::Tmpfs as i32,
                destination: "/t".to_owned(),
                tmpfs_size: 1 << 20,
                ..Default::default()
            },
        ];
        c.spec
            .tmpfs
            .insert("/run".to_owned(), "exec,size=1m".to_owned());
        let mut cfg = berth_bundle::Config::new(
            c.id.clone(),
            berth_bundle::Mount {
                kind: "overlay".to_owned(),
                source: "overlay".to_owned(),
                options: Vec::new(),
            },
            berth_bundle::Process::new(vec!["sh".to_owned()]),
            "berth/x".to_owned(),
        );
        into_bundle(&c, &mut cfg).unwrap();
        assert_eq!(cfg.mounts[0].options, ["rbind", "ro"]);
        assert_eq!(
            cfg.tmpfs[0].options,
            ["nosuid", "nodev", "noexec", "size=1048576"]
        );
        assert_eq!(cfg.tmpfs[1].options, ["nosuid", "nodev", "size=1m"]);
        cfg.validate().unwrap();
    }
}
