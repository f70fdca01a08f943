//! The container filesystem API: docker cp (stat, archive, extract), export, diff and commit.
//! The file operations run in a filesystem view (`fsview`) and publish dockerd's events
//! (`archive-path`, `extract-to-dir`, `export`); diff and commit ask the images service, which
//! owns the snapshot, with the container's config for a commit (event `commit`).
//!
//! Commit's `pause` (the default): a running container is frozen while the images service
//! reads its writable layer and thawed after, as dockerd does (with its `pause` and
//! `unpause` events); a failed pause is ignored, as dockerd ignores it.

use std::{
    io::{self, Write},
    sync::Arc,
};

use berth_proto::{images::v1 as images, runtime::v1 as pb};
use tokio::sync::mpsc;
use tonic::Status;

use crate::{
    archive::{self, FsError},
    container::{Container, Status as St},
    container_error::ContainerError,
    fsview::{self, Source},
    lifecycle::Containers,
};

/// Held while a view of a stopped container is open.
type Guard = Option<tokio::sync::OwnedRwLockReadGuard<()>>;

/// Chunks of a tar stream sent to a gRPC stream.
pub(crate) type Chunks = mpsc::Receiver<Result<pb::ArchiveChunk, Status>>;

const CHUNK: usize = 64 * 1024;

/// Writes into the channel, a chunk at a time, from a blocking thread.
struct ChunkWriter {
    tx: mpsc::Sender<Result<pb::ArchiveChunk, Status>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx
            .blocking_send(Ok(pb::ArchiveChunk { stat: None, data }))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(b);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

fn not_found(path: &str, name: &str) -> ContainerError {
    ContainerError::not_found(format!(
        "Could not find the file {path} in container {name}"
    ))
}

fn fs_error(e: FsError, path: &str, name: &str) -> ContainerError {
    match e {
        FsError::NotFound => not_found(path, name),
        FsError::Invalid(m) => ContainerError::invalid(m),
        FsError::Io(e) => match berth_service::storage_full(&e) {
            Some(msg) => ContainerError::Internal(anyhow::anyhow!("{msg}")),
            None => ContainerError::Internal(anyhow::anyhow!("{e}")),
        },
    }
}

fn view_error(e: String) -> ContainerError {
    ContainerError::Internal(anyhow::anyhow!("{e}"))
}

fn status_of(e: &ContainerError) -> Status {
    berth_errors::status_from(e)
}

/// The bytes of an upload arriving on a channel, as a reader for the view's thread.
pub(crate) struct UploadReader {
    pub(crate) rx: mpsc::Receiver<Result<Vec<u8>, String>>,
    pub(crate) cur: io::Cursor<Vec<u8>>,
}

impl io::Read for UploadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.cur.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            match self.rx.blocking_recv() {
                None => return Ok(0),
                Some(Ok(data)) => self.cur = io::Cursor::new(data),
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
    }
}

impl Containers {
    /// The view of the container `name`, with the container as it is once no start is under
    /// way; for a stopped container, the guard that keeps it from starting meanwhile.
    async fn view_of(&self, name: &str) -> Result<(Container, Source, Guard), ContainerError> {
        let c = self.find(name)?;
        let guard = self.fs_lock(&c.id).read_owned().await;
        let c = self.find(&c.id)?;
        let scratch = self
            .data_dir
            .join(&c.id)
            .join(format!("fs-{}", uuid::Uuid::new_v4().simple()));
        let mut src = Source::of(&c, scratch).map_err(view_error)?;
        if let Source::Stopped { mounts, .. } = &mut src {
            // As dockerd's network mounts: the hosts, hostname and resolv.conf the container
            // ran with, once it has run (they stay in its bundle until it is removed).
            for f in ["hosts", "hostname", "resolv.conf"] {
                let source = self.bundle(&c.id).join("etc").join(f);
                let destination = format!("/etc/{f}");
                if source.is_file() && !mounts.iter().any(|m| m.destination == destination) {
                    mounts.push(pb::MountPoint {
                        source: source.display().to_string(),
                        destination,
                        read_only: c.spec.security.as_ref().is_some_and(|s| s.readonly_rootfs),
                        non_recursive: true,
                        ..Default::default()
                    });
                }
            }
        }
        let guard = match src {
            Source::Running { .. } => None,
            Source::Stopped { .. } => Some(guard),
        };
        Ok((c, src, guard))
    }

