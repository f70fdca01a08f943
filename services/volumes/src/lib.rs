//! The volumes service: named and anonymous volumes, their data directories and drivers.

mod dispatch;
mod error;
mod grpc;
mod hostmount;
mod info;
mod local;
#[cfg(test)]
mod outbox_tests;
mod spare;
mod store;
mod trash;
mod volumes;

pub use error::VolumesError;

use berth_proto::volumes::v1::volumes_server::{self, VolumesServer};
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

/// Runs the volumes service until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let mut ctx = ServiceContext::start(ServiceName::Volumes, launch).await?;
    // Only the gateway calls these: they answer before their events are stored, the reader
    // of the history waiting for them instead (half their latency was that wait).
    ctx.answer_first(
        ["Create", "Remove"].map(|m| format!("/{}/{m}", volumes_server::SERVICE_NAME)),
    );
    let store = store::Store::open(&ctx.data_dir)?;
    store.attach_events(ctx.events.clone())?;
    let domain = info::Volumes::new(store, ctx.data_dir.clone(), Some(ctx.events.clone()));
    domain.reconcile_mounts();
    trash::sweep(&ctx.data_dir);
    let mut routes = RoutesBuilder::default();
    routes.add_service(VolumesServer::new(grpc::GrpcVolumes::new(domain)));
    ctx.serve(routes).await
}
