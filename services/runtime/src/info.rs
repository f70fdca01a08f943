//! The runtime's part of `/info` and `/system/df`.

use std::sync::Arc;

use berth_config::DaemonConfig;
use berth_proto::runtime::v1 as pb;
use berth_types::EngineId;

use crate::{
    CgroupInfo, RuntimeError, container::Container, container_error::ContainerError,
    lifecycle::Containers, list::newest_first, store::Store,
};

/// The runtime's domain state.
pub(crate) struct Runtime {
    store: Arc<Store>,
    cgroups: CgroupInfo,
    engine_id: EngineId,
    logging_driver: String,
    live_restore: bool,
    seccomp_profile: berth_config::SeccompProfile,
}

impl Runtime {
    pub(crate) fn new(
        store: Arc<Store>,
        cgroups: CgroupInfo,
        engine_id: EngineId,
        cfg: &DaemonConfig,
    ) -> Runtime {
        Runtime {
            store,
            cgroups,
            engine_id,
            logging_driver: cfg.log_driver.clone(),
            live_restore: cfg.live_restore,
            seccomp_profile: cfg.seccomp_profile.clone(),
        }
    }

    pub(crate) fn info(&self) -> Result<pb::InfoResponse, RuntimeError> {
        let counts = self.store.counts()?;
        let cg = &self.cgroups;
        let seccomp = crate::seccomp::info_entry(&self.seccomp_profile);
        let mut warnings = cg.warnings.clone();
        warnings.extend(seccomp.iter().filter_map(|s| s.1).map(str::to_owned));
        Ok(pb::InfoResponse {
            containers: counts.total,
            running: counts.running,
            paused: counts.paused,
            stopped: counts.total - counts.running - counts.paused,
            cgroup_version: cg.version.as_str().to_owned(),
            cgroup_driver: cg.driver.as_str().to_owned(),
            memory_limit: cg.memory_limit,
            swap_limit: cg.swap_limit,
            cpu_cfs_period: cg.cpu_cfs_period,
            cpu_cfs_quota: cg.cpu_cfs_quota,
            cpu_shares: cg.cpu_shares,
            cpu_set: cg.cpu_set,
            pids_limit: cg.pids_limit,
            oom_kill_disable: cg.oom_kill_disable,
            kernel_memory_tcp: cg.kernel_memory_tcp,
            security_options: seccomp.into_iter().map(|s| s.0).collect(),
            logging_driver: self.logging_driver.clone(),
            live_restore: self.live_restore,
            default_runtime: "berth".to_owned(),
            init_binary: String::new(),
            warnings,
            engine_id: self.engine_id.to_string(),
        })
    }
}

impl Containers {
    /// The containers part of `/system/df`: every container, newest first, with its sizes.
    pub(crate) async fn disk_usage(&self) -> Result<pb::DiskUsageResponse, ContainerError> {
        let mut all = self.store.all_shared()?;
        newest_first(&mut all);
        let refs: Vec<&Container> = all.iter().map(|c| &**c).collect();
        let mut sizes = self.sizes(&refs).await;
        let containers = all
            .iter()
            .map(|c| self.info(c, Some(sizes.remove(&c.id).unwrap_or_default())))
            .collect();
        Ok(pb::DiskUsageResponse { containers })
    }
}
