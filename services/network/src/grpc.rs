//! The gRPC shell: decode, call the domain, encode. No logic here.

use berth_errors::respond;
use berth_proto::network::v1::{self as pb, network_server};
use tonic::{Request, Response, Status};

use crate::info::Network;

pub(crate) struct GrpcNetwork {
    domain: Network,
}

impl GrpcNetwork {
    pub(crate) fn new(domain: Network) -> GrpcNetwork {
        GrpcNetwork { domain }
    }
}

#[tonic::async_trait]
impl network_server::Network for GrpcNetwork {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        respond(self.domain.info())
    }
}
