//! The images service: images, blobs, layers, overlay2 snapshot directories, registry access.

mod added;
#[cfg(test)]
mod archive_tests;
mod build;
mod catalog;
#[cfg(test)]
mod catalog_tests;
mod changes;
mod commit;
mod compression;
mod content;
mod diff;
mod distribution;
mod error;
mod grpc;
mod grpc_build;
mod grpc_streams;
mod image_config;
mod import;
mod info;
mod jobs;
mod layers;
mod load;
mod load_archive;
mod load_v1;
#[cfg(test)]
mod load_v1_tests;
mod login;
mod manifest;
mod parents;
mod pipe;
mod platform;
mod progress;
#[cfg(test)]
mod proptests;
mod pull;
mod pull_all;
mod push;
mod registry;
mod registry_config;
mod save;
mod service;
mod snapshot;
#[cfg(test)]
mod snapshot_tests;
mod spool;
mod storage;
mod store;
mod stored;
mod unpack;

pub use error::ImagesError;

use berth_proto::images::v1::images_server::ImagesServer;
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

/// Runs the images service until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let ctx = ServiceContext::start(ServiceName::Images, launch).await?;
    // Contexts of builds that a crash or kill interrupted.
    let _ = std::fs::remove_dir_all(ctx.data_dir.join("build"));
    let domain = service::ImageService::open(&ctx.data_dir, &ctx.cfg, ctx.events.clone())?;
    // RUN steps run in the runtime's containers; the channel connects at the first RUN, so
    // the service works (and RUN fails clearly) while the runtime is down.
    let runtime = berth_service::channel(
        &ctx.cfg.service_address(ServiceName::Runtime),
        ctx.cfg.berth.service_tls.as_ref(),
    )?;
    let mut routes = RoutesBuilder::default();
    let jobs = jobs::spawn(domain.clone(), ctx.bus.clone());
    // RUN containers of builds a crash interrupted go once the runtime answers.
    let owner = build::reap::Owner::new(&ctx.data_dir);
    // Its own channel: the builds' connects at their first RUN.
    let reaper = build::reap::spawn(
        berth_service::channel(
            &ctx.cfg.service_address(ServiceName::Runtime),
            ctx.cfg.berth.service_tls.as_ref(),
        )?,
        owner.clone(),
        domain.clone(),
    );
    routes.add_service(ImagesServer::new(grpc::GrpcImages::new(
        domain,
        runtime,
        owner,
        ctx.cfg.spool_dir(),
    )));
    let result = ctx.serve(routes).await;
    jobs.abort();
    reaper.abort();
    result
}
