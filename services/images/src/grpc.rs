//! The gRPC shell: decode, call the domain, encode. No logic here.

use berth_errors::status_from;
use berth_proto::images::v1::{self as pb, images_server};
use tonic::{Request, Response, Status};

use crate::info::Images;

pub(crate) struct GrpcImages {
    domain: Images,
}

impl GrpcImages {
    pub(crate) fn new(domain: Images) -> GrpcImages {
        GrpcImages { domain }
    }
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
}
