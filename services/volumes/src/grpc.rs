//! The gRPC shell: decode, call the domain, encode. No logic here.

use berth_errors::respond;
use berth_proto::volumes::v1::{self as pb, volumes_server};
use tonic::{Request, Response, Status};

use crate::info::Volumes;

pub(crate) struct GrpcVolumes {
    domain: Volumes,
}

impl GrpcVolumes {
    pub(crate) fn new(domain: Volumes) -> GrpcVolumes {
        GrpcVolumes { domain }
    }
}

#[tonic::async_trait]
impl volumes_server::Volumes for GrpcVolumes {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        respond(self.domain.info())
    }

    async fn disk_usage(
        &self,
        _: Request<pb::DiskUsageRequest>,
    ) -> Result<Response<pb::DiskUsageResponse>, Status> {
        respond(self.domain.disk_usage())
    }
}
