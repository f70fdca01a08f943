//! The gRPC shell: decode, call the domain, encode. No logic here.

use std::{pin::Pin, sync::Arc};

use berth_errors::{HasKind, status_from};
use berth_proto::images::v1::{self as pb, images_server};
use berth_types::ImageRef;
use futures::Stream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use crate::{
    ImagesError, grpc_streams,
    import::ImportSpec,
    pipe::Line,
    platform::Platform,
    progress::{Progress, ProgressSink},
    pull::PullSpec,
    push::PushSpec,
    registry::Credentials,
    service::ImageService,
};

pub(crate) struct GrpcImages {
    domain: Arc<ImageService>,
    /// The runtime service, for RUN steps (connected lazily).
    runtime: berth_service::Channel,
    /// The running builds that have an ID (`POST /build/cancel`).
    builds: Arc<crate::build::cancel::BuildJobs>,
    /// The labels of this instance's RUN containers.
    owner: crate::build::reap::Owner,
    /// Where a gateway on this host hands build contexts over ([`crate::spool`]).
    spool: std::path::PathBuf,
}

impl GrpcImages {
    pub(crate) fn new(
        domain: Arc<ImageService>,
        runtime: berth_service::Channel,
        owner: crate::build::reap::Owner,
        spool: std::path::PathBuf,
    ) -> GrpcImages {
        GrpcImages {
            domain,
            runtime,
            builds: Arc::default(),
            owner,
            spool,
        }
    }
}

type ProgressStream = Pin<Box<dyn Stream<Item = Result<pb::Progress, Status>> + Send>>;

fn to_pb(p: Progress) -> pb::Progress {
    pb::Progress {
        id: p.id,
        status: p.status,
        current: p.current,
        total: p.total,
        error: String::new(),
        error_kind: String::new(),
    }
}

fn mounts(m: Vec<crate::snapshot::Mount>, image: berth_types::Digest) -> pb::MountsResponse {
    pb::MountsResponse {
        mounts: m
            .into_iter()
            .map(|m| pb::Mount {
                r#type: m.kind,
                source: m.source,
                options: m.options,
            })
            .collect(),
        image_id: image.to_string(),
    }
}

fn credentials(a: Option<pb::Auth>) -> Credentials {
    let a = a.unwrap_or_default();
    Credentials {
        username: a.username,
        password: a.password,
        registry_token: a.registry_token,
    }
}

fn invalid(e: impl std::fmt::Display) -> Status {
    status_from(&ImagesError::InvalidArgument(e.to_string()))
}

