//! The runtime service: containers and execs — their configuration, state, lifecycle, shims,
//! cgroups and logs.

mod archive;
mod archive_user;
mod attach;
mod cgroup_place;
mod changes;
mod commit_config;
mod connect;
mod container;
mod container_error;
mod copyup;
mod create;
mod devices;
mod error;
mod exec;
mod exits;
mod failpoint;
mod fs_api;
mod fsview;
mod grpc;
mod health;
mod health_monitor;
mod info;
mod lifecycle;
mod limits;
mod links;
mod list;
mod logs;
mod metrics;
mod migrate;
mod mounts;
mod names;
mod network;
mod oci_error;
mod pause;
mod propagation;
mod prune;
mod read_only;
mod restart;
mod seccomp;
mod settle;
mod shim;
mod shim_release;
mod spec;
mod start;
mod start_failure;
mod stats;
mod stdin;
mod store;
mod subpath;
mod systemd_scope;
mod top;
mod update;
mod user;
mod volume_use;
mod volumes_from;

pub use berth_cgroup::{CgroupDriver, CgroupInfo, CgroupVersion};
pub use error::RuntimeError;

use berth_proto::runtime::v1::runtime_server::RuntimeServer;
use berth_service::{Launch, ServiceContext};
use berth_types::ServiceName;
use tonic::service::RoutesBuilder;

/// Runs the runtime service until `launch.shutdown` resolves. Tests start it in-process.
pub async fn serve(launch: Launch) -> anyhow::Result<()> {
    let mut cgroups = CgroupInfo::detect_host();
    let systemd = match launch.cfg.cgroup_driver {
        berth_config::CgroupDriver::Cgroupfs => None,
        berth_config::CgroupDriver::Systemd => {
            // sd_booted's directory; tests point it elsewhere (this host runs no systemd).
            let dir = std::env::var_os("BERTH_SYSTEMD_DIR")
                .map_or_else(|| "/run/systemd/system".into(), std::path::PathBuf::from);
            let bus = std::env::var("DBUS_SYSTEM_BUS_ADDRESS").ok();
            let unified = cgroups.version == CgroupVersion::V2;
            let driver = systemd_scope::SystemdDriver::connect(&dir, bus.as_deref(), unified)
                .await
                .map_err(anyhow::Error::msg)?;
            cgroups.driver = CgroupDriver::Systemd;
            Some(driver)
        }
    };
    let ctx = ServiceContext::start(ServiceName::Runtime, launch).await?;
    let store = std::sync::Arc::new(store::Store::open(&ctx.data_dir)?);
    store.attach_events(ctx.events.clone())?;
    let domain = info::Runtime::new(store.clone(), cgroups, ctx.engine_id.clone(), &ctx.cfg);
    let images = berth_service::channel(
        &ctx.cfg.service_address(ServiceName::Images),
        ctx.cfg.berth.service_tls.as_ref(),
    )?;
    let network = berth_service::channel(
        &ctx.cfg.service_address(ServiceName::Network),
        ctx.cfg.berth.service_tls.as_ref(),
    )?;
    let volumes = berth_service::channel(
        &ctx.cfg.service_address(ServiceName::Volumes),
        ctx.cfg.berth.service_tls.as_ref(),
    )?;
    ctx.metrics
        .register_collector(metrics::ContainerCollector::new(store.clone()));
    let containers = std::sync::Arc::new(
        lifecycle::Containers::new(
            store,
            images,
            network,
            volumes,
            ctx.events.clone(),
            &ctx.cfg,
            ctx.data_dir.clone(),
        )
        .with_systemd(systemd),
    );
    containers.reconnect()?;
    containers.release_stopped_shims()?;
    containers.resume_restarts()?;
    containers.reconcile_networks().await;
    let gc = containers.clone();
    tokio::spawn(async move { gc.collect_garbage().await });
    let refs = containers.clone();
    tokio::spawn(async move { refs.reconcile_volumes().await });
    let mut routes = RoutesBuilder::default();
    routes.add_service(RuntimeServer::new(grpc::GrpcRuntime::new(
        domain, containers,
    )));
    ctx.serve(routes).await
}
