//! The gRPC shell: decode, call the domain, encode. No logic here.

use berth_errors::status_from;
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
}
