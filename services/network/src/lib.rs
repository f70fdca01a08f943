//! The network service: networks, endpoints, IPAM, bridges, veth pairs, port publishing, DNS.

mod error;
mod grpc;
mod info;
mod store;
mod sysctl;

pub use error::NetworkError;

use berth_proto::network::v1::network_server::NetworkServer;
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

/// Runs the network service until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(ServiceName::Network, launch).await?;
    let store = store::Store::open(&ctx.data_dir)?;
    let domain = info::Network::new(store, sysctl::Sysctl::host());
    let mut routes = RoutesBuilder::default();
    routes.add_service(NetworkServer::new(grpc::GrpcNetwork::new(domain)));
    ctx.serve(routes).await
}