    /// HEAD /containers/{id}/archive.
    pub(crate) async fn stat_path(
        &self,
        req: &pb::PathRequest,
    ) -> Result<pb::PathStat, ContainerError> {
        let (_, src, guard) = self.view_of(&req.id).await?;
        let path = archive::container_path(&req.path);
        let rx = fsview::spawn(src, move || {
            let _guard = guard;
            archive::stat(&path)
        });
        rx.await
            .map_err(|_| view_error("the filesystem view ended".to_owned()))?
            .map_err(view_error)?
            .map_err(|e| fs_error(e, &req.path, &req.id))
    }

    /// GET /containers/{id}/archive: the stat first, then the tar.
    pub(crate) async fn archive_path(
        &self,
        req: &pb::PathRequest,
    ) -> Result<Chunks, ContainerError> {
        let (c, src, guard) = self.view_of(&req.id).await?;
        let path = archive::container_path(&req.path);
        let (stat_tx, stat_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = mpsc::channel(4);
        let out = tx.clone();
        let (given, name) = (req.path.clone(), req.id.clone());
        let done = fsview::spawn(src, move || {
            let _guard = guard;
            let stat = match archive::stat(&path) {
                Ok(s) => s,
                Err(e) => {
                    let _ = stat_tx.send(Err(e));
                    return;
                }
            };
            let _ = stat_tx.send(Ok(stat.clone()));
            if out
                .blocking_send(Ok(pb::ArchiveChunk {
                    stat: Some(stat),
                    data: Vec::new(),
                }))
                .is_err()
            {
                return;
            }
            let mut w = ChunkWriter {
                tx: out.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let r = archive::archive(&path, &mut w).and_then(|()| Ok(w.flush()?));
            if let Err(e) = r {
                let _ = out.blocking_send(Err(status_of(&fs_error(e, &given, &name))));
            }
        });
        match stat_rx.await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(fs_error(e, &req.path, &req.id)),
            // The view failed before the closure ran.
            Err(_) => {
                let e = done
                    .await
                    .map_err(|_| view_error("the filesystem view ended".to_owned()))?
                    .err()
                    .unwrap_or_default();
                return Err(view_error(e));
            }
        }
        self.event(&c, "archive-path", &[]);
        drop(tx);
        Ok(rx)
    }

    /// PUT /containers/{id}/archive: the tar read from `input`.
    pub(crate) async fn extract_to_dir(
        &self,
        o: &pb::ExtractOptions,
        input: UploadReader,
    ) -> Result<(), ContainerError> {
        let (c, src, guard) = self.view_of(&o.id).await?;
        let path = archive::container_path(&o.path);
        let x = archive::Extract {
            no_overwrite_dir_non_dir: o.no_overwrite_dir_non_dir,
            copy_uid_gid_user: o.copy_uid_gid.then(|| c.process().user),
            mounts: c.mount_points.clone(),
            readonly_rootfs: c.spec.security.as_ref().is_some_and(|s| s.readonly_rootfs),
        };
        let rx = fsview::spawn(src, move || {
            let _guard = guard;
            archive::extract(&path, input, &x)
        });
        rx.await
            .map_err(|_| view_error("the filesystem view ended".to_owned()))?
            .map_err(view_error)?
            .map_err(|e| fs_error(e, &o.path, &o.id))?;
        self.event(&c, "extract-to-dir", &[]);
        Ok(())
    }

    /// docker export: the root filesystem mounted read-only (its writable layer as the top
    /// lower layer), without volumes, as a tar.
    pub(crate) async fn export(
        self: &std::sync::Arc<Self>,
        id: &str,
    ) -> Result<Chunks, ContainerError> {
        let c = self.find(id)?;
        refuse_dead(&c, "export")?;
        let mut rootfs = c
            .rootfs
            .clone()
            .ok_or_else(|| view_error(format!("container {} has no rootfs", c.id)))?;
        // Read-only: the writable layer joins the lower ones, so that a running container's
        // overlay keeps its upper and work directories to itself.
        if rootfs.r#type == "overlay" {
            let opt = |k: &str| {
                rootfs
                    .options
                    .iter()
                    .find_map(|o| o.strip_prefix(k).map(str::to_owned))
            };
            let lower = opt("lowerdir=").unwrap_or_default();
            let upper = opt("upperdir=").unwrap_or_default();
            rootfs.options = vec![format!("lowerdir={upper}:{lower}")];
        }
        let scratch = self
            .data_dir
            .join(&c.id)
            .join(format!("fs-{}", uuid::Uuid::new_v4().simple()));
        let src = Source::Stopped {
            rootfs,
            mounts: Vec::new(),
            scratch,
        };
        let (tx, rx) = mpsc::channel(4);
        let out = tx.clone();
        let c_id = c.id.clone();
        let done = fsview::spawn(src, move || {
            let mut w = ChunkWriter {
                tx: out.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let r =
                archive::export(std::path::Path::new("/"), &mut w).and_then(|()| Ok(w.flush()?));
            if let Err(e) = r {
                let msg = match e {
                    FsError::NotFound => "a file vanished".to_owned(),
                    FsError::Invalid(m) => m,
                    FsError::Io(e) => e.to_string(),
                };
                let _ = out.blocking_send(Err(Status::internal(format!(
                    "Error exporting container {}: {msg}",
                    c.id
                ))));
                return false;
            }
            true
        });
        drop(tx);
        let this = self.clone();
        tokio::spawn(async move {
            if let Ok(Ok(true)) = done.await
                && let Ok(c) = this.find(&c_id)
            {
                this.event(&c, "export", &[]);
            }
        });
        Ok(rx)
    }

    /// docker diff: the images service's answer, as it is.
    pub(crate) async fn changes(
        &self,
        id: &str,
    ) -> Result<images::ChangesResponse, ContainerError> {
        let c = self.find(id)?;
        Ok(self
            .images_client()
            .changes(images::SnapshotKey { key: c.id.clone() })
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner())
    }

    /// docker commit. It runs in a task of its own, so that a client that goes away
    /// mid-commit does not leave the container paused.
    pub(crate) async fn commit(
        self: &Arc<Self>,
        req: &pb::CommitRequest,
    ) -> Result<pb::CommitResponse, ContainerError> {
        let c = self.find(&req.id)?;
        refuse_dead(&c, "commit")?;
        let this = self.clone();
        let req = req.clone();
        tokio::spawn(async move {
            let work = this.commit_snapshot(&c, &req);
            this.paused_during(&c, req.pause, work).await
        })
        .await
        .map_err(|e| ContainerError::Internal(e.into()))?
    }

    /// The commit itself: the images service makes the image; then the event.
    async fn commit_snapshot(
        &self,
        c: &Container,
        req: &pb::CommitRequest,
    ) -> Result<pb::CommitResponse, ContainerError> {
        let container = crate::commit_config::image_config(c);
        let (config, defaults) = match &req.config {
            Some(user) => (crate::commit_config::from_request(user), Some(container)),
            None => (container, None),
        };
        let p = c.process();
        let r = self
            .images_client()
            .commit(images::CommitRequest {
                snapshot_key: c.id.clone(),
                config: Some(config),
                defaults,
                changes: req.changes.clone(),
                repo: req.repo.clone(),
                tag: req.tag.clone(),
                comment: req.comment.clone(),
                author: req.author.clone(),
                created_by: p
                    .cmd
                    .as_ref()
                    .map(|l| l.values.join(" "))
                    .unwrap_or_default(),
                container_id: c.id.clone(),
                container: Some(crate::commit_config::fields(c)),
            })
            .await
            .map_err(|e| ContainerError::upstream(&e))?
            .into_inner();
        let image_ref = if req.repo.is_empty() {
            String::new()
        } else {
            let tag = if req.tag.is_empty() {
                "latest"
            } else {
                &req.tag
            };
            format!("{}:{tag}", req.repo)
        };
        self.event(
            c,
            "commit",
            &[
                ("comment", req.comment.clone()),
                ("imageID", r.id.clone()),
                ("imageRef", image_ref),
            ],
        );
        Ok(pb::CommitResponse { id: r.id })
    }
}

/// dockerd refuses to export or commit a dead container or one being removed.
fn refuse_dead(c: &Container, what: &str) -> Result<(), ContainerError> {
    match c.state.status {
        St::Dead => Err(ContainerError::conflict(format!(
            "You cannot {what} container {} which is Dead",
            c.id
        ))),
        St::Removing => Err(ContainerError::conflict(format!(
            "You cannot {what} container {} which is being removed",
            c.id
        ))),
        _ => Ok(()),
    }
}
