//! The gRPC shell: decode, call the domain, encode. No logic here: where a call runs (the
//! blocking pool, or at once) is the domain's choice (`dispatch`).

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
        respond(self.domain.blocking(f).await)
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
        respond(self.domain.create_quick(r.into_inner()).await)
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
        let out = self.domain.remove_quick(r.name, r.force).await;
        respond(out.map(|()| pb::RemoveResponse {}))
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