#[tonic::async_trait]
impl images_server::Images for GrpcImages {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        self.domain
            .info()
            .map(Response::new)
            .map_err(|e| status_from(&e))
    }

    async fn disk_usage(
        &self,
        _: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<pb::DiskUsageResponse>, Status> {
        self.domain
            .disk_usage()
            .map(Response::new)
            .map_err(|e| status_from(&e))
    }

    type PullStream = ProgressStream;

    /// Progress messages, then either the end of the stream or one message carrying the error.
    async fn pull(
        &self,
        req: Request<pb::PullRequest>,
    ) -> Result<Response<ProgressStream>, Status> {
        let req = req.into_inner();
        let reference: ImageRef = req.reference.parse().map_err(invalid)?;
        // Without a tag or digest the CLI asks for every tag (`docker pull -a`).
        let req_all_tags = req.all_tags && reference.is_name_only();
        let platform = Platform::parse(&req.platform).map_err(|e| status_from(&e))?;
        let spec = PullSpec {
            reference,
            platform,
            credentials: credentials(req.auth),
        };
        let (tx, rx) = mpsc::channel::<Progress>(64);
        let (out_tx, out_rx) = mpsc::channel::<Result<pb::Progress, Status>>(64);
        let domain = self.domain.clone();
        tokio::spawn(async move {
            let forward = {
                let out_tx = out_tx.clone();
                async move {
                    let mut rx = rx;
                    while let Some(p) = rx.recv().await {
                        let _ = out_tx.send(Ok(to_pb(p))).await;
                    }
                }
            };
            let all_tags = req_all_tags;
            let work = async move {
                let sink = ProgressSink::new(tx);
                if all_tags {
                    domain.pull_all_tags(spec, sink).await
                } else {
                    domain.pull(spec, sink).await.map(|_| ())
                }
            };
            let (result, ()) = tokio::join!(work, forward);
            if let Err(e) = result {
                let _ = out_tx
                    .send(Ok(pb::Progress {
                        error: e.to_string(),
                        error_kind: e.kind().as_str().to_owned(),
                        ..Default::default()
                    }))
                    .await;
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(out_rx))))
    }

    async fn list(
        &self,
        req: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let req = req.into_inner();
        self.domain
            .list(req.all, &req.filters.unwrap_or_default())
            .map(|images| Response::new(pb::ListResponse { images }))
            .map_err(|e| status_from(&e))
    }

    async fn inspect(
        &self,
        req: Request<pb::InspectRequest>,
    ) -> Result<Response<pb::InspectResponse>, Status> {
        let image = self
            .domain
            .inspect(&req.into_inner().name)
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(pb::InspectResponse {
            id: image.id.clone(),
            image: Some(image),
        }))
    }

    async fn history(
        &self,
        req: Request<pb::InspectRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        self.domain
            .history(&req.into_inner().name)
            .map(|entries| Response::new(pb::HistoryResponse { entries }))
            .map_err(|e| status_from(&e))
    }

    async fn tag(&self, req: Request<pb::TagRequest>) -> Result<Response<pb::TagResponse>, Status> {
        let r = req.into_inner();
        self.domain
            .tag(&r.source, &r.repo, &r.tag)
            .map(|()| Response::new(pb::TagResponse {}))
            .map_err(|e| status_from(&e))
    }

    async fn remove(
        &self,
        req: Request<pb::RemoveRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        let r = req.into_inner();
        let removed = if r.no_prune {
            self.domain.remove_pruning(&r.name, r.force, false)
        } else {
            self.domain.remove(&r.name, r.force)
        };
        removed
            .map(|items| Response::new(pb::RemoveResponse { items }))
            .map_err(|e| status_from(&e))
    }

    async fn prune(
        &self,
        req: Request<pb::PruneRequest>,
    ) -> Result<Response<pb::PruneResponse>, Status> {
        self.domain
            .prune(&req.into_inner().filters.unwrap_or_default())
            .map(|(items, reclaimed)| {
                Response::new(pb::PruneResponse {
                    items,
                    space_reclaimed: reclaimed as i64,
                })
            })
            .map_err(|e| status_from(&e))
    }

    async fn prepare(
        &self,
        req: Request<pb::PrepareRequest>,
    ) -> Result<Response<pb::MountsResponse>, Status> {
        let r = req.into_inner();
        self.domain
            .prepare(&r.key, &r.image)
            .map(|(m, id)| Response::new(mounts(m, id)))
            .map_err(|e| status_from(&e))
    }

    async fn mounts(
        &self,
        req: Request<pb::SnapshotKey>,
    ) -> Result<Response<pb::MountsResponse>, Status> {
        self.domain
            .mounts(&req.into_inner().key)
            .map(|(m, id)| Response::new(mounts(m, id)))
            .map_err(|e| status_from(&e))
    }

    async fn remove_snapshot(
        &self,
        req: Request<pb::SnapshotKey>,
    ) -> Result<Response<pb::RemoveSnapshotResponse>, Status> {
        self.domain
            .remove_snapshot(&req.into_inner().key)
            .map(|()| Response::new(pb::RemoveSnapshotResponse {}))
            .map_err(|e| status_from(&e))
    }

    async fn usage(
        &self,
        req: Request<pb::SnapshotKey>,
    ) -> Result<Response<pb::UsageResponse>, Status> {
        self.domain
            .usage(&req.into_inner().key)
            .map(|(size, inodes)| {
                Response::new(pb::UsageResponse {
                    size: size as i64,
                    inodes: inodes as i64,
                })
            })
            .map_err(|e| status_from(&e))
    }

    async fn snapshots(
        &self,
        _: Request<pb::SnapshotsRequest>,
    ) -> Result<Response<pb::SnapshotsResponse>, Status> {
        self.domain
            .snapshot_list()
            .map(|list| {
                Response::new(pb::SnapshotsResponse {
                    snapshots: list
                        .into_iter()
                        .map(|s| pb::SnapshotInfo {
                            key: s.key,
                            created: s.created,
                        })
                        .collect(),
                })
            })
            .map_err(|e| status_from(&e))
    }

    async fn login(
        &self,
        req: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let auth = req.into_inner().auth.unwrap_or_default();
        self.domain
            .login(&auth.server_address, credentials(Some(auth.clone())))
            .await
            .map(|()| {
                Response::new(pb::LoginResponse {
                    status: "Login Succeeded".to_owned(),
                    identity_token: String::new(),
                })
            })
            .map_err(|e| status_from(&e))
    }

    type SaveStream = crate::grpc_streams::ChunkStream;

    /// Names are resolved before the first chunk, so an unknown one is an error status.
    async fn save(
        &self,
        req: Request<pb::SaveRequest>,
    ) -> Result<Response<Self::SaveStream>, Status> {
        let names = req.into_inner().names;
        let domain = self.domain.clone();
        let plan = grpc_streams::blocking(move || domain.plan_save(&names))
            .await
            .map_err(|e| status_from(&e))?;
        let domain = self.domain.clone();
        Ok(Response::new(grpc_streams::chunks(move |out| {
            domain.write_save(&plan, out)
        })))
    }

    type LoadStream = crate::grpc_streams::MessageStream;

    /// The archive streams in; the stream out carries the `Loaded image` lines or the error.
    async fn load(
        &self,
        req: Request<tonic::Streaming<pb::LoadRequest>>,
    ) -> Result<Response<Self::LoadStream>, Status> {
        let mut input = req.into_inner();
        let first = input.message().await?.unwrap_or_default();
        let reader = grpc_streams::upload(
            (0, first.data.into()),
            input,
            |m| grpc_streams::data_part(m.data.into(), m.upload_error),
            None,
        );
        let domain = self.domain.clone();
        Ok(Response::new(grpc_streams::lines(move |out| async move {
            for line in grpc_streams::blocking(move || domain.load(reader)).await? {
                out.send(Line::Stream(line)).await;
            }
            Ok(())
        })))
    }

    type ImportStream = crate::grpc_streams::MessageStream;

    /// The options (first message) are checked before the tarball is read.
    async fn import(
        &self,
        req: Request<tonic::Streaming<pb::ImportRequest>>,
    ) -> Result<Response<Self::ImportStream>, Status> {
        let mut input = req.into_inner();
        let first = input.message().await?.unwrap_or_default();
        let o = first.options.unwrap_or_default();
        let spec = ImportSpec {
            repo: o.repo,
            tag: o.tag,
            changes: o.changes,
            message: o.message,
            platform: o.platform,
            source: if o.source.is_empty() {
                "-".to_owned()
            } else {
                o.source
            },
        };
        let plan = spec.plan().map_err(|e| status_from(&e))?;
        let reader = grpc_streams::upload(
            (0, first.data.into()),
            input,
            |m| grpc_streams::data_part(m.data.into(), m.upload_error),
            None,
        );
        let domain = self.domain.clone();
        Ok(Response::new(grpc_streams::lines(move |out| async move {
            let rec = grpc_streams::blocking(move || domain.import(plan, reader)).await?;
            out.status("", rec.id.to_string()).await;
            Ok(())
        })))
    }

    async fn distribution(
        &self,
        req: Request<pb::DistributionRequest>,
    ) -> Result<Response<pb::DistributionResponse>, Status> {
        let req = req.into_inner();
        let reference: ImageRef = req.reference.parse().map_err(invalid)?;
        let d = self
            .domain
            .distribution(&reference, &credentials(req.auth))
            .await
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(pb::DistributionResponse {
            media_type: d.media_type,
            digest: d.digest.to_string(),
            size: d.size,
            platforms: d
                .platforms
                .into_iter()
                .map(|p| pb::RegistryPlatform {
                    architecture: p.architecture,
                    os: p.os,
                    os_version: p.os_version,
                    os_features: p.os_features,
                    variant: p.variant,
                })
                .collect(),
        }))
    }

    type BuildStream = crate::grpc_build::BuildStream;

    async fn build(
        &self,
        req: Request<tonic::Streaming<pb::BuildRequest>>,
    ) -> Result<Response<Self::BuildStream>, Status> {
        crate::grpc_build::build(
            self.domain.clone(),
            self.runtime.clone(),
            self.builds.clone(),
            self.owner.labels(),
            &self.spool,
            req,
        )
        .await
    }

    async fn cancel_build(
        &self,
        req: Request<pb::CancelBuildRequest>,
    ) -> Result<Response<pb::CancelBuildResponse>, Status> {
        Ok(Response::new(crate::grpc_build::cancel(
            &self.builds,
            req.into_inner(),
        )))
    }

    async fn prune_build_cache(
        &self,
        _req: Request<pb::PruneBuildCacheRequest>,
    ) -> Result<Response<pb::PruneBuildCacheResponse>, Status> {
        Ok(Response::new(crate::grpc_build::prune_cache(&self.domain)))
    }

    type PushStream = crate::grpc_streams::MessageStream;

    async fn push(
        &self,
        req: Request<pb::PushRequest>,
    ) -> Result<Response<Self::PushStream>, Status> {
        let r = req.into_inner();
        let spec = PushSpec {
            name: r.name,
            tag: r.tag,
            credentials: credentials(r.auth),
        };
        let domain = self.domain.clone();
        Ok(Response::new(grpc_streams::lines(move |out| async move {
            domain.push(spec, out).await
        })))
    }

    async fn changes(
        &self,
        req: Request<pb::SnapshotKey>,
    ) -> Result<Response<pb::ChangesResponse>, Status> {
        let key = req.into_inner().key;
        let domain = self.domain.clone();
        let changes = grpc_streams::blocking(move || domain.snapshot_changes(&key))
            .await
            .map_err(|e| status_from(&e))?;
        let changes = changes
            .into_iter()
            .map(|c| pb::Change {
                path: c.path,
                kind: match c.kind {
                    crate::diff::Kind::Modified => pb::change::Kind::Modified,
                    crate::diff::Kind::Added => pb::change::Kind::Added,
                    crate::diff::Kind::Deleted => pb::change::Kind::Deleted,
                } as i32,
            })
            .collect();
        Ok(Response::new(pb::ChangesResponse { changes }))
    }

    async fn commit(
        &self,
        req: Request<pb::CommitRequest>,
    ) -> Result<Response<pb::CommitResponse>, Status> {
        let spec = crate::commit::CommitSpec::from_proto(req.into_inner());
        let domain = self.domain.clone();
        let rec = grpc_streams::blocking(move || domain.commit(spec))
            .await
            .map_err(|e| status_from(&e))?;
        Ok(Response::new(pb::CommitResponse {
            id: rec.id.to_string(),
        }))
    }
}
