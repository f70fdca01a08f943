//! The images service: images, blobs, layers, overlay2 snapshot directories, registry access.

mod catalog;
mod content;
mod error;
mod grpc;
mod info;
mod layers;
mod login;
mod manifest;
mod platform;
mod progress;
mod pull;
mod pull_all;
mod registry;
mod registry_config;
mod service;
mod snapshot;
#[cfg(test)]
mod snapshot_tests;
mod storage;
mod store;
mod unpack;

pub use error::ImagesError;

use berth_proto::images::v1::images_server::ImagesServer;
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

/// Runs the images service until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(ServiceName::Images, launch).await?;
    let domain = service::ImageService::open(&ctx.data_dir, &ctx.cfg, ctx.events.clone())?;
    let mut routes = RoutesBuilder::default();
    routes.add_service(ImagesServer::new(grpc::GrpcImages::new(domain)));
    ctx.serve(routes).await
}
