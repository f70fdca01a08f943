//! The gRPC shell: decode, call the domain, encode. No logic here.

use std::sync::Arc;

use berth_errors::respond;
use berth_proto::network::v1::{self as pb, network_server};
use tonic::{Request, Response, Status};

use crate::{info::Network, networks::Networks};

pub(crate) struct GrpcNetwork {
    info: Network,
    networks: Arc<Networks>,
}

impl GrpcNetwork {
    pub(crate) fn new(info: Network, networks: Arc<Networks>) -> GrpcNetwork {
        GrpcNetwork { info, networks }
    }
}

#[tonic::async_trait]
impl network_server::Network for GrpcNetwork {
    async fn info(
        &self,
        _: Request<pb::InfoRequest>,
    ) -> Result<Response<pb::InfoResponse>, Status> {
        respond(self.info.info())
    }

    async fn create_network(
        &self,
        req: Request<pb::CreateNetworkRequest>,
    ) -> Result<Response<pb::NetworkInfo>, Status> {
        respond(self.networks.create(req.get_ref()).await)
    }

    async fn list_networks(
        &self,
        req: Request<pb::ListNetworksRequest>,
    ) -> Result<Response<pb::ListNetworksResponse>, Status> {
        let filters = req.into_inner().filters.unwrap_or_default();
        respond(
            self.networks
                .list(&filters)
                .map(|networks| pb::ListNetworksResponse { networks }),
        )
    }

    async fn inspect_network(
        &self,
        req: Request<pb::NetworkRef>,
    ) -> Result<Response<pb::NetworkInfo>, Status> {
        respond(self.networks.inspect(&req.get_ref().id))
    }

    async fn remove_network(
        &self,
        req: Request<pb::NetworkRef>,
    ) -> Result<Response<pb::Empty>, Status> {
        respond(
            self.networks
                .remove(&req.get_ref().id)
                .await
                .map(|()| pb::Empty {}),
        )
    }

    async fn prune_networks(
        &self,
        req: Request<pb::PruneNetworksRequest>,
    ) -> Result<Response<pb::PruneNetworksResponse>, Status> {
        let filters = req.into_inner().filters.unwrap_or_default();
        respond(
            self.networks
                .prune(&filters)
                .await
                .map(|deleted| pb::PruneNetworksResponse { deleted }),
        )
    }

    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachResponse>, Status> {
        respond(self.networks.attach(req.get_ref()).await)
    }

    async fn detach(&self, req: Request<pb::DetachRequest>) -> Result<Response<pb::Empty>, Status> {
        respond(
            self.networks
                .detach(&req.get_ref().container_id)
                .await
                .map(|()| pb::Empty {}),
        )
    }

    async fn connect_container(
        &self,
        req: Request<pb::ConnectRequest>,
    ) -> Result<Response<pb::ConnectResponse>, Status> {
        respond(self.networks.connect(req.get_ref()).await)
    }

    async fn disconnect_container(
        &self,
        req: Request<pb::DisconnectRequest>,
    ) -> Result<Response<pb::Endpoint>, Status> {
        respond(self.networks.disconnect(req.get_ref()).await)
    }

    async fn check_endpoint(
        &self,
        req: Request<pb::EndpointRequest>,
    ) -> Result<Response<pb::NetworkRecord>, Status> {
        respond(self.networks.check(req.get_ref()))
    }

    async fn rename_container(
        &self,
        req: Request<pb::RenameContainerRequest>,
    ) -> Result<Response<pb::Empty>, Status> {
        respond(
            self.networks
                .rename(req.get_ref())
                .await
                .map(|()| pb::Empty {}),
        )
    }
}
