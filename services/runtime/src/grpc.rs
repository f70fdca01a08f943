//! The gRPC shell: decode, call the domain, encode. No logic here.

use berth_errors::respond;
use berth_proto::runtime::v1::{self as pb, runtime_server};
use tonic::{Request, Response, Status};

use crate::info::Runtime;

pub(crate) struct GrpcRuntime {
    domain: Runtime,
}

impl GrpcRuntime {
    pub(crate) fn new(domain: Runtime) -> GrpcRuntime {
        GrpcRuntime { domain }
    }
}

#[tonic::async_trait]
impl runtime_server::Runtime for GrpcRuntime {
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
