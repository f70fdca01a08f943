//! The images service: images, blobs, layers, overlay2 snapshot directories, registry access.

mod error;
mod grpc;
mod info;
mod registry_config;
mod storage;
mod store;

pub use error::ImagesError;

use berth_proto::images::v1::images_server::ImagesServer;
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

/// Runs the images service until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(ServiceName::Images, launch).await?;
    let store = store::Store::open(&ctx.data_dir)?;
    let domain = info::Images::new(store, ctx.data_dir.clone(), &ctx.cfg)?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(ImagesServer::new(grpc::GrpcImages::new(domain)));
    ctx.serve(routes).await
}
