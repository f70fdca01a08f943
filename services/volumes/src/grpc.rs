//! The gRPC shell: decode, call the domain, encode. No logic here. The domain's calls touch
//! the disk, so they run on the blocking pool; but `docker volume create` and `rm` of a plain
//! volume (a few directories and one commit) run on the service's thread when no other
//! operation holds the domain's lock: the two thread hops of the pool were a good part of
//! their latency, and they never wait for another operation there.

use std::sync::Arc;

use berth_errors::respond;
use berth_proto::volumes::v1::{self as pb, volumes_server};
use tonic::{Request, Response, Status};

use crate::{VolumesError, info::Volumes};

pub(crate) struct GrpcVolumes {
    domain: Arc<Volumes>,
}

impl GrpcVolumes {
    pub(crate) fn new(domain: Volumes) -> GrpcVolumes {
        GrpcVolumes {
            domain: Arc::new(domain),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Volumes) -> Result<T, VolumesError> + Send + 'static,
    ) -> Result<Response<T>, Status> {
        let d = self.domain.clone();
        let r = tokio::task::spawn_blocking(move || f(&d))
            .await
            .map_err(|e| Status::internal(format!("volumes task: {e}")))?;
        respond(r)
    }
}

#[tonic::async_trait]
impl volumes_server::Volumes for GrpcVolumes {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        self.run(|d| d.info()).await
    }

    async fn disk_usage(
        &self,
        _: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<pb::DiskUsageResponse>, Status> {
        self.run(|d| d.disk_usage()).await
    }

    async fn create(&self, r: Request<pb::CreateRequest>) -> Result<Response<pb::Volume>, Status> {
        let r = r.into_inner();
        if let Some(_g) = self.domain.try_lock() {
            return respond(self.domain.create_locked(r));
        }
        self.run(move |d| d.create(r)).await
    }

    async fn list(
        &self,
        r: Request<pb::ListRequest>,
    ) -> Result<Response<pb::ListResponse>, Status> {
        let f = r.into_inner().filters.unwrap_or_default();
        self.run(move |d| d.list(&f)).await
    }

    async fn inspect(&self, r: Request<pb::VolumeRef>) -> Result<Response<pb::Volume>, Status> {
        let name = r.into_inner().name;
        self.run(move |d| d.inspect(&name)).await
    }

    async fn remove(
        &self,
        r: Request<pb::RemoveRequest>,
    ) -> Result<Response<pb::RemoveResponse>, Status> {
        let r = r.into_inner();
        if self.domain.removal_is_quick(&r.name)
            && let Some(_g) = self.domain.try_lock()
        {
            let out = self.domain.remove_locked(&r.name, r.force);
            return respond(out.map(|()| pb::RemoveResponse {}));
        }
        self.run(move |d| d.remove(&r.name, r.force).map(|()| pb::RemoveResponse {}))
            .await
    }

    async fn prune(
        &self,
        r: Request<pb::PruneRequest>,
    ) -> Result<Response<pb::PruneResponse>, Status> {
        let r = r.into_inner();
        self.run(move |d| d.prune(&r)).await
    }

    async fn acquire(
        &self,
        r: Request<pb::AcquireRequest>,
    ) -> Result<Response<pb::AcquireResponse>, Status> {
        let r = r.into_inner();
        self.run(move |d| d.acquire(r)).await
    }

    async fn release(
        &self,
        r: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let r = r.into_inner();
        self.run(move |d| d.release(&r)).await
    }

    async fn mount(
        &self,
        r: Request<pb::MountRequest>,
    ) -> Result<Response<pb::MountResponse>, Status> {
        let r = r.into_inner();
        self.run(move |d| d.mount(&r)).await
    }

    async fn unmount(
        &self,
        r: Request<pb::UnmountRequest>,
    ) -> Result<Response<pb::UnmountResponse>, Status> {
        let r = r.into_inner();
        self.run(move |d| d.unmount(&r)).await
    }
}
