//! The network service: networks, endpoints, IPAM, bridges, veth pairs, port publishing, DNS.

mod dns;
mod error;
mod firewall;
mod grpc;
mod info;
mod ipam;
mod ipam6;
mod netlink;
mod networks;
mod phases;
mod ports;
mod store;
mod sysctl;

pub use error::NetworkError;

use std::sync::Arc;

use berth_proto::network::v1::network_server::{self, NetworkServer};
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

/// Runs the network service until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let mut ctx = ServiceContext::start(ServiceName::Network, launch).await?;
    // `docker network connect/disconnect` of a running container: the runtime makes these
    // calls for the gateway and writes no event of its own after them, so they answer before
    // their events are stored, the reader of the history waiting for them instead (that wait
    // was a sixth of a connect's time).
    ctx.answer_first(
        ["ConnectContainer", "DisconnectContainer"]
            .map(|m| format!("/{}/{m}", network_server::SERVICE_NAME)),
    );
    let store = Arc::new(store::Store::open(&ctx.data_dir)?);
    store.attach_events(ctx.events.clone())?;
    let info = info::Network::new(store.clone(), sysctl::Sysctl::host());
    let networks = Arc::new(networks::Networks::new(
        store,
        netlink::Links::connect()?,
        networks::Settings::from_config(&ctx.cfg),
    ));
    networks.start().await?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(NetworkServer::new(grpc::GrpcNetwork::new(
        info,
        networks.clone(),
    )));
    let result = ctx.serve(routes).await;
    networks.stop().await;
    result
}
